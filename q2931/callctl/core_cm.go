package callctl

import (
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// ---- address family ----

// ProtocolCmOpenAf models ProtocolCmOpenAf: a client opens the Q.2931 AF.
func (d *Core) ProtocolCmOpenAf(bindingCtx any, family ndis.AddressFamily, h *ndis.Af) (any, ndis.Status) {
	if family.AddressFamily != q2931.AF.AddressFamily {
		return nil, ndis.StatusFailure
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closing {
		return nil, ndis.StatusFailure
	}
	a := &AF{Seq: d.seq(), Handle: h, SAPs: map[*SAP]struct{}{}}
	d.AFs[a] = struct{}{}
	return a, ndis.StatusSuccess
}

// ProtocolCmCloseAf models ProtocolCmCloseAf. It pends until every VC the
// MCM created on the open is deleted (R-AF-15).
func (d *Core) ProtocolCmCloseAf(afCtx any) ndis.Status {
	a := afCtx.(*AF)
	d.mu.Lock()
	defer d.mu.Unlock()
	if a.VCs > 0 {
		a.Closing = true
		return ndis.StatusPending
	}
	a.Closed = true
	delete(d.AFs, a)
	return ndis.StatusSuccess
}

// ProtocolCmNotifyCloseAfComplete models ProtocolCmNotifyCloseAfComplete;
// the client's close of the AF follows, nothing else is needed.
func (d *Core) ProtocolCmNotifyCloseAfComplete(afCtx any, st ndis.Status) {}

// ProtocolCmRegisterSap models ProtocolCmRegisterSap. The SAP must be in
// the format ServiceSap makes (NDIS_STATUS_INVALID_DATA otherwise, also for
// a service name longer than 8 octets; NDIS_STATUS_INVALID_ADDRESS for
// another node's address); a service registered already is
// NDIS_STATUS_SAP_IN_USE.
func (d *Core) ProtocolCmRegisterSap(afCtx any, coSap *ndis.CoSap, h *ndis.Sap) (any, ndis.Status) {
	a := afCtx.(*AF)
	svc, st := q2931.ParseSap(coSap, d.cfg.Address)
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
	s := &SAP{AF: a, Handle: h, Service: svc}
	d.saps[svc] = s
	a.SAPs[s] = struct{}{}
	return s, ndis.StatusSuccess
}

// ProtocolCmDeregisterSap models ProtocolCmDeregisterSap.
func (d *Core) ProtocolCmDeregisterSap(sapCtx any) ndis.Status {
	s := sapCtx.(*SAP)
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
func (d *Core) ProtocolCoCreateVc(afCtx any, h *ndis.Vc) (any, ndis.Status) {
	v := d.owner.NewVc(Vc{Seq: uint32(d.seq()), AF: afCtx.(*AF), Handle: h})
	d.mu.Lock()
	d.moveLocked(v, Idle, ReasonCreated)
	d.VCs.Push(v)
	d.mu.Unlock()
	return v, ndis.StatusSuccess
}

// ProtocolCoDeleteVc models ProtocolCoDeleteVc.
func (d *Core) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	v := vcCtx.(*Vc)
	d.mu.Lock()
	d.VCs.Remove(v)
	delete(d.causes, v.Handle)
	d.mu.Unlock()
	return ndis.StatusSuccess
}

// ---- outgoing calls ----

// destination is the node and service a MakeCall or AddParty names:
// NDIS_STATUS_INVALID_ADDRESS if it names none, or a node this one does not
// deal with (Config.Trusts), NDIS_STATUS_NO_ROUTE_TO_DESTINATION for this
// node itself.
func (d *Core) destination(params *ndis.CallParameters) (node, service string, st ndis.Status) {
	node, service, err := q2931.Destination(params)
	switch {
	case err != nil:
		return "", "", ndis.StatusInvalidAddress
	case node == d.cfg.Name:
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
func (d *Core) ProtocolCmMakeCall(vcCtx any, params *ndis.CallParameters, ph *ndis.Party) (any, ndis.Status) {
	v := vcCtx.(*Vc)
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
	v.Data.Reset()
	d.mu.Lock()
	if d.closing {
		d.mu.Unlock()
		return nil, ndis.StatusFailure
	}
	delete(d.causes, v.Handle) // the cause of the VC's previous call
	d.moveLocked(v, Calling, ReasonMakeCall)
	v.Assoc, v.Service = d.owner.AssocLocked(node), MakeServiceName(svc)
	if d.cfg.Tracer.Call != nil {
		v.MadeAt = max(time.Since(d.started), 1)
	}
	v.Reliable, v.Multipoint, v.Req = q2931.ReliableRequested(params), ph != nil, params
	v.Call, v.MP = nil, nil
	v.QoSPending = false
	var pt *Party
	if ph != nil {
		pt = &Party{VC: v, Handle: ph, Node: node, Service: svc, Params: params, State: PartyAdding, Initial: true}
		v.MP = &RootState{Parties: []*Party{pt}}
	}
	st = d.startLegLocked(v.Assoc, v, pt)
	if st != ndis.StatusSuccess {
		d.moveLocked(v, Idle, ReasonSetupFailed)
		v.Req = nil
		v.DropCall()
		d.mu.Unlock()
		return nil, st
	}
	d.mu.Unlock()
	d.Run()
	if pt != nil {
		return pt, ndis.StatusPending
	}
	return nil, ndis.StatusPending
}

// startLegLocked sends the SETUP of a new leg of v (its call, or a
// multipoint party on a node the call has no leg to yet), or queues it
// until the link to p is up.
func (d *Core) startLegLocked(p *Assoc, v *Vc, pt *Party) ndis.Status {
	if d.owner.DatagramLimit(p) != nil && p.Up() {
		return d.setupLocked(p, v, pt)
	}
	p.Wait(Waiting{VC: v, Party: pt})
	d.owner.DialLocked(p)
	return ndis.StatusSuccess
}

// setupLocked sends the SETUP of a leg to p, the peer of the called node
// (v's, or pt's for a leaf of a multipoint call).
func (d *Core) setupLocked(p *Assoc, v *Vc, pt *Party) ndis.Status {
	svc := v.Service.Bytes()
	if pt != nil {
		svc = []byte(pt.Service)
	}
	var tx, rx ndis.Flowspec
	if pt == nil || pt.Initial {
		cm := v.Req
		if st := NegotiateSDU(cm, d.owner.DatagramLimit(p), v.Reliable, v.Multipoint); st != ndis.StatusSuccess {
			return st
		}
		tx, rx = cm.CallMgrParameters.Transmit, cm.CallMgrParameters.Receive
	} else {
		// A later party of a multipoint call: the call's parameters.
		if !v.Act.InForceLocked() {
			return ndis.StatusFailure // the call is gone
		}
		if !v.Reliable && int(v.Tx().MaxSduSize) > d.owner.DatagramLimit(p).MaxDatagramPayload() {
			return ndis.StatusAalParamsUnsupported // cause 78: this leaf's path carries less
		}
		tx, rx = v.Tx(), v.Rx()
	}
	if v.Multipoint {
		rx = ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
	}
	// One SetupMessage serves every SETUP: the uni.Link keeps nothing of
	// it, and ApplyLocked encodes the Output's SETUP before d.mu is let go.
	sm := &d.setupMsg
	if st := sm.Init(&d.cfg.Address, d.owner.PeerAddress(p), svc); st != ndis.StatusSuccess {
		return st
	}
	if st := sm.Traffic(tx, rx, v.Multipoint, v.Reliable); st != ndis.StatusSuccess {
		return st
	}
	m := &sm.Message
	id, out, err := p.Link().Setup(m)
	if err != nil {
		d.log.Warn("SETUP refused by the signalling", "peer", p.Peer(), "err", err)
		if errors.Is(err, uni.ErrNoCallRef) {
			return ndis.StatusResources
		}
		return ndis.StatusFailure
	}
	c := &Call{Assoc: p, ID: id, Out: v, P2MP: v.Multipoint}
	p.AddCall(c.ID, c) // the uni.Link holds the call it just set up
	v.AddLeg(c)
	if pt != nil {
		pt.Call, pt.EP = c, m.EndpointRef.Value
		c.MP = &CallMP{EPs: map[uint16]*Party{pt.EP: pt}}
	}
	d.ApplyLocked(p, out)
	return ndis.StatusSuccess
}

// legFailedLocked ends a leg that never came up: the MakeCall fails (for
// the call's first leg) or the AddParty does.
func (d *Core) LegFailedLocked(v *Vc, pt *Party, st ndis.Status) {
	st = failure(st)
	if pt == nil || pt.Initial {
		if v.State() != Calling {
			return
		}
		params := v.Req
		d.traceCallLocked(v, trace.CallFailed, 0, st, true)
		d.moveLocked(v, Idle, ReasonCallFailed)
		v.Req = nil
		v.DropCall()
		var ph *ndis.Party
		if pt != nil {
			ph = pt.Handle
			pt.State = PartyGone
		}
		d.EnqueueLocked(func() { d.CM.MakeCallComplete(st, v.Handle, ph, nil, params) })
		return
	}
	d.partyGoneLocked(pt)
	d.EnqueueLocked(func() { d.CM.AddPartyComplete(st, pt.Handle, nil, pt.Params) })
}

// partyGoneLocked forgets a party.
func (d *Core) partyGoneLocked(pt *Party) {
	pt.State = PartyGone
	if r := pt.VC.MP; r != nil {
		if i := slices.Index(r.Parties, pt); i >= 0 {
			r.Parties = slices.Delete(r.Parties, i, i+1)
		}
	}
	if c := pt.Call; c != nil && c.Party(pt.EP) == pt {
		delete(c.MP.EPs, pt.EP)
	}
}

// activation is storage for the parameters a VC is activated with
// (NdisMCmActivateVc): MULTIPOINT_VC for either end of a multipoint
// call; the flowspecs in force; in MediaSpecific
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
func (a *activation) fill(v *Vc, tx, rx ndis.Flowspec, conn uint32) *ndis.CallParameters {
	a.p = ndis.CallParameters{}
	if v.Multipoint || (v.Incoming && v.Call != nil && v.Call.P2MP) {
		a.p.Flags = ndis.MultipointVC // a root's, or a leaf's: a miniport lets leaves of one call share its connection
	}
	a.party = append(a.party[:0], v.Assoc.Peer()...)
	typ := q2931.ParamCallingParty
	if !v.Incoming {
		typ = q2931.ParamCalledParty
		a.party = append(append(a.party, '/'), v.Service.Bytes()...)
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
func (v *Vc) mediaFlags() byte {
	if v.Reliable {
		return q2931.MediaReliable
	}
	return 0
}

// activate activates v with tx and rx on connection conn
// (NdisMCmActivateVc, through v.act: after the activations in flight)
// and tells done the outcome with step, when the CM has completed it;
// d.mu is not held.
func (d *Core) activate(v *Vc, tx, rx ndis.Flowspec, conn uint32, done Done, step uint8) {
	a := activations.Get().(*activation)
	if v.Act.Activate(d.mu, d.CM, v.Handle, a.fill(v, tx, rx, conn), done, step) {
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
// completed with st (Done): at once inside the request when the CM
// completes at once, else from the completion.
func (v *Vc) ActivationDone(step uint8, st ndis.Status) {
	d := v.Assoc.core
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
var ignoreOutcome = DoneFunc(func(ndis.Status) {})

// activationCompleted is the completion of v's pended activation or
// deactivation (ProtocolCmActivateVcComplete and
// ProtocolCmDeactivateVcComplete of a CM whose miniport pends them): the
// flow waiting for it goes on, then the work it queued runs. It reports
// false if nothing of v's was pended.
func (d *Core) ActivationCompleted(v *Vc, st ndis.Status) bool {
	ok := v.Act.Completed(d.mu, d.CM, v.Handle, st)
	d.Run()
	return ok
}

// ---- closing ----

// ProtocolCmCloseCall models ProtocolCmCloseCall: RELEASE (cause 16), or
// RELEASE COMPLETE if the peer released first, or DROP PARTY for one leaf
// of a multipoint call that has others on the same node. PENDING;
// CloseCallComplete(SUCCESS) follows once the network part is over and the
// VC's data is drained and it is deactivated.
func (d *Core) ProtocolCmCloseCall(vcCtx, partyCtx any, data []byte) ndis.Status {
	v := vcCtx.(*Vc)
	d.mu.Lock()
	if v.State() == Released {
		d.moveLocked(v, ClosingReleased, ReasonClientClose)
	} else {
		d.moveLocked(v, Closing, ReasonClientClose)
	}
	if pt, ok := partyCtx.(*Party); ok && v.MP != nil {
		v.MP.CloseParty = pt
	}
	if v.Incoming {
		d.closeIncomingLocked(v)
	} else {
		for _, pt := range v.Parties() {
			if pt.State == PartyActive || pt.State == PartyDropIndicated {
				pt.State = PartyClosing
			}
		}
		first, further := v.Call, slices.Clone(v.FurtherLegs())
		if first != nil {
			d.releaseLegLocked(first, uni.NewCause(uni.CauseNormalCallClearing))
		}
		for _, c := range further {
			d.releaseLegLocked(c, uni.NewCause(uni.CauseNormalCallClearing))
		}
	}
	d.maybeFinishCloseLocked(v)
	d.mu.Unlock()
	d.Run()
	return ndis.StatusPending
}

// releaseLegLocked clears a uni call unless it is gone or being cleared.
func (d *Core) releaseLegLocked(c *Call, cause uni.CauseIE) {
	if c.Ended {
		return
	}
	st, ok := c.Assoc.Link().CallState(c.ID)
	if !ok || st == uni.StateReleaseRequest {
		return // gone (its IndReleased is queued) or RELEASE already sent
	}
	if out, err := c.Assoc.Link().Release(c.ID, cause); err == nil {
		d.ApplyLocked(c.Assoc, out)
		d.noteReleasingLocked(c)
	}
}

// noteReleasingLocked remembers that this side's RELEASE is out for c.
func (d *Core) noteReleasingLocked(c *Call) {
	if st, ok := c.Assoc.Link().CallState(c.ID); ok && st == uni.StateReleaseRequest {
		c.Releasing = true
	}
}

// closeIncomingLocked ends the network part of an incoming VC's call.
func (d *Core) closeIncomingLocked(v *Vc) {
	c := v.Call
	if c.Ended || v.PartyEnded {
		return
	}
	p := c.Assoc
	st, ok := p.Link().CallState(c.ID)
	if !ok || st == uni.StateReleaseRequest {
		return
	}
	normal := uni.NewCause(uni.CauseNormalCallClearing)
	others := 0
	c.EachIn(func(x *Vc) {
		if x != v && !x.State().IsClosing() && !x.PartyEnded && x.State() != Idle {
			others++
		}
	})
	switch {
	case st == uni.StateReleaseIndication:
		// The peer released; the last VC of the call answers.
		if others > 0 {
			v.PartyEnded = true
			c.DropRx(v)
			return
		}
	case c.P2MP && st == uni.StateActive:
		ps, ok := p.Link().PartyState(c.ID, v.EP)
		if !ok {
			v.PartyEnded = true
			c.DropRx(v)
			return
		}
		if ps == uni.PartyDropPartyInitiated {
			return
		}
		if ps == uni.PartyDropPartyReceived || ps == uni.PartyActive {
			if out, err := p.Link().DropParty(c.ID, v.EP, normal); err == nil {
				d.ApplyLocked(p, out)
				d.noteReleasingLocked(c)
				return
			}
		}
	}
	d.releaseLegLocked(c, normal)
}

// maybeFinishCloseLocked queues the end of a close once its network part
// is over.
func (d *Core) maybeFinishCloseLocked(v *Vc) {
	s := v.State()
	if s != Closing && s != ClosingReleased {
		return // not closing, or its end is queued already
	}
	if v.Incoming {
		if !v.Call.Ended && !v.PartyEnded {
			return
		}
	} else if v.Call != nil {
		return // a leg is still up (the first is the last to go)
	}
	// A call its client closed while it was up ends here; one the network
	// ended was traced when the client was told (networkEndLocked).
	if s == Closing {
		d.traceCallLocked(v, trace.CallReleased, uni.CauseNormalCallClearing, ndis.StatusSuccess, false)
	}
	d.moveLocked(v, Finishing, ReasonNetworkDone)
	d.enqueueVcLocked(opFinishClose, v, 0, nil)
}

// finishClose drains the VC's data, deactivates it and completes the
// close (closeDeactivated).
func (d *Core) finishClose(v *Vc) {
	v.Data.Stop(func() {
		v.Data.CloseStreams()
		v.Act.Deactivate(d.mu, d.CM, v.Handle, v, stepClose)
	})
}

// closeDeactivated completes the close of v, deactivated (or never
// activated): CloseCallComplete, and an incoming VC is deleted.
func (d *Core) closeDeactivated(v *Vc) {
	d.mu.Lock()
	var ph *ndis.Party
	if v.MP != nil && v.MP.CloseParty != nil {
		ph = v.MP.CloseParty.Handle
	}
	for _, pt := range v.Parties() {
		pt.State = PartyGone
	}
	d.moveLocked(v, Idle, ReasonCloseComplete)
	if !v.Incoming {
		v.DropCall() // an incoming VC keeps its call until it is deleted
	}
	v.QoSPending, v.Req = false, nil
	incoming := v.Incoming
	d.mu.Unlock()
	d.CM.CloseCallComplete(ndis.StatusSuccess, v.Handle, ph)
	if incoming {
		d.deleteLater(v)
	}
}

// dispose deactivates and deletes an incoming VC whose call did not come
// up (the client refused it, or it could not be offered).
func (d *Core) dispose(v *Vc) {
	v.Data.Stop(func() {
		d.mu.Lock()
		d.moveLocked(v, Idle, ReasonDisposed)
		d.mu.Unlock()
		v.Data.CloseStreams()
		v.Act.Deactivate(d.mu, d.CM, v.Handle, v, stepDispose)
	})
}

// deleteLater deletes an incoming VC (NdisMCmDeleteVc) once the client's
// answer to its offer has arrived; d.mu is not held.
func (d *Core) deleteLater(v *Vc) {
	d.mu.Lock()
	d.deleteLaterLocked(v)
	d.mu.Unlock()
	d.Run()
}

// deleteLaterLocked queues the deletion of an incoming VC, or leaves it to
// answered() while the client's answer to the offer is outstanding. The
// close (or refusal) before it has completed: the mediator takes the
// deletion at once, or, when the close is still settling in the client's
// NdisClCloseCall, carries it out when that returns.
func (d *Core) deleteLaterLocked(v *Vc) {
	if v.DeleteQueued || v.Handle == nil {
		return
	}
	if o := v.Offer; o != nil && o.Pending {
		o.DeleteWanted = true // answered() calls back
		return
	}
	v.DeleteQueued = true
	d.enqueueVcLocked(opDeleteVc, v, 0, nil)
}

// deleteAfter deletes v after pause, on a goroutine of its own: for the
// rare retry of a refused deletion.
func (d *Core) deleteAfter(v *Vc, pause time.Duration) {
	d.owner.Go(func() {
		time.Sleep(pause)
		d.Later(func() { d.deleteVc(v, pause) })
	})
}

// deleteVc deletes an incoming VC (NdisMCmDeleteVc); if the mediator
// refuses (it should not), it tries again later, up to about a second
// apart, so the AF can still close.
func (d *Core) deleteVc(v *Vc, pause time.Duration) {
	if st := d.CM.DeleteVc(v.Handle); st != ndis.StatusSuccess {
		d.log.Error("NdisMCmDeleteVc refused; trying again", "vc", v.Handle.String(), "status", st.String())
		d.deleteAfter(v, min(2*pause, time.Second))
		return
	}
	d.mu.Lock()
	d.VCs.Remove(v)
	delete(d.causes, v.Handle)
	if c := v.Call; c != nil && v.Incoming {
		c.RemoveIn(v)
		c.DropRx(v)
	}
	a := v.AF
	a.VCs--
	done := a.Closing && a.VCs == 0 && !a.Closed
	if done {
		a.Closed = true
		delete(d.AFs, a)
	}
	d.mu.Unlock()
	if done {
		d.CM.CloseAddressFamilyComplete(ndis.StatusSuccess, a.Handle)
	}
}

// ---- parties ----

// ProtocolCmAddParty models ProtocolCmAddParty: ADD PARTY on the call's leg
// to the party's node, or a new leg (a SETUP) if the call has none there.
// PENDING; AddPartyComplete follows.
func (d *Core) ProtocolCmAddParty(vcCtx any, params *ndis.CallParameters, ph *ndis.Party) (any, ndis.Status) {
	v := vcCtx.(*Vc)
	node, svc, st := d.destination(params)
	if st != ndis.StatusSuccess {
		return nil, st
	}
	d.mu.Lock()
	if d.closing || !v.Multipoint || v.State() != Active {
		d.mu.Unlock()
		return nil, ndis.StatusFailure
	}
	pt := &Party{VC: v, Handle: ph, Node: node, Service: svc, Params: params, State: PartyAdding}
	v.MP.Parties = append(v.MP.Parties, pt)
	p := d.owner.AssocLocked(node)
	st = ndis.StatusSuccess
	if c := v.LegOn(p); c != nil && !c.Ended {
		if c.Connected {
			st = d.addOnLegLocked(c, pt)
		} else {
			pt.Call = c
			c.MP.WaitAdds = append(c.MP.WaitAdds, pt)
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
	d.Run()
	return pt, ndis.StatusPending
}

// addOnLegLocked sends ADD PARTY on an active leg.
func (d *Core) addOnLegLocked(c *Call, pt *Party) ndis.Status {
	v := pt.VC
	m := &uni.Message{Called: uni.CalledAESA(*d.owner.PeerAddress(c.Assoc)), Calling: uni.CallingAESA(d.cfg.Address)} // c.p is pt.node's peer
	var err error
	if m.BHLI, err = uni.ServiceBHLI(pt.Service); err != nil {
		return ndis.StatusInvalidAddress
	}
	if v.Act.InForceLocked() {
		m.AAL = q2931.AALParams(v.Tx(), ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}, v.Reliable)
	}
	ep, out, err := c.Assoc.Link().AddParty(c.ID, m)
	if err != nil {
		if errors.Is(err, uni.ErrNoEndpointRef) {
			return ndis.StatusResources
		}
		return ndis.StatusFailure
	}
	pt.Call, pt.EP = c, ep
	c.MP.EPs[ep] = pt
	d.ApplyLocked(c.Assoc, out)
	return ndis.StatusSuccess
}

// ProtocolCmDropParty models ProtocolCmDropParty: DROP PARTY (RELEASE for
// the last party on its leg), or DROP PARTY ACKNOWLEDGE for a party the
// leaf dropped. PENDING; DropPartyComplete follows.
func (d *Core) ProtocolCmDropParty(partyCtx any, data []byte) ndis.Status {
	pt := partyCtx.(*Party)
	d.mu.Lock()
	c := pt.Call
	pt.State = PartyDropping
	var ps uni.PartyState
	ok := c != nil && !c.Ended
	if ok {
		ps, ok = c.Assoc.Link().PartyState(c.ID, pt.EP)
	}
	switch {
	case !ok:
		d.partyGoneLocked(pt)
		d.EnqueueLocked(func() { d.CM.DropPartyComplete(ndis.StatusSuccess, pt.Handle) })
	case ps == uni.PartyDropPartyInitiated:
		// DROP PARTY already out (T399 expiry): its end completes the drop.
	default:
		out, err := c.Assoc.Link().DropParty(c.ID, pt.EP, uni.NewCause(uni.CauseNormalCallClearing))
		if err != nil {
			d.releaseLegLocked(c, uni.NewCause(uni.CauseNormalCallClearing))
		} else {
			d.ApplyLocked(c.Assoc, out)
			d.noteReleasingLocked(c) // the last party goes with RELEASE
		}
	}
	d.mu.Unlock()
	d.Run()
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
func (d *Core) ProtocolCmModifyCallQoS(vcCtx any, params *ndis.CallParameters) ndis.Status {
	v := vcCtx.(*Vc)
	if params == nil || params.CallMgrParameters == nil {
		return ndis.StatusInvalidData
	}
	d.mu.Lock()
	defer func() {
		d.mu.Unlock()
		d.Run()
	}()
	c := v.Call
	if v.Multipoint || (c != nil && c.P2MP) || v.State() == Offered {
		return ndis.StatusNotSupported
	}
	if v.State() != Active || !v.Act.InForceLocked() || c == nil || c.Ended || v.QoSPending {
		return ndis.StatusFailure
	}
	ntx, nrx := params.CallMgrParameters.Transmit, params.CallMgrParameters.Receive
	if !q2931.SameSignalling(v.Tx(), ntx) || !q2931.SameSignalling(v.Rx(), nrx) {
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
	if v.Incoming {
		fwd, bwd = nrx, ntx
	}
	td := new(uni.TrafficDescriptor)
	if st := q2931.TrafficDescriptor(td, fwd, bwd); st != ndis.StatusSuccess {
		return st
	}
	out, err := c.Assoc.Link().ModifyQoS(c.ID, td)
	if err != nil {
		return ndis.StatusFailure
	}
	// On MODIFY ACKNOWLEDGE the VC is re-activated with params'
	// flowspecs: the buffer is the MCM's until the change completes.
	v.QoSPending, v.Req = true, params
	d.ApplyLocked(c.Assoc, out)
	return ndis.StatusPending
}

// ---- OIDs ----

// ProtocolCoOidRequest models ProtocolCoOidRequest: OID_CO_GET_ADDRESSES
// returns this node's ATM End System Address (20 octets); other OIDs are
// not supported.
func (d *Core) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	if req.Oid != ndis.OidCoGetAddresses || req.Type != ndis.OidQuery {
		return ndis.StatusNotSupported
	}
	if len(req.InformationBuffer) < uni.AESALen {
		req.BytesNeeded = uni.AESALen
		return ndis.StatusBufferTooShort
	}
	req.BytesWritten = copy(req.InformationBuffer, d.cfg.Address[:])
	return ndis.StatusSuccess
}
