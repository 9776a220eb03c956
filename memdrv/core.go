package memdrv

import (
	"slices"
	"sync/atomic"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// ops are the mediator calls whose form differs between a miniport call
// manager (NdisMCm*) and a stand-alone call manager (NdisCm*, NdisCo*). The
// call-management logic (core) is written once against them, as spec §1.3
// suggests.
type ops interface {
	createVc(af *ndis.Af, ctx any) (*ndis.Vc, ndis.Status)
	deleteVc(vc *ndis.Vc) ndis.Status
	// activate activates v and resumes then with the outcome, now or later;
	// v is marked active first on success.
	activate(v *cmVc, p *ndis.CallParameters, then step)
	// deactivating prepares v's deactivation, with the fabric locked;
	// deactivate then runs it (unlocked) and resumes then with the outcome,
	// now or later.
	deactivating(v *cmVc, then step)
	deactivate(v *cmVc, then step)
	openAfComplete(st ndis.Status, af *ndis.Af, ctx any)
	closeAfComplete(st ndis.Status, af *ndis.Af)
	notifyCloseAf(af *ndis.Af) ndis.Status
	registerSapComplete(st ndis.Status, sap *ndis.Sap, ctx any)
	deregisterSapComplete(st ndis.Status, sap *ndis.Sap)
	makeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party, pctx any, p *ndis.CallParameters)
	closeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party)
	addPartyComplete(st ndis.Status, party *ndis.Party, ctx any, p *ndis.CallParameters)
	dropPartyComplete(st ndis.Status, party *ndis.Party)
	modifyQoSComplete(st ndis.Status, vc *ndis.Vc, p *ndis.CallParameters)
	dispatchIncomingCall(sap *ndis.Sap, vc *ndis.Vc, p *ndis.CallParameters) ndis.Status
	dispatchCallConnected(vc *ndis.Vc) ndis.Status
	dispatchIncomingCloseCall(st ndis.Status, vc *ndis.Vc, data []byte) ndis.Status
	dispatchIncomingDropParty(st ndis.Status, party *ndis.Party, data []byte) ndis.Status
	dispatchQoSChange(vc *ndis.Vc, p *ndis.CallParameters) ndis.Status
	oidRequestComplete(af *ndis.Af, vc *ndis.Vc, party *ndis.Party, req *ndis.OidRequest, st ndis.Status)
}

// lockedStep is a step that can continue inside its caller's critical
// section: resumeLocked is resume for a caller holding the fabric's lock,
// which it releases. An MCM's activation ends in a critical section (the VC
// is attached to the switch), so the flow after it saves a lock round trip.
type lockedStep interface {
	step
	resumeLocked(st ndis.Status)
}

// core is the in-memory call-management logic. It signals calls to other
// cores through the Fabric, like a CM speaking to its peer over the network.
// Its state and its VCs' are under the fabric's lock (lock, unlock).
type core struct {
	name string
	fab  *Fabric
	ops  ops

	mode         atomicMode
	maxTokenRate atomic.Uint32 // read on every call, so not under the lock
	refuseOpen   ndis.Status   // ProtocolCmOpenAf fails with this when not SUCCESS
	afs          []*cmAf
	vcs          vcRing                        // every VC the CM knows, newest first, for link loss
	notified     map[*ndis.Af]ndis.Status      // ProtocolCmNotifyCloseAfComplete results
	rx           func(h *ndis.Vc, data []byte) // MCM: indicate cells switched to the VC h
	reuse        VcReuse                       // what becomes of a closed incoming call's VC

	// Records of VCs the mediator has deleted, kept for the next VCs so a
	// call allocates no context (at most maxFreeVcs of each).
	freeRoots  []*cmVc // client VCs' contexts (rootVc allocations)
	freeLeaves []*leafVc
}

// maxFreeVcs bounds each of a core's lists of recycled VC records: enough
// for the calls a driver turns over at once, not a burst's worth of memory
// kept for good.
const maxFreeVcs = 64

// takeFree pops the last record off a list of recycled records, or returns
// nil if there is none.
func takeFree[T any](list *[]*T) *T {
	n := len(*list)
	if n == 0 {
		return nil
	}
	v := (*list)[n-1]
	(*list)[n-1] = nil
	*list = (*list)[:n-1]
	return v
}

// keepFree keeps a deleted VC's record for the next VC, unless the list
// already holds maxFreeVcs.
func keepFree[T any](list *[]*T, v *T) {
	if len(*list) < maxFreeVcs {
		*list = append(*list, v)
	}
}

// VcReuse is what a call manager does with the VC it created for an
// incoming call once that call has closed (spec §9.1, R-CLOSE-12).
type VcReuse uint8

const (
	// DeleteClosedVcs deletes the VC once its call has closed (the default).
	DeleteClosedVcs VcReuse = iota
	// ReuseActivateFirst keeps the VC for the next call offered to the same
	// client on the same AF open, and activates it before dispatching that
	// call (spec §4.5's usual order).
	ReuseActivateFirst
	// ReuseDispatchFirst keeps the VC likewise, but offers every call on the
	// inactive VC and activates it once the client has accepted, before
	// the call is connected (spec §9.4).
	ReuseDispatchFirst
)

// SetVcReuse sets what the call manager does with the VC of a closed
// incoming call. VCs kept for reuse are deleted when their AF open closes.
func (c *core) SetVcReuse(r VcReuse) {
	c.lock()
	c.reuse = r
	c.unlock()
}

func newCore(name string, fab *Fabric) *core {
	return &core{name: name, fab: fab, notified: map[*ndis.Af]ndis.Status{}}
}

func (c *core) lock()   { c.fab.mu.Lock() }
func (c *core) unlock() { c.fab.mu.Unlock() }

// resumeLocked resumes then for a caller holding the lock, which is released.
func (c *core) resumeLocked(then step, st ndis.Status) {
	if ls, ok := then.(lockedStep); ok {
		ls.resumeLocked(st)
		return
	}
	c.unlock()
	then.resume(st)
}

func (c *core) getMode() Mode { return c.mode.get() }

// cmAf is the CM's context for one open of its address family.
type cmAf struct {
	c       *core
	h       *ndis.Af
	vcs     int     // VCs this CM created on the open and has not deleted
	idle    []*cmVc // of those, the closed ones kept for the next call (VcReuse)
	closing bool
	onEmpty func(ndis.Status)
}

// cmSap is the CM's context for a registered SAP.
type cmSap struct {
	af      *cmAf
	h       *ndis.Sap
	service string
}

// cmVc is the CM's context for a VC: the caller's (root) side of a call, or
// the callee's (leaf) side the CM created for an incoming call.
type cmVc struct {
	prevVc, nextVc *cmVc // core.vcs
	c              *core
	af             *cmAf
	h              *ndis.Vc
	listed         bool
	// gen counts the record's lives: it changes (under the lock) when the
	// mediator has deleted the VC, before the record is recycled for
	// another, so work that outlives a lock round trip can tell its VC
	// from the record's next one.
	gen uint32

	// Under the fabric's lock:
	active    bool
	inCall    bool // a call is being set up, offered or established
	connected bool
	released  bool // the far end is gone; closing needs no signalling
	closing   bool
	makeOut   bool                     // the MakeCall is not completed to NDIS yet (its completion may be queued)
	held      bool                     // a release arrived meanwhile: indicated once it is (R-CLOSE-20)
	media     [q2931.MediaBlobLen]byte // MediaSpecific of act: its VCI (q2931.ParamMedia)
	heldClose ndis.Status
	peer      *cmVc      // p2p: the far end; leaf: the root
	party     *cmParty   // leaf of a multipoint call: the root's party for it
	parties   []*cmParty // root of a multipoint call
	onAct     step
	onDeact   step
	port      port // its VCI on the switch (vci 0 until it has one)

	// Records of the flows in progress, so a call allocates no closures.
	mk *makeCall // a root's: its client's MakeCall (rootVc)
	lf *leafVc   // a leaf's: its allocation, with the offer's record
	cl closeCall // the client's CloseCall

	act      ndis.CallParameters // parameters the VC is activated with (CM-owned, R-ACT-13)
	actCM    ndis.CallManagerParameters
	actMedia ndis.MediaParameters
}

// rootVc is the allocation of a client's VC context: the context and the
// record of its MakeCall, which only a root has.
type rootVc struct {
	cmVc
	mk makeCall
}

// leafVc is the allocation of the VC context a CM makes for an incoming
// call: the context and the record of the call offered on it, which is the
// step after its activation (resume).
type leafVc struct {
	cmVc
	sap     *cmSap // offered to
	cb      *leg   // the caller's side, told the client's answer
	waiting bool   // dispatched, the client's answer not taken yet (under the lock)
	offer   ndis.CallParameters
	offerCM ndis.CallManagerParameters

	// ReuseDispatchFirst (under the lock): the call is offered before the
	// VC is activated; accepted: the client accepted and the activation is
	// in flight.
	dispatchFirst, accepted bool
}

// incoming reports whether v is a leaf: the VC the CM made for an incoming
// call.
func (v *cmVc) incoming() bool { return v.lf != nil }

// handleLocked is the VC's handle for the cells switched to it, read
// under the lock when they are switched: the record may be recycled by the
// time they are delivered.
func (v *cmVc) handleLocked() *ndis.Vc { return v.h }

// deliver makes an MCM's VC a switch endpoint (a split topology's VCs are
// the miniport's endpoints instead): h is the VC the cell was switched to.
func (v *cmVc) deliver(h *ndis.Vc, data []byte) {
	if v.c.rx != nil {
		v.c.rx(h, data)
	}
}

// gone reports whether v's call was released or is being closed.
func (v *cmVc) gone() bool {
	v.c.lock()
	defer v.c.unlock()
	return v.released || v.closing
}

// cmParty is the CM's context for one party of a root's multipoint call.
type cmParty struct {
	root     *cmVc
	h        *ndis.Party
	leaf     *cmVc
	gone     bool // the leaf has left
	dropping bool // the client is dropping it
	leg      leg  // its setup by AddParty
}

func (v *cmVc) take(f *step) step {
	v.c.lock()
	g := *f
	*f = nil
	v.c.unlock()
	return g
}

// activated takes the activation's continuation and marks v active on
// success, in one critical section.
func (v *cmVc) activated(st ndis.Status) step {
	v.c.lock()
	f := v.onAct
	v.onAct = nil
	if f != nil && st == ndis.StatusSuccess {
		v.active = true
	}
	v.c.unlock()
	return f
}

// activationParams fills the VC's own activation buffer from p and its VCI.
func (v *cmVc) activationParams(p *ndis.CallParameters) *ndis.CallParameters {
	v.act = ndis.CallParameters{Flags: p.Flags &^ ndis.CallParametersChanged}
	if p.CallMgrParameters != nil {
		v.actCM = *p.CallMgrParameters
		v.act.CallMgrParameters = &v.actCM
	}
	v.media = q2931.MediaArray(v.port.vci, 0)
	v.actMedia = ndis.MediaParameters{Flags: ndis.TransmitVC | ndis.ReceiveVC,
		MediaSpecific: ndis.SpecificParameters{ParamType: q2931.ParamMedia, Parameters: v.media[:]}}
	v.act.MediaParameters = &v.actMedia
	return &v.act
}

func (c *core) acceptable(p *ndis.CallParameters) bool {
	limit := c.maxTokenRate.Load()
	if limit == 0 || p == nil || p.CallMgrParameters == nil {
		return true
	}
	ok := func(r uint32) bool { return r == ndis.QoSNotSpecified || r <= limit }
	return ok(p.CallMgrParameters.Transmit.TokenRate) && ok(p.CallMgrParameters.Receive.TokenRate)
}

// vcRing is an intrusive list of VCs: adding and removing costs no hashing
// and no allocation on the call path.
type vcRing struct {
	head *cmVc
	n    int
}

func (r *vcRing) add(v *cmVc) {
	if v.listed {
		return
	}
	v.listed, v.prevVc, v.nextVc = true, nil, r.head
	if r.head != nil {
		r.head.prevVc = v
	}
	r.head = v
	r.n++
}

func (r *vcRing) remove(v *cmVc) {
	if !v.listed {
		return
	}
	if v.prevVc != nil {
		v.prevVc.nextVc = v.nextVc
	} else {
		r.head = v.nextVc
	}
	if v.nextVc != nil {
		v.nextVc.prevVc = v.prevVc
	}
	v.listed, v.prevVc, v.nextVc = false, nil, nil
	r.n--
}

// activate activates v; the ops implementation marks v active on success
// before resuming then.
func (c *core) activate(v *cmVc, p *ndis.CallParameters, then step) {
	c.ops.activate(v, p, then)
}

// deactivate deactivates v (if it is active) and resumes then.
func (c *core) deactivate(v *cmVc, then step) {
	c.lock()
	c.deactivateLocked(v, then, false)
}

// unlinkAndDeactivate takes v off the switch, then deactivates it; endCall
// also ends its call.
func (c *core) unlinkAndDeactivate(v *cmVc, then step, endCall bool) {
	c.lock()
	c.fab.disconnectLocked(&v.port)
	c.deactivateLocked(v, then, endCall)
}

// deactivateLocked is deactivate for a caller holding the lock, which it
// releases. endCall also ends v's call (inCall) in the same section.
func (c *core) deactivateLocked(v *cmVc, then step, endCall bool) {
	if endCall {
		v.inCall = false
	}
	if act := v.onAct; act != nil {
		// A re-activation (a QoS change) is in flight: one activation or
		// deactivation at a time (R-ACT-10), so deactivate after it.
		v.onAct = stepFunc(func(st ndis.Status) {
			act.resume(st)
			c.deactivate(v, then)
		})
		c.unlock()
		return
	}
	active := v.active
	v.active = false
	if active {
		c.ops.deactivating(v, then)
	}
	c.unlock()
	if !active {
		then.resume(ndis.StatusSuccess)
		return
	}
	c.ops.deactivate(v, then)
}

// ProtocolCmActivateVcComplete continues an activation that pended in the
// miniport (stand-alone CM only; never called for an MCM, R-REG-5).
func (c *core) ProtocolCmActivateVcComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	v := vcCtx.(*cmVc)
	if f := v.activated(st); f != nil {
		f.resume(st)
	}
}

// ProtocolCmDeactivateVcComplete continues a deactivation that pended.
func (c *core) ProtocolCmDeactivateVcComplete(st ndis.Status, vcCtx any) {
	v := vcCtx.(*cmVc)
	if f := v.take(&v.onDeact); f != nil {
		f.resume(st)
	}
}

// --- address family and SAPs ---

func (c *core) ProtocolCmOpenAf(bindingCtx any, af ndis.AddressFamily, h *ndis.Af) (any, ndis.Status) {
	if af.AddressFamily != AF.AddressFamily {
		return nil, ndis.StatusFailure
	}
	a := &cmAf{c: c, h: h}
	st := respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		c.lock()
		if refuse := c.refuseOpen; refuse != ndis.StatusSuccess {
			c.unlock()
			done(refuse) // R-AF-11: nothing is kept for a refused open
			return
		}
		c.afs = append(c.afs, a)
		c.unlock()
		done(ndis.StatusSuccess)
	}, func(st ndis.Status) { c.ops.openAfComplete(st, h, a) })
	return a, st
}

// RefuseOpenAf makes ProtocolCmOpenAf fail with st (at once or through the
// open's completion, by mode), as a CM out of resources would (spec §4.1
// failure variant). StatusSuccess lets opens succeed again.
func (c *core) RefuseOpenAf(st ndis.Status) {
	c.lock()
	c.refuseOpen = st
	c.unlock()
}

func (c *core) ProtocolCmCloseAf(afCtx any) ndis.Status {
	a := afCtx.(*cmAf)
	return respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		c.lock()
		a.closing = true
		idle := a.idle
		a.idle = nil
		if a.vcs > 0 {
			a.onEmpty = done // R-AF-15: finish once our VCs are deleted
			c.unlock()
			for _, v := range idle {
				c.fab.post((*leafDeletion)(v))
			}
			return
		}
		c.removeAfLocked(a)
		c.unlock()
		done(ndis.StatusSuccess)
	}, func(st ndis.Status) { c.ops.closeAfComplete(st, a.h) })
}

func (c *core) removeAfLocked(a *cmAf) {
	for i, x := range c.afs {
		if x == a {
			c.afs = append(c.afs[:i], c.afs[i+1:]...)
			return
		}
	}
}

func (c *core) ProtocolCmNotifyCloseAfComplete(afCtx any, st ndis.Status) {
	a := afCtx.(*cmAf)
	c.lock()
	c.notified[a.h] = st
	c.unlock()
}

func (c *core) ProtocolCmRegisterSap(afCtx any, coSap *ndis.CoSap, h *ndis.Sap) (any, ndis.Status) {
	a := afCtx.(*cmAf)
	svc, ok := q2931.SapService(coSap)
	if !ok || q2931.ValidService(svc) != nil {
		return nil, ndis.StatusInvalidData // R-SAP-2: a format we do not know
	}
	s := &cmSap{af: a, h: h, service: svc}
	st := respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		if !c.fab.register(s.service, s) {
			done(ndis.StatusInvalidData) // R-SAP-2: in use by another client
			return
		}
		done(ndis.StatusSuccess)
	}, func(st ndis.Status) { c.ops.registerSapComplete(st, h, s) })
	return s, st
}

func (c *core) ProtocolCmDeregisterSap(sapCtx any) ndis.Status {
	s := sapCtx.(*cmSap)
	return respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		c.fab.unregister(s.service, s)
		done(ndis.StatusSuccess)
	}, func(st ndis.Status) { c.ops.deregisterSapComplete(st, s.h) })
}

// --- VCs created by clients ---

// ProtocolCoCreateVc makes the context of a client's VC. It joins the CM's
// list now, so link loss visits VCs in the order they were created; it gets
// a VCI with its first call.
func (c *core) ProtocolCoCreateVc(afCtx any, vc *ndis.Vc) (any, ndis.Status) {
	a := afCtx.(*cmAf)
	c.lock()
	v := takeFree(&c.freeRoots)
	if v != nil {
		mk := v.mk
		*mk = makeCall{}
		*v = cmVc{c: c, af: a, h: vc, mk: mk, gen: v.gen}
	} else {
		r := &rootVc{cmVc: cmVc{c: c, af: a, h: vc}}
		v = &r.cmVc
		v.mk = &r.mk
	}
	c.vcs.add(v)
	c.unlock()
	return v, ndis.StatusSuccess
}

// ProtocolCoDeleteVc forgets a client's VC; the mediator has deleted it, so
// nothing names the record any more and it is kept for the next VC.
func (c *core) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	v := vcCtx.(*cmVc)
	c.lock()
	c.forgetLocked(v)
	c.severLocked(v)
	v.gen++
	keepFree(&c.freeRoots, v)
	c.unlock()
	return ndis.StatusSuccess
}

// severLocked unlinks a deleted VC from the far ends of its calls, whose
// links back to it would otherwise name the record's next VC once it is
// recycled (link loss follows them).
func (c *core) severLocked(v *cmVc) {
	if p := v.peer; p != nil && p.peer == v {
		p.peer, p.party = nil, nil
	}
	for _, pt := range v.parties {
		if l := pt.leaf; l != nil && l.peer == v {
			l.peer, l.party = nil, nil
		}
	}
	if pt := v.party; pt != nil && pt.leaf == v {
		pt.leaf = nil
	}
	v.peer, v.party = nil, nil
	clear(v.parties)
	v.parties = v.parties[:0]
}

// --- outgoing calls ---

// makeCall is a root VC's record of the client's MakeCall: the call's
// first leg (its only one if point to point; leg.p is the first party of a
// multipoint call), the request's answer, and the step that ends the setup
// (leg.done).
type makeCall struct {
	leg   leg
	r     reply
	setup step // the setup's outcome goes here: &r, or how a release fails it (under the lock)
}

// resume ends the setup with st: a failed one leaves no call to close.
func (m *makeCall) resume(st ndis.Status) {
	v := m.leg.v
	v.c.lock()
	if st != ndis.StatusSuccess {
		v.inCall = false // no call came up: a later release has nothing to close
	}
	f := m.setup
	m.setup = nil
	v.c.unlock()
	if f != nil {
		f.resume(st)
	}
}

// complete is NdisMCmMakeCallComplete (NdisCmMakeCallComplete). The
// client may delete the VC inside its completion handler, so the record is
// read before and checked to be the same VC's after (gen).
func (m *makeCall) complete(st ndis.Status) {
	v, p := m.leg.v, m.leg.p
	var party *ndis.Party
	var ctx any
	if p != nil {
		party = p.h
		if st == ndis.StatusSuccess {
			ctx = p
		}
	}
	c, gen := v.c, v.gen // (the VC cannot be deleted before this completion)
	c.ops.makeCallComplete(st, v.h, party, ctx, m.leg.params)
	c.makeCompletedGen(v, gen)
}

func (c *core) ProtocolCmMakeCall(vcCtx any, params *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
	v := vcCtx.(*cmVc)
	svc, ok := q2931.DestinationService(params)
	if !ok {
		return nil, ndis.StatusInvalidAddress
	}
	if !c.acceptable(params) {
		return nil, ndis.StatusCellrateNotAvailable // cause 37
	}
	var p *cmParty
	if party != nil {
		p = &cmParty{root: v, h: party}
	}
	m := v.mk
	m.leg = leg{v: v, p: p, params: params, done: m}
	m.r.begin(&c.fab.Loop, c.getMode(), m)
	c.setupLeaf(&m.leg, svc, true)
	st, _ := m.r.end()
	if st != ndis.StatusPending {
		c.makeCompleted(v)
	}
	if p == nil || (st != ndis.StatusSuccess && st != ndis.StatusPending) {
		return nil, st
	}
	return p, st
}

// leg is the record of one leg being set up from root v to a far end: the
// call's only far end (p nil), or party p of a multipoint call (an
// AddParty's leg is in its party's context). It is told the offer's answer,
// then resumed by the root's activation, and ends by resuming done.
type leg struct {
	v      *cmVc
	p      *cmParty
	params *ndis.CallParameters
	done   step
	leaf   *cmVc
	first  bool // the root's first leg: the root is activated for it
}

// setupLeaf offers a call from g's root (optionally as party g.p) to service
// and connects it when the far end accepts; g.done gets the outcome.
// makeCall starts a MakeCall: the root's call state is reset in the same
// critical section.
func (c *core) setupLeaf(g *leg, service []byte, makeCall bool) {
	v, p := g.v, g.p
	c.lock()
	if makeCall {
		v.mk.setup = &v.mk.r // (MakeCall: a client's VC, a root)
		v.released, v.closing, v.connected, v.inCall = false, false, false, true
		v.makeOut, v.held = true, false
		v.peer, v.parties = nil, v.parties[:0] // the last call's far end may carry another call by now
	}
	target := c.fab.lookupLocked(service)
	if target == nil {
		c.unlock()
		g.done.resume(ndis.StatusInvalidSap) // cause 88: no SAP matches
		return
	}
	g.first = p == nil || len(v.parties) == 0
	if g.first && v.port.vci == 0 {
		c.fab.ownPortLocked(&v.port)
	}
	leaf := target.af.c.newLeafLocked(target, g.params, g)
	c.unlock()
	leaf.c.offer(leaf)
}

// answered continues the leg once the far end's client answered: it
// accepted the call on leaf, or the call failed with st (leaf nil).
func (g *leg) answered(st ndis.Status, leaf *cmVc) {
	if st != ndis.StatusSuccess {
		g.done.resume(st)
		return
	}
	g.v.c.lock()
	g.acceptedLocked(leaf)
}

// acceptedLocked is answered(StatusSuccess, leaf) for a caller holding the
// fabric's lock, which it releases.
func (g *leg) acceptedLocked(leaf *cmVc) {
	v, p, done := g.v, g.p, g.done
	c := v.c
	gone := v.released || v.closing
	if !gone {
		leaf.peer, leaf.party = v, p
		if p != nil {
			p.leaf = leaf
			v.parties = append(v.parties, p)
		} else {
			v.peer = leaf
		}
		g.leaf = leaf
	}
	c.unlock()
	if gone { // the caller's side went away while the far end answered
		leaf.c.remoteRelease(leaf, ndis.StatusFailure)
		done.resume(ndis.StatusFailure)
		return
	}
	if g.first {
		c.activate(v, v.activationParams(g.params), g)
		return
	}
	g.resume(ndis.StatusSuccess)
}

// resume finishes the leg once the root is activated (at once for a later
// party): connect both ends and tell the far end's client.
func (g *leg) resume(ast ndis.Status) {
	g.v.c.lock()
	g.resumeLocked(ast)
}

func (g *leg) resumeLocked(ast ndis.Status) {
	v, p, first, done, leaf := g.v, g.p, g.first, g.done, g.leaf
	c := v.c
	released := v.released
	up, leafUp := ast == ndis.StatusSuccess && !(first && released), false
	if up {
		c.fab.connectLocked(&v.port, &leaf.port)
		if p == nil {
			c.fab.connectLocked(&leaf.port, &v.port) // multipoint VCs are root-to-leaf only
		}
		v.connected = true
		leafUp = !(leaf.released || leaf.closing) // else it went away: nothing to tell
		leaf.connected = leafUp
	}
	c.unlock()
	switch {
	case first && released:
		// The far end released while the VC was being activated;
		// remoteRelease left the setup to us: undo the activation, then
		// fail the call.
		c.deactivate(v, stepFunc(func(ndis.Status) { done.resume(ndis.StatusFailure) }))
	case !up:
		leaf.c.remoteRelease(leaf, ast)
		done.resume(ast)
	default:
		if leafUp {
			leaf.c.ops.dispatchCallConnected(leaf.h)
		}
		done.resume(ndis.StatusSuccess)
	}
}

// newLeafLocked makes the VC context for a call offered to sap (the far end
// of setupLeaf): cb is told how the offer ends. With VcReuse it takes a VC
// kept from a closed call to the same AF open if there is one; else it
// recycles the record of a leaf the mediator has deleted, if it has one.
func (c *core) newLeafLocked(sap *cmSap, params *ndis.CallParameters, cb *leg) *cmVc {
	var l *leafVc
	if n := len(sap.af.idle); n > 0 {
		leaf := sap.af.idle[n-1]
		sap.af.idle[n-1] = nil
		sap.af.idle = sap.af.idle[:n-1]
		l = leaf.lf
		l.sap, l.cb, l.waiting, l.accepted = sap, cb, false, false
		leaf.inCall, leaf.connected, leaf.released, leaf.closing = true, false, false, false
	} else {
		if l = takeFree(&c.freeLeaves); l != nil {
			*l = leafVc{cmVc: cmVc{c: c, af: sap.af, inCall: true, gen: l.gen}, sap: sap, cb: cb}
		} else {
			l = &leafVc{cmVc: cmVc{c: c, af: sap.af, inCall: true}, sap: sap, cb: cb}
		}
		leaf := &l.cmVc
		leaf.lf = l
		c.fab.ownPortLocked(&leaf.port)
		c.vcs.add(leaf)
		sap.af.vcs++ // counted from now, so the AF's close waits for it (undone if NDIS refuses the VC)
	}
	l.dispatchFirst = c.reuse == ReuseDispatchFirst
	l.offer = ndis.CallParameters{Flags: params.Flags &^ ndis.CallParametersChanged}
	if params.CallMgrParameters != nil {
		l.offerCM = *params.CallMgrParameters
		l.offer.CallMgrParameters = &l.offerCM
	}
	return &l.cmVc
}

// offer creates the leaf's VC for the SAP's client (unless it is reused)
// and activates it; the offer continues in leafVc.resume. With
// ReuseDispatchFirst it goes on at once, and the VC is activated once the
// client has accepted (activateAcceptedLocked).
func (c *core) offer(leaf *cmVc) {
	if leaf.h == nil {
		sap := leaf.lf.sap
		h, st := c.ops.createVc(sap.af.h, leaf)
		if st != ndis.StatusSuccess {
			c.lock()
			then := c.dropLeafLocked(leaf)
			c.unlock()
			if then != nil {
				then(ndis.StatusSuccess)
			}
			leaf.lf.cb.answered(ndis.StatusResources, nil) // cause 47
			return
		}
		leaf.h = h
	}
	if leaf.lf.dispatchFirst {
		leaf.lf.resume(ndis.StatusSuccess)
		return
	}
	c.activate(leaf, leaf.activationParams(&leaf.lf.offer), leaf.lf)
}

// resume dispatches the call once the leaf is activated, and reports the
// client's answer to the caller's side.
func (l *leafVc) resume(ast ndis.Status) {
	l.c.lock()
	l.resumeLocked(ast)
}

func (l *leafVc) resumeLocked(ast ndis.Status) {
	leaf, sap, cb := &l.cmVc, l.sap, l.cb
	c := leaf.c
	released := leaf.released                       // the call went away (link loss) before it could be offered
	withdrawn := c.fab.services[sap.service] != sap // deregistered meanwhile: its handle is dead (R-SAP-5)
	ok := ast == ndis.StatusSuccess && !released && !withdrawn
	l.waiting = ok
	c.unlock()
	if !ok {
		c.disposeLeaf(leaf)
		if ast == ndis.StatusSuccess && withdrawn {
			ast = ndis.StatusInvalidSap // cause 88: no SAP matches any more
		} else if ast == ndis.StatusSuccess {
			ast = ndis.StatusFailure
		}
		cb.answered(ast, nil)
		return
	}
	st := c.ops.dispatchIncomingCall(sap.h, leaf.h, &l.offer)
	if st == ndis.StatusPending {
		return // the answer comes through ProtocolCmIncomingCallComplete
	}
	c.takeAnswer(leaf, st, &l.offer)
}

// takeAnswer takes the client's answer to the offer on leaf, unless a
// release withdrew the offer first.
func (c *core) takeAnswer(leaf *cmVc, st ndis.Status, p *ndis.CallParameters) {
	c.lock()
	waiting := leaf.lf.waiting
	leaf.lf.waiting = false
	if !waiting {
		c.unlock()
		return
	}
	if st == ndis.StatusSuccess && (p == nil || p.Flags&ndis.CallParametersChanged == 0) {
		if leaf.lf.dispatchFirst {
			c.activateAcceptedLocked(leaf)
			return
		}
		leaf.lf.cb.acceptedLocked(leaf) // accepted as offered: continue in this section
		return
	}
	c.unlock()
	c.answered(leaf, st, p, leaf.lf.cb)
}

// activateAcceptedLocked activates a leaf whose call was offered before its
// activation (ReuseDispatchFirst), now that the client has accepted it; the
// caller's side hears of the acceptance once the VC is active
// (acceptedLeaf). The caller holds the lock, which is released.
func (c *core) activateAcceptedLocked(leaf *cmVc) {
	leaf.lf.accepted = true
	c.unlock()
	c.activate(leaf, leaf.activationParams(&leaf.lf.offer), (*acceptedLeaf)(leaf.lf))
}

// acceptedLeaf is a leaf seen as the step after the activation
// activateAcceptedLocked started.
type acceptedLeaf leafVc

// resume connects the accepted call once its VC is active. If the
// activation failed, the call the client accepted is closed and the
// caller's setup fails; if the call was released meanwhile, the release has
// already been indicated (releaseLocked) and the setup fails.
func (a *acceptedLeaf) resume(ast ndis.Status) {
	l := (*leafVc)(a)
	leaf, cb := &l.cmVc, l.cb
	c := leaf.c
	c.lock()
	l.accepted = false
	released := leaf.released
	if ast == ndis.StatusSuccess && !released {
		cb.acceptedLocked(leaf)
		return
	}
	leaf.released = true // closing it needs no signalling
	c.unlock()
	if released {
		cb.answered(ndis.StatusFailure, nil)
		return
	}
	cb.answered(ast, nil)
	c.ops.dispatchIncomingCloseCall(ast, leaf.h, nil)
}

func (c *core) ProtocolCmIncomingCallComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	c.takeAnswer(vcCtx.(*cmVc), st, params)
}

// answered handles the client's answer to an offer.
func (c *core) answered(leaf *cmVc, st ndis.Status, p *ndis.CallParameters, cb *leg) {
	if st != ndis.StatusSuccess {
		// R-IN-7: reject signalling (cause 21), deactivate, delete.
		c.disposeLeaf(leaf)
		cb.answered(ndis.StatusFailure, nil)
		return
	}
	if p != nil && p.Flags&ndis.CallParametersChanged != 0 && !c.acceptable(p) {
		// Spec §4.9: the client's changes are unacceptable.
		c.lock()
		leaf.released = true
		c.unlock()
		cb.answered(ndis.StatusIncompatibleQoS, nil)
		c.ops.dispatchIncomingCloseCall(ndis.StatusIncompatibleQoS, leaf.h, nil)
		return
	}
	if leaf.lf.dispatchFirst {
		c.lock()
		c.activateAcceptedLocked(leaf)
		return
	}
	cb.answered(ndis.StatusSuccess, leaf)
}

// disposeLeaf deactivates and deletes a VC this CM created.
func (c *core) disposeLeaf(leaf *cmVc) {
	c.unlinkAndDeactivate(leaf, (*leafDeletion)(leaf), true)
}

// leafDeletion is a leaf VC seen as the deferred work of deleting it: a
// task for the Loop, or the step after its deactivation.
type leafDeletion cmVc

func (d *leafDeletion) run() {
	leaf := (*cmVc)(d)
	leaf.c.deleteLeaf(leaf)
}

func (d *leafDeletion) resume(ndis.Status) { d.run() }

// closedLeaf is a leaf whose call has closed with SUCCESS, seen as the
// deferred work of keeping it for the next call (VcReuse) or deleting it.
// It runs after the close's completion, so NDIS has the call CLOSED.
type closedLeaf cmVc

func (d *closedLeaf) run() {
	leaf := (*cmVc)(d)
	c := leaf.c
	c.lock()
	if c.reuse != DeleteClosedVcs && !leaf.af.closing && !leaf.active && leaf.onAct == nil && leaf.onDeact == nil {
		leaf.peer, leaf.party = nil, nil
		leaf.af.idle = append(leaf.af.idle, leaf)
		c.unlock()
		return
	}
	c.unlock()
	c.deleteLeaf(leaf)
}

// deleteLeaf deletes a VC this CM created. Once the mediator has deleted
// it, nothing names the record (its deletion is the last work queued for
// it, and the CM's handlers have returned: closeCall.resume), so it is kept
// for the next incoming call.
func (c *core) deleteLeaf(leaf *cmVc) {
	if leaf.h != nil && c.ops.deleteVc(leaf.h) != ndis.StatusSuccess {
		return // reported by the mediator; the VC stays visible in the snapshot
	}
	c.lock()
	then := c.dropLeafLocked(leaf)
	c.severLocked(leaf)
	leaf.gen++
	keepFree(&c.freeLeaves, leaf.lf)
	c.unlock()
	if then != nil {
		then(ndis.StatusSuccess)
	}
}

// dropLeafLocked forgets a leaf that is gone and uncounts it from its AF;
// it returns the AF's pending close if that was waiting for it (R-AF-15).
func (c *core) dropLeafLocked(leaf *cmVc) (then func(ndis.Status)) {
	c.forgetLocked(leaf)
	a := leaf.af
	a.vcs--
	if a.closing && a.vcs == 0 && a.onEmpty != nil {
		then, a.onEmpty = a.onEmpty, nil
		c.removeAfLocked(a)
	}
	return then
}

// forget drops a VC that is gone from the CM's list and the switch's
// directory.
func (c *core) forget(v *cmVc) {
	c.lock()
	c.forgetLocked(v)
	c.unlock()
}

func (c *core) forgetLocked(v *cmVc) {
	c.vcs.remove(v)
	c.fab.releasePortLocked(&v.port)
}

// --- teardown ---

// closeCall is a VC's record of the client's CloseCall: the request's
// answer, resumed once the VC is deactivated.
type closeCall struct {
	v     *cmVc
	party *ndis.Party
	r     reply
	// after is a leaf's deletion (or keeping), queued once the close has
	// finished: by resume if ProtocolCmCloseCall has returned, else by
	// the handler on its way out, the last it does with the record.
	after task
}

// resume finishes the close once v is deactivated (its call already ended:
// closing hides it from everything until the next MakeCall); a leaf is
// deleted, or kept for reuse, once the close has finished (R-CLOSE-12).
// v is read first: once the close is completed, a client may delete its VC.
func (k *closeCall) resume(st ndis.Status) {
	v := k.v
	var after task
	switch {
	case !v.incoming():
	case st == ndis.StatusSuccess:
		after = (*closedLeaf)(v)
	default:
		after = (*leafDeletion)(v)
	}
	k.after = after // read by the handler if the outcome arrives inside it
	if k.r.deliver(st) && after != nil {
		v.c.fab.post(after)
	}
}

// finished queues the leaf's deletion that resume left to the handler
// (done: the close's outcome arrived inside it).
func (k *closeCall) finished(done bool) {
	if done && k.after != nil {
		t := k.after
		k.after = nil
		k.v.c.fab.post(t)
	}
}

// complete is NdisMCmCloseCallComplete (NdisCmCloseCallComplete).
func (k *closeCall) complete(st ndis.Status) {
	k.v.c.ops.closeCallComplete(st, k.v.h, k.party)
}

func (c *core) ProtocolCmCloseCall(vcCtx, partyCtx any, data []byte) ndis.Status {
	v := vcCtx.(*cmVc)
	k := &v.cl
	k.v, k.party = v, nil
	if p, ok := partyCtx.(*cmParty); ok {
		k.party = p.h
	}
	k.r.begin(&c.fab.Loop, c.getMode(), k)
	c.lock()
	v.closing = true
	released, peer := v.released, v.peer
	var parties []*cmParty
	if !released && len(v.parties) > 0 {
		parties = append(parties, v.parties...)
	}
	v.connected = false
	// Release the far end: a point-to-point peer (or the root a leaf hangs
	// up on) is decided here; a party's leaf leaving, and the parties of a
	// multipoint root, are signalled unlocked below.
	var far release
	tell, partyLeft := false, false
	if !released && peer != nil {
		if v.incoming() && v.party != nil {
			partyLeft = true
		} else {
			far, tell = peer.c.releaseLocked(peer, ndis.StatusSuccess)
		}
	}
	if !tell && !partyLeft && len(parties) == 0 {
		// Nothing to signal: take v down in this critical section.
		c.fab.disconnectLocked(&v.port)
		c.deactivateLocked(v, k, true)
		st, done := k.r.end()
		k.finished(done)
		return st
	}
	c.unlock()
	if tell {
		peer.c.finishRelease(far)
	}
	if partyLeft {
		peer.c.farEndLeft(peer, v)
	}
	for _, p := range parties {
		if !p.gone && p.leaf != nil {
			p.gone = true
			p.leaf.c.remoteRelease(p.leaf, ndis.StatusSuccess)
		}
	}
	c.unlinkAndDeactivate(v, k, true)
	st, done := k.r.end()
	k.finished(done)
	return st
}

// release is what releaseLocked decided, for finishRelease to carry out
// once the lock is released.
type release struct {
	v          *cmVc
	st         ndis.Status
	setup      step // the MakeCall being set up, which fails
	answer     bool // an offer was waiting for its answer
	activating bool
	offered    bool // an offer not yet dispatched: offer() withdraws it
	held       bool // the indication waits for the MakeCall's completion
	parties    []*cmParty
}

// remoteRelease: the far end (or the network) released v's call.
func (c *core) remoteRelease(v *cmVc, st ndis.Status) {
	c.lock()
	r, ok := c.releaseLocked(v, st)
	c.unlock()
	if ok {
		c.finishRelease(r)
	}
}

// releaseLocked decides remoteRelease under the lock; false: nothing to do.
func (c *core) releaseLocked(v *cmVc, st ndis.Status) (release, bool) {
	if v.closing || v.released || !v.inCall {
		return release{}, false // clear collision (both sides released) or no call: nothing to tell
	}
	v.released = true
	r := release{v: v, st: st, activating: v.onAct != nil}
	if v.mk != nil {
		r.setup, v.mk.setup = v.mk.setup, nil
	}
	if v.lf != nil {
		r.answer, v.lf.waiting = v.lf.waiting, false
	}
	if len(v.parties) > 0 {
		r.parties = append(r.parties, v.parties...)
	}
	c.fab.disconnectLocked(&v.port)
	r.offered = v.incoming() && r.activating && !v.connected && !v.lf.accepted
	// A point-to-point call whose MakeCall succeeded but is not completed
	// to NDIS yet holds the release (a multipoint root's is checked once
	// its parties are released, in finishRelease).
	if r.setup == nil && !r.offered && len(r.parties) == 0 && v.makeOut {
		r.held = true
		v.held, v.heldClose = true, st
	}
	return r, true
}

// finishRelease carries out a release decided by releaseLocked.
func (c *core) finishRelease(r release) {
	v, st := r.v, r.st
	for _, p := range r.parties {
		if !p.gone && p.leaf != nil {
			p.gone = true
			p.leaf.c.remoteRelease(p.leaf, st)
		}
	}
	if r.setup != nil {
		c.failSetup(v, r.setup, st, r.activating)
		return
	}
	if r.offered {
		return // not offered yet: offer() withdraws it once the activation completes
	}
	// Established, accepted or offered (an offer not yet answered is
	// withdrawn the same way, R-CLOSE-20).
	held := r.held
	if len(r.parties) > 0 {
		c.lock()
		if v.makeOut { // the MakeCall succeeded but NDIS has not been told yet
			v.held, v.heldClose, held = true, st, true
		}
		c.unlock()
	}
	if held {
		return
	}
	c.ops.dispatchIncomingCloseCall(st, v.h, nil)
	if r.answer && v.lf.cb != nil { // (r.answer: v is a leaf)
		// Released before the client answered: the caller's setup (a
		// MakeCall, or an AddParty) fails, or it would wait forever.
		if st == ndis.StatusSuccess {
			st = ndis.StatusFailure
		}
		v.lf.cb.answered(st, nil)
	}
}

// failSetup fails the call setup a release interrupted. A call still being
// set up fails through MakeCallComplete, never an incoming close and never
// with SUCCESS: an orderly release before the connect is a failed setup
// (design.md §2). Deactivate first: the client will delete the VC. An
// activation still in flight finishes the setup when it completes
// (leg.resume).
func (c *core) failSetup(v *cmVc, setup step, st ndis.Status, activating bool) {
	if st == ndis.StatusSuccess {
		st = ndis.StatusFailure
	}
	fail := stepFunc(func(ndis.Status) { setup.resume(st) })
	c.lock()
	v.inCall = false
	if activating {
		v.mk.setup = fail
		c.unlock()
		return
	}
	c.deactivateLocked(v, fail, false)
}

// makeCompleted: NDIS has the MakeCall's outcome; a release that arrived
// while its completion was queued is indicated now, never before (R-CLOSE-20).
func (c *core) makeCompleted(v *cmVc) {
	c.lock()
	c.makeCompletedLocked(v)
}

// makeCompletedGen is makeCompleted unless v's record has been recycled
// since its life gen (the VC was deleted meanwhile: nothing is held).
func (c *core) makeCompletedGen(v *cmVc, gen uint32) {
	c.lock()
	if v.gen != gen {
		c.unlock()
		return
	}
	c.makeCompletedLocked(v)
}

// makeCompletedLocked is makeCompleted for a caller holding the lock,
// which it releases.
func (c *core) makeCompletedLocked(v *cmVc) {
	held, st := v.held && !v.closing, v.heldClose
	v.makeOut, v.held = false, false
	c.unlock()
	if held {
		c.ops.dispatchIncomingCloseCall(st, v.h, nil)
	}
}

// farEndLeft: leaf (a callee VC) hung up on root's call.
func (c *core) farEndLeft(root, leaf *cmVc) {
	p := leaf.party
	if p == nil {
		c.remoteRelease(root, ndis.StatusSuccess)
		return
	}
	c.lock()
	p.gone = true
	dropping := p.dropping
	others := 0
	for _, q := range root.parties {
		if !q.gone {
			others++
		}
	}
	c.unlock()
	c.fab.disconnectPort(&leaf.port)
	switch {
	case dropping:
		// Crossing DROP PARTY: the client's drop completes; no indication.
	case others > 0:
		c.ops.dispatchIncomingDropParty(ndis.StatusSuccess, p.h, nil)
	default:
		c.remoteRelease(root, ndis.StatusSuccess) // R-CLOSE-18
	}
}

// --- parties ---

func (c *core) ProtocolCmAddParty(vcCtx any, params *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
	v := vcCtx.(*cmVc)
	svc, ok := q2931.DestinationService(params)
	if !ok {
		return nil, ndis.StatusInvalidAddress
	}
	p := &cmParty{root: v, h: party}
	st := respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		p.leg = leg{v: v, p: p, params: params, done: stepFunc(done)}
		c.setupLeaf(&p.leg, svc, false)
	}, func(st ndis.Status) {
		var ctx any
		if st == ndis.StatusSuccess {
			ctx = p
		}
		c.ops.addPartyComplete(st, party, ctx, params)
	})
	if st != ndis.StatusSuccess && st != ndis.StatusPending {
		return nil, st
	}
	return p, st
}

func (c *core) ProtocolCmDropParty(partyCtx any, data []byte) ndis.Status {
	p := partyCtx.(*cmParty)
	return respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		root := p.root
		c.lock()
		p.dropping = true
		gone := p.gone
		p.gone = true
		for i, q := range root.parties {
			if q == p {
				root.parties = append(root.parties[:i], root.parties[i+1:]...)
				break
			}
		}
		c.unlock()
		if !gone && p.leaf != nil {
			p.leaf.c.remoteRelease(p.leaf, ndis.StatusSuccess)
		}
		done(ndis.StatusSuccess)
	}, func(st ndis.Status) { c.ops.dropPartyComplete(st, p.h) })
}

// --- QoS ---

func (c *core) ProtocolCmModifyCallQoS(vcCtx any, params *ndis.CallParameters) ndis.Status {
	v := vcCtx.(*cmVc)
	return respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		c.lock()
		peer, multipoint := v.peer, len(v.parties) > 0
		c.unlock()
		switch {
		case multipoint:
			done(ndis.StatusNotSupported) // per-party QoS is not offered
			return
		case !c.acceptable(params) || peer == nil:
			done(ndis.StatusFailure) // R-QOS-3: previous parameters stay
			return
		}
		peer.c.remoteModify(peer, params, func(st ndis.Status) {
			if st != ndis.StatusSuccess || v.gone() {
				done(ndis.StatusFailure)
				return
			}
			// R-QOS-2: re-activate with the new parameters.
			c.activate(v, v.activationParams(params), stepFunc(done))
		})
	}, func(st ndis.Status) { c.ops.modifyQoSComplete(st, v.h, params) })
}

// remoteModify is the far end of a QoS change: activate with the new
// parameters first, then tell the client (R-QOS-7).
func (c *core) remoteModify(v *cmVc, params *ndis.CallParameters, cb func(ndis.Status)) {
	if !c.acceptable(params) {
		cb(ndis.StatusFailure)
		return
	}
	c.activate(v, v.activationParams(params), stepFunc(func(st ndis.Status) {
		if st == ndis.StatusSuccess && v.gone() {
			st = ndis.StatusFailure // released meanwhile: no change to tell (R-QOS-7)
		}
		if st != ndis.StatusSuccess {
			cb(st)
			return
		}
		c.ops.dispatchQoSChange(v.h, &v.act)
		cb(ndis.StatusSuccess) // R-QOS-9: after the client's handler returned
	}))
}

// --- OIDs ---

// OidGetAddresses answers OID_CO_GET_ADDRESSES with the CM's name.
func (c *core) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	if req.Oid != ndis.OidCoGetAddresses || req.Type != ndis.OidQuery {
		return ndis.StatusNotSupported
	}
	a := afCtx.(*cmAf)
	return respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		if len(req.InformationBuffer) < len(c.name) {
			req.BytesNeeded = len(c.name)
			done(ndis.StatusBufferTooShort)
			return
		}
		req.BytesWritten = copy(req.InformationBuffer, c.name)
		done(ndis.StatusSuccess)
	}, func(st ndis.Status) { c.ops.oidRequestComplete(a.h, nil, nil, req, st) })
}

func (c *core) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
}

// --- network failure ---

// linkDown clears every call this CM takes part in, as a lost link would:
// calls being set up fail, established and offered calls are closed with
// status at both ends (spec §4.13).
func (c *core) linkDown(st ndis.Status) {
	type life struct {
		v   *cmVc
		gen uint32
	}
	c.lock()
	vcs := make([]life, 0, c.vcs.n)
	for v := c.vcs.head; v != nil; v = v.nextVc {
		vcs = append(vcs, life{v, v.gen})
	}
	c.unlock()
	for _, x := range vcs {
		v := x.v
		c.lock()
		if v.gen != x.gen {
			c.unlock()
			continue // deleted meanwhile: its record may carry another VC now
		}
		far := []*cmVc{}
		if p := v.peer; p != nil && (p.peer == v || v.party != nil && slices.Contains(p.parties, v.party)) {
			far = append(far, p) // the far end of v's call, still (not of a call it has since left)
		}
		for _, p := range v.parties {
			if !p.gone && p.leaf != nil {
				far = append(far, p.leaf)
			}
		}
		c.unlock()
		for _, f := range far {
			f.c.remoteRelease(f, st)
		}
		c.remoteRelease(v, st)
	}
}
