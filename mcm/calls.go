package mcm

// Introspection of the calls: Calls, for `condis calls`.

import (
	"slices"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
)

// CallInfo describes one VC's call, for `condis calls`.
type CallInfo struct {
	Vc        string // the VC handle, e.g. "vc#7"
	Direction string // "outgoing" (the client made the call) or "incoming"
	State     string // callctl.State: idle, calling, offered, accepted, active, released, closing, closing-released, finishing
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

// Stats are a VC's data counters, as the MCM saw them.
type Stats struct {
	TxPackets, TxBytes uint64 // sent (completed with SUCCESS)
	TxDropped          uint64 // completed with a failure: too long, nonconforming, link down, closing
	TxPoliced          uint64 // of TxDropped, nonconforming: dropped by policing (NDIS_STATUS_RESOURCES)
	TxShaped           uint64 // held back by the shaper before going out
	RxPackets, RxBytes uint64 // indicated to the client
	RxDropped          uint64 // arrived when the VC could not take them
}

// Calls returns every VC that carries or carried a call, in creation order.
func (d *MCM) Calls() []CallInfo {
	d.mu.Lock()
	var vs []*vc
	for v := d.vcs.head; v != nil; v = v.next {
		if v.h != nil && v.state() != callctl.Idle {
			vs = append(vs, v)
		}
	}
	slices.SortStableFunc(vs, func(a, b *vc) int { return seqCompare(a.seq, b.seq) })
	out := make([]CallInfo, 0, len(vs))
	for _, v := range vs {
		ci := CallInfo{Vc: v.h.String(), Direction: "outgoing", State: v.state().String(), Service: v.service.String(),
			Reliable: v.reliable, Multipoint: v.multipoint}
		if v.p != nil {
			ci.Peer = v.p.name
		}
		if v.incoming {
			ci.Direction = "incoming"
		}
		if v.act.InForceLocked() {
			ci.Transmit, ci.Receive = v.tx, v.rx
		}
		if c := v.c; c != nil && c.hasConn {
			ci.ConnID = c.conn
		}
		for _, pt := range v.parties() {
			ci.Parties = append(ci.Parties, PartyInfo{Node: pt.node, Service: pt.service, State: pt.state.String(), Endpoint: pt.ep})
		}
		out = append(out, ci)
	}
	d.mu.Unlock()
	for i, v := range vs {
		out[i].Stats = v.data.stats()
	}
	return out
}
