package ndis_test

// This file holds the fixture the rule tests (rules_*_test.go) use when a
// test needs a driver that misbehaves on purpose: a scriptable call manager
// (a stand-alone CM over a scriptable CoNDIS miniport in the split topology,
// a miniport call manager in the integrated one) and scriptable clients.
// Every handler has a hook; with no hook set it does the obvious correct
// thing synchronously. The drivers use only the public ndis API.
//
// The fixture runs the mediator in strict mode like ndistest: a violation
// not declared with Expect fails the test, and Teardown closes everything,
// checks the mediator is empty and audits it.
//
// Every top-level identifier here starts with "rl" so the rule tests cannot
// collide with other test files of the package.

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// rlRec records what a driver's handlers saw, one line per call.
type rlRec struct {
	mu sync.Mutex
	ev []string
}

func (r *rlRec) add(format string, args ...any) {
	r.mu.Lock()
	r.ev = append(r.ev, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// count returns how many recorded lines start with prefix.
func (r *rlRec) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.ev {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

// last returns the last recorded line starting with prefix, or "".
func (r *rlRec) last(prefix string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.ev) - 1; i >= 0; i-- {
		if strings.HasPrefix(r.ev[i], prefix) {
			return r.ev[i]
		}
	}
	return ""
}

func (r *rlRec) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ev...)
}

// Contexts the scripted drivers hand to the mediator. Each keeps the handle
// it belongs to, so handlers can call back with it.
type (
	rlAf    struct{ h *ndis.Af }
	rlSap   struct{ h *ndis.Sap }
	rlParty struct{ h *ndis.Party }
	rlVc    struct {
		h      *ndis.Vc
		who    string
		active atomic.Bool // the call manager activated it (CM side only)
	}
	rlMpVc struct{ h *ndis.Vc }
)

// rlName names a driver context for the handler logs.
func rlName(ctx any) string {
	switch v := ctx.(type) {
	case *rlVc:
		if v != nil && v.h != nil {
			return v.h.String()
		}
	case *rlMpVc:
		if v != nil && v.h != nil {
			return v.h.String()
		}
	case *rlAf:
		if v != nil && v.h != nil {
			return v.h.String()
		}
	case *rlParty:
		if v != nil && v.h != nil {
			return v.h.String()
		}
	}
	return fmt.Sprintf("%T", ctx)
}

// rlCM is a scriptable call manager. In the split topology it is a protocol
// bound to an rlMiniport (b is set); in the integrated topology it is a
// miniport call manager (a is set). It implements both handler sets.
type rlCM struct {
	x    *rlFx
	name string
	b    *ndis.Binding
	a    *ndis.Adapter
	rlRec

	openAf    func(h *ndis.Af) (any, ndis.Status)
	closeAf   func(ctx any) ndis.Status
	regSap    func(h *ndis.Sap) (any, ndis.Status)
	deregSap  func(ctx any) ndis.Status
	createVc  func(vc *ndis.Vc) (any, ndis.Status)
	deleteVc  func(ctx any) ndis.Status
	makeCall  func(v *rlVc, p *ndis.CallParameters, party *ndis.Party) (any, ndis.Status)
	closeCall func(v *rlVc, partyCtx any) ndis.Status
	addParty  func(v *rlVc, p *ndis.CallParameters, party *ndis.Party) (any, ndis.Status)
	dropParty func(partyCtx any) ndis.Status
	modifyQoS func(v *rlVc, p *ndis.CallParameters) ndis.Status
	oid       func(req *ndis.OidRequest) ndis.Status
	send      func(v *rlVc, nbls *ndis.NetBufferList) // MCM data path; nil completes at once
	mpOid     func(req *ndis.OidRequest) ndis.Status  // MCM miniport half
}

func (c *rlCM) reset() {
	c.openAf, c.closeAf, c.regSap, c.deregSap = nil, nil, nil, nil
	c.createVc, c.deleteVc, c.makeCall, c.closeCall = nil, nil, nil, nil
	c.addParty, c.dropParty, c.modifyQoS, c.oid, c.send, c.mpOid = nil, nil, nil, nil, nil, nil
}

// who is the driver handle the CM calls the mediator through.
func (c *rlCM) mcm() bool { return c.a != nil }

// Topology-independent requests: Ndis(M)Cm* and NdisCo*/NdisMCm* VC calls.

func (c *rlCM) createVcOn(af *ndis.Af) (*ndis.Vc, *rlVc, ndis.Status) {
	v := &rlVc{who: c.name}
	var h *ndis.Vc
	var st ndis.Status
	if c.mcm() {
		h, st = c.a.MCmCreateVc(af, v)
	} else {
		h, st = c.b.CoCreateVc(af, v)
	}
	v.h = h
	return h, v, st
}

func (c *rlCM) del(vc *ndis.Vc) ndis.Status {
	if c.mcm() {
		return c.a.MCmDeleteVc(vc)
	}
	return c.b.CoDeleteVc(vc)
}

func (c *rlCM) activate(vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	if c.mcm() {
		return c.a.MCmActivateVc(vc, p)
	}
	return c.b.CmActivateVc(vc, p)
}

func (c *rlCM) deactivate(vc *ndis.Vc) ndis.Status {
	if c.mcm() {
		return c.a.MCmDeactivateVc(vc)
	}
	return c.b.CmDeactivateVc(vc)
}

func (c *rlCM) openAfComplete(st ndis.Status, af *ndis.Af, ctx any) ndis.Status {
	if c.mcm() {
		return c.a.MCmOpenAddressFamilyComplete(st, af, ctx)
	}
	return c.b.CmOpenAddressFamilyComplete(st, af, ctx)
}

func (c *rlCM) closeAfComplete(st ndis.Status, af *ndis.Af) ndis.Status {
	if c.mcm() {
		return c.a.MCmCloseAddressFamilyComplete(st, af)
	}
	return c.b.CmCloseAddressFamilyComplete(st, af)
}

func (c *rlCM) notifyCloseAf(af *ndis.Af) ndis.Status {
	if c.mcm() {
		return c.a.MCmNotifyCloseAddressFamily(af)
	}
	return c.b.CmNotifyCloseAddressFamily(af)
}

func (c *rlCM) regSapComplete(st ndis.Status, sap *ndis.Sap, ctx any) ndis.Status {
	if c.mcm() {
		return c.a.MCmRegisterSapComplete(st, sap, ctx)
	}
	return c.b.CmRegisterSapComplete(st, sap, ctx)
}

func (c *rlCM) deregSapComplete(st ndis.Status, sap *ndis.Sap) ndis.Status {
	if c.mcm() {
		return c.a.MCmDeregisterSapComplete(st, sap)
	}
	return c.b.CmDeregisterSapComplete(st, sap)
}

func (c *rlCM) makeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party, ctx any, p *ndis.CallParameters) ndis.Status {
	if c.mcm() {
		return c.a.MCmMakeCallComplete(st, vc, party, ctx, p)
	}
	return c.b.CmMakeCallComplete(st, vc, party, ctx, p)
}

func (c *rlCM) closeCallComplete(st ndis.Status, vc *ndis.Vc, party *ndis.Party) ndis.Status {
	if c.mcm() {
		return c.a.MCmCloseCallComplete(st, vc, party)
	}
	return c.b.CmCloseCallComplete(st, vc, party)
}

func (c *rlCM) addPartyComplete(st ndis.Status, party *ndis.Party, ctx any, p *ndis.CallParameters) ndis.Status {
	if c.mcm() {
		return c.a.MCmAddPartyComplete(st, party, ctx, p)
	}
	return c.b.CmAddPartyComplete(st, party, ctx, p)
}

func (c *rlCM) dropPartyComplete(st ndis.Status, party *ndis.Party) ndis.Status {
	if c.mcm() {
		return c.a.MCmDropPartyComplete(st, party)
	}
	return c.b.CmDropPartyComplete(st, party)
}

func (c *rlCM) modifyQoSComplete(st ndis.Status, vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	if c.mcm() {
		return c.a.MCmModifyCallQoSComplete(st, vc, p)
	}
	return c.b.CmModifyCallQoSComplete(st, vc, p)
}

func (c *rlCM) dispatchIncomingCall(sap *ndis.Sap, vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	if c.mcm() {
		return c.a.MCmDispatchIncomingCall(sap, vc, p)
	}
	return c.b.CmDispatchIncomingCall(sap, vc, p)
}

func (c *rlCM) dispatchCallConnected(vc *ndis.Vc) ndis.Status {
	if c.mcm() {
		return c.a.MCmDispatchCallConnected(vc)
	}
	return c.b.CmDispatchCallConnected(vc)
}

func (c *rlCM) dispatchIncomingCloseCall(st ndis.Status, vc *ndis.Vc) ndis.Status {
	if c.mcm() {
		return c.a.MCmDispatchIncomingCloseCall(st, vc, nil)
	}
	return c.b.CmDispatchIncomingCloseCall(st, vc, nil)
}

func (c *rlCM) dispatchIncomingDropParty(st ndis.Status, party *ndis.Party) ndis.Status {
	if c.mcm() {
		return c.a.MCmDispatchIncomingDropParty(st, party, nil)
	}
	return c.b.CmDispatchIncomingDropParty(st, party, nil)
}

func (c *rlCM) dispatchQoSChange(vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	if c.mcm() {
		return c.a.MCmDispatchIncomingCallQoSChange(vc, p)
	}
	return c.b.CmDispatchIncomingCallQoSChange(vc, p)
}

func (c *rlCM) oidRequest(af *ndis.Af, vc *ndis.Vc, party *ndis.Party, req *ndis.OidRequest) ndis.Status {
	if c.mcm() {
		return c.a.MCmOidRequest(af, vc, party, req)
	}
	return c.b.CoOidRequest(af, vc, party, req)
}

func (c *rlCM) oidRequestComplete(af *ndis.Af, req *ndis.OidRequest, st ndis.Status) ndis.Status {
	if c.mcm() {
		return c.a.MCmOidRequestComplete(af, nil, nil, req, st)
	}
	return c.b.CoOidRequestComplete(af, nil, nil, req, st)
}

// Call-manager handlers.

func (c *rlCM) ProtocolCmOpenAf(bindingCtx any, af ndis.AddressFamily, h *ndis.Af) (any, ndis.Status) {
	c.add("OpenAf(%v)", h)
	if c.openAf != nil {
		return c.openAf(h)
	}
	return &rlAf{h: h}, ndis.StatusSuccess
}

func (c *rlCM) ProtocolCmCloseAf(afCtx any) ndis.Status {
	c.add("CloseAf(%s)", rlName(afCtx))
	if c.closeAf != nil {
		return c.closeAf(afCtx)
	}
	return ndis.StatusSuccess
}

func (c *rlCM) ProtocolCmNotifyCloseAfComplete(afCtx any, st ndis.Status) {
	c.add("NotifyCloseAfComplete(%v)", st)
}

func (c *rlCM) ProtocolCmRegisterSap(afCtx any, coSap *ndis.CoSap, h *ndis.Sap) (any, ndis.Status) {
	c.add("RegisterSap(%s,%s)", rlName(afCtx), sapName(coSap))
	if c.regSap != nil {
		return c.regSap(h)
	}
	return &rlSap{h: h}, ndis.StatusSuccess
}

func (c *rlCM) ProtocolCmDeregisterSap(sapCtx any) ndis.Status {
	c.add("DeregisterSap")
	if c.deregSap != nil {
		return c.deregSap(sapCtx)
	}
	return ndis.StatusSuccess
}

func (c *rlCM) ProtocolCmMakeCall(vcCtx any, p *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
	v, _ := vcCtx.(*rlVc)
	c.add("MakeCall(%s,party=%v)", rlName(vcCtx), party != nil)
	if c.makeCall != nil {
		return c.makeCall(v, p, party)
	}
	if st := c.activate(v.h, p); st != ndis.StatusSuccess {
		return nil, st
	}
	v.active.Store(true)
	if party != nil {
		return &rlParty{h: party}, ndis.StatusSuccess
	}
	return nil, ndis.StatusSuccess
}

func (c *rlCM) ProtocolCmIncomingCallComplete(st ndis.Status, vcCtx any, p *ndis.CallParameters) {
	c.add("IncomingCallComplete(%v)", st)
}

func (c *rlCM) ProtocolCmCloseCall(vcCtx, partyCtx any, data []byte) ndis.Status {
	v, _ := vcCtx.(*rlVc)
	c.add("CloseCall(%s,party=%v)", rlName(vcCtx), partyCtx != nil)
	if c.closeCall != nil {
		return c.closeCall(v, partyCtx)
	}
	return c.hangUp(v)
}

// hangUp deactivates v if the CM activated it: the default close.
func (c *rlCM) hangUp(v *rlVc) ndis.Status {
	if v.active.Swap(false) {
		if st := c.deactivate(v.h); st != ndis.StatusSuccess {
			return st
		}
	}
	return ndis.StatusSuccess
}

func (c *rlCM) ProtocolCmAddParty(vcCtx any, p *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
	v, _ := vcCtx.(*rlVc)
	c.add("AddParty(%s,%v)", rlName(vcCtx), party)
	if c.addParty != nil {
		return c.addParty(v, p, party)
	}
	return &rlParty{h: party}, ndis.StatusSuccess
}

func (c *rlCM) ProtocolCmDropParty(partyCtx any, data []byte) ndis.Status {
	c.add("DropParty(%s)", rlName(partyCtx))
	if c.dropParty != nil {
		return c.dropParty(partyCtx)
	}
	return ndis.StatusSuccess
}

func (c *rlCM) ProtocolCmModifyCallQoS(vcCtx any, p *ndis.CallParameters) ndis.Status {
	v, _ := vcCtx.(*rlVc)
	c.add("ModifyCallQoS(%s)", rlName(vcCtx))
	if c.modifyQoS != nil {
		return c.modifyQoS(v, p)
	}
	return ndis.StatusSuccess
}

func (c *rlCM) ProtocolCmActivateVcComplete(st ndis.Status, vcCtx any, p *ndis.CallParameters) {
	c.add("ActivateVcComplete(%s,%v)", rlName(vcCtx), st)
}

func (c *rlCM) ProtocolCmDeactivateVcComplete(st ndis.Status, vcCtx any) {
	c.add("DeactivateVcComplete(%s,%v)", rlName(vcCtx), st)
}

// Co handlers (shared by the CM and MCM roles).

func (c *rlCM) ProtocolCoCreateVc(afCtx any, vc *ndis.Vc) (any, ndis.Status) {
	c.add("CoCreateVc(%s,%v)", rlName(afCtx), vc)
	if c.createVc != nil {
		return c.createVc(vc)
	}
	return &rlVc{h: vc, who: c.name}, ndis.StatusSuccess
}

func (c *rlCM) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	c.add("CoDeleteVc(%s)", rlName(vcCtx))
	if c.deleteVc != nil {
		return c.deleteVc(vcCtx)
	}
	return ndis.StatusSuccess
}

func (c *rlCM) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	c.add("CoOidRequest(%s,vc=%v,party=%v)", rlName(afCtx), vcCtx != nil, partyCtx != nil)
	if c.oid != nil {
		return c.oid(req)
	}
	return ndis.StatusSuccess
}

func (c *rlCM) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
	c.add("CoOidRequestComplete(%v)", st)
}

// Protocol handlers (stand-alone CM role).

func (c *rlCM) ProtocolCoAfRegisterNotify(bindingCtx any, af ndis.AddressFamily) {
	c.add("AfRegisterNotify(%v)", af.AddressFamily)
}

func (c *rlCM) ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *ndis.NetBufferList, count int, flags ndis.ReceiveFlags) {
	c.add("Receive(%d)", nbls.Len())
	if flags&ndis.ReceiveFlagsResources == 0 {
		c.b.ReturnNetBufferLists(nbls, 0)
	}
}

func (c *rlCM) ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendCompleteFlags) {
	for n := nbls; n != nil; n = n.Next {
		c.add("SendComplete(%v)", n.Status)
	}
}

func (c *rlCM) ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *ndis.StatusIndication) {
	c.add("StatusEx(vc=%v,%v)", vcCtx != nil, ind.StatusCode)
}

// Miniport handlers (MCM role).

func (c *rlCM) MiniportCoSendNetBufferLists(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendFlags) {
	v := vcCtx.(*rlVc)
	c.add("MiniportSend(%s,%d)", rlName(vcCtx), nbls.Len())
	if c.send != nil {
		c.send(v, nbls)
		return
	}
	for n := nbls; n != nil; n = n.Next {
		n.Status = ndis.StatusSuccess
	}
	c.a.MCoSendNetBufferListsComplete(v.h, nbls, 0)
}

func (c *rlCM) MiniportCoOidRequest(adapterCtx, vcCtx any, req *ndis.OidRequest) ndis.Status {
	c.add("MiniportOidRequest(vc=%v)", vcCtx != nil)
	if c.mpOid != nil {
		return c.mpOid(req)
	}
	return ndis.StatusSuccess
}

func (c *rlCM) MiniportReturnNetBufferLists(adapterCtx any, nbls *ndis.NetBufferList, flags ndis.ReturnFlags) {
	c.add("MiniportReturn(%d)", nbls.Len())
}

// rlMiniport is a scriptable CoNDIS miniport without call management.
type rlMiniport struct {
	x    *rlFx
	name string
	a    *ndis.Adapter
	rlRec

	create     func(vc *ndis.Vc) (any, ndis.Status)
	del        func(ctx any) ndis.Status
	activate   func(v *rlMpVc, p *ndis.CallParameters) ndis.Status
	deactivate func(v *rlMpVc) ndis.Status
	send       func(v *rlMpVc, nbls *ndis.NetBufferList) // nil completes at once
	oid        func(req *ndis.OidRequest) ndis.Status
}

func (mp *rlMiniport) reset() {
	mp.create, mp.del, mp.activate, mp.deactivate, mp.send, mp.oid = nil, nil, nil, nil, nil, nil
}

func (mp *rlMiniport) MiniportCoCreateVc(adapterCtx any, vc *ndis.Vc) (any, ndis.Status) {
	mp.add("CreateVc(%v)", vc)
	if mp.create != nil {
		return mp.create(vc)
	}
	return &rlMpVc{h: vc}, ndis.StatusSuccess
}

func (mp *rlMiniport) MiniportCoDeleteVc(vcCtx any) ndis.Status {
	mp.add("DeleteVc(%s)", rlName(vcCtx))
	if mp.del != nil {
		return mp.del(vcCtx)
	}
	return ndis.StatusSuccess
}

func (mp *rlMiniport) MiniportCoActivateVc(vcCtx any, p *ndis.CallParameters) ndis.Status {
	v := vcCtx.(*rlMpVc)
	mp.add("ActivateVc(%v)", v.h)
	if mp.activate != nil {
		return mp.activate(v, p)
	}
	return ndis.StatusSuccess
}

func (mp *rlMiniport) MiniportCoDeactivateVc(vcCtx any) ndis.Status {
	v := vcCtx.(*rlMpVc)
	mp.add("DeactivateVc(%v)", v.h)
	if mp.deactivate != nil {
		return mp.deactivate(v)
	}
	return ndis.StatusSuccess
}

func (mp *rlMiniport) MiniportCoSendNetBufferLists(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendFlags) {
	v := vcCtx.(*rlMpVc)
	mp.add("Send(%v,%d)", v.h, nbls.Len())
	if mp.send != nil {
		mp.send(v, nbls)
		return
	}
	for n := nbls; n != nil; n = n.Next {
		n.Status = ndis.StatusSuccess
	}
	mp.a.MCoSendNetBufferListsComplete(v.h, nbls, 0)
}

func (mp *rlMiniport) MiniportCoOidRequest(adapterCtx, vcCtx any, req *ndis.OidRequest) ndis.Status {
	mp.add("OidRequest(vc=%v)", vcCtx != nil)
	if mp.oid != nil {
		return mp.oid(req)
	}
	return ndis.StatusSuccess
}

func (mp *rlMiniport) MiniportReturnNetBufferLists(adapterCtx any, nbls *ndis.NetBufferList, flags ndis.ReturnFlags) {
	mp.add("Return(%d)", nbls.Len())
}

// rlClient is a scriptable CoNDIS client. With autoOpen it opens the Q.2931
// address family when told about it.
type rlClient struct {
	x        *rlFx
	name     string
	b        *ndis.Binding
	autoOpen bool
	af       *ndis.Af
	openSt   ndis.Status
	rlRec

	createVc      func(vc *ndis.Vc) (any, ndis.Status)
	deleteVc      func(ctx any) ndis.Status
	incoming      func(v *rlVc, p *ndis.CallParameters) ndis.Status
	notifyClose   func() ndis.Status
	oid           func(req *ndis.OidRequest) ndis.Status
	receive       func(v *rlVc, nbls *ndis.NetBufferList, flags ndis.ReceiveFlags)
	status        func(vcCtx any, ind *ndis.StatusIndication)
	makeDone      func()                          // runs at the end of ProtocolClMakeCallComplete
	incomingClose func(vcCtx any, st ndis.Status) // runs inside ProtocolClIncomingCloseCall

	mu       sync.Mutex
	rx       [][]byte
	sendDone []ndis.Status
	party    *ndis.Party          // from the last MakeCall/AddParty completion
	params   *ndis.CallParameters // from the last completion carrying parameters
	inVcs    []*rlVc              // VCs call managers created for this client
}

func (c *rlClient) reset() {
	c.createVc, c.deleteVc, c.incoming, c.notifyClose, c.oid, c.receive, c.status = nil, nil, nil, nil, nil, nil, nil
}

func (c *rlClient) sent() []ndis.Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ndis.Status(nil), c.sendDone...)
}

func (c *rlClient) received() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.rx...)
}

func (c *rlClient) ProtocolCoAfRegisterNotify(bindingCtx any, af ndis.AddressFamily) {
	c.add("AfRegisterNotify(%v)", af.AddressFamily)
	if c.autoOpen && af.AddressFamily == memdrv.AF.AddressFamily && c.af == nil {
		c.af, c.openSt = c.b.ClOpenAddressFamilyEx(af, c)
	}
}

func (c *rlClient) ProtocolCoCreateVc(afCtx any, vc *ndis.Vc) (any, ndis.Status) {
	c.add("CoCreateVc(%v)", vc)
	if c.createVc != nil {
		return c.createVc(vc)
	}
	v := &rlVc{h: vc, who: c.name}
	c.mu.Lock()
	c.inVcs = append(c.inVcs, v)
	c.mu.Unlock()
	return v, ndis.StatusSuccess
}

func (c *rlClient) ProtocolCoDeleteVc(vcCtx any) ndis.Status {
	c.add("CoDeleteVc(%s)", rlName(vcCtx))
	if c.deleteVc != nil {
		return c.deleteVc(vcCtx)
	}
	return ndis.StatusSuccess
}

func (c *rlClient) ProtocolCoOidRequest(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest) ndis.Status {
	c.add("CoOidRequest(vc=%v,party=%v)", vcCtx != nil, partyCtx != nil)
	if c.oid != nil {
		return c.oid(req)
	}
	return ndis.StatusSuccess
}

func (c *rlClient) ProtocolCoOidRequestComplete(afCtx, vcCtx, partyCtx any, req *ndis.OidRequest, st ndis.Status) {
	c.add("CoOidRequestComplete(%v)", st)
}

func (c *rlClient) ProtocolCoReceiveNetBufferLists(bindingCtx, vcCtx any, nbls *ndis.NetBufferList, count int, flags ndis.ReceiveFlags) {
	v, _ := vcCtx.(*rlVc)
	if c.receive != nil {
		c.receive(v, nbls, flags)
		return
	}
	c.mu.Lock()
	for n := nbls; n != nil; n = n.Next {
		c.rx = append(c.rx, append([]byte(nil), n.Data...))
	}
	c.mu.Unlock()
	if flags&ndis.ReceiveFlagsResources == 0 {
		c.b.ReturnNetBufferLists(nbls, 0)
	}
}

func (c *rlClient) ProtocolCoSendNetBufferListsComplete(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendCompleteFlags) {
	c.mu.Lock()
	for n := nbls; n != nil; n = n.Next {
		c.sendDone = append(c.sendDone, n.Status)
	}
	c.mu.Unlock()
}

func (c *rlClient) ProtocolCoStatusEx(bindingCtx, vcCtx any, ind *ndis.StatusIndication) {
	c.add("StatusEx(vc=%v,%v)", vcCtx != nil, ind.StatusCode)
	if c.status != nil {
		c.status(vcCtx, ind)
	}
}

func (c *rlClient) ProtocolClOpenAfCompleteEx(afCtx any, af *ndis.Af, st ndis.Status) {
	c.add("OpenAfComplete(%v,nil=%v)", st, af == nil)
}

func (c *rlClient) ProtocolClCloseAfComplete(st ndis.Status, afCtx any) {
	c.add("CloseAfComplete(%v)", st)
}

func (c *rlClient) ProtocolClNotifyCloseAf(afCtx any) ndis.Status {
	c.add("NotifyCloseAf")
	if c.notifyClose != nil {
		return c.notifyClose()
	}
	return ndis.StatusSuccess
}

func (c *rlClient) ProtocolClRegisterSapComplete(st ndis.Status, sapCtx any, coSap *ndis.CoSap, sap *ndis.Sap) {
	c.add("RegisterSapComplete(%v,nil=%v)", st, sap == nil)
}

func (c *rlClient) ProtocolClDeregisterSapComplete(st ndis.Status, sapCtx any) {
	c.add("DeregisterSapComplete(%v)", st)
}

func (c *rlClient) ProtocolClMakeCallComplete(st ndis.Status, vcCtx any, party *ndis.Party, p *ndis.CallParameters) {
	c.add("MakeCallComplete(%v,party=%v)", st, party != nil)
	c.mu.Lock()
	c.party, c.params = party, p
	c.mu.Unlock()
	if c.makeDone != nil {
		c.makeDone()
	}
}

func (c *rlClient) ProtocolClModifyCallQoSComplete(st ndis.Status, vcCtx any, p *ndis.CallParameters) {
	c.add("ModifyCallQoSComplete(%v)", st)
}

func (c *rlClient) ProtocolClCloseCallComplete(st ndis.Status, vcCtx, partyCtx any) {
	c.add("CloseCallComplete(%v,party=%v)", st, partyCtx != nil)
}

func (c *rlClient) ProtocolClAddPartyComplete(st ndis.Status, partyCtx any, party *ndis.Party, p *ndis.CallParameters) {
	c.add("AddPartyComplete(%v,nil=%v)", st, party == nil)
	c.mu.Lock()
	c.party, c.params = party, p
	c.mu.Unlock()
}

func (c *rlClient) ProtocolClDropPartyComplete(st ndis.Status, partyCtx any) {
	c.add("DropPartyComplete(%v)", st)
}

func (c *rlClient) ProtocolClIncomingCall(sapCtx, vcCtx any, p *ndis.CallParameters) ndis.Status {
	v, _ := vcCtx.(*rlVc)
	c.add("IncomingCall(%s)", rlName(vcCtx))
	if c.incoming != nil {
		return c.incoming(v, p)
	}
	return ndis.StatusSuccess
}

func (c *rlClient) ProtocolClCallConnected(vcCtx any) {
	c.add("CallConnected(%s)", rlName(vcCtx))
}

func (c *rlClient) ProtocolClIncomingCloseCall(st ndis.Status, vcCtx any, data []byte) {
	c.add("IncomingCloseCall(%v)", st)
	if c.incomingClose != nil {
		c.incomingClose(vcCtx, st)
	}
}

func (c *rlClient) ProtocolClIncomingDropParty(st ndis.Status, partyCtx any, data []byte) {
	c.add("IncomingDropParty(%v)", st)
}

func (c *rlClient) ProtocolClIncomingCallQoSChange(vcCtx any, p *ndis.CallParameters) {
	c.add("IncomingCallQoSChange")
}

// rlFx is a mediator with a scripted call manager (and, in the split
// topology, a scripted miniport) and two scripted clients whose AF opens
// succeeded: c1 (usually the caller) and c2.
type rlFx struct {
	t       *testing.T
	topo    ndistest.Topology
	m       *ndis.Mediator
	ad      *ndis.Adapter
	mp      *rlMiniport // split only
	cm      *rlCM
	c1, c2  *rlClient
	clients []*rlClient

	mu       sync.Mutex
	expected map[string]int
	seen     []ndis.Violation
	events   []ndis.Event
	lenient  bool // record violations without failing the test
}

func rlNew(t *testing.T, topo ndistest.Topology, opts ...func(*ndis.Options)) *rlFx {
	t.Helper()
	x := &rlFx{t: t, topo: topo, expected: map[string]int{}}
	o := ndis.Options{Name: t.Name(), OnViolation: x.onViolation, Trace: x.onEvent}
	for _, f := range opts {
		f(&o)
	}
	x.m = ndis.New(o)
	x.cm = &rlCM{x: x}
	var st ndis.Status
	switch topo {
	case ndistest.Split:
		x.cm.name = "cm"
		x.mp = &rlMiniport{x: x, name: "mp"}
		x.ad, st = x.m.AddMiniport("mp", x.mp, x.mp, nil)
		rlMust(t, st, "AddMiniport")
		x.mp.a = x.ad
		_, st = x.m.BindAdapter(x.ad, "cm", x.cm, x.cm, func(b *ndis.Binding) ndis.Status {
			x.cm.b = b
			return b.CmRegisterAddressFamilyEx(memdrv.AF)
		})
		rlMust(t, st, "bind cm")
	case ndistest.MCM:
		x.cm.name = "mcm"
		x.ad, st = x.m.AddMiniportCallManager("mcm", x.cm, x.cm, func(a *ndis.Adapter) ndis.Status {
			x.cm.a = a
			return a.MCmRegisterAddressFamilyEx(memdrv.AF)
		})
		rlMust(t, st, "AddMiniportCallManager")
	}
	x.c1 = x.bindClient("c1")
	x.c2 = x.bindClient("c2")
	for _, c := range []*rlClient{x.c1, x.c2} {
		if c.af == nil || c.openSt != ndis.StatusSuccess {
			t.Fatalf("%s: AF open %v", c.name, c.openSt)
		}
	}
	return x
}

func rlMust(t testing.TB, st ndis.Status, what string) {
	t.Helper()
	if st != ndis.StatusSuccess {
		t.Fatalf("%s: %v", what, st)
	}
}

// rlBoth runs f in a fresh fixture of each topology.
func rlBoth(t *testing.T, f func(t *testing.T, x *rlFx)) {
	for _, topo := range ndistest.Topologies {
		t.Run(string(topo), func(t *testing.T) { f(t, rlNew(t, topo)) })
	}
}

// rlOnly runs f in a fresh fixture of one topology.
func rlOnly(t *testing.T, topo ndistest.Topology, f func(t *testing.T, x *rlFx)) {
	t.Run(string(topo), func(t *testing.T) { f(t, rlNew(t, topo)) })
}

// bindClient binds a new scripted client; mod runs before it is bound.
func (x *rlFx) bindClient(name string, mod ...func(*rlClient)) *rlClient {
	x.t.Helper()
	c := &rlClient{x: x, name: name, autoOpen: true}
	for _, f := range mod {
		f(c)
	}
	_, st := x.m.BindAdapter(x.ad, name, c, c, func(b *ndis.Binding) ndis.Status {
		c.b = b
		return ndis.StatusSuccess
	})
	rlMust(x.t, st, "bind "+name)
	x.clients = append(x.clients, c)
	return c
}

func (x *rlFx) onViolation(v ndis.Violation) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.seen = append(x.seen, v)
	if x.lenient {
		return
	}
	if x.expected[v.Rule] > 0 {
		x.expected[v.Rule]--
		return
	}
	x.t.Errorf("unexpected contract violation: %v", v)
}

func (x *rlFx) onEvent(e ndis.Event) {
	x.mu.Lock()
	x.events = append(x.events, e)
	x.mu.Unlock()
}

// Expect declares that the next violation of rule is part of the test.
func (x *rlFx) Expect(rule string) {
	x.mu.Lock()
	x.expected[rule]++
	x.mu.Unlock()
}

// Seen returns every violation reported so far.
func (x *rlFx) Seen() []ndis.Violation {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]ndis.Violation(nil), x.seen...)
}

// SawRule reports whether a violation of rule was reported.
func (x *rlFx) SawRule(rule string) bool {
	for _, v := range x.Seen() {
		if v.Rule == rule {
			return true
		}
	}
	return false
}

// Mark forgets the trace so far.
func (x *rlFx) Mark() {
	x.mu.Lock()
	x.events = x.events[:0]
	x.mu.Unlock()
}

// Upcalls returns the handlers invoked since the last Mark, as "driver.Handler".
func (x *rlFx) Upcalls() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for _, e := range x.events {
		if e.Kind == ndis.EventUpcall {
			out = append(out, e.Driver+"."+e.Func)
		}
	}
	return out
}

// Events returns the trace since the last Mark.
func (x *rlFx) Events() []ndis.Event {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]ndis.Event(nil), x.events...)
}

// upcalled counts the invocations of handler (e.g. "ProtocolCoDeleteVc")
// since the last Mark, by any driver.
func (x *rlFx) upcalled(handler string) int {
	n := 0
	for _, u := range x.Upcalls() {
		if strings.HasSuffix(u, "."+handler) {
			n++
		}
	}
	return n
}

func (x *rlFx) snap() string { return x.m.Snapshot().String() }

// refuse runs fn, which the mediator must refuse: fn returns exactly want,
// exactly one violation of rule carrying want is reported, and the
// mediator's objects are unchanged.
func (x *rlFx) refuse(rule string, want ndis.Status, fn func() ndis.Status) {
	x.t.Helper()
	x.check(rule, want, want, fn)
}

// check is refuse for calls whose violation is reported with status vst
// (StatusSuccess for a driver-side violation the mediator observed while
// running the request) and that return want without changing anything.
func (x *rlFx) check(rule string, want, vst ndis.Status, fn func() ndis.Status) {
	x.t.Helper()
	before := x.snap()
	n := len(x.Seen())
	x.Expect(rule)
	got := fn()
	if got != want {
		x.t.Errorf("%s: returned %v, want %v", rule, got, want)
	}
	x.newViolation(n, rule, vst)
	if after := x.snap(); after != before {
		x.t.Errorf("%s: a refused request changed the mediator\nbefore:\n%safter:\n%s", rule, before, after)
	}
}

// warned runs fn, during which the mediator must report exactly one
// violation of rule for a call it let proceed.
func (x *rlFx) warned(rule string, fn func()) {
	x.t.Helper()
	n := len(x.Seen())
	x.Expect(rule)
	fn()
	x.newViolation(n, rule, ndis.StatusSuccess)
}

// newViolation checks that exactly one violation, of rule with status st,
// was reported after the first n.
func (x *rlFx) newViolation(n int, rule string, st ndis.Status) {
	x.t.Helper()
	got := x.Seen()[n:]
	if len(got) != 1 || got[0].Rule != rule || got[0].Status != st {
		x.t.Errorf("want exactly one violation %s (status %v), got %v", rule, st, got)
	}
}

func rlIs(t testing.TB, what string, got, want ndis.Status) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func rlParams() *ndis.CallParameters { return ndistest.Params("svc") }

// vcInfo returns the snapshot entry of vc.
func (x *rlFx) vcInfo(vc *ndis.Vc) (ndis.VcInfo, bool) {
	for _, v := range x.m.Snapshot().Vcs {
		if v.Handle == vc.String() {
			return v, true
		}
	}
	return ndis.VcInfo{}, false
}

// state returns "activation/call" of vc, or "gone".
func (x *rlFx) state(vc *ndis.Vc) string {
	v, ok := x.vcInfo(vc)
	if !ok {
		return "gone"
	}
	return v.Activation + "/" + v.Call
}

func (x *rlFx) wantState(vc *ndis.Vc, want string) {
	x.t.Helper()
	if got := x.state(vc); got != want {
		x.t.Errorf("%v is %s, want %s\n%s", vc, got, want, x.snap())
	}
}

// newVc creates a VC for an outgoing call of c.
func (x *rlFx) newVc(c *rlClient) *ndis.Vc {
	x.t.Helper()
	v := &rlVc{who: c.name}
	h, st := c.b.CoCreateVc(c.af, v)
	rlMust(x.t, st, c.name+" CoCreateVc")
	v.h = h
	return h
}

// call sets up a point-to-point outgoing call of c; the default call
// manager activates the VC and succeeds at once.
func (x *rlFx) call(c *rlClient) *ndis.Vc {
	x.t.Helper()
	vc := x.newVc(c)
	_, st := c.b.ClMakeCall(vc, rlParams(), nil)
	rlMust(x.t, st, c.name+" ClMakeCall")
	return vc
}

// mpCall sets up a multipoint outgoing call of c and returns its VC and
// initial party.
func (x *rlFx) mpCall(c *rlClient) (*ndis.Vc, *ndis.Party) {
	x.t.Helper()
	vc := x.newVc(c)
	p, st := c.b.ClMakeCall(vc, rlParams(), &rlParty{})
	rlMust(x.t, st, c.name+" ClMakeCall multipoint")
	if p == nil {
		x.t.Fatal("no party handle for a multipoint call")
	}
	return vc, p
}

// addParty adds a party to c's multipoint call.
func (x *rlFx) addParty(c *rlClient, vc *ndis.Vc) *ndis.Party {
	x.t.Helper()
	p, st := c.b.ClAddParty(vc, &rlParty{}, rlParams())
	rlMust(x.t, st, "ClAddParty")
	return p
}

// hangup closes c's call on vc and deletes the VC c created.
func (x *rlFx) hangup(c *rlClient, vc *ndis.Vc, party *ndis.Party) {
	x.t.Helper()
	rlMust(x.t, c.b.ClCloseCall(vc, party, nil), c.name+" ClCloseCall")
	rlMust(x.t, c.b.CoDeleteVc(vc), c.name+" CoDeleteVc")
}

// sap registers service for c.
func (x *rlFx) sap(c *rlClient, service string) *ndis.Sap {
	x.t.Helper()
	s, st := c.b.ClRegisterSap(c.af, &rlSap{}, memdrv.ServiceSap(service))
	rlMust(x.t, st, "ClRegisterSap")
	return s
}

// unsap deregisters s; an accepted deregistration always returns PENDING.
func (x *rlFx) unsap(c *rlClient, s *ndis.Sap) {
	x.t.Helper()
	rlIs(x.t, "ClDeregisterSap", c.b.ClDeregisterSap(s), ndis.StatusPending)
}

// cmVc creates, as the call manager, an idle VC for an incoming call to c.
func (x *rlFx) cmVc(c *rlClient) (*ndis.Vc, *rlVc) {
	x.t.Helper()
	h, v, st := x.cm.createVcOn(c.af)
	rlMust(x.t, st, "call manager creates VC")
	return h, v
}

// incoming has the call manager create a VC for c, activate it, offer the
// call on sap (c accepts by default) and connect it.
func (x *rlFx) incoming(c *rlClient, sap *ndis.Sap) (*ndis.Vc, *rlVc) {
	x.t.Helper()
	h, v := x.cmVc(c)
	rlMust(x.t, x.cm.activate(h, rlParams()), "activate")
	v.active.Store(true)
	rlMust(x.t, x.cm.dispatchIncomingCall(sap, h, rlParams()), "dispatch incoming call")
	rlMust(x.t, x.cm.dispatchCallConnected(h), "dispatch call connected")
	return h, v
}

// remoteHangup closes an incoming call from the call manager's side: the
// close is indicated, the client closes, the call manager deletes the VC.
func (x *rlFx) remoteHangup(c *rlClient, vc *ndis.Vc) {
	x.t.Helper()
	rlMust(x.t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, vc), "dispatch incoming close")
	rlMust(x.t, c.b.ClCloseCall(vc, nil, nil), "ClCloseCall")
	rlMust(x.t, x.cm.del(vc), "call manager deletes VC")
}

// setSend installs f as the data path of the topology's miniport (the
// scripted miniport, or the MCM's miniport half); nil restores "complete
// every send at once".
func (x *rlFx) setSend(f func(vc *ndis.Vc, nbls *ndis.NetBufferList)) {
	if f == nil {
		if x.mp != nil {
			x.mp.send = nil
		} else {
			x.cm.send = nil
		}
		return
	}
	if x.mp != nil {
		x.mp.send = func(v *rlMpVc, n *ndis.NetBufferList) { f(v.h, n) }
	} else {
		x.cm.send = func(v *rlVc, n *ndis.NetBufferList) { f(v.h, n) }
	}
}

// complete returns sent lists with status st, as the miniport.
func (x *rlFx) complete(vc *ndis.Vc, nbls *ndis.NetBufferList, st ndis.Status) ndis.Status {
	for n := nbls; n != nil; n = n.Next {
		n.Status = st
	}
	return x.ad.MCoSendNetBufferListsComplete(vc, nbls, 0)
}

// rlChain builds a chain of lists, one per packet.
func rlChain(packets ...string) *ndis.NetBufferList {
	var head, tail *ndis.NetBufferList
	for _, p := range packets {
		n := &ndis.NetBufferList{Data: []byte(p)}
		if tail == nil {
			head = n
		} else {
			tail.Next = n
		}
		tail = n
	}
	return head
}

// Teardown closes what the test left open in the usual way (client AFs,
// bindings, the adapter), then checks the mediator is empty, the audit is
// clean and every expected violation happened.
func (x *rlFx) Teardown() {
	x.t.Helper()
	x.cm.reset()
	if x.mp != nil {
		x.mp.reset()
	}
	open := map[string]bool{}
	snap := x.m.Snapshot()
	for _, af := range snap.Afs {
		open[af.Handle] = true
	}
	bound := map[string]bool{}
	for _, a := range snap.Adapters {
		for _, b := range a.Bindings {
			bound[b] = true
		}
	}
	for _, c := range x.clients {
		c.reset()
		if !bound[c.name] {
			continue // the test unbound it
		}
		if c.af != nil && open[c.af.String()] {
			if st := c.b.ClCloseAddressFamily(c.af); st != ndis.StatusSuccess {
				x.t.Errorf("%s: close AF: %v\n%s", c.name, st, x.snap())
			}
		}
		if st := c.b.CloseAdapterEx(); st != ndis.StatusSuccess {
			x.t.Errorf("%s: unbind: %v\n%s", c.name, st, x.snap())
		}
	}
	if x.cm.b != nil {
		if st := x.cm.b.CloseAdapterEx(); st != ndis.StatusSuccess {
			x.t.Errorf("cm unbind: %v\n%s", st, x.snap())
		}
	}
	if st := x.ad.RemoveAdapter(); st != ndis.StatusSuccess {
		x.t.Errorf("remove adapter: %v\n%s", st, x.snap())
	}
	if s := x.m.Snapshot(); !s.Empty() || len(s.Adapters) != 0 {
		x.t.Errorf("mediator not empty after teardown:\n%s", s)
	}
	if v := x.m.Audit(); len(v) > 0 {
		x.t.Errorf("audit: %v", v)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for r, n := range x.expected {
		if n > 0 {
			x.t.Errorf("expected violation %s did not happen (%d left)", r, n)
		}
	}
}

// rlRefuseN is rlFx.refuse for an ndistest net.
func rlRefuseN(t *testing.T, n *ndistest.Net, rule string, want ndis.Status, fn func() ndis.Status) {
	t.Helper()
	before := n.M.Snapshot().String()
	k := len(n.Seen())
	n.Expect(rule)
	got := fn()
	if got != want {
		t.Errorf("%s: returned %v, want %v", rule, got, want)
	}
	rlNewViolationN(t, n, k, rule, want)
	if after := n.M.Snapshot().String(); after != before {
		t.Errorf("%s: a refused request changed the mediator\nbefore:\n%safter:\n%s", rule, before, after)
	}
}

func rlNewViolationN(t *testing.T, n *ndistest.Net, k int, rule string, st ndis.Status) {
	t.Helper()
	got := n.Seen()[k:]
	if len(got) != 1 || got[0].Rule != rule || got[0].Status != st || !n.SawRule(rule) {
		t.Errorf("want exactly one violation %s (status %v), got %v", rule, st, got)
	}
}
