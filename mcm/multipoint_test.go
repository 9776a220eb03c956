package mcm_test

import (
	"bytes"
	"testing"
	"testing/synctest"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// TestMultipoint: a point-to-multipoint call from a with leaves on b
// ("l1" by SETUP, "l3" by ADD PARTY on the same leg) and on c ("l2", a
// SETUP on a second leg); data from the root reaches every leaf; the root
// drops c's leaf; b's "l3" leaves on its own (the root gets
// IncomingDropParty); the root closes the call with its last party.
func TestMultipoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b, c := w.addNode("a", nil), w.addNode("b", nil), w.addNode("c", nil)
		root, cb, cc := a.client("root"), b.client("bob"), c.client("carol")
		b.listen(cb, "l1")
		b.listen(cb, "l3")
		c.listen(cc, "l2")
		tx := flow(ndis.ServiceControlledLoad, 480_000, 48_000, 960_000, 1000)
		none := ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
		addParty := capture(w, sim.From("a", sim.MsgType(uni.MsgAddParty)))

		v, _ := root.CreateVc(root.Af())
		p1, st := root.MakeCall(v, q2931.CallParams("b", "l1", tx, none, false), true)
		if st != ndis.StatusPending {
			t.Fatalf("MakeCall returned %v", st)
		}
		w.waitFor("first party", func() bool { return memdrv.See(root, func() bool { return v.Make.Done }) })
		if r := memdrv.See(root, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
			t.Fatalf("MakeCall: %v\n%s", r, w.dump())
		}
		l1 := waitIncoming(w, cb, 1)

		p2, _ := root.AddParty(v, q2931.CallParams("c", "l2", tx, none, false))
		p3, _ := root.AddParty(v, q2931.CallParams("b", "l3", tx, none, false))
		for _, p := range []*memdrv.ClientParty{p2, p3} {
			w.waitFor("party added", func() bool { return memdrv.See(root, func() bool { return p.Add.Done }) })
			if r := memdrv.See(root, func() memdrv.Result { return p.Add }); r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
				t.Fatalf("AddParty %s: %v\n%s", p.Service, r, w.dump())
			}
		}
		l2 := waitIncoming(w, cc, 1)
		l3 := waitIncoming(w, cb, 2)
		m, ok := addParty()
		if !ok || m.EndpointRef == nil || m.EndpointRef.Value == 0 {
			t.Errorf("l3 was not added with ADD PARTY on b's leg: %+v", m)
		}
		// UNI 3.1: both maximum CPCS-SDU sizes; nothing flows backward.
		if ok && (m.AAL == nil || m.AAL.FwdMaxSDU != uni.Some(1000) || m.AAL.BwdMaxSDU != uni.Some(0)) {
			t.Errorf("ADD PARTY AAL parameters %+v; want forward 1000, backward 0", m.AAL)
		}
		if ci := a.d.Calls(); len(ci) != 1 || !ci[0].Multipoint || len(ci[0].Parties) != 3 {
			t.Errorf("root's call: %+v", ci)
		}

		// Data from the root reaches every leaf; leaves do not send.
		d1 := payload(1000, 9)
		if st := w.send(root, v, d1); st[0] != ndis.StatusSuccess {
			t.Fatalf("root send: %v", st)
		}
		for _, l := range []struct {
			c *memdrv.Client
			v *memdrv.ClientVc
		}{{cb, l1}, {cc, l2}, {cb, l3}} {
			if rx := w.received(l.c, l.v, 1); !bytes.Equal(rx[0], d1) {
				t.Errorf("a leaf received %d octets, not what the root sent", len(rx[0]))
			}
		}
		if st := w.send(cb, l1, payload(10, 0)); st[0] != ndis.StatusFailure {
			t.Errorf("a leaf's send: %v, want FAILURE (no backward direction)", st)
		}

		// The root drops c's leaf: carol is told the call closed normally.
		if st := root.DropParty(p2); st != ndis.StatusPending {
			t.Errorf("DropParty returned %v", st)
		}
		w.waitFor("drop completed", func() bool { return memdrv.See(root, func() bool { return p2.Drop.Done }) })
		if r := memdrv.See(root, func() memdrv.Result { return p2.Drop }); r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
			t.Errorf("DropParty: %v", r)
		}
		w.closedByNetwork(cc, l2, ndis.StatusSuccess)
		w.deleted(cc, l2)

		// b's "l3" hangs up: DROP PARTY to the root, whose client is told
		// with IncomingDropParty and drops the party.
		w.hangUp(cb, l3, nil, nil, 0)
		w.waitFor("root dropped l3", func() bool { return memdrv.See(root, func() bool { return p3.Drop.Done }) })
		n, r := memdrv.See(root, func() int { return p3.DropIndicated }), memdrv.See(root, func() memdrv.Result { return p3.Drop })
		if n != 1 || r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
			t.Errorf("root: %d incoming drop(s), drop %v", n, r)
		}
		w.deleted(cb, l3)

		// Only l1 is left.
		d2 := payload(100, 1)
		w.send(root, v, d2)
		if rx := w.received(cb, l1, 2); !bytes.Equal(rx[1], d2) {
			t.Errorf("l1's second packet differs")
		}
		if got := len(l2.RxData()) + len(l3.RxData()); got != 2 {
			t.Errorf("dropped leaves received %d packets in all, want 2 (one each before the drop)", got)
		}

		// Last party: the root closes the call.
		w.hangUp(root, v, cb, l1, ndis.StatusSuccess)
		w.deleted(cb, l1)
		if r := memdrv.See(root, func() memdrv.Result { return p1.Drop }); r.Completions != 0 {
			t.Errorf("the last party was dropped: %v", r)
		}
		root.DeleteVc(v)
		for _, n := range w.nodes {
			if ci := n.d.Calls(); len(ci) != 0 {
				t.Errorf("%s: calls left: %+v", n.name, ci)
			}
		}
	})
}

// TestMultipointLeafNodeLost: the only leaf node of a multipoint leg goes
// away for good; its party is lost (IncomingDropParty, cause 27) while
// other leaves stay, and the call closes (IncomingCloseCall) when the last
// leaf node is lost too.
func TestMultipointLeafNodeLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b, c := w.addNode("a", nil), w.addNode("b", nil), w.addNode("c", nil)
		root, cb, cc := a.client("root"), b.client("bob"), c.client("carol")
		b.listen(cb, "l1")
		c.listen(cc, "l2")
		tx := bestEffort(500)
		none := ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
		v, _ := root.CreateVc(root.Af())
		root.MakeCall(v, q2931.CallParams("b", "l1", tx, none, false), true)
		w.waitFor("call", func() bool { return memdrv.See(root, func() bool { return v.Make.Done }) })
		p2, _ := root.AddParty(v, q2931.CallParams("c", "l2", tx, none, false))
		w.waitFor("party", func() bool { return memdrv.See(root, func() bool { return p2.Add.Done }) })
		l2 := waitIncoming(w, cc, 1)
		l1 := waitIncoming(w, cb, 1)

		start := timeNow()
		w.net.Cut("a", "c")
		w.waitFor("root told c's leaf left", func() bool { return memdrv.See(root, func() bool { return p2.Drop.Done }) })
		if n := memdrv.See(root, func() int { return p2.DropIndicated }); n != 1 {
			t.Errorf("%d incoming drop(s) for c's leaf", n)
		}
		if el := timeNow().Sub(start); el < w.timers.T309 {
			t.Errorf("c's leaf dropped after %v, before T309 (%v)", el, w.timers.T309)
		}
		w.closedByNetwork(cc, l2, ndis.StatusDestOutOfOrder)
		w.deleted(cc, l2)

		w.net.Cut("a", "b")
		w.closedByNetwork(root, v, ndis.StatusDestOutOfOrder)
		w.closedByNetwork(cb, l1, ndis.StatusDestOutOfOrder)
		w.deleted(cb, l1)
		root.DeleteVc(v)
		w.net.Restore("a", "b")
		w.net.Restore("a", "c")
	})
}

// waitIncoming waits for c's nth incoming call to be connected.
func waitIncoming(w *world, c *memdrv.Client, nth int) *memdrv.ClientVc {
	w.t.Helper()
	w.waitFor(c.Name+": incoming call connected", func() bool {
		in := c.Incoming()
		return len(in) >= nth && memdrv.See(c, func() bool { return in[nth-1].Connected == 1 })
	})
	return c.Incoming()[nth-1]
}

// TestAddPartyLeafSendsLess: a leaf node whose own datagrams are smaller
// than the root's SDUs still takes an ADD PARTY: leaves only receive, so
// only the root's limit on the way to them counts (its SETUP checked it).
// The leaf used to refuse with cause 78 against its own sending limit,
// which QUIC's path MTU discovery makes differ between the two ends.
func TestAddPartyLeafSendsLess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		root, cb := a.client("root"), b.client("bob")
		b.listen(cb, "l1")
		b.listen(cb, "l2")
		tx := flow(ndis.ServiceControlledLoad, 480_000, 48_000, 960_000, 1000)
		none := ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
		v, _ := root.CreateVc(root.Af())
		root.MakeCall(v, q2931.CallParams("b", "l1", tx, none, false), true)
		w.waitFor("first party", func() bool { return memdrv.See(root, func() bool { return v.Make.Done }) })
		if r := memdrv.See(root, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusSuccess {
			t.Fatalf("MakeCall: %v", r)
		}
		l1 := waitIncoming(w, cb, 1)
		w.net.SetMaxDatagramPayload("b", 500) // b's own datagrams shrink
		p2, _ := root.AddParty(v, q2931.CallParams("b", "l2", tx, none, false))
		w.waitFor("party added", func() bool { return memdrv.See(root, func() bool { return p2.Add.Done }) })
		if r := memdrv.See(root, func() memdrv.Result { return p2.Add }); r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
			t.Fatalf("AddParty: %v, want SUCCESS", r)
		}
		l2 := waitIncoming(w, cb, 2)
		d := payload(1000, 5)
		if st := w.send(root, v, d); st[0] != ndis.StatusSuccess {
			t.Fatalf("root send: %v", st)
		}
		for _, l := range []*memdrv.ClientVc{l1, l2} {
			if rx := w.received(cb, l, 1); !bytes.Equal(rx[0], d) {
				t.Errorf("a leaf received %d octets, not the root's 1000", len(rx[0]))
			}
		}
		// Tear down: drop l2, then close with the last party.
		root.DropParty(p2)
		w.waitFor("drop completed", func() bool { return memdrv.See(root, func() bool { return p2.Drop.Done }) })
		w.closedByNetwork(cb, l2, ndis.StatusSuccess)
		w.deleted(cb, l2)
		w.hangUp(root, v, cb, l1, ndis.StatusSuccess)
		w.deleted(cb, l1)
		root.DeleteVc(v)
	})
}
