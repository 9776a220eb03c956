package mcm_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
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
		return mcm.CallParams("b", "echo", bestEffort(100), bestEffort(100), false)
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
		vs := make([]*memdrv.ClientVc, n)
		for i := range vs {
			vs[i], _ = ca.CreateVc(ca.Af())
			ca.MakeCall(vs[i], mcm.CallParams("b", "echo", bestEffort(100), bestEffort(100), false), false)
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
