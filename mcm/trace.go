package mcm

import (
	"time"

	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport"
)

// The MCM's trace events (Config.Tracer). Each is emitted where the thing
// happens, some with d.mu held: hooks must not call the MCM.

// traceSignal reports a message sent to or received from p.
func (d *MCM) traceSignal(p *peer, dir trace.Direction, b []byte) {
	if h := d.cfg.Tracer.Signal; h != nil {
		h(trace.Signal{Time: d.cfg.Tracer.SignalTime(), Node: d.name, Peer: p.name, Dir: dir, Msg: b})
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
