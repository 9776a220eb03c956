package node

import (
	"time"

	"github.com/condis-project/condis/ladder"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// Ladder turns an event of a trace stream back into the event package
// ladder draws calls from; ok is false for events a ladder has no use for
// (refused handshakes) or cannot read.
func (ev TraceEvent) Ladder() (e ladder.Event, ok bool) {
	switch ev.Kind {
	case TraceSignal:
		dir := trace.In
		if ev.Dir == trace.Out.String() {
			dir = trace.Out
		}
		return ladder.FromSignal(trace.Signal{Time: ev.Time, Node: ev.Node, Peer: ev.Peer, Dir: dir, Msg: ev.Msg}), len(ev.Msg) > 0
	case TraceCall:
		c := trace.Call{Time: ev.Time, Node: ev.Node, Peer: ev.Peer, Service: ev.Service, VC: ev.Vc,
			Incoming: ev.Incoming, Cause: uni.Cause(ev.Cause), ByPeer: ev.ByPeer, Setup: time.Duration(ev.SetupUs) * time.Microsecond}
		for k := trace.CallOffered; k <= trace.CallReleased; k++ {
			if k.String() == ev.Event {
				c.Event = k
			}
		}
		if c.Event == 0 {
			return ladder.Event{}, false
		}
		c.Status, _ = ndis.ParseStatus(ev.Status)
		if ev.CallRef != nil && ev.Flag != nil {
			c.Ref = uni.CallID{Ref: *ev.CallRef, Local: !*ev.Flag}
		}
		return ladder.FromCall(c), true
	case TraceLink:
		return ladder.FromLink(trace.Link{Time: ev.Time, Node: ev.Node, Peer: ev.Peer, Up: ev.Event == "up", Reason: ev.Reason}), true
	case TraceNdis:
		n := ndis.Event{Seq: ev.Seq, Driver: ev.Driver, Func: ev.Func, Object: ev.Object}
		for k := ndis.EventRequest; k <= ndis.EventRefused; k++ {
			if ndisEventName(k) == ev.Event {
				n.Kind = k
			}
		}
		if n.Kind == 0 {
			return ladder.Event{}, false
		}
		n.Status, _ = ndis.ParseStatus(ev.Status)
		return ladder.FromNDIS(ev.Node, ev.Time, n), true
	}
	return ladder.Event{}, false
}
