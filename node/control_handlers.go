package node

import (
	"errors"
	"fmt"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/q2931"
)

// The Control's handlers of the Core's events: what happens to the VCs and
// SAPs of its sessions and bench runs. The Core calls them with its lock
// held (but for Received and SendsCompleted); each takes the Control's
// lock after it, records what happened and queues frames for the session's
// writer. None blocks, and none calls a Core method that takes the Core's
// lock: they close calls and add parties with the methods that only queue
// work for the Core's worker.

// --- a VC's handler ---

// Connected: the call is up. A call session's further leaves are added
// now; an incoming call's listen session is told, and an echo listener
// sends back what it held.
func (cv *ctlVc) Connected(v *clientcore.VC, f *clientcore.Flows) {
	c := cv.s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	cv.connected, cv.wasUp = true, true
	cv.flows = f
	cv.maxSDU = int32(maxSDU(f))
	if v.Multipoint() && !cv.incoming {
		c.addMoreLocked(cv, v)
	}
	s := cv.s
	if s == nil || !cv.incoming {
		c.notifyLocked()
		return
	}
	ev := Event{Event: EventCall, Vc: v.Name(), Peer: v.Peer()}
	if s.tagged {
		if f != nil {
			ev.Tx, ev.Rx = FlowspecOf(f.Tx), FlowspecOf(f.Rx)
		}
		ev.MaxSDU, ev.Reliable = int(cv.maxSDU), cv.reliable
		s.byName[v.Name()] = cv
	}
	s.out.pushEvent(ev)
	if m := cv.more; m != nil && len(m.held) > 0 {
		held := m.held
		m.held = nil
		if s.tagged {
			pushVcData(s, v.Name(), held)
		} else {
			c.core.Defer(func() { v.Send(held...) }) // what arrived before the call was up
		}
	}
	c.notifyLocked()
}

// Received queues the SDUs for the session, or echoes them.
func (cv *ctlVc) Received(v *clientcore.VC, sdus [][]byte) {
	c := cv.s.c
	c.mu.Lock()
	s := cv.s
	if s == nil {
		c.mu.Unlock()
		return
	}
	if s.echo {
		if !cv.connected {
			// The caller may send once it has our CONNECT; we may send only
			// once CallConnected says the call is up. Hold the SDUs until
			// then, a bounded few.
			cv.holdLocked(sdus)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		v.Send(sdus...) // refused once the call is going away: dropped
		return
	}
	if s.tagged && !cv.connected {
		// Not yet told of the call (its call event comes at CallConnected):
		// hold what the caller sent first, a bounded few, as an echo
		// listener does.
		cv.holdLocked(sdus)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if s.tagged {
		pushVcData(s, v.Name(), sdus)
		return
	}
	for _, d := range sdus {
		s.out.pushData(d)
	}
}

// pushVcData queues SDUs received on call vc for a tagged listen session.
func pushVcData(s *session, vc string, sdus [][]byte) {
	for _, d := range sdus {
		s.out.push(Frame{Type: FrameVcData, Payload: AppendVcData(make([]byte, 0, 1+len(vc)+len(d)), vc, d)})
	}
}

// maxHeldSDUs bounds the SDUs an echo or tagged listener holds for a call
// that is accepted but not yet connected.
const maxHeldSDUs = 64

// SendsCompleted: the Core counts sends; nothing to do.
func (cv *ctlVc) SendsCompleted(*clientcore.VC, int) {}

// QoSChanged tells the session the call's new flowspecs.
func (cv *ctlVc) QoSChanged(v *clientcore.VC, f clientcore.Flows) {
	c := cv.s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	cv.flows = &f
	if !cv.incoming {
		cv.maxSDU = int32(maxSDU(&f))
	}
	if s := cv.s; s != nil {
		s.out.pushEvent(Event{Event: EventQoS, Vc: v.Name(), Peer: v.Peer(), Tx: FlowspecOf(f.Tx), Rx: FlowspecOf(f.Rx)})
	}
}

// PartyDropped tells the session a leaf went, unless it went with the call.
func (cv *ctlVc) PartyDropped(p *clientcore.Party, e clientcore.PartyEnd) {
	c := cv.s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := cv.s; s != nil && !e.CallClosing {
		info := dropInfo(p, e)
		s.out.pushEvent(Event{Event: EventPartyDropped, Vc: p.VC().Name(), Peer: nodeOf(p.Dest()), Party: p.Name(), Dest: p.Dest(), CloseInfo: &info})
	}
	c.notifyLocked()
}

// Closed: the VC is gone. A call session ends with it (or learns its call
// failed); a listen session is told; a bench run starts its next call.
func (cv *ctlVc) Closed(v *clientcore.VC, e clientcore.End) {
	c := cv.s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	cv.connected = false
	s := cv.s
	c.notifyLocked()
	if s == nil {
		return
	}
	switch s.kind {
	case sessionCall:
		end := e                   // a copy: e itself stays on the stack for the listen sessions' calls
		cv.moreLocked().end = &end // serveCall reads it
		var ce *clientcore.CallError
		if e.Err != nil && !errors.As(e.Err, &ce) {
			// Never made: the start failed.
			r := Response{Error: fmt.Sprintf("call %s: %s", v.Dest(), startError(e.Err))}
			var se *clientcore.StatusError
			var ue *UnknownNodeError
			switch {
			case errors.As(e.Err, &se):
				r.Status = se.Status.String()
			case errors.As(e.Err, &ue):
				r.Status, r.Cause, r.CauseText = ue.Status().String(), int(ue.Cause()), causeText(ue.Cause())
			}
			s.startErr = &r
			delete(c.sessions, s)
			return
		}
		c.finishLocked(s, cv.closeInfo(&e))
	case sessionListen:
		if s.removeCallLocked(cv) {
			delete(s.byName, v.Name())
			if e.WasUp {
				info := cv.closeInfo(&e)
				s.out.pushEvent(Event{Event: EventClosed, Vc: v.Name(), Peer: v.Peer(), CloseInfo: &info})
			}
		}
		c.maybeFinishListenLocked(s)
	}
}

// --- a listen session's SAP ---

// Registered answers the listen request: the SAP is registered, or why not.
func (s *session) Registered(sap *clientcore.SAP, err error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		s.sap = sap.HandleLocked()
		s.registered = true
		c.notifyLocked()
		return
	}
	delete(c.sessions, s)
	if !s.ending {
		r := Response{Error: fmt.Sprintf("listen %s: %s", s.service, startError(err))}
		var se *clientcore.SapError
		if errors.As(err, &se) {
			r.Status = se.Status.String()
		}
		s.startErr = &r
	}
	c.notifyLocked()
}

// Offered accepts a call on the session's SAP, unless the session or the
// node is ending.
func (s *session) Offered(sap *clientcore.SAP, o *clientcore.Offer) clientcore.Handler {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down || s.ending || s.finished {
		return nil
	}
	cv := &ctlVc{v: o.VC, incoming: true, s: s, flows: o.Flows, maxSDU: int32(maxSDU(o.Flows))}
	if _, flags, ok := q2931.Media(o.Params); ok && flags&q2931.MediaReliable != 0 {
		cv.reliable = true
	}
	s.addCallLocked(cv)
	return cv
}

// Ended: the SAP and its calls are gone; the session ends.
func (s *session) Ended(sap *clientcore.SAP, why clientcore.Reason) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s.sap = nil
	s.sapGone = true
	if s.startErr != nil {
		return // answered with the error
	}
	if !s.ending {
		s.ending, s.why = true, closeWhy(why)
	}
	c.maybeFinishListenLocked(s)
}

var (
	_ clientcore.Handler       = (*ctlVc)(nil)
	_ clientcore.ListenHandler = (*session)(nil)
)
