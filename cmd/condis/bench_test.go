package main

import (
	"bytes"
	"encoding/json"
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
