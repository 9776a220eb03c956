package mcm_test

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport/sim"
)

// vcStates records a node's VC state changes, "from->to (reason)", by VC.
type vcStates struct {
	mu sync.Mutex
	by map[string][]string
}

func (r *vcStates) tracer() trace.Tracer {
	return trace.Tracer{VcState: func(e trace.VcState) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.by == nil {
			r.by = map[string][]string{}
		}
		r.by[e.VC] = append(r.by[e.VC], e.From+"->"+e.To+" ("+e.Reason+")")
	}}
}

// TestVcStateEvents: each end of a call the callee hangs up goes through
// the states callctl.State draws, one typed event per change, each with
// its reason.
func TestVcStateEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}})
		defer w.close()
		var ra, rb vcStates
		a := w.addNode("a", func(c *mcm.Config) { c.Tracer = ra.tracer() })
		b := w.addNode("b", func(c *mcm.Config) { c.Tracer = rb.tracer() })
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
		w.hangUp(cb, vb, ca, va, ndis.StatusSuccess)
		w.pause(100 * time.Millisecond)

		ra.mu.Lock()
		gotA := ra.by[va.H.String()]
		ra.mu.Unlock()
		wantA := []string{"->idle (created)", "idle->calling (MakeCall)", "calling->active (CONNECT)",
			"active->released (IncomingCloseCall)", "released->closing-released (CloseCall)",
			"closing-released->finishing (released on the network)", "finishing->idle (CloseCallComplete)"}
		if !slices.Equal(gotA, wantA) {
			t.Errorf("caller's VC:\n%q\nwant\n%q", gotA, wantA)
		}
		rb.mu.Lock()
		gotB := rb.by[""] // the callee's VC has no handle when it is offered
		gotB = append(gotB, rb.by[vb.H.String()]...)
		rb.mu.Unlock()
		wantB := []string{"->offered (IncomingCall)", "offered->accepted (accepted)", "accepted->active (CallConnected)",
			"active->closing (CloseCall)", "closing->finishing (released on the network)", "finishing->idle (CloseCallComplete)"}
		if !slices.Equal(gotB, wantB) {
			t.Errorf("callee's VC:\n%q\nwant\n%q", gotB, wantB)
		}
	})
}
