package uni

import (
	"testing"
)

// ourVCCall sets up a call of ours on VC vci (U1) and returns its id.
func ourVCCall(t *testing.T, l *Link, vci uint16) CallID {
	t.Helper()
	s := setupMsg(false)
	s.ConnectionID = &ConnectionID{VPAssociated: VPExplicit, VCI: vci}
	id, _, err := l.Setup(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func vcID(vci uint16) *ConnectionID { return &ConnectionID{VPAssociated: VPExplicit, VCI: vci} }

func restartAck(ci *ConnectionID) *Message {
	m := peerMsg(MsgRestartAck, CallID{})
	m.CallRef.Flag = true
	m.Restart.Class, m.ConnectionID = RestartIndicatedVC, ci
	if ci == nil {
		m.Restart.Class = RestartAllVCs
	}
	return m
}

func globalStatus(c Cause) *Message {
	m := peerMsg(MsgStatus, CallID{})
	m.CallRef.Flag = true
	m.Causes = []CauseIE{NewCause(c, byte(IEConnectionID))}
	m.CallState = &CallStateIE{State: StateNull}
	return m
}

// TestRestartsIndependent: restarts of different VCs run side by side,
// each with its own T316; each ends on its own answer — RESTART
// ACKNOWLEDGE naming its VC, a STATUS cause 100 (the oldest restart whose
// VC the peer does not know), or the peer's late RELEASE COMPLETE for the
// call it cleared — and not on another's.
func TestRestartsIndependent(t *testing.T) {
	l := NewLink(Config{})
	a, b, c := ourVCCall(t, l, 70), ourVCCall(t, l, 71), ourVCCall(t, l, 72)
	var slots []uint16
	for _, vci := range []uint16{70, 71, 72} {
		o := ok(t)(l.Restart(vcID(vci)))
		wantSent(t, o, MsgRestart)
		wantInds(t, o, IndReleased)
		if !o.Indications[0].Restarted {
			t.Errorf("VC %d: IndReleased not marked Restarted", vci)
		}
		slots = append(slots, o.Timers[len(o.Timers)-1].Key.Endpoint)
	}
	if slots[0] == slots[1] || slots[1] == slots[2] || slots[0] == slots[2] {
		t.Fatalf("T316 slots %v are not distinct", slots)
	}
	if ours, _ := l.Restarts(); ours != 3 {
		t.Fatalf("%d restarts of ours, want 3", ours)
	}
	// The second VC's T316 expires: only its RESTART is sent again.
	o := l.Expire(TimerKey{Timer: T316, Endpoint: slots[1]})
	if m := wantSent(t, o, MsgRestart); m.ConnectionID.VCI != 71 {
		t.Errorf("retransmitted RESTART for VC %d, want 71", m.ConnectionID.VCI)
	}
	// VC 72's acknowledgement ends VC 72's restart only.
	o = l.Receive(restartAck(vcID(72)))
	wantSent(t, o)
	wantInds(t, o, IndRestartComplete)
	wantTimers(t, o, "-T316")
	if o.Timers[0].Key.Endpoint != slots[2] {
		t.Errorf("stopped T316 slot %d, want %d", o.Timers[0].Key.Endpoint, slots[2])
	}
	// STATUS cause 100 ends the oldest: VC 70.
	o = l.Receive(globalStatus(CauseInvalidIEContents))
	wantInds(t, o, IndRestartComplete)
	if o.Timers[0].Key.Endpoint != slots[0] || o.Indications[0].Cause.Value != CauseInvalidIEContents {
		t.Errorf("STATUS ended slot %d (cause %v), want %d", o.Timers[0].Key.Endpoint, o.Indications[0].Cause.Value, slots[0])
	}
	// The peer's late RELEASE COMPLETE for call b ends VC 71's restart.
	rc := peerMsg(MsgReleaseComplete, b)
	rc.CallRef = b.wire()
	rc.CallRef.Flag = true
	rc.Causes = []CauseIE{NewCause(CauseNormalCallClearing)}
	o = l.Receive(rc)
	wantSent(t, o)
	wantInds(t, o, IndRestartComplete)
	if ours, _ := l.Restarts(); ours != 0 || l.RestartState() != RestNull {
		t.Errorf("%d restarts left, %v", ours, l.RestartState())
	}
	_, _ = a, c
	// Nothing left to answer: a RESTART ACKNOWLEDGE is out of place.
	wantStatus(t, l.Receive(restartAck(vcID(70))), CauseMessageIncompatible, []byte{byte(MsgRestartAck)}, StateNull)
}

// TestRestartsIncomingIndependent: the peer's RESTARTs of two VCs are
// both taken (no STATUS 101 for the second) and acknowledged one by one.
func TestRestartsIncomingIndependent(t *testing.T) {
	l := NewLink(Config{})
	for _, vci := range []uint16{55, 56} {
		s := peerMsg(MsgSetup, CallID{Ref: uint32(vci)})
		s.ConnectionID = vcID(vci)
		l.Receive(s)
	}
	for _, vci := range []uint16{55, 56} {
		m := peerMsg(MsgRestart, CallID{})
		m.Restart.Class, m.ConnectionID = RestartIndicatedVC, vcID(vci)
		o := l.Receive(m)
		wantSent(t, o)
		wantInds(t, o, IndReleased, IndRestart)
	}
	if _, peers := l.Restarts(); peers != 2 {
		t.Fatalf("%d restarts of the peer's, want 2", peers)
	}
	o := ok(t)(l.RestartDone(vcID(56)))
	if m := wantSent(t, o, MsgRestartAck); m.ConnectionID.VCI != 56 {
		t.Errorf("acknowledged VC %d, want 56", m.ConnectionID.VCI)
	}
	o = ok(t)(l.RestartDone(vcID(55)))
	if m := wantSent(t, o, MsgRestartAck); m.ConnectionID.VCI != 55 {
		t.Errorf("acknowledged VC %d, want 55", m.ConnectionID.VCI)
	}
}

// TestPeerRestarted: a new incarnation of the peer holds nothing: every
// call ends at once with cause 41 (Restarted), T309 stops, our restart is
// complete, nothing is sent.
func TestPeerRestarted(t *testing.T) {
	l := NewLink(Config{})
	a := ourVCCall(t, l, 80)
	l.Receive(peerMsg(MsgConnect, a))
	ourVCCall(t, l, 81)
	ok(t)(l.Restart(vcID(81)))
	o := l.LinkDown() // the call on 80 is active: kept under T309
	if l.Calls() != 1 {
		t.Fatalf("%d calls after LinkDown, want the active one", l.Calls())
	}
	_ = o
	ourRestartGone := l.RestartState() == RestNull
	o = l.PeerRestarted()
	wantSent(t, o)
	wantInds(t, o, IndReleased)
	if !o.Indications[0].Restarted || o.Indications[0].Cause.Value != CauseTemporaryFailure || o.Indications[0].Call != a {
		t.Errorf("released %+v", o.Indications[0])
	}
	wantTimers(t, o, "-T309")
	if l.Calls() != 0 || !ourRestartGone {
		t.Errorf("%d calls, restart state %v", l.Calls(), l.RestartState())
	}
}
