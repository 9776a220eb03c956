package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
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
	if len(lines) != 4 || lines[0] != "bench any/echo: 40 calls, 8 in flight: 40 connected and closed, 0 failed" ||
		!strings.HasPrefix(lines[1], "  rate ") || !strings.HasPrefix(lines[2], "  setup  mean ") || !strings.HasPrefix(lines[3], "  cycle  mean ") {
		t.Errorf("output:\n%s", out.String())
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
