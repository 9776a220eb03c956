package callctl

import "github.com/condis-project/condis/ndis"

// CM is the call-manager side of NDIS: the mediator calls a call manager
// makes to carry out CoNDIS <-> Q.2931 call control. The call control is
// written against it once; each topology supplies its own:
//
//	CM method                  miniport call manager (MCm, mcm)      stand-alone call manager (Cm, package cm)
//	ActivateVc                 NdisMCmActivateVc: completes at once    NdisCmActivateVc: the miniport may pend it
//	                                                                   (MiniportCoActivateVc returns PENDING); the
//	                                                                   CM's ProtocolCmActivateVcComplete then calls
//	                                                                   VcActivation.Completed
//	DeactivateVc               NdisMCmDeactivateVc: at once            NdisCmDeactivateVc: may pend likewise
//	                                                                   (ProtocolCmDeactivateVcComplete)
//	CreateVc / DeleteVc        NdisMCmCreateVc / NdisMCmDeleteVc       NdisCoCreateVc / NdisCoDeleteVc
//	DispatchIncomingCall       NdisMCmDispatchIncomingCall             NdisCmDispatchIncomingCall
//	DispatchCallConnected      NdisMCmDispatchCallConnected            NdisCmDispatchCallConnected
//	MakeCallComplete ...       NdisMCm...Complete                      NdisCm...Complete (CloseCallComplete after a
//	                                                                   pended deactivation has completed)
//	DispatchIncoming...        NdisMCmDispatchIncoming...              NdisCmDispatchIncoming...
//	IndicateStatus             NdisMCoIndicateStatusEx                 (the miniport indicates media status itself)
//
// Concurrency contract: the call control calls these methods holding none
// of its locks (the mediator may call the call manager's handlers back
// from inside them, and the handlers take the call manager's lock); they
// may be called from any goroutine. A method returns what the mediator
// returned. ActivateVc and DeactivateVc are the only requests that may
// return NDIS_STATUS_PENDING; the call control sequences them through an
// VcActivation, which waits for the completion before it goes on.
//
// Signalling to the peer does not go through CM: the call manager's
// signalling link does (a transport stream for mcm, a signalling VC of the
// miniport's for a stand-alone CM).
type CM interface {
	// ActivateVc activates vc with params (NdisMCmActivateVc /
	// NdisCmActivateVc). params are the caller's again when it completes
	// (at once, or with the completion of a PENDING: R-ACT-13). PENDING:
	// the completion follows (VcActivation.Completed).
	ActivateVc(vc *ndis.Vc, params *ndis.CallParameters) ndis.Status
	// DeactivateVc deactivates vc (NdisMCmDeactivateVc /
	// NdisCmDeactivateVc). PENDING: the completion follows
	// (VcActivation.Completed).
	DeactivateVc(vc *ndis.Vc) ndis.Status
	// CreateVc creates a VC on af for an incoming call, with ctx the
	// call manager's context for it (NdisMCmCreateVc / NdisCoCreateVc).
	CreateVc(af *ndis.Af, ctx any) (*ndis.Vc, ndis.Status)
	// DeleteVc deletes a VC CreateVc made (NdisMCmDeleteVc /
	// NdisCoDeleteVc).
	DeleteVc(vc *ndis.Vc) ndis.Status
	// DispatchIncomingCall offers a call on vc to the client of sap
	// (NdisMCmDispatchIncomingCall / NdisCmDispatchIncomingCall); PENDING:
	// the client answers with ProtocolCmIncomingCallComplete.
	DispatchIncomingCall(sap *ndis.Sap, vc *ndis.Vc, params *ndis.CallParameters) ndis.Status
	// DispatchCallConnected tells the client an incoming call is up.
	DispatchCallConnected(vc *ndis.Vc) ndis.Status
	// MakeCallComplete completes a pended MakeCall.
	MakeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party, partyCtx any, params *ndis.CallParameters) ndis.Status
	// CloseCallComplete completes a pended CloseCall (party: the party it
	// named, for a multipoint call).
	CloseCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party) ndis.Status
	// AddPartyComplete completes a pended AddParty.
	AddPartyComplete(st ndis.Status, party *ndis.Party, partyCtx any, params *ndis.CallParameters) ndis.Status
	// DropPartyComplete completes a pended DropParty.
	DropPartyComplete(st ndis.Status, party *ndis.Party) ndis.Status
	// ModifyCallQoSComplete completes a pended ModifyCallQoS.
	ModifyCallQoSComplete(st ndis.Status, vc *ndis.Vc, params *ndis.CallParameters) ndis.Status
	// DispatchIncomingCloseCall tells the client the network ended vc's call.
	DispatchIncomingCloseCall(st ndis.Status, vc *ndis.Vc, data []byte) ndis.Status
	// DispatchIncomingDropParty tells the client a leaf left.
	DispatchIncomingDropParty(st ndis.Status, party *ndis.Party, data []byte) ndis.Status
	// DispatchIncomingCallQoSChange tells the client the peer changed the
	// call's parameters; a failure status refuses the change.
	DispatchIncomingCallQoSChange(vc *ndis.Vc, params *ndis.CallParameters) ndis.Status
	// CloseAddressFamilyComplete completes a pended CloseAf.
	CloseAddressFamilyComplete(st ndis.Status, af *ndis.Af) ndis.Status
	// NotifyCloseAddressFamily asks the client to close its open of the AF.
	NotifyCloseAddressFamily(af *ndis.Af) ndis.Status
	// IndicateStatus indicates a status on vc (MEDIA_DISCONNECT /
	// MEDIA_CONNECT while the link to the peer is lost and back).
	IndicateStatus(vc *ndis.Vc, ind *ndis.StatusIndication) ndis.Status
}

// MCm is the CM of a miniport call manager: the NdisMCm* functions of its
// adapter. Activation and deactivation complete at once (an MCM is its own
// miniport, R-REG-5).
type MCm struct{ A *ndis.Adapter }

var _ CM = MCm{}

// ActivateVc is NdisMCmActivateVc.
func (m MCm) ActivateVc(vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return m.A.MCmActivateVc(vc, p)
}

// DeactivateVc is NdisMCmDeactivateVc.
func (m MCm) DeactivateVc(vc *ndis.Vc) ndis.Status { return m.A.MCmDeactivateVc(vc) }

// CreateVc is NdisMCmCreateVc.
func (m MCm) CreateVc(af *ndis.Af, ctx any) (*ndis.Vc, ndis.Status) { return m.A.MCmCreateVc(af, ctx) }

// DeleteVc is NdisMCmDeleteVc.
func (m MCm) DeleteVc(vc *ndis.Vc) ndis.Status { return m.A.MCmDeleteVc(vc) }

// DispatchIncomingCall is NdisMCmDispatchIncomingCall.
func (m MCm) DispatchIncomingCall(sap *ndis.Sap, vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return m.A.MCmDispatchIncomingCall(sap, vc, p)
}

// DispatchCallConnected is NdisMCmDispatchCallConnected.
func (m MCm) DispatchCallConnected(vc *ndis.Vc) ndis.Status { return m.A.MCmDispatchCallConnected(vc) }

// MakeCallComplete is NdisMCmMakeCallComplete.
func (m MCm) MakeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party, partyCtx any, p *ndis.CallParameters) ndis.Status {
	return m.A.MCmMakeCallComplete(st, vc, party, partyCtx, p)
}

// CloseCallComplete is NdisMCmCloseCallComplete.
func (m MCm) CloseCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party) ndis.Status {
	return m.A.MCmCloseCallComplete(st, vc, party)
}

// AddPartyComplete is NdisMCmAddPartyComplete.
func (m MCm) AddPartyComplete(st ndis.Status, party *ndis.Party, partyCtx any, p *ndis.CallParameters) ndis.Status {
	return m.A.MCmAddPartyComplete(st, party, partyCtx, p)
}

// DropPartyComplete is NdisMCmDropPartyComplete.
func (m MCm) DropPartyComplete(st ndis.Status, party *ndis.Party) ndis.Status {
	return m.A.MCmDropPartyComplete(st, party)
}

// ModifyCallQoSComplete is NdisMCmModifyCallQoSComplete.
func (m MCm) ModifyCallQoSComplete(st ndis.Status, vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return m.A.MCmModifyCallQoSComplete(st, vc, p)
}

// DispatchIncomingCloseCall is NdisMCmDispatchIncomingCloseCall.
func (m MCm) DispatchIncomingCloseCall(st ndis.Status, vc *ndis.Vc, data []byte) ndis.Status {
	return m.A.MCmDispatchIncomingCloseCall(st, vc, data)
}

// DispatchIncomingDropParty is NdisMCmDispatchIncomingDropParty.
func (m MCm) DispatchIncomingDropParty(st ndis.Status, party *ndis.Party, data []byte) ndis.Status {
	return m.A.MCmDispatchIncomingDropParty(st, party, data)
}

// DispatchIncomingCallQoSChange is NdisMCmDispatchIncomingCallQoSChange.
func (m MCm) DispatchIncomingCallQoSChange(vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return m.A.MCmDispatchIncomingCallQoSChange(vc, p)
}

// CloseAddressFamilyComplete is NdisMCmCloseAddressFamilyComplete.
func (m MCm) CloseAddressFamilyComplete(st ndis.Status, af *ndis.Af) ndis.Status {
	return m.A.MCmCloseAddressFamilyComplete(st, af)
}

// NotifyCloseAddressFamily is NdisMCmNotifyCloseAddressFamily.
func (m MCm) NotifyCloseAddressFamily(af *ndis.Af) ndis.Status {
	return m.A.MCmNotifyCloseAddressFamily(af)
}

// IndicateStatus is NdisMCoIndicateStatusEx.
func (m MCm) IndicateStatus(vc *ndis.Vc, ind *ndis.StatusIndication) ndis.Status {
	return m.A.MCoIndicateStatusEx(vc, ind)
}

// Cm is the CM of a stand-alone call manager: the NdisCm* functions (and
// NdisCoCreateVc / NdisCoDeleteVc) of its binding to a CoNDIS miniport's
// adapter. The miniport may pend activation and deactivation
// (MiniportCoActivateVc / MiniportCoDeactivateVc returning PENDING); the
// call manager's ProtocolCmActivateVcComplete and
// ProtocolCmDeactivateVcComplete then report the outcome
// (Core.ActivationCompleted).
type Cm struct{ B *ndis.Binding }

var _ CM = Cm{}

// ActivateVc is NdisCmActivateVc.
func (c Cm) ActivateVc(vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return c.B.CmActivateVc(vc, p)
}

// DeactivateVc is NdisCmDeactivateVc.
func (c Cm) DeactivateVc(vc *ndis.Vc) ndis.Status { return c.B.CmDeactivateVc(vc) }

// CreateVc is NdisCoCreateVc on the client's open of the AF: the VC of an
// incoming call.
func (c Cm) CreateVc(af *ndis.Af, ctx any) (*ndis.Vc, ndis.Status) { return c.B.CoCreateVc(af, ctx) }

// DeleteVc is NdisCoDeleteVc.
func (c Cm) DeleteVc(vc *ndis.Vc) ndis.Status { return c.B.CoDeleteVc(vc) }

// DispatchIncomingCall is NdisCmDispatchIncomingCall.
func (c Cm) DispatchIncomingCall(sap *ndis.Sap, vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return c.B.CmDispatchIncomingCall(sap, vc, p)
}

// DispatchCallConnected is NdisCmDispatchCallConnected.
func (c Cm) DispatchCallConnected(vc *ndis.Vc) ndis.Status { return c.B.CmDispatchCallConnected(vc) }

// MakeCallComplete is NdisCmMakeCallComplete.
func (c Cm) MakeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party, partyCtx any, p *ndis.CallParameters) ndis.Status {
	return c.B.CmMakeCallComplete(st, vc, party, partyCtx, p)
}

// CloseCallComplete is NdisCmCloseCallComplete.
func (c Cm) CloseCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party) ndis.Status {
	return c.B.CmCloseCallComplete(st, vc, party)
}

// AddPartyComplete is NdisCmAddPartyComplete.
func (c Cm) AddPartyComplete(st ndis.Status, party *ndis.Party, partyCtx any, p *ndis.CallParameters) ndis.Status {
	return c.B.CmAddPartyComplete(st, party, partyCtx, p)
}

// DropPartyComplete is NdisCmDropPartyComplete.
func (c Cm) DropPartyComplete(st ndis.Status, party *ndis.Party) ndis.Status {
	return c.B.CmDropPartyComplete(st, party)
}

// ModifyCallQoSComplete is NdisCmModifyCallQoSComplete.
func (c Cm) ModifyCallQoSComplete(st ndis.Status, vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return c.B.CmModifyCallQoSComplete(st, vc, p)
}

// DispatchIncomingCloseCall is NdisCmDispatchIncomingCloseCall.
func (c Cm) DispatchIncomingCloseCall(st ndis.Status, vc *ndis.Vc, data []byte) ndis.Status {
	return c.B.CmDispatchIncomingCloseCall(st, vc, data)
}

// DispatchIncomingDropParty is NdisCmDispatchIncomingDropParty.
func (c Cm) DispatchIncomingDropParty(st ndis.Status, party *ndis.Party, data []byte) ndis.Status {
	return c.B.CmDispatchIncomingDropParty(st, party, data)
}

// DispatchIncomingCallQoSChange is NdisCmDispatchIncomingCallQoSChange.
func (c Cm) DispatchIncomingCallQoSChange(vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return c.B.CmDispatchIncomingCallQoSChange(vc, p)
}

// CloseAddressFamilyComplete is NdisCmCloseAddressFamilyComplete.
func (c Cm) CloseAddressFamilyComplete(st ndis.Status, af *ndis.Af) ndis.Status {
	return c.B.CmCloseAddressFamilyComplete(st, af)
}

// NotifyCloseAddressFamily is NdisCmNotifyCloseAddressFamily.
func (c Cm) NotifyCloseAddressFamily(af *ndis.Af) ndis.Status {
	return c.B.CmNotifyCloseAddressFamily(af)
}

// IndicateStatus is refused with NDIS_STATUS_NOT_SUPPORTED: NDIS gives a
// stand-alone call manager no per-VC status indication; the miniport
// indicates media status to the VC's client itself.
func (c Cm) IndicateStatus(*ndis.Vc, *ndis.StatusIndication) ndis.Status {
	return ndis.StatusNotSupported
}
