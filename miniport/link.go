package miniport

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport"
)

// peer is what the miniport knows of one node: its link (nil while there
// is none), the VCs bound to it and the signalling held for a signalling
// VC not yet active. Guarded by Miniport.mu. A peer is kept once seen
// (a node talks to a bounded set of peers).
type peer struct {
	name string
	link transport.Link
	inc  uint64 // PeerIncarnation of link, or of the last one

	sig    *vc              // the signalling VC bound to the peer, if any
	data   map[uint32]*vc   // point-to-point data VCs bound to the peer, by connection identifier
	leaves map[uint32][]*vc // multipoint leaf VCs bound to the peer, by connection identifier

	held       [][]byte   // signalling not yet indicated, oldest first
	delivering bool       // a goroutine is indicating held signalling
	room       *sync.Cond // on Miniport.mu: held shrank, or the VC, the link or the miniport changed (see Message)

	// lost: the peer's last link went down (its VCs were told
	// MEDIA_DISCONNECT); a link of the same incarnation brings them
	// MEDIA_CONNECT.
	lost bool

	dialing bool  // a dial is under way
	waiters []*vc // activations waiting for it
}

func (mp *Miniport) peerLocked(name string) *peer {
	pr := mp.peers[name]
	if pr == nil {
		pr = &peer{name: name, data: map[uint32]*vc{}, leaves: map[uint32][]*vc{}, room: sync.NewCond(&mp.mu)}
		mp.peers[name] = pr
	}
	return pr
}

// bindLocked binds v to the peer with p; false if the slot is taken.
func (pr *peer) bindLocked(v *vc, p VCParams) bool {
	if p.Kind == Signalling {
		if pr.sig != nil {
			return false
		}
		pr.sig = v
		return true
	}
	if pr.data[p.ConnID] != nil || (p.Role != Leaf && len(pr.leaves[p.ConnID]) > 0) {
		return false
	}
	if p.Role == Leaf {
		pr.leaves[p.ConnID] = append(pr.leaves[p.ConnID], v)
		return true
	}
	pr.data[p.ConnID] = v
	return true
}

// unbindLocked unbinds v: no more receives reach it.
func (pr *peer) unbindLocked(v *vc) {
	if pr.sig == v {
		pr.sig = nil
		pr.room.Broadcast() // readers waiting for room drop instead
		return
	}
	if pr.data[v.p.ConnID] == v {
		delete(pr.data, v.p.ConnID)
	}
	if ls := pr.leaves[v.p.ConnID]; slices.Contains(ls, v) {
		ls = slices.DeleteFunc(slices.Clone(ls), func(x *vc) bool { return x == v })
		if len(ls) == 0 {
			delete(pr.leaves, v.p.ConnID)
		} else {
			pr.leaves[v.p.ConnID] = ls
		}
	}
}

// receiversLocked are the VCs data of pr on connID goes to: its
// point-to-point VC, or the node's leaves of a multipoint call.
func (pr *peer) receiversLocked(connID uint32) []*vc {
	if v := pr.data[connID]; v != nil {
		return []*vc{v}
	}
	return pr.leaves[connID]
}

// dialLocked makes v wait for a link to pr, starting a dial unless one is
// under way.
func (mp *Miniport) dialLocked(pr *peer, v *vc) {
	pr.waiters = append(pr.waiters, v)
	if pr.dialing {
		return
	}
	pr.dialing = true
	ep := mp.ep
	mp.goLocked(func() {
		st := ndis.StatusFailure
		if ep != nil {
			ctx, cancel := context.WithTimeout(mp.ctx, mp.cfg.DialTimeout)
			_, err := ep.Dial(ctx, pr.name)
			cancel()
			st = mp.dialStatus(err)
		}
		mp.mu.Lock()
		ws := pr.waiters
		pr.waiters, pr.dialing = nil, false
		mp.mu.Unlock()
		for _, w := range ws {
			mp.finishActivate(w, st)
		}
	})
}

// dialStatus is the activation status of a dial's outcome.
func (mp *Miniport) dialStatus(err error) ndis.Status {
	switch {
	case err == nil:
		return ndis.StatusSuccess
	case mp.ctx.Err() != nil, errors.Is(err, transport.ErrClosed):
		return ndis.StatusClosing
	case errors.Is(err, transport.ErrUnknownPeer):
		return ndis.StatusNoRouteToDestination
	case errors.Is(err, transport.ErrUnreachable), errors.Is(err, context.DeadlineExceeded):
		return ndis.StatusDestOutOfOrder
	}
	return ndis.StatusFailure
}

// linkUp is the transport's LinkUp: the link becomes the peer's path, and
// every bound protocol is told (StatusLinkEvent). The transport delivers
// nothing of the link before this returns, so a call manager that
// activates the peer's signalling VC from its ProtocolCoStatusEx misses
// no message.
func (mp *Miniport) linkUp(l transport.Link) transport.LinkHandler {
	mp.mu.Lock()
	pr := mp.peerLocked(l.Peer())
	back := pr.link == nil && pr.lost && pr.inc == l.PeerIncarnation()
	pr.link, pr.inc, pr.lost = l, l.PeerIncarnation(), false
	mp.stats.LinksUp++
	var vs []*vc
	if back {
		vs = mp.mediaVCsLocked(pr)
	}
	mp.mu.Unlock()
	mp.indicateLink(LinkEvent{Peer: pr.name, Up: true, Incarnation: pr.inc})
	mp.indicateMedia(vs, ndis.StatusMediaConnect)
	return &linkHandler{mp: mp, pr: pr, l: l}
}

// mediaVCsLocked are the data VCs whose path a link to pr is: those
// bound to pr and the roots with a leg to it, active in the mediator. Each
// is held busy (rxBusy) so its deactivation waits for the indication.
func (mp *Miniport) mediaVCsLocked(pr *peer) []*vc {
	var vs []*vc
	add := func(v *vc) {
		if v.state == vcActive && (v.rxReady || v.p.Role == Root) {
			v.rxBusy++
			vs = append(vs, v)
		}
	}
	for _, v := range pr.data {
		add(v)
	}
	for _, ls := range pr.leaves {
		for _, v := range ls {
			add(v)
		}
	}
	for v := range mp.vcs {
		if v.p.Role == Root && slices.Contains(v.legs, pr) {
			add(v)
		}
	}
	slices.SortFunc(vs, func(a, b *vc) int { return cmp.Compare(a.seq, b.seq) })
	return vs
}

// indicateMedia indicates st (MEDIA_DISCONNECT, MEDIA_CONNECT) on each of
// vs (NdisMCoIndicateStatusEx: the VC's client and call manager are told)
// and lets each go (mediaVCsLocked held them).
func (mp *Miniport) indicateMedia(vs []*vc, st ndis.Status) {
	for _, v := range vs {
		mp.adapter.MCoIndicateStatusEx(v.h, &ndis.StatusIndication{StatusCode: st})
		mp.mu.Lock()
		v.rxBusy--
		mp.unlockFinishing(v)
	}
}

// linkDown: the link is no longer the peer's path. Sends waiting on it
// complete with NDIS_STATUS_FAILURE, signalling held from it is dropped,
// and every bound protocol is told. The peer's VCs stay bound: a new link
// to the peer carries them again.
func (mp *Miniport) linkDown(pr *peer, l transport.Link, err error) {
	reason := transport.DownReason(0)
	var lde *transport.LinkDownError
	if errors.As(err, &lde) {
		reason = lde.Reason
	}
	mp.mu.Lock()
	var lost []*vc
	if pr.link == l {
		pr.link, pr.lost = nil, true
		lost = mp.mediaVCsLocked(pr)
	}
	mp.stats.SignallingDropped += uint64(len(pr.held))
	pr.held = nil
	pr.room.Broadcast() // readers of the link waiting for room drop their messages
	var vs []*vc
	if pr.sig != nil {
		vs = append(vs, pr.sig)
	}
	for _, v := range pr.data {
		vs = append(vs, v)
	}
	for _, ls := range pr.leaves {
		vs = append(vs, ls...)
	}
	mp.mu.Unlock()
	for _, v := range vs {
		mp.flush(v, ndis.StatusFailure)
	}
	mp.indicateMedia(lost, ndis.StatusMediaDisconnect)
	mp.indicateLink(LinkEvent{Peer: pr.name, Reason: reason, Incarnation: l.PeerIncarnation()})
}

// indicateLink tells every bound protocol (NdisMCoIndicateStatusEx,
// adapter-wide).
func (mp *Miniport) indicateLink(e LinkEvent) {
	mp.adapter.MCoIndicateStatusEx(nil, &ndis.StatusIndication{StatusCode: StatusLinkEvent, Buffer: e.Marshal()})
}

// linkHandler receives one link's traffic.
type linkHandler struct {
	mp *Miniport
	pr *peer
	l  transport.Link
}

// Message holds one signalling message for the peer's signalling VC and
// indicates what it can. While that VC is open, a full queue makes the
// link's reader wait for room rather than drop: the call manager is taking
// its time (its turn among the links, or pacing a peer whose calls it
// refuses), and a reader that waits makes the transport stop reading, so
// that flow control holds back that peer alone. Before the VC is open,
// at most Config.MaxHeldSignalling messages are held and later ones
// dropped (counted in AdapterStats.SignallingDropped), as they are when
// the link goes down or the miniport closes while the reader waits.
func (h *linkHandler) Message(msg []byte) {
	mp, pr := h.mp, h.pr
	mp.mu.Lock()
	for len(pr.held) >= mp.cfg.MaxHeldSignalling && pr.openLocked() && pr.link == h.l && !mp.closed {
		pr.room.Wait()
	}
	if len(pr.held) >= mp.cfg.MaxHeldSignalling || pr.link != h.l {
		mp.stats.SignallingDropped++
		mp.mu.Unlock()
		return
	}
	pr.held = append(pr.held, msg)
	mp.mu.Unlock()
	mp.deliverSignalling(pr)
}

// openLocked reports whether the peer's signalling VC is open: active,
// and its call manager takes what it receives (OidSignallingOpen).
func (pr *peer) openLocked() bool {
	v := pr.sig
	return v != nil && v.state == vcActive && v.rxReady
}

// Datagram indicates a datagram on the VC of its connection identifier.
func (h *linkHandler) Datagram(connID uint32, payload []byte) {
	h.mp.receiveData(h.pr, connID, payload, Datagram)
}

// StreamData indicates a reliable SDU on the VC of its connection
// identifier.
func (h *linkHandler) StreamData(connID uint32, sdu []byte) {
	h.mp.receiveData(h.pr, connID, sdu, Reliable)
}

// LinkDown: see Miniport.linkDown.
func (h *linkHandler) LinkDown(err error) { h.mp.linkDown(h.pr, h.l, err) }
