package ndis

// oidRoute is the mediator's record of an outstanding OID request; it lives
// inside the request so routing costs no allocation. It is guarded by
// Mediator.oidMu.
type oidRoute struct {
	op         opRec
	requester  driver
	reqH       CoOidHandlers
	reqAf      any
	reqVc      any
	reqParty   any
	responder  driver
	toMiniport bool
	fn         string // the handler that was called, for reports
}

// CoOidRequest models NdisCoOidRequest. With a nil af the request goes to the
// miniport's MiniportCoOidRequest (party must then be nil, R-OID-2); with an
// AF handle it goes to the peer protocol on that AF: client to call manager
// or call manager to client (R-OID-1). PENDING means the requester's
// ProtocolCoOidRequestComplete follows (R-OID-4).
func (b *Binding) CoOidRequest(af *Af, vc *Vc, party *Party, req *OidRequest) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisCoOidRequest"
	m.emit(EventRequest, b, fn, vc, 0)
	if b.closed.Load() {
		return m.reject(StatusFailure, "R-OID-8", fn, b, vc, "binding is closed")
	}
	if req == nil {
		return m.reject(StatusInvalidData, "R-OID-3", fn, b, vc, "nil request")
	}
	// oidMu, then the VC's lock (which guards its parties), are held while
	// the request is checked and routed.
	m.oidMu.Lock()
	vcLocked := false
	unlock := func() {
		if vcLocked {
			vc.mu.Unlock()
		}
		m.oidMu.Unlock()
	}
	if req.route.op.busy() {
		unlock()
		return m.reject(StatusFailure, "R-OID-3", fn, b, vc, "this request is already outstanding")
	}
	if af == nil && party != nil {
		unlock()
		return m.reject(StatusFailure, "R-OID-2", fn, b, vc, "a party-specific request needs an AF handle")
	}
	if vc != nil {
		if rule, why := m.lockLiveVc(vc); rule != "" {
			unlock()
			return m.reject(StatusFailure, rule, fn, b, vc, "%s", why)
		}
		vcLocked = true
		if vc.client() != b && vc.cmB != b {
			unlock()
			return m.reject(StatusFailure, "R-GEN-8", fn, b, vc, "not a VC of this protocol")
		}
	}
	// A party of vc is guarded by vc.mu, held from here on.
	if party != nil && (party.m != m || party.vc != vc) {
		unlock()
		return m.reject(StatusFailure, "R-OID-2", fn, b, vc, "party does not belong to the VC")
	}
	if af != nil && (af.m != m || af.reg == nil) {
		unlock()
		return m.reject(StatusFailure, "R-OID-1", fn, b, af, foreignHandle)
	}
	if party != nil && party.state == partyDead {
		rule := "R-PTY-9" // the client's handle died with its drop
		if af != nil && af.client != b {
			rule = "R-PTY-13" // the call manager's, with the drop's completion
		}
		unlock()
		return m.reject(StatusFailure, rule, fn, b, party, "party handle is no longer valid")
	}
	r := &req.route
	r.requester, r.reqH = b, b.proto
	vcCtxOf := func(cmSide bool) any {
		if vc == nil {
			return nil
		}
		if cmSide {
			return vc.cmCtx
		}
		return vc.clientCtx
	}
	partyCtxOf := func(cmSide bool) any {
		if party == nil {
			return nil
		}
		if cmSide {
			return party.cmCtx
		}
		return party.clientCtx
	}
	var call func() Status
	switch {
	case af == nil:
		if vc != nil && vc.adapter != b.adapter {
			unlock()
			return m.reject(StatusFailure, "R-GEN-8", fn, b, vc, "VC is on another adapter")
		}
		a := b.adapter
		r.reqAf, r.reqVc, r.reqParty = nil, vcCtxOf(vc != nil && vc.cmB == b), nil
		r.responder, r.toMiniport, r.fn = a, true, "MiniportCoOidRequest"
		var mpCtx any
		if vc != nil {
			mpCtx = vc.mpCtx
		}
		call = func() Status { return a.data.MiniportCoOidRequest(a.ctx, mpCtx, req) }
	case af.client == b:
		if rule, st, why := b.clientAfCheck(af); rule != "" {
			unlock()
			return m.reject(st, rule, fn, b, af, "%s", why)
		}
		r.reqAf, r.reqVc, r.reqParty = af.clientCtx, vcCtxOf(false), partyCtxOf(false)
		r.responder, r.toMiniport, r.fn = af.reg.owner(), false, "ProtocolCoOidRequest"
		co, afCtx, vctx, pctx := af.reg.co(), af.cmCtx, vcCtxOf(true), partyCtxOf(true)
		call = func() Status { return co.ProtocolCoOidRequest(afCtx, vctx, pctx, req) }
	case af.reg.cmBinding == b:
		if s := af.getState(); s != afOpen && s != afNotifyClose {
			unlock()
			return m.reject(StatusFailure, "R-OID-1", fn, b, af, "AF is %v", s)
		}
		r.reqAf, r.reqVc, r.reqParty = af.cmCtx, vcCtxOf(true), partyCtxOf(true)
		r.responder, r.toMiniport, r.fn = af.client, false, "ProtocolCoOidRequest"
		c, afCtx, vctx, pctx := af.client.proto, af.clientCtx, vcCtxOf(false), partyCtxOf(false)
		call = func() Status { return c.ProtocolCoOidRequest(afCtx, vctx, pctx, req) }
	default:
		unlock()
		return m.reject(StatusFailure, "R-OID-1", fn, b, af, "AF handle is not one this protocol shares")
	}
	r.op.state = opUpcall
	unlock()
	return m.runOid(req, call, fn)
}

// MCmOidRequest models NdisMCmOidRequest: a miniport call manager sends a
// request to the client owning af; the client's ProtocolCoOidRequest runs.
func (a *Adapter) MCmOidRequest(af *Af, vc *Vc, party *Party, req *OidRequest) Status {
	if a.invalid() {
		return StatusFailure
	}
	m := a.m
	const fn = "NdisMCmOidRequest"
	m.emit(EventRequest, a, fn, vc, 0)
	if a.mcm == nil {
		return m.reject(StatusFailure, "R-GEN-9", fn, a, vc, "only a miniport call manager may call NdisMCm functions")
	}
	if req == nil {
		return m.reject(StatusFailure, "R-OID-3", fn, a, vc, "nil or already outstanding request")
	}
	m.oidMu.Lock()
	vcLocked := false
	unlock := func() {
		if vcLocked {
			vc.mu.Unlock()
		}
		m.oidMu.Unlock()
	}
	if req.route.op.busy() {
		unlock()
		return m.reject(StatusFailure, "R-OID-3", fn, a, vc, "nil or already outstanding request")
	}
	if rule, why := m.cmAfCheck(a, af); rule != "" {
		unlock()
		return m.reject(StatusFailure, rule, fn, a, af, "%s", why)
	}
	if s := af.getState(); s != afOpen && s != afNotifyClose {
		unlock()
		return m.reject(StatusFailure, "R-OID-1", fn, a, af, "AF is %v", s)
	}
	if vc != nil {
		if rule, why := m.lockLiveVc(vc); rule != "" {
			unlock()
			return m.reject(StatusFailure, rule, fn, a, vc, "%s", why)
		}
		vcLocked = true
	}
	// A party of vc is guarded by vc.mu, held from here on.
	if vc != nil && vc.af != af || party != nil && (party.m != m || party.vc != vc) {
		unlock()
		return m.reject(StatusFailure, "R-OID-2", fn, a, vc, "VC or party does not belong to the AF")
	}
	if party != nil && party.state == partyDead {
		unlock()
		return m.reject(StatusFailure, "R-PTY-13", fn, a, party, "party handle is no longer valid")
	}
	r := &req.route
	r.requester, r.reqH, r.reqAf = a, a.mcm, af.cmCtx
	r.reqVc, r.reqParty = nil, nil
	var vctx, pctx any
	if vc != nil {
		r.reqVc, vctx = vc.cmCtx, vc.clientCtx
	}
	if party != nil {
		r.reqParty, pctx = party.cmCtx, party.clientCtx
	}
	r.responder, r.toMiniport, r.fn = af.client, false, "ProtocolCoOidRequest"
	c, afCtx := af.client.proto, af.clientCtx
	r.op.state = opUpcall
	unlock()
	return m.runOid(req, func() Status { return c.ProtocolCoOidRequest(afCtx, vctx, pctx, req) }, fn)
}

// runOid invokes the responder of a request its caller has routed and
// marked outstanding (no lock held), and settles the outcome.
func (m *Mediator) runOid(req *OidRequest, call func() Status, fn string) Status {
	r := &req.route
	requester, responder, hfn := r.requester, r.responder, r.fn

	m.emit(EventUpcall, responder, hfn, nil, 0)
	st := call()
	m.emit(EventHandled, responder, hfn, nil, st)

	m.oidMu.Lock()
	final, _, _, finish, deliver := r.op.settle(m, st, nil, nil, hfn, responder, nil)
	m.oidMu.Unlock()
	if !finish {
		m.emit(EventReturn, requester, fn, nil, StatusPending)
		return StatusPending
	}
	if deliver {
		m.deliverOid(req, final)
		final = StatusPending
	}
	m.emit(EventReturn, requester, fn, nil, final)
	return final
}

func (m *Mediator) deliverOid(req *OidRequest, st Status) {
	r := &req.route
	m.emit(EventUpcall, r.requester, "ProtocolCoOidRequestComplete", nil, st)
	r.reqH.ProtocolCoOidRequestComplete(r.reqAf, r.reqVc, r.reqParty, req, st)
}

// completeOid finishes a pended OID request on behalf of responder.
func (m *Mediator) completeOid(who driver, toMiniport bool, fn string, req *OidRequest, st Status) Status {
	if ret, ok := m.startCompletion(who, fn, nil, st); !ok {
		return ret
	}
	if req == nil {
		return m.reject(StatusFailure, "R-OID-5", fn, who, nil, "not a request this driver was given through the matching handler")
	}
	m.oidMu.Lock()
	if req.route.responder != who || req.route.toMiniport != toMiniport {
		m.oidMu.Unlock()
		return m.reject(StatusFailure, "R-OID-5", fn, who, nil, "not a request this driver was given through the matching handler")
	}
	deliver, ok := req.route.op.complete(m, st, nil, nil)
	m.oidMu.Unlock()
	if !ok {
		return m.reject(StatusFailure, "R-OID-4", fn, who, nil, "the request is not pending (completed twice, or it did not return PENDING)")
	}
	if deliver {
		m.deliverOid(req, st)
	}
	return StatusSuccess
}

// CoOidRequestComplete models NdisCoOidRequestComplete: a client or
// stand-alone call manager finishes a pended ProtocolCoOidRequest (R-OID-5).
func (b *Binding) CoOidRequestComplete(af *Af, vc *Vc, party *Party, req *OidRequest, status Status) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.completeOid(b, false, "NdisCoOidRequestComplete", req, status)
}

// MCmOidRequestComplete models NdisMCmOidRequestComplete: a miniport call
// manager finishes a pended ProtocolCoOidRequest (R-OID-5).
func (a *Adapter) MCmOidRequestComplete(af *Af, vc *Vc, party *Party, req *OidRequest, status Status) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.completeOid(a, false, "NdisMCmOidRequestComplete", req, status)
}

// MCoOidRequestComplete models NdisMCoOidRequestComplete: a miniport (or the
// miniport half of an MCM) finishes a pended MiniportCoOidRequest (R-OID-5).
func (a *Adapter) MCoOidRequestComplete(vc *Vc, req *OidRequest, status Status) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.completeOid(a, true, "NdisMCoOidRequestComplete", req, status)
}
