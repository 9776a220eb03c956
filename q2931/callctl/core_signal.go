package callctl

import (
	"slices"
	"strconv"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// indication carries out what a uni.Link indicated, as mediator work (run
// in order, without d.mu); rx is what ApplyLocked took from the message
// behind it (ind.Msg is nil: see workItem).
func (d *Core) indication(p *Assoc, ind uni.Indication, rx *received) {
	switch ind.Kind {
	case uni.IndSetup:
		d.incomingSetup(p, ind, &rx.offer)
	case uni.IndAddParty:
		d.incomingParty(p, ind, &rx.offer)
	case uni.IndConnected:
		d.connected(p, ind, rx)
	case uni.IndRelease:
		d.peerReleased(p, ind)
	case uni.IndReleased:
		d.released(p, ind, rx.fromPeer)
	case uni.IndPartyAdded:
		d.partyAdded(p, ind)
	case uni.IndPartyRejected, uni.IndPartyDropped:
		d.partyEnded(p, ind)
	case uni.IndDropParty:
		d.peerDroppedParty(p, ind)
	case uni.IndModify:
		d.modifyRequested(p, ind)
	case uni.IndModified, uni.IndModifyRejected:
		d.modifyAnswered(p, ind)
	case uni.IndRestart:
		// The calls it cleared were indicated before it, and their
		// clearing is queued or done: acknowledge.
		d.log.Debug("peer restarted VCs", "peer", p.Peer(), "class", restartClass(rx.connID())) // every first link opens with one
		d.mu.Lock()
		if out, err := p.Link().RestartDone(rx.connID()); err == nil {
			d.ApplyLocked(p, out)
		}
		d.mu.Unlock()
	case uni.IndRestartComplete:
		d.log.Debug("restart", "peer", p.Peer(), "event", ind.String())
	case uni.IndRestartFailed, uni.IndRestartTimeout:
		d.log.Warn("restart", "peer", p.Peer(), "event", ind.String())
	}
}

// callOf is the call record an indication is about (its uni context),
// nil if the call control has none.
func callOf(ind uni.Indication) *Call {
	c, _ := ind.Context.(*Call)
	return c
}

// restartClass names what a RESTART of the VC ci (nil: all VCs)
// restarts, for logs.
func restartClass(ci *uni.ConnectionID) string {
	if ci == nil {
		return "all VCs"
	}
	return "VC " + strconv.FormatUint(uint64(ci.VPCI)<<16|uint64(ci.VCI), 10)
}

// restartVCLocked restarts the VC of connection identifier conn (RESTART,
// class "indicated VC") whose call c was released without an answer;
// restarts of different VCs run side by side.
func (d *Core) restartVCLocked(p *Assoc, c *Call) {
	if !p.Link().IsUp() {
		return
	}
	if out, err := p.Link().RestartReleased(*q2931.ConnectionIE(c.Conn), c.ID); err == nil {
		d.ApplyLocked(p, out)
	}
}

// ---- incoming calls ----

func (d *Core) incomingSetup(p *Assoc, ind uni.Indication, a *offerAsk) {
	d.mu.Lock()
	c := &Call{Assoc: p, ID: ind.Call}
	if st, ok := p.AddCall(c.ID, c); !ok || st != uni.StateCallPresent {
		if ok {
			p.RemoveCall(c)
		}
		d.mu.Unlock()
		return // gone already; its IndReleased follows
	}
	c.Reliable = a.reliable
	if a.p2mp {
		c.P2MP = true
		if a.hasEP {
			c.FirstEP = a.ep
		}
		// Parties added later are offered what the SETUP asked for.
		c.MP = &CallMP{Fwd: a.fwd, Bwd: a.bwd}
	}
	d.mu.Unlock()
	d.offer(p, c, c.FirstEP, a, a.fwd, a.bwd, false)
}

func (d *Core) incomingParty(p *Assoc, ind uni.Indication, a *offerAsk) {
	d.mu.Lock()
	c := callOf(ind)
	d.mu.Unlock()
	if c == nil || c.Out != nil || c.MP == nil {
		return
	}
	d.offer(p, c, ind.Endpoint, a, c.MP.Fwd, c.MP.Bwd, true)
}

// offer answers a SETUP (or ADD PARTY) asking for fwd and bwd as far as
// the MCM can and offers the call to the client that registered the called
// service: a VC is created (NdisMCmCreateVc) and activated
// (NdisMCmActivateVc), then the call is dispatched
// (NdisMCmDispatchIncomingCall). Refusals: cause 41 while
// shutting down, 88 for another node's address or no matching SAP, 21 when
// Config.Authorize says no, 73 for a SETUP whose traffic descriptor is not
// one of UNI 3.1's combinations of traffic parameters, 37 over
// Config.MaxRate, 78 for an ADD PARTY whose backward MaxSduSize this
// node cannot send (a SETUP's sizes are lowered in CONNECT), 47 when the
// VC cannot be created or activated.
func (d *Core) offer(p *Assoc, c *Call, ep uint16, a *offerAsk, fwd, bwd ndis.Flowspec, added bool) {
	svc, ok := a.svc, a.svcOK
	reject := func(cause uni.CauseIE) { d.refuseOffer(p, c, ep, added, svc, cause) }
	d.mu.Lock()
	closing := d.closing
	d.mu.Unlock()
	switch {
	case closing:
		reject(uni.NewCause(uni.CauseTemporaryFailure))
		return
	case !a.addressed:
		reject(uni.NewCause(uni.CauseIncompatibleDestination, byte(uni.IECalledParty)))
		return
	case !ok:
		reject(uni.NewCause(uni.CauseIncompatibleDestination, byte(uni.IEBHLI)))
		return
	}
	if d.cfg.Authorize != nil && !d.cfg.Authorize(p.Peer(), svc) {
		d.log.Debug("call refused by the ACL", "peer", p.Peer(), "service", svc)
		reject(uni.NewCause(uni.CauseCallRejected))
		return
	}
	d.mu.Lock()
	s := d.saps[svc]
	reliable := c.Reliable
	limit := uint32(q2931.MaxAAL5SDU)
	if l := d.owner.DatagramLimit(p); !reliable && l != nil {
		limit = min(limit, uint32(l.MaxDatagramPayload()))
	}
	tooBig := func(f ndis.Flowspec) bool {
		return f.ServiceType != ndis.ServiceNoTraffic && q2931.SDUSpecified(f.MaxSduSize) && f.MaxSduSize > limit
	}
	var cause uni.CauseIE
	switch {
	case !added && !a.trafficOK:
		cause = uni.NewCause(uni.CauseUnsupportedTraffic)
	case s == nil:
		cause = uni.NewCause(uni.CauseIncompatibleDestination, byte(uni.IEBHLI))
	case q2931.Exceeds(fwd, d.cfg.MaxRate) || q2931.Exceeds(bwd, d.cfg.MaxRate):
		cause = uni.NewCause(uni.CauseCellRateUnavailable)
	case added && tooBig(bwd):
		// ADD PARTY ACKNOWLEDGE cannot lower the SDU sizes; a SETUP's
		// CONNECT can (below). Only what this node sends is bounded by its
		// datagrams: the forward SDUs come from the root, whose own limit
		// on the way here was checked when the leg was set up (QUIC
		// discovers each direction's path MTU on its own).
		cause = uni.NewCause(uni.CauseAALUnsupported)
	}
	if cause.Value != 0 {
		d.mu.Unlock()
		reject(cause)
		return
	}
	lower := []*ndis.Flowspec{&fwd, &bwd}
	if added {
		lower = lower[1:] // the root's SDUs: see above
	}
	for _, f := range lower {
		// Unspecified sizes take this path's limit; larger ones are lowered
		// to it, and CONNECT's AAL parameters tell the caller (Q.2931 AAL
		// negotiation). The caller's datagram limit may exceed ours: QUIC
		// discovers each direction's path MTU on its own.
		if f.ServiceType != ndis.ServiceNoTraffic && (!q2931.SDUSpecified(f.MaxSduSize) || f.MaxSduSize > limit) {
			f.MaxSduSize = limit
		}
	}
	if !c.HasConn {
		c.Conn, c.HasConn = p.AllocConn(), true
		p.BindConn(c.Conn, c)
	}
	v := d.owner.NewVc(Vc{Seq: uint32(d.seq()), AF: s.AF, Incoming: true, Assoc: p, Service: MakeServiceName(s.Service),
		Reliable: reliable, Call: c, EP: ep})
	d.moveLocked(v, Offered, ReasonOffer)
	o := BuildOffer(bwd, fwd, c.Conn, v.Assoc.Peer(), v.mediaFlags())
	v.Offer = o
	c.AddIn(v)
	s.AF.VCs++
	d.VCs.Push(v)
	o.SAP = s
	d.mu.Unlock()

	h, st := d.CM.CreateVc(s.AF.Handle, v)
	if st != ndis.StatusSuccess {
		d.offerFailed(v, st)
		return
	}
	d.mu.Lock()
	v.Handle = h
	d.mu.Unlock()
	d.activate(v, bwd, fwd, c.Conn, v, stepOffer)
}

// refuseOffer refuses an incoming call (RELEASE COMPLETE) or an added
// party (ADD PARTY REJECT) with cause; d.mu is not held.
func (d *Core) refuseOffer(p *Assoc, c *Call, ep uint16, added bool, svc string, cause uni.CauseIE) {
	d.mu.Lock()
	var out uni.Output
	var err error
	if added {
		out, err = p.Link().RejectParty(c.ID, ep, cause)
	} else {
		out, err = p.Link().Reject(c.ID, cause)
	}
	if err == nil {
		d.ApplyLocked(p, out)
	}
	d.owner.RefusedLocked(p)
	d.traceRefused(p, c.ID, svc, cause.Value)
	d.mu.Unlock()
}

// offerFailed refuses an incoming call whose VC could not be created or
// activated (cause 47) and lets the VC go: deleted if it was created.
func (d *Core) offerFailed(v *Vc, st ndis.Status) {
	p, c, svc := v.Assoc, v.Call, v.Service.String()
	d.log.Warn("cannot offer an incoming call", "peer", p.Peer(), "service", svc, "status", st.String())
	d.mu.Lock()
	d.moveLocked(v, Idle, ReasonOfferFailed)
	v.DropOfferLocked() // never given to the client
	h, added, a := v.Handle, v.EP != c.FirstEP, v.AF
	d.mu.Unlock()
	d.refuseOffer(p, c, v.EP, added, svc, uni.NewCause(uni.CauseResourceUnavailable))
	if h != nil {
		d.deleteLater(v)
		return
	}
	d.mu.Lock()
	c.RemoveIn(v)
	d.VCs.Remove(v)
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

// offerActivated offers an incoming call whose VC is activated
// (NdisMCmDispatchIncomingCall); if the network ended the call meanwhile
// the VC is let go instead.
func (d *Core) offerActivated(v *Vc, st ndis.Status) {
	if st != ndis.StatusSuccess {
		d.offerFailed(v, st)
		return
	}
	d.mu.Lock()
	o, c, p := v.Offer, v.Call, v.Assoc
	if o == nil || o.Lost || v.State() != Offered {
		// Released before the client saw it (the peer's RELEASE came
		// while the activation was pended): nobody is told.
		d.moveLocked(v, Idle, ReasonOfferFailed)
		v.DropOfferLocked()
		d.mu.Unlock()
		d.dispose(v)
		return
	}
	s, added := o.SAP, v.EP != c.FirstEP
	bwd, fwd := o.Tx, o.Rx
	d.setFlowsLocked(v, bwd, fwd)
	withdrawn := d.saps[s.Service] != s // deregistered meanwhile: its handle is dead (R-SAP-5)
	o.Given, o.Pending = true, !withdrawn
	d.mu.Unlock()
	v.Data.Open(bwd, int(bwd.MaxSduSize), v.Reliable, c, false, false)
	if withdrawn {
		d.answered(v, ndis.StatusInvalidSap, nil) // cause 88
		return
	}
	c.AddRx(v)
	if d.debugging() {
		d.log.Debug("offering a call", "peer", p.Peer(), "call", c.ID.String(), "service", s.Service, "conn", c.Conn)
	}
	d.traceCall(v, trace.CallOffered, 0, 0, false)
	st = d.CM.DispatchIncomingCall(s.Handle, v.Handle, &o.Params)
	if st != ndis.StatusPending {
		d.answered(v, st, &o.Params)
		return
	}
	// The client answers later: CALL PROCEEDING (with the connection
	// identifier) so the caller waits T310 instead of T303.
	d.mu.Lock()
	if cs, ok := p.Link().CallState(c.ID); ok && !added && !v.Answered() && cs == uni.StateCallPresent {
		if out, err := p.Link().Proceed(c.ID, q2931.ConnectionIE(c.Conn)); err == nil {
			d.ApplyLocked(p, out)
		}
	}
	d.mu.Unlock()
}

// ProtocolCmIncomingCallComplete models ProtocolCmIncomingCallComplete: the
// client's pended answer to an offered call.
func (d *Core) ProtocolCmIncomingCallComplete(st ndis.Status, vcCtx any, params *ndis.CallParameters) {
	d.answered(vcCtx.(*Vc), st, params)
	d.Run()
}

// answered carries out the client's answer to an offered call: CONNECT
// (ADD PARTY ACKNOWLEDGE), or RELEASE COMPLETE (ADD PARTY REJECT) with the
// cause of the client's status (q2931.CauseForStatus: 21 for
// NDIS_STATUS_FAILURE). Parameters the client changed are supported if
// only MaxSduSize went down (the CONNECT's AAL parameters say so);
// anything else is refused with cause 49 (QoS unavailable) and the
// accepted call is closed at once with NDIS_STATUS_INCOMPATABLE_QOS.
func (d *Core) answered(v *Vc, st ndis.Status, params *ndis.CallParameters) {
	d.mu.Lock()
	o := v.Offer
	if o == nil {
		d.mu.Unlock()
		return
	}
	// The client's buffer is the MCM's again: it is recycled once the
	// answer is carried out (params may be it).
	v.Offer = nil
	defer o.Free()
	if o.DeleteWanted {
		d.deleteLaterLocked(v)
	}
	c, p := v.Call, v.Call.Assoc
	added := v.EP != c.FirstEP
	refuse := func(cause uni.CauseIE) {
		if c.Ended {
			return
		}
		var out uni.Output
		var err error
		if added {
			out, err = p.Link().RejectParty(c.ID, v.EP, cause)
		} else {
			out, err = p.Link().Reject(c.ID, cause)
		}
		if err == nil {
			d.ApplyLocked(p, out)
		}
	}
	if st == ndis.StatusSuccess && d.closing {
		st = ndis.StatusFailure
	}
	if st != ndis.StatusSuccess {
		refuse(uni.NewCause(q2931.CauseForStatus(st)))
		d.traceCallLocked(v, trace.CallRefused, q2931.CauseForStatus(st), st, false)
		disposeIt := v.State() == Offered
		if disposeIt {
			d.moveLocked(v, Idle, ReasonRefused)
		}
		d.mu.Unlock()
		if disposeIt {
			d.dispose(v)
		}
		return
	}
	if v.State() != Offered {
		d.mu.Unlock()
		return // the network ended the call meanwhile; its close is indicated
	}
	tx, rx := o.Tx, o.Rx
	if params != nil && params.Flags&ndis.CallParametersChanged != 0 && params.CallMgrParameters != nil {
		ntx, nrx := params.CallMgrParameters.Transmit, params.CallMgrParameters.Receive
		if !Narrowing(tx, ntx) || !Narrowing(rx, nrx) {
			d.moveLocked(v, Released, ReasonRefused)
			refuse(uni.NewCause(uni.CauseQoSUnavailable))
			d.traceCallLocked(v, trace.CallRefused, uni.CauseQoSUnavailable, ndis.StatusIncompatibleQoS, false)
			d.mu.Unlock()
			v.Data.Halt(ndis.StatusClosing)
			d.CM.DispatchIncomingCloseCall(ndis.StatusIncompatibleQoS, v.Handle, nil)
			return
		}
		tx.MaxSduSize, rx.MaxSduSize = ntx.MaxSduSize, nrx.MaxSduSize
	}
	var out uni.Output
	var err error
	if added {
		out, err = p.Link().AcceptParty(c.ID, v.EP)
	} else {
		out, err = p.Link().Accept(c.ID, d.connectMsg.Message(c.Conn, rx, tx, v.Reliable))
	}
	if err != nil {
		d.moveLocked(v, Accepted, ReasonAccepted) // the call is gone: its IndReleased closes it
		d.mu.Unlock()
		return
	}
	d.ApplyLocked(p, out)
	if added {
		d.moveLocked(v, Active, ReasonAccepted)
	} else {
		d.moveLocked(v, Accepted, ReasonAccepted)
	}
	reactivate := tx.MaxSduSize != o.Tx.MaxSduSize || rx.MaxSduSize != o.Rx.MaxSduSize
	if reactivate {
		d.setFlowsLocked(v, tx, rx)
	}
	d.mu.Unlock()
	if reactivate {
		// The data path takes the lower size now: a CONNECT
		// ACKNOWLEDGE may allow sends before a pended re-activation
		// completes.
		v.Data.Open(tx, int(tx.MaxSduSize), v.Reliable, c, false, false)
		d.activate(v, tx, rx, c.Conn, v, stepNarrowed)
		return
	}
	d.narrowedActivated(v)
}

// narrowedActivated lets data flow on an incoming VC whose call the client
// accepted (re-activated with the lower SDU sizes it asked for, if it
// did); an added party is up at once.
func (d *Core) narrowedActivated(v *Vc) {
	v.Data.AllowReceive()
	d.mu.Lock()
	added := v.Call != nil && v.EP != v.Call.FirstEP
	d.mu.Unlock()
	if added {
		d.Later(func() { d.callConnected(v) })
	}
}

// callConnected tells the client an accepted call is up.
func (d *Core) callConnected(v *Vc) {
	d.mu.Lock()
	ok := v.State() == Accepted || v.State() == Active
	if ok {
		d.moveLocked(v, Active, ReasonConnectAck)
	}
	d.mu.Unlock()
	if ok {
		v.Data.AllowSend()
		d.traceCall(v, trace.CallConnected, 0, ndis.StatusSuccess, false)
		d.CM.DispatchCallConnected(v.Handle)
	}
}

// ---- establishment ----

// connected: CONNECT received (our call) or CONNECT ACKNOWLEDGE (theirs).
func (d *Core) connected(p *Assoc, ind uni.Indication, rx *received) {
	d.mu.Lock()
	c := callOf(ind)
	if c == nil || c.Ended {
		d.mu.Unlock()
		return
	}
	if c.Out == nil {
		v := c.First
		d.mu.Unlock()
		if v != nil {
			d.callConnected(v)
		}
		return
	}
	v := c.Out
	if ci := rx.connID(); ci == nil || p.ConnInUse(q2931.ConnectionOf(ci)) {
		// The called side assigns the connection identifier; without one
		// (or with one in use) there is no data path.
		cause := uni.NewCause(uni.CauseVPCIVCIAssignFailure)
		if ci == nil {
			cause = uni.NewCause(uni.CauseMandatoryIEMissing, byte(uni.IEConnectionID))
		}
		d.releaseLegLocked(c, cause)
		d.mu.Unlock()
		return
	}
	c.Conn, c.HasConn, c.Connected = q2931.ConnectionOf(rx.connID()), true, true
	p.BindConn(c.Conn, c)
	if v.State() == Calling && v.Call == c {
		var aal *uni.AALParameters
		if rx.hasAAL {
			aal = &rx.aal
		}
		tx, rxf := d.callUpLocked(v, aal)
		conn := c.Conn
		d.mu.Unlock()
		d.activate(v, tx, rxf, conn, v, stepCallUp)
		return
	}
	// A new leg of a multipoint call: its first party is added.
	pt := c.Party(c.FirstEP)
	var adds []*Party
	if pt != nil && pt.State == PartyAdding {
		pt.State = PartyActive
		adds, c.MP.WaitAdds = c.MP.WaitAdds, nil
		for _, w := range adds {
			if st := d.addOnLegLocked(c, w); st != ndis.StatusSuccess {
				d.partyGoneLocked(w)
				d.EnqueueLocked(func() { d.CM.AddPartyComplete(st, w.Handle, nil, w.Params) })
			}
		}
	}
	ds := d.legDestsLocked(v)
	complete := pt != nil && pt.State == PartyActive
	d.mu.Unlock()
	added := func() {
		if complete {
			d.CM.AddPartyComplete(ndis.StatusSuccess, pt.Handle, pt, pt.Params)
		}
	}
	if dl, ok := v.Data.(DestsLater); ok {
		dl.SetDestsThen(ds, added)
		return
	}
	v.Data.SetDests(ds)
	added()
}

// callUpLocked takes in the CONNECT that answered v's MakeCall: the
// called side's AAL parameters (a, nil if it carried none) may lower the max SDU sizes (the call
// parameters then say CALL_PARAMETERS_CHANGED). It returns the flowspecs
// to activate v with; the caller activates it with the connection
// identifier the called side assigned, once it has released d.mu, and
// callUpActivated completes the MakeCall.
func (d *Core) callUpLocked(v *Vc, a *uni.AALParameters) (tx, rx ndis.Flowspec) {
	params := v.Req
	cm := params.CallMgrParameters
	if a != nil && a.Type == uni.AAL5 {
		if a.FwdMaxSDU.Present && a.FwdMaxSDU.Value > 0 && a.FwdMaxSDU.Value < cm.Transmit.MaxSduSize {
			cm.Transmit.MaxSduSize = a.FwdMaxSDU.Value
			params.Flags |= ndis.CallParametersChanged
		}
		if !v.Multipoint && a.BwdMaxSDU.Present && a.BwdMaxSDU.Value > 0 && a.BwdMaxSDU.Value < cm.Receive.MaxSduSize {
			cm.Receive.MaxSduSize = a.BwdMaxSDU.Value
			params.Flags |= ndis.CallParametersChanged
		}
	}
	return v.activationFlowspecs()
}

// activationFlowspecs are what an outgoing VC is activated with: its
// MakeCall's parameters (as the CONNECT left them), without a receive
// direction for a multipoint root.
func (v *Vc) activationFlowspecs() (tx, rx ndis.Flowspec) {
	cm := v.Req.CallMgrParameters
	tx, rx = cm.Transmit, cm.Receive
	if v.Multipoint {
		rx = ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
	}
	return tx, rx
}

// callUpActivated completes the MakeCall of v, activated for its call
// (MakeCallComplete SUCCESS); if the activation failed, the call is
// cleared with cause 47 and its end fails the MakeCall. A call that ended
// while the activation was pended lets the activation go.
func (d *Core) callUpActivated(v *Vc, st ndis.Status) {
	d.mu.Lock()
	c := v.Call
	if v.State() != Calling || c == nil || c.Ended || !c.Connected {
		// The MakeCall failed meanwhile (its completion is queued).
		d.mu.Unlock()
		if st == ndis.StatusSuccess {
			v.Act.Deactivate(d.mu, d.CM, v.Handle, ignoreOutcome, 0)
		}
		return
	}
	if st != ndis.StatusSuccess {
		d.releaseLegLocked(c, uni.NewCause(uni.CauseResourceUnavailable))
		d.mu.Unlock()
		return // its IndReleased fails the MakeCall
	}
	params := v.Req
	tx, rx := v.activationFlowspecs()
	pt := v.InitialParty()
	var adds []*Party
	if pt != nil {
		adds, c.MP.WaitAdds = c.MP.WaitAdds, nil
	}
	d.mu.Unlock()
	v.Data.Open(tx, int(tx.MaxSduSize), v.Reliable, c, true, !v.Multipoint)
	if !v.Multipoint {
		c.SetRx(v)
	}
	d.mu.Lock()
	d.setFlowsLocked(v, tx, rx)
	v.Req = nil
	d.moveLocked(v, Active, ReasonConnect)
	if pt != nil {
		pt.State = PartyActive
		for _, w := range adds {
			if st := d.addOnLegLocked(c, w); st != ndis.StatusSuccess {
				d.partyGoneLocked(w)
				d.EnqueueLocked(func() { d.CM.AddPartyComplete(st, w.Handle, nil, w.Params) })
			}
		}
	}
	d.mu.Unlock()
	var ph *ndis.Party
	var pctx any
	if pt != nil {
		ph, pctx = pt.Handle, pt
	}
	if d.debugging() {
		d.log.Debug("call connected", "peer", c.Assoc.Peer(), "service", v.Service.String(), "conn", c.Conn)
	}
	if pt == nil || pt.Initial {
		d.traceCall(v, trace.CallConnected, 0, ndis.StatusSuccess, false)
	}
	d.CM.MakeCallComplete(ndis.StatusSuccess, v.Handle, ph, pctx, params)
}

// legDestsLocked lists where a multipoint root's transmissions go: every
// connected leg. The slice is new: the data path reads it unlocked.
func (d *Core) legDestsLocked(v *Vc) []*Call {
	var ds []*Call
	if c := v.Call; c != nil && c.Connected && !c.Ended && c.HasConn {
		ds = append(ds, c)
	}
	for _, c := range v.FurtherLegs() {
		if c.Connected && !c.Ended && c.HasConn {
			ds = append(ds, c)
		}
	}
	return ds
}

// ---- clearing ----

// peerReleased: RELEASE received for an active call (U12).
func (d *Core) peerReleased(p *Assoc, ind uni.Indication) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := callOf(ind)
	if c == nil || c.Ended {
		return
	}
	if v := c.Out; v != nil {
		if v.Multipoint {
			// A leaf node left: acknowledge at once; its parties are lost
			// when the call ends (IndReleased).
			d.releaseLegLocked(c, uni.NewCause(uni.CauseNormalCallClearing))
			return
		}
		d.noteCauseLocked(v, ind.Cause.Value)
		d.networkEndLocked(v, q2931.IndicationStatus(ind))
		return
	}
	st := q2931.IndicationStatus(ind)
	c.EachIn(func(v *Vc) {
		d.noteCauseLocked(v, ind.Cause.Value)
		d.networkEndLocked(v, st)
	})
}

// released: the uni call is gone (IndReleased ends every call once).
// fromPeer says a received message ended it (not a timer, a local request
// or the link).
func (d *Core) released(p *Assoc, ind uni.Indication, fromPeer bool) {
	d.mu.Lock()
	c := callOf(ind)
	if c == nil || c.Ended {
		d.mu.Unlock()
		return
	}
	c.Ended = true
	p.RemoveCall(c)
	if c.HasConn {
		p.UnbindConn(c.Conn, c)
	}
	c.SetRx(nil)
	st := q2931.IndicationStatus(ind)
	if ind.Restarted {
		// A restart (the peer's, ours, or the peer's process starting
		// again) cleared the call: the destination was out of order.
		st = q2931.RestartStatus
	}
	if d.debugging() {
		d.log.Debug("call released", "peer", p.Peer(), "call", c.ID.String(), "conn", c.Conn, "cause", ind.Cause.Value.String(), "msg", fromPeer)
	}
	if c.Releasing && !fromPeer && c.HasConn && p.Link().IsUp() {
		// Our RELEASE went unanswered twice (T308): the peer may still
		// hold the call. Q.2931 puts the VC in maintenance; restarting it
		// (RESTART, class "indicated VC") clears the peer's side.
		d.log.Warn("RELEASE unanswered: restarting the VC", "peer", p.Peer(), "conn", c.Conn)
		d.restartVCLocked(p, c)
	}
	v := c.Out
	if v == nil {
		c.EachIn(func(x *Vc) {
			if x.State().IsClosing() {
				d.maybeFinishCloseLocked(x)
			} else {
				d.noteCauseLocked(x, ind.Cause.Value)
				d.networkEndLocked(x, st)
			}
		})
		d.mu.Unlock()
		return
	}
	v.RemoveLeg(c)
	if !v.Multipoint {
		if !v.State().IsClosing() {
			d.noteCauseLocked(v, ind.Cause.Value)
		}
		switch {
		case v.State() == Calling:
			d.LegFailedLocked(v, nil, st)
		case v.State().IsClosing():
			d.maybeFinishCloseLocked(v)
		default:
			d.networkEndLocked(v, st)
		}
		d.mu.Unlock()
		return
	}
	var lost []*Party
	eps := make([]uint16, 0, len(c.MP.EPs))
	for ep := range c.MP.EPs {
		eps = append(eps, ep)
	}
	slices.Sort(eps)
	for _, ep := range eps {
		pt := c.MP.EPs[ep]
		switch pt.State {
		case PartyAdding:
			d.LegFailedLocked(v, pt, st)
		case PartyDropping:
			d.partyGoneLocked(pt)
			d.EnqueueLocked(func() { d.CM.DropPartyComplete(ndis.StatusSuccess, pt.Handle) })
		case PartyActive:
			lost = append(lost, pt)
		}
		pt.Call = nil
	}
	for _, w := range c.MP.WaitAdds {
		d.LegFailedLocked(v, w, st)
	}
	c.MP.WaitAdds = nil
	d.partiesLostLocked(v, lost, st)
	if v.State().IsClosing() {
		d.maybeFinishCloseLocked(v)
	} else if v.State() == Active {
		ds := d.legDestsLocked(v)
		d.EnqueueLocked(func() { v.Data.SetDests(ds) })
	}
	d.mu.Unlock()
}

// networkEndLocked: the network ended v's call while the client holds it
// (offered, accepted, established): queued sends complete with
// NDIS_STATUS_CLOSING, a pending QoS change fails, and the client gets
// IncomingCloseCall with st (SUCCESS for normal clearing, DEST_OUT_OF_ORDER
// after T309, ...). Its NdisClCloseCall finishes the close.
func (d *Core) networkEndLocked(v *Vc, st ndis.Status) {
	if v.Handle == nil {
		return
	}
	switch v.State() {
	case Offered, Accepted, Active:
	default:
		return // closing or released already, or no call
	}
	if o := v.Offer; o != nil && !o.Given {
		// Its activation is not done: the client never saw the call,
		// and offerActivated lets the VC go.
		o.Lost = true
		return
	}
	d.moveLocked(v, Released, ReasonNetworkRelease)
	d.traceCallLocked(v, trace.CallReleased, 0, st, true)
	var qp *ndis.CallParameters
	if v.QoSPending {
		qp = v.Req
	}
	v.QoSPending, v.Req = false, nil
	if d.debugging() {
		d.log.Debug("call closed by the network", "peer", v.Assoc.Peer(), "service", v.Service.String(), "status", st.String())
	}
	d.enqueueVcLocked(opNetworkEnd, v, st, qp)
}

// networkEnd tells the client that the network ended v's call with st
// (networkEndLocked queued it): sends are refused, a QoS change in
// progress (qp, its buffer) fails, IncomingCloseCall.
func (d *Core) networkEnd(v *Vc, st ndis.Status, qp *ndis.CallParameters) {
	v.Data.Halt(ndis.StatusClosing)
	if qp != nil {
		d.CM.ModifyCallQoSComplete(failure(st), v.Handle, qp)
	}
	d.CM.DispatchIncomingCloseCall(st, v.Handle, nil)
}

// partiesLostLocked: leaves of a multipoint root left (their node released
// or dropped them). While other parties stay up each is an
// IncomingDropParty; when none would, all but one are, and the call gets
// IncomingCloseCall (R-CLOSE-18).
func (d *Core) partiesLostLocked(v *Vc, lost []*Party, st ndis.Status) {
	if len(lost) == 0 {
		return
	}
	if v.State().Ended() {
		for _, pt := range lost {
			pt.State = PartyDropIndicated
		}
		return
	}
	for _, pt := range lost {
		pt.State = PartyDropIndicated
	}
	alive := 0
	for _, pt := range v.Parties() {
		if pt.State == PartyActive {
			alive++
		}
	}
	indicate := lost
	if alive == 0 {
		indicate = lost[:len(lost)-1]
	}
	for _, pt := range indicate {
		d.EnqueueLocked(func() { d.CM.DispatchIncomingDropParty(st, pt.Handle, nil) })
	}
	if alive == 0 {
		d.networkEndLocked(v, st)
	}
}

// ---- parties ----

// partyAdded: ADD PARTY ACKNOWLEDGE.
func (d *Core) partyAdded(p *Assoc, ind uni.Indication) {
	d.mu.Lock()
	c := callOf(ind)
	var pt *Party
	if c != nil && c.Out != nil {
		pt = c.Party(ind.Endpoint)
	}
	if pt == nil || pt.State != PartyAdding {
		d.mu.Unlock()
		return
	}
	pt.State = PartyActive
	d.mu.Unlock()
	d.CM.AddPartyComplete(ndis.StatusSuccess, pt.Handle, pt, pt.Params)
}

// partyEnded: a party is gone at the uni level (rejected, dropped, timed
// out).
func (d *Core) partyEnded(p *Assoc, ind uni.Indication) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := callOf(ind)
	if c == nil {
		return
	}
	st := q2931.IndicationStatus(ind)
	if v := c.Out; v != nil {
		pt := c.Party(ind.Endpoint)
		if pt == nil {
			return
		}
		delete(c.MP.EPs, ind.Endpoint)
		switch pt.State {
		case PartyAdding:
			d.LegFailedLocked(v, pt, st)
		case PartyDropping:
			d.partyGoneLocked(pt)
			d.EnqueueLocked(func() { d.CM.DropPartyComplete(ndis.StatusSuccess, pt.Handle) })
		case PartyActive:
			pt.Call = nil
			d.partiesLostLocked(v, []*Party{pt}, st)
		default:
			pt.Call = nil
		}
		return
	}
	v := c.InVC(ind.Endpoint)
	if v == nil {
		return
	}
	v.PartyEnded = true
	c.DropRx(v)
	if v.State().IsClosing() {
		d.maybeFinishCloseLocked(v)
		return
	}
	d.networkEndLocked(v, st)
}

// peerDroppedParty: DROP PARTY received for an active party. At the root
// the party is lost; at a leaf the VC's call is closed (its client's
// NdisClCloseCall acknowledges).
func (d *Core) peerDroppedParty(p *Assoc, ind uni.Indication) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := callOf(ind)
	if c == nil {
		return
	}
	if v := c.Out; v != nil {
		if pt := c.Party(ind.Endpoint); pt != nil && pt.State == PartyActive {
			d.partiesLostLocked(v, []*Party{pt}, q2931.IndicationStatus(ind))
		}
		return
	}
	if v := c.InVC(ind.Endpoint); v != nil {
		d.noteCauseLocked(v, ind.Cause.Value)
		d.networkEndLocked(v, q2931.IndicationStatus(ind))
	}
}

// ---- QoS ----

// modifyRequested: the peer asks for new traffic parameters (Q.2963.1).
// Accepted if the call is established and within Config.MaxRate: the VC
// is re-activated with the new flowspecs, the client is told
// (IncomingCallQoSChange), then MODIFY ACKNOWLEDGE. Otherwise MODIFY
// REJECT: cause 37 over the limit, 73 for a traffic descriptor that is not
// a UNI 3.1 combination, 63 for a multipoint call, 41 otherwise.
func (d *Core) modifyRequested(p *Assoc, ind uni.Indication) {
	d.mu.Lock()
	c := callOf(ind)
	if c == nil || c.Ended {
		d.mu.Unlock()
		return
	}
	reject := func(cause uni.Cause) { d.rejectModifyLocked(c, cause) }
	v := c.Out
	if v == nil {
		v = c.First
	}
	switch {
	case v == nil || c.P2MP:
		reject(uni.CauseServiceUnavailable)
		d.mu.Unlock()
		return
	case v.State() != Active || !v.Act.InForceLocked() || ind.Traffic == nil:
		reject(uni.CauseTemporaryFailure)
		d.mu.Unlock()
		return
	case !q2931.TrafficAllowed(ind.Traffic):
		reject(uni.CauseUnsupportedTraffic)
		d.mu.Unlock()
		return
	}
	ptx, prx := v.Tx(), v.Rx()
	ntx, nrx := q2931.ModifiedFlowspecs(ind.Traffic, ptx, prx, v.Incoming)
	if q2931.Exceeds(ntx, d.cfg.MaxRate) || q2931.Exceeds(nrx, d.cfg.MaxRate) {
		reject(uni.CauseCellRateUnavailable)
		d.mu.Unlock()
		return
	}
	conn := c.Conn
	d.mu.Unlock()

	// Not pooled: the client is given these parameters too.
	na := new(activation).fill(v, ntx, nrx, conn)
	v.Act.Activate(d.mu, d.CM, v.Handle, na, DoneFunc(func(st ndis.Status) {
		d.peerModifyActivated(v, c, na, st, ptx, prx)
	}), 0)
}

// rejectModifyLocked answers the peer's MODIFY REQUEST on c with MODIFY
// REJECT.
func (d *Core) rejectModifyLocked(c *Call, cause uni.Cause) {
	if out, err := c.Assoc.Link().RejectModify(c.ID, uni.NewCause(cause)); err == nil {
		d.ApplyLocked(c.Assoc, out)
	}
}

// peerModifyActivated goes on with the peer's QoS change once v is
// re-activated with its parameters na (st): the client is told
// (IncomingCallQoSChange), then MODIFY ACKNOWLEDGE; if it refuses, MODIFY
// REJECT and v goes back to ptx and prx. A failed re-activation is MODIFY
// REJECT cause 47.
func (d *Core) peerModifyActivated(v *Vc, c *Call, na *ndis.CallParameters, st ndis.Status, ptx, prx ndis.Flowspec) {
	if st != ndis.StatusSuccess {
		d.mu.Lock()
		d.rejectModifyLocked(c, uni.CauseResourceUnavailable)
		d.mu.Unlock()
		return
	}
	ntx := na.CallMgrParameters.Transmit
	d.mu.Lock()
	d.setFlowsLocked(v, ntx, na.CallMgrParameters.Receive)
	d.mu.Unlock()
	v.Data.SetFlow(ntx)
	st = d.CM.DispatchIncomingCallQoSChange(v.Handle, na)
	d.mu.Lock()
	if st == ndis.StatusSuccess {
		if out, err := c.Assoc.Link().AcceptModify(c.ID); err == nil {
			d.ApplyLocked(c.Assoc, out)
		}
		d.mu.Unlock()
		return
	}
	d.rejectModifyLocked(c, q2931.CauseForStatus(st))
	d.setFlowsLocked(v, ptx, prx)
	conn := c.Conn
	d.mu.Unlock()
	v.Data.SetFlow(ptx)
	d.activate(v, ptx, prx, conn, ignoreOutcome, 0)
}

// modifyAnswered: our MODIFY REQUEST was acknowledged (the VC is
// re-activated with the new parameters) or refused (it keeps the old) —
// also when it lost a collision, which uni reports before the winner's
// request (IndModifyRejected 101, then IndModify), so the client's
// ModifyCallQoS completes with NDIS_STATUS_FAILURE before it is told of
// the winner's parameters.
func (d *Core) modifyAnswered(p *Assoc, ind uni.Indication) {
	d.mu.Lock()
	c := callOf(ind)
	var v *Vc
	if c != nil {
		if v = c.Out; v == nil {
			v = c.First
		}
	}
	if v == nil || !v.QoSPending {
		d.mu.Unlock()
		return
	}
	qp := v.Req
	v.QoSPending, v.Req = false, nil
	ok := ind.Kind == uni.IndModified && v.State() == Active
	conn := c.Conn
	d.mu.Unlock()
	if !ok {
		st := failure(q2931.IndicationStatus(ind))
		if ind.Kind == uni.IndModified {
			st = ndis.StatusClosing
		}
		d.CM.ModifyCallQoSComplete(st, v.Handle, qp)
		return
	}
	ntx, nrx := qp.CallMgrParameters.Transmit, qp.CallMgrParameters.Receive
	d.activate(v, ntx, nrx, conn, DoneFunc(func(st ndis.Status) {
		if st == ndis.StatusSuccess {
			d.mu.Lock()
			d.setFlowsLocked(v, ntx, nrx)
			d.mu.Unlock()
			v.Data.SetFlow(ntx)
		}
		d.CM.ModifyCallQoSComplete(st, v.Handle, qp)
	}), 0)
}
