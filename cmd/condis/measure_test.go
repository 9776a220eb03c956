package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/condis-project/condis/node"
)

// BenchmarkRemoteCall measures calls between two `condis node` processes on
// loopback, over one QUIC connection (design §7). Each figure comes with
// baselines measured in the same sub-benchmark, on loopback, between two
// processes (this one and a `condis bench --serve-baselines` child), as
// the two nodes are, and within this process (-1proc):
//
//   - in-node/cN: calls made inside alpha's node process by its control
//     plane as a CoNDIS client (what `condis bench` asks for), N in flight
//     at once. Each is a real Q.2931 SETUP, CONNECT, CONNECT ACKNOWLEDGE,
//     RELEASE, RELEASE COMPLETE exchange over QUIC and real CoNDIS calls on
//     both mediators. calls/s (setup + teardown) is compared with TCP
//     connect+accept+close with N workers (x-tcp); the setup latency
//     (NdisClMakeCall to MakeCallComplete) with a UDP round trip
//     (x-udp-rtt).
//   - control-socket/c1: one call at a time the way `condis call` makes
//     them: a unix connection to the node, a session, the call and its
//     close. The setup latency is until DialCall returns.
//
// The work runs in three rounds, each followed by its baselines, so that
// load from elsewhere on the machine weighs on both alike: rates are over
// all rounds, latencies the median of the rounds'. tcp-conns/s is the
// two-process TCP baseline; -1proc ratios are against the baselines
// within this process.
//
// Run: go test -run '^$' -bench RemoteCall -benchtime 2s ./cmd/condis
//
// The two nodes, this process and the baselines' child share the machine.
// On a small one (2 vCPUs) a Go process with more Ps than the cores it
// gets hands goroutines to threads that must first be woken and then
// compete with the other node for a CPU; GOMAXPROCS=1 in front of the
// command gives every process (nodes and baselines alike) one P, which is
// what two nodes sharing two cores get anyway.
//
// With CONDIS_NODE_PROFILE=DIR set, both node processes write a CPU
// profile and an execution trace there (see profileEnv).
func BenchmarkRemoteCall(b *testing.B) {
	c := startCluster(b)
	b.Cleanup(func() { stopGracefully(b, c) })
	ctx := context.Background()
	ln, err := node.DialListen(ctx, filepath.Join(c.dir, "beta.sock"), node.Request{Service: "echo", Echo: true})
	if err != nil {
		b.Fatal(err)
	}
	// Read the listen session's events as `condis listen` does.
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			if _, err := ln.Recv(); err != nil {
				return
			}
		}
	}()
	defer func() {
		ln.Close()
		<-drained
	}()
	local, err := startBaselineServers()
	if err != nil {
		b.Fatal(err)
	}
	defer local.close()
	child, err := startBaselineChild(c.bin)
	if err != nil {
		b.Fatal(err)
	}
	defer child.Close()
	// measure runs work (count of b.N at a time, returning its rate and
	// setup latency) in rounds, each followed by the baselines with the
	// same concurrency, so that load from elsewhere on the machine weighs
	// on both alike; it reports rates over all rounds, the median of the
	// rounds' setup latencies and of the UDP round trips, and the ratios.
	measure := func(b *testing.B, conc int, work func(n int) (rate, setup float64)) {
		const rounds = 3
		b.StopTimer()
		var cost, tcp, tcp1 float64 // seconds per call or connection, summed
		var setups, rtts, rtts1 []float64
		for r := range rounds {
			n := b.N / rounds // all b.N, in three parts
			if r < b.N%rounds {
				n++
			}
			if n == 0 {
				continue
			}
			b.StartTimer()
			rate, setup := work(n)
			b.StopTimer()
			cost += float64(n) / rate
			setups = append(setups, setup)
			for _, m := range []struct {
				addrs baselineAddrs
				cost  *float64
				rtts  *[]float64
			}{{child.addrs, &tcp, &rtts}, {local.addrs, &tcp1, &rtts1}} {
				k := min(n, 20000)
				r, err := tcpConnectRate(m.addrs.tcp, conc, k)
				if err != nil {
					b.Fatal(err)
				}
				*m.cost += float64(n) / r // as if n connections
				rtt, err := medianRTT(m.addrs.udp, 1000)
				if err != nil {
					b.Fatal(err)
				}
				*m.rtts = append(*m.rtts, rtt)
			}
		}
		median := func(xs []float64) float64 { slices.Sort(xs); return xs[len(xs)/2] }
		n := float64(b.N)
		b.ReportMetric(n/cost, "calls/s")
		b.ReportMetric(n/tcp, "tcp-conns/s")
		b.ReportMetric(tcp/cost, "x-tcp")
		b.ReportMetric(tcp1/cost, "x-tcp-1proc")
		if setup := median(setups); setup > 0 {
			rtt, rtt1 := median(rtts), median(rtts1)
			b.ReportMetric(setup, "us/setup-p50")
			b.ReportMetric(rtt, "us/udp-rtt")
			b.ReportMetric(rtt1, "us/udp-rtt-1proc")
			b.ReportMetric(setup/rtt, "x-udp-rtt")
			b.ReportMetric(setup/rtt1, "x-udp-rtt-1proc")
		}
	}

	alpha := filepath.Join(c.dir, "alpha.sock")
	call := func() {
		s, err := node.DialCall(ctx, alpha, node.Request{Dest: "beta/echo"})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.End(); err != nil {
			b.Fatal(err)
		}
		for {
			f, err := s.Recv()
			if err != nil {
				b.Fatal(err)
			}
			if f.Type == node.FrameClose {
				break
			}
		}
		s.Close()
	}
	for range 50 { // the link, the SAP and the caches come up first
		call()
	}

	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("in-node/c%d", conc), func(b *testing.B) {
			measure(b, conc, func(n int) (float64, float64) {
				sockets := []string{alpha, filepath.Join(c.dir, "beta.sock")}
				before, err := nodeStatuses(ctx, sockets)
				if err != nil {
					b.Fatal(err)
				}
				res, err := node.Bench(ctx, alpha, node.Request{Dest: "beta/echo", Calls: n, Concurrency: conc})
				if err != nil {
					b.Fatal(err)
				}
				after, err := nodeStatuses(ctx, sockets)
				if err != nil {
					b.Fatal(err)
				}
				if err := benchVerdict(res, violationsDuring(before, after)); err != nil {
					b.Fatal(err)
				}
				return res.Rate, res.Setup.P50
			})
		})
	}
	b.Run("control-socket/c1", func(b *testing.B) {
		measure(b, 1, func(n int) (float64, float64) {
			setups := make([]time.Duration, 0, n)
			start := time.Now()
			for range n {
				t := time.Now()
				s, err := node.DialCall(ctx, alpha, node.Request{Dest: "beta/echo"})
				if err != nil {
					b.Fatal(err)
				}
				setups = append(setups, time.Since(t))
				if err := s.End(); err != nil {
					b.Fatal(err)
				}
				for {
					f, err := s.Recv()
					if err != nil {
						b.Fatal(err)
					}
					if f.Type == node.FrameClose {
						break
					}
				}
				s.Close()
			}
			rate := float64(n) / time.Since(start).Seconds()
			slices.Sort(setups)
			return rate, float64(setups[len(setups)/2]) / 1e3
		})
	})
}

// stopGracefully ends both nodes with SIGTERM, so that profiles asked for
// with CONDIS_NODE_PROFILE are written.
func stopGracefully(t testing.TB, c *cluster) {
	for _, p := range []*exec.Cmd{c.alpha, c.beta} {
		p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range []*exec.Cmd{c.alpha, c.beta} {
		if err := p.Wait(); err != nil {
			t.Logf("node exit: %v", err)
		}
	}
}
