package memdrv

import (
	"sync"

	"github.com/condis-project/condis/ndis"
)

// MCM is an in-memory miniport call manager: one adapter with integrated
// call management for the Q.2931 address family (the integrated topology).
type MCM struct {
	*core
	adapter *ndis.Adapter

	mu    sync.Mutex
	rxOut int // receive lists indicated and not yet returned
}

// NewMCM attaches a new miniport call manager called name to m and
// registers its address family from its initialize function.
func NewMCM(m *ndis.Mediator, name string, fab *Fabric) (*MCM, ndis.Status) {
	d := &MCM{core: newCore(name, fab)}
	d.core.ops = &mcmOps{d: d}
	d.core.rx = d.rx
	a, st := m.AddMiniportCallManager(name, d, d, func(a *ndis.Adapter) ndis.Status {
		d.adapter = a
		return a.MCmRegisterAddressFamilyEx(AF)
	})
	if st != ndis.StatusSuccess {
		return nil, st
	}
	d.adapter = a
	return d, st
}

// Adapter returns the MCM's adapter handle.
func (d *MCM) Adapter() *ndis.Adapter { return d.adapter }

// SetMode sets how the MCM answers pendable requests.
func (d *MCM) SetMode(m Mode) { d.core.mode.set(m) }

// SetMaxTokenRate makes the MCM refuse calls and QoS changes asking for more
// than rate bytes/s (0: no limit).
func (d *MCM) SetMaxTokenRate(rate uint32) { d.core.maxTokenRate.Store(rate) }

// LinkDown simulates losing the network: every call is cleared with status
// at both ends (spec §4.13).
func (d *MCM) LinkDown(status ndis.Status) { d.core.linkDown(status) }

// NotifyCloseAll withdraws the address family from every client
// (NdisMCmNotifyCloseAddressFamily for each open, spec §4.14) and returns the
// status of each notification.
func (d *MCM) NotifyCloseAll() []ndis.Status {
	d.core.lock()
	afs := make([]*cmAf, len(d.core.afs))
	copy(afs, d.core.afs)
	d.core.unlock()
	var out []ndis.Status
	for _, a := range afs {
		out = append(out, d.adapter.MCmNotifyCloseAddressFamily(a.h))
	}
	return out
}

// NotifyCompleted returns the ProtocolCmNotifyCloseAfComplete status
// delivered for af, if any.
func (d *MCM) NotifyCompleted(af *ndis.Af) (ndis.Status, bool) {
	d.core.lock()
	defer d.core.unlock()
	st, ok := d.core.notified[af]
	return st, ok
}

// OutstandingReceives is the number of indicated receive lists not returned.
func (d *MCM) OutstandingReceives() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rxOut
}

// MiniportCoSendNetBufferLists switches each list to the far end(s) and
// completes it (R-DATA-5): at once, or from the Loop in Pend mode.
func (d *MCM) MiniportCoSendNetBufferLists(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendFlags) {
	v := vcCtx.(*cmVc)
	for n := nbls; n != nil; n = n.Next {
		d.fab.switchFrom(&v.port, n.Data)
		n.Status = ndis.StatusSuccess
	}
	if d.getMode() == Immediate {
		d.adapter.MCoSendNetBufferListsComplete(v.h, nbls, 0)
		return
	}
	d.fab.Post(func() { d.adapter.MCoSendNetBufferListsComplete(v.h, nbls, 0) })
}

// MiniportCoOidRequest answers adapter-wide OIDs of the miniport half.
func (d *MCM) MiniportCoOidRequest(adapterCtx, vcCtx any, req *ndis.OidRequest) ndis.Status {
	return miniportOid(&d.fab.Loop, d.getMode(), req, func(st ndis.Status) {
		var vc *ndis.Vc
		if v, ok := vcCtx.(*cmVc); ok {
			vc = v.h
		}
		d.adapter.MCoOidRequestComplete(vc, req, st)
	})
}

// MiniportReturnNetBufferLists takes back indicated lists.
func (d *MCM) MiniportReturnNetBufferLists(adapterCtx any, nbls *ndis.NetBufferList, flags ndis.ReturnFlags) {
	n := nbls.Len()
	d.mu.Lock()
	d.rxOut -= n
	d.mu.Unlock()
}

// rx indicates a cell switched to one of the MCM's VCs, h.
func (d *MCM) rx(h *ndis.Vc, data []byte) {
	nbl := &ndis.NetBufferList{Data: append([]byte(nil), data...)}
	d.mu.Lock()
	d.rxOut++
	d.mu.Unlock()
	d.adapter.MCoIndicateReceiveNetBufferLists(h, nbl, 1, 0)
}

type mcmOps struct{ d *MCM }

func (o *mcmOps) createVc(af *ndis.Af, ctx any) (*ndis.Vc, ndis.Status) {
	return o.d.adapter.MCmCreateVc(af, ctx)
}
func (o *mcmOps) deleteVc(vc *ndis.Vc) ndis.Status { return o.d.adapter.MCmDeleteVc(vc) }
func (o *mcmOps) activate(v *cmVc, p *ndis.CallParameters, then step) {
	st := o.d.adapter.MCmActivateVc(v.h, p)
	o.d.lock()
	if st == ndis.StatusSuccess {
		v.port.end = v
		v.active = true
	}
	o.d.resumeLocked(then, st)
}
func (o *mcmOps) deactivating(v *cmVc, then step) { o.d.fab.detachLocked(&v.port) }
func (o *mcmOps) deactivate(v *cmVc, then step) {
	then.resume(o.d.adapter.MCmDeactivateVc(v.h))
}
func (o *mcmOps) openAfComplete(st ndis.Status, af *ndis.Af, ctx any) {
	o.d.adapter.MCmOpenAddressFamilyComplete(st, af, ctx)
}
func (o *mcmOps) closeAfComplete(st ndis.Status, af *ndis.Af) {
	o.d.adapter.MCmCloseAddressFamilyComplete(st, af)
}
func (o *mcmOps) notifyCloseAf(af *ndis.Af) ndis.Status {
	return o.d.adapter.MCmNotifyCloseAddressFamily(af)
}
func (o *mcmOps) registerSapComplete(st ndis.Status, sap *ndis.Sap, ctx any) {
	o.d.adapter.MCmRegisterSapComplete(st, sap, ctx)
}
func (o *mcmOps) deregisterSapComplete(st ndis.Status, sap *ndis.Sap) {
	o.d.adapter.MCmDeregisterSapComplete(st, sap)
}
func (o *mcmOps) makeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party, pctx any, p *ndis.CallParameters) {
	o.d.adapter.MCmMakeCallComplete(st, vc, party, pctx, p)
}
func (o *mcmOps) closeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party) {
	o.d.adapter.MCmCloseCallComplete(st, vc, party)
}
func (o *mcmOps) addPartyComplete(st ndis.Status, party *ndis.Party, ctx any, p *ndis.CallParameters) {
	o.d.adapter.MCmAddPartyComplete(st, party, ctx, p)
}
func (o *mcmOps) dropPartyComplete(st ndis.Status, party *ndis.Party) {
	o.d.adapter.MCmDropPartyComplete(st, party)
}
func (o *mcmOps) modifyQoSComplete(st ndis.Status, vc *ndis.Vc, p *ndis.CallParameters) {
	o.d.adapter.MCmModifyCallQoSComplete(st, vc, p)
}
func (o *mcmOps) dispatchIncomingCall(sap *ndis.Sap, vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return o.d.adapter.MCmDispatchIncomingCall(sap, vc, p)
}
func (o *mcmOps) dispatchCallConnected(vc *ndis.Vc) ndis.Status {
	return o.d.adapter.MCmDispatchCallConnected(vc)
}
func (o *mcmOps) dispatchIncomingCloseCall(st ndis.Status, vc *ndis.Vc, data []byte) ndis.Status {
	return o.d.adapter.MCmDispatchIncomingCloseCall(st, vc, data)
}
func (o *mcmOps) dispatchIncomingDropParty(st ndis.Status, party *ndis.Party, data []byte) ndis.Status {
	return o.d.adapter.MCmDispatchIncomingDropParty(st, party, data)
}
func (o *mcmOps) dispatchQoSChange(vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return o.d.adapter.MCmDispatchIncomingCallQoSChange(vc, p)
}
func (o *mcmOps) oidRequestComplete(af *ndis.Af, vc *ndis.Vc, party *ndis.Party, req *ndis.OidRequest, st ndis.Status) {
	o.d.adapter.MCmOidRequestComplete(af, vc, party, req, st)
}
