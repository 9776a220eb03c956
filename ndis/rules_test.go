package ndis_test

// Rule tests: one or more tests per rule ID of spec §6 that the mediator
// enforces (By = N) or observes in a driver (reported as a violation). Each
// provokes the situation, asserts the exact status of spec §10, the rule ID
// of the reported violation, that a refused request changed nothing, and
// that the objects stay usable; it ends with Teardown. docs/rules.md maps
// every rule to its test. This file: R-GEN and R-REG; the others are in
// rules_af_test.go, rules_vc_test.go, rules_call_test.go, rules_data_test.go
// and rules_handles_test.go. The scripted drivers are in
// rules_fixture_test.go.

import (
	"testing"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

func TestRule_R_GEN_1_CompletionWithPendingRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		// try: completing with PENDING is refused with FAILURE and
		// changes nothing; the operation stays pending and its proper
		// completion is then delivered exactly once.
		try := func(what string, complete func(ndis.Status) ndis.Status, delivered func() int) {
			t.Helper()
			x.refuse("R-GEN-1", ndis.StatusFailure, func() ndis.Status { return complete(ndis.StatusPending) })
			if n := delivered(); n != 0 {
				t.Errorf("%s: completion delivered %d times after a refused completion", what, n)
			}
			rlIs(t, what+" completion", complete(ndis.StatusSuccess), ndis.StatusSuccess)
			if n := delivered(); n != 1 {
				t.Errorf("%s: completion delivered %d times, want 1", what, n)
			}
		}
		pend := func(h **ndis.Af) func(*ndis.Af) (any, ndis.Status) {
			return func(af *ndis.Af) (any, ndis.Status) { *h = af; return nil, ndis.StatusPending }
		}

		// Open and close of an address family.
		var openH *ndis.Af
		x.cm.openAf = pend(&openH)
		c3 := x.bindClient("c3")
		rlIs(t, "open", c3.openSt, ndis.StatusPending)
		x.cm.openAf = nil
		try("OpenAf", func(st ndis.Status) ndis.Status { return x.cm.openAfComplete(st, openH, &rlAf{h: openH}) },
			func() int { return c3.count("OpenAfComplete") })
		x.cm.closeAf = func(any) ndis.Status { return ndis.StatusPending }
		rlIs(t, "close", c3.b.ClCloseAddressFamily(c3.af), ndis.StatusPending)
		try("CloseAf", func(st ndis.Status) ndis.Status { return x.cm.closeAfComplete(st, c3.af) },
			func() int { return c3.count("CloseAfComplete") })
		x.cm.closeAf = nil

		// SAP registration and deregistration.
		x.cm.regSap = func(*ndis.Sap) (any, ndis.Status) { return nil, ndis.StatusPending }
		s, st := x.c1.b.ClRegisterSap(x.c1.af, &rlSap{}, memdrv.ServiceSap("svc"))
		rlIs(t, "register", st, ndis.StatusPending)
		try("RegisterSap", func(st ndis.Status) ndis.Status { return x.cm.regSapComplete(st, s, &rlSap{h: s}) },
			func() int { return x.c1.count("RegisterSapComplete") })
		x.cm.deregSap = func(any) ndis.Status { return ndis.StatusPending }
		x.unsap(x.c1, s)
		try("DeregisterSap", func(st ndis.Status) ndis.Status { return x.cm.deregSapComplete(st, s) },
			func() int { return x.c1.count("DeregisterSapComplete") })

		// MakeCall, ModifyCallQoS, CloseCall.
		p := rlParams()
		x.cm.makeCall = func(v *rlVc, p *ndis.CallParameters, _ *ndis.Party) (any, ndis.Status) {
			rlMust(t, x.cm.activate(v.h, p), "activate")
			v.active.Store(true)
			return nil, ndis.StatusPending
		}
		vc := x.newVc(x.c1)
		_, st = x.c1.b.ClMakeCall(vc, p, nil)
		rlIs(t, "make call", st, ndis.StatusPending)
		try("MakeCall", func(st ndis.Status) ndis.Status { return x.cm.makeCallComplete(st, vc, nil, nil, p) },
			func() int { return x.c1.count("MakeCallComplete") })
		x.cm.modifyQoS = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
		rlIs(t, "modify", x.c1.b.ClModifyCallQoS(vc, p), ndis.StatusPending)
		try("ModifyCallQoS", func(st ndis.Status) ndis.Status { return x.cm.modifyQoSComplete(st, vc, p) },
			func() int { return x.c1.count("ModifyCallQoSComplete") })
		x.cm.closeCall = func(v *rlVc, _ any) ndis.Status { x.cm.hangUp(v); return ndis.StatusPending }
		rlIs(t, "close call", x.c1.b.ClCloseCall(vc, nil, nil), ndis.StatusPending)
		try("CloseCall", func(st ndis.Status) ndis.Status { return x.cm.closeCallComplete(st, vc, nil) },
			func() int { return x.c1.count("CloseCallComplete") })
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.cm.makeCall, x.cm.closeCall, x.cm.modifyQoS = nil, nil, nil

		// AddParty and DropParty.
		mvc, p1 := x.mpCall(x.c1)
		x.cm.addParty = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusPending }
		p2, st := x.c1.b.ClAddParty(mvc, &rlParty{}, p)
		rlIs(t, "add party", st, ndis.StatusPending)
		try("AddParty", func(st ndis.Status) ndis.Status { return x.cm.addPartyComplete(st, p2, &rlParty{h: p2}, p) },
			func() int { return x.c1.count("AddPartyComplete") })
		x.cm.dropParty = func(any) ndis.Status { return ndis.StatusPending }
		rlIs(t, "drop party", x.c1.b.ClDropParty(p2, nil), ndis.StatusPending)
		try("DropParty", func(st ndis.Status) ndis.Status { return x.cm.dropPartyComplete(st, p2) },
			func() int { return x.c1.count("DropPartyComplete") })
		x.hangup(x.c1, mvc, p1)

		// OID requests: client to call manager, call manager to client,
		// client to miniport.
		req := &ndis.OidRequest{Oid: ndis.OidCoGetAddresses}
		x.cm.oid = func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		rlIs(t, "client oid", x.c1.b.CoOidRequest(x.c1.af, nil, nil, req), ndis.StatusPending)
		try("CoOidRequest to CM", func(st ndis.Status) ndis.Status { return x.cm.oidRequestComplete(x.c1.af, req, st) },
			func() int { return x.c1.count("CoOidRequestComplete") })
		req2 := &ndis.OidRequest{Oid: ndis.OidCoAddressChange, Type: ndis.OidSet}
		x.c1.oid = func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		rlIs(t, "cm oid", x.cm.oidRequest(x.c1.af, nil, nil, req2), ndis.StatusPending)
		try("CoOidRequest to client", func(st ndis.Status) ndis.Status {
			return x.c1.b.CoOidRequestComplete(x.c1.af, nil, nil, req2, st)
		}, func() int { return x.cm.count("CoOidRequestComplete") })
		req3 := &ndis.OidRequest{Oid: memdrv.OidLinkSpeed}
		if x.mp != nil {
			x.mp.oid = func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		} else {
			x.cm.mpOid = func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		}
		rlIs(t, "miniport oid", x.c2.b.CoOidRequest(nil, nil, nil, req3), ndis.StatusPending)
		try("MiniportCoOidRequest", func(st ndis.Status) ndis.Status { return x.ad.MCoOidRequestComplete(nil, req3, st) },
			func() int { return x.c2.count("CoOidRequestComplete") })

		// Activation and deactivation pended in a CoNDIS miniport (split only:
		// an MCM's activation is synchronous, R-REG-5).
		if x.mp != nil {
			h, _ := x.cmVc(x.c2)
			x.mp.activate = func(*rlMpVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
			rlIs(t, "activate", x.cm.activate(h, p), ndis.StatusPending)
			try("ActivateVc", func(st ndis.Status) ndis.Status { return x.ad.MCoActivateVcComplete(st, h, p) },
				func() int { return x.cm.count("ActivateVcComplete") })
			x.mp.deactivate = func(*rlMpVc) ndis.Status { return ndis.StatusPending }
			rlIs(t, "deactivate", x.cm.deactivate(h), ndis.StatusPending)
			try("DeactivateVc", func(st ndis.Status) ndis.Status { return x.ad.MCoDeactivateVcComplete(st, h) },
				func() int { return x.cm.count("DeactivateVcComplete") })
			rlMust(t, x.cm.del(h), "delete")
		}

		// A pended notify-close (last: the AF is withdrawn from then on).
		x.c2.notifyClose = func() ndis.Status { return ndis.StatusPending }
		rlIs(t, "notify", x.cm.notifyCloseAf(x.c2.af), ndis.StatusPending)
		try("NotifyCloseAf", func(st ndis.Status) ndis.Status {
			return x.c2.b.ClNotifyCloseAddressFamilyComplete(x.c2.af, st)
		}, func() int { return x.cm.count("NotifyCloseAfComplete") })

		x.Teardown()
	})
}

// A send list completed with PENDING is reported and handed back with
// FAILURE (a send has no other completion path, R-DATA-1).
func TestRule_R_GEN_1_SendCompletedWithPending(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		var held *ndis.NetBufferList
		x.setSend(func(_ *ndis.Vc, n *ndis.NetBufferList) { held = n })
		x.c1.b.CoSendNetBufferLists(vc, rlChain("a"), 0)
		x.warned("R-GEN-1", func() { x.complete(vc, held, ndis.StatusPending) })
		if got := x.c1.sent(); len(got) != 1 || got[0] != ndis.StatusFailure {
			t.Errorf("send completions %v, want [FAILURE]", got)
		}
		x.setSend(nil)
		x.c1.b.CoSendNetBufferLists(vc, rlChain("b"), 0)
		if got := x.c1.sent(); len(got) != 2 || got[1] != ndis.StatusSuccess {
			t.Errorf("VC unusable after the violation: %v", got)
		}
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_GEN_2_DoubleCompletionRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		p := rlParams()
		x.cm.makeCall = func(v *rlVc, p *ndis.CallParameters, _ *ndis.Party) (any, ndis.Status) {
			rlMust(t, x.cm.activate(v.h, p), "activate")
			v.active.Store(true)
			return nil, ndis.StatusPending
		}
		vc := x.newVc(x.c1)
		_, st := x.c1.b.ClMakeCall(vc, p, nil)
		rlIs(t, "make call", st, ndis.StatusPending)
		rlMust(t, x.cm.makeCallComplete(ndis.StatusSuccess, vc, nil, nil, p), "complete")
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status {
			return x.cm.makeCallComplete(ndis.StatusSuccess, vc, nil, nil, p)
		})
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status {
			return x.cm.makeCallComplete(ndis.StatusFailure, vc, nil, nil, p)
		})
		if n := x.c1.count("MakeCallComplete"); n != 1 {
			t.Errorf("client saw %d MakeCall completions, want 1", n)
		}
		x.wantState(vc, "ACTIVE/CONNECTED")
		x.cm.makeCall = nil
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

// The same with the in-memory call managers in Pend mode: the test replays
// the call manager's completion after the real one.
func TestRule_R_GEN_2_DoubleCompletionMemdrv(t *testing.T) {
	for _, topo := range ndistest.Topologies {
		t.Run(string(topo), func(t *testing.T) {
			n := ndistest.New(t, topo, memdrv.Pend)
			ca, _, _ := n.Ready("echo")
			v, st := n.Caller.CreateVc(ca)
			rlMust(t, st, "create")
			p := ndistest.Params("echo")
			n.Caller.MakeCall(v, p, false)
			n.Run()
			if !v.Make.ExactlyOnce() || v.Make.Status != ndis.StatusSuccess {
				t.Fatalf("make: %v", v.Make)
			}
			rlRefuseN(t, n, "R-GEN-2", ndis.StatusFailure, func() ndis.Status {
				if n.MCM != nil {
					return n.Adapter.MCmMakeCallComplete(ndis.StatusSuccess, v.H, nil, nil, p)
				}
				return n.CM.Binding().CmMakeCallComplete(ndis.StatusSuccess, v.H, nil, nil, p)
			})
			if v.Make.Completions != 1 {
				t.Errorf("client saw %d completions", v.Make.Completions)
			}
			n.Caller.CloseCall(v)
			n.Run()
			rlMust(t, n.Caller.DeleteVc(v), "delete")
			n.Teardown()
		})
	}
}

func TestRule_R_GEN_2_CompletionWithoutPendingOperation(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		vc := x.call(x.c1)
		p := rlParams()
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.makeCallComplete(ndis.StatusSuccess, vc, nil, nil, p) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.closeCallComplete(ndis.StatusSuccess, vc, nil) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.modifyQoSComplete(ndis.StatusSuccess, vc, p) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.regSapComplete(ndis.StatusSuccess, s, nil) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.deregSapComplete(ndis.StatusSuccess, s) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.openAfComplete(ndis.StatusSuccess, x.c1.af, nil) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.closeAfComplete(ndis.StatusSuccess, x.c1.af) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status {
			return x.c1.b.ClNotifyCloseAddressFamilyComplete(x.c1.af, ndis.StatusSuccess)
		})
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status {
			return x.c1.b.ClIncomingCallComplete(ndis.StatusSuccess, vc, p)
		})
		if x.mp != nil {
			x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.ad.MCoActivateVcComplete(ndis.StatusSuccess, vc, p) })
			x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.ad.MCoDeactivateVcComplete(ndis.StatusSuccess, vc) })
		}
		mvc, p1 := x.mpCall(x.c1)
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.addPartyComplete(ndis.StatusSuccess, p1, &rlParty{}, p) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.dropPartyComplete(ndis.StatusSuccess, p1) })
		// Nothing was delivered and everything still works.
		for _, h := range []string{"MakeCallComplete", "CloseCallComplete", "ModifyCallQoSComplete", "AddPartyComplete", "DropPartyComplete"} {
			if n := x.c1.count(h); n != 0 {
				t.Errorf("%s delivered %d times", h, n)
			}
		}
		x.hangup(x.c1, mvc, p1)
		x.hangup(x.c1, vc, nil)
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

// A handler that calls the completion function and then also returns a
// final status completed twice: the return wins, the completion handler is
// not run (R-GEN-3) and the violation is reported.
func TestRule_R_GEN_2_ReturnedAndCompleted(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.cm.makeCall = func(v *rlVc, p *ndis.CallParameters, _ *ndis.Party) (any, ndis.Status) {
			rlMust(t, x.cm.activate(v.h, p), "activate")
			v.active.Store(true)
			rlIs(t, "early completion", x.cm.makeCallComplete(ndis.StatusSuccess, v.h, nil, nil, p), ndis.StatusSuccess)
			return nil, ndis.StatusSuccess
		}
		vc := x.newVc(x.c1)
		x.warned("R-GEN-2", func() {
			_, st := x.c1.b.ClMakeCall(vc, rlParams(), nil)
			rlIs(t, "make call", st, ndis.StatusSuccess)
		})
		if n := x.c1.count("MakeCallComplete"); n != 0 {
			t.Errorf("completion handler ran %d times after a final return", n)
		}
		x.wantState(vc, "ACTIVE/CONNECTED")
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

// A pended operation that is never completed is reported by Audit.
func TestRule_R_GEN_2_NeverCompletedAudit(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.cm.makeCall = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusPending }
		vc := x.newVc(x.c1)
		p := rlParams()
		_, st := x.c1.b.ClMakeCall(vc, p, nil)
		rlIs(t, "make call", st, ndis.StatusPending)
		for _, r := range []string{"R-GEN-2", "R-VC-14", "R-AF-23", "R-AF-23"} {
			x.Expect(r)
		}
		found := false
		for _, v := range x.m.Audit() {
			if v.Rule == "R-GEN-2" && v.Func == "MakeCall" && v.Object == vc.String() {
				found = true
			}
		}
		if !found || !x.SawRule("R-GEN-2") {
			t.Errorf("audit did not report the MakeCall that never completed")
		}
		rlMust(t, x.cm.makeCallComplete(ndis.StatusFailure, vc, nil, nil, p), "late completion")
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.Teardown()
	})
}

func TestRule_R_GEN_3_NoCompletionHandlerAfterFinalReturn(t *testing.T) {
	for _, topo := range ndistest.Topologies {
		t.Run(string(topo), func(t *testing.T) {
			n := ndistest.New(t, topo, memdrv.Immediate)
			ca, _, s := n.Ready("echo")
			sync := func(what string, r memdrv.Result) {
				t.Helper()
				if r.Returned != ndis.StatusSuccess || r.Completions != 0 || !r.ExactlyOnce() {
					t.Errorf("%s: %v; want SUCCESS returned and no completion", what, r)
				}
			}
			sync("open AF", ca.Open)
			sync("register SAP", s.Register)
			v, st := n.Caller.CreateVc(ca)
			rlMust(t, st, "create")
			n.Mark()
			n.Caller.MakeCall(v, ndistest.Params("echo"), false)
			n.Caller.CloseCall(v)
			n.Run()
			sync("make call", v.Make)
			sync("close call", v.Close)
			for _, u := range n.Upcalls() {
				if u == "caller.ProtocolClMakeCallComplete" || u == "caller.ProtocolClCloseCallComplete" {
					t.Errorf("completion handler %s invoked for a request that returned a final status", u)
				}
			}
			rlMust(t, n.Caller.DeleteVc(v), "delete")
			n.Teardown()
		})
	}
}

func TestRule_R_GEN_4_CompletionExactlyOnceAfterPending(t *testing.T) {
	for _, topo := range ndistest.Topologies {
		for _, mode := range []memdrv.Mode{memdrv.Pend, memdrv.PendEarly} {
			t.Run(string(topo)+"/"+mode.String(), func(t *testing.T) {
				n := ndistest.New(t, topo, mode)
				ca, _, s := n.Ready("echo")
				once := func(what string, r memdrv.Result) {
					t.Helper()
					if r.Returned != ndis.StatusPending || r.Completions != 1 || r.Status != ndis.StatusSuccess {
						t.Errorf("%s: %v; want PENDING and exactly one SUCCESS completion", what, r)
					}
				}
				once("open AF", ca.Open)
				once("register SAP", s.Register)
				v, st := n.Caller.CreateVc(ca)
				rlMust(t, st, "create")
				n.Mark()
				n.Caller.MakeCall(v, ndistest.Params("echo"), false)
				n.Run()
				n.Caller.CloseCall(v)
				n.Run()
				once("make call", v.Make)
				once("close call", v.Close)
				count := map[string]int{}
				for _, u := range n.Upcalls() {
					count[u]++
				}
				if count["caller.ProtocolClMakeCallComplete"] != 1 || count["caller.ProtocolClCloseCallComplete"] != 1 {
					t.Errorf("completion upcalls %v", count)
				}
				rlMust(t, n.Caller.DeleteVc(v), "delete")
				n.Teardown()
			})
		}
	}
}

func TestRule_R_GEN_5_CreateAndDeleteHandlersMustNotPend(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		// The client's ProtocolCoCreateVc pends for a call-manager VC.
		var got *ndis.Vc
		x.c2.createVc = func(vc *ndis.Vc) (any, ndis.Status) { got = vc; return &rlVc{h: vc}, ndis.StatusPending }
		x.Mark()
		x.check("R-GEN-5", ndis.StatusFailure, ndis.StatusSuccess, func() ndis.Status {
			_, _, st := x.cm.createVcOn(x.c2.af)
			return st
		})
		if x.c2.count("CoDeleteVc") != 1 {
			t.Errorf("the client's VC context was not deleted (R-GEN-6)")
		}
		if x.mp != nil && (x.mp.count("CreateVc") != 1 || x.mp.count("DeleteVc") != 1) {
			t.Errorf("miniport create/delete not paired: %v", x.mp.all())
		}
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { return x.cm.activate(got, rlParams()) })
		x.c2.createVc = nil

		// The call manager's ProtocolCoCreateVc pends for a client VC.
		x.cm.createVc = func(vc *ndis.Vc) (any, ndis.Status) { return &rlVc{h: vc}, ndis.StatusPending }
		x.check("R-GEN-5", ndis.StatusFailure, ndis.StatusSuccess, func() ndis.Status {
			_, st := x.c1.b.CoCreateVc(x.c1.af, &rlVc{})
			return st
		})
		x.cm.createVc = nil

		// The call manager's ProtocolCoDeleteVc pends: the deletion is
		// refused and the VC kept, usable, and deletable later.
		vc := x.newVc(x.c1)
		x.cm.deleteVc = func(any) ndis.Status { return ndis.StatusPending }
		x.Mark()
		x.refuse("R-GEN-5", ndis.StatusNotAccepted, func() ndis.Status { return x.c1.b.CoDeleteVc(vc) })
		if n := x.upcalled("MiniportCoDeleteVc"); n != 0 {
			t.Errorf("miniport deleted a VC the peer kept")
		}
		x.cm.deleteVc = nil
		_, st := x.c1.b.ClMakeCall(vc, rlParams(), nil)
		rlMust(t, st, "VC usable after the refused deletion")
		x.hangup(x.c1, vc, nil)

		if x.mp != nil {
			// MiniportCoCreateVc pends.
			x.mp.create = func(vc *ndis.Vc) (any, ndis.Status) { return &rlMpVc{h: vc}, ndis.StatusPending }
			x.check("R-GEN-5", ndis.StatusFailure, ndis.StatusSuccess, func() ndis.Status {
				_, st := x.c1.b.CoCreateVc(x.c1.af, &rlVc{})
				return st
			})
			x.mp.create = nil
			// MiniportCoDeleteVc pends: reported, the deletion completes.
			vc := x.newVc(x.c1)
			x.mp.del = func(any) ndis.Status { return ndis.StatusPending }
			x.warned("R-GEN-5", func() { rlIs(t, "delete", x.c1.b.CoDeleteVc(vc), ndis.StatusSuccess) })
			x.wantState(vc, "gone")
			x.mp.del = nil
		}
		x.Teardown()
	})
}

func TestRule_R_GEN_6_PendingCreateVcDeletesTheVc(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		var h *ndis.Vc
		var ctx *rlVc
		x.c2.createVc = func(vc *ndis.Vc) (any, ndis.Status) {
			h, ctx = vc, &rlVc{h: vc}
			return ctx, ndis.StatusPending
		}
		var deleted any
		x.c2.deleteVc = func(c any) ndis.Status { deleted = c; return ndis.StatusSuccess }
		x.Expect("R-GEN-5")
		vc, _, st := x.cm.createVcOn(x.c2.af)
		rlIs(t, "create", st, ndis.StatusFailure)
		if vc != nil {
			t.Errorf("a handle was returned for a VC that was deleted")
		}
		if deleted != ctx {
			t.Errorf("ProtocolCoDeleteVc got %v, want the context ProtocolCoCreateVc returned", deleted)
		}
		if x.state(h) != "gone" {
			t.Errorf("VC still in the mediator: %s", x.snap())
		}
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status {
			return x.cm.dispatchIncomingCall(nil, h, rlParams())
		})
		x.c2.reset()
		h2, _ := x.cmVc(x.c2)
		rlMust(t, x.cm.del(h2), "AF still usable for VCs")
		x.Teardown()
	})
}

// NDIS keeps the objects and buffers of a pended operation alive until the
// completion is delivered: requests that would release them are refused
// (with the rule of the object concerned), and the completion carries the
// buffers given to the request.
func TestRule_R_GEN_7_PendedResourcesKept(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		// A pended MakeCall keeps the VC.
		x.cm.makeCall = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusPending }
		vc := x.newVc(x.c1)
		p := rlParams()
		_, st := x.c1.b.ClMakeCall(vc, p, nil)
		rlIs(t, "make call", st, ndis.StatusPending)
		x.refuse("R-VC-6", ndis.StatusNotAccepted, func() ndis.Status { return x.c1.b.CoDeleteVc(vc) })
		x.refuse("R-AF-12", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseAddressFamily(x.c1.af) })
		rlMust(t, x.cm.makeCallComplete(ndis.StatusFailure, vc, nil, nil, p), "complete")
		x.c1.mu.Lock()
		same := x.c1.params == p
		x.c1.mu.Unlock()
		if !same {
			t.Errorf("the completion did not carry the client's CallParameters buffer")
		}
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete after the completion")
		x.cm.makeCall = nil

		// A pended AddParty keeps the party and the call.
		mvc, p1 := x.mpCall(x.c1)
		x.cm.addParty = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusPending }
		p2, st := x.c1.b.ClAddParty(mvc, &rlParty{}, p)
		rlIs(t, "add party", st, ndis.StatusPending)
		x.refuse("R-PTY-7", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDropParty(p2, nil) })
		x.refuse("R-CLOSE-4", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseCall(mvc, p1, nil) })
		rlMust(t, x.cm.addPartyComplete(ndis.StatusSuccess, p2, &rlParty{h: p2}, p), "complete add")
		rlMust(t, x.c1.b.ClDropParty(p2, nil), "drop")
		x.hangup(x.c1, mvc, p1)

		// A pended SAP registration keeps the SAP and the AF.
		x.cm.regSap = func(*ndis.Sap) (any, ndis.Status) { return nil, ndis.StatusPending }
		s, st := x.c1.b.ClRegisterSap(x.c1.af, &rlSap{}, memdrv.ServiceSap("svc"))
		rlIs(t, "register", st, ndis.StatusPending)
		x.refuse("R-SAP-6", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDeregisterSap(s) })
		x.refuse("R-AF-12", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseAddressFamily(x.c1.af) })
		rlMust(t, x.cm.regSapComplete(ndis.StatusSuccess, s, &rlSap{h: s}), "complete register")
		x.unsap(x.c1, s)

		// A pended open keeps the AF.
		var h *ndis.Af
		x.cm.openAf = func(af *ndis.Af) (any, ndis.Status) { h = af; return nil, ndis.StatusPending }
		c3 := x.bindClient("c3")
		x.refuse("R-AF-8", ndis.StatusFailure, func() ndis.Status { return c3.b.ClCloseAddressFamily(h) })
		rlMust(t, x.cm.openAfComplete(ndis.StatusSuccess, h, &rlAf{h: h}), "complete open")
		x.Teardown()
	})
}

func TestRule_R_GEN_8_ForeignHandlesRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		vc2, p2 := x.mpCall(x.c2)
		p := rlParams()
		x.refuse("R-GEN-8", ndis.StatusFailure, func() ndis.Status {
			_, st := x.c1.b.ClRegisterSap(x.c2.af, &rlSap{}, memdrv.ServiceSap("x"))
			return st
		})
		x.refuse("R-GEN-8", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseAddressFamily(x.c2.af) })
		x.refuse("R-GEN-8", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDeregisterSap(s) })
		x.refuse("R-GEN-8", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDropParty(p2, nil) })
		x.refuse("R-GEN-8", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClIncomingCallComplete(ndis.StatusSuccess, vc2, p) })
		x.refuse("R-GEN-8", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseCall(vc2, p2, nil) })
		x.refuse("R-GEN-8", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClModifyCallQoS(vc2, p) })
		x.refuse("R-GEN-8", ndis.StatusFailure, func() ndis.Status {
			return x.c1.b.CoOidRequest(nil, vc2, nil, &ndis.OidRequest{})
		})
		x.refuse("R-GEN-8", ndis.StatusFailure, func() ndis.Status {
			return x.c1.b.ClNotifyCloseAddressFamilyComplete(x.c2.af, ndis.StatusSuccess)
		})
		x.refuse("R-GEN-8", ndis.StatusFailure, func() ndis.Status {
			return x.ad.MCoSendNetBufferListsComplete(nil, rlChain("x"), 0)
		})
		// A send on another client's VC completes with FAILURE.
		x.check("R-GEN-8", ndis.StatusFailure, ndis.StatusFailure, func() ndis.Status {
			x.c1.b.CoSendNetBufferLists(vc2, rlChain("x"), 0)
			return x.c1.sent()[0]
		})
		x.hangup(x.c2, vc2, p2)
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_GEN_9_CmAndMCmFunctionsByRole(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		p := rlParams()
		// A client calling NdisCm* functions on its own objects.
		x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status {
			return x.c1.b.CmMakeCallComplete(ndis.StatusSuccess, vc, nil, nil, p)
		})
		x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status {
			return x.c1.b.CmDispatchIncomingCloseCall(ndis.StatusSuccess, vc, nil)
		})
		x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status {
			return x.c1.b.CmOpenAddressFamilyComplete(ndis.StatusSuccess, x.c1.af, nil)
		})
		x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CmNotifyCloseAddressFamily(x.c1.af) })
		if x.mp != nil {
			// A CoNDIS miniport calling NdisMCm* functions.
			x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status { return x.ad.MCmRegisterAddressFamilyEx(memdrv.AF) })
			x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status {
				_, st := x.ad.MCmCreateVc(x.c1.af, nil)
				return st
			})
			x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status { return x.ad.MCmActivateVc(vc, p) })
			x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status { return x.ad.MCmDeactivateVc(vc) })
			x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status { return x.ad.MCmDeleteVc(vc) })
			x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status {
				return x.ad.MCmOidRequest(x.c1.af, nil, nil, &ndis.OidRequest{})
			})
			x.refuse("R-GEN-9", ndis.StatusFailure, func() ndis.Status {
				return x.ad.MCmMakeCallComplete(ndis.StatusSuccess, vc, nil, nil, p)
			})
		}
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_GEN_10_CompletionBeforePendingReturn(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		returned := false
		var early bool
		x.cm.makeCall = func(v *rlVc, p *ndis.CallParameters, _ *ndis.Party) (any, ndis.Status) {
			rlMust(t, x.cm.activate(v.h, p), "activate")
			v.active.Store(true)
			rlMust(t, x.cm.makeCallComplete(ndis.StatusSuccess, v.h, nil, nil, p), "complete inside the handler")
			return nil, ndis.StatusPending
		}
		vc := x.newVc(x.c1)
		_, st := x.c1.b.ClMakeCall(vc, rlParams(), nil)
		early = x.c1.count("MakeCallComplete") == 1 && !returned
		returned = true
		rlIs(t, "make call", st, ndis.StatusPending)
		if !early {
			t.Errorf("completion not delivered before the PENDING return")
		}
		if n := x.c1.count("MakeCallComplete"); n != 1 {
			t.Errorf("%d completions", n)
		}
		x.wantState(vc, "ACTIVE/CONNECTED")

		// Same for an OID request.
		req := &ndis.OidRequest{Oid: ndis.OidCoGetAddresses}
		x.cm.oid = func(r *ndis.OidRequest) ndis.Status {
			rlMust(t, x.cm.oidRequestComplete(x.c1.af, r, ndis.StatusSuccess), "complete oid inside the handler")
			return ndis.StatusPending
		}
		rlIs(t, "oid", x.c1.b.CoOidRequest(x.c1.af, nil, nil, req), ndis.StatusPending)
		if n := x.c1.count("CoOidRequestComplete(NDIS_STATUS_SUCCESS)"); n != 1 {
			t.Errorf("oid completions %d", n)
		}
		x.cm.makeCall = nil
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_REG_1_ProtocolHandlersRequired(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.refuse("R-REG-1", ndis.StatusFailure, func() ndis.Status {
			_, st := x.m.BindAdapter(x.ad, "nil", nil, nil, nil)
			return st
		})
		// A protocol without client handlers cannot act as a client.
		pcm := &rlCM{x: x, name: "pcm"}
		b, st := x.m.BindAdapter(x.ad, "pcm", pcm, pcm, nil)
		rlMust(t, st, "bind")
		x.refuse("R-REG-1", ndis.StatusFailure, func() ndis.Status {
			_, st := b.ClOpenAddressFamilyEx(memdrv.AF, nil)
			return st
		})
		rlMust(t, b.CloseAdapterEx(), "unbind")
		x.Teardown()
	})
}

func TestRule_R_REG_3_MCMHasNoMiniportCreateDeleteVc(t *testing.T) {
	rlOnly(t, ndistest.MCM, func(t *testing.T, x *rlFx) {
		x.Mark()
		vc := x.newVc(x.c1)
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		h, _ := x.cmVc(x.c2)
		rlMust(t, x.cm.del(h), "delete")
		want := []string{"mcm.ProtocolCoCreateVc", "mcm.ProtocolCoDeleteVc", "c2.ProtocolCoCreateVc", "c2.ProtocolCoDeleteVc"}
		if got := x.Upcalls(); !rlEqual(got, want) {
			t.Errorf("upcalls %v, want %v", got, want)
		}
		x.Teardown()
	})
}

func rlEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRule_R_REG_5_NoActivateCompletionForMCM(t *testing.T) {
	rlOnly(t, ndistest.MCM, func(t *testing.T, x *rlFx) {
		h, _ := x.cmVc(x.c2)
		p := rlParams()
		x.Mark()
		rlMust(t, x.cm.activate(h, p), "activate")
		rlMust(t, x.cm.activate(h, p), "re-activate")
		rlMust(t, x.cm.deactivate(h), "deactivate")
		if got := x.Upcalls(); len(got) != 0 {
			t.Errorf("MCM activation invoked handlers: %v", got)
		}
		rlMust(t, x.cm.activate(h, p), "activate")
		x.refuse("R-REG-5", ndis.StatusFailure, func() ndis.Status { return x.ad.MCoActivateVcComplete(ndis.StatusSuccess, h, p) })
		x.refuse("R-REG-5", ndis.StatusFailure, func() ndis.Status { return x.ad.MCoDeactivateVcComplete(ndis.StatusSuccess, h) })
		if n := x.cm.count("ActivateVcComplete") + x.cm.count("DeactivateVcComplete"); n != 0 {
			t.Errorf("MCM got %d activation completions", n)
		}
		rlMust(t, x.cm.deactivate(h), "deactivate")
		rlMust(t, x.cm.del(h), "delete")
		x.Teardown()
	})
}

// A stand-alone CM's OID requests complete through its
// ProtocolCoOidRequestComplete (the only completion handler a Protocol has).
func TestRule_R_REG_6_CMOidCompletionsToCoHandler(t *testing.T) {
	rlOnly(t, ndistest.Split, func(t *testing.T, x *rlFx) {
		x.mp.oid = func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		req := &ndis.OidRequest{Oid: memdrv.OidLinkSpeed}
		rlIs(t, "oid", x.cm.b.CoOidRequest(nil, nil, nil, req), ndis.StatusPending)
		rlMust(t, x.ad.MCoOidRequestComplete(nil, req, ndis.StatusSuccess), "complete")
		if n := x.cm.count("CoOidRequestComplete(NDIS_STATUS_SUCCESS)"); n != 1 {
			t.Errorf("CM got %d completions", n)
		}
		x.Teardown()
	})
}

func TestRule_R_REG_7_MiniportHandlersRequired(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.refuse("R-REG-7", ndis.StatusFailure, func() ndis.Status {
			_, st := x.m.AddMiniport("nil", nil, nil, nil)
			return st
		})
		x.refuse("R-REG-7", ndis.StatusFailure, func() ndis.Status {
			_, st := x.m.AddMiniportCallManager("nil", nil, nil, nil)
			return st
		})
		x.Teardown()
	})
}
