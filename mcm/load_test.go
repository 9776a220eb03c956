package mcm_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
)

// TestThousandCalls: 1,000 calls set up concurrently between two nodes
// (signalling with delay and jitter, the callee answering from its Loop),
// each MakeCall completing exactly once with SUCCESS; each call has its
// own connection identifier; then half are closed by the caller and half
// by the callee, every close completing exactly once, and nothing is left.
func TestThousandCalls(t *testing.T) {
	const n = 1000
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Seed: 7, Signal: sim.SignalConfig{Delay: 2 * time.Millisecond, Jitter: 3 * time.Millisecond}})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		cb.SetMode(memdrv.Pend)
		b.listen(cb, "echo")

		vs := make([]*memdrv.ClientVc, n)
		for i := range vs {
			v, st := ca.CreateVc(ca.Af())
			if st != ndis.StatusSuccess {
				t.Fatalf("CreateVc %d: %v", i, st)
			}
			vs[i] = v
			if _, st := ca.MakeCall(v, q2931.CallParams("b", "echo", bestEffort(100), bestEffort(100), false), false); st != ndis.StatusPending {
				t.Fatalf("MakeCall %d returned %v", i, st)
			}
		}
		w.waitFor("every MakeCall completed", func() bool {
			return memdrv.See(ca, func() bool {
				for _, v := range vs {
					if !v.Make.Done {
						return false
					}
				}
				return true
			})
		})
		memdrv.See(ca, func() bool {
			for i, v := range vs {
				if !v.Make.ExactlyOnce() || v.Make.Status != ndis.StatusSuccess {
					t.Errorf("call %d: %v", i, v.Make)
				}
			}
			return true
		})
		w.waitFor("every incoming call connected", func() bool {
			in := cb.Incoming()
			return len(in) == n && memdrv.See(cb, func() bool {
				for _, v := range in {
					if v.Connected != 1 {
						return false
					}
				}
				return true
			})
		})
		conns := map[uint32]bool{}
		for _, ci := range b.d.Calls() {
			conns[ci.ConnID] = true
		}
		if len(conns) != n || len(a.d.Calls()) != n {
			t.Errorf("%d distinct connection ids on b, %d calls on a; want %d", len(conns), len(a.d.Calls()), n)
		}

		in := cb.Incoming()
		for i := range n {
			if i%2 == 0 {
				ca.CloseCall(vs[i])
			}
		}
		for i := range n {
			if i%2 == 1 {
				cb.CloseCall(in[i])
			}
		}
		w.waitFor("every call closed at both ends", func() bool {
			return memdrv.See(ca, func() bool {
				for _, v := range vs {
					if !v.Close.Done {
						return false
					}
				}
				return true
			}) && memdrv.See(cb, func() bool {
				for _, v := range in {
					if !v.Close.Done || !v.Deleted {
						return false
					}
				}
				return true
			})
		})
		for _, x := range []struct {
			c  *memdrv.Client
			vs []*memdrv.ClientVc
		}{{ca, vs}, {cb, in}} {
			memdrv.See(x.c, func() bool {
				for i, v := range x.vs {
					if !v.Close.ExactlyOnce() || v.Close.Status != ndis.StatusSuccess {
						t.Errorf("%s: close %d: %v", x.c.Name, i, v.Close)
					}
					if v.CloseIndicated > 1 {
						t.Errorf("%s: call %d: %d incoming closes", x.c.Name, i, v.CloseIndicated)
					}
				}
				return true
			})
		}
		for _, v := range vs {
			if st := ca.DeleteVc(v); st != ndis.StatusSuccess {
				t.Errorf("DeleteVc: %v", st)
			}
		}
		if n := len(a.d.Calls()) + len(b.d.Calls()); n != 0 {
			t.Errorf("%d calls left", n)
		}
	})
}
