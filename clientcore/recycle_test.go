package clientcore

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// recyclingCM is memCM as a ParamsRecycler: it records the parameters it
// built and those handed back, and whether each came back while its
// MakeCall was still in progress.
type recyclingCM struct {
	*memCM
	mu       sync.Mutex
	built    []*ndis.CallParameters
	recycled []*ndis.CallParameters
	early    int // handed back before the Core had the MakeCall's outcome
	core     *Core
}

func (r *recyclingCM) CallParams(dest string, tx, rx ndis.Flowspec, reliable bool) (*ndis.CallParameters, error) {
	p, err := r.memCM.CallParams(dest, tx, rx, reliable)
	if err == nil {
		r.mu.Lock()
		r.built = append(r.built, p)
		r.mu.Unlock()
	}
	return p, err
}

func (r *recyclingCM) RecycleCallParams(p *ndis.CallParameters) {
	r.core.mu.Lock()
	for _, v := range r.core.vcs {
		if v.phase == PhaseMaking {
			r.early++
		}
	}
	r.core.mu.Unlock()
	r.mu.Lock()
	r.recycled = append(r.recycled, p)
	r.mu.Unlock()
	q2931.RecycleCallParams(p)
}

// TestParamsRecycledAfterMakeCall: a point-to-point NdisClMakeCall's
// parameters go back to the call manager that built them once, after the
// MakeCall completed (NDIS returns them to the client then), whether it
// succeeded or failed, completing at once or pending; a multipoint call's
// are not handed back, since its first party keeps them.
func TestParamsRecycledAfterMakeCall(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			var r *recyclingCM
			c := startCoreWith(t, mode, func(m *memCM) CallManager {
				r = &recyclingCM{memCM: m}
				return r
			})
			r.core = c
			if _, err := c.Listen(context.Background(), "echo", &echoListen{}); err != nil {
				t.Fatal(err)
			}
			v, err := c.Call(timeout(t), "echo", CallOptions{}, newRecorder())
			if err != nil {
				t.Fatal(err)
			}
			var ce *CallError
			if _, err := c.Call(timeout(t), "nosuch", CallOptions{}, newRecorder()); !errors.As(err, &ce) {
				t.Fatalf("call to nosuch: %v, want a *CallError", err)
			}
			mp, err := c.Call(timeout(t), "echo", CallOptions{Multipoint: true}, newRecorder())
			if err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			if v.phase != PhaseConnected || mp.phase != PhaseConnected {
				t.Errorf("phases %v and %v, want both connected", v.phase, mp.phase)
			}
			c.mu.Unlock()
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.built) != 3 {
				t.Fatalf("%d sets of parameters built, want 3", len(r.built))
			}
			if len(r.recycled) != 2 || r.recycled[0] != r.built[0] || r.recycled[1] != r.built[1] {
				t.Errorf("handed back %p, want the point-to-point calls' %p (not the multipoint call's %p)", r.recycled, r.built[:2], r.built[2])
			}
			if r.early != 0 {
				t.Errorf("%d handed back while a MakeCall was in progress", r.early)
			}
		})
	}
}
