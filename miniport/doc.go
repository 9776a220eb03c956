// Package miniport is a CoNDIS miniport without call management whose
// medium is a transport.Endpoint (QUIC, or transport/sim in tests): the
// "NIC" of the split topology. A stand-alone Q.2931 call manager (a
// protocol driver bound to this adapter) reaches its peers through it, as
// Windows' ATM UNI call manager reached the switch through a vendor's ATM
// miniport.
//
// # Setting up
//
//	mp, _ := miniport.New(mediator, miniport.Config{Name: "qnic"})
//	ep, _ := quic.Listen(quic.Config{..., Handler: mp.Handler()}) // or simNet.Endpoint(name, mp.Handler())
//	mp.Attach(ep)
//	... bind the call manager to mp.Adapter() ...
//	mp.Halt() // after every protocol has unbound
//
// # The contract a call manager uses
//
// VCs. The call manager creates every VC it uses on this adapter:
// signalling VCs with NdisCoCreateVc and no AF handle, data VCs for its
// clients' calls. MiniportCoCreateVc and MiniportCoDeleteVc keep per-VC
// state and never pend.
//
// Activation. NdisCmActivateVc carries, in MediaParameters.MediaSpecific,
// the VC's [VCParams] (ParamType [ParamMedia]; build them with
// [VCParams.Media], read them with [ParseMedia]):
//
//   - a Signalling VC for peer P: Q.2931 messages, one per SDU, on the
//     link's signalling stream (Link.Send, LinkHandler.Message), as ATM's
//     VCI 5. At most one per peer;
//   - a Datagram or Reliable data VC for peer P with connection identifier
//     C (the call manager chooses it, as mcm does: unique per peer), its
//     transmit and receive [Traffic] (token rate, bucket, peak rate,
//     maximum SDU: shaped on send and policed on receive through
//     internal/shaping) — at most one VC per peer and C;
//   - for a point-to-multipoint call, a [Root] data VC: no peer of its
//     own, its [Leg]s (a leaf node and the connection identifier of the
//     call's leg to it each); every SDU it sends goes to each leg, shaped
//     once; it receives nothing. The call manager re-activates it with the
//     legs in force whenever a leg connects or goes (a re-activation may
//     change a root's legs, not its kind);
//   - a [Leaf] data VC: a party of a multipoint call on this node, for
//     peer P and connection C; it receives and never sends (UNI 3.1
//     multipoint calls carry nothing backward: a send completes with
//     NDIS_STATUS_FAILURE). Several leaves (the node's parties of one
//     call) may share P and C, each receiving every SDU; a point-to-point
//     VC may not share them.
//
// MiniportCoActivateVc completes at once (SUCCESS) when the link to P is
// up; otherwise it returns NDIS_STATUS_PENDING, dials P
// (Endpoint.Dial) and completes with NdisMCoActivateVcComplete when the
// link is up or the dial failed (see MiniportCoActivateVc for the
// statuses). Activating an active VC again changes its traffic (a QoS
// change); when its peer has no link it also dials, pending the same way
// — that is how a call manager gets a link back for a signalling VC it
// kept. MiniportCoDeactivateVc stops the VC receiving at once, and
// completes at once if none of its sends is still in the miniport, else
// pends until they are all completed (NdisMCoDeactivateVcComplete).
// With Config.Pend every activation, re-activation and deactivation pends
// and completes from another goroutine, as a NIC that programs its
// hardware asynchronously. A completion is never made before the handler
// that pended it has returned.
//
// Opening a signalling VC. A signalling VC receives nothing until the
// call manager, once it holds the VC active (its NdisCmActivateVc
// returned SUCCESS or ProtocolCmActivateVcComplete came), sets
// [OidSignallingOpen] on it; the miniport holds the peer's messages till
// then. Only the call manager knows when the mediator has recorded the
// activation; an indication made earlier would break R-ACT-7.
//
// Data. MiniportCoSendNetBufferLists sends each list as one SDU and
// completes each exactly once with NdisMCoSendNetBufferListsComplete; its
// documentation lists the statuses (too long for the path, link down,
// nonconforming, ...). Received SDUs are indicated with
// NdisMCoIndicateReceiveNetBufferLists on the VC their connection
// identifier (or the signalling stream) maps to; see receive.go for what
// is dropped and counted, and how signalling that arrives before the
// signalling VC is open is held (at most Config.MaxHeldSignalling per
// peer) and delivered once it is. A multipoint root's sends complete with
// SUCCESS if any leg took the SDU.
//
// Links. The miniport accepts every link the Endpoint makes (dialled by
// either side) and indicates each link's coming and going to every bound
// protocol with NdisMCoIndicateStatusEx, adapter-wide, StatusCode
// [StatusLinkEvent] and a [LinkEvent] buffer: the peer's name, up or down,
// the transport.DownReason and the peer's incarnation. A call manager
// creates and activates a signalling VC for a peer that connected (from
// its ProtocolCoStatusEx: the transport delivers nothing of the link
// before that returns) and clears its calls with a peer when its link
// goes (or when a new link shows another incarnation). VCs stay bound to
// their peer across links: a new link carries them again. The miniport
// also tells each active data VC whose path a lost link was (bound to the
// peer, or a root with a leg to it) NDIS_STATUS_MEDIA_DISCONNECT
// (NdisMCoIndicateStatusEx on the VC: its client and call manager get it),
// and NDIS_STATUS_MEDIA_CONNECT when a link of the same incarnation of the
// peer is back (a new incarnation's calls are the call manager's to
// clear).
//
// OIDs. MiniportCoOidRequest answers the link speed, the largest SDU the
// path carries now, and per-VC and adapter counters; see the Oid
// constants.
//
// Closing. [Miniport.Close] takes the medium away; every pending
// activation, deactivation and send completes exactly once and every
// goroutine of the miniport has ended when it returns. [Miniport.Halt]
// then removes the adapter.
//
// # Known limit
//
// The mediator opens a VC for receives (R-ACT-7) only once it has
// recorded its activation (MiniportCoActivateVc returned SUCCESS, or its
// completion was taken). A data SDU that reaches the miniport before that
// would be indicated too early and refused by the mediator. The call
// procedures make that impossible (a peer sends data only after the
// CONNECT this side sends once its VC is active, and a leaf's data only
// after the call or party is up); ndis offers a miniport no way to close
// the window otherwise. Signalling, which a peer sends whenever it likes,
// waits for OidSignallingOpen instead.
package miniport
