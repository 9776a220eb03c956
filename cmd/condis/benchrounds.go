package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/condis-project/condis/node"
)

// maxBenchRounds bounds bench --rounds: a growth round at a million held
// calls takes minutes.
const maxBenchRounds = 100

// benchRounder makes bench's rounds: each one the measured calls and,
// with --growth, the run with the calls held and the run after; without,
// the baselines measured just after the calls.
type benchRounder struct {
	ctx      context.Context
	socket   string
	req      node.Request // the calls with none held
	growth   int          // calls to hold (0: no growth runs)
	line     *progressLine
	progress func(node.BenchProgress)
	// baselines measures the loopback baselines at a concurrency; nil
	// without --baseline, and with --growth.
	baselines func(concurrency int) (baselines, error)
}

// run makes one bench request, showing its progress as dest.
func (r benchRounder) run(req node.Request, dest string) (node.BenchResult, error) {
	r.line.dest = dest
	res, err := node.BenchWithProgress(r.ctx, r.socket, req, r.progress)
	r.line.clear()
	return res, err
}

// round makes one round. The error is one line: the node could not be
// asked, or a warm-up failed and nothing was measured. Calls that failed
// while measured are in the report (benchReport.verdict).
func (r benchRounder) round() (benchReport, error) {
	res, err := r.run(r.req, r.req.Dest)
	if err != nil {
		return benchReport{}, err
	}
	if err := warmupVerdict(res); err != nil {
		return benchReport{}, err
	}
	rep := benchReport{Warmup: res.Warmup, Bench: res}
	if r.growth == 0 {
		if r.baselines != nil {
			b, err := r.baselines(res.Concurrency)
			if err != nil {
				return benchReport{}, fmt.Errorf("baseline: %v", err)
			}
			rep.Baseline = &b
		}
		return rep, nil
	}
	holding := r.req
	holding.Hold = r.growth
	held, err := r.run(holding, fmt.Sprintf("%s (%d held)", r.req.Dest, r.growth))
	if err != nil {
		return benchReport{}, err
	}
	if err := warmupVerdict(held); err != nil {
		return benchReport{}, fmt.Errorf("with %d held: %w", r.growth, err)
	}
	rep.Growth = &growthReport{Hold: r.growth, Bench: held, Ratio: ratio(held.Rate, res.Rate)}
	if held.Held == r.growth && held.Stopped == "" {
		again, err := r.run(r.req, r.req.Dest)
		if err != nil {
			return benchReport{}, err
		}
		if err := warmupVerdict(again); err != nil {
			return benchReport{}, fmt.Errorf("with none held again: %w", err)
		}
		rep.Growth.After = &again
	}
	return rep, nil
}

// verdict is the report's exit status (benchVerdict, or growthVerdict
// with --growth) with the violations vs.
func (rep benchReport) verdict(vs []nodeViolations) error {
	if rep.Growth != nil {
		return growthVerdict(rep.Bench, *rep.Growth, vs)
	}
	return benchVerdict(rep.Bench, vs)
}

// print prints the report's runs (not its violations).
func (rep benchReport) print(w io.Writer) {
	printWarmup(w, rep.Warmup)
	if rep.Growth != nil {
		printGrowth(w, rep.Bench, *rep.Growth)
		return
	}
	printBench(w, rep.Bench, rep.Baseline)
}

// roundsReport is bench --rounds K's report, K > 1: each round's, and
// each figure's median and range over them.
type roundsReport struct {
	Rounds  []benchReport `json:"rounds"`
	Summary roundsSummary `json:"summary"`
	// Violations are those each node reported during all the rounds.
	Violations []nodeViolations `json:"violations"`
}

// spread is a figure over the rounds that have it.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"rounds"` // the rounds that had the figure
}

// spreadOf is the spread of xs, nil if there are none. The median of an
// even count is the mean of the middle two.
func spreadOf(xs []float64) *spread {
	if len(xs) == 0 {
		return nil
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := s[len(s)/2]
	if len(s)%2 == 0 {
		mid = (s[len(s)/2-1] + mid) / 2
	}
	return &spread{Median: mid, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// roundsSummary is each figure of bench's rounds as a spread; a figure no
// round has is nil.
type roundsSummary struct {
	Rate     *spread `json:"calls_per_second"` // with none held (the first run of a growth round)
	SetupP50 *spread `json:"setup_p50_us"`
	// The ratios to the baselines measured in the same round: the rate
	// over TCP connect+accept+close, and the setup p50 over the UDP round
	// trip, between two processes and within one.
	PerTCPConn      *spread `json:"calls_per_tcp_conn,omitempty"`
	PerTCPConnLocal *spread `json:"calls_per_tcp_conn_local,omitempty"`
	PerUDPRTT       *spread `json:"setup_per_udp_rtt,omitempty"`
	PerUDPRTTLocal  *spread `json:"setup_per_udp_rtt_local,omitempty"`
	// With --growth: the rate with the calls held, its ratio to the rate
	// with none before in the same round, the rate with none held again
	// as a share of the one before, and the memory per held VC.
	HeldRate      *spread `json:"held_calls_per_second,omitempty"`
	Growth        *spread `json:"growth_ratio,omitempty"`
	AfterShare    *spread `json:"after_share,omitempty"`
	HeapPerHeldVc *spread `json:"heap_per_held_vc,omitempty"`
}

// summarize works out each figure's spread over the rounds.
func summarize(reps []benchReport) roundsSummary {
	var rate, setup, tcp, tcpLocal, udp, udpLocal, held, growth, after, heap []float64
	for _, rep := range reps {
		r := rep.Bench
		rate, setup = append(rate, r.Rate), append(setup, r.Setup.P50)
		if b := rep.Baseline; b != nil {
			tcp, tcpLocal = append(tcp, ratio(r.Rate, b.TCPRate)), append(tcpLocal, ratio(r.Rate, b.TCPRateLocal))
			udp, udpLocal = append(udp, ratio(r.Setup.P50, b.UDPRTT)), append(udpLocal, ratio(r.Setup.P50, b.UDPRTTLocal))
		}
		if g := rep.Growth; g != nil && g.Bench.Held == g.Hold {
			held, growth = append(held, g.Bench.Rate), append(growth, g.Ratio)
			heap = append(heap, g.Bench.HeapPerHeldVc)
			if a := g.After; a != nil {
				after = append(after, ratio(a.Rate, r.Rate))
			}
		}
	}
	return roundsSummary{Rate: spreadOf(rate), SetupP50: spreadOf(setup),
		PerTCPConn: spreadOf(tcp), PerTCPConnLocal: spreadOf(tcpLocal), PerUDPRTT: spreadOf(udp), PerUDPRTTLocal: spreadOf(udpLocal),
		HeldRate: spreadOf(held), Growth: spreadOf(growth), AfterShare: spreadOf(after), HeapPerHeldVc: spreadOf(heap)}
}

// print prints each round under its number, then the summary (not the
// violations); asked is the rounds asked for.
func (all roundsReport) print(w io.Writer, asked int) {
	for i, rep := range all.Rounds {
		fmt.Fprintf(w, "round %d of %d:\n", i+1, asked)
		rep.print(w)
	}
	s := all.Summary
	fmt.Fprintf(w, "over %d rounds, median [min-max]:\n", len(all.Rounds))
	line := func(name, format string, sp *spread) {
		if sp != nil {
			f := func(x float64) string { return fmt.Sprintf(format, x) }
			fmt.Fprintf(w, "  %s %s [%s-%s]\n", name, f(sp.Median), f(sp.Min), f(sp.Max))
		}
	}
	line("rate, none held:", "%.0f", s.Rate)
	line("setup p50 (µs):", "%.1f", s.SetupP50)
	line("calls/conns, TCP connect+accept+close between two processes:", "%.2f", s.PerTCPConn)
	line("calls/conns, within one process:", "%.2f", s.PerTCPConnLocal)
	line("setup p50 / UDP round trip between two processes:", "%.1f", s.PerUDPRTT)
	line("setup p50 / UDP round trip within one process:", "%.1f", s.PerUDPRTTLocal)
	line("rate, held:", "%.0f", s.HeldRate)
	line("growth ratio (held / none before):", "%.2f", s.Growth)
	line("none held again after, of before:", "%.2f", s.AfterShare)
	line("memory per held VC (octets):", "%.0f", s.HeapPerHeldVc)
}

// verdict is the exit status of asked rounds: each failed round's
// problems and the violations, on one line.
func (all roundsReport) verdict(asked int) error {
	var problems []string
	for i, rep := range all.Rounds {
		if err := rep.verdict(nil); err != nil {
			problems = append(problems, fmt.Sprintf("round %d of %d: %v", i+1, asked, err))
		}
	}
	if err := benchVerdict(node.BenchResult{}, all.Violations); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}
