package ndis_test

// Rule tests for R-DATA (the data path and status indications) and R-OID.

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// returnedToMiniport counts the lists handed back to the topology's miniport.
func (x *rlFx) returnedToMiniport() int {
	if x.mp != nil {
		return x.mp.count("Return(")
	}
	return x.cm.count("MiniportReturn(")
}

func TestRule_R_DATA_1_EverySendCompletesOnce(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		var held []*ndis.NetBufferList
		x.setSend(func(_ *ndis.Vc, n *ndis.NetBufferList) { held = append(held, n) })
		x.c1.b.CoSendNetBufferLists(vc, rlChain("a", "b", "c"), 0) // forwarded, completed later
		if n := len(x.c1.sent()); n != 0 {
			t.Errorf("%d completions before the miniport completed", n)
		}
		x.Expect("R-GEN-8")
		x.c1.b.CoSendNetBufferLists(nil, rlChain("d"), 0) // refused: completed at once
		for _, h := range held {
			rlMust(t, x.complete(vc, h, ndis.StatusSuccess), "complete")
		}
		x.setSend(nil)
		x.cm.closeCall = func(v *rlVc, _ any) ndis.Status { return ndis.StatusPending }
		rlIs(t, "close", x.c1.b.ClCloseCall(vc, nil, nil), ndis.StatusPending)
		x.Expect("R-CLOSE-2")
		x.c1.b.CoSendNetBufferLists(vc, rlChain("e"), 0) // refused after close
		got := x.c1.sent()
		want := []ndis.Status{ndis.StatusFailure, ndis.StatusSuccess, ndis.StatusSuccess, ndis.StatusSuccess, ndis.StatusClosing}
		if !rlEqualStatus(got, want) {
			t.Errorf("completions %v, want %v", got, want)
		}
		rlMust(t, x.cm.deactivate(vc), "deactivate")
		rlMust(t, x.cm.closeCallComplete(ndis.StatusSuccess, vc, nil), "close complete")
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete: nothing outstanding")
		x.Teardown()
	})
}

func rlEqualStatus(a, b []ndis.Status) bool {
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

func TestRule_R_DATA_2_SourceHandleIsTheVc(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		other := x.newVc(x.c1)
		n := rlChain("a")
		n.SourceHandle = other
		var got *ndis.Vc
		x.setSend(func(_ *ndis.Vc, l *ndis.NetBufferList) { got = l.SourceHandle; x.complete(vc, l, ndis.StatusSuccess) })
		x.warned("R-DATA-2", func() { x.c1.b.CoSendNetBufferLists(vc, n, 0) })
		if got != vc {
			t.Errorf("miniport saw SourceHandle %v, want %v", got, vc)
		}
		if s := x.c1.sent(); len(s) != 1 || s[0] != ndis.StatusSuccess {
			t.Errorf("completions %v", s)
		}
		// Indicated lists carry the VC too.
		var rx *ndis.Vc
		x.c1.receive = func(_ *rlVc, l *ndis.NetBufferList, _ ndis.ReceiveFlags) { rx = l.SourceHandle }
		rlMust(t, x.ad.MCoIndicateReceiveNetBufferLists(vc, rlChain("r"), 1, ndis.ReceiveFlagsResources), "indicate")
		if rx != vc {
			t.Errorf("indicated SourceHandle %v", rx)
		}
		x.c1.receive = nil
		x.setSend(nil)
		rlMust(t, x.c1.b.CoDeleteVc(other), "delete")
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_DATA_3_ListsOwnedByNdisUntouched(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		var held *ndis.NetBufferList
		x.setSend(func(_ *ndis.Vc, n *ndis.NetBufferList) { held = n })
		l := rlChain("a")
		x.c1.b.CoSendNetBufferLists(vc, l, 0)
		x.Mark()
		// Resubmitted before its completion: dropped, not forwarded, not completed.
		x.warned("R-DATA-3", func() { x.c1.b.CoSendNetBufferLists(vc, l, 0) })
		// Not even when the VC named is dead or not the sender's.
		dead := x.newVc(x.c1)
		rlMust(t, x.c1.b.CoDeleteVc(dead), "delete")
		x.warned("R-DATA-3", func() { x.c1.b.CoSendNetBufferLists(dead, l, 0) })
		if x.upcalled("MiniportCoSendNetBufferLists") != 0 || len(x.c1.sent()) != 0 {
			t.Errorf("an owned list was forwarded or completed: %v %v", x.Upcalls(), x.c1.sent())
		}
		rlMust(t, x.complete(vc, held, ndis.StatusSuccess), "complete")
		if s := x.c1.sent(); len(s) != 1 {
			t.Errorf("completions %v, want one", s)
		}
		// A miniport indicating a list the client still holds.
		var kept *ndis.NetBufferList
		x.c1.receive = func(_ *rlVc, n *ndis.NetBufferList, _ ndis.ReceiveFlags) { kept = n }
		r := rlChain("r")
		rlMust(t, x.ad.MCoIndicateReceiveNetBufferLists(vc, r, 1, 0), "indicate")
		x.refuse("R-DATA-3", ndis.StatusFailure, func() ndis.Status { return x.ad.MCoIndicateReceiveNetBufferLists(vc, r, 1, 0) })
		rlMust(t, x.c1.b.ReturnNetBufferLists(kept, 0), "return")
		if v, _ := x.vcInfo(vc); v.RecvsOut != 0 {
			t.Errorf("%d receives outstanding after the return", v.RecvsOut)
		}
		x.c1.receive = nil
		x.setSend(nil)
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_DATA_4_SubmissionOrderKept(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		var order []string
		var held []*ndis.NetBufferList
		x.setSend(func(_ *ndis.Vc, n *ndis.NetBufferList) {
			for l := n; l != nil; l = l.Next {
				order = append(order, string(l.Data))
				held = append(held, l)
			}
		})
		x.c1.b.CoSendNetBufferLists(vc, rlChain("1", "2", "3"), 0)
		x.c1.b.CoSendNetBufferLists(vc, rlChain("4"), 0)
		if got := len(order); got != 4 || order[0] != "1" || order[1] != "2" || order[2] != "3" || order[3] != "4" {
			t.Errorf("miniport order %v", order)
		}
		// Completions in any order, one by one or batched.
		for _, l := range held {
			l.Next = nil
		}
		held[2].Status, held[0].Status = ndis.StatusSuccess, ndis.StatusFailure
		held[2].Next = held[0]
		rlMust(t, x.ad.MCoSendNetBufferListsComplete(vc, held[2], 0), "batch")
		rlMust(t, x.complete(vc, held[3], ndis.StatusSuccess), "fourth")
		rlMust(t, x.complete(vc, held[1], ndis.StatusSuccess), "second")
		want := []ndis.Status{ndis.StatusSuccess, ndis.StatusFailure, ndis.StatusSuccess, ndis.StatusSuccess}
		if got := x.c1.sent(); !rlEqualStatus(got, want) {
			t.Errorf("completions %v, want %v", got, want)
		}
		x.setSend(nil)
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_DATA_5_MiniportDoubleCompletionRefused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		other := x.call(x.c1)
		l := rlChain("a")
		x.c1.b.CoSendNetBufferLists(vc, l, 0) // completed at once by the miniport
		x.refuse("R-DATA-5", ndis.StatusFailure, func() ndis.Status { return x.complete(vc, l, ndis.StatusSuccess) })
		x.refuse("R-DATA-5", ndis.StatusFailure, func() ndis.Status { return x.complete(vc, rlChain("never sent"), ndis.StatusSuccess) })
		var held *ndis.NetBufferList
		x.setSend(func(_ *ndis.Vc, n *ndis.NetBufferList) { held = n })
		x.c1.b.CoSendNetBufferLists(vc, rlChain("b"), 0)
		x.refuse("R-DATA-5", ndis.StatusFailure, func() ndis.Status { return x.complete(other, held, ndis.StatusSuccess) }) // wrong VC
		if n := len(x.c1.sent()); n != 1 {
			t.Errorf("%d completions delivered, want 1", n)
		}
		rlMust(t, x.complete(vc, held, ndis.StatusSuccess), "the right completion still works")
		x.setSend(nil)
		x.hangup(x.c1, vc, nil)
		x.hangup(x.c1, other, nil)
		x.Teardown()
	})
}

func TestRule_R_DATA_6_ReturnOnlyIndicatedLists(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		x.refuse("R-DATA-6", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ReturnNetBufferLists(rlChain("x"), 0) })
		var kept *ndis.NetBufferList
		x.c1.receive = func(_ *rlVc, n *ndis.NetBufferList, _ ndis.ReceiveFlags) { kept = n }
		rlMust(t, x.ad.MCoIndicateReceiveNetBufferLists(vc, rlChain("r"), 1, 0), "indicate")
		x.refuse("R-DATA-6", ndis.StatusFailure, func() ndis.Status { return x.c2.b.ReturnNetBufferLists(kept, 0) }) // not c2's
		before := x.returnedToMiniport()
		rlMust(t, x.c1.b.ReturnNetBufferLists(kept, 0), "return")
		if x.returnedToMiniport() != before+1 {
			t.Errorf("list not handed back to the miniport")
		}
		x.refuse("R-DATA-6", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ReturnNetBufferLists(kept, 0) }) // twice
		// With NDIS_RECEIVE_FLAGS_RESOURCES the lists are never the client's.
		rlMust(t, x.ad.MCoIndicateReceiveNetBufferLists(vc, rlChain("s"), 1, ndis.ReceiveFlagsResources), "indicate")
		x.refuse("R-DATA-6", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ReturnNetBufferLists(kept, 0) })
		x.c1.receive = nil
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_DATA_9_StatusIndicationRouting(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		ind := &ndis.StatusIndication{StatusCode: ndis.StatusMediaConnect}
		rlMust(t, x.ad.MCoIndicateStatusEx(vc, ind), "VC indication")
		if x.c1.count("StatusEx(vc=true") != 1 || x.c2.count("StatusEx") != 0 {
			t.Errorf("VC indication reached c1 %d, c2 %d times", x.c1.count("StatusEx"), x.c2.count("StatusEx"))
		}
		if x.mp != nil && x.cm.count("StatusEx(vc=true") != 1 {
			t.Errorf("the VC's call manager was not told")
		}
		rlMust(t, x.ad.MCoIndicateStatusEx(nil, ind), "adapter indication")
		if x.c1.count("StatusEx(vc=false") != 1 || x.c2.count("StatusEx(vc=false") != 1 {
			t.Errorf("adapter-wide indication: c1 %v c2 %v", x.c1.all(), x.c2.all())
		}
		if x.mp != nil && x.cm.count("StatusEx(vc=false") != 1 {
			t.Errorf("adapter-wide indication missed the call manager")
		}
		x.refuse("R-DATA-9", ndis.StatusFailure, func() ndis.Status { return x.ad.MCoIndicateStatusEx(nil, nil) })
		x.hangup(x.c1, vc, nil)
		x.refuse("R-VC-9", ndis.StatusFailure, func() ndis.Status { return x.ad.MCoIndicateStatusEx(vc, ind) })
		x.Teardown()
	})
}

func TestRule_R_DATA_10_NoStatusAfterHalt(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		mp2 := &rlMiniport{x: x, name: "mp2"}
		a2, st := x.m.AddMiniport("mp2", mp2, mp2, nil)
		rlMust(t, st, "add")
		rlMust(t, a2.RemoveAdapter(), "halt")
		x.refuse("R-DATA-10", ndis.StatusFailure, func() ndis.Status {
			return a2.MCoIndicateStatusEx(nil, &ndis.StatusIndication{StatusCode: ndis.StatusMediaDisconnect})
		})
		x.Teardown()
	})
}

func TestRule_R_DATA_11_StatusSerializedPerBinding(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		var inside, overlap atomic.Int32
		x.c1.status = func(any, *ndis.StatusIndication) {
			if inside.Add(1) != 1 {
				overlap.Add(1)
			}
			runtime.Gosched()
			time.Sleep(50 * time.Microsecond)
			inside.Add(-1)
		}
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 10; j++ {
					x.ad.MCoIndicateStatusEx(nil, &ndis.StatusIndication{StatusCode: ndis.StatusMediaConnect})
				}
			}()
		}
		wg.Wait()
		if overlap.Load() != 0 || x.c1.count("StatusEx") != 80 {
			t.Errorf("%d overlapping indications; %d delivered", overlap.Load(), x.c1.count("StatusEx"))
		}
		x.Teardown()
	})
}

// The mediator does not serialize receive indications.
func TestRule_R_DATA_12_ReceivesMayRunConcurrently(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		entered := make(chan struct{}, 2)
		release := make(chan struct{})
		x.c1.receive = func(*rlVc, *ndis.NetBufferList, ndis.ReceiveFlags) {
			entered <- struct{}{}
			<-release
		}
		var wg sync.WaitGroup
		for _, d := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x.ad.MCoIndicateReceiveNetBufferLists(vc, rlChain(d), 1, ndis.ReceiveFlagsResources)
			}()
		}
		both := true
		for i := 0; i < 2; i++ {
			select {
			case <-entered:
			case <-time.After(5 * time.Second):
				both = false
			}
		}
		close(release)
		wg.Wait()
		if !both {
			t.Errorf("the second receive waited for the first: indications are serialized")
		}
		x.c1.receive = nil
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_OID_1_Routing(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		mpLog := func(vcSpecific bool) int {
			if x.mp != nil {
				return x.mp.count("OidRequest(vc=" + map[bool]string{true: "true", false: "false"}[vcSpecific])
			}
			return x.cm.count("MiniportOidRequest(vc=" + map[bool]string{true: "true", false: "false"}[vcSpecific])
		}
		rlMust(t, x.c1.b.CoOidRequest(nil, nil, nil, &ndis.OidRequest{}), "to the miniport")
		rlMust(t, x.c1.b.CoOidRequest(nil, vc, nil, &ndis.OidRequest{}), "to the miniport, VC")
		if mpLog(false) != 1 || mpLog(true) != 1 {
			t.Errorf("miniport OIDs not routed: %v %v", x.cm.all(), x.mp)
		}
		rlMust(t, x.c1.b.CoOidRequest(x.c1.af, vc, nil, &ndis.OidRequest{}), "to the call manager")
		if x.cm.count("CoOidRequest("+x.c1.af.String()+",vc=true,party=false)") != 1 {
			t.Errorf("call manager log %v", x.cm.all())
		}
		rlMust(t, x.cm.oidRequest(x.c1.af, vc, nil, &ndis.OidRequest{}), "to the client")
		if x.c1.count("CoOidRequest(vc=true,party=false)") != 1 || x.c2.count("CoOidRequest") != 0 {
			t.Errorf("client OID not routed to the AF's client")
		}
		x.refuse("R-OID-1", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CoOidRequest(x.c2.af, nil, nil, &ndis.OidRequest{}) })
		x.hangup(x.c1, vc, nil)
		rlMust(t, x.c2.b.ClCloseAddressFamily(x.c2.af), "close")
		x.refuse("R-OID-1", ndis.StatusFailure, func() ndis.Status { return x.cm.oidRequest(x.c2.af, nil, nil, &ndis.OidRequest{}) })
		x.Teardown()
	})
}

func TestRule_R_OID_2_PartyNeedsAfAndItsVc(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		other := x.call(x.c1)
		x.refuse("R-OID-2", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CoOidRequest(nil, vc, p1, &ndis.OidRequest{}) })
		x.refuse("R-OID-2", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CoOidRequest(x.c1.af, other, p1, &ndis.OidRequest{}) })
		x.refuse("R-OID-2", ndis.StatusFailure, func() ndis.Status { return x.cm.oidRequest(x.c1.af, other, p1, &ndis.OidRequest{}) })
		rlMust(t, x.c1.b.CoOidRequest(x.c1.af, vc, p1, &ndis.OidRequest{}), "party-specific request")
		if x.cm.count("CoOidRequest("+x.c1.af.String()+",vc=true,party=true)") != 1 {
			t.Errorf("call manager log %v", x.cm.all())
		}
		// A dead party handle is refused on both sides.
		p2 := x.addParty(x.c1, vc)
		rlMust(t, x.c1.b.ClDropParty(p2, nil), "drop")
		x.refuse("R-PTY-9", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CoOidRequest(x.c1.af, vc, p2, &ndis.OidRequest{}) })
		x.refuse("R-PTY-13", ndis.StatusFailure, func() ndis.Status { return x.cm.oidRequest(x.c1.af, vc, p2, &ndis.OidRequest{}) })
		x.hangup(x.c1, other, nil)
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}

func TestRule_R_OID_3_RequestResidentUntilComplete(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.refuse("R-OID-3", ndis.StatusInvalidData, func() ndis.Status { return x.c1.b.CoOidRequest(x.c1.af, nil, nil, nil) })
		x.cm.oid = func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		req := &ndis.OidRequest{Oid: ndis.OidCoGetAddresses}
		rlIs(t, "oid", x.c1.b.CoOidRequest(x.c1.af, nil, nil, req), ndis.StatusPending)
		x.refuse("R-OID-3", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CoOidRequest(x.c1.af, nil, nil, req) })
		rlMust(t, x.cm.oidRequestComplete(x.c1.af, req, ndis.StatusSuccess), "complete")
		x.cm.oid = nil
		rlMust(t, x.c1.b.CoOidRequest(x.c1.af, nil, nil, req), "reuse once completed")
		x.Teardown()
	})
}

func TestRule_R_OID_4_CompletionOnlyForPending(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		req := &ndis.OidRequest{Oid: ndis.OidCoGetAddresses}
		rlMust(t, x.c1.b.CoOidRequest(x.c1.af, nil, nil, req), "synchronous")
		if x.c1.count("CoOidRequestComplete") != 0 {
			t.Errorf("completion handler called for a synchronous request")
		}
		x.refuse("R-OID-4", ndis.StatusFailure, func() ndis.Status { return x.cm.oidRequestComplete(x.c1.af, req, ndis.StatusSuccess) })
		x.cm.oid = func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		rlIs(t, "oid", x.c1.b.CoOidRequest(x.c1.af, nil, nil, req), ndis.StatusPending)
		rlMust(t, x.cm.oidRequestComplete(x.c1.af, req, ndis.StatusSuccess), "complete")
		x.refuse("R-OID-4", ndis.StatusFailure, func() ndis.Status { return x.cm.oidRequestComplete(x.c1.af, req, ndis.StatusSuccess) })
		if n := x.c1.count("CoOidRequestComplete"); n != 1 {
			t.Errorf("%d completions", n)
		}
		x.Teardown()
	})
}

func TestRule_R_OID_5_MatchingCompletionFunction(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		// Pended in the miniport: not completed through the protocol path.
		req := &ndis.OidRequest{Oid: memdrv.OidLinkSpeed}
		if x.mp != nil {
			x.mp.oid = func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		} else {
			x.cm.mpOid = func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		}
		rlIs(t, "oid", x.c1.b.CoOidRequest(nil, nil, nil, req), ndis.StatusPending)
		x.refuse("R-OID-5", ndis.StatusFailure, func() ndis.Status { return x.cm.oidRequestComplete(x.c1.af, req, ndis.StatusSuccess) })
		x.refuse("R-OID-5", ndis.StatusFailure, func() ndis.Status { return x.c2.b.CoOidRequestComplete(nil, nil, nil, req, ndis.StatusSuccess) })
		rlMust(t, x.ad.MCoOidRequestComplete(nil, req, ndis.StatusSuccess), "complete")
		// Pended in the call manager: not completed through the miniport path.
		req2 := &ndis.OidRequest{Oid: ndis.OidCoGetAddresses}
		x.cm.oid = func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		rlIs(t, "oid", x.c1.b.CoOidRequest(x.c1.af, nil, nil, req2), ndis.StatusPending)
		x.refuse("R-OID-5", ndis.StatusFailure, func() ndis.Status { return x.ad.MCoOidRequestComplete(nil, req2, ndis.StatusSuccess) })
		x.refuse("R-OID-5", ndis.StatusFailure, func() ndis.Status { return x.c1.b.CoOidRequestComplete(x.c1.af, nil, nil, req2, ndis.StatusSuccess) })
		rlMust(t, x.cm.oidRequestComplete(x.c1.af, req2, ndis.StatusSuccess), "complete")
		if n := x.c1.count("CoOidRequestComplete"); n != 2 {
			t.Errorf("%d completions, want 2", n)
		}
		x.Teardown()
	})
}

func TestRule_R_OID_6_MiniportOidsNotSerialized(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		pend := func(*ndis.OidRequest) ndis.Status { return ndis.StatusPending }
		if x.mp != nil {
			x.mp.oid = pend
		} else {
			x.cm.mpOid = pend
		}
		r1, r2 := &ndis.OidRequest{Oid: memdrv.OidLinkSpeed}, &ndis.OidRequest{Oid: memdrv.OidLinkSpeed}
		rlIs(t, "first", x.c1.b.CoOidRequest(nil, nil, nil, r1), ndis.StatusPending)
		rlIs(t, "second while the first is pending", x.c2.b.CoOidRequest(nil, nil, nil, r2), ndis.StatusPending)
		rlMust(t, x.ad.MCoOidRequestComplete(nil, r2, ndis.StatusSuccess), "complete second")
		rlMust(t, x.ad.MCoOidRequestComplete(nil, r1, ndis.StatusBufferTooShort), "complete first")
		if x.c1.last("CoOidRequestComplete") != "CoOidRequestComplete(NDIS_STATUS_BUFFER_TOO_SHORT)" ||
			x.c2.last("CoOidRequestComplete") != "CoOidRequestComplete(NDIS_STATUS_SUCCESS)" {
			t.Errorf("completions c1 %v c2 %v", x.c1.all(), x.c2.all())
		}
		x.Teardown()
	})
}

// Protocols may issue OIDs at any time they are bound (the model has no
// pause states); once the binding is closed they may not.
func TestRule_R_OID_8_OidsWhileBoundOnly(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		var during ndis.Status
		pcm := &rlCM{x: x, name: "pcm"}
		b, st := x.m.BindAdapter(x.ad, "pcm", pcm, pcm, func(b *ndis.Binding) ndis.Status {
			during = b.CoOidRequest(nil, nil, nil, &ndis.OidRequest{}) // while binding
			return ndis.StatusSuccess
		})
		rlMust(t, st, "bind")
		rlIs(t, "OID while binding", during, ndis.StatusSuccess)
		rlMust(t, b.CoOidRequest(nil, nil, nil, &ndis.OidRequest{}), "OID while bound")
		rlMust(t, b.CloseAdapterEx(), "unbind")
		x.Mark()
		x.refuse("R-OID-8", ndis.StatusFailure, func() ndis.Status { return b.CoOidRequest(nil, nil, nil, &ndis.OidRequest{}) })
		if n := x.upcalled("MiniportCoOidRequest"); n != 0 {
			t.Errorf("a closed binding's OID reached the miniport")
		}
		x.Teardown()
	})
}

// R-CLOSE-15: a send that crosses the incoming close — issued while the
// client's ProtocolClIncomingCloseCall is still running, e.g. by another of
// its goroutines — is refused with NDIS_STATUS_CLOSING but is not a
// violation; once the handler has returned, a send is one.
func TestRule_R_CLOSE_15_SendCrossingIncomingCloseIsNotAViolation(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		n := len(x.Seen())
		x.c1.incomingClose = func(any, ndis.Status) {
			x.c1.b.CoSendNetBufferLists(vc, &ndis.NetBufferList{Data: []byte("crossing")}, 0)
		}
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, vc), "incoming close")
		if got := len(x.Seen()); got != n {
			t.Errorf("a send crossing the close indication reported %d violation(s): %v", got-n, x.Seen()[n:])
		}
		x.c1.incomingClose = nil
		x.check("R-CLOSE-15", ndis.StatusSuccess, ndis.StatusClosing, func() ndis.Status {
			x.c1.b.CoSendNetBufferLists(vc, &ndis.NetBufferList{Data: []byte("late")}, 0)
			return ndis.StatusSuccess // VOID: the refusal is the list's status and the violation
		})
		rlMust(t, x.c1.b.ClCloseCall(vc, nil, nil), "close")
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.Teardown()
	})
}
