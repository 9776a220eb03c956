package mcm

// Transport links: a link coming up or going down tells the peer's
// signalling association (callctl.Assoc); dialling and redialling.

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/uni"
)

type handler struct{ d *MCM }

// LinkUp is a new transport link: the first one to a peer creates its
// uni.Link; a later one re-establishes it (uni LinkUp: T309 stops, kept
// calls are audited with STATUS ENQUIRY). Calls waiting for the link go
// out.
func (h handler) LinkUp(l transport.Link) transport.LinkHandler {
	d := h.d
	d.mu.Lock()
	if d.detached || d.core.ClosingLocked() {
		d.mu.Unlock()
		l.Close()
		return &transport.LinkFuncs{}
	}
	p := d.peerLocked(l.Peer())
	lh := &linkHandler{d: d, p: p, l: l}
	p.setLink(l)
	d.log.Info("link up", "peer", p.name)
	d.traceLink(p, true, nil)
	p.noteStateLocked()
	calls := p.as.Calls()
	switch p.as.LinkUp(l, l.PeerIncarnation(), func(out uni.Output) { d.core.ApplyLocked(p.as, out) }) {
	case callctl.PeerRestarted:
		d.log.Info("peer restarted: cleared its calls", "peer", p.name, "calls", calls)
	case callctl.LinkBack:
		d.mediaStatusLocked(p, ndis.StatusMediaConnect)
	}
	d.core.StartWaitingLocked(p.as)
	d.mu.Unlock()
	d.core.Run()
	return lh
}

type linkHandler struct {
	d *MCM
	p *peer
	l transport.Link
}

// LinkDown is a SAAL failure: uni clears the calls not active at once and
// keeps the active ones for T309, while the MCM redials.
func (h *linkHandler) LinkDown(err error) {
	d, p := h.d, h.p
	d.mu.Lock()
	if p.tl != h.l {
		d.mu.Unlock()
		return
	}
	p.setLink(nil)
	p.as.Detach()
	d.log.Debug("link down", "peer", p.name, "err", err) // the transport logs it with its reason
	d.traceLink(p, false, err)
	if !d.detached {
		p.as.LinkDown(func(out uni.Output) { d.core.ApplyLocked(p.as, out) })
		if p.as.Calls() > 0 {
			d.mediaStatusLocked(p, ndis.StatusMediaDisconnect)
			d.dialLocked(p)
		}
	}
	p.noteLinkDownLocked(err)
	d.mu.Unlock()
	d.core.Run()
}

// mediaStatusLocked queues a per-VC status indication (MEDIA_DISCONNECT
// when the link to p is lost with calls kept for T309, MEDIA_CONNECT when
// it is back) for every established VC with a call on p.
func (d *MCM) mediaStatusLocked(p *peer, st ndis.Status) {
	seen := map[*vc]bool{}
	var vcs []*vc
	add := func(v *vc) {
		if !seen[v] && v.State() == callctl.Active && v.Handle != nil {
			seen[v] = true
			vcs = append(vcs, v)
		}
	}
	for _, c := range p.as.CallRecords() {
		if c.Out != nil {
			add(vcOf(c.Out))
		} else {
			eachIn(c, add)
		}
	}
	slices.SortFunc(vcs, func(a, b *vc) int { return callctl.SeqCompare(a.Seq, b.Seq) })
	for _, v := range vcs {
		d.core.EnqueueLocked(func() {
			d.mu.Lock()
			ok := v.State() == callctl.Active
			d.mu.Unlock()
			if ok {
				d.core.CM.IndicateStatus(v.Handle, &ndis.StatusIndication{StatusCode: st})
			}
		})
	}
}

// dialLocked starts (re)dialling p unless a dial is running. It keeps
// trying while calls wait for the link or calls are kept for T309.
func (d *MCM) dialLocked(p *peer) {
	if p.dialing || d.ep == nil || d.core.ClosingLocked() || d.detached {
		if d.ep == nil && !p.dialing {
			d.failWaitingLocked(p, ndis.StatusDestOutOfOrder)
		}
		return
	}
	p.dialing = true
	p.noteStateLocked()
	ctx, cancel := context.WithCancel(d.ctx)
	ep := d.ep
	d.goLocked(func() {
		defer cancel()
		d.dialLoop(ctx, ep, p)
	})
}

// Connect makes the link to peer in the background if there is none: one
// attempt (redialled only while calls need the link). A node connects to
// its configured peers when it starts, so that a restarted node is heard
// at once: its RESTART, and its new incarnation, make the peers clear the
// calls of the earlier one without waiting for their own timers.
func (d *MCM) Connect(peer string) {
	if pki.ValidName(peer) != nil || peer == d.name {
		return
	}
	d.mu.Lock()
	if p := d.peerLocked(peer); p.tl == nil {
		d.dialLocked(p)
	}
	d.mu.Unlock()
}

func (d *MCM) dialLoop(ctx context.Context, ep transport.Endpoint, p *peer) {
	backoff := 50 * time.Millisecond
	for {
		dctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
		_, err := ep.Dial(dctx, p.name)
		cancel()
		d.mu.Lock()
		if err == nil || p.tl != nil || ctx.Err() != nil {
			if err != nil && p.tl == nil {
				d.failWaitingLocked(p, ndis.StatusFailure)
			}
			p.dialing = false
			p.noteStateLocked()
			d.mu.Unlock()
			d.core.Run()
			return
		}
		d.log.Debug("dial failed", "peer", p.name, "err", err)
		p.noteDialErrorLocked(err, d.cfg.DialTimeout)
		st := ndis.StatusDestOutOfOrder // cause 27
		if errors.Is(err, transport.ErrUnknownPeer) {
			st = ndis.StatusInvalidAddress // cause 1: no such node
		}
		d.failWaitingLocked(p, st)
		if p.as.Calls() == 0 {
			p.dialing = false
			p.noteStateLocked()
			d.mu.Unlock()
			d.core.Run()
			return
		}
		d.mu.Unlock()
		d.core.Run()
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// failWaitingLocked fails the calls and parties waiting for the link.
func (d *MCM) failWaitingLocked(p *peer, st ndis.Status) {
	d.core.FailWaitingLocked(p.as, st)
}
