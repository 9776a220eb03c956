package ndis

import (
	"sync"
	"sync/atomic"
)

// pruneRetiredLocked forgets the closed AF opens whose last VC is gone,
// keeping what their VCs counted (m.topo held).
func (m *Mediator) pruneRetiredLocked() {
	kept := m.retired[:0]
	for _, af := range m.retired {
		af.mu.Lock()
		if af.vcList.n > 0 {
			kept = append(kept, af)
		} else {
			m.gone.sum(&af.totals)
		}
		af.mu.Unlock()
	}
	clear(m.retired[len(kept):])
	m.retired = kept
}

// afState is the state of one client's open of an address family (spec §5.5).
//
//	OPENING --success--> OPEN --notify-close--> NOTIFY_CLOSE
//	OPENING --failure--> DEAD        OPEN/NOTIFY_CLOSE --close--> CLOSING --success--> CLOSED
//	                                 CLOSING --NOT_ACCEPTED--> (previous state)
type afState uint8

const (
	afOpening afState = iota + 1
	afOpen
	afNotifyClose
	afClosing
	afClosed
	afDead
)

func (s afState) String() string {
	return [...]string{"?", "OPENING", "OPEN", "NOTIFY_CLOSE", "CLOSING", "CLOSED", "DEAD"}[s]
}

// Af is an open of an address family by one client: the NdisAfHandle shared
// by that client and the call manager.
type Af struct {
	// mu guards the open's state and its SAPs. State changes that also
	// change the topology (the open counted on its registration, the list
	// of opens) are made with m.topo held as well, taken first.
	mu sync.Mutex

	m         *Mediator
	id        uint64
	reg       *afReg
	client    *Binding
	clientCtx any
	cmCtx     any           // set when the open succeeds, fixed from then on
	state     atomic.Uint32 // afState; written under mu, read by calls without it
	prev      afState       // state to return to if the close is refused
	vcList    vcList        // VCs on this open not yet deleted
	totals    vcTotals      // what its deleted VCs counted
	saps      int           // SAPs on this open, not yet gone
	sapList   []*Sap        // SAPs registered on this open, for introspection
	open      opRec
	close     opRec
	notify    opRec
}

// String names the AF open for traces ("af#3").
func (af *Af) String() string { return idName("af#", af.id) }

// AddressFamily returns the address family that was opened.
func (af *Af) AddressFamily() AddressFamily { return af.reg.af }

func (af *Af) getState() afState { return afState(af.state.Load()) }

// setStateLocked changes the open's state (af.mu held).
func (af *Af) setStateLocked(s afState) { af.state.Store(uint32(s)) }

// clientAfCheck validates a client's use of its AF handle. It returns a
// rule and status to refuse with, or "" when the handle is usable. It reads
// the state without af.mu: a call that passed it holds a VC or SAP on the
// open, which keeps the open from closing (R-AF-12).
func (b *Binding) clientAfCheck(af *Af) (string, Status, string) {
	if af == nil || af.m != b.m || af.client != b {
		return "R-GEN-8", StatusFailure, "not an AF handle this client opened"
	}
	switch s := af.getState(); {
	case s == afOpening:
		return "R-AF-8", StatusFailure, "the open of this AF has not completed yet"
	case s != afOpen && s != afNotifyClose:
		return "R-AF-14", StatusFailure, "AF handle is no longer valid (" + s.String() + ")"
	}
	return "", 0, ""
}

// cmAfCheck validates a call manager's use of an AF handle. It reads only
// what is fixed in an open, so it takes no lock.
func (m *Mediator) cmAfCheck(who driver, af *Af) (string, string) {
	switch {
	case af == nil:
		return "R-GEN-8", "nil AF handle"
	case af.m != m || af.reg == nil:
		return "R-GEN-8", foreignHandle
	case af.reg.owner() != who:
		return "R-GEN-9", "AF " + af.String() + " belongs to call manager " + nameOf(af.reg.owner())
	}
	return "", ""
}

// ClOpenAddressFamilyEx models NdisClOpenAddressFamilyEx: the client opens an
// address family registered on its adapter; the call manager's
// ProtocolCmOpenAf runs. It returns the AF handle (also on PENDING; the
// client may use it only once ProtocolClOpenAfCompleteEx reported success,
// R-AF-8) and StatusSuccess, StatusPending or a failure. Refused with
// StatusFailure if the AF is not registered on the adapter or its call
// manager is withdrawing it (R-AF-9).
func (b *Binding) ClOpenAddressFamilyEx(family AddressFamily, clientAfCtx any) (*Af, Status) {
	if b.invalid() {
		return nil, StatusFailure
	}
	m := b.m
	const fn = "NdisClOpenAddressFamilyEx"
	m.emit(EventRequest, b, fn, b, 0)
	m.topo.Lock()
	if b.closed.Load() {
		m.topo.Unlock()
		return nil, m.reject(StatusFailure, "R-AF-9", fn, b, b, "binding is closed")
	}
	if b.client == nil {
		m.topo.Unlock()
		return nil, m.reject(StatusFailure, "R-REG-1", fn, b, b, "protocol has no client handlers")
	}
	r := b.adapter.findReg(family.AddressFamily)
	if r == nil {
		m.topo.Unlock()
		return nil, m.reject(StatusFailure, "R-AF-9", fn, b, b, "AF %v is not registered on %s", family.AddressFamily, b.adapter.name)
	}
	if r.withdrawing {
		m.topo.Unlock()
		return nil, m.reject(StatusFailure, "R-AF-9", fn, b, b, "call manager %s is withdrawing AF %v", nameOf(r.owner()), family.AddressFamily)
	}
	af := &Af{m: m, id: m.newID(), reg: r, client: b, clientCtx: clientAfCtx}
	af.setStateLocked(afOpening)
	af.open.state = opUpcall
	r.opens++
	m.afs.add(af)
	cm, owner, ctx := r.cm(), r.owner(), r.cmBindingCtx()
	m.topo.Unlock()

	m.emit(EventUpcall, owner, "ProtocolCmOpenAf", af, 0)
	cmCtx, st := cm.ProtocolCmOpenAf(ctx, family, af)
	m.emit(EventHandled, owner, "ProtocolCmOpenAf", af, st)

	m.topo.Lock()
	af.mu.Lock()
	final, fctx, _, finish, deliver := af.open.settle(m, st, cmCtx, nil, "ProtocolCmOpenAf", owner, af)
	if !finish {
		af.mu.Unlock()
		m.topo.Unlock()
		m.emit(EventReturn, b, fn, af, StatusPending)
		return af, StatusPending
	}
	h := m.finishOpenAfLocked(af, final, fctx)
	af.mu.Unlock()
	m.topo.Unlock()
	if deliver {
		m.emit(EventUpcall, b, "ProtocolClOpenAfCompleteEx", af, final)
		b.client.ProtocolClOpenAfCompleteEx(clientAfCtx, h, final)
		final = StatusPending
	}
	m.emit(EventReturn, b, fn, af, final)
	return h, final
}

// finishOpenAfLocked applies the outcome of an open (m.topo and af.mu
// held); on failure NDIS frees the open before the client hears of it
// (R-AF-10).
func (m *Mediator) finishOpenAfLocked(af *Af, st Status, cmCtx any) *Af {
	if st == StatusSuccess {
		af.cmCtx = cmCtx
		af.setStateLocked(afOpen)
		return af
	}
	af.setStateLocked(afDead)
	af.reg.opens--
	m.afs.remove(af)
	return nil
}

// CmOpenAddressFamilyComplete models NdisCmOpenAddressFamilyComplete.
func (b *Binding) CmOpenAddressFamilyComplete(status Status, af *Af, cmAfCtx any) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.openAfComplete(b, "NdisCmOpenAddressFamilyComplete", status, af, cmAfCtx)
}

// MCmOpenAddressFamilyComplete models NdisMCmOpenAddressFamilyComplete.
func (a *Adapter) MCmOpenAddressFamilyComplete(status Status, af *Af, cmAfCtx any) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.openAfComplete(a, "NdisMCmOpenAddressFamilyComplete", status, af, cmAfCtx)
}

func (m *Mediator) openAfComplete(who driver, fn string, st Status, af *Af, cmCtx any) Status {
	if ret, ok := m.startCompletion(who, fn, af, st); !ok {
		return ret
	}
	if rule, why := m.cmAfCheck(who, af); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, af, "%s", why)
	}
	m.topo.Lock()
	af.mu.Lock()
	if c := m.takeCompletionLocked(&af.open, st, cmCtx, nil); c != completeNow {
		af.mu.Unlock()
		m.topo.Unlock()
		if c == completeNone {
			return m.refuseDoubleCompletion(fn, who, af, "ProtocolCmOpenAf")
		}
		return StatusSuccess
	}
	h := m.finishOpenAfLocked(af, st, cmCtx)
	af.mu.Unlock()
	m.topo.Unlock()
	c := af.client
	m.emit(EventUpcall, c, "ProtocolClOpenAfCompleteEx", af, st)
	c.client.ProtocolClOpenAfCompleteEx(af.clientCtx, h, st)
	return StatusSuccess
}

// ClCloseAddressFamily models NdisClCloseAddressFamily. The client must have
// deleted its VCs and deregistered its SAPs first (R-AF-12); a second close
// fails (R-AF-13). Both are refused with StatusFailure. From this call on the
// AF handle is dead for the client (R-AF-14).
func (b *Binding) ClCloseAddressFamily(af *Af) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisClCloseAddressFamily"
	m.emit(EventRequest, b, fn, af, 0)
	if af == nil || af.client != b {
		return m.reject(StatusFailure, "R-GEN-8", fn, b, af, "not an AF handle this client opened")
	}
	af.mu.Lock()
	switch s := af.getState(); s {
	case afClosing, afClosed:
		af.mu.Unlock()
		return m.reject(StatusFailure, "R-AF-13", fn, b, af, "AF is already %v", s)
	case afOpening:
		af.mu.Unlock()
		return m.reject(StatusFailure, "R-AF-8", fn, b, af, "the open has not completed")
	case afDead:
		af.mu.Unlock()
		return m.reject(StatusFailure, "R-AF-10", fn, b, af, "the open failed; the handle is not valid")
	}
	if vcs := m.blockingVcsLocked(af); vcs > 0 || af.saps > 0 {
		saps := af.saps
		af.mu.Unlock()
		return m.reject(StatusFailure, "R-AF-12", fn, b, af, "%d VC(s) or call(s) and %d SAP(s) still on the AF", vcs, saps)
	}
	af.prev = af.getState()
	af.setStateLocked(afClosing)
	af.close.state = opUpcall
	cm, owner, cmCtx := af.reg.cm(), af.reg.owner(), af.cmCtx
	af.mu.Unlock()

	m.emit(EventUpcall, owner, "ProtocolCmCloseAf", af, 0)
	st := cm.ProtocolCmCloseAf(cmCtx)
	m.emit(EventHandled, owner, "ProtocolCmCloseAf", af, st)

	m.topo.Lock()
	af.mu.Lock()
	final, _, _, finish, deliver := af.close.settle(m, st, nil, nil, "ProtocolCmCloseAf", owner, af)
	if !finish {
		af.mu.Unlock()
		m.topo.Unlock()
		m.emit(EventReturn, b, fn, af, StatusPending)
		return StatusPending
	}
	m.finishCloseAfLocked(af, final, owner)
	af.mu.Unlock()
	m.topo.Unlock()
	if deliver {
		m.emit(EventUpcall, b, "ProtocolClCloseAfComplete", af, final)
		b.client.ProtocolClCloseAfComplete(final, af.clientCtx)
		final = StatusPending
	}
	m.emit(EventReturn, b, fn, af, final)
	return final
}

// blockingVcsLocked counts what keeps a client from closing af (R-AF-12):
// VCs it created, and calls on call-manager VCs it has not closed. Closed
// call-manager VCs are the call manager's to delete; it pends the close
// until it has (R-AF-15). Caller holds af.mu; each VC's call is read under
// its lock.
func (m *Mediator) blockingVcsLocked(af *Af) int {
	n := 0
	for v := af.vcList.head; v != nil; v = v.next {
		if v.kind == vcOutgoing {
			n++
			continue
		}
		v.mu.Lock()
		if v.call != callIdle && v.call != callClosed {
			n++
		}
		v.mu.Unlock()
	}
	return n
}

// finishCloseAfLocked applies the outcome of a close (m.topo and af.mu held).
func (m *Mediator) finishCloseAfLocked(af *Af, st Status, owner driver) {
	if st == StatusSuccess {
		af.setStateLocked(afClosed)
		af.reg.opens--
		m.afs.remove(af)
		if n := af.vcList.n; n > 0 {
			m.warn("R-AF-15", "CloseAf completion", owner, af, "AF closed while %d call-manager VC(s) on it are not deleted", n)
			m.retired = append(m.retired, af) // listed until they are
		} else {
			m.gone.sum(&af.totals)
		}
		return
	}
	if st != StatusNotAccepted {
		m.warn("R-AF-16", "ProtocolCmCloseAf", owner, af, "close of an AF finished with %v; only SUCCESS or NOT_ACCEPTED are defined", st)
	}
	af.setStateLocked(af.prev)
}

// CmCloseAddressFamilyComplete models NdisCmCloseAddressFamilyComplete.
func (b *Binding) CmCloseAddressFamilyComplete(status Status, af *Af) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.closeAfComplete(b, "NdisCmCloseAddressFamilyComplete", status, af)
}

// MCmCloseAddressFamilyComplete models NdisMCmCloseAddressFamilyComplete.
func (a *Adapter) MCmCloseAddressFamilyComplete(status Status, af *Af) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.closeAfComplete(a, "NdisMCmCloseAddressFamilyComplete", status, af)
}

func (m *Mediator) closeAfComplete(who driver, fn string, st Status, af *Af) Status {
	if ret, ok := m.startCompletion(who, fn, af, st); !ok {
		return ret
	}
	if rule, why := m.cmAfCheck(who, af); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, af, "%s", why)
	}
	m.topo.Lock()
	af.mu.Lock()
	if c := m.takeCompletionLocked(&af.close, st, nil, nil); c != completeNow {
		af.mu.Unlock()
		m.topo.Unlock()
		if c == completeNone {
			return m.refuseDoubleCompletion(fn, who, af, "ProtocolCmCloseAf")
		}
		return StatusSuccess
	}
	m.finishCloseAfLocked(af, st, who)
	af.mu.Unlock()
	m.topo.Unlock()
	c := af.client
	m.emit(EventUpcall, c, "ProtocolClCloseAfComplete", af, st)
	c.client.ProtocolClCloseAfComplete(st, af.clientCtx)
	return StatusSuccess
}

// CmNotifyCloseAddressFamily models NdisCmNotifyCloseAddressFamily: the call
// manager asks the client owning af to tear everything down and close it
// (spec §4.14). New opens of the AF fail from now on. It returns the
// client's status; PENDING means ProtocolCmNotifyCloseAfComplete follows.
func (b *Binding) CmNotifyCloseAddressFamily(af *Af) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.notifyCloseAf(b, "NdisCmNotifyCloseAddressFamily", af)
}

// MCmNotifyCloseAddressFamily models NdisMCmNotifyCloseAddressFamily.
func (a *Adapter) MCmNotifyCloseAddressFamily(af *Af) Status {
	if a.invalid() {
		return StatusFailure
	}
	return a.m.notifyCloseAf(a, "NdisMCmNotifyCloseAddressFamily", af)
}

func (m *Mediator) notifyCloseAf(who driver, fn string, af *Af) Status {
	m.emit(EventRequest, who, fn, af, 0)
	if rule, why := m.cmAfCheck(who, af); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, af, "%s", why)
	}
	m.topo.Lock()
	af.mu.Lock()
	if s := af.getState(); s != afOpen {
		af.mu.Unlock()
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-AF-18", fn, who, af, "AF is %v; only an open AF can be notified once", s)
	}
	af.setStateLocked(afNotifyClose)
	af.reg.withdrawing = true
	af.notify.state = opUpcall
	c := af.client
	af.mu.Unlock()
	m.topo.Unlock()

	m.emit(EventUpcall, c, "ProtocolClNotifyCloseAf", af, 0)
	st := c.client.ProtocolClNotifyCloseAf(af.clientCtx)
	m.emit(EventHandled, c, "ProtocolClNotifyCloseAf", af, st)

	af.mu.Lock()
	final, _, _, finish, deliver := af.notify.settle(m, st, nil, nil, "ProtocolClNotifyCloseAf", c, af)
	af.mu.Unlock()
	if !finish {
		m.emit(EventReturn, who, fn, af, StatusPending)
		return StatusPending
	}
	if deliver {
		m.emit(EventUpcall, who, "ProtocolCmNotifyCloseAfComplete", af, final)
		af.reg.cm().ProtocolCmNotifyCloseAfComplete(af.cmCtx, final)
		final = StatusPending
	}
	m.emit(EventReturn, who, fn, af, final)
	return final
}

// ClNotifyCloseAddressFamilyComplete models
// NdisClNotifyCloseAddressFamilyComplete: the client finishes a pended
// ProtocolClNotifyCloseAf (R-AF-20). The AF may already be closed (R-AF-14).
func (b *Binding) ClNotifyCloseAddressFamilyComplete(af *Af, status Status) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisClNotifyCloseAddressFamilyComplete"
	if ret, ok := m.startCompletion(b, fn, af, status); !ok {
		return ret
	}
	if af == nil || af.client != b {
		return m.reject(StatusFailure, "R-GEN-8", fn, b, af, "not an AF handle this client opened")
	}
	af.mu.Lock()
	deliver, ok := af.notify.complete(m, status, nil, nil)
	af.mu.Unlock()
	if !ok {
		return m.reject(StatusFailure, "R-GEN-2", fn, b, af, "no pended ProtocolClNotifyCloseAf to complete")
	}
	if deliver {
		owner := af.reg.owner()
		m.emit(EventUpcall, owner, "ProtocolCmNotifyCloseAfComplete", af, status)
		af.reg.cm().ProtocolCmNotifyCloseAfComplete(af.cmCtx, status)
	}
	return StatusSuccess
}
