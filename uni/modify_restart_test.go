package uni

import (
	"errors"
	"slices"
	"testing"
)

// modifyIn returns an active call in modification state ms. The yielded
// states are reached as the side that did not originate the call, through
// a collision; the others as the originator.
func modifyIn(t *testing.T, ms ModifyState) (*Link, CallID) {
	t.Helper()
	originator := ms != ModifyYieldedReceived && ms != ModifyYielded
	l, id := linkIn(t, StateActive, originator, false)
	switch ms {
	case ModifyRequested, ModifyYieldedReceived, ModifyYielded:
		o := ok(t)(l.ModifyQoS(id, &TrafficDescriptor{FwdPCR01: Some(5000), BwdPCR01: Some(5000), BestEffort: true}))
		if m := wantSent(t, o, MsgModifyRequest); m.Traffic.FwdPCR01.Value != 5000 {
			t.Fatalf("MODIFY REQUEST traffic %+v", m.Traffic)
		}
		wantTimers(t, o, "+T360")
	}
	switch ms {
	case ModifyReceived, ModifyYieldedReceived, ModifyYielded:
		l.Receive(peerMsg(MsgModifyRequest, id))
	}
	if ms == ModifyYielded {
		ok(t)(l.AcceptModify(id))
	}
	if got, _ := l.ModifyState(id); got != ms {
		t.Fatalf("modify state %v, want %v", got, ms)
	}
	return l, id
}

// TestModifyMatrix: each Q.2963.1 message in each modification state.
func TestModifyMatrix(t *testing.T) {
	type mcell struct {
		next ModifyState
		send MsgType // 0: nothing
		inds []IndicationKind
		tops []string
	}
	st101 := func(ms ModifyState) mcell { return mcell{next: ms, send: MsgStatus} }
	want := map[ModifyState]map[MsgType]mcell{
		ModifyNone: {
			MsgModifyRequest: {next: ModifyReceived, inds: []IndicationKind{IndModify}},
			MsgModifyAck:     st101(ModifyNone),
			MsgModifyReject:  st101(ModifyNone),
		},
		ModifyRequested: {
			MsgModifyRequest: {next: ModifyRequested, send: MsgModifyReject}, // collision on our call: ours wins
			MsgModifyAck:     {next: ModifyNone, inds: []IndicationKind{IndModified}, tops: []string{"-T360"}},
			MsgModifyReject:  {next: ModifyNone, inds: []IndicationKind{IndModifyRejected}, tops: []string{"-T360"}},
		},
		ModifyReceived: {
			MsgModifyRequest: st101(ModifyReceived),
			MsgModifyAck:     st101(ModifyReceived),
			MsgModifyReject:  st101(ModifyReceived),
		},
		// Our request lost a collision: the winner's MODIFY REJECT of it
		// is absorbed, anything else is out of place.
		ModifyYieldedReceived: {
			MsgModifyRequest: st101(ModifyYieldedReceived),
			MsgModifyAck:     st101(ModifyYieldedReceived),
			MsgModifyReject:  {next: ModifyReceived, tops: []string{"-T360"}},
		},
		ModifyYielded: {
			MsgModifyRequest: {next: ModifyYieldedReceived, inds: []IndicationKind{IndModify}},
			MsgModifyAck:     st101(ModifyYielded),
			MsgModifyReject:  {next: ModifyNone, tops: []string{"-T360"}},
		},
	}
	for ms, row := range want {
		for mt, c := range row {
			t.Run(ms.String()+"/"+mt.String(), func(t *testing.T) {
				l, id := modifyIn(t, ms)
				o := l.Receive(peerMsg(mt, id))
				switch c.send {
				case 0:
					wantSent(t, o)
				case MsgStatus:
					wantStatus(t, o, CauseMessageIncompatible, []byte{byte(mt)}, StateActive)
				default:
					m := wantSent(t, o, c.send)
					if cause, _ := m.Cause(); cause != CauseMessageIncompatible {
						t.Errorf("collision refused with %v, want 101", cause)
					}
				}
				wantInds(t, o, c.inds...)
				wantTimers(t, o, c.tops...)
				if got, _ := l.ModifyState(id); got != c.next {
					t.Errorf("modify state %v, want %v", got, c.next)
				}
				wantState(t, l, id, StateActive)
				for _, ind := range o.Indications {
					switch ind.Kind {
					case IndModify:
						if ind.Traffic == nil || ind.Traffic.FwdPCR01.Value != 200000 {
							t.Errorf("IndModify traffic %+v", ind.Traffic)
						}
					case IndModified:
						if ind.Traffic == nil || ind.Traffic.FwdPCR01.Value != 5000 {
							t.Errorf("IndModified traffic %+v, want the one requested", ind.Traffic)
						}
					case IndModifyRejected:
						if ind.Cause.Value != CauseCellRateUnavailable {
							t.Errorf("IndModifyRejected %v", ind)
						}
					}
				}
			})
		}
	}
	// Outside U10 every MODIFY message is incompatible.
	for _, st := range []CallState{StateCallInitiated, StateConnectRequest, StateReleaseRequest, StateReleaseIndication} {
		for _, mt := range []MsgType{MsgModifyRequest, MsgModifyAck, MsgModifyReject} {
			l, id := linkIn(t, st, true, false)
			wantStatus(t, l.Receive(peerMsg(mt, id)), CauseMessageIncompatible, []byte{byte(mt)}, st)
		}
	}
}

// TestModifyAnswers: the local answers to a MODIFY REQUEST, and requests
// refused while a modification is in progress.
func TestModifyAnswers(t *testing.T) {
	l, id := modifyIn(t, ModifyReceived)
	if _, err := l.ModifyQoS(id, trafficUBR()); !errors.Is(err, ErrState) {
		t.Errorf("ModifyQoS while one is received: %v", err)
	}
	wantSent(t, ok(t)(l.AcceptModify(id)), MsgModifyAck)
	if got, _ := l.ModifyState(id); got != ModifyNone {
		t.Errorf("after accepting: %v", got)
	}
	l, id = modifyIn(t, ModifyReceived)
	m := wantSent(t, ok(t)(l.RejectModify(id, NewCause(CauseUnsupportedTraffic))), MsgModifyReject)
	if c, _ := m.Cause(); c != CauseUnsupportedTraffic {
		t.Errorf("MODIFY REJECT cause %v", c)
	}
	l, id = modifyIn(t, ModifyRequested)
	if _, err := l.ModifyQoS(id, trafficUBR()); !errors.Is(err, ErrState) {
		t.Errorf("second ModifyQoS: %v", err)
	}
	if _, err := l.AcceptModify(id); !errors.Is(err, ErrState) {
		t.Errorf("AcceptModify with none received: %v", err)
	}
	// MODIFY ACKNOWLEDGE carrying its own traffic descriptor: that one applies.
	ack := peerMsg(MsgModifyAck, id)
	ack.Traffic = &TrafficDescriptor{FwdPCR01: Some(4000), BwdPCR01: Some(4000), BestEffort: true}
	o := l.Receive(ack)
	if o.Indications[0].Traffic != ack.Traffic {
		t.Errorf("IndModified traffic %+v, want the acknowledgement's", o.Indications[0].Traffic)
	}
	// Clearing ends a pending modification with the call.
	l, id = modifyIn(t, ModifyRequested)
	o = ok(t)(l.Release(id, NewCause(CauseNormalCallClearing)))
	wantTimers(t, o, "-T360", "+T308")
}

// TestRestartOutgoing: our RESTART clears the calls on the VCs and waits
// for the acknowledgement in Rest1.
func TestRestartOutgoing(t *testing.T) {
	l := NewLink(Config{})
	a, _, _ := l.Setup(setupMsg(false))
	s := setupMsg(false)
	s.ConnectionID = &ConnectionID{VPAssociated: VPExplicit, VPCI: 0, VCI: 77}
	b, _, _ := l.Setup(s)
	l.Receive(peerMsg(MsgSetup, remoteCall))

	// Indicated VC: only call b.
	o := ok(t)(l.Restart(&ConnectionID{VPAssociated: VPExplicit, VCI: 77}))
	m := wantSent(t, o, MsgRestart)
	if m.CallRef != (CallRef{}) || m.Restart.Class != RestartIndicatedVC || m.ConnectionID.VCI != 77 {
		t.Errorf("RESTART %v %+v %+v", m.CallRef, m.Restart, m.ConnectionID)
	}
	wantInds(t, o, IndReleased)
	if o.Indications[0].Call != b || o.Indications[0].Cause.Value != CauseTemporaryFailure {
		t.Errorf("released %v", o.Indications[0])
	}
	if !slices.Contains(timerOps(o), "+T316") || !slices.Contains(timerOps(o), "-T303") {
		t.Errorf("timers %v", timerOps(o))
	}
	if l.RestartState() != RestRequest || l.Calls() != 2 {
		t.Errorf("restart state %v, %d calls", l.RestartState(), l.Calls())
	}
	if _, err := l.Restart(&ConnectionID{VPAssociated: VPExplicit, VCI: 77}); !errors.Is(err, ErrState) {
		t.Errorf("second Restart of the VC: %v", err)
	}
	st := wantStatus(t, l.Receive(peerMsg(MsgStatusEnquiry, CallID{})), CauseResponseToStatusEnquiry, nil, StateRestartRequest)
	if st.CallRef != (CallRef{Flag: true}) {
		t.Errorf("STATUS on %v", st.CallRef)
	}
	ack := peerMsg(MsgRestartAck, CallID{})
	ack.CallRef.Flag = true
	ack.Restart.Class, ack.ConnectionID = RestartIndicatedVC, &ConnectionID{VPAssociated: VPExplicit, VCI: 77}
	o = l.Receive(ack)
	wantSent(t, o)
	wantTimers(t, o, "-T316")
	wantInds(t, o, IndRestartComplete)
	if l.RestartState() != RestNull {
		t.Errorf("restart state %v", l.RestartState())
	}

	// All VCs: every call, local and remote, in a fixed order.
	o = ok(t)(l.Restart(nil))
	if m := wantSent(t, o, MsgRestart); m.Restart.Class != RestartAllVCs || m.ConnectionID != nil {
		t.Errorf("RESTART %+v %+v", m.Restart, m.ConnectionID)
	}
	wantInds(t, o, IndReleased, IndReleased)
	if o.Indications[0].Call != a || o.Indications[1].Call != remoteCall || l.Calls() != 0 {
		t.Errorf("released %v then %v, %d calls left", o.Indications[0].Call, o.Indications[1].Call, l.Calls())
	}
}

// TestRestartIncoming: the peer's RESTART, its errors and Rest2.
func TestRestartIncoming(t *testing.T) {
	vc := func(vci uint16) *ConnectionID { return &ConnectionID{VPAssociated: VPExplicit, VCI: vci} }
	restart := func(class uint8, ci *ConnectionID) *Message {
		m := peerMsg(MsgRestart, CallID{})
		m.Restart.Class, m.ConnectionID = class, ci
		return m
	}
	newLink := func() *Link {
		l := NewLink(Config{})
		s := peerMsg(MsgSetup, remoteCall)
		s.ConnectionID = vc(55)
		l.Receive(s)
		l.Setup(setupMsg(false))
		return l
	}
	for _, tc := range []struct {
		name  string
		m     *Message
		cause Cause
		diag  byte
	}{
		{"indicated VC without connection identifier", restart(RestartIndicatedVC, nil), CauseMandatoryIEMissing, byte(IEConnectionID)},
		{"unknown class", restart(5, nil), CauseInvalidIEContents, byte(IERestartIndicator)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLink()
			s := wantStatus(t, l.Receive(tc.m), tc.cause, []byte{tc.diag}, StateNull)
			if s.CallRef != (CallRef{Flag: true}) {
				t.Errorf("STATUS on %v", s.CallRef)
			}
			if l.Calls() != 2 || l.RestartState() != RestNull {
				t.Errorf("%d calls, %v", l.Calls(), l.RestartState())
			}
		})
	}

	// A VC no call uses is idle already: acknowledged at once.
	l := newLink()
	o := l.Receive(restart(RestartIndicatedVC, vc(99)))
	if ack := wantSent(t, o, MsgRestartAck); ack.ConnectionID == nil || ack.ConnectionID.VCI != 99 {
		t.Errorf("RESTART ACK %+v", ack.ConnectionID)
	}
	if l.Calls() != 2 || l.RestartState() != RestNull {
		t.Errorf("%d calls, %v", l.Calls(), l.RestartState())
	}

	l = newLink()
	m := restart(RestartIndicatedVC, vc(55))
	o = l.Receive(m)
	wantSent(t, o)
	wantInds(t, o, IndReleased, IndRestart)
	if o.Indications[0].Call != remoteCall || o.Indications[1].Msg != m {
		t.Errorf("indications %v", o.Indications)
	}
	wantTimers(t, o, "+T317")
	if l.RestartState() != RestRestart || l.Calls() != 1 {
		t.Errorf("%v, %d calls", l.RestartState(), l.Calls())
	}
	wantStatus(t, l.Receive(peerMsg(MsgStatusEnquiry, CallID{})), CauseResponseToStatusEnquiry, nil, StateRestart)
	// The peer's retransmission is ignored; another RESTART is not compatible.
	if o := l.Receive(restart(RestartIndicatedVC, vc(55))); !o.Empty() {
		t.Errorf("retransmitted RESTART answered: %+v", o)
	}
	// A RESTART of other VCs runs on its own (it spares our call, set up
	// on this link).
	o = l.Receive(restart(RestartAllVCs, nil))
	wantSent(t, o)
	wantInds(t, o, IndRestart)
	if l.Calls() != 1 {
		t.Errorf("%d calls, want ours kept", l.Calls())
	}
	wantStatus(t, l.Receive(peerMsg(MsgRestartAck, CallID{})), CauseMessageIncompatible, []byte{byte(MsgRestartAck)}, StateRestart)
	o = ok(t)(l.RestartDone(nil))
	if ack := wantSent(t, o, MsgRestartAck); ack.Restart.Class != RestartAllVCs {
		t.Errorf("RESTART ACK %+v", ack.Restart)
	}

	o = ok(t)(l.RestartDone(vc(55)))
	ack := wantSent(t, o, MsgRestartAck)
	if ack.CallRef != (CallRef{Flag: true}) || ack.Restart.Class != RestartIndicatedVC || ack.ConnectionID.VCI != 55 {
		t.Errorf("RESTART ACK %v %+v %+v", ack.CallRef, ack.Restart, ack.ConnectionID)
	}
	wantTimers(t, o, "-T317")
	if l.RestartState() != RestNull {
		t.Errorf("%v", l.RestartState())
	}
	if _, err := l.RestartDone(nil); !errors.Is(err, ErrState) {
		t.Errorf("RestartDone in Rest0: %v", err)
	}

	// All VCs: calls set up on an earlier signalling link are cleared.
	l = newLink()
	l.epoch++ // as if the link had gone down and come back since
	o = l.Receive(restart(RestartAllVCs, nil))
	wantInds(t, o, IndReleased, IndReleased, IndRestart)
	if !o.Indications[0].Restarted || !o.Indications[1].Restarted || l.Calls() != 0 {
		t.Errorf("released %v, %v; %d calls left", o.Indications[0], o.Indications[1], l.Calls())
	}
	// Calls set up on this link are the restarted peer's new ones: kept.
	l = newLink()
	o = l.Receive(restart(RestartAllVCs, nil))
	wantInds(t, o, IndRestart)
	if l.Calls() != 2 {
		t.Errorf("%d calls left, want 2", l.Calls())
	}
}

// TestRestartStateMatrix: RESTART, RESTART ACKNOWLEDGE and STATUS ENQUIRY
// on the global call reference in each restart state.
func TestRestartStateMatrix(t *testing.T) {
	in := func(s RestartState) *Link {
		l := NewLink(Config{})
		switch s {
		case RestRequest:
			ok(t)(l.Restart(nil))
		case RestRestart:
			l.Receive(peerMsg(MsgRestart, CallID{}))
		}
		if l.RestartState() != s {
			t.Fatalf("in %v, want %v", l.RestartState(), s)
		}
		return l
	}
	for _, s := range []RestartState{RestNull, RestRequest, RestRestart} {
		// RESTART (all VCs).
		l := in(s)
		o := l.Receive(peerMsg(MsgRestart, CallID{}))
		if s == RestRestart {
			if !o.Empty() {
				t.Errorf("%v: repeated RESTART answered", s)
			}
		} else {
			wantInds(t, o, IndRestart)
		}
		// RESTART ACKNOWLEDGE.
		l = in(s)
		o = l.Receive(peerMsg(MsgRestartAck, CallID{}))
		if s == RestRequest {
			wantInds(t, o, IndRestartComplete)
		} else {
			wantStatus(t, o, CauseMessageIncompatible, []byte{byte(MsgRestartAck)}, s.CallState())
		}
		// STATUS ENQUIRY.
		l = in(s)
		wantStatus(t, l.Receive(peerMsg(MsgStatusEnquiry, CallID{})), CauseResponseToStatusEnquiry, nil, s.CallState())
	}
	// Both procedures at once: Rest1 is reported.
	l := in(RestRequest)
	l.Receive(peerMsg(MsgRestart, CallID{}))
	if l.RestartState() != RestRequest {
		t.Errorf("%v", l.RestartState())
	}
}

// TestLinkFailure: SAAL failure clears the calls that are not active at
// once, keeps active ones under T309 and sends nothing; T309 expiry clears
// them with cause 27; LinkUp within T309 keeps them and audits each with a
// STATUS ENQUIRY.
func TestLinkFailure(t *testing.T) {
	setup := func() (*Link, map[CallState]CallID) {
		l := NewLink(Config{})
		ids := map[CallState]CallID{}
		u1, _, _ := l.Setup(setupMsg(false))
		ids[StateCallInitiated] = u1
		u10, _, _ := l.Setup(setupMsg(false))
		l.Receive(peerMsg(MsgConnect, u10))
		ids[StateActive] = u10
		u11, _, _ := l.Setup(setupMsg(false))
		l.Receive(peerMsg(MsgConnect, u11))
		l.Release(u11, NewCause(CauseNormalCallClearing))
		ids[StateReleaseRequest] = u11
		l.Receive(peerMsg(MsgSetup, remoteCall))
		ids[StateCallPresent] = remoteCall
		u12 := CallID{Ref: 6}
		l.Receive(peerMsg(MsgSetup, u12))
		l.Accept(u12, nil)
		l.Receive(peerMsg(MsgConnectAck, u12))
		l.Receive(peerMsg(MsgRelease, u12))
		ids[StateReleaseIndication] = u12
		// An active call with a modification pending.
		mod, _, _ := l.Setup(setupMsg(false))
		l.Receive(peerMsg(MsgConnect, mod))
		l.ModifyQoS(mod, trafficUBR())
		ids[StateConnectRequest] = mod // (key only names it)
		return l, ids
	}

	l, ids := setup()
	o := l.LinkDown()
	wantSent(t, o)
	var released []CallID
	for _, ind := range o.Indications {
		switch ind.Kind {
		case IndReleased:
			released = append(released, ind.Call)
			if ind.Cause.Value != CauseDestinationOutOfOrder {
				t.Errorf("released with %v", ind.Cause)
			}
		case IndModifyRejected:
			if ind.Call != ids[StateConnectRequest] || ind.Cause.Value != CauseDestinationOutOfOrder {
				t.Errorf("%v", ind)
			}
		default:
			t.Errorf("unexpected %v", ind)
		}
	}
	wantReleased := []CallID{ids[StateCallInitiated], ids[StateReleaseRequest], ids[StateCallPresent], ids[StateReleaseIndication]}
	if !slices.Equal(released, wantReleased) {
		t.Errorf("released %v, want %v", released, wantReleased)
	}
	if ops := timerOps(o); ops[len(ops)-1] != "+T309" || !slices.Contains(ops, "-T303") || !slices.Contains(ops, "-T308") || !slices.Contains(ops, "-T360") {
		t.Errorf("timers %v", ops)
	}
	if l.Calls() != 2 || l.IsUp() {
		t.Fatalf("%d calls kept, up %v", l.Calls(), l.IsUp())
	}
	// While down: nothing received, nothing sent, requests refused, a
	// release is local.
	if o := l.Receive(peerMsg(MsgStatusEnquiry, ids[StateActive])); !o.Empty() {
		t.Errorf("message processed while down")
	}
	if _, _, err := l.Setup(setupMsg(false)); !errors.Is(err, ErrLinkDown) {
		t.Errorf("Setup while down: %v", err)
	}
	if _, err := l.StatusEnquiry(ids[StateActive]); !errors.Is(err, ErrLinkDown) {
		t.Errorf("StatusEnquiry while down: %v", err)
	}
	if _, err := l.Restart(nil); !errors.Is(err, ErrLinkDown) {
		t.Errorf("Restart while down: %v", err)
	}
	if o := l.LinkDown(); !o.Empty() {
		t.Errorf("second LinkDown: %+v", o)
	}
	o = ok(t)(l.Release(ids[StateConnectRequest], NewCause(CauseNormalCallClearing)))
	wantSent(t, o)
	wantInds(t, o, IndReleased)

	// T309 expiry clears the rest with cause 27, sending nothing.
	o = l.Expire(TimerKey{Timer: T309})
	wantSent(t, o)
	wantInds(t, o, IndReleased)
	if o.Indications[0].Call != ids[StateActive] || o.Indications[0].Cause.Value != CauseDestinationOutOfOrder || l.Calls() != 0 {
		t.Errorf("T309: %v, %d calls", o.Indications, l.Calls())
	}
	if o := l.LinkUp(); !o.Empty() {
		t.Errorf("LinkUp after T309: %+v", o)
	}

	// Re-established within T309.
	l, ids = setup()
	l.LinkDown()
	o = l.LinkUp()
	if got := msgTypes(o); !slices.Equal(got, []MsgType{MsgStatusEnquiry, MsgStatusEnquiry}) {
		t.Fatalf("audit sent %v", got)
	}
	if o.Messages[0].Call != ids[StateActive] {
		t.Errorf("audit order %v", o.Messages[0].Call)
	}
	wantTimers(t, o, "-T309", "+T322", "+T322")
	wantInds(t, o)
	if o := l.Expire(TimerKey{Timer: T309}); !o.Empty() {
		t.Errorf("stale T309 acted: %+v", o)
	}
	// The peer still has the call: it stays. The peer lost it: cleared.
	wantInds(t, l.Receive(peerMsg(MsgStatus, ids[StateActive])), IndStatus)
	wantState(t, l, ids[StateActive], StateActive)
	lost := peerMsg(MsgStatus, ids[StateConnectRequest])
	lost.CallState.State = StateNull
	o = l.Receive(lost)
	wantInds(t, o, IndReleased)
	wantTimers(t, o, "-T322")
	if o := l.LinkUp(); !o.Empty() {
		t.Errorf("second LinkUp: %+v", o)
	}
}

// TestLinkFailureParties: on an active point-to-multipoint call the
// parties not active are released when the link fails.
func TestLinkFailureParties(t *testing.T) {
	l, id := partyIn(t, true, PartyAddPartyInitiated)
	o := l.LinkDown()
	wantInds(t, o, IndPartyRejected)
	if !slices.Equal(l.Parties(id), []uint16{0}) {
		t.Errorf("parties %v", l.Parties(id))
	}
	wantTimers(t, o, "-T399", "+T309")

	// A restart in progress ends with the link.
	l = NewLink(Config{})
	ok(t)(l.Restart(nil))
	o = l.LinkDown()
	wantInds(t, o, IndRestartFailed)
	wantTimers(t, o, "-T316")
	l = NewLink(Config{})
	l.Receive(peerMsg(MsgRestart, CallID{}))
	o = l.LinkDown()
	wantTimers(t, o, "-T317")
	if l.RestartState() != RestNull {
		t.Errorf("%v", l.RestartState())
	}
}
