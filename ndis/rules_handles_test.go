package ndis_test

// Every entry point given a nil handle, a dead one (a deleted VC, a closed
// AF, a deregistered SAP, a dropped party) or called on a dead receiver (a
// closed binding, a halted adapter) returns a failure status, reports a
// violation and does not panic.

import (
	"reflect"
	"strings"
	"testing"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

type rlCall struct {
	name string // "Method/variant"
	fn   func() ndis.Status
}

func TestRule_EveryEntryPointRefusesNilAndDeadHandles(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		p := rlParams()
		ind := &ndis.StatusIndication{StatusCode: ndis.StatusMediaConnect}
		// Live objects, so that only the handle under test is wrong.
		live := x.call(x.c1)
		s := x.sap(x.c1, "svc")
		mvc, p1 := x.mpCall(x.c1)
		// Dead objects.
		deadVc := x.newVc(x.c1)
		tapi, st := x.c1.b.CoGetTapiCallId(deadVc)
		rlMust(t, st, "tapi id")
		rlMust(t, x.c1.b.CoDeleteVc(deadVc), "delete")
		deadCmVc, _ := x.cmVc(x.c2)
		rlMust(t, x.cm.del(deadCmVc), "delete")
		deadSap := x.sap(x.c1, "gone")
		x.unsap(x.c1, deadSap)
		deadParty := x.addParty(x.c1, mvc)
		rlMust(t, x.c1.b.ClDropParty(deadParty, nil), "drop")
		c3 := x.bindClient("c3")
		deadAf := c3.af
		rlMust(t, c3.b.ClCloseAddressFamily(deadAf), "close")
		c4 := x.bindClient("c4", func(c *rlClient) { c.autoOpen = false })
		rlMust(t, c4.b.CloseAdapterEx(), "unbind")
		deadB := c4.b
		mp2 := &rlMiniport{x: x, name: "mp2"}
		deadMp, st := x.m.AddMiniport("mp2", mp2, mp2, nil)
		rlMust(t, st, "add")
		rlMust(t, deadMp.RemoveAdapter(), "halt")
		mcm2 := &rlCM{x: x, name: "mcm2"}
		deadMcm, st := x.m.AddMiniportCallManager("mcm2", mcm2, mcm2, func(a *ndis.Adapter) ndis.Status { mcm2.a = a; return ndis.StatusSuccess })
		rlMust(t, st, "add")
		rlMust(t, deadMcm.RemoveAdapter(), "halt")
		var nilVc *ndis.Vc
		var nilAf *ndis.Af
		var nilSap *ndis.Sap
		var nilParty *ndis.Party
		send := func(b *ndis.Binding, vc *ndis.Vc) func() ndis.Status {
			return func() ndis.Status {
				var got ndis.Status = ndis.StatusPending
				x.c1.mu.Lock()
				n := len(x.c1.sendDone)
				x.c1.mu.Unlock()
				c := x.clientOf(b)
				c.b.CoSendNetBufferLists(vc, rlChain("x"), 0)
				if sent := c.sent(); len(sent) > n || c != x.c1 && len(sent) > 0 {
					got = sent[len(sent)-1]
				}
				return got
			}
		}
		cmB := x.c1.b // the caller of NdisCm*: the stand-alone CM, or a client on an MCM
		if x.cm.b != nil {
			cmB = x.cm.b
		}
		b, a := x.c1.b, x.ad
		var calls []rlCall
		add := func(name string, fn func() ndis.Status) { calls = append(calls, rlCall{name, fn}) }

		// *ndis.Binding.
		add("CloseAdapterEx/dead", deadB.CloseAdapterEx)
		add("CmRegisterAddressFamilyEx/dead", func() ndis.Status { return deadB.CmRegisterAddressFamilyEx(rlL2TP) })
		add("ClOpenAddressFamilyEx/dead", func() ndis.Status { _, st := deadB.ClOpenAddressFamilyEx(memdrv.AF, nil); return st })
		for _, af := range []*ndis.Af{nilAf, deadAf} {
			add("CmOpenAddressFamilyComplete", func() ndis.Status { return cmB.CmOpenAddressFamilyComplete(ndis.StatusSuccess, af, nil) })
			add("ClCloseAddressFamily", func() ndis.Status { return c3.b.ClCloseAddressFamily(af) })
			add("CmCloseAddressFamilyComplete", func() ndis.Status { return cmB.CmCloseAddressFamilyComplete(ndis.StatusSuccess, af) })
			add("CmNotifyCloseAddressFamily", func() ndis.Status { return cmB.CmNotifyCloseAddressFamily(af) })
			add("ClNotifyCloseAddressFamilyComplete", func() ndis.Status { return c3.b.ClNotifyCloseAddressFamilyComplete(af, ndis.StatusSuccess) })
			add("ClRegisterSap", func() ndis.Status { _, st := c3.b.ClRegisterSap(af, &rlSap{}, memdrv.ServiceSap("x")); return st })
			add("CoCreateVc", func() ndis.Status {
				if af == nil {
					_, st := b.CoCreateVc(af, &rlVc{}) // a client's nil AF
					return st
				}
				_, st := c3.b.CoCreateVc(af, &rlVc{})
				return st
			})
			if af != nil { // a nil AF addresses the miniport
				add("CoOidRequest/af", func() ndis.Status { return c3.b.CoOidRequest(af, nil, nilParty, &ndis.OidRequest{}) })
			}
			add("CoOidRequestComplete/af", func() ndis.Status {
				return c3.b.CoOidRequestComplete(af, nil, nil, &ndis.OidRequest{}, ndis.StatusSuccess)
			})
		}
		for _, vc := range []*ndis.Vc{nilVc, deadVc, deadCmVc} {
			add("ClMakeCall", func() ndis.Status { _, st := b.ClMakeCall(vc, p, nil); return st })
			add("CmMakeCallComplete", func() ndis.Status { return cmB.CmMakeCallComplete(ndis.StatusSuccess, vc, nil, nil, p) })
			add("CmDispatchIncomingCall", func() ndis.Status { return cmB.CmDispatchIncomingCall(s, vc, p) })
			add("ClIncomingCallComplete", func() ndis.Status { return b.ClIncomingCallComplete(ndis.StatusSuccess, vc, p) })
			add("CmDispatchCallConnected", func() ndis.Status { return cmB.CmDispatchCallConnected(vc) })
			add("CmDispatchIncomingCloseCall", func() ndis.Status { return cmB.CmDispatchIncomingCloseCall(ndis.StatusSuccess, vc, nil) })
			add("ClCloseCall", func() ndis.Status { return b.ClCloseCall(vc, nil, nil) })
			add("CmCloseCallComplete", func() ndis.Status { return cmB.CmCloseCallComplete(ndis.StatusSuccess, vc, nil) })
			add("CoSendNetBufferLists", send(b, vc))
			add("CoAssignInstanceName", func() ndis.Status { _, st := b.CoAssignInstanceName(vc, "x"); return st })
			add("CoGetTapiCallId", func() ndis.Status { _, st := b.CoGetTapiCallId(vc); return st })
			if vc != nil { // a nil VC makes an adapter-wide request
				add("CoOidRequest/vc", func() ndis.Status { return b.CoOidRequest(nil, vc, nil, &ndis.OidRequest{}) })
			}
			add("ClAddParty", func() ndis.Status { _, st := b.ClAddParty(vc, &rlParty{}, p); return st })
			add("ClModifyCallQoS", func() ndis.Status { return b.ClModifyCallQoS(vc, p) })
			add("CmModifyCallQoSComplete", func() ndis.Status { return cmB.CmModifyCallQoSComplete(ndis.StatusSuccess, vc, p) })
			add("CmDispatchIncomingCallQoSChange", func() ndis.Status { return cmB.CmDispatchIncomingCallQoSChange(vc, p) })
			add("CoDeleteVc", func() ndis.Status { return b.CoDeleteVc(vc) })
			add("CmActivateVc", func() ndis.Status { return cmB.CmActivateVc(vc, p) })
			add("CmDeactivateVc", func() ndis.Status { return cmB.CmDeactivateVc(vc) })
		}
		add("ReturnNetBufferLists/never indicated", func() ndis.Status { return b.ReturnNetBufferLists(rlChain("x"), 0) })
		add("ClGetProtocolVcContextFromTapiCallId/dead", func() ndis.Status { _, st := b.ClGetProtocolVcContextFromTapiCallId(tapi); return st })
		add("ClGetProtocolVcContextFromTapiCallId/garbage", func() ndis.Status { _, st := b.ClGetProtocolVcContextFromTapiCallId(""); return st })
		for _, pt := range []*ndis.Party{nilParty, deadParty} {
			add("CmAddPartyComplete", func() ndis.Status { return cmB.CmAddPartyComplete(ndis.StatusSuccess, pt, &rlParty{}, p) })
			add("ClDropParty", func() ndis.Status { return b.ClDropParty(pt, nil) })
			add("CmDropPartyComplete", func() ndis.Status { return cmB.CmDropPartyComplete(ndis.StatusSuccess, pt) })
			add("CmDispatchIncomingDropParty", func() ndis.Status { return cmB.CmDispatchIncomingDropParty(ndis.StatusSuccess, pt, nil) })
		}
		add("CoOidRequest/dead party", func() ndis.Status { return b.CoOidRequest(x.c1.af, mvc, deadParty, &ndis.OidRequest{}) })
		add("CoOidRequestComplete/nil request", func() ndis.Status { return b.CoOidRequestComplete(x.c1.af, nil, nil, nil, ndis.StatusSuccess) })
		for _, sp := range []*ndis.Sap{nilSap, deadSap} {
			add("CmRegisterSapComplete", func() ndis.Status { return cmB.CmRegisterSapComplete(ndis.StatusSuccess, sp, nil) })
			add("ClDeregisterSap", func() ndis.Status { return b.ClDeregisterSap(sp) })
			add("CmDeregisterSapComplete", func() ndis.Status { return cmB.CmDeregisterSapComplete(ndis.StatusSuccess, sp) })
			add("CmDispatchIncomingCall/sap", func() ndis.Status {
				h, _ := x.cmVc(x.c1)
				defer x.cm.del(h)
				return x.cm.dispatchIncomingCall(sp, h, p)
			})
		}

		// *ndis.Adapter: the topology's adapter with nil and dead handles,
		// and halted adapters with live ones.
		add("RemoveAdapter/dead", deadMp.RemoveAdapter)
		add("MCmRegisterAddressFamilyEx/dead", func() ndis.Status { return deadMcm.MCmRegisterAddressFamilyEx(rlL2TP) })
		for _, af := range []*ndis.Af{nilAf, deadAf} {
			add("MCmOpenAddressFamilyComplete", func() ndis.Status { return a.MCmOpenAddressFamilyComplete(ndis.StatusSuccess, af, nil) })
			add("MCmCloseAddressFamilyComplete", func() ndis.Status { return a.MCmCloseAddressFamilyComplete(ndis.StatusSuccess, af) })
			add("MCmNotifyCloseAddressFamily", func() ndis.Status { return a.MCmNotifyCloseAddressFamily(af) })
			add("MCmCreateVc", func() ndis.Status { _, st := a.MCmCreateVc(af, &rlVc{}); return st })
			add("MCmOidRequest", func() ndis.Status { return a.MCmOidRequest(af, nil, nil, &ndis.OidRequest{}) })
			add("MCmOidRequestComplete", func() ndis.Status {
				return a.MCmOidRequestComplete(af, nil, nil, &ndis.OidRequest{}, ndis.StatusSuccess)
			})
		}
		for _, vc := range []*ndis.Vc{nilVc, deadVc, deadCmVc} {
			add("MCmMakeCallComplete", func() ndis.Status { return a.MCmMakeCallComplete(ndis.StatusSuccess, vc, nil, nil, p) })
			add("MCmDispatchIncomingCall", func() ndis.Status { return a.MCmDispatchIncomingCall(s, vc, p) })
			add("MCmDispatchCallConnected", func() ndis.Status { return a.MCmDispatchCallConnected(vc) })
			add("MCmDispatchIncomingCloseCall", func() ndis.Status { return a.MCmDispatchIncomingCloseCall(ndis.StatusSuccess, vc, nil) })
			add("MCmCloseCallComplete", func() ndis.Status { return a.MCmCloseCallComplete(ndis.StatusSuccess, vc, nil) })
			add("MCoSendNetBufferListsComplete", func() ndis.Status { return a.MCoSendNetBufferListsComplete(vc, rlChain("x"), 0) })
			add("MCoIndicateReceiveNetBufferLists", func() ndis.Status {
				return a.MCoIndicateReceiveNetBufferLists(vc, rlChain("x"), 1, ndis.ReceiveFlagsResources)
			})
			add("MCoIndicateStatusEx", func() ndis.Status {
				if vc == nil {
					return a.MCoIndicateStatusEx(nil, nil) // a nil VC is legal; a nil indication is not
				}
				return a.MCoIndicateStatusEx(vc, ind)
			})
			add("MCoOidRequestComplete", func() ndis.Status { return a.MCoOidRequestComplete(vc, &ndis.OidRequest{}, ndis.StatusSuccess) })
			add("MCmModifyCallQoSComplete", func() ndis.Status { return a.MCmModifyCallQoSComplete(ndis.StatusSuccess, vc, p) })
			add("MCmDispatchIncomingCallQoSChange", func() ndis.Status { return a.MCmDispatchIncomingCallQoSChange(vc, p) })
			add("MCmDeleteVc", func() ndis.Status { return a.MCmDeleteVc(vc) })
			add("MCoActivateVcComplete", func() ndis.Status { return a.MCoActivateVcComplete(ndis.StatusSuccess, vc, p) })
			add("MCoDeactivateVcComplete", func() ndis.Status { return a.MCoDeactivateVcComplete(ndis.StatusSuccess, vc) })
			add("MCmActivateVc", func() ndis.Status { return a.MCmActivateVc(vc, p) })
			add("MCmDeactivateVc", func() ndis.Status { return a.MCmDeactivateVc(vc) })
			if vc != nil {
				add("MCmOidRequest/vc", func() ndis.Status { return a.MCmOidRequest(x.c2.af, vc, nil, &ndis.OidRequest{}) })
			}
		}
		for _, pt := range []*ndis.Party{nilParty, deadParty} {
			add("MCmAddPartyComplete", func() ndis.Status { return a.MCmAddPartyComplete(ndis.StatusSuccess, pt, &rlParty{}, p) })
			add("MCmDropPartyComplete", func() ndis.Status { return a.MCmDropPartyComplete(ndis.StatusSuccess, pt) })
			add("MCmDispatchIncomingDropParty", func() ndis.Status { return a.MCmDispatchIncomingDropParty(ndis.StatusSuccess, pt, nil) })
			if pt != nil { // a nil party makes a VC-wide request
				add("MCmOidRequest/party", func() ndis.Status { return a.MCmOidRequest(x.c1.af, mvc, pt, &ndis.OidRequest{}) })
			}
		}
		for _, sp := range []*ndis.Sap{nilSap, deadSap} {
			add("MCmRegisterSapComplete", func() ndis.Status { return a.MCmRegisterSapComplete(ndis.StatusSuccess, sp, nil) })
			add("MCmDeregisterSapComplete", func() ndis.Status { return a.MCmDeregisterSapComplete(ndis.StatusSuccess, sp) })
		}
		// Dead receivers with live handles.
		for _, da := range []*ndis.Adapter{deadMp, deadMcm} {
			add("RemoveAdapter/halted", da.RemoveAdapter)
			add("MCoIndicateStatusEx/halted", func() ndis.Status { return da.MCoIndicateStatusEx(nil, ind) })
			add("MCoIndicateStatusEx/halted-vc", func() ndis.Status { return da.MCoIndicateStatusEx(live, ind) })
			add("MCoIndicateReceiveNetBufferLists/halted", func() ndis.Status {
				return da.MCoIndicateReceiveNetBufferLists(live, rlChain("x"), 1, ndis.ReceiveFlagsResources)
			})
			add("MCoSendNetBufferListsComplete/halted", func() ndis.Status { return da.MCoSendNetBufferListsComplete(live, rlChain("x"), 0) })
			add("MCmCreateVc/halted", func() ndis.Status { _, st := da.MCmCreateVc(x.c1.af, &rlVc{}); return st })
			add("MCmActivateVc/halted", func() ndis.Status { return da.MCmActivateVc(live, p) })
			add("MCmDeleteVc/halted", func() ndis.Status { return da.MCmDeleteVc(live) })
			add("MCmMakeCallComplete/halted", func() ndis.Status { return da.MCmMakeCallComplete(ndis.StatusSuccess, live, nil, nil, p) })
			add("MCmOidRequest/halted", func() ndis.Status { return da.MCmOidRequest(x.c1.af, nil, nil, &ndis.OidRequest{}) })
			add("MCoActivateVcComplete/halted", func() ndis.Status { return da.MCoActivateVcComplete(ndis.StatusSuccess, live, p) })
		}
		add("CoSendNetBufferLists/closed binding", send(deadB, live))
		add("CoOidRequest/closed binding", func() ndis.Status { return deadB.CoOidRequest(nil, live, nil, &ndis.OidRequest{}) })
		add("CoOidRequest/closed binding, adapter-wide", func() ndis.Status { return deadB.CoOidRequest(nil, nil, nil, &ndis.OidRequest{}) })
		add("CoAssignInstanceName/closed binding", func() ndis.Status { _, st := deadB.CoAssignInstanceName(live, "x"); return st })
		add("CoGetTapiCallId/closed binding", func() ndis.Status { _, st := deadB.CoGetTapiCallId(live); return st })
		add("ClMakeCall/closed binding", func() ndis.Status { _, st := deadB.ClMakeCall(live, p, nil); return st })
		add("CoDeleteVc/closed binding", func() ndis.Status { return deadB.CoDeleteVc(live) })

		// Every method of both handle types is covered.
		covered := map[string]bool{}
		for _, c := range calls {
			covered[strings.SplitN(c.name, "/", 2)[0]] = true
		}
		accessors := map[string]bool{"String": true, "Adapter": true, "IsMCM": true, "Mediator": true, "Bound": true}
		for _, typ := range []reflect.Type{reflect.TypeOf((*ndis.Binding)(nil)), reflect.TypeOf((*ndis.Adapter)(nil))} {
			for i := 0; i < typ.NumMethod(); i++ {
				if name := typ.Method(i).Name; !accessors[name] && !covered[name] {
					t.Errorf("%v.%s is not covered by the nil/dead handle table", typ, name)
				}
			}
		}

		before := x.snap()
		x.lenient = true
		for _, c := range calls {
			n := len(x.Seen())
			var st ndis.Status
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s panicked: %v", c.name, r)
					}
				}()
				st = c.fn()
			}()
			if st == ndis.StatusSuccess || st == ndis.StatusPending {
				t.Errorf("%s returned %v", c.name, st)
			}
			if len(x.Seen()) == n {
				t.Errorf("%s: no violation reported", c.name)
			}
		}
		x.lenient = false
		if after := x.snap(); after != before {
			t.Errorf("refused calls changed the mediator\nbefore:\n%safter:\n%s", before, after)
		}
		// Everything live still works.
		rlIs(t, "send", x.sendStatus(x.c1, live), ndis.StatusSuccess)
		x.hangup(x.c1, live, nil)
		x.hangup(x.c1, mvc, p1)
		x.unsap(x.c1, s)
		x.Teardown()
	})
}

// clientOf returns the scripted client bound as b.
func (x *rlFx) clientOf(b *ndis.Binding) *rlClient {
	for _, c := range x.clients {
		if c.b == b {
			return c
		}
	}
	return nil
}
