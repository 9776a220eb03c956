package ndis_test

import (
	"runtime"
	"testing"

	"github.com/condis-project/condis/internal/racedetect"
)

// vcSizeClass is the allocator size class a *ndis.Vc fits (its size is
// pinned by TestVcSize in vcsize_internal_test.go). A held call costs a
// node one VC, and a call two: every size class less is 16 octets or more
// per held VC.
const vcSizeClass = 144

// paramsSizeClass is the size class of a VC's activation parameter record,
// which the mediator keeps in a pool between activations.
const paramsSizeClass = 160

// TestCallGarbage pins what the mediator itself allocates for one
// point-to-point call without data (the two VCs and nothing else; their
// activation parameters come from a pool): with the
// minimal drivers, whose only allocations are two 24-octet minVc records,
// a call costs at most two VCs of vcSizeClass and those. It fails if the
// VC grows to a larger class, or if a call allocates anything more (a
// data-counter or party block for a call that has neither, a name string,
// a record for a completion that arrived while its handler ran).
func TestCallGarbage(t *testing.T) {
	t.Run("sync", func(t *testing.T) { testCallGarbage(t, false) })
	// Both closes completed while ProtocolCmCloseCall still runs: each
	// completion is parked until the handler returns, in a record the
	// mediator reuses rather than allocates.
	t.Run("early-close", func(t *testing.T) { testCallGarbage(t, true) })
}

func testCallGarbage(t *testing.T, earlyClose bool) {
	n := newMinNet(t)
	n.mcm.earlyClose = earlyClose
	const calls = 2000
	n.call(t) // warm up: the first call may grow maps and pools
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range calls {
		n.call(t)
	}
	runtime.ReadMemStats(&after)
	perCall := float64(after.TotalAlloc-before.TotalAlloc) / calls
	allocs := float64(after.Mallocs-before.Mallocs) / calls
	want, wantAllocs := 2*vcSizeClass+2*24, 4.01 // two VCs and two minVc records
	if racedetect.Enabled {
		// The race detector's pool drops a quarter of the two activation
		// parameter records a call puts back: allow one record a call,
		// twice that. Without the pool a call would cost two more.
		want, wantAllocs = want+paramsSizeClass, wantAllocs+1
	}
	// The slack absorbs the runtime's own odd allocation during the run;
	// a VC one size class larger costs 32 octets a call.
	const slack = 16
	if perCall > float64(want+slack) || allocs > wantAllocs {
		t.Errorf("one call allocates %.1f octets in %.2f objects; want at most %d in %.0f (two VCs of %d octets and two 24-octet driver records)",
			perCall, allocs, want, wantAllocs, vcSizeClass)
	}
	if s := n.m.Snapshot(); len(s.Vcs) != 0 {
		t.Fatalf("VCs left:\n%s", s)
	}
}
