package ndis

import (
	"fmt"
	"strconv"
	"sync"
)

// vcKind says who created a VC and what it carries (spec §2.1).
type vcKind uint8

const (
	vcOutgoing    vcKind = iota + 1 // client-created, for outgoing calls
	vcIncoming                      // stand-alone CM-created, for an incoming call
	vcIncomingMCM                   // MCM-created, for an incoming call
	vcSignaling                     // stand-alone CM signalling VC (no AF)
)

func (k vcKind) String() string {
	return [...]string{"?", "outgoing", "incoming", "incoming(MCM)", "signaling"}[k]
}

// lifecycle is spec §5.1.a.
//
//	CREATING --all create handlers SUCCESS--> CREATED --creator deletes--> DELETING --> DELETED
//	CREATING --a handler fails--> DELETED
type lifecycle uint8

const (
	lifeCreating lifecycle = iota + 1
	lifeCreated
	lifeDeleting
	lifeDeleted
)

func (l lifecycle) String() string {
	return [...]string{"?", "CREATING", "CREATED", "DELETING", "DELETED"}[l]
}

// activation is spec §5.1.b.
//
//	INACTIVE --activate--> ACTIVATING --ok--> ACTIVE --activate--> REACTIVATING --any--> ACTIVE
//	ACTIVATING --fail--> INACTIVE     ACTIVE --deactivate--> DEACTIVATING --ok--> INACTIVE (fail: ACTIVE)
type activation uint8

const (
	actInactive activation = iota + 1
	actActivating
	actActive
	actReactivating
	actDeactivating
)

func (a activation) String() string {
	return [...]string{"?", "INACTIVE", "ACTIVATING", "ACTIVE", "REACTIVATING", "DEACTIVATING"}[a]
}

// IsActive reports whether data may flow under this activation state.
func (a activation) isActive() bool { return a == actActive || a == actReactivating }

// receivable reports whether a miniport may indicate a receive under this
// activation state: while active, and while a deactivation is pending. The
// miniport finishes the receives in progress before it completes the
// deactivation, and only after that may it indicate none (R-ACT-7). The
// mediator marks the VC DEACTIVATING before MiniportCoDeactivateVc runs,
// so a receive the miniport began while the VC was still active can only
// arrive in that state.
func (a activation) receivable() bool { return a.isActive() || a == actDeactivating }

// callState is spec §5.1.c.
//
//	IDLE --MakeCall--> OUT_SETUP --ok--> CONNECTED          OUT_SETUP --fail--> IDLE
//	IDLE --DispatchIncomingCall--> OFFERED --accept--> ACCEPTED --CallConnected--> CONNECTED
//	OFFERED --reject--> IDLE
//	OFFERED/ACCEPTED/CONNECTED --IncomingCloseCall--> CLOSE_INDICATED
//	ACCEPTED/CONNECTED/CLOSE_INDICATED --ClCloseCall--> CLOSING --ok--> CLOSED (fail: previous)
type callState uint8

const (
	callIdle callState = iota + 1
	callOutSetup
	callOffered
	callAccepted
	callConnected
	callCloseIndicated
	callClosing
	callClosed

	callStates // how many there are, with the zero value
)

func (c callState) String() string {
	return [...]string{"?", "IDLE", "OUT_SETUP", "OFFERED", "ACCEPTED", "CONNECTED", "CLOSE_INDICATED", "CLOSING", "CLOSED"}[c]
}

// Vc is a virtual connection: the NdisVcHandle shared by the client, the
// call manager and the miniport.
type Vc struct {
	// mu guards the VC's state, its parties and v.more. The handle's
	// identity (id, shardIx, adapter, af, cmB, kind, and so its client
	// and creator) is fixed before the VC is listed; the contexts are set
	// before it is created and fixed from then on.
	mu sync.Mutex

	id      uint64 // its mediator is adapter.m
	adapter *Adapter
	af      *Af      // nil for a signalling VC
	cmB     *Binding // the stand-alone CM (nil on an MCM adapter)

	clientCtx, cmCtx, mpCtx any

	// The small fields sit together: a Vc then fits the 144-byte size
	// class (TestVcSize pins it), and every call allocates two, one per
	// node held. Rare data lives elsewhere: the data and party counters and
	// the parties in v.more, an early completion in Mediator.early, the
	// instance name in Mediator.instanceNames; the activation parameters
	// in a pooled record (v.params).
	kind        vcKind
	life        lifecycle
	act         activation
	call        callState
	prevCall    callState // restored if a close fails
	closingMark bool      // set by ClCloseCall (R-CLOSE-3)
	closeSeen   bool      // an incoming close was indicated on the current call
	multipoint  bool
	shardIx     uint8 // the counter shard its calls are counted on (shard)

	makeCall, inCall, closeCall, qos, activate, deactivate opRec

	// leftActive: the last call's close completed while the VC was still
	// (being) activated, and that activation has not ended since. Reuse is
	// judged by the activation at close time (spec §9.1, §9.4): a VC
	// deactivated when its call closed may be activated again before the
	// next call is dispatched; one left active may not carry a new call
	// until it is deactivated (R-CLOSE-8).
	leftActive bool

	closeStatus Status // CloseStatus of the last incoming close (R-CLOSE-16)
	indicating  int32  // ProtocolClIncomingCloseCall handlers still running
	// params: a copy of the current activation's parameters, nil while
	// inactive (R-ACT-8). It comes from paramsPool and goes back when the
	// activation ends or the VC is deleted: it is the mediator's own, never
	// lent out, so it can be reused where the VC handle cannot.
	params *activationParams

	// more holds what only a VC that carries data or parties needs (its
	// NBLs outstanding too); nil
	// until its first send, receive or party (extra).
	more *vcMore

	prev, next *Vc // its AF's list (Af.vcList) or its CM binding's (Binding.sigVcs), under that list's lock
}

// VcCounters are per-VC data-path counters.
type VcCounters struct {
	TxPackets, TxBytes, TxErrors uint64
	RxPackets, RxBytes, RxDrops  uint64
	SendsRefused                 uint64
}

// vcMore is the part of a VC that most calls never use: the data-path
// counters (a VC that carries data) and the parties (a multipoint call),
// allocated on first use so that a held point-to-point call without data
// does not carry them. Guarded by the VC's lock.
type vcMore struct {
	sendsOut, recvsOut           int32 // NBLs in the miniport / with the protocol
	stats                        VcCounters
	partiesAdded, partiesDropped uint32 // for Counters (vcTotals)
	parties                      []*Party
}

// extra returns v.more, allocating it on first use (v.mu held).
func (v *Vc) extra() *vcMore {
	if v.more == nil {
		v.more = new(vcMore)
	}
	return v.more
}

// partyList returns v's parties (v.mu held): none if it never had one.
func (v *Vc) partyList() []*Party {
	if v.more == nil {
		return nil
	}
	return v.more.parties
}

// counters returns v's data-path counters (v.mu held): zero if it never
// carried data.
func (v *Vc) counters() VcCounters {
	if v.more == nil {
		return VcCounters{}
	}
	return v.more.stats
}

// shard is the counter shard v's calls are counted on.
func (v *Vc) shard() *vcShard { return &v.adapter.m.vcs.shards[v.shardIx] }

// outstanding returns how many NBLs sent on v are still in the miniport
// and how many indicated on v are still with the protocol (v.mu held).
func (v *Vc) outstanding() (sends, recvs int32) {
	if v.more == nil {
		return 0, 0
	}
	return v.more.sendsOut, v.more.recvsOut
}

// dataOut reports whether any NBL sent or indicated on v is still out
// (v.mu held).
func (v *Vc) dataOut() bool {
	sends, recvs := v.outstanding()
	return sends > 0 || recvs > 0
}

// client is the client on v, the one that opened its AF (nil for a
// signalling VC, which has no AF).
func (v *Vc) client() *Binding {
	if v.af == nil {
		return nil
	}
	return v.af.client
}

// creator is the driver that created v, the only one that may delete it
// (R-VC-5). It follows from the kind: a client creates its outgoing VCs,
// a stand-alone call manager its incoming and signalling ones, and a
// miniport call manager (its adapter) the VCs of its incoming calls.
func (v *Vc) creator() driver {
	switch v.kind {
	case vcOutgoing:
		return v.client()
	case vcIncomingMCM:
		return v.adapter
	}
	return v.cmB
}

// String names the VC for traces ("vc#7").
func (v *Vc) String() string { return idName("vc#", v.id) }

// AppendName appends v's name, as String gives it, to b: for a holder
// that keeps the name in storage of its own, without a string per VC.
func (v *Vc) AppendName(b []byte) []byte { return strconv.AppendUint(append(b, "vc#"...), v.id, 10) }

// cm returns the call-manager handlers responsible for the VC.
func (v *Vc) cm() CallManagerHandlers {
	if v.cmB != nil {
		return v.cmB.cm
	}
	return v.adapter.mcm
}

// cmOwner is the driver acting as call manager for the VC.
func (v *Vc) cmOwner() driver {
	if v.cmB != nil {
		return v.cmB
	}
	return v.adapter
}

func (v *Vc) cmCo() CoVcHandlers {
	if v.cmB != nil {
		return v.cmB.proto
	}
	return v.adapter.mcm
}

// dataOwner is the protocol that sends and receives on the VC: the client,
// or the CM for its own signalling VC.
func (v *Vc) dataOwner() (*Binding, any) {
	if v.kind == vcSignaling {
		return v.cmB, v.cmCtx
	}
	return v.client(), v.clientCtx
}

func (v *Vc) pendingOps() bool {
	return v.makeCall.busy() || v.inCall.busy() || v.closeCall.busy() || v.qos.busy() || v.activate.busy() || v.deactivate.busy()
}

// CoCreateVc models NdisCoCreateVc. A client creates a VC for an outgoing
// call with its own AF handle; a stand-alone call manager creates one for an
// incoming call with the target client's AF handle, or a signalling VC with
// a nil AF (R-VC-3). The miniport's MiniportCoCreateVc and then the other
// protocol's ProtocolCoCreateVc run before it returns (R-VC-2); a failure of
// either is returned and the other is undone (spec §9.8). Never pends.
func (b *Binding) CoCreateVc(af *Af, vcCtx any) (*Vc, Status) {
	if b.invalid() {
		return nil, StatusFailure
	}
	m := b.m
	const fn = "NdisCoCreateVc"
	m.emit(EventRequest, b, fn, af, 0)
	if b.closed.Load() {
		return nil, m.reject(StatusFailure, "R-GEN-8", fn, b, b, "binding is closed")
	}
	if af != nil && (af.m != m || af.reg == nil) {
		return nil, m.reject(StatusFailure, "R-VC-4", fn, b, af, foreignHandle)
	}
	v := &Vc{adapter: b.adapter, af: af, life: lifeCreating, act: actInactive, call: callIdle}
	var peerAfCtx any
	switch {
	case af == nil && b.cm != nil:
		if b.adapter.mcm != nil {
			// The MCM does the call management of its NIC (R-AF-6) and keeps
			// its signalling internal (R-VC-12); it has no MiniportCoActivateVc.
			return nil, m.reject(StatusFailure, "R-AF-6", fn, b, af, "adapter %s is a miniport call manager; no signalling VC over it", b.adapter.name)
		}
		v.kind, v.cmB, v.cmCtx = vcSignaling, b, vcCtx
		// Listed under topo, so that an unbind either sees the VC or
		// refuses it (R-VC-14).
		m.topo.Lock()
		if b.closed.Load() {
			m.topo.Unlock()
			return nil, m.reject(StatusFailure, "R-GEN-8", fn, b, b, "binding is closed")
		}
		m.vcs.number(v)
		b.sigVcs.add(v)
		v.shard().listed[v.call].Add(1)
		m.topo.Unlock()
	case af == nil:
		return nil, m.reject(StatusFailure, "R-VC-3", fn, b, af, "a client creates VCs with its own AF handle")
	case af.client == b:
		af.mu.Lock()
		if rule, st, why := b.clientAfCheck(af); rule != "" {
			af.mu.Unlock()
			return nil, m.reject(st, rule, fn, b, af, "%s", why)
		}
		v.kind, v.clientCtx, v.cmB = vcOutgoing, vcCtx, af.reg.cmBinding // its client is b, af's
		peerAfCtx = af.cmCtx
		m.listAfVcLocked(v)
		af.mu.Unlock()
	case af.reg.cmBinding == b:
		af.mu.Lock()
		if st := af.getState(); st != afOpen && st != afNotifyClose {
			af.mu.Unlock()
			return nil, m.reject(StatusFailure, "R-VC-4", fn, b, af, "AF is %v", st)
		}
		v.kind, v.cmB, v.cmCtx = vcIncoming, b, vcCtx
		peerAfCtx = af.clientCtx
		m.listAfVcLocked(v)
		af.mu.Unlock()
	default:
		return nil, m.reject(StatusFailure, "R-VC-4", fn, b, af, "AF handle is neither this client's open nor an open of this call manager's AF")
	}
	return m.createVc(v, fn, b, peerAfCtx)
}

// listAfVcLocked numbers v and lists it on its AF open (v.af.mu held): the
// one lock the VC creations of one client share, held for a list insert.
// An AF close, which walks the list under that lock, sees every VC on the
// open (R-AF-12).
func (m *Mediator) listAfVcLocked(v *Vc) {
	m.vcs.number(v)
	v.af.vcList.add(v)
	v.shard().listed[v.call].Add(1) // no driver has the handle yet: its call cannot move
}

// MCmCreateVc models NdisMCmCreateVc: a miniport call manager creates a VC
// for an incoming call to the client owning af; the client's
// ProtocolCoCreateVc runs before it returns. Refused with StatusFailure for
// a bad AF handle (R-VC-4).
func (a *Adapter) MCmCreateVc(af *Af, mpVcCtx any) (*Vc, Status) {
	if a.invalid() {
		return nil, StatusFailure
	}
	m := a.m
	const fn = "NdisMCmCreateVc"
	m.emit(EventRequest, a, fn, af, 0)
	if a.mcm == nil {
		return nil, m.reject(StatusFailure, "R-GEN-9", fn, a, af, "only a miniport call manager may call NdisMCm functions")
	}
	if af == nil || af.m != m || af.reg == nil || af.reg.adapter != a || af.reg.cmBinding != nil {
		return nil, m.reject(StatusFailure, "R-VC-4", fn, a, af, "not an open of this MCM's address family")
	}
	af.mu.Lock()
	if st := af.getState(); st != afOpen && st != afNotifyClose {
		af.mu.Unlock()
		return nil, m.reject(StatusFailure, "R-VC-4", fn, a, af, "AF is %v", st)
	}
	v := &Vc{kind: vcIncomingMCM, adapter: a, af: af,
		cmCtx: mpVcCtx, mpCtx: mpVcCtx, life: lifeCreating, act: actInactive, call: callIdle}
	m.listAfVcLocked(v)
	af.mu.Unlock()
	return m.createVc(v, fn, a, af.clientCtx)
}

// createVc runs the create handlers for v, which is listed and CREATING;
// no lock is held. peerAfCtx is the AF context of the protocol told.
func (m *Mediator) createVc(v *Vc, fn string, who driver, peerAfCtx any) (*Vc, Status) {
	// What to call: the miniport (split topology), then the peer protocol.
	var mp Miniport
	if v.adapter.mcm == nil {
		mp = v.adapter.mp
	}
	var peer CoVcHandlers
	var peerName driver
	switch v.kind {
	case vcOutgoing:
		peer, peerName = v.af.reg.co(), v.af.reg.owner()
	case vcIncoming, vcIncomingMCM:
		peer, peerName = v.client().proto, v.client()
	}
	adapterCtx := v.adapter.ctx
	mpCtx, peerCtx := v.mpCtx, any(nil)

	if mp != nil {
		m.emit(EventUpcall, v.adapter, "MiniportCoCreateVc", v, 0)
		ctx, st := mp.MiniportCoCreateVc(adapterCtx, v)
		m.emit(EventHandled, v.adapter, "MiniportCoCreateVc", v, st)
		if st == StatusPending {
			m.warn("R-GEN-5", "MiniportCoCreateVc", v.adapter, v, "MiniportCoCreateVc returned PENDING; it must be synchronous")
			m.callMiniportDelete(v, mp, ctx)
			st = StatusFailure
		}
		if st != StatusSuccess {
			return nil, m.abandonVc(v, fn, who, st)
		}
		mpCtx = ctx
	}
	if peer != nil {
		m.emit(EventUpcall, peerName, "ProtocolCoCreateVc", v, 0)
		ctx, st := peer.ProtocolCoCreateVc(peerAfCtx, v)
		m.emit(EventHandled, peerName, "ProtocolCoCreateVc", v, st)
		if st == StatusPending {
			// R-GEN-6: the VC is unusable and NDIS has it deleted.
			m.warn("R-GEN-5", "ProtocolCoCreateVc", peerName, v, "ProtocolCoCreateVc returned PENDING; the VC is deleted (R-GEN-6)")
			m.emit(EventUpcall, peerName, "ProtocolCoDeleteVc", v, 0)
			peer.ProtocolCoDeleteVc(ctx)
			st = StatusFailure
		}
		if st != StatusSuccess {
			if mp != nil {
				m.callMiniportDelete(v, mp, mpCtx)
			}
			return nil, m.abandonVc(v, fn, who, st)
		}
		peerCtx = ctx
	}
	v.mu.Lock()
	v.mpCtx = mpCtx
	if peer != nil {
		if v.kind == vcOutgoing {
			v.cmCtx = peerCtx
			if v.adapter.mcm != nil {
				v.mpCtx = peerCtx // an MCM's VC context is also its miniport context (spec §2)
			}
		} else {
			v.clientCtx = peerCtx
		}
	}
	v.life = lifeCreated
	v.shard().created.Add(1) // before a deleter can count the VC deleted
	v.mu.Unlock()
	m.emit(EventReturn, who, fn, v, StatusSuccess)
	return v, StatusSuccess
}

func (m *Mediator) callMiniportDelete(v *Vc, mp Miniport, ctx any) {
	m.emit(EventUpcall, v.adapter, "MiniportCoDeleteVc", v, 0)
	st := mp.MiniportCoDeleteVc(ctx)
	m.emit(EventHandled, v.adapter, "MiniportCoDeleteVc", v, st)
	if st == StatusPending {
		m.warn("R-GEN-5", "MiniportCoDeleteVc", v.adapter, v, "MiniportCoDeleteVc returned PENDING; it must be synchronous")
	}
}

// abandonVc forgets a VC whose creation failed and returns st.
func (m *Mediator) abandonVc(v *Vc, fn string, who driver, st Status) Status {
	m.unlistVc(v, false)
	m.emit(EventReturn, who, fn, v, st)
	return st
}

// unlistVc marks v deleted, adds what it counted to the totals of the list
// it is on and takes it off that list: its AF open's (under the AF's lock),
// or for a signalling VC its call manager's binding's (under m.topo). Its
// instance name goes with it (R-VC-13). created says whether v had been
// created. No lock is held on entry.
func (m *Mediator) unlistVc(v *Vc, created bool) {
	var mu *sync.Mutex
	var list *vcList
	var totals *vcTotals
	if af := v.af; af != nil {
		mu, list, totals = &af.mu, &af.vcList, &af.totals
	} else {
		mu, list, totals = &m.topo, &v.cmB.sigVcs, &v.cmB.totals
	}
	mu.Lock()
	v.mu.Lock()
	v.shard().unlisted[v.call].Add(1)
	v.life = lifeDeleted // its call is counted no more (setCallLocked)
	v.dropParamsLocked()
	totals.add(v)
	if created {
		totals.deleted++
	}
	if m.named.Load() > 0 {
		m.namesMu.Lock()
		if _, ok := m.instanceNames[v]; ok {
			delete(m.instanceNames, v) // the name lives until the VC is deleted (R-VC-13)
			m.named.Add(-1)
		}
		m.namesMu.Unlock()
	}
	v.mu.Unlock()
	list.remove(v)
	mu.Unlock()
}

// checkVcHandle returns a rule and reason if v is not a handle of m: nil,
// or not made by this mediator (forged, or another node's). It reads only
// what is fixed in a VC, so it takes no lock.
func (m *Mediator) checkVcHandle(v *Vc) (string, string) {
	switch {
	case v == nil:
		return "R-GEN-8", "nil VC handle"
	case v.adapter == nil || v.adapter.m != m:
		return "R-GEN-8", foreignHandle
	}
	return "", ""
}

// lockLiveVc checks that v is a usable handle (checkVcHandle, and not dead)
// and, if so, returns with v.mu held. On a refusal it returns the rule and
// reason with no lock held.
func (m *Mediator) lockLiveVc(v *Vc) (string, string) {
	if rule, why := m.checkVcHandle(v); rule != "" {
		return rule, why
	}
	v.mu.Lock()
	switch {
	case v.life == lifeDeleted:
		v.mu.Unlock()
		return "R-VC-9", "VC handle is dead (the VC was deleted)"
	case v.life != lifeCreated:
		life := v.life
		v.mu.Unlock()
		return "R-VC-9", "VC is " + life.String()
	}
	return "", ""
}

// CoDeleteVc models NdisCoDeleteVc. Only the creator may delete (R-VC-5,
// StatusFailure). The VC must be inactive with no call outstanding:
// StatusNotAccepted while active or with a call or operation outstanding,
// StatusClosing while its deactivation is pending (R-VC-6). The other
// protocol's ProtocolCoDeleteVc and then MiniportCoDeleteVc run (R-VC-8);
// the handle is dead when it returns (R-VC-9). Never pends.
func (b *Binding) CoDeleteVc(vc *Vc) Status {
	if b.invalid() {
		return StatusFailure
	}
	return b.m.deleteVc(b, "NdisCoDeleteVc", vc)
}

// MCmDeleteVc models NdisMCmDeleteVc: a miniport call manager deletes a VC it
// created; StatusNotAccepted while it is still active (R-VC-7). Only the
// client's ProtocolCoDeleteVc runs (R-VC-8).
func (a *Adapter) MCmDeleteVc(vc *Vc) Status {
	if a.invalid() {
		return StatusFailure
	}
	if a.mcm == nil {
		a.m.emit(EventRequest, a, "NdisMCmDeleteVc", vc, 0)
		return a.m.reject(StatusFailure, "R-GEN-9", "NdisMCmDeleteVc", a, vc, "only a miniport call manager may call NdisMCm functions")
	}
	return a.m.deleteVc(a, "NdisMCmDeleteVc", vc)
}

func (m *Mediator) deleteVc(who driver, fn string, v *Vc) Status {
	m.emit(EventRequest, who, fn, v, 0)
	if rule, why := m.lockLiveVc(v); rule != "" {
		return m.reject(StatusFailure, rule, fn, who, v, "%s", why)
	}
	if v.creator() != who {
		v.mu.Unlock()
		return m.reject(StatusFailure, "R-VC-5", fn, who, v, "only the creator (%s) may delete the VC", nameOf(v.creator()))
	}
	mcm := v.kind == vcIncomingMCM
	if e := m.closeSettlingLocked(v); e != nil {
		// The call manager completed the close while the client's
		// NdisClCloseCall was still in ProtocolCmCloseCall: the close is
		// finished when that handler returns, which the creator cannot
		// observe. The deletion it asked for after its completion is
		// carried out then, after the client's close completion
		// (R-CLOSE-12); the handle is dead from now on (R-VC-9).
		e.deleteBy, e.deleteFn = who, fn
		v.life = lifeDeleting
		v.mu.Unlock()
		m.emit(EventReturn, who, fn, v, StatusSuccess)
		return StatusSuccess
	}
	var st Status
	var rule, why string
	switch {
	case v.act == actDeactivating && !mcm:
		st, rule, why = StatusClosing, "R-VC-6", "deactivation is still pending"
	case v.act != actInactive:
		rule = "R-VC-6"
		if mcm {
			rule = "R-VC-7"
		}
		st, why = StatusNotAccepted, "VC is "+v.act.String()+"; deactivate it first"
	case v.call != callIdle && v.call != callClosed:
		st, rule, why = StatusNotAccepted, "R-VC-6", "a call is outstanding ("+v.call.String()+")"
	case v.pendingOps():
		st, rule, why = StatusNotAccepted, "R-VC-6", "an operation on the VC is still pending"
	case v.dataOut():
		sends, recvs := v.outstanding()
		st, rule, why = StatusNotAccepted, "R-VC-6", fmt.Sprintf("%d send(s) and %d receive(s) still outstanding", sends, recvs)
	}
	if rule != "" {
		v.mu.Unlock()
		return m.reject(st, rule, fn, who, v, "%s", why)
	}
	v.life = lifeDeleting
	v.mu.Unlock()
	st = m.carryOutDelete(who, v)
	m.emit(EventReturn, who, fn, v, st)
	return st
}

// closeSettlingLocked returns the parked completion of v's close when only
// that close stands in the way of deleting v: the call manager completed it
// with SUCCESS while ProtocolCmCloseCall was still running, and nothing
// else is outstanding. Caller holds v.mu.
func (m *Mediator) closeSettlingLocked(v *Vc) *earlyCompletion {
	if v.call != callClosing || v.closeCall.state != opEarly || v.act != actInactive {
		return nil
	}
	e := m.earlyOf(&v.closeCall)
	if e == nil || e.st != StatusSuccess || e.deleteBy != nil {
		return nil
	}
	if v.makeCall.busy() || v.inCall.busy() || v.qos.busy() || v.activate.busy() || v.deactivate.busy() || v.dataOut() {
		return nil
	}
	return e
}

// finishDeferredDelete carries out a deletion closeSettlingLocked let wait
// for v's close to settle with final. A close that did not end with
// SUCCESS after all (a handler that returned a failure besides completing,
// R-GEN-2) leaves a call on the VC, so the deletion is refused then.
func (m *Mediator) finishDeferredDelete(e *earlyCompletion, v *Vc, final Status) {
	v.mu.Lock()
	if final != StatusSuccess || v.call != callClosed {
		v.life = lifeCreated
		v.mu.Unlock()
		m.warn("R-VC-6", e.deleteFn, e.deleteBy, v, "the deletion waited for the close, which ended with %v; the VC is kept", final)
		return
	}
	v.mu.Unlock()
	m.carryOutDelete(e.deleteBy, v)
}

// carryOutDelete deletes v, whose deletion by who passed every check
// (v.life is lifeDeleting, so no request touches it meanwhile): the other
// protocol's ProtocolCoDeleteVc, then the miniport's MiniportCoDeleteVc
// (R-VC-8). No lock is held on entry.
func (m *Mediator) carryOutDelete(who driver, v *Vc) Status {
	// The contexts are fixed once the VC is created.
	var peer CoVcHandlers
	var peerCtx any
	var peerName driver
	switch v.kind {
	case vcOutgoing:
		peer, peerCtx, peerName = v.cmCo(), v.cmCtx, v.cmOwner()
	case vcIncoming, vcIncomingMCM:
		peer, peerCtx, peerName = v.client().proto, v.clientCtx, v.client()
	}
	mpCtx := v.mpCtx
	var mp Miniport
	if v.adapter.mcm == nil {
		mp = v.adapter.mp
	}

	if peer != nil {
		m.emit(EventUpcall, peerName, "ProtocolCoDeleteVc", v, 0)
		st := peer.ProtocolCoDeleteVc(peerCtx)
		m.emit(EventHandled, peerName, "ProtocolCoDeleteVc", v, st)
		if st != StatusSuccess {
			rule := "R-VC-10"
			if st == StatusPending {
				rule = "R-GEN-5"
			}
			v.mu.Lock()
			v.life = lifeCreated
			v.mu.Unlock()
			return m.reject(StatusNotAccepted, rule, "ProtocolCoDeleteVc", peerName, v, "%s refused the deletion with %v; the VC is kept (spec §9.7)", nameOf(peerName), st)
		}
	}
	if mp != nil {
		m.callMiniportDelete(v, mp, mpCtx)
	}
	m.unlistVc(v, true)
	return StatusSuccess
}

// CmActivateVc models NdisCmActivateVc: the stand-alone call manager asks
// the miniport to activate (or re-activate) a VC with params, which must stay
// valid until the activation completes (R-ACT-13). Only the VC's call
// manager may activate it (R-ACT-2). A second activation or deactivation
// while one is pending is refused with StatusFailure (R-ACT-4, R-ACT-10).
// PENDING means ProtocolCmActivateVcComplete follows.
func (b *Binding) CmActivateVc(vc *Vc, params *CallParameters) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisCmActivateVc"
	m.emit(EventRequest, b, fn, vc, 0)
	if rule, why := m.lockLiveVc(vc); rule != "" {
		return m.reject(StatusFailure, rule, fn, b, vc, "%s", why)
	}
	if vc.cmB != b {
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-ACT-2", fn, b, vc, "only the VC's call manager activates it")
	}
	if params == nil {
		vc.mu.Unlock()
		return m.reject(StatusInvalidData, "R-ACT-13", fn, b, vc, "nil call parameters")
	}
	switch vc.act {
	case actInactive:
		vc.act = actActivating
	case actActive:
		vc.act = actReactivating
	default:
		act := vc.act
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-ACT-4", fn, b, vc, "VC is %v; one activation or deactivation at a time", act)
	}
	vc.activate.state = opUpcall
	mp, mpCtx := vc.adapter.mp, vc.mpCtx
	vc.mu.Unlock()

	m.emit(EventUpcall, vc.adapter, "MiniportCoActivateVc", vc, 0)
	st := mp.MiniportCoActivateVc(mpCtx, params)
	m.emit(EventHandled, vc.adapter, "MiniportCoActivateVc", vc, st)

	vc.mu.Lock()
	final, _, fparams, finish, deliver := vc.activate.settle(m, st, nil, params, "MiniportCoActivateVc", vc.adapter, vc)
	if !finish {
		vc.mu.Unlock()
		m.emit(EventReturn, b, fn, vc, StatusPending)
		return StatusPending
	}
	finishActivateLocked(vc, final, fparams)
	vc.mu.Unlock()
	if deliver {
		m.emit(EventUpcall, b, "ProtocolCmActivateVcComplete", vc, final)
		b.cm.ProtocolCmActivateVcComplete(final, vc.cmCtx, fparams)
		final = StatusPending
	}
	m.emit(EventReturn, b, fn, vc, final)
	return final
}

// finishActivateLocked applies an activation outcome: a failed re-activation
// keeps the VC active with its old parameters (R-ACT-4).
func finishActivateLocked(v *Vc, st Status, params *CallParameters) {
	if st == StatusSuccess {
		v.act = actActive
		v.keepParamsLocked(params)
		return
	}
	if v.act == actReactivating {
		v.act = actActive
		return
	}
	v.act, v.leftActive = actInactive, false // no activation period was opened
}

// activationParams is the mediator's own copy of a VC's activation
// parameters. The call manager's buffer is lent only for the duration of the
// activation (R-ACT-13): it may reuse it for the next one, which may fail and
// must leave the VC with its previous parameters (R-ACT-4). It is kept
// flattened, with the specific-parameter blobs in inline storage for the
// usual small ones, so that the copy is allocation-free and small; Snapshot
// rebuilds the CallParameters from it (get).
type activationParams struct {
	cmTx, cmRx   Flowspec
	flags        CallFlags
	cmType       uint32 // CallMgrSpecific.ParamType
	mediaFlags   MediaFlags
	recvPriority uint32
	recvSizeHint uint32
	mediaType    uint32 // MediaSpecific.ParamType
	cmLen        uint32 // blobs[:cmLen] is CallMgrSpecific, the rest MediaSpecific
	hasCM        bool   // CallMgrParameters were given
	hasMedia     bool   // MediaParameters were given
	blobs        []byte // both blobs, in buf when they fit
	buf          [32]byte
}

// setCallLocked moves v's call to state c (v.mu held), and the count of
// listed VCs by call state with it (CallStates); a deleted VC is no longer
// counted.
func (v *Vc) setCallLocked(c callState) {
	if v.life != lifeDeleted {
		v.shard().moves[v.call][c].Add(1)
	}
	v.call = c
}

// keepParamsLocked records a copy of p as the VC's activation parameters.
func (v *Vc) keepParamsLocked(p *CallParameters) {
	if p == nil {
		v.dropParamsLocked()
		return
	}
	if v.params == nil {
		v.params = paramsPool.Get().(*activationParams)
	}
	c := v.params
	*c = activationParams{flags: p.Flags, blobs: c.buf[:0]}
	var cmBlob, mediaBlob []byte
	if cm := p.CallMgrParameters; cm != nil {
		c.hasCM, c.cmTx, c.cmRx, c.cmType = true, cm.Transmit, cm.Receive, cm.CallMgrSpecific.ParamType
		cmBlob = cm.CallMgrSpecific.Parameters
	}
	if mp := p.MediaParameters; mp != nil {
		c.hasMedia, c.mediaFlags, c.recvPriority, c.recvSizeHint, c.mediaType = true, mp.Flags, mp.ReceivePriority, mp.ReceiveSizeHint, mp.MediaSpecific.ParamType
		mediaBlob = mp.MediaSpecific.Parameters
	}
	c.cmLen = uint32(len(cmBlob))
	if n := len(cmBlob) + len(mediaBlob); n > len(c.buf) {
		c.blobs = make([]byte, 0, n)
	}
	c.blobs = append(append(c.blobs, cmBlob...), mediaBlob...)
}

// get returns a fresh deep copy of the kept parameters, as
// CallParameters.Clone of the original would, or nil if there are none
// (c is nil: the VC is inactive).
func (c *activationParams) get() *CallParameters {
	if c == nil {
		return nil
	}
	p := &CallParameters{Flags: c.flags}
	if c.hasCM {
		p.CallMgrParameters = &CallManagerParameters{Transmit: c.cmTx, Receive: c.cmRx,
			CallMgrSpecific: SpecificParameters{ParamType: c.cmType, Parameters: append([]byte(nil), c.blobs[:c.cmLen]...)}}
	}
	if c.hasMedia {
		p.MediaParameters = &MediaParameters{Flags: c.mediaFlags, ReceivePriority: c.recvPriority, ReceiveSizeHint: c.recvSizeHint,
			MediaSpecific: SpecificParameters{ParamType: c.mediaType, Parameters: append([]byte(nil), c.blobs[c.cmLen:]...)}}
	}
	return p
}

// MCoActivateVcComplete models NdisMCoActivateVcComplete: the miniport
// finishes a pended MiniportCoActivateVc, possibly with rounded parameters.
func (a *Adapter) MCoActivateVcComplete(status Status, vc *Vc, params *CallParameters) Status {
	if a.invalid() {
		return StatusFailure
	}
	m := a.m
	const fn = "NdisMCoActivateVcComplete"
	if ret, ok := m.startCompletion(a, fn, vc, status); !ok {
		return ret
	}
	if a.mp == nil {
		return m.reject(StatusFailure, "R-REG-5", fn, a, vc, "a miniport call manager activates with NdisMCmActivateVc; there is nothing to complete")
	}
	if vc == nil || vc.adapter != a {
		return m.reject(StatusFailure, "R-GEN-8", fn, a, vc, "not a VC on this adapter")
	}
	vc.mu.Lock()
	switch m.takeCompletionLocked(&vc.activate, status, nil, params) {
	case completeNone:
		vc.mu.Unlock()
		return m.refuseDoubleCompletion(fn, a, vc, "MiniportCoActivateVc")
	case completeParked:
		vc.mu.Unlock()
		return StatusSuccess
	}
	finishActivateLocked(vc, status, params)
	cmB := vc.cmB
	vc.mu.Unlock()
	m.emit(EventUpcall, cmB, "ProtocolCmActivateVcComplete", vc, status)
	cmB.cm.ProtocolCmActivateVcComplete(status, vc.cmCtx, params)
	return StatusSuccess
}

// CmDeactivateVc models NdisCmDeactivateVc: the miniport drains and stops
// the VC. Only an active VC can be deactivated, once per activation period
// (R-ACT-10, StatusFailure otherwise). PENDING means
// ProtocolCmDeactivateVcComplete follows.
func (b *Binding) CmDeactivateVc(vc *Vc) Status {
	if b.invalid() {
		return StatusFailure
	}
	m := b.m
	const fn = "NdisCmDeactivateVc"
	m.emit(EventRequest, b, fn, vc, 0)
	if rule, why := m.lockLiveVc(vc); rule != "" {
		return m.reject(StatusFailure, rule, fn, b, vc, "%s", why)
	}
	if vc.cmB != b {
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-ACT-2", fn, b, vc, "only the VC's call manager deactivates it")
	}
	if vc.act != actActive {
		act := vc.act
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-ACT-10", fn, b, vc, "VC is %v; only an active VC can be deactivated", act)
	}
	vc.act = actDeactivating
	vc.deactivate.state = opUpcall
	mp, mpCtx := vc.adapter.mp, vc.mpCtx
	vc.mu.Unlock()

	m.emit(EventUpcall, vc.adapter, "MiniportCoDeactivateVc", vc, 0)
	st := mp.MiniportCoDeactivateVc(mpCtx)
	m.emit(EventHandled, vc.adapter, "MiniportCoDeactivateVc", vc, st)

	vc.mu.Lock()
	final, _, _, finish, deliver := vc.deactivate.settle(m, st, nil, nil, "MiniportCoDeactivateVc", vc.adapter, vc)
	if !finish {
		vc.mu.Unlock()
		m.emit(EventReturn, b, fn, vc, StatusPending)
		return StatusPending
	}
	m.finishDeactivateLocked(vc, final, vc.adapter)
	vc.mu.Unlock()
	if deliver {
		m.emit(EventUpcall, b, "ProtocolCmDeactivateVcComplete", vc, final)
		b.cm.ProtocolCmDeactivateVcComplete(final, vc.cmCtx)
		final = StatusPending
	}
	m.emit(EventReturn, b, fn, vc, final)
	return final
}

// finishDeactivateLocked applies a deactivation outcome. Completing a
// deactivation with data still in the miniport breaks R-ACT-7.
func (m *Mediator) finishDeactivateLocked(v *Vc, st Status, mp driver) {
	if st != StatusSuccess {
		v.act = actActive
		return
	}
	if sends, recvs := v.outstanding(); sends > 0 || recvs > 0 {
		m.warn("R-ACT-7", "deactivation", mp, v, "deactivated with %d send(s) not completed and %d receive(s) not returned", sends, recvs)
	}
	v.act = actInactive
	v.dropParamsLocked() // R-ACT-8: the activation parameters are gone
	v.leftActive = false // the activation a closed call left open has ended (R-CLOSE-8)
}

// MCoDeactivateVcComplete models NdisMCoDeactivateVcComplete.
func (a *Adapter) MCoDeactivateVcComplete(status Status, vc *Vc) Status {
	if a.invalid() {
		return StatusFailure
	}
	m := a.m
	const fn = "NdisMCoDeactivateVcComplete"
	if ret, ok := m.startCompletion(a, fn, vc, status); !ok {
		return ret
	}
	if a.mp == nil {
		return m.reject(StatusFailure, "R-REG-5", fn, a, vc, "a miniport call manager deactivates with NdisMCmDeactivateVc; there is nothing to complete")
	}
	if vc == nil || vc.adapter != a {
		return m.reject(StatusFailure, "R-GEN-8", fn, a, vc, "not a VC on this adapter")
	}
	vc.mu.Lock()
	switch m.takeCompletionLocked(&vc.deactivate, status, nil, nil) {
	case completeNone:
		vc.mu.Unlock()
		return m.refuseDoubleCompletion(fn, a, vc, "MiniportCoDeactivateVc")
	case completeParked:
		vc.mu.Unlock()
		return StatusSuccess
	}
	m.finishDeactivateLocked(vc, status, a)
	cmB := vc.cmB
	vc.mu.Unlock()
	m.emit(EventUpcall, cmB, "ProtocolCmDeactivateVcComplete", vc, status)
	cmB.cm.ProtocolCmDeactivateVcComplete(status, vc.cmCtx)
	return StatusSuccess
}

// MCmActivateVc models NdisMCmActivateVc: a miniport call manager tells the
// mediator it has made the VC ready for transfers with params (a first
// activation or a parameter change, R-ACT-12). Synchronous; the MCM's
// ProtocolCmActivateVcComplete is never called (R-REG-5, spec §9.3).
func (a *Adapter) MCmActivateVc(vc *Vc, params *CallParameters) Status {
	if a.invalid() {
		return StatusFailure
	}
	m := a.m
	const fn = "NdisMCmActivateVc"
	m.emit(EventRequest, a, fn, vc, 0)
	if a.mcm == nil {
		return m.reject(StatusFailure, "R-GEN-9", fn, a, vc, "only a miniport call manager may call NdisMCm functions")
	}
	if rule, why := m.lockLiveVc(vc); rule != "" {
		return m.reject(StatusFailure, rule, fn, a, vc, "%s", why)
	}
	if vc.adapter != a {
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-ACT-2", fn, a, vc, "VC belongs to another adapter")
	}
	if params == nil {
		vc.mu.Unlock()
		return m.reject(StatusInvalidData, "R-ACT-13", fn, a, vc, "nil call parameters")
	}
	vc.act = actActive
	vc.keepParamsLocked(params)
	vc.mu.Unlock()
	m.emit(EventReturn, a, fn, vc, StatusSuccess)
	return StatusSuccess
}

// MCmDeactivateVc models NdisMCmDeactivateVc: synchronous; StatusNotAccepted
// if the VC is already inactive (R-ACT-11).
func (a *Adapter) MCmDeactivateVc(vc *Vc) Status {
	if a.invalid() {
		return StatusFailure
	}
	m := a.m
	const fn = "NdisMCmDeactivateVc"
	m.emit(EventRequest, a, fn, vc, 0)
	if a.mcm == nil {
		return m.reject(StatusFailure, "R-GEN-9", fn, a, vc, "only a miniport call manager may call NdisMCm functions")
	}
	if rule, why := m.lockLiveVc(vc); rule != "" {
		return m.reject(StatusFailure, rule, fn, a, vc, "%s", why)
	}
	if vc.adapter != a {
		vc.mu.Unlock()
		return m.reject(StatusFailure, "R-ACT-2", fn, a, vc, "VC belongs to another adapter")
	}
	if vc.act != actActive {
		vc.mu.Unlock()
		return m.reject(StatusNotAccepted, "R-ACT-11", fn, a, vc, "VC is already inactive")
	}
	m.finishDeactivateLocked(vc, StatusSuccess, a)
	vc.mu.Unlock()
	m.emit(EventReturn, a, fn, vc, StatusSuccess)
	return StatusSuccess
}

// paramsPool holds activation parameter records between activations. A
// VC's record is half its size, and a call activates both of its VCs: taking
// it from a pool rather than embedding it halves what a call leaves for the
// collector (docs/performance.md, "The mediator on more cores").
var paramsPool = sync.Pool{New: func() any { return new(activationParams) }}

// dropParamsLocked returns v's activation parameters to the pool (v.mu
// held): its activation has ended, or it is deleted.
func (v *Vc) dropParamsLocked() {
	if c := v.params; c != nil {
		v.params = nil
		*c = activationParams{}
		paramsPool.Put(c)
	}
}
