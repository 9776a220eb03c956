package cm

// The CM's NDIS handlers: the ProtocolCm* ones are the call control's
// (callctl.Core); the ProtocolCo* ones carry signalling and link events.

import (
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
)

var _ ndis.CallManager = (*CM)(nil)

// ProtocolCmNotifyCloseAfComplete models ProtocolCmNotifyCloseAfComplete;
// the client's close of the AF follows.
func (c *CM) ProtocolCmNotifyCloseAfComplete(afCtx any, st ndis.Status) {
	c.core.ProtocolCmNotifyCloseAfComplete(afCtx, st)
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

// ProtocolCoDeleteVc models ProtocolCoDeleteVc.
func (c *CM) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	if _, ok := vcCtx.(*callctl.Vc); !ok {
		return ndis.StatusSuccess // a signalling VC: the CM deletes its own
	}
	return c.core.ProtocolCoDeleteVc(vcCtx)
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
