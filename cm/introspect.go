package cm

// Introspection for the node (`condis calls`, `condis peers`) and the
// node's start: Calls, Peers, Connect.

import (
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
)

// Calls returns every VC that carries or carried a call, in creation
// order. The data counters are the miniport's (miniport.VcStats): the CM
// does not see a data VC's traffic.
func (c *CM) Calls() []callctl.CallInfo {
	out, _ := c.core.Calls()
	return out
}

// Peers describes every peer the CM knows of, in name order. A peer's
// link is up once the miniport reported it and its signalling VC is
// active, connecting while that VC's activation is pended (the miniport
// dials), down otherwise. The transport's view of the link (remote
// address, round-trip time) is the miniport's to add (miniport.Link).
func (c *CM) Peers() []callctl.PeerInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.sortedPeersLocked()
	out := make([]callctl.PeerInfo, len(ps))
	for i, p := range ps {
		out[i] = p.view.Info(p.name, p.addr, p.stateLocked(), p.as.CallRecordCount())
	}
	return out
}

// Connect activates the signalling VC to peer now (the miniport dials),
// rather than at the first call: a restarted node is heard at once
// (RESTART on the first link). It returns without waiting.
func (c *CM) Connect(peer string) {
	c.mu.Lock()
	p := c.peerLocked(peer)
	c.mu.Unlock()
	if !c.spawn(func() { c.startSignalling(p) }) {
		c.log.Debug("not connecting: shut down", "peer", peer)
	}
}

// stateLocked is the state of p's link, as Peers reports it.
func (p *peer) stateLocked() callctl.LinkState {
	switch {
	case p.up:
		return callctl.LinkUp
	case p.sig != nil && p.sig.activating:
		return callctl.LinkConnecting
	}
	return callctl.LinkDown
}

// noteStateLocked records a change of p's link state, if there was one;
// called wherever it may change.
func (p *peer) noteStateLocked() { p.view.NoteState(p.stateLocked()) }

// noteActivationFailedLocked records why p's signalling VC could not be
// activated (the miniport could not reach the peer); the caller notes the
// state it leaves.
func (p *peer) noteActivationFailedLocked(st ndis.Status) {
	p.view.NoteError("no signalling: " + st.String())
}
