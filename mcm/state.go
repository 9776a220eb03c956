package mcm

import (
	"strconv"
	"sync/atomic"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

var seqs atomic.Uint64 // creation order of AFs and VCs, for stable listings

// af is the MCM's context for one client's open of the address family.
type af struct {
	seq      uint64
	h        *ndis.Af
	vcs      int  // VCs the MCM created on this open and has not deleted (R-AF-15)
	closing  bool // ProtocolCmCloseAf pended until vcs reaches 0
	closed   bool
	notified bool // NdisMCmNotifyCloseAddressFamily sent
	saps     map[*sap]struct{}
}

// sap is the MCM's context for a registered SAP.
type sap struct {
	af      *af
	h       *ndis.Sap
	service string
}

// vcState is the call state of a VC as the MCM sees it. The zero value is
// not a state.
//
// A VC the client created (outgoing):
//
//	idle ──ProtocolCmMakeCall──▶ calling ──CONNECT, NdisMCmActivateVc, MakeCallComplete(SUCCESS)──▶ active
//	calling ──RELEASE / RELEASE COMPLETE / T303 / link loss / dial failure, MakeCallComplete(failure)──▶ idle
//
// A VC the MCM created for a SETUP (incoming):
//
//	(SETUP: NdisMCmCreateVc, NdisMCmActivateVc, NdisMCmDispatchIncomingCall) ──▶ offered
//	offered ──client accepts / CONNECT──▶ accepted ──CONNECT ACKNOWLEDGE, CallConnected──▶ active
//	offered ──client rejects / RELEASE COMPLETE──▶ idle, deactivated and deleted
//
// Either, once a call exists:
//
//	offered, accepted, active ──the network ends it: IncomingCloseCall──▶ released
//	accepted, active, released ──ProtocolCmCloseCall──▶ closing
//	closing ──the network part is over, data drained, NdisMCmDeactivateVc, CloseCallComplete──▶ idle
//
// An incoming VC is deleted (NdisMCmDeleteVc) once idle again.
type vcState uint8

const (
	stIdle vcState = iota + 1
	stCalling
	stOffered
	stAccepted
	stActive
	stReleased
	stClosing
)

func (s vcState) String() string {
	switch s {
	case stIdle:
		return "idle"
	case stCalling:
		return "calling"
	case stOffered:
		return "offered"
	case stAccepted:
		return "accepted"
	case stActive:
		return "active"
	case stReleased:
		return "released"
	case stClosing:
		return "closing"
	}
	return "state " + strconv.Itoa(int(s))
}

// vc is the MCM's context for a VC: its VC context and, for a VC it
// created, its miniport VC context too.
type vc struct {
	d        *MCM
	seq      uint64
	af       *af
	h        *ndis.Vc
	incoming bool

	// Call state, guarded by d.mu.
	state          vcState
	node, service  string
	reliable       bool
	multipoint     bool
	legs           []*call  // outgoing: the uni calls of the VC (one for point-to-point; one per leaf node for multipoint)
	parties        []*party // outgoing multipoint: the CoNDIS parties
	makeParams     *ndis.CallParameters
	closing        bool // ProtocolCmCloseCall accepted
	closeParty     *party
	finishQueued   bool
	closeIndicated bool // NdisMCmDispatchIncomingCloseCall given (or due)
	activated      bool // NdisMCmActivateVc succeeded and not deactivated since
	act            *ndis.CallParameters

	// Incoming VCs.
	in            *call  // the uni call
	ep            uint16 // the party's endpoint reference on it (multipoint), else the call's first
	sap           *sap
	offer         ndis.CallParameters // the buffer given to the client (which may change it)
	offerCM       ndis.CallManagerParameters
	offeredTx     ndis.Flowspec // what was offered, kept apart from the client's buffer
	offeredRx     ndis.Flowspec
	answered      bool // the client's answer arrived
	answerPending bool // MCmDispatchIncomingCall returned PENDING and no answer came yet
	partyEnded    bool // a multipoint leaf: its party ended at the uni level
	deleteQueued  bool
	deleteWanted  bool // deletion waits for the answer

	// ModifyCallQoS in progress.
	qosPending bool
	qosParams  *ndis.CallParameters
	qosAct     *ndis.CallParameters

	data dataPath
}

func (v *vc) firstLeg() *call {
	if v.incoming {
		return v.in
	}
	if len(v.legs) > 0 {
		return v.legs[0]
	}
	return nil
}

// initialParty is the party of the MakeCall of a multipoint VC.
func (v *vc) initialParty() *party {
	if v.multipoint && len(v.parties) > 0 {
		return v.parties[0]
	}
	return nil
}

func (v *vc) legOn(p *peer) *call {
	for _, c := range v.legs {
		if c.p == p {
			return c
		}
	}
	return nil
}

func (v *vc) removeLeg(c *call) {
	for i, x := range v.legs {
		if x == c {
			v.legs = append(v.legs[:i], v.legs[i+1:]...)
			return
		}
	}
}

// partyState is the state of a CoNDIS party of a multipoint root. The zero
// value is not a state.
//
//	adding ──ADD PARTY ACKNOWLEDGE / CONNECT──▶ active
//	adding ──ADD PARTY REJECT / RELEASE / T399──▶ gone (AddPartyComplete failure)
//	active ──ProtocolCmDropParty──▶ dropping ──DROP PARTY ACKNOWLEDGE / RELEASE COMPLETE──▶ gone
//	active ──the leaf left: IncomingDropParty──▶ drop-indicated ──ProtocolCmDropParty──▶ gone
//	active, drop-indicated ──ProtocolCmCloseCall (last party)──▶ closing ──▶ gone
type partyState uint8

const (
	pAdding partyState = iota + 1
	pActive
	pDropping
	pDropInd
	pClosing
	pGone
)

func (s partyState) String() string {
	switch s {
	case pAdding:
		return "adding"
	case pActive:
		return "active"
	case pDropping:
		return "dropping"
	case pDropInd:
		return "drop-indicated"
	case pClosing:
		return "closing"
	case pGone:
		return "gone"
	}
	return "party state " + strconv.Itoa(int(s))
}

// party is the MCM's context for one leaf of a multipoint root.
type party struct {
	v             *vc
	h             *ndis.Party
	node, service string
	params        *ndis.CallParameters // NdisClAddParty's buffer, the CM's until completion
	state         partyState
	c             *call  // its leg, nil while waiting for the link
	ep            uint16 // endpoint reference on the leg
	initial       bool   // the MakeCall's party
}

// call is the MCM's record of one uni call (one call reference on one
// peer's link).
type call struct {
	p       *peer
	id      uni.CallID
	conn    uint32 // connection identifier, when known (hasConn)
	hasConn bool
	p2mp    bool
	ended   bool // IndReleased handled: the call is gone from the uni.Link

	releasing bool // this side sent RELEASE (U11): an end without an answer means T308 ran out

	// Outgoing calls.
	out       *vc
	eps       map[uint16]*party // multipoint: parties by endpoint reference
	waitAdds  []*party          // parties to add once the leg is active
	connected bool

	// Incoming calls.
	in       map[uint16]*vc // VCs by endpoint reference (point-to-point: the call's first)
	fwd, bwd ndis.Flowspec  // what the SETUP asked for
	reliable bool
	firstEP  uint16

	rxTo []*vc // where its received data goes; guarded by p.rxMu
}

// vcs returns the VCs the call serves.
func (c *call) vcs() []*vc {
	if c.out != nil {
		return []*vc{c.out}
	}
	vs := make([]*vc, 0, len(c.in))
	for _, v := range c.in {
		vs = append(vs, v)
	}
	return vs
}

// setRx sets where the call's received data goes.
func (c *call) setRx(vs []*vc) {
	c.p.rxMu.Lock()
	c.rxTo = vs
	c.p.rxMu.Unlock()
}

func (c *call) addRx(v *vc) {
	c.p.rxMu.Lock()
	c.rxTo = append(append([]*vc(nil), c.rxTo...), v)
	c.p.rxMu.Unlock()
}

func (c *call) dropRx(v *vc) {
	c.p.rxMu.Lock()
	out := make([]*vc, 0, len(c.rxTo))
	for _, x := range c.rxTo {
		if x != v {
			out = append(out, x)
		}
	}
	c.rxTo = out
	c.p.rxMu.Unlock()
}

// connIE is the Connection Identifier IE for a connection id.
func connIE(id uint32) *uni.ConnectionID {
	return &uni.ConnectionID{VPAssociated: uni.VPExplicit, Exclusive: uni.ExclusiveVCI, VPCI: uint16(id >> 16), VCI: uint16(id)}
}

func connOf(ci *uni.ConnectionID) uint32 { return uint32(ci.VPCI)<<16 | uint32(ci.VCI) }

// failure turns a status for a call that did not come up into a failure:
// normal clearing before the connect is still a failed setup.
func failure(st ndis.Status) ndis.Status {
	if st == ndis.StatusSuccess {
		return ndis.StatusFailure
	}
	return st
}
