// Package heaptrim keeps a node's Go heap in step with its calls: it runs
// a garbage collection once the node has let go of many calls at once
// (Watcher), and it cuts the heap's runway while very many are held
// (Runway, in runway.go).
//
// Why: the Go collector starts its next cycle when the heap has grown by
// as much as was live after the last one. A node holding a million calls
// has a live heap of gigabytes, so once it clears them (a release, a link
// lost) it goes on allocating into gigabytes of memory before the next
// cycle finds the calls dead: every new call's records land on cold pages,
// many never touched before, while the released calls' memory, warm, is
// not reused. Two nodes in one process made calls 14% slower (CPU per
// call) after releasing a million than before holding them, with no
// collection all the while; with one collection after the release, as
// fast as before (docs/performance.md). The collection costs what marking
// the calls still up costs, once.
package heaptrim

import (
	"context"
	"runtime/metrics"
	"time"

	"github.com/condis-project/condis/internal/every"
)

// MinDrop is the fewest VCs whose release calls for a collection: fewer
// leave too little garbage to matter (a held call leaves about 2 KiB on
// each node) next to the node's heap floor.
const MinDrop = 10_000

// State is what the watcher has seen since the last collection: the most
// VCs up at once, the VCs at its last look, and how many collections had
// completed then.
type State struct {
	Peak, Last int
	Cycles     uint64
}

// Next is the watcher's one transition: the state after a look that
// found vcs VCs and cycles collections completed, and whether to collect
// now. A collection is due when the VCs fell, since the last collection,
// by MinDrop or more to half their peak or less. When a collection ran
// since the last look, the watcher cannot tell whether it came before or
// after the VCs changed, so it counts from the more of the two looks: calls
// released just after a collection are not missed, and calls released just
// before one cost at most one collection more, of a heap that is small by
// then.
func Next(st State, vcs int, cycles uint64) (State, bool) {
	if cycles != st.Cycles {
		st.Peak, st.Cycles = max(st.Last, vcs), cycles
	}
	st.Peak, st.Last = max(st.Peak, vcs), vcs
	if st.Peak-vcs >= MinDrop && vcs <= st.Peak/2 {
		st.Peak = vcs
		return st, true
	}
	return st, false
}

// Watcher looks every Every at how many VCs are up (VCs) and how many
// collections have completed (Cycles), and calls Collect when Next says.
type Watcher struct {
	Every   time.Duration
	VCs     func() int
	Cycles  func() uint64 // nil: the runtime's count (GCCycles)
	Collect func(vcs int) // runtime.GC, and whatever should be said of it; vcs: the VCs up now
}

// Start runs the watcher on a goroutine of its own until ctx ends or stop
// is called; stop returns once that goroutine has.
func (w Watcher) Start(ctx context.Context) (stop func()) {
	cycles := w.Cycles
	if cycles == nil {
		cycles = GCCycles
	}
	n := w.VCs()
	st := State{Peak: n, Last: n, Cycles: cycles()}
	return every.Run(ctx, w.Every, func() {
		var collect bool
		vcs := w.VCs()
		if st, collect = Next(st, vcs, cycles()); collect {
			w.Collect(vcs)
		}
	})
}

// GCCycles is the number of garbage collections the runtime has completed.
func GCCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
