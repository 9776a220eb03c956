package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	rtrace "runtime/trace"
	"slices"
	"strings"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/ndis"
)

// benchRun is one bench request being carried out: calls to one
// destination, each created, made, closed and deleted by the Control like
// a call session's, but with no session. Fields are guarded by Control.mu.
type benchRun struct {
	c             *Control
	dest          string
	peer, service string
	tx, rx        ndis.Flowspec
	total, conc   int

	started   int // MakeCalls issued (or refused before)
	inflight  int // started and whose VC is not deleted yet
	connected int
	failed    int
	stop      string // why no more calls are started, "" while they are
	firstErr  string

	start   time.Time
	elapsed time.Duration
	setup   []time.Duration // connected calls: NdisClMakeCall to MakeCallComplete (not kept for held calls)
	cycle   []time.Duration // connected calls: NdisClMakeCall to the VC deleted
	done    chan struct{}   // closed once the last call's VC is deleted

	// A run of calls to hold (a bench with Hold): a connected call is
	// kept (held counts them), not closed; the run is done once every
	// call is connected and held, or failed. Its calls share one handler,
	// holder, and the run keeps nothing else per call: a held call costs
	// the node only what the layers below keep. release closes the held
	// calls; released is closed once the last of them is deleted.
	hold   bool
	holder *benchCall
	// A warm-up run (Request.Warmup) ends at its first failed call.
	warmup    bool
	held      int
	lost      int // held calls the far end closed before the release
	releasing bool
	released  chan struct{}
}

// serveBench serves a bench request over the control socket: Bench, with
// the client's going away (EOF: it says nothing more) as the cancellation.
func (c *Control) serveBench(conn net.Conn, br *bufio.Reader, req *Request) {
	// A session of its own marks the connection, so that Shutdown leaves
	// it open for the answer.
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		writeJSONLine(conn, Response{Error: "the node is shutting down"})
		return
	}
	c.conns[conn] = c.newSession(sessionBench, conn)
	c.mu.Unlock()
	ctx, cancel := context.WithCancelCause(context.Background())
	gone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, br)
		cancel(errClientGone)
		close(gone)
	}()
	defer func() {
		conn.Close()
		<-gone
	}()
	var report func(BenchProgress)
	if req.Progress {
		report = func(p BenchProgress) { writeJSONLine(conn, Response{OK: true, Progress: &p}) }
	}
	res, err := c.bench(ctx, *req, benchProgressEvery, report)
	if err != nil {
		writeJSONLine(conn, Response{Error: err.Error()})
		return
	}
	writeJSONLine(conn, Response{OK: true, Bench: &res})
}

var errClientGone = errors.New("the client went away")

// Bench makes req.Calls calls to req.Dest (each created, made, closed and
// deleted, with no data; req.Tx and req.Rx as for a call), req.Concurrency
// of them in flight at once, as the Control's own CoNDIS client, and
// returns how it went once the last VC is deleted. It is what a bench
// request on the control socket does, in process. Ending ctx, the node
// shutting down or the address family being withdrawn stops it early: no
// more calls are started, those in flight close normally, and the result
// says why in Stopped. The error is for a request that could not start
// (bad parameters, an unknown destination, a node shutting down).
//
// With req.Hold, req.Hold calls to req.Dest are first set up and kept
// established; the measured calls are made only if all of them are held,
// and the held calls are released (and their VCs deleted) before Bench
// returns.
func (c *Control) Bench(ctx context.Context, req Request) (BenchResult, error) {
	return c.bench(ctx, req, 0, nil)
}

// benchProgressEvery is how often a bench request that asked for progress
// is sent a progress line.
const benchProgressEvery = time.Second

// bench is Bench, calling report (if not nil) every period with how far
// the bench has got, on the calling goroutine.
func (c *Control) bench(ctx context.Context, req Request, period time.Duration, report func(BenchProgress)) (BenchResult, error) {
	if req.Concurrency == 0 {
		req.Concurrency = 1
	}
	switch {
	case req.Dest == "":
		return BenchResult{}, errors.New("bench: no destination (node/service)")
	case req.Calls < 1 || req.Calls > MaxBenchCalls:
		return BenchResult{}, fmt.Errorf("bench: calls must be 1 to %d", MaxBenchCalls)
	case req.Concurrency < 1 || req.Concurrency > MaxBenchConcurrency:
		return BenchResult{}, fmt.Errorf("bench: concurrency must be 1 to %d", MaxBenchConcurrency)
	case req.Hold < 0 || req.Hold > MaxBenchHold:
		return BenchResult{}, fmt.Errorf("bench: hold must be 0 to %d", MaxBenchHold)
	case req.Warmup < 0 || req.Warmup > MaxBenchCalls:
		return BenchResult{}, fmt.Errorf("bench: warmup must be 0 to %d", MaxBenchCalls)
	}
	r := &benchRun{c: c, dest: req.Dest, total: req.Calls, conc: min(req.Concurrency, req.Calls), done: make(chan struct{})}
	var err error
	if r.tx, err = req.Tx.Ndis(); err == nil {
		if r.rx, err = req.Rx.Ndis(); err == nil {
			_, err = c.cm.CallParams(req.Dest, r.tx, r.rx, false) // a bad destination is refused before any call
		}
	}
	if err != nil {
		return BenchResult{}, fmt.Errorf("bench %s: %v", req.Dest, err)
	}
	if n, svc, ok := strings.Cut(req.Dest, "/"); ok {
		r.peer, r.service = n, svc
	}
	if req.Hold == 0 {
		warm, err := c.warmUp(ctx, r, req.Warmup, period, report)
		if err != nil || warm.Stopped != "" {
			return warm, err
		}
		res, err := c.runBench(ctx, r, period, report)
		res.Warmup = warm.Warmup
		return res, err
	}
	return c.benchHolding(ctx, r, req.Hold, req.Warmup, period, report)
}

// benchHolding is a bench with hold calls held: it sets them up (as r's
// calls, BenchHoldConcurrency at a time or r's concurrency if more),
// keeps them while r runs, then releases them, and returns r's result
// with how many were held and this node's heap per held VC.
func (c *Control) benchHolding(ctx context.Context, r *benchRun, hold, warmup int, period time.Duration, report func(BenchProgress)) (BenchResult, error) {
	h := r.toHold(hold)
	heapBefore := liveHeap()
	hres, err := c.runBench(ctx, h, 0, nil)
	if err != nil {
		c.releaseHeld(h)
		return BenchResult{}, err
	}
	c.mu.Lock()
	held := h.held
	c.mu.Unlock()
	res := BenchResult{Dest: r.dest, Concurrency: r.conc, Hold: hold, Held: held, HoldSeconds: hres.Seconds}
	if held < hold {
		// Measuring with fewer calls held than asked for would measure
		// something else: say why and make no measured call.
		c.releaseHeld(h)
		res.Calls, res.Failed, res.FirstError = hres.Calls, hres.Failed, hres.FirstError
		res.Stopped = fmt.Sprintf("only %d of the %d calls to hold were held", held, hold)
		if hres.Stopped != "" {
			res.Stopped += ": " + hres.Stopped
		}
		return res, nil
	}
	res.HeapPerHeldVc = float64(liveHeap()-heapBefore) / float64(held)
	warm, err := c.warmUp(ctx, r, warmup, period, report)
	if err != nil || warm.Stopped != "" {
		c.releaseHeld(h)
		res.Warmup, res.Stopped = warm.Warmup, warm.Stopped
		return res, err
	}
	mres, err := c.runBench(ctx, r, period, report)
	mres.Warmup = warm.Warmup
	c.mu.Lock()
	lost := h.lost
	c.mu.Unlock()
	if rerr := c.releaseHeld(h); err == nil {
		err = rerr
	}
	if err != nil {
		return BenchResult{}, err
	}
	mres.Hold, mres.Held, mres.HeldLost, mres.HoldSeconds, mres.HeapPerHeldVc = hold, held, lost, res.HoldSeconds, res.HeapPerHeldVc
	return mres, nil
}

// toHold returns a run that sets up n calls like r's and holds them
// (BenchHoldConcurrency at a time, or r's concurrency if more) until
// releaseHeld.
func (r *benchRun) toHold(n int) *benchRun {
	h := r.alongside(n, BenchHoldConcurrency)
	h.hold, h.released = true, make(chan struct{})
	h.holder = &benchCall{r: h}
	return h
}

// alongside returns a run of n calls like r's (the same destination and
// flowspecs), least in flight at once, or r's concurrency if more: the
// held calls of a growth bench, or a warm-up.
func (r *benchRun) alongside(n, least int) *benchRun {
	return &benchRun{c: r.c, dest: r.dest, peer: r.peer, service: r.service, tx: r.tx, rx: r.rx,
		total: n, conc: min(n, max(r.conc, least)), done: make(chan struct{})}
}

// warmUp makes n calls like r's that are not measured, if n > 0,
// reporting their progress like runBench: the returned result's Warmup is
// their run, and its Stopped is set, with nothing else, when one of them
// failed or they were stopped, so that nothing is measured.
func (c *Control) warmUp(ctx context.Context, r *benchRun, n int, period time.Duration, report func(BenchProgress)) (BenchResult, error) {
	if n == 0 {
		return BenchResult{}, nil
	}
	w := r.alongside(n, BenchWarmupConcurrency)
	w.warmup = true
	res, err := c.runBench(ctx, w, period, report)
	if err != nil {
		return BenchResult{}, err
	}
	out := BenchResult{Dest: r.dest, Concurrency: r.conc, Warmup: &res}
	switch {
	case res.Failed > 0:
		out.Stopped = fmt.Sprintf("%d of the %d warm-up calls failed (the first: %s); nothing measured", res.Failed, res.Calls, res.FirstError)
	case res.Stopped != "":
		out.Stopped = "the warm-up was stopped: " + res.Stopped + "; nothing measured"
	}
	return out, nil
}

// liveHeap is the Go heap in use after a garbage collection, in octets.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// releaseHeld closes h's held calls and waits until their VCs are deleted.
func (c *Control) releaseHeld(h *benchRun) error {
	c.mu.Lock()
	h.releasing = true
	if h.held == 0 {
		close(h.released)
	}
	c.mu.Unlock()
	// Without c.mu: EachVC holds the Core's lock, which comes first.
	c.core.EachVC(func(v *clientcore.VC) {
		if v.Handler() == clientcore.Handler(h.holder) {
			v.Close(whyLocal.reason(), nil) // only queues the close
		}
	})
	select {
	case <-h.released:
		return nil
	case <-c.ctx.Done():
		return errors.New("bench: the node shut down before its held calls were gone")
	}
}

// runBench starts r's calls and waits until they are over, reporting
// progress every period if report is not nil.
func (c *Control) runBench(ctx context.Context, r *benchRun, period time.Duration, report func(BenchProgress)) (BenchResult, error) {
	if !r.hold { // a run of calls to hold reports no latencies
		r.setup = make([]time.Duration, 0, r.total)
		r.cycle = make([]time.Duration, 0, r.total)
	}
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		return BenchResult{}, errors.New("the node is shutting down")
	}
	c.benches[r] = struct{}{}
	r.start = time.Now()
	c.benchFillLocked(r)
	c.mu.Unlock()
	var tick <-chan time.Time
	if report != nil {
		t := time.NewTicker(period)
		defer t.Stop()
		tick = t.C
	}
wait:
	for {
		select {
		case <-r.done:
		case <-tick:
			c.mu.Lock()
			p := r.progressLocked()
			c.mu.Unlock()
			report(p)
			continue
		case <-ctx.Done():
			c.stopBench(r, context.Cause(ctx).Error())
			select {
			case <-r.done:
			case <-c.ctx.Done():
			}
		case <-c.ctx.Done():
		}
		break wait
	}
	select {
	case <-r.done:
	default: // c.ctx ended: Shutdown gave up waiting for the calls
		return BenchResult{}, errors.New("bench: the node shut down before its calls were gone")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return r.resultLocked(), nil
}

// stopBench starts no more of r's calls, for why.
func (c *Control) stopBench(r *benchRun, why string) {
	c.mu.Lock()
	c.stopBenchLocked(r, why)
	c.mu.Unlock()
}

func (c *Control) stopBenchLocked(r *benchRun, why string) {
	if r.stop == "" {
		r.stop = why
	}
	c.benchMaybeDoneLocked(r)
}

// stopBenches stops every bench, for why (shutdown, withdrawal).
func (c *Control) stopBenches(why string) {
	c.mu.Lock()
	for r := range c.benches {
		c.stopBenchLocked(r, why)
	}
	c.mu.Unlock()
}

// benchFillLocked starts r's calls until concurrency of them are in
// flight. StartCall only queues the call for the Core's worker, so this
// runs in the Core's handlers too.
func (c *Control) benchFillLocked(r *benchRun) {
	for r.stop == "" && r.started < r.total && r.inflight < r.conc {
		if c.down {
			c.stopBenchLocked(r, "the node is shutting down")
			return
		}
		r.started++
		r.inflight++
		bc := r.holder
		if bc == nil {
			bc = &benchCall{r: r, madeAt: time.Since(r.start)}
		}
		benchMark("bench call")
		c.core.StartCall(r.dest, clientcore.CallOptions{Tx: r.tx, Rx: r.rx}, bc)
	}
	c.benchMaybeDoneLocked(r)
}

// benchCall is the handler of a bench call's VC: of one call, or of all
// the calls of a run of calls to hold (benchRun.holder).
type benchCall struct {
	clientcore.NopHandler
	r      *benchRun
	madeAt time.Duration // since r.start; not for the holder
}

// Connected: the call is up; it is closed at once, or held.
func (bc *benchCall) Connected(v *clientcore.VC, _ *clientcore.Flows) {
	c := bc.r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.benchMadeLocked(bc, v)
}

// PartyDropped: bench calls are point-to-point; nothing to do.
func (bc *benchCall) PartyDropped(*clientcore.Party, clientcore.PartyEnd) {}

// Closed: the VC is gone; the run starts its next call.
func (bc *benchCall) Closed(v *clientcore.VC, e clientcore.End) {
	c := bc.r.c
	c.mu.Lock()
	defer c.mu.Unlock()
	c.benchGoneLocked(bc, e)
	c.notifyLocked()
}

// benchMadeLocked: a bench call is connected; it is closed at once, or
// held.
func (c *Control) benchMadeLocked(bc *benchCall, v *clientcore.VC) {
	r := bc.r
	r.connected++
	benchMark("bench connected")
	if r.hold { // kept: no longer in flight, the next one starts
		r.held++
		r.inflight--
		c.benchFillLocked(r)
		return
	}
	r.setup = append(r.setup, time.Since(r.start)-bc.madeAt)
	v.Close(whyLocal.reason(), nil)
}

// benchGoneLocked: a bench call's VC is gone (or the call was never made);
// the next call starts.
func (c *Control) benchGoneLocked(bc *benchCall, e clientcore.End) {
	r := bc.r
	if r.hold && e.WasUp { // every call of r that came up was held
		r.held--
		switch {
		case !r.releasing:
			r.lost++
		case r.held == 0:
			close(r.released)
		}
		return
	}
	r.inflight--
	switch ce := callError(e.Err); {
	case e.WasUp:
		r.cycle = append(r.cycle, time.Since(r.start)-bc.madeAt)
		benchMark("bench gone")
	case ce != nil:
		r.failed++
		if r.firstErr == "" {
			r.firstErr = callFailure(r.dest, ce.Status, ce.Cause).Error
		}
		switch {
		case r.hold: // the rest would fail likewise, and too few would be held anyway
			c.stopBenchLocked(r, "a call to hold failed")
		case r.warmup: // nothing will be measured: no point making the rest
			c.stopBenchLocked(r, "a warm-up call failed")
		}
	case isAfError(e.Err):
		// No address family to call on: not a call that failed.
		r.started--
		c.stopBenchLocked(r, startError(e.Err))
	default:
		// A call that could not even be made: what refused it will
		// refuse the next one too.
		r.failed++
		if r.firstErr == "" {
			r.firstErr = fmt.Sprintf("bench %s: %v", r.dest, e.Err)
		}
		c.stopBenchLocked(r, "a call could not be made")
	}
	c.benchFillLocked(r)
}

// callError is the *clientcore.CallError in err's chain, nil if none: the
// network refused the call.
func callError(err error) *clientcore.CallError {
	if err == nil {
		return nil
	}
	var ce *clientcore.CallError
	if errors.As(err, &ce) {
		return ce
	}
	return nil
}

// isAfError: err says the Core had no usable address family.
func isAfError(err error) bool {
	var ae *clientcore.AfError
	return errors.Is(err, clientcore.ErrShutdown) || errors.Is(err, clientcore.ErrWithdrawn) ||
		errors.Is(err, clientcore.ErrNoAf) || errors.As(err, &ae)
}

// benchMaybeDoneLocked ends r once no more calls will start and none is in
// flight.
func (c *Control) benchMaybeDoneLocked(r *benchRun) {
	if r.inflight > 0 || (r.stop == "" && r.started < r.total) {
		return
	}
	if _, ok := c.benches[r]; !ok {
		return // ended already
	}
	delete(c.benches, r)
	r.elapsed = time.Since(r.start)
	close(r.done)
	c.notifyLocked()
}

// progressLocked says how far r has got.
func (r *benchRun) progressLocked() BenchProgress {
	return BenchProgress{Calls: r.total, Started: r.started, Done: len(r.cycle) + r.failed, Connected: r.connected,
		Failed: r.failed, Seconds: time.Since(r.start).Seconds(), Warmup: r.warmup}
}

// resultLocked summarises an ended bench.
func (r *benchRun) resultLocked() BenchResult {
	res := BenchResult{
		Dest: r.dest, Calls: r.started, Connected: len(r.cycle), Failed: r.failed, Concurrency: r.conc,
		Stopped: r.stop, FirstError: r.firstErr, Seconds: r.elapsed.Seconds(),
		Setup: summarize(r.setup), Cycle: summarize(r.cycle),
	}
	if res.Seconds > 0 {
		res.Rate = float64(res.Connected) / res.Seconds
	}
	return res
}

// summarize sorts ds and returns its mean, percentiles and maximum.
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	us := func(d time.Duration) float64 { return math.Round(float64(d)/100) / 10 }
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	at := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	return Latency{Mean: us(sum / time.Duration(len(ds))), P50: us(at(0.50)), P90: us(at(0.90)), P99: us(at(0.99)), Max: us(ds[len(ds)-1])}
}

// benchMark logs a bench call's progress (what: "bench call", "bench
// connected", "bench gone") in the execution trace, if one is being taken
// (CONDIS_NODE_PROFILE), next to transport/quic's signalling marks: one
// call at a time, the marks between a "bench call" and its "bench
// connected" are that call's setup (docs/performance.md).
func benchMark(what string) {
	if rtrace.IsEnabled() {
		rtrace.Log(context.Background(), what, "")
	}
}
