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
// which lets the close go on at once (draining is the miniport's
// deactivation), and SetDests (below).
//
// A QoS change (ProtocolCmModifyCallQoS, or the peer's MODIFY REQUEST)
// re-activates the active VC with the new traffic, as NDIS has a CM change
// a VC's parameters; the miniport's shaping and policing follow.
//
// # Multipoint
//
// A root's VC is activated, when its first leg connects, as a
// miniport.Root with that leg; whenever a leg connects or goes, the CM
// re-activates it with every leg in force (vc.SetDestsThen), and the
// AddParty of a new leg completes only once that re-activation has. A
// party on this node is a miniport.Leaf VC (its activation carries
// MULTIPOINT_VC); the node's parties of one call share the leg's
// connection in the miniport.
//
// # Link loss and RESTART
//
// When a link goes down the association keeps the active calls for T309.
// The CM then re-activates the peer's signalling VC, which the miniport
// pends while it dials, and tries again (50 ms apart, doubling to a
// second) while calls are kept and no link is up; a link back before T309
// keeps them (the association audits them), T309's expiry ends them with
// NDIS_STATUS_DEST_OUT_OF_ORDER. The calls' clients are told
// MEDIA_DISCONNECT and MEDIA_CONNECT by the miniport, on their VCs (NDIS
// gives a stand-alone CM no per-VC status indication of its own:
// callctl.Cm.IndicateStatus is NOT_SUPPORTED). The first link with a peer opens with
// RESTART, and a link from a new incarnation of the peer clears its calls
// at once, as in mcm.
//
// A signalling VC receives nothing until the CM, once NdisCmActivateVc
// completed, opens it (miniport.OidSignallingOpen): only the CM knows when
// the mediator holds it active.
//
// # Pacing
//
// As in mcm (package internal/pacing), the peers' signalling readers take
// turns at the call control, first come first served, and a peer whose
// calls the CM refuses faster than Config.RefusalRate (default
// pacing.DefaultRefusalRate, mcm's) has its signalling taken at that rate:
// before taking its next messages the CM waits for the refusals over the
// rate, on the miniport's delivery of that link, so the transport stops
// reading that peer (QUIC flow control holds it back) while other links go
// on. Shutdown ends such a wait at once.
//
// # Not yet
//
// The RESTART of one VC after an unanswered RELEASE (callctl) runs here as
// in mcm but no split test drives it.
package cm
