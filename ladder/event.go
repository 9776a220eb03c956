// Package ladder draws each call as a sequence chart with both of its
// layers side by side: the CoNDIS requests and handlers on a node (the
// mediator's trace, ndis.Options.Trace: a client calls NdisClMakeCall, NDIS
// invokes the call manager's ProtocolCmMakeCall, ...) beside the Q.2931
// messages the node's call manager exchanges with its peers (package trace:
// SETUP, CONNECT, RELEASE with its cause, ...), in time order — like
// sngrep, but with both layers.
//
// Events go in as Event values (FromNDIS, FromSignal, FromCall, FromLink,
// or Hooks for a running node); a Collector sorts them into calls, and
// each call comes out as a Ladder, drawn as fixed-width text (WriteText)
// or as a Mermaid sequenceDiagram (WriteMermaid). A Writer draws each call
// of a live stream once it is over.
//
// A call is found on the CoNDIS side by its VC handle ("vc#12", and the
// parties added on it) and on the wire by its call reference between two
// nodes; trace.Call events, which carry both, join the two, and a SETUP
// sent while an NdisClMakeCall or NdisClAddParty is outstanding on the node
// belongs to that request's VC (a point-to-multipoint call's further leaf
// nodes). Events of several nodes may go into one Collector: a call between
// two traced nodes is then one chart with both nodes' layers, each message
// drawn once, from sender to receiver. Events that belong to no call
// (address families, SAPs, the restart of a link) are left out.
package ladder

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
)

// Event is one thing that happened on a node, as a ladder reads it. Exactly
// one of NDIS, Signal, Call and Link is set.
type Event struct {
	Time time.Time
	Node string // the node it happened on

	NDIS   *ndis.Event   // a step of the node's mediator trace
	Signal *trace.Signal // a Q.2931 message sent or received
	Call   *trace.Call   // what happened to a call, said by the call manager
	Link   *trace.Link   // a link to a peer came up or went down
}

// FromNDIS makes an Event of a mediator trace event on node at t (the
// mediator's events carry no time of their own).
func FromNDIS(node string, t time.Time, e ndis.Event) Event {
	return Event{Time: t, Node: node, NDIS: &e}
}

// FromSignal makes an Event of a Q.2931 message, copying the message (the
// trace's slices are the emitter's).
func FromSignal(s trace.Signal) Event {
	s.Msg = slices.Clone(s.Msg)
	return Event{Time: s.Time, Node: s.Node, Signal: &s}
}

// FromCall makes an Event of a call event.
func FromCall(c trace.Call) Event { return Event{Time: c.Time, Node: c.Node, Call: &c} }

// FromLink makes an Event of a link event.
func FromLink(l trace.Link) Event { return Event{Time: l.Time, Node: l.Node, Link: &l} }

// Hooks returns a mediator trace hook (for ndis.Options.Trace or
// node.StartOptions.Trace) and a Tracer (for mcm.Config.Tracer or
// node.StartOptions.Tracer) that hand node's events to add as Events,
// stamped and copied. add is called on the emitting goroutine, sometimes
// with the call manager's lock held: it must be quick and must not call
// into the node (Collector.Add under a mutex is).
func Hooks(node string, add func(Event)) (func(ndis.Event), trace.Tracer) {
	return func(e ndis.Event) { add(FromNDIS(node, time.Now(), e)) },
		trace.Tracer{
			Signal: func(s trace.Signal) { add(FromSignal(s)) },
			Call:   func(c trace.Call) { add(FromCall(c)) },
			Link:   func(l trace.Link) { add(FromLink(l)) },
		}
}

// SignalLabel names a Q.2931 message as a ladder labels its arrow: the
// message type, the call reference as on the wire (value/flag), and what
// matters of its contents — the service a SETUP or ADD PARTY calls, the
// endpoint reference of a party message, the cause. For example
// "RELEASE cr=0x1/1 cause normal call clearing (16)".
func SignalLabel(s trace.Signal) string {
	t, ref, ok := s.Header()
	if !ok {
		return fmt.Sprintf("not a Q.2931 message (%d octets)", len(s.Msg))
	}
	var b strings.Builder
	b.WriteString(t.String())
	b.WriteString(" ")
	b.WriteString(ref.String())
	m, err := s.Decode()
	if err != nil {
		fmt.Fprintf(&b, " (does not decode: %v)", err)
		return b.String()
	}
	if m.BHLI != nil {
		if svc, ok := m.BHLI.ServiceName(); ok {
			b.WriteString(" service " + svc)
		}
	}
	if m.EndpointRef != nil {
		fmt.Fprintf(&b, " ep %d", m.EndpointRef.Value)
	}
	if c, ok := m.Cause(); ok {
		b.WriteString(" cause " + c.String())
	}
	return b.String()
}

// CallLabel says what a call event tells, as a ladder notes it: "call
// connected to beta/echo, setup 12.3 ms", "call offered from alpha,
// service echo", "call released by the network: normal call clearing
// (16), NDIS_STATUS_SUCCESS", ...
func CallLabel(c trace.Call) string {
	var b strings.Builder
	b.WriteString("call ")
	b.WriteString(c.Event.String())
	switch {
	case c.Event == trace.CallReleased && c.ByPeer:
		b.WriteString(" by the network")
	case c.Event == trace.CallReleased:
		b.WriteString(" by the client")
	case c.Incoming:
		fmt.Fprintf(&b, " from %s, service %s", c.Peer, c.Service)
	default:
		fmt.Fprintf(&b, " to %s/%s", c.Peer, c.Service)
	}
	if c.Setup > 0 {
		fmt.Fprintf(&b, ", setup %.1f ms", ms(c.Setup))
	}
	var why []string
	if c.Cause != 0 {
		why = append(why, c.Cause.String())
	}
	if c.Event == trace.CallFailed || c.Event == trace.CallReleased || (c.Event == trace.CallRefused && c.Status != 0) {
		why = append(why, c.Status.String())
	}
	if len(why) > 0 {
		b.WriteString(": " + strings.Join(why, ", "))
	}
	return b.String()
}

// LinkLabel says what a link event tells: "link to gamma up", "link to
// gamma down: timeout".
func LinkLabel(l trace.Link) string {
	if l.Up {
		return "link to " + l.Peer + " up"
	}
	s := "link to " + l.Peer + " down"
	switch {
	case l.Reason != "":
		s += ": " + l.Reason
	case l.Err != nil:
		s += ": " + l.Err.Error()
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
