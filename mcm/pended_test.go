package mcm_test

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/transport/sim"
)

// pendingCM is the CM side of a call manager whose miniport pends every
// activation and deactivation (MiniportCoActivateVc returning PENDING, as
// package miniport does while a data path opens): the request returns
// NDIS_STATUS_PENDING and is carried out, then completed, either inside
// the request before it returns (early: spec §3.0) or when the test
// releases it. The other requests go to the MCM's own CM.
type pendingCM struct {
	callctl.CM
	d     *mcm.MCM
	early bool

	mu   sync.Mutex
	log  []string
	held []func()
}

func (p *pendingCM) note(s string) {
	p.mu.Lock()
	p.log = append(p.log, s)
	p.mu.Unlock()
}

func (p *pendingCM) ActivateVc(vc *ndis.Vc, params *ndis.CallParameters) ndis.Status {
	cp := params.Clone() // the caller's again when the request returns (R-ACT-13)
	return p.pend("ActivateVc", vc, func() ndis.Status { return p.CM.ActivateVc(vc, cp) })
}

func (p *pendingCM) DeactivateVc(vc *ndis.Vc) ndis.Status {
	return p.pend("DeactivateVc", vc, func() ndis.Status { return p.CM.DeactivateVc(vc) })
}

func (p *pendingCM) pend(op string, vc *ndis.Vc, do func() ndis.Status) ndis.Status {
	complete := func() {
		st := do()
		p.note(op + " " + st.String())
		if !mcm.CompleteActivation(p.d, vc, st) {
			p.note(op + ": completion refused")
		}
	}
	if p.early {
		complete()
		return ndis.StatusPending
	}
	p.mu.Lock()
	p.held = append(p.held, complete)
	p.log = append(p.log, op+" pended")
	p.mu.Unlock()
	return ndis.StatusPending
}

func (p *pendingCM) heldNow() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.held)
}

// release carries out and completes the held requests.
func (p *pendingCM) release() {
	p.mu.Lock()
	held := p.held
	p.held = nil
	p.mu.Unlock()
	for _, f := range held {
		f()
	}
}

func (p *pendingCM) takeLog() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.log
	p.log = nil
	return l
}

// offered counts the calls cl was offered (ProtocolClIncomingCall).
func offered(cl *memdrv.Client) int {
	n := 0
	for _, v := range cl.Incoming() {
		n += memdrv.See(cl, func() int { return v.Offered })
	}
	return n
}

// pendActivations makes n's CM pend its activations and deactivations.
func pendActivations(n *node, early bool) *pendingCM {
	p := &pendingCM{d: n.d, early: early}
	mcm.WrapCM(n.d, func(cm callctl.CM) callctl.CM { p.CM = cm; return p })
	return p
}

// TestPendedActivationInCalls: a call whose activations and
// deactivations the CM pends on both nodes. The called side offers the
// call only once its VC's activation completed; the caller's MakeCall
// completes only once its activation after CONNECT completed; each close
// completes (CloseCallComplete) only after its pended deactivation
// completed. Data flows both ways in between, and both mediators are empty
// at the end.
func TestPendedActivationInCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		pa, pb := pendActivations(a, false), pendActivations(b, false)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")

		va, _ := ca.CreateVc(ca.Af())
		ca.MakeCall(va, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false), false)
		w.waitFor("b's activation for the offer pended", func() bool { return pb.heldNow() == 1 })
		w.pause(100 * time.Millisecond)
		if n := offered(cb); n != 0 {
			t.Fatalf("the call was offered before its VC's activation completed (%d offers)", n)
		}
		pb.release()
		w.waitFor("a's activation after CONNECT pended", func() bool { return pa.heldNow() == 1 })
		w.pause(100 * time.Millisecond)
		if memdrv.See(ca, func() bool { return va.Make.Done }) {
			t.Fatal("MakeCall completed before the VC's activation did")
		}
		pa.release()
		w.waitFor("MakeCall completed", func() bool { return memdrv.See(ca, func() bool { return va.Make.Done }) })
		if r := memdrv.See(ca, func() memdrv.Result { return va.Make }); r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
			t.Fatalf("MakeCall: %v", r)
		}
		vb := cb.LastIncoming()
		w.waitFor("callee connected", func() bool { return memdrv.See(cb, func() bool { return vb.Connected == 1 }) })

		p1, p2 := payload(1000, 1), payload(500, 9)
		if st := w.send(ca, va, p1); st[0] != ndis.StatusSuccess {
			t.Fatalf("send a->b: %v", st)
		}
		if st := w.send(cb, vb, p2); st[0] != ndis.StatusSuccess {
			t.Fatalf("send b->a: %v", st)
		}
		if rx := w.received(cb, vb, 1); !bytes.Equal(rx[0], p1) {
			t.Error("b did not receive what a sent")
		}
		if rx := w.received(ca, va, 1); !bytes.Equal(rx[0], p2) {
			t.Error("a did not receive what b sent")
		}

		ca.CloseCall(va)
		w.waitFor("a's deactivation pended", func() bool { return pa.heldNow() == 1 })
		w.pause(100 * time.Millisecond)
		if memdrv.See(ca, func() bool { return va.Close.Done }) {
			t.Fatal("CloseCall completed before the VC's deactivation did")
		}
		pa.release()
		w.waitFor("close completed", func() bool { return memdrv.See(ca, func() bool { return va.Close.Done }) })
		if r := memdrv.See(ca, func() memdrv.Result { return va.Close }); r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
			t.Errorf("CloseCall: %v", r)
		}
		w.waitFor("b's deactivation pended", func() bool { return pb.heldNow() == 1 })
		if memdrv.See(cb, func() bool { return vb.Close.Done }) {
			t.Fatal("b's CloseCall completed before the VC's deactivation did")
		}
		pb.release()
		w.closedByNetwork(cb, vb, ndis.StatusSuccess)
		w.deleted(cb, vb)

		want := []string{"ActivateVc pended", "ActivateVc NDIS_STATUS_SUCCESS", "DeactivateVc pended", "DeactivateVc NDIS_STATUS_SUCCESS"}
		if got := pa.takeLog(); !slices.Equal(got, want) {
			t.Errorf("a's CM: %q, want %q", got, want)
		}
		if got := pb.takeLog(); !slices.Equal(got, want) {
			t.Errorf("b's CM: %q, want %q", got, want)
		}
	})
}

// TestPendedActivationEarlyCompletion: the same call when the CM
// completes each activation and deactivation inside the request, before
// it returns PENDING (spec §3.0): the call comes up, carries data and
// closes, each completion taken exactly once.
func TestPendedActivationEarlyCompletion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		pa, pb := pendActivations(a, true), pendActivations(b, true)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
		p1 := payload(700, 4)
		if st := w.send(ca, va, p1); st[0] != ndis.StatusSuccess {
			t.Fatalf("send a->b: %v", st)
		}
		if rx := w.received(cb, vb, 1); !bytes.Equal(rx[0], p1) {
			t.Error("b did not receive what a sent")
		}
		w.hangUp(cb, vb, ca, va, ndis.StatusSuccess)
		w.deleted(cb, vb)
		want := []string{"ActivateVc NDIS_STATUS_SUCCESS", "DeactivateVc NDIS_STATUS_SUCCESS"}
		if got := pa.takeLog(); !slices.Equal(got, want) {
			t.Errorf("a's CM: %q, want %q", got, want)
		}
		if got := pb.takeLog(); !slices.Equal(got, want) {
			t.Errorf("b's CM: %q, want %q", got, want)
		}
	})
}

// TestPendedOfferActivationCallGone: the caller gives up (T303) while the
// called side's activation for the offer is pended. When it completes, the
// client is never offered the call (nor told of its end); the VC is
// deactivated and deleted, and the caller's MakeCall failed once.
func TestPendedOfferActivationCallGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		pb := pendActivations(b, false)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")

		va, _ := ca.CreateVc(ca.Af())
		ca.MakeCall(va, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false), false)
		w.waitFor("b's activation for the offer pended", func() bool { return pb.heldNow() == 1 })
		w.waitFor("MakeCall failed", func() bool { return memdrv.See(ca, func() bool { return va.Make.Done }) })
		if r := memdrv.See(ca, func() memdrv.Result { return va.Make }); r.Status == ndis.StatusSuccess || !r.ExactlyOnce() {
			t.Fatalf("MakeCall: %v, want one failure", r)
		}
		w.pause(time.Second) // the RELEASE reaches b
		pb.release()
		w.waitFor("b's deactivation pended", func() bool { return pb.heldNow() == 1 })
		pb.release()
		w.waitFor("b's VC deleted", func() bool { return len(b.m.Snapshot().Vcs) == 0 })
		if n := offered(cb); n != 0 {
			t.Errorf("the client was offered a call that was gone (%d offers)", n)
		}
		closes := 0
		for _, v := range cb.Incoming() {
			closes += memdrv.See(cb, func() int { return v.CloseIndicated })
		}
		if n := closes; n != 0 {
			t.Errorf("the client was told of the end of a call it never saw (%d incoming closes)", n)
		}
		want := []string{"ActivateVc pended", "ActivateVc NDIS_STATUS_SUCCESS", "DeactivateVc pended", "DeactivateVc NDIS_STATUS_SUCCESS"}
		if got := pb.takeLog(); !slices.Equal(got, want) {
			t.Errorf("b's CM: %q, want %q", got, want)
		}
	})
}
