// Package transport is the node-to-node edge of condis: what carries Q.2931
// signalling and VC data between two nodes. It replaces SSCOP/SAAL, the ATM
// signalling AAL.
//
// The package holds only the interface, its concurrency contract and the
// errors shared by its implementations:
//
//   - transport/quic: the real network, one QUIC connection per pair of
//     nodes, mutual TLS 1.3 against the cluster CA;
//   - transport/sim: an in-process network with loss, delay, reordering,
//     "drop or delay message N of type X" hooks and link cuts, in virtual
//     time under testing/synctest.
//
// # Model
//
// An [Endpoint] is one node's attachment. It dials peers by node name and
// accepts their dials; either way the result is one [Link] per pair of nodes,
// whoever dialled and even if both dialled at once. A Link carries:
//
//   - signalling: whole Q.2931 messages, reliable and in order (one stream);
//   - VC data as datagrams, best effort, each tagged with the VC's 4-octet
//     connection identifier (VPCI<<16 | VCI), never fragmented or truncated:
//     a payload over [Link.MaxDatagramPayload] is refused;
//   - VC data on a reliable, ordered stream per connection identifier, for
//     VCs whose media parameters ask for reliable delivery; SDU boundaries
//     are kept.
//
// Losing the link (keepalives unanswered, the peer closing or resetting it)
// is a SAAL failure: the layer above gets [LinkHandler.LinkDown] and, when
// the connection is made again (by either side dialling), a new Link through
// [Handler.LinkUp]. The peer's name is authenticated before any of this: an
// unknown or unauthenticated peer never produces a LinkUp.
//
// # Events and goroutines
//
// Events reach the layer above as calls to the [Handler] given to the
// Endpoint and to the [LinkHandler] that [Handler.LinkUp] returns for each
// link. The contract, which every implementation keeps:
//
//  1. LinkUp is called exactly once per link, before any other call about
//     that link. When Dial returns a link, its LinkUp has returned.
//  2. Per link, LinkDown is called exactly once, after every other callback
//     about that link has returned; nothing about the link is called after
//     it. Every link that had a LinkUp gets a LinkDown, at the latest
//     before [Endpoint.Close] returns.
//  3. A LinkUp for a new link to a peer is called only after the LinkDown of
//     the previous link to that peer has returned.
//  4. Message calls for one link are made one at a time, in the order the
//     peer sent the messages. Datagram calls for one link are made one at a
//     time. StreamData calls for one reliable stream are made one at a time,
//     in order. Calls of different kinds, of different streams and of
//     different links may run concurrently, on goroutines the
//     implementation owns; no callback runs on a goroutine that called into
//     the transport.
//  5. Callbacks own the slices they are given (the transport never reuses
//     them), except a [DataBorrower]'s StreamData SDUs and a
//     [MessageBorrower]'s signalling messages, which are lent. Callbacks
//     should return promptly: a blocked Message or
//     StreamData call stops reading that stream (the peer is then held back
//     by flow control); a blocked Datagram call makes datagrams be dropped.
//  6. Callbacks may call any [Link] method, including Close. They must not
//     call [Endpoint.Dial] or [Endpoint.Close]: those wait for callbacks (a
//     LinkUp, a LinkDown) and would deadlock. Redial from another goroutine,
//     for example a timer's.
//
// Every method of Endpoint and Link is safe for concurrent use. Send methods
// copy what they are given and keep no reference to it. No goroutine started
// by an Endpoint outlives its Close.
//
// # Batches
//
// Two optional interfaces let signalling move in batches when many calls
// are in flight, without changing what is delivered: a Link that is also a
// [BatchSender] takes several messages in one call (and may send them with
// one write), and a LinkHandler that is also a [BatchHandler] may be given
// several received messages in one call. Either way the messages are the
// same, once each and in the same order as with Send and Message one at a
// time; rule 4 above applies to Message and Messages calls together.
//
// # Path information
//
// A Link may also say what it knows of the path to its peer, for tools
// that show it: its round-trip time ([RTTer]) and the peer's network
// address ([RemoteAddresser]).
package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Signalling message sizes a link carries: a Q.2931 message is a 9-octet
// header plus at most 65 535 octets of information elements. The transport
// is the layer below the codec, so the sizes are stated here; package uni's
// tests check that its HeaderLen and MaxMessageLen agree.
const (
	// MinMessageLen is the shortest message: a Q.2931 header.
	MinMessageLen = 9
	// MaxMessageLen is the longest message: the header plus a 16-bit length.
	MaxMessageLen = MinMessageLen + 0xffff
)

// MaxStreamSDU is the largest SDU [Link.SendReliable] carries.
const MaxStreamSDU = 1 << 20

// ConnIDLen is the length of the connection identifier tag in front of every
// VC datagram and at the start of every reliable VC stream.
const ConnIDLen = 4

// Endpoint is one node's attachment to the network of nodes. See the package
// documentation for the concurrency contract.
type Endpoint interface {
	// Name returns this node's name, as its certificate states it.
	Name() string

	// Dial returns the link to the named peer, making the connection if
	// there is none. If there is a link already, or one is being made (by
	// this node or the peer), Dial returns that one: there is one link per
	// pair of nodes. The link's LinkUp has returned when Dial returns. Dial
	// fails with [ErrUnknownPeer] if the peer cannot be found, with an
	// authentication error if the peer is not who it should be, with
	// [ErrClosed] after Close, or with ctx's error.
	Dial(ctx context.Context, peer string) (Link, error)

	// Close closes every link (each gets its LinkDown, with reason
	// [DownEndpointClosed], before Close returns), stops accepting and
	// stops every goroutine of the Endpoint. Further Dials fail with
	// ErrClosed. Close is idempotent.
	Close() error
}

// Handler receives an Endpoint's link events.
type Handler interface {
	// LinkUp reports a new link, dialled or accepted. It returns the
	// handler for that link's traffic and its LinkDown; it must not return
	// nil.
	LinkUp(l Link) LinkHandler
}

// LinkHandler receives one link's traffic and its end.
type LinkHandler interface {
	// Message delivers one signalling message (a whole Q.2931 message,
	// MinMessageLen to MaxMessageLen octets, not yet decoded).
	Message(msg []byte)
	// Datagram delivers one VC datagram's payload and its connection
	// identifier.
	Datagram(connID uint32, payload []byte)
	// StreamData delivers one SDU received on the reliable stream of
	// connection identifier connID.
	StreamData(connID uint32, sdu []byte)
	// LinkDown reports that the link is gone: a SAAL failure for the
	// signalling above. err is a *[LinkDownError].
	LinkDown(err error)
}

// BatchHandler is an optional extension of LinkHandler. An implementation
// that has several signalling messages of a link at hand at once may
// deliver them with one Messages call instead of one Message call each, in
// the order the peer sent them.
type BatchHandler interface {
	LinkHandler
	// Messages delivers msgs, in order, as Message would one at a time.
	// Each message is the handler's; the slice holding them is the
	// transport's and must not be kept after Messages returns.
	Messages(msgs [][]byte)
}

// DataBorrower is an optional extension of LinkHandler, for a handler
// that is done with each SDU by the time StreamData returns (the MCM,
// which indicates received data with NDIS_RECEIVE_FLAGS_RESOURCES, so its
// clients copy it during the indication). Such a handler only borrows the
// slice StreamData gives it, and the transport may lend it its own read
// buffer, overwritten by the next SDU, instead of allocating each SDU —
// an exception to rule 5 above. Datagram slices stay the handler's.
type DataBorrower interface {
	LinkHandler
	// BorrowsStreamData marks the handler; it is never called.
	BorrowsStreamData()
}

// MessageBorrower is an optional extension of LinkHandler, for a handler
// that is done with each signalling message by the time Message or
// Messages returns (the MCM: its Q.2931 link decodes a message and copies
// out what it keeps, and tracers copy what they keep). Such a handler only
// borrows the messages, and the transport may lend them in place from its
// read buffer instead of allocating each — an exception to rule 5 above.
type MessageBorrower interface {
	LinkHandler
	// BorrowsMessages marks the handler; it is never called.
	BorrowsMessages()
}

// BatchSender is an optional extension of Link: several signalling
// messages in one call.
type BatchSender interface {
	// SendBatch sends msgs as Send would one after the other (whole, once
	// and in order, and after the messages of Send and SendBatch calls
	// that returned before it was called). If any message has a length
	// Send refuses, nothing is sent. After an error some of msgs may have
	// been sent.
	SendBatch(msgs [][]byte) error
}

// RTTer is an optional extension of Link: the round-trip time of the path
// to the peer, for people (`condis peers`), never for protocol timers.
type RTTer interface {
	// RTT returns the smoothed round-trip time the link has measured
	// (RFC 9002 smoothed_rtt for QUIC), or 0 if it has none.
	RTT() time.Duration
}

// RemoteAddresser is an optional extension of Link: the network address
// of the peer's end of the link.
type RemoteAddresser interface {
	// RemoteAddr returns the address the link was dialled at or accepted
	// from.
	RemoteAddr() net.Addr
}

// Link is the association with one peer. See the package documentation for
// the concurrency contract. After the link is down every send method fails
// with an error that matches [ErrLinkDown].
type Link interface {
	// Peer returns the peer's authenticated node name.
	Peer() string
	// PeerIncarnation identifies the peer's running instance: it is the
	// same for every link to one instance and differs when the peer has
	// restarted (a new process, or its endpoint created again). Never 0.
	PeerIncarnation() uint64

	// Send sends one signalling message. Messages are delivered whole,
	// once and in order (the order of Send calls that do not overlap). msg
	// must be MinMessageLen to MaxMessageLen octets. Send never waits for
	// the peer: what the peer does not take yet is queued, and a link
	// whose peer stops taking it with the queue full (or lets it reach a
	// hard bound) is closed, with reason [DownOverflow], so that one
	// stalled peer holds up nothing but its own link.
	Send(msg []byte) error

	// SendDatagram sends payload as one datagram tagged with connID. It is
	// best effort: the datagram may be lost, duplicated never, reordered
	// possibly. A payload longer than MaxDatagramPayload fails with a
	// *[DatagramTooLargeError] (matching [ErrDatagramTooLarge]) and
	// nothing is sent. SendDatagram may block briefly while the local send
	// queue is full (pacing), never on the peer.
	SendDatagram(connID uint32, payload []byte) error

	// MaxDatagramPayload is the longest payload SendDatagram accepts now,
	// after the connection identifier tag. It is what the path carries in
	// one packet; it may grow (path MTU discovery) and, rarely, shrink, so
	// negotiate SDU sizes against it at call setup and re-check on error.
	MaxDatagramPayload() int

	// SendReliable sends one SDU (at most MaxStreamSDU octets) on the
	// reliable stream of connID, opening that stream on first use. SDUs of
	// one connID arrive whole, once and in order; different connIDs do not
	// hold each other up. SendReliable may block on flow control.
	SendReliable(connID uint32, sdu []byte) error

	// CloseReliable ends this side's reliable stream of connID, after the
	// SDUs already sent. A later SendReliable with the same connID opens a
	// new stream. Closing a stream that is not open does nothing.
	CloseReliable(connID uint32) error

	// Close closes the link: the peer gets its LinkDown with reason
	// [DownClosedByPeer], this side with [DownClosedLocally]. Close does
	// not wait for the LinkDown call (it may be called from a callback).
	// Close is idempotent.
	Close() error
}

// Errors.
var (
	// ErrClosed: the Endpoint is closed.
	ErrClosed = errors.New("transport: endpoint closed")
	// ErrUnknownPeer: Dial was given a name it cannot reach.
	ErrUnknownPeer = errors.New("transport: unknown peer")
	// ErrUnreachable: the peer's node is known but cannot be reached.
	ErrUnreachable = errors.New("transport: peer unreachable")
	// ErrLinkDown: a send on a link that is down.
	ErrLinkDown = errors.New("transport: link down")
	// ErrDatagramTooLarge: matched by every *DatagramTooLargeError.
	ErrDatagramTooLarge = errors.New("transport: datagram too large")
	// ErrMessageSize: a signalling message or reliable SDU of a length
	// that cannot be sent.
	ErrMessageSize = errors.New("transport: message size out of range")
)

// DatagramTooLargeError reports a datagram payload over the link's limit.
type DatagramTooLargeError struct {
	Size int // the payload offered
	Max  int // MaxDatagramPayload at the time
}

func (e *DatagramTooLargeError) Error() string {
	return "transport: datagram payload of " + strconv.Itoa(e.Size) + " octets over the path's limit of " + strconv.Itoa(e.Max)
}

// Is makes every DatagramTooLargeError match ErrDatagramTooLarge.
func (e *DatagramTooLargeError) Is(target error) bool { return target == ErrDatagramTooLarge }

// DownReason says why a link went down. The zero value is not a reason.
type DownReason uint8

// Reasons. Every one of them is a SAAL failure to the signalling above; they
// differ in what an operator is told.
const (
	DownTimeout        DownReason = iota + 1 // no packet from the peer within the idle timeout: dead peer or path
	DownClosedLocally                        // Link.Close on this side
	DownClosedByPeer                         // the peer closed the link or its endpoint
	DownEndpointClosed                       // Endpoint.Close on this side
	DownSuperseded                           // the peer connected again (it restarted); the new link replaces this one
	DownReset                                // the peer no longer knows the connection (stateless reset)
	DownProtocol                             // the peer broke the framing or the protocol (or this side did)
	DownNetwork                              // the local socket failed, or another transport error
	DownOverflow                             // the peer did not take its signalling: this side's queue for it overflowed
)

var downReasonNames = [...]string{
	DownTimeout:        "timeout",
	DownClosedLocally:  "closed locally",
	DownClosedByPeer:   "closed by peer",
	DownEndpointClosed: "endpoint closed",
	DownSuperseded:     "superseded",
	DownReset:          "reset by peer",
	DownProtocol:       "protocol error",
	DownNetwork:        "network error",
	DownOverflow:       "peer not reading signalling",
}

func (r DownReason) String() string {
	if int(r) < len(downReasonNames) && downReasonNames[r] != "" {
		return downReasonNames[r]
	}
	return "DownReason(" + strconv.Itoa(int(r)) + ")"
}

// LinkDownError is the error LinkDown reports, and the one sends on a dead
// link return (it matches ErrLinkDown).
type LinkDownError struct {
	Peer   string
	Reason DownReason
	Err    error // what the implementation saw, if anything
}

func (e *LinkDownError) Error() string {
	s := "transport: link to " + e.Peer + " down: " + e.Reason.String()
	if e.Err != nil {
		// An underlying error that starts with the reason ("timeout: no
		// recent network activity") does not say it twice.
		s += ": " + strings.TrimPrefix(e.Err.Error(), e.Reason.String()+": ")
	}
	return s
}

// Unwrap returns the underlying error.
func (e *LinkDownError) Unwrap() error { return e.Err }

// Is makes every LinkDownError match ErrLinkDown.
func (e *LinkDownError) Is(target error) bool { return target == ErrLinkDown }

// CheckMessage returns an error matching ErrMessageSize unless msg has a
// length Send accepts.
func CheckMessage(msg []byte) error {
	if len(msg) < MinMessageLen || len(msg) > MaxMessageLen {
		return fmt.Errorf("%w: signalling message of %d octets (want %d to %d)", ErrMessageSize, len(msg), MinMessageLen, MaxMessageLen)
	}
	return nil
}

// CheckSDU returns an error matching ErrMessageSize unless sdu has a length
// SendReliable accepts.
func CheckSDU(sdu []byte) error {
	if len(sdu) > MaxStreamSDU {
		return fmt.Errorf("%w: reliable SDU of %d octets (at most %d)", ErrMessageSize, len(sdu), MaxStreamSDU)
	}
	return nil
}

// LinkFuncs is a LinkHandler made of functions; a nil function ignores its
// event. Handy in tests and small programs.
type LinkFuncs struct {
	OnMessage    func(msg []byte)
	OnDatagram   func(connID uint32, payload []byte)
	OnStreamData func(connID uint32, sdu []byte)
	OnLinkDown   func(err error)
}

// Message calls OnMessage.
func (f *LinkFuncs) Message(msg []byte) {
	if f.OnMessage != nil {
		f.OnMessage(msg)
	}
}

// Datagram calls OnDatagram.
func (f *LinkFuncs) Datagram(connID uint32, payload []byte) {
	if f.OnDatagram != nil {
		f.OnDatagram(connID, payload)
	}
}

// StreamData calls OnStreamData.
func (f *LinkFuncs) StreamData(connID uint32, sdu []byte) {
	if f.OnStreamData != nil {
		f.OnStreamData(connID, sdu)
	}
}

// LinkDown calls OnLinkDown.
func (f *LinkFuncs) LinkDown(err error) {
	if f.OnLinkDown != nil {
		f.OnLinkDown(err)
	}
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(l Link) LinkHandler

// LinkUp calls f.
func (f HandlerFunc) LinkUp(l Link) LinkHandler { return f(l) }
