package mcm_test

import (
	"testing"
	"testing/synctest"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
)

// A call made before the link to its node is up waits for the link; if its
// SETUP then cannot be built for that link — here an SDU larger than the
// link's datagrams — the pended MakeCall completes with
// NDIS_STATUS_AAL_PARAMS_UNSUPPORTED exactly once (R-GEN-3), as it does
// when the link is already up (TestMaxSdu). It used to be dropped, leaving
// the MakeCall pended for ever. The same for a multipoint AddParty that
// opens a leg to a node whose link is not up.
func TestSetupWaitingForTheLinkFailsItsRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{}) // sim datagrams carry 1200 octets
		defer w.close()
		a, b, c := w.addNode("a", nil), w.addNode("b", nil), w.addNode("c", nil)
		ca, cb, cc := a.client("alice"), b.client("bob"), c.client("carol")
		b.listen(cb, "sink")
		c.listen(cc, "sink")

		v := w.call(ca, q2931.CallParams("b", "sink", bestEffort(5000), bestEffort(1000), false))
		if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusAalParamsUnsupported || !r.ExactlyOnce() {
			t.Errorf("first call to b with MaxSduSize 5000 on datagrams: %v, want AAL_PARAMS_UNSUPPORTED once", r)
		}
		ca.DeleteVc(v)

		// A multipoint call to b (the link is up now), then a party on c
		// (no link yet) that asks more than the call's parameters allow.
		none := ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
		v, _ = ca.CreateVc(ca.Af())
		ca.MakeCall(v, q2931.CallParams("b", "sink", bestEffort(1000), none, false), true)
		w.waitFor("multipoint call", func() bool { return memdrv.See(ca, func() bool { return v.Make.Done }) })
		if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusSuccess {
			t.Fatalf("multipoint MakeCall: %v", r)
		}
		w.net.SetMaxDatagramPayload("a", 500) // a's datagrams, to b and to c
		p, st := ca.AddParty(v, q2931.CallParams("c", "sink", bestEffort(1000), none, false))
		if st != ndis.StatusPending {
			t.Fatalf("AddParty returned %v", st)
		}
		w.waitFor("AddParty outcome", func() bool { return memdrv.See(ca, func() bool { return p.Add.Done }) })
		if r := memdrv.See(ca, func() memdrv.Result { return p.Add }); r.Status != ndis.StatusAalParamsUnsupported || !r.ExactlyOnce() {
			t.Errorf("AddParty on c (a sends 500-octet datagrams, MaxSduSize 1000, link not up): %v, want AAL_PARAMS_UNSUPPORTED once", r)
		}
		if n := len(cc.Incoming()); n != 0 {
			t.Errorf("carol was offered %d call(s)", n)
		}
		in := waitIncoming(w, cb, 1)
		w.hangUp(ca, v, cb, in, ndis.StatusSuccess)
		ca.DeleteVc(v)
	})
}
