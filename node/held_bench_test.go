package node

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
)

// BenchmarkTwoNodesHeld is BenchmarkTwoNodes at 64 in flight, first with
// no other call and then with heldCalls calls held established between the
// same two nodes: what holding calls costs each call made alongside them.
// Each sub-benchmark is warmed up first (twice the calls held, as `condis
// bench --growth` advises), and reports, besides the rate, the CPU time per
// call of the whole process and the part of it the garbage collector took
// (runtime/metrics), which the host's speed moves less than the rate.
//
//	go test -run '^$' -bench TwoNodesHeld -benchtime 200000x -count 3 ./node
//
// Both nodes share this process's heap and its GOMAXPROCS, unlike two
// `condis node` processes.
func BenchmarkTwoNodesHeld(b *testing.B) {
	const heldCalls = 100_000
	tn := startTwoNodes(b)
	floor := make([]byte, 2*32<<20) // condis node's --gc-floor, for each node
	defer runtime.KeepAlive(floor)
	ctx, c := context.Background(), tn.actl
	measure := func(b *testing.B) {
		if _, err := c.Bench(ctx, Request{Dest: "beta/echo", Calls: 2 * heldCalls, Concurrency: 64}); err != nil {
			b.Fatal(err)
		}
		cpu0, gc0 := cpuTime(b), gcCPUSeconds()
		b.ResetTimer()
		res, err := c.Bench(ctx, Request{Dest: "beta/echo", Calls: b.N, Concurrency: 64})
		if err != nil {
			b.Fatal(err)
		}
		if res.Failed > 0 || res.Connected != b.N {
			b.Fatalf("%d of %d calls failed (%s); %d connected", res.Failed, b.N, res.FirstError, res.Connected)
		}
		b.ReportMetric(res.Rate, "calls/s")
		b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/call")
		b.ReportMetric((gcCPUSeconds()-gc0)*1e6/float64(b.N), "gc-cpu-us/call")
	}
	b.Run("none", measure)
	fs, err := (*Flowspec)(nil).Ndis() // what Bench's calls carry
	if err != nil {
		b.Fatal(err)
	}
	h := (&benchRun{c: c, dest: "beta/echo", peer: "beta", service: "echo", tx: fs, rx: fs, conc: 64}).toHold(heldCalls)
	if _, err := c.runBench(ctx, h, 0, nil); err != nil {
		b.Fatal(err)
	}
	defer c.releaseHeld(h)
	if c.mu.Lock(); h.held != heldCalls {
		c.mu.Unlock()
		b.Fatalf("%d of %d calls held", h.held, heldCalls)
	}
	c.mu.Unlock()
	b.Run("held", measure)
}

// gcCPUSeconds is the CPU time the garbage collector has used in this
// process, as the runtime estimates it.
func gcCPUSeconds() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64()
}
