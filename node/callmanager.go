package node

import "github.com/condis-project/condis/clientcore"

// CallManager is what the control plane needs from the node's call
// manager: the adapter to bind to, the address family to open, and the
// AF-specific encodings of destinations and SAPs — the one client core's
// (clientcore.CallManager). It lets [Control] run over the in-memory MCM
// (memdrv.CallManager) as over the real one. A call manager that
// remembers the cause it received says it in Cause; others map the status
// (q2931.CauseForStatus).
type CallManager = clientcore.CallManager

// Endpoints are the far end of a call: the peer node and the service
// called (the caller's side) or calling into (the callee's side).
type Endpoints struct{ Peer, Service string }

// CallDescriber is implemented by call managers that know the far end of
// the calls on their VCs, whoever the client: `condis calls` shows them for
// every VC of the node, not only the control plane's own.
type CallDescriber interface {
	// Endpoints maps VC handles (as ndis names them: "vc#7") to the far
	// end of their calls.
	Endpoints() map[string]Endpoints
}

// AddressReporter is implemented by call managers whose node has an
// address of its own (the Q.2931 call manager: its ATM End System
// Address); the answer to "calls" carries it.
type AddressReporter interface {
	// NodeAddress is the node's address as people read it.
	NodeAddress() string
}

// nodeAddress is cm's NodeAddress, or "" if it has none.
func nodeAddress(cm CallManager) string {
	if r, ok := cm.(AddressReporter); ok {
		return r.NodeAddress()
	}
	return ""
}

// DeferredWork is implemented by call managers whose deferred work runs
// only when asked: the in-memory MCM's Loop, which stands in for DPCs and
// work items (completions of pended requests, and work that must run after
// the request that queued it has returned). [Control] calls RunDeferred on
// its worker goroutine, after each request it makes and whenever it is
// woken, never from a handler and never while a request of its own is in
// progress. That is what memdrv's Loop assumes: its items run after the
// request that queued them has returned (a VC is deleted only once its
// close has finished).
type DeferredWork interface {
	RunDeferred()
}
