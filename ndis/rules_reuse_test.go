package ndis_test

// Reuse of a call-manager VC after its call closed (spec §9.1), in both
// orders of spec §9.4: activate, then dispatch (§4.5's usual order), and
// dispatch, then activate once the client accepted. The in-memory call
// managers keep the VC of a closed incoming call for the next call to the
// same client when told to (memdrv.VcReuse). Whether the previous call left
// the VC active is judged when that call closed (R-CLOSE-8), so activating
// the VC again before the dispatch is no violation; strict mode fails the
// test on any violation. The R-CLOSE-8 refusal of a VC whose close really
// left it active is TestRule_R_CLOSE_8_CmVcLeftActiveNotReused.

import (
	"slices"
	"testing"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

func setVcReuse(n *ndistest.Net, r memdrv.VcReuse) {
	if n.MCM != nil {
		n.MCM.SetVcReuse(r)
	} else {
		n.CM.SetVcReuse(r)
	}
}

// activateRet returns the statuses the call manager's activation requests on
// vc returned since the last Mark.
func activateRet(n *ndistest.Net, vc *ndis.Vc) []ndis.Status {
	var out []ndis.Status
	for _, e := range n.Events() {
		if e.Kind == ndis.EventReturn && (e.Func == "NdisCmActivateVc" || e.Func == "NdisMCmActivateVc") && e.Object == vc.String() {
			out = append(out, e.Status)
		}
	}
	return out
}

// TestRule_R_CLOSE_8_ReuseActivateThenDispatch: the call manager activates the
// VC of a closed call, then dispatches the next call on it. The close left
// the VC deactivated, so the dispatch is accepted (no R-CLOSE-8): the
// client is offered the call on an active VC, with no new VC created, and
// the call connects and carries data.
func TestRule_R_CLOSE_8_ReuseActivateThenDispatch(t *testing.T) {
	testVcReuse(t, memdrv.ReuseActivateFirst)
}

// TestRule_R_CLOSE_8_ReuseDispatchThenActivate: the call manager dispatches the
// next call on the still inactive VC of a closed call and activates it once
// the client accepted, before the call is connected (spec §9.4).
func TestRule_R_CLOSE_8_ReuseDispatchThenActivate(t *testing.T) {
	testVcReuse(t, memdrv.ReuseDispatchFirst)
}

func testVcReuse(t *testing.T, order memdrv.VcReuse) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		r := rolesOf(n)
		setVcReuse(n, order)
		ca, _, _ := n.Ready("svc")
		var atOffer []ndis.VcInfo
		n.Callee.Accept = func(cv *memdrv.ClientVc, _ *ndis.CallParameters) ndis.Status {
			atOffer = append(atOffer, mustVc(t, n, cv.H))
			return ndis.StatusSuccess
		}
		wantAtOffer := "ACTIVE"
		if order == memdrv.ReuseDispatchFirst {
			wantAtOffer = "INACTIVE"
		}

		// The first call gets a new VC; the caller's close leaves it
		// closed, deactivated and kept.
		v1, _ := call(t, n, n.Caller, ca, "svc", false)
		in := n.Callee.LastIncoming()
		if in == nil {
			t.Fatalf("no incoming call\n%s", n.Dump())
		}
		n.Caller.Send(v1, []byte("ping1"))
		n.Run()
		closeAndDelete(t, n, n.Caller, v1)
		if in.Deleted || in.CloseIndicated != 1 || in.CloseStatus != ndis.StatusSuccess {
			t.Fatalf("callee after the first close: %+v\n%s", in, n.Dump())
		}
		if vi := checkVc(t, n, in.H, "INACTIVE", "CLOSED"); vi.LeftActive {
			t.Errorf("the close left the VC active: %+v", vi)
		}

		// The second call is offered on the same VC.
		n.Mark()
		v2, _ := call(t, n, n.Caller, ca, "svc", false)
		if got := n.Callee.LastIncoming(); got != in {
			t.Fatalf("second call offered on %v, want the kept %v\n%s", got.H, in.H, n.Dump())
		}
		never(t, n, "callee.ProtocolCoCreateVc", "callee.ProtocolCoDeleteVc")
		if topo == ndistest.Split {
			times(t, n, r.MP("MiniportCoCreateVc"), 1) // the caller's new VC only
		}
		if in.Offered != 2 || in.Connected != 2 || in.Deleted {
			t.Errorf("callee VC after the second call: %+v", in)
		}
		checkResult(t, "second answer", in.Answer, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		if len(atOffer) != 2 {
			t.Fatalf("%d offers, want 2", len(atOffer))
		}
		for i, vi := range atOffer {
			if vi.Activation != wantAtOffer || vi.Call != "OFFERED" || vi.Handle != in.H.String() {
				t.Errorf("offer %d: VC %s %s/%s, want %s/OFFERED", i+1, vi.Handle, vi.Activation, vi.Call, wantAtOffer)
			}
		}
		activate, dispatch := activateReq(r), dispatchReq(r, "DispatchIncomingCall")
		connected := dispatchReq(r, "DispatchCallConnected")
		if order == memdrv.ReuseActivateFirst {
			inOrderOn(t, n, in.H, activate, dispatch, "up callee.ProtocolClIncomingCall", connected, "up callee.ProtocolClCallConnected")
		} else {
			inOrderOn(t, n, in.H, dispatch, "up callee.ProtocolClIncomingCall", activate, connected, "up callee.ProtocolClCallConnected")
		}
		// The activation completed at once, or pended in the miniport
		// and completed later; a miniport call manager's never pends.
		wantAct := []ndis.Status{ndis.StatusSuccess}
		if topo == ndistest.Split && pended(mode) {
			wantAct = []ndis.Status{ndis.StatusPending}
			inOrderOn(t, n, in.H, activate, "up cm.ProtocolCmActivateVcComplete", connected)
		}
		if got := activateRet(n, in.H); !slices.Equal(got, wantAct) {
			t.Errorf("activation of the reused VC returned %v, want %v", got, wantAct)
		}
		checkVc(t, n, in.H, "ACTIVE", "CONNECTED")

		n.Caller.Send(v2, []byte("ping2"))
		n.Callee.Send(in, []byte("pong2"))
		n.Run()
		if rx := in.RxData(); len(rx) != 2 || string(rx[0]) != "ping1" || string(rx[1]) != "ping2" {
			t.Errorf("callee rx %q", rx)
		}
		if rx := v2.RxData(); len(rx) != 1 || string(rx[0]) != "pong2" {
			t.Errorf("caller rx %q", rx)
		}

		// This time the callee closes; the VC is kept again, and deleted
		// when its AF closes (Teardown checks nothing is left).
		n.Callee.CloseCall(in)
		n.Run()
		checkResult(t, "callee close", in.Close, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
		if v2.CloseIndicated != 1 || !v2.Close.ExactlyOnce() || v2.Close.Status != ndis.StatusSuccess {
			t.Errorf("caller after the callee's close: %+v", v2)
		}
		checkVc(t, n, in.H, "INACTIVE", "CLOSED")
		if st := n.Caller.DeleteVc(v2); st != ndis.StatusSuccess {
			t.Fatalf("delete: %v", st)
		}
		n.Teardown()
		if !in.Deleted {
			t.Errorf("the kept VC was not deleted when its AF closed")
		}
	})
}

// secondCallOnKeptVc makes a first call to "svc", closes it from the caller
// and returns the callee's VC the call manager kept.
func secondCallOnKeptVc(t *testing.T, n *ndistest.Net, ca *memdrv.ClientAf) *memdrv.ClientVc {
	t.Helper()
	v1, _ := call(t, n, n.Caller, ca, "svc", false)
	in := n.Callee.LastIncoming()
	closeAndDelete(t, n, n.Caller, v1)
	checkVc(t, n, in.H, "INACTIVE", "CLOSED")
	return in
}

// TestReuse_DispatchFirstActivationRefused: with the call dispatched first, the
// miniport refuses the activation the call manager starts once the client
// accepted (R-ACT-3). The client's accepted call is closed with the
// activation's status, the caller's MakeCall fails with it exactly once,
// and the VC, inactive, is kept for the next call, which succeeds.
func TestReuse_DispatchFirstActivationRefused(t *testing.T) {
	for _, mode := range ndistest.Modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := ndistest.New(t, ndistest.Split, mode)
			setVcReuse(n, memdrv.ReuseDispatchFirst)
			ca, _, _ := n.Ready("svc")
			in := secondCallOnKeptVc(t, n, ca)

			n.Miniport.RejectTokenRate(400000)
			v, _ := n.Caller.CreateVc(ca)
			n.Mark()
			n.Caller.MakeCall(v, paramsRate("svc", 400000), false)
			n.Run()
			n.Miniport.RejectTokenRate(0)
			checkResult(t, "make call", v.Make, wantRet(mode, ndis.StatusInvalidData), ndis.StatusInvalidData)
			if in.Offered != 2 || in.Answer.Status != ndis.StatusSuccess || in.Connected != 1 {
				t.Errorf("callee VC: %+v", in)
			}
			if in.CloseIndicated != 2 || in.CloseStatus != ndis.StatusInvalidData {
				t.Errorf("callee told of the failed activation by %d close(s) with %v", in.CloseIndicated, in.CloseStatus)
			}
			checkResult(t, "callee close", in.Close, wantRet(mode, ndis.StatusSuccess), ndis.StatusSuccess)
			inOrderOn(t, n, in.H, "up callee.ProtocolClIncomingCall", "req cm.NdisCmActivateVc",
				"req cm.NdisCmDispatchIncomingCloseCall", "up callee.ProtocolClIncomingCloseCall")
			never(t, n, "callee.ProtocolClCallConnected", "callee.ProtocolCoDeleteVc")
			checkVc(t, n, in.H, "INACTIVE", "CLOSED")

			// The VC carries the next call.
			v2, _ := call(t, n, n.Caller, ca, "svc", false)
			if n.Callee.LastIncoming() != in || in.Connected != 2 {
				t.Errorf("next call not on the kept VC: %+v", in)
			}
			checkVc(t, n, in.H, "ACTIVE", "CONNECTED")
			closeAndDelete(t, n, n.Caller, v2)
			if st := n.Caller.DeleteVc(v); st != ndis.StatusSuccess {
				t.Fatalf("delete: %v", st)
			}
			n.Teardown()
		})
	}
}

// TestReuse_LinkDownWhileActivatingAcceptedCall: with the call dispatched
// first, the link is lost after the client accepted and while the VC's
// activation is pending in the miniport. The accepted call is closed at
// once with DEST_OUT_OF_ORDER (R-CLOSE-20), not left waiting for the
// activation; the caller's MakeCall fails exactly once; the VC is
// deactivated after its activation completes and kept.
func TestReuse_LinkDownWhileActivatingAcceptedCall(t *testing.T) {
	n := ndistest.New(t, ndistest.Split, memdrv.Pend)
	setVcReuse(n, memdrv.ReuseDispatchFirst)
	ca, _, _ := n.Ready("svc")
	in := secondCallOnKeptVc(t, n, ca)

	// The Loop runs in order: the callee's answer (posted by its
	// ProtocolClIncomingCall) runs before this task's task, and the
	// activation the answer starts pends in the miniport until after it.
	var atLoss ndis.VcInfo
	n.Callee.Accept = func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status {
		n.Fab.Post(func() {
			n.Fab.Post(func() {
				atLoss = mustVc(t, n, in.H)
				linkDown(n)
			})
		})
		return ndis.StatusSuccess
	}
	v, _ := n.Caller.CreateVc(ca)
	n.Caller.MakeCall(v, ndistest.Params("svc"), false)
	n.Run()
	if atLoss.Activation != "ACTIVATING" || atLoss.Call != "ACCEPTED" {
		t.Fatalf("link lost with the callee's VC %s/%s, want ACTIVATING/ACCEPTED", atLoss.Activation, atLoss.Call)
	}
	checkResult(t, "make call", v.Make, ndis.StatusPending, ndis.StatusDestOutOfOrder)
	if in.CloseIndicated != 2 || in.CloseStatus != ndis.StatusDestOutOfOrder || in.Connected != 1 {
		t.Errorf("callee VC: %+v", in)
	}
	checkResult(t, "callee close", in.Close, ndis.StatusPending, ndis.StatusSuccess)
	checkVc(t, n, in.H, "INACTIVE", "CLOSED")
	if st := n.Caller.DeleteVc(v); st != ndis.StatusSuccess {
		t.Fatalf("delete: %v", st)
	}
	n.Teardown()
}
