package ndis

import "sync/atomic"

// sapState is the state of a SAP (spec §5.3).
//
//	REGISTERING --success--> REGISTERED --deregister--> DEREGISTERING --done--> DEAD
//	REGISTERING --failure--> DEAD
type sapState uint8

const (
	sapRegistering sapState = iota + 1
	sapRegistered
	sapDeregistering
	sapDead
)

func (s sapState) String() string {
	return [...]string{"?", "REGISTERING", "REGISTERED", "DEREGISTERING", "DEAD"}[s]
}

// Sap is a registered service access point (NdisSapHandle). Its state is
// guarded by its AF open's lock (af.mu).
type Sap struct {
	m         *Mediator
	id        uint64
	af        *Af
	coSap     *CoSap
	clientCtx any
	cmCtx     any
	state     atomic.Uint32 // sapState; written under af.mu, read by dispatches without it
	reg       opRec
	dereg     opRec
}

// String names the SAP for traces ("sap#5").
func (s *Sap) String() string { return idName("sap#", s.id) }

// CoSap returns the SAP descriptor the client registered.
func (s *Sap) CoSap() *CoSap { return s.coSap }

func (s *Sap) getState() sapState { return sapState(s.state.Load()) }

// setStateLocked changes the SAP's state (s.af.mu held).
func (s *Sap) setStateLocked(st sapState) { s.state.Store(uint32(st)) }

// ClRegisterSap models NdisClRegisterSap: the client registers a SAP on an
// open AF and the call manager's ProtocolCmRegisterSap runs (R-SAP-1).
// Incoming calls may be dispatched on the SAP before the registration
// completes (R-SAP-4). It returns the SAP handle (nil on failure).
func (b *Binding) ClRegisterSap(af *Af, sapCtx any, coSap *CoSap) (*Sap, Status) {
	if b.invalid() {
		return nil, StatusFailure
	}
	m := b.m
	const fn = "NdisClRegisterSap"
	m.emit(EventRequest, b, fn, af, 0)
	if rule, st, why := b.clientAfCheck(af); rule != "" {
		return nil, m.reject(st, rule, fn, b, af, "%s", why)
	}
	af.mu.Lock()
	if rule, st, why := b.clientAfCheck(af); rule != "" {
		af.mu.Unlock()
		return nil, m.reject(st, rule, fn, b, af, "%s", why)
	}
	if af.getState() == afNotifyClose {
		af.mu.Unlock()
		return nil, m.reject(StatusFailure, "R-AF-19", fn, b, af, "the call manager is closing this AF")
	}
	if coSap == nil {
		af.mu.Unlock()
		return nil, m.reject(StatusInvalidData, "R-SAP-2", fn, b, af, "nil SAP descriptor")
	}
	s := &Sap{m: m, id: m.newID(), af: af, coSap: coSap, clientCtx: sapCtx}
	s.setStateLocked(sapRegistering)
	s.reg.state = opUpcall
	af.saps++
	af.sapList = append(af.sapList, s)
	cm, owner, cmAfCtx := af.reg.cm(), af.reg.owner(), af.cmCtx
	af.mu.Unlock()

	m.emit(EventUpcall, owner, "ProtocolCmRegisterSap", s, 0)
	cmCtx, st := cm.ProtocolCmRegisterSap(cmAfCtx, coSap, s)
	m.emit(EventHandled, owner, "ProtocolCmRegisterSap", s, st)

	af.mu.Lock()
	final, fctx, _, finish, deliver := s.reg.settle(m, st, cmCtx, nil, "ProtocolCmRegisterSap", owner, s)
	if !finish {
		af.mu.Unlock()
		m.emit(EventReturn, b, fn, s, StatusPending)
		return s, StatusPending
	}
	h := finishRegisterSapLocked(s, final, fctx)
	af.mu.Unlock()
	if deliver {
		m.emit(EventUpcall, b, "ProtocolClRegisterSapComplete", s, final)
		b.client.ProtocolClRegisterSapComplete(final, sapCtx, coSap, h)
		final = StatusPending
	}
	m.emit(EventReturn, b, fn, s, final)
	return h, final
}

// finishRegisterSapLocked applies a registration outcome (s.af.mu held); on
// failure NDIS frees the SAP (R-SAP-3).
func finishRegisterSapLocked(s *Sap, st Status, cmCtx any) *Sap {
	if st == StatusSuccess {
		s.cmCtx = cmCtx
		s.setStateLocked(sapRegistered)
		return s
	}
	s.setStateLocked(sapDead)
	s.af.saps--
	s.af.dropSap(s)
	return nil
}

func (af *Af) dropSap(s *Sap) {
	for i, x := range af.sapList {
		if x == s {
			af.sapList = append(af.sapList[:i], af.sapList[i+1:]...)
			return
		}
	}
}

// CmRegisterSapComplete models NdisCmRegisterSapComplete.
func (b *Binding) CmRegisterSapComplete(status Status, sap *Sap, cmSapCtx any) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.registerSapComplete(b, "NdisCmRegisterSapComplete", status, sap, cmSapCtx)
}

// MCmRegisterSapComplete models NdisMCmRegisterSapComplete.
func (a *Adapter) MCmRegisterSapComplete(status Status, sap *Sap, cmSapCtx any) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.registerSapComplete(a, "NdisMCmRegisterSapComplete", status, sap, cmSapCtx)
}

func (m *Mediator) registerSapComplete(who driver, fn string, st Status, s *Sap, cmCtx any) Status {
	if ret, ok := m.startCompletion(who, fn, s, st); !ok {
		return ret
	}
	if s == nil {
		return m.reject(StatusFailure, "R-GEN-8", fn, who, s, "nil SAP handle")
	}
	if rule, why := m.cmAfCheck(who, s.af); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, s, "%s", why)
	}
	s.af.mu.Lock()
	if c := m.takeCompletionLocked(&s.reg, st, cmCtx, nil); c != completeNow {
		s.af.mu.Unlock()
		if c == completeNone {
			return m.refuseDoubleCompletion(fn, who, s, "ProtocolCmRegisterSap")
		}
		return StatusSuccess
	}
	h := finishRegisterSapLocked(s, st, cmCtx)
	s.af.mu.Unlock()
	c := s.af.client
	m.emit(EventUpcall, c, "ProtocolClRegisterSapComplete", s, st)
	c.client.ProtocolClRegisterSapComplete(st, s.clientCtx, s.coSap, h)
	return StatusSuccess
}

// ClDeregisterSap models NdisClDeregisterSap. The SAP handle is dead for the
// client from this call on (R-SAP-5). An accepted request always returns
// StatusPending and always ends in ProtocolClDeregisterSapComplete, even when
// the call manager finished at once (spec §9.10). A redundant call returns
// StatusFailure (R-SAP-6). Calls already received on the SAP are not
// affected (R-SAP-9).
func (b *Binding) ClDeregisterSap(sap *Sap) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisClDeregisterSap"
	m.emit(EventRequest, b, fn, sap, 0)
	if sap == nil || sap.m != m || sap.af == nil || sap.af.client != b {
		return m.reject(StatusFailure, "R-GEN-8", fn, b, sap, "not a SAP this client registered")
	}
	af := sap.af
	af.mu.Lock()
	switch s := sap.getState(); s {
	case sapDeregistering, sapDead:
		af.mu.Unlock()
		return m.reject(StatusFailure, "R-SAP-6", fn, b, sap, "SAP is already %v", s)
	case sapRegistering:
		af.mu.Unlock()
		return m.reject(StatusFailure, "R-SAP-6", fn, b, sap, "SAP registration has not completed; deregister after ProtocolClRegisterSapComplete")
	}
	sap.setStateLocked(sapDeregistering)
	sap.dereg.state = opUpcall
	cm, owner, cmCtx := af.reg.cm(), af.reg.owner(), sap.cmCtx
	af.mu.Unlock()

	m.emit(EventUpcall, owner, "ProtocolCmDeregisterSap", sap, 0)
	st := cm.ProtocolCmDeregisterSap(cmCtx)
	m.emit(EventHandled, owner, "ProtocolCmDeregisterSap", sap, st)

	af.mu.Lock()
	final, _, _, finish, _ := sap.dereg.settle(m, st, nil, nil, "ProtocolCmDeregisterSap", owner, sap)
	if !finish {
		af.mu.Unlock()
		m.emit(EventReturn, b, fn, sap, StatusPending)
		return StatusPending
	}
	finishDeregisterSapLocked(m, sap, final, owner)
	af.mu.Unlock()
	m.emit(EventUpcall, b, "ProtocolClDeregisterSapComplete", sap, final)
	b.client.ProtocolClDeregisterSapComplete(final, sap.clientCtx)
	m.emit(EventReturn, b, fn, sap, StatusPending)
	return StatusPending
}

// finishDeregisterSapLocked applies a deregistration outcome (s.af.mu held).
func finishDeregisterSapLocked(m *Mediator, s *Sap, st Status, owner driver) {
	if st == StatusSuccess {
		s.setStateLocked(sapDead)
		s.af.saps--
		s.af.dropSap(s)
		return
	}
	m.warn("R-SAP-8", "ProtocolCmDeregisterSap", owner, s, "deregistration finished with %v; the SAP stays registered", st)
	s.setStateLocked(sapRegistered)
}

// CmDeregisterSapComplete models NdisCmDeregisterSapComplete.
func (b *Binding) CmDeregisterSapComplete(status Status, sap *Sap) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.deregisterSapComplete(b, "NdisCmDeregisterSapComplete", status, sap)
}

// MCmDeregisterSapComplete models NdisMCmDeregisterSapComplete.
func (a *Adapter) MCmDeregisterSapComplete(status Status, sap *Sap) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.deregisterSapComplete(a, "NdisMCmDeregisterSapComplete", status, sap)
}

func (m *Mediator) deregisterSapComplete(who driver, fn string, st Status, s *Sap) Status {
	if ret, ok := m.startCompletion(who, fn, s, st); !ok {
		return ret
	}
	if s == nil {
		return m.reject(StatusFailure, "R-GEN-8", fn, who, s, "nil SAP handle")
	}
	if rule, why := m.cmAfCheck(who, s.af); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, s, "%s", why)
	}
	s.af.mu.Lock()
	if c := m.takeCompletionLocked(&s.dereg, st, nil, nil); c != completeNow {
		s.af.mu.Unlock()
		if c == completeNone {
			return m.refuseDoubleCompletion(fn, who, s, "ProtocolCmDeregisterSap")
		}
		return StatusSuccess
	}
	finishDeregisterSapLocked(m, s, st, who)
	s.af.mu.Unlock()
	c := s.af.client
	m.emit(EventUpcall, c, "ProtocolClDeregisterSapComplete", s, st)
	c.client.ProtocolClDeregisterSapComplete(st, s.clientCtx)
	return StatusSuccess
}
