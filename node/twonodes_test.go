package node

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/condis-project/condis/pki"
)

// twoNodes is alpha and beta running in this process over QUIC on
// loopback, each with its Control, and a listen session with echo on
// beta/echo: the path of a remote call without the processes around it.
type twoNodes struct {
	alpha, beta *Node
	actl, bctl  *Control
	listen      *Session
}

func startTwoNodes(tb testing.TB) *twoNodes { return startTwoNodesWith(tb, StartOptions{}) }

// startTwoNodesWith is startTwoNodes with opts for both nodes.
func startTwoNodesWith(tb testing.TB, opts StartOptions) *twoNodes {
	tb.Helper()
	return startTwoNodesTopo(tb, opts, TopologyIntegrated, TopologyIntegrated)
}

// startTwoNodesTopo is startTwoNodesWith with alpha's and beta's
// topologies.
func startTwoNodesTopo(tb testing.TB, opts StartOptions, alphaTopo, betaTopo Topology) *twoNodes {
	tb.Helper()
	dir := tb.TempDir()
	if _, err := pki.InitCA(dir); err != nil {
		tb.Fatal(err)
	}
	ports := make([]string, 2)
	for i := range ports {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ports[i] = c.LocalAddr().String()
		c.Close()
	}
	tn := &twoNodes{}
	start := func(name string, topo Topology, listen, peer, peerAddr string) (*Node, *Control) {
		if _, err := pki.Issue(dir, name); err != nil {
			tb.Fatal(err)
		}
		cfg := &Config{Name: name, Listen: listen, Control: filepath.Join(dir, name+".sock"), Topology: topo,
			CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key"),
			Peers: []Peer{{Name: peer, Address: peerAddr}}}
		n, err := Start(cfg, opts)
		if err != nil {
			tb.Fatal(err)
		}
		ctl, err := NewControl(context.Background(), Q2931CallManager{CM: n.CM}, Options{})
		if err != nil {
			n.Close(context.Background())
			tb.Fatal(err)
		}
		ln, err := ListenControl(cfg.Control)
		if err != nil {
			tb.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- ctl.Serve(ln) }()
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := ctl.Shutdown(ctx); err != nil {
				tb.Errorf("%s: Control.Shutdown: %v\n%v", name, err, ctl)
			}
			if err := <-served; err != nil {
				tb.Errorf("%s: Serve: %v", name, err)
			}
			if err := n.Close(ctx); err != nil {
				tb.Errorf("%s: Close: %v", name, err)
			}
			if s := n.Mediator.Snapshot(); !s.Empty() {
				tb.Errorf("%s: the mediator still holds objects:\n%v", name, s)
			}
		})
		return n, ctl
	}
	tn.alpha, tn.actl = start("alpha", alphaTopo, ports[0], "beta", ports[1])
	tn.beta, tn.bctl = start("beta", betaTopo, ports[1], "alpha", ports[0])
	var err error
	tn.listen, err = DialListen(context.Background(), tn.beta.Config.Control, Request{Service: "echo", Echo: true})
	if err != nil {
		tb.Fatal(err)
	}
	drained := make(chan struct{})
	go func() { // read the session's events, as `condis listen` does
		defer close(drained)
		for {
			if _, err := tn.listen.Recv(); err != nil {
				return
			}
		}
	}()
	tb.Cleanup(func() {
		tn.listen.Close()
		<-drained
	})
	return tn
}

// serveNode starts a node from cfg with opts and serves its control
// socket; both stop when tb ends. Their errors are not checked: some tests
// kill a node under itself.
func serveNode(tb testing.TB, cfg *Config, opts StartOptions) (*Node, *Control) {
	tb.Helper()
	n, err := Start(cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctl, err := NewControl(context.Background(), n.CallManager(), Options{})
	if err != nil {
		n.Close(context.Background())
		tb.Fatal(err)
	}
	ln, err := ListenControl(cfg.Control)
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ctl.Shutdown(ctx)
		<-served
		n.Close(ctx)
	})
	return n, ctl
}

// cpuTime is the CPU time (user and system) this process has used: less
// sensitive than the wall clock to other work on the machine.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTwoNodes makes calls from alpha to beta/echo in this process,
// over QUIC on loopback, with Control.Bench: one call is set up and torn
// down per iteration, with 1, 16 or 64 in flight. The figures include both
// nodes' work (they share this process), so allocs/op, cpu-us/call and the
// CPU profile are what a call costs the two of them.
//
//	go test -run '^$' -bench TwoNodes -benchmem -cpuprofile cpu.out ./node
func BenchmarkTwoNodes(b *testing.B) {
	tn := startTwoNodes(b)
	// What `condis node` runs with (its --gc-floor), for each node.
	floor := make([]byte, 2*32<<20)
	defer runtime.KeepAlive(floor)
	ctx := context.Background()
	if _, err := tn.actl.Bench(ctx, Request{Dest: "beta/echo", Calls: 200, Concurrency: 16}); err != nil { // the link comes up
		b.Fatal(err)
	}
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			res, err := tn.actl.Bench(ctx, Request{Dest: "beta/echo", Calls: b.N, Concurrency: conc})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/call")
			if res.Failed > 0 || res.Connected != b.N {
				b.Fatalf("%d of %d calls failed (%s); %d connected", res.Failed, b.N, res.FirstError, res.Connected)
			}
			b.ReportMetric(res.Rate, "calls/s")
			b.ReportMetric(res.Setup.P50, "us/setup-p50")
		})
	}
}

// TestTwoNodesBench: calls between two nodes over QUIC, many in flight so
// that signalling goes in batches both ways; every call connects and
// closes, and both mediators end empty (checked at cleanup).
func TestTwoNodesBench(t *testing.T) {
	tn := startTwoNodes(t)
	for _, conc := range []int{1, 64} {
		res, err := tn.actl.Bench(context.Background(), Request{Dest: "beta/echo", Calls: 500, Concurrency: conc})
		if err != nil {
			t.Fatal(err)
		}
		if res.Connected != 500 || res.Failed != 0 || res.Stopped != "" {
			t.Fatalf("concurrency %d: %+v", conc, res)
		}
	}
}
