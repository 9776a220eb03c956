package node

import (
	"time"

	"github.com/condis-project/condis/ndis"
)

// The Control's handlers: what the mediator calls. Each records what
// happened under the Control's lock and queues the follow-up for the
// worker; none blocks, and none calls the mediator with the lock held.

// --- handlers: ndis.Protocol ---

// ProtocolCoAfRegisterNotify opens the call manager's address family.
func (c *Control) ProtocolCoAfRegisterNotify(bindingCtx any, af ndis.AddressFamily) {
	if af.AddressFamily == c.cm.AddressFamily().AddressFamily {
		c.post(c.openAf)
	}
}

// ProtocolCoCreateVc takes a VC the call manager created for an incoming call.
func (c *Control) ProtocolCoCreateVc(afCtx any, vc *ndis.Vc) (any, ndis.Status) {
	v := &vcState{h: vc, name: vc.String(), incoming: true, phase: vcOffered}
	c.mu.Lock()
	c.vcs[v] = struct{}{}
	c.mu.Unlock()
	return v, ndis.StatusSuccess
}

// ProtocolCoDeleteVc forgets a VC the call manager deleted.
func (c *Control) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	v, ok := vcCtx.(*vcState)
	if !ok {
		return ndis.StatusSuccess
	}
	c.mu.Lock()
	c.vcGoneLocked(v)
	c.mu.Unlock()
	c.poke()
	return ndis.StatusSuccess
}

// ProtocolCoOidRequest accepts the call manager's notifications; OID_CO_AF_CLOSE
// withdraws the AF like a notify-close.
func (c *Control) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	switch req.Oid {
	case ndis.OidCoAddressChange, ndis.OidCoSignalingEnabled, ndis.OidCoSignalingDisabled:
		return ndis.StatusSuccess
	case ndis.OidCoAfClose:
		c.markWithdrawn()
		c.post(c.withdraw)
		return ndis.StatusSuccess
	}
	return ndis.StatusNotSupported
}

// ProtocolCoOidRequestComplete: the Control makes no OID requests.
func (c *Control) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
}

// ProtocolCoReceiveNetBufferLists copies the SDUs, returns the lists, and
// queues the SDUs for the session, or echoes them.
func (c *Control) ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *ndis.NetBufferList, count int, flags ndis.ReceiveFlags) {
	v, _ := vcCtx.(*vcState)
	var sdus [][]byte
	for n := nbls; n != nil; n = n.Next {
		sdus = append(sdus, append([]byte(nil), n.Data...))
	}
	if flags&ndis.ReceiveFlagsResources == 0 {
		c.b.ReturnNetBufferLists(nbls, 0)
	}
	if v == nil {
		return
	}
	c.mu.Lock()
	s := v.s
	v.quietAt = time.Now()
	echo := s != nil && s.echo && v.phase == vcConnected && !v.wantClose
	if echo {
		v.sendsOut += len(sdus)
	}
	if s != nil && s.echo && v.phase == vcAccepted && !v.wantClose {
		// The caller may send once it has our CONNECT; we may send only
		// once CallConnected says the call is up. Hold the SDUs until
		// then, a bounded few.
		for _, d := range sdus {
			if len(v.held) < maxHeldSDUs {
				v.held = append(v.held, d)
			}
		}
	}
	c.mu.Unlock()
	if s == nil {
		return
	}
	if echo {
		c.echo(v, sdus)
		return
	}
	if s.kind == sessionListen && s.echo {
		return // held until connected, or closing: dropped
	}
	for _, d := range sdus {
		s.out.pushData(d)
	}
}

// ProtocolCoSendNetBufferListsComplete counts the sends back; a close
// waiting for them (R-CLOSE-1) goes ahead.
func (c *Control) ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendCompleteFlags) {
	var resume []*vcState
	c.mu.Lock()
	now := time.Now()
	for n := nbls; n != nil; n = n.Next {
		v, ok := n.Context.(*vcState)
		if !ok {
			continue
		}
		v.sendsOut--
		v.quietAt = now
		v.sent++
		if n.Status == ndis.StatusResources {
			v.policed++ // the call manager's policing: the SDU did not conform to the flowspec
		}
		if v.sendsOut == 0 && (v.wantClose || v.inputEnded) && (len(resume) == 0 || resume[len(resume)-1] != v) {
			resume = append(resume, v)
		}
	}
	for _, v := range resume {
		if v.inputEnded && !v.wantClose {
			c.armLingerLocked(v, now)
		}
	}
	c.mu.Unlock()
	for _, v := range resume {
		c.post(func() { c.progress(v) })
	}
}

// ProtocolCoStatusEx: status indications are not used.
func (c *Control) ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *ndis.StatusIndication) {}

// --- handlers: ndis.ClientHandlers ---

// ProtocolClOpenAfCompleteEx records a pended AF open.
func (c *Control) ProtocolClOpenAfCompleteEx(afCtx any, af *ndis.Af, st ndis.Status) {
	c.openAfDone(af, st)
}

// ProtocolClCloseAfComplete records a pended AF close.
func (c *Control) ProtocolClCloseAfComplete(st ndis.Status, afCtx any) { c.closeAfDone(st) }

// ProtocolClNotifyCloseAf acknowledges at once and tears down on the worker:
// close every call, deregister every SAP, then close the AF (R-AF-19,
// R-AF-22).
func (c *Control) ProtocolClNotifyCloseAf(afCtx any) ndis.Status {
	c.markWithdrawn()
	c.post(c.withdraw)
	return ndis.StatusSuccess
}

// markWithdrawn stops new calls and SAPs on the AF at once, before the
// worker gets to the teardown: the mediator refuses them from now on
// (R-AF-19).
func (c *Control) markWithdrawn() {
	c.mu.Lock()
	if c.af.phase == afOpen {
		c.af.phase = afWithdrawn
	}
	c.withdrew = true
	c.notifyLocked()
	c.mu.Unlock()
}

// ProtocolClRegisterSapComplete records a pended SAP registration.
func (c *Control) ProtocolClRegisterSapComplete(st ndis.Status, sapCtx any, coSap *ndis.CoSap, sap *ndis.Sap) {
	if s, ok := sapCtx.(*session); ok {
		c.registerSapDone(s, sap, st)
	}
}

// ProtocolClDeregisterSapComplete records a SAP deregistration.
func (c *Control) ProtocolClDeregisterSapComplete(st ndis.Status, sapCtx any) {
	if s, ok := sapCtx.(*session); ok {
		c.deregisterSapDone(s, st)
	}
	c.poke()
}

// ProtocolClMakeCallComplete records a pended MakeCall.
func (c *Control) ProtocolClMakeCallComplete(st ndis.Status, vcCtx any, party *ndis.Party, params *ndis.CallParameters) {
	if v, ok := vcCtx.(*vcState); ok {
		c.makeCallDone(v, st, params, party)
	}
}

// ProtocolClModifyCallQoSComplete answers the modify request that asked
// for the change (vcops.go).
func (c *Control) ProtocolClModifyCallQoSComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	if v, ok := vcCtx.(*vcState); ok {
		c.modifyDone(v, st, params)
	}
}

// ProtocolClCloseCallComplete records a pended close.
func (c *Control) ProtocolClCloseCallComplete(st ndis.Status, vcCtx, partyCtx any) {
	if v, ok := vcCtx.(*vcState); ok {
		c.closeCallDone(v, st)
	}
}

// ProtocolClAddPartyComplete records a pended NdisClAddParty (vcops.go).
func (c *Control) ProtocolClAddPartyComplete(st ndis.Status, partyCtx any, party *ndis.Party, params *ndis.CallParameters) {
	if p, ok := partyCtx.(*vcParty); ok {
		c.addPartyDone(p, st, party)
	}
}

// ProtocolClDropPartyComplete records a pended NdisClDropParty (vcops.go).
func (c *Control) ProtocolClDropPartyComplete(st ndis.Status, partyCtx any) {
	if p, ok := partyCtx.(*vcParty); ok {
		c.dropPartyDone(p, st)
	}
}

// ProtocolClIncomingCall accepts a call on a listen session's SAP, unless
// the session or the node is ending.
func (c *Control) ProtocolClIncomingCall(sapCtx, vcCtx any, params *ndis.CallParameters) ndis.Status {
	s, _ := sapCtx.(*session)
	v, _ := vcCtx.(*vcState)
	if s == nil || v == nil {
		return ndis.StatusFailure
	}
	peer := c.cm.Caller(params)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down || s.ending || s.finished || v.phase != vcOffered {
		v.phase = vcClosed // rejected: the call manager deletes the VC
		return ndis.StatusFailure
	}
	v.s, v.peer, v.service = s, peer, s.service
	v.flows = flowsOf(params) // R-IN-10: the buffer is the call manager's
	v.maxSDU = v.flows.maxSDU()
	v.phase = vcAccepted
	s.calls[v] = struct{}{}
	return ndis.StatusSuccess
}

// ProtocolClCallConnected: an accepted call is up.
func (c *Control) ProtocolClCallConnected(vcCtx any) {
	v, ok := vcCtx.(*vcState)
	if !ok {
		return
	}
	c.mu.Lock()
	if v.phase != vcAccepted {
		c.mu.Unlock()
		return
	}
	v.phase = vcConnected
	v.wasUp = true
	if s := v.s; s != nil {
		s.out.pushEvent(Event{Event: EventCall, Vc: v.name, Peer: v.peer})
	}
	held := v.held
	v.held = nil
	v.sendsOut += len(held)
	c.notifyLocked()
	c.mu.Unlock()
	if len(held) > 0 {
		c.echo(v, held) // what arrived before the call was up
	}
}

// maxHeldSDUs bounds the SDUs an echo listener holds for a call that is
// accepted but not yet connected.
const maxHeldSDUs = 64

// echo sends sdus back on v; the caller has counted them in v.sendsOut.
func (c *Control) echo(v *vcState, sdus [][]byte) {
	var head, tail *ndis.NetBufferList
	for _, d := range sdus {
		n := &ndis.NetBufferList{Data: d, Context: v}
		if tail == nil {
			head = n
		} else {
			tail.Next = n
		}
		tail = n
	}
	c.b.CoSendNetBufferLists(v.h, head, 0)
	c.poke()
}

// ProtocolClIncomingCloseCall records the status and its cause; the worker
// answers with NdisClCloseCall once every send has completed (R-CLOSE-14,
// R-CLOSE-1).
func (c *Control) ProtocolClIncomingCloseCall(closeStatus ndis.Status, vcCtx any, closeData []byte) {
	v, ok := vcCtx.(*vcState)
	if !ok {
		return
	}
	cause := c.cm.Cause(v.h, closeStatus)
	c.mu.Lock()
	if v.why != whyShutdown && v.why != whyWithdraw {
		v.why = whyRemote // what happened, even if a local close was about to be issued
	}
	v.closeSt, v.cause = closeStatus, cause
	v.wantClose = true
	c.stopTimerLocked(v)
	c.mu.Unlock()
	c.post(func() { c.progress(v) })
}

// ProtocolClIncomingDropParty: a leaf of one of the Control's multipoint
// calls left; the worker answers with NdisClDropParty (R-PTY-14).
func (c *Control) ProtocolClIncomingDropParty(dropStatus ndis.Status, partyCtx any, closeData []byte) {
	if p, ok := partyCtx.(*vcParty); ok {
		c.partyLeft(p, dropStatus)
	}
}

// ProtocolClIncomingCallQoSChange takes the new parameters.
func (c *Control) ProtocolClIncomingCallQoSChange(vcCtx any, params *ndis.CallParameters) {
	v, ok := vcCtx.(*vcState)
	if !ok {
		return
	}
	c.mu.Lock()
	v.flows = flowsOf(params)
	if !v.incoming {
		v.maxSDU = v.flows.maxSDU()
	}
	c.qosChangedLocked(v)
	c.mu.Unlock()
}

var _ ndis.Client = (*Control)(nil)
