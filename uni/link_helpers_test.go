package uni

import (
	"bytes"
	"slices"
	"testing"
)

// Helpers for the state machine tests: messages as the peer sends them,
// links driven into a state through their public inputs, and checks on
// Outputs.

// peerRef is the call reference the peer puts in messages about our call.
func peerRef(id CallID) CallRef { return CallRef{Value: id.Ref, Flag: id.Local} }

// peerEP is the Endpoint Reference the peer sends for party ep of our call
// (flag 0 when the peer is the root).
func peerEP(id CallID, ep uint16) *EndpointReference {
	return &EndpointReference{Value: ep, Flag: id.Local}
}

func trafficUBR() *TrafficDescriptor {
	return &TrafficDescriptor{FwdPCR01: Some(100000), BwdPCR01: Some(100000), BestEffort: true}
}

// setupMsg is a minimal SETUP as a call manager fills it in.
func setupMsg(p2mp bool) *Message {
	m := &Message{
		Traffic: trafficUBR(),
		Bearer:  &BearerCapability{Class: BCOBX, UserPlane: PointToPoint},
		Called:  CalledAESA(aesaCallee),
		QoS:     &QoSParameter{},
	}
	if p2mp {
		m.Bearer.UserPlane = PointToMultipoint
		m.Traffic = &TrafficDescriptor{FwdPCR01: Some(100000), BwdPCR01: Some(0), BestEffort: true}
	}
	return m
}

// peerMsg is a valid message of type t from the peer about call id (party
// messages name endpoint reference 1).
func peerMsg(t MsgType, id CallID) *Message { return peerPartyMsg(t, id, 1) }

func peerPartyMsg(t MsgType, id CallID, ep uint16) *Message {
	m := &Message{Type: t, CallRef: peerRef(id)}
	cause := []CauseIE{NewCause(CauseNormalCallClearing)}
	switch t {
	case MsgSetup:
		s := setupMsg(false)
		s.Type, s.CallRef = t, m.CallRef
		return s
	case MsgRelease:
		m.Causes = cause
	case MsgStatus:
		m.Causes = []CauseIE{NewCause(CauseResponseToStatusEnquiry)}
		m.CallState = &CallStateIE{State: StateActive}
	case MsgRestart, MsgRestartAck:
		m.Restart = &RestartIndicator{Class: RestartAllVCs}
	case MsgAddParty:
		m.Called, m.EndpointRef = CalledAESA(aesaCaller), peerEP(id, ep)
	case MsgAddPartyAck, MsgDropPartyAck:
		m.EndpointRef = peerEP(id, ep)
	case MsgAddPartyReject:
		m.Causes, m.EndpointRef = []CauseIE{NewCause(CauseUserBusy)}, peerEP(id, ep)
	case MsgDropParty:
		m.Causes, m.EndpointRef = cause, peerEP(id, ep)
	case MsgModifyRequest:
		m.Traffic = &TrafficDescriptor{FwdPCR01: Some(200000), BwdPCR01: Some(200000), BestEffort: true}
	case MsgModifyReject:
		m.Causes = []CauseIE{NewCause(CauseCellRateUnavailable)}
	}
	return m
}

// allMsgTypes lists the 18 implemented message types.
func allMsgTypes() []MsgType {
	var ts []MsgType
	for t := range 256 {
		if MsgType(t).Known() {
			ts = append(ts, MsgType(t))
		}
	}
	return ts
}

// ok returns a function that fails the test when a request was refused
// and otherwise returns its Output: ok(t)(l.Release(id, cause)).
func ok(t *testing.T) func(Output, error) Output {
	return func(o Output, err error) Output {
		t.Helper()
		if err != nil {
			t.Fatalf("request refused: %v", err)
		}
		return o
	}
}

// remoteCall is the CallID of the call the peer sets up with reference 5.
var remoteCall = CallID{Ref: 5}

// linkIn returns a Link with one call in state st, reached through the
// public inputs. caller chooses the role where the state allows both (U10,
// U11, U12); U1 and U3 are always the caller's, U6, U8 and U9 the called
// side's.
func linkIn(t *testing.T, st CallState, caller, p2mp bool) (*Link, CallID) {
	t.Helper()
	l := NewLink(Config{})
	var id CallID
	switch st {
	case StateCallInitiated, StateOutgoingCallProceeding:
		caller = true
	case StateCallPresent, StateIncomingCallProceeding, StateConnectRequest:
		caller = false
	}
	if caller {
		var err error
		id, _, err = l.Setup(setupMsg(p2mp))
		if err != nil {
			t.Fatal(err)
		}
		if st == StateOutgoingCallProceeding {
			l.Receive(peerMsg(MsgCallProceeding, id))
		}
		if st >= StateActive {
			c := peerMsg(MsgConnect, id)
			if p2mp {
				c.EndpointRef = peerEP(id, 0)
			}
			l.Receive(c)
		}
	} else {
		id = remoteCall
		s := peerMsg(MsgSetup, id)
		if p2mp {
			s.Bearer.UserPlane = PointToMultipoint
			s.Traffic.BwdPCR01 = Some(0)
			s.EndpointRef = peerEP(id, 0)
		}
		l.Receive(s)
		if st == StateIncomingCallProceeding {
			ok(t)(l.Proceed(id, nil))
		}
		if st == StateConnectRequest || st >= StateActive {
			ok(t)(l.Accept(id, nil))
		}
		if st >= StateActive {
			l.Receive(peerMsg(MsgConnectAck, id))
		}
	}
	switch st {
	case StateReleaseRequest:
		ok(t)(l.Release(id, NewCause(CauseNormalCallClearing)))
	case StateReleaseIndication:
		l.Receive(peerMsg(MsgRelease, id))
	}
	if got, ok := l.CallState(id); !ok || got != st {
		t.Fatalf("setting up %v: call in %v (exists %v)", st, got, ok)
	}
	return l, id
}

// userStates are the call states of a call that exists.
var userStates = []CallState{
	StateCallInitiated, StateOutgoingCallProceeding, StateCallPresent, StateConnectRequest,
	StateIncomingCallProceeding, StateActive, StateReleaseRequest, StateReleaseIndication,
}

func msgTypes(o Output) []MsgType {
	var ts []MsgType
	for _, m := range o.Messages {
		ts = append(ts, m.Msg.Type)
	}
	return ts
}

func indKinds(o Output) []IndicationKind {
	var ks []IndicationKind
	for _, i := range o.Indications {
		ks = append(ks, i.Kind)
	}
	return ks
}

// checkEncodes makes sure every message of the Output goes on the wire.
func checkEncodes(t *testing.T, o Output) {
	t.Helper()
	for _, m := range o.Messages {
		if _, err := m.Msg.Encode(); err != nil {
			t.Errorf("output message %v does not encode: %v", m.Msg.Type, err)
		}
	}
}

// wantStatus checks that o is exactly one STATUS with the cause,
// diagnostic and call state, and nothing else.
func wantStatus(t *testing.T, o Output, cause Cause, diag []byte, st CallState) *Message {
	t.Helper()
	if len(o.Messages) != 1 || o.Messages[0].Msg.Type != MsgStatus {
		t.Fatalf("sent %v, want one STATUS", msgTypes(o))
	}
	m := o.Messages[0].Msg
	if got, _ := m.Cause(); got != cause || !bytes.Equal(m.Causes[0].Diagnostic, diag) {
		t.Errorf("STATUS cause %v diagnostic %x, want %v %x", got, m.Causes[0].Diagnostic, cause, diag)
	}
	if m.CallState == nil || m.CallState.State != st {
		t.Errorf("STATUS reports %v, want %v", m.CallState, st)
	}
	if len(o.Indications) != 0 || len(o.Timers) != 0 {
		t.Errorf("STATUS came with indications %v and timers %v", indKinds(o), o.Timers)
	}
	checkEncodes(t, o)
	return m
}

// wantSent checks the message types sent and returns the first message.
func wantSent(t *testing.T, o Output, types ...MsgType) *Message {
	t.Helper()
	if got := msgTypes(o); !slices.Equal(got, types) {
		t.Fatalf("sent %v, want %v", got, types)
	}
	checkEncodes(t, o)
	if len(o.Messages) == 0 {
		return nil
	}
	return o.Messages[0].Msg
}

func wantInds(t *testing.T, o Output, kinds ...IndicationKind) {
	t.Helper()
	if got := indKinds(o); !slices.Equal(got, kinds) {
		t.Fatalf("indications %v, want %v", got, kinds)
	}
}

// timerOps formats the timer operations as "+T303" (start) and "-T303"
// (stop).
func timerOps(o Output) []string {
	var s []string
	for _, op := range o.Timers {
		p := "-"
		if op.Start {
			p = "+"
		}
		s = append(s, p+op.Key.Timer.String())
	}
	return s
}

func wantTimers(t *testing.T, o Output, ops ...string) {
	t.Helper()
	if got := timerOps(o); !slices.Equal(got, ops) {
		t.Fatalf("timer operations %v, want %v", got, ops)
	}
}

func wantState(t *testing.T, l *Link, id CallID, st CallState) {
	t.Helper()
	got, ok := l.CallState(id)
	if st == StateNull {
		if ok {
			t.Fatalf("call still in %v, want it gone", got)
		}
		return
	}
	if !ok || got != st {
		t.Fatalf("call in %v (exists %v), want %v", got, ok, st)
	}
}
