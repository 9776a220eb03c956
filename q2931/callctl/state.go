package callctl

import (
	"strconv"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
)

// State is the call state of a VC as the call control sees it: one named
// state, changed only by Transitions.Move, which records why and emits a
// trace.VcState event. The zero value is not a state.
//
// A VC the client created (outgoing):
//
//	Idle ──ProtocolCmMakeCall (SETUP)──▶ Calling
//	Calling ──CONNECT, VC activated, MakeCallComplete(SUCCESS)──▶ Active
//	Calling ──RELEASE (COMPLETE) / T303 / link loss / no route, MakeCallComplete(failure)──▶ Idle
//
// A VC the call manager created for a SETUP or ADD PARTY (incoming):
//
//	(created, activated, NdisMCmDispatchIncomingCall) ──▶ Offered
//	Offered ──the client accepts (CONNECT)──▶ Accepted ──CONNECT ACKNOWLEDGE, CallConnected──▶ Active
//	Offered ──the client accepts an added party (ADD PARTY ACKNOWLEDGE)──▶ Active
//	Offered ──the client refuses, or the offer fails──▶ Idle (deactivated and deleted)
//
// Either, once a call exists:
//
//	Offered, Accepted, Active ──the network ends it: IncomingCloseCall──▶ Released
//	Accepted, Active ──ProtocolCmCloseCall──▶ Closing
//	Released ──ProtocolCmCloseCall──▶ ClosingReleased
//	Closing, ClosingReleased ──the network part is over──▶ Finishing
//	Finishing ──data drained, VC deactivated, CloseCallComplete──▶ Idle
//
// An incoming VC is deleted once Idle again.
type State uint8

// The call states of a VC.
const (
	// Idle: no call. A client's VC before its MakeCall and after its
	// close; an incoming VC about to be deleted.
	Idle State = iota + 1
	// Calling: the client's MakeCall is pending; the SETUP is out (or
	// waits for the link to the peer).
	Calling
	// Offered: an incoming call was dispatched to the client, which has
	// not answered yet.
	Offered
	// Accepted: the client accepted an incoming call; CONNECT is out,
	// CONNECT ACKNOWLEDGE not in yet.
	Accepted
	// Active: the call is up.
	Active
	// Released: the network ended the call and the client was told
	// (IncomingCloseCall); its CloseCall is awaited.
	Released
	// Closing: the client closed a call that was up (ProtocolCmCloseCall);
	// the network part of the close is in progress.
	Closing
	// ClosingReleased: the client closed a call the network had ended
	// (its answer to IncomingCloseCall).
	ClosingReleased
	// Finishing: the network part of a close is over; the VC's data is
	// drained, it is deactivated and CloseCallComplete follows.
	Finishing

	numStates
)

var stateNames = [numStates]string{
	Idle: "idle", Calling: "calling", Offered: "offered", Accepted: "accepted", Active: "active",
	Released: "released", Closing: "closing", ClosingReleased: "closing-released", Finishing: "finishing",
}

// String names the state as `condis calls` shows it.
func (s State) String() string {
	if s > 0 && s < numStates {
		return stateNames[s]
	}
	return "state " + strconv.Itoa(int(s))
}

// IsClosing reports whether the client has closed the call (its
// CloseCall is in progress).
func (s State) IsClosing() bool { return s == Closing || s == ClosingReleased || s == Finishing }

// Ended reports whether the call is ended or ending for the client: the
// network released it, or the client closed it.
func (s State) Ended() bool { return s == Released || s.IsClosing() }

// legal lists, for each state, the states a VC may move to from it, as
// State's doc comment draws them.
var legal = [numStates][]State{
	Idle:            {Calling, Offered},
	Calling:         {Active, Idle},
	Offered:         {Accepted, Active, Released, Idle},
	Accepted:        {Active, Released, Closing},
	Active:          {Released, Closing},
	Released:        {ClosingReleased},
	Closing:         {Finishing},
	ClosingReleased: {Finishing},
	Finishing:       {Idle},
}

// Legal reports whether a VC may move from one state to another (State's
// doc comment). The zero state may move to Idle (a VC just created) and to
// Offered (one created for an incoming call).
func Legal(from, to State) bool {
	if from == 0 {
		return to == Idle || to == Offered
	}
	if from >= numStates {
		return false
	}
	for _, s := range legal[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Reason is why a VC changed state: the CoNDIS request, Q.2931 indication
// or local event that moved it. The zero value is not a reason.
type Reason uint8

// Reasons for a VC's transitions.
const (
	ReasonCreated        Reason = iota + 1 // the VC was created (ProtocolCoCreateVc, or for an incoming call)
	ReasonMakeCall                         // ProtocolCmMakeCall
	ReasonSetupFailed                      // the MakeCall could not be signalled
	ReasonConnect                          // CONNECT received: the call is up
	ReasonCallFailed                       // the call did not come up: RELEASE (COMPLETE), T303, link loss, no route
	ReasonOffer                            // an incoming SETUP or ADD PARTY was dispatched to the client
	ReasonOfferFailed                      // the incoming call could not be offered (the VC could not be made ready)
	ReasonAccepted                         // the client accepted the incoming call
	ReasonRefused                          // the client refused the incoming call
	ReasonConnectAck                       // CONNECT ACKNOWLEDGE (or the added party's ADD PARTY ACKNOWLEDGE): CallConnected
	ReasonNetworkRelease                   // the peer or the network ended the call: IncomingCloseCall
	ReasonClientClose                      // ProtocolCmCloseCall
	ReasonNetworkDone                      // the network part of a close is over
	ReasonCloseComplete                    // data drained, the VC deactivated: CloseCallComplete
	ReasonDisposed                         // an incoming VC whose call did not come up is let go

	numReasons
)

var reasonNames = [numReasons]string{
	ReasonCreated: "created", ReasonMakeCall: "MakeCall", ReasonSetupFailed: "setup failed",
	ReasonConnect: "CONNECT", ReasonCallFailed: "call failed", ReasonOffer: "IncomingCall",
	ReasonOfferFailed: "offer failed", ReasonAccepted: "accepted", ReasonRefused: "refused",
	ReasonConnectAck: "CallConnected", ReasonNetworkRelease: "IncomingCloseCall", ReasonClientClose: "CloseCall",
	ReasonNetworkDone: "released on the network", ReasonCloseComplete: "CloseCallComplete", ReasonDisposed: "disposed",
}

// String names the reason.
func (r Reason) String() string {
	if r > 0 && r < numReasons {
		return reasonNames[r]
	}
	return "reason " + strconv.Itoa(int(r))
}

// VC is the call control's state of one VC: its State and the Reason of
// the transition into it. It is guarded by its owner's lock.
type VC struct {
	state  State
	reason Reason
}

// State returns the VC's state.
func (v *VC) State() State { return v.state }

// Reason returns why the VC entered its state.
func (v *VC) Reason() Reason { return v.reason }

// Transitions moves VCs between states for one call manager: the one
// place a VC's state changes. The zero value is ready to use and traces
// nothing.
type Transitions struct {
	// Node names the node in the events.
	Node string
	// Trace, if set, receives every transition (trace.Tracer.VcState).
	// It is called with the call manager's lock held: it must not call
	// the call manager or block.
	Trace func(trace.VcState)
	// Illegal, if set, is told of a transition State's doc comment does
	// not draw; the transition is made all the same (the call control
	// never stops a call half way), so that a test can fail on it.
	Illegal func(vc *ndis.Vc, from, to State, why Reason)
}

// Move moves v, the state of the VC h (nil before it has a handle), to
// state to for reason why, and emits the event. Moving a VC to the state
// it is in records the reason and emits nothing.
func (t *Transitions) Move(v *VC, h *ndis.Vc, to State, why Reason) {
	from := v.state
	v.reason = why
	if from == to {
		return
	}
	v.state = to
	if !Legal(from, to) && t.Illegal != nil {
		t.Illegal(h, from, to, why)
	}
	if t.Trace != nil {
		e := trace.VcState{Time: time.Now(), Node: t.Node, To: to.String(), Reason: why.String()}
		if from != 0 {
			e.From = from.String()
		}
		if h != nil {
			e.VC = h.String()
		}
		t.Trace(e)
	}
}
