package memdrv

import (
	"sync"

	"github.com/condis-project/condis/ndis"
)

// CM is an in-memory stand-alone call manager: a protocol bound to a CoNDIS
// miniport, registering the Q.2931 address family on its binding and keeping
// a signalling VC of its own (the split topology).
type CM struct {
	*core
	binding *ndis.Binding
	sig     *cmVc

	mu         sync.Mutex
	sigRx      int
	statusSeen []ndis.Status
}

// NewCM binds a new stand-alone call manager called name to the miniport
// adapter a. In its bind function it registers the address family and
// creates and activates its signalling VC (a VC with no AF, spec §2.1).
func NewCM(m *ndis.Mediator, name string, a *ndis.Adapter, fab *Fabric) (*CM, ndis.Status) {
	d := &CM{core: newCore(name, fab)}
	d.core.ops = &cmOps{d: d}
	_, st := m.BindAdapter(a, name, d, d, func(b *ndis.Binding) ndis.Status {
		d.binding = b
		if st := b.CmRegisterAddressFamilyEx(AF); st != ndis.StatusSuccess {
			return st
		}
		sv := &cmVc{c: d.core}
		fab.mu.Lock()
		fab.ownPortLocked(&sv.port)
		fab.mu.Unlock()
		h, st := b.CoCreateVc(nil, sv)
		if st != ndis.StatusSuccess {
			return st
		}
		sv.h = h
		d.sig = sv
		d.core.activate(sv, sv.activationParams(&ndis.CallParameters{}), stepFunc(func(ndis.Status) {}))
		return ndis.StatusSuccess
	})
	if st != ndis.StatusSuccess {
		return nil, st
	}
	return d, st
}

// Binding returns the CM's binding handle.
func (d *CM) Binding() *ndis.Binding { return d.binding }

// SignalingVc returns the CM's signalling VC.
func (d *CM) SignalingVc() *ndis.Vc { return d.sig.h }

// SetMode sets how the CM answers pendable requests.
func (d *CM) SetMode(m Mode) { d.core.mode.set(m) }

// SetMaxTokenRate makes the CM refuse calls and QoS changes asking for more
// than rate bytes/s (0: no limit).
func (d *CM) SetMaxTokenRate(rate uint32) { d.core.maxTokenRate.Store(rate) }

// NotifyCloseAll withdraws the address family from every client
// (NdisCmNotifyCloseAddressFamily for each open, spec §4.14).
func (d *CM) NotifyCloseAll() []ndis.Status {
	d.core.lock()
	afs := make([]*cmAf, len(d.core.afs))
	copy(afs, d.core.afs)
	d.core.unlock()
	var out []ndis.Status
	for _, a := range afs {
		out = append(out, d.binding.CmNotifyCloseAddressFamily(a.h))
	}
	return out
}

// NotifyCompleted returns the ProtocolCmNotifyCloseAfComplete status
// delivered for af, if any.
func (d *CM) NotifyCompleted(af *ndis.Af) (ndis.Status, bool) {
	d.core.lock()
	defer d.core.unlock()
	st, ok := d.core.notified[af]
	return st, ok
}

// Unbind tears down the signalling VC and closes the binding
// (NdisCloseAdapterEx). Every open of the AF must have been closed first
// (R-AF-18). Deactivation may pend in the miniport; run the Loop and call
// Unbind again until it returns something other than StatusPending.
func (d *CM) Unbind() ndis.Status {
	if d.sig != nil {
		sv := d.sig
		d.core.lock()
		busy, active := sv.onDeact != nil, sv.active
		d.core.unlock()
		if busy {
			return ndis.StatusPending
		}
		if active {
			pending := true
			d.core.deactivate(sv, stepFunc(func(ndis.Status) { pending = false }))
			if pending {
				return ndis.StatusPending
			}
		}
		if st := d.binding.CoDeleteVc(sv.h); st != ndis.StatusSuccess {
			return st
		}
		d.core.forget(sv)
		d.sig = nil
	}
	return d.binding.CloseAdapterEx()
}

// ProtocolCoAfRegisterNotify is a stand-alone CM's stub (R-REG-8).
func (d *CM) ProtocolCoAfRegisterNotify(bindingCtx any, af ndis.AddressFamily) {}

// ProtocolCoReceiveNetBufferLists takes signalling-VC receives.
func (d *CM) ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *ndis.NetBufferList, count int, flags ndis.ReceiveFlags) {
	d.mu.Lock()
	d.sigRx += nbls.Len()
	d.mu.Unlock()
	if flags&ndis.ReceiveFlagsResources == 0 {
		d.binding.ReturnNetBufferLists(nbls, 0)
	}
}

// ProtocolCoSendNetBufferListsComplete takes back signalling-VC sends.
func (d *CM) ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendCompleteFlags) {
}

// ProtocolCoStatusEx reacts to a lost medium by clearing every call with
// NDIS_STATUS_DEST_OUT_OF_ORDER (spec §4.13).
func (d *CM) ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *ndis.StatusIndication) {
	d.mu.Lock()
	d.statusSeen = append(d.statusSeen, ind.StatusCode)
	d.mu.Unlock()
	if vcCtx == nil && ind.StatusCode == ndis.StatusMediaDisconnect {
		d.core.linkDown(ndis.StatusDestOutOfOrder)
	}
}

type cmOps struct{ d *CM }

func (o *cmOps) createVc(af *ndis.Af, ctx any) (*ndis.Vc, ndis.Status) {
	return o.d.binding.CoCreateVc(af, ctx)
}
func (o *cmOps) deleteVc(vc *ndis.Vc) ndis.Status { return o.d.binding.CoDeleteVc(vc) }
func (o *cmOps) activate(v *cmVc, p *ndis.CallParameters, then step) {
	v.c.lock()
	v.onAct = then
	v.c.unlock()
	if st := o.d.binding.CmActivateVc(v.h, p); st != ndis.StatusPending {
		if f := v.activated(st); f != nil {
			f.resume(st)
		}
	}
}
func (o *cmOps) deactivating(v *cmVc, then step) { v.onDeact = then }
func (o *cmOps) deactivate(v *cmVc, then step) {
	if st := o.d.binding.CmDeactivateVc(v.h); st != ndis.StatusPending {
		if f := v.take(&v.onDeact); f != nil {
			f.resume(st)
		}
	}
}
func (o *cmOps) openAfComplete(st ndis.Status, af *ndis.Af, ctx any) {
	o.d.binding.CmOpenAddressFamilyComplete(st, af, ctx)
}
func (o *cmOps) closeAfComplete(st ndis.Status, af *ndis.Af) {
	o.d.binding.CmCloseAddressFamilyComplete(st, af)
}
func (o *cmOps) notifyCloseAf(af *ndis.Af) ndis.Status {
	return o.d.binding.CmNotifyCloseAddressFamily(af)
}
func (o *cmOps) registerSapComplete(st ndis.Status, sap *ndis.Sap, ctx any) {
	o.d.binding.CmRegisterSapComplete(st, sap, ctx)
}
func (o *cmOps) deregisterSapComplete(st ndis.Status, sap *ndis.Sap) {
	o.d.binding.CmDeregisterSapComplete(st, sap)
}
func (o *cmOps) makeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party, pctx any, p *ndis.CallParameters) {
	o.d.binding.CmMakeCallComplete(st, vc, party, pctx, p)
}
func (o *cmOps) closeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party) {
	o.d.binding.CmCloseCallComplete(st, vc, party)
}
func (o *cmOps) addPartyComplete(st ndis.Status, party *ndis.Party, ctx any, p *ndis.CallParameters) {
	o.d.binding.CmAddPartyComplete(st, party, ctx, p)
}
func (o *cmOps) dropPartyComplete(st ndis.Status, party *ndis.Party) {
	o.d.binding.CmDropPartyComplete(st, party)
}
func (o *cmOps) modifyQoSComplete(st ndis.Status, vc *ndis.Vc, p *ndis.CallParameters) {
	o.d.binding.CmModifyCallQoSComplete(st, vc, p)
}
func (o *cmOps) dispatchIncomingCall(sap *ndis.Sap, vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return o.d.binding.CmDispatchIncomingCall(sap, vc, p)
}
func (o *cmOps) dispatchCallConnected(vc *ndis.Vc) ndis.Status {
	return o.d.binding.CmDispatchCallConnected(vc)
}
func (o *cmOps) dispatchIncomingCloseCall(st ndis.Status, vc *ndis.Vc, data []byte) ndis.Status {
	return o.d.binding.CmDispatchIncomingCloseCall(st, vc, data)
}
func (o *cmOps) dispatchIncomingDropParty(st ndis.Status, party *ndis.Party, data []byte) ndis.Status {
	return o.d.binding.CmDispatchIncomingDropParty(st, party, data)
}
func (o *cmOps) dispatchQoSChange(vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return o.d.binding.CmDispatchIncomingCallQoSChange(vc, p)
}
func (o *cmOps) oidRequestComplete(af *ndis.Af, vc *ndis.Vc, party *ndis.Party, req *ndis.OidRequest, st ndis.Status) {
	o.d.binding.CoOidRequestComplete(af, vc, party, req, st)
}
