// Package callctl is the CoNDIS <-> Q.2931 call control, written once for
// every call manager of condis: the miniport call manager of the
// integrated topology (package mcm, over NdisMCm*) and the stand-alone
// call manager of the split topology (package cm, over NdisCm*: Cm).
//
// It talks to NDIS through CM, the call-manager side of the mediator
// (MCm is the NdisMCm* one), and keeps each VC's call state as one named
// State that only Transitions.Move changes, recording the Reason and
// emitting a trace.VcState event. VcActivation carries out a VC's
// activations and deactivations whether the CM completes them at once or
// pends them (NdisCmActivateVc through a miniport that returns PENDING),
// one at a time, each completed exactly once.
//
// Assoc is the Q.2931 signalling association with one adjacent peer,
// over a SignallingLink its owner supplies (a transport link's signalling
// stream for mcm, a signalling VC through the miniport for a stand-alone
// CM): the uni.Link, its timers (TimerQueue: one runtime timer per
// association), the calls on it by call reference (each call's record is
// the context of its uni.Link call, so indications carry it) and by
// connection identifier (allocated from disjoint sets on the two ends), the calls
// waiting for the link, and the peer's incarnation, from which LinkUp
// tells a first link (RESTART), a restarted peer (its calls cleared at
// once) and a link back after a loss (the kept calls audited). The owner
// tells it of links up and down and hands it received messages; it
// applies the Outputs that come back.
//
// The call records are here too (calls.go, records.go): Vc, the uni Call
// carrying it, the Party of a multipoint root, the AF, SAP and Offer, and
// the requests Waiting for a link. A call manager embeds Vc in its own VC
// context and fills Vc.Data, the VC's DataPath (mcm's carries data over
// its transport; a stand-alone CM's leaves data to the miniport); a Call
// and a Vc reach their peer through its Assoc, whose Owner is the call
// manager's record of the peer.
//
// Core is the call control itself, written once for every call manager:
// the ProtocolCm* handlers (core_cm.go), what each uni.Link indicates
// (core_signal.go: offers, answers, clearing, parties, QoS, restarts) and
// the outbox and work queue that carry both out without the lock
// (core_send.go). It reaches NDIS only through CM, peers only through
// Assoc, the data path only through each VC's DataPath, and its call
// manager only through Owner (VC records, peering, datagram limits,
// refusal pacing, goroutines). mcm is a shell on it: its ProtocolCm*
// handlers forward to its Core. Still to do (issue 9): each call's
// destination kept apart from the adjacent peer, and the VC's leftover
// flags (QoSPending, PartyEnded, DeleteQueued) folded into its State.
package callctl
