package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/node"
)

func benchCmd() *cobra.Command {
	var (
		socket, far string
		calls, conc int
		growth      int
		warmup      int
		baseline    bool
		asJSON      bool
		serve       bool
		rounds      int
	)
	c := &cobra.Command{
		Use:   "bench --control SOCK NODE/SERVICE [--far-control SOCK] [--calls N] [--concurrency C] [--warmup W] [--growth N] [--rounds K]",
		Short: "Measure call setup and teardown to NODE/SERVICE, made inside the node",
		Long: `bench asks the node to call SERVICE on NODE --calls times, with --concurrency
calls in flight at once, and prints the rate (calls set up and torn down per
second) and the setup latency (NdisClMakeCall to MakeCallComplete: SETUP out,
CONNECT back). Every call is a real Q.2931 call: SETUP, CONNECT, CONNECT
ACKNOWLEDGE, RELEASE, RELEASE COMPLETE between the nodes, and real CoNDIS
calls on both mediators. The node makes them as its own CoNDIS client, so the
control socket is not part of what is measured. Someone must listen on
SERVICE at NODE (condis listen).

With --baseline (the default) bench then measures on loopback TCP
connect+accept+close with the same concurrency, and a UDP round trip, both
between two processes (this one and a child it starts), like the two nodes,
and within this process; and prints the ratios: a figure means little
without a baseline from the same machine at the same time.

bench also asks the node (and, with --far-control, the called node) for the
CoNDIS contract violations its mediator reported, before and after the run,
and prints those reported during it, by rule. Our own drivers must never
cause one.

With --warmup W, the node first makes W calls that are not measured (64 in
flight, or --concurrency if more). A node that has just started makes its
first tens of thousands of calls at about half its pace: until its first
garbage collection every allocation lands on a page the process has not
touched yet (with condis node's 32 MiB heap floor, about 8,000 page faults
per node), and reuses them after. --warmup 30000 measures nodes at their
steady pace; without it, bench measures them as they are. With --growth,
the node also makes W unmeasured calls once the held calls are up, before
the measured ones: holding calls grows the heap the collector lets a node
fill, and the calls just after are the first to use, and fault in, that
memory: W should be about twice N. A warm-up ends at its first failed call,
and then nothing is measured.

On a terminal, bench shows its progress on stderr while the calls run: one
line, rewritten every second, with the calls done so far, the calls asked for,
and the rate over the last second.

With --growth N, bench measures the call rate three times in the same run:
first as above with no other call, then with N calls to NODE/SERVICE set up
beforehand and held established while the --calls measured calls run
(the node sets them up 64 at a time, or --concurrency if more, and
releases them after), then with none held again (and --warmup W before
it). It prints the three rates, the ratio of the rate with the calls held
to the rate with none before, the rate after as a share of the one before
(how far the machine and the nodes drifted during the run; a node that
has just released many calls runs slower for a while), and the memory
per held VC: the calling node's live Go heap after a garbage collection
with the calls held, less the same before, divided by N (the called
node's memory is not measured). Nothing is shown while the held calls are
set up. The run with none held is the baseline: --baseline is ignored.
N is at most 1000000.

With --rounds K, bench measures K times over in the same run (each round
the calls and their baselines, or with --growth the three runs) and prints
each round, then each figure's median and range over the rounds: the rate
and setup p50, the ratios to the baselines measured in the same round, the
growth ratio, the share after, and the memory per held VC. On this kind of
machine a host's speed can drift by a fifth within a minute, so one round's
ratio says little; the median of several, each against a baseline measured
next to it, says more. A round whose calls failed ends the rounds.

bench exits 1 if any call failed, the bench was stopped early, or a node
reported a contract violation during the run.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if serve {
				return serveBaselines(cmd.InOrStdin(), cmd.OutOrStdout())
			}
			if len(args) != 1 {
				return fmt.Errorf("bench: want NODE/SERVICE")
			}
			if err := needControl(socket); err != nil {
				return err
			}
			if calls < 1 || calls > node.MaxBenchCalls {
				return fmt.Errorf("--calls must be 1 to %d", node.MaxBenchCalls)
			}
			if conc < 1 || conc > node.MaxBenchConcurrency {
				return fmt.Errorf("--concurrency must be 1 to %d", node.MaxBenchConcurrency)
			}
			if cmd.Flags().Changed("growth") && (growth < 1 || growth > node.MaxBenchHold) {
				return fmt.Errorf("--growth must be 1 to %d (the calls to hold while measuring)", node.MaxBenchHold)
			}
			if warmup < 0 || warmup > node.MaxBenchCalls {
				return fmt.Errorf("--warmup must be 0 to %d (the calls to make before measuring)", node.MaxBenchCalls)
			}
			if rounds < 1 || rounds > maxBenchRounds {
				return fmt.Errorf("--rounds must be 1 to %d", maxBenchRounds)
			}
			sockets := []string{socket}
			if far != "" && far != socket {
				sockets = append(sockets, far)
			}
			before, err := nodeStatuses(cmd.Context(), sockets)
			if err != nil {
				return err
			}
			r := benchRounder{
				ctx:    cmd.Context(),
				socket: socket,
				req:    node.Request{Dest: args[0], Calls: calls, Concurrency: conc, Warmup: warmup},
				growth: growth,
				line:   &progressLine{w: cmd.ErrOrStderr(), dest: args[0]},
			}
			if isTerminal(cmd.ErrOrStderr()) {
				r.progress = r.line.update
			}
			if baseline && growth == 0 {
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("baseline: %v", err)
				}
				r.baselines = func(concurrency int) (baselines, error) {
					return measureBaselines(self, concurrency, min(calls, 20000), 2000)
				}
			}
			var reps []benchReport
			for i := range rounds {
				rep, err := r.round()
				if err != nil {
					if rounds > 1 {
						return fmt.Errorf("round %d of %d: %w", i+1, rounds, err)
					}
					return err
				}
				reps = append(reps, rep)
				if rep.verdict(nil) != nil {
					break // a call failed: the rounds after would not be comparable
				}
			}
			after, err := nodeStatuses(cmd.Context(), sockets)
			if err != nil {
				return err
			}
			viol := violationsDuring(before, after)
			if rounds == 1 {
				rep := reps[0]
				rep.Violations = viol
				if asJSON {
					if err := printJSON(cmd.OutOrStdout(), rep); err != nil {
						return err
					}
				} else {
					rep.print(cmd.OutOrStdout())
					printViolations(cmd.OutOrStdout(), viol, far != "")
				}
				return rep.verdict(viol)
			}
			all := roundsReport{Rounds: reps, Summary: summarize(reps), Violations: viol}
			if asJSON {
				if err := printJSON(cmd.OutOrStdout(), all); err != nil {
					return err
				}
			} else {
				all.print(cmd.OutOrStdout(), rounds)
				printViolations(cmd.OutOrStdout(), viol, far != "")
			}
			return all.verdict(rounds)
		},
	}
	controlFlag(c, &socket)
	c.Flags().StringVar(&far, "far-control", "", "the called node's control socket: check its contract violations too")
	c.Flags().IntVar(&calls, "calls", 10000, "how many calls to make")
	c.Flags().IntVar(&conc, "concurrency", 1, "how many calls in flight at once")
	c.Flags().IntVar(&growth, "growth", 0, "also measure with this many calls held established (1 to 1000000)")
	c.Flags().IntVar(&warmup, "warmup", 0, "first make this many calls, not measured (30000 measures nodes at their steady pace)")
	c.Flags().BoolVar(&baseline, "baseline", true, "also measure TCP and UDP on loopback for comparison")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	c.Flags().IntVar(&rounds, "rounds", 1, "measure this many times over in the same run, and print each ratio's median and range")
	// The other end of the two-process baselines: a child bench runs it.
	c.Flags().BoolVar(&serve, "serve-baselines", false, "serve a UDP echo and a TCP accept+close listener on loopback until stdin ends")
	c.Flags().MarkHidden("serve-baselines")
	return c
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine is a bench's progress, one line on a terminal rewritten in
// place with each update.
type progressLine struct {
	w     io.Writer
	dest  string
	last  node.BenchProgress
	shown bool
}

// update rewrites the line: the calls done of those asked for, and the
// rate since the previous update.
func (p *progressLine) update(now node.BenchProgress) {
	if now.Warmup != p.last.Warmup || now.Seconds < p.last.Seconds { // a new run: no rate from the last one
		p.last = node.BenchProgress{Warmup: now.Warmup}
	}
	dest := p.dest
	if now.Warmup {
		dest += " (warm-up)"
	}
	rate := 0.0
	if dt := now.Seconds - p.last.Seconds; dt > 0 {
		rate = float64(now.Done-p.last.Done) / dt
	}
	failed := ""
	if now.Failed > 0 {
		failed = fmt.Sprintf(", %d failed", now.Failed)
	}
	fmt.Fprintf(p.w, "\r\x1b[Kbench %s: %d/%d calls%s, %.0f calls/s", dest, now.Done, now.Calls, failed, rate)
	p.last, p.shown = now, true
}

// clear erases the line, if it was shown, before the result is printed.
func (p *progressLine) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// warmupVerdict is the one-line error for a bench whose warm-up failed
// (so that nothing was measured), nil otherwise.
func warmupVerdict(r node.BenchResult) error {
	if w := r.Warmup; w != nil {
		if err := benchVerdict(*w, nil); err != nil {
			return fmt.Errorf("warm-up: %w; nothing measured", err)
		}
	}
	return nil
}

// printWarmup prints the warm-up's line, if there was one.
func printWarmup(w io.Writer, r *node.BenchResult) {
	if r != nil {
		printWarmupAs(w, r.Dest, r)
	}
}

// printWarmupAs prints warm-up r's line, naming it title.
func printWarmupAs(w io.Writer, title string, r *node.BenchResult) {
	fmt.Fprintf(w, "warm-up %s: %d calls, %d in flight, not measured: %d connected and closed, %d failed\n", title, r.Calls, r.Concurrency, r.Connected, r.Failed)
}

// benchReport is what bench --json prints.
type benchReport struct {
	// Warmup is the unmeasured run of --warmup, if any.
	Warmup *node.BenchResult `json:"warmup,omitempty"`
	Bench  node.BenchResult  `json:"bench"`
	// Violations are the contract violations each node checked reported
	// during the run.
	Violations []nodeViolations `json:"violations"`
	Baseline   *baselines       `json:"baseline,omitempty"`
	// Growth is bench --growth's run with calls held; Bench is then the
	// run with none held.
	Growth *growthReport `json:"growth,omitempty"`
}

// growthReport is the measured run of bench --growth N.
type growthReport struct {
	Hold  int              `json:"hold"`  // N: calls asked to be held
	Bench node.BenchResult `json:"bench"` // the measured calls, with them held
	// After is the run with none held again, once the held calls were
	// released (nil if they were not all held): how far the machine and
	// the nodes drifted during the run. It is not in Ratio: a node that
	// has just released many calls runs slower for a while, and a mean
	// with it would flatter the ratio.
	After *node.BenchResult `json:"after,omitempty"`
	// Ratio is Bench.Rate over the rate with none held before.
	Ratio float64 `json:"ratio"`
}

// growthVerdict is bench --growth's exit status: benchVerdict over both
// runs, and an error if fewer calls were held than asked for or some were
// closed by the far end while held.
func growthVerdict(none node.BenchResult, g growthReport, vs []nodeViolations) error {
	var problems []string
	if err := benchVerdict(none, nil); err != nil {
		problems = append(problems, "with none held: "+err.Error())
	}
	if h := g.Bench; h.Held < g.Hold { // no measured call was made
		msg := "with " + fmt.Sprint(g.Hold) + " held: " + h.Stopped
		if h.FirstError != "" {
			msg += "; the first failure: " + h.FirstError
		}
		problems = append(problems, msg)
		if err := benchVerdict(node.BenchResult{}, vs); err != nil {
			problems = append(problems, err.Error())
		}
	} else if err := benchVerdict(h, vs); err != nil {
		problems = append(problems, fmt.Sprintf("with %d held: %v", g.Hold, err))
	}
	if g.After != nil {
		if err := benchVerdict(*g.After, nil); err != nil {
			problems = append(problems, "with none held again: "+err.Error())
		}
	}
	if g.Bench.HeldLost > 0 {
		problems = append(problems, fmt.Sprintf("%d of the %d held calls were closed by the far end during the run", g.Bench.HeldLost, g.Bench.Held))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// printGrowth prints bench --growth's two runs, the ratio of their rates
// and the memory per held VC.
func printGrowth(w io.Writer, none node.BenchResult, g growthReport) {
	printBenchAs(w, fmt.Sprintf("bench %s, none held", none.Dest), none, nil)
	h := g.Bench
	if r := h.Warmup; r != nil {
		printWarmupAs(w, fmt.Sprintf("%s with %d held", r.Dest, h.Held), r)
	}
	printBenchAs(w, fmt.Sprintf("bench %s, %d of %d held (set up in %.3f s)", h.Dest, h.Held, g.Hold, h.HoldSeconds), h, nil)
	if a := g.After; a != nil {
		if r := a.Warmup; r != nil {
			printWarmupAs(w, r.Dest+", none held again", r)
		}
		printBenchAs(w, fmt.Sprintf("bench %s, none held again", a.Dest), *a, nil)
	}
	fmt.Fprintf(w, "growth: %.0f calls/s with %d held, %.0f with none: ratio %.2f\n", h.Rate, h.Held, none.Rate, g.Ratio)
	if a := g.After; a != nil {
		fmt.Fprintf(w, "  with none held again after: %.0f calls/s (%.2f of before)\n", a.Rate, ratio(a.Rate, none.Rate))
	}
	if h.Held > 0 {
		fmt.Fprintf(w, "  memory per held VC: %.0f octets of the calling node's live Go heap (after a GC, held less before); the called node's not measured\n", h.HeapPerHeldVc)
	}
}

// nodeViolations are the contract violations one node's mediator
// reported during a bench run, by rule ID.
type nodeViolations struct {
	Node  string            `json:"node"`
	Rules map[string]uint64 `json:"rules"`
	Total uint64            `json:"total"`
}

// nodeStatuses asks each node for its status; a node reached through two
// sockets is asked once.
func nodeStatuses(ctx context.Context, sockets []string) ([]node.NodeStatus, error) {
	var out []node.NodeStatus
	for _, sock := range sockets {
		st, err := node.QueryStatus(ctx, sock)
		if err != nil {
			return nil, fmt.Errorf("status of the node at %s: %w", sock, err)
		}
		if !slices.ContainsFunc(out, func(o node.NodeStatus) bool { return o.Node == st.Node }) {
			out = append(out, st)
		}
	}
	return out, nil
}

// violationsDuring is, for each node in after, the violations it
// reported since before, by rule.
func violationsDuring(before, after []node.NodeStatus) []nodeViolations {
	out := make([]nodeViolations, 0, len(after))
	for _, a := range after {
		var then map[string]uint64
		for _, b := range before {
			if b.Node == a.Node {
				then = b.Violations
			}
		}
		nv := nodeViolations{Node: a.Node, Rules: map[string]uint64{}}
		for rule, n := range a.Violations {
			if d := n - min(n, then[rule]); d > 0 {
				nv.Rules[rule] = d
				nv.Total += d
			}
		}
		out = append(out, nv)
	}
	return out
}

// describeViolations says which node broke which rule how often:
// "alpha: R-VC-6 ×3, R-CLOSE-1 ×1; beta: none".
func describeViolations(vs []nodeViolations) string {
	var parts []string
	for _, v := range vs {
		if v.Total == 0 {
			parts = append(parts, v.Node+": none")
			continue
		}
		rules := slices.Sorted(maps.Keys(v.Rules))
		var each []string
		for _, r := range rules {
			each = append(each, fmt.Sprintf("%s ×%d", r, v.Rules[r]))
		}
		parts = append(parts, v.Node+": "+strings.Join(each, ", "))
	}
	return strings.Join(parts, "; ")
}

func printViolations(w io.Writer, vs []nodeViolations, farChecked bool) {
	note := ""
	if !farChecked {
		note = " (the called node not checked: give --far-control)"
	}
	fmt.Fprintf(w, "  contract violations during the run: %s%s\n", describeViolations(vs), note)
}

// baselines are loopback figures measured by bench: between two processes
// (this one and a child), as the two nodes are, and within this process.
type baselines struct {
	Concurrency  int     `json:"concurrency"`
	TCPConns     int     `json:"tcp_conns"`
	TCPRate      float64 `json:"tcp_conns_per_second"`       // connect+accept+close, two processes
	TCPRateLocal float64 `json:"tcp_conns_per_second_local"` // the same within this process
	UDPRTT       float64 `json:"udp_rtt_us"`                 // median round trip, two processes
	UDPRTTLocal  float64 `json:"udp_rtt_us_local"`           // the same within this process
}

// benchVerdict is bench's exit status: an error if a call failed, the
// bench did not make every call, or a node reported a contract violation
// during the run (vs), saying all of that on one line.
func benchVerdict(r node.BenchResult, vs []nodeViolations) error {
	var problems []string
	switch {
	case r.Failed > 0:
		problems = append(problems, fmt.Sprintf("%d of %d calls failed; the first: %s", r.Failed, r.Calls, r.FirstError))
	case r.Stopped != "":
		problems = append(problems, fmt.Sprintf("bench stopped after %d calls: %s", r.Calls, r.Stopped))
	}
	var total uint64
	for _, v := range vs {
		total += v.Total
	}
	if total > 0 {
		problems = append(problems, fmt.Sprintf("%d contract violation(s) during the run: %s", total, describeViolations(vs)))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

func printBench(w io.Writer, r node.BenchResult, b *baselines) {
	printBenchAs(w, "bench "+r.Dest, r, b)
}

// printBenchAs is printBench with its first line starting with title.
func printBenchAs(w io.Writer, title string, r node.BenchResult, b *baselines) {
	fmt.Fprintf(w, "%s: %d calls, %d in flight: %d connected and closed, %d failed\n", title, r.Calls, r.Concurrency, r.Connected, r.Failed)
	if r.Stopped != "" {
		fmt.Fprintf(w, "  stopped early: %s\n", r.Stopped)
	}
	fmt.Fprintf(w, "  rate   %.0f calls/s (setup + teardown, %.3f s)\n", r.Rate, r.Seconds)
	lat := func(name string, l node.Latency) {
		fmt.Fprintf(w, "  %-6s mean %.1f µs, p50 %.1f, p90 %.1f, p99 %.1f, max %.1f\n", name, l.Mean, l.P50, l.P90, l.P99, l.Max)
	}
	lat("setup", r.Setup)
	lat("cycle", r.Cycle)
	if b == nil {
		return
	}
	fmt.Fprintf(w, "baselines on loopback, now (between two processes; within one):\n")
	fmt.Fprintf(w, "  TCP connect+accept+close, %d at a time: %.0f conns/s (%.0f); calls/conns %.2f (%.2f)\n",
		b.Concurrency, b.TCPRate, b.TCPRateLocal, ratio(r.Rate, b.TCPRate), ratio(r.Rate, b.TCPRateLocal))
	fmt.Fprintf(w, "  UDP round trip: p50 %.1f µs (%.1f); setup p50 / RTT %.1f (%.1f)\n",
		b.UDPRTT, b.UDPRTTLocal, ratio(r.Setup.P50, b.UDPRTT), ratio(r.Setup.P50, b.UDPRTTLocal))
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// measureBaselines measures TCP connect+accept+close (n connections, conc
// at a time) and the median of rtts UDP round trips on loopback: against
// a child process running bin (condis) with --serve-baselines, and within
// this process.
func measureBaselines(bin string, conc, n, rtts int) (baselines, error) {
	b := baselines{Concurrency: conc, TCPConns: n}
	local, err := startBaselineServers()
	if err != nil {
		return b, err
	}
	defer local.close()
	child, err := startBaselineChild(bin)
	if err != nil {
		return b, err
	}
	defer child.Close()
	for _, m := range []struct {
		addrs baselineAddrs
		rate  *float64
		rtt   *float64
	}{{child.addrs, &b.TCPRate, &b.UDPRTT}, {local.addrs, &b.TCPRateLocal, &b.UDPRTTLocal}} {
		if *m.rate, err = tcpConnectRate(m.addrs.tcp, conc, n); err != nil {
			return b, err
		}
		if *m.rtt, err = medianRTT(m.addrs.udp, rtts); err != nil {
			return b, err
		}
	}
	return b, nil
}

// baselineAddrs are where the baseline servers listen.
type baselineAddrs struct{ udp, tcp string }

// baselineServers are a UDP echo and a TCP listener that accepts and
// closes, on loopback.
type baselineServers struct {
	addrs baselineAddrs
	pc    net.PacketConn
	ln    net.Listener
	wg    sync.WaitGroup
}

func startBaselineServers() (*baselineServers, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		pc.Close()
		return nil, err
	}
	s := &baselineServers{addrs: baselineAddrs{udp: pc.LocalAddr().String(), tcp: ln.Addr().String()}, pc: pc, ln: ln}
	s.wg.Go(func() {
		buf := make([]byte, 64)
		for {
			k, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:k], from)
		}
	})
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	return s, nil
}

func (s *baselineServers) close() {
	s.pc.Close()
	s.ln.Close()
	s.wg.Wait()
}

// serveBaselines is bench --serve-baselines: the baseline servers, their
// addresses on one line of stdout ("udp ADDR tcp ADDR"), until stdin ends.
func serveBaselines(stdin io.Reader, stdout io.Writer) error {
	s, err := startBaselineServers()
	if err != nil {
		return err
	}
	defer s.close()
	if _, err := fmt.Fprintf(stdout, "udp %s tcp %s\n", s.addrs.udp, s.addrs.tcp); err != nil {
		return err
	}
	io.Copy(io.Discard, stdin)
	return nil
}

// baselineChild is a child process serving the baselines.
type baselineChild struct {
	cmd   *exec.Cmd
	stdin io.Closer
	addrs baselineAddrs
}

// startBaselineChild runs bin (condis) with bench --serve-baselines.
func startBaselineChild(bin string) (*baselineChild, error) {
	cmd := exec.Command(bin, "bench", "--serve-baselines")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &baselineChild{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err == nil {
		_, err = fmt.Sscanf(line, "udp %s tcp %s", &c.addrs.udp, &c.addrs.tcp)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("the baseline process: %v", err)
	}
	return c, nil
}

// Close ends the child (its stdin ends) and waits for it.
func (c *baselineChild) Close() error {
	c.stdin.Close()
	return c.cmd.Wait()
}

// tcpConnectRate connects to addr and closes n TCP connections, conc at a
// time, and returns how many per second.
func tcpConnectRate(addr string, conc, n int) (float64, error) {
	var left atomic.Int64
	left.Store(int64(n))
	var workers sync.WaitGroup
	var mu sync.Mutex
	var first error
	start := time.Now()
	for range conc {
		workers.Go(func() {
			for left.Add(-1) >= 0 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				c.Close()
			}
		})
	}
	workers.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return 0, first
	}
	return float64(n) / elapsed.Seconds(), nil
}

// medianRTT is the median of n round trips of a 34-octet datagram (a small
// Q.2931 message) to the UDP echo at addr, in microseconds.
func medianRTT(addr string, n int) (float64, error) {
	cl, err := net.Dial("udp", addr)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	cl.SetDeadline(time.Now().Add(10 * time.Second)) // loopback: a lost datagram is a broken machine
	msg, buf := make([]byte, 34), make([]byte, 64)
	rtts := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := cl.Write(msg); err != nil {
			return 0, err
		}
		if _, err := cl.Read(buf); err != nil {
			return 0, err
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	return float64(rtts[len(rtts)/2]) / 1e3, nil
}
