package uni

import "strconv"

// RestartState is the state of the restart procedure (Q.2931 §5.5), which
// runs on the global call reference. The zero value is not a state.
//
// Our RESTART:
//
//	Rest0 ──Restart / !RESTART, T316──▶ Rest1   (the VCs' calls cleared: IndReleased 41)
//	Rest1 ──?RESTART ACKNOWLEDGE──▶ Rest0        (IndRestartComplete)
//	Rest1 ──T316 (1st) / !RESTART, T316──▶ Rest1
//	Rest1 ──T316 (2nd)──▶ Rest0                  (IndRestartFailed: maintenance alarm)
//
// The peer's RESTART:
//
//	Rest0 ──?RESTART, T317──▶ Rest2              (the VCs' calls cleared: IndReleased 41; IndRestart)
//	Rest2 ──RestartDone / !RESTART ACKNOWLEDGE──▶ Rest0
//	Rest2 ──T317 / !RESTART ACKNOWLEDGE──▶ Rest0 (IndRestartTimeout: maintenance alarm)
//
// A RESTART of class "indicated VC" without a Connection Identifier is
// answered with STATUS cause 96, one naming a VC no call uses with STATUS
// cause 100 (diagnostic: the IE identifier); RESTART ACKNOWLEDGE outside
// Rest1 with STATUS cause 101. Both procedures end when the link fails.
type RestartState uint8

// Restart states.
const (
	RestNull    RestartState = iota + 1 // Rest0
	RestRequest                         // Rest1: RESTART sent, T316 running
	RestRestart                         // Rest2: RESTART received, T317 running
)

// String names the state.
func (s RestartState) String() string {
	switch s {
	case RestNull:
		return "Rest0 null"
	case RestRequest:
		return "Rest1 restart request"
	case RestRestart:
		return "Rest2 restart"
	}
	return "restart state " + strconv.Itoa(int(s))
}

// CallState returns the value the Call State IE carries for the state.
func (s RestartState) CallState() CallState {
	switch s {
	case RestRequest:
		return StateRestartRequest
	case RestRestart:
		return StateRestart
	}
	return StateNull
}

// globalState is the state reported in a STATUS on the global call
// reference.
func (l *Link) globalState() CallState { return l.RestartState().CallState() }

// restartCause is the cause reported for calls a restart clears.
func restartCause() CauseIE { return NewCause(CauseTemporaryFailure) }

// callsOnVC returns the calls whose connection identifier is ci (every call
// when ci is nil), in a fixed order.
func (l *Link) callsOnVC(ci *ConnectionID) []*call {
	var cs []*call
	for _, c := range l.sortedCalls() {
		if ci == nil || (c.hasConnID && c.connID.VPCI == ci.VPCI && c.connID.VCI == ci.VCI) {
			cs = append(cs, c)
		}
	}
	return cs
}

// Restart restarts all VCs (connID nil) or the indicated VC: the calls on
// them are cleared locally (IndReleased, cause 41), RESTART is sent on the
// global call reference and T316 started (Rest1). IndRestartComplete or
// IndRestartFailed follows.
func (l *Link) Restart(connID *ConnectionID) (Output, error) {
	var o Output
	if !l.up {
		return o, reqErr("Restart", nil, CallID{}, ErrLinkDown)
	}
	if l.restOut != RestNull {
		return o, reqErr("Restart", nil, CallID{}, ErrState)
	}
	m := &Message{Type: MsgRestart, Restart: &RestartIndicator{Class: RestartAllVCs}}
	if connID != nil {
		ci := *connID
		m.Restart.Class, m.ConnectionID = RestartIndicatedVC, &ci
	}
	if err := l.validate(m); err != nil {
		return o, reqErr("Restart", nil, CallID{}, err)
	}
	for _, c := range l.callsOnVC(connID) {
		l.finish(&o, c, restartCause(), nil)
	}
	l.send(&o, CallID{}, m)
	l.restOut, l.restOutMsg, l.restOutTry = RestRequest, m, false
	l.startTimer(&o, TimerKey{Timer: T316})
	return o, nil
}

// RestartDone tells the Link that the layer above has finished clearing
// after the peer's RESTART (IndRestart): RESTART ACKNOWLEDGE, Rest0.
func (l *Link) RestartDone() (Output, error) {
	var o Output
	if !l.up {
		return o, reqErr("RestartDone", nil, CallID{}, ErrLinkDown)
	}
	if l.restIn != RestRestart {
		return o, reqErr("RestartDone", nil, CallID{}, ErrState)
	}
	l.stopTimer(&o, TimerKey{Timer: T317})
	l.acknowledgeRestart(&o)
	return o, nil
}

func (l *Link) acknowledgeRestart(o *Output) {
	r := l.restInMsg
	m := &Message{Type: MsgRestartAck, CallRef: CallRef{Flag: true}, Restart: &RestartIndicator{Class: r.Restart.Class}}
	if r.ConnectionID != nil {
		ci := *r.ConnectionID
		m.ConnectionID = &ci
	}
	l.send(o, CallID{}, m)
	l.restIn, l.restInMsg = RestNull, nil
}

// receiveGlobal handles messages with the global call reference.
func (l *Link) receiveGlobal(o *Output, m *Message) {
	reply := CallRef{Flag: !m.CallRef.Flag}
	switch m.Type {
	case MsgRestart:
		l.receiveRestart(o, m)
	case MsgRestartAck:
		if l.restOut != RestRequest {
			l.sendStatus(o, CallID{}, reply, l.globalState(), NewCause(CauseMessageIncompatible, byte(m.Type)), nil, nil)
			return
		}
		l.stopTimer(o, TimerKey{Timer: T316})
		l.restOut, l.restOutMsg = RestNull, nil
		indicate(o, Indication{Kind: IndRestartComplete, Msg: m})
	case MsgStatusEnquiry:
		l.sendStatus(o, CallID{}, reply, l.globalState(), NewCause(CauseResponseToStatusEnquiry), nil, nil)
	case MsgStatus:
		indicate(o, Indication{Kind: IndStatus, Msg: m})
	default:
		// Call messages have no business on the global call reference.
		l.sendStatus(o, CallID{}, reply, l.globalState(), NewCause(CauseInvalidCallRef), nil, nil)
	}
}

func (l *Link) receiveRestart(o *Output, m *Message) {
	reply := CallRef{Flag: !m.CallRef.Flag}
	status := func(c Cause, diag byte) {
		l.sendStatus(o, CallID{}, reply, l.globalState(), NewCause(c, diag), nil, nil)
	}
	var vc *ConnectionID
	switch m.Restart.Class {
	case RestartAllVCs:
	case RestartIndicatedVC:
		if m.ConnectionID == nil {
			status(CauseMandatoryIEMissing, byte(IEConnectionID))
			return
		}
		vc = m.ConnectionID
	default:
		status(CauseInvalidIEContents, byte(IERestartIndicator))
		return
	}
	if l.restIn == RestRestart {
		if sameRestart(l.restInMsg, m) {
			return // the peer's retransmission: the acknowledgement follows RestartDone
		}
		status(CauseMessageIncompatible, byte(MsgRestart))
		return
	}
	cs := l.callsOnVC(vc)
	if vc != nil && len(cs) == 0 {
		status(CauseInvalidIEContents, byte(IEConnectionID))
		return
	}
	for _, c := range cs {
		l.finish(o, c, restartCause(), nil)
	}
	l.restIn, l.restInMsg = RestRestart, m
	l.startTimer(o, TimerKey{Timer: T317})
	indicate(o, Indication{Kind: IndRestart, Msg: m})
}

func sameRestart(a, b *Message) bool {
	if a.Restart.Class != b.Restart.Class || (a.ConnectionID == nil) != (b.ConnectionID == nil) {
		return false
	}
	return a.ConnectionID == nil || (a.ConnectionID.VPCI == b.ConnectionID.VPCI && a.ConnectionID.VCI == b.ConnectionID.VCI)
}

func (l *Link) expireT316(o *Output) {
	if l.restOut != RestRequest {
		return
	}
	if !l.restOutTry {
		l.restOutTry = true
		l.send(o, CallID{}, l.restOutMsg)
		l.startTimer(o, TimerKey{Timer: T316})
		return
	}
	l.restOut, l.restOutMsg, l.restOutTry = RestNull, nil, false
	indicate(o, Indication{Kind: IndRestartFailed, Cause: timerCause(T316)})
}

func (l *Link) expireT317(o *Output) {
	if l.restIn != RestRestart {
		return
	}
	l.acknowledgeRestart(o)
	indicate(o, Indication{Kind: IndRestartTimeout, Cause: timerCause(T317)})
}
