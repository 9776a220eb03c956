package cm_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport/sim"
)

// leaf is one party's incoming call at a leaf node.
type leaf struct {
	vc  *clientcore.VC
	rec *recorder
}

func takeLeaf(t *testing.T, l *listener) leaf {
	t.Helper()
	select {
	case v := <-l.offered:
		r := <-l.rec
		waitUntil(t, "the leaf's call up", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.up })
		return leaf{v, r}
	case <-time.After(time.Minute):
		t.Fatal("no party offered")
		return leaf{}
	}
}

// addParty adds dest to v's call and waits for the outcome.
func addParty(t *testing.T, v *clientcore.VC, dest string) *clientcore.Party {
	t.Helper()
	done := make(chan error, 1)
	p := v.AddParty(dest, func(_ *clientcore.Party, err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("AddParty %s: %v", dest, err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("AddParty %s never completed", dest)
	}
	return p
}

// TestMultipointSplit: a point-to-multipoint call whose root and leaves
// are on split and integrated nodes — root alpha, leaves "l1" (by SETUP)
// and "l3" (by ADD PARTY on the same leg) on beta, "l2" (a second leg) on
// gamma — with the split miniports completing activations at once and
// pending them. Data from the root reaches every leaf (beta's two leaves
// share the leg's connection in a split beta's miniport); the root drops
// gamma's leaf (its client sees a normal close); beta's "l3" leaves (the
// root's client is told, PartyDropped, remote); data still reaches l1 and
// no longer the others; the root closes the call with its last party.
// Then a call with a party on each leaf node is closed with both up: each
// leaf sees a normal close. Nothing is left in any mediator.
func TestMultipointSplit(t *testing.T) {
	for _, pend := range []bool{false, true} {
		for _, kinds := range [][3]bool{
			{true, true, false}, // a split root, leaves on a split and an integrated node
			{false, true, true}, // an integrated root, leaves on split nodes
			{true, false, true}, // a split root, l1 and l3 on an integrated node
		} {
			name := fmt.Sprintf("pend=%v/split=%v", pend, kinds)
			t.Run(name, func(t *testing.T) { multipointCase(t, pend, kinds) })
		}
	}
}

func multipointCase(t *testing.T, pend bool, split [3]bool) {
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{DetectTimeout: time.Second})
		defer net.Close()
		mpc := miniport.Config{Pend: pend}
		a := newHostOpts(t, net, "alpha", hostOpts{split: split[0], mpc: mpc})
		b := newHostOpts(t, net, "beta", hostOpts{split: split[1], mpc: mpc})
		g := newHostOpts(t, net, "gamma", hostOpts{split: split[2], mpc: mpc})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		lb, lg := newListener(false), newListener(false)
		var saps []*clientcore.SAP
		for _, x := range []struct {
			h   *host
			svc string
			l   *listener
		}{{b, "l1", lb}, {b, "l3", lb}, {g, "l2", lg}} {
			s, err := x.h.client.Listen(ctx, x.svc, x.l)
			if err != nil {
				t.Fatal(err)
			}
			saps = append(saps, s)
		}
		none := ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
		rootRec := newRecorder()
		root, err := a.client.Call(ctx, "beta/l1", clientcore.CallOptions{Tx: flow(), Rx: none, Multipoint: true}, rootRec)
		if err != nil {
			t.Fatalf("multipoint call: %v", err)
		}
		l1 := takeLeaf(t, lb)
		p2 := addParty(t, root, "gamma/l2")
		l2 := takeLeaf(t, lg)
		p3 := addParty(t, root, "beta/l3")
		l3 := takeLeaf(t, lb)

		if err := root.Send([]byte("to-all")); err != nil {
			t.Fatalf("root send: %v", err)
		}
		for i, l := range []leaf{l1, l2, l3} {
			waitUntil(t, fmt.Sprintf("leaf %d received", i+1), func() bool { return len(l.rec.received()) == 1 })
			if got := l.rec.received(); got[0] != "to-all" {
				t.Errorf("leaf %d received %q, want [to-all]", i+1, got)
			}
		}

		// The root drops gamma's leaf: its client sees a normal close.
		dropped := make(chan error, 1)
		p2.DropParty(func(_ *clientcore.Party, err error) { dropped <- err })
		if err := <-dropped; err != nil {
			t.Errorf("DropParty: %v", err)
		}
		<-l2.rec.closed
		l2.rec.mu.Lock()
		if e := l2.rec.ends; len(e) != 1 || e[0].Reason != clientcore.ReasonRemote || e[0].Status != ndis.StatusSuccess {
			t.Errorf("dropped leaf's ends %+v, want one, remote, SUCCESS", e)
		}
		l2.rec.mu.Unlock()

		// beta's l3 leaves: the root is told.
		if st := closeAndWait(t, l3.vc); st != ndis.StatusSuccess {
			t.Errorf("l3's close: %v", st)
		}
		waitUntil(t, "the root told l3 left", func() bool { rootRec.mu.Lock(); defer rootRec.mu.Unlock(); return len(rootRec.drops) == 2 })
		rootRec.mu.Lock()
		if d := rootRec.drops; d[0].Reason != clientcore.ReasonLocal || d[1].Reason != clientcore.ReasonRemote {
			t.Errorf("root's party ends %+v, want gamma's local drop then l3's remote leave", d)
		}
		rootRec.mu.Unlock()
		if st := p3.State(); st.Phase != clientcore.PartyGone {
			t.Errorf("l3's party at the root: %v, want gone", st.Phase)
		}

		// Only l1 is left.
		if err := root.Send([]byte("to-l1")); err != nil {
			t.Fatalf("root send: %v", err)
		}
		waitUntil(t, "l1 received the second", func() bool { return len(l1.rec.received()) == 2 })
		if got := l1.rec.received()[1]; got != "to-l1" {
			t.Errorf("l1's second SDU %q", got)
		}
		if n := len(l2.rec.received()) + len(l3.rec.received()); n != 2 {
			t.Errorf("the gone leaves received %d SDUs in all, want 2 (one each before they went)", n)
		}

		// The last party goes with the call.
		if st := closeAndWait(t, root); st != ndis.StatusSuccess {
			t.Errorf("root's close: %v", st)
		}
		<-l1.rec.closed

		// A call closed with two parties up, one on each leaf node: both
		// leaves see a normal close.
		rootRec2 := newRecorder()
		root2, err := a.client.Call(ctx, "beta/l1", clientcore.CallOptions{Tx: flow(), Rx: none, Multipoint: true}, rootRec2)
		if err != nil {
			t.Fatalf("second multipoint call: %v", err)
		}
		m1 := takeLeaf(t, lb)
		addParty(t, root2, "gamma/l2")
		m2 := takeLeaf(t, lg)
		if err := root2.Send([]byte("both")); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "both leaves received", func() bool { return len(m1.rec.received()) == 1 && len(m2.rec.received()) == 1 })
		if st := closeAndWait(t, root2); st != ndis.StatusSuccess {
			t.Errorf("close with two parties: %v", st)
		}
		for i, m := range []leaf{m1, m2} {
			<-m.rec.closed
			m.rec.mu.Lock()
			if e := m.rec.ends; len(e) != 1 || e[0].Reason != clientcore.ReasonRemote || e[0].Status != ndis.StatusSuccess {
				t.Errorf("leaf %d of the closed call: ends %+v, want one, remote, SUCCESS", i+1, e)
			}
			m.rec.mu.Unlock()
		}
		for _, s := range saps {
			s.Close(clientcore.ReasonLocal)
		}
		for _, h := range []*host{a, b, g} {
			waitUntil(t, h.name+": no call VC left", func() bool { return len(h.callVCs()) == 0 })
		}
		a.finish()
		b.finish()
		g.finish()
	})
}
