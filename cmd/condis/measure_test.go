package main

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/condis-project/condis/node"
)

// BenchmarkRemoteCall measures calls between two `condis node` processes on
// loopback (issue 4 item 9) through the control API, the way `condis call`
// makes them, next to baselines measured in the same run:
//
//   - setup+teardown: a call to beta/echo made and closed, with no data —
//     vs TCP connect+accept+close on loopback;
//   - setup latency: until the call is connected (MakeCallComplete) — vs a
//     UDP round trip on loopback.
//
// Run: go test -run '^$' -bench RemoteCall -benchtime 2s ./cmd/condis
func BenchmarkRemoteCall(b *testing.B) {
	c := startCluster(b)
	ctx := context.Background()
	ln, err := node.DialListen(ctx, filepath.Join(c.dir, "beta.sock"), node.Request{Service: "echo", Echo: true})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
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
	for i := 0; i < 50; i++ { // the link, the SAP and the caches come up first
		call()
	}

	b.Run("condis-call-setup-teardown", func(b *testing.B) {
		for b.Loop() {
			call()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
	b.Run("baseline-tcp-connect-accept-close", func(b *testing.B) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				cn, err := l.Accept()
				if err != nil {
					return
				}
				cn.Close()
			}
		}()
		for b.Loop() {
			cn, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			cn.Close()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
		l.Close()
		<-done
	})
	b.Run("condis-call-setup-latency", func(b *testing.B) {
		var total time.Duration
		for b.Loop() {
			start := time.Now()
			s, err := node.DialCall(ctx, alpha, node.Request{Dest: "beta/echo"})
			if err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
			s.End()
			for {
				f, err := s.Recv()
				if err != nil || f.Type == node.FrameClose {
					break
				}
			}
			s.Close()
		}
		b.ReportMetric(float64(total.Microseconds())/float64(b.N), "us/setup")
	})
	b.Run("baseline-udp-round-trip", func(b *testing.B) {
		srv, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 64)
			for {
				n, from, err := srv.ReadFrom(buf)
				if err != nil {
					return
				}
				srv.WriteTo(buf[:n], from)
			}
		}()
		cl, err := net.Dial("udp", srv.LocalAddr().String())
		if err != nil {
			b.Fatal(err)
		}
		msg, buf := make([]byte, 34), make([]byte, 64)
		for b.Loop() {
			cl.Write(msg)
			if _, err := cl.Read(buf); err != nil && !errors.Is(err, net.ErrClosed) {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/rtt")
		cl.Close()
		srv.Close()
		<-done
	})
}
