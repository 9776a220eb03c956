package cm

// The CM's NDIS handlers: the ProtocolCm* ones are the call control's
// (callctl.Core); the ProtocolCo* ones carry signalling and link events.

import (
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
)

var _ ndis.CallManager = (*CM)(nil)

// ProtocolCmOpenAf models ProtocolCmOpenAf: a client opens the Q.2931 AF.
func (c *CM) ProtocolCmOpenAf(bindingCtx any, family ndis.AddressFamily, h *ndis.Af) (any, ndis.Status) {
	return c.core.ProtocolCmOpenAf(bindingCtx, family, h)
}

// ProtocolCmCloseAf models ProtocolCmCloseAf (callctl.Core).
func (c *CM) ProtocolCmCloseAf(afCtx any) ndis.Status { return c.core.ProtocolCmCloseAf(afCtx) }

// ProtocolCmNotifyCloseAfComplete models ProtocolCmNotifyCloseAfComplete;
// the client's close of the AF follows.
func (c *CM) ProtocolCmNotifyCloseAfComplete(afCtx any, st ndis.Status) {
	c.core.ProtocolCmNotifyCloseAfComplete(afCtx, st)
}

// ProtocolCmRegisterSap models ProtocolCmRegisterSap (callctl.Core).
func (c *CM) ProtocolCmRegisterSap(afCtx any, coSap *ndis.CoSap, h *ndis.Sap) (any, ndis.Status) {
	return c.core.ProtocolCmRegisterSap(afCtx, coSap, h)
}

// ProtocolCmDeregisterSap models ProtocolCmDeregisterSap (callctl.Core).
func (c *CM) ProtocolCmDeregisterSap(sapCtx any) ndis.Status {
	return c.core.ProtocolCmDeregisterSap(sapCtx)
}

// ProtocolCmMakeCall models ProtocolCmMakeCall: SETUP to the destination,
// after activating the signalling VC to it if there is no link.
func (c *CM) ProtocolCmMakeCall(vcCtx any, params *ndis.CallParameters, ph *ndis.Party) (any, ndis.Status) {
	return c.core.ProtocolCmMakeCall(vcCtx, params, ph)
}

// ProtocolCmIncomingCallComplete models ProtocolCmIncomingCallComplete.
func (c *CM) ProtocolCmIncomingCallComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	c.core.ProtocolCmIncomingCallComplete(st, vcCtx, params)
}

// ProtocolCmCloseCall models ProtocolCmCloseCall: RELEASE; PENDING, and
// NdisCmCloseCallComplete once the VC's (pendable) deactivation completed.
func (c *CM) ProtocolCmCloseCall(vcCtx, partyCtx any, data []byte) ndis.Status {
	return c.core.ProtocolCmCloseCall(vcCtx, partyCtx, data)
}

// ProtocolCmAddParty models ProtocolCmAddParty (callctl.Core): ADD PARTY
// on the call's leg to the party's node, or a new leg; a new leg, once
// connected, re-activates the root's VC with it (vc.SetDests).
func (c *CM) ProtocolCmAddParty(vcCtx any, params *ndis.CallParameters, ph *ndis.Party) (any, ndis.Status) {
	return c.core.ProtocolCmAddParty(vcCtx, params, ph)
}

// ProtocolCmDropParty models ProtocolCmDropParty (callctl.Core).
func (c *CM) ProtocolCmDropParty(partyCtx any, data []byte) ndis.Status {
	return c.core.ProtocolCmDropParty(partyCtx, data)
}

// ProtocolCmModifyCallQoS models ProtocolCmModifyCallQoS (callctl.Core).
func (c *CM) ProtocolCmModifyCallQoS(vcCtx any, params *ndis.CallParameters) ndis.Status {
	return c.core.ProtocolCmModifyCallQoS(vcCtx, params)
}

// ProtocolCmActivateVcComplete is the miniport's completion of a pended
// NdisCmActivateVc: a signalling VC's, or a call's (the call control goes
// on).
func (c *CM) ProtocolCmActivateVcComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	c.activationCompleted(vcCtx, st)
}

// ProtocolCmDeactivateVcComplete is the miniport's completion of a pended
// NdisCmDeactivateVc (a call's close then completes).
func (c *CM) ProtocolCmDeactivateVcComplete(st ndis.Status, vcCtx any) {
	c.activationCompleted(vcCtx, st)
}

func (c *CM) activationCompleted(vcCtx any, st ndis.Status) {
	switch x := vcCtx.(type) {
	case *sigVC:
		x.act.Completed(st)
	case *callctl.Vc:
		c.core.ActivationCompleted(x, st)
	}
}

// ProtocolCoCreateVc models ProtocolCoCreateVc: a client created a VC for
// an outgoing call.
func (c *CM) ProtocolCoCreateVc(afCtx any, h *ndis.Vc) (any, ndis.Status) {
	return c.core.ProtocolCoCreateVc(afCtx, h)
}

// ProtocolCoDeleteVc models ProtocolCoDeleteVc.
func (c *CM) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	if _, ok := vcCtx.(*callctl.Vc); !ok {
		return ndis.StatusSuccess // a signalling VC: the CM deletes its own
	}
	return c.core.ProtocolCoDeleteVc(vcCtx)
}

// ProtocolCoOidRequest models ProtocolCoOidRequest (callctl.Core).
func (c *CM) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	return c.core.ProtocolCoOidRequest(afCtx, vcCtx, partyCtx, req)
}

// ProtocolCoOidRequestComplete: the CM's own requests complete at once.
func (c *CM) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
}

// ProtocolCoAfRegisterNotify does nothing: a call manager opens no AF
// (R-REG-8).
func (c *CM) ProtocolCoAfRegisterNotify(bindingCtx any, af ndis.AddressFamily) {}

// ProtocolCoReceiveNetBufferLists takes signalling indicated on a
// signalling VC; the lists go back at once.
func (c *CM) ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *ndis.NetBufferList, count int, flags ndis.ReceiveFlags) {
	if s, ok := vcCtx.(*sigVC); ok {
		c.receiveSignalling(s, nbls)
	}
	if flags&ndis.ReceiveFlagsResources == 0 {
		c.b.ReturnNetBufferLists(nbls, 0)
	}
}

// ProtocolCoSendNetBufferListsComplete: a signalling message left; one
// that failed is followed by the link's down event.
func (c *CM) ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendCompleteFlags) {
	for n := nbls; n != nil; n = n.Next {
		if n.Status != ndis.StatusSuccess {
			c.log.Debug("signalling not sent", "status", n.Status.String())
		}
	}
}

// ProtocolCoStatusEx takes the miniport's link events.
func (c *CM) ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *ndis.StatusIndication) {
	e, err := miniport.ParseLinkEvent(ind)
	if err != nil {
		return // not a link event: nothing the CM acts on
	}
	c.linkEvent(e)
}
