package ndis

// sendRefusalLocked decides whether owner may send on v now; it returns the
// status to fail the lists with and the rule, or 0.
func sendRefusalLocked(v *Vc) (Status, string, string) {
	if v.kind == vcSignaling {
		if !v.act.isActive() {
			return StatusVcNotActivated, "R-ACT-1", "signalling VC is " + v.act.String()
		}
		return 0, "", ""
	}
	switch {
	case v.closingMark:
		return StatusClosing, "R-CLOSE-2", "NdisClCloseCall was called on the VC"
	case v.call == callCloseIndicated && v.indicating > 0:
		// The client is being told right now; a send from another of its
		// goroutines can cross the indication. Refused, not a violation.
		return StatusClosing, "", "the call is being closed by the remote side or the network"
	case v.call == callCloseIndicated:
		return StatusClosing, "R-CLOSE-15", "the call was closed by the remote side or the network"
	case v.call == callOutSetup:
		return StatusFailure, "R-CALL-6", "MakeCall has not completed"
	case v.call == callOffered || v.call == callAccepted:
		return StatusFailure, "R-IN-8", "the incoming call is not connected yet"
	case v.call != callConnected:
		return StatusFailure, "R-ACT-1", "no call on the VC (" + v.call.String() + ")"
	case !v.act.isActive():
		return StatusVcNotActivated, "R-ACT-1", "VC is " + v.act.String()
	}
	return 0, "", ""
}

// CoSendNetBufferLists models NdisCoSendNetBufferLists: send a chain of
// lists on a VC. Every list comes back through
// ProtocolCoSendNetBufferListsComplete with its own status (R-DATA-1); the
// chain reaches the miniport in order (R-DATA-4). A send the contract forbids
// (before the call is up, after NdisClCloseCall, on an inactive VC) is not
// forwarded: each list completes with a failure status and the violation is
// reported.
func (b *Binding) CoSendNetBufferLists(vc *Vc, nbls *NetBufferList, flags SendFlags) {
	if b.invalid() {
		return
	}
	m := b.m
	const fn = "NdisCoSendNetBufferLists"
	if nbls == nil {
		return
	}
	if m.tracing() {
		m.emit(EventRequest, b, fn, vc, 0)
	}
	// Claimed first: a refused send completes its lists, and lists the
	// mediator does not consider the sender's must not be touched, since
	// completing them would hand them out twice.
	if !claimChain(nbls, nblSending) {
		m.warn("R-DATA-3", fn, b, vc, "a list in the chain is still owned by NDIS (sent or indicated and not yet returned); chain dropped")
		return
	}
	if rule, why := m.lockLiveVc(vc); rule != "" {
		m.failSends(b, nil, vc, nbls, StatusFailure, rule, fn, why)
		return
	}
	owner, ownerCtx := vc.dataOwner()
	if owner != b {
		vc.mu.Unlock()
		m.failSends(b, nil, vc, nbls, StatusFailure, "R-GEN-8", fn, "not a VC this protocol sends on")
		return
	}
	if st, rule, why := sendRefusalLocked(vc); st != 0 {
		vc.extra().stats.SendsRefused++
		vc.mu.Unlock()
		m.failSends(b, ownerCtx, vc, nbls, st, rule, fn, why)
		return
	}
	count := 0
	for n := nbls; n != nil; n = n.Next {
		if n.SourceHandle != nil && n.SourceHandle != vc {
			m.warn("R-DATA-2", fn, b, vc, "list SourceHandle names %v", n.SourceHandle)
		}
		n.SourceHandle = vc
		count++
	}
	vc.extra().sendsOut += int32(count)
	data, mpCtx := vc.adapter.data, vc.mpCtx
	vc.mu.Unlock()
	if m.tracing() {
		m.emit(EventUpcall, vc.adapter, "MiniportCoSendNetBufferLists", vc, 0)
	}
	data.MiniportCoSendNetBufferLists(mpCtx, nbls, flags)
}

// failSends completes every list of a refused send with st and reports the rule.
func (m *Mediator) failSends(b *Binding, vcCtx any, vc *Vc, nbls *NetBufferList, st Status, rule, fn, why string) {
	for n := nbls; n != nil; n = n.Next {
		n.Status = st
		if vc != nil {
			n.SourceHandle = vc
		}
	}
	releaseChain(nbls)
	if rule != "" {
		m.report(Violation{Rule: rule, Func: fn, Driver: b.name, Object: objName(vc), Status: st, Detail: why})
	}
	m.emit(EventRefused, b, fn, vc, st)
	b.proto.ProtocolCoSendNetBufferListsComplete(vcCtx, nbls, 0)
}

// MCoSendNetBufferListsComplete models NdisMCoSendNetBufferListsComplete: the
// miniport returns sent lists, each with its status set, in any order and
// batched (R-DATA-4). A list completed twice, or never sent on vc, is
// reported (R-DATA-5) and not passed up again.
func (a *Adapter) MCoSendNetBufferListsComplete(vc *Vc, nbls *NetBufferList, flags SendCompleteFlags) Status {
	if a.invalid() {
		return StatusFailure
	}
	m := a.m
	const fn = "NdisMCoSendNetBufferListsComplete"
	if vc == nil || vc.adapter != a {
		return m.reject(StatusFailure, "R-GEN-8", fn, a, vc, "not a VC on this adapter")
	}
	var head, tail *NetBufferList
	bad := 0
	vc.mu.Lock()
	x := vc.extra()
	for n := nbls; n != nil; {
		next := n.Next
		// A list sent on vc is sending with vc as its source until it is
		// completed here, under vc.mu; anything else is not the miniport's
		// to complete on vc.
		if !n.ownerIs(nblSending) || n.SourceHandle != vc {
			bad++
		} else {
			if n.Status == StatusPending {
				m.warn("R-GEN-1", fn, a, vc, "a list was completed with NDIS_STATUS_PENDING")
				n.Status = StatusFailure
			}
			n.setOwner(nblCompleting)
			x.sendsOut--
			if n.Status == StatusSuccess {
				x.stats.TxPackets++
				x.stats.TxBytes += uint64(len(n.Data))
			} else {
				x.stats.TxErrors++
			}
			n.Next = nil
			if tail == nil {
				head = n
			} else {
				tail.Next = n
			}
			tail = n
		}
		n = next
	}
	owner, ownerCtx := vc.dataOwner()
	vc.mu.Unlock()
	if head != nil {
		releaseChain(head)
		if m.tracing() {
			m.emit(EventUpcall, owner, "ProtocolCoSendNetBufferListsComplete", vc, 0)
		}
		owner.proto.ProtocolCoSendNetBufferListsComplete(ownerCtx, head, flags)
	}
	if bad > 0 {
		// Those lists were refused, not passed up: say so (design.md §2).
		return m.reject(StatusFailure, "R-DATA-5", fn, a, vc, "%d list(s) completed that were not outstanding on the VC (double completion?)", bad)
	}
	return StatusSuccess
}

// MCoIndicateReceiveNetBufferLists models NdisMCoIndicateReceiveNetBufferLists:
// hand received lists to the protocol that owns the VC's data. Without
// ReceiveFlagsResources the protocol returns them later with
// Binding.ReturnNetBufferLists. Receives on an inactive VC break R-ACT-7 and
// are returned at once; while a deactivation is pending they are the
// receives in progress it waits for, and are taken as on an active VC.
// Receives after the call was closed are dropped (R-CLOSE-15).
func (a *Adapter) MCoIndicateReceiveNetBufferLists(vc *Vc, nbls *NetBufferList, count int, flags ReceiveFlags) Status {
	if a.invalid() {
		return StatusFailure
	}
	m := a.m
	const fn = "NdisMCoIndicateReceiveNetBufferLists"
	if nbls == nil {
		return StatusSuccess
	}
	if rule, why := m.lockLiveVc(vc); rule != "" {
		m.returnToMiniport(a, nbls, flags)
		return m.reject(StatusFailure, rule, fn, a, vc, "%s", why)
	}
	if vc.adapter != a {
		vc.mu.Unlock()
		m.returnToMiniport(a, nbls, flags)
		return m.reject(StatusFailure, "R-GEN-8", fn, a, vc, "not a VC on this adapter")
	}
	for x := nbls; x != nil; x = x.Next {
		if !x.ownerIs(nblFree) {
			// Still out with a protocol (indicated and not returned, or
			// being sent): the miniport does not own it (R-DATA-3). Not
			// touched, so the bookkeeping of its real owner stays right.
			vc.mu.Unlock()
			return m.reject(StatusFailure, "R-DATA-3", fn, a, vc, "a list in the chain is not the miniport's (indicated and not yet returned, or being sent)")
		}
	}
	n := nbls.Len()
	if !vc.act.receivable() {
		vc.extra().stats.RxDrops += uint64(n)
		act := vc.act
		vc.mu.Unlock()
		m.returnToMiniport(a, nbls, flags)
		return m.reject(StatusVcNotActivated, "R-ACT-7", fn, a, vc, "receive indicated on a VC that is %v", act)
	}
	if vc.kind != vcSignaling && (vc.closeSeen || vc.closingMark || vc.call == callIdle || vc.call == callClosed) {
		// Data in flight when the call went away: not an error of the
		// miniport, but the client may no longer receive (R-CLOSE-15).
		vc.extra().stats.RxDrops += uint64(n)
		vc.mu.Unlock()
		m.returnToMiniport(a, nbls, flags)
		return StatusSuccess
	}
	keep := flags&ReceiveFlagsResources == 0
	if keep && !claimChain(nbls, nblIndicated) {
		// Another indication took a list of the chain meanwhile.
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-DATA-3", fn, a, vc, "a list in the chain is not the miniport's (indicated and not yet returned, or being sent)")
	}
	more := vc.extra()
	for x := nbls; x != nil; x = x.Next {
		x.SourceHandle = vc
		more.stats.RxBytes += uint64(len(x.Data))
	}
	more.stats.RxPackets += uint64(n)
	if keep {
		more.recvsOut += int32(n)
	}
	owner, ownerCtx := vc.dataOwner()
	vc.mu.Unlock()
	if m.tracing() {
		m.emit(EventUpcall, owner, "ProtocolCoReceiveNetBufferLists", vc, 0)
	}
	owner.proto.ProtocolCoReceiveNetBufferLists(owner.ctx, ownerCtx, nbls, count, flags)
	return StatusSuccess
}

func (m *Mediator) returnToMiniport(a *Adapter, nbls *NetBufferList, flags ReceiveFlags) {
	if flags&ReceiveFlagsResources != 0 {
		return // the miniport reclaims them when the indication returns
	}
	a.data.MiniportReturnNetBufferLists(a.ctx, nbls, 0)
}

// ReturnNetBufferLists models NdisReturnNetBufferLists: the protocol hands
// back lists it was indicated without ReceiveFlagsResources (R-DATA-6).
// Lists it does not hold are reported and not passed down.
func (b *Binding) ReturnNetBufferLists(nbls *NetBufferList, flags ReturnFlags) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisReturnNetBufferLists"
	var head, tail *NetBufferList
	bad := 0
	var held *Vc // the VC whose lock is held: a chain's lists are usually all of one VC
	for n := nbls; n != nil; {
		next := n.Next
		v := n.SourceHandle
		if !n.ownerIs(nblIndicated) || v == nil || v.adapter == nil || v.adapter.m != m || v.adapter != b.adapter {
			bad++
			n = next
			continue
		}
		if v != held {
			if held != nil {
				held.mu.Unlock()
			}
			v.mu.Lock()
			held = v
		}
		// Checked again under the VC's lock: a list returned twice at once
		// is taken back once.
		if o, _ := v.dataOwner(); o != b || !n.ownerIs(nblIndicated) || n.SourceHandle != v {
			bad++
		} else {
			n.setOwner(nblCompleting)
			v.extra().recvsOut-- // indicated on v, so v.more exists
			n.Next = nil
			if tail == nil {
				head = n
			} else {
				tail.Next = n
			}
			tail = n
		}
		n = next
	}
	if held != nil {
		held.mu.Unlock()
	}
	a := b.adapter
	if head != nil {
		releaseChain(head)
		a.data.MiniportReturnNetBufferLists(a.ctx, head, flags)
	}
	if bad > 0 {
		return m.reject(StatusFailure, "R-DATA-6", fn, b, nil, "%d list(s) returned that were not indicated to this protocol or were already returned", bad)
	}
	return StatusSuccess
}

// MCoIndicateStatusEx models NdisMCoIndicateStatusEx. With a nil vc every
// protocol bound to the adapter is told; with a VC only the client and the
// call manager sharing it (R-DATA-9). Indications are serialized per binding
// (R-DATA-11).
func (a *Adapter) MCoIndicateStatusEx(vc *Vc, ind *StatusIndication) Status {
	if a.invalid() {
		return StatusFailure
	}
	m := a.m
	const fn = "NdisMCoIndicateStatusEx"
	m.emit(EventRequest, a, fn, vc, 0)
	type target struct {
		b   *Binding
		ctx any
	}
	var ts []target
	m.topo.Lock()
	if a.gone {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-DATA-10", fn, a, a, "adapter has been halted")
	}
	if ind == nil {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-DATA-9", fn, a, a, "nil status indication")
	}
	if vc == nil {
		for _, b := range a.binds {
			ts = append(ts, target{b, nil})
		}
		m.topo.Unlock()
	} else {
		m.topo.Unlock()
		if rule, why := m.lockLiveVc(vc); rule != "" {
			return m.reject(StatusFailure, rule, fn, a, vc, "%s", why)
		}
		if vc.client() != nil {
			ts = append(ts, target{vc.client(), vc.clientCtx})
		}
		if vc.cmB != nil {
			ts = append(ts, target{vc.cmB, vc.cmCtx})
		}
		vc.mu.Unlock()
	}
	for _, t := range ts {
		t.b.statMu <- struct{}{}
		m.emit(EventUpcall, t.b, "ProtocolCoStatusEx", vc, ind.StatusCode)
		t.b.proto.ProtocolCoStatusEx(t.b.ctx, t.ctx, ind)
		<-t.b.statMu
	}
	return StatusSuccess
}
