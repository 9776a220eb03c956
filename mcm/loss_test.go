package mcm_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// TestLostSignalling: lost Q.2931 messages are recovered by the timer
// procedures, and every CoNDIS request still completes exactly once: a
// lost SETUP is sent again on T303's first expiry; a lost CONNECT
// ACKNOWLEDGE makes the called side give up on T313 (both clients are
// told the call closed, NDIS_STATUS_FAILURE for cause 102); a lost
// RELEASE or RELEASE COMPLETE is recovered by T308.
func TestLostSignalling(t *testing.T) {
	type sides struct {
		w      *world
		ca, cb *memdrv.Client
	}
	setup := func(t *testing.T) sides {
		w := newSimWorld(t, sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}})
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		return sides{w, ca, cb}
	}
	params := func() *ndis.CallParameters {
		return q2931.CallParams("b", "echo", bestEffort(100), bestEffort(100), false)
	}
	t.Run("SETUP", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := setup(t)
			defer s.w.close()
			s.w.net.DropNth(sim.MsgType(uni.MsgSetup), 1)
			start := time.Now()
			va, vb := s.w.connect(s.ca, s.cb, params())
			if took := time.Since(start); took < s.w.timers.T303 {
				t.Errorf("connected after %v, before T303", took)
			}
			s.w.hangUp(s.ca, va, s.cb, vb, ndis.StatusSuccess)
			s.ca.DeleteVc(va)
		})
	})
	t.Run("CONNECT ACKNOWLEDGE", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := setup(t)
			defer s.w.close()
			s.w.net.DropNth(sim.MsgType(uni.MsgConnectAck), 1)
			va := s.w.call(s.ca, params())
			if r := memdrv.See(s.ca, func() memdrv.Result { return va.Make }); r.Status != ndis.StatusSuccess {
				t.Fatalf("MakeCall: %v", r)
			}
			s.w.closedByNetwork(s.ca, va, ndis.StatusFailure)
			vb := s.cb.LastIncoming()
			s.w.closedByNetwork(s.cb, vb, ndis.StatusFailure)
			if n := memdrv.See(s.cb, func() int { return vb.Connected }); n != 0 {
				t.Errorf("callee told connected %d time(s)", n)
			}
			s.w.deleted(s.cb, vb)
			s.ca.DeleteVc(va)
		})
	})
	for _, lost := range []uni.MsgType{uni.MsgRelease, uni.MsgReleaseComplete} {
		t.Run(lost.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := setup(t)
				defer s.w.close()
				va, vb := s.w.connect(s.ca, s.cb, params())
				s.w.net.DropNth(sim.MsgType(lost), 1)
				start := time.Now()
				s.w.hangUp(s.ca, va, s.cb, vb, ndis.StatusSuccess)
				if took := time.Since(start); took < s.w.timers.T308 {
					t.Errorf("close completed after %v, before T308", took)
				}
				s.w.deleted(s.cb, vb)
				s.ca.DeleteVc(va)
			})
		})
	}
}

// TestLossyCalls: 200 calls set up and torn down over signalling that
// loses 10% of the messages with up to 200 ms of jitter (not QUIC-like; it
// exercises the timer procedures). Every MakeCall and every close
// completes exactly once, whatever the outcome, and nothing is left.
func TestLossyCalls(t *testing.T) {
	const n = 200
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Seed: 3, Signal: sim.SignalConfig{Delay: 5 * time.Millisecond, Jitter: 200 * time.Millisecond, Loss: 0.1}})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		cb.SetMode(memdrv.Pend)
		b.listen(cb, "echo")
		vs := w.makeCalls(ca, n, func() *ndis.CallParameters {
			return q2931.CallParams("b", "echo", bestEffort(100), bestEffort(100), false)
		})
		up := 0
		memdrv.See(ca, func() bool {
			for i, v := range vs {
				if !v.Make.ExactlyOnce() {
					t.Errorf("call %d: %v", i, v.Make)
				}
				if v.Make.Status == ndis.StatusSuccess {
					up++
				}
			}
			return true
		})
		t.Logf("%d of %d calls came up", up, n)
		w.pause(30 * time.Second) // let half-open calls time out
		for _, v := range vs {
			if memdrv.See(ca, func() bool { return v.Make.Status == ndis.StatusSuccess && v.CloseIndicated == 0 }) {
				ca.CloseCall(v)
			}
		}
		w.waitFor("every call closed", func() bool {
			return memdrv.See(ca, func() bool {
				for _, v := range vs {
					if v.Make.Status == ndis.StatusSuccess && !v.Close.Done {
						return false
					}
				}
				return true
			}) && func() bool {
				in := cb.Incoming()
				return memdrv.See(cb, func() bool {
					for _, v := range in {
						if !v.Deleted {
							return false
						}
					}
					return true
				})
			}()
		})
		for _, x := range []*memdrv.Client{ca, cb} {
			in := x.Incoming()
			memdrv.See(x, func() bool {
				for i, v := range in {
					if v.Close.Done && !v.Close.ExactlyOnce() || v.CloseIndicated > 1 {
						t.Errorf("%s incoming %d: close %v, %d incoming closes", x.Name, i, v.Close, v.CloseIndicated)
					}
				}
				return true
			})
		}
		for i, v := range vs {
			if r := memdrv.See(ca, func() memdrv.Result { return v.Close }); r.Done && !r.ExactlyOnce() {
				t.Errorf("close %d: %v", i, r)
			}
			if st := ca.DeleteVc(v); st != ndis.StatusSuccess {
				t.Errorf("DeleteVc %d: %v", i, st)
			}
		}
	})
}

// TestLossyClearingBound (issue 8 item 3): 200 calls are up; signalling
// starts to lose 10% of the messages with up to 200 ms of jitter; both
// sides close half the calls each; the loss stops. Every call that either
// end still held is cleared within 2×T308 + T316 of the loss stopping: a
// RELEASE unanswered twice restarts its VC at once, restarts of different
// VCs run side by side, and each ends on the far end's answer (RESTART
// ACKNOWLEDGE, or the RELEASE COMPLETE that comes late). Every close
// completes exactly once.
func TestLossyClearingBound(t *testing.T) {
	const n = 200
	synctest.Test(t, func(t *testing.T) {
		calm := sim.SignalConfig{Delay: 5 * time.Millisecond}
		w := newSimWorld(t, sim.Config{Seed: 13, Signal: calm})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		vs := make([]*memdrv.ClientVc, n)
		in := make([]*memdrv.ClientVc, n)
		for i := range vs {
			vs[i], in[i] = w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(100), bestEffort(100), false))
		}
		restarts := w.net.DropNth(sim.MsgType(uni.MsgRestart), 1<<30) // counts them, drops none
		w.net.SetSignal(sim.SignalConfig{Delay: 5 * time.Millisecond, Jitter: 200 * time.Millisecond, Loss: 0.1})
		for i := range n {
			if i%2 == 0 {
				ca.CloseCall(vs[i])
			} else {
				cb.CloseCall(in[i])
			}
		}
		w.pause(12 * time.Second) // long enough for RELEASEs to go unanswered twice
		w.net.SetSignal(calm)
		calmed := time.Now()
		bound := 2*w.timers.T308 + w.timers.T316
		w.waitFor("no calls at either end", func() bool {
			return len(a.d.Calls()) == 0 && len(b.d.Calls()) == 0
		})
		if took := time.Since(calmed); took > bound {
			t.Errorf("the last call was cleared %v after the loss stopped, more than 2×T308 + T316 = %v", took, bound)
		} else {
			t.Logf("the last call was cleared %v after the loss stopped (bound %v); %d RESTARTs sent", took, bound, restarts.Seen())
		}
		w.waitFor("every close completed", func() bool {
			return memdrv.See(ca, func() bool {
				for i, v := range vs {
					if i%2 == 0 && !v.Close.Done {
						return false
					}
				}
				return true
			}) && memdrv.See(cb, func() bool {
				for i, v := range in {
					if i%2 == 1 && !v.Close.Done {
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
					if v.Close.Done && !v.Close.ExactlyOnce() || v.CloseIndicated > 1 {
						t.Errorf("%s call %d: close %v, %d incoming closes", x.c.Name, i, v.Close, v.CloseIndicated)
					}
				}
				return true
			})
		}
		for i, v := range in {
			if i%2 == 0 {
				w.waitFor("bob's VC deleted", func() bool { return memdrv.See(cb, func() bool { return v.Deleted }) })
			}
		}
		for i, v := range vs {
			if i%2 == 1 {
				w.waitFor("alice told of the close", func() bool { return memdrv.See(ca, func() bool { return v.CloseIndicated > 0 }) })
			}
			if memdrv.See(ca, func() bool { return v.CloseIndicated > 0 && !v.Close.Done }) {
				ca.CloseCall(v)
			}
		}
		w.waitFor("alice's closes completed", func() bool {
			return memdrv.See(ca, func() bool {
				for _, v := range vs {
					if !v.Close.Done {
						return false
					}
				}
				return true
			})
		})
		for _, v := range vs {
			if st := ca.DeleteVc(v); st != ndis.StatusSuccess {
				t.Errorf("DeleteVc: %v", st)
			}
		}
	})
}
