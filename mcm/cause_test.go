package mcm_test

import (
	"testing"
	"testing/synctest"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// MCM.Cause reports the Q.2931 cause that ended a VC's last call — the one
// on the wire, not the canonical cause of the NDIS status (several causes
// share NDIS_STATUS_FAILURE) — from the completion that reports the end
// until the VC is deleted or calls again; a local close leaves none.
func TestCauseOfTheLastCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		params := func(svc string) *ndis.CallParameters {
			return q2931.CallParams("b", svc, bestEffort(100), bestEffort(100), false)
		}
		cause := func(v *memdrv.ClientVc) (uni.Cause, bool) { return a.d.Cause(v.H) }

		// No SAP: RELEASE COMPLETE with cause 88.
		v := w.call(ca, params("nosuch"))
		if c, ok := cause(v); !ok || c != uni.CauseIncompatibleDestination {
			t.Errorf("refused for want of a SAP: cause %v %v, want 88", c, ok)
		}
		// The peer never answers: cause 102 after T303 twice, reported
		// as NDIS_STATUS_FAILURE (whose canonical cause would be 21).
		w.net.DropNth(sim.MsgType(uni.MsgSetup), 1)
		w.net.DropNth(sim.MsgType(uni.MsgSetup), 1)
		ca.MakeCall(v, params("echo"), false)
		if c, ok := cause(v); ok {
			t.Errorf("a new call keeps the old cause %v", c)
		}
		w.waitFor("MakeCall outcome", func() bool { return memdrv.See(ca, func() bool { return v.Make.Done }) })
		if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusFailure {
			t.Errorf("unanswered SETUP: %v", r)
		}
		if c, ok := cause(v); !ok || c != uni.CauseTimerExpiry {
			t.Errorf("unanswered SETUP: cause %v %v, want 102", c, ok)
		}
		ca.DeleteVc(v)
		if c, ok := cause(v); ok {
			t.Errorf("a deleted VC keeps its cause %v", c)
		}

		// Closed by the far end: its cause (16); closed locally: none.
		va, vb := w.connect(ca, cb, params("echo"))
		w.hangUp(cb, vb, ca, va, ndis.StatusSuccess)
		if c, ok := cause(va); !ok || c != uni.CauseNormalCallClearing {
			t.Errorf("closed by the far end: cause %v %v, want 16", c, ok)
		}
		ca.DeleteVc(va)
		// The callee's VC: bob answers the close from his Loop, held back
		// here, so the MCM has not deleted the VC when it is asked.
		va, vb = w.connect(ca, cb, params("echo"))
		cb.CloseLater, b.paused = true, true
		ca.CloseCall(va)
		w.waitFor("bob told", func() bool { return memdrv.See(cb, func() bool { return vb.CloseIndicated == 1 }) })
		if c, ok := b.d.Cause(vb.H); !ok || c != uni.CauseNormalCallClearing {
			t.Errorf("the callee's VC closed by the caller: cause %v %v, want 16", c, ok)
		}
		b.paused = false
		w.closedByNetwork(cb, vb, ndis.StatusSuccess)
		w.waitFor("alice's close", func() bool { return memdrv.See(ca, func() bool { return va.Close.Done }) })
		if c, ok := cause(va); ok {
			t.Errorf("closed locally: cause %v", c)
		}
		ca.DeleteVc(va)
	})
}
