package clientcore

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// maxVCSize is what a VC may take inline (issue 12 item 3: a node holds
// one per call; it was 408 octets before the rarely used state went into
// vcMore). Raise it only with a reason.
const maxVCSize = 144

// keepListen is a ListenHandler that accepts every call and keeps its VC.
type keepListen struct {
	mu  sync.Mutex
	vcs []*VC
}

func (l *keepListen) Registered(*SAP, error) {}
func (l *keepListen) Offered(_ *SAP, o *Offer) Handler {
	l.mu.Lock()
	l.vcs = append(l.vcs, o.VC)
	l.mu.Unlock()
	return NopHandler{}
}
func (l *keepListen) Ended(*SAP, Reason) {}

// TestHeldVCSmall: a VC is at most maxVCSize octets, and a connected
// point-to-point call, made or taken, allocates none of the rarely used
// part; the accessors that used to read fields of their own still say
// the same.
func TestHeldVCSmall(t *testing.T) {
	if s := unsafe.Sizeof(VC{}); s > maxVCSize {
		t.Errorf("a VC takes %d octets inline, more than %d", s, maxVCSize)
	}
	c := startCore(t, memdrv.Immediate)
	l := &keepListen{}
	if _, err := c.Listen(context.Background(), "held", l); err != nil {
		t.Fatal(err)
	}
	out, err := c.Call(context.Background(), "peer/held", CallOptions{Reliable: true}, NopHandler{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.await(timeout(t), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.vcs) == 1 && l.vcs[0].phase == PhaseConnected
	}); err != nil {
		t.Fatal(err)
	}
	in := l.vcs[0]
	c.mu.Lock()
	outMore, inMore := out.more, in.more
	c.mu.Unlock()
	if outMore != nil || inMore != nil {
		t.Errorf("connected calls allocated their rarely used part: outgoing %v, incoming %v", outMore != nil, inMore != nil)
	}
	for _, tc := range []struct {
		what                       string
		got, want                  string
		gotIncoming, wantIncoming  bool
		gotReliable, wantReliable  bool
		gotFirst                   *Party
		gotMultipoint, wantNoParty bool
	}{
		{"outgoing", fmt.Sprintf("%s|%s|%s", out.Peer(), out.Service(), out.Dest()), "peer|held|peer/held",
			out.Incoming(), false, out.Reliable(), true, out.FirstParty(), out.Multipoint(), true},
		{"incoming", fmt.Sprintf("%s|%s|%s", in.Peer(), in.Service(), in.Dest()), "local|held|",
			in.Incoming(), true, in.Reliable(), false, in.FirstParty(), in.Multipoint(), true},
	} {
		if tc.got != tc.want || tc.gotIncoming != tc.wantIncoming || tc.gotReliable != tc.wantReliable || tc.gotFirst != nil || tc.gotMultipoint {
			t.Errorf("%s: peer|service|dest %q, want %q; incoming %v reliable %v first %v multipoint %v",
				tc.what, tc.got, tc.want, tc.gotIncoming, tc.gotReliable, tc.gotFirst, tc.gotMultipoint)
		}
	}
	for _, v := range []*VC{out, in} {
		h := v.Handle()
		if h == nil || v.Name() != h.String() || c.VC(v.Name()) != v {
			t.Errorf("VC named %q, its handle %v; looked up: %p, want %p", v.Name(), h, c.VC(v.Name()), v)
		}
	}
	// A destination without a node: the whole of it is the service. (Not
	// its name: the worker may have created the VC already.)
	v := c.StartCall("held", CallOptions{}, NopHandler{})
	if v.Peer() != "" || v.Service() != "held" || v.Dest() != "held" {
		t.Errorf("call to %q: peer %q service %q dest %q", "held", v.Peer(), v.Service(), v.Dest())
	}
	v.Close(ReasonLocal, nil)
}

// TestEndInputLinger: after EndInput(linger) the call is closed once
// nothing was received for linger, counted from the last SDU received
// after the end of input, and at the latest 10 × linger after it (virtual
// time). Receives before the end of input do not count.
func TestEndInputLinger(t *testing.T) {
	const linger = 100 * time.Millisecond
	for _, tc := range []struct {
		name  string
		sends []time.Duration // when the far end sends, after the end of input
		want  time.Duration   // when the call is closed, after the end of input
	}{
		{"quiet", nil, linger},
		{"one SDU", []time.Duration{50 * time.Millisecond}, 150 * time.Millisecond},
		{"two SDUs", []time.Duration{30 * time.Millisecond, 120 * time.Millisecond}, 220 * time.Millisecond},
		{"never quiet", everyUntil(50*time.Millisecond, 2*time.Second), 10 * linger},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := startCore(t, memdrv.Immediate)
				l := &keepListen{}
				if _, err := c.Listen(context.Background(), "talk", l); err != nil {
					t.Fatal(err)
				}
				var closedAt time.Time
				h := &closeClock{at: &closedAt}
				out, err := c.Call(context.Background(), "talk", CallOptions{}, h)
				if err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				in := l.vcs[0]
				if err := in.Send([]byte("before")); err != nil { // before the end of input: does not count
					t.Fatal(err)
				}
				time.Sleep(linger / 2)
				synctest.Wait()
				start := time.Now()
				out.EndInput(linger)
				for _, at := range tc.sends {
					time.Sleep(time.Until(start.Add(at)))
					synctest.Wait()
					c.mu.Lock()
					up := out.phase == PhaseConnected
					c.mu.Unlock()
					if !up {
						break
					}
					in.Send([]byte("more")) // refused once the call is going
					synctest.Wait()
				}
				time.Sleep(time.Until(start.Add(20 * linger)))
				synctest.Wait()
				c.mu.Lock()
				got := closedAt.Sub(start)
				c.mu.Unlock()
				if closedAt.IsZero() || got != tc.want {
					t.Errorf("closed %v after the end of input, want %v", got, tc.want)
				}
			})
		})
	}
}

// everyUntil is every step from step to end.
func everyUntil(step, end time.Duration) []time.Duration {
	var ds []time.Duration
	for d := step; d < end; d += step {
		ds = append(ds, d)
	}
	return ds
}

// closeClock records when its call was closed (the Core's lock held).
type closeClock struct {
	NopHandler
	at *time.Time
}

func (h *closeClock) Closed(*VC, End) { *h.at = time.Now() }

// BenchmarkHeldCalls holds calls on one Core over the in-memory MCM, each
// made and taken by the Core (two VCs per call), and reports the live heap
// per held call: both VCs, the Core's, the mediator's and the MCM's.
//
//	go test -run '^$' -bench HeldCalls -benchtime 20000x ./clientcore
func BenchmarkHeldCalls(b *testing.B) {
	m := ndis.New(ndis.Options{Name: b.Name()})
	fab := memdrv.NewFabric()
	mc, st := memdrv.NewMCM(m, "mcm", fab)
	if st != ndis.StatusSuccess {
		b.Fatalf("NewMCM: %v", st)
	}
	c, err := New(context.Background(), &memCM{mcm: mc, fab: fab}, Options{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			b.Errorf("Shutdown: %v", err)
		}
		fab.Run()
	}()
	l := &keepListen{}
	if _, err := c.Listen(context.Background(), "held", l); err != nil {
		b.Fatal(err)
	}
	before := liveHeap()
	vcs := make([]*VC, 0, b.N)
	for range b.N {
		vcs = append(vcs, c.StartCall("peer/held", CallOptions{}, NopHandler{}))
	}
	if err := c.await(context.Background(), func() bool {
		for _, v := range vcs[len(vcs)-1:] {
			if v.phase != PhaseConnected {
				return false
			}
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.vcs) == b.N
	}); err != nil {
		b.Fatal(err)
	}
	after := liveHeap()
	b.ReportMetric(float64(after-before)/float64(b.N), "B/held-call")
	runtime.KeepAlive(vcs)
}

// liveHeap is the Go heap in use after a garbage collection, in octets.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestFlowsShared: calls with the same flowspecs share one read-only copy
// (a held call costs no Flows of its own); a call with other flowspecs,
// or a QoS change, gets its own, and the others' stay as they were.
func TestFlowsShared(t *testing.T) {
	c := startCore(t, memdrv.Immediate)
	l := &keepListen{}
	if _, err := c.Listen(context.Background(), "flows", l); err != nil {
		t.Fatal(err)
	}
	tx := ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, MaxSduSize: 1400, PeakBandwidth: 1000}
	other := tx
	other.MaxSduSize = 9180
	call := func(tx ndis.Flowspec) *VC {
		v, err := c.Call(context.Background(), "flows", CallOptions{Tx: tx, Rx: tx}, NopHandler{})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a, b := call(tx), call(tx)
	fa, fb := a.State().Flows, b.State().Flows
	c.mu.Lock()
	shared := a.flows == b.flows
	c.mu.Unlock()
	if !shared || fa == nil || *fa != *fb || fa.Tx.MaxSduSize != 1400 {
		t.Errorf("two calls with the same flowspecs: shared %v, flows %+v and %+v", shared, fa, fb)
	}
	d := call(other)
	done := make(chan error, 1)
	b.ModifyQoS(other, other, func(_ *Flows, err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a.flows == d.flows || a.flows == b.flows || a.flows.Tx.MaxSduSize != 1400 || a.maxSDU != 1400 ||
		b.flows.Tx.MaxSduSize != 9180 || d.flows.Tx.MaxSduSize != 9180 {
		t.Errorf("after a call with other flowspecs and a QoS change: a %+v (max %d), b %+v, d %+v", a.flows.Tx, a.maxSDU, b.flows.Tx, d.flows.Tx)
	}
}

// TestVCList: the Core's VCs are a slice with each VC's index in it:
// removing one (any one, twice, or one never added) leaves exactly the
// others, each at its index, and most of the memory goes when most of the
// VCs do.
func TestVCList(t *testing.T) {
	c := &Core{}
	var all []*VC
	for range 1000 {
		v := &VC{}
		all = append(all, v)
		c.addVCLocked(v)
	}
	stranger := &VC{} // never added: at 0, like the first
	c.removeVCLocked(stranger)
	want := map[*VC]bool{}
	for i, v := range all {
		if i%10 == 3 {
			want[v] = true
			continue
		}
		c.removeVCLocked(v)
		c.removeVCLocked(v)
	}
	if len(c.vcs) != len(want) || cap(c.vcs) > 4*len(want) {
		t.Fatalf("%d VCs (capacity %d) left, want %d", len(c.vcs), cap(c.vcs), len(want))
	}
	for i, v := range c.vcs {
		if !want[v] || int(v.at) != i {
			t.Errorf("VC %p at %d says %d; kept %v", v, i, v.at, want[v])
		}
		delete(want, v)
	}
	if len(want) != 0 {
		t.Errorf("%d VCs lost", len(want))
	}
}

// TestQueuingCostsNoGarbage: queuing a call for the worker allocates only
// its VC (the flowspecs asked for are shared with the calls before that
// asked for the same), and queuing a VC's close or progress nothing: a
// node does each for every call. (The worker does not run here: the
// queue only grows.)
func TestQueuingCostsNoGarbage(t *testing.T) {
	c := &Core{wake: make(chan struct{}, 1)}
	o := CallOptions{Tx: ndis.Flowspec{MaxSduSize: 1400}, Rx: ndis.Flowspec{MaxSduSize: 1400}}
	var v *VC
	if n := testing.AllocsPerRun(1000, func() { v = c.StartCall("peer/svc", o, NopHandler{}) }); n != 1 {
		t.Errorf("StartCall: %v allocations, want 1 (the VC)", n)
	}
	if n := testing.AllocsPerRun(1000, func() { v.Close(ReasonLocal, nil) }); n != 0 {
		t.Errorf("Close: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { c.postProgress(v) }); n != 0 {
		t.Errorf("postProgress: %v allocations, want 0", n)
	}
	var fl []*Flows
	for _, w := range c.queue {
		if w.op == workMakeCall {
			fl = append(fl, w.fl)
		}
	}
	if len(fl) < 2 || fl[0] != fl[len(fl)-1] || *fl[0] != (Flows{o.Tx, o.Rx}) {
		t.Errorf("%d calls queued; the first asks for %+v", len(fl), fl[0])
	}
}

// endListen is a keepListen that records when its SAP ended, and how
// many of the SAP's calls the Core still held then.
type endListen struct {
	keepListen
	ended     int
	callsLeft int
	why       Reason
}

func (l *endListen) Ended(s *SAP, why Reason) {
	l.ended++
	l.why = why
	l.callsLeft = 0
	for _, v := range s.c.vcs {
		if v.sap == s {
			l.callsLeft++
		}
	}
}

// TestSAPEndsWithItsCalls: closing a SAP closes exactly its calls (not
// another SAP's) and it ends once they are gone; deregistering one leaves
// its calls up, and it ends once they are closed.
func TestSAPEndsWithItsCalls(t *testing.T) {
	for _, closeCalls := range []bool{true, false} {
		t.Run(fmt.Sprintf("close calls %v", closeCalls), func(t *testing.T) {
			c := startCore(t, memdrv.Pend)
			l, other := &endListen{}, &endListen{}
			sap, err := c.Listen(context.Background(), "mine", l)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Listen(context.Background(), "other", other); err != nil {
				t.Fatal(err)
			}
			var mine []*recorder
			var mineVCs []*VC
			for range 3 {
				r := newRecorder()
				v, err := c.Call(context.Background(), "mine", CallOptions{}, r)
				if err != nil {
					t.Fatal(err)
				}
				mine, mineVCs = append(mine, r), append(mineVCs, v)
			}
			r := newRecorder()
			if _, err := c.Call(context.Background(), "other", CallOptions{}, r); err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			if sap.calls != 3 {
				t.Errorf("the SAP counts %d calls, want 3", sap.calls)
			}
			c.mu.Unlock()
			if closeCalls {
				sap.Close(ReasonLocal)
			} else {
				sap.Deregister()
				checked := make(chan struct{})
				c.Defer(func() { // after the deregistration was issued
					defer close(checked)
					c.mu.Lock()
					defer c.mu.Unlock()
					up := 0
					for _, v := range mineVCs {
						if v.phase == PhaseConnected && !v.wantClose {
							up++
						}
					}
					if l.ended != 0 || up != 3 {
						t.Errorf("deregistered: ended %d, %d of its 3 calls up; want them all up and the SAP not ended", l.ended, up)
					}
				})
				<-checked
				for _, v := range mineVCs {
					v.Close(ReasonLocal, nil)
				}
			}
			if err := c.await(timeout(t), func() bool {
				for _, r := range mine {
					if len(r.closed) == 0 {
						return false
					}
				}
				return l.ended > 0
			}); err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if l.ended != 1 || l.callsLeft != 0 || sap.calls != 0 {
				t.Errorf("ended %d times with %d of its calls left (counted %d)", l.ended, l.callsLeft, sap.calls)
			}
			for i, r := range mine {
				if len(r.closed) != 1 {
					t.Errorf("call %d closed %d times", i, len(r.closed))
				}
			}
			if len(r.closed) != 0 || other.ended != 0 {
				t.Errorf("the other SAP's call closed %d times, the SAP ended %d", len(r.closed), other.ended)
			}
		})
	}
}

// TestPeerAddrShared: calls taken from the same peer on the same service
// share their "peer/service" string; any other pair gets its own, right.
func TestPeerAddrShared(t *testing.T) {
	c := &Core{}
	a := c.peerAddrLocked("alpha", "echo")
	b := c.peerAddrLocked("alpha", "echo")
	if a != "alpha/echo" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Errorf("%q and %q: not one string", a, b)
	}
	for _, tc := range []struct{ peer, service, want string }{
		{"alph", "a/echo", "alph/a/echo"},
		{"alpha", "echo", "alpha/echo"},
		{"alphb", "echo", "alphb/echo"},
		{"alpha", "echp", "alpha/echp"},
		{"", "echo", "/echo"},
		{"alpha", "ech", "alpha/ech"},
	} {
		got := c.peerAddrLocked(tc.peer, tc.service)
		if got != tc.want {
			t.Errorf("peer %q service %q: %q, want %q", tc.peer, tc.service, got, tc.want)
		}
		v := &VC{addr: got, cut: int32(len(tc.peer)), kind: vcIncoming}
		if v.Peer() != tc.peer || v.Service() != tc.service {
			t.Errorf("peer %q service %q: the VC says %q and %q", tc.peer, tc.service, v.Peer(), v.Service())
		}
	}
}
