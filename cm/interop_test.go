package cm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/cm"
	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

func TestMain(m *testing.M) {
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	goleak.VerifyTestMain(m)
}

// testTimers are UNI timers shortened for tests.
func testTimers() uni.Timers {
	return uni.Timers{T303: 4 * time.Second, T308: 4 * time.Second, T309: 10 * time.Second, T310: 10 * time.Second,
		T313: 4 * time.Second, T316: 10 * time.Second, T317: 5 * time.Second, T322: 4 * time.Second, T360: 4 * time.Second,
		T398: 4 * time.Second, T399: 4 * time.Second}
}

// q2931CM is what clientcore needs of either call manager: the adapter,
// and the Q.2931 encodings (package q2931).
type q2931CM struct {
	adapter *ndis.Adapter
	cause   func(*ndis.Vc) (uni.Cause, bool)
}

func (a q2931CM) Adapter() *ndis.Adapter            { return a.adapter }
func (a q2931CM) AddressFamily() ndis.AddressFamily { return q2931.AF }
func (a q2931CM) CallParams(dest string, tx, rx ndis.Flowspec, reliable bool) (*ndis.CallParameters, error) {
	for i := range dest {
		if dest[i] == '/' {
			return q2931.CallParams(dest[:i], dest[i+1:], tx, rx, reliable), nil
		}
	}
	return nil, fmt.Errorf("%q: want NODE/SERVICE", dest)
}
func (a q2931CM) ServiceSap(service string) (*ndis.CoSap, error) {
	return q2931.ServiceSap(service), nil
}
func (a q2931CM) Caller(p *ndis.CallParameters) string {
	n, _ := q2931.CallingNode(p)
	return n
}
func (a q2931CM) Cause(vc *ndis.Vc, st ndis.Status) uni.Cause {
	if c, ok := a.cause(vc); ok && q2931.StatusForCause(c) == st {
		return c
	}
	return q2931.CauseForStatus(st)
}

// host is one node: a mediator with either the split topology (miniport +
// cm) or the integrated one (mcm), and a clientcore client.
type host struct {
	t      *testing.T
	name   string
	m      *ndis.Mediator
	mp     *miniport.Miniport // split
	c      *cm.CM             // split
	d      *mcm.MCM           // integrated
	ep     transport.Endpoint // the node's transport endpoint
	client *clientcore.Core
}

func (h *host) split() bool { return h.c != nil }

func newHost(t *testing.T, net *sim.Network, name string, split bool) *host {
	return newHostWith(t, net, name, split, nil, miniport.Config{})
}

// newHostWith is newHost with a trace of the mediator's events and the
// miniport's configuration (split).
func newHostWith(t *testing.T, net *sim.Network, name string, split bool, trace func(ndis.Event), mpc miniport.Config) *host {
	t.Helper()
	return newHostOpts(t, net, name, hostOpts{split: split, trace: trace, mpc: mpc})
}

// hostOpts are what a test may set of a host.
type hostOpts struct {
	split       bool
	trace       func(ndis.Event)
	mpc         miniport.Config // split
	maxRate     uint32          // the call manager's admission limit (0: none)
	refusalRate int             // the split call manager's Config.RefusalRate (0: its default)
	tracer      trace.Tracer    // the split call manager's typed events
}

// newHostOpts makes a host as opts say.
func newHostOpts(t *testing.T, net *sim.Network, name string, opts hostOpts) *host {
	t.Helper()
	split, trace, mpc := opts.split, opts.trace, opts.mpc
	h := &host{t: t, name: name}
	h.m = ndis.New(ndis.Options{Name: name, Trace: trace, OnViolation: func(v ndis.Violation) {
		t.Errorf("%s: CoNDIS contract violation %v", name, v)
	}})
	var ccm q2931CM
	if split {
		mpc.Name = name + "-nic"
		mp, st := miniport.New(h.m, mpc)
		if st != ndis.StatusSuccess {
			t.Fatalf("%s: miniport.New: %v", name, st)
		}
		ep, err := net.Endpoint(name, mp.Handler())
		if err != nil {
			t.Fatal(err)
		}
		mp.Attach(ep)
		h.ep = ep
		c, err := cm.New(h.m, cm.Config{Name: name, Adapter: mp.Adapter(), Timers: testTimers(), Policy: callctl.Policy{MaxRate: opts.maxRate},
			RefusalRate: opts.refusalRate, Tracer: opts.tracer})
		if err != nil {
			t.Fatal(err)
		}
		h.mp, h.c = mp, c
		ccm = q2931CM{adapter: mp.Adapter(), cause: c.Cause}
	} else {
		d, err := mcm.New(h.m, mcm.Config{Name: name, Timers: testTimers(), Policy: callctl.Policy{MaxRate: opts.maxRate}})
		if err != nil {
			t.Fatal(err)
		}
		ep, err := net.Endpoint(name, d.Handler())
		if err != nil {
			t.Fatal(err)
		}
		d.Attach(ep)
		h.d, h.ep = d, ep
		ccm = q2931CM{adapter: d.Adapter(), cause: d.Cause}
	}
	client, err := clientcore.New(context.Background(), ccm, clientcore.Options{Name: name + "-app"})
	if err != nil {
		t.Fatal(err)
	}
	h.client = client
	return h
}

// finish shuts the host down and checks that nothing is left in its
// mediator and that no rule was broken.
func (h *host) finish() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.client.Shutdown(ctx); err != nil {
		h.t.Errorf("%s: client shutdown: %v", h.name, err)
	}
	if h.split() {
		if err := h.c.Shutdown(ctx); err != nil {
			h.t.Errorf("%s: cm shutdown: %v", h.name, err)
		}
		if n := h.c.IllegalMoves(); n != 0 {
			h.t.Errorf("%s: %d VC moves callctl.State does not draw", h.name, n)
		}
		h.mp.Close()
		if st := h.mp.Halt(); st != ndis.StatusSuccess {
			h.t.Errorf("%s: miniport Halt: %v", h.name, st)
		}
	} else if err := h.d.Shutdown(ctx); err != nil {
		h.t.Errorf("%s: mcm shutdown: %v", h.name, err)
	}
	if s := h.m.Snapshot(); !s.Empty() || len(s.Adapters) != 0 {
		h.t.Errorf("%s: left in the mediator:\n%v", h.name, s)
	}
	if vs := h.m.Violations(); len(vs) != 0 {
		h.t.Errorf("%s: %d contract violation(s): %v", h.name, len(vs), vs)
	}
}

// callVCs are the VCs in h's mediator that a client's calls use (every VC
// with an AF: the cm's signalling VCs have none).
func (h *host) callVCs() []ndis.VcInfo {
	var out []ndis.VcInfo
	for _, v := range h.m.Snapshot().Vcs {
		if v.Af != "" {
			out = append(out, v)
		}
	}
	return out
}

// recorder is a VC handler that records what happens.
type recorder struct {
	clientcore.NopHandler
	mu     sync.Mutex
	up     bool
	rx     [][]byte
	ends   []clientcore.End
	qos    []clientcore.Flows    // QoSChanged, in order
	drops  []clientcore.PartyEnd // PartyDropped, in order
	closed chan struct{}
}

func (r *recorder) QoSChanged(_ *clientcore.VC, f clientcore.Flows) {
	r.mu.Lock()
	r.qos = append(r.qos, f)
	r.mu.Unlock()
}

func (r *recorder) PartyDropped(_ *clientcore.Party, e clientcore.PartyEnd) {
	r.mu.Lock()
	r.drops = append(r.drops, e)
	r.mu.Unlock()
}

func newRecorder() *recorder { return &recorder{closed: make(chan struct{})} }

func (r *recorder) Connected(*clientcore.VC, *clientcore.Flows) {
	r.mu.Lock()
	r.up = true
	r.mu.Unlock()
}

func (r *recorder) Received(_ *clientcore.VC, sdus [][]byte) {
	r.mu.Lock()
	r.rx = append(r.rx, sdus...)
	r.mu.Unlock()
}

func (r *recorder) Closed(_ *clientcore.VC, e clientcore.End) {
	r.mu.Lock()
	r.ends = append(r.ends, e)
	if len(r.ends) == 1 {
		close(r.closed)
	}
	r.mu.Unlock()
}

func (r *recorder) received() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.rx))
	for i, b := range r.rx {
		out[i] = string(b)
	}
	return out
}

// listener accepts the calls offered on a SAP (or refuses them all) and
// hands their VCs over.
type listener struct {
	refuse  bool
	offered chan *clientcore.VC
	rec     chan *recorder
}

func newListener(refuse bool) *listener {
	return &listener{refuse: refuse, offered: make(chan *clientcore.VC, 4), rec: make(chan *recorder, 4)}
}

func (l *listener) Registered(*clientcore.SAP, error)        {}
func (l *listener) Ended(*clientcore.SAP, clientcore.Reason) {}
func (l *listener) Offered(_ *clientcore.SAP, o *clientcore.Offer) clientcore.Handler {
	if l.refuse {
		return nil
	}
	r := newRecorder()
	l.offered <- o.VC
	l.rec <- r
	return r
}

// waitUntil waits (virtual time) until cond holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
	}
}

func closeAndWait(t *testing.T, v *clientcore.VC) ndis.Status {
	t.Helper()
	done := make(chan ndis.Status, 1)
	v.Close(clientcore.ReasonLocal, func(st ndis.Status) { done <- st })
	select {
	case st := <-done:
		return st
	case <-time.After(time.Minute):
		t.Fatalf("close of %s did not complete", v.Name())
		return 0
	}
}

// pointToPoint calls from caller to callee's "svc", exchanges data both
// ways, closes from the caller or the callee and checks both ends saw
// exactly one end of the call, and that no call VC is left.
func pointToPoint(t *testing.T, caller, callee *host, svc string, callerCloses bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := newListener(false)
	sap, err := callee.client.Listen(ctx, svc, l)
	if err != nil {
		t.Fatalf("%s: listen %s: %v", callee.name, svc, err)
	}
	rec := newRecorder()
	out, err := caller.client.Call(ctx, callee.name+"/"+svc, clientcore.CallOptions{Tx: flow(), Rx: flow()}, rec)
	if err != nil {
		t.Fatalf("%s -> %s: call: %v", caller.name, callee.name, err)
	}
	in, inRec := <-l.offered, <-l.rec
	waitUntil(t, "the callee's call up", func() bool { inRec.mu.Lock(); defer inRec.mu.Unlock(); return inRec.up })
	if err := out.Send([]byte("ping-1"), []byte("ping-2")); err != nil {
		t.Fatalf("caller send: %v", err)
	}
	if err := in.Send([]byte("pong")); err != nil {
		t.Fatalf("callee send: %v", err)
	}
	waitUntil(t, "data both ways", func() bool { return len(inRec.received()) == 2 && len(rec.received()) == 1 })
	if got := inRec.received(); got[0] != "ping-1" || got[1] != "ping-2" {
		t.Errorf("callee received %q, want [ping-1 ping-2]", got)
	}
	if got := rec.received(); got[0] != "pong" {
		t.Errorf("caller received %q, want [pong]", got)
	}
	closer, other, closerRec, otherRec := out, in, rec, inRec
	if !callerCloses {
		closer, other, closerRec, otherRec = in, out, inRec, rec
	}
	if st := closeAndWait(t, closer); st != ndis.StatusSuccess {
		t.Errorf("close: %v", st)
	}
	select {
	case <-otherRec.closed:
	case <-time.After(time.Minute):
		t.Fatalf("the far end (%s) never saw the close", other.Name())
	}
	<-closerRec.closed
	for _, r := range []*recorder{closerRec, otherRec} {
		r.mu.Lock()
		if len(r.ends) != 1 || !r.ends[0].WasUp {
			t.Errorf("ends %+v, want one, of a call that was up", r.ends)
		}
		r.mu.Unlock()
	}
	otherRec.mu.Lock()
	if e := otherRec.ends[0]; e.Reason != clientcore.ReasonRemote || e.Status != ndis.StatusSuccess {
		t.Errorf("far end's end: reason %v status %v, want remote, SUCCESS (normal clearing)", e.Reason, e.Status)
	}
	otherRec.mu.Unlock()
	sap.Close(clientcore.ReasonLocal)
	for _, h := range []*host{caller, callee} {
		waitUntil(t, h.name+": no call VC left", func() bool { return len(h.callVCs()) == 0 })
	}
}

// refusal calls a SAP whose client refuses every call: the MakeCall fails
// with NDIS_STATUS_FAILURE, cause 21 (call rejected).
func refusal(t *testing.T, caller, callee *host, svc string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sap, err := callee.client.Listen(ctx, svc, newListener(true))
	if err != nil {
		t.Fatalf("%s: listen: %v", callee.name, err)
	}
	rec := newRecorder()
	_, err = caller.client.Call(ctx, callee.name+"/"+svc, clientcore.CallOptions{Tx: flow(), Rx: flow()}, rec)
	var ce *clientcore.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("%s -> %s refused: error %v, want a *clientcore.CallError", caller.name, callee.name, err)
	}
	if ce.Status != ndis.StatusFailure || ce.Cause != uni.CauseCallRejected {
		t.Errorf("%s -> %s refused: status %v cause %d, want FAILURE, cause 21", caller.name, callee.name, ce.Status, ce.Cause)
	}
	sap.Close(clientcore.ReasonLocal)
	for _, h := range []*host{caller, callee} {
		waitUntil(t, h.name+": no call VC left", func() bool { return len(h.callVCs()) == 0 })
	}
}

func flow() ndis.Flowspec {
	return ndis.Flowspec{TokenRate: 1 << 20, TokenBucketSize: 1 << 16, PeakBandwidth: 1 << 21, MaxSduSize: 1024, ServiceType: ndis.ServiceBestEffort}
}

// matrix runs the point-to-point cases and refusals between a and b.
func matrix(t *testing.T, aSplit, bSplit bool) {
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{DetectTimeout: time.Second})
		defer net.Close()
		a, b := newHost(t, net, "alpha", aSplit), newHost(t, net, "beta", bSplit)
		pointToPoint(t, a, b, "echo1", true)
		pointToPoint(t, a, b, "echo2", false)
		pointToPoint(t, b, a, "echo3", true)
		pointToPoint(t, b, a, "echo4", false)
		refusal(t, a, b, "nope1")
		refusal(t, b, a, "nope2")
		a.finish()
		b.finish()
	})
}

// TestSplitIntegrated: a split node (miniport + cm) and an integrated one
// (mcm) call each other, exchange data, close from either side and
// refuse; nothing is left and no rule is broken.
func TestSplitIntegrated(t *testing.T) { matrix(t, true, false) }

// TestSplitSplit: the same between two split nodes.
func TestSplitSplit(t *testing.T) { matrix(t, true, true) }
