package heaptrim

import (
	"context"
	"runtime/metrics"
	"time"

	"github.com/condis-project/condis/internal/every"
)

// A node holding very many calls collects sooner: its runway (the heap it
// lets grow past what is live before the next collection) is cut to half
// of what is live once that passes LargeLive.
//
// Why: the Go collector lets the heap grow by as much as is live (GOGC
// 100). With a million calls held that is about a gigabyte a node, and
// every new call's records are carved from that gigabyte of garbage, cold.
// At a million held, calls made alongside ran at 74,314 calls/s with GOGC
// 50 (five rounds), 57,267 with 100 and 45,429 with 400 (two each): the
// warmer memory gains more than marking the held calls twice as often
// costs (docs/performance.md, "A tighter heap for a million held calls").
// Below LargeLive nothing changes: at 100,000 held (about 120 MB live with
// the heap floor) a tighter heap was not measured to help.
const (
	LargeLive     = 512 << 20 // live heap past which the runway is cut
	TightPercent  = 50        // the collector's percent while it is
	NormalPercent = 100       // and once the live heap is back to half of LargeLive
)

// NextPercent is the runway's one transition: the collector's percent
// after a look that found live octets live, from cur. It tightens past
// LargeLive and loosens at half of it or less, so that a live heap near
// the line does not make it swing.
func NextPercent(cur int, live uint64) int {
	switch {
	case live > LargeLive:
		return TightPercent
	case live <= LargeLive/2:
		return NormalPercent
	}
	return cur
}

// Runway looks every Every at the live heap (Live) and calls Set with each
// new collector percent NextPercent gives, starting from NormalPercent,
// and the live heap that called for it.
type Runway struct {
	Every time.Duration
	Live  func() uint64 // nil: LiveHeap
	Set   func(from, to int, live uint64)
}

// Start runs the looks on a goroutine of their own until ctx ends or stop
// is called; stop returns once that goroutine has.
func (r Runway) Start(ctx context.Context) (stop func()) {
	live := r.Live
	if live == nil {
		live = LiveHeap
	}
	cur := NormalPercent
	return every.Run(ctx, r.Every, func() {
		l := live()
		if next := NextPercent(cur, l); next != cur {
			r.Set(cur, next, l)
			cur = next
		}
	})
}

// LiveHeap is the heap the last collection found live, in octets.
func LiveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
