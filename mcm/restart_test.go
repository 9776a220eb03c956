package mcm_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// TestRestartOnFirstLinkOnly (issue 8 item 2): each node's first link
// with a peer starts with RESTART (all VCs), which the peer acknowledges;
// the call made on that link is not touched by it, even when the RESTART
// crossed the call's SETUP. A link that comes back after a cut is no
// first link: no RESTART, and the call kept across the cut stays up.
func TestRestartOnFirstLinkOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{DetectTimeout: time.Second, Signal: sim.SignalConfig{Delay: time.Millisecond}})
		defer w.close()
		restarts := w.net.DropNth(sim.MsgType(uni.MsgRestart), 1<<30) // counts, drops none
		acks := w.net.DropNth(sim.MsgType(uni.MsgRestartAck), 1<<30)
		fromA := w.net.DropNth(sim.From("a", sim.MsgType(uni.MsgRestart)), 1<<30)
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
		w.pause(100 * time.Millisecond)
		if restarts.Seen() != 2 || fromA.Seen() != 1 || acks.Seen() != 2 {
			t.Fatalf("%d RESTARTs (%d from a), %d RESTART ACKNOWLEDGEs; want one each way, each acknowledged",
				restarts.Seen(), fromA.Seen(), acks.Seen())
		}
		if len(a.d.Calls()) != 1 || len(b.d.Calls()) != 1 {
			t.Fatalf("calls %d and %d: the RESTARTs cleared the call made on their link", len(a.d.Calls()), len(b.d.Calls()))
		}
		w.net.Cut("a", "b")
		w.pause(2 * time.Second) // the loss is noticed; T309 keeps the call
		w.net.Restore("a", "b")
		w.pause(3 * time.Second) // redialled, audited
		if restarts.Seen() != 2 {
			t.Errorf("%d RESTARTs after the link came back, want none more", restarts.Seen()-2)
		}
		if len(a.d.Calls()) != 1 || len(b.d.Calls()) != 1 {
			t.Errorf("calls %d and %d after the link came back, want the call kept", len(a.d.Calls()), len(b.d.Calls()))
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		w.deleted(cb, vb)
		ca.DeleteVc(va)
	})
}

// TestPeerIncarnationClearsCalls (issue 8 item 2): b dies mid-call (the
// path is cut, then its endpoint goes) and a new b attaches. a keeps its
// call under T309 and redials; the link it gets is from b's new
// incarnation, so the call is cleared at once — alice is told
// NDIS_STATUS_DEST_OUT_OF_ORDER well before T309 would have run out, and
// mcm.Cause reports cause 41 — and a new call to the new b works.
func TestPeerIncarnationClearsCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{DetectTimeout: time.Second, Signal: sim.SignalConfig{Delay: time.Millisecond}})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		params := func() *ndis.CallParameters {
			return q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false)
		}
		va, vb := w.connect(ca, cb, params())
		w.net.Cut("a", "b")
		b.ep.Close()
		w.pause(1500 * time.Millisecond) // a notices the loss; T309 runs
		b2 := w.addNode("b", nil)
		cb2 := b2.client("bob")
		b2.listen(cb2, "echo")
		w.net.Restore("a", "b")
		start := time.Now()
		w.closedByNetwork(ca, va, ndis.StatusDestOutOfOrder)
		if took := time.Since(start); took >= w.timers.T309 {
			t.Errorf("alice told after %v: T309's expiry, not the new incarnation", took)
		}
		if c, ok := a.d.Cause(va.H); !ok || c != uni.CauseTemporaryFailure {
			t.Errorf("cause %v (%v), want 41", c, ok)
		}
		ca.DeleteVc(va)
		va2, vb2 := w.connect(ca, cb2, params())
		w.hangUp(ca, va2, cb2, vb2, ndis.StatusSuccess)
		w.deleted(cb2, vb2)
		ca.DeleteVc(va2)
		_ = vb
	})
}

// TestRefusedCallsArePaced (issue 8 item 1): a peer whose calls this node
// refuses (here: no such service, cause 88) more than Config.RefusalRate
// times a second has its signalling read at that rate, so a flood of calls
// the node will not take costs it little. Every refused MakeCall still
// completes exactly once, with NDIS_STATUS_INVALID_SAP.
func TestRefusedCallsArePaced(t *testing.T) {
	const rate, n = 10, 40
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}})
		defer w.close()
		a := w.addNode("a", nil)
		w.addNode("b", func(c *mcm.Config) { c.RefusalRate = rate })
		ca := a.client("alice")
		start := time.Now()
		vs := w.makeCalls(ca, n, func() *ndis.CallParameters {
			return q2931.CallParams("b", "nosuch", bestEffort(100), bestEffort(100), false)
		})
		took := time.Since(start)
		memdrv.See(ca, func() bool {
			for i, v := range vs {
				if !v.Make.ExactlyOnce() || v.Make.Status != ndis.StatusInvalidSap {
					t.Errorf("call %d: %v", i, v.Make)
				}
			}
			return true
		})
		// A burst of rate is free; the rest come at rate a second.
		if want := time.Duration(n-2*rate) * time.Second / rate; took < want {
			t.Errorf("%d refusals took %v, want at least %v at %d a second", n, took, want, rate)
		}
		for _, v := range vs {
			ca.DeleteVc(v)
		}
	})
}
