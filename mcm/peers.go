package mcm

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/condis-project/condis/internal/pacing"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/uni"
)

// LinkState is the state of the transport link to a peer, as Peers
// reports it (callctl.LinkState).
type LinkState = callctl.LinkState

// Link states (callctl's).
const (
	LinkDown       = callctl.LinkDown
	LinkConnecting = callctl.LinkConnecting
	LinkUp         = callctl.LinkUp
)

// PeerInfo describes one peer of the MCM, for `condis peers`
// (callctl.PeerInfo).
type PeerInfo = callctl.PeerInfo

// stateLocked is the link state p is in now.
func (p *peer) stateLocked() LinkState {
	switch {
	case p.tl != nil:
		return LinkUp
	case p.dialing:
		return LinkConnecting
	}
	return LinkDown
}

// noteStateLocked records a change of p's link state, if there was one.
// It is called wherever the state may change: links up and down, dials
// started and ended.
func (p *peer) noteStateLocked() { p.view.NoteState(p.stateLocked()) }

// noteLinkDownLocked records a link loss: its state and its reason.
func (p *peer) noteLinkDownLocked(err error) { p.view.NoteLinkDown(linkDownText(err), p.stateLocked()) }

// noteDialErrorLocked records a failed dial.
func (p *peer) noteDialErrorLocked(err error, timeout time.Duration) {
	if err == context.DeadlineExceeded { // Config.DialTimeout, not the transport's own
		p.view.NoteError("dial: no answer within " + timeout.String())
		return
	}
	p.view.NoteError(err.Error())
}

// linkDownText says why a link went down in one line: "link down: " and
// the transport's reason, then its error unless that only says the
// reason again ("timeout: no recent network activity" for "timeout").
func linkDownText(err error) string {
	var de *transport.LinkDownError
	if !errors.As(err, &de) {
		if err == nil {
			return "link down"
		}
		return "link down: " + err.Error()
	}
	reason := de.Reason.String()
	if de.Err == nil {
		return "link down: " + reason
	}
	text := de.Err.Error()
	if text == reason || strings.HasPrefix(text, reason+":") {
		return "link down: " + text
	}
	return "link down: " + reason + ": " + text
}

// Peers describes every peer the MCM knows of, in name order: those it
// has dialled or been dialled by, and those it was asked to connect to.
// The transport is asked for round-trip times and addresses without the
// MCM's lock held.
func (d *MCM) Peers() []PeerInfo {
	d.mu.Lock()
	ps := d.sortedPeersLocked()
	out := make([]PeerInfo, len(ps))
	links := make([]transport.Link, len(ps))
	for i, p := range ps {
		out[i] = p.view.Info(p.name, p.addr, p.stateLocked(), p.as.CallRecordCount())
		links[i] = p.tl
	}
	d.mu.Unlock()
	for i, l := range links {
		if r, ok := l.(transport.RTTer); ok {
			out[i].RTT = r.RTT()
		}
		if r, ok := l.(transport.RemoteAddresser); ok {
			out[i].Remote = r.RemoteAddr()
		}
	}
	return out
}

// peer is everything about one other node: its signalling association
// (callctl.Assoc: the uni.Link, which lives across transport
// reconnections so that active calls survive a link loss shorter than
// T309, its timers, the calls on it and the calls waiting for the link)
// and the transport link that carries it.
type peer struct {
	d    *MCM
	name string
	addr uni.AESA // its address (peerAddress), worked out once: it is a SHA-256
	as   *callctl.Assoc
	tl   transport.Link // current transport link, nil while down

	// refusals paces the peer's signalling by the refusals of its calls
	// (Config.RefusalRate).
	refusals *pacing.Refusals

	dialing bool

	cur atomic.Pointer[linkRef] // tl, for the data path

	view callctl.PeerView // what Peers reports: link state, counters, last error
}

type linkRef struct{ l transport.Link }

// current returns the transport link for data, nil while down.
func (p *peer) current() transport.Link {
	if r := p.cur.Load(); r != nil {
		return r.l
	}
	return nil
}

func (p *peer) setLink(l transport.Link) {
	p.tl = l
	if l == nil {
		p.cur.Store(nil)
	} else {
		p.cur.Store(&linkRef{l})
	}
}

func (d *MCM) peerLocked(name string) *peer {
	p := d.peers[name]
	if p == nil {
		p = &peer{d: d, name: name, refusals: pacing.NewRefusals(d.cfg.RefusalRate), addr: d.cfg.PeerAddress(name)}
		p.as = d.core.NewAssoc(name, p, uni.Config{Timers: d.timers}, func(out uni.Output) { d.timerExpiredLocked(p, out) })
		d.peers[name] = p
	}
	return p
}

func (d *MCM) sortedPeersLocked() []*peer {
	ps := make([]*peer, 0, len(d.peers))
	for _, p := range d.peers {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	return ps
}
