package callctl

// Introspection, for `condis calls` and `condis peers`: what either call
// manager reports of its calls and peers, in one set of types.

import (
	"net"
	"slices"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// CallInfo describes one VC's call, for `condis calls`.
type CallInfo struct {
	Vc        string // the VC handle, e.g. "vc#7"
	Direction string // "outgoing" (the client made the call) or "incoming"
	State     string // State: idle, calling, offered, accepted, active, released, closing, closing-released, finishing
	Peer      string // the other node (the first leaf's node for a multipoint call)
	Service   string // the called service
	ConnID    uint32 // connection identifier (VPCI<<16 | VCI) of the first leg
	Reliable  bool
	// Transmit and Receive are the flowspecs in force (the activation
	// parameters), seen from this node.
	Transmit, Receive ndis.Flowspec
	Multipoint        bool
	Parties           []PartyInfo // root of a multipoint call
	Stats             Stats
}

// PartyInfo describes one leaf of a multipoint call.
type PartyInfo struct {
	Node, Service string
	State         string // adding, active, dropping, drop-indicated, closing, gone
	Endpoint      uint16 // endpoint reference on its leg
}

// Stats are a VC's data counters, as the data path (the MCM's, or the
// miniport's in the split topology) saw them.
type Stats struct {
	TxPackets, TxBytes uint64 // sent (completed with SUCCESS)
	TxDropped          uint64 // completed with a failure: too long, nonconforming, link down, closing
	TxPoliced          uint64 // of TxDropped, nonconforming: dropped by policing (NDIS_STATUS_RESOURCES)
	TxShaped           uint64 // held back by the shaper before going out
	RxPackets, RxBytes uint64 // indicated to the client
	RxDropped          uint64 // arrived when the VC could not take them
}

// Calls describes every VC that carries or carried a call, in creation
// order, without data counters; vcs are the records described, for the
// owner to add them. It takes the core's lock.
func (d *Core) Calls() (out []CallInfo, vcs []*Vc) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for v := d.VCs.Head; v != nil; v = v.Next() {
		if v.Handle != nil && v.State() != Idle {
			vcs = append(vcs, v)
		}
	}
	slices.SortStableFunc(vcs, func(a, b *Vc) int { return SeqCompare(a.Seq, b.Seq) })
	out = make([]CallInfo, 0, len(vcs))
	for _, v := range vcs {
		ci := CallInfo{Vc: v.Handle.String(), Direction: "outgoing", State: v.State().String(), Service: v.Service.String(),
			Reliable: v.Reliable, Multipoint: v.Multipoint}
		if v.Assoc != nil {
			ci.Peer = v.Assoc.Peer()
		}
		if v.Incoming {
			ci.Direction = "incoming"
		}
		if v.Act.InForceLocked() {
			ci.Transmit, ci.Receive = v.Tx(), v.Rx()
		}
		if c := v.Call; c != nil && c.HasConn {
			ci.ConnID = c.Conn
		}
		for _, pt := range v.Parties() {
			ci.Parties = append(ci.Parties, PartyInfo{Node: pt.Node, Service: pt.Service, State: pt.State.String(), Endpoint: pt.EP})
		}
		out = append(out, ci)
	}
	return out, vcs
}

// LinkState is the state of the link to a peer, as PeerInfo reports it.
type LinkState uint8

// Link states. The zero value is LinkDown: a peer the call manager has
// heard of and never reached.
const (
	LinkDown       LinkState = iota // no link, and no dial in progress
	LinkConnecting                  // no link; dialling (the first time, or again after a loss while calls are kept for T309)
	LinkUp                          // the link is up
)

// String returns "down", "connecting" or "up".
func (s LinkState) String() string {
	switch s {
	case LinkDown:
		return "down"
	case LinkConnecting:
		return "connecting"
	case LinkUp:
		return "up"
	}
	return "?"
}

// PeerInfo describes one peer of a call manager, for `condis peers`.
type PeerInfo struct {
	Name    string
	Address uni.AESA // its ATM End System Address
	// Remote is the network address of the live link (the address dialled,
	// or the one the peer connected from), when the transport says
	// (transport.RemoteAddresser); nil while the link is down.
	Remote net.Addr
	State  LinkState
	// Since is when State last changed; zero if it never did (a peer
	// known, never dialled).
	Since time.Time
	// RTT is the live link's smoothed round-trip time, when the transport
	// measures it (transport.RTTer); 0 while the link is down.
	RTT time.Duration
	// Calls is the number of calls with the peer: every call reference
	// in use on its signalling association, including calls kept for
	// T309 while the link is down.
	Calls int
	// MessagesIn and MessagesOut count the Q.2931 messages received from
	// and sent to the peer since the call manager started (every message,
	// whether it decoded or not).
	MessagesIn, MessagesOut uint64
	// LastError is the last thing that went wrong with the link, in one
	// line: why it went down ("link down: timeout: no recent network
	// activity") or why a dial failed since (the transport's error, such
	// as a TLS verification failure); "" if nothing did. It stays after
	// the link comes back; LastErrorAt says when.
	LastError   string
	LastErrorAt time.Time
	// LinkLoss says why the last link went down, even if dials failed
	// since; "" if no link ever went down.
	LinkLoss string
}

// PeerView is what a call manager keeps of a peer for PeerInfo beyond
// what the peer holds anyway: the link state and since when, the
// signalling counted both ways, the last error. Guarded by the owner's
// lock.
type PeerView struct {
	State   LinkState
	Since   time.Time
	In, Out uint64 // signalling messages received and sent
	Err     string
	ErrAt   time.Time
	Loss    string // why the last link went down
}

// NoteState records the link state s, if it changed (or was never noted).
func (v *PeerView) NoteState(s LinkState) {
	if s != v.State || v.Since.IsZero() {
		v.State, v.Since = s, time.Now()
	}
}

// NoteError records what went wrong with the link.
func (v *PeerView) NoteError(text string) { v.Err, v.ErrAt = text, time.Now() }

// NoteLinkDown records a link loss and why ("link down: ..."), and the
// state s it left the link in.
func (v *PeerView) NoteLinkDown(why string, s LinkState) {
	v.Loss = why
	v.NoteError(why)
	v.NoteState(s)
}

// Info is the PeerInfo of the view, for peer name at address, its link in
// state, with calls calls (the transport's RTT and remote address are the
// owner's to add).
func (v *PeerView) Info(name string, address uni.AESA, state LinkState, calls int) PeerInfo {
	return PeerInfo{Name: name, Address: address, State: state, Since: v.Since, Calls: calls,
		MessagesIn: v.In, MessagesOut: v.Out, LastError: v.Err, LastErrorAt: v.ErrAt, LinkLoss: v.Loss}
}
