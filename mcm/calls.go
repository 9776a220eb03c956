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
	for v := vcOf(d.core.VCs.Head); v != nil; v = vcOf(v.Next()) {
		if v.Handle != nil && v.State() != callctl.Idle {
			vs = append(vs, v)
		}
	}
	slices.SortStableFunc(vs, func(a, b *vc) int { return callctl.SeqCompare(a.Seq, b.Seq) })
	out := make([]CallInfo, 0, len(vs))
	for _, v := range vs {
		ci := CallInfo{Vc: v.Handle.String(), Direction: "outgoing", State: v.State().String(), Service: v.Service.String(),
			Reliable: v.Reliable, Multipoint: v.Multipoint}
		if v.Assoc != nil {
			ci.Peer = v.Assoc.Peer()
		}
		if v.Incoming {
			ci.Direction = "incoming"
		}
		if v.Act.InForceLocked() {
			ci.Transmit, ci.Receive = v.Tx, v.Rx
		}
		if c := v.Call; c != nil && c.HasConn {
			ci.ConnID = c.Conn
		}
		for _, pt := range v.Parties() {
			ci.Parties = append(ci.Parties, PartyInfo{Node: pt.Node, Service: pt.Service, State: pt.State.String(), Endpoint: pt.EP})
		}
		out = append(out, ci)
	}
	d.mu.Unlock()
	for i, v := range vs {
		out[i].Stats = v.data.stats()
	}
	return out
}
