// Package mcm is a CoNDIS miniport call manager (the integrated topology)
// for CO_ADDRESS_FAMILY_Q2931, version 3.1: clients make, accept and close
// calls through the mediator (package ndis); the MCM signals them to other
// nodes with ITU-T Q.2931 / ATM Forum UNI 3.1 (package uni) over a
// transport.Endpoint (QUIC between hosts, transport/sim in tests), and
// carries the calls' data as transport datagrams or reliable streams.
//
//	m := ndis.New(ndis.Options{Name: "a"})
//	d, _ := mcm.New(m, mcm.Config{Name: "a"})
//	ep, _ := quic.Listen(quic.Config{Identity: id, Handler: d.Handler(), ...})
//	d.Attach(ep)
//	// clients bind to d.Adapter(), open the AF, register q2931.ServiceSap("echo"),
//	// call with q2931.CallParams("b", "echo", tx, rx, false)
//
// # CoNDIS and Q.2931
//
//	CoNDIS                                   Q.2931 (this node)            the far node's client
//	NdisClMakeCall (PENDING)                 SETUP, T303                   ProtocolClIncomingCall on a VC the far MCM created
//	                                                                       (NdisMCmCreateVc, NdisMCmActivateVc, NdisMCmDispatchIncomingCall)
//	                                         <- CALL PROCEEDING            client pended its answer (caller: T310)
//	                                         <- CONNECT (connection id)    client accepted: CONNECT, T313
//	MakeCallComplete(SUCCESS)                CONNECT ACKNOWLEDGE           CallConnected
//	  after NdisMCmActivateVc
//	                                         <- RELEASE COMPLETE (cause)   client rejected (21 for FAILURE, else CauseForStatus),
//	MakeCallComplete(StatusForCause)                                       no SAP (88 -> INVALID_SAP), Config.Authorize (21),
//	                                                                       over Config.MaxRate (37), MaxSduSize (78)
//	NdisClCloseCall                          RELEASE 16, T308              IncomingCloseCall(SUCCESS); its NdisClCloseCall:
//	CloseCallComplete(SUCCESS)               <- RELEASE COMPLETE           RELEASE COMPLETE
//	  after NdisMCmDeactivateVc
//	NdisClAddParty                           ADD PARTY on the leg to the   IncomingCall (a VC per leaf)
//	                                         leaf's node, else a new SETUP
//	NdisClDropParty                          DROP PARTY (RELEASE for the   IncomingCloseCall(SUCCESS)
//	                                         leg's last party)
//	IncomingDropParty                        <- DROP PARTY / RELEASE       the leaf's NdisClCloseCall
//	  (IncomingCloseCall for the last leaf)
//	NdisClModifyCallQoS                      MODIFY REQUEST (Q.2963.1)     VC re-activated, IncomingCallQoSChange,
//	ModifyCallQoSComplete(SUCCESS)           <- MODIFY ACKNOWLEDGE         MODIFY ACKNOWLEDGE (or MODIFY REJECT 37:
//	  after re-activation                                                  CELLRATE_NOT_AVAILABLE, VC unchanged)
//	both clients NdisClModifyCallQoS,        MODIFY REQUESTs cross         the originator's request wins on both
//	  the call's originator:                 <- MODIFY ACKNOWLEDGE         ends; the other side's ModifyCallQoSComplete
//	  ModifyCallQoSComplete(SUCCESS)         MODIFY REJECT 101             (FAILURE), then IncomingCallQoSChange, its
//	                                                                       MODIFY ACKNOWLEDGE; our MODIFY REJECT absorbed
//
// Every NDIS status a cause turns into comes from q2931.StatusForCause (an
// orderly release before the call was up still fails the MakeCall, with
// NDIS_STATUS_FAILURE); every cause a client's status turns into from
// q2931.CauseForStatus. A release by the network reaches the client as
// IncomingCloseCall with the cause's status: NDIS_STATUS_SUCCESS for normal
// clearing (16), NDIS_STATUS_DEST_OUT_OF_ORDER when the link stayed down past
// T309 (27). A client that accepts an offered call with changed parameters
// may lower MaxSduSize (the CONNECT's AAL parameters carry it back; the
// caller's MakeCallComplete shows CALL_PARAMETERS_CHANGED); any other change
// cannot be signalled in UNI 3.1: the call is refused with cause 49 (the
// caller's MakeCall fails with NDIS_STATUS_INCOMPATABLE_QOS) and the
// accepted VC gets IncomingCloseCall with NDIS_STATUS_INCOMPATABLE_QOS.
//
// # Addressing
//
// Each node has an ATM End System Address in one of UNI 3.1's private ATM
// address formats (§5.1.3, Annex A): Config.AddressPrefix, 13 octets of
// AFI, IDI and HO-DSP (ICD 0x47, DCC 0x39 or E.164 0x45; DefaultPrefix,
// ICD 9999, unless configured), then the end system identifier of its name
// (ESI: the first 6 octets of SHA-256 of the name, made a locally
// administered unicast MAC address), then selector 0 (Address). The nodes
// of a cluster share a prefix, so each works out every other's address
// from its name; a peer under another prefix is named in
// Config.PeerPrefixes. A call's destination is "node/service": CallParams
// puts it in CallMgrSpecific (ParamCalledParty); the SETUP carries the
// node's AESA as Called Party Number, this node's as Calling Party Number,
// and the service name in a user-specific BHLI (at most 8 octets). A SAP
// is an address (or "this node") plus that BHLI (ServiceSap;
// SapTypeNSAP); registering a name longer than 8 octets fails with
// NDIS_STATUS_INVALID_DATA, one already registered with
// NDIS_STATUS_SAP_IN_USE. An incoming SETUP that names another address
// (another node's, or this node's ESI under another prefix) or a service
// nobody registered is refused with cause 88 (incompatible destination);
// the caller sees NDIS_STATUS_INVALID_SAP. OID_CO_GET_ADDRESSES returns
// the node's address. The node is dialled by name on the transport (the
// peer is authenticated there); a name the transport does not know fails
// the MakeCall with NDIS_STATUS_INVALID_ADDRESS, one it cannot reach with
// NDIS_STATUS_DEST_OUT_OF_ORDER. Calls to the node itself are not
// supported (NDIS_STATUS_NO_ROUTE_TO_DESTINATION).
//
// # Flowspecs, SDU sizes, reliability
//
// Flowspecs map onto the ATM Traffic Descriptor, Broadband Bearer
// Capability, QoS Parameter and AAL5 parameters as docs/protocol.md §6
// describes (see package q2931's traffic.go: forward = the caller's transmit direction): each
// service type is one of UNI 3.1's combinations of traffic parameters, in
// whole 48-octet cells. A flowspec UNI 3.1 cannot carry (CheckFlowspec: a
// rate or bucket past MaxFlowspecValue, a token rate above the peak) is
// refused with NDIS_STATUS_INVALID_DATA, never clamped; MakeCallComplete
// and ModifyCallQoSComplete carry what was signalled, as the far end reads
// it, flagged CALL_PARAMETERS_CHANGED when that is not what was asked. A
// SETUP whose traffic descriptor is no UNI 3.1 combination is refused with
// cause 73 (the caller sees NDIS_STATUS_INCOMPATABLE_QOS). The
// caller's MaxSduSize of each direction is negotiated against what the path
// carries: at most 65 535 (AAL5), and for a datagram VC the link's
// MaxDatagramPayload when the SETUP goes out. An unspecified size (0 or
// QOS_NOT_SPECIFIED) becomes that limit; a larger one fails the call with
// NDIS_STATUS_AAL_PARAMS_UNSUPPORTED unless the media parameters carry
// ROUND_DOWN_FLOW; changes are flagged CALL_PARAMETERS_CHANGED. Reliable
// delivery (CallParams' reliable, ParamMedia flag MediaReliable) is
// signalled as the AAL5 SSCS type "SSCOP assured operation" and carried on
// a reliable transport stream per VC.
//
// # Connection identifiers
//
// Every call has a connection identifier (VPCI<<16 | VCI) that tags its
// datagrams and reliable stream. The called side allocates it, as the
// network side does at an ATM UNI, and sends it in the CONNECT's
// Connection Identifier IE; the caller learns it before it may send, and
// the callee can send only after CONNECT ACKNOWLEDGE. There is no glare
// although both nodes of a link allocate: the node whose name sorts first
// uses even VPCIs, the other odd ones, so their sets are disjoint (VCIs 0-31
// are reserved, as in ATM). Values count upwards and are not reused until
// the 31-bit space wraps, so a late datagram of an ended call does not reach
// a new one. A multipoint root has one identifier per leaf node, each
// allocated by that node.
//
// # Data
//
// See data.go: each NBL is one SDU, one datagram (or one SDU on the
// reliable stream), completed exactly once: SUCCESS, INVALID_LENGTH above
// the negotiated MaxSduSize or the path's datagram limit (never truncated),
// RESOURCES when the dual token bucket (TokenRate/TokenBucketSize and
// PeakBandwidth, golang.org/x/time/rate) would have to hold it back longer
// than Config.MaxShapingDelay, CLOSING when the call goes away first,
// FAILURE when the transport refuses it. Received SDUs are indicated with
// NdisMCoIndicateReceiveNetBufferLists.
//
// # Link failure
//
// There is one uni.Link per peer node; it outlives transport links. A lost
// transport link is a SAAL failure (uni.Link.LinkDown): calls not yet
// active are cleared at once (cause 27: a pending MakeCall fails with
// DEST_OUT_OF_ORDER, an offered call is closed); active calls are kept for
// T309 while the MCM redials (backing off from 50 ms to 1 s) and their
// clients get a MEDIA_DISCONNECT status indication on the VC; sends fail
// meanwhile. A new transport link within T309 re-establishes the
// association (uni LinkUp: each call is audited with STATUS ENQUIRY), the
// clients get MEDIA_CONNECT and data flows again; otherwise T309 clears the
// calls and each client gets IncomingCloseCall(DEST_OUT_OF_ORDER). When a
// RELEASE of ours goes unanswered twice (T308) the peer may still hold the
// call: the MCM restarts that VC (RESTART, class "indicated VC"); restarts
// of different VCs run side by side, and each ends on the peer's RESTART
// ACKNOWLEDGE, a STATUS saying it does not know the VC, or its late
// RELEASE COMPLETE.
//
// Peers reports each peer's link as an operator sees it (`condis
// peers`): up, connecting (a dial in progress, including the redials
// under T309) or down, since when, the link's round-trip time, the calls
// with the peer, the Q.2931 messages exchanged, and the last error — why
// the link went down, or why the last dial failed.
//
// # Restarts of nodes
//
// A node's first link with a peer in the node's life starts with RESTART
// (class "all VCs"): the peer clears what it still holds from the node's
// earlier incarnation. A link from a new incarnation of the peer (see
// transport.Link.PeerIncarnation) clears every call of the old one at
// once. Either way the clients are told NDIS_STATUS_DEST_OUT_OF_ORDER and
// Cause reports 41. Connect dials a peer ahead of any call, so that a
// restarted node is heard at once (node connects to its configured peers
// when it starts).
//
// # Call control
//
// Every request the MCM makes of the mediator for a call goes through a
// callctl.CM (callctl.MCm: the adapter's NdisMCm* functions), and each
// VC's call state is one callctl.State, changed only by moveLocked
// (callctl.Transitions.Move: the reason is recorded and, with
// Config.Tracer.VcState set, a trace.VcState event emitted). The package's
// tests fail on a transition callctl.State's doc comment does not draw.
//
// # Concurrency
//
// Received signalling is applied link by link in turns of 16 messages,
// first come first served (a flooding link waits behind the others, and
// while it waits its transport stops reading it); a peer whose calls are
// refused faster than Config.RefusalRate is read at that rate.
//
// One mutex guards the MCM's state, every peer's uni.Link and its
// uni.Scheduler (whose timers fire under it). It is never held while the
// mediator or the transport is called: what a uni.Output indicates, and
// every completion or indication the MCM owes the mediator, is queued in
// order and delivered by one goroutine at a time (whichever finds the
// queue idle after changing state: a handler, a transport callback, or a
// goroutine a timer starts); mediator calls that re-enter the MCM's
// handlers only queue more. Signalling leaves through a second queue, in
// order. Handlers that wait for the network return NDIS_STATUS_PENDING and
// complete later. The data path takes only a per-VC lock. Every goroutine
// the MCM starts (dial loops, shaping queues, timer deliveries, delayed VC
// deletions) ends before Shutdown returns.
package mcm
