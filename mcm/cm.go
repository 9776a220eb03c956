package mcm

// The NDIS side: the ProtocolCm* / ProtocolCo* handlers the mediator calls
// on the MCM, each the call control's (callctl.Core), and what the call
// control needs of the MCM (callctl.Owner).

import (
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

var _ ndis.MiniportCallManager = (*MCM)(nil)

// ProtocolCmOpenAf models ProtocolCmOpenAf: a client opens the Q.2931 AF.
func (d *MCM) ProtocolCmOpenAf(bindingCtx any, family ndis.AddressFamily, h *ndis.Af) (any, ndis.Status) {
	return d.core.ProtocolCmOpenAf(bindingCtx, family, h)
}

// ProtocolCmCloseAf models ProtocolCmCloseAf. It pends until every VC the
// MCM created on the open is deleted (R-AF-15).
func (d *MCM) ProtocolCmCloseAf(afCtx any) ndis.Status { return d.core.ProtocolCmCloseAf(afCtx) }

// ProtocolCmNotifyCloseAfComplete models ProtocolCmNotifyCloseAfComplete;
// the client's close of the AF follows, nothing else is needed.
func (d *MCM) ProtocolCmNotifyCloseAfComplete(afCtx any, st ndis.Status) {}

// ProtocolCmRegisterSap models ProtocolCmRegisterSap (callctl.Core).
func (d *MCM) ProtocolCmRegisterSap(afCtx any, coSap *ndis.CoSap, h *ndis.Sap) (any, ndis.Status) {
	return d.core.ProtocolCmRegisterSap(afCtx, coSap, h)
}

// ProtocolCmDeregisterSap models ProtocolCmDeregisterSap.
func (d *MCM) ProtocolCmDeregisterSap(sapCtx any) ndis.Status {
	return d.core.ProtocolCmDeregisterSap(sapCtx)
}

// ProtocolCoCreateVc models ProtocolCoCreateVc: a client created a VC for
// an outgoing call.
func (d *MCM) ProtocolCoCreateVc(afCtx any, h *ndis.Vc) (any, ndis.Status) {
	return d.core.ProtocolCoCreateVc(afCtx, h)
}

// ProtocolCoDeleteVc models ProtocolCoDeleteVc.
func (d *MCM) ProtocolCoDeleteVc(vcCtx any) ndis.Status { return d.core.ProtocolCoDeleteVc(vcCtx) }

// ProtocolCmActivateVcComplete is never called for an MCM (R-REG-5).
func (d *MCM) ProtocolCmActivateVcComplete(ndis.Status, any, *ndis.CallParameters) {}

// ProtocolCmDeactivateVcComplete is never called for an MCM (R-REG-5).
func (d *MCM) ProtocolCmDeactivateVcComplete(ndis.Status, any) {}

// ProtocolCmMakeCall models ProtocolCmMakeCall: SETUP to the destination
// node, dialling it first if there is no link (callctl.Core.ProtocolCmMakeCall).
func (d *MCM) ProtocolCmMakeCall(vcCtx any, params *ndis.CallParameters, ph *ndis.Party) (any, ndis.Status) {
	return d.core.ProtocolCmMakeCall(vcCtx, params, ph)
}

// ProtocolCmIncomingCallComplete models ProtocolCmIncomingCallComplete: the
// client's pended answer to an offered call.
func (d *MCM) ProtocolCmIncomingCallComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	d.core.ProtocolCmIncomingCallComplete(st, vcCtx, params)
}

// ProtocolCmCloseCall models ProtocolCmCloseCall (callctl.Core).
func (d *MCM) ProtocolCmCloseCall(vcCtx, partyCtx any, data []byte) ndis.Status {
	return d.core.ProtocolCmCloseCall(vcCtx, partyCtx, data)
}

// ProtocolCmAddParty models ProtocolCmAddParty (callctl.Core).
func (d *MCM) ProtocolCmAddParty(vcCtx any, params *ndis.CallParameters, ph *ndis.Party) (any, ndis.Status) {
	return d.core.ProtocolCmAddParty(vcCtx, params, ph)
}

// ProtocolCmDropParty models ProtocolCmDropParty (callctl.Core).
func (d *MCM) ProtocolCmDropParty(partyCtx any, data []byte) ndis.Status {
	return d.core.ProtocolCmDropParty(partyCtx, data)
}

// ProtocolCmModifyCallQoS models ProtocolCmModifyCallQoS (callctl.Core).
func (d *MCM) ProtocolCmModifyCallQoS(vcCtx any, params *ndis.CallParameters) ndis.Status {
	return d.core.ProtocolCmModifyCallQoS(vcCtx, params)
}

// ProtocolCoOidRequest models ProtocolCoOidRequest: OID_CO_GET_ADDRESSES
// returns this node's ATM End System Address (20 octets); other OIDs are
// not supported.
func (d *MCM) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	return d.core.ProtocolCoOidRequest(afCtx, vcCtx, partyCtx, req)
}

// ProtocolCoOidRequestComplete models ProtocolCoOidRequestComplete; the MCM
// sends no OID requests.
func (d *MCM) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
}

// owner is the MCM as its call control's callctl.Owner: VCs with a QUIC
// data path, peers over transport links. A type of its own keeps these
// methods off MCM's API.
type owner MCM

var _ callctl.Owner = (*owner)(nil)

// NewVc returns the MCM's vc for r, its data path hook itself.
func (o *owner) NewVc(r callctl.Vc) *callctl.Vc { return &newVC(r).Vc }

// AssocLocked returns the association with node's peer.
func (o *owner) AssocLocked(node string) *callctl.Assoc { return (*MCM)(o).peerLocked(node).as }

// DialLocked dials a's peer unless a dial is running.
func (o *owner) DialLocked(a *callctl.Assoc) { (*MCM)(o).dialLocked(peerOf(a)) }

// DatagramLimit is the transport link to a's peer, nil while it is down.
func (o *owner) DatagramLimit(a *callctl.Assoc) callctl.DatagramLimit {
	if l := peerOf(a).tl; l != nil {
		return l
	}
	return nil
}

// PeerAddress is a's peer's address.
func (o *owner) PeerAddress(a *callctl.Assoc) *uni.AESA { return &peerOf(a).addr }

// RefusedLocked counts a refusal against Config.RefusalRate.
func (o *owner) RefusedLocked(a *callctl.Assoc) { (*MCM)(o).refusedLocked(peerOf(a)) }

// SentLocked counts and traces a message queued for a's peer.
func (o *owner) SentLocked(a *callctl.Assoc, b []byte) {
	p := peerOf(a)
	p.view.Out++
	(*MCM)(o).traceSignal(p, trace.Out, b)
}

// Go runs f on a goroutine Shutdown waits for.
func (o *owner) Go(f func()) bool { return (*MCM)(o).spawn(f) }
