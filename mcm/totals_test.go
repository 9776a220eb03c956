package mcm_test

import (
	"testing"
	"testing/synctest"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
)

// TestPolicingCounted: a burst beyond the transmit flowspec (a 2 400-octet
// bucket filling at 1 200 B/s: two SDUs of 1 200 octets now, the next one
// due a second later, far beyond MaxShapingDelay; the peak of 1 MB/s holds
// the second back 1.15 ms: shaped) has two SDUs sent and the other eight
// dropped with NDIS_STATUS_RESOURCES, and each drop is counted as policed,
// on the VC (Stats.TxPoliced, within TxDropped) and on the node (Totals). The node's totals add up every VC's SDUs and keep
// them after the VCs are deleted: a second call's SDUs add to the first's.
func TestPolicingCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "sink")
		tx := flow(ndis.ServiceGuaranteed, 1_200, 2_400, 1_000_000, 1200)
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "sink", tx, bestEffort(1200), false))

		var burst [][]byte
		for i := range 10 {
			burst = append(burst, payload(1200, byte(i)))
		}
		ok, policed := 0, 0
		for i, st := range w.send(ca, va, burst...) {
			switch st {
			case ndis.StatusSuccess:
				ok++
			case ndis.StatusResources:
				policed++
			default:
				t.Errorf("SDU %d: %v", i, st)
			}
		}
		if ok != 2 || policed != 8 {
			t.Fatalf("%d sent, %d policed; want 2 and 8", ok, policed)
		}
		w.received(cb, vb, ok)
		want := mcm.Stats{TxPackets: 2, TxBytes: 2400, TxDropped: 8, TxPoliced: 8, TxShaped: 1}
		if s := a.d.Calls()[0].Stats; s != want {
			t.Errorf("the VC's stats %+v, want %+v", s, want)
		}
		if s := a.d.Totals(); s != want {
			t.Errorf("a's totals %+v, want %+v", s, want)
		}
		if s, want := b.d.Totals(), (mcm.Stats{RxPackets: 2, RxBytes: 2400}); s != want {
			t.Errorf("b's totals %+v, want %+v", s, want)
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)
		w.deleted(cb, vb)

		// A second call on a new VC, within its flowspec: the totals keep
		// the first call's SDUs and add these.
		va, vb = w.connect(ca, cb, q2931.CallParams("b", "sink", bestEffort(1200), bestEffort(1200), false))
		for i, st := range w.send(ca, va, payload(100, 1), payload(300, 2), payload(500, 3)) {
			if st != ndis.StatusSuccess {
				t.Errorf("second call, SDU %d: %v", i, st)
			}
		}
		w.received(cb, vb, 3)
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)
		w.deleted(cb, vb)
		if s, want := a.d.Totals(), (mcm.Stats{TxPackets: 5, TxBytes: 3300, TxDropped: 8, TxPoliced: 8, TxShaped: 1}); s != want {
			t.Errorf("a's totals after both calls %+v, want %+v", s, want)
		}
		if s, want := b.d.Totals(), (mcm.Stats{RxPackets: 5, RxBytes: 3300}); s != want {
			t.Errorf("b's totals after both calls %+v, want %+v", s, want)
		}
	})
}
