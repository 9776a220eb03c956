package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/condis-project/condis/node"
)

// TestSpreadOf: the median of an odd count is the middle figure, of an
// even count the mean of the middle two; min and max bound it; no figure
// gives no spread, and the figures are not reordered.
func TestSpreadOf(t *testing.T) {
	xs := []float64{3, 1, 2}
	if s := spreadOf(xs); s == nil || *s != (spread{Median: 2, Min: 1, Max: 3, N: 3}) {
		t.Errorf("odd: %+v", s)
	}
	if xs[0] != 3 || xs[1] != 1 {
		t.Errorf("the figures were reordered: %v", xs)
	}
	if s := spreadOf([]float64{4, 1, 3, 10}); s == nil || *s != (spread{Median: 3.5, Min: 1, Max: 10, N: 4}) {
		t.Errorf("even: %+v", s)
	}
	if s := spreadOf(nil); s != nil {
		t.Errorf("none: %+v", s)
	}
}

// TestSummarizeRounds: each ratio is taken within its round (against the
// baselines or the run with none held of the same round), then summarised;
// a growth round whose calls were not all held has no growth figures.
func TestSummarizeRounds(t *testing.T) {
	plain := func(rate, tcp float64) benchReport {
		return benchReport{Bench: node.BenchResult{Rate: rate, Setup: node.Latency{P50: 100}},
			Baseline: &baselines{TCPRate: tcp, TCPRateLocal: tcp * 2, UDPRTT: 10, UDPRTTLocal: 20}}
	}
	// Rates and baselines drift together: each round reads 3, although
	// the mean rate over the mean baseline would not.
	s := summarize([]benchReport{plain(30, 10), plain(90, 30), plain(60, 20)})
	if s.PerTCPConn == nil || *s.PerTCPConn != (spread{Median: 3, Min: 3, Max: 3, N: 3}) || s.PerTCPConnLocal.Median != 1.5 ||
		s.PerUDPRTT.Median != 10 || s.PerUDPRTTLocal.Median != 5 || s.Rate.Median != 60 || s.SetupP50.Median != 100 || s.Growth != nil {
		t.Errorf("summary %+v", s)
	}
	grown := func(none, held, after float64, hold, got int) benchReport {
		a := node.BenchResult{Rate: after}
		return benchReport{Bench: node.BenchResult{Rate: none}, Growth: &growthReport{Hold: hold,
			Bench: node.BenchResult{Rate: held, Held: got, HeapPerHeldVc: 800}, Ratio: held / none, After: &a}}
	}
	s = summarize([]benchReport{grown(100, 90, 80, 5, 5), grown(200, 100, 200, 5, 5), grown(100, 10, 10, 5, 4)})
	if s.Growth == nil || *s.Growth != (spread{Median: 0.7, Min: 0.5, Max: 0.9, N: 2}) ||
		s.AfterShare == nil || *s.AfterShare != (spread{Median: 0.9, Min: 0.8, Max: 1, N: 2}) ||
		s.HeldRate.Median != 95 || s.HeapPerHeldVc.Median != 800 || s.Rate.N != 3 || s.PerTCPConn != nil {
		t.Errorf("growth summary %+v", s)
	}
}

// TestBenchCommandRounds: --rounds K measures K times in one run, prints
// each round under its number and then each figure's median and range
// over the rounds, computed from the rounds' own figures; --json gives
// the rounds and the summary.
func TestBenchCommandRounds(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	var out bytes.Buffer
	c := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "20", "--concurrency", "2", "--growth", "5", "--rounds", "2", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	text := out.String()
	r1, r2 := strings.Index(text, "round 1 of 2:\nbench any/echo, none held: 20 calls"), strings.Index(text, "\nround 2 of 2:\nbench any/echo, none held: 20 calls")
	if r1 != 0 || r2 < 0 || strings.Count(text, "\ngrowth: ") != 2 {
		t.Fatalf("rounds:\n%s", text)
	}
	var ratios []float64
	for _, l := range strings.Split(text, "\n") {
		var held, none, r float64
		if k, _ := fmt.Sscanf(l, "growth: %f calls/s with 5 held, %f with none: ratio %f", &held, &none, &r); k == 3 {
			ratios = append(ratios, held/none)
		}
	}
	summary := text[strings.Index(text, "over 2 rounds, median [min-max]:\n"):]
	var med, lo, hi float64
	line := summary[strings.Index(summary, "  growth ratio"):]
	if k, err := fmt.Sscanf(line, "  growth ratio (held / none before): %f [%f-%f]", &med, &lo, &hi); k != 3 || len(ratios) != 2 {
		t.Fatalf("summary (%v):\n%s", err, summary)
	}
	want := spreadOf(ratios)
	for _, x := range [][2]float64{{med, want.Median}, {lo, want.Min}, {hi, want.Max}} {
		if x[0] < x[1]-0.006 || x[0] > x[1]+0.006 {
			t.Errorf("summary %.2f [%.2f-%.2f], want %.2f [%.2f-%.2f]:\n%s", med, lo, hi, want.Median, want.Min, want.Max, text)
		}
	}
	for _, want := range []string{"  rate, none held: ", "  rate, held: ", "  none held again after, of before: ", "  memory per held VC (octets): ",
		"  contract violations during the run: TestBenchCommandRounds: none"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}

	out.Reset()
	c = start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "10", "--rounds", "3", "--baseline=false", "--json", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatalf("bench --json: %v", err)
	}
	var all roundsReport
	if err := json.Unmarshal(out.Bytes(), &all); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	var rates []float64
	for _, r := range all.Rounds {
		if r.Bench.Connected != 10 || r.Baseline != nil || r.Growth != nil {
			t.Errorf("round %+v", r)
		}
		rates = append(rates, r.Bench.Rate)
	}
	if len(all.Rounds) != 3 || all.Summary.Rate == nil || *all.Summary.Rate != *spreadOf(rates) || all.Summary.Growth != nil || len(all.Violations) != 1 {
		t.Errorf("report %+v", all)
	}
}

// TestBenchCommandRoundsStop: a round whose calls failed ends the rounds,
// and bench fails naming it; --rounds outside 1 to 100 is refused on one
// line.
func TestBenchCommandRoundsStop(t *testing.T) {
	n := startNode(t)
	var out bytes.Buffer
	err := start(nil, &out, nil, "bench", "--control", n.sock, "--calls", "3", "--rounds", "4", "--baseline=false", "any/nobody").wait()
	oneLine(t, err, "round 1 of 4: 3 of 3 calls failed; the first: call any/nobody failed: NDIS_STATUS_")
	if strings.Contains(out.String(), "round 2 of 4") || !strings.Contains(out.String(), "over 1 rounds, median [min-max]:") {
		t.Errorf("output:\n%s", out.String())
	}
	for _, k := range []string{"0", "101"} {
		oneLine(t, start(nil, &bytes.Buffer{}, nil, "bench", "--control", n.sock, "--rounds", k, "any/echo").wait(), "--rounds must be 1 to 100")
	}
}
