// Package callctl is the CoNDIS <-> Q.2931 call control, written once for
// every call manager of condis: the miniport call manager of the
// integrated topology (package mcm, over NdisMCm*) and the stand-alone
// call manager of the split topology (over NdisCm*, to come).
//
// It talks to NDIS through CM, the call-manager side of the mediator
// (MCm is the NdisMCm* one), and keeps each VC's call state as one named
// State that only Transitions.Move changes, recording the Reason and
// emitting a trace.VcState event. VcActivation carries out a VC's
// activations and deactivations whether the CM completes them at once or
// pends them (NdisCmActivateVc through a miniport that returns PENDING),
// one at a time, each completed exactly once.
//
// What is here so far: CM and MCm, the VC State machine with its
// transitions and events, and VcActivation — mcm's VCs use all three: its
// calls' activations and deactivations go through a VcActivation, so they
// work when a CM pends them (mcm's tests pend them both ways). The Q.2931 side — applying a uni.Link's Output
// (messages, timers, indications) to NDIS through CM, over a signalling
// link interface, with the destination kept apart from the adjacent peer —
// is still in package mcm (signal.go, cm.go) and moves here next; see
// issue 9.
package callctl
