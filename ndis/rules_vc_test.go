package ndis_test

// Rule tests for R-VC (VC creation and deletion) and R-ACT (activation).

import (
	"testing"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/ndis"
)

// rlRate returns call parameters whose transmit token rate is r.
func rlRate(r uint32) *ndis.CallParameters {
	p := rlParams()
	p.CallMgrParameters.Transmit.TokenRate = r
	return p
}

// rate is the transmit token rate vc is activated with, or 0.
func (x *rlFx) rate(vc *ndis.Vc) uint32 {
	v, _ := x.vcInfo(vc)
	if v.Params == nil || v.Params.CallMgrParameters == nil {
		return 0
	}
	return v.Params.CallMgrParameters.Transmit.TokenRate
}

// The Go API has no in/out handle parameter: CoCreateVc returns a fresh
// handle, which is what R-VC-1's NULL-on-entry rule protects.
func TestRule_R_VC_1_CreateReturnsFreshHandle(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		seen := map[*ndis.Vc]bool{}
		for i := 0; i < 3; i++ {
			vc := x.newVc(x.c1)
			h, _ := x.cmVc(x.c1)
			if seen[vc] || seen[h] || vc == h {
				t.Fatalf("handle reused")
			}
			seen[vc], seen[h] = true, true
			rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
			rlMust(t, x.cm.del(h), "delete")
		}
		x.Teardown()
	})
}

func TestRule_R_VC_2_CreateHandlersRunBeforeReturn(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		check := func(what string, create func() *ndis.Vc, want ...string) *ndis.Vc {
			t.Helper()
			x.Mark()
			vc := create()
			if got := x.Upcalls(); !rlEqual(got, want) {
				t.Errorf("%s: upcalls %v, want %v", what, got, want)
			}
			ev := x.Events()
			if last := ev[len(ev)-1]; last.Kind != ndis.EventReturn || last.Object != vc.String() {
				t.Errorf("%s: the create did not return last: %v", what, ev)
			}
			return vc
		}
		var out, in *ndis.Vc
		if x.mp != nil {
			out = check("client VC", func() *ndis.Vc { return x.newVc(x.c1) }, "mp.MiniportCoCreateVc", "cm.ProtocolCoCreateVc")
			in = check("CM VC", func() *ndis.Vc { h, _ := x.cmVc(x.c2); return h }, "mp.MiniportCoCreateVc", "c2.ProtocolCoCreateVc")
			sig := check("signalling VC", func() *ndis.Vc {
				h, st := x.cm.b.CoCreateVc(nil, &rlVc{})
				rlMust(t, st, "create")
				return h
			}, "mp.MiniportCoCreateVc")
			rlMust(t, x.cm.del(sig), "delete")
		} else {
			out = check("client VC", func() *ndis.Vc { return x.newVc(x.c1) }, "mcm.ProtocolCoCreateVc")
			in = check("MCM VC", func() *ndis.Vc { h, _ := x.cmVc(x.c2); return h }, "c2.ProtocolCoCreateVc")
		}
		rlMust(t, x.c1.b.CoDeleteVc(out), "delete")
		rlMust(t, x.cm.del(in), "delete")
		x.Teardown()
	})
}

func TestRule_R_VC_3_ClientCreatesWithItsAf(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.refuse("R-VC-3", ndis.StatusFailure, func() ndis.Status {
			_, st := x.c1.b.CoCreateVc(nil, &rlVc{})
			return st
		})
		rlMust(t, x.c1.b.CoDeleteVc(x.newVc(x.c1)), "create with the AF still works")
		x.Teardown()
	})
}

func TestRule_R_VC_4_BadAfOrHandlerFailure(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		// A client using another client's AF.
		x.refuse("R-VC-4", ndis.StatusFailure, func() ndis.Status {
			_, st := x.c1.b.CoCreateVc(x.c2.af, &rlVc{})
			return st
		})
		if x.mp == nil {
			// (A stand-alone CM's nil AF is a signalling VC, R-VC-3.)
			x.refuse("R-VC-4", ndis.StatusFailure, func() ndis.Status {
				_, st := x.ad.MCmCreateVc(nil, &rlVc{})
				return st
			})
		}
		// A peer's failure is propagated and the miniport's state undone.
		before := x.snap()
		x.c1.createVc = func(*ndis.Vc) (any, ndis.Status) { return nil, ndis.StatusResources }
		x.Mark()
		_, _, st := x.cm.createVcOn(x.c1.af)
		rlIs(t, "peer failure", st, ndis.StatusResources)
		if x.mp != nil && (x.upcalled("MiniportCoCreateVc") != 1 || x.upcalled("MiniportCoDeleteVc") != 1) {
			t.Errorf("miniport state not undone: %v", x.Upcalls())
		}
		x.c1.createVc = nil
		if x.mp != nil {
			x.mp.create = func(*ndis.Vc) (any, ndis.Status) { return nil, ndis.StatusResources }
			x.Mark()
			_, st := x.c1.b.CoCreateVc(x.c1.af, &rlVc{})
			rlIs(t, "miniport failure", st, ndis.StatusResources)
			if x.upcalled("ProtocolCoCreateVc") != 0 {
				t.Errorf("peer told of a VC the miniport refused")
			}
			x.mp.create = nil
		}
		if after := x.snap(); after != before {
			t.Errorf("failed creation left state:\n%s", after)
		}
		// A closed AF.
		rlMust(t, x.c2.b.ClCloseAddressFamily(x.c2.af), "close")
		x.refuse("R-VC-4", ndis.StatusFailure, func() ndis.Status {
			_, _, st := x.cm.createVcOn(x.c2.af)
			return st
		})
		h, _ := x.cmVc(x.c1)
		rlMust(t, x.cm.del(h), "creation on an open AF still works")
		x.Teardown()
	})
}

func TestRule_R_VC_5_OnlyCreatorDeletes(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		out := x.newVc(x.c1)
		in, _ := x.cmVc(x.c2)
		x.refuse("R-VC-5", ndis.StatusFailure, func() ndis.Status { return x.cm.del(out) })
		x.refuse("R-VC-5", ndis.StatusFailure, func() ndis.Status { return x.c2.b.CoDeleteVc(in) })
		x.refuse("R-VC-5", ndis.StatusFailure, func() ndis.Status { return x.c2.b.CoDeleteVc(out) })
		// Both VCs are intact: a call on out, then the creators delete.
		_, st := x.c1.b.ClMakeCall(out, rlParams(), nil)
		rlMust(t, st, "make call")
		x.hangup(x.c1, out, nil)
		rlMust(t, x.cm.del(in), "delete by creator")
		x.Teardown()
	})
}

func TestRule_R_VC_6_DeleteOnlyIdleInactiveVc(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		// Active with a call.
		vc := x.call(x.c1)
		x.refuse("R-VC-6", ndis.StatusNotAccepted, func() ndis.Status { return x.c1.b.CoDeleteVc(vc) })
		x.hangup(x.c1, vc, nil)
		// A call outstanding on an inactive VC (MakeCall pending).
		x.cm.makeCall = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusPending }
		vc = x.newVc(x.c1)
		p := rlParams()
		_, st := x.c1.b.ClMakeCall(vc, p, nil)
		rlIs(t, "make call", st, ndis.StatusPending)
		x.refuse("R-VC-6", ndis.StatusNotAccepted, func() ndis.Status { return x.c1.b.CoDeleteVc(vc) })
		rlMust(t, x.cm.makeCallComplete(ndis.StatusFailure, vc, nil, nil, p), "fail the call")
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete once idle")
		// An offered call on a call-manager VC.
		s := x.sap(x.c2, "svc")
		x.c2.incoming = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
		h, _ := x.cmVc(x.c2)
		rlIs(t, "dispatch", x.cm.dispatchIncomingCall(s, h, p), ndis.StatusPending)
		x.refuse("R-VC-6", ndis.StatusNotAccepted, func() ndis.Status { return x.cm.del(h) })
		rlMust(t, x.c2.b.ClIncomingCallComplete(ndis.StatusNotSupported, h, p), "reject")
		if x.mp != nil {
			// Active, then with its deactivation pending (NDIS_STATUS_CLOSING).
			rlMust(t, x.cm.activate(h, p), "activate")
			x.refuse("R-VC-6", ndis.StatusNotAccepted, func() ndis.Status { return x.cm.del(h) })
			x.mp.deactivate = func(*rlMpVc) ndis.Status { return ndis.StatusPending }
			rlIs(t, "deactivate", x.cm.deactivate(h), ndis.StatusPending)
			x.refuse("R-VC-6", ndis.StatusClosing, func() ndis.Status { return x.cm.del(h) })
			rlMust(t, x.ad.MCoDeactivateVcComplete(ndis.StatusSuccess, h), "complete")
		}
		rlMust(t, x.cm.del(h), "delete once idle and inactive")
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

// TestRule_R_VC_6_DeleteAfterEarlyCloseCompletion: a call manager that
// completes a client's close while ProtocolCmCloseCall is still running
// (the completion races the handler, spec §3.0) and then deletes its VC
// has done nothing wrong (R-CLOSE-12): it cannot observe when the mediator
// finishes the close. The deletion is accepted — no R-VC-6 "a call is
// outstanding (CLOSING)" — and carried out once the close settles: the
// client gets its CloseCallComplete, then ProtocolCoDeleteVc, and the
// handle is dead at once (R-VC-9).
func TestRule_R_VC_6_DeleteAfterEarlyCloseCompletion(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		vc, _ := x.incoming(x.c2, s)
		var delSt, againSt ndis.Status
		x.cm.closeCall = func(v *rlVc, _ any) ndis.Status {
			if st := x.cm.hangUp(v); st != ndis.StatusSuccess {
				return st
			}
			rlMust(t, x.cm.closeCallComplete(ndis.StatusSuccess, v.h, nil), "close completion inside the handler")
			delSt = x.cm.del(v.h)
			againSt = x.cm.del(v.h)
			return ndis.StatusPending
		}
		x.Expect("R-VC-9") // the second deletion: the handle died with the first
		x.Mark()
		rlIs(t, "ClCloseCall", x.c2.b.ClCloseCall(vc, nil, nil), ndis.StatusPending)
		rlIs(t, "NdisMCmDeleteVc/NdisCoDeleteVc inside ProtocolCmCloseCall", delSt, ndis.StatusSuccess)
		rlIs(t, "deleting again", againSt, ndis.StatusFailure)
		up := x.Upcalls()
		want := []string{"c2.ProtocolClCloseCallComplete", "c2.ProtocolCoDeleteVc"}
		var got []string
		for _, u := range up {
			if u == want[0] || u == want[1] {
				got = append(got, u)
			}
		}
		if !rlEqual(got, want) {
			t.Errorf("upcalls %v: want %v in that order", up, want)
		}
		if _, ok := x.vcInfo(vc); ok {
			t.Errorf("the VC is still there: %s", x.snap())
		}
		if x.SawRule("R-VC-6") {
			t.Errorf("R-VC-6 reported: %v", x.Seen())
		}
		x.cm.closeCall = nil
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_VC_7_MCMDeletesOnlyInactiveVc(t *testing.T) {
	rlOnly(t, ndistest.MCM, func(t *testing.T, x *rlFx) {
		h, _ := x.cmVc(x.c2)
		rlMust(t, x.cm.activate(h, rlParams()), "activate")
		x.refuse("R-VC-7", ndis.StatusNotAccepted, func() ndis.Status { return x.cm.del(h) })
		rlMust(t, x.cm.deactivate(h), "deactivate")
		rlMust(t, x.cm.del(h), "delete")
		x.Teardown()
	})
}

func TestRule_R_VC_8_DeleteHandlers(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		check := func(what string, del func() ndis.Status, want ...string) {
			t.Helper()
			x.Mark()
			rlMust(t, del(), what)
			if got := x.Upcalls(); !rlEqual(got, want) {
				t.Errorf("%s: upcalls %v, want %v", what, got, want)
			}
		}
		out := x.newVc(x.c1)
		in, _ := x.cmVc(x.c2)
		if x.mp != nil {
			check("client VC", func() ndis.Status { return x.c1.b.CoDeleteVc(out) }, "cm.ProtocolCoDeleteVc", "mp.MiniportCoDeleteVc")
			check("CM VC", func() ndis.Status { return x.cm.del(in) }, "c2.ProtocolCoDeleteVc", "mp.MiniportCoDeleteVc")
			sig, st := x.cm.b.CoCreateVc(nil, &rlVc{})
			rlMust(t, st, "create")
			check("signalling VC", func() ndis.Status { return x.cm.del(sig) }, "mp.MiniportCoDeleteVc")
		} else {
			check("client VC", func() ndis.Status { return x.c1.b.CoDeleteVc(out) }, "mcm.ProtocolCoDeleteVc")
			check("MCM VC", func() ndis.Status { return x.cm.del(in) }, "c2.ProtocolCoDeleteVc")
		}
		x.Teardown()
	})
}

func TestRule_R_VC_9_HandleDeadAfterDelete(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c1, "svc")
		vc := x.newVc(x.c1)
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		in, _ := x.cmVc(x.c1)
		rlMust(t, x.cm.del(in), "delete")
		p := rlParams()
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CoDeleteVc(vc) })
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.ClMakeCall(vc, p, nil); return st })
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseCall(vc, nil, nil) })
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { return x.cm.activate(vc, p) })
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { return x.cm.del(in) })
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCall(s, in, p) })
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CoOidRequest(nil, vc, nil, &ndis.OidRequest{}) })
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.CoAssignInstanceName(vc, "x"); return st })
		x.refuse("R-VC-9", ndis.StatusInvalidData, func() ndis.Status { _, st := x.c1.b.CoGetTapiCallId(vc); return st })
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status {
			return x.ad.MCoIndicateReceiveNetBufferLists(vc, rlChain("x"), 1, ndis.ReceiveFlagsResources)
		})
		x.check("R-VC-9", ndis.StatusFailure, ndis.StatusFailure, func() ndis.Status {
			x.c1.b.CoSendNetBufferLists(vc, rlChain("x"), 0)
			return x.c1.sent()[0]
		})
		x.unsap(x.c1, s)
		x.Teardown()
	})
}

func TestRule_R_VC_10_PeerRefusesDeletion(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		in, _ := x.cmVc(x.c2)
		x.c2.deleteVc = func(any) ndis.Status { return ndis.StatusNotAccepted }
		x.Mark()
		x.refuse("R-VC-10", ndis.StatusNotAccepted, func() ndis.Status { return x.cm.del(in) })
		if x.upcalled("MiniportCoDeleteVc") != 0 {
			t.Errorf("miniport deleted a VC the peer kept (spec §9.7)")
		}
		x.c2.deleteVc = nil
		out := x.newVc(x.c1)
		x.cm.deleteVc = func(any) ndis.Status { return ndis.StatusFailure }
		x.refuse("R-VC-10", ndis.StatusNotAccepted, func() ndis.Status { return x.c1.b.CoDeleteVc(out) })
		x.cm.deleteVc = nil
		rlMust(t, x.cm.del(in), "delete")
		rlMust(t, x.c1.b.CoDeleteVc(out), "delete")
		x.Teardown()
	})
}

func TestRule_R_VC_12_NoCallOnSignallingVc(t *testing.T) {
	rlOnly(t, ndistest.Split, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		sig, st := x.cm.b.CoCreateVc(nil, &rlVc{})
		rlMust(t, st, "create")
		p := rlParams()
		x.refuse("R-VC-12", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCall(s, sig, p) })
		x.refuse("R-VC-12", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, sig) })
		rlMust(t, x.cm.activate(sig, p), "signalling VC activates")
		x.cm.b.CoSendNetBufferLists(sig, rlChain("SETUP"), 0)
		if x.cm.count("SendComplete(NDIS_STATUS_SUCCESS)") != 1 {
			t.Errorf("signalling send: %v", x.cm.all())
		}
		rlMust(t, x.cm.deactivate(sig), "deactivate")
		rlMust(t, x.cm.del(sig), "delete")
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_VC_13_InstanceNames(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.newVc(x.c1)
		name, st := x.c1.b.CoAssignInstanceName(vc, "base")
		rlMust(t, st, "assign")
		again, st := x.c1.b.CoAssignInstanceName(vc, "other")
		if st != ndis.StatusSuccess || again != name {
			t.Errorf("second call: %q %v, want the existing name %q", again, st, name)
		}
		if x.mp != nil {
			if n, st := x.cm.b.CoAssignInstanceName(vc, "cm"); st != ndis.StatusSuccess || n != name {
				t.Errorf("stand-alone CM: %q %v", n, st)
			}
		}
		x.refuse("R-VC-13", ndis.StatusFailure, func() ndis.Status { _, st := x.c2.b.CoAssignInstanceName(vc, "x"); return st })
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.CoAssignInstanceName(vc, "base"); return st })
		x.Teardown()
	})
}

func TestRule_R_VC_14_UnbindWithVcsRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.newVc(x.c1)
		x.Expect("R-VC-14")
		x.Expect("R-AF-23")
		x.Expect("R-AF-23")
		found := false
		for _, v := range x.m.Audit() {
			found = found || v.Rule == "R-VC-14" && v.Object == vc.String()
		}
		if !found {
			t.Errorf("audit did not report the VC")
		}
		x.refuse("R-VC-14", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CloseAdapterEx() })
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")

		// A VC the call manager created for the client also keeps the
		// client from unbinding until its ProtocolCoDeleteVc ran, even if
		// the call manager wrongly let the AF close first (R-AF-15).
		in, _ := x.cmVc(x.c2)
		x.warned("R-AF-15", func() { rlMust(t, x.c2.b.ClCloseAddressFamily(x.c2.af), "close") })
		x.refuse("R-VC-14", ndis.StatusFailure, func() ndis.Status { return x.c2.b.CloseAdapterEx() })
		rlMust(t, x.cm.del(in), "delete")
		rlMust(t, x.c2.b.CloseAdapterEx(), "unbind")
		x.Teardown()
	})
}

func TestRule_R_ACT_1_NoDataOnInactiveVc(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		p := rlParams()
		// A connected call whose VC the call manager deactivated.
		vc := x.call(x.c1)
		rlMust(t, x.cm.deactivate(vc), "deactivate")
		x.check("R-ACT-1", ndis.StatusVcNotActivated, ndis.StatusVcNotActivated, func() ndis.Status {
			x.c1.b.CoSendNetBufferLists(vc, rlChain("x"), 0)
			return x.c1.sent()[0]
		})
		rlMust(t, x.cm.activate(vc, p), "re-activate")
		x.c1.b.CoSendNetBufferLists(vc, rlChain("y"), 0)
		if got := x.c1.sent(); len(got) != 2 || got[1] != ndis.StatusSuccess {
			t.Errorf("send after re-activation: %v", got)
		}
		x.hangup(x.c1, vc, nil)
		// An accepted incoming call cannot be connected on an inactive VC.
		s := x.sap(x.c2, "svc")
		h, v := x.cmVc(x.c2)
		rlMust(t, x.cm.dispatchIncomingCall(s, h, p), "dispatch") // activation may follow acceptance (spec §9.4)
		x.refuse("R-ACT-1", ndis.StatusVcNotActivated, func() ndis.Status { return x.cm.dispatchCallConnected(h) })
		rlMust(t, x.cm.activate(h, p), "activate")
		v.active.Store(true)
		rlMust(t, x.cm.dispatchCallConnected(h), "connect")
		x.remoteHangup(x.c2, h)
		if x.mp != nil {
			// A signalling VC must be active too.
			sig, st := x.cm.b.CoCreateVc(nil, &rlVc{})
			rlMust(t, st, "create")
			x.check("R-ACT-1", ndis.StatusVcNotActivated, ndis.StatusVcNotActivated, func() ndis.Status {
				x.cm.b.CoSendNetBufferLists(sig, rlChain("SETUP"), 0)
				if x.cm.last("SendComplete") != "SendComplete(NDIS_STATUS_VC_NOT_ACTIVATED)" {
					return ndis.StatusSuccess
				}
				return ndis.StatusVcNotActivated
			})
			rlMust(t, x.cm.del(sig), "delete")
		}
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_ACT_2_OnlyTheCallManagerActivates(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		p := rlParams()
		x.refuse("R-ACT-2", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CmActivateVc(vc, p) })
		x.refuse("R-ACT-2", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CmDeactivateVc(vc) })
		if x.mp != nil {
			cm2 := &rlCM{x: x, name: "cm2"}
			b, st := x.m.BindAdapter(x.ad, "cm2", cm2, cm2, nil)
			rlMust(t, st, "bind")
			x.refuse("R-ACT-2", ndis.StatusFailure, func() ndis.Status { return b.CmDeactivateVc(vc) })
			rlMust(t, b.CloseAdapterEx(), "unbind")
		}
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_ACT_4_ReactivationAndOneAtATime(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		h, _ := x.cmVc(x.c2)
		p1, p2, p3 := rlRate(1000), rlRate(2000), rlRate(3000)
		rlMust(t, x.cm.activate(h, p1), "activate")
		rlMust(t, x.cm.activate(h, p2), "re-activate")
		if r := x.rate(h); r != 2000 {
			t.Errorf("re-activation left rate %d, want 2000", r)
		}
		if x.mp != nil {
			// A failed re-activation keeps the VC active with its old parameters.
			x.mp.activate = func(*rlMpVc, *ndis.CallParameters) ndis.Status { return ndis.StatusInvalidData }
			rlIs(t, "failed re-activation", x.cm.activate(h, p3), ndis.StatusInvalidData)
			if x.state(h) != "ACTIVE/IDLE" || x.rate(h) != 2000 {
				t.Errorf("after a failed re-activation: rate %d\n%s", x.rate(h), x.snap())
			}
			// One activation or deactivation at a time.
			x.mp.activate = func(*rlMpVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
			rlIs(t, "re-activate", x.cm.activate(h, p3), ndis.StatusPending)
			x.refuse("R-ACT-4", ndis.StatusFailure, func() ndis.Status { return x.cm.activate(h, p1) })
			x.refuse("R-ACT-10", ndis.StatusFailure, func() ndis.Status { return x.cm.deactivate(h) })
			rlMust(t, x.ad.MCoActivateVcComplete(ndis.StatusSuccess, h, p3), "complete")
			x.mp.activate = nil
		}
		rlMust(t, x.cm.deactivate(h), "deactivate")
		rlMust(t, x.cm.del(h), "delete")
		x.Teardown()
	})
}

func TestRule_R_ACT_7_DeactivationWithDataInFlight(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		p := rlParams()
		vc := x.call(x.c1)
		// A send not completed when the deactivation completes.
		var held *ndis.NetBufferList
		x.setSend(func(_ *ndis.Vc, n *ndis.NetBufferList) { held = n })
		x.c1.b.CoSendNetBufferLists(vc, rlChain("a"), 0)
		x.warned("R-ACT-7", func() { rlMust(t, x.cm.deactivate(vc), "deactivate") })
		rlMust(t, x.complete(vc, held, ndis.StatusSuccess), "late completion")
		x.setSend(nil)
		rlMust(t, x.cm.activate(vc, p), "re-activate")
		// A receive not returned when the deactivation completes.
		var kept *ndis.NetBufferList
		x.c1.receive = func(_ *rlVc, n *ndis.NetBufferList, _ ndis.ReceiveFlags) { kept = n }
		rlMust(t, x.ad.MCoIndicateReceiveNetBufferLists(vc, rlChain("r"), 1, 0), "indicate")
		x.warned("R-ACT-7", func() { rlMust(t, x.cm.deactivate(vc), "deactivate") })
		rlMust(t, x.c1.b.ReturnNetBufferLists(kept, 0), "late return")
		// A receive indicated on the inactive VC is refused and handed
		// straight back to the miniport.
		returned := func() int { return x.cm.count("MiniportReturn(") }
		if x.mp != nil {
			returned = func() int { return x.mp.count("Return(") }
		}
		before := returned()
		x.Mark()
		x.refuse("R-ACT-7", ndis.StatusVcNotActivated, func() ndis.Status {
			return x.ad.MCoIndicateReceiveNetBufferLists(vc, rlChain("late"), 1, 0)
		})
		if returned() != before+1 || x.upcalled("ProtocolCoReceiveNetBufferLists") != 0 {
			t.Errorf("refused receive not handed back to the miniport: upcalls %v", x.Upcalls())
		}
		rlMust(t, x.cm.activate(vc, p), "re-activate")
		x.c1.receive = nil
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

// TestRule_R_ACT_7_ReceiveWhileDeactivationPending: the mediator marks a
// VC DEACTIVATING before MiniportCoDeactivateVc runs, so a receive the
// miniport began on the active VC can arrive after that. Until the
// deactivation completes it is one in progress: taken, delivered, no
// violation. Once the deactivation has completed, whether at once or
// pending then completing, a receive is refused (R-ACT-7). (The split
// topology's miniport indicated such receives between two nodes, and the
// mediator reported them.)
func TestRule_R_ACT_7_ReceiveWhileDeactivationPending(t *testing.T) {
	rlOnly(t, ndistest.Split, func(t *testing.T, x *rlFx) {
		p := rlParams()
		vc := x.call(x.c1)
		var got []string
		x.c1.receive = func(_ *rlVc, n *ndis.NetBufferList, _ ndis.ReceiveFlags) { got = append(got, string(n.Data)) }
		late := func(what string) {
			x.refuse("R-ACT-7", ndis.StatusVcNotActivated, func() ndis.Status {
				return x.ad.MCoIndicateReceiveNetBufferLists(vc, rlChain(what), 1, ndis.ReceiveFlagsResources)
			})
		}
		// Completing at once: there is no window; a receive after is late.
		rlMust(t, x.cm.deactivate(vc), "deactivate")
		late("after at once")
		rlMust(t, x.cm.activate(vc, p), "re-activate")
		// Pending, then completing.
		x.mp.deactivate = func(*rlMpVc) ndis.Status { return ndis.StatusPending }
		rlIs(t, "deactivate", x.cm.deactivate(vc), ndis.StatusPending)
		n := len(x.Seen())
		rlMust(t, x.ad.MCoIndicateReceiveNetBufferLists(vc, rlChain("in progress"), 1, ndis.ReceiveFlagsResources), "receive while deactivating")
		if v := x.Seen()[n:]; len(v) != 0 {
			t.Errorf("a receive while the deactivation is pending was reported: %v", v)
		}
		if len(got) != 1 || got[0] != "in progress" {
			t.Errorf("the client got %q, want the receive in progress", got)
		}
		rlMust(t, x.ad.MCoDeactivateVcComplete(ndis.StatusSuccess, vc), "complete")
		late("after pending")
		if len(got) != 1 {
			t.Errorf("the client got %q after the deactivation", got)
		}
		x.mp.deactivate = nil
		rlMust(t, x.cm.activate(vc, p), "re-activate")
		x.c1.receive = nil
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_ACT_8_DeactivationDropsParameters(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		h, _ := x.cmVc(x.c2)
		rlMust(t, x.cm.activate(h, rlRate(1000)), "activate")
		if r := x.rate(h); r != 1000 {
			t.Errorf("activation parameters not recorded: rate %d", r)
		}
		rlMust(t, x.cm.deactivate(h), "deactivate")
		if v, _ := x.vcInfo(h); v.Params != nil || v.Activation != "INACTIVE" {
			t.Errorf("after deactivation: %+v", v)
		}
		rlMust(t, x.cm.activate(h, rlRate(2000)), "re-activate with new parameters")
		if r := x.rate(h); r != 2000 {
			t.Errorf("new parameters not recorded: rate %d", r)
		}
		rlMust(t, x.cm.deactivate(h), "deactivate")
		rlMust(t, x.cm.del(h), "delete")
		x.Teardown()
	})
}

// R-ACT-8: a VC's activation parameters are the mediator's copy, kept in
// a record it reuses once the activation ends (paramsPool). A record that
// carried one VC's specific parameters must not lend them to the next
// activation of another VC, nor keep them once that VC is deleted.
func TestRule_R_ACT_8_ReusedParametersStartEmpty(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		first, _ := x.cmVc(x.c2)
		rich := rlRate(1000)
		rich.CallMgrParameters.CallMgrSpecific = ndis.SpecificParameters{ParamType: 7, Parameters: []byte("call-manager-specific, longer than the inline buffer")}
		rich.MediaParameters = &ndis.MediaParameters{ReceiveSizeHint: 4096, MediaSpecific: ndis.SpecificParameters{ParamType: 9, Parameters: []byte("media")}}
		rlMust(t, x.cm.activate(first, rich), "activate the first VC")
		if v, _ := x.vcInfo(first); v.Params == nil || string(v.Params.MediaParameters.MediaSpecific.Parameters) != "media" {
			t.Fatalf("first VC's parameters not kept: %+v", v.Params)
		}
		rlMust(t, x.cm.deactivate(first), "deactivate the first VC")
		rlMust(t, x.cm.del(first), "delete the first VC")

		for i := range 3 { // the pool may hand back any record: try a few
			h, _ := x.cmVc(x.c2)
			plain := rlRate(2000 + uint32(i))
			rlMust(t, x.cm.activate(h, plain), "activate")
			v, _ := x.vcInfo(h)
			if v.Params == nil {
				t.Fatalf("VC %d: no activation parameters", i)
			}
			if cm := v.Params.CallMgrParameters; cm == nil || cm.Transmit.TokenRate != 2000+uint32(i) ||
				cm.CallMgrSpecific.ParamType != plain.CallMgrParameters.CallMgrSpecific.ParamType ||
				len(cm.CallMgrSpecific.Parameters) != len(plain.CallMgrParameters.CallMgrSpecific.Parameters) {
				t.Errorf("VC %d: call manager parameters %+v; want %+v", i, cm, plain.CallMgrParameters)
			}
			if mp := v.Params.MediaParameters; (mp == nil) != (plain.MediaParameters == nil) ||
				mp != nil && (mp.ReceiveSizeHint != plain.MediaParameters.ReceiveSizeHint || len(mp.MediaSpecific.Parameters) != len(plain.MediaParameters.MediaSpecific.Parameters)) {
				t.Errorf("VC %d: media parameters %+v; want %+v", i, mp, plain.MediaParameters)
			}
			rlMust(t, x.cm.deactivate(h), "deactivate")
			if v, _ := x.vcInfo(h); v.Params != nil {
				t.Errorf("VC %d keeps parameters after deactivation: %+v", i, v.Params)
			}
			rlMust(t, x.cm.del(h), "delete")
		}
		x.Teardown()
	})
}

func TestRule_R_ACT_9_HandleValidAfterDeactivation(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		in, _ := x.incoming(x.c2, s)
		x.remoteHangup(x.c2, in) // deactivates and deletes
		h, v := x.cmVc(x.c2)
		rlMust(t, x.cm.activate(h, rlParams()), "activate")
		rlMust(t, x.cm.deactivate(h), "deactivate")
		x.wantState(h, "INACTIVE/IDLE")
		// Still a valid handle: it carries a new call, then is deleted.
		rlMust(t, x.cm.activate(h, rlParams()), "re-activate")
		v.active.Store(true)
		rlMust(t, x.cm.dispatchIncomingCall(s, h, rlParams()), "dispatch")
		rlMust(t, x.cm.dispatchCallConnected(h), "connect")
		x.remoteHangup(x.c2, h)
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_ACT_10_OneDeactivationPerActivation(t *testing.T) {
	rlOnly(t, ndistest.Split, func(t *testing.T, x *rlFx) {
		h, _ := x.cmVc(x.c2)
		x.refuse("R-ACT-10", ndis.StatusFailure, func() ndis.Status { return x.cm.deactivate(h) })
		x.Mark()
		for i := 0; i < 3; i++ {
			rlMust(t, x.cm.activate(h, rlParams()), "activate")
		}
		x.mp.deactivate = func(*rlMpVc) ndis.Status { return ndis.StatusPending }
		rlIs(t, "deactivate", x.cm.deactivate(h), ndis.StatusPending)
		x.refuse("R-ACT-10", ndis.StatusFailure, func() ndis.Status { return x.cm.deactivate(h) })
		rlMust(t, x.ad.MCoDeactivateVcComplete(ndis.StatusSuccess, h), "complete")
		x.refuse("R-ACT-10", ndis.StatusFailure, func() ndis.Status { return x.cm.deactivate(h) })
		if a, d := x.upcalled("MiniportCoActivateVc"), x.upcalled("MiniportCoDeactivateVc"); a != 3 || d != 1 {
			t.Errorf("%d activations, %d deactivations; want 3 and 1", a, d)
		}
		rlMust(t, x.cm.del(h), "delete")
		x.Teardown()
	})
}

func TestRule_R_ACT_11_MCMDeactivateInactiveVc(t *testing.T) {
	rlOnly(t, ndistest.MCM, func(t *testing.T, x *rlFx) {
		h, _ := x.cmVc(x.c2)
		x.refuse("R-ACT-11", ndis.StatusNotAccepted, func() ndis.Status { return x.cm.deactivate(h) })
		rlMust(t, x.cm.activate(h, rlParams()), "activate")
		rlMust(t, x.cm.deactivate(h), "deactivate")
		x.refuse("R-ACT-11", ndis.StatusNotAccepted, func() ndis.Status { return x.cm.deactivate(h) })
		rlMust(t, x.cm.del(h), "delete")
		x.Teardown()
	})
}

func TestRule_R_ACT_13_ActivationNeedsParameters(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		h, _ := x.cmVc(x.c2)
		x.refuse("R-ACT-13", ndis.StatusInvalidData, func() ndis.Status { return x.cm.activate(h, nil) })
		rlMust(t, x.cm.activate(h, rlParams()), "activate")
		rlMust(t, x.cm.deactivate(h), "deactivate")
		rlMust(t, x.cm.del(h), "delete")
		x.Teardown()
	})
}
