package q2931

import (
	"math/rand/v2"
	"testing"

	"github.com/condis-project/condis/ndis"
)

// TestGrantedRemembersTheLast: Granted answers as working it out would,
// whatever order flowspecs come in (repeated, alternating, multipoint or
// not with the same flowspecs, refused ones in between); a repeat of the
// last flowspecs it passed is answered from lastGrant, and a refusal is
// not remembered.
func TestGrantedRemembersTheLast(t *testing.T) {
	specs := []ndis.Flowspec{
		{ServiceType: ndis.ServiceBestEffort, PeakBandwidth: 1000, MaxSduSize: 9180},
		{ServiceType: ndis.ServiceBestEffort, PeakBandwidth: 1001, MaxSduSize: 9180},
		{ServiceType: ndis.ServiceControlledLoad, TokenRate: 4800, TokenBucketSize: 4800, PeakBandwidth: 9600, MaxSduSize: 100},
		{ServiceType: ndis.ServiceGuaranteed, TokenRate: 4800, TokenBucketSize: 4800, PeakBandwidth: 9600, MaxSduSize: 100},
		{ServiceType: ndis.ServiceNoTraffic},
		{ServiceType: ndis.ServiceType(99)},                           // refused: not a service type
		{ServiceType: ndis.ServiceBestEffort, PeakBandwidth: 1 << 31}, // refused: too fast for UNI 3.1
	}
	r := rand.New(rand.NewPCG(3, 4))
	var refused, repeats int
	for i := range 5000 {
		tx, rx, mp := specs[r.IntN(len(specs))], specs[r.IntN(len(specs))], r.IntN(4) == 0
		if i%3 == 0 { // the same again
			if g := lastGrant.Load(); g != nil {
				tx, rx, mp = g.tx, g.rx, g.multipoint
			}
		}
		wtx, wrx, wst := workOutGrant(tx, rx, mp)
		before := lastGrant.Load()
		gtx, grx, st := Granted(tx, rx, mp)
		if gtx != wtx || grx != wrx || st != wst {
			t.Fatalf("Granted(%+v, %+v, %v) = %+v, %+v, %v; worked out: %+v, %+v, %v", tx, rx, mp, gtx, grx, st, wtx, wrx, wst)
		}
		after := lastGrant.Load()
		if st != ndis.StatusSuccess {
			refused++
		} else if before != nil && before.tx == tx && before.rx == rx && before.multipoint == mp {
			repeats++
		}
		switch {
		case st != ndis.StatusSuccess && after != before:
			t.Fatalf("a refusal (%v) was remembered", st)
		case st == ndis.StatusSuccess && before != nil && before.tx == tx && before.rx == rx && before.multipoint == mp && after != before:
			t.Fatal("a repeat of the last flowspecs was worked out again")
		case st == ndis.StatusSuccess && (after.tx != tx || after.rx != rx || after.multipoint != mp):
			t.Fatal("the flowspecs passed are not the ones remembered")
		}
	}
	if refused < 100 || repeats < 100 {
		t.Fatalf("%d refusals and %d repeats: the test did not try both", refused, repeats)
	}
}
