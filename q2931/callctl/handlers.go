package callctl

import "github.com/condis-project/condis/ndis"

// Handlers are the call-manager handlers (ndis.CallManagerHandlers and
// the ProtocolCo* handlers of the VCs clients create) that every call
// manager on a Core answers alike, by handing them to the Core: AF opens
// and closes, SAPs, calls, parties, QoS changes, VC creation and OID
// requests. A call manager embeds the Handlers its Core gives and writes
// the others itself (activation completions, VC deletion, the AF close
// completion), which differ between the topologies.
type Handlers struct{ core *Core }

// Handlers returns the core's Handlers, for its call manager to embed.
func (d *Core) Handlers() Handlers { return Handlers{d} }

// ProtocolCmOpenAf models ProtocolCmOpenAf: a client opens the Q.2931 AF
// (Core.ProtocolCmOpenAf).
func (h Handlers) ProtocolCmOpenAf(bindingCtx any, family ndis.AddressFamily, af *ndis.Af) (any, ndis.Status) {
	return h.core.ProtocolCmOpenAf(bindingCtx, family, af)
}

// ProtocolCmCloseAf models ProtocolCmCloseAf (Core.ProtocolCmCloseAf).
func (h Handlers) ProtocolCmCloseAf(afCtx any) ndis.Status { return h.core.ProtocolCmCloseAf(afCtx) }

// ProtocolCmRegisterSap models ProtocolCmRegisterSap: a service
// registered by its BHLI (Core.ProtocolCmRegisterSap).
func (h Handlers) ProtocolCmRegisterSap(afCtx any, coSap *ndis.CoSap, sap *ndis.Sap) (any, ndis.Status) {
	return h.core.ProtocolCmRegisterSap(afCtx, coSap, sap)
}

// ProtocolCmDeregisterSap models ProtocolCmDeregisterSap
// (Core.ProtocolCmDeregisterSap).
func (h Handlers) ProtocolCmDeregisterSap(sapCtx any) ndis.Status {
	return h.core.ProtocolCmDeregisterSap(sapCtx)
}

// ProtocolCoCreateVc models ProtocolCoCreateVc: a client created a VC for
// an outgoing call (Core.ProtocolCoCreateVc).
func (h Handlers) ProtocolCoCreateVc(afCtx any, vc *ndis.Vc) (any, ndis.Status) {
	return h.core.ProtocolCoCreateVc(afCtx, vc)
}

// ProtocolCmMakeCall models ProtocolCmMakeCall: SETUP to the destination
// node, bringing up the link to it first if need be
// (Core.ProtocolCmMakeCall).
func (h Handlers) ProtocolCmMakeCall(vcCtx any, params *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
	return h.core.ProtocolCmMakeCall(vcCtx, params, party)
}

// ProtocolCmIncomingCallComplete models ProtocolCmIncomingCallComplete: a
// client's pended answer to an offered call
// (Core.ProtocolCmIncomingCallComplete).
func (h Handlers) ProtocolCmIncomingCallComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	h.core.ProtocolCmIncomingCallComplete(st, vcCtx, params)
}

// ProtocolCmCloseCall models ProtocolCmCloseCall: RELEASE, and the close
// completed once the VC is deactivated (Core.ProtocolCmCloseCall).
func (h Handlers) ProtocolCmCloseCall(vcCtx, partyCtx any, data []byte) ndis.Status {
	return h.core.ProtocolCmCloseCall(vcCtx, partyCtx, data)
}

// ProtocolCmAddParty models ProtocolCmAddParty (Core.ProtocolCmAddParty).
func (h Handlers) ProtocolCmAddParty(vcCtx any, params *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
	return h.core.ProtocolCmAddParty(vcCtx, params, party)
}

// ProtocolCmDropParty models ProtocolCmDropParty (Core.ProtocolCmDropParty).
func (h Handlers) ProtocolCmDropParty(partyCtx any, data []byte) ndis.Status {
	return h.core.ProtocolCmDropParty(partyCtx, data)
}

// ProtocolCmModifyCallQoS models ProtocolCmModifyCallQoS
// (Core.ProtocolCmModifyCallQoS).
func (h Handlers) ProtocolCmModifyCallQoS(vcCtx any, params *ndis.CallParameters) ndis.Status {
	return h.core.ProtocolCmModifyCallQoS(vcCtx, params)
}

// ProtocolCoOidRequest models ProtocolCoOidRequest: OID_CO_GET_ADDRESSES
// returns this node's ATM End System Address; other OIDs are not
// supported (Core.ProtocolCoOidRequest).
func (h Handlers) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	return h.core.ProtocolCoOidRequest(afCtx, vcCtx, partyCtx, req)
}

// ProtocolCoOidRequestComplete models ProtocolCoOidRequestComplete: the
// call manager sends no OID request of its own through this binding
// (a split CM's, to its miniport, complete at once).
func (h Handlers) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
}
