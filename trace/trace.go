// Package trace carries typed events out of a running node's layers: the
// Q.2931 messages its call manager sends and receives, its links to peers
// coming and going, refused handshakes, and calls offered, connected,
// refused, failed and released. Tools learn what happened from these
// events, never from log text: metrics count them, captures write the
// messages to pcapng, call ladders draw them beside the mediator's own
// trace (ndis.Options.Trace).
//
// A Tracer is a set of optional hooks; a nil hook costs a nil check. Hooks
// are called synchronously on the goroutine where the event happens, some
// with the emitting layer's lock held: they must be quick, must not block
// and must not call back into that layer. A hook that needs to do more
// hands the event to a goroutine of its own. Every event's slices are the
// emitter's: copy what you keep.
package trace

import (
	"net"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Direction says which way a message went.
type Direction uint8

// Directions. The zero value is not one.
const (
	Out Direction = iota + 1 // sent to the peer
	In                       // received from the peer
)

// String returns "out" or "in".
func (d Direction) String() string {
	switch d {
	case Out:
		return "out"
	case In:
		return "in"
	}
	return "?"
}

// Signal is one Q.2931 message sent to or received from a peer, as it is
// on the wire (received ones before they are decoded: a message that does
// not decode is traced too).
type Signal struct {
	Time time.Time
	Node string // this node
	Peer string
	Dir  Direction
	Msg  []byte // the whole message, header first; the emitter's
}

// Header returns the message type and call reference from the message's
// header, without decoding the rest; ok is false if the header is short or
// not Q.2931's.
func (s Signal) Header() (t uni.MsgType, ref uni.CallRef, ok bool) {
	b := s.Msg
	if len(b) < uni.HeaderLen || b[0] != 0x09 || b[1] != 3 {
		return 0, uni.CallRef{}, false
	}
	ref = uni.CallRef{Flag: b[2]&0x80 != 0, Value: uint32(b[2]&0x7f)<<16 | uint32(b[3])<<8 | uint32(b[4])}
	return uni.MsgType(b[5]), ref, true
}

// Decode decodes the message (uni.Decode).
func (s Signal) Decode() (*uni.Message, error) { return uni.Decode(s.Msg) }

// Link is a link to a peer coming up or going down.
type Link struct {
	Time time.Time
	Node string
	Peer string
	Up   bool
	// Reason says why a link went down (the transport's reason, such as
	// "timeout" or "peer not reading signalling"); Err has the details.
	Reason string
	Err    error
}

// Handshake is a connection that was refused before it became a link: a
// peer that did not authenticate, or one this node does not deal with.
type Handshake struct {
	Time   time.Time
	Node   string
	Remote net.Addr
	Peer   string // the name the remote claimed or was dialled as, if known
	Dialed bool   // this node dialled it
	// ByPeer says the remote refused this node (it sent the TLS alert);
	// otherwise this node refused the remote.
	ByPeer bool
	// Reason says why in words: "unknown authority", "name not a
	// configured peer", "certificate expired", "no certificate", "wrong
	// protocol", ...
	Reason string
	Err    error
}

// CallEvent says what happened to a call.
type CallEvent uint8

// Call events. The zero value is not one.
const (
	CallOffered   CallEvent = iota + 1 // an incoming SETUP (or ADD PARTY) was offered to a client
	CallRefused                        // an incoming call was refused (Cause)
	CallConnected                      // the call is up (caller: MakeCallComplete SUCCESS; callee: CallConnected)
	CallFailed                         // an outgoing call did not come up (Status, Cause if the network gave one)
	CallReleased                       // a call that was up, or offered to a client here, ended (Cause; ByPeer if the peer or the network ended it)
)

var callEventNames = [...]string{
	CallOffered: "offered", CallRefused: "refused", CallConnected: "connected",
	CallFailed: "failed", CallReleased: "released",
}

// String names the event.
func (e CallEvent) String() string {
	if int(e) < len(callEventNames) && callEventNames[e] != "" {
		return callEventNames[e]
	}
	return "?"
}

// Call is an event in a call's life on this node.
type Call struct {
	Time     time.Time
	Node     string
	Peer     string
	Service  string
	VC       string // the VC's handle name ("vc#12"), "" if it has none
	Incoming bool   // the peer called this node
	Event    CallEvent
	Cause    uni.Cause   // for CallRefused, CallFailed and CallReleased; 0 if none
	Status   ndis.Status // for CallFailed and CallReleased: what the client was told
	ByPeer   bool        // CallReleased: the peer (or the network) ended it, not this node's client
	// Setup is how long the call took to come up, NdisClMakeCall to
	// MakeCallComplete (caller's CallConnected only).
	Setup time.Duration
	// Ref is the call on the wire to Peer: its call reference value and
	// whether this node allocated it (Local: this node sent the SETUP).
	// The messages of the call carry it (Signal.Header). Zero if the call
	// never had one (it failed before a SETUP was sent); a
	// point-to-multipoint root's is that of its first leaf node's call.
	Ref uni.CallID
}

// VcState is a change of a VC's state in a call manager's call control
// (package q2931/callctl): from one named state to another, and why.
type VcState struct {
	Time   time.Time
	Node   string
	VC     string // the VC's handle name ("vc#12"), "" before it has one
	From   string // the state left (callctl.State.String)
	To     string // the state entered
	Reason string // what made the call control move: a CoNDIS request, a Q.2931 indication, ...
}

// Tracer is a set of hooks; any may be nil.
type Tracer struct {
	Signal func(Signal)
	// SignalUntimed, if not nil, reports whether Signal would ignore the
	// event's Time if it were called now: a counter of messages does, and
	// so does a feed with no subscriber. The emitter then leaves Time zero
	// (SignalTime) and does not read the clock, which costs more than
	// counting a message. Nil means Signal needs Time.
	SignalUntimed func() bool
	Link          func(Link)
	Handshake     func(Handshake)
	Call          func(Call)
	// CallIgnored, if not nil, reports whether Call would do nothing with
	// an event if it were called now: a feed with no subscriber. The
	// emitter then does not build the event (a clock read, the VC's name,
	// the call manager's lock). Nil means Call wants every event.
	CallIgnored func() bool
	VcState     func(VcState)
}

// CallHook returns t's Call, or nil if there is none or it would ignore
// an event now (CallIgnored).
func (t *Tracer) CallHook() func(Call) {
	if t.Call == nil || (t.CallIgnored != nil && t.CallIgnored()) {
		return nil
	}
	return t.Call
}

// SignalTime is the Time of a Signal event emitted now: the zero Time if
// t's Signal would ignore it (SignalUntimed).
func (t *Tracer) SignalTime() time.Time {
	if t.SignalUntimed != nil && t.SignalUntimed() {
		return time.Time{}
	}
	return time.Now()
}

// Untimed is a SignalUntimed for a Signal hook that never reads Time.
func Untimed() bool { return true }

// Join returns a Tracer that calls each of ts' hooks in turn. Its Signal
// goes without Time only when every joined Signal would, and its Call
// ignores an event only when every joined Call would.
func Join(ts ...Tracer) Tracer {
	var j Tracer
	var untimed, ignored []func() bool
	timed, wanted := false, false
	for _, t := range ts {
		if t.Signal != nil {
			if t.SignalUntimed == nil {
				timed = true
			} else {
				untimed = append(untimed, t.SignalUntimed)
			}
		}
		if t.Call != nil {
			if t.CallIgnored == nil {
				wanted = true
			} else {
				ignored = append(ignored, t.CallIgnored)
			}
		}
		j.Signal = join(j.Signal, t.Signal)
		j.Link = join(j.Link, t.Link)
		j.Handshake = join(j.Handshake, t.Handshake)
		j.Call = join(j.Call, t.Call)
		j.VcState = join(j.VcState, t.VcState)
	}
	if !timed {
		j.SignalUntimed = allTrue(untimed)
	}
	if !wanted {
		j.CallIgnored = allTrue(ignored)
	}
	return j
}

// allTrue is a predicate true when each of fs is (nil for none).
func allTrue(fs []func() bool) func() bool {
	switch len(fs) {
	case 0:
		return nil
	case 1:
		return fs[0]
	}
	return func() bool {
		for _, f := range fs {
			if !f() {
				return false
			}
		}
		return true
	}
}

func join[E any](a, b func(E)) func(E) {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(e E) { a(e); b(e) }
}
