// Package shaping is the dual token bucket that polices and shapes one
// direction of a VC against its flowspec. The miniport call manager (mcm)
// shapes what it sends with it; the transport miniport (miniport) shapes
// what it sends and polices what it receives. One copy, so both topologies
// treat the same traffic the same way.
//
// # The buckets
//
// A flowspec gives two buckets ([RatesOf]):
//
//   - a sustained bucket filling at TokenRate bytes/s and holding
//     TokenBucketSize bytes;
//   - a peak bucket filling at PeakBandwidth bytes/s and holding one
//     maximum SDU.
//
// Either is left out when its rate is QOS_NOT_SPECIFIED,
// POSITIVE_INFINITY_RATE or 0. Each bucket is at least one maximum SDU
// deep, so every SDU the negotiated MaxSduSize allows can conform. An SDU
// takes its size in tokens from both buckets ([Buckets.Conform]); if
// either is short, the SDU is due when both would have had them. The
// caller says how long it may wait: a shaper holds the SDU back that long
// (shaping) and drops it if it would have to wait longer (policing; its
// tokens are given back). A policer passes 0, or its tolerance for SDUs
// that arrive early (a GCRA's τ: an SDU at most that much ahead of the
// rates conforms).
//
// Each bucket is deeper by what its rate fills in [Slack] (50 µs): a
// tolerance like ATM's cell delay variation tolerance, so that an SDU a
// few microseconds ahead of the peak rate is not held back — no timer
// fires that precisely, and holding it would cost a timer and a goroutine
// hand-off per SDU to a sender that bursts faster than the peak. The rates
// hold over time all the same.
//
// Underneath are golang.org/x/time/rate limiters. Neither [Rates] nor
// [Buckets] is safe for concurrent use: the VC that owns them serialises
// their use under its own lock.
package shaping

import (
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/condis-project/condis/ndis"
)

// Slack is the shaping tolerance: each bucket is deeper by what its rate
// fills in that time (see the package documentation).
const Slack = 50 * time.Microsecond

// Rates are one direction's buckets as a flowspec gives them, in bytes/s
// and bytes; a zero rate means there is no such bucket. It is small, so a
// VC keeps it inline and makes the limiters only when it carries data.
type Rates struct {
	Sustained uint32 // sustained bucket's fill rate (TokenRate)
	Bucket    uint32 // sustained bucket's depth (max of TokenBucketSize and one SDU)
	Peak      uint32 // peak bucket's fill rate (PeakBandwidth)
	PeakDepth uint32 // peak bucket's depth: one maximum SDU
}

// unspecified reports whether a flowspec value means "no limit".
func unspecified(v uint32) bool {
	return v == ndis.QoSNotSpecified || v == ndis.PositiveInfinityRate
}

// RatesOf returns the buckets of flowspec f for SDUs of at most maxSDU
// octets (values below 1 count as 1, so a bucket always holds a token).
func RatesOf(f ndis.Flowspec, maxSDU int) Rates {
	depth := uint32(min(max(maxSDU, 1), math.MaxInt32))
	var r Rates
	if tr := f.TokenRate; !unspecified(tr) && tr > 0 {
		b := depth
		if s := f.TokenBucketSize; !unspecified(s) && s > b {
			b = s
		}
		r.Sustained, r.Bucket = tr, b
	}
	if pr := f.PeakBandwidth; !unspecified(pr) && pr > 0 {
		r.Peak, r.PeakDepth = pr, depth
	}
	return r
}

// Unlimited reports whether r has no bucket: every SDU conforms at once.
func (r Rates) Unlimited() bool { return r.Sustained == 0 && r.Peak == 0 }

// burst is the depth of a bucket of base bytes filling at rate bytes/s:
// base plus what the rate fills in Slack.
func burst(base, rate uint32) int {
	slack := uint64(rate) * uint64(Slack) / uint64(time.Second)
	return int(min(uint64(base)+slack, math.MaxInt32))
}

// Buckets are the limiters of one direction of a VC. The zero value has
// none; they are made, full, from the Rates on first use (a bucket starts
// full, so making it late is the same as making it when the VC opened).
type Buckets struct {
	sustained *rate.Limiter
	peak      *rate.Limiter
}

// Reset forgets the limiters: the next Conform makes new, full ones from
// the Rates it is given (after a QoS change).
func (b *Buckets) Reset() { b.sustained, b.peak = nil, nil }

// limiters returns the buckets of r (nil where r has none), making them if
// needed.
func (b *Buckets) limiters(r Rates) (sustained, peak *rate.Limiter) {
	if r.Sustained > 0 && b.sustained == nil {
		b.sustained = rate.NewLimiter(rate.Limit(r.Sustained), burst(r.Bucket, r.Sustained))
	}
	if r.Peak > 0 && b.peak == nil {
		b.peak = rate.NewLimiter(rate.Limit(r.Peak), burst(max(r.PeakDepth, 1), r.Peak))
	}
	return b.sustained, b.peak
}

// Conform takes size tokens from the buckets of r at now and returns how
// long the SDU must wait for them; ok is false if it cannot conform within
// maxDelay, and then no tokens are taken. r must be the Rates the Buckets
// were used with since the last Reset.
func (b *Buckets) Conform(r Rates, now time.Time, size int, maxDelay time.Duration) (delay time.Duration, ok bool) {
	sustained, peak := b.limiters(r)
	if sustained == nil && peak == nil {
		return 0, true
	}
	// The usual case, without allocating: both buckets hold the tokens
	// now. (Only the owner, under its lock, uses its buckets: what
	// TokensAt sees, AllowN finds.)
	first, second := sustained, peak
	if first == nil {
		first, second = peak, nil
	}
	if second == nil || second.TokensAt(now) >= float64(size) {
		if first.AllowN(now, size) {
			if second != nil {
				second.AllowN(now, size)
			}
			return 0, true
		}
	}
	// Short of tokens: reserve them from both and wait, unless that takes
	// too long.
	var rs [2]*rate.Reservation
	k := 0
	for _, lim := range [2]*rate.Limiter{sustained, peak} {
		if lim == nil {
			continue
		}
		res := lim.ReserveN(now, size)
		rs[k] = res
		k++
		if !res.OK() {
			delay = maxDelay + 1 // larger than the bucket: can never conform
			continue
		}
		delay = max(delay, res.DelayFrom(now))
	}
	if delay > maxDelay {
		for _, res := range rs[:k] {
			res.CancelAt(now)
		}
		return 0, false
	}
	return delay, true
}
