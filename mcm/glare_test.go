package mcm_test

import (
	"bytes"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// TestModifyGlare: both clients of a call ask NdisClModifyCallQoS at the
// same moment and the two MODIFY REQUESTs cross on the wire (each is held
// 100 ms). The node that originated the call wins on both ends, whichever
// client asked first: its client's ModifyCallQoS completes with SUCCESS,
// the other's with NDIS_STATUS_FAILURE (its request refused with cause 101),
// the other client is told of the winner's parameters once
// (IncomingCallQoSChange), and both VCs carry exactly the winner's
// flowspecs. Each ModifyCallQoS completes exactly once, no STATUS goes on
// the wire (the winner's late MODIFY REJECT is absorbed), and the loser's
// next request succeeds.
func TestModifyGlare(t *testing.T) {
	cases := []struct {
		name        string
		bCalls      bool // the call is made from b to a (b originates it)
		callerFirst bool // the originator's client asks first
	}{
		{"a calls, a asks first", false, true},
		{"a calls, b asks first", false, false},
		{"b calls, b asks first", true, true},
		{"b calls, a asks first", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { modifyGlare(t, tc.bCalls, tc.callerFirst) })
		})
	}
}

func modifyGlare(t *testing.T, bCalls, callerFirst bool) {
	w := newSimWorld(t, sim.Config{})
	defer w.close()
	a, b := w.addNode("a", nil), w.addNode("b", nil)
	ca, cb := a.client("alice"), b.client("bob")
	// win* originated the call, lose* answered it.
	winNode, loseNode, win, lose := a, b, ca, cb
	if bCalls {
		winNode, loseNode, win, lose = b, a, cb, ca
	}
	loseNode.listen(lose, "echo")
	cl := flow(ndis.ServiceControlledLoad, 48_000, 4_800, 96_000, 1000)
	vw, vl := w.connect(win, lose, q2931.CallParams(loseNode.name, "echo", cl, cl, false))

	const hold = 100 * time.Millisecond
	w.net.DelayNth(sim.From(winNode.name, sim.MsgType(uni.MsgModifyRequest)), 1, hold)
	w.net.DelayNth(sim.From(loseNode.name, sim.MsgType(uni.MsgModifyRequest)), 1, hold)
	winnersReject := capture(w, sim.From(winNode.name, sim.MsgType(uni.MsgModifyReject)))
	losersRejects := w.net.DelayNth(sim.From(loseNode.name, sim.MsgType(uni.MsgModifyReject)), 1, 0)
	statuses := w.net.DelayNth(sim.MsgType(uni.MsgStatus), 1, 0)

	// The winner raises its transmit rates, the loser lowers its own.
	pw := memdrv.See(win, func() *ndis.CallParameters { return vw.Params.Clone() })
	pw.CallMgrParameters.Transmit.TokenRate, pw.CallMgrParameters.Transmit.PeakBandwidth = 96_000, 144_000
	pl := memdrv.See(lose, func() *ndis.CallParameters { return vl.Params.Clone() })
	pl.CallMgrParameters.Transmit.TokenRate, pl.CallMgrParameters.Transmit.PeakBandwidth = 24_000, 48_000
	ask := []func() ndis.Status{
		func() ndis.Status { return win.ModifyQoS(vw, pw) },
		func() ndis.Status { return lose.ModifyQoS(vl, pl) },
	}
	if !callerFirst {
		ask[0], ask[1] = ask[1], ask[0]
	}
	for _, f := range ask {
		if st := f(); st != ndis.StatusPending {
			t.Fatalf("ModifyQoS returned %v, want PENDING", st)
		}
	}
	w.waitFor("both QoS changes finished", func() bool {
		return memdrv.See(win, func() bool { return vw.QoS.Done }) && memdrv.See(lose, func() bool { return vl.QoS.Done })
	})
	// Past T360 (4 s here): any second completion, late message or timer
	// would have shown by now.
	w.pause(3 * w.timers.T360)

	if r := memdrv.See(win, func() memdrv.Result { return vw.QoS }); r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
		t.Errorf("winner's ModifyQoS: %v, want SUCCESS exactly once", r)
	}
	if r := memdrv.See(lose, func() memdrv.Result { return vl.QoS }); r.Status != ndis.StatusFailure || !r.ExactlyOnce() {
		t.Errorf("loser's ModifyQoS: %v, want NDIS_STATUS_FAILURE exactly once", r)
	}
	if n := memdrv.See(lose, func() int { return vl.QoSChanges }); n != 1 {
		t.Errorf("loser's client told of %d QoS change(s), want 1", n)
	}
	if n := memdrv.See(win, func() int { return vw.QoSChanges }); n != 0 {
		t.Errorf("winner's client told of %d QoS change(s), want 0", n)
	}
	wantTx, wantRx := pw.CallMgrParameters.Transmit, pw.CallMgrParameters.Receive
	checkFlows := func(when string) {
		t.Helper()
		if got := vcParams(t, winNode, vw).CallMgrParameters; got.Transmit != wantTx || got.Receive != wantRx {
			t.Errorf("%s: winner's VC\n got tx %+v rx %+v\nwant tx %+v rx %+v", when, got.Transmit, got.Receive, wantTx, wantRx)
		}
		if got := vcParams(t, loseNode, vl).CallMgrParameters; got.Transmit != wantRx || got.Receive != wantTx {
			t.Errorf("%s: loser's VC\n got tx %+v rx %+v\nwant tx %+v rx %+v", when, got.Transmit, got.Receive, wantRx, wantTx)
		}
	}
	checkFlows("after the collision")
	if got := memdrv.See(lose, func() ndis.CallManagerParameters { return *vl.Params.CallMgrParameters }); got.Transmit != wantRx || got.Receive != wantTx {
		t.Errorf("loser's client was told tx %+v rx %+v", got.Transmit, got.Receive)
	}

	if m, ok := winnersReject(); !ok {
		t.Errorf("the winner sent no MODIFY REJECT")
	} else if c := m.Causes[0]; c.Value != uni.CauseMessageIncompatible || !bytes.Equal(c.Diagnostic, []byte{byte(uni.MsgModifyRequest)}) {
		t.Errorf("winner's MODIFY REJECT: cause %v diagnostic %x, want 101 with MODIFY REQUEST", c.Value, c.Diagnostic)
	}
	if n := losersRejects.Seen(); n != 0 {
		t.Errorf("the loser sent %d MODIFY REJECT(s), want none", n)
	}
	if n := statuses.Seen(); n != 0 {
		t.Errorf("%d STATUS message(s) on the wire, want none", n)
	}

	// The loser's state is clean: it asks again, alone, from the
	// parameters now in force, and gets it.
	retry := memdrv.See(lose, func() *ndis.CallParameters { return vl.Params.Clone() })
	retry.CallMgrParameters.Transmit = pl.CallMgrParameters.Transmit
	if st := lose.ModifyQoS(vl, retry); st != ndis.StatusPending {
		t.Fatalf("loser's second ModifyQoS returned %v", st)
	}
	w.waitFor("loser's second QoS change", func() bool { return memdrv.See(lose, func() bool { return vl.QoS.Done }) })
	if r := memdrv.See(lose, func() memdrv.Result { return vl.QoS }); r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
		t.Errorf("loser's second ModifyQoS: %v", r)
	}
	wantRx = retry.CallMgrParameters.Transmit
	checkFlows("after the loser's second request")

	w.hangUp(win, vw, lose, vl, ndis.StatusSuccess)
	win.DeleteVc(vw)
}
