package ndis

import (
	"fmt"
	"sync/atomic"
)

// Adapter is a miniport adapter: a CoNDIS miniport (split topology) or a
// miniport call manager (integrated topology). It is the MiniportAdapterHandle
// of NDIS, and the receiver of the NdisMCo* and NdisMCm* functions.
type Adapter struct {
	m     *Mediator
	id    uint64
	name  string
	ctx   any // MiniportAdapterContext
	mp    Miniport
	mcm   MiniportCallManager
	data  MiniportDataHandlers
	init  bool // MiniportInitializeEx still running; this and the rest under m.topo
	gone  bool
	binds []*Binding
	regs  []*afReg
}

func (a *Adapter) driverName() string { return a.name }

// invalid reports a receiver the mediator did not hand out (nil, or a zero
// value the caller built): there is no mediator to ask or report to, so
// every method returns a failure status at once.
func (a *Adapter) invalid() bool { return a == nil || a.m == nil }

// String names the adapter for traces.
func (a *Adapter) String() string {
	if a == nil {
		return "adapter(nil)"
	}
	return a.name
}

// IsMCM reports whether the adapter is a miniport call manager.
func (a *Adapter) IsMCM() bool { return a != nil && a.mcm != nil }

// Mediator returns the mediator the adapter belongs to.
func (a *Adapter) Mediator() *Mediator {
	if a == nil {
		return nil
	}
	return a.m
}

// Binding is a protocol driver's binding to an adapter (NdisBindingHandle),
// and the receiver of the NdisCl*, NdisCm* and NdisCo* functions. A protocol
// that implements ClientHandlers may act as a client on the binding; one that
// implements CallManagerHandlers may register address families on it.
type Binding struct {
	m       *Mediator
	id      uint64
	name    string
	ctx     any // ProtocolBindingContext
	adapter *Adapter
	proto   Protocol
	client  ClientHandlers
	cm      CallManagerHandlers
	binding bool          // ProtocolBindAdapterEx still running, under m.topo
	closed  atomic.Bool   // written under m.topo; calls read it without
	statMu  chan struct{} // serializes ProtocolCoStatusEx per binding (R-DATA-11)
	seen    []AF          // AF types this client binding has been told about, under m.topo
	sigVcs  vcList        // the signalling VCs this call manager created, under m.topo
	totals  vcTotals      // what its deleted signalling VCs counted, under m.topo
}

func (b *Binding) driverName() string { return b.name }

// invalid reports a receiver the mediator did not hand out (see
// Adapter.invalid).
func (b *Binding) invalid() bool { return b == nil || b.m == nil }

// String names the binding for traces.
func (b *Binding) String() string {
	if b == nil {
		return "binding(nil)"
	}
	return b.name
}

// Adapter returns the adapter the binding is bound to.
func (b *Binding) Adapter() *Adapter {
	if b == nil {
		return nil
	}
	return b.adapter
}

// afReg is one address-family registration: a CM or MCM offering a
// signalling protocol on an adapter (spec §5.4).
type afReg struct {
	adapter     *Adapter
	af          AddressFamily
	cmBinding   *Binding // nil for an MCM
	withdrawing bool     // the CM has started notify-close; new opens fail (m.topo)
	opens       int      // AF opens not yet closed (m.topo)
}

func (r *afReg) owner() driver {
	if r.cmBinding != nil {
		return r.cmBinding
	}
	return r.adapter
}

func (r *afReg) cm() CallManagerHandlers {
	if r.cmBinding != nil {
		return r.cmBinding.cm
	}
	return r.adapter.mcm
}

type coHandlers interface {
	CoVcHandlers
	CoOidHandlers
}

func (r *afReg) co() coHandlers {
	if r.cmBinding != nil {
		return r.cmBinding.proto
	}
	return r.adapter.mcm
}

// cmBindingCtx is what ProtocolCmOpenAf receives: the CM's binding context or
// the MCM's adapter context.
func (r *afReg) cmBindingCtx() any {
	if r.cmBinding != nil {
		return r.cmBinding.ctx
	}
	return r.adapter.ctx
}

// AddMiniport attaches a CoNDIS miniport (no call management) as a new
// adapter. initialize, if not nil, plays the part of MiniportInitializeEx:
// a failure status removes the adapter again.
func (m *Mediator) AddMiniport(name string, mp Miniport, adapterCtx any, initialize func(*Adapter) Status) (*Adapter, Status) {
	return m.addAdapter(name, mp, nil, mp, adapterCtx, initialize)
}

// AddMiniportCallManager attaches a miniport call manager as a new adapter.
// initialize plays the part of MiniportInitializeEx, where the MCM calls
// Adapter.MCmRegisterAddressFamilyEx; clients are told about those address
// families once initialize has returned (spec §4.1).
func (m *Mediator) AddMiniportCallManager(name string, mcm MiniportCallManager, adapterCtx any, initialize func(*Adapter) Status) (*Adapter, Status) {
	return m.addAdapter(name, nil, mcm, mcm, adapterCtx, initialize)
}

func (m *Mediator) addAdapter(name string, mp Miniport, mcm MiniportCallManager, data MiniportDataHandlers, ctx any, initialize func(*Adapter) Status) (*Adapter, Status) {
	if data == nil {
		m.report(Violation{Rule: "R-REG-7", Func: "NdisMRegisterMiniportDriver", Driver: name, Status: StatusFailure, Detail: "no miniport handlers"})
		return nil, StatusFailure
	}
	m.topo.Lock()
	a := &Adapter{m: m, id: m.newID(), name: name, ctx: ctx, mp: mp, mcm: mcm, data: data, init: true}
	m.adapters = append(m.adapters, a)
	m.topo.Unlock()
	st := StatusSuccess
	if initialize != nil {
		st = initialize(a)
	}
	m.topo.Lock()
	a.init = false
	if st != StatusSuccess {
		a.gone = true
		m.removeAdapterLocked(a)
		m.topo.Unlock()
		return nil, st
	}
	notes := m.announceLocked(a)
	m.topo.Unlock()
	m.deliverNotes(notes)
	return a, StatusSuccess
}

func (m *Mediator) removeAdapterLocked(a *Adapter) {
	for i, x := range m.adapters {
		if x == a {
			m.adapters = append(m.adapters[:i], m.adapters[i+1:]...)
			return
		}
	}
}

// Bound is how many protocol bindings the adapter has (opened with
// NdisOpenAdapterEx and not yet closed). NDIS halts a miniport only once
// every protocol has unbound (R-AF-23), so a miniport driver that removes
// its adapter waits for Bound to reach 0 first. A nil adapter has none.
func (a *Adapter) Bound() int {
	if a.invalid() {
		return 0
	}
	m := a.m
	m.topo.Lock()
	defer m.topo.Unlock()
	return len(a.binds)
}

// RemoveAdapter detaches an adapter (the adapter is halted). Every binding
// must have been closed and every AF open withdrawn first (R-AF-18, R-AF-23);
// otherwise it returns StatusFailure and reports the violation.
func (a *Adapter) RemoveAdapter() Status {
	if a.invalid() {
		return StatusFailure
	}
	m := a.m
	const fn = "MiniportHaltEx"
	m.topo.Lock()
	if a.gone {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-GEN-8", fn, a, a, "adapter already removed")
	}
	if len(a.binds) > 0 {
		n := len(a.binds)
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-AF-23", fn, a, a, "%d protocol binding(s) still open", n)
	}
	for _, r := range a.regs {
		if r.opens > 0 {
			n := r.opens
			m.topo.Unlock()
			return m.reject(StatusFailure, "R-AF-18", fn, a, a, "%d open(s) of %v still present", n, r.af.AddressFamily)
		}
	}
	a.gone = true
	a.regs = nil
	m.removeAdapterLocked(a)
	m.topo.Unlock()
	return StatusSuccess
}

// BindAdapter binds a protocol driver to an adapter (NdisOpenAdapterEx).
// bind, if not nil, plays the part of ProtocolBindAdapterEx: the protocol
// receives its *Binding there, and a stand-alone call manager registers its
// address families there (R-AF-1). Once bind has returned, client bindings
// are told about every address family on the adapter (R-AF-5).
func (m *Mediator) BindAdapter(a *Adapter, name string, p Protocol, bindingCtx any, bind func(*Binding) Status) (*Binding, Status) {
	const fn = "NdisOpenAdapterEx"
	if p == nil {
		m.report(Violation{Rule: "R-REG-1", Func: fn, Driver: name, Status: StatusFailure, Detail: "no protocol handlers"})
		return nil, StatusFailure
	}
	m.topo.Lock()
	if a == nil || a.m != m || a.gone {
		m.topo.Unlock()
		m.report(Violation{Rule: "R-GEN-8", Func: fn, Driver: name, Status: StatusFailure, Detail: "adapter handle is not valid"})
		return nil, StatusFailure
	}
	b := &Binding{m: m, id: m.newID(), name: name, ctx: bindingCtx, adapter: a, proto: p, binding: true, statMu: make(chan struct{}, 1)}
	b.client, _ = p.(ClientHandlers)
	b.cm, _ = p.(CallManagerHandlers)
	a.binds = append(a.binds, b)
	m.topo.Unlock()
	st := StatusSuccess
	if bind != nil {
		st = bind(b)
	}
	m.topo.Lock()
	b.binding = false
	if st != StatusSuccess {
		m.dropBindingLocked(b)
		m.topo.Unlock()
		return nil, st
	}
	notes := m.announceLocked(a)
	m.topo.Unlock()
	m.deliverNotes(notes)
	return b, StatusSuccess
}

func (m *Mediator) dropBindingLocked(b *Binding) {
	b.closed.Store(true)
	m.gone.sum(&b.totals)
	b.totals = vcTotals{}
	a := b.adapter
	for i, x := range a.binds {
		if x == b {
			a.binds = append(a.binds[:i], a.binds[i+1:]...)
			break
		}
	}
	// Registrations made on this binding go with it.
	regs := a.regs[:0]
	for _, r := range a.regs {
		if r.cmBinding != b {
			regs = append(regs, r)
		} else {
			a.forget(r.af.AddressFamily)
		}
	}
	a.regs = regs
}

// CloseAdapterEx unbinds the protocol (NdisCloseAdapterEx). A client must
// first close every AF it opened on the binding and delete every VC it
// created (R-AF-23); a call manager must first have every open of its
// address families closed (R-AF-18). Otherwise the unbind is refused with
// StatusFailure and the violation names what was left behind.
func (b *Binding) CloseAdapterEx() Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisCloseAdapterEx"
	m.emit(EventRequest, b, fn, b, 0)
	m.topo.Lock()
	if b.closed.Load() {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-GEN-8", fn, b, b, "binding already closed")
	}
	// A VC is listed before it can be used: under topo (a signalling VC)
	// or under its AF's lock while the AF is open, which keeps this
	// binding from passing the AF checks below. So a VC of this binding
	// is either seen here or refused its creation.
	vcs := b.sigVcs.n
	m.pruneRetiredLocked()
	for _, list := range [][]*Af{m.afs.items, m.retired} {
		for _, af := range list {
			af.mu.Lock()
			for v := af.vcList.head; v != nil; v = v.next {
				// A client also keeps the VCs a call manager created for it
				// until its ProtocolCoDeleteVc has run (R-VC-14).
				if v.creator() == driver(b) || v.client() == b {
					vcs++
				}
			}
			af.mu.Unlock()
		}
	}
	if vcs > 0 {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-VC-14", fn, b, b, "%d VC(s) created by or for this binding are not deleted", vcs)
	}
	for _, af := range m.afs.items {
		if af.client == b {
			m.topo.Unlock()
			return m.reject(StatusFailure, "R-AF-23", fn, b, af, "AF still open (%v)", af.getState())
		}
	}
	for _, r := range b.adapter.regs {
		if r.cmBinding == b && r.opens > 0 {
			n := r.opens
			m.topo.Unlock()
			return m.reject(StatusFailure, "R-AF-18", fn, b, b, "%d open(s) of %v not withdrawn with NdisCmNotifyCloseAddressFamily", n, r.af.AddressFamily)
		}
	}
	m.dropBindingLocked(b)
	m.topo.Unlock()
	m.emit(EventReturn, b, fn, b, StatusSuccess)
	return StatusSuccess
}

type afNote struct {
	b  *Binding
	af AddressFamily
}

// announceLocked collects the ProtocolCoAfRegisterNotify calls now due on
// adapter a: registrations whose registering driver has finished binding or
// initializing, to client bindings that have finished binding and have not
// been told yet (R-AF-5).
func (m *Mediator) announceLocked(a *Adapter) []afNote {
	var notes []afNote
	for _, r := range a.regs {
		if a.init || (r.cmBinding != nil && r.cmBinding.binding) || r.withdrawing {
			continue
		}
		for _, b := range a.binds {
			if b.client == nil || b.binding || b.closed.Load() || b == r.cmBinding || b.told(r.af.AddressFamily) {
				continue
			}
			b.seen = append(b.seen, r.af.AddressFamily)
			notes = append(notes, afNote{b, r.af})
		}
	}
	return notes
}

func (m *Mediator) deliverNotes(notes []afNote) {
	for _, n := range notes {
		m.emit(EventUpcall, n.b, "ProtocolCoAfRegisterNotify", n.b, 0)
		n.b.proto.ProtocolCoAfRegisterNotify(n.b.ctx, n.af)
	}
}

func (b *Binding) told(t AF) bool {
	for _, s := range b.seen {
		if s == t {
			return true
		}
	}
	return false
}

// forget lets a re-registration of AF type t be announced again (R-AF-23).
func (a *Adapter) forget(t AF) {
	for _, b := range a.binds {
		for i, s := range b.seen {
			if s == t {
				b.seen = append(b.seen[:i], b.seen[i+1:]...)
				break
			}
		}
	}
}

// CmRegisterAddressFamilyEx models NdisCmRegisterAddressFamilyEx: a
// stand-alone call manager offers af on the adapter of binding b.
// Refused with StatusFailure when the protocol is not a call manager or the
// binding is closing (R-AF-3), when the adapter is a miniport call manager
// (R-AF-6), or when another call manager registered the same AF type on the
// adapter (R-AF-2).
func (b *Binding) CmRegisterAddressFamilyEx(af AddressFamily) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisCmRegisterAddressFamilyEx"
	m.emit(EventRequest, b, fn, b, 0)
	m.topo.Lock()
	if b.closed.Load() {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-AF-3", fn, b, b, "binding is closed")
	}
	if b.cm == nil {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-AF-3", fn, b, b, "protocol has no call-manager handlers")
	}
	a := b.adapter
	if a.mcm != nil {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-AF-6", fn, b, b, "adapter %s is a miniport call manager; it does its own call management", a.name)
	}
	if r := a.findReg(af.AddressFamily); r != nil {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-AF-2", fn, b, b, "AF %v already registered on %s by %s", af.AddressFamily, a.name, nameOf(r.owner()))
	}
	a.regs = append(a.regs, &afReg{adapter: a, af: af, cmBinding: b})
	notes := m.announceLocked(a)
	m.topo.Unlock()
	m.deliverNotes(notes)
	m.emit(EventReturn, b, fn, b, StatusSuccess)
	return StatusSuccess
}

// MCmRegisterAddressFamilyEx models NdisMCmRegisterAddressFamilyEx: a miniport
// call manager offers af on its own adapter, normally from its initialize
// function. Refused with StatusFailure if the adapter is not an MCM (R-GEN-9)
// or the AF type is already registered (R-AF-2).
func (a *Adapter) MCmRegisterAddressFamilyEx(af AddressFamily) Status {
	if a.invalid() {
		return StatusFailure
	}
	m := a.m
	const fn = "NdisMCmRegisterAddressFamilyEx"
	m.emit(EventRequest, a, fn, a, 0)
	m.topo.Lock()
	if a.gone {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-GEN-8", fn, a, a, "adapter removed")
	}
	if a.mcm == nil {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-GEN-9", fn, a, a, "only a miniport call manager may call NdisMCm functions")
	}
	if r := a.findReg(af.AddressFamily); r != nil {
		m.topo.Unlock()
		return m.reject(StatusFailure, "R-AF-2", fn, a, a, "AF %v already registered on %s", af.AddressFamily, a.name)
	}
	a.regs = append(a.regs, &afReg{adapter: a, af: af})
	notes := m.announceLocked(a)
	m.topo.Unlock()
	m.deliverNotes(notes)
	m.emit(EventReturn, a, fn, a, StatusSuccess)
	return StatusSuccess
}

func (a *Adapter) findReg(t AF) *afReg {
	for _, r := range a.regs {
		if r.af.AddressFamily == t {
			return r
		}
	}
	return nil
}

func (af AF) String() string {
	switch af {
	case AFQ2931:
		return "CO_ADDRESS_FAMILY_Q2931"
	case AFPsched:
		return "CO_ADDRESS_FAMILY_PSCHED"
	case AFL2TP:
		return "CO_ADDRESS_FAMILY_L2TP"
	case AFIrda:
		return "CO_ADDRESS_FAMILY_IRDA"
	case AF1394:
		return "CO_ADDRESS_FAMILY_1394"
	case AFPPP:
		return "CO_ADDRESS_FAMILY_PPP"
	case AFInfiniband:
		return "CO_ADDRESS_FAMILY_INFINIBAND"
	case AFTapi:
		return "CO_ADDRESS_FAMILY_TAPI"
	case AFTapiProxy:
		return "CO_ADDRESS_FAMILY_TAPI_PROXY"
	}
	return fmt.Sprintf("CO_ADDRESS_FAMILY(0x%X)", uint32(af))
}
