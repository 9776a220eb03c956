package uni

import "strconv"

// RestartState is the state of the restart procedure (Q.2931 §5.5), which
// runs on the global call reference. The zero value is not a state.
//
// Each restart is a procedure of its own, keyed by what it restarts (all
// VCs, or one VC by its connection identifier): restarts of different VCs
// run independently, each with its own T316 or T317.
//
// Our RESTART (one procedure per VC, or for all VCs):
//
//	Rest0 ──Restart / !RESTART, T316──▶ Rest1   (the VCs' calls cleared: IndReleased 41)
//	Rest1 ──?RESTART ACKNOWLEDGE──▶ Rest0        (IndRestartComplete)
//	Rest1 ──?STATUS 82/100 (indicated VC: the peer does not know the VC; the oldest such restart)──▶ Rest0 (IndRestartComplete)
//	Rest1 ──?RELEASE COMPLETE for a call the restart cleared──▶ Rest0 (IndRestartComplete)
//	Rest1 ──T316 (1st) / !RESTART, T316──▶ Rest1
//	Rest1 ──T316 (2nd)──▶ Rest0                  (IndRestartFailed: maintenance alarm)
//
// The peer's RESTART:
//
//	Rest0 ──?RESTART, T317──▶ Rest2              (the VCs' calls cleared: IndReleased 41; IndRestart)
//	Rest2 ──RestartDone / !RESTART ACKNOWLEDGE──▶ Rest0
//	Rest2 ──T317 / !RESTART ACKNOWLEDGE──▶ Rest0 (IndRestartTimeout: maintenance alarm)
//
// A RESTART of class "indicated VC" for a VC no call uses is acknowledged at
// once: the VC is idle, which is what the restart asks for (Q.2931 §5.5.3.2
// inherits Q.931's "even if all channels are idle, RESTART ACKNOWLEDGE").
// One without a Connection Identifier is answered with STATUS cause 96,
// one of an unknown class with STATUS cause 100; RESTART ACKNOWLEDGE that
// matches no restart of ours with STATUS cause 101.
//
// A received RESTART (all VCs) clears the calls set up before the current
// signalling link came up, and spares those set up on it. condis sends
// RESTART (all VCs) only as the first message on the first link with a
// peer in a node's life, to clear what the peer holds from the node's
// earlier incarnation; every call set up on that link — a SETUP of the
// peer's that crossed the RESTART, or one made while a lost RESTART waited
// for T316 to send it again — belongs to the new incarnation. Every
// procedure ends when the link fails.
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

// restartKey names what a restart restarts: all VCs, or one VC.
type restartKey struct {
	all       bool
	vpci, vci uint16
}

func restartKeyOf(ci *ConnectionID) restartKey {
	if ci == nil {
		return restartKey{all: true}
	}
	return restartKey{vpci: ci.VPCI, vci: ci.VCI}
}

// restartProc is one restart procedure: ours (Rest1, T316) or the peer's
// (Rest2, T317).
type restartProc struct {
	slot    uint16   // the Endpoint field of its timer's key
	seq     uint64   // order of creation, oldest first
	msg     *Message // the RESTART sent or received
	retried bool     // ours: T316 expired once
	calls   []CallID // ours: the calls it cleared
}

// restartTimer is the key of a restart procedure's timer.
func restartTimer(t TimerID, p *restartProc) TimerKey { return TimerKey{Timer: t, Endpoint: p.slot} }

// newRestartProc starts tracking a procedure for m in procs.
func (l *Link) newRestartProc(procs map[restartKey]*restartProc, k restartKey, m *Message) *restartProc {
	l.restSeq++
	p := &restartProc{slot: l.freeRestartSlot(), seq: l.restSeq, msg: m}
	procs[k] = p
	return p
}

// freeRestartSlot returns a timer slot no procedure uses.
func (l *Link) freeRestartSlot() uint16 {
	for {
		l.restSlot++
		if l.restSlot == 0 {
			continue
		}
		if !slotUsed(l.restOut, l.restSlot) && !slotUsed(l.restIn, l.restSlot) {
			return l.restSlot
		}
	}
}

func slotUsed(procs map[restartKey]*restartProc, slot uint16) bool {
	for _, p := range procs {
		if p.slot == slot {
			return true
		}
	}
	return false
}

// procBySlot finds the procedure whose timer has key slot.
func procBySlot(procs map[restartKey]*restartProc, slot uint16) (restartKey, *restartProc) {
	for k, p := range procs {
		if p.slot == slot {
			return k, p
		}
	}
	return restartKey{}, nil
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

// clearRestarted ends a call a restart cleared: IndReleased with cause 41,
// marked Restarted.
func (l *Link) clearRestarted(o *Output, c *call) {
	if !c.released {
		c.released = true
		l.indicateCall(o, c, Indication{Kind: IndReleased, Cause: restartCause(), Restarted: true})
	}
	l.finish(o, c, restartCause(), nil)
}

// Restart restarts all VCs (connID nil) or the indicated VC: the calls on
// them are cleared locally (IndReleased, cause 41, Restarted), RESTART is
// sent on the global call reference and T316 started (Rest1).
// IndRestartComplete or IndRestartFailed follows. Restarts of different
// VCs run independently; a second restart of the same VCs while the first
// is outstanding is refused with ErrState.
func (l *Link) Restart(connID *ConnectionID) (Output, error) {
	o := l.begin()
	if !l.up {
		return o, reqErr("Restart", nil, CallID{}, ErrLinkDown)
	}
	k := restartKeyOf(connID)
	if l.restOut[k] != nil {
		return o, reqErr("Restart", nil, CallID{}, ErrState)
	}
	m := &Message{Type: MsgRestart, Restart: &RestartIndicator{Class: RestartAllVCs}}
	if connID != nil {
		ci := *connID
		m.Restart.Class, m.ConnectionID = RestartIndicatedVC, &ci
	}
	enc, err := l.validate(m)
	if err != nil {
		return o, reqErr("Restart", nil, CallID{}, err)
	}
	p := l.newRestartProc(l.restOut, k, m)
	for _, c := range l.callsOnVC(connID) {
		p.calls = append(p.calls, c.id)
		l.clearRestarted(&o, c)
	}
	l.sendEncoded(&o, CallID{}, m, enc)
	l.startTimer(&o, restartTimer(T316, p))
	return o, nil
}

// RestartReleased restarts the indicated VC of a call this side released
// whose RELEASE went unanswered twice (T308): the call is gone here, but
// the peer may still hold it. Besides RESTART ACKNOWLEDGE and STATUS, the
// peer's late RELEASE COMPLETE for that call ends the restart too.
func (l *Link) RestartReleased(connID ConnectionID, released CallID) (Output, error) {
	o, err := l.Restart(&connID)
	if err == nil {
		p := l.restOut[restartKeyOf(&connID)]
		p.calls = append(p.calls, released)
	}
	return o, err
}

// RestartDone tells the Link that the layer above has finished clearing
// after the peer's RESTART of connID (nil: all VCs), which IndRestart
// reported: RESTART ACKNOWLEDGE, Rest0.
func (l *Link) RestartDone(connID *ConnectionID) (Output, error) {
	o := l.begin()
	if !l.up {
		return o, reqErr("RestartDone", nil, CallID{}, ErrLinkDown)
	}
	k := restartKeyOf(connID)
	p := l.restIn[k]
	if p == nil {
		return o, reqErr("RestartDone", nil, CallID{}, ErrState)
	}
	l.stopTimer(&o, restartTimer(T317, p))
	l.acknowledgeRestart(&o, k, p)
	return o, nil
}

func (l *Link) acknowledgeRestart(o *Output, k restartKey, p *restartProc) {
	delete(l.restIn, k)
	l.sendRestartAck(o, p.msg)
}

// sendRestartAck answers the RESTART r.
func (l *Link) sendRestartAck(o *Output, r *Message) {
	m := &Message{Type: MsgRestartAck, CallRef: CallRef{Flag: true}, Restart: &RestartIndicator{Class: r.Restart.Class}}
	if r.ConnectionID != nil {
		ci := *r.ConnectionID
		m.ConnectionID = &ci
	}
	l.send(o, CallID{}, m)
}

// receiveGlobal handles messages with the global call reference.
func (l *Link) receiveGlobal(o *Output, m *Message) {
	reply := CallRef{Flag: !m.CallRef.Flag}
	switch m.Type {
	case MsgRestart:
		l.receiveRestart(o, m)
	case MsgRestartAck:
		k := restartKey{all: true}
		if m.Restart.Class == RestartIndicatedVC && m.ConnectionID != nil {
			k = restartKeyOf(m.ConnectionID)
		}
		p := l.restOut[k]
		if p == nil || m.Restart.Class != p.msg.Restart.Class {
			l.sendStatus(o, CallID{}, reply, l.globalState(), NewCause(CauseMessageIncompatible, byte(m.Type)), nil, nil)
			return
		}
		l.endOurRestart(o, k, p, m)
	case MsgStatusEnquiry:
		l.sendStatus(o, CallID{}, reply, l.globalState(), NewCause(CauseResponseToStatusEnquiry), nil, nil)
	case MsgStatus:
		if l.statusAnswersRestart(o, m) {
			return
		}
		l.indicate(o, Indication{Kind: IndStatus, Msg: m})
	default:
		// Call messages have no business on the global call reference.
		l.sendStatus(o, CallID{}, reply, l.globalState(), NewCause(CauseInvalidCallRef), nil, nil)
	}
}

// endOurRestart completes our restart k: its VCs are idle at the peer too.
func (l *Link) endOurRestart(o *Output, k restartKey, p *restartProc, m *Message) {
	l.stopTimer(o, restartTimer(T316, p))
	delete(l.restOut, k)
	ind := Indication{Kind: IndRestartComplete, Msg: m}
	if m != nil && m.Type != MsgRestartAck && len(m.Causes) > 0 {
		ind.Cause = l.keepCause(m)
	}
	l.indicate(o, ind)
}

// statusAnswersRestart completes the oldest of our indicated-VC restarts
// when m, a STATUS on the global call reference, says the peer does not
// know the VC (cause 82 or 100, as implementations that do not acknowledge
// an idle VC answer): that VC is idle there. STATUS carries no connection
// identifier, so the answer is matched by order: the peer answers RESTARTs
// in the order it receives them.
func (l *Link) statusAnswersRestart(o *Output, m *Message) bool {
	if c, ok := m.Cause(); !ok || (c != CauseInvalidIEContents && c != CauseNoSuchChannel) {
		return false
	}
	var ok restartKey
	var oldest *restartProc
	for k, p := range l.restOut {
		if !k.all && (oldest == nil || p.seq < oldest.seq) {
			ok, oldest = k, p
		}
	}
	if oldest == nil {
		return false
	}
	l.endOurRestart(o, ok, oldest, m)
	return true
}

// restartCallGone completes our indicated-VC restart that cleared call id
// when the peer's late RELEASE COMPLETE for it arrives: the peer has
// cleared the call too. It reports whether there was such a restart.
func (l *Link) restartCallGone(o *Output, id CallID, m *Message) bool {
	for k, p := range l.restOut {
		if k.all {
			continue
		}
		for _, c := range p.calls {
			if c == id {
				l.endOurRestart(o, k, p, m)
				return true
			}
		}
	}
	return false
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
	k := restartKeyOf(vc)
	if l.restIn[k] != nil {
		return // the peer's retransmission: the acknowledgement follows RestartDone
	}
	cs := l.callsOnVC(vc)
	if vc != nil && len(cs) == 0 {
		l.sendRestartAck(o, m) // idle already
		return
	}
	for _, c := range cs {
		if vc == nil && c.epoch == l.epoch {
			continue // set up on this link: see the type's comment
		}
		l.clearRestarted(o, c)
	}
	p := l.newRestartProc(l.restIn, k, l.keep(m))
	l.startTimer(o, restartTimer(T317, p))
	l.indicate(o, Indication{Kind: IndRestart, Msg: m})
}

// PeerRestarted tells the Link that the peer is a new incarnation (its
// process restarted): it holds none of the calls, parties or restarts of
// this Link, so every call is cleared at once (IndReleased, cause 41,
// Restarted), our restarts are complete and the peer's are forgotten,
// and T309 stops. Nothing is sent. Call it before LinkUp for the new
// incarnation's link.
func (l *Link) PeerRestarted() Output {
	o := l.begin()
	for _, c := range l.sortedCalls() {
		l.stopEnquiry(&o, c)
		l.clearRestarted(&o, c)
	}
	if l.t309 {
		l.t309 = false
		l.stopTimer(&o, TimerKey{Timer: T309})
	}
	for _, k := range l.sortedRestarts(l.restOut) {
		l.endOurRestart(&o, k, l.restOut[k], nil)
	}
	for _, k := range l.sortedRestarts(l.restIn) {
		l.stopTimer(&o, restartTimer(T317, l.restIn[k]))
		delete(l.restIn, k)
	}
	return o
}

// endRestartsLinkDown ends every restart procedure when the link fails.
func (l *Link) endRestartsLinkDown(o *Output, cause CauseIE) {
	for _, k := range l.sortedRestarts(l.restOut) {
		l.stopTimer(o, restartTimer(T316, l.restOut[k]))
		delete(l.restOut, k)
		l.indicate(o, Indication{Kind: IndRestartFailed, Cause: cause})
	}
	for _, k := range l.sortedRestarts(l.restIn) {
		l.stopTimer(o, restartTimer(T317, l.restIn[k]))
		delete(l.restIn, k)
	}
}

// sortedRestarts returns the keys of procs, oldest procedure first.
func (l *Link) sortedRestarts(procs map[restartKey]*restartProc) []restartKey {
	ks := make([]restartKey, 0, len(procs))
	for k := range procs {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && procs[ks[j]].seq < procs[ks[j-1]].seq; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}

func (l *Link) expireT316(o *Output, slot uint16) {
	k, p := procBySlot(l.restOut, slot)
	if p == nil {
		return
	}
	if !p.retried {
		p.retried = true
		l.send(o, CallID{}, p.msg)
		l.startTimer(o, restartTimer(T316, p))
		return
	}
	delete(l.restOut, k)
	l.indicate(o, Indication{Kind: IndRestartFailed, Cause: timerCause(T316), Msg: p.msg})
}

func (l *Link) expireT317(o *Output, slot uint16) {
	k, p := procBySlot(l.restIn, slot)
	if p == nil {
		return
	}
	l.acknowledgeRestart(o, k, p)
	l.indicate(o, Indication{Kind: IndRestartTimeout, Cause: timerCause(T317), Msg: p.msg})
}
