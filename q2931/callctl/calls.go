package callctl

// The call records: VCs, the uni calls carrying them and the parties of a
// multipoint root. They point at each other (a VC at its calls, a call at
// its VCs, a party at both) and are guarded by the call manager's lock;
// where received data goes is guarded by the association's ConnMu as well.

import (
	"cmp"
	"slices"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Vc is the call manager's record of a VC: the call control's part of its
// VC context (the call manager embeds it in its own, with the data path;
// Data reaches that).
//
// A node may hold a million of these (design §7: at most 1 KiB per
// established VC, everything counted), so what only some calls or some
// phases need is kept behind pointers that are nil otherwise: the offer
// while an incoming call waits for its answer, the legs and parties of a
// multipoint root. The parameters the VC is activated with are kept as
// their two flowspecs and built when needed: the mediator keeps its own
// copy. A service name is kept in place, not as a string.
type Vc struct {
	AF         *AF
	Handle     *ndis.Vc
	prev, next *Vc // the call manager's VCList

	// Call state, guarded by the call manager's lock.
	Seq       uint32 // creation order (wraps: compare with SeqCompare)
	CallState VC     // the call state: changed only through Transitions.Move
	// MadeAt is when NdisClMakeCall came, as time since the call manager started (so
	// monotonic, and a third of a time.Time), when calls are traced
	// (Config.Tracer.Call); 0 when not.
	MadeAt     time.Duration
	Incoming   bool
	Reliable   bool
	Multipoint bool
	// Act is the VC's activation: (M)CmActivateVc through the CM, which
	// completes at once for an MCM but may pend for another CM (the flows
	// continue when it completes). Tx and Rx are in force while
	// Act.InForceLocked.
	Act          VcActivation
	PartyEnded   bool        // a multipoint leaf: its party ended at the uni level
	DeleteQueued bool        // incoming: deletion is on its way
	EP           uint16      // incoming: the party's endpoint reference on c (multipoint), else the call's first
	Service      ServiceName // the called service
	QoSPending   bool        // ProtocolCmModifyCallQoS waits for the peer (Req is its buffer)
	Assoc        *Assoc      // the adjacent peer (of a multipoint root: the first leaf's)
	// Call is the uni call of an incoming VC, or the first leg of an
	// outgoing one (a point-to-point call's only leg; a multipoint
	// root's further legs are in MP.Legs). Nil when there is none.
	Call *Call
	MP   *RootState // outgoing multipoint: legs and parties
	// Req is the client's buffer of the request in progress, the CM's
	// until it completes: NdisClMakeCall's while calling, or
	// NdisClModifyCallQoS's while QoSPending (never both: a QoS change
	// needs an established call).
	Req *ndis.CallParameters
	// flows are the flowspecs of the activation (Tx, Rx), while
	// Act.InForceLocked; shared with other VCs (Core.setFlowsLocked).
	flows *Flows
	Offer *Offer // incoming: the call offered and not answered yet

	// Data is the VC's data path: the call manager's, which the call
	// control tells when data may flow and where to.
	Data DataPath
}

// Flows is a VC's pair of flowspecs. Most calls of a call manager have
// the same, so their VCs share one copy, never changed in place: a copy
// each cost a held call 64 octets.
type Flows struct{ Tx, Rx ndis.Flowspec }

// Tx is v's transmit flowspec of the activation; zero if it has none.
// The call manager's lock is held.
func (v *Vc) Tx() ndis.Flowspec {
	if v.flows == nil {
		return ndis.Flowspec{}
	}
	return v.flows.Tx
}

// Rx is v's receive flowspec of the activation; zero if it has none.
// The call manager's lock is held.
func (v *Vc) Rx() ndis.Flowspec {
	if v.flows == nil {
		return ndis.Flowspec{}
	}
	return v.flows.Rx
}

// setFlowsLocked sets v's flowspecs to tx and rx: the copy the VC set
// before shared, if it has the same.
func (d *Core) setFlowsLocked(v *Vc, tx, rx ndis.Flowspec) {
	if f := d.flows; f == nil || f.Tx != tx || f.Rx != rx {
		d.flows = &Flows{tx, rx}
	}
	v.flows = d.flows
}

// RootState is what only the root of a point-to-multipoint call keeps.
type RootState struct {
	Legs       []*Call  // the legs after the first (vc.c): one per further leaf node
	Parties    []*Party // the CoNDIS parties, the MakeCall's first
	CloseParty *Party   // the party ProtocolCmCloseCall named
}

// State is v's call state (see State for its transitions).
func (v *Vc) State() State { return v.CallState.State() }

// DropOfferLocked drops and recycles an offer the client never got.
func (v *Vc) DropOfferLocked() {
	if o := v.Offer; o != nil {
		v.Offer = nil
		o.Free()
	}
}

// Answered reports whether the client's answer to an incoming VC's offer
// arrived (or the offer never reached the client).
func (v *Vc) Answered() bool { return v.Offer == nil }

// InitialParty is the party of the MakeCall of a multipoint VC.
func (v *Vc) InitialParty() *Party {
	if v.MP != nil && len(v.MP.Parties) > 0 {
		return v.MP.Parties[0]
	}
	return nil
}

// Parties returns the CoNDIS parties of a multipoint root.
func (v *Vc) Parties() []*Party {
	if v.MP == nil {
		return nil
	}
	return v.MP.Parties
}

// LegOn returns an outgoing VC's leg to the peer of a, if it has one.
func (v *Vc) LegOn(a *Assoc) *Call {
	if v.Call != nil && v.Call.Assoc == a {
		return v.Call
	}
	if v.MP != nil {
		for _, c := range v.MP.Legs {
			if c.Assoc == a {
				return c
			}
		}
	}
	return nil
}

// AddLeg adds a leg to an outgoing VC: its first, or a further one of a
// multipoint root.
func (v *Vc) AddLeg(c *Call) {
	if v.Call == nil {
		v.Call = c
		return
	}
	v.MP.Legs = append(v.MP.Legs, c)
}

// RemoveLeg removes a leg of an outgoing VC; the next one, if any, becomes
// the first.
func (v *Vc) RemoveLeg(c *Call) {
	if v.Call == c {
		v.Call = nil
		if v.MP != nil && len(v.MP.Legs) > 0 {
			v.Call = v.MP.Legs[0]
			v.MP.Legs = slices.Delete(v.MP.Legs, 0, 1)
		}
		return
	}
	if v.MP != nil {
		if i := slices.Index(v.MP.Legs, c); i >= 0 {
			v.MP.Legs = slices.Delete(v.MP.Legs, i, i+1)
		}
	}
}

// FurtherLegs returns a multipoint root's legs after the first.
func (v *Vc) FurtherLegs() []*Call {
	if v.MP == nil {
		return nil
	}
	return v.MP.Legs
}

// DropCall forgets an outgoing VC's legs and parties: its call is over.
func (v *Vc) DropCall() {
	v.Call = nil
	if v.MP != nil {
		v.MP.Legs, v.MP.Parties, v.MP.CloseParty = nil, nil, nil
	}
}

// SeqCompare orders VC sequence numbers by serial-number arithmetic
// (RFC 1982): they wrap after 2^32 VCs, and the VCs alive at once are far
// fewer than 2^31 apart.
func SeqCompare(a, b uint32) int { return cmp.Compare(int32(a-b), 0) }

// VCList is a call manager's VCs in creation order, linked through the VCs
// themselves: no map entry, and no rehashing as the number grows.
type VCList struct {
	Head *Vc // the oldest VC, nil if there is none
	tail *Vc
	Len  int // the number of VCs in the list
}

// Push appends v, the newest VC, to the list.
func (l *VCList) Push(v *Vc) {
	v.prev, v.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = v
	} else {
		l.Head = v
	}
	l.tail = v
	l.Len++
}

// Remove unlinks v; it does nothing if v is not in the list.
func (l *VCList) Remove(v *Vc) {
	if v.prev == nil && l.Head != v {
		return
	}
	if v.prev != nil {
		v.prev.next = v.next
	} else {
		l.Head = v.next
	}
	if v.next != nil {
		v.next.prev = v.prev
	} else {
		l.tail = v.prev
	}
	v.prev, v.next = nil, nil
	l.Len--
}

// Party is the call manager's context for one leaf of a multipoint root.
type Party struct {
	VC            *Vc
	Handle        *ndis.Party
	Node, Service string
	Params        *ndis.CallParameters // NdisClAddParty's buffer, the CM's until completion
	State         PartyState
	Call          *Call  // its leg, nil while waiting for the link
	EP            uint16 // endpoint reference on the leg
	Initial       bool   // the MakeCall's party
}

// Call is the call manager's record of one uni call (one call reference on
// one peer's association). What only a point-to-multipoint call needs is in
// MP.
type Call struct {
	Assoc   *Assoc
	ID      uni.CallID
	Conn    uint32 // connection identifier, when known (hasConn)
	FirstEP uint16 // the endpoint reference of the SETUP's party (multipoint)
	HasConn bool
	P2MP    bool
	Ended   bool // IndReleased handled: the call is gone from the uni.Link

	Releasing bool // this side sent RELEASE (U11): an end without an answer means T308 ran out
	Connected bool // outgoing: CONNECT arrived
	Reliable  bool // incoming: the SETUP asked for reliable delivery

	Out   *Vc     // outgoing: its VC
	First *Vc     // incoming: the VC of the SETUP's party (nil once deleted)
	MP    *CallMP // point-to-multipoint calls only

	Rx *Vc // point-to-point: where received data goes; guarded by Assoc.ConnMu
}

// CallMP is what only a point-to-multipoint call keeps.
type CallMP struct {
	EPs      map[uint16]*Party // outgoing: parties by endpoint reference
	WaitAdds []*Party          // outgoing: parties to add once the leg is active

	In       []*Vc         // incoming: the VCs of parties added after the SETUP's, in creation order
	Fwd, Bwd ndis.Flowspec // incoming: what the SETUP asked for, offered again to added parties

	Rx []*Vc // where received data goes; guarded by Assoc.ConnMu (copied on change)
}

// Party returns an outgoing multipoint call's party on endpoint ep.
func (c *Call) Party(ep uint16) *Party {
	if c.MP == nil {
		return nil
	}
	return c.MP.EPs[ep]
}

// InVC returns an incoming call's VC for endpoint ep.
func (c *Call) InVC(ep uint16) *Vc {
	if c.First != nil && c.First.EP == ep {
		return c.First
	}
	if c.MP != nil {
		for _, v := range c.MP.In {
			if v.EP == ep {
				return v
			}
		}
	}
	return nil
}

// AddIn records an incoming VC of the call.
func (c *Call) AddIn(v *Vc) {
	if c.MP == nil || (c.First == nil && v.EP == c.FirstEP) {
		c.First = v
		return
	}
	c.MP.In = append(c.MP.In, v)
}

// RemoveIn forgets an incoming VC of the call.
func (c *Call) RemoveIn(v *Vc) {
	if c.First == v {
		c.First = nil
		return
	}
	if c.MP != nil {
		if i := slices.Index(c.MP.In, v); i >= 0 {
			c.MP.In = slices.Delete(c.MP.In, i, i+1)
		}
	}
}

// EachIn calls f for the call's incoming VCs in creation order.
func (c *Call) EachIn(f func(v *Vc)) {
	if c.First != nil {
		f(c.First)
	}
	if c.MP != nil {
		for _, v := range slices.Clone(c.MP.In) {
			f(v)
		}
	}
}

// SetRx sets the one VC a point-to-point call's received data goes to
// (nil: nowhere).
func (c *Call) SetRx(v *Vc) {
	c.Assoc.ConnMu.Lock()
	c.Rx = v
	if c.MP != nil && v == nil {
		c.MP.Rx = nil
	}
	c.Assoc.ConnMu.Unlock()
}

// AddRx adds a VC the call's received data goes to.
func (c *Call) AddRx(v *Vc) {
	c.Assoc.ConnMu.Lock()
	if c.MP == nil {
		c.Rx = v
	} else {
		c.MP.Rx = append(slices.Clip(c.MP.Rx), v)
	}
	c.Assoc.ConnMu.Unlock()
}

// DropRx stops the call's received data going to v.
func (c *Call) DropRx(v *Vc) {
	c.Assoc.ConnMu.Lock()
	if c.Rx == v {
		c.Rx = nil
	}
	if c.MP != nil {
		out := make([]*Vc, 0, len(c.MP.Rx))
		for _, x := range c.MP.Rx {
			if x != v {
				out = append(out, x)
			}
		}
		c.MP.Rx = out
	}
	c.Assoc.ConnMu.Unlock()
}

// RxToLocked returns where received data goes, with Assoc.ConnMu held. A
// point-to-point call's one VC is put in one, so no slice is kept per
// call; the result must not be kept.
func (c *Call) RxToLocked(one *[1]*Vc) []*Vc {
	if c.MP != nil {
		return c.MP.Rx
	}
	if c.Rx == nil {
		return nil
	}
	one[0] = c.Rx
	return one[:]
}

// Next returns the VC created after v that is still in its VCList, nil if
// there is none.
func (v *Vc) Next() *Vc { return v.next }

// DataPath is a VC's data path, as the call control drives it: the miniport
// call manager's carries the VC's data over its transport; a stand-alone
// call manager's leaves data to the miniport (it passes the media
// parameters at activation instead). The call control calls it without its
// lock held, or from work it queues, in the order the call's events came.
//
// A DataPath that puts a root's destinations in force later (a stand-alone
// call manager re-activates the root's VC through a miniport that may
// pend it) also implements DestsLater.
type DataPath interface {
	// Open sets the VC up for data with its activation's transmit
	// flowspec (maxTx: the largest SDU it may send), towards the call to
	// (nil: a multipoint root's legs, SetDests); send and recv say whether
	// data may flow each way at once.
	Open(tx ndis.Flowspec, maxTx int, reliable bool, to *Call, send, recv bool)
	// AllowSend lets the client send (the call is connected).
	AllowSend()
	// AllowReceive lets received data reach the client.
	AllowReceive()
	// SetDests sets a multipoint root's destinations: its connected legs.
	SetDests(legs []*Call)
	// SetFlow replaces the transmit flowspec (a QoS change).
	SetFlow(tx ndis.Flowspec)
	// Halt refuses further sends with st and completes the queued ones
	// with st (the call is going away).
	Halt(st ndis.Status)
	// Stop ends the data path (no more sends or receives) and then runs
	// idle as mediator work (Core.Later), once every send is completed
	// and no receive is being indicated: the VC may be deactivated.
	Stop(idle func())
	// CloseStreams ends this side's reliable streams of a call that is
	// over.
	CloseStreams()
	// Reset makes the data path reusable for a new call.
	Reset()
}

// DestsLater is a DataPath whose SetDests takes effect later. The call
// control calls SetDestsThen instead when a leg connects, and completes
// the AddParty of the leg's first party from then, so a party is added
// only once data the root sends reaches it.
type DestsLater interface {
	// SetDestsThen is SetDests; then runs, holding no lock, once the
	// legs are in force (or failed to be: the party is added all the
	// same, as its leg is up).
	SetDestsThen(legs []*Call, then func())
}

// Waiting is a SETUP (or an ADD PARTY opening a new leg) waiting for the
// link to its peer (Assoc.Wait).
type Waiting struct {
	VC    *Vc
	Party *Party // nil for a point-to-point call
}
