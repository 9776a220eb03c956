package mcm_test

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
)

// Memory and growth (design §7: ≤ 1 KiB per established VC per node; the
// call rate with 100k established calls ≥ 90% of the rate with none).
var (
	establishedCalls = flag.String("mcm.calls", "10000",
		"comma-separated numbers of established calls for BenchmarkEstablishedCalls (e.g. 10000,100000)")
	establishedHeapProfile = flag.String("mcm.heapprofile", "",
		"write a heap profile to this file (suffixed with the number of calls) while the calls are established")
	establishedCPUProfile = flag.String("mcm.cpuprofile", "",
		"write CPU profiles of the extra calls with the calls established and with none to this file suffixed with .N.loaded and .N.base")
)

// profiled runs f under a CPU profile written to name, if -mcm.cpuprofile
// is set.
func profiled(tb testing.TB, name string, f func()) {
	if *establishedCPUProfile == "" {
		f()
		return
	}
	out, err := os.Create(*establishedCPUProfile + "." + name)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		tb.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	f()
}

// callBatch is how many extra calls BenchmarkEstablishedCalls makes and
// tears down at once (in flight together) per iteration.
const callBatch = 500

// BenchmarkEstablishedCalls establishes N calls between two nodes (two
// mediators, two MCMs and a memdrv client on each, in this process, over
// transport/sim with no delay and no loss, in wall-clock time) and reports
//
//   - B/VC/node: the live heap the N calls add (runtime.ReadMemStats after
//     a GC, with the calls established, minus the same before them),
//     divided by N and by the two nodes. It counts everything the calls
//     hold: both clients (memdrv), both mediators (ndis), both MCMs (mcm,
//     uni) and the simulated network;
//   - calls/s: the setup+teardown rate of extra calls (callBatch at a time:
//     MakeCall until both ends are connected, then CloseCall until both
//     ends are closed and deleted) with the N calls established — one
//     batch per iteration;
//   - base-calls/s: the same number of extra calls, measured with no call
//     established, half before the N calls are made and half after they
//     are torn down; and ratio = calls/s / base-calls/s.
//
// Every call is torn down at the end and both mediators must be empty.
//
// Run: go test -run '^$' -bench EstablishedCalls -benchtime 20x ./mcm -mcm.calls=10000,100000
func BenchmarkEstablishedCalls(b *testing.B) {
	for _, s := range strings.Split(*establishedCalls, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			b.Fatalf("-mcm.calls: bad number %q", s)
		}
		b.Run(fmt.Sprintf("calls=%d", n), func(b *testing.B) { benchEstablished(b, n) })
	}
}

// liveHeap returns the live heap after a full collection.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// establishWorld is two nodes with a benchClient each: alice on a calls
// bob's "echo" on b.
type establishWorld struct {
	w      *world
	ca, cb *benchClient
	params func() *ndis.CallParameters
}

// makeCalls makes k calls, all in flight at once, and waits until both
// ends are connected.
func (e *establishWorld) makeCalls(k int) []*benchVc {
	in, conn := e.cb.incoming.Load(), e.cb.connected.Load()
	vs := e.ca.makeCalls(k, e.params)
	e.cb.waitIncoming(in+int64(k), conn+int64(k))
	return vs
}

// closeCalls closes the calls of vs from alice's side and waits until both
// ends are closed and deleted.
func (e *establishWorld) closeCalls(vs []*benchVc) {
	in := e.cb.incoming.Load()
	e.ca.closeCalls(vs)
	e.cb.waitIncoming(in-int64(len(vs)), 0)
}

// cost is wall-clock and CPU time (this process, every goroutine: GC
// included).
type cost struct{ wall, cpu time.Duration }

func (c cost) add(o cost) cost { return cost{c.wall + o.wall, c.cpu + o.cpu} }

// measure returns what f cost.
func measure(f func()) cost {
	cpu0, t0 := processCPU(), time.Now()
	f()
	return cost{time.Since(t0), processCPU() - cpu0}
}

// processCPU is the user and system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// churn makes and tears down batches of callBatch extra calls.
func (e *establishWorld) churn(batches int) cost {
	return measure(func() {
		for range batches {
			e.closeCalls(e.makeCalls(callBatch))
		}
	})
}

func benchEstablished(b *testing.B, n int) {
	w := newSimWorld(b, sim.Config{Seed: 1})
	na, nb := w.addNode("a", nil), w.addNode("b", nil)
	ca, cb := newBenchClient(na, "alice"), newBenchClient(nb, "bob")
	cb.listen("echo")
	e := &establishWorld{w: w, ca: ca, cb: cb,
		params: func() *ndis.CallParameters {
			return q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false)
		}}

	e.churn(2) // warm up: the link, the caches, the pools
	// The baseline, with no call established, is measured half before the
	// N calls are made and half after they are torn down.
	const before = 4
	base := e.churn(before)

	heap0 := liveHeap()
	const step = 5000
	established := make([]*benchVc, 0, n)
	for len(established) < n {
		established = append(established, e.makeCalls(min(step, n-len(established)))...)
	}
	heap1 := liveHeap()
	if *establishedHeapProfile != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", *establishedHeapProfile, n))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}

	iters := 0
	var loaded cost
	profiled(b, fmt.Sprintf("%d.loaded", n), func() {
		for b.Loop() {
			loaded = loaded.add(measure(func() { e.closeCalls(e.makeCalls(callBatch)) }))
			iters++
		}
	})

	for i := 0; i < len(established); i += step {
		e.closeCalls(established[i:min(i+step, len(established))])
	}
	established = nil
	after := max(iters, before)
	profiled(b, fmt.Sprintf("%d.base", n), func() { base = base.add(e.churn(after)) })

	baseCalls, calls := float64(callBatch*(before+after)), float64(callBatch*iters)
	if n > 0 {
		b.ReportMetric(float64(int64(heap1)-int64(heap0))/float64(n)/2, "B/VC/node")
	}
	rate, baseRate := calls/loaded.wall.Seconds(), baseCalls/base.wall.Seconds()
	cpu, baseCPU := loaded.cpu.Seconds()*1e6/calls, base.cpu.Seconds()*1e6/baseCalls
	b.ReportMetric(rate, "calls/s")
	b.ReportMetric(baseRate, "base-calls/s")
	b.ReportMetric(rate/baseRate, "ratio")
	b.ReportMetric(cpu, "cpu-µs/call")
	b.ReportMetric(baseCPU, "base-cpu-µs/call")
	b.ReportMetric(baseCPU/cpu, "cpu-ratio")

	ca.teardown()
	cb.teardown()
	w.close()
}
