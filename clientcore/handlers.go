package clientcore

import (
	"time"

	"github.com/condis-project/condis/ndis"
)

// The Core's handlers: what the mediator calls. Each records what happened
// under the Core's lock and queues the follow-up for the worker; none
// blocks, and none calls the mediator with the lock held.

// --- handlers: ndis.Protocol ---

// ProtocolCoAfRegisterNotify opens the call manager's address family.
func (c *Core) ProtocolCoAfRegisterNotify(bindingCtx any, af ndis.AddressFamily) {
	if af.AddressFamily == c.cm.AddressFamily().AddressFamily {
		c.post(c.openAf)
	}
}

// ProtocolCoCreateVc takes a VC the call manager created for an incoming call.
func (c *Core) ProtocolCoCreateVc(afCtx any, vc *ndis.Vc) (any, ndis.Status) {
	v := &VC{c: c, h: vc, kind: vcIncoming, phase: PhaseOffered, handler: NopHandler{}, cut: -1, seq: vcSeq.Add(1)}
	v.setName(vc)
	c.mu.Lock()
	c.addVCLocked(v)
	c.mu.Unlock()
	return v, ndis.StatusSuccess
}

// ProtocolCoDeleteVc forgets a VC the call manager deleted.
func (c *Core) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	v, ok := vcCtx.(*VC)
	if !ok {
		return ndis.StatusSuccess
	}
	c.mu.Lock()
	c.vcGoneLocked(v)
	c.mu.Unlock()
	c.poke()
	return ndis.StatusSuccess
}

// ProtocolCoOidRequest accepts the call manager's notifications;
// OID_CO_AF_CLOSE withdraws the AF like a notify-close.
func (c *Core) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
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

// ProtocolCoOidRequestComplete: the Core makes no OID requests.
func (c *Core) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
}

// ProtocolCoReceiveNetBufferLists copies the SDUs, returns the lists
// (R-DATA-6), and hands the copies to the VC's handler. A
// [BorrowingHandler] is given the lists' data itself, and the lists are
// returned once it is done with them.
func (c *Core) ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *ndis.NetBufferList, count int, flags ndis.ReceiveFlags) {
	v, _ := vcCtx.(*VC)
	var h Handler
	if v != nil {
		c.mu.Lock()
		v.quietLocked(time.Now)
		h = v.handler
		c.mu.Unlock()
	}
	_, borrow := h.(BorrowingHandler)
	var one [1][]byte
	sdus := one[:0]
	for n := nbls; n != nil && h != nil; n = n.Next {
		if borrow {
			sdus = append(sdus, n.Data)
		} else {
			sdus = append(sdus, append([]byte(nil), n.Data...))
		}
	}
	if !borrow && flags&ndis.ReceiveFlagsResources == 0 {
		c.b.ReturnNetBufferLists(nbls, 0)
	}
	if h != nil {
		h.Received(v, sdus)
	}
	if borrow && flags&ndis.ReceiveFlagsResources == 0 {
		c.b.ReturnNetBufferLists(nbls, 0)
	}
}

// ProtocolCoSendNetBufferListsComplete counts the sends back; a close
// waiting for them (R-CLOSE-1) goes ahead.
func (c *Core) ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendCompleteFlags) {
	type done struct {
		v *VC
		n int
	}
	var one [1]done
	vcs := one[:0]
	var resume []*VC
	c.mu.Lock()
	var now time.Time // read once, only if a VC's input ended
	clock := func() time.Time {
		if now.IsZero() {
			now = time.Now()
		}
		return now
	}
	for n := nbls; n != nil; n = n.Next {
		v, ok := n.Context.(*VC)
		if !ok {
			continue
		}
		v.sendsOut--
		v.quietLocked(clock)
		v.sent++
		if n.Status == ndis.StatusResources {
			v.moreLocked().policed++ // the call manager's policing: the SDU did not conform to the flowspec
		}
		if len(vcs) > 0 && vcs[len(vcs)-1].v == v {
			vcs[len(vcs)-1].n++
		} else {
			vcs = append(vcs, done{v, 1})
		}
		if v.sendsOut == 0 && (v.wantClose || v.inputEnded) && (len(resume) == 0 || resume[len(resume)-1] != v) {
			resume = append(resume, v)
		}
	}
	for _, v := range resume {
		if v.inputEnded && !v.wantClose {
			c.armLingerLocked(v, clock())
		}
	}
	c.mu.Unlock()
	for _, v := range resume {
		c.postProgress(v)
	}
	for _, d := range vcs {
		d.v.handler.SendsCompleted(d.v, d.n)
	}
}

// ProtocolCoStatusEx: status indications are not used.
func (c *Core) ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *ndis.StatusIndication) {}

// --- handlers: ndis.ClientHandlers ---

// ProtocolClOpenAfCompleteEx records a pended AF open.
func (c *Core) ProtocolClOpenAfCompleteEx(afCtx any, af *ndis.Af, st ndis.Status) {
	c.openAfDone(af, st)
}

// ProtocolClCloseAfComplete records a pended AF close.
func (c *Core) ProtocolClCloseAfComplete(st ndis.Status, afCtx any) { c.closeAfDone(st) }

// ProtocolClNotifyCloseAf acknowledges at once and tears down on the
// worker: close every call, deregister every SAP, then close the AF
// (R-AF-19, R-AF-22).
func (c *Core) ProtocolClNotifyCloseAf(afCtx any) ndis.Status {
	c.markWithdrawn()
	c.post(c.withdraw)
	return ndis.StatusSuccess
}

// ProtocolClRegisterSapComplete records a pended SAP registration.
func (c *Core) ProtocolClRegisterSapComplete(st ndis.Status, sapCtx any, coSap *ndis.CoSap, sap *ndis.Sap) {
	if s, ok := sapCtx.(*SAP); ok {
		c.registerSapDone(s, sap, st)
	}
}

// ProtocolClDeregisterSapComplete records a SAP deregistration.
func (c *Core) ProtocolClDeregisterSapComplete(st ndis.Status, sapCtx any) {
	if s, ok := sapCtx.(*SAP); ok {
		c.deregisterSapDone(s, st)
	}
	c.poke()
}

// ProtocolClMakeCallComplete records a pended MakeCall.
func (c *Core) ProtocolClMakeCallComplete(st ndis.Status, vcCtx any, party *ndis.Party, params *ndis.CallParameters) {
	if v, ok := vcCtx.(*VC); ok {
		c.makeCallDone(v, st, params, party)
	}
}

// ProtocolClModifyCallQoSComplete answers the ModifyQoS that asked for the
// change.
func (c *Core) ProtocolClModifyCallQoSComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	if v, ok := vcCtx.(*VC); ok {
		c.modifyDone(v, st, params)
	}
}

// ProtocolClCloseCallComplete records a pended close.
func (c *Core) ProtocolClCloseCallComplete(st ndis.Status, vcCtx, partyCtx any) {
	if v, ok := vcCtx.(*VC); ok {
		c.closeCallDone(v, st)
	}
}

// ProtocolClAddPartyComplete records a pended NdisClAddParty.
func (c *Core) ProtocolClAddPartyComplete(st ndis.Status, partyCtx any, party *ndis.Party, params *ndis.CallParameters) {
	if p, ok := partyCtx.(*Party); ok {
		c.addPartyDone(p, st, party)
	}
}

// ProtocolClDropPartyComplete records a pended NdisClDropParty.
func (c *Core) ProtocolClDropPartyComplete(st ndis.Status, partyCtx any) {
	if p, ok := partyCtx.(*Party); ok {
		c.dropPartyDone(p, st)
	}
}

// ProtocolClIncomingCall offers a call to its SAP's handler, unless the
// SAP or the Core is ending; the handler's answer accepts or refuses it.
func (c *Core) ProtocolClIncomingCall(sapCtx, vcCtx any, params *ndis.CallParameters) ndis.Status {
	s, _ := sapCtx.(*SAP)
	v, _ := vcCtx.(*VC)
	if s == nil || v == nil {
		return ndis.StatusFailure
	}
	peer := c.cm.Caller(params)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down || s.ending || v.phase != PhaseOffered {
		v.phase = PhaseClosed // rejected: the call manager deletes the VC
		return ndis.StatusFailure
	}
	v.addr, v.cut = c.peerAddrLocked(peer, s.service), int32(len(peer))
	flows := c.flowsLocked(params) // R-IN-10: the buffer is the call manager's
	o := &c.offer                  // the Core's own: no allocation per call
	*o = Offer{VC: v, Peer: peer, Service: s.service, Flows: flows, Params: params}
	h := s.handler.Offered(s, o)
	*o = Offer{}
	if h == nil {
		v.phase = PhaseClosed
		return ndis.StatusFailure
	}
	v.handler, v.sap = h, s
	v.flows = flows
	v.maxSDU = int32(flows.MaxSDU())
	v.phase = PhaseAccepted
	s.calls++
	return ndis.StatusSuccess
}

// ProtocolClCallConnected: an accepted call is up.
func (c *Core) ProtocolClCallConnected(vcCtx any) {
	v, ok := vcCtx.(*VC)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.phase != PhaseAccepted {
		return
	}
	v.phase = PhaseConnected
	v.wasUp = true
	v.handler.Connected(v, v.flows)
	c.notifyLocked()
	if v.wantClose {
		c.postProgress(v)
	}
}

// ProtocolClIncomingCloseCall records the status and its cause; the worker
// answers with NdisClCloseCall once every send has completed (R-CLOSE-14,
// R-CLOSE-1).
func (c *Core) ProtocolClIncomingCloseCall(closeStatus ndis.Status, vcCtx any, closeData []byte) {
	v, ok := vcCtx.(*VC)
	if !ok {
		return
	}
	cause := c.cm.Cause(v.h, closeStatus)
	c.mu.Lock()
	if v.reason != ReasonShutdown && v.reason != ReasonWithdrawn {
		v.reason = ReasonRemote // what happened, even if a local close was about to be issued
	}
	v.closeSt, v.cause = closeStatus, cause
	v.wantClose, v.closeIndicated = true, true
	c.stopTimerLocked(v)
	c.mu.Unlock()
	c.postProgress(v)
}

// ProtocolClIncomingDropParty: a leaf of one of the Core's multipoint
// calls left; the worker answers with NdisClDropParty (R-PTY-14).
func (c *Core) ProtocolClIncomingDropParty(dropStatus ndis.Status, partyCtx any, closeData []byte) {
	if p, ok := partyCtx.(*Party); ok {
		c.partyLeft(p, dropStatus)
	}
}

// ProtocolClIncomingCallQoSChange takes the new parameters.
func (c *Core) ProtocolClIncomingCallQoSChange(vcCtx any, params *ndis.CallParameters) {
	v, ok := vcCtx.(*VC)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v.flows = c.flowsLocked(params)
	if !v.Incoming() {
		v.maxSDU = int32(v.flows.MaxSDU())
	}
	if v.flows != nil {
		v.handler.QoSChanged(v, *v.flows)
	}
}

var _ ndis.Client = (*Core)(nil)
