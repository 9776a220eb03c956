package cm

// Signalling VCs: one per peer, created on the CM's binding with
// NdisCoCreateVc and no AF, activated with the miniport's signalling
// parameters; the miniport's link events say when a peer's link is up.

import (
	"encoding/binary"
	"time"

	"github.com/condis-project/condis/internal/pacing"
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// peer is everything the CM knows of one other node: its signalling
// association and the signalling VC that carries it. Guarded by CM.mu.
type peer struct {
	name string
	addr uni.AESA
	as   *callctl.Assoc
	sig  *sigVC // nil until the peer is first needed

	linked bool   // the miniport reported the link up, and not down since
	inc    uint64 // the peer's incarnation on that link
	up     bool   // the association was told of the link (Assoc.LinkUp)
	limit  int    // largest datagram payload of the path, learnt when the link came up

	// backoff is the pause before the next attempt to get a lost link
	// back while calls are kept (0: none failed yet).
	backoff time.Duration

	early [][]byte // signalling received before the association was up

	// refusals paces the peer's signalling by the refusals of its calls
	// (Config.RefusalRate).
	refusals *pacing.Refusals

	view callctl.PeerView // what Peers reports: link state, counters, last error
}

// sigVC is the CM's context of a signalling VC.
type sigVC struct {
	p          *peer
	h          *ndis.Vc
	act        *callctl.Activation
	active     bool // the last activation succeeded
	activating bool // an activation is in flight (the miniport may be dialling)
	open       bool // its receive path is open (miniport.OidSignallingOpen)
}

// sigLink sends on a signalling VC (callctl.SignallingLink).
type sigLink struct {
	c *CM
	h *ndis.Vc
}

// Send sends msg on the signalling VC (NdisCoSendNetBufferLists); the
// miniport completes it (ProtocolCoSendNetBufferListsComplete). A failed
// send is followed by the link's down event, which clears the association.
func (l sigLink) Send(msg []byte) error {
	l.c.b.CoSendNetBufferLists(l.h, &ndis.NetBufferList{Data: append([]byte(nil), msg...)}, 0)
	return nil
}

func (c *CM) peerLocked(name string) *peer {
	p := c.peers[name]
	if p == nil {
		p = &peer{name: name, addr: c.cfg.PeerAddress(name), refusals: pacing.NewRefusals(c.cfg.RefusalRate)}
		p.as = c.core.NewAssoc(name, p, uni.Config{Timers: c.cfg.Timers}, func(out uni.Output) {
			c.core.ApplyLocked(p.as, out)
			c.core.KickLocked()
		})
		c.peers[name] = p
	}
	return p
}

// applier applies the Outputs of p's association; c.mu is held.
func (c *CM) applier(p *peer) func(uni.Output) {
	return func(out uni.Output) { c.core.ApplyLocked(p.as, out) }
}

// linkEvent is the miniport's StatusLinkEvent: a link to a peer came up or
// went down.
func (c *CM) linkEvent(e miniport.LinkEvent) {
	if !e.Up {
		c.mu.Lock()
		p := c.peerLocked(e.Peer)
		p.linked = false
		if p.up {
			p.up = false
			p.as.LinkDown(c.applier(p))
		}
		p.view.NoteLinkDown("link down: "+e.Reason.String(), p.stateLocked())
		// The association keeps the active calls for T309: get the link
		// back by re-activating the signalling VC (the miniport dials).
		redial := p.as.Calls() > 0
		p.backoff = 0
		c.mu.Unlock()
		c.log.Info("link down", "peer", e.Peer, "reason", e.Reason.String())
		c.traceLink(p, false, e.Reason.String())
		c.core.Run()
		if redial {
			c.spawn(func() { c.startSignalling(p) })
		}
		return
	}
	limit := c.maxDatagram()
	c.mu.Lock()
	p := c.peerLocked(e.Peer)
	p.linked, p.inc, p.limit = true, e.Incarnation, limit
	s := p.sig
	activate := s == nil || (!s.active && !s.activating)
	if !activate {
		c.signallingUpLocked(p)
	}
	c.mu.Unlock()
	c.log.Info("link up", "peer", e.Peer)
	c.traceLink(p, true, "")
	if activate {
		// From ProtocolCoStatusEx: the link's signalling is held by the
		// miniport until the VC is active, and the activation completes at
		// once (the link is up).
		c.startSignalling(p)
	}
	c.core.Run()
}

// maxDatagram asks the miniport for the largest datagram payload of its
// links (OID_GEN_MAXIMUM_FRAME_SIZE, adapter-wide); 0 if it cannot say.
func (c *CM) maxDatagram() int {
	req := &ndis.OidRequest{Type: ndis.OidQuery, Oid: miniport.OidGenMaximumFrameSize, InformationBuffer: make([]byte, 4)}
	if st := c.b.CoOidRequest(nil, nil, nil, req); st != ndis.StatusSuccess {
		c.log.Warn("the miniport does not say its largest datagram", "status", st.String())
		return 0
	}
	return int(binary.LittleEndian.Uint32(req.InformationBuffer))
}

// startSignalling activates p's signalling VC, creating it first if p has
// none (NdisCoCreateVc, no AF); if the link to p is down the miniport
// pends the activation while it dials. Nothing happens while an
// activation is in flight.
func (c *CM) startSignalling(p *peer) {
	c.mu.Lock()
	s := p.sig
	switch {
	case s != nil && s.activating:
		c.mu.Unlock()
		return
	case s != nil && s.active && p.linked:
		c.signallingUpLocked(p)
		c.mu.Unlock()
		c.core.Run()
		return
	case s == nil:
		s = &sigVC{p: p, activating: true}
		p.sig = s
		c.mu.Unlock()
		h, st := c.b.CoCreateVc(nil, s)
		c.mu.Lock()
		if st != ndis.StatusSuccess {
			p.sig = nil
			c.core.FailWaitingLocked(p.as, st)
			c.mu.Unlock()
			c.core.Run()
			return
		}
		s.h, s.act = h, callctl.NewActivation(c.ops.Cm, h)
	default:
		s.activating = true
	}
	p.noteStateLocked()
	c.mu.Unlock()
	params := &ndis.CallParameters{MediaParameters: miniport.VCParams{Kind: miniport.Signalling, Peer: p.name}.Media()}
	s.act.Activate(params, func(st ndis.Status) { c.signallingActivated(s, st) })
}

// signallingActivated is the outcome of s's activation (at once, or
// ProtocolCmActivateVcComplete after the miniport dialled).
func (c *CM) signallingActivated(s *sigVC, st ndis.Status) {
	p := s.p
	c.mu.Lock()
	s.activating = false
	open := st == ndis.StatusSuccess && !s.open
	var retry time.Duration
	if st == ndis.StatusSuccess {
		s.active, s.open = true, true
		p.backoff = 0
		c.signallingUpLocked(p)
	} else {
		c.log.Info("no signalling to the peer", "peer", p.name, "status", st.String())
		p.noteActivationFailedLocked(st)
		c.core.FailWaitingLocked(p.as, st)
		if !p.linked && p.as.Calls() > 0 {
			// Calls are kept (T309 runs): try again, 50 ms apart at
			// first, then up to a second, as mcm redials.
			p.backoff = min(max(2*p.backoff, 50*time.Millisecond), time.Second)
			retry = p.backoff
		}
	}
	p.noteStateLocked()
	c.mu.Unlock()
	if retry > 0 {
		c.spawn(func() {
			t := time.NewTimer(retry)
			defer t.Stop()
			select {
			case <-c.quit:
			case <-t.C:
				c.mu.Lock()
				still := !p.linked && p.as.Calls() > 0
				c.mu.Unlock()
				if still {
					c.startSignalling(p)
				}
			}
		})
	}
	if open {
		// The mediator holds the VC active now: the miniport may indicate
		// the peer's messages on it (miniport.OidSignallingOpen).
		req := &ndis.OidRequest{Type: ndis.OidSet, Oid: miniport.OidSignallingOpen}
		if st := c.b.CoOidRequest(nil, s.h, nil, req); st != ndis.StatusSuccess {
			c.log.Error("the miniport did not open the signalling VC", "peer", p.name, "status", st.String())
		}
	}
	c.core.Run()
}

// signallingUpLocked tells p's association its link is up once both the
// miniport's link event and the signalling VC's activation have come: the
// first link restarts it (RESTART), a new incarnation of the peer clears
// its calls; then the signalling received early and the calls waiting for
// the link go.
func (c *CM) signallingUpLocked(p *peer) {
	s := p.sig
	if p.up || !p.linked || s == nil || !s.active {
		return
	}
	p.up = true
	p.noteStateLocked()
	kind := p.as.LinkUp(sigLink{c: c, h: s.h}, p.inc, c.applier(p))
	if kind == callctl.PeerRestarted {
		c.log.Info("peer restarted: cleared its calls", "peer", p.name)
	}
	early := p.early
	p.early = nil
	for _, msg := range early {
		c.receiveLocked(p, msg)
	}
	c.core.StartWaitingLocked(p.as)
}

// receiveLocked gives one message received from p to its association.
func (c *CM) receiveLocked(p *peer, msg []byte) {
	c.traceSignal(p, trace.In, msg)
	c.core.ApplyLocked(p.as, p.as.Receive(msg))
}

// receiveSignalling takes the messages indicated on s, on the miniport's
// delivery of s's link. The peers take turns (c.turns), and a peer whose
// calls were refused over Config.RefusalRate waits for them first: the
// miniport's delivery of that link waits, so the transport stops reading
// it, and the other links go on. Once Shutdown has begun nothing waits and
// the messages are dropped.
func (c *CM) receiveSignalling(s *sigVC, nbls *ndis.NetBufferList) {
	p := s.p
	if !p.refusals.Wait(c.stopping) {
		return
	}
	c.turns.Enter()
	defer c.turns.Leave()
	c.mu.Lock()
	for n := nbls; n != nil; n = n.Next {
		msg := append([]byte(nil), n.Data...)
		if !p.up {
			p.early = append(p.early, msg) // the activation's completion is still on its way
			continue
		}
		c.receiveLocked(p, msg)
	}
	c.mu.Unlock()
	c.core.Run()
}

// dropSignalling deactivates and deletes p's signalling VC (Shutdown).
func (c *CM) dropSignalling(p *peer) error {
	c.mu.Lock()
	s := p.sig
	p.sig, p.up = nil, false
	c.mu.Unlock()
	if s == nil || s.h == nil {
		return nil
	}
	done := make(chan ndis.Status, 1)
	s.act.Deactivate(func(st ndis.Status) { done <- st })
	if st := <-done; st != ndis.StatusSuccess {
		return fmtStatus("deactivating the signalling VC to "+p.name, st)
	}
	if st := c.b.CoDeleteVc(s.h); st != ndis.StatusSuccess {
		return fmtStatus("deleting the signalling VC to "+p.name, st)
	}
	return nil
}
