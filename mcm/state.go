package mcm

import (
	"time"

	"cmp"
	"slices"
	"sync/atomic"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/uni"
)

var seqs atomic.Uint64 // creation order of AFs and VCs, for stable listings

// vc is the MCM's context for a VC: its VC context and, for a VC it
// created, its miniport VC context too.
//
// A node may hold a million of these (design §7: at most 1 KiB per
// established VC, everything counted), so what only some calls or some
// phases need is kept behind pointers that are nil otherwise: the offer
// while an incoming call waits for its answer, the legs and parties of a
// multipoint root. The parameters the VC is activated with are kept as
// their two flowspecs and built when needed: the mediator keeps its own
// copy. A service name is kept in place, not as a string.
type vc struct {
	af         *callctl.AF
	h          *ndis.Vc
	prev, next *vc // d.vcs

	// Call state, guarded by d.mu.
	seq uint32     // creation order (wraps: compare with seqCompare)
	cs  callctl.VC // the call state: changed only by d.moveLocked
	// madeAt is when NdisClMakeCall came, as time since d.started (so
	// monotonic, and a third of a time.Time), when calls are traced
	// (Config.Tracer.Call); 0 when not.
	madeAt     time.Duration
	incoming   bool
	reliable   bool
	multipoint bool
	// act is the VC's activation: NdisMCmActivateVc through d.cm, which
	// completes at once for an MCM but may pend for another CM (the flows
	// continue in ActivationDone). tx and rx are in force while
	// act.InForceLocked.
	act          callctl.VcActivation
	partyEnded   bool                // a multipoint leaf: its party ended at the uni level
	deleteQueued bool                // incoming: deletion is on its way
	ep           uint16              // incoming: the party's endpoint reference on c (multipoint), else the call's first
	service      callctl.ServiceName // the called service
	qosPending   bool                // ProtocolCmModifyCallQoS waits for the peer (req is its buffer)
	p            *peer               // the other node (of a multipoint root: the first leaf's)
	// c is the uni call of an incoming VC, or the first leg of an
	// outgoing one (a point-to-point call's only leg; a multipoint
	// root's further legs are in mp.legs). Nil when there is none.
	c  *call
	mp *rootState // outgoing multipoint: legs and parties
	// req is the client's buffer of the request in progress, the MCM's
	// until it completes: NdisClMakeCall's while calling, or
	// NdisClModifyCallQoS's while qosPending (never both: a QoS change
	// needs an established call).
	req    *ndis.CallParameters
	tx, rx ndis.Flowspec  // the flowspecs of the activation, while act.InForceLocked
	offer  *callctl.Offer // incoming: the call offered and not answered yet

	data dataPath
}

// rootState is what only the root of a point-to-multipoint call keeps.
type rootState struct {
	legs       []*call  // the legs after the first (vc.c): one per further leaf node
	parties    []*party // the CoNDIS parties, the MakeCall's first
	closeParty *party   // the party ProtocolCmCloseCall named
}

// state is v's call state (see callctl.State for its transitions).
func (v *vc) state() callctl.State { return v.cs.State() }

// dropOfferLocked drops and recycles an offer the client never got.
func (v *vc) dropOfferLocked() {
	if o := v.offer; o != nil {
		v.offer = nil
		o.Free()
	}
}

// answered reports whether the client's answer to an incoming VC's offer
// arrived (or the offer never reached the client).
func (v *vc) answered() bool { return v.offer == nil }

// initialParty is the party of the MakeCall of a multipoint VC.
func (v *vc) initialParty() *party {
	if v.mp != nil && len(v.mp.parties) > 0 {
		return v.mp.parties[0]
	}
	return nil
}

// parties returns the CoNDIS parties of a multipoint root.
func (v *vc) parties() []*party {
	if v.mp == nil {
		return nil
	}
	return v.mp.parties
}

// legOn returns an outgoing VC's leg to p, if it has one.
func (v *vc) legOn(p *peer) *call {
	if v.c != nil && v.c.p == p {
		return v.c
	}
	if v.mp != nil {
		for _, c := range v.mp.legs {
			if c.p == p {
				return c
			}
		}
	}
	return nil
}

// addLeg adds a leg to an outgoing VC: its first, or a further one of a
// multipoint root.
func (v *vc) addLeg(c *call) {
	if v.c == nil {
		v.c = c
		return
	}
	v.mp.legs = append(v.mp.legs, c)
}

// removeLeg removes a leg of an outgoing VC; the next one, if any, becomes
// the first.
func (v *vc) removeLeg(c *call) {
	if v.c == c {
		v.c = nil
		if v.mp != nil && len(v.mp.legs) > 0 {
			v.c = v.mp.legs[0]
			v.mp.legs = slices.Delete(v.mp.legs, 0, 1)
		}
		return
	}
	if v.mp != nil {
		if i := slices.Index(v.mp.legs, c); i >= 0 {
			v.mp.legs = slices.Delete(v.mp.legs, i, i+1)
		}
	}
}

// furtherLegs returns a multipoint root's legs after the first.
func (v *vc) furtherLegs() []*call {
	if v.mp == nil {
		return nil
	}
	return v.mp.legs
}

// dropCall forgets an outgoing VC's legs and parties: its call is over.
func (v *vc) dropCall() {
	v.c = nil
	if v.mp != nil {
		v.mp.legs, v.mp.parties, v.mp.closeParty = nil, nil, nil
	}
}

// seqCompare orders VC sequence numbers by serial-number arithmetic
// (RFC 1982): they wrap after 2^32 VCs, and the VCs alive at once are far
// fewer than 2^31 apart.
func seqCompare(a, b uint32) int { return cmp.Compare(int32(a-b), 0) }

// vcList is the MCM's VCs in creation order, linked through the VCs
// themselves: no map entry, and no rehashing as the number grows.
type vcList struct {
	head, tail *vc
	n          int
}

func (l *vcList) push(v *vc) {
	v.prev, v.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = v
	} else {
		l.head = v
	}
	l.tail = v
	l.n++
}

// remove unlinks v; it does nothing if v is not in the list.
func (l *vcList) remove(v *vc) {
	if v.prev == nil && l.head != v {
		return
	}
	if v.prev != nil {
		v.prev.next = v.next
	} else {
		l.head = v.next
	}
	if v.next != nil {
		v.next.prev = v.prev
	} else {
		l.tail = v.prev
	}
	v.prev, v.next = nil, nil
	l.n--
}

// party is the MCM's context for one leaf of a multipoint root.
type party struct {
	v             *vc
	h             *ndis.Party
	node, service string
	params        *ndis.CallParameters // NdisClAddParty's buffer, the CM's until completion
	state         callctl.PartyState
	c             *call  // its leg, nil while waiting for the link
	ep            uint16 // endpoint reference on the leg
	initial       bool   // the MakeCall's party
}

// call is the MCM's record of one uni call (one call reference on one
// peer's link). What only a point-to-multipoint call needs is in mp.
type call struct {
	p       *peer
	id      uni.CallID
	conn    uint32 // connection identifier, when known (hasConn)
	firstEP uint16 // the endpoint reference of the SETUP's party (multipoint)
	hasConn bool
	p2mp    bool
	ended   bool // IndReleased handled: the call is gone from the uni.Link

	releasing bool // this side sent RELEASE (U11): an end without an answer means T308 ran out
	connected bool // outgoing: CONNECT arrived
	reliable  bool // incoming: the SETUP asked for reliable delivery

	out   *vc     // outgoing: its VC
	first *vc     // incoming: the VC of the SETUP's party (nil once deleted)
	mp    *callMP // point-to-multipoint calls only

	rx *vc // point-to-point: where received data goes; guarded by p.as.ConnMu
}

// callMP is what only a point-to-multipoint call keeps.
type callMP struct {
	eps      map[uint16]*party // outgoing: parties by endpoint reference
	waitAdds []*party          // outgoing: parties to add once the leg is active

	in       []*vc         // incoming: the VCs of parties added after the SETUP's, in creation order
	fwd, bwd ndis.Flowspec // incoming: what the SETUP asked for, offered again to added parties

	rx []*vc // where received data goes; guarded by p.as.ConnMu (copied on change)
}

// party returns an outgoing multipoint call's party on endpoint ep.
func (c *call) party(ep uint16) *party {
	if c.mp == nil {
		return nil
	}
	return c.mp.eps[ep]
}

// inVC returns an incoming call's VC for endpoint ep.
func (c *call) inVC(ep uint16) *vc {
	if c.first != nil && c.first.ep == ep {
		return c.first
	}
	if c.mp != nil {
		for _, v := range c.mp.in {
			if v.ep == ep {
				return v
			}
		}
	}
	return nil
}

// addIn records an incoming VC of the call.
func (c *call) addIn(v *vc) {
	if c.mp == nil || (c.first == nil && v.ep == c.firstEP) {
		c.first = v
		return
	}
	c.mp.in = append(c.mp.in, v)
}

// removeIn forgets an incoming VC of the call.
func (c *call) removeIn(v *vc) {
	if c.first == v {
		c.first = nil
		return
	}
	if c.mp != nil {
		if i := slices.Index(c.mp.in, v); i >= 0 {
			c.mp.in = slices.Delete(c.mp.in, i, i+1)
		}
	}
}

// eachIn calls f for the call's incoming VCs in creation order.
func (c *call) eachIn(f func(v *vc)) {
	if c.first != nil {
		f(c.first)
	}
	if c.mp != nil {
		for _, v := range slices.Clone(c.mp.in) {
			f(v)
		}
	}
}

// setRx sets the one VC a point-to-point call's received data goes to
// (nil: nowhere).
func (c *call) setRx(v *vc) {
	c.p.as.ConnMu.Lock()
	c.rx = v
	if c.mp != nil && v == nil {
		c.mp.rx = nil
	}
	c.p.as.ConnMu.Unlock()
}

// addRx adds a VC the call's received data goes to.
func (c *call) addRx(v *vc) {
	c.p.as.ConnMu.Lock()
	if c.mp == nil {
		c.rx = v
	} else {
		c.mp.rx = append(slices.Clip(c.mp.rx), v)
	}
	c.p.as.ConnMu.Unlock()
}

// dropRx stops the call's received data going to v.
func (c *call) dropRx(v *vc) {
	c.p.as.ConnMu.Lock()
	if c.rx == v {
		c.rx = nil
	}
	if c.mp != nil {
		out := make([]*vc, 0, len(c.mp.rx))
		for _, x := range c.mp.rx {
			if x != v {
				out = append(out, x)
			}
		}
		c.mp.rx = out
	}
	c.p.as.ConnMu.Unlock()
}

// rxToLocked returns where received data goes, with p.as.ConnMu held. A
// point-to-point call's one VC is put in one, so no slice is kept per
// call; the result must not be kept.
func (c *call) rxToLocked(one *[1]*vc) []*vc {
	if c.mp != nil {
		return c.mp.rx
	}
	if c.rx == nil {
		return nil
	}
	one[0] = c.rx
	return one[:]
}

// failure turns a status for a call that did not come up into a failure:
// normal clearing before the connect is still a failed setup.
func failure(st ndis.Status) ndis.Status {
	if st == ndis.StatusSuccess {
		return ndis.StatusFailure
	}
	return st
}
