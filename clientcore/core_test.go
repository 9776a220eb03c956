package clientcore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memCM is the in-memory MCM as a CallManager: every destination is a
// service of the same fabric.
type memCM struct {
	mcm *memdrv.MCM
	fab *memdrv.Fabric
}

func (m *memCM) Adapter() *ndis.Adapter            { return m.mcm.Adapter() }
func (m *memCM) AddressFamily() ndis.AddressFamily { return memdrv.AF }
func (m *memCM) CallParams(dest string, tx, rx ndis.Flowspec, reliable bool) (*ndis.CallParameters, error) {
	if dest == "" {
		return nil, errors.New("empty destination")
	}
	if _, svc, ok := strings.Cut(dest, "/"); ok {
		dest = svc // "node/service": the fabric is one node
	}
	return memdrv.CallParams(dest, tx, rx), nil
}
func (m *memCM) ServiceSap(s string) (*ndis.CoSap, error)   { return memdrv.ServiceSap(s), nil }
func (m *memCM) Caller(*ndis.CallParameters) string         { return "local" }
func (m *memCM) Cause(_ *ndis.Vc, st ndis.Status) uni.Cause { return q2931.CauseForStatus(st) }
func (m *memCM) RunDeferred()                               { m.fab.Run() }

// startCore is a Core on a strict mediator with the in-memory MCM in mode.
func startCore(t *testing.T, mode memdrv.Mode) *Core {
	t.Helper()
	return startCoreWith(t, mode, func(m *memCM) CallManager { return m })
}

// startCoreWith is startCore with the call manager wrap makes of memCM.
func startCoreWith(t *testing.T, mode memdrv.Mode, wrap func(*memCM) CallManager) *Core {
	t.Helper()
	m := ndis.New(ndis.Options{Name: t.Name(), OnViolation: ndis.FailOn(t)})
	fab := memdrv.NewFabric()
	mc, st := memdrv.NewMCM(m, "mcm", fab)
	if st != ndis.StatusSuccess {
		t.Fatalf("NewMCM: %v", st)
	}
	mc.SetMode(mode)
	c, err := New(context.Background(), wrap(&memCM{mcm: mc, fab: fab}), Options{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v\n%v", err, c)
		}
		fab.Run()
		if s := m.Snapshot(); !s.Empty() {
			t.Errorf("the mediator still holds objects:\n%v", s)
		}
	})
	return c
}

// timeout is a context that ends after 5 s, with the test.
func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var modes = []memdrv.Mode{memdrv.Immediate, memdrv.Pend, memdrv.PendEarly}

// recorder is a Handler that records what it is told.
type recorder struct {
	connected int
	closed    []End
	got       chan []byte
	sent      chan int
}

func newRecorder() *recorder { return &recorder{got: make(chan []byte, 64), sent: make(chan int, 64)} }

func (r *recorder) Connected(*VC, *Flows) { r.connected++ }
func (r *recorder) Received(_ *VC, sdus [][]byte) {
	for _, d := range sdus {
		r.got <- d
	}
}
func (r *recorder) SendsCompleted(_ *VC, n int)   { r.sent <- n }
func (r *recorder) QoSChanged(*VC, Flows)         {}
func (r *recorder) PartyDropped(*Party, PartyEnd) {}
func (r *recorder) Closed(_ *VC, e End)           { r.closed = append(r.closed, e) }

// echoListen is a ListenHandler whose calls echo what they receive.
type echoListen struct{ ended int }

type echoVC struct{ NopHandler }

func (echoVC) Received(v *VC, sdus [][]byte) { v.c.Defer(func() { v.Send(sdus...) }) }

func (l *echoListen) Registered(*SAP, error)       {}
func (l *echoListen) Offered(*SAP, *Offer) Handler { return echoVC{} }
func (l *echoListen) Ended(*SAP, Reason)           { l.ended++ }

// TestCallEchoClose: a call to an echo SAP connects once, carries SDUs
// both ways, and ends with exactly one Closed saying it was closed
// locally, with the sends counted.
func TestCallEchoClose(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			c := startCore(t, mode)
			l := &echoListen{}
			if _, err := c.Listen(context.Background(), "echo", l); err != nil {
				t.Fatal(err)
			}
			r := newRecorder()
			v, err := c.Call(context.Background(), "echo", CallOptions{}, r)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Send([]byte("one"), []byte("two")); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"one", "two"} {
				if got := <-r.got; string(got) != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			done := make(chan ndis.Status, 1)
			v.Close(ReasonLocal, func(st ndis.Status) { done <- st })
			if st := <-done; st != ndis.StatusSuccess {
				t.Fatalf("close: %v", st)
			}
			if err := c.await(timeout(t), func() bool { return len(r.closed) > 0 }); err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if r.connected != 1 || len(r.closed) != 1 || r.closed[0].Reason != ReasonLocal || !r.closed[0].WasUp || r.closed[0].Sent != 2 {
				t.Errorf("connected %d, closed %+v", r.connected, r.closed)
			}
		})
	}
}

// TestCallRefused: a call to a service nobody registered fails with a
// *CallError carrying the status and cause, and its handler is told once.
func TestCallRefused(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			c := startCore(t, mode)
			r := newRecorder()
			_, err := c.Call(context.Background(), "nosuch", CallOptions{}, r)
			var ce *CallError
			if !errors.As(err, &ce) || ce.Status != ndis.StatusInvalidSap || ce.Cause != uni.CauseIncompatibleDestination {
				t.Fatalf("err %v, want INVALID_SAP with cause 88", err)
			}
			if err := c.await(timeout(t), func() bool { return len(r.closed) > 0 }); err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if r.connected != 0 || len(r.closed) != 1 || r.closed[0].WasUp || !errors.As(r.closed[0].Err, &ce) {
				t.Errorf("connected %d, closed %+v", r.connected, r.closed)
			}
		})
	}
}

// TestCallCancelled: a context that ends while the call is being set up
// returns its error, and the call is closed once its setup completes.
func TestCallCancelled(t *testing.T) {
	c := startCore(t, memdrv.Pend)
	if _, err := c.Listen(context.Background(), "echo", &echoListen{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := newRecorder()
	if _, err := c.Call(ctx, "echo", CallOptions{}, r); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if err := c.await(timeout(t), func() bool { return len(r.closed) > 0 }); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.vcs) != 0 || len(r.closed) != 1 {
		t.Errorf("%d VCs left, closed %+v", len(c.vcs), r.closed)
	}
}

// TestPoliced: sends the call manager completes with NDIS_STATUS_RESOURCES
// (its policing) are counted apart, in VCs and in the call's End.
func TestPoliced(t *testing.T) {
	c := startCore(t, memdrv.Immediate)
	if _, err := c.Listen(context.Background(), "sink", &echoListen{}); err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	v, err := c.Call(context.Background(), "sink", CallOptions{}, r)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		st := ndis.StatusSuccess
		if i%2 == 0 {
			st = ndis.StatusResources
		}
		c.mu.Lock()
		v.sendsOut++
		c.mu.Unlock()
		c.ProtocolCoSendNetBufferListsComplete(v, &ndis.NetBufferList{Context: v, Status: st}, 0)
	}
	policed := -1
	for _, in := range c.VCs() {
		if in.VC == v {
			policed = int(in.Policed)
		}
	}
	if policed != 3 {
		t.Errorf("VCs say %d policed, want 3", policed)
	}
	v.Close(ReasonLocal, nil)
	if err := c.await(timeout(t), func() bool { return len(r.closed) > 0 }); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := r.closed[0]; e.Sent != 5 || e.Policed != 3 {
		t.Errorf("end %+v, want 3 of 5 policed", e)
	}
}
