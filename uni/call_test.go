package uni

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// cell is what a (state, received message) pair must produce.
type cell struct {
	next  CallState // StateNull: the call is gone
	send  []MsgType
	cause Cause // cause of the first message sent, when one is
	inds  []IndicationKind
}

// expectedCells lists every (state, message) pair where the message is
// expected, or has a procedure of its own. Every other pair of a
// point-to-point call is "not compatible with the call state": STATUS
// cause 101, diagnostic the message type, the state unchanged.
func expectedCells() map[CallState]map[MsgType]cell {
	all := map[CallState]map[MsgType]cell{}
	for _, st := range userStates {
		all[st] = map[MsgType]cell{
			MsgSetup:           {next: st}, // duplicate SETUP: ignored
			MsgReleaseComplete: {next: StateNull, inds: []IndicationKind{IndReleased}},
			MsgStatusEnquiry:   {next: st, send: []MsgType{MsgStatus}, cause: CauseResponseToStatusEnquiry},
			MsgRestart:         {next: st, send: []MsgType{MsgStatus}, cause: CauseInvalidCallRef},
			MsgRestartAck:      {next: st, send: []MsgType{MsgStatus}, cause: CauseInvalidCallRef},
		}
		// RELEASE: refused or withdrawn before the call is active.
		all[st][MsgRelease] = cell{next: StateNull, send: []MsgType{MsgReleaseComplete}, inds: []IndicationKind{IndReleased}}
	}
	all[StateCallInitiated][MsgCallProceeding] = cell{next: StateOutgoingCallProceeding, inds: []IndicationKind{IndProceeding}}
	for _, st := range []CallState{StateCallInitiated, StateOutgoingCallProceeding} {
		all[st][MsgConnect] = cell{next: StateActive, send: []MsgType{MsgConnectAck}, inds: []IndicationKind{IndConnected}}
	}
	all[StateConnectRequest][MsgConnectAck] = cell{next: StateActive, inds: []IndicationKind{IndConnected}}
	all[StateActive][MsgRelease] = cell{next: StateReleaseIndication, inds: []IndicationKind{IndRelease}}
	all[StateReleaseRequest][MsgRelease] = cell{next: StateNull, inds: []IndicationKind{IndReleased}} // clear collision
	all[StateReleaseIndication][MsgRelease] = cell{next: StateReleaseIndication}                      // repeated: ignored
	all[StateActive][MsgModifyRequest] = cell{next: StateActive, inds: []IndicationKind{IndModify}}
	// STATUS reporting U11 (the peer's RELEASE in flight) fits every state;
	// in U11 and U12 a STATUS is only noted.
	for _, st := range userStates {
		c := cell{next: st, inds: []IndicationKind{IndStatus}}
		if st == StateReleaseRequest || st == StateReleaseIndication {
			c.inds = nil
		}
		all[st][MsgStatus] = c
	}
	return all
}

// TestCallStateMessageMatrix feeds every implemented message type to a
// point-to-point call in every state, as caller and as called side where
// the state exists for both, and checks the reply, the next state and the
// indications; every pair not in expectedCells must get STATUS 101.
func TestCallStateMessageMatrix(t *testing.T) {
	want := expectedCells()
	unexpected := map[[2]int]bool{}
	for _, st := range userStates {
		roles := []bool{st != StateCallPresent && st != StateIncomingCallProceeding && st != StateConnectRequest}
		if st >= StateActive {
			roles = []bool{true, false}
		}
		for _, caller := range roles {
			for _, mt := range allMsgTypes() {
				name := st.String() + "/" + mt.String()
				if caller {
					name += "/caller"
				}
				t.Run(name, func(t *testing.T) {
					l, id := linkIn(t, st, caller, false)
					m := peerMsg(mt, id)
					if mt == MsgStatus {
						m.CallState.State = StateReleaseRequest
					}
					o := l.Receive(m)
					c, ok := want[st][mt]
					if !ok {
						unexpected[[2]int{int(st), int(mt)}] = true
						wantStatus(t, o, CauseMessageIncompatible, []byte{byte(mt)}, st)
						wantState(t, l, id, st)
						return
					}
					wantSent(t, o, c.send...)
					if c.cause != 0 {
						if got, _ := o.Messages[0].Msg.Cause(); got != c.cause {
							t.Errorf("cause %v, want %v", got, c.cause)
						}
					}
					wantInds(t, o, c.inds...)
					wantState(t, l, id, c.next)
					if c.next == StateNull && l.Calls() != 0 {
						t.Errorf("%d calls left", l.Calls())
					}
				})
			}
		}
	}
	// 18 message types in 8 states: 144 cells, 61 with a procedure of
	// their own (7 in every state, plus CALL PROCEEDING and CONNECT in U1,
	// CONNECT in U3, CONNECT ACKNOWLEDGE in U8, MODIFY REQUEST in U10).
	if len(unexpected) != 83 {
		t.Errorf("%d unexpected cells exercised, want 83", len(unexpected))
	}
}

// TestUnknownMessageTypeInEveryState: a message type the codec does not
// implement (ALERTING, UNI 4.0) under regular handling is answered with
// STATUS 97 whose diagnostic is the type, in every state.
func TestUnknownMessageTypeInEveryState(t *testing.T) {
	for _, st := range userStates {
		t.Run(st.String(), func(t *testing.T) {
			l, id := linkIn(t, st, true, false)
			b := rawMessage([]byte{0x09, 0x03, 0, 0, 0, 0x01, 0x80, 0, 0}, ieCause16)
			cr := peerRef(id)
			b[2], b[3], b[4] = byte(cr.Value>>16), byte(cr.Value>>8), byte(cr.Value)
			if cr.Flag {
				b[2] |= 0x80
			}
			o := l.ReceiveBytes(b)
			wantStatus(t, o, CauseMessageTypeUnknown, []byte{0x01}, st)
			wantState(t, l, id, st)

			// The same for a Message built by hand.
			o = l.Receive(&Message{Type: 0x01, CallRef: cr})
			wantStatus(t, o, CauseMessageTypeUnknown, []byte{0x01}, st)
		})
	}
}

// TestCallerFlow walks the caller through U1 → U3 → U10 → U11 → U0 and
// checks every message, timer and indication.
func TestCallerFlow(t *testing.T) {
	l := NewLink(Config{})
	setup := setupMsg(false)
	setup.ConnectionID = &ConnectionID{VPAssociated: VPExplicit, VPCI: 0, VCI: 100}
	id, o, err := l.Setup(setup)
	if err != nil {
		t.Fatal(err)
	}
	if id != (CallID{Ref: 1, Local: true}) {
		t.Errorf("first call %v, want local cr=1", id)
	}
	m := wantSent(t, o, MsgSetup)
	if m.CallRef != (CallRef{Value: 1}) {
		t.Errorf("SETUP call reference %v, want value 1 flag 0", m.CallRef)
	}
	wantTimers(t, o, "+T303")
	wantState(t, l, id, StateCallInitiated)

	o = l.Receive(peerMsg(MsgCallProceeding, id))
	wantTimers(t, o, "-T303", "+T310")
	wantInds(t, o, IndProceeding)
	wantState(t, l, id, StateOutgoingCallProceeding)

	conn := peerMsg(MsgConnect, id)
	conn.ConnectionID = &ConnectionID{VPAssociated: VPExplicit, VPCI: 0, VCI: 200}
	o = l.Receive(conn)
	ack := wantSent(t, o, MsgConnectAck)
	if ack.CallRef != (CallRef{Value: 1}) {
		t.Errorf("CONNECT ACK call reference %v", ack.CallRef)
	}
	wantTimers(t, o, "-T310")
	wantInds(t, o, IndConnected)
	if o.Indications[0].Msg != conn {
		t.Error("IndConnected does not carry the CONNECT")
	}
	if ci, ok := l.ConnectionID(id); !ok || ci.VCI != 200 {
		t.Errorf("connection id %v %v, want the CONNECT's VCI 200", ci, ok)
	}

	o = ok(t)(l.Release(id, NewCause(CauseNormalCallClearing)))
	rel := wantSent(t, o, MsgRelease)
	if c, _ := rel.Cause(); c != CauseNormalCallClearing {
		t.Errorf("RELEASE cause %v", c)
	}
	wantTimers(t, o, "+T308")
	wantInds(t, o)
	wantState(t, l, id, StateReleaseRequest)

	o = l.Receive(&Message{Type: MsgReleaseComplete, CallRef: peerRef(id)})
	wantSent(t, o)
	wantTimers(t, o, "-T308")
	wantInds(t, o, IndReleased)
	if c := o.Indications[0].Cause.Value; c != CauseNormalCallClearing {
		t.Errorf("released with %v, want our own cause 16 when RELEASE COMPLETE has none", c)
	}
	if l.Calls() != 0 {
		t.Errorf("%d calls left", l.Calls())
	}
}

// TestCalledFlow walks the called side through U6 → U9 → U8 → U10 → U12 → U0.
func TestCalledFlow(t *testing.T) {
	l := NewLink(Config{})
	setup := peerMsg(MsgSetup, remoteCall)
	o := l.Receive(setup)
	wantSent(t, o)
	wantInds(t, o, IndSetup)
	if o.Indications[0].Msg != setup || o.Indications[0].Call != remoteCall {
		t.Errorf("IndSetup = %+v", o.Indications[0])
	}
	wantState(t, l, remoteCall, StateCallPresent)

	o = ok(t)(l.Proceed(remoteCall, &ConnectionID{VPAssociated: VPExplicit, VCI: 42}))
	cp := wantSent(t, o, MsgCallProceeding)
	if cp.CallRef != (CallRef{Value: 5, Flag: true}) || cp.ConnectionID == nil || cp.ConnectionID.VCI != 42 {
		t.Errorf("CALL PROCEEDING %v %+v", cp.CallRef, cp.ConnectionID)
	}
	wantState(t, l, remoteCall, StateIncomingCallProceeding)

	o = ok(t)(l.Accept(remoteCall, &Message{AAL: &AALParameters{Type: AAL5, FwdMaxSDU: Some(9188), BwdMaxSDU: Some(9188)}}))
	c := wantSent(t, o, MsgConnect)
	if c.AAL == nil || c.CallRef.Flag != true {
		t.Errorf("CONNECT %+v", c)
	}
	wantTimers(t, o, "+T313")
	wantState(t, l, remoteCall, StateConnectRequest)

	o = l.Receive(peerMsg(MsgConnectAck, remoteCall))
	wantTimers(t, o, "-T313")
	wantInds(t, o, IndConnected)
	wantState(t, l, remoteCall, StateActive)

	rel := peerMsg(MsgRelease, remoteCall)
	rel.Causes = []CauseIE{NewCause(CauseDestinationOutOfOrder)}
	o = l.Receive(rel)
	wantSent(t, o)
	wantInds(t, o, IndRelease)
	if o.Indications[0].Cause.Value != CauseDestinationOutOfOrder {
		t.Errorf("IndRelease cause %v", o.Indications[0].Cause)
	}
	wantState(t, l, remoteCall, StateReleaseIndication)

	o = ok(t)(l.Release(remoteCall, NewCause(CauseNormalCallClearing)))
	wantSent(t, o, MsgReleaseComplete)
	wantInds(t, o, IndReleased)
	if o.Indications[0].Cause.Value != CauseDestinationOutOfOrder {
		t.Errorf("IndReleased cause %v, want the peer's 27", o.Indications[0].Cause)
	}
	wantState(t, l, remoteCall, StateNull)
}

// TestReject: an incoming call refused with RELEASE COMPLETE and the cause.
func TestReject(t *testing.T) {
	for _, st := range []CallState{StateCallPresent, StateIncomingCallProceeding} {
		l, id := linkIn(t, st, false, false)
		o := ok(t)(l.Reject(id, NewCause(CauseIncompatibleDestination, byte(IEBHLI))))
		m := wantSent(t, o, MsgReleaseComplete)
		if c, _ := m.Cause(); c != CauseIncompatibleDestination || !bytes.Equal(m.Causes[0].Diagnostic, []byte{byte(IEBHLI)}) {
			t.Errorf("RELEASE COMPLETE cause %+v", m.Causes)
		}
		wantInds(t, o, IndReleased)
		wantState(t, l, id, StateNull)
	}
}

// TestReleaseInEveryState: Release from each state.
func TestReleaseInEveryState(t *testing.T) {
	for _, st := range userStates {
		t.Run(st.String(), func(t *testing.T) {
			l, id := linkIn(t, st, true, false)
			o, err := l.Release(id, NewCause(CauseNormalCallClearing))
			switch st {
			case StateReleaseRequest:
				if !errors.Is(err, ErrState) || !o.Empty() {
					t.Fatalf("Release in U11: %v, %+v", err, o)
				}
			case StateReleaseIndication:
				wantSent(t, ok(t)(o, err), MsgReleaseComplete)
				wantInds(t, o, IndReleased)
				wantState(t, l, id, StateNull)
			default:
				wantSent(t, ok(t)(o, err), MsgRelease)
				wantInds(t, o)
				if got := timerOps(o); got[len(got)-1] != "+T308" {
					t.Errorf("timers %v, want T308 started last", got)
				}
				wantState(t, l, id, StateReleaseRequest)
			}
		})
	}
}

// TestLocalRequestsRefused: requests not allowed in a state are refused
// with a *RequestError, change nothing and produce nothing.
func TestLocalRequestsRefused(t *testing.T) {
	type req struct {
		name string
		do   func(l *Link, id CallID) (Output, error)
		ok   map[CallState]bool // states (of a point-to-point call) where it is allowed
	}
	cause := NewCause(CauseNormalCallClearing)
	reqs := []req{
		{"Proceed", func(l *Link, id CallID) (Output, error) { return l.Proceed(id, nil) }, map[CallState]bool{StateCallPresent: true}},
		{"Accept", func(l *Link, id CallID) (Output, error) { return l.Accept(id, nil) },
			map[CallState]bool{StateCallPresent: true, StateIncomingCallProceeding: true}},
		{"Reject", func(l *Link, id CallID) (Output, error) { return l.Reject(id, cause) },
			map[CallState]bool{StateCallPresent: true, StateIncomingCallProceeding: true}},
		{"ModifyQoS", func(l *Link, id CallID) (Output, error) { return l.ModifyQoS(id, trafficUBR()) }, map[CallState]bool{StateActive: true}},
		{"AcceptModify", func(l *Link, id CallID) (Output, error) { return l.AcceptModify(id) }, nil},
		{"RejectModify", func(l *Link, id CallID) (Output, error) { return l.RejectModify(id, cause) }, nil},
		{"AddParty", func(l *Link, id CallID) (Output, error) {
			_, o, err := l.AddParty(id, &Message{Called: CalledAESA(aesaCallee)})
			return o, err
		}, nil},
		{"DropParty", func(l *Link, id CallID) (Output, error) { return l.DropParty(id, 0, cause) }, nil},
		{"AcceptParty", func(l *Link, id CallID) (Output, error) { return l.AcceptParty(id, 0) }, nil},
		{"RejectParty", func(l *Link, id CallID) (Output, error) { return l.RejectParty(id, 0, cause) }, nil},
	}
	for _, r := range reqs {
		for _, st := range userStates {
			if r.ok[st] {
				continue
			}
			t.Run(r.name+"/"+st.String(), func(t *testing.T) {
				l, id := linkIn(t, st, true, false)
				o, err := r.do(l, id)
				var re *RequestError
				if !errors.As(err, &re) || re.Op != r.name || re.Call != id || re.State != st {
					t.Fatalf("err = %v, want a RequestError for %s in %v", err, r.name, st)
				}
				if !errors.Is(err, ErrState) && !errors.Is(err, ErrNotMultipoint) {
					t.Errorf("err = %v, want ErrState or ErrNotMultipoint", err)
				}
				if !o.Empty() {
					t.Errorf("refused request produced %+v", o)
				}
				wantState(t, l, id, st)
			})
		}
	}
	// Unknown calls.
	l := NewLink(Config{})
	nobody := CallID{Ref: 77, Local: true}
	for _, r := range reqs {
		if _, err := r.do(l, nobody); !errors.Is(err, ErrUnknownCall) {
			t.Errorf("%s on an unknown call: %v, want ErrUnknownCall", r.name, err)
		}
	}
	if _, err := l.Release(nobody, cause); !errors.Is(err, ErrUnknownCall) {
		t.Errorf("Release on an unknown call: %v", err)
	}
	if _, err := l.StatusEnquiry(nobody); !errors.Is(err, ErrUnknownCall) {
		t.Errorf("StatusEnquiry on an unknown call: %v", err)
	}
	// An invalid SETUP is refused before anything changes.
	bad := setupMsg(false)
	bad.QoS = nil
	if _, o, err := l.Setup(bad); !errors.As(err, new(*EncodeError)) || !o.Empty() || l.Calls() != 0 {
		t.Errorf("Setup without QoS: %v %+v, %d calls", err, o, l.Calls())
	}
	if e := (&RequestError{Op: "Accept", Call: remoteCall, State: StateActive, Err: ErrState}).Error(); e != "uni: Accept remote cr=0x5 in U10 active: not allowed in this state" {
		t.Errorf("RequestError text %q", e)
	}
}

// TestCallReferenceAllocation: values count up from 1, skip values in
// use, wrap below MaxCallRef without ever using 0, and local and remote
// calls may share a value.
func TestCallReferenceAllocation(t *testing.T) {
	l := NewLink(Config{})
	var ids []CallID
	for range 3 {
		id, _, err := l.Setup(setupMsg(false))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if !slices.Equal(ids, []CallID{{1, true}, {2, true}, {3, true}}) {
		t.Errorf("allocated %v", ids)
	}
	// The peer's call 1 is another call than ours.
	l.Receive(peerMsg(MsgSetup, CallID{Ref: 1}))
	if st, _ := l.CallState(CallID{Ref: 1}); st != StateCallPresent {
		t.Errorf("remote call 1 in %v", st)
	}
	if st, _ := l.CallState(CallID{Ref: 1, Local: true}); st != StateCallInitiated {
		t.Errorf("local call 1 in %v", st)
	}

	// Wrap: MaxCallRef is free, then 1…3 are taken, 4 is next.
	l.nextRef = MaxCallRef
	id, o, _ := l.Setup(setupMsg(false))
	if id.Ref != MaxCallRef || o.Messages[0].Msg.CallRef.Value != MaxCallRef {
		t.Errorf("got %v, want MaxCallRef", id)
	}
	id, _, _ = l.Setup(setupMsg(false))
	if id.Ref != 4 {
		t.Errorf("after the wrap got %v, want 4 (1-3 in use, 0 reserved)", id)
	}
	// A released value becomes free again.
	ok(t)(l.Release(CallID{Ref: 2, Local: true}, NewCause(CauseNormalCallClearing)))
	l.Receive(&Message{Type: MsgReleaseComplete, CallRef: CallRef{Value: 2, Flag: true}})
	l.nextRef = 1
	if id, _, _ = l.Setup(setupMsg(false)); id.Ref != 2 {
		t.Errorf("got %v, want the freed 2", id)
	}
}

// TestUnknownCallReference: the procedures for a call reference the Link
// does not know (Q.2931 §5.6.3.2).
func TestUnknownCallReference(t *testing.T) {
	unknown := CallID{Ref: 0x4242, Local: true} // a value we never allocated
	for _, mt := range allMsgTypes() {
		if mt == MsgRestart || mt == MsgRestartAck {
			continue // global call reference messages: TestGlobalCallReference
		}
		t.Run(mt.String(), func(t *testing.T) {
			l := NewLink(Config{})
			o := l.Receive(peerMsg(mt, unknown))
			switch mt {
			case MsgSetup:
				// A SETUP with flag 1 claims we allocated the value: ignored.
				if !o.Empty() || l.Calls() != 0 {
					t.Errorf("SETUP with flag 1: %+v", o)
				}
			case MsgReleaseComplete:
				if !o.Empty() {
					t.Errorf("stray RELEASE COMPLETE answered: %v", msgTypes(o))
				}
			case MsgStatus:
				m := wantSent(t, o, MsgReleaseComplete)
				if c, _ := m.Cause(); c != CauseMessageIncompatible {
					t.Errorf("cause %v, want 101", c)
				}
			case MsgStatusEnquiry:
				wantStatus(t, o, CauseResponseToStatusEnquiry, nil, StateNull)
			default:
				m := wantSent(t, o, MsgReleaseComplete)
				if c, _ := m.Cause(); c != CauseInvalidCallRef {
					t.Errorf("cause %v, want 81", c)
				}
				if m.CallRef != (CallRef{Value: 0x4242}) {
					t.Errorf("answered on %v, want the received reference with the flag flipped", m.CallRef)
				}
			}
			if l.Calls() != 0 {
				t.Errorf("a call was created")
			}
		})
	}
	// A STATUS reporting Null for an unknown call agrees with us.
	l := NewLink(Config{})
	st := peerMsg(MsgStatus, unknown)
	st.CallState.State = StateNull
	if o := l.Receive(st); !o.Empty() {
		t.Errorf("STATUS Null for an unknown call answered: %v", msgTypes(o))
	}
}

// TestGlobalCallReference: call messages on call reference 0 get STATUS
// 81; STATUS ENQUIRY gets STATUS 30 with the restart state.
func TestGlobalCallReference(t *testing.T) {
	for _, mt := range allMsgTypes() {
		l := NewLink(Config{})
		m := peerMsg(mt, CallID{})
		o := l.Receive(m)
		switch mt {
		case MsgRestart:
			wantInds(t, o, IndRestart)
		case MsgRestartAck:
			wantStatus(t, o, CauseMessageIncompatible, []byte{byte(MsgRestartAck)}, StateNull)
		case MsgStatusEnquiry:
			wantStatus(t, o, CauseResponseToStatusEnquiry, nil, StateNull)
		case MsgStatus:
			wantSent(t, o)
			wantInds(t, o, IndStatus)
		default:
			s := wantStatus(t, o, CauseInvalidCallRef, nil, StateNull)
			if s.CallRef != (CallRef{Value: 0, Flag: true}) {
				t.Errorf("%v: STATUS on %v", mt, s.CallRef)
			}
		}
		if l.Calls() != 0 {
			t.Errorf("%v created a call", mt)
		}
	}
}

// TestDecodeErrorActions: each DecodeError's Action is carried out with
// its Cause, for a known active call, an unknown call and the global call
// reference.
func TestDecodeErrorActions(t *testing.T) {
	withRef := func(b []byte, cr CallRef) []byte {
		b[2], b[3], b[4] = byte(cr.Value>>16), byte(cr.Value>>8), byte(cr.Value)
		if cr.Flag {
			b[2] |= 0x80
		}
		return b
	}
	epOK := ieBytes(IEEndpointRef, 0, 0, 0x00, 0x01) // endpoint reference 1, flag 0
	for _, tc := range []struct {
		name   string
		msg    []byte
		p2mp   bool
		send   MsgType // 0: nothing
		cause  Cause
		diag   []byte
		next   CallState
		inds   []IndicationKind
		global bool
	}{
		{"ignore: protocol discriminator", append([]byte{0x08}, hdr(MsgStatusEnquiry)[1:]...), false, 0, 0, nil, StateActive, nil, false},
		{"report status: length", func() []byte { b := rawMessage(hdr(MsgStatusEnquiry)); b[8] = 5; return b }(), false, MsgStatus, CauseIncorrectLength, nil, StateActive, nil, false},
		{"report status: mandatory missing in STATUS", rawMessage(hdr(MsgStatus), ieCause16), false, MsgStatus, CauseMandatoryIEMissing, []byte{byte(IECallState)}, StateActive, nil, false},
		{"report status: unknown type", rawMessage(hdr(0x01)), false, MsgStatus, CauseMessageTypeUnknown, []byte{0x01}, StateActive, nil, false},
		{"ignore: unknown type, explicit discard", func() []byte { b := rawMessage(hdr(0x01)); b[6] = 0x91; return b }(), false, 0, 0, nil, StateActive, nil, false},
		{"clear call: unknown type, explicit clear", func() []byte { b := rawMessage(hdr(0x01)); b[6] = 0x90; return b }(), false, MsgRelease, CauseMessageTypeUnknown, []byte{0x01}, StateReleaseRequest, []IndicationKind{IndReleased}, false},
		{"clear call: IE with explicit clear in CONNECT ACK", rawMessage(hdr(MsgConnectAck), ieBytes(0x7f, 0x10|IEActionClearCall, 1)), false, MsgRelease, CauseIEUnknown, []byte{0x7f}, StateReleaseRequest, []IndicationKind{IndReleased}, false},
		{"reject: RELEASE without cause", rawMessage(hdr(MsgRelease)), false, MsgReleaseComplete, CauseMandatoryIEMissing, []byte{byte(IECause)}, StateNull, []IndicationKind{IndReleased}, false},
		{"reject: MODIFY REQUEST with bad traffic", rawMessage(hdr(MsgModifyRequest), ieBytes(IETraffic, 0, 0x92, 0, 0, 1)), false, MsgModifyReject, CauseInvalidIEContents, []byte{byte(IETraffic)}, StateActive, nil, false},
		{"reject: ADD PARTY without called party", rawMessage(hdr(MsgAddParty), epOK), true, MsgAddPartyReject, CauseMandatoryIEMissing, []byte{byte(IECalledParty)}, StateActive, nil, false},
		{"reject: ADD PARTY without endpoint reference", rawMessage(hdr(MsgAddParty), ieCalledOK), true, MsgStatus, CauseMandatoryIEMissing, []byte{byte(IEEndpointRef)}, StateActive, nil, false},
		{"global: RESTART without restart indicator", rawMessage(hdr(MsgRestart)), false, MsgStatus, CauseMandatoryIEMissing, []byte{byte(IERestartIndicator)}, StateActive, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, id := linkIn(t, StateActive, false, tc.p2mp)
			cr := peerRef(id)
			if tc.global {
				cr = CallRef{}
			}
			o := l.ReceiveBytes(withRef(tc.msg, cr))
			if tc.send == 0 {
				wantSent(t, o)
			} else {
				m := wantSent(t, o, tc.send)
				if c, _ := m.Cause(); c != tc.cause || !bytes.Equal(m.Causes[0].Diagnostic, tc.diag) {
					t.Errorf("cause %v diag %x, want %v %x", c, m.Causes[0].Diagnostic, tc.cause, tc.diag)
				}
				if tc.send == MsgStatus && !tc.global && m.CallState.State != StateActive {
					t.Errorf("STATUS reports %v", m.CallState.State)
				}
				if tc.send == MsgAddPartyReject && (m.EndpointRef == nil || m.EndpointRef.Value != 1 || !m.EndpointRef.Flag) {
					t.Errorf("ADD PARTY REJECT endpoint %+v, want 1 with flag 1", m.EndpointRef)
				}
			}
			wantInds(t, o, tc.inds...)
			wantState(t, l, id, tc.next)
		})
	}

	// Unknown call: a SETUP that cannot be processed is refused with its
	// cause, anything else gets cause 81, RELEASE COMPLETE and STATUS
	// nothing.
	l := NewLink(Config{})
	o := l.ReceiveBytes(withRef(rawMessage(hdr(MsgSetup), ieTrafficOK, ieBearerOK, ieQoSOK), CallRef{Value: 9}))
	if m := wantSent(t, o, MsgReleaseComplete); m.Causes[0].Value != CauseMandatoryIEMissing || m.Causes[0].Diagnostic[0] != byte(IECalledParty) {
		t.Errorf("SETUP without called party: %+v", m.Causes)
	}
	o = l.ReceiveBytes(withRef(rawMessage(hdr(0x01)), CallRef{Value: 9}))
	if m := wantSent(t, o, MsgReleaseComplete); m.Causes[0].Value != CauseInvalidCallRef {
		t.Errorf("unknown type for an unknown call: %+v", m.Causes)
	}
	for _, mt := range []MsgType{MsgReleaseComplete, MsgStatus} {
		b := rawMessage(hdr(mt), ieBytes(0x7f, 0x10|IEActionDiscardMessageReport, 1))
		if o := l.ReceiveBytes(withRef(b, CallRef{Value: 9})); !o.Empty() {
			t.Errorf("broken %v for an unknown call answered: %v", mt, msgTypes(o))
		}
	}
	if l.Calls() != 0 {
		t.Errorf("calls created")
	}
	// A broken duplicate SETUP is ignored like a good one.
	l, id := linkIn(t, StateActive, false, false)
	if o := l.ReceiveBytes(withRef(rawMessage(hdr(MsgSetup), ieTrafficOK), peerRef(id))); !o.Empty() {
		t.Errorf("broken duplicate SETUP answered: %v", msgTypes(o))
	}
}

// TestDiscardedIEsReported: IEs discarded under regular handling are
// reported with one STATUS after the message has been processed.
func TestDiscardedIEsReported(t *testing.T) {
	l := NewLink(Config{})
	b := setupWith(ieBytes(0x7f, 0, 0xaa), ieBytes(0x7e, 0, 0xbb), ieBytes(IEBHLI, 0, 0x01))
	b[4] = 7
	o := l.ReceiveBytes(b)
	wantInds(t, o, IndSetup)
	m := wantSent(t, o, MsgStatus)
	if m.Causes[0].Value != CauseIEUnknown || !bytes.Equal(m.Causes[0].Diagnostic, []byte{0x7f, 0x7e}) || m.CallState.State != StateCallPresent {
		t.Errorf("STATUS %+v state %v, want 99 [7f 7e] in U6", m.Causes, m.CallState.State)
	}
	if m.CallRef != (CallRef{Value: 7, Flag: true}) {
		t.Errorf("STATUS on %v", m.CallRef)
	}
	// Explicit "discard IE and proceed": no STATUS.
	b = setupWith(ieBytes(0x7f, 0x10|IEActionDiscardIE, 0xaa))
	b[4] = 8
	o = l.ReceiveBytes(b)
	wantSent(t, o)
	wantInds(t, o, IndSetup)
	// Not for a duplicate SETUP, which is ignored altogether.
	b[4] = 7
	b = append(b[:len(b):len(b)], ieBytes(0x7d, 0, 0xcc)...)
	b[8] += 5
	if _, err := Decode(b); err != nil {
		t.Fatalf("duplicate SETUP does not decode: %v", err)
	}
	if o := l.ReceiveBytes(b); !o.Empty() {
		t.Errorf("duplicate SETUP answered: %v", msgTypes(o))
	}
	// Not after a clearing message.
	l, id := linkIn(t, StateActive, true, false)
	rel := peerMsg(MsgRelease, id)
	rel.Unrecognized = []RawIE{{ID: 0x7f, Cause: CauseIEUnknown}}
	wantSent(t, l.Receive(rel))
}

// TestStatusEnquiry: STATUS ENQUIRY is answered with STATUS 30 and the
// state; StatusEnquiry sends one and runs T322, which STATUS stops.
func TestStatusEnquiry(t *testing.T) {
	for _, st := range userStates {
		l, id := linkIn(t, st, true, false)
		wantStatus(t, l.Receive(peerMsg(MsgStatusEnquiry, id)), CauseResponseToStatusEnquiry, nil, st)
	}
	l, id := linkIn(t, StateActive, true, false)
	o := ok(t)(l.StatusEnquiry(id))
	wantSent(t, o, MsgStatusEnquiry)
	wantTimers(t, o, "+T322")
	if _, err := l.StatusEnquiry(id); !errors.Is(err, ErrEnquiryPending) {
		t.Errorf("second enquiry: %v", err)
	}
	o = l.Receive(peerMsg(MsgStatus, id))
	wantTimers(t, o, "-T322")
	wantInds(t, o, IndStatus)
	wantState(t, l, id, StateActive)
}

// TestStatusReceived: a STATUS reporting Null clears the call locally; one
// reporting a state incompatible with ours clears it with RELEASE 101;
// compatible states keep it.
func TestStatusReceived(t *testing.T) {
	peerStates := []CallState{StateNull, StateCallInitiated, StateOutgoingCallProceeding, StateCallPresent,
		StateConnectRequest, StateIncomingCallProceeding, StateActive, StateReleaseRequest, StateReleaseIndication, StateRestart}
	fits := map[CallState][]CallState{
		StateCallInitiated:          {StateCallPresent, StateIncomingCallProceeding, StateConnectRequest, StateReleaseRequest},
		StateOutgoingCallProceeding: {StateIncomingCallProceeding, StateConnectRequest, StateReleaseRequest},
		StateCallPresent:            {StateCallInitiated, StateOutgoingCallProceeding, StateReleaseRequest},
		StateIncomingCallProceeding: {StateCallInitiated, StateOutgoingCallProceeding, StateReleaseRequest},
		StateConnectRequest:         {StateCallInitiated, StateOutgoingCallProceeding, StateActive, StateReleaseRequest},
		StateActive:                 {StateActive, StateConnectRequest, StateReleaseRequest},
	}
	for _, ours := range userStates {
		for _, peer := range peerStates {
			t.Run(ours.String()+"/peer "+peer.String(), func(t *testing.T) {
				l, id := linkIn(t, ours, true, false)
				m := peerMsg(MsgStatus, id)
				m.CallState.State = peer
				o := l.Receive(m)
				switch {
				case peer == StateNull:
					wantSent(t, o)
					wantInds(t, o, IndReleased)
					if o.Indications[0].Cause.Value != CauseMessageIncompatible {
						t.Errorf("cleared with %v", o.Indications[0].Cause)
					}
					wantState(t, l, id, StateNull)
				case ours == StateReleaseRequest || ours == StateReleaseIndication:
					if !o.Empty() {
						t.Errorf("STATUS while clearing: %+v", o)
					}
					wantState(t, l, id, ours)
				case slices.Contains(fits[ours], peer):
					wantSent(t, o)
					wantInds(t, o, IndStatus)
					wantState(t, l, id, ours)
				default:
					m := wantSent(t, o, MsgRelease)
					if c, _ := m.Cause(); c != CauseMessageIncompatible {
						t.Errorf("RELEASE cause %v", c)
					}
					wantInds(t, o, IndReleased)
					wantState(t, l, id, StateReleaseRequest)
				}
			})
		}
	}
}

// TestReleaseCompleteCause: IndReleased carries the RELEASE COMPLETE's
// cause, and maps to the documented NDIS status.
func TestReleaseCompleteCause(t *testing.T) {
	l, id := linkIn(t, StateCallInitiated, true, false)
	rc := &Message{Type: MsgReleaseComplete, CallRef: peerRef(id), Causes: []CauseIE{NewCause(CauseNoRouteToDestination)}}
	o := l.Receive(rc)
	wantTimers(t, o, "-T303")
	wantInds(t, o, IndReleased)
	if ind := o.Indications[0]; ind.Cause.Value != CauseNoRouteToDestination || ind.Msg != rc {
		t.Errorf("IndReleased %v", ind)
	}
}

func TestStateStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ModifyRequested.String(), "modify requested"},
		{ModifyYieldedReceived.String(), "modify yielded, received"},
		{ModifyYielded.String(), "modify yielded"},
		{ModifyState(9).String(), "modify state 9"},
		{RestRequest.String(), "Rest1 restart request"},
		{RestartState(0).String(), "restart state 0"},
		{IndPartyDropped.String(), "party dropped"},
		{IndicationKind(0).String(), "indication 0"},
		{T303.String(), "T303"},
		{TimerID(0).String(), "timer 0"},
		{TimerKey{Timer: T399, Call: CallID{Ref: 1, Local: true}, Endpoint: 3}.String(), "T399 local cr=0x1 ep=3"},
		{TimerKey{Timer: T309}.String(), "T309"},
		{Indication{Kind: IndReleased, Call: remoteCall, Cause: NewCause(CauseUserBusy)}.String(), "released remote cr=0x5: user busy (17)"},
		{Indication{Kind: IndAddParty, Call: remoteCall, Endpoint: 2}.String(), "add party remote cr=0x5 ep=2"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestClearCallAction: a message whose IE asks explicitly to clear the
// call, in each state: RELEASE (U11, IndReleased at once), RELEASE
// COMPLETE in U12, nothing more in U11.
func TestClearCallAction(t *testing.T) {
	for _, st := range userStates {
		t.Run(st.String(), func(t *testing.T) {
			l, id := linkIn(t, st, true, false)
			m := peerMsg(MsgStatusEnquiry, id)
			b, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, ieBytes(0x7f, 0x10|IEActionClearCall, 1)...)
			b[8] += 5
			o := l.ReceiveBytes(b)
			switch st {
			case StateReleaseRequest:
				if !o.Empty() {
					t.Errorf("acted in U11: %+v", o)
				}
				wantState(t, l, id, st)
			case StateReleaseIndication:
				wantSent(t, o, MsgReleaseComplete)
				wantInds(t, o, IndReleased)
				wantState(t, l, id, StateNull)
			default:
				if m := wantSent(t, o, MsgRelease); m.Causes[0].Value != CauseIEUnknown {
					t.Errorf("RELEASE cause %v", m.Causes[0].Value)
				}
				wantInds(t, o, IndReleased)
				wantState(t, l, id, StateReleaseRequest)
				// The RELEASE COMPLETE then ends the call silently.
				o = l.Receive(&Message{Type: MsgReleaseComplete, CallRef: peerRef(id)})
				wantInds(t, o)
				wantState(t, l, id, StateNull)
			}
		})
	}
}

// TestReceiveHandBuilt: a Message built by hand without a mandatory IE
// gets the answer a decoded one would.
func TestReceiveHandBuilt(t *testing.T) {
	l, id := linkIn(t, StateActive, true, false)
	o := l.Receive(&Message{Type: MsgRelease, CallRef: peerRef(id)})
	if m := wantSent(t, o, MsgReleaseComplete); m.Causes[0].Value != CauseMandatoryIEMissing || m.Causes[0].Diagnostic[0] != byte(IECause) {
		t.Errorf("RELEASE COMPLETE %+v", m.Causes)
	}
	wantInds(t, o, IndReleased)
	l, id = linkIn(t, StateActive, true, true)
	o = l.Receive(&Message{Type: MsgAddPartyAck, CallRef: peerRef(id)})
	wantStatus(t, o, CauseMandatoryIEMissing, []byte{byte(IEEndpointRef)}, StateActive)
}
