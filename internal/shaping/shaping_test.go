package shaping

import (
	"testing"
	"time"

	"github.com/condis-project/condis/ndis"
)

func flowspec(rate, bucket, peak, sdu uint32) ndis.Flowspec {
	return ndis.Flowspec{TokenRate: rate, TokenBucketSize: bucket, PeakBandwidth: peak, MaxSduSize: sdu, ServiceType: ndis.ServiceGuaranteed}
}

// TestRatesOf: a rate of QOS_NOT_SPECIFIED, POSITIVE_INFINITY_RATE or 0
// leaves its bucket out; the sustained bucket is at least one SDU deep
// and the peak bucket exactly one.
func TestRatesOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    ndis.Flowspec
		sdu  int
		want Rates
	}{
		{"both", flowspec(1000, 5000, 2000, 100), 100, Rates{Sustained: 1000, Bucket: 5000, Peak: 2000, PeakDepth: 100}},
		{"bucket below one SDU", flowspec(1000, 10, 2000, 100), 100, Rates{Sustained: 1000, Bucket: 100, Peak: 2000, PeakDepth: 100}},
		{"bucket not specified", flowspec(1000, ndis.QoSNotSpecified, 0, 100), 100, Rates{Sustained: 1000, Bucket: 100}},
		{"no rates", flowspec(ndis.QoSNotSpecified, 5000, ndis.PositiveInfinityRate, 100), 100, Rates{}},
		{"zero rates", flowspec(0, 5000, 0, 100), 100, Rates{}},
		{"no SDU size", flowspec(1000, 0, 1000, 0), 0, Rates{Sustained: 1000, Bucket: 1, Peak: 1000, PeakDepth: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RatesOf(tc.f, tc.sdu)
			if got != tc.want {
				t.Errorf("RatesOf = %+v, want %+v", got, tc.want)
			}
			if got.Unlimited() != (tc.want == Rates{}) {
				t.Errorf("Unlimited = %v", got.Unlimited())
			}
		})
	}
}

// TestConformSustained: a full sustained bucket lets a burst of its depth
// through at once; the next SDU is due when the rate has refilled its
// size (less the 50 µs slack); beyond maxDelay it is refused and takes no
// tokens, so the same SDU asked again with a longer maxDelay is due at the
// same time.
func TestConformSustained(t *testing.T) {
	r := RatesOf(flowspec(100_000, 1000, ndis.QoSNotSpecified, 100), 100) // 100 kB/s, 1000 octets deep
	var b Buckets
	t0 := time.Unix(1000, 0)
	for i := range 10 {
		if d, ok := b.Conform(r, t0, 100, 0); !ok || d != 0 {
			t.Fatalf("SDU %d of the burst: delay %v ok %v, want at once", i, d, ok)
		}
	}
	// The bucket holds 1000 + 5 octets of slack: 5 left, 95 missing =
	// 950 µs at 100 kB/s.
	const due = 950 * time.Microsecond
	if d, ok := b.Conform(r, t0, 100, time.Millisecond/2); ok {
		t.Fatalf("SDU beyond the burst conformed within 0.5 ms (delay %v)", d)
	}
	d, ok := b.Conform(r, t0, 100, time.Second)
	if !ok || d != due {
		t.Fatalf("SDU beyond the burst: delay %v ok %v, want %v (the refused try took no tokens)", d, ok, due)
	}
	// That SDU took the tokens up to t0+due: one more is due 1 ms later.
	if d, ok := b.Conform(r, t0.Add(due), 100, time.Second); !ok || d != time.Millisecond {
		t.Fatalf("next SDU: delay %v ok %v, want 1ms", d, ok)
	}
}

// TestConformPeak: with a peak bucket one SDU deep, back-to-back SDUs are
// spaced by size/peak even though the sustained bucket holds plenty; the
// sustained bucket still bounds the long-term rate.
func TestConformPeak(t *testing.T) {
	r := RatesOf(flowspec(1_000, 1_000_000, 1_000_000, 1000), 1000) // peak 1 MB/s: 1000 octets per ms
	var b Buckets
	t0 := time.Unix(1000, 0)
	if d, ok := b.Conform(r, t0, 1000, 0); !ok || d != 0 {
		t.Fatalf("first SDU: %v %v", d, ok)
	}
	// The peak bucket is 1000 + 50 octets deep: 50 left, 950 µs to refill.
	d, ok := b.Conform(r, t0, 1000, time.Second)
	if !ok || d != 950*time.Microsecond {
		t.Fatalf("second SDU at once: delay %v ok %v, want 950µs", d, ok)
	}
	if _, ok := b.Conform(r, t0, 1000, time.Millisecond); ok {
		t.Fatalf("third SDU at once conformed within 1 ms, want refused (due in 1.95 ms)")
	}
}

// TestConformSlack: the buckets tolerate 50 µs of their rate. At a peak of
// 800 MB/s an SDU of 1200 octets is due 1.5 µs after the one before: 20 at
// one instant are 28.5 µs ahead of the peak at the end, none held back. At
// 12 MB/s they are due 100 µs apart: of 3 at one instant, the second and
// third wait.
func TestConformSlack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		peak    uint32
		n       int
		delayed int
	}{
		{"within slack", 800_000_000, 20, 0},
		{"beyond slack", 12_000_000, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := RatesOf(flowspec(tc.peak, 1_000_000, tc.peak, 1200), 1200)
			var b Buckets
			t0 := time.Unix(1000, 0)
			delayed := 0
			for i := range tc.n {
				d, ok := b.Conform(r, t0, 1200, time.Second)
				if !ok {
					t.Fatalf("SDU %d refused", i)
				}
				if d > 0 {
					delayed++
				}
			}
			if delayed != tc.delayed {
				t.Errorf("%d of %d SDUs delayed, want %d", delayed, tc.n, tc.delayed)
			}
		})
	}
}

// TestConformTooLarge: an SDU larger than a bucket can hold never
// conforms, however long the caller would wait, and takes no tokens.
func TestConformTooLarge(t *testing.T) {
	r := Rates{Sustained: 1000, Bucket: 100, Peak: 1_000_000, PeakDepth: 100}
	var b Buckets
	t0 := time.Unix(1000, 0)
	if d, ok := b.Conform(r, t0, 10_000, time.Hour); ok {
		t.Fatalf("SDU of 10000 octets through a 100-octet bucket: delay %v ok", d)
	}
	if d, ok := b.Conform(r, t0, 100, 0); !ok || d != 0 {
		t.Fatalf("after the refused SDU the bucket is not full: %v %v", d, ok)
	}
}

// TestUnlimited: no bucket, every SDU at once.
func TestUnlimited(t *testing.T) {
	var b Buckets
	for i := range 1000 {
		if d, ok := b.Conform(Rates{}, time.Unix(0, 0), 1<<20, 0); !ok || d != 0 {
			t.Fatalf("SDU %d: %v %v", i, d, ok)
		}
	}
}

// TestReset: after Reset the buckets are full again, with the new rates.
func TestReset(t *testing.T) {
	slow := RatesOf(flowspec(100, 100, 0, 100), 100)
	var b Buckets
	t0 := time.Unix(1000, 0)
	b.Conform(slow, t0, 100, 0)
	if _, ok := b.Conform(slow, t0, 100, 0); ok {
		t.Fatal("empty bucket let an SDU through")
	}
	b.Reset()
	fast := RatesOf(flowspec(1_000_000, 10_000, 0, 100), 100)
	for i := range 100 {
		if d, ok := b.Conform(fast, t0, 100, 0); !ok || d != 0 {
			t.Fatalf("SDU %d after Reset: %v %v", i, d, ok)
		}
	}
}
