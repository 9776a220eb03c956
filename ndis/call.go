package ndis

import "strconv"

// lockCmVc validates a call manager's use of a VC handle in a call
// operation; if it is usable it returns with v.mu held (see lockLiveVc).
func (m *Mediator) lockCmVc(who driver, v *Vc) (string, string) {
	if rule, why := m.lockLiveVc(v); rule != "" {
		return rule, why
	}
	if v.kind == vcSignaling {
		v.mu.Unlock()
		return "R-VC-12", "a signalling VC carries no call"
	}
	if v.cmOwner() != who {
		v.mu.Unlock()
		return "R-GEN-9", "the VC's call manager is " + nameOf(v.cmOwner())
	}
	return "", ""
}

// lockClientVc validates a client's use of a VC handle; if it is usable it
// returns with v.mu held (see lockLiveVc).
func (b *Binding) lockClientVc(v *Vc) (string, string) {
	if rule, why := b.m.lockLiveVc(v); rule != "" {
		return rule, why
	}
	if v.client() != b {
		v.mu.Unlock()
		return "R-GEN-8", "not a VC of this client"
	}
	if v.kind != vcOutgoing && (v.call == callIdle || v.call == callClosed) {
		v.mu.Unlock()
		return "R-CLOSE-11", "a call-manager-created VC is not the client's outside a call"
	}
	return "", ""
}

// reusableLocked decides whether a new call may start on v (spec §9.1).
// It returns a refusal status and rule, or 0 when the call may start.
// Whether the previous call left the VC active is judged at its close, not
// now: the creator may already have activated the VC for the next call
// (activate, then dispatch: spec §4.5, §9.4).
func (m *Mediator) reusableLocked(v *Vc) (Status, string, string) {
	switch v.call {
	case callIdle:
		return 0, "", ""
	case callClosed:
		if m.opts.VcReuse == ReuseStrict {
			return StatusClosing, "R-CLOSE-3", "the VC was closed and may not carry another call (strict reuse policy)"
		}
		if v.leftActive {
			return StatusFailure, "R-CLOSE-8", "the previous call's close completed with the VC active and it has not been deactivated since (now " + v.act.String() + "); deactivate it before the next call"
		}
		if v.kind == vcOutgoing && v.closeSeen && v.closeStatus != StatusSuccess {
			return StatusFailure, "R-CLOSE-16", "the previous call was closed with " + v.closeStatus.String() + "; the client must delete the VC"
		}
		return 0, "", ""
	case callClosing:
		return StatusClosing, "R-CLOSE-3", "the VC is closing"
	}
	return StatusFailure, "R-CALL-1", "the VC already carries a call (" + v.call.String() + ")"
}

// ClMakeCall models NdisClMakeCall: the client asks the call manager to set
// up a call on a VC it created (R-CALL-1). A non-nil partyCtx makes the call
// point-to-multipoint and creates the initial party (R-CALL-3); the party
// handle is returned, valid once the call succeeded (R-CALL-7). params
// belongs to the call manager until the call completes (R-CALL-2). PENDING
// means ProtocolClMakeCallComplete follows.
func (b *Binding) ClMakeCall(vc *Vc, params *CallParameters, partyCtx any) (*Party, Status) {
	if b.invalid() {
		return nil, StatusFailure
	}
	m := b.m
	const fn = "NdisClMakeCall"
	m.emit(EventRequest, b, fn, vc, 0)
	if rule, why := m.lockLiveVc(vc); rule != "" {
		return nil, m.reject(StatusFailure, rule, fn, b, vc, "%s", why)
	}
	if vc.client() != b || vc.kind != vcOutgoing {
		vc.mu.Unlock()
		return nil, m.reject(StatusFailure, "R-CALL-1", fn, b, vc, "a client makes calls only on VCs it created with NdisCoCreateVc")
	}
	// The AF's state is read without its lock: this live outgoing VC keeps
	// the open from closing (R-AF-12).
	if rule, st, why := b.clientAfCheck(vc.af); rule != "" {
		vc.mu.Unlock()
		return nil, m.reject(st, rule, fn, b, vc, "%s", why)
	}
	if vc.af.getState() == afNotifyClose {
		vc.mu.Unlock()
		return nil, m.reject(StatusFailure, "R-AF-19", fn, b, vc, "the call manager is closing the AF")
	}
	if params == nil {
		vc.mu.Unlock()
		return nil, m.reject(StatusFailure, "R-CALL-2", fn, b, vc, "nil call parameters")
	}
	if st, rule, why := m.reusableLocked(vc); st != 0 {
		vc.mu.Unlock()
		return nil, m.reject(st, rule, fn, b, vc, "%s", why)
	}
	var p *Party
	vc.multipoint = partyCtx != nil
	if vc.multipoint {
		p = &Party{m: m, id: m.newID(), vc: vc, clientCtx: partyCtx, state: partyAdding}
		x := vc.extra()
		vc.shard().parties.Add(int64(1 - len(x.parties)))
		x.parties = append(x.parties[:0], p)
	}
	vc.setCallLocked(callOutSetup)
	vc.closingMark, vc.closeSeen = false, false
	vc.makeCall.state = opUpcall
	cm, owner, cmCtx := vc.cm(), vc.cmOwner(), vc.cmCtx
	vc.mu.Unlock()

	m.emit(EventUpcall, owner, "ProtocolCmMakeCall", vc, 0)
	cmPartyCtx, st := cm.ProtocolCmMakeCall(cmCtx, params, p)
	m.emit(EventHandled, owner, "ProtocolCmMakeCall", vc, st)

	vc.mu.Lock()
	// A close held for the MakeCall completion keeps its record past settle
	// (which recycles the others): read before, under the same lock.
	var held *earlyCompletion
	if early := m.earlyOf(&vc.makeCall); early != nil && early.closeHeld {
		held = early // no longer parked after settle: only this goroutine sees it then
	}
	final, fctx, fparams, finish, deliver := vc.makeCall.settle(m, st, cmPartyCtx, params, "ProtocolCmMakeCall", owner, vc)
	if !finish {
		vc.mu.Unlock()
		m.emit(EventReturn, b, fn, vc, StatusPending)
		return p, StatusPending
	}
	hp := m.finishMakeCallLocked(vc, final, fctx, owner)
	vc.mu.Unlock()
	if deliver {
		m.emit(EventUpcall, b, "ProtocolClMakeCallComplete", vc, final)
		b.client.ProtocolClMakeCallComplete(final, vc.clientCtx, hp, fparams)
		if held != nil {
			m.deliverHeldClose(vc, held.closeSt, held.closeData)
		}
		final = StatusPending
		hp = p
	}
	if held != nil {
		m.freeEarly(held)
	}
	m.emit(EventReturn, b, fn, vc, final)
	return hp, final
}

// finishMakeCallLocked applies a MakeCall outcome and returns the party
// handle to report (nil unless a multipoint call succeeded).
func (m *Mediator) finishMakeCallLocked(v *Vc, st Status, cmPartyCtx any, owner driver) *Party {
	if st == StatusSuccess {
		if !v.act.isActive() {
			m.warn("R-CALL-4", "MakeCall completion", owner, v, "call reported connected but the VC is %v", v.act)
		}
		v.setCallLocked(callConnected)
		if v.multipoint {
			p := v.more.parties[0] // the initial party (MakeCall made v.more)
			p.state, p.cmCtx = partyConnected, cmPartyCtx
			if cmPartyCtx == nil {
				m.warn("R-PTY-4", "MakeCall completion", owner, p, "no call-manager context for the initial party of a multipoint call")
			}
			return p
		}
		if cmPartyCtx != nil {
			m.warn("R-CALL-3", "MakeCall completion", owner, v, "call-manager party context must be nil for a point-to-point call")
		}
		return nil
	}
	// R-CALL-7: the initial party dies with the failed call.
	if ps := v.partyList(); len(ps) > 0 {
		for _, p := range ps {
			p.state = partyDead
		}
		v.shard().parties.Add(-int64(len(ps)))
		v.more.parties = ps[:0]
	}
	v.multipoint = false
	v.setCallLocked(callIdle)
	return nil
}

// CmMakeCallComplete models NdisCmMakeCallComplete.
func (b *Binding) CmMakeCallComplete(status Status, vc *Vc, party *Party, cmPartyCtx any, params *CallParameters) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.makeCallComplete(b, "NdisCmMakeCallComplete", status, vc, party, cmPartyCtx, params)
}

// MCmMakeCallComplete models NdisMCmMakeCallComplete.
func (a *Adapter) MCmMakeCallComplete(status Status, vc *Vc, party *Party, cmPartyCtx any, params *CallParameters) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.makeCallComplete(a, "NdisMCmMakeCallComplete", status, vc, party, cmPartyCtx, params)
}

func (m *Mediator) makeCallComplete(who driver, fn string, st Status, v *Vc, party *Party, cmPartyCtx any, params *CallParameters) Status {
	if ret, ok := m.startCompletion(who, fn, v, st); !ok {
		return ret
	}
	if rule, why := m.lockCmVc(who, v); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, v, "%s", why)
	}
	if v.makeCall.state != opUpcall && v.makeCall.state != opPended {
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-GEN-2", fn, who, v, "no pended ProtocolCmMakeCall to complete")
	}
	if v.multipoint && party != v.more.parties[0] || !v.multipoint && party != nil {
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-CALL-3", fn, who, v, "party handle does not match the call's initial party")
	}
	deliver, _ := v.makeCall.complete(m, st, cmPartyCtx, params)
	if !deliver {
		v.mu.Unlock()
		return StatusSuccess
	}
	hp := m.finishMakeCallLocked(v, st, cmPartyCtx, who)
	c := v.client()
	v.mu.Unlock()
	m.emit(EventUpcall, c, "ProtocolClMakeCallComplete", v, st)
	c.client.ProtocolClMakeCallComplete(st, v.clientCtx, hp, params)
	return StatusSuccess
}

// CmDispatchIncomingCall models NdisCmDispatchIncomingCall: the call manager
// offers a call, on a VC it created, to the client that registered sap
// (R-SAP-11). The SAP may still be registering (R-SAP-4). It returns the
// client's answer: SUCCESS accepts, PENDING means the answer comes through
// ProtocolCmIncomingCallComplete, anything else rejects.
func (b *Binding) CmDispatchIncomingCall(sap *Sap, vc *Vc, params *CallParameters) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.dispatchIncomingCall(b, "NdisCmDispatchIncomingCall", sap, vc, params)
}

// MCmDispatchIncomingCall models NdisMCmDispatchIncomingCall.
func (a *Adapter) MCmDispatchIncomingCall(sap *Sap, vc *Vc, params *CallParameters) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.dispatchIncomingCall(a, "NdisMCmDispatchIncomingCall", sap, vc, params)
}

func (m *Mediator) dispatchIncomingCall(who driver, fn string, sap *Sap, v *Vc, params *CallParameters) Status {
	m.emit(EventRequest, who, fn, v, 0)
	if rule, why := m.lockCmVc(who, v); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, v, "%s", why)
	}
	if v.creator() != who {
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-IN-12", fn, who, v, "a call manager dispatches incoming calls only on VCs it created")
	}
	// The SAP's state is read without its AF's lock: an offer races a
	// deregistration either way (R-SAP-9).
	if sap == nil || sap.m != m || (sap.getState() != sapRegistering && sap.getState() != sapRegistered) {
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-SAP-11", fn, who, v, "SAP is not registered")
	}
	if sap.af != v.af {
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-SAP-11", fn, who, v, "SAP %v belongs to another client or AF than the VC", sap)
	}
	if params == nil {
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-IN-10", fn, who, v, "nil call parameters")
	}
	if st, rule, why := m.reusableLocked(v); st != 0 {
		v.mu.Unlock()
		return m.reject(st, rule, fn, who, v, "%s", why)
	}
	v.setCallLocked(callOffered)
	v.closingMark, v.closeSeen = false, false
	v.inCall.state = opUpcall
	c := v.client()
	v.mu.Unlock()

	m.emit(EventUpcall, c, "ProtocolClIncomingCall", v, 0)
	st := c.client.ProtocolClIncomingCall(sap.clientCtx, v.clientCtx, params)
	m.emit(EventHandled, c, "ProtocolClIncomingCall", v, st)

	v.mu.Lock()
	final, _, fparams, finish, deliver := v.inCall.settle(m, st, nil, params, "ProtocolClIncomingCall", c, v)
	if !finish {
		v.mu.Unlock()
		m.emit(EventReturn, who, fn, v, StatusPending)
		return StatusPending
	}
	finishIncomingCallLocked(v, final)
	v.mu.Unlock()
	if deliver {
		m.emit(EventUpcall, who, "ProtocolCmIncomingCallComplete", v, final)
		v.cm().ProtocolCmIncomingCallComplete(final, v.cmCtx, fparams)
		final = StatusPending
	}
	m.emit(EventReturn, who, fn, v, final)
	return final
}

// finishIncomingCallLocked applies the client's answer to an offer, unless
// the call already moved on (the remote gave up first).
func finishIncomingCallLocked(v *Vc, st Status) {
	if v.call != callOffered {
		return
	}
	if st == StatusSuccess {
		v.setCallLocked(callAccepted)
	} else {
		v.setCallLocked(callIdle)
	}
}

// ClIncomingCallComplete models NdisClIncomingCallComplete: the client
// answers a pended ProtocolClIncomingCall with SUCCESS (accept) or an error
// (reject), never PENDING (R-IN-3).
func (b *Binding) ClIncomingCallComplete(status Status, vc *Vc, params *CallParameters) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisClIncomingCallComplete"
	m.emit(EventRequest, b, fn, vc, status)
	if status == StatusPending {
		return m.reject(StatusFailure, "R-IN-3", fn, b, vc, "the answer to an incoming call may not be NDIS_STATUS_PENDING")
	}
	if rule, why := m.lockLiveVc(vc); rule != "" {
		return m.reject(StatusFailure, rule, fn, b, vc, "%s", why)
	}
	if vc.client() != b {
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-GEN-8", fn, b, vc, "not a VC of this client")
	}
	switch m.takeCompletionLocked(&vc.inCall, status, nil, params) {
	case completeNone:
		vc.mu.Unlock()
		return m.refuseDoubleCompletion(fn, b, vc, "ProtocolClIncomingCall")
	case completeParked:
		vc.mu.Unlock()
		return StatusSuccess
	}
	finishIncomingCallLocked(vc, status)
	owner := vc.cmOwner()
	vc.mu.Unlock()
	m.emit(EventUpcall, owner, "ProtocolCmIncomingCallComplete", vc, status)
	vc.cm().ProtocolCmIncomingCallComplete(status, vc.cmCtx, params)
	return StatusSuccess
}

// CmDispatchCallConnected models NdisCmDispatchCallConnected: an accepted
// incoming call is established end to end. The call must have been accepted
// (R-IN-6) and the VC must be active (R-ACT-1, spec §9.4).
func (b *Binding) CmDispatchCallConnected(vc *Vc) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.dispatchCallConnected(b, "NdisCmDispatchCallConnected", vc)
}

// MCmDispatchCallConnected models NdisMCmDispatchCallConnected.
func (a *Adapter) MCmDispatchCallConnected(vc *Vc) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.dispatchCallConnected(a, "NdisMCmDispatchCallConnected", vc)
}

func (m *Mediator) dispatchCallConnected(who driver, fn string, v *Vc) Status {
	m.emit(EventRequest, who, fn, v, 0)
	if rule, why := m.lockCmVc(who, v); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, v, "%s", why)
	}
	if v.call != callAccepted {
		call := v.call
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-IN-6", fn, who, v, "call is %v; only an accepted incoming call can be connected", call)
	}
	if !v.act.isActive() {
		act := v.act
		v.mu.Unlock()
		return m.reject(StatusVcNotActivated, "R-ACT-1", fn, who, v, "VC is %v; activate it before the call is connected", act)
	}
	v.setCallLocked(callConnected)
	c := v.client()
	v.mu.Unlock()
	m.emit(EventUpcall, c, "ProtocolClCallConnected", v, 0)
	c.client.ProtocolClCallConnected(v.clientCtx)
	m.emit(EventReturn, who, fn, v, StatusSuccess)
	return StatusSuccess
}

// CmDispatchIncomingCloseCall models NdisCmDispatchIncomingCloseCall: the
// remote side or the network closed the call. closeStatus SUCCESS means an
// orderly remote close (R-CLOSE-19). It applies to offered, accepted and
// connected calls (R-CLOSE-20); a call still being set up by MakeCall ends
// with a failed MakeCall completion instead — unless the call manager has
// completed the MakeCall with SUCCESS while ProtocolCmMakeCall was still
// running (R-GEN-10): then the close is held and indicated right after the
// client's ProtocolClMakeCallComplete, and SUCCESS is returned. If the client's own close is
// already in flight (a clear collision the call manager cannot see coming),
// nothing is indicated and NDIS_STATUS_CLOSING is returned; that is not a
// violation.
func (b *Binding) CmDispatchIncomingCloseCall(closeStatus Status, vc *Vc, closeData []byte) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.dispatchIncomingCloseCall(b, "NdisCmDispatchIncomingCloseCall", closeStatus, vc, closeData)
}

// MCmDispatchIncomingCloseCall models NdisMCmDispatchIncomingCloseCall.
func (a *Adapter) MCmDispatchIncomingCloseCall(closeStatus Status, vc *Vc, closeData []byte) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.dispatchIncomingCloseCall(a, "NdisMCmDispatchIncomingCloseCall", closeStatus, vc, closeData)
}

func (m *Mediator) dispatchIncomingCloseCall(who driver, fn string, closeStatus Status, v *Vc, data []byte) Status {
	m.emit(EventRequest, who, fn, v, closeStatus)
	if rule, why := m.lockCmVc(who, v); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, v, "%s", why)
	}
	if closeStatus == StatusPending {
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-CLOSE-19", fn, who, v, "NDIS_STATUS_PENDING is not a close status")
	}
	switch v.call {
	case callOffered, callAccepted, callConnected:
	case callClosing:
		// Clear collision: the client's NdisClCloseCall is already on its
		// way to the call manager, which could not have known when the
		// remote release arrived. Not a violation; the client hears nothing
		// more and its close completes (design.md §2, Q.2931 clear collision).
		v.mu.Unlock()
		m.emit(EventReturn, who, fn, v, StatusClosing)
		return StatusClosing
	case callOutSetup:
		if e := m.earlyOf(&v.makeCall); v.makeCall.state == opEarly && e != nil && e.st == StatusSuccess && !e.closeHeld {
			// The call manager completed the MakeCall with SUCCESS while
			// its ProtocolCmMakeCall was still running (R-GEN-10), and the
			// call has been closed since; it could not know the client has
			// not been told yet. The close is indicated right after the
			// client's ProtocolClMakeCallComplete.
			e.closeHeld, e.closeSt, e.closeData = true, closeStatus, append([]byte(nil), data...)
			v.mu.Unlock()
			m.emit(EventReturn, who, fn, v, StatusSuccess)
			return StatusSuccess
		}
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-CLOSE-20", fn, who, v, "the call is still being set up; fail the MakeCall with NdisCmMakeCallComplete instead")
	default:
		call := v.call
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-CLOSE-20", fn, who, v, "no offered or active call to close (%v)", call)
	}
	v.setCallLocked(callCloseIndicated)
	v.closeSeen, v.closeStatus = true, closeStatus
	v.indicating++
	v.mu.Unlock()
	m.indicateClose(v, closeStatus, data)
	m.emit(EventReturn, who, fn, v, StatusSuccess)
	return StatusSuccess
}

// deliverHeldClose indicates a close held back by dispatchIncomingCloseCall
// until the client had its MakeCallComplete, unless the client has closed
// the call since (the close then crossed its own, as in a clear collision).
func (m *Mediator) deliverHeldClose(v *Vc, st Status, data []byte) {
	v.mu.Lock()
	if v.call != callConnected || v.closingMark {
		v.mu.Unlock()
		return
	}
	v.setCallLocked(callCloseIndicated)
	v.closeSeen, v.closeStatus = true, st
	v.indicating++
	v.mu.Unlock()
	m.indicateClose(v, st, data)
}

// indicateClose runs the client's ProtocolClIncomingCloseCall for a close
// its caller marked on v (v.indicating raised, no lock held). While it
// runs, a send crossing the indication is refused without a violation
// (R-CLOSE-15).
func (m *Mediator) indicateClose(v *Vc, st Status, data []byte) {
	c := v.client()
	m.emit(EventUpcall, c, "ProtocolClIncomingCloseCall", v, st)
	c.client.ProtocolClIncomingCloseCall(st, v.clientCtx, data)
	v.mu.Lock()
	v.indicating--
	v.mu.Unlock()
}

// ClCloseCall models NdisClCloseCall: the client tears down the call on vc.
// The mediator marks the VC closing before the call manager's
// ProtocolCmCloseCall runs (R-CLOSE-3); no send is accepted afterwards
// (R-CLOSE-2). On a multipoint VC exactly one party may remain and its handle
// must be passed (R-CLOSE-4, R-CLOSE-5). Refused with StatusFailure while
// the MakeCall or an AddParty is still pending (design.md §2).
func (b *Binding) ClCloseCall(vc *Vc, party *Party, closeData []byte) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisClCloseCall"
	m.emit(EventRequest, b, fn, vc, 0)
	if rule, why := b.lockClientVc(vc); rule != "" {
		return m.reject(StatusFailure, rule, fn, b, vc, "%s", why)
	}
	var rst Status
	var rule, why string
	switch vc.call {
	case callAccepted, callConnected, callCloseIndicated:
	case callOutSetup:
		rst, rule, why = StatusFailure, "R-CALL-5", "MakeCall is still pending; the call ends with its completion"
	case callOffered:
		rst, rule, why = StatusFailure, "R-IN-3", "the incoming call has not been answered; reject it with NdisClIncomingCallComplete"
	case callClosing, callClosed:
		rst, rule, why = StatusFailure, "R-CLOSE-3", "the call is already "+vc.call.String()
	default:
		rst, rule, why = StatusFailure, "R-CLOSE-3", "no call on the VC"
	}
	if rule == "" {
		rst, rule, why = closePartyCheckLocked(vc, party)
	}
	if rule != "" {
		vc.mu.Unlock()
		return m.reject(rst, rule, fn, b, vc, "%s", why)
	}
	if sends, _ := vc.outstanding(); sends > 0 {
		m.warn("R-CLOSE-1", fn, b, vc, "%d send(s) not yet completed when closing", sends)
	}
	vc.closingMark = true
	vc.prevCall = vc.call
	vc.setCallLocked(callClosing)
	var cmPartyCtx, clPartyCtx any
	if party != nil {
		party.prev, party.state = party.state, partyClosing
		cmPartyCtx, clPartyCtx = party.cmCtx, party.clientCtx
	}
	vc.closeCall.state = opUpcall
	cm, owner, cmCtx := vc.cm(), vc.cmOwner(), vc.cmCtx
	vc.mu.Unlock()

	m.emit(EventUpcall, owner, "ProtocolCmCloseCall", vc, 0)
	st := cm.ProtocolCmCloseCall(cmCtx, cmPartyCtx, closeData)
	m.emit(EventHandled, owner, "ProtocolCmCloseCall", vc, st)

	vc.mu.Lock()
	// A deletion deferred until the close settles keeps its record past
	// settle (which recycles the others): read before, under the same lock.
	var deferred *earlyCompletion
	if early := m.earlyOf(&vc.closeCall); early != nil && early.deleteBy != nil {
		deferred = early // no longer parked after settle: only this goroutine sees it then
	}
	final, _, _, finish, deliver := vc.closeCall.settle(m, st, nil, nil, "ProtocolCmCloseCall", owner, vc)
	if !finish {
		vc.mu.Unlock()
		m.emit(EventReturn, b, fn, vc, StatusPending)
		return StatusPending
	}
	m.finishCloseCallLocked(vc, final, owner)
	vc.mu.Unlock()
	ret := final
	if deliver {
		m.emit(EventUpcall, b, "ProtocolClCloseCallComplete", vc, final)
		b.client.ProtocolClCloseCallComplete(final, vc.clientCtx, clPartyCtx)
		ret = StatusPending
	}
	if deferred != nil {
		m.finishDeferredDelete(deferred, vc, final)
		m.freeEarly(deferred)
	}
	m.emit(EventReturn, b, fn, vc, ret)
	return ret
}

// closePartyCheckLocked checks the party handle of a close (R-CLOSE-4,
// R-CLOSE-5): on a multipoint VC exactly one party may remain and its
// handle must be passed. Caller holds vc.mu.
func closePartyCheckLocked(vc *Vc, party *Party) (Status, string, string) {
	if !vc.multipoint {
		if party != nil {
			return StatusFailure, "R-CLOSE-5", "party handle given for a point-to-point call"
		}
		return 0, "", ""
	}
	if party == nil || party.vc != vc {
		return StatusFailure, "R-CLOSE-5", "a multipoint call is closed with the handle of its last party"
	}
	live := 0
	for _, p := range vc.partyList() {
		if p.state == partyAdding {
			return StatusFailure, "R-CLOSE-4", "AddParty on " + p.String() + " is still pending"
		}
		if p.state != partyDead {
			live++
		}
	}
	if live != 1 || (party.state != partyConnected && party.state != partyDropIndicated) {
		return StatusFailure, "R-CLOSE-4", strconv.Itoa(live) + " parties remain; drop all but one before closing"
	}
	return 0, "", ""
}

// finishCloseCallLocked applies a close outcome. A successful close means
// the VC is deactivated too (R-CLOSE-8); if it is not, that is logged
// (spec §9.2), and deletion and reuse stay blocked until it is.
func (m *Mediator) finishCloseCallLocked(v *Vc, st Status, owner driver) {
	if st == StatusSuccess {
		if v.act != actInactive {
			m.warn("R-CLOSE-8", "CloseCall completion", owner, v, "close completed while the VC is %v; deactivate before completing", v.act)
			v.leftActive = true
		}
		v.setCallLocked(callClosed)
		if ps := v.partyList(); len(ps) > 0 {
			for _, p := range ps {
				p.state = partyDead
			}
			v.shard().parties.Add(-int64(len(ps)))
			v.more.parties = ps[:0]
		}
		return
	}
	v.setCallLocked(v.prevCall)
	v.closingMark = false
	for _, p := range v.partyList() {
		if p.state == partyClosing {
			p.state = p.prev
		}
	}
}

// CmCloseCallComplete models NdisCmCloseCallComplete.
func (b *Binding) CmCloseCallComplete(status Status, vc *Vc, party *Party) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.closeCallComplete(b, "NdisCmCloseCallComplete", status, vc, party)
}

// MCmCloseCallComplete models NdisMCmCloseCallComplete.
func (a *Adapter) MCmCloseCallComplete(status Status, vc *Vc, party *Party) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.closeCallComplete(a, "NdisMCmCloseCallComplete", status, vc, party)
}

func (m *Mediator) closeCallComplete(who driver, fn string, st Status, v *Vc, party *Party) Status {
	if ret, ok := m.startCompletion(who, fn, v, st); !ok {
		return ret
	}
	if rule, why := m.lockCmVc(who, v); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, v, "%s", why)
	}
	var clPartyCtx any
	for _, p := range v.partyList() {
		if p.state == partyClosing {
			clPartyCtx = p.clientCtx
			if party != p {
				v.mu.Unlock()
				return m.reject(StatusFailure, "R-CLOSE-5", fn, who, v, "party handle does not match the party being closed")
			}
		}
	}
	switch m.takeCompletionLocked(&v.closeCall, st, nil, nil) {
	case completeNone:
		v.mu.Unlock()
		return m.refuseDoubleCompletion(fn, who, v, "ProtocolCmCloseCall")
	case completeParked:
		v.mu.Unlock()
		return StatusSuccess
	}
	m.finishCloseCallLocked(v, st, who)
	c := v.client()
	v.mu.Unlock()
	m.emit(EventUpcall, c, "ProtocolClCloseCallComplete", v, st)
	c.client.ProtocolClCloseCallComplete(st, v.clientCtx, clPartyCtx)
	return StatusSuccess
}
