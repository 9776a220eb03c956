package uni

import "strconv"

// call is one call of a Link. Its state machine is drawn on CallState.
//
// A Link keeps one for every call it holds, so its fields are ordered to
// leave no padding (96 bytes, one size class): keep it so when adding
// one (TestCallRecordSize).
type call struct {
	id    CallID
	epoch uint32 // the signalling link it was set up on (Link.epoch then)

	state  CallState
	timer  TimerID // the running call timer: T303, T310, T313, T308 or 0
	enq    uint8   // T322: 0 not running, 1 running, 2 running after one retransmission
	modify ModifyState

	p2mp      bool
	released  bool // IndReleased has been given
	retried   bool // the call timer has expired once (T303, T308)
	hasConnID bool
	connID    ConnectionID

	firstEP uint16 // point-to-multipoint: the endpoint reference of the SETUP's party
	nextEP  uint16

	ctx      any                // the call manager's context (SetCallContext)
	modifyTD *TrafficDescriptor // requested (ModifyRequested) or offered (ModifyReceived, ModifyYieldedReceived)
	release  *CauseIE           // the first cause of the RELEASE sent (U11: T308 resends it) or received (U12); the final indication reports it
	parties  map[uint16]*party  // point-to-multipoint calls only
	setup    keptSetup          // the SETUP's encoding, kept in U1 for the T303 retransmission (keptsetup.go)
}

// ModifyState is the QoS modification state of an active call (Q.2963.1).
// The zero value is not a state.
//
//	ModifyNone ──ModifyQoS / !MODIFY REQUEST, +T360──▶ ModifyRequested
//	ModifyRequested ──?MODIFY ACKNOWLEDGE / -T360, IndModified──▶ ModifyNone
//	ModifyRequested ──?MODIFY REJECT / -T360, IndModifyRejected──▶ ModifyNone
//	ModifyRequested ──T360 / IndModifyRejected, !RELEASE 102──▶ (call U11)
//	ModifyNone ──?MODIFY REQUEST / IndModify──▶ ModifyReceived
//	ModifyReceived ──AcceptModify / !MODIFY ACKNOWLEDGE──▶ ModifyNone
//	ModifyReceived ──RejectModify / !MODIFY REJECT──▶ ModifyNone
//
// Collision (glare): both ends sent MODIFY REQUEST. The call's originator
// (the side that allocated the call reference) wins:
//
//	ModifyRequested (originator) ──?MODIFY REQUEST / !MODIFY REJECT 101──▶ ModifyRequested
//	ModifyRequested (other side) ──?MODIFY REQUEST / IndModifyRejected 101, IndModify──▶ ModifyYieldedReceived
//	ModifyYieldedReceived ──AcceptModify / !MODIFY ACKNOWLEDGE──▶ ModifyYielded
//	ModifyYieldedReceived ──RejectModify / !MODIFY REJECT──▶ ModifyYielded
//	ModifyYieldedReceived ──?MODIFY REJECT / -T360──▶ ModifyReceived
//	ModifyYielded ──?MODIFY REJECT / -T360──▶ ModifyNone
//	ModifyYielded ──?MODIFY REQUEST / IndModify──▶ ModifyYieldedReceived
//	ModifyYieldedReceived ──T360──▶ ModifyReceived
//	ModifyYielded ──T360──▶ ModifyNone
//
// The side that yields gives up its request at once (IndModifyRejected,
// cause 101) and handles the winner's like any other; the winner's MODIFY
// REJECT of the abandoned request, which the winner sends before any
// later MODIFY message of its own, is absorbed when it arrives. T360 keeps
// running until then, so a peer that never sends it delays the next
// ModifyQoS by T360 at most and does not clear the call.
type ModifyState uint8

// Modification states.
const (
	ModifyNone            ModifyState = iota + 1 // no modification in progress
	ModifyRequested                              // MODIFY REQUEST sent, T360 running
	ModifyReceived                               // MODIFY REQUEST received, awaiting AcceptModify / RejectModify
	ModifyYieldedReceived                        // ours lost a collision, the winner's awaits AcceptModify / RejectModify; its MODIFY REJECT of ours is still to come (T360 running)
	ModifyYielded                                // ours lost a collision and the winner's is answered; its MODIFY REJECT of ours is still to come (T360 running)
)

// String names the state.
func (s ModifyState) String() string {
	switch s {
	case ModifyNone:
		return "none"
	case ModifyRequested:
		return "modify requested"
	case ModifyReceived:
		return "modify received"
	case ModifyYieldedReceived:
		return "modify yielded, received"
	case ModifyYielded:
		return "modify yielded"
	}
	return "modify state " + strconv.Itoa(int(s))
}

// yieldOver is the state a yielded one becomes once the abandoned
// request needs no answer any more.
func (s ModifyState) yieldOver() ModifyState {
	if s == ModifyYieldedReceived {
		return ModifyReceived
	}
	return ModifyNone
}

// awaitsAnswer reports whether a MODIFY REQUEST of ours still waits for the
// peer's answer (T360 running): our own, or one abandoned in a collision.
func (s ModifyState) awaitsAnswer() bool {
	return s == ModifyRequested || s == ModifyYieldedReceived || s == ModifyYielded
}

func (l *Link) newCall(id CallID, st CallState) *call {
	var c *call
	if n := len(l.freeCalls); n > 0 {
		c = l.freeCalls[n-1]
		l.freeCalls[n-1] = nil
		l.freeCalls = l.freeCalls[:n-1]
		*c = call{id: id, state: st, modify: ModifyNone, epoch: l.epoch}
	} else {
		c = &call{id: id, state: st, modify: ModifyNone, epoch: l.epoch}
	}
	l.calls.Set(id.key(), c)
	return c
}

func (c *call) noteConnID(ci *ConnectionID) {
	if ci != nil {
		c.connID, c.hasConnID = *ci, true
	}
}

// startCallTimer starts t as the call's one call timer.
func (l *Link) startCallTimer(o *Output, c *call, t TimerID) {
	if c.timer != 0 && c.timer != t {
		l.stopTimer(o, TimerKey{Timer: c.timer, Call: c.id})
	}
	c.timer, c.retried = t, false
	l.startTimer(o, TimerKey{Timer: t, Call: c.id})
}

func (l *Link) stopCallTimer(o *Output, c *call) {
	if c.timer != 0 {
		l.stopTimer(o, TimerKey{Timer: c.timer, Call: c.id})
		c.timer, c.retried = 0, false
	}
}

func (l *Link) stopEnquiry(o *Output, c *call) {
	if c.enq != 0 {
		l.stopTimer(o, TimerKey{Timer: T322, Call: c.id})
		c.enq = 0
	}
}

// stopCallTimers stops every timer of the call and ends its
// sub-procedures (modification, parties) without indications.
func (l *Link) stopCallTimers(o *Output, c *call) {
	l.stopCallTimer(o, c)
	l.stopEnquiry(o, c)
	l.stepModify(o, c, modifyEvent{in: modifyEnded})
	for _, ep := range l.Parties(c.id) {
		if p := c.parties[ep]; p.timer != 0 {
			l.stopTimer(o, TimerKey{Timer: p.timer, Call: c.id, Endpoint: ep})
			p.timer = 0
		}
	}
}

// indicateReleased gives the call's one IndReleased.
func (l *Link) indicateReleased(o *Output, c *call, cause CauseIE, m *Message) {
	if c.released {
		return
	}
	c.released = true
	l.indicateCall(o, c, Indication{Kind: IndReleased, Cause: cause, Msg: m})
}

// finish returns the call to U0: its timers stop, its call reference is
// released and, unless already given, IndReleased reports cause.
func (l *Link) finish(o *Output, c *call, cause CauseIE, m *Message) {
	l.stopCallTimers(o, c)
	if k := c.id.key(); l.calls.Get(k) == c {
		l.calls.Delete(k)
		l.gone = append(l.gone, c) // recycled from the next input on (begin); once
	}
	c.state = StateNull
	c.parties = nil
	l.dropSetup(c)
	l.indicateReleased(o, c, cause, m)
}

// clearCall clears a call on the Link's own initiative (timer expiry,
// protocol error): RELEASE with the cause, T308, U11 — RELEASE COMPLETE
// in U12 — and IndReleased at once. A call already in U11 is left alone.
func (l *Link) clearCall(o *Output, c *call, cause CauseIE) {
	switch c.state {
	case StateReleaseRequest:
		return
	case StateReleaseIndication:
		l.sendReleaseComplete(o, c.id, cause)
		l.finish(o, c, cause, nil)
		return
	}
	if !l.up {
		l.finish(o, c, cause, nil)
		return
	}
	l.sendRelease(o, c, cause)
	l.indicateReleased(o, c, cause, nil)
}

// sendRelease sends RELEASE, starts T308 and enters U11.
func (l *Link) sendRelease(o *Output, c *call, cause CauseIE) {
	l.stopCallTimers(o, c)
	c.parties = nil
	l.dropSetup(c)
	m := l.newMessage(MsgRelease, c.id.wire(), cause)
	if l.reuse {
		c.release = l.keptCause(cause) // m is the Output's until the next input
	} else {
		c.release = &m.Causes[0]
	}
	l.send(o, c.id, m)
	l.startCallTimer(o, c, T308)
	c.state = StateReleaseRequest
}

// ---- local requests ----

// Setup originates a call: SETUP, T303, U1. m carries the SETUP's
// information elements (Traffic, Bearer, Called and QoS are mandatory); the
// Link fills in the message type and call reference (and an Endpoint
// Reference, below). The Output's message is m itself, but the Link keeps
// nothing of m (for the T303 retransmission it keeps the SETUP's
// encoding), so the caller may reuse m and what it points to once it has
// carried out the Output. A SETUP whose bearer capability asks for point-to-multipoint, or that
// carries an Endpoint Reference, starts a point-to-multipoint call whose
// first party is endpoint reference 0 (added if absent).
func (l *Link) Setup(m *Message) (CallID, Output, error) {
	o := l.begin()
	if !l.up {
		return CallID{}, o, reqErr("Setup", nil, CallID{}, ErrLinkDown)
	}
	ref, ok := l.allocRef()
	if !ok {
		return CallID{}, o, reqErr("Setup", nil, CallID{}, ErrNoCallRef)
	}
	id := CallID{Ref: ref, Local: true}
	m.Type, m.CallRef = MsgSetup, id.wire()
	p2mp := m.EndpointRef != nil || (m.Bearer != nil && m.Bearer.UserPlane == PointToMultipoint)
	if p2mp && m.EndpointRef == nil {
		m.EndpointRef = &EndpointReference{}
	}
	enc, err := l.validate(m)
	if err != nil {
		return CallID{}, o, reqErr("Setup", nil, id, err)
	}
	c := l.newCall(id, StateCallInitiated)
	c.setup = l.keepSetup(enc)
	c.noteConnID(m.ConnectionID)
	if p2mp {
		c.p2mp, c.firstEP = true, m.EndpointRef.Value
		c.parties = map[uint16]*party{c.firstEP: {state: PartyAddPartyInitiated}}
	}
	l.sendEncoded(&o, id, m, enc)
	l.startCallTimer(&o, c, T303)
	return id, o, nil
}

// allocRef picks the next free call reference value: counting upwards,
// wrapping below MaxCallRef, never 0 (the global call reference), skipping
// values our calls use.
func (l *Link) allocRef() (uint32, bool) {
	for range MaxCallRef {
		v := l.nextRef
		l.nextRef++
		if l.nextRef > MaxCallRef {
			l.nextRef = 1
		}
		if v == 0 {
			continue
		}
		if l.calls.Get((CallID{Ref: v, Local: true}).key()) == nil {
			return v, true
		}
	}
	return 0, false
}

func (l *Link) lookup(op string, id CallID) (*call, error) {
	c := l.calls.Get(id.key())
	if c == nil {
		return nil, reqErr(op, nil, id, ErrUnknownCall)
	}
	if !l.up {
		return c, reqErr(op, c, id, ErrLinkDown)
	}
	return c, nil
}

// Proceed answers an incoming SETUP with CALL PROCEEDING (U6 → U9),
// optionally carrying the connection identifier the called side assigns.
func (l *Link) Proceed(id CallID, connID *ConnectionID) (Output, error) {
	o := l.begin()
	c, err := l.lookup("Proceed", id)
	if err != nil {
		return o, err
	}
	if c.state != StateCallPresent {
		return o, reqErr("Proceed", c, id, ErrState)
	}
	m := l.newMessage(MsgCallProceeding, id.wire())
	m.ConnectionID = connID
	if c.p2mp {
		m.EndpointRef = c.epRef(c.firstEP)
	}
	c.noteConnID(connID)
	l.send(&o, id, m)
	c.state = StateIncomingCallProceeding
	return o, nil
}

// Accept answers an incoming SETUP with CONNECT (U6 or U9 → U8, T313). m
// may carry the CONNECT's optional IEs (AAL, BLLI, ConnectionID) or be nil;
// the Link fills in type, call reference and, on a point-to-multipoint
// call, the endpoint reference. The Output's message is m itself; the Link
// keeps nothing of m, so the caller may reuse it once it has carried out
// the Output.
func (l *Link) Accept(id CallID, m *Message) (Output, error) {
	o := l.begin()
	c, err := l.lookup("Accept", id)
	if err != nil {
		return o, err
	}
	if c.state != StateCallPresent && c.state != StateIncomingCallProceeding {
		return o, reqErr("Accept", c, id, ErrState)
	}
	if m == nil {
		m = l.newMessage(0, CallRef{})
	}
	m.Type, m.CallRef = MsgConnect, id.wire()
	if c.p2mp && m.EndpointRef == nil {
		m.EndpointRef = c.epRef(c.firstEP)
	}
	enc, err := l.validate(m)
	if err != nil {
		return o, reqErr("Accept", c, id, err)
	}
	c.noteConnID(m.ConnectionID)
	l.sendEncoded(&o, id, m, enc)
	l.startCallTimer(&o, c, T313)
	c.state = StateConnectRequest
	return o, nil
}

// Reject refuses an incoming SETUP with RELEASE COMPLETE and the cause
// (U6 or U9 → U0; e.g. 88 when no SAP matches, 21 when the client
// refuses). While the link is down the call is cleared locally.
func (l *Link) Reject(id CallID, cause CauseIE) (Output, error) {
	o := l.begin()
	c := l.calls.Get(id.key())
	if c == nil {
		return o, reqErr("Reject", nil, id, ErrUnknownCall)
	}
	if c.state != StateCallPresent && c.state != StateIncomingCallProceeding {
		return o, reqErr("Reject", c, id, ErrState)
	}
	l.sendReleaseComplete(&o, id, cause)
	l.finish(&o, c, cause, nil)
	return o, nil
}

// Release clears a call. In U1, U3, U6, U8, U9 and U10 it sends RELEASE
// with the cause, starts T308 and enters U11; IndReleased follows with the
// RELEASE COMPLETE. In U12 (the peer cleared, IndRelease given) it
// acknowledges with RELEASE COMPLETE and the call ends at once
// (IndReleased). While the link is down the call is cleared locally.
func (l *Link) Release(id CallID, cause CauseIE) (Output, error) {
	o := l.begin()
	c := l.calls.Get(id.key())
	if c == nil {
		return o, reqErr("Release", nil, id, ErrUnknownCall)
	}
	switch {
	case c.state == StateReleaseRequest:
		return o, reqErr("Release", c, id, ErrState)
	case !l.up:
		l.finish(&o, c, cause, nil)
	case c.state == StateReleaseIndication:
		l.sendReleaseComplete(&o, id, cause)
		l.finish(&o, c, c.releaseCause(cause), nil)
	default:
		l.sendRelease(&o, c, cause)
	}
	return o, nil
}

// releaseCause is the cause IndReleased reports for a call the peer
// cleared: the peer's.
func (c *call) releaseCause(fallback CauseIE) CauseIE {
	if c.release != nil {
		return *c.release
	}
	return fallback
}

// StatusEnquiry asks the peer for the call's state: STATUS ENQUIRY, T322.
func (l *Link) StatusEnquiry(id CallID) (Output, error) {
	o := l.begin()
	c, err := l.lookup("StatusEnquiry", id)
	if err != nil {
		return o, err
	}
	if c.enq != 0 {
		return o, reqErr("StatusEnquiry", c, id, ErrEnquiryPending)
	}
	l.sendEnquiry(&o, c)
	return o, nil
}

func (l *Link) sendEnquiry(o *Output, c *call) {
	l.send(o, c.id, l.newMessage(MsgStatusEnquiry, c.id.wire()))
	if c.enq != 0 {
		l.stopTimer(o, TimerKey{Timer: T322, Call: c.id})
	}
	c.enq = 1
	l.startTimer(o, TimerKey{Timer: T322, Call: c.id})
}

// ModifyQoS asks the peer to change an active call's traffic parameters
// (Q.2963.1): MODIFY REQUEST with td, T360. The answer is IndModified or
// IndModifyRejected (also when the request loses a collision with the
// peer's, see ModifyState); until then the old parameters apply.
func (l *Link) ModifyQoS(id CallID, td *TrafficDescriptor) (Output, error) {
	o := l.begin()
	c, err := l.lookup("ModifyQoS", id)
	if err != nil {
		return o, err
	}
	m := &Message{Type: MsgModifyRequest, CallRef: id.wire(), Traffic: td}
	if err := l.stepModify(&o, c, modifyEvent{in: modifyLocalRequest, msg: m}); err != nil {
		return o, reqErr("ModifyQoS", c, id, err)
	}
	return o, nil
}

// AcceptModify accepts the peer's MODIFY REQUEST (IndModify): MODIFY
// ACKNOWLEDGE.
func (l *Link) AcceptModify(id CallID) (Output, error) {
	o := l.begin()
	c, err := l.lookup("AcceptModify", id)
	if err != nil {
		return o, err
	}
	if err := l.stepModify(&o, c, modifyEvent{in: modifyLocalAccept}); err != nil {
		return o, reqErr("AcceptModify", c, id, err)
	}
	return o, nil
}

// RejectModify refuses the peer's MODIFY REQUEST (IndModify) with the
// cause (37, 49 or 73 typically): MODIFY REJECT.
func (l *Link) RejectModify(id CallID, cause CauseIE) (Output, error) {
	o := l.begin()
	c, err := l.lookup("RejectModify", id)
	if err != nil {
		return o, err
	}
	if err := l.stepModify(&o, c, modifyEvent{in: modifyLocalReject, cause: cause}); err != nil {
		return o, reqErr("RejectModify", c, id, err)
	}
	return o, nil
}

// modifyInput is one kind of input to a call's modification state machine.
type modifyInput uint8

const (
	modifyLocalRequest modifyInput = iota + 1 // ModifyQoS; msg is the MODIFY REQUEST to send
	modifyLocalAccept                         // AcceptModify
	modifyLocalReject                         // RejectModify with cause
	modifyReceived                            // msg: a MODIFY REQUEST, ACKNOWLEDGE or REJECT received
	modifyTimeout                             // T360 expired
	modifyEnded                               // the call ends or the link fails; a request of ours still pending is indicated refused with cause, if it has a Value
)

// modifyEvent is one input to stepModify.
type modifyEvent struct {
	in    modifyInput
	msg   *Message
	cause CauseIE
}

// glareCause is the cause of a MODIFY REQUEST that lost a collision: the
// winner's MODIFY REJECT carries it, and the loser's IndModifyRejected for
// its own request (NDIS_STATUS_FAILURE for the client). 101 "message not
// compatible with call state", diagnostic MODIFY REQUEST, is what Q.2931
// gives for a request the receiver's state does not allow.
func glareCause() CauseIE { return NewCause(CauseMessageIncompatible, byte(MsgModifyRequest)) }

// stepModify is the modification state machine's one transition function
// (drawn on ModifyState): it decides what ev does in the call's current
// state, puts the messages, timer operations and indications into o and
// commits the next state. A local request the state does not allow is
// ErrState (a request that does not encode, its encoding error) with
// nothing changed.
func (l *Link) stepModify(o *Output, c *call, ev modifyEvent) error {
	ms, td := c.modify, c.modifyTD
	t360 := TimerKey{Timer: T360, Call: c.id}
	switch ev.in {
	case modifyLocalRequest:
		if c.state != StateActive || ms != ModifyNone {
			return ErrState
		}
		enc, err := l.validate(ev.msg)
		if err != nil {
			return err
		}
		l.sendEncoded(o, c.id, ev.msg, enc)
		l.startTimer(o, t360)
		c.modify, c.modifyTD = ModifyRequested, ev.msg.Traffic

	case modifyLocalAccept, modifyLocalReject:
		if c.state != StateActive || (ms != ModifyReceived && ms != ModifyYieldedReceived) {
			return ErrState
		}
		answer := l.newMessage(MsgModifyAck, c.id.wire())
		if ev.in == modifyLocalReject {
			answer = l.newMessage(MsgModifyReject, c.id.wire(), ev.cause)
		}
		l.send(o, c.id, answer)
		next := ModifyNone
		if ms == ModifyYieldedReceived {
			next = ModifyYielded
		}
		c.modify, c.modifyTD = next, nil

	case modifyReceived:
		m := ev.msg
		if c.state != StateActive {
			l.unexpected(o, c, m)
			return nil
		}
		switch {
		case m.Type == MsgModifyRequest && (ms == ModifyNone || ms == ModifyYielded):
			next := ModifyReceived
			if ms == ModifyYielded {
				next = ModifyYieldedReceived
			}
			c.modify, c.modifyTD = next, l.keepTraffic(m)
			l.indicateCall(o, c, Indication{Kind: IndModify, Msg: m, Traffic: c.modifyTD})
		case m.Type == MsgModifyRequest && ms == ModifyRequested && c.id.Local:
			// Collision on a call we originated: ours wins, theirs is
			// refused; we keep waiting for the answer to ours.
			l.send(o, c.id, l.newMessage(MsgModifyReject, c.id.wire(), glareCause()))
		case m.Type == MsgModifyRequest && ms == ModifyRequested:
			// Collision on the peer's call: theirs wins. Ours is given up
			// now; the peer's MODIFY REJECT of it is absorbed later.
			l.indicateCall(o, c, Indication{Kind: IndModifyRejected, Cause: glareCause(), Traffic: td})
			c.modify, c.modifyTD = ModifyYieldedReceived, l.keepTraffic(m)
			l.indicateCall(o, c, Indication{Kind: IndModify, Msg: m, Traffic: c.modifyTD})
		case m.Type == MsgModifyAck && ms == ModifyRequested:
			l.stopTimer(o, t360)
			c.modify, c.modifyTD = ModifyNone, nil
			if m.Traffic != nil {
				td = l.keepTraffic(m)
			}
			l.indicateCall(o, c, Indication{Kind: IndModified, Msg: m, Traffic: td})
		case m.Type == MsgModifyReject && ms == ModifyRequested:
			l.stopTimer(o, t360)
			c.modify, c.modifyTD = ModifyNone, nil
			l.indicateCall(o, c, Indication{Kind: IndModifyRejected, Cause: l.keepCause(m), Msg: m, Traffic: td})
		case m.Type == MsgModifyReject && (ms == ModifyYielded || ms == ModifyYieldedReceived):
			// The winner's refusal of the request we gave up: already
			// reported, nothing more to wait for.
			l.stopTimer(o, t360)
			c.modify = ms.yieldOver()
		default:
			l.unexpected(o, c, m)
		}

	case modifyTimeout:
		switch ms {
		case ModifyRequested:
			c.modify, c.modifyTD = ModifyNone, nil
			l.indicateCall(o, c, Indication{Kind: IndModifyRejected, Cause: timerCause(T360), Traffic: td})
			l.clearCall(o, c, timerCause(T360))
		case ModifyYielded, ModifyYieldedReceived:
			// The winner never refused the abandoned request: stop
			// waiting for it (it was reported refused already).
			c.modify = ms.yieldOver()
		}

	case modifyEnded:
		if ms.awaitsAnswer() {
			l.stopTimer(o, t360)
		}
		if ms == ModifyRequested && ev.cause.Value != 0 {
			l.indicateCall(o, c, Indication{Kind: IndModifyRejected, Cause: ev.cause, Traffic: td})
		}
		c.modify, c.modifyTD = ModifyNone, nil
	}
	return nil
}

// ---- received messages for a known call ----

// incomingSetup creates a call from a SETUP: U6, IndSetup.
func (l *Link) incomingSetup(o *Output, id CallID, m *Message) {
	c := l.newCall(id, StateCallPresent)
	c.noteConnID(m.ConnectionID)
	if m.EndpointRef != nil || (m.Bearer != nil && m.Bearer.UserPlane == PointToMultipoint) {
		c.p2mp = true
		ep := uint16(0)
		if m.EndpointRef != nil {
			ep = m.EndpointRef.Value
		}
		c.firstEP = ep
		c.parties = map[uint16]*party{ep: {state: PartyAddPartyReceived}}
	}
	l.indicateCall(o, c, Indication{Kind: IndSetup, Msg: m})
}

// unexpected answers a message the call's state does not allow: STATUS
// cause 101, diagnostic the message type, with the current call state.
func (l *Link) unexpected(o *Output, c *call, m *Message) {
	l.sendCallStatus(o, c, NewCause(CauseMessageIncompatible, byte(m.Type)), m.EndpointRef)
}

func (l *Link) receiveCall(o *Output, c *call, m *Message) {
	switch m.Type {
	case MsgCallProceeding:
		if c.state != StateCallInitiated {
			l.unexpected(o, c, m)
			return
		}
		l.dropSetup(c)
		c.noteConnID(m.ConnectionID)
		l.startCallTimer(o, c, T310)
		c.state = StateOutgoingCallProceeding
		l.indicateCall(o, c, Indication{Kind: IndProceeding, Msg: m})
	case MsgConnect:
		if c.state != StateCallInitiated && c.state != StateOutgoingCallProceeding {
			l.unexpected(o, c, m)
			return
		}
		l.stopCallTimer(o, c)
		l.dropSetup(c)
		c.noteConnID(m.ConnectionID)
		l.send(o, c.id, l.newMessage(MsgConnectAck, c.id.wire()))
		l.connected(o, c, m)
	case MsgConnectAck:
		if c.state != StateConnectRequest {
			l.unexpected(o, c, m)
			return
		}
		l.stopCallTimer(o, c)
		l.connected(o, c, m)
	case MsgRelease:
		l.receiveRelease(o, c, m)
	case MsgReleaseComplete:
		cause := c.releaseCause(NewCause(CauseNormalUnspecified))
		if len(m.Causes) > 0 {
			cause = l.keepCause(m)
		}
		l.finish(o, c, cause, m)
	case MsgStatusEnquiry:
		l.sendCallStatus(o, c, NewCause(CauseResponseToStatusEnquiry), m.EndpointRef)
	case MsgStatus:
		l.receiveStatus(o, c, m)
	case MsgRestart, MsgRestartAck:
		// Restart messages use the global call reference only.
		l.sendCallStatus(o, c, NewCause(CauseInvalidCallRef), nil)
	case MsgAddParty, MsgAddPartyAck, MsgAddPartyReject, MsgDropParty, MsgDropPartyAck:
		l.receiveParty(o, c, m)
	case MsgModifyRequest, MsgModifyAck, MsgModifyReject:
		l.stepModify(o, c, modifyEvent{in: modifyReceived, msg: m})
	}
}

// connected enters U10; the first party of a point-to-multipoint call
// becomes active with it.
func (l *Link) connected(o *Output, c *call, m *Message) {
	c.state = StateActive
	for _, p := range c.parties {
		if p.state == PartyAddPartyInitiated || p.state == PartyAddPartyReceived {
			p.state, p.wasActive = PartyActive, true
		}
	}
	l.indicateCall(o, c, Indication{Kind: IndConnected, Msg: m})
}

func (l *Link) receiveRelease(o *Output, c *call, m *Message) {
	if c.state == StateReleaseIndication {
		return // a repeated RELEASE while the local user decides: ignored
	}
	cause := l.keepCause(m)
	switch c.state {
	case StateActive:
		// Indicated upwards; RELEASE COMPLETE when the local user
		// releases too (Release in U12).
		l.stopCallTimers(o, c)
		c.parties = nil
		if l.lent(m) {
			c.release = l.keptCause(cause)
		} else {
			c.release = &m.Causes[0] // Receive took m
		}
		c.state = StateReleaseIndication
		l.indicateCall(o, c, Indication{Kind: IndRelease, Cause: cause, Msg: m})
	case StateReleaseRequest:
		// Clear collision: both sides sent RELEASE; this one stands for
		// the RELEASE COMPLETE and nothing is sent.
		l.finish(o, c, cause, m)
	default:
		// Not yet active (U1, U3, U6, U8, U9): the call is refused or
		// withdrawn at once.
		l.stopCallTimers(o, c)
		l.sendReleaseComplete(o, c.id, CauseIE{})
		l.finish(o, c, cause, m)
	}
}

// receiveStatus applies a STATUS (Q.2931 §5.6.11-12).
func (l *Link) receiveStatus(o *Output, c *call, m *Message) {
	l.stopEnquiry(o, c)
	peer := m.CallState.State
	if peer == StateNull {
		// The peer has no such call: clear ours locally.
		l.finish(o, c, NewCause(CauseMessageIncompatible), m)
		return
	}
	if c.state == StateReleaseRequest || c.state == StateReleaseIndication {
		return
	}
	if m.EndpointRef != nil && m.EndpointState != nil && c.p2mp && m.EndpointState.State == PartyNull {
		if p := c.parties[m.EndpointRef.Value]; p != nil {
			l.removeParty(o, c, m.EndpointRef.Value, p, NewCause(CauseMessageIncompatible), m)
			if l.checkNoParties(o, c) {
				return
			}
		}
	}
	if !compatible(c.state, peer) {
		l.clearCall(o, c, NewCause(CauseMessageIncompatible))
		return
	}
	l.indicateCall(o, c, Indication{Kind: IndStatus, Msg: m})
}

// compatible reports whether the peer's call state can coexist with ours
// given messages still in flight. A peer in U11 (its RELEASE on the way)
// fits every state.
func compatible(ours, peer CallState) bool {
	if peer == StateReleaseRequest {
		return true
	}
	switch ours {
	case StateCallInitiated:
		return peer == StateCallPresent || peer == StateIncomingCallProceeding || peer == StateConnectRequest
	case StateOutgoingCallProceeding:
		return peer == StateIncomingCallProceeding || peer == StateConnectRequest
	case StateCallPresent, StateIncomingCallProceeding:
		return peer == StateCallInitiated || peer == StateOutgoingCallProceeding
	case StateConnectRequest:
		return peer == StateCallInitiated || peer == StateOutgoingCallProceeding || peer == StateActive
	case StateActive:
		return peer == StateActive || peer == StateConnectRequest
	}
	return false
}

// ---- call timers ----

func (l *Link) expireCallTimer(o *Output, c *call, t TimerID) {
	switch t {
	case T322:
		switch c.enq {
		case 0:
		case 1:
			l.send(o, c.id, l.newMessage(MsgStatusEnquiry, c.id.wire()))
			c.enq = 2
			l.startTimer(o, TimerKey{Timer: T322, Call: c.id})
		default:
			c.enq = 0
			l.clearCall(o, c, NewCause(CauseTemporaryFailure))
		}
		return
	case T360:
		l.stepModify(o, c, modifyEvent{in: modifyTimeout})
		return
	}
	if c.timer != t {
		return // stopped or replaced since: a late expiry
	}
	first := !c.retried
	c.timer, c.retried = 0, false
	switch t {
	case T303:
		if m, err := Decode(c.setup.bytes()); first && err == nil {
			// The same SETUP again: decoded from the octets sent, a
			// message of its own for this Output.
			l.send(o, c.id, m)
			l.startCallTimer(o, c, T303)
			c.retried = true
			return
		}
		l.sendReleaseComplete(o, c.id, timerCause(T303))
		l.finish(o, c, timerCause(T303), nil)
	case T310, T313:
		l.clearCall(o, c, timerCause(t))
	case T308:
		if first {
			l.send(o, c.id, l.newMessage(MsgRelease, c.id.wire(), *c.release))
			l.startCallTimer(o, c, T308)
			c.retried = true
			return
		}
		// No answer to two RELEASEs: the call reference is released
		// locally (the VC would go to maintenance).
		l.finish(o, c, c.releaseCause(timerCause(T308)), nil)
	}
}
