package mcm_test

import (
	"testing"
	"testing/synctest"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
)

// TestShapingSlack: the buckets tolerate 50 µs of their rate (each is
// deeper by what its rate fills in 50 µs). At a peak of 800 MB/s an SDU of
// 1200 octets is due 1.5 µs after the one before: a burst of 20 sent at
// one instant (virtual time) is 28.5 µs ahead of the peak at its end, so
// none of it is held back (TxShaped stays 0). At 12 MB/s the SDUs are due
// 100 µs apart: a burst of 3 has its second and third held back. Either
// way every SDU goes out and arrives.
func TestShapingSlack(t *testing.T) {
	for _, tc := range []struct {
		name   string
		peak   uint32
		burst  int
		shaped uint64
	}{
		{"within slack", 800_000_000, 20, 0},
		{"beyond slack", 12_000_000, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newSimWorld(t, sim.Config{})
				defer w.close()
				a, b := w.addNode("a", nil), w.addNode("b", nil)
				ca, cb := a.client("alice"), b.client("bob")
				b.listen(cb, "sink")
				tx := flow(ndis.ServiceControlledLoad, tc.peak, 1_000_000, tc.peak, 1200)
				va, vb := w.connect(ca, cb, q2931.CallParams("b", "sink", tx, bestEffort(1200), false))

				var burst [][]byte
				for i := range tc.burst {
					burst = append(burst, payload(1200, byte(i)))
				}
				for i, st := range w.send(ca, va, burst...) {
					if st != ndis.StatusSuccess {
						t.Errorf("SDU %d: %v", i, st)
					}
				}
				w.received(cb, vb, tc.burst)
				if s := a.d.Calls()[0].Stats; s.TxShaped != tc.shaped || s.TxPackets != uint64(tc.burst) {
					t.Errorf("stats %+v; want %d shaped, %d sent", s, tc.shaped, tc.burst)
				}
				w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
				ca.DeleteVc(va)
			})
		})
	}
}
