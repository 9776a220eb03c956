package mcm_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

func TestMain(m *testing.M) {
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	goleak.VerifyTestMain(m)
}

// world is a set of nodes on one network: transport/sim inside a
// testing/synctest bubble (virtual time), or transport/quic on 127.0.0.1
// (wall-clock time).
type world struct {
	t       testing.TB
	net     *sim.Network // nil for QUIC
	timers  uni.Timers
	nodes   []*node
	limit   time.Duration // how long waitFor waits
	closers []func()      // QUIC endpoints
}

// node is one mediator (strict mode) with an MCM and memdrv clients.
type node struct {
	w       *world
	name    string
	m       *ndis.Mediator
	d       *mcm.MCM
	ep      transport.Endpoint
	fab     *memdrv.Fabric // the clients' Loop
	clients []*memdrv.Client

	paused bool // its clients' Loop is not run (their pended answers wait)

	vmu        sync.Mutex
	violations []ndis.Violation
}

// testTimers are UNI timers shortened for tests (T309 keeps its 10 s).
func testTimers() uni.Timers {
	return uni.Timers{T303: 4 * time.Second, T308: 4 * time.Second, T309: 10 * time.Second, T310: 10 * time.Second,
		T313: 4 * time.Second, T316: 10 * time.Second, T317: 5 * time.Second, T322: 4 * time.Second, T360: 4 * time.Second,
		T398: 4 * time.Second, T399: 4 * time.Second}
}

func logger() *slog.Logger {
	if os.Getenv("MCM_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newSimWorld makes a world on transport/sim; call it inside a synctest
// bubble.
func newSimWorld(t testing.TB, cfg sim.Config) *world {
	if cfg.DetectTimeout == 0 {
		cfg.DetectTimeout = time.Second
	}
	return &world{t: t, net: sim.New(cfg), timers: testTimers(), limit: 5 * time.Minute}
}

// addNode attaches a node; adjust changes its MCM configuration.
func (w *world) addNode(name string, adjust func(*mcm.Config)) *node {
	w.t.Helper()
	n := &node{w: w, name: name, fab: memdrv.NewFabric()}
	n.m = ndis.New(ndis.Options{Name: name, OnViolation: n.onViolation})
	cfg := mcm.Config{Name: name, Timers: w.timers, Logger: logger()}
	if adjust != nil {
		adjust(&cfg)
	}
	d, err := mcm.New(n.m, cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	n.d = d
	if w.net != nil {
		ep, err := w.net.Endpoint(name, d.Handler())
		if err != nil {
			w.t.Fatal(err)
		}
		n.ep = ep
		d.Attach(ep)
	}
	w.nodes = append(w.nodes, n)
	return n
}

func (n *node) onViolation(v ndis.Violation) {
	n.vmu.Lock()
	n.violations = append(n.violations, v)
	n.vmu.Unlock()
	n.w.t.Errorf("%s: CoNDIS contract violation %v", n.name, v)
}

// client binds a memdrv client that registers SAPs in the MCM's format;
// it has opened the address family when client returns.
func (n *node) client(name string) *memdrv.Client {
	n.w.t.Helper()
	c, st := memdrv.NewClient(n.m, name, n.d.Adapter(), n.fab)
	if st != ndis.StatusSuccess {
		n.w.t.Fatalf("%s: binding client %s: %v", n.name, name, st)
	}
	c.Sap = q2931.ServiceSap
	n.clients = append(n.clients, c)
	n.w.waitFor(name+" opened the AF", func() bool {
		a := c.Af()
		return a != nil && memdrv.See(c, func() bool { return a.Open.Done })
	})
	if a := c.Af(); memdrv.See(c, func() ndis.Status { return a.Open.Status }) != ndis.StatusSuccess {
		st := memdrv.See(c, func() ndis.Status { return a.Open.Status })
		n.w.t.Fatalf("%s: open AF: %v", name, st)
	}
	return c
}

// listen registers service for c.
func (n *node) listen(c *memdrv.Client, service string) *memdrv.ClientSap {
	n.w.t.Helper()
	s := c.RegisterSap(c.Af(), service)
	n.w.waitFor("SAP "+service+" registered", func() bool { return memdrv.See(c, func() bool { return s.Register.Done }) })
	if st := memdrv.See(c, func() ndis.Status { return s.Register.Status }); st != ndis.StatusSuccess {
		n.w.t.Fatalf("register %s: %v", service, st)
	}
	return s
}

// run runs every node's client Loop.
func (w *world) run() {
	for _, n := range w.nodes {
		if !n.paused {
			n.fab.Run()
		}
	}
}

// pause lets time pass (virtual in a bubble), running the Loops.
func (w *world) pause(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		w.run()
		time.Sleep(min(time.Millisecond, time.Until(end)))
	}
	w.run()
}

// waitFor waits until cond holds, running the clients' Loops.
func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(w.limit)
	for {
		w.run()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for: %s\n%s", what, w.dump())
		}
		time.Sleep(time.Millisecond)
	}
}

func (w *world) dump() string {
	var b strings.Builder
	for _, n := range w.nodes {
		fmt.Fprintf(&b, "== %s\n", n.name)
		for _, c := range n.d.Calls() {
			fmt.Fprintf(&b, "  call %+v\n", c)
		}
		for _, c := range n.clients {
			l := c.Log()
			if len(l) > 20 {
				l = l[len(l)-20:]
			}
			fmt.Fprintf(&b, "  client %s log (last 20): %v\n", c.Name, l)
		}
		s := n.m.Snapshot()
		for _, v := range s.Vcs {
			fmt.Fprintf(&b, "  %s %s %s %s %s pending=%v\n", v.Handle, v.Kind, v.Activation, v.Call, v.Lifecycle, v.Pending)
		}
	}
	return b.String()
}

// close shuts every node down the way a node would: Shutdown withdraws
// the AF, the clients tear down and unbind, the adapter is removed; then
// every mediator must be empty and violation-free, and the network closes.
func (w *world) close() {
	w.t.Helper()
	defer func() {
		for _, n := range w.nodes {
			if k := mcm.IllegalMoves(n.d); k > 0 {
				w.t.Errorf("%s: %d VC transitions callctl.State does not draw (see the log)", n.name, k)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), w.limit)
	defer cancel()
	errs := make(chan error, len(w.nodes))
	for _, n := range w.nodes {
		go func() { errs <- n.d.Shutdown(ctx) }()
	}
	for _, n := range w.nodes {
		for _, c := range n.clients {
			w.waitFor(n.name+"/"+c.Name+" closed its AF", func() bool {
				a := c.Af()
				return a == nil || memdrv.See(c, func() bool { return a.Close.Done && a.Close.Status == ndis.StatusSuccess })
			})
			if st := c.Unbind(); st != ndis.StatusSuccess {
				w.t.Errorf("%s: unbinding %s: %v", n.name, c.Name, st)
			}
		}
	}
	for range w.nodes {
		var err error
		w.waitFor("shutdown", func() bool {
			select {
			case err = <-errs:
				return true
			default:
				return false
			}
		})
		if err != nil {
			w.t.Error(err)
		}
	}
	for _, n := range w.nodes {
		s := n.m.Snapshot()
		if len(s.Adapters) > 0 || len(s.Afs) > 0 || len(s.Saps) > 0 || len(s.Vcs) > 0 {
			w.t.Errorf("%s: mediator not empty after shutdown: %+v", n.name, s)
		}
		if s.Counters.Violations != 0 {
			w.t.Errorf("%s: %d violation(s)", n.name, s.Counters.Violations)
		}
		if n.ep != nil {
			n.ep.Close()
		}
	}
	for _, f := range w.closers {
		f()
	}
	if w.net != nil {
		w.net.Close()
	}
}

// ---- calls ----

func flow(st ndis.ServiceType, rate, bucket, peak, sdu uint32) ndis.Flowspec {
	return ndis.Flowspec{ServiceType: st, TokenRate: rate, TokenBucketSize: bucket, PeakBandwidth: peak,
		Latency: ndis.QoSNotSpecified, DelayVariation: ndis.QoSNotSpecified, MaxSduSize: sdu, MinimumPolicedSize: ndis.QoSNotSpecified}
}

// bestEffort is a UBR flowspec with a peak of 4.8 MB/s.
func bestEffort(sdu uint32) ndis.Flowspec {
	return flow(ndis.ServiceBestEffort, ndis.QoSNotSpecified, ndis.QoSNotSpecified, 4_800_000, sdu)
}

// call makes a call from c and waits for its outcome.
// makeCalls has c make n calls at once, each on a VC of its own with
// params(), and returns their VCs once every MakeCall has completed,
// whatever the outcome.
func (w *world) makeCalls(c *memdrv.Client, n int, params func() *ndis.CallParameters) []*memdrv.ClientVc {
	w.t.Helper()
	vs := make([]*memdrv.ClientVc, n)
	for i := range vs {
		vs[i], _ = c.CreateVc(c.Af())
		c.MakeCall(vs[i], params(), false)
	}
	w.waitFor("every MakeCall completed", func() bool {
		return memdrv.See(c, func() bool {
			for _, v := range vs {
				if !v.Make.Done {
					return false
				}
			}
			return true
		})
	})
	return vs
}

func (w *world) call(c *memdrv.Client, params *ndis.CallParameters) *memdrv.ClientVc {
	w.t.Helper()
	v, st := c.CreateVc(c.Af())
	if st != ndis.StatusSuccess {
		w.t.Fatalf("CreateVc: %v", st)
	}
	c.MakeCall(v, params, false)
	w.waitFor("MakeCall outcome", func() bool { return memdrv.See(c, func() bool { return v.Make.Done }) })
	if r := memdrv.See(c, func() memdrv.Result { return v.Make }); !r.ExactlyOnce() {
		w.t.Errorf("MakeCall not finished exactly once: %v", r)
	}
	return v
}

// connect makes a call and waits until both ends are up; it returns the
// caller's VC and the callee's.
func (w *world) connect(c *memdrv.Client, callee *memdrv.Client, params *ndis.CallParameters) (*memdrv.ClientVc, *memdrv.ClientVc) {
	w.t.Helper()
	before := len(callee.Incoming())
	v := w.call(c, params)
	if r := memdrv.See(c, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusSuccess {
		w.t.Fatalf("MakeCall: %v\n%s", r, w.dump())
	}
	w.waitFor("callee connected", func() bool {
		in := callee.Incoming()
		return len(in) > before && memdrv.See(callee, func() bool { return in[len(in)-1].Connected == 1 })
	})
	return v, callee.LastIncoming()
}

// hangUp closes v's call from c and waits until the other end (of client
// oc) closed too, having been told with status want.
func (w *world) hangUp(c *memdrv.Client, v *memdrv.ClientVc, oc *memdrv.Client, other *memdrv.ClientVc, want ndis.Status) {
	w.t.Helper()
	c.CloseCall(v)
	w.waitFor("close completed", func() bool { return memdrv.See(c, func() bool { return v.Close.Done }) })
	if r := memdrv.See(c, func() memdrv.Result { return v.Close }); r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
		w.t.Errorf("CloseCall: %v", r)
	}
	if other != nil {
		w.closedByNetwork(oc, other, want)
	}
}

// closedByNetwork waits until the network closed v's call (one
// IncomingCloseCall with want) and the client's answering close completed.
func (w *world) closedByNetwork(c *memdrv.Client, v *memdrv.ClientVc, want ndis.Status) {
	w.t.Helper()
	w.waitFor(c.Name+": far end closed", func() bool { return memdrv.See(c, func() bool { return v.Close.Done }) })
	n, st, r := see3(c, func() (int, ndis.Status, memdrv.Result) { return v.CloseIndicated, v.CloseStatus, v.Close })
	if n != 1 || st != want {
		w.t.Errorf("%s: %d incoming close(s), status %v; want 1, %v", c.Name, n, st, want)
	}
	if !r.ExactlyOnce() || r.Status != ndis.StatusSuccess {
		w.t.Errorf("%s: CloseCall answering the incoming close: %v", c.Name, r)
	}
}

func see3[A, B, C any](c *memdrv.Client, f func() (A, B, C)) (A, B, C) {
	var a A
	var b B
	var x C
	c.Locked(func() { a, b, x = f() })
	return a, b, x
}

// deleted waits until v is deleted.
func (w *world) deleted(c *memdrv.Client, v *memdrv.ClientVc) {
	w.t.Helper()
	w.waitFor("VC deleted", func() bool { return memdrv.See(c, func() bool { return v.Deleted }) })
}

// send sends packets on v from c, waits for their completions and returns
// their statuses.
func (w *world) send(c *memdrv.Client, v *memdrv.ClientVc, packets ...[]byte) []ndis.Status {
	w.t.Helper()
	before := memdrv.See(c, func() int { return len(v.SendStatus) })
	c.Send(v, packets...)
	w.waitFor("sends completed", func() bool { return memdrv.See(c, func() int { return len(v.SendStatus) }) >= before+len(packets) })
	return memdrv.See(c, func() []ndis.Status { return append([]ndis.Status(nil), v.SendStatus[before:]...) })
}

// received waits until v has received n packets and returns them.
func (w *world) received(c *memdrv.Client, v *memdrv.ClientVc, n int) [][]byte {
	w.t.Helper()
	w.waitFor(fmt.Sprintf("%s received %d packet(s)", c.Name, n), func() bool { return len(v.RxData()) >= n })
	return v.RxData()
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

func timeNow() time.Time { return time.Now() }
