package ndis_test

import (
	"runtime"
	"testing"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// lifecycleNet is the benchmark topology: one MCM, a caller and a callee
// bound to it, the callee listening on "bench". No tracing, no violation
// hook: the mediator as a production node would run it.
type lifecycleNet struct {
	m              *ndis.Mediator
	fab            *memdrv.Fabric
	caller, callee *memdrv.Client
	af             *memdrv.ClientAf
	params         *ndis.CallParameters
}

func newLifecycleNet(b *testing.B) *lifecycleNet {
	n := &lifecycleNet{fab: memdrv.NewFabric()}
	n.m = ndis.New(ndis.Options{Name: "bench"})
	mcm, st := memdrv.NewMCM(n.m, "mcm", n.fab)
	if st != ndis.StatusSuccess {
		b.Fatal(st)
	}
	n.caller, _ = memdrv.NewClient(n.m, "caller", mcm.Adapter(), n.fab)
	n.callee, _ = memdrv.NewClient(n.m, "callee", mcm.Adapter(), n.fab)
	for _, c := range []*memdrv.Client{n.caller, n.callee} {
		c.NoLog, c.RecycleVcs = true, true // the clients' own records are not the mediator's cost
	}
	n.fab.Run()
	n.af = n.caller.Af()
	s := n.callee.RegisterSap(n.callee.Af(), "bench")
	n.fab.Run()
	if s.Register.Status != ndis.StatusSuccess {
		b.Fatal(s.Register)
	}
	n.params = memdrv.CallParams("bench", ndis.Flowspec{TokenRate: 125000, MaxSduSize: 9180}, ndis.Flowspec{TokenRate: 125000, MaxSduSize: 9180})
	return n
}

// lifecycle runs one call: CoCreateVc, MakeCall (the callee's IncomingCall
// is accepted, CallConnected, MakeCallComplete), CloseCall (IncomingCloseCall
// at the far end and its CloseCall), and the deletion of both VCs.
func (n *lifecycleNet) lifecycle(b *testing.B) {
	v, st := n.caller.CreateVc(n.af)
	if st != ndis.StatusSuccess {
		b.Fatal("create", st)
	}
	if _, st := n.caller.MakeCall(v, n.params, false); st != ndis.StatusSuccess {
		b.Fatal("make", st)
	}
	if st := n.caller.CloseCall(v); st != ndis.StatusSuccess {
		b.Fatal("close", st)
	}
	if st := n.caller.DeleteVc(v); st != ndis.StatusSuccess {
		b.Fatal("delete", st)
	}
	n.fab.Run() // the MCM deletes the callee's VC once its close finished
}

// BenchmarkCallLifecycle measures one complete point-to-point call in the
// integrated topology (design.md §7 bar: ≤ 2 µs, ≤ 25 allocations per call
// at GOMAXPROCS=1).
func BenchmarkCallLifecycle(b *testing.B) {
	n := newLifecycleNet(b)
	b.ReportAllocs()
	for b.Loop() {
		n.lifecycle(b)
	}
	b.StopTimer()
	if s := n.m.Snapshot(); len(s.Vcs) != 0 {
		b.Fatalf("VCs left: %s", s)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

// BenchmarkCallLifecycleParallel runs lifecycles from GOMAXPROCS goroutines,
// each with its own MCM and clients on one shared mediator.
func BenchmarkCallLifecycleParallel(b *testing.B) {
	parallelLifecycles(b, 1)
}

// BenchmarkCallLifecycleParallelWide is BenchmarkCallLifecycleParallel with
// eight goroutines per core, as a machine with more drivers than cores runs
// them: a lock held while its holder is descheduled, or a hand-off between
// goroutines on one lock, makes the rate fall as goroutines are added.
func BenchmarkCallLifecycleParallelWide(b *testing.B) {
	parallelLifecycles(b, 8)
}

// BenchmarkCallLifecycleParallelNodeHeap is BenchmarkCallLifecycleParallel
// with the heap floor `condis node` runs with (its --gc-floor, 32 MiB by
// default, held here as a ballast): the mediator's scaling as a node sees
// it. Without a floor the benchmark's heap is about 3 MB, and the garbage
// collector runs hundreds of times a second, its pauses longer with every
// core (docs/performance.md).
func BenchmarkCallLifecycleParallelNodeHeap(b *testing.B) {
	ballast := make([]byte, 32<<20)
	defer runtime.KeepAlive(ballast)
	parallelLifecycles(b, 1)
}

// parallelLifecycles runs lifecycles from parallelism×GOMAXPROCS
// goroutines, each with its own MCM and clients on one shared mediator.
func parallelLifecycles(b *testing.B, parallelism int) {
	m := ndis.New(ndis.Options{Name: "bench-parallel"})
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		n := &lifecycleNet{m: m, fab: memdrv.NewFabric()}
		mcm, st := memdrv.NewMCM(m, "mcm", n.fab)
		if st != ndis.StatusSuccess {
			b.Error(st)
			return
		}
		n.caller, _ = memdrv.NewClient(m, "caller", mcm.Adapter(), n.fab)
		n.callee, _ = memdrv.NewClient(m, "callee", mcm.Adapter(), n.fab)
		n.caller.NoLog, n.callee.NoLog = true, true
		n.caller.RecycleVcs, n.callee.RecycleVcs = true, true
		n.fab.Run()
		n.af = n.caller.Af()
		n.callee.RegisterSap(n.callee.Af(), "bench")
		n.fab.Run()
		n.params = memdrv.CallParams("bench", ndis.Flowspec{TokenRate: 125000}, ndis.Flowspec{TokenRate: 125000})
		for pb.Next() {
			n.lifecycle(b)
		}
	})
	b.StopTimer()
	if s := m.Snapshot(); len(s.Vcs) != 0 {
		b.Fatalf("VCs left: %d", len(s.Vcs))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
