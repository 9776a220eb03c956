package mcm

import (
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/uni"
)

// The MCM's trace events (Config.Tracer). Each is emitted where the thing
// happens, some with d.mu held: hooks must not call the MCM.

// traceSignal reports a message sent to or received from p.
func (d *MCM) traceSignal(p *peer, dir trace.Direction, b []byte) {
	if h := d.cfg.Tracer.Signal; h != nil {
		h(trace.Signal{Time: time.Now(), Node: d.name, Peer: p.name, Dir: dir, Msg: b})
	}
}

// traceLink reports a link to p coming up (err nil) or going down.
func (d *MCM) traceLink(p *peer, up bool, err error) {
	h := d.cfg.Tracer.Link
	if h == nil {
		return
	}
	e := trace.Link{Time: time.Now(), Node: d.name, Peer: p.name, Up: up, Err: err}
	if de, ok := err.(*transport.LinkDownError); ok {
		e.Reason = de.Reason.String()
	}
	h(e)
}

// traceCall reports an event of v's call; d.mu is not held. A cause of 0
// is looked up among the causes noted for v.
func (d *MCM) traceCall(v *vc, ev trace.CallEvent, cause uni.Cause, st ndis.Status, byPeer bool) {
	h := d.cfg.Tracer.Call
	if h == nil {
		return
	}
	d.mu.Lock()
	e := d.callEventLocked(v, ev, cause, st, byPeer)
	d.mu.Unlock()
	h(e)
}

// traceCallLocked is traceCall with d.mu held.
func (d *MCM) traceCallLocked(v *vc, ev trace.CallEvent, cause uni.Cause, st ndis.Status, byPeer bool) {
	if h := d.cfg.Tracer.Call; h != nil {
		h(d.callEventLocked(v, ev, cause, st, byPeer))
	}
}

// callEventLocked builds the event: v's fields and the causes map are
// guarded by d.mu.
func (d *MCM) callEventLocked(v *vc, ev trace.CallEvent, cause uni.Cause, st ndis.Status, byPeer bool) trace.Call {
	e := trace.Call{Time: time.Now(), Node: d.name, Service: v.Service.String(), Incoming: v.Incoming,
		Event: ev, Cause: cause, Status: st, ByPeer: byPeer}
	if v.Assoc != nil {
		e.Peer = v.Assoc.Peer()
	}
	if v.Call != nil {
		e.Ref = v.Call.ID
	}
	if v.Handle != nil {
		e.VC = v.Handle.String()
		if e.Cause == 0 {
			e.Cause = d.causes[v.Handle]
		}
	}
	if ev == trace.CallConnected && !v.Incoming && v.MadeAt != 0 {
		e.Setup = e.Time.Sub(d.started) - v.MadeAt
	}
	return e
}

// traceRefused reports an incoming call (id) refused before it had a VC.
func (d *MCM) traceRefused(p *peer, id uni.CallID, service string, cause uni.Cause) {
	if h := d.cfg.Tracer.Call; h != nil {
		h(trace.Call{Time: time.Now(), Node: d.name, Peer: p.name, Service: service, Incoming: true,
			Event: trace.CallRefused, Cause: cause, Ref: id})
	}
}
