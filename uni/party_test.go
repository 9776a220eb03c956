package uni

import (
	"errors"
	"slices"
	"testing"
)

// partyIn returns an active point-to-multipoint call (party 0 active) on
// which party 1 is in state ps, reached through the public inputs. root
// chooses the side: the root originated the call and adds parties; the
// other side receives ADD PARTY.
func partyIn(t *testing.T, root bool, ps PartyState) (*Link, CallID) {
	t.Helper()
	l, id := linkIn(t, StateActive, root, true)
	if ps == PartyNull {
		return l, id
	}
	if root {
		ep, o, err := l.AddParty(id, &Message{Called: CalledAESA(aesaCallee)})
		if err != nil || ep != 1 {
			t.Fatalf("AddParty = %d, %v", ep, err)
		}
		wantSent(t, o, MsgAddParty)
		if ps != PartyAddPartyInitiated {
			l.Receive(peerPartyMsg(MsgAddPartyAck, id, 1))
		}
	} else {
		l.Receive(peerPartyMsg(MsgAddParty, id, 1))
		if ps != PartyAddPartyReceived {
			ok(t)(l.AcceptParty(id, 1))
		}
	}
	switch ps {
	case PartyDropPartyInitiated:
		ok(t)(l.DropParty(id, 1, NewCause(CauseNormalCallClearing)))
	case PartyDropPartyReceived:
		l.Receive(peerPartyMsg(MsgDropParty, id, 1))
	}
	if got, _ := l.PartyState(id, 1); got != ps {
		t.Fatalf("party 1 in %v, want %v", got, ps)
	}
	return l, id
}

// TestPartyStateMessageMatrix feeds each party message for endpoint
// reference 1 to a point-to-multipoint call whose party 1 is in each
// state, on the root side and on the other side.
func TestPartyStateMessageMatrix(t *testing.T) {
	type pcell struct {
		next  PartyState // PartyNull: no such party afterwards
		send  MsgType    // 0: nothing
		cause Cause      // of the message sent
		inds  []IndicationKind
		tops  []string // timer operations
	}
	ignore := func(ps PartyState) pcell { return pcell{next: ps} }
	status := func(ps PartyState) pcell { return pcell{next: ps, send: MsgStatus, cause: CauseMessageIncompatible} }
	bad89 := pcell{next: PartyNull, send: MsgDropPartyAck, cause: CauseInvalidEndpointRef}
	var (
		nul  = PartyNull
		p1   = PartyAddPartyInitiated
		p6   = PartyAddPartyReceived
		act  = PartyActive
		dpi  = PartyDropPartyInitiated
		dpr  = PartyDropPartyReceived
		dead = PartyNull
	)
	type key struct {
		root bool
		ps   PartyState
		mt   MsgType
	}
	want := map[key]pcell{}
	for _, root := range []bool{true, false} {
		for _, ps := range []PartyState{act, dpi, dpr} {
			want[key{root, ps, MsgAddParty}] = ignore(ps)
			want[key{root, ps, MsgAddPartyAck}] = status(ps)
			want[key{root, ps, MsgAddPartyReject}] = status(ps)
		}
		want[key{root, act, MsgDropParty}] = pcell{next: dpr, inds: []IndicationKind{IndDropParty}}
		want[key{root, act, MsgDropPartyAck}] = status(act)
		want[key{root, dpi, MsgDropParty}] = pcell{next: dead, inds: []IndicationKind{IndPartyDropped}, tops: []string{"-T398"}} // crossing
		want[key{root, dpi, MsgDropPartyAck}] = pcell{next: dead, inds: []IndicationKind{IndPartyDropped}, tops: []string{"-T398"}}
		want[key{root, dpr, MsgDropParty}] = ignore(dpr)
		want[key{root, dpr, MsgDropPartyAck}] = status(dpr)
		want[key{root, nul, MsgAddPartyAck}] = bad89
		want[key{root, nul, MsgAddPartyReject}] = bad89
		want[key{root, nul, MsgDropParty}] = bad89
		want[key{root, nul, MsgDropPartyAck}] = ignore(nul)
	}
	want[key{true, nul, MsgAddParty}] = status(nul) // only the root adds parties
	want[key{false, nul, MsgAddParty}] = pcell{next: p6, inds: []IndicationKind{IndAddParty}}
	want[key{true, p1, MsgAddParty}] = ignore(p1)
	want[key{true, p1, MsgAddPartyAck}] = pcell{next: act, inds: []IndicationKind{IndPartyAdded}, tops: []string{"-T399"}}
	want[key{true, p1, MsgAddPartyReject}] = pcell{next: dead, inds: []IndicationKind{IndPartyRejected}, tops: []string{"-T399"}}
	want[key{true, p1, MsgDropParty}] = pcell{next: dead, send: MsgDropPartyAck, cause: CauseNormalCallClearing, inds: []IndicationKind{IndPartyRejected}, tops: []string{"-T399"}}
	want[key{true, p1, MsgDropPartyAck}] = status(p1)
	want[key{false, p6, MsgAddParty}] = ignore(p6)
	want[key{false, p6, MsgAddPartyAck}] = status(p6)
	want[key{false, p6, MsgAddPartyReject}] = status(p6)
	want[key{false, p6, MsgDropParty}] = pcell{next: dead, send: MsgDropPartyAck, cause: CauseNormalCallClearing, inds: []IndicationKind{IndPartyRejected}}
	want[key{false, p6, MsgDropPartyAck}] = status(p6)

	partyMsgs := []MsgType{MsgAddParty, MsgAddPartyAck, MsgAddPartyReject, MsgDropParty, MsgDropPartyAck}
	cells := 0
	for _, root := range []bool{true, false} {
		states := []PartyState{nul, act, dpi, dpr, p6}
		if root {
			states[4] = p1
		}
		for _, ps := range states {
			for _, mt := range partyMsgs {
				k := key{root, ps, mt}
				c, found := want[k]
				if !found {
					t.Fatalf("no expectation for %+v", k)
				}
				cells++
				name := mt.String() + "/" + ps.String()
				if root {
					name += "/root"
				}
				t.Run(name, func(t *testing.T) {
					l, id := partyIn(t, root, ps)
					o := l.Receive(peerPartyMsg(mt, id, 1))
					if c.send == 0 {
						wantSent(t, o)
					} else {
						m := wantSent(t, o, c.send)
						if got, _ := m.Cause(); got != c.cause {
							t.Errorf("cause %v, want %v", got, c.cause)
						}
						if m.EndpointRef == nil || m.EndpointRef.Value != 1 || m.EndpointRef.Flag != !root {
							t.Errorf("endpoint reference %+v, want 1 with flag %v", m.EndpointRef, !root)
						}
						if c.send == MsgStatus {
							if m.CallState.State != StateActive || m.EndpointState == nil || m.EndpointState.State != ps {
								t.Errorf("STATUS call state %v endpoint state %+v, want U10 and %v", m.CallState.State, m.EndpointState, ps)
							}
							if got, _ := m.Cause(); got == CauseMessageIncompatible && m.Causes[0].Diagnostic[0] != byte(mt) {
								t.Errorf("diagnostic %x, want the message type", m.Causes[0].Diagnostic)
							}
						}
					}
					wantInds(t, o, c.inds...)
					for _, ind := range o.Indications {
						if ind.Endpoint != 1 || ind.Call != id {
							t.Errorf("indication %v for the wrong party", ind)
						}
					}
					wantTimers(t, o, c.tops...)
					if got, _ := l.PartyState(id, 1); got != c.next {
						t.Errorf("party 1 in %v, want %v", got, c.next)
					}
					wantState(t, l, id, StateActive)
					if st, _ := l.PartyState(id, 0); st != PartyActive {
						t.Errorf("party 0 disturbed: %v", st)
					}
				})
			}
		}
	}
	if cells != 50 {
		t.Errorf("%d cells, want 50", cells)
	}
}

// TestPartyMessagesOutsideActive: party messages on a point-to-point call,
// or on a point-to-multipoint call that is not active, are not compatible
// with the call state.
func TestPartyMessagesOutsideActive(t *testing.T) {
	for _, mt := range []MsgType{MsgAddParty, MsgAddPartyAck, MsgAddPartyReject, MsgDropParty, MsgDropPartyAck} {
		l, id := linkIn(t, StateActive, false, false)
		wantStatus(t, l.Receive(peerPartyMsg(mt, id, 1)), CauseMessageIncompatible, []byte{byte(mt)}, StateActive)
		for _, st := range []CallState{StateCallInitiated, StateConnectRequest, StateReleaseRequest, StateReleaseIndication} {
			l, id := linkIn(t, st, true, true)
			m := wantStatus(t, l.Receive(peerPartyMsg(mt, id, 1)), CauseMessageIncompatible, []byte{byte(mt)}, st)
			if st == StateCallInitiated || st == StateConnectRequest {
				if m.EndpointRef == nil || m.EndpointState == nil || m.EndpointState.State != PartyNull {
					t.Errorf("%v in %v: STATUS without the party: %+v %+v", mt, st, m.EndpointRef, m.EndpointState)
				}
			}
		}
	}
}

// TestPointToMultipointSetup: the first party is endpoint reference 0 on
// both sides, carried by SETUP, CALL PROCEEDING and CONNECT, and becomes
// active with the call.
func TestPointToMultipointSetup(t *testing.T) {
	l := NewLink(Config{})
	id, o, err := l.Setup(setupMsg(true))
	if err != nil {
		t.Fatal(err)
	}
	if m := wantSent(t, o, MsgSetup); m.EndpointRef == nil || m.EndpointRef.Value != 0 || m.EndpointRef.Flag {
		t.Errorf("SETUP endpoint reference %+v", m.EndpointRef)
	}
	if ps, _ := l.PartyState(id, 0); ps != PartyAddPartyInitiated {
		t.Errorf("party 0 in %v", ps)
	}
	conn := peerMsg(MsgConnect, id)
	conn.EndpointRef = peerEP(id, 0)
	l.Receive(conn)
	if ps, _ := l.PartyState(id, 0); ps != PartyActive {
		t.Errorf("party 0 in %v after CONNECT", ps)
	}

	callee, cid := linkIn(t, StateCallPresent, false, true)
	if ps, _ := callee.PartyState(cid, 0); ps != PartyAddPartyReceived {
		t.Errorf("called side party 0 in %v", ps)
	}
	m := wantSent(t, ok(t)(callee.Proceed(cid, nil)), MsgCallProceeding)
	if m.EndpointRef == nil || m.EndpointRef.Value != 0 || !m.EndpointRef.Flag {
		t.Errorf("CALL PROCEEDING endpoint %+v", m.EndpointRef)
	}
	m = wantSent(t, ok(t)(callee.Accept(cid, nil)), MsgConnect)
	if m.EndpointRef == nil || m.EndpointRef.Value != 0 || !m.EndpointRef.Flag {
		t.Errorf("CONNECT endpoint %+v", m.EndpointRef)
	}
	callee.Receive(peerMsg(MsgConnectAck, cid))
	if ps, _ := callee.PartyState(cid, 0); ps != PartyActive {
		t.Errorf("called side party 0 in %v", ps)
	}
}

// TestAddAndDropParty: the root's local party requests, endpoint
// reference allocation, and the last party dropped by RELEASE.
func TestAddAndDropParty(t *testing.T) {
	l, id := linkIn(t, StateActive, true, true)
	var eps []uint16
	for range 3 {
		ep, o, err := l.AddParty(id, &Message{Called: CalledAESA(aesaCallee)})
		if err != nil {
			t.Fatal(err)
		}
		m := wantSent(t, o, MsgAddParty)
		if m.EndpointRef.Value != ep || m.EndpointRef.Flag || m.CallRef != id.wire() {
			t.Errorf("ADD PARTY %v ep %+v", m.CallRef, m.EndpointRef)
		}
		wantTimers(t, o, "+T399")
		eps = append(eps, ep)
	}
	if !slices.Equal(eps, []uint16{1, 2, 3}) {
		t.Errorf("endpoint references %v", eps)
	}
	// Allocation skips values in use and never returns 0.
	c := l.calls.Get(id.key())
	c.nextEP = MaxEndpointRef - 1
	ep, _, _ := l.AddParty(id, &Message{Called: CalledAESA(aesaCallee)})
	ep2, _, _ := l.AddParty(id, &Message{Called: CalledAESA(aesaCallee)})
	if ep != MaxEndpointRef || ep2 != 4 {
		t.Errorf("after the wrap got %d, %d; want %d, 4", ep, ep2, MaxEndpointRef)
	}
	if !slices.Equal(l.Parties(id), []uint16{0, 1, 2, 3, 4, MaxEndpointRef}) {
		t.Errorf("parties %v", l.Parties(id))
	}
	// An invalid ADD PARTY is refused without effect.
	if _, o, err := l.AddParty(id, &Message{}); !errors.As(err, new(*EncodeError)) || !o.Empty() {
		t.Errorf("ADD PARTY without called party: %v", err)
	}

	// Drop everything but party 0 and party 1.
	for _, ep := range []uint16{2, 3, 4, MaxEndpointRef} {
		o := ok(t)(l.DropParty(id, ep, NewCause(CauseNormalCallClearing)))
		wantSent(t, o, MsgDropParty)
		wantTimers(t, o, "-T399", "+T398")
		o = l.Receive(peerPartyMsg(MsgDropPartyAck, id, ep))
		wantInds(t, o, IndPartyRejected) // never active
	}
	l.Receive(peerPartyMsg(MsgAddPartyAck, id, 1))
	o := ok(t)(l.DropParty(id, 1, NewCause(CauseNormalCallClearing)))
	wantSent(t, o, MsgDropParty)
	o = l.Receive(peerPartyMsg(MsgDropPartyAck, id, 1))
	wantInds(t, o, IndPartyDropped)
	// Party 0 is the last: dropping it clears the call.
	o = ok(t)(l.DropParty(id, 0, NewCause(CauseNormalCallClearing)))
	wantSent(t, o, MsgRelease)
	wantState(t, l, id, StateReleaseRequest)

	// Requests refused.
	l, id = linkIn(t, StateActive, false, true)
	if _, _, err := l.AddParty(id, &Message{Called: CalledAESA(aesaCallee)}); !errors.Is(err, ErrNotMultipoint) {
		t.Errorf("AddParty by the non-root: %v", err)
	}
	if _, err := l.DropParty(id, 9, NewCause(CauseNormalCallClearing)); !errors.Is(err, ErrUnknownParty) {
		t.Errorf("DropParty of an unknown party: %v", err)
	}
	l, id = partyIn(t, true, PartyDropPartyInitiated)
	if _, err := l.DropParty(id, 1, NewCause(CauseNormalCallClearing)); !errors.Is(err, ErrState) {
		t.Errorf("DropParty twice: %v", err)
	}
	l, id = linkIn(t, StateCallInitiated, true, true)
	if _, _, err := l.AddParty(id, &Message{Called: CalledAESA(aesaCallee)}); !errors.Is(err, ErrState) {
		t.Errorf("AddParty before the call is active: %v", err)
	}
}

// TestPartyAnswers: the non-root side's answers to ADD PARTY and DROP
// PARTY.
func TestPartyAnswers(t *testing.T) {
	l, id := partyIn(t, false, PartyAddPartyReceived)
	o := ok(t)(l.AcceptParty(id, 1))
	if m := wantSent(t, o, MsgAddPartyAck); m.EndpointRef.Value != 1 || !m.EndpointRef.Flag {
		t.Errorf("ADD PARTY ACK endpoint %+v", m.EndpointRef)
	}
	wantInds(t, o)

	l, id = partyIn(t, false, PartyAddPartyReceived)
	o = ok(t)(l.RejectParty(id, 1, NewCause(CauseUserBusy)))
	if m := wantSent(t, o, MsgAddPartyReject); m.Causes[0].Value != CauseUserBusy {
		t.Errorf("ADD PARTY REJECT %+v", m.Causes)
	}
	wantInds(t, o, IndPartyRejected)
	if _, exists := l.PartyState(id, 1); exists {
		t.Error("party survived its rejection")
	}

	for _, root := range []bool{true, false} {
		l, id = partyIn(t, root, PartyDropPartyReceived)
		o = ok(t)(l.DropParty(id, 1, NewCause(CauseNormalCallClearing)))
		wantSent(t, o, MsgDropPartyAck)
		wantInds(t, o, IndPartyDropped)
		if _, exists := l.PartyState(id, 1); exists {
			t.Error("party survived its drop")
		}
	}
}

// TestNoPartyLeftClearsCall: when the last party goes, the call is
// cleared with RELEASE 16.
func TestNoPartyLeftClearsCall(t *testing.T) {
	l, id := partyIn(t, true, PartyAddPartyInitiated)
	// Party 0 is not the last while party 1 is being added.
	wantSent(t, ok(t)(l.DropParty(id, 0, NewCause(CauseNormalCallClearing))), MsgDropParty)
	wantInds(t, l.Receive(peerPartyMsg(MsgDropPartyAck, id, 0)), IndPartyDropped)
	o := l.Receive(peerPartyMsg(MsgAddPartyReject, id, 1))
	m := wantSent(t, o, MsgRelease)
	if c, _ := m.Cause(); c != CauseNormalCallClearing {
		t.Errorf("RELEASE cause %v", c)
	}
	wantInds(t, o, IndPartyRejected, IndReleased)
	wantState(t, l, id, StateReleaseRequest)
}

// TestPartyStatus: STATUS ENQUIRY naming a party is answered with its
// endpoint state; a STATUS reporting a party Null releases it.
func TestPartyStatus(t *testing.T) {
	l, id := partyIn(t, true, PartyActive)
	enq := peerMsg(MsgStatusEnquiry, id)
	enq.EndpointRef = peerEP(id, 1)
	m := wantStatus(t, l.Receive(enq), CauseResponseToStatusEnquiry, nil, StateActive)
	if m.EndpointRef == nil || m.EndpointRef.Value != 1 || m.EndpointRef.Flag || m.EndpointState.State != PartyActive {
		t.Errorf("STATUS endpoint %+v state %+v", m.EndpointRef, m.EndpointState)
	}
	enq.EndpointRef = peerEP(id, 7)
	if m := wantStatus(t, l.Receive(enq), CauseResponseToStatusEnquiry, nil, StateActive); m.EndpointState.State != PartyNull {
		t.Errorf("unknown party reported %v", m.EndpointState.State)
	}

	st := peerMsg(MsgStatus, id)
	st.EndpointRef, st.EndpointState = peerEP(id, 1), &EndpointStateIE{State: PartyNull}
	o := l.Receive(st)
	wantSent(t, o)
	wantInds(t, o, IndPartyDropped, IndStatus)
	if _, exists := l.PartyState(id, 1); exists {
		t.Error("party survived a STATUS reporting it Null")
	}
}
