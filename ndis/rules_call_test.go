package ndis_test

// Rule tests for R-CALL (outgoing calls), R-IN (incoming calls), R-CLOSE,
// R-PTY (parties) and R-QOS.

import (
	"testing"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/ndis"
)

// pendMakeCall makes the call manager pend MakeCall without activating.
func (x *rlFx) pendMakeCall() {
	x.cm.makeCall = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusPending }
}

// sendStatus sends one list on vc as c and returns the status it came back with.
func (x *rlFx) sendStatus(c *rlClient, vc *ndis.Vc) ndis.Status {
	n := len(c.sent())
	c.b.CoSendNetBufferLists(vc, rlChain("x"), 0)
	got := c.sent()
	if len(got) != n+1 {
		x.t.Fatalf("send not completed exactly once: %v", got)
	}
	return got[n]
}

func TestRule_R_CALL_1_MakeCallOnlyOnOwnIdleVc(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		p := rlParams()
		in, _ := x.cmVc(x.c1)
		x.refuse("R-CALL-1", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.ClMakeCall(in, p, nil); return st })
		vc := x.newVc(x.c1)
		x.refuse("R-CALL-1", ndis.StatusFailure, func() ndis.Status { _, st := x.c2.b.ClMakeCall(vc, p, nil); return st })
		_, st := x.c1.b.ClMakeCall(vc, p, nil)
		rlMust(t, st, "make call")
		x.refuse("R-CALL-1", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.ClMakeCall(vc, p, nil); return st })
		x.hangup(x.c1, vc, nil)
		rlMust(t, x.cm.del(in), "delete")
		x.Teardown()
	})
}

func TestRule_R_CALL_2_MakeCallNeedsParameters(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.newVc(x.c1)
		x.refuse("R-CALL-2", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.ClMakeCall(vc, nil, nil); return st })
		_, st := x.c1.b.ClMakeCall(vc, rlParams(), nil)
		rlMust(t, st, "make call")
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_CALL_3_PartyHandleIffMultipoint(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		mvc, p1 := x.mpCall(x.c1)
		if x.cm.count("MakeCall("+vc.String()+",party=false)") != 1 || x.cm.count("MakeCall("+mvc.String()+",party=true)") != 1 {
			t.Errorf("ProtocolCmMakeCall party arguments: %v", x.cm.all())
		}
		x.hangup(x.c1, vc, nil)
		x.hangup(x.c1, mvc, p1)
		// A call manager returning a party context for a point-to-point call.
		x.cm.makeCall = func(v *rlVc, p *ndis.CallParameters, _ *ndis.Party) (any, ndis.Status) {
			rlMust(t, x.cm.activate(v.h, p), "activate")
			v.active.Store(true)
			return &rlParty{}, ndis.StatusSuccess
		}
		vc = x.newVc(x.c1)
		x.warned("R-CALL-3", func() { _, st := x.c1.b.ClMakeCall(vc, rlParams(), nil); rlMust(t, st, "make call") })
		x.hangup(x.c1, vc, nil)
		// A completion naming the wrong party.
		var party *ndis.Party
		x.cm.makeCall = func(v *rlVc, p *ndis.CallParameters, pt *ndis.Party) (any, ndis.Status) {
			rlMust(t, x.cm.activate(v.h, p), "activate")
			v.active.Store(true)
			party = pt
			return nil, ndis.StatusPending
		}
		mvc = x.newVc(x.c1)
		p := rlParams()
		ph, st := x.c1.b.ClMakeCall(mvc, p, &rlParty{})
		rlIs(t, "make call", st, ndis.StatusPending)
		if ph == nil || ph != party {
			t.Fatalf("party handle %v, call manager got %v", ph, party)
		}
		x.refuse("R-CALL-3", ndis.StatusFailure, func() ndis.Status { return x.cm.makeCallComplete(ndis.StatusSuccess, mvc, nil, &rlParty{}, p) })
		rlMust(t, x.cm.makeCallComplete(ndis.StatusSuccess, mvc, party, &rlParty{h: party}, p), "complete")
		if x.c1.last("MakeCallComplete") != "MakeCallComplete(NDIS_STATUS_SUCCESS,party=true)" {
			t.Errorf("completion %q", x.c1.last("MakeCallComplete"))
		}
		x.cm.makeCall = nil
		x.hangup(x.c1, mvc, party)
		x.Teardown()
	})
}

func TestRule_R_CALL_4_SuccessOnInactiveVcReported(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.cm.makeCall = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusSuccess }
		vc := x.newVc(x.c1)
		x.warned("R-CALL-4", func() { _, st := x.c1.b.ClMakeCall(vc, rlParams(), nil); rlMust(t, st, "make call") })
		x.wantState(vc, "INACTIVE/CONNECTED")
		x.check("R-ACT-1", ndis.StatusVcNotActivated, ndis.StatusVcNotActivated, func() ndis.Status { return x.sendStatus(x.c1, vc) })
		// The same from a pended completion.
		x.pendMakeCall()
		vc2 := x.newVc(x.c1)
		p := rlParams()
		_, st := x.c1.b.ClMakeCall(vc2, p, nil)
		rlIs(t, "make call", st, ndis.StatusPending)
		x.warned("R-CALL-4", func() { rlMust(t, x.cm.makeCallComplete(ndis.StatusSuccess, vc2, nil, nil, p), "complete") })
		x.cm.makeCall = nil
		x.hangup(x.c1, vc, nil)
		x.hangup(x.c1, vc2, nil)
		x.Teardown()
	})
}

func TestRule_R_CALL_5_NoCloseWhileMakeCallPending(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.pendMakeCall()
		vc := x.newVc(x.c1)
		p := rlParams()
		_, st := x.c1.b.ClMakeCall(vc, p, nil)
		rlIs(t, "make call", st, ndis.StatusPending)
		x.refuse("R-CALL-5", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseCall(vc, nil, nil) })
		rlMust(t, x.cm.makeCallComplete(ndis.StatusFailure, vc, nil, nil, p), "the call ends with its completion")
		if x.c1.last("MakeCallComplete") != "MakeCallComplete(NDIS_STATUS_FAILURE,party=false)" {
			t.Errorf("completion %q", x.c1.last("MakeCallComplete"))
		}
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.Teardown()
	})
}

func TestRule_R_CALL_6_NoDataBeforeMakeCallCompletes(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.cm.makeCall = func(v *rlVc, p *ndis.CallParameters, _ *ndis.Party) (any, ndis.Status) {
			rlMust(t, x.cm.activate(v.h, p), "activate") // active already; the call is not up yet
			v.active.Store(true)
			return nil, ndis.StatusPending
		}
		vc := x.newVc(x.c1)
		p := rlParams()
		_, st := x.c1.b.ClMakeCall(vc, p, nil)
		rlIs(t, "make call", st, ndis.StatusPending)
		x.check("R-CALL-6", ndis.StatusFailure, ndis.StatusFailure, func() ndis.Status { return x.sendStatus(x.c1, vc) })
		x.refuse("R-CALL-6", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClModifyCallQoS(vc, p) })
		rlMust(t, x.cm.makeCallComplete(ndis.StatusSuccess, vc, nil, nil, p), "complete")
		rlIs(t, "send once connected", x.sendStatus(x.c1, vc), ndis.StatusSuccess)
		x.cm.makeCall = nil
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_CALL_7_FailedMakeCallKillsTheParty(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.pendMakeCall()
		vc := x.newVc(x.c1)
		p := rlParams()
		party, st := x.c1.b.ClMakeCall(vc, p, &rlParty{})
		rlIs(t, "make call", st, ndis.StatusPending)
		rlMust(t, x.cm.makeCallComplete(ndis.StatusFailure, vc, party, nil, p), "fail")
		if x.c1.last("MakeCallComplete") != "MakeCallComplete(NDIS_STATUS_FAILURE,party=false)" {
			t.Errorf("completion %q", x.c1.last("MakeCallComplete"))
		}
		x.refuse("R-PTY-9", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDropParty(party, nil) })
		x.refuse("R-PTY-15", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingDropParty(ndis.StatusSuccess, party) })
		if v, _ := x.vcInfo(vc); len(v.Parties) != 0 || v.Multipoint {
			t.Errorf("party survived: %+v", v)
		}
		// The VC is reusable for a new call.
		x.cm.makeCall = nil
		_, st = x.c1.b.ClMakeCall(vc, p, nil)
		rlMust(t, st, "new call")
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_IN_3_IncomingCallAnswerNeverPending(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		x.c2.incoming = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
		h, v := x.cmVc(x.c2)
		p := rlParams()
		rlMust(t, x.cm.activate(h, p), "activate")
		v.active.Store(true)
		rlIs(t, "dispatch", x.cm.dispatchIncomingCall(s, h, p), ndis.StatusPending)
		x.refuse("R-IN-3", ndis.StatusFailure, func() ndis.Status { return x.c2.b.ClIncomingCallComplete(ndis.StatusPending, h, p) })
		x.refuse("R-IN-3", ndis.StatusFailure, func() ndis.Status { return x.c2.b.ClCloseCall(h, nil, nil) })
		rlMust(t, x.c2.b.ClIncomingCallComplete(ndis.StatusSuccess, h, p), "accept")
		if x.cm.count("IncomingCallComplete(NDIS_STATUS_SUCCESS)") != 1 {
			t.Errorf("call manager log %v", x.cm.all())
		}
		rlMust(t, x.cm.dispatchCallConnected(h), "connect")
		x.remoteHangup(x.c2, h)
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_IN_6_ConnectOnlyAnAcceptedCall(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		p := rlParams()
		h, v := x.cmVc(x.c2)
		rlMust(t, x.cm.activate(h, p), "activate")
		v.active.Store(true)
		x.refuse("R-IN-6", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchCallConnected(h) }) // idle
		x.c2.incoming = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
		rlIs(t, "dispatch", x.cm.dispatchIncomingCall(s, h, p), ndis.StatusPending)
		x.refuse("R-IN-6", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchCallConnected(h) }) // offered
		rlMust(t, x.c2.b.ClIncomingCallComplete(ndis.StatusSuccess, h, p), "accept")
		rlMust(t, x.cm.dispatchCallConnected(h), "connect")
		x.refuse("R-IN-6", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchCallConnected(h) }) // connected
		if n := x.c2.count("CallConnected"); n != 1 {
			t.Errorf("client told %d times", n)
		}
		x.remoteHangup(x.c2, h)
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_IN_8_NoDataBeforeCallConnected(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		p := rlParams()
		x.c2.incoming = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
		h, v := x.cmVc(x.c2)
		rlMust(t, x.cm.activate(h, p), "activate")
		v.active.Store(true)
		rlIs(t, "dispatch", x.cm.dispatchIncomingCall(s, h, p), ndis.StatusPending)
		x.check("R-IN-8", ndis.StatusFailure, ndis.StatusFailure, func() ndis.Status { return x.sendStatus(x.c2, h) }) // offered
		rlMust(t, x.c2.b.ClIncomingCallComplete(ndis.StatusSuccess, h, p), "accept")
		x.check("R-IN-8", ndis.StatusFailure, ndis.StatusFailure, func() ndis.Status { return x.sendStatus(x.c2, h) }) // accepted
		rlMust(t, x.cm.dispatchCallConnected(h), "connect")
		rlIs(t, "send once connected", x.sendStatus(x.c2, h), ndis.StatusSuccess)
		x.remoteHangup(x.c2, h)
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

// The mediator lets a client that pended an offer negotiate QoS first.
func TestRule_R_IN_9_NegotiateWhileOffered(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		p := rlParams()
		x.c2.incoming = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
		h, v := x.cmVc(x.c2)
		rlMust(t, x.cm.activate(h, p), "activate")
		v.active.Store(true)
		rlIs(t, "dispatch", x.cm.dispatchIncomingCall(s, h, p), ndis.StatusPending)
		rlMust(t, x.c2.b.ClModifyCallQoS(h, rlRate(5000)), "negotiate")
		rlMust(t, x.c2.b.ClIncomingCallComplete(ndis.StatusSuccess, h, p), "accept")
		rlMust(t, x.cm.dispatchCallConnected(h), "connect")
		x.remoteHangup(x.c2, h)
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_IN_10_DispatchNeedsParameters(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		h, _ := x.cmVc(x.c2)
		x.refuse("R-IN-10", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCall(s, h, nil) })
		x.c2.incoming = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusNotSupported }
		rlIs(t, "rejected", x.cm.dispatchIncomingCall(s, h, rlParams()), ndis.StatusNotSupported)
		rlMust(t, x.cm.del(h), "delete")
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_IN_12_DispatchOnlyOnOwnVc(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c1, "svc")
		vc := x.newVc(x.c1) // created by the client
		x.refuse("R-IN-12", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCall(s, vc, rlParams()) })
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.unsap(x.c1, s)
		x.Teardown()
	})
}

func TestRule_R_CLOSE_1_CloseWithSendsOutstanding(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		var held *ndis.NetBufferList
		x.setSend(func(_ *ndis.Vc, n *ndis.NetBufferList) { held = n })
		x.c1.b.CoSendNetBufferLists(vc, rlChain("a", "b"), 0)
		var cmv *rlVc
		x.cm.closeCall = func(v *rlVc, _ any) ndis.Status { cmv = v; return ndis.StatusPending }
		x.warned("R-CLOSE-1", func() { rlIs(t, "close", x.c1.b.ClCloseCall(vc, nil, nil), ndis.StatusPending) })
		rlMust(t, x.complete(vc, held, ndis.StatusSuccess), "sends complete")
		rlMust(t, x.cm.hangUp(cmv), "deactivate")
		rlMust(t, x.cm.closeCallComplete(ndis.StatusSuccess, vc, nil), "close complete")
		if got := x.c1.sent(); len(got) != 2 {
			t.Errorf("sends completed: %v", got)
		}
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.Teardown()
	})
}

func TestRule_R_CLOSE_2_NoSendAfterCloseCall(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		var cmv *rlVc
		x.cm.closeCall = func(v *rlVc, _ any) ndis.Status { cmv = v; return ndis.StatusPending }
		rlIs(t, "close", x.c1.b.ClCloseCall(vc, nil, nil), ndis.StatusPending)
		x.check("R-CLOSE-2", ndis.StatusClosing, ndis.StatusClosing, func() ndis.Status { return x.sendStatus(x.c1, vc) })
		rlMust(t, x.cm.hangUp(cmv), "deactivate")
		rlMust(t, x.cm.closeCallComplete(ndis.StatusSuccess, vc, nil), "complete")
		x.check("R-CLOSE-2", ndis.StatusClosing, ndis.StatusClosing, func() ndis.Status { return x.sendStatus(x.c1, vc) })
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.Teardown()
	})
}

func TestRule_R_CLOSE_3_ClosingMarkAndReuse(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		marked := false
		var cmv *rlVc
		x.cm.closeCall = func(v *rlVc, _ any) ndis.Status {
			info, _ := x.vcInfo(v.h)
			marked, cmv = info.Closing, v
			return ndis.StatusPending
		}
		rlIs(t, "close", x.c1.b.ClCloseCall(vc, nil, nil), ndis.StatusPending)
		if !marked {
			t.Errorf("the VC was not marked closing before ProtocolCmCloseCall ran")
		}
		p := rlParams()
		x.refuse("R-CLOSE-3", ndis.StatusClosing, func() ndis.Status { _, st := x.c1.b.ClMakeCall(vc, p, nil); return st })
		x.refuse("R-CLOSE-3", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseCall(vc, nil, nil) })
		rlMust(t, x.cm.hangUp(cmv), "deactivate")
		rlMust(t, x.cm.closeCallComplete(ndis.StatusSuccess, vc, nil), "complete")
		x.refuse("R-CLOSE-3", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseCall(vc, nil, nil) })
		// Permissive policy (the default): the creator may reuse the VC.
		x.cm.closeCall = nil
		_, st := x.c1.b.ClMakeCall(vc, p, nil)
		rlMust(t, st, "reuse")
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
	// Strict policy: a closed VC carries no other call.
	for _, topo := range ndistest.Topologies {
		t.Run("strict/"+string(topo), func(t *testing.T) {
			x := rlNew(t, topo, func(o *ndis.Options) { o.VcReuse = ndis.ReuseStrict })
			vc := x.call(x.c1)
			rlMust(t, x.c1.b.ClCloseCall(vc, nil, nil), "close")
			x.refuse("R-CLOSE-3", ndis.StatusClosing, func() ndis.Status { _, st := x.c1.b.ClMakeCall(vc, rlParams(), nil); return st })
			s := x.sap(x.c2, "svc")
			in, _ := x.incoming(x.c2, s)
			rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, in), "incoming close")
			rlMust(t, x.c2.b.ClCloseCall(in, nil, nil), "close")
			x.refuse("R-CLOSE-3", ndis.StatusClosing, func() ndis.Status { return x.cm.dispatchIncomingCall(s, in, rlParams()) })
			rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
			rlMust(t, x.cm.del(in), "delete")
			x.unsap(x.c2, s)
			x.Teardown()
		})
	}
}

func TestRule_R_CLOSE_4_CloseMultipointWithOnePartyLeft(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		p2 := x.addParty(x.c1, vc)
		x.refuse("R-CLOSE-4", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseCall(vc, p1, nil) })
		x.cm.addParty = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusPending }
		rlMust(t, x.c1.b.ClDropParty(p2, nil), "drop")
		p3, st := x.c1.b.ClAddParty(vc, &rlParty{}, rlParams())
		rlIs(t, "add", st, ndis.StatusPending)
		x.refuse("R-CLOSE-4", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseCall(vc, p1, nil) })
		rlMust(t, x.cm.addPartyComplete(ndis.StatusFailure, p3, nil, rlParams()), "fail the add")
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}

func TestRule_R_CLOSE_5_ClosePartyHandle(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		mvc, p1 := x.mpCall(x.c1)
		p2 := x.addParty(x.c1, mvc)
		x.refuse("R-CLOSE-5", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseCall(vc, p1, nil) })   // p2p with a party
		x.refuse("R-CLOSE-5", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClCloseCall(mvc, nil, nil) }) // multipoint without
		rlMust(t, x.c1.b.ClDropParty(p1, nil), "drop the initial party")
		// Any remaining party closes the call, not only the initial one.
		var gotParty any
		x.cm.closeCall = func(v *rlVc, pctx any) ndis.Status { gotParty = pctx; x.cm.hangUp(v); return ndis.StatusPending }
		rlIs(t, "close", x.c1.b.ClCloseCall(mvc, p2, nil), ndis.StatusPending)
		if gotParty == nil {
			t.Errorf("ProtocolCmCloseCall got no party context for a multipoint call")
		}
		x.refuse("R-CLOSE-5", ndis.StatusFailure, func() ndis.Status { return x.cm.closeCallComplete(ndis.StatusSuccess, mvc, p1) })
		rlMust(t, x.cm.closeCallComplete(ndis.StatusSuccess, mvc, p2), "complete")
		if x.c1.last("CloseCallComplete") != "CloseCallComplete(NDIS_STATUS_SUCCESS,party=true)" {
			t.Errorf("completion %q", x.c1.last("CloseCallComplete"))
		}
		x.cm.closeCall = nil
		rlMust(t, x.c1.b.CoDeleteVc(mvc), "delete")
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_CLOSE_8_CloseSucceededOnActiveVc(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		var cmv *rlVc
		x.cm.closeCall = func(v *rlVc, _ any) ndis.Status { cmv = v; return ndis.StatusSuccess } // no deactivation
		x.warned("R-CLOSE-8", func() { rlMust(t, x.c1.b.ClCloseCall(vc, nil, nil), "close") })
		x.wantState(vc, "ACTIVE/CLOSED")
		x.refuse("R-CLOSE-8", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.ClMakeCall(vc, rlParams(), nil); return st })
		x.refuse("R-VC-6", ndis.StatusNotAccepted, func() ndis.Status { return x.c1.b.CoDeleteVc(vc) })
		rlMust(t, x.cm.hangUp(cmv), "late deactivation")
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.Teardown()
	})
}

// TestRule_R_CLOSE_8_CmVcLeftActiveNotReused: a call manager whose close
// completed while its VC was still active may not dispatch another call on
// that VC (R-CLOSE-8, FAILURE), however it re-activates it, until it has
// deactivated it; then activating again and dispatching (spec §4.5) is
// fine. The reuse check looks at the activation when the call closed, not
// when the next one is dispatched.
func TestRule_R_CLOSE_8_CmVcLeftActiveNotReused(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		in, cmv := x.incoming(x.c2, s)
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, in), "incoming close")
		x.cm.closeCall = func(*rlVc, any) ndis.Status { return ndis.StatusSuccess } // no deactivation
		x.warned("R-CLOSE-8", func() { rlMust(t, x.c2.b.ClCloseCall(in, nil, nil), "close") })
		x.cm.closeCall = nil
		x.wantState(in, "ACTIVE/CLOSED")
		if vi, _ := x.vcInfo(in); !vi.LeftActive {
			t.Errorf("snapshot does not show the VC left active: %+v", vi)
		}
		x.refuse("R-CLOSE-8", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCall(s, in, rlParams()) })
		// Re-activating (new parameters) does not end the activation the
		// old call left open.
		rlMust(t, x.cm.activate(in, rlParams()), "re-activate")
		x.refuse("R-CLOSE-8", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCall(s, in, rlParams()) })
		if x.c2.count("IncomingCall(") != 1 {
			t.Errorf("the client was offered a call on a VC left active: %v", x.c2.all())
		}
		// Deactivated, the VC is reusable: activate, then dispatch.
		rlMust(t, x.cm.deactivate(in), "late deactivation")
		if vi, _ := x.vcInfo(in); vi.LeftActive {
			t.Errorf("still marked left active after the deactivation: %+v", vi)
		}
		rlMust(t, x.cm.activate(in, rlParams()), "activate for the next call")
		cmv.active.Store(true)
		rlMust(t, x.cm.dispatchIncomingCall(s, in, rlParams()), "dispatch the next call")
		rlMust(t, x.cm.dispatchCallConnected(in), "connect the next call")
		x.wantState(in, "ACTIVE/CONNECTED")
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, in), "incoming close")
		rlMust(t, x.c2.b.ClCloseCall(in, nil, nil), "close")
		rlMust(t, x.cm.del(in), "delete")
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

// TestRule_R_CLOSE_3_StrictReuseEitherOrder: with ReuseStrict a closed VC
// carries no other call whether the call manager activates it before the
// dispatch or not (R-CLOSE-3, NDIS_STATUS_CLOSING), although its close left
// it properly deactivated.
func TestRule_R_CLOSE_3_StrictReuseEitherOrder(t *testing.T) {
	for _, topo := range ndistest.Topologies {
		t.Run(string(topo), func(t *testing.T) {
			x := rlNew(t, topo, func(o *ndis.Options) { o.VcReuse = ndis.ReuseStrict })
			s := x.sap(x.c2, "svc")
			in, _ := x.incoming(x.c2, s)
			rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, in), "incoming close")
			rlMust(t, x.c2.b.ClCloseCall(in, nil, nil), "close")
			x.wantState(in, "INACTIVE/CLOSED")
			x.refuse("R-CLOSE-3", ndis.StatusClosing, func() ndis.Status { return x.cm.dispatchIncomingCall(s, in, rlParams()) })
			rlMust(t, x.cm.activate(in, rlParams()), "activate for the next call")
			x.refuse("R-CLOSE-3", ndis.StatusClosing, func() ndis.Status { return x.cm.dispatchIncomingCall(s, in, rlParams()) })
			rlMust(t, x.cm.deactivate(in), "deactivate")
			rlMust(t, x.cm.del(in), "delete")
			x.unsap(x.c2, s)
			x.Teardown()
		})
	}
}

func TestRule_R_CLOSE_11_CmVcNotTheClientsAfterClose(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		in, _ := x.incoming(x.c2, s)
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, in), "incoming close")
		rlMust(t, x.c2.b.ClCloseCall(in, nil, nil), "close")
		x.refuse("R-CLOSE-11", ndis.StatusFailure, func() ndis.Status { return x.c2.b.ClCloseCall(in, nil, nil) })
		x.refuse("R-CLOSE-11", ndis.StatusFailure, func() ndis.Status { return x.c2.b.ClModifyCallQoS(in, rlParams()) })
		x.refuse("R-CLOSE-11", ndis.StatusFailure, func() ndis.Status {
			_, st := x.c2.b.ClAddParty(in, &rlParty{}, rlParams())
			return st
		})
		rlMust(t, x.cm.del(in), "the call manager deletes its VC")
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_CLOSE_15_NoDataAfterIncomingClose(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, vc), "incoming close")
		x.check("R-CLOSE-15", ndis.StatusClosing, ndis.StatusClosing, func() ndis.Status { return x.sendStatus(x.c1, vc) })
		// Data still in flight is dropped quietly, not indicated.
		rlMust(t, x.ad.MCoIndicateReceiveNetBufferLists(vc, rlChain("late"), 1, 0), "indicate")
		if got := x.c1.received(); len(got) != 0 {
			t.Errorf("client received %q after the close indication", got)
		}
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_CLOSE_16_ErrorCloseForcesDeletion(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusDestOutOfOrder, vc), "incoming close")
		rlMust(t, x.c1.b.ClCloseCall(vc, nil, nil), "close")
		x.refuse("R-CLOSE-16", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.ClMakeCall(vc, rlParams(), nil); return st })
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		// An orderly remote close lets the client reuse its VC.
		vc = x.call(x.c1)
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, vc), "incoming close")
		rlMust(t, x.c1.b.ClCloseCall(vc, nil, nil), "close")
		_, st := x.c1.b.ClMakeCall(vc, rlParams(), nil)
		rlMust(t, st, "reuse")
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_CLOSE_18_LastPartyLeavesByClose(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		x.refuse("R-CLOSE-18", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingDropParty(ndis.StatusSuccess, p1) })
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, vc), "the last leaf leaving is a close")
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}

func TestRule_R_CLOSE_19_CloseStatusNotPending(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		x.refuse("R-CLOSE-19", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCloseCall(ndis.StatusPending, vc) })
		if x.c1.count("IncomingCloseCall") != 0 {
			t.Errorf("client told of a refused close")
		}
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_CLOSE_20_CloseIndicationNeedsACall(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.pendMakeCall()
		vc := x.newVc(x.c1)
		p := rlParams()
		_, st := x.c1.b.ClMakeCall(vc, p, nil)
		rlIs(t, "make call", st, ndis.StatusPending)
		x.refuse("R-CLOSE-20", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, vc) })
		rlMust(t, x.cm.makeCallComplete(ndis.StatusFailure, vc, nil, nil, p), "fail the setup instead")
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		h, _ := x.cmVc(x.c2)
		x.refuse("R-CLOSE-20", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, h) })
		// An offered call can be closed.
		s := x.sap(x.c2, "svc")
		x.c2.incoming = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
		rlIs(t, "dispatch", x.cm.dispatchIncomingCall(s, h, p), ndis.StatusPending)
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusFailure, h), "close an offered call")
		rlMust(t, x.c2.b.ClIncomingCallComplete(ndis.StatusFailure, h, p), "answer")
		rlMust(t, x.c2.b.ClCloseCall(h, nil, nil), "close")
		rlMust(t, x.cm.del(h), "delete")
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

func TestRule_R_PTY_1_AddPartyOnlyOnMultipoint(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		x.refuse("R-PTY-1", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.ClAddParty(vc, &rlParty{}, rlParams()); return st })
		x.hangup(x.c1, vc, nil)
		mvc, p1 := x.mpCall(x.c1)
		p2 := x.addParty(x.c1, mvc)
		rlMust(t, x.c1.b.ClDropParty(p2, nil), "drop")
		x.hangup(x.c1, mvc, p1)
		x.Teardown()
	})
}

func TestRule_R_PTY_2_AddPartyNeedsContextAndParameters(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		x.refuse("R-PTY-2", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.ClAddParty(vc, nil, rlParams()); return st })
		x.refuse("R-PTY-2", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.ClAddParty(vc, &rlParty{}, nil); return st })
		rlMust(t, x.c1.b.ClDropParty(x.addParty(x.c1, vc), nil), "add and drop")
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}

func TestRule_R_PTY_4_PartySuccessNeedsCallManagerContext(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.cm.makeCall = func(v *rlVc, p *ndis.CallParameters, _ *ndis.Party) (any, ndis.Status) {
			rlMust(t, x.cm.activate(v.h, p), "activate")
			v.active.Store(true)
			return nil, ndis.StatusSuccess
		}
		vc := x.newVc(x.c1)
		var p1 *ndis.Party
		x.warned("R-PTY-4", func() {
			var st ndis.Status
			p1, st = x.c1.b.ClMakeCall(vc, rlParams(), &rlParty{})
			rlMust(t, st, "make call")
		})
		x.cm.addParty = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusSuccess }
		var p2 *ndis.Party
		x.warned("R-PTY-4", func() {
			var st ndis.Status
			p2, st = x.c1.b.ClAddParty(vc, &rlParty{}, rlParams())
			rlMust(t, st, "add party")
		})
		rlMust(t, x.c1.b.ClDropParty(p2, nil), "drop")
		x.cm.makeCall, x.cm.addParty = nil, nil
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}

func TestRule_R_PTY_7_AddPartyNeedsAnEstablishedCall(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		// A refused add returns no handle; a failed completion kills it.
		x.cm.addParty = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusNotSupported }
		h, st := x.c1.b.ClAddParty(vc, &rlParty{}, rlParams())
		if st != ndis.StatusNotSupported || h != nil {
			t.Errorf("refused add: %v %v", h, st)
		}
		x.cm.addParty = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusPending }
		p2, st := x.c1.b.ClAddParty(vc, &rlParty{}, rlParams())
		rlIs(t, "add", st, ndis.StatusPending)
		x.refuse("R-PTY-7", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDropParty(p2, nil) }) // not valid yet
		rlMust(t, x.cm.addPartyComplete(ndis.StatusResources, p2, nil, rlParams()), "fail")
		if x.c1.last("AddPartyComplete") != "AddPartyComplete(NDIS_STATUS_RESOURCES,nil=true)" {
			t.Errorf("completion %q", x.c1.last("AddPartyComplete"))
		}
		x.refuse("R-PTY-9", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDropParty(p2, nil) })
		x.cm.addParty = nil
		// No add on a call the remote side closed.
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, vc), "incoming close")
		x.refuse("R-PTY-7", ndis.StatusFailure, func() ndis.Status { _, st := x.c1.b.ClAddParty(vc, &rlParty{}, rlParams()); return st })
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}

func TestRule_R_PTY_9_DroppedPartyHandleDead(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		p2 := x.addParty(x.c1, vc)
		rlMust(t, x.c1.b.ClDropParty(p2, nil), "drop")
		x.refuse("R-PTY-9", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDropParty(p2, nil) })
		x.hangup(x.c1, vc, p1)
		x.refuse("R-PTY-9", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDropParty(p1, nil) }) // closed with the call
		x.Teardown()
	})
}

func TestRule_R_PTY_10_LastPartyNotDropped(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		x.refuse("R-PTY-10", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClDropParty(p1, nil) })
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}

func TestRule_R_PTY_12_PartyKeptUntilDropCompletes(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		p2 := x.addParty(x.c1, vc)
		x.cm.dropParty = func(any) ndis.Status { return ndis.StatusPending }
		rlIs(t, "drop", x.c1.b.ClDropParty(p2, nil), ndis.StatusPending)
		v, _ := x.vcInfo(vc)
		if len(v.Parties) != 2 || v.Parties[1].State != "DROPPING" {
			t.Errorf("party while its drop pends: %+v", v.Parties)
		}
		rlMust(t, x.cm.dropPartyComplete(ndis.StatusSuccess, p2), "complete with the party handle")
		if v, _ := x.vcInfo(vc); len(v.Parties) != 1 || x.c1.count("DropPartyComplete(NDIS_STATUS_SUCCESS)") != 1 {
			t.Errorf("after the completion: %+v", v.Parties)
		}
		x.cm.dropParty = nil
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}

func TestRule_R_PTY_15_IncomingDropOfConnectedPartyOnly(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		p2 := x.addParty(x.c1, vc)
		x.cm.addParty = func(*rlVc, *ndis.CallParameters, *ndis.Party) (any, ndis.Status) { return nil, ndis.StatusPending }
		p3, _ := x.c1.b.ClAddParty(vc, &rlParty{}, rlParams())
		x.refuse("R-PTY-15", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingDropParty(ndis.StatusSuccess, p3) }) // adding
		rlMust(t, x.cm.addPartyComplete(ndis.StatusSuccess, p3, &rlParty{h: p3}, rlParams()), "complete")
		rlMust(t, x.cm.dispatchIncomingDropParty(ndis.StatusSuccess, p2), "incoming drop")
		x.refuse("R-PTY-15", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingDropParty(ndis.StatusSuccess, p2) }) // indicated
		rlMust(t, x.c1.b.ClDropParty(p2, nil), "drop")
		rlMust(t, x.c1.b.ClDropParty(p3, nil), "drop")
		if n := x.c1.count("IncomingDropParty"); n != 1 {
			t.Errorf("%d incoming drops", n)
		}
		x.cm.addParty = nil
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}

func TestRule_R_QOS_3_ModifyNeedsParameters(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		x.refuse("R-QOS-3", ndis.StatusInvalidData, func() ndis.Status { return x.c1.b.ClModifyCallQoS(vc, nil) })
		rlMust(t, x.c1.b.ClModifyCallQoS(vc, rlRate(10)), "modify")
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_QOS_5_OneQoSChangeAtATime(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		x.cm.modifyQoS = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
		p := rlRate(10)
		rlIs(t, "modify", x.c1.b.ClModifyCallQoS(vc, p), ndis.StatusPending)
		x.refuse("R-QOS-5", ndis.StatusFailure, func() ndis.Status { return x.c1.b.ClModifyCallQoS(vc, rlRate(20)) })
		rlMust(t, x.cm.modifyQoSComplete(ndis.StatusFailure, vc, p), "refuse the change")
		x.cm.modifyQoS = nil
		rlMust(t, x.c1.b.ClModifyCallQoS(vc, rlRate(20)), "next change")
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

func TestRule_R_QOS_7_IncomingQoSChangeOnActiveCall(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		p := rlParams()
		x.c2.incoming = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusPending }
		h, v := x.cmVc(x.c2)
		rlMust(t, x.cm.activate(h, p), "activate")
		v.active.Store(true)
		rlIs(t, "dispatch", x.cm.dispatchIncomingCall(s, h, p), ndis.StatusPending)
		x.refuse("R-QOS-7", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchQoSChange(h, p) }) // offered
		rlMust(t, x.c2.b.ClIncomingCallComplete(ndis.StatusSuccess, h, p), "accept")
		rlMust(t, x.cm.dispatchCallConnected(h), "connect")
		x.refuse("R-QOS-7", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchQoSChange(h, nil) })
		rlMust(t, x.cm.deactivate(h), "deactivate")
		x.refuse("R-QOS-7", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchQoSChange(h, p) }) // inactive
		rlMust(t, x.cm.activate(h, rlRate(7)), "activate with the new parameters first")
		rlMust(t, x.cm.dispatchQoSChange(h, rlRate(7)), "dispatch")
		if x.c2.count("IncomingCallQoSChange") != 1 {
			t.Errorf("client not told")
		}
		x.remoteHangup(x.c2, h)
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

// Once a drop has completed, the call manager's party handle is dead too.
func TestRule_R_PTY_13_CallManagerPartyHandleDeadAfterDrop(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		p2 := x.addParty(x.c1, vc)
		x.cm.dropParty = func(any) ndis.Status { return ndis.StatusPending }
		rlIs(t, "drop", x.c1.b.ClDropParty(p2, nil), ndis.StatusPending)
		rlMust(t, x.cm.oidRequest(x.c1.af, vc, p2, &ndis.OidRequest{}), "still valid while the drop pends")
		rlMust(t, x.cm.dropPartyComplete(ndis.StatusSuccess, p2), "complete")
		x.refuse("R-PTY-13", ndis.StatusFailure, func() ndis.Status { return x.cm.oidRequest(x.c1.af, vc, p2, &ndis.OidRequest{}) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.dropPartyComplete(ndis.StatusSuccess, p2) })
		x.refuse("R-PTY-15", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingDropParty(ndis.StatusSuccess, p2) })
		x.cm.dropParty = nil
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}

// After a rejection there is no call left to close: a close indication is
// refused; the call manager deactivates and deletes (or reuses) the VC.
func TestRule_R_IN_7_NoCloseIndicationAfterRejection(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		p := rlParams()
		h, _ := x.cmVc(x.c2)
		rlMust(t, x.cm.activate(h, p), "activate")
		x.c2.incoming = func(*rlVc, *ndis.CallParameters) ndis.Status { return ndis.StatusNotSupported }
		rlIs(t, "rejected", x.cm.dispatchIncomingCall(s, h, p), ndis.StatusNotSupported)
		x.refuse("R-CLOSE-20", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, h) })
		if x.c2.count("IncomingCloseCall") != 0 {
			t.Errorf("client told of a close after rejecting")
		}
		rlMust(t, x.cm.deactivate(h), "deactivate")
		rlMust(t, x.cm.del(h), "delete")
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

// After a successful close the call manager's call operations on the VC
// are refused; only deletion or a new call remain.
func TestRule_R_CLOSE_10_NoCallOperationsAfterClose(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		s := x.sap(x.c2, "svc")
		in, _ := x.incoming(x.c2, s)
		rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, in), "incoming close")
		rlMust(t, x.c2.b.ClCloseCall(in, nil, nil), "close")
		p := rlParams()
		x.refuse("R-CLOSE-20", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, in) })
		x.refuse("R-IN-6", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchCallConnected(in) })
		x.refuse("R-QOS-7", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchQoSChange(in, p) })
		x.refuse("R-GEN-2", ndis.StatusFailure, func() ndis.Status { return x.cm.closeCallComplete(ndis.StatusSuccess, in, nil) })
		rlMust(t, x.cm.del(in), "delete")
		x.unsap(x.c2, s)
		x.Teardown()
	})
}

// Clear collision (R-CLOSE-20, design.md §2): the remote release reaches the
// call manager while the client's own NdisClCloseCall is on its way. The
// call manager cannot know; the mediator indicates nothing, returns
// NDIS_STATUS_CLOSING, reports no violation, and the client's close
// completes normally. A close indication on a call that is already closed
// remains a violation.
func TestRule_R_CLOSE_20_ClearCollisionIsNotAViolation(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc := x.call(x.c1)
		var crossing ndis.Status
		x.cm.closeCall = func(v *rlVc, _ any) ndis.Status {
			crossing = x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, v.h)
			return x.cm.hangUp(v)
		}
		n := len(x.Seen())
		rlMust(t, x.c1.b.ClCloseCall(vc, nil, nil), "close")
		rlIs(t, "crossing close indication", crossing, ndis.StatusClosing)
		if got := len(x.Seen()); got != n {
			t.Errorf("clear collision reported %d violation(s): %v", got-n, x.Seen()[n:])
		}
		if c := x.c1.count("IncomingCloseCall"); c != 0 {
			t.Errorf("client told of a close it was already making (%d)", c)
		}
		x.cm.closeCall = nil
		x.refuse("R-CLOSE-20", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, vc) })
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.Teardown()
	})
}

// Crossing drop (R-PTY-15, design.md §2): the leaf leaves while the client
// is dropping it. One DropPartyComplete, no IncomingDropParty, no violation;
// NDIS_STATUS_CLOSING tells the call manager. An indication for a party that
// is already gone remains a violation.
func TestRule_R_PTY_15_CrossingDropIsNotAViolation(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		vc, p1 := x.mpCall(x.c1)
		p2 := x.addParty(x.c1, vc)
		var crossing ndis.Status
		x.cm.dropParty = func(any) ndis.Status {
			crossing = x.cm.dispatchIncomingDropParty(ndis.StatusSuccess, p2)
			return ndis.StatusSuccess
		}
		n := len(x.Seen())
		rlMust(t, x.c1.b.ClDropParty(p2, nil), "drop")
		rlIs(t, "crossing drop indication", crossing, ndis.StatusClosing)
		if got := len(x.Seen()); got != n {
			t.Errorf("crossing drop reported %d violation(s): %v", got-n, x.Seen()[n:])
		}
		if c := x.c1.count("IncomingDropParty"); c != 0 {
			t.Errorf("client told of a drop it was already making (%d)", c)
		}
		x.cm.dropParty = nil
		x.refuse("R-PTY-15", ndis.StatusFailure, func() ndis.Status { return x.cm.dispatchIncomingDropParty(ndis.StatusSuccess, p2) })
		x.hangup(x.c1, vc, p1)
		x.Teardown()
	})
}
