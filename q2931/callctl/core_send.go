package callctl

// Signalling going out and mediator work: a uni.Link Output is applied
// here (messages to the outbox, timers to the association, indications
// to the work queue), and run sends the outbox and carries out the work
// without the MCM's lock.

import (
	"errors"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/uni"
)

// workItem is one piece of mediator work: f; or a step of v's close
// (vcOp, with st and qp); or else an indication of p's uni.Link with what
// its handler reads from the received message behind it. The steps every
// call takes are kept as data: a closure for each would be an allocation
// each. The indication's Msg is nil here: a uni.Link lends a received
// message only until it decodes the next one (uni.Indication.Msg), and the
// work runs after that, so ApplyLocked takes what the work needs
// (takeReceived).
type workItem struct {
	f  func()
	op vcOp
	// fromPeer: an indication that came with a received message.
	fromPeer bool
	// rx is 1 + the index in Core.rx of what the indication's handler
	// reads from that message; 0 when it reads nothing. What a SETUP or a
	// CONNECT gives is 184 octets: kept beside the queue, it does not
	// make every item that large (a node releasing a million calls queues
	// a million items).
	rx  int32
	v   *Vc
	st  ndis.Status
	qp  *ndis.CallParameters
	p   *Assoc
	ind uni.Indication
}

// vcOp is a step of a VC's close queued as mediator work (workItem.op).
type vcOp uint8

const (
	opNone        vcOp = iota
	opFinishClose      // d.finishClose(v)
	opDeleteVc         // d.deleteVc(v, time.Millisecond)
	opNetworkEnd       // d.networkEnd(v, st, qp)
)

// enqueueVcLocked adds step op of v's close to the mediator work.
func (d *Core) enqueueVcLocked(op vcOp, v *Vc, st ndis.Status, qp *ndis.CallParameters) {
	d.work = append(d.work, workItem{op: op, v: v, st: st, qp: qp})
}

// runVcOp carries out a step of a VC's close queued with enqueueVcLocked.
func (d *Core) runVcOp(w *workItem) {
	switch w.op {
	case opFinishClose:
		d.finishClose(w.v)
	case opDeleteVc:
		d.deleteVc(w.v, time.Millisecond)
	case opNetworkEnd:
		d.networkEnd(w.v, w.st, w.qp)
	}
}

// received is what the mediator work of an indication reads from the
// message a uni.Link received, copied out of it when the Output is
// applied.
type received struct {
	fromPeer bool // the indication came with a received message (Indication.Msg != nil)

	// CONNECT and RESTART: the connection identifier, if it had one.
	conn    uni.ConnectionID
	hasConn bool
	// CONNECT: its AAL parameters (without the octets of other AAL types).
	aal    uni.AALParameters
	hasAAL bool

	offer offerAsk // SETUP and ADD PARTY
}

// offerAsk is what an incoming SETUP or ADD PARTY asks for, as far as
// offer judges it.
type offerAsk struct {
	fwd, bwd  ndis.Flowspec // SETUP: its traffic (q2931.ReadSetup)
	reliable  bool          // SETUP: assured SSCS
	p2mp      bool          // SETUP: a point-to-multipoint call
	hasEP     bool          // it carries an endpoint reference: ep
	ep        uint16        //
	svc       string        // the service its BHLI names, if svcOK
	svcOK     bool          //
	addressed bool          // its called party number is this node's address
	trafficOK bool          // SETUP: its traffic descriptor is one of UNI 3.1's combinations
}

// takeReceived copies out of ind.Msg what the handler of ind reads; ok
// is false when it reads nothing from it.
func (d *Core) takeReceived(ind uni.Indication) (rx received, ok bool) {
	m := ind.Msg
	if m == nil {
		return received{}, false
	}
	rx.fromPeer = true
	switch ind.Kind {
	case uni.IndSetup, uni.IndAddParty:
		a := &rx.offer
		if ind.Kind == uni.IndSetup {
			a.fwd, a.bwd, a.reliable = q2931.ReadSetup(m)
			a.trafficOK = q2931.TrafficAllowed(m.Traffic)
			a.p2mp = m.EndpointRef != nil || (m.Bearer != nil && m.Bearer.UserPlane == uni.PointToMultipoint)
		}
		if m.EndpointRef != nil {
			a.hasEP, a.ep = true, m.EndpointRef.Value
		}
		if m.BHLI != nil {
			a.svc, a.svcOK = m.BHLI.ServiceName()
		}
		a.addressed = q2931.Addressed(m.Called, d.cfg.Address)
	case uni.IndConnected, uni.IndRestart:
		if m.ConnectionID != nil {
			rx.conn, rx.hasConn = *m.ConnectionID, true
		}
		if m.AAL != nil {
			rx.aal, rx.hasAAL = *m.AAL, true
			rx.aal.Other = nil
		}
	default:
		return received{}, false // fromPeer, in the work item, is all
	}
	return rx, true
}

// connID is the connection identifier received, or nil.
func (rx *received) connID() *uni.ConnectionID {
	if !rx.hasConn {
		return nil
	}
	return &rx.conn
}

// outMsg is one encoded signalling message for the signalling link to p
// that was up when it was queued.
type outMsg struct {
	sig SignallingLink
	p   *Assoc
	b   []byte
}

// ApplyLocked carries out a uni.Output: messages to the outbox (in order,
// encoded into outEnc, or copied there if the Link encoded them already:
// the octets are valid until the flusher has sent them, so the signalling
// links copy what they send and the owner's SentLocked and its tracers
// copy what they keep),
// timer operations to the Scheduler, indications to the work queue.
// It keeps nothing of the Output's storage (its slices, the messages the
// Link built), which the Link reuses for its next input (Core.NewAssoc):
// an indication is copied by value, and what it points to (Cause
// diagnostic, Traffic, Context) is not in that storage.
func (d *Core) ApplyLocked(p *Assoc, o uni.Output) {
	for _, m := range o.Messages {
		sig := p.Signalling()
		if sig == nil {
			continue // nothing goes out while the link is down (uni sends nothing then)
		}
		start := len(d.outEnc)
		var enc []byte
		if m.Enc != nil { // the Link encoded it already, to check the request
			enc = append(d.outEnc, m.Enc...)
		} else {
			var err error
			if enc, err = m.Msg.Append(d.outEnc); err != nil {
				d.log.Error("encoding a Q.2931 message", "peer", p.Peer(), "type", m.Msg.Type.String(), "err", err)
				continue
			}
		}
		// If Append grew the buffer, the encodings before it stay in the
		// old array, which nothing writes to again.
		d.outEnc = enc
		b := enc[start:len(enc):len(enc)]
		d.outbox = append(d.outbox, outMsg{sig, p, b})
		d.owner.SentLocked(p, b)
	}
	p.ApplyTimers(o.Timers)
	for _, ind := range o.Indications {
		w := workItem{p: p, ind: ind, fromPeer: ind.Msg != nil}
		if rx, ok := d.takeReceived(ind); ok {
			d.rx = append(d.rx, rx)
			w.rx = int32(len(d.rx))
		}
		w.ind.Msg = nil // lent by the Link: see workItem
		d.work = append(d.work, w)
	}
}

// enqueueLocked adds mediator work.
func (d *Core) EnqueueLocked(f func()) { d.work = append(d.work, workItem{f: f}) }

// run sends queued signalling and delivers queued mediator work, unless
// another goroutine is doing it already (it will see what was queued). It
// is called after every change, with d.mu not held. Work runs in the order
// it was queued, one item at a time, without d.mu; an item may re-enter
// the MCM (a mediator call reaches a client, whose request reaches our
// handlers), which only queues more.
func (d *Core) Run() {
	d.mu.Lock()
	d.flushLocked()
	if d.draining {
		d.mu.Unlock()
		return
	}
	d.draining = true
	for d.next < len(d.work) {
		w := d.work[d.next]
		d.work[d.next] = workItem{}
		d.next++
		rx := received{fromPeer: w.fromPeer}
		if w.rx > 0 {
			rx = d.rx[w.rx-1]
			d.rx[w.rx-1] = received{}
		}
		d.mu.Unlock()
		switch {
		case w.f != nil:
			w.f()
		case w.op != opNone:
			d.runVcOp(&w)
		default:
			d.indication(w.p, w.ind, &rx)
		}
		d.mu.Lock()
		d.flushLocked()
	}
	// Empty: the array is reused, unless a burst made it large.
	d.work, d.next, d.rx = d.work[:0], 0, d.rx[:0]
	if cap(d.work) > 4096 {
		d.work = nil
	}
	if cap(d.rx) > 4096 {
		d.rx = nil
	}
	d.draining = false
	d.mu.Unlock()
}

// flushLocked sends the outbox in order, one sender at a time; d.mu is
// held, and released while sending. What has queued up for one link goes
// in one SendBatch when the link takes batches, so that many calls in
// flight cost few stream writes.
func (d *Core) flushLocked() {
	if d.flushing || len(d.outbox) == 0 {
		return
	}
	d.flushing = true
	for len(d.outbox) > 0 {
		q, enc := d.outbox, d.outEnc
		d.outbox, d.outEnc, d.encSpare = nil, d.encSpare[:0], nil
		d.mu.Unlock()
		for i := 0; i < len(q); {
			j := i + 1
			for j < len(q) && q[j].sig == q[i].sig {
				j++
			}
			d.sendSignalling(q[i:j])
			i = j
		}
		clear(q)
		d.mu.Lock()
		if d.outbox == nil && cap(q) <= 1024 {
			d.outbox = q[:0] // reuse the array: it is nobody else's now
		}
		if cap(enc) <= maxSpareEncodings {
			d.encSpare = enc[:0] // sent: the octets are nobody's now
		}
	}
	d.flushing = false
}

// maxSpareEncodings bounds the encoding buffer the flusher keeps for
// reuse, so that a burst does not pin a large one.
const maxSpareEncodings = 64 << 10

// sendSignalling sends messages for one link, in order (the flusher).
func (d *Core) sendSignalling(ms []outMsg) {
	sig := ms[0].sig
	var err error
	if bs, ok := sig.(transport.BatchSender); ok && len(ms) > 1 {
		d.batch = d.batch[:0]
		for _, m := range ms {
			d.batch = append(d.batch, m.b)
		}
		err = bs.SendBatch(d.batch)
		clear(d.batch)
	} else {
		for _, m := range ms {
			if err = sig.Send(m.b); err != nil {
				break
			}
		}
	}
	if err != nil && !errors.Is(err, transport.ErrLinkDown) {
		d.log.Warn("sending signalling", "peer", ms[0].p.Peer(), "err", err)
	}
}

// kickLocked makes sure queued work runs when the caller cannot run it
// (a timer callback holds d.mu).
func (d *Core) KickLocked() {
	if (d.next < len(d.work) && !d.draining) || (len(d.outbox) > 0 && !d.flushing) {
		d.owner.Go(d.Run)
	}
}
