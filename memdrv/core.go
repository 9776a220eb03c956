package memdrv

import (
	"encoding/binary"
	"sync"

	"github.com/condis-project/condis/ndis"
)

// ops are the mediator calls whose form differs between a miniport call
// manager (NdisMCm*) and a stand-alone call manager (NdisCm*, NdisCo*). The
// call-management logic (core) is written once against them, as spec §1.3
// suggests.
type ops interface {
	createVc(af *ndis.Af, ctx any) (*ndis.Vc, ndis.Status)
	deleteVc(vc *ndis.Vc) ndis.Status
	// activate and deactivate call then with the outcome, now or later.
	activate(v *cmVc, p *ndis.CallParameters, then func(ndis.Status))
	deactivate(v *cmVc, then func(ndis.Status))
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

// core is the in-memory call-management logic. It signals calls to other
// cores through the Fabric, like a CM speaking to its peer over the network.
type core struct {
	name string
	fab  *Fabric
	ops  ops

	mu           sync.Mutex
	mode         atomicMode
	maxTokenRate uint32
	refuseOpen   ndis.Status // ProtocolCmOpenAf fails with this when not SUCCESS
	afs          []*cmAf
	vcs          vcRing                     // every VC the CM knows, for link loss
	notified     map[*ndis.Af]ndis.Status   // ProtocolCmNotifyCloseAfComplete results
	rx           func(v *cmVc, data []byte) // MCM: indicate cells switched to v
}

func newCore(name string, fab *Fabric) *core {
	return &core{name: name, fab: fab, notified: map[*ndis.Af]ndis.Status{}}
}

func (c *core) getMode() Mode { return c.mode.get() }

// cmAf is the CM's context for one open of its address family.
type cmAf struct {
	c       *core
	h       *ndis.Af
	vcs     int // VCs this CM created on the open and has not deleted
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
	prevVc, nextVc *cmVc // core.vcs, under core.mu
	listed         bool
	c              *core
	af             *cmAf
	h              *ndis.Vc
	incoming       bool
	vci            uint32

	mu        sync.Mutex
	peer      *cmVc      // p2p: the far end; leaf: the root
	party     *cmParty   // leaf of a multipoint call: the root's party for it
	parties   []*cmParty // root of a multipoint call
	active    bool
	inCall    bool // a call is being set up, offered or established
	connected bool
	released  bool // the far end is gone; closing needs no signalling
	closing   bool
	setup     func(ndis.Status) // pending MakeCall outcome
	makeOut   bool              // the MakeCall is not completed to NDIS yet (its completion may be queued)
	held      bool              // a release arrived meanwhile: indicated once it is (R-CLOSE-20)
	heldClose ndis.Status
	answer    func(ndis.Status, *ndis.CallParameters)
	offerCb   func(ndis.Status, *cmVc) // the caller's side of the offer, told if it is released unanswered
	onAct     func(ndis.Status)
	onDeact   func(ndis.Status)

	offer    ndis.CallParameters // incoming: the offered parameters
	offerCM  ndis.CallManagerParameters
	act      ndis.CallParameters // parameters the VC is activated with (CM-owned, R-ACT-13)
	actCM    ndis.CallManagerParameters
	actMedia ndis.MediaParameters
	vciBytes [4]byte
}

// deliver makes an MCM's VC a switch endpoint (a split topology's VCs are
// the miniport's endpoints instead).
func (v *cmVc) deliver(data []byte) {
	if v.c.rx != nil {
		v.c.rx(v, data)
	}
}

// gone reports whether v's call was released or is being closed.
func (v *cmVc) gone() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.released || v.closing
}

// cmParty is the CM's context for one party of a root's multipoint call.
type cmParty struct {
	root     *cmVc
	h        *ndis.Party
	leaf     *cmVc
	gone     bool // the leaf has left
	dropping bool // the client is dropping it
}

func (v *cmVc) take(f *func(ndis.Status)) func(ndis.Status) {
	v.mu.Lock()
	g := *f
	*f = nil
	v.mu.Unlock()
	return g
}

// activationParams fills the VC's own activation buffer from p and its VCI.
func (v *cmVc) activationParams(p *ndis.CallParameters) *ndis.CallParameters {
	v.act = ndis.CallParameters{Flags: p.Flags &^ ndis.CallParametersChanged}
	if p.CallMgrParameters != nil {
		v.actCM = *p.CallMgrParameters
		v.act.CallMgrParameters = &v.actCM
	}
	binary.BigEndian.PutUint32(v.vciBytes[:], v.vci)
	v.actMedia = ndis.MediaParameters{Flags: ndis.TransmitVC | ndis.ReceiveVC,
		MediaSpecific: ndis.SpecificParameters{ParamType: ParamVCI, Parameters: v.vciBytes[:]}}
	v.act.MediaParameters = &v.actMedia
	return &v.act
}

func (c *core) acceptable(p *ndis.CallParameters) bool {
	c.mu.Lock()
	limit := c.maxTokenRate
	c.mu.Unlock()
	if limit == 0 || p == nil || p.CallMgrParameters == nil {
		return true
	}
	ok := func(r uint32) bool { return r == ndis.QoSNotSpecified || r <= limit }
	return ok(p.CallMgrParameters.Transmit.TokenRate) && ok(p.CallMgrParameters.Receive.TokenRate)
}

func (c *core) addVc(v *cmVc) {
	c.mu.Lock()
	c.vcs.add(v)
	c.mu.Unlock()
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
// before calling then.
func (c *core) activate(v *cmVc, p *ndis.CallParameters, then func(ndis.Status)) {
	c.ops.activate(v, p, then)
}

func (v *cmVc) activated(st ndis.Status) {
	if st == ndis.StatusSuccess {
		v.mu.Lock()
		v.active = true
		v.mu.Unlock()
	}
}

func (c *core) deactivate(v *cmVc, then func(ndis.Status)) {
	v.mu.Lock()
	if act := v.onAct; act != nil {
		// A re-activation (a QoS change) is in flight: one activation or
		// deactivation at a time (R-ACT-10), so deactivate after it.
		v.onAct = func(st ndis.Status) {
			act(st)
			c.deactivate(v, then)
		}
		v.mu.Unlock()
		return
	}
	active := v.active
	v.active = false
	v.mu.Unlock()
	if !active {
		then(ndis.StatusSuccess)
		return
	}
	c.ops.deactivate(v, then)
}

// ProtocolCmActivateVcComplete continues an activation that pended in the
// miniport (stand-alone CM only; never called for an MCM, R-REG-5).
func (c *core) ProtocolCmActivateVcComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	v := vcCtx.(*cmVc)
	if f := v.take(&v.onAct); f != nil {
		v.activated(st)
		f(st)
	}
}

// ProtocolCmDeactivateVcComplete continues a deactivation that pended.
func (c *core) ProtocolCmDeactivateVcComplete(st ndis.Status, vcCtx any) {
	v := vcCtx.(*cmVc)
	if f := v.take(&v.onDeact); f != nil {
		f(st)
	}
}

// --- address family and SAPs ---

func (c *core) ProtocolCmOpenAf(bindingCtx any, af ndis.AddressFamily, h *ndis.Af) (any, ndis.Status) {
	if af.AddressFamily != AF.AddressFamily {
		return nil, ndis.StatusFailure
	}
	a := &cmAf{c: c, h: h}
	st := respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		c.mu.Lock()
		if refuse := c.refuseOpen; refuse != ndis.StatusSuccess {
			c.mu.Unlock()
			done(refuse) // R-AF-11: nothing is kept for a refused open
			return
		}
		c.afs = append(c.afs, a)
		c.mu.Unlock()
		done(ndis.StatusSuccess)
	}, func(st ndis.Status) { c.ops.openAfComplete(st, h, a) })
	return a, st
}

// RefuseOpenAf makes ProtocolCmOpenAf fail with st (at once or through the
// open's completion, by mode), as a CM out of resources would (spec §4.1
// failure variant). StatusSuccess lets opens succeed again.
func (c *core) RefuseOpenAf(st ndis.Status) {
	c.mu.Lock()
	c.refuseOpen = st
	c.mu.Unlock()
}

func (c *core) ProtocolCmCloseAf(afCtx any) ndis.Status {
	a := afCtx.(*cmAf)
	return respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		c.mu.Lock()
		a.closing = true
		if a.vcs > 0 {
			a.onEmpty = done // R-AF-15: finish once our VCs are deleted
			c.mu.Unlock()
			return
		}
		c.removeAfLocked(a)
		c.mu.Unlock()
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
	c.mu.Lock()
	c.notified[a.h] = st
	c.mu.Unlock()
}

func (c *core) ProtocolCmRegisterSap(afCtx any, coSap *ndis.CoSap, h *ndis.Sap) (any, ndis.Status) {
	a := afCtx.(*cmAf)
	if coSap.SapType != SapService || len(coSap.Sap) == 0 {
		return nil, ndis.StatusInvalidData // R-SAP-2: a format we do not know
	}
	s := &cmSap{af: a, h: h, service: string(coSap.Sap)}
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

func (c *core) ProtocolCoCreateVc(afCtx any, vc *ndis.Vc) (any, ndis.Status) {
	v := &cmVc{c: c, af: afCtx.(*cmAf), h: vc}
	c.addVc(v)
	return v, ndis.StatusSuccess
}

func (c *core) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	v := vcCtx.(*cmVc)
	c.mu.Lock()
	c.vcs.remove(v)
	c.mu.Unlock()
	return ndis.StatusSuccess
}

// --- outgoing calls ---

func (c *core) ProtocolCmMakeCall(vcCtx any, params *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
	v := vcCtx.(*cmVc)
	svc, ok := serviceOf(params)
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
	st := respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		v.mu.Lock()
		v.setup = done
		v.released, v.closing, v.connected, v.inCall = false, false, false, true
		v.makeOut, v.held = true, false
		v.parties = v.parties[:0]
		v.mu.Unlock()
		c.setupLeaf(v, p, svc, params, func(st ndis.Status) {
			if st != ndis.StatusSuccess {
				v.mu.Lock()
				v.inCall = false // no call came up: a later release has nothing to close
				v.mu.Unlock()
			}
			if f := v.take(&v.setup); f != nil {
				f(st)
			}
		})
	}, func(st ndis.Status) {
		var ctx any
		if st == ndis.StatusSuccess && p != nil {
			ctx = p
		}
		c.ops.makeCallComplete(st, v.h, party, ctx, params)
		c.makeCompleted(v)
	})
	if st != ndis.StatusPending {
		c.makeCompleted(v)
	}
	if p == nil || (st != ndis.StatusSuccess && st != ndis.StatusPending) {
		return nil, st
	}
	return p, st
}

// setupLeaf offers a call from root v (optionally as party p) to service and
// connects it when the far end accepts; done gets the outcome.
func (c *core) setupLeaf(v *cmVc, p *cmParty, svc string, params *ndis.CallParameters, done func(ndis.Status)) {
	target := c.fab.lookup(svc)
	if target == nil {
		done(ndis.StatusInvalidSap) // cause 88: no SAP matches
		return
	}
	first := p == nil || len(v.parties) == 0
	if first && v.vci == 0 {
		v.vci = c.fab.allocVCI()
	}
	target.af.c.offer(target, params, func(st ndis.Status, leaf *cmVc) {
		if st != ndis.StatusSuccess {
			done(st)
			return
		}
		v.mu.Lock()
		gone := v.released || v.closing
		v.mu.Unlock()
		if gone { // the caller's side went away while the far end answered
			leaf.c.remoteRelease(leaf, ndis.StatusFailure)
			done(ndis.StatusFailure)
			return
		}
		leaf.mu.Lock()
		leaf.peer, leaf.party = v, p
		leaf.mu.Unlock()
		v.mu.Lock()
		if p != nil {
			p.leaf = leaf
			v.parties = append(v.parties, p)
		} else {
			v.peer = leaf
		}
		v.mu.Unlock()
		finish := func(ast ndis.Status) {
			v.mu.Lock()
			released := v.released
			v.mu.Unlock()
			if first && released {
				// The far end released while the VC was being activated;
				// remoteRelease left the setup to us: undo the activation,
				// then fail the call.
				c.deactivate(v, func(ndis.Status) { done(ndis.StatusFailure) })
				return
			}
			if ast != ndis.StatusSuccess {
				leaf.c.remoteRelease(leaf, ast)
				done(ast)
				return
			}
			c.fab.connect(v.vci, leaf.vci)
			if p == nil {
				c.fab.connect(leaf.vci, v.vci) // multipoint VCs are root-to-leaf only
			}
			v.mu.Lock()
			v.connected = true
			v.mu.Unlock()
			leaf.c.connected(leaf)
			done(ndis.StatusSuccess)
		}
		if first {
			c.activate(v, v.activationParams(params), finish)
		} else {
			finish(ndis.StatusSuccess)
		}
	})
}

// offer is the far end of setupLeaf: create a VC for the SAP's client,
// activate it, dispatch the call, and report the client's answer to cb.
func (c *core) offer(sap *cmSap, params *ndis.CallParameters, cb func(ndis.Status, *cmVc)) {
	leaf := &cmVc{c: c, af: sap.af, incoming: true, vci: c.fab.allocVCI(), inCall: true}
	leaf.offer = ndis.CallParameters{Flags: params.Flags &^ ndis.CallParametersChanged}
	if params.CallMgrParameters != nil {
		leaf.offerCM = *params.CallMgrParameters
		leaf.offer.CallMgrParameters = &leaf.offerCM
	}
	c.addVc(leaf)
	h, st := c.ops.createVc(sap.af.h, leaf)
	if st != ndis.StatusSuccess {
		c.forget(leaf)
		cb(ndis.StatusResources, nil) // cause 47
		return
	}
	leaf.h = h
	c.mu.Lock()
	sap.af.vcs++
	c.mu.Unlock()
	c.activate(leaf, leaf.activationParams(&leaf.offer), func(ast ndis.Status) {
		leaf.mu.Lock()
		released := leaf.released // the call went away (link loss) before it could be offered
		leaf.mu.Unlock()
		withdrawn := c.fab.lookup(sap.service) != sap // deregistered meanwhile: its handle is dead (R-SAP-5)
		if ast != ndis.StatusSuccess || released || withdrawn {
			c.disposeLeaf(leaf)
			if ast == ndis.StatusSuccess && withdrawn {
				ast = ndis.StatusInvalidSap // cause 88: no SAP matches any more
			} else if ast == ndis.StatusSuccess {
				ast = ndis.StatusFailure
			}
			cb(ast, nil)
			return
		}
		leaf.mu.Lock()
		leaf.answer = func(st ndis.Status, p *ndis.CallParameters) { c.answered(leaf, st, p, cb) }
		leaf.offerCb = cb
		leaf.mu.Unlock()
		st := c.ops.dispatchIncomingCall(sap.h, leaf.h, &leaf.offer)
		if st == ndis.StatusPending {
			return // the answer comes through ProtocolCmIncomingCallComplete
		}
		c.takeAnswer(leaf, st, &leaf.offer)
	})
}

func (c *core) takeAnswer(leaf *cmVc, st ndis.Status, p *ndis.CallParameters) {
	leaf.mu.Lock()
	f := leaf.answer
	leaf.answer = nil
	leaf.mu.Unlock()
	if f != nil {
		f(st, p)
	}
}

func (c *core) ProtocolCmIncomingCallComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	c.takeAnswer(vcCtx.(*cmVc), st, params)
}

// answered handles the client's answer to an offer.
func (c *core) answered(leaf *cmVc, st ndis.Status, p *ndis.CallParameters, cb func(ndis.Status, *cmVc)) {
	if st != ndis.StatusSuccess {
		// R-IN-7: reject signalling (cause 21), deactivate, delete.
		c.disposeLeaf(leaf)
		cb(ndis.StatusFailure, nil)
		return
	}
	if p != nil && p.Flags&ndis.CallParametersChanged != 0 && !c.acceptable(p) {
		// Spec §4.9: the client's changes are unacceptable.
		leaf.mu.Lock()
		leaf.released = true
		leaf.mu.Unlock()
		cb(ndis.StatusIncompatibleQoS, nil)
		c.ops.dispatchIncomingCloseCall(ndis.StatusIncompatibleQoS, leaf.h, nil)
		return
	}
	cb(ndis.StatusSuccess, leaf)
}

// connected tells the leaf's client the call is up, unless it went away.
func (c *core) connected(leaf *cmVc) {
	leaf.mu.Lock()
	gone := leaf.released || leaf.closing
	leaf.connected = !gone
	leaf.mu.Unlock()
	if !gone {
		c.ops.dispatchCallConnected(leaf.h)
	}
}

// disposeLeaf deactivates and deletes a VC this CM created.
func (c *core) disposeLeaf(leaf *cmVc) {
	leaf.mu.Lock()
	leaf.inCall = false
	leaf.mu.Unlock()
	c.fab.disconnect(leaf.vci)
	c.deactivate(leaf, func(ndis.Status) { c.deleteLeaf(leaf) })
}

func (c *core) deleteLeaf(leaf *cmVc) {
	if leaf.h != nil && c.ops.deleteVc(leaf.h) != ndis.StatusSuccess {
		return // reported by the mediator; the VC stays visible in the snapshot
	}
	c.forget(leaf)
	c.mu.Lock()
	a := leaf.af
	a.vcs--
	var then func(ndis.Status)
	if a.closing && a.vcs == 0 && a.onEmpty != nil {
		then, a.onEmpty = a.onEmpty, nil
		c.removeAfLocked(a)
	}
	c.mu.Unlock()
	if then != nil {
		then(ndis.StatusSuccess)
	}
}

func (c *core) forget(v *cmVc) {
	c.mu.Lock()
	c.vcs.remove(v)
	c.mu.Unlock()
}

// --- teardown ---

func (c *core) ProtocolCmCloseCall(vcCtx, partyCtx any, data []byte) ndis.Status {
	v := vcCtx.(*cmVc)
	var party *ndis.Party
	if p, ok := partyCtx.(*cmParty); ok {
		party = p.h
	}
	return respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		v.mu.Lock()
		v.closing = true
		released := v.released
		peer, parties := v.peer, append([]*cmParty(nil), v.parties...)
		v.connected = false
		v.mu.Unlock()
		if !released {
			if v.incoming {
				if peer != nil {
					peer.c.farEndLeft(peer, v)
				}
			} else {
				if peer != nil {
					peer.c.remoteRelease(peer, ndis.StatusSuccess)
				}
				for _, p := range parties {
					if !p.gone && p.leaf != nil {
						p.gone = true
						p.leaf.c.remoteRelease(p.leaf, ndis.StatusSuccess)
					}
				}
			}
		}
		c.fab.disconnect(v.vci)
		c.deactivate(v, func(st ndis.Status) {
			v.mu.Lock()
			v.inCall = false
			v.mu.Unlock()
			done(st)
			if v.incoming {
				c.fab.Post(func() { c.deleteLeaf(v) }) // after the close has finished (R-CLOSE-12)
			}
		})
	}, func(st ndis.Status) { c.ops.closeCallComplete(st, v.h, party) })
}

// remoteRelease: the far end (or the network) released v's call.
func (c *core) remoteRelease(v *cmVc, st ndis.Status) {
	v.mu.Lock()
	if v.closing || v.released || !v.inCall {
		v.mu.Unlock()
		return // clear collision (both sides released) or no call: nothing to tell
	}
	v.released = true
	setup := v.setup
	v.setup = nil
	answer := v.answer
	v.answer = nil
	activating, connected := v.onAct != nil, v.connected
	parties := append([]*cmParty(nil), v.parties...)
	v.mu.Unlock()
	c.fab.disconnect(v.vci)
	for _, p := range parties {
		if !p.gone && p.leaf != nil {
			p.gone = true
			p.leaf.c.remoteRelease(p.leaf, st)
		}
	}
	if setup != nil {
		// A call still being set up fails through MakeCallComplete, never an
		// incoming close and never with SUCCESS: an orderly release before
		// the connect is a failed setup (design.md §2). Deactivate first:
		// the client will delete the VC. An activation still in flight
		// finishes the setup when it completes (setupLeaf).
		if st == ndis.StatusSuccess {
			st = ndis.StatusFailure
		}
		v.mu.Lock()
		v.inCall = false
		if activating {
			v.setup = func(ndis.Status) { setup(st) }
		}
		v.mu.Unlock()
		if !activating {
			c.deactivate(v, func(ndis.Status) { setup(st) })
		}
		return
	}
	if v.incoming && activating && !connected {
		return // not offered yet: offer() withdraws it once the activation completes
	}
	// Established, accepted or offered (an offer not yet answered is
	// withdrawn the same way, R-CLOSE-20).
	v.mu.Lock()
	if v.makeOut { // the MakeCall succeeded but NDIS has not been told yet
		v.held, v.heldClose = true, st
		v.mu.Unlock()
		return
	}
	offerCb := v.offerCb
	v.mu.Unlock()
	c.ops.dispatchIncomingCloseCall(st, v.h, nil)
	if answer != nil && offerCb != nil {
		// Released before the client answered: the caller's setup (a
		// MakeCall, or an AddParty) fails, or it would wait forever.
		if st == ndis.StatusSuccess {
			st = ndis.StatusFailure
		}
		offerCb(st, nil)
	}
}

// makeCompleted: NDIS has the MakeCall's outcome; a release that arrived
// while its completion was queued is indicated now, never before (R-CLOSE-20).
func (c *core) makeCompleted(v *cmVc) {
	v.mu.Lock()
	held, st := v.held && !v.closing, v.heldClose
	v.makeOut, v.held = false, false
	v.mu.Unlock()
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
	root.mu.Lock()
	p.gone = true
	dropping := p.dropping
	others := 0
	for _, q := range root.parties {
		if !q.gone {
			others++
		}
	}
	root.mu.Unlock()
	c.fab.disconnect(leaf.vci)
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
	svc, ok := serviceOf(params)
	if !ok {
		return nil, ndis.StatusInvalidAddress
	}
	p := &cmParty{root: v, h: party}
	st := respond(&c.fab.Loop, c.getMode(), func(done func(ndis.Status)) {
		c.setupLeaf(v, p, svc, params, done)
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
		root.mu.Lock()
		p.dropping = true
		gone := p.gone
		p.gone = true
		for i, q := range root.parties {
			if q == p {
				root.parties = append(root.parties[:i], root.parties[i+1:]...)
				break
			}
		}
		root.mu.Unlock()
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
		v.mu.Lock()
		peer, multipoint := v.peer, len(v.parties) > 0
		v.mu.Unlock()
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
			c.activate(v, v.activationParams(params), done)
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
	c.activate(v, v.activationParams(params), func(st ndis.Status) {
		if st == ndis.StatusSuccess && v.gone() {
			st = ndis.StatusFailure // released meanwhile: no change to tell (R-QOS-7)
		}
		if st != ndis.StatusSuccess {
			cb(st)
			return
		}
		c.ops.dispatchQoSChange(v.h, &v.act)
		cb(ndis.StatusSuccess) // R-QOS-9: after the client's handler returned
	})
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
	c.mu.Lock()
	vcs := make([]*cmVc, 0, c.vcs.n)
	for v := c.vcs.head; v != nil; v = v.nextVc {
		vcs = append(vcs, v)
	}
	c.mu.Unlock()
	for _, v := range vcs {
		v.mu.Lock()
		far := []*cmVc{}
		if v.peer != nil {
			far = append(far, v.peer)
		}
		for _, p := range v.parties {
			if !p.gone && p.leaf != nil {
				far = append(far, p.leaf)
			}
		}
		v.mu.Unlock()
		for _, f := range far {
			f.c.remoteRelease(f, st)
		}
		c.remoteRelease(v, st)
	}
}
