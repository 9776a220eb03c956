package ndis

// This file holds the driver-facing side of the contract: the handler tables a
// driver gives the mediator. Each Go interface corresponds to an NDIS
// characteristics structure, and because Go interfaces must be implemented in
// full, R-REG-1, R-REG-2, R-REG-3, R-REG-4, R-REG-7 and R-REG-8 (every member
// supplied, NOT_SUPPORTED stubs for unsupported features) are enforced by the
// compiler.
//
// Every handler receives the receiving driver's own context (spec §2), never
// another driver's. Handlers are called with no mediator lock held; they may
// call back into the mediator (spec §3.0-6).

// CoVcHandlers are ProtocolCoCreateVc and ProtocolCoDeleteVc, supplied by
// clients, stand-alone call managers and miniport call managers. Neither may
// return StatusPending (R-GEN-5).
type CoVcHandlers interface {
	// ProtocolCoCreateVc models ProtocolCoCreateVc: allocate per-VC state for a
	// VC another driver created. afCtx is the receiver's own AF context. It
	// returns the receiver's VC context.
	ProtocolCoCreateVc(afCtx any, vc *Vc) (vcCtx any, status Status)
	// ProtocolCoDeleteVc models ProtocolCoDeleteVc: release per-VC state.
	ProtocolCoDeleteVc(vcCtx any) Status
}

// CoOidHandlers are ProtocolCoOidRequest and ProtocolCoOidRequestComplete.
type CoOidHandlers interface {
	// ProtocolCoOidRequest models ProtocolCoOidRequest: a request from the
	// peer protocol on an open AF. Nil vcCtx/partyCtx mean an AF-wide request.
	ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *OidRequest) Status
	// ProtocolCoOidRequestComplete models ProtocolCoOidRequestComplete; it is
	// called only for requests that returned StatusPending (R-OID-4).
	ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *OidRequest, status Status)
}

// Protocol is what a protocol driver (client or stand-alone call manager)
// registers: NDIS_PROTOCOL_CO_CHARACTERISTICS plus the Co VC and OID handlers
// of its optional-handler table.
type Protocol interface {
	CoVcHandlers
	CoOidHandlers
	// ProtocolCoAfRegisterNotify models ProtocolCoAfRegisterNotify: an address
	// family has been registered on the adapter this binding is bound to.
	// Stand-alone call managers implement it as a function that returns (R-REG-8).
	ProtocolCoAfRegisterNotify(bindingCtx any, af AddressFamily)
	// ProtocolCoReceiveNetBufferLists models ProtocolCoReceiveNetBufferLists.
	// Without ReceiveFlagsResources the protocol owns the lists until it hands
	// them back with Binding.ReturnNetBufferLists (R-DATA-6).
	ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *NetBufferList, count int, flags ReceiveFlags)
	// ProtocolCoSendNetBufferListsComplete models
	// ProtocolCoSendNetBufferListsComplete: ownership of the lists returns.
	ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *NetBufferList, flags SendCompleteFlags)
	// ProtocolCoStatusEx models ProtocolCoStatusEx. A nil vcCtx means an
	// adapter-wide indication. Indications are serialized per binding (R-DATA-11).
	ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *StatusIndication)
}

// ClientHandlers is NDIS_CO_CLIENT_OPTIONAL_HANDLERS minus the Co members.
type ClientHandlers interface {
	// ProtocolClOpenAfCompleteEx models ProtocolClOpenAfCompleteEx. af is nil on failure.
	ProtocolClOpenAfCompleteEx(afCtx any, af *Af, status Status)
	// ProtocolClCloseAfComplete models ProtocolClCloseAfComplete.
	ProtocolClCloseAfComplete(status Status, afCtx any)
	// ProtocolClNotifyCloseAf models ProtocolClNotifyCloseAf: the call manager
	// is withdrawing the AF; drop parties, close calls, deregister SAPs and
	// close the AF (R-AF-19), without blocking (R-AF-22).
	ProtocolClNotifyCloseAf(afCtx any) Status
	// ProtocolClRegisterSapComplete models ProtocolClRegisterSapComplete. sap is nil on failure.
	ProtocolClRegisterSapComplete(status Status, sapCtx any, coSap *CoSap, sap *Sap)
	// ProtocolClDeregisterSapComplete models ProtocolClDeregisterSapComplete.
	ProtocolClDeregisterSapComplete(status Status, sapCtx any)
	// ProtocolClMakeCallComplete models ProtocolClMakeCallComplete. party is
	// the initial party of a multipoint call on success, else nil.
	ProtocolClMakeCallComplete(status Status, vcCtx any, party *Party, params *CallParameters)
	// ProtocolClModifyCallQoSComplete models ProtocolClModifyCallQoSComplete.
	ProtocolClModifyCallQoSComplete(status Status, vcCtx any, params *CallParameters)
	// ProtocolClCloseCallComplete models ProtocolClCloseCallComplete.
	ProtocolClCloseCallComplete(status Status, vcCtx, partyCtx any)
	// ProtocolClAddPartyComplete models ProtocolClAddPartyComplete. party is nil on failure.
	ProtocolClAddPartyComplete(status Status, partyCtx any, party *Party, params *CallParameters)
	// ProtocolClDropPartyComplete models ProtocolClDropPartyComplete.
	ProtocolClDropPartyComplete(status Status, partyCtx any)
	// ProtocolClIncomingCall models ProtocolClIncomingCall: SUCCESS accepts,
	// PENDING defers the answer to Binding.ClIncomingCallComplete, anything
	// else rejects.
	ProtocolClIncomingCall(sapCtx, vcCtx any, params *CallParameters) Status
	// ProtocolClCallConnected models ProtocolClCallConnected.
	ProtocolClCallConnected(vcCtx any)
	// ProtocolClIncomingCloseCall models ProtocolClIncomingCloseCall; the
	// client must answer with Binding.ClCloseCall (R-CLOSE-14).
	ProtocolClIncomingCloseCall(closeStatus Status, vcCtx any, closeData []byte)
	// ProtocolClIncomingDropParty models ProtocolClIncomingDropParty; the
	// client must answer with Binding.ClDropParty (R-PTY-14).
	ProtocolClIncomingDropParty(dropStatus Status, partyCtx any, closeData []byte)
	// ProtocolClIncomingCallQoSChange models ProtocolClIncomingCallQoSChange.
	ProtocolClIncomingCallQoSChange(vcCtx any, params *CallParameters)
}

// Client is a connection-oriented client protocol.
type Client interface {
	Protocol
	ClientHandlers
}

// CallManagerHandlers is the Cm part of NDIS_CO_CALL_MANAGER_OPTIONAL_HANDLERS,
// shared by stand-alone call managers and miniport call managers.
type CallManagerHandlers interface {
	// ProtocolCmOpenAf models ProtocolCmOpenAf. bindingCtx is the CM's
	// binding context, or an MCM's adapter context. It returns the CM's AF
	// context (ignored when the status is PENDING or a failure).
	ProtocolCmOpenAf(bindingCtx any, af AddressFamily, h *Af) (afCtx any, status Status)
	// ProtocolCmCloseAf models ProtocolCmCloseAf.
	ProtocolCmCloseAf(afCtx any) Status
	// ProtocolCmNotifyCloseAfComplete models ProtocolCmNotifyCloseAfComplete;
	// called only if the notify-close pended (R-AF-21).
	ProtocolCmNotifyCloseAfComplete(afCtx any, status Status)
	// ProtocolCmRegisterSap models ProtocolCmRegisterSap.
	ProtocolCmRegisterSap(afCtx any, coSap *CoSap, h *Sap) (sapCtx any, status Status)
	// ProtocolCmDeregisterSap models ProtocolCmDeregisterSap.
	ProtocolCmDeregisterSap(sapCtx any) Status
	// ProtocolCmMakeCall models ProtocolCmMakeCall. party is non-nil for a
	// multipoint call; the CM returns its party context (nil for point-to-point, R-CALL-3).
	ProtocolCmMakeCall(vcCtx any, params *CallParameters, party *Party) (partyCtx any, status Status)
	// ProtocolCmIncomingCallComplete models ProtocolCmIncomingCallComplete.
	ProtocolCmIncomingCallComplete(status Status, vcCtx any, params *CallParameters)
	// ProtocolCmCloseCall models ProtocolCmCloseCall. partyCtx is the CM's
	// context of the last party of a multipoint call, else nil.
	ProtocolCmCloseCall(vcCtx, partyCtx any, closeData []byte) Status
	// ProtocolCmAddParty models ProtocolCmAddParty.
	ProtocolCmAddParty(vcCtx any, params *CallParameters, party *Party) (partyCtx any, status Status)
	// ProtocolCmDropParty models ProtocolCmDropParty.
	ProtocolCmDropParty(partyCtx any, closeData []byte) Status
	// ProtocolCmModifyCallQoS models ProtocolCmModifyCallQoS.
	ProtocolCmModifyCallQoS(vcCtx any, params *CallParameters) Status
	// ProtocolCmActivateVcComplete models ProtocolCmActivateVcComplete. Never
	// called for an MCM (R-REG-5).
	ProtocolCmActivateVcComplete(status Status, vcCtx any, params *CallParameters)
	// ProtocolCmDeactivateVcComplete models ProtocolCmDeactivateVcComplete.
	// Never called for an MCM (R-REG-5).
	ProtocolCmDeactivateVcComplete(status Status, vcCtx any)
}

// CallManager is a stand-alone call manager protocol.
type CallManager interface {
	Protocol
	CallManagerHandlers
}

// MiniportDataHandlers are the miniport entry points shared by CoNDIS
// miniports and miniport call managers.
type MiniportDataHandlers interface {
	// MiniportCoSendNetBufferLists models MiniportCoSendNetBufferLists: the
	// miniport must accept every list and complete each one exactly once with
	// Adapter.MCoSendNetBufferListsComplete (R-DATA-5).
	MiniportCoSendNetBufferLists(vcCtx any, nbls *NetBufferList, flags SendFlags)
	// MiniportCoOidRequest models MiniportCoOidRequest. vcCtx is nil for an
	// adapter-wide request.
	MiniportCoOidRequest(adapterCtx, vcCtx any, req *OidRequest) Status
	// MiniportReturnNetBufferLists models MiniportReturnNetBufferLists.
	MiniportReturnNetBufferLists(adapterCtx any, nbls *NetBufferList, flags ReturnFlags)
}

// Miniport is a CoNDIS miniport without call management
// (NDIS_MINIPORT_CO_CHARACTERISTICS).
type Miniport interface {
	MiniportDataHandlers
	// MiniportCoCreateVc models MiniportCoCreateVc; never pends (R-GEN-5).
	MiniportCoCreateVc(adapterCtx any, vc *Vc) (vcCtx any, status Status)
	// MiniportCoDeleteVc models MiniportCoDeleteVc; never pends (R-GEN-5).
	MiniportCoDeleteVc(vcCtx any) Status
	// MiniportCoActivateVc models MiniportCoActivateVc; may pend, completing
	// with Adapter.MCoActivateVcComplete.
	MiniportCoActivateVc(vcCtx any, params *CallParameters) Status
	// MiniportCoDeactivateVc models MiniportCoDeactivateVc; may pend,
	// completing with Adapter.MCoDeactivateVcComplete.
	MiniportCoDeactivateVc(vcCtx any) Status
}

// MiniportCallManager is a miniport with integrated call management (MCM).
// It has no MiniportCoCreateVc/DeleteVc/ActivateVc/DeactivateVc: its VCs are
// reported with ProtocolCoCreateVc and Adapter.MCmCreateVc, and it activates
// VCs itself and tells the mediator with Adapter.MCmActivateVc (R-REG-3).
type MiniportCallManager interface {
	CallManagerHandlers
	CoVcHandlers
	CoOidHandlers
	MiniportDataHandlers
}
