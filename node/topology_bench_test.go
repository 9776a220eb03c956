package node

import (
	"context"
	"fmt"
	"runtime"
	"testing"
)

// BenchmarkTopologies compares the topologies in one run (issue 9 item 9):
// calls from alpha to beta/echo over QUIC on loopback with Control.Bench,
// for integrated-integrated, split-integrated, integrated-split and
// split-split, 1 and 64 in flight (calls/s, setup p50); and with "hold",
// the live heap per established call with holdCalls calls held, both
// nodes and both control planes in this process (B/held-call; a node's
// share is about half). The split/integrated ratio is the
// split-integrated rate over the integrated-integrated one.
//
//	go test -run '^$' -bench Topologies -benchtime 5000x ./node
func BenchmarkTopologies(b *testing.B) {
	const holdCalls = 20000
	floor := make([]byte, 2*32<<20) // what `condis node` runs with (its --gc-floor), for each node
	defer runtime.KeepAlive(floor)
	for _, tc := range []struct{ alpha, beta Topology }{
		{TopologyIntegrated, TopologyIntegrated},
		{TopologySplit, TopologyIntegrated},
		{TopologyIntegrated, TopologySplit},
		{TopologySplit, TopologySplit},
	} {
		b.Run(string(tc.alpha)+"-"+string(tc.beta), func(b *testing.B) {
			tn := startTwoNodesTopo(b, StartOptions{}, tc.alpha, tc.beta)
			ctx := context.Background()
			if _, err := tn.actl.Bench(ctx, Request{Dest: "beta/echo", Calls: 200, Concurrency: 16}); err != nil { // the link comes up
				b.Fatal(err)
			}
			for _, conc := range []int{1, 64} {
				b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
					res, err := tn.actl.Bench(ctx, Request{Dest: "beta/echo", Calls: b.N, Concurrency: conc})
					if err != nil {
						b.Fatal(err)
					}
					if res.Failed > 0 || res.Connected != b.N {
						b.Fatalf("%d of %d calls failed (%s); %d connected", res.Failed, b.N, res.FirstError, res.Connected)
					}
					b.ReportMetric(res.Rate, "calls/s")
					b.ReportMetric(res.Setup.P50, "us/setup-p50")
				})
			}
			b.Run("hold", func(b *testing.B) {
				res, err := tn.actl.Bench(ctx, Request{Dest: "beta/echo", Calls: b.N, Concurrency: 64, Hold: holdCalls})
				if err != nil {
					b.Fatal(err)
				}
				if res.Failed > 0 || res.Held != holdCalls {
					b.Fatalf("held %d of %d; %d failed (%s)", res.Held, holdCalls, res.Failed, res.FirstError)
				}
				b.ReportMetric(float64(res.HeapPerHeldVc), "B/held-call")
				b.ReportMetric(res.Rate, "calls/s")
			})
		})
	}
}
