package uni

// party is one party (leaf) of a point-to-multipoint call. Its state
// machine is drawn on PartyState.
type party struct {
	state     PartyState
	timer     TimerID // T398 or T399, 0 when none runs
	wasActive bool    // it has been active: its end is IndPartyDropped, not IndPartyRejected
	indicated bool    // its end has been indicated
}

// epRef is the Endpoint Reference IE this side sends for a party of c: flag
// 0 from the root, which allocated the value.
func (c *call) epRef(v uint16) *EndpointReference {
	return &EndpointReference{Value: v, Flag: !c.id.Local}
}

func (l *Link) startPartyTimer(o *Output, c *call, ep uint16, p *party, t TimerID) {
	l.stopPartyTimer(o, c, ep, p)
	p.timer = t
	l.startTimer(o, TimerKey{Timer: t, Call: c.id, Endpoint: ep})
}

func (l *Link) stopPartyTimer(o *Output, c *call, ep uint16, p *party) {
	if p.timer != 0 {
		l.stopTimer(o, TimerKey{Timer: p.timer, Call: c.id, Endpoint: ep})
		p.timer = 0
	}
}

// indicatePartyEnd gives the party's one final indication.
func (l *Link) indicatePartyEnd(o *Output, c *call, ep uint16, p *party, cause CauseIE, m *Message) {
	if p.indicated {
		return
	}
	p.indicated = true
	k := IndPartyRejected
	if p.wasActive {
		k = IndPartyDropped
	}
	l.indicateCall(o, c, Indication{Kind: k, Endpoint: ep, Cause: cause, Msg: m})
}

// removeParty returns a party to Null.
func (l *Link) removeParty(o *Output, c *call, ep uint16, p *party, cause CauseIE, m *Message) {
	l.stopPartyTimer(o, c, ep, p)
	delete(c.parties, ep)
	p.state = PartyNull
	l.indicatePartyEnd(o, c, ep, p, cause, m)
}

// checkNoParties clears an active point-to-multipoint call that has no
// party left.
func (l *Link) checkNoParties(o *Output, c *call) bool {
	if !c.p2mp || len(c.parties) > 0 || c.state != StateActive {
		return false
	}
	l.clearCall(o, c, NewCause(CauseNormalCallClearing))
	return true
}

// allocEP picks the next free endpoint reference, never 0 (the SETUP's).
func (c *call) allocEP() (uint16, bool) {
	for range MaxEndpointRef {
		c.nextEP++
		if c.nextEP > MaxEndpointRef || c.nextEP == 0 {
			c.nextEP = 1
		}
		if c.parties[c.nextEP] == nil && c.nextEP != c.firstEP {
			return c.nextEP, true
		}
	}
	return 0, false
}

// ---- local requests ----

func (l *Link) lookupParty(op string, id CallID, ep uint16) (*call, *party, error) {
	c, err := l.lookup(op, id)
	if err != nil {
		return nil, nil, err
	}
	if !c.p2mp {
		return nil, nil, reqErr(op, c, id, ErrNotMultipoint)
	}
	p := c.parties[ep]
	if p == nil {
		return nil, nil, reqErr(op, c, id, ErrUnknownParty)
	}
	return c, p, nil
}

// AddParty adds a party to an active point-to-multipoint call this side
// originated: ADD PARTY with a new endpoint reference, T399. m carries the
// ADD PARTY's IEs (Called is mandatory); the Link fills in type, call
// reference and endpoint reference and takes ownership of m. The answer is
// IndPartyAdded or IndPartyRejected.
func (l *Link) AddParty(id CallID, m *Message) (uint16, Output, error) {
	o := l.begin()
	c, err := l.lookup("AddParty", id)
	if err != nil {
		return 0, o, err
	}
	if !c.p2mp || !id.Local {
		return 0, o, reqErr("AddParty", c, id, ErrNotMultipoint)
	}
	if c.state != StateActive {
		return 0, o, reqErr("AddParty", c, id, ErrState)
	}
	ep, ok := c.allocEP()
	if !ok {
		return 0, o, reqErr("AddParty", c, id, ErrNoEndpointRef)
	}
	m.Type, m.CallRef, m.EndpointRef = MsgAddParty, id.wire(), c.epRef(ep)
	enc, err := l.validate(m)
	if err != nil {
		return 0, o, reqErr("AddParty", c, id, err)
	}
	p := &party{state: PartyAddPartyInitiated}
	c.parties[ep] = p
	l.sendEncoded(&o, id, m, enc)
	l.startPartyTimer(&o, c, ep, p, T399)
	return ep, o, nil
}

// AcceptParty accepts a party the peer adds (IndAddParty): ADD PARTY
// ACKNOWLEDGE.
func (l *Link) AcceptParty(id CallID, ep uint16) (Output, error) {
	o := l.begin()
	c, p, err := l.lookupParty("AcceptParty", id, ep)
	if err != nil {
		return o, err
	}
	if c.state != StateActive || p.state != PartyAddPartyReceived {
		return o, reqErr("AcceptParty", c, id, ErrState)
	}
	l.send(&o, id, &Message{Type: MsgAddPartyAck, CallRef: id.wire(), EndpointRef: c.epRef(ep)})
	p.state, p.wasActive = PartyActive, true
	return o, nil
}

// RejectParty refuses a party the peer adds (IndAddParty): ADD PARTY
// REJECT with the cause; IndPartyRejected ends the party.
func (l *Link) RejectParty(id CallID, ep uint16, cause CauseIE) (Output, error) {
	o := l.begin()
	c, p, err := l.lookupParty("RejectParty", id, ep)
	if err != nil {
		return o, err
	}
	if c.state != StateActive || p.state != PartyAddPartyReceived {
		return o, reqErr("RejectParty", c, id, ErrState)
	}
	l.send(&o, id, &Message{Type: MsgAddPartyReject, CallRef: id.wire(), Causes: []CauseIE{cause}, EndpointRef: c.epRef(ep)})
	l.removeParty(&o, c, ep, p, cause, nil)
	l.checkNoParties(&o, c)
	return o, nil
}

// DropParty drops a party (either side may):
//
//   - an active party, or one being added by this side: DROP PARTY, T398;
//     IndPartyDropped follows with the DROP PARTY ACKNOWLEDGE. If it is the
//     last party of the call, the call is cleared instead (RELEASE, U11;
//     IndReleased follows);
//   - a party the peer drops (IndDropParty): DROP PARTY ACKNOWLEDGE and
//     the party ends at once (IndPartyDropped).
func (l *Link) DropParty(id CallID, ep uint16, cause CauseIE) (Output, error) {
	o := l.begin()
	c, p, err := l.lookupParty("DropParty", id, ep)
	if err != nil {
		return o, err
	}
	if c.state != StateActive {
		return o, reqErr("DropParty", c, id, ErrState)
	}
	switch p.state {
	case PartyDropPartyReceived:
		l.send(&o, id, &Message{Type: MsgDropPartyAck, CallRef: id.wire(), EndpointRef: c.epRef(ep), Causes: []CauseIE{cause}})
		l.removeParty(&o, c, ep, p, cause, nil)
		l.checkNoParties(&o, c)
	case PartyActive, PartyAddPartyInitiated:
		l.dropParty(&o, c, ep, p, cause)
	default:
		return o, reqErr("DropParty", c, id, ErrState)
	}
	return o, nil
}

// dropParty sends DROP PARTY (T398) for the party, or RELEASE when no other
// party is active or being added.
func (l *Link) dropParty(o *Output, c *call, ep uint16, p *party, cause CauseIE) {
	last := true
	for e, q := range c.parties {
		if e != ep && (q.state == PartyActive || q.state == PartyAddPartyInitiated || q.state == PartyAddPartyReceived) {
			last = false
			break
		}
	}
	if last {
		l.sendRelease(o, c, cause)
		return
	}
	l.send(o, c.id, &Message{Type: MsgDropParty, CallRef: c.id.wire(), Causes: []CauseIE{cause}, EndpointRef: c.epRef(ep)})
	l.startPartyTimer(o, c, ep, p, T398)
	p.state = PartyDropPartyInitiated
}

// ---- received party messages ----

func (l *Link) receiveParty(o *Output, c *call, m *Message) {
	if c.state != StateActive || !c.p2mp {
		l.unexpected(o, c, m)
		return
	}
	ep := m.EndpointRef.Value
	p := c.parties[ep]
	if p == nil {
		switch m.Type {
		case MsgAddParty:
			if c.id.Local {
				// Only the root adds parties.
				l.unexpected(o, c, m)
				return
			}
			p = &party{state: PartyAddPartyReceived}
			c.parties[ep] = p
			l.indicateCall(o, c, Indication{Kind: IndAddParty, Endpoint: ep, Msg: m})
		case MsgDropPartyAck:
			// Stray: ignored.
		default:
			l.send(o, c.id, &Message{Type: MsgDropPartyAck, CallRef: c.id.wire(), EndpointRef: c.epRef(ep),
				Causes: []CauseIE{NewCause(CauseInvalidEndpointRef)}})
		}
		return
	}
	switch m.Type {
	case MsgAddParty:
		// Duplicate ADD PARTY for a party that exists: ignored.
	case MsgAddPartyAck, MsgAddPartyReject:
		if p.state != PartyAddPartyInitiated {
			l.unexpected(o, c, m)
			return
		}
		l.stopPartyTimer(o, c, ep, p)
		if m.Type == MsgAddPartyAck {
			p.state, p.wasActive = PartyActive, true
			l.indicateCall(o, c, Indication{Kind: IndPartyAdded, Endpoint: ep, Msg: m})
			return
		}
		l.removeParty(o, c, ep, p, l.keepCause(m), m)
		l.checkNoParties(o, c)
	case MsgDropParty:
		switch p.state {
		case PartyActive:
			l.stopPartyTimer(o, c, ep, p)
			p.state = PartyDropPartyReceived
			l.indicateCall(o, c, Indication{Kind: IndDropParty, Endpoint: ep, Cause: l.keepCause(m), Msg: m})
		case PartyAddPartyInitiated, PartyAddPartyReceived:
			// Withdrawn before it was active: acknowledged at once.
			l.send(o, c.id, &Message{Type: MsgDropPartyAck, CallRef: c.id.wire(), EndpointRef: c.epRef(ep),
				Causes: []CauseIE{NewCause(CauseNormalCallClearing)}})
			l.removeParty(o, c, ep, p, l.keepCause(m), m)
			l.checkNoParties(o, c)
		case PartyDropPartyInitiated:
			// Crossing DROP PARTYs: theirs stands for the acknowledgement
			// of ours; nothing is sent.
			l.removeParty(o, c, ep, p, l.keepCause(m), m)
			l.checkNoParties(o, c)
		case PartyDropPartyReceived:
			// Repeated: ignored.
		}
	case MsgDropPartyAck:
		if p.state != PartyDropPartyInitiated {
			l.unexpected(o, c, m)
			return
		}
		cause := NewCause(CauseNormalCallClearing)
		if len(m.Causes) > 0 {
			cause = l.keepCause(m)
		}
		l.removeParty(o, c, ep, p, cause, m)
		l.checkNoParties(o, c)
	}
}

// expirePartyTimer handles T398 and T399 of a party (its p.timer).
func (l *Link) expirePartyTimer(o *Output, c *call, ep uint16, p *party) {
	t := p.timer
	p.timer = 0
	switch t {
	case T399:
		// No answer to ADD PARTY: the party is refused and withdrawn.
		l.indicatePartyEnd(o, c, ep, p, timerCause(T399), nil)
		l.dropParty(o, c, ep, p, timerCause(T399))
	case T398:
		// No answer to DROP PARTY: released locally.
		l.removeParty(o, c, ep, p, timerCause(T398), nil)
		l.checkNoParties(o, c)
	}
}
