package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/condis-project/condis/node"
)

func TestBenchCommand(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	var out bytes.Buffer
	c := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "40", "--concurrency", "8", "--baseline=false", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || lines[0] != "bench any/echo: 40 calls, 8 in flight: 40 connected and closed, 0 failed" ||
		!strings.HasPrefix(lines[1], "  rate ") || !strings.HasPrefix(lines[2], "  setup  mean ") || !strings.HasPrefix(lines[3], "  cycle  mean ") ||
		lines[4] != "  contract violations during the run: TestBenchCommand: none (the called node not checked: give --far-control)" {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestBenchCommandFarControl: with --far-control the called node is asked
// too; a node reached through both sockets is counted once.
func TestBenchCommandFarControl(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	var out bytes.Buffer
	c := start(nil, &out, nil, "bench", "--control", n.sock, "--far-control", n.sock, "--calls", "10", "--baseline=false", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench: %v", err)
	}
	if !strings.HasSuffix(out.String(), "\n  contract violations during the run: TestBenchCommandFarControl: none\n") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestBenchViolationCheck: bench fails when a node reported contract
// violations during the run, naming the node, the rules and how many;
// violations from before the run do not count.
func TestBenchViolationCheck(t *testing.T) {
	ok := node.BenchResult{Dest: "beta/echo", Calls: 100, Connected: 100}
	before := []node.NodeStatus{
		{Node: "alpha", Violations: map[string]uint64{"R-AF-12": 2}},
		{Node: "beta", Violations: map[string]uint64{}},
	}
	same := []node.NodeStatus{
		{Node: "alpha", Violations: map[string]uint64{"R-AF-12": 2}},
		{Node: "beta", Violations: map[string]uint64{}},
	}
	if err := benchVerdict(ok, violationsDuring(before, same)); err != nil {
		t.Errorf("no violation during the run: %v", err)
	}
	after := []node.NodeStatus{
		{Node: "alpha", Violations: map[string]uint64{"R-AF-12": 2}},
		{Node: "beta", Violations: map[string]uint64{"R-VC-6": 3, "R-CLOSE-1": 1}},
	}
	vs := violationsDuring(before, after)
	if len(vs) != 2 || vs[0].Total != 0 || vs[1].Total != 4 || vs[1].Rules["R-VC-6"] != 3 || vs[1].Rules["R-CLOSE-1"] != 1 {
		t.Fatalf("violations during the run: %+v", vs)
	}
	want := "4 contract violation(s) during the run: alpha: none; beta: R-CLOSE-1 ×1, R-VC-6 ×3"
	if err := benchVerdict(ok, vs); err == nil || err.Error() != want {
		t.Errorf("verdict %v, want %s", err, want)
	}
	failed := ok
	failed.Connected, failed.Failed, failed.FirstError = 99, 1, "call beta/echo failed: NDIS_STATUS_FAILURE"
	if err := benchVerdict(failed, vs); err == nil || err.Error() != "1 of 100 calls failed; the first: call beta/echo failed: NDIS_STATUS_FAILURE; "+want {
		t.Errorf("verdict %v", err)
	}
	var text bytes.Buffer
	printViolations(&text, vs, true)
	if text.String() != "  contract violations during the run: alpha: none; beta: R-CLOSE-1 ×1, R-VC-6 ×3\n" {
		t.Errorf("printed %q", text.String())
	}
}

func TestBenchCommandJSON(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	var out bytes.Buffer
	c := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "25", "--baseline=false", "--json", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench: %v", err)
	}
	var r benchReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if r.Bench.Connected != 25 || r.Bench.Concurrency != 1 || r.Baseline != nil {
		t.Errorf("report %+v", r)
	}
	if len(r.Violations) != 1 || r.Violations[0].Node != t.Name() || r.Violations[0].Total != 0 || r.Violations[0].Rules == nil {
		t.Errorf("violations %+v", r.Violations)
	}
}

// TestBenchCommandFails: failed calls make bench exit 1 with the count and
// the first failure on one line, after printing what happened.
func TestBenchCommandFails(t *testing.T) {
	n := startNode(t)
	var out bytes.Buffer
	c := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "5", "--baseline=false", "any/nobody")
	oneLine(t, c.wait(), "5 of 5 calls failed; the first: call any/nobody failed: NDIS_STATUS_")
	if !strings.HasPrefix(out.String(), "bench any/nobody: 5 calls, 1 in flight: 0 connected and closed, 5 failed\n") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestBenchCommandUsage(t *testing.T) {
	n := startNode(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--control", n.sock, "--calls", "0", "any/echo"}, "--calls must be 1 to"},
		{[]string{"bench", "--control", n.sock, "--concurrency", "0", "any/echo"}, "--concurrency must be 1 to"},
		{[]string{"bench", "--control", n.sock}, "want NODE/SERVICE"},
		{[]string{"bench", "--control", "", "any/echo"}, "no control socket"},
		{[]string{"bench", "--control", n.sock, "--baseline=false", "nowhere/echo"}, "unknown node"},
	} {
		oneLine(t, start(nil, &bytes.Buffer{}, nil, c.args...).wait(), c.want)
	}
}

// TestBenchCommandBaselines: with --baseline, bench measures TCP and UDP
// on loopback against a child process of its own (this test binary,
// acting as condis) and within its process, and prints the ratios.
func TestBenchCommandBaselines(t *testing.T) {
	t.Setenv("CONDIS_TEST_MAIN", "1") // the child is this binary: let it be condis
	n := startNode(t)
	n.listenEcho(t, "echo")
	var out bytes.Buffer
	c := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "20", "--concurrency", "2", "--json", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench: %v", err)
	}
	var r benchReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	b := r.Baseline
	if b == nil || b.Concurrency != 2 || b.TCPConns != 20 || b.TCPRate <= 0 || b.TCPRateLocal <= 0 || b.UDPRTT <= 0 || b.UDPRTTLocal <= 0 {
		t.Fatalf("baselines %+v", b)
	}
	var text bytes.Buffer
	printBench(&text, r.Bench, b)
	for _, want := range []string{"baselines on loopback, now (between two processes; within one):",
		"  TCP connect+accept+close, 2 at a time: ", "  UDP round trip: p50 "} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, text.String())
		}
	}
}

// TestBenchCommandGrowth: bench --growth N measures with none held, with
// N held, and with none held again, in that order, and prints the three
// runs, the ratio of the rate with N held to the first, the third as a
// share of the first, and the memory per held VC, saying whose memory it
// is.
func TestBenchCommandGrowth(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	var out bytes.Buffer
	c := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "30", "--concurrency", "3", "--growth", "20", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 16 {
		t.Fatalf("%d lines, want 16:\n%s", len(lines), out.String())
	}
	if lines[0] != "bench any/echo, none held: 30 calls, 3 in flight: 30 connected and closed, 0 failed" ||
		!strings.HasPrefix(lines[1], "  rate ") || !strings.HasPrefix(lines[2], "  setup  mean ") || !strings.HasPrefix(lines[3], "  cycle  mean ") {
		t.Errorf("the run with none held:\n%s", out.String())
	}
	if !strings.HasPrefix(lines[4], "bench any/echo, 20 of 20 held (set up in ") ||
		!strings.HasSuffix(lines[4], " s): 30 calls, 3 in flight: 30 connected and closed, 0 failed") ||
		!strings.HasPrefix(lines[5], "  rate ") || !strings.HasPrefix(lines[6], "  setup  mean ") || !strings.HasPrefix(lines[7], "  cycle  mean ") {
		t.Errorf("the run with calls held:\n%s", out.String())
	}
	if lines[8] != "bench any/echo, none held again: 30 calls, 3 in flight: 30 connected and closed, 0 failed" ||
		!strings.HasPrefix(lines[9], "  rate ") || !strings.HasPrefix(lines[10], "  setup  mean ") || !strings.HasPrefix(lines[11], "  cycle  mean ") {
		t.Errorf("the run with none held again:\n%s", out.String())
	}
	var held, none, r, after, share float64
	if k, err := fmt.Sscanf(lines[12], "growth: %f calls/s with 20 held, %f with none: ratio %f", &held, &none, &r); k != 3 || err != nil || held <= 0 || none <= 0 {
		t.Errorf("growth line %q: %v", lines[12], err)
	} else if want := held / none; r < want*0.98-0.01 || r > want*1.02+0.01 {
		t.Errorf("ratio %.2f, want %.0f / %.0f", r, held, none)
	}
	// The run after is reported as a share of the run before, not in the ratio.
	if k, err := fmt.Sscanf(lines[13], "  with none held again after: %f calls/s (%f of before)", &after, &share); k != 2 || err != nil || after <= 0 {
		t.Errorf("after line %q: %v", lines[13], err)
	} else if want := after / none; share < want*0.98-0.01 || share > want*1.02+0.01 {
		t.Errorf("after %.0f is %.2f of before, want %.0f / %.0f", after, share, after, none)
	}
	var heap float64
	if k, _ := fmt.Sscanf(lines[14], "  memory per held VC: %f octets of the calling node's live Go heap", &heap); k != 1 ||
		!strings.HasSuffix(lines[14], "(after a GC, held less before); the called node's not measured") {
		t.Errorf("memory line %q", lines[14])
	}
	if !strings.HasPrefix(lines[15], "  contract violations during the run: TestBenchCommandGrowth: none") {
		t.Errorf("violations line %q", lines[15])
	}

	// --json: the run with none held as the bench, the other as growth.
	out.Reset()
	c = start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "10", "--growth", "5", "--json", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench --json: %v", err)
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if g := rep.Growth; g == nil || g.Hold != 5 || g.Bench.Held != 5 || g.Bench.Connected != 10 || rep.Bench.Held != 0 || rep.Bench.Connected != 10 ||
		g.After == nil || g.After.Held != 0 || g.After.Connected != 10 ||
		g.Ratio != ratio(g.Bench.Rate, rep.Bench.Rate) || rep.Baseline != nil {
		t.Errorf("report %+v, growth %+v", rep, rep.Growth)
	}
}

// TestBenchCommandGrowthWarmup: with --growth, --warmup W makes W
// unmeasured calls before each measured run: before the first with none
// held, once the calls are held before the next, and before the run with
// none held again, each on a line of its own and in the JSON.
func TestBenchCommandGrowthWarmup(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	var out bytes.Buffer
	c := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "30", "--concurrency", "3", "--growth", "20", "--warmup", "70", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 19 || lines[0] != "warm-up any/echo: 70 calls, 64 in flight, not measured: 70 connected and closed, 0 failed" ||
		!strings.HasPrefix(lines[1], "bench any/echo, none held: 30 calls") ||
		lines[5] != "warm-up any/echo with 20 held: 70 calls, 64 in flight, not measured: 70 connected and closed, 0 failed" ||
		!strings.HasPrefix(lines[6], "bench any/echo, 20 of 20 held (set up in ") ||
		lines[10] != "warm-up any/echo, none held again: 70 calls, 64 in flight, not measured: 70 connected and closed, 0 failed" ||
		!strings.HasPrefix(lines[11], "bench any/echo, none held again: 30 calls") || !strings.HasPrefix(lines[15], "growth: ") {
		t.Errorf("output:\n%s", out.String())
	}
	out.Reset()
	c = start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "10", "--growth", "5", "--warmup", "7", "--json", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench --json: %v", err)
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if g := rep.Growth; rep.Warmup == nil || rep.Warmup.Connected != 7 || g == nil || g.Bench.Warmup == nil || g.Bench.Warmup.Connected != 7 || g.Bench.Connected != 10 ||
		g.After == nil || g.After.Warmup == nil || g.After.Warmup.Connected != 7 || g.After.Connected != 10 {
		t.Errorf("report %+v, growth %+v", rep, rep.Growth)
	}
}

// TestBenchCommandGrowthUsage: --growth outside 1 to MaxBenchHold is
// refused with one line, before any call; calls that cannot be held make
// bench fail saying so.
func TestBenchCommandGrowthUsage(t *testing.T) {
	n := startNode(t)
	for _, g := range []string{"0", "-1", "1000001"} {
		oneLine(t, start(nil, &bytes.Buffer{}, nil, "bench", "--control", n.sock, "--growth", g, "any/echo").wait(),
			"--growth must be 1 to 1000000 (the calls to hold while measuring)")
	}
	var out bytes.Buffer
	err := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "5", "--growth", "3", "any/nobody").wait()
	oneLine(t, err, "with none held: 5 of 5 calls failed")
	if err == nil || !strings.Contains(err.Error(), "; with 3 held: only 0 of the 3 calls to hold were held: a call to hold failed; the first failure: call any/nobody failed: NDIS_STATUS_") {
		t.Errorf("error %v", err)
	}
	if !strings.Contains(out.String(), "\nbench any/nobody, 0 of 3 held (set up in ") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestBenchCommandWarmup: --warmup W makes W calls first, 64 in flight,
// reported on a line of their own and in the JSON, and not measured; a
// warm-up that fails ends bench before anything is measured, on one line.
func TestBenchCommandWarmup(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	var out bytes.Buffer
	c := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "20", "--concurrency", "2", "--warmup", "70", "--baseline=false", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || lines[0] != "warm-up any/echo: 70 calls, 64 in flight, not measured: 70 connected and closed, 0 failed" ||
		lines[1] != "bench any/echo: 20 calls, 2 in flight: 20 connected and closed, 0 failed" {
		t.Errorf("output:\n%s", out.String())
	}
	out.Reset()
	c = start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "5", "--concurrency", "100", "--warmup", "10", "--baseline=false", "--json", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench: %v", err)
	}
	var r benchReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if r.Warmup == nil || r.Warmup.Connected != 10 || r.Warmup.Concurrency != 10 || r.Bench.Connected != 5 {
		t.Errorf("report: warm-up %+v, bench %+v", r.Warmup, r.Bench)
	}
	out.Reset()
	err := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "5", "--warmup", "3", "--baseline=false", "any/nobody").wait()
	oneLine(t, err, "warm-up: 3 of 3 calls failed; the first: call any/nobody failed: NDIS_STATUS_")
	if strings.Contains(out.String(), "bench any/nobody") {
		t.Errorf("measured after a failed warm-up:\n%s", out.String())
	}
	oneLine(t, start(nil, &bytes.Buffer{}, nil, "bench", "--control", n.sock, "--warmup", "-1", "any/echo").wait(),
		"--warmup must be 0 to")
}
