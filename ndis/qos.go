package ndis

// ClModifyCallQoS models NdisClModifyCallQoS: the client asks for new QoS on
// an established call, or while negotiating an incoming call it has not
// answered yet (R-IN-9). One change at a time per VC (StatusFailure).
// PENDING means ProtocolClModifyCallQoSComplete follows.
func (b *Binding) ClModifyCallQoS(vc *Vc, params *CallParameters) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisClModifyCallQoS"
	m.emit(EventRequest, b, fn, vc, 0)
	if rule, why := b.lockClientVc(vc); rule != "" {
		return m.reject(StatusFailure, rule, fn, b, vc, "%s", why)
	}
	if params == nil {
		vc.mu.Unlock()
		return m.reject(StatusInvalidData, "R-QOS-3", fn, b, vc, "nil call parameters")
	}
	if vc.qos.busy() {
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-QOS-5", fn, b, vc, "a QoS change is already pending on the VC")
	}
	switch {
	case vc.call == callConnected && !vc.closingMark:
	case vc.call == callOffered && (vc.inCall.state == opPended || vc.inCall.state == opUpcall):
		// The offer is unanswered. opUpcall too: a client that pends the
		// offer may negotiate from the worker it handed the call to before
		// the mediator has seen its handler return PENDING, which it cannot
		// know (R-GEN-10); the handler itself may negotiate as well. An
		// offer already answered (opEarly) is not negotiable.
	default:
		call := vc.call
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-CALL-6", fn, b, vc, "no established call (%v)", call)
	}
	vc.qos.state = opUpcall
	cm, owner, cmCtx := vc.cm(), vc.cmOwner(), vc.cmCtx
	vc.mu.Unlock()

	m.emit(EventUpcall, owner, "ProtocolCmModifyCallQoS", vc, 0)
	st := cm.ProtocolCmModifyCallQoS(cmCtx, params)
	m.emit(EventHandled, owner, "ProtocolCmModifyCallQoS", vc, st)

	vc.mu.Lock()
	final, _, fparams, finish, deliver := vc.qos.settle(m, st, nil, params, "ProtocolCmModifyCallQoS", owner, vc)
	vc.mu.Unlock()
	if !finish {
		m.emit(EventReturn, b, fn, vc, StatusPending)
		return StatusPending
	}
	if deliver {
		m.emit(EventUpcall, b, "ProtocolClModifyCallQoSComplete", vc, final)
		b.client.ProtocolClModifyCallQoSComplete(final, vc.clientCtx, fparams)
		final = StatusPending
	}
	m.emit(EventReturn, b, fn, vc, final)
	return final
}

// CmModifyCallQoSComplete models NdisCmModifyCallQoSComplete.
func (b *Binding) CmModifyCallQoSComplete(status Status, vc *Vc, params *CallParameters) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.modifyQoSComplete(b, "NdisCmModifyCallQoSComplete", status, vc, params)
}

// MCmModifyCallQoSComplete models NdisMCmModifyCallQoSComplete.
func (a *Adapter) MCmModifyCallQoSComplete(status Status, vc *Vc, params *CallParameters) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.modifyQoSComplete(a, "NdisMCmModifyCallQoSComplete", status, vc, params)
}

func (m *Mediator) modifyQoSComplete(who driver, fn string, st Status, v *Vc, params *CallParameters) Status {
	if ret, ok := m.startCompletion(who, fn, v, st); !ok {
		return ret
	}
	if rule, why := m.lockCmVc(who, v); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, v, "%s", why)
	}
	deliver, ok := v.qos.complete(m, st, nil, params)
	c := v.client()
	v.mu.Unlock()
	if !ok {
		return m.reject(StatusFailure, "R-GEN-2", fn, who, v, "no pended ProtocolCmModifyCallQoS to complete")
	}
	if deliver {
		m.emit(EventUpcall, c, "ProtocolClModifyCallQoSComplete", v, st)
		c.client.ProtocolClModifyCallQoSComplete(st, v.clientCtx, params)
	}
	return StatusSuccess
}

// CmDispatchIncomingCallQoSChange models NdisCmDispatchIncomingCallQoSChange:
// the remote side changed the QoS of an established call. The call manager
// must have had the new parameters accepted by activation first, so the VC
// must be active (R-QOS-7).
func (b *Binding) CmDispatchIncomingCallQoSChange(vc *Vc, params *CallParameters) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.dispatchQoSChange(b, "NdisCmDispatchIncomingCallQoSChange", vc, params)
}

// MCmDispatchIncomingCallQoSChange models NdisMCmDispatchIncomingCallQoSChange.
func (a *Adapter) MCmDispatchIncomingCallQoSChange(vc *Vc, params *CallParameters) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.dispatchQoSChange(a, "NdisMCmDispatchIncomingCallQoSChange", vc, params)
}

func (m *Mediator) dispatchQoSChange(who driver, fn string, v *Vc, params *CallParameters) Status {
	m.emit(EventRequest, who, fn, v, 0)
	if rule, why := m.lockCmVc(who, v); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, v, "%s", why)
	}
	if v.call != callConnected || v.closingMark {
		call := v.call
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-QOS-7", fn, who, v, "call is %v; only an established call changes QoS", call)
	}
	if !v.act.isActive() || params == nil {
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-QOS-7", fn, who, v, "activate the VC with the new parameters before dispatching the change")
	}
	c := v.client()
	v.mu.Unlock()
	m.emit(EventUpcall, c, "ProtocolClIncomingCallQoSChange", v, 0)
	c.client.ProtocolClIncomingCallQoSChange(v.clientCtx, params)
	m.emit(EventReturn, who, fn, v, StatusSuccess)
	return StatusSuccess
}
