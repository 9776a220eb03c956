package ipvc

import (
	"context"
	"fmt"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Service is the service name IP over condis calls and listens on: a
// node with an [ip] section registers it, and its VCs are calls to
// NODE/ip.
const Service = "ip"

// Calls is what an [Interface] needs from a CoNDIS client: make datagram
// calls to a node's "ip" service, and be offered the calls other nodes make
// to this node's. The node implements it over its mediator (node/ip.go);
// tests use an in-memory fake.
//
// Concurrency: every method may be called from any goroutine. The
// Receiver's methods are called without any lock of the client held and
// must not block: they may call Circuit methods.
type Calls interface {
	// Call makes a datagram call to node's "ip" service with flowspec fs
	// in both directions and waits, until ctx ends, for it to connect or
	// fail. On success rx.Up has been called (with the circuit) before
	// Call returns; rx.Closed is called once when the call ends. A failed
	// call returns a *CallError and calls none of rx's methods.
	Call(ctx context.Context, node string, fs ndis.Flowspec, rx Receiver) error
	// Listen registers the "ip" service. Each call offered to it is
	// passed to accept, which must not block: it returns the Receiver of
	// the call, or nil to refuse it. An accepted call's rx.Up is called
	// once it is connected.
	Listen(accept func(peer string) Receiver) error
}

// Receiver receives the events of one circuit. Receive may be called
// before Up, from another goroutine (the far end may send as soon as it
// has connected); Closed is called once, last.
type Receiver interface {
	// Up hands over the circuit once its call is connected.
	Up(c Circuit)
	// Receive is one SDU that arrived on the circuit: one IP packet. It is
	// valid only until Receive returns.
	Receive(sdu []byte)
	// Closed says the call ended, and why.
	Closed(r CloseReason)
}

// Circuit is a connected datagram VC.
type Circuit interface {
	// Send sends each of sdus as one SDU, in order, all in one list (one
	// NdisCoSendNetBufferLists). Send keeps them (the caller must not
	// change them afterwards). An error means none was sent: the call is
	// closing, or one is larger than MaxSDU.
	Send(sdus ...[]byte) error
	// MaxSDU is the largest SDU the call carries, as negotiated.
	MaxSDU() int
	// Close closes the call (once every send has completed); Closed
	// follows on the Receiver.
	Close()
	// String names the VC ("vc#7"), as `condis calls` shows it.
	String() string
}

// CloseReason says why a call ended.
type CloseReason struct {
	// Status is what NdisClCloseCall or ProtocolClIncomingCloseCall said:
	// NDIS_STATUS_SUCCESS for a normal close.
	Status ndis.Status
	// Cause is the Q.2931 cause behind it, 0 if none.
	Cause uni.Cause
	// ByPeer: the far end or the network ended the call, not this node.
	ByPeer bool
}

func (r CloseReason) String() string {
	who := "this node"
	if r.ByPeer {
		who = "the far end"
	}
	if r.Cause == 0 {
		return fmt.Sprintf("closed by %s: %v", who, r.Status)
	}
	return fmt.Sprintf("closed by %s: %v, cause %v", who, r.Status, r.Cause)
}

// CallError is a call that did not connect: the status
// ProtocolClMakeCallComplete gave, and the Q.2931 cause behind it.
type CallError struct {
	Node   string
	Status ndis.Status
	Cause  uni.Cause
	// Err, if not nil, is a failure before signalling (no such node, the
	// address family is not open, ctx ended).
	Err error
}

func (e *CallError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("call %s/%s: %v", e.Node, Service, e.Err)
	}
	return fmt.Sprintf("call %s/%s failed: %v, cause %v", e.Node, Service, e.Status, e.Cause)
}

func (e *CallError) Unwrap() error { return e.Err }
