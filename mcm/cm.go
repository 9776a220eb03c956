package mcm

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

var _ ndis.MiniportCallManager = (*MCM)(nil)

// ---- address family ----

// ProtocolCmOpenAf models ProtocolCmOpenAf: a client opens the Q.2931 AF.
func (d *MCM) ProtocolCmOpenAf(bindingCtx any, family ndis.AddressFamily, h *ndis.Af) (any, ndis.Status) {
	if family.AddressFamily != q2931.AF.AddressFamily {
		return nil, ndis.StatusFailure
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return nil, ndis.StatusFailure
	}
	a := &callctl.AF{Seq: seqs.Add(1), Handle: h, SAPs: map[*callctl.SAP]struct{}{}}
	d.afs[a] = struct{}{}
	return a, ndis.StatusSuccess
}

// ProtocolCmCloseAf models ProtocolCmCloseAf. It pends until every VC the
// MCM created on the open is deleted (R-AF-15).
func (d *MCM) ProtocolCmCloseAf(afCtx any) ndis.Status {
	a := afCtx.(*callctl.AF)
	d.mu.Lock()
	defer d.mu.Unlock()
	if a.VCs > 0 {
		a.Closing = true
		return ndis.StatusPending
	}
	a.Closed = true
	delete(d.afs, a)
	return ndis.StatusSuccess
}

// ProtocolCmNotifyCloseAfComplete models ProtocolCmNotifyCloseAfComplete;
// the client's close of the AF follows, nothing else is needed.
func (d *MCM) ProtocolCmNotifyCloseAfComplete(afCtx any, st ndis.Status) {}

// ProtocolCmRegisterSap models ProtocolCmRegisterSap. The SAP must be in
// the format ServiceSap makes (NDIS_STATUS_INVALID_DATA otherwise, also for
// a service name longer than 8 octets; NDIS_STATUS_INVALID_ADDRESS for
// another node's address); a service registered already is
// NDIS_STATUS_SAP_IN_USE.
func (d *MCM) ProtocolCmRegisterSap(afCtx any, coSap *ndis.CoSap, h *ndis.Sap) (any, ndis.Status) {
	a := afCtx.(*callctl.AF)
	svc, st := q2931.ParseSap(coSap, d.addr)
	if st != ndis.StatusSuccess {
		return nil, st
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return nil, ndis.StatusFailure
	}
	if d.saps[svc] != nil {
		return nil, ndis.StatusSapInUse
	}
	s := &callctl.SAP{AF: a, Handle: h, Service: svc}
	d.saps[svc] = s
	a.SAPs[s] = struct{}{}
	return s, ndis.StatusSuccess
}

// ProtocolCmDeregisterSap models ProtocolCmDeregisterSap.
func (d *MCM) ProtocolCmDeregisterSap(sapCtx any) ndis.Status {
	s := sapCtx.(*callctl.SAP)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.saps[s.Service] == s {
		delete(d.saps, s.Service)
	}
	delete(s.AF.SAPs, s)
	return ndis.StatusSuccess
}

// ---- VCs ----

// ProtocolCoCreateVc models ProtocolCoCreateVc: a client created a VC for
// an outgoing call.
func (d *MCM) ProtocolCoCreateVc(afCtx any, h *ndis.Vc) (any, ndis.Status) {
	v := &vc{seq: uint32(seqs.Add(1)), af: afCtx.(*callctl.AF), h: h}
	d.mu.Lock()
	d.moveLocked(v, callctl.Idle, callctl.ReasonCreated)
	d.vcs.push(v)
	d.mu.Unlock()
	return v, ndis.StatusSuccess
}

// ProtocolCoDeleteVc models ProtocolCoDeleteVc.
func (d *MCM) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	v := vcCtx.(*vc)
	d.mu.Lock()
	d.vcs.remove(v)
	delete(d.causes, v.h)
	d.mu.Unlock()
	return ndis.StatusSuccess
}

// ProtocolCmActivateVcComplete is never called for an MCM (R-REG-5).
func (d *MCM) ProtocolCmActivateVcComplete(ndis.Status, any, *ndis.CallParameters) {}

// ProtocolCmDeactivateVcComplete is never called for an MCM (R-REG-5).
func (d *MCM) ProtocolCmDeactivateVcComplete(ndis.Status, any) {}

// ---- outgoing calls ----

// destination is the node and service a MakeCall or AddParty names:
// NDIS_STATUS_INVALID_ADDRESS if it names none, or a node this one does not
// deal with (Config.Trusts), NDIS_STATUS_NO_ROUTE_TO_DESTINATION for this
// node itself.
func (d *MCM) destination(params *ndis.CallParameters) (node, service string, st ndis.Status) {
	node, service, err := q2931.Destination(params)
	switch {
	case err != nil:
		return "", "", ndis.StatusInvalidAddress
	case node == d.name:
		return "", "", ndis.StatusNoRouteToDestination
	case d.cfg.Trusts != nil && !d.cfg.Trusts(node):
		return "", "", ndis.StatusInvalidAddress
	}
	return node, service, ndis.StatusSuccess
}

// ProtocolCmMakeCall models ProtocolCmMakeCall: SETUP to the destination
// node (dialling it first if there is no link), T303. Refused at once with
// NDIS_STATUS_INVALID_ADDRESS for a destination that is not "node/service",
// NDIS_STATUS_NO_ROUTE_TO_DESTINATION for a call to this node itself,
// NDIS_STATUS_NOT_SUPPORTED for a service type other than best effort,
// controlled load, guaranteed or no traffic, NDIS_STATUS_INVALID_DATA for a
// flowspec UNI 3.1 cannot carry (CheckFlowspec), NDIS_STATUS_CELLRATE_NOT_AVAILABLE
// over Config.MaxRate and NDIS_STATUS_AAL_PARAMS_UNSUPPORTED for a
// MaxSduSize the path cannot carry (unless the media parameters allow
// ROUND_DOWN_FLOW). Otherwise PENDING: MakeCallComplete follows, SUCCESS on
// CONNECT (after NdisMCmActivateVc), else the status of the cause
// (q2931.StatusForCause; normal clearing counts as NDIS_STATUS_FAILURE). The
// flowspecs become what the SETUP signals (whole cells; what UNI 3.1 does
// not carry QOS_NOT_SPECIFIED), flagged CALL_PARAMETERS_CHANGED if that is
// not what was asked: both ends of the call report the same.
func (d *MCM) ProtocolCmMakeCall(vcCtx any, params *ndis.CallParameters, ph *ndis.Party) (any, ndis.Status) {
	v := vcCtx.(*vc)
	node, svc, st := d.destination(params)
	if st != ndis.StatusSuccess {
		return nil, st
	}
	cm := params.CallMgrParameters
	tx, rx, st := q2931.Granted(cm.Transmit, cm.Receive, ph != nil)
	if st != ndis.StatusSuccess {
		return nil, st
	}
	if q2931.Exceeds(tx, d.cfg.MaxRate) || (ph == nil && q2931.Exceeds(rx, d.cfg.MaxRate)) {
		return nil, ndis.StatusCellrateNotAvailable
	}
	q2931.Grant(params, tx, rx)
	v.resetData()
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return nil, ndis.StatusFailure
	}
	delete(d.causes, v.h) // the cause of the VC's previous call
	d.moveLocked(v, callctl.Calling, callctl.ReasonMakeCall)
	v.p, v.service = d.peerLocked(node), callctl.MakeServiceName(svc)
	if d.cfg.Tracer.Call != nil {
		v.madeAt = max(time.Since(d.started), 1)
	}
	v.reliable, v.multipoint, v.req = q2931.ReliableRequested(params), ph != nil, params
	v.c, v.mp = nil, nil
	v.qosPending = false
	var pt *party
	if ph != nil {
		pt = &party{v: v, h: ph, node: node, service: svc, params: params, state: callctl.PartyAdding, initial: true}
		v.mp = &rootState{parties: []*party{pt}}
	}
	st = d.startLegLocked(v.p, v, pt)
	if st != ndis.StatusSuccess {
		d.moveLocked(v, callctl.Idle, callctl.ReasonSetupFailed)
		v.req = nil
		v.dropCall()
		d.mu.Unlock()
		return nil, st
	}
	d.mu.Unlock()
	d.run()
	if pt != nil {
		return pt, ndis.StatusPending
	}
	return nil, ndis.StatusPending
}

// startLegLocked sends the SETUP of a new leg of v (its call, or a
// multipoint party on a node the call has no leg to yet), or queues it
// until the link to p is up.
func (d *MCM) startLegLocked(p *peer, v *vc, pt *party) ndis.Status {
	if p.up() {
		return d.setupLocked(p, v, pt)
	}
	p.as.Wait(setupReq{v: v, pt: pt})
	d.dialLocked(p)
	return ndis.StatusSuccess
}

// setupLocked sends the SETUP of a leg to p, the peer of the called node
// (v's, or pt's for a leaf of a multipoint call).
func (d *MCM) setupLocked(p *peer, v *vc, pt *party) ndis.Status {
	svc := v.service.Bytes()
	if pt != nil {
		svc = []byte(pt.service)
	}
	var tx, rx ndis.Flowspec
	if pt == nil || pt.initial {
		cm := v.req
		if st := callctl.NegotiateSDU(cm, p.tl, v.reliable, v.multipoint); st != ndis.StatusSuccess {
			return st
		}
		tx, rx = cm.CallMgrParameters.Transmit, cm.CallMgrParameters.Receive
	} else {
		// A later party of a multipoint call: the call's parameters.
		if !v.act.InForceLocked() {
			return ndis.StatusFailure // the call is gone
		}
		if !v.reliable && int(v.tx.MaxSduSize) > p.tl.MaxDatagramPayload() {
			return ndis.StatusAalParamsUnsupported // cause 78: this leaf's path carries less
		}
		tx, rx = v.tx, v.rx
	}
	if v.multipoint {
		rx = ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
	}
	sm, st := q2931.NewSetup(&d.addr, &p.addr, svc)
	if st != ndis.StatusSuccess {
		return st
	}
	if st := sm.Traffic(tx, rx, v.multipoint, v.reliable); st != ndis.StatusSuccess {
		return st
	}
	m := &sm.Message
	id, out, err := p.as.Link().Setup(m)
	if err != nil {
		d.log.Warn("SETUP refused by the signalling", "peer", p.name, "err", err)
		if errors.Is(err, uni.ErrNoCallRef) {
			return ndis.StatusResources
		}
		return ndis.StatusFailure
	}
	c := &call{p: p, id: id, out: v, p2mp: v.multipoint}
	p.as.AddCall(c.id, c)
	v.addLeg(c)
	if pt != nil {
		pt.c, pt.ep = c, m.EndpointRef.Value
		c.mp = &callMP{eps: map[uint16]*party{pt.ep: pt}}
	}
	d.applyLocked(p, out)
	return ndis.StatusSuccess
}

// legFailedLocked ends a leg that never came up: the MakeCall fails (for
// the call's first leg) or the AddParty does.
func (d *MCM) legFailedLocked(v *vc, pt *party, st ndis.Status) {
	st = failure(st)
	if pt == nil || pt.initial {
		if v.state() != callctl.Calling {
			return
		}
		params := v.req
		d.traceCallLocked(v, trace.CallFailed, 0, st, true)
		d.moveLocked(v, callctl.Idle, callctl.ReasonCallFailed)
		v.req = nil
		v.dropCall()
		var ph *ndis.Party
		if pt != nil {
			ph = pt.h
			pt.state = callctl.PartyGone
		}
		d.enqueueLocked(func() { d.cm.MakeCallComplete(st, v.h, ph, nil, params) })
		return
	}
	d.partyGoneLocked(pt)
	d.enqueueLocked(func() { d.cm.AddPartyComplete(st, pt.h, nil, pt.params) })
}

// partyGoneLocked forgets a party.
func (d *MCM) partyGoneLocked(pt *party) {
	pt.state = callctl.PartyGone
	if r := pt.v.mp; r != nil {
		if i := slices.Index(r.parties, pt); i >= 0 {
			r.parties = slices.Delete(r.parties, i, i+1)
		}
	}
	if c := pt.c; c != nil && c.party(pt.ep) == pt {
		delete(c.mp.eps, pt.ep)
	}
}

// activation is storage for the parameters a VC is activated with
// (NdisMCmActivateVc): the flowspecs in force; in MediaSpecific
// (ParamMedia), the connection identifier and the reliable flag; in
// CallMgrSpecific, the called party ("node/service") of an outgoing call
// or the calling node of an incoming one. The VC keeps only the
// flowspecs; the rest is built from the VC when it is activated.
type activation struct {
	p     ndis.CallParameters
	cm    ndis.CallManagerParameters
	mp    ndis.MediaParameters
	blob  [q2931.MediaBlobLen]byte
	party []byte
}

// activations recycles activation storage: the mediator copies what it
// keeps of the parameters (R-ACT-13), so they are the MCM's again when
// NdisMCmActivateVc returns.
var activations = sync.Pool{New: func() any { return new(activation) }}

// fill builds v's activation parameters with tx, rx and the connection
// identifier conn in a and returns them. v's call fields it reads are set
// when the call starts.
func (a *activation) fill(v *vc, tx, rx ndis.Flowspec, conn uint32) *ndis.CallParameters {
	a.p = ndis.CallParameters{}
	if v.multipoint {
		a.p.Flags = ndis.MultipointVC
	}
	a.party = append(a.party[:0], v.p.name...)
	typ := q2931.ParamCallingParty
	if !v.incoming {
		typ = q2931.ParamCalledParty
		a.party = append(append(a.party, '/'), v.service.Bytes()...)
	}
	a.cm = ndis.CallManagerParameters{Transmit: tx, Receive: rx,
		CallMgrSpecific: ndis.SpecificParameters{ParamType: typ, Parameters: a.party}}
	a.blob = q2931.MediaArray(conn, v.mediaFlags())
	a.mp = ndis.MediaParameters{Flags: ndis.TransmitVC | ndis.ReceiveVC,
		MediaSpecific: ndis.SpecificParameters{ParamType: q2931.ParamMedia, Parameters: a.blob[:]}}
	a.p.CallMgrParameters, a.p.MediaParameters = &a.cm, &a.mp
	return &a.p
}

// mediaFlags are the ParamMedia flags of v's call.
func (v *vc) mediaFlags() byte {
	if v.reliable {
		return q2931.MediaReliable
	}
	return 0
}

// activate activates v with tx and rx on connection conn
// (NdisMCmActivateVc, through v.act: after the activations in flight)
// and tells done the outcome with step, when the CM has completed it;
// d.mu is not held.
func (d *MCM) activate(v *vc, tx, rx ndis.Flowspec, conn uint32, done callctl.Done, step uint8) {
	a := activations.Get().(*activation)
	if v.act.Activate(&d.mu, d.cm, v.h, a.fill(v, tx, rx, conn), done, step) {
		activations.Put(a) // else it is pended or waits (R-ACT-13): the collector takes it after
	}
}

// The flows that go on after an activation or deactivation of a VC, as
// the step of its request (vc.ActivationDone): a tag instead of a closure
// per request keeps a call's activations free of allocations.
const (
	stepCallUp   uint8 = iota + 1 // CONNECT arrived: activated, the MakeCall completes (callUpActivated)
	stepOffer                     // an incoming call: activated, it is offered (offerActivated)
	stepNarrowed                  // the client lowered an offered SDU size: re-activated, data may flow
	stepClose                     // the close's deactivation: CloseCallComplete (closeDeactivated)
	stepDispose                   // an offer that did not become a call: deactivated, the VC is deleted
)

// ActivationDone continues v's flow after its activation or deactivation
// completed with st (callctl.Done): at once inside the request when the CM
// completes at once, else from the completion.
func (v *vc) ActivationDone(step uint8, st ndis.Status) {
	d := v.p.d
	switch step {
	case stepCallUp:
		d.callUpActivated(v, st)
	case stepOffer:
		d.offerActivated(v, st)
	case stepNarrowed:
		d.narrowedActivated(v)
	case stepClose:
		d.closeDeactivated(v)
	case stepDispose:
		d.deleteLater(v)
	}
}

// ignoreOutcome is the Done of an activation whose outcome changes
// nothing (a QoS change rolled back, a VC let go).
var ignoreOutcome = callctl.DoneFunc(func(ndis.Status) {})

// activationCompleted is the completion of v's pended activation or
// deactivation (ProtocolCmActivateVcComplete and
// ProtocolCmDeactivateVcComplete of a CM whose miniport pends them): the
// flow waiting for it goes on, then the work it queued runs. It reports
// false if nothing of v's was pended.
func (d *MCM) activationCompleted(v *vc, st ndis.Status) bool {
	ok := v.act.Completed(&d.mu, d.cm, v.h, st)
	d.run()
	return ok
}

// ---- closing ----

// ProtocolCmCloseCall models ProtocolCmCloseCall: RELEASE (cause 16), or
// RELEASE COMPLETE if the peer released first, or DROP PARTY for one leaf
// of a multipoint call that has others on the same node. PENDING;
// CloseCallComplete(SUCCESS) follows once the network part is over and the
// VC's data is drained and it is deactivated.
func (d *MCM) ProtocolCmCloseCall(vcCtx, partyCtx any, data []byte) ndis.Status {
	v := vcCtx.(*vc)
	d.mu.Lock()
	if v.state() == callctl.Released {
		d.moveLocked(v, callctl.ClosingReleased, callctl.ReasonClientClose)
	} else {
		d.moveLocked(v, callctl.Closing, callctl.ReasonClientClose)
	}
	if pt, ok := partyCtx.(*party); ok && v.mp != nil {
		v.mp.closeParty = pt
	}
	if v.incoming {
		d.closeIncomingLocked(v)
	} else {
		for _, pt := range v.parties() {
			if pt.state == callctl.PartyActive || pt.state == callctl.PartyDropIndicated {
				pt.state = callctl.PartyClosing
			}
		}
		first, further := v.c, slices.Clone(v.furtherLegs())
		if first != nil {
			d.releaseLegLocked(first, uni.NewCause(uni.CauseNormalCallClearing))
		}
		for _, c := range further {
			d.releaseLegLocked(c, uni.NewCause(uni.CauseNormalCallClearing))
		}
	}
	d.maybeFinishCloseLocked(v)
	d.mu.Unlock()
	d.run()
	return ndis.StatusPending
}

// releaseLegLocked clears a uni call unless it is gone or being cleared.
func (d *MCM) releaseLegLocked(c *call, cause uni.CauseIE) {
	if c.ended {
		return
	}
	st, ok := c.p.as.Link().CallState(c.id)
	if !ok || st == uni.StateReleaseRequest {
		return // gone (its IndReleased is queued) or RELEASE already sent
	}
	if out, err := c.p.as.Link().Release(c.id, cause); err == nil {
		d.applyLocked(c.p, out)
		d.noteReleasingLocked(c)
	}
}

// noteReleasingLocked remembers that this side's RELEASE is out for c.
func (d *MCM) noteReleasingLocked(c *call) {
	if st, ok := c.p.as.Link().CallState(c.id); ok && st == uni.StateReleaseRequest {
		c.releasing = true
	}
}

// closeIncomingLocked ends the network part of an incoming VC's call.
func (d *MCM) closeIncomingLocked(v *vc) {
	c := v.c
	if c.ended || v.partyEnded {
		return
	}
	p := c.p
	st, ok := p.as.Link().CallState(c.id)
	if !ok || st == uni.StateReleaseRequest {
		return
	}
	normal := uni.NewCause(uni.CauseNormalCallClearing)
	others := 0
	c.eachIn(func(x *vc) {
		if x != v && !x.state().IsClosing() && !x.partyEnded && x.state() != callctl.Idle {
			others++
		}
	})
	switch {
	case st == uni.StateReleaseIndication:
		// The peer released; the last VC of the call answers.
		if others > 0 {
			v.partyEnded = true
			c.dropRx(v)
			return
		}
	case c.p2mp && st == uni.StateActive:
		ps, ok := p.as.Link().PartyState(c.id, v.ep)
		if !ok {
			v.partyEnded = true
			c.dropRx(v)
			return
		}
		if ps == uni.PartyDropPartyInitiated {
			return
		}
		if ps == uni.PartyDropPartyReceived || ps == uni.PartyActive {
			if out, err := p.as.Link().DropParty(c.id, v.ep, normal); err == nil {
				d.applyLocked(p, out)
				d.noteReleasingLocked(c)
				return
			}
		}
	}
	d.releaseLegLocked(c, normal)
}

// maybeFinishCloseLocked queues the end of a close once its network part
// is over.
func (d *MCM) maybeFinishCloseLocked(v *vc) {
	s := v.state()
	if s != callctl.Closing && s != callctl.ClosingReleased {
		return // not closing, or its end is queued already
	}
	if v.incoming {
		if !v.c.ended && !v.partyEnded {
			return
		}
	} else if v.c != nil {
		return // a leg is still up (the first is the last to go)
	}
	// A call its client closed while it was up ends here; one the network
	// ended was traced when the client was told (networkEndLocked).
	if s == callctl.Closing {
		d.traceCallLocked(v, trace.CallReleased, uni.CauseNormalCallClearing, ndis.StatusSuccess, false)
	}
	d.moveLocked(v, callctl.Finishing, callctl.ReasonNetworkDone)
	d.enqueueLocked(func() { d.finishClose(v) })
}

// finishClose drains the VC's data, deactivates it and completes the
// close (closeDeactivated).
func (d *MCM) finishClose(v *vc) {
	d.stopData(v, func() {
		v.closeStreams()
		v.act.Deactivate(&d.mu, d.cm, v.h, v, stepClose)
	})
}

// closeDeactivated completes the close of v, deactivated (or never
// activated): CloseCallComplete, and an incoming VC is deleted.
func (d *MCM) closeDeactivated(v *vc) {
	d.mu.Lock()
	var ph *ndis.Party
	if v.mp != nil && v.mp.closeParty != nil {
		ph = v.mp.closeParty.h
	}
	for _, pt := range v.parties() {
		pt.state = callctl.PartyGone
	}
	d.moveLocked(v, callctl.Idle, callctl.ReasonCloseComplete)
	if !v.incoming {
		v.dropCall() // an incoming VC keeps its call until it is deleted
	}
	v.qosPending, v.req = false, nil
	incoming := v.incoming
	d.mu.Unlock()
	d.cm.CloseCallComplete(ndis.StatusSuccess, v.h, ph)
	if incoming {
		d.deleteLater(v)
	}
}

// dispose deactivates and deletes an incoming VC whose call did not come
// up (the client refused it, or it could not be offered).
func (d *MCM) dispose(v *vc) {
	d.stopData(v, func() {
		d.mu.Lock()
		d.moveLocked(v, callctl.Idle, callctl.ReasonDisposed)
		d.mu.Unlock()
		v.closeStreams()
		v.act.Deactivate(&d.mu, d.cm, v.h, v, stepDispose)
	})
}

// deleteLater deletes an incoming VC (NdisMCmDeleteVc) once the client's
// answer to its offer has arrived; d.mu is not held.
func (d *MCM) deleteLater(v *vc) {
	d.mu.Lock()
	d.deleteLaterLocked(v)
	d.mu.Unlock()
	d.run()
}

// deleteLaterLocked queues the deletion of an incoming VC, or leaves it to
// answered() while the client's answer to the offer is outstanding. The
// close (or refusal) before it has completed: the mediator takes the
// deletion at once, or, when the close is still settling in the client's
// NdisClCloseCall, carries it out when that returns.
func (d *MCM) deleteLaterLocked(v *vc) {
	if v.deleteQueued || v.h == nil {
		return
	}
	if o := v.offer; o != nil && o.Pending {
		o.DeleteWanted = true // answered() calls back
		return
	}
	v.deleteQueued = true
	d.enqueueLocked(func() { d.deleteVc(v, time.Millisecond) })
}

// deleteAfter deletes v after pause, on a goroutine of its own: for the
// rare retry of a refused deletion.
func (d *MCM) deleteAfter(v *vc, pause time.Duration) {
	d.spawn(func() {
		time.Sleep(pause)
		d.later(func() { d.deleteVc(v, pause) })
	})
}

// deleteVc deletes an incoming VC (NdisMCmDeleteVc); if the mediator
// refuses (it should not), it tries again later, up to about a second
// apart, so the AF can still close.
func (d *MCM) deleteVc(v *vc, pause time.Duration) {
	if st := d.cm.DeleteVc(v.h); st != ndis.StatusSuccess {
		d.log.Error("NdisMCmDeleteVc refused; trying again", "vc", v.h.String(), "status", st.String())
		d.deleteAfter(v, min(2*pause, time.Second))
		return
	}
	d.mu.Lock()
	d.vcs.remove(v)
	delete(d.causes, v.h)
	if c := v.c; c != nil && v.incoming {
		c.removeIn(v)
		c.dropRx(v)
	}
	a := v.af
	a.VCs--
	done := a.Closing && a.VCs == 0 && !a.Closed
	if done {
		a.Closed = true
		delete(d.afs, a)
	}
	d.mu.Unlock()
	if done {
		d.cm.CloseAddressFamilyComplete(ndis.StatusSuccess, a.Handle)
	}
}

// ---- parties ----

// ProtocolCmAddParty models ProtocolCmAddParty: ADD PARTY on the call's leg
// to the party's node, or a new leg (a SETUP) if the call has none there.
// PENDING; AddPartyComplete follows.
func (d *MCM) ProtocolCmAddParty(vcCtx any, params *ndis.CallParameters, ph *ndis.Party) (any, ndis.Status) {
	v := vcCtx.(*vc)
	node, svc, st := d.destination(params)
	if st != ndis.StatusSuccess {
		return nil, st
	}
	d.mu.Lock()
	if d.closing || !v.multipoint || v.state() != callctl.Active {
		d.mu.Unlock()
		return nil, ndis.StatusFailure
	}
	pt := &party{v: v, h: ph, node: node, service: svc, params: params, state: callctl.PartyAdding}
	v.mp.parties = append(v.mp.parties, pt)
	p := d.peerLocked(node)
	st = ndis.StatusSuccess
	if c := v.legOn(p); c != nil && !c.ended {
		if c.connected {
			st = d.addOnLegLocked(c, pt)
		} else {
			pt.c = c
			c.mp.waitAdds = append(c.mp.waitAdds, pt)
		}
	} else {
		st = d.startLegLocked(p, v, pt)
	}
	if st != ndis.StatusSuccess {
		d.partyGoneLocked(pt)
		d.mu.Unlock()
		return nil, st
	}
	d.mu.Unlock()
	d.run()
	return pt, ndis.StatusPending
}

// addOnLegLocked sends ADD PARTY on an active leg.
func (d *MCM) addOnLegLocked(c *call, pt *party) ndis.Status {
	v := pt.v
	m := &uni.Message{Called: uni.CalledAESA(c.p.addr), Calling: uni.CallingAESA(d.addr)} // c.p is pt.node's peer
	var err error
	if m.BHLI, err = uni.ServiceBHLI(pt.service); err != nil {
		return ndis.StatusInvalidAddress
	}
	if v.act.InForceLocked() {
		m.AAL = q2931.AALParams(v.tx, ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}, v.reliable)
	}
	ep, out, err := c.p.as.Link().AddParty(c.id, m)
	if err != nil {
		if errors.Is(err, uni.ErrNoEndpointRef) {
			return ndis.StatusResources
		}
		return ndis.StatusFailure
	}
	pt.c, pt.ep = c, ep
	c.mp.eps[ep] = pt
	d.applyLocked(c.p, out)
	return ndis.StatusSuccess
}

// ProtocolCmDropParty models ProtocolCmDropParty: DROP PARTY (RELEASE for
// the last party on its leg), or DROP PARTY ACKNOWLEDGE for a party the
// leaf dropped. PENDING; DropPartyComplete follows.
func (d *MCM) ProtocolCmDropParty(partyCtx any, data []byte) ndis.Status {
	pt := partyCtx.(*party)
	d.mu.Lock()
	c := pt.c
	pt.state = callctl.PartyDropping
	var ps uni.PartyState
	ok := c != nil && !c.ended
	if ok {
		ps, ok = c.p.as.Link().PartyState(c.id, pt.ep)
	}
	switch {
	case !ok:
		d.partyGoneLocked(pt)
		d.enqueueLocked(func() { d.cm.DropPartyComplete(ndis.StatusSuccess, pt.h) })
	case ps == uni.PartyDropPartyInitiated:
		// DROP PARTY already out (T399 expiry): its end completes the drop.
	default:
		out, err := c.p.as.Link().DropParty(c.id, pt.ep, uni.NewCause(uni.CauseNormalCallClearing))
		if err != nil {
			d.releaseLegLocked(c, uni.NewCause(uni.CauseNormalCallClearing))
		} else {
			d.applyLocked(c.p, out)
			d.noteReleasingLocked(c) // the last party goes with RELEASE
		}
	}
	d.mu.Unlock()
	d.run()
	return ndis.StatusPending
}

// ---- QoS ----

// ProtocolCmModifyCallQoS models ProtocolCmModifyCallQoS: MODIFY REQUEST
// (Q.2963.1) with the new traffic descriptor. Only what a traffic
// descriptor carries may change (TokenRate, TokenBucketSize,
// PeakBandwidth); a change of ServiceType or MaxSduSize, a multipoint call
// or a call not yet established is NDIS_STATUS_NOT_SUPPORTED, a flowspec
// UNI 3.1 cannot carry NDIS_STATUS_INVALID_DATA (CheckFlowspec); the
// flowspecs become what the MODIFY REQUEST signals, flagged
// CALL_PARAMETERS_CHANGED if that is not what was asked. PENDING:
// on MODIFY ACKNOWLEDGE the VC is re-activated with the new parameters and
// the change completes with SUCCESS; on MODIFY REJECT (or T360, or link
// loss) it completes with the cause's status and the VC keeps its previous
// parameters exactly. When the peer's MODIFY REQUEST crosses this one, the
// call's originator wins (docs/protocol.md §11.13): on the other side the
// change completes at once with NDIS_STATUS_FAILURE, before the winner's
// parameters are applied and indicated (IncomingCallQoSChange).
func (d *MCM) ProtocolCmModifyCallQoS(vcCtx any, params *ndis.CallParameters) ndis.Status {
	v := vcCtx.(*vc)
	if params == nil || params.CallMgrParameters == nil {
		return ndis.StatusInvalidData
	}
	d.mu.Lock()
	defer func() {
		d.mu.Unlock()
		d.run()
	}()
	c := v.c
	if v.multipoint || (c != nil && c.p2mp) || v.state() == callctl.Offered {
		return ndis.StatusNotSupported
	}
	if v.state() != callctl.Active || !v.act.InForceLocked() || c == nil || c.ended || v.qosPending {
		return ndis.StatusFailure
	}
	ntx, nrx := params.CallMgrParameters.Transmit, params.CallMgrParameters.Receive
	if !q2931.SameSignalling(v.tx, ntx) || !q2931.SameSignalling(v.rx, nrx) {
		return ndis.StatusNotSupported
	}
	ntx, nrx, st := q2931.Granted(ntx, nrx, false)
	if st != ndis.StatusSuccess {
		return st
	}
	if q2931.Exceeds(ntx, d.cfg.MaxRate) || q2931.Exceeds(nrx, d.cfg.MaxRate) {
		return ndis.StatusCellrateNotAvailable
	}
	q2931.Grant(params, ntx, nrx)
	fwd, bwd := ntx, nrx
	if v.incoming {
		fwd, bwd = nrx, ntx
	}
	td := new(uni.TrafficDescriptor)
	if st := q2931.TrafficDescriptor(td, fwd, bwd); st != ndis.StatusSuccess {
		return st
	}
	out, err := c.p.as.Link().ModifyQoS(c.id, td)
	if err != nil {
		return ndis.StatusFailure
	}
	// On MODIFY ACKNOWLEDGE the VC is re-activated with params'
	// flowspecs: the buffer is the MCM's until the change completes.
	v.qosPending, v.req = true, params
	d.applyLocked(c.p, out)
	return ndis.StatusPending
}

// ---- OIDs ----

// ProtocolCoOidRequest models ProtocolCoOidRequest: OID_CO_GET_ADDRESSES
// returns this node's ATM End System Address (20 octets); other OIDs are
// not supported.
func (d *MCM) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	if req.Oid != ndis.OidCoGetAddresses || req.Type != ndis.OidQuery {
		return ndis.StatusNotSupported
	}
	if len(req.InformationBuffer) < uni.AESALen {
		req.BytesNeeded = uni.AESALen
		return ndis.StatusBufferTooShort
	}
	req.BytesWritten = copy(req.InformationBuffer, d.addr[:])
	return ndis.StatusSuccess
}

// ProtocolCoOidRequestComplete models ProtocolCoOidRequestComplete; the MCM
// sends no OID requests.
func (d *MCM) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
}
