package callctl

import (
	"sync"

	"github.com/condis-project/condis/internal/seqtable"
	"github.com/condis-project/condis/uni"
)

// SignallingLink carries Q.2931 messages to one adjacent peer: for the
// miniport call manager a transport link's signalling stream, for a
// stand-alone call manager a signalling VC through the miniport. The
// association's owner hands it to Assoc.LinkUp while the link is up; the
// call control then queues each message it must send on the link that was
// up when it was produced, and the owner sends them, in order, without its
// lock held.
type SignallingLink interface {
	// Send sends one encoded Q.2931 message to the adjacent peer. An error
	// means the link is failing; its owner tells the association with
	// Assoc.LinkDown. msg is valid only until Send returns (the call
	// control encodes the next messages into it): an implementation copies
	// what it keeps, as transport links do.
	Send(msg []byte) error
}

// LinkUpKind is what a link coming up meant for an association (see
// Assoc.LinkUp).
type LinkUpKind uint8

const (
	// FirstLink: the first link with this peer in this node's life. The
	// association sent RESTART (all VCs): whatever the peer holds from an
	// earlier incarnation of this node is stale.
	FirstLink LinkUpKind = iota + 1
	// PeerRestarted: the peer came back as a new incarnation (its process
	// restarted); it holds none of the old incarnation's calls, which the
	// association cleared at once rather than after an audit or T309.
	PeerRestarted
	// LinkBack: the same incarnation of the peer after a link loss: T309
	// stopped and the kept calls are audited (STATUS ENQUIRY); their VCs
	// see MEDIA_CONNECT again.
	LinkBack
)

// String returns "first link", "peer restarted" or "link back".
func (k LinkUpKind) String() string {
	switch k {
	case FirstLink:
		return "first link"
	case PeerRestarted:
		return "peer restarted"
	case LinkBack:
		return "link back"
	}
	return "?"
}

// Assoc is the Q.2931 signalling association with one adjacent peer: its
// uni.Link (which lives across link losses, so that active calls survive
// one shorter than T309), the uni timers it runs, the calls on it by call
// reference (as the contexts of the uni.Link's calls) and by connection
// identifier, the calls and parties waiting
// for the link, and the peer's incarnation on its latest link.
//
// Everything but the connection map is guarded by the owner's lock
// (the one NewAssoc is given: timers fire with it held); the connection
// map is guarded by ConnMu as well, so that the data path can find a
// call by connection identifier without the owner's lock.
type Assoc struct {
	// Owner is the call manager's own record of the peer (the miniport
	// call manager's transport peering), set when it creates the
	// association.
	Owner any

	core    *Core // the call control the association's calls belong to (Core.NewAssoc)
	peer    string
	low     bool // this node's name sorts first: it allocates connection ids with even VPCIs
	cfg     uni.Config
	mu      sync.Locker
	expired func(uni.Output)

	link    *uni.Link   // nil until the first link comes up
	timers  *TimerQueue // the link's timers; nil with link
	sig     SignallingLink
	inc     uint64 // the peer's incarnation on its latest link
	records int    // calls recorded (AddCall) and not yet removed (RemoveCall)

	waiting  []Waiting
	nextConn uint32

	// ConnMu guards the connection map, and whatever of the call
	// records the data path reads with it held (where received data goes).
	ConnMu sync.RWMutex
	conns  seqtable.Table[Call] // connection id -> call, for receives (and the ids in use)
}

// NewAssoc returns the association of this node (self) with the adjacent
// peer. mu is the owner's lock; expired is called with it held with the
// Output of each uni timer that runs out, for the owner to apply as it
// applies every other Output.
func NewAssoc(self, peer string, cfg uni.Config, mu sync.Locker, expired func(uni.Output)) *Assoc {
	return &Assoc{peer: peer, low: self < peer, cfg: cfg, mu: mu, expired: expired}
}

// Peer returns the adjacent peer's name.
func (a *Assoc) Peer() string { return a.peer }

// Link returns the association's uni.Link, nil before the first link came
// up.
func (a *Assoc) Link() *uni.Link { return a.link }

// Signalling returns the link messages go out on now, nil while it is
// down.
func (a *Assoc) Signalling() SignallingLink { return a.sig }

// Up reports whether signalling can go to the peer now.
func (a *Assoc) Up() bool { return a.sig != nil && a.link != nil && a.link.IsUp() }

// Calls is the number of call references in use on the association,
// including calls kept for T309 while the link is down.
func (a *Assoc) Calls() int {
	if a.link == nil {
		return 0
	}
	return a.link.Calls()
}

// LinkUp is a signalling link to the peer coming up, with the peer's
// incarnation on it. The first one creates the uni.Link and restarts it
// (RESTART, all VCs, goes out before any SETUP); one with a new
// incarnation clears the old incarnation's calls; otherwise the link is
// re-established (uni LinkUp). apply is called, in order, with the
// Outputs to carry out. The calls and parties that waited for the link
// are the caller's to start now: TakeWaiting.
func (a *Assoc) LinkUp(sig SignallingLink, inc uint64, apply func(uni.Output)) LinkUpKind {
	a.sig = sig
	kind := LinkBack
	switch {
	case a.link == nil:
		kind = FirstLink
		a.link = uni.NewLink(a.cfg)
		a.timers = NewTimerQueue(a.mu, func(k uni.TimerKey) { a.expired(a.link.Expire(k)) })
		if out, err := a.link.Restart(nil); err == nil {
			apply(out)
		}
	case a.inc != inc:
		kind = PeerRestarted
		apply(a.link.PeerRestarted())
		apply(a.link.LinkUp())
	default:
		apply(a.link.LinkUp())
	}
	a.inc = inc
	return kind
}

// LinkDown is the signalling link failing (a SAAL failure): uni clears
// the calls that are not active at once and keeps the active ones for
// T309. apply is called with the Output to carry out.
func (a *Assoc) LinkDown(apply func(uni.Output)) {
	a.sig = nil
	if a.link != nil {
		apply(a.link.LinkDown())
	}
}

// Detach forgets the signalling link without telling uni (the owner is
// shutting down and ignores its links).
func (a *Assoc) Detach() { a.sig = nil }

// Receive decodes and processes one message received from the peer.
func (a *Assoc) Receive(msg []byte) uni.Output { return a.link.ReceiveBytes(msg) }

// ApplyTimers carries out the timer operations of an Output of the
// association's uni.Link.
func (a *Assoc) ApplyTimers(ops []uni.TimerOp) {
	if a.timers != nil {
		a.timers.Apply(ops)
	}
}

// StopTimers stops every timer of the association for good.
func (a *Assoc) StopTimers() {
	if a.timers != nil {
		a.timers.Stop()
	}
}

// The association's calls are the contexts of its uni.Link's calls
// (uni.Link.SetCallContext): an indication carries its call's record
// (uni.Indication.Context), so the call control finds it without a map of
// its own. A record is attached when the call control learns of the call
// (AddCall) and counted until its IndReleased is carried out
// (RemoveCall); the uni.Link forgets the call, and so the record, when it
// indicates IndReleased.

// Call returns the call with call reference id, nil if there is none.
func (a *Assoc) Call(id uni.CallID) *Call {
	if a.link == nil {
		return nil
	}
	c, _ := a.link.CallContext(id).(*Call)
	return c
}

// AddCall records c as the call with call reference id, which the
// association's uni.Link must hold; it returns the call's uni state, and
// false (recording nothing) if the uni.Link has no such call.
func (a *Assoc) AddCall(id uni.CallID, c *Call) (uni.CallState, bool) {
	if a.link == nil {
		return uni.StateNull, false
	}
	st, ok := a.link.SetCallContext(id, c)
	if ok {
		a.records++
	}
	return st, ok
}

// RemoveCall uncounts the call c, whose IndReleased has been carried
// out; it detaches c if the uni.Link still holds it.
func (a *Assoc) RemoveCall(c *Call) {
	a.records--
	if a.link != nil && a.Call(c.ID) == c {
		a.link.SetCallContext(c.ID, nil)
	}
}

// CallRecords returns the recorded calls the uni.Link still holds, in no
// particular order.
func (a *Assoc) CallRecords() []*Call {
	if a.link == nil {
		return nil
	}
	cs := make([]*Call, 0, a.link.Calls())
	a.link.EachCallContext(func(x any) {
		if c, ok := x.(*Call); ok {
			cs = append(cs, c)
		}
	})
	return cs
}

// CallRecordCount is the number of recorded calls whose IndReleased has
// not been carried out.
func (a *Assoc) CallRecordCount() int { return a.records }

// Wait queues a call or party for the link to come up.
func (a *Assoc) Wait(w Waiting) { a.waiting = append(a.waiting, w) }

// TakeWaiting returns the calls and parties waiting for the link, in the
// order they came, and forgets them.
func (a *Assoc) TakeWaiting() []Waiting {
	w := a.waiting
	a.waiting = nil
	return w
}

// AllocConn picks a connection identifier for a call this node is the
// called side of. The two nodes of an association allocate from disjoint
// sets (VPCI bit 0 is 0 on the node whose name sorts first, 1 on the
// other), so there is no glare; VCIs 0-31 are reserved as in ATM. Values
// are not reused until the 2^31-ish space wraps, so a late datagram of an
// old call does not reach a new one.
func (a *Assoc) AllocConn() uint32 {
	const span = 0x10000 - 32
	bit := uint32(1)
	if a.low {
		bit = 0
	}
	a.ConnMu.RLock()
	defer a.ConnMu.RUnlock()
	for {
		n := a.nextConn
		a.nextConn++
		vci := 32 + n%span
		vpci := ((n/span)<<1 | bit) & 0xFFFF
		id := vpci<<16 | vci
		if a.conns.Get(uint64(id)) == nil {
			return id
		}
	}
}

// BindConn makes conn c's connection identifier.
func (a *Assoc) BindConn(conn uint32, c *Call) {
	a.ConnMu.Lock()
	a.conns.Set(uint64(conn), c)
	a.ConnMu.Unlock()
}

// UnbindConn frees connection identifier conn if it is c's.
func (a *Assoc) UnbindConn(conn uint32, c *Call) {
	a.ConnMu.Lock()
	if a.conns.Get(uint64(conn)) == c {
		a.conns.Delete(uint64(conn))
	}
	a.ConnMu.Unlock()
}

// ConnInUse reports whether a call holds connection identifier conn.
func (a *Assoc) ConnInUse(conn uint32) bool {
	a.ConnMu.RLock()
	defer a.ConnMu.RUnlock()
	return a.conns.Get(uint64(conn)) != nil
}

// ConnLocked returns the call holding connection identifier conn, with
// ConnMu held (read or write).
func (a *Assoc) ConnLocked(conn uint32) *Call { return a.conns.Get(uint64(conn)) }
