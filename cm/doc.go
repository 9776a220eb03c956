// Package cm is the stand-alone Q.2931 call manager of the split
// topology: a protocol driver that binds to a CoNDIS miniport's adapter
// (package miniport, whose medium is the transport), registers
// CO_ADDRESS_FAMILY_Q2931 on that binding (NdisCmRegisterAddressFamilyEx)
// and runs the same call control as the miniport call manager
// (callctl.Core) over the NdisCm* functions (callctl.Cm), as Windows' ATM
// UNI call manager ran over vendors' ATM miniports.
//
// # Signalling
//
// Q.2931 travels on one signalling VC per peer, which the CM creates on its
// binding with NdisCoCreateVc and no AF, and activates with
// NdisCmActivateVc and the miniport's signalling parameters
// (miniport.VCParams, Kind Signalling). Messages go out with
// NdisCoSendNetBufferLists and come in through
// ProtocolCoReceiveNetBufferLists; each peer's callctl.Assoc is told of
// them. Peers are learnt from the miniport's link events
// (NdisMCoIndicateStatusEx with miniport.StatusLinkEvent, adapter-wide): a
// peer that connected gets a signalling VC at once (from
// ProtocolCoStatusEx, before the transport delivers anything of the link);
// a link going down is the association's LinkDown. A call to a peer with
// no link activates a signalling VC for it, which the miniport pends while
// it dials (ProtocolCmActivateVcComplete reports the outcome).
//
// # Data VCs
//
// A call's VC is activated with NdisCmActivateVc; the CM puts the
// miniport's VCParams in MediaSpecific (the peer, the call's connection
// identifier, datagram or reliable, the transmit and receive traffic of
// the flowspecs in force), so the miniport carries the VC's data: the
// client sends and receives through it, not through the CM. The miniport
// may pend the activation (while the link's data path opens) and the
// deactivation (until the VC's sends drain); the call control sequences
// both (callctl.VcActivation) and completes a close with
// NdisCmCloseCallComplete only once the pended deactivation has completed.
// The call control's DataPath hooks are therefore no-ops here, except Stop,
// which lets the close go on at once: draining is the miniport's
// deactivation.
//
// # Not yet
//
// Multipoint calls (refused with NDIS_STATUS_NOT_SUPPORTED: a root's
// further legs need data VCs of their own in the miniport), QoS
// modification on the wire, link loss (the association clears and keeps
// calls for T309, but the CM does not yet re-activate the signalling VC to
// get the link back, so kept calls end when T309 runs out), RESTART
// beyond the one a first link sends, refusal pacing of a flooding peer,
// and per-VC MEDIA_DISCONNECT / MEDIA_CONNECT while a link is lost (NDIS
// gives a stand-alone CM no per-VC status indication) are later steps.
package cm
