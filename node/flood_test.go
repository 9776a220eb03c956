package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/quic"
	"github.com/condis-project/condis/uni"
)

// stalled is a flooder's link handler: it never takes a message, so the
// flooder stops reading its signalling stream and QUIC flow control holds
// its peer back.
type stalled struct {
	transport.LinkFuncs
	release chan struct{}
}

func (s *stalled) Message([]byte) { <-s.release }

// flooder is an authenticated node (a cluster certificate of its own)
// that sends a node SETUPs as fast as it can: reading nothing back (its
// handler blocks, so QUIC flow control holds the node back), or reading
// and discarding every answer.
type flooder struct {
	ep   *quic.Endpoint
	rec  *stalled
	done chan error // the flood's end: nil after max SETUPs, else the send error
}

var flooders atomic.Int64

// startFlood starts a flooder against tn's beta.
func startFlood(tb testing.TB, tn *twoNodes, max int, reads bool) *flooder {
	tb.Helper()
	name := fmt.Sprintf("mallory%d", flooders.Add(1))
	id, err := pki.Issue(filepath.Dir(tn.beta.Config.CA), name)
	if err != nil {
		tb.Fatal(err)
	}
	book := &quic.AddrBook{}
	book.Set("beta", tn.beta.Endpoint.Addr())
	f := &flooder{rec: &stalled{release: make(chan struct{})}, done: make(chan error, 1)}
	var h transport.LinkHandler = f.rec
	if reads {
		h = &transport.LinkFuncs{}
	}
	f.ep, err = quic.Listen(quic.Config{Identity: id, ListenAddr: "127.0.0.1:0", Resolve: book.Resolve,
		Handler: transport.HandlerFunc(func(transport.Link) transport.LinkHandler { return h })})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bl, err := f.ep.Dial(ctx, "beta")
	if err != nil {
		tb.Fatal(err)
	}
	addr := tn.beta.MCM.Address()
	go func() {
		batch := make([][]byte, 0, 64)
		for i := range max {
			m := &uni.Message{Type: uni.MsgSetup, CallRef: uni.CallRef{Value: uint32(i%(1<<23) + 1)},
				Traffic: &uni.TrafficDescriptor{FwdPCR01: uni.Some(100), BwdPCR01: uni.Some(100), BestEffort: true},
				Bearer:  &uni.BearerCapability{Class: uni.BCOBX, UserPlane: uni.PointToPoint},
				Called:  uni.CalledAESA(addr), QoS: &uni.QoSParameter{}}
			b, err := m.Encode()
			if err != nil {
				f.done <- err
				return
			}
			batch = append(batch, b)
			if len(batch) == cap(batch) || i == max-1 {
				if err := bl.(transport.BatchSender).SendBatch(batch); err != nil {
					f.done <- err
					return
				}
				batch = batch[:0]
			}
		}
		f.done <- nil
	}()
	return f
}

// stop ends the flooder.
func (f *flooder) stop() {
	close(f.rec.release)
	f.ep.Close()
}

// TestFlooderStallsOnlyItself: mallory, an authenticated node, sends beta
// SETUPs as fast as it can and never reads a reply, while alpha makes
// calls to beta. Beta's replies to mallory pile up until its signalling
// queue for mallory overflows and that link is closed; alpha's calls all
// succeed meanwhile. (Before, beta's one signalling sender waited on
// mallory's full window, and alpha's calls hung with it.) The call rates
// are measured by BenchmarkFloodIsolation, not asserted here.
func TestFlooderStallsOnlyItself(t *testing.T) {
	const floodMax, honest = 200000, 2000
	tn := startTwoNodes(t)
	f := startFlood(t, tn, floodMax, false)
	defer f.stop()
	res, err := tn.actl.Bench(context.Background(), Request{Dest: "beta/echo", Calls: honest, Concurrency: 16})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != honest || res.Failed != 0 {
		t.Errorf("alpha's calls during the flood: %+v", res)
	}
	// Beta ends mallory's link: mallory's sends then fail.
	select {
	case err := <-f.done:
		if !errors.Is(err, transport.ErrLinkDown) {
			t.Errorf("the flood ended with %v, want the link down", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("beta never closed the link of a peer that does not read")
	}
}

// BenchmarkFloodIsolation measures alpha's call rate to beta (2,000 calls,
// 16 in flight) with no flood and, in the same run, while a third node
// floods beta with SETUPs: one that never reads (its link is closed once
// beta's queue for it overflows) and one that reads and discards every
// answer (200,000 SETUPs). It reports both rates and their ratios; the bar
// (issue 8, design.md §7) is a ratio of at least 0.5.
func BenchmarkFloodIsolation(b *testing.B) {
	const honest = 2000
	tn := startTwoNodes(b)
	rate := func() float64 {
		res, err := tn.actl.Bench(context.Background(), Request{Dest: "beta/echo", Calls: honest, Concurrency: 16})
		if err != nil || res.Connected != honest {
			b.Fatalf("bench: %+v, %v", res, err)
		}
		return res.Rate
	}
	var base, stalled, reading float64
	for b.Loop() {
		base += rate()
		f := startFlood(b, tn, 200000, false)
		stalled += rate()
		f.stop()
		<-f.done
		f = startFlood(b, tn, 200000, true)
		reading += rate()
		f.stop()
		<-f.done
	}
	n := float64(b.N)
	b.ReportMetric(base/n, "calls/s")
	b.ReportMetric(stalled/n, "calls/s-nonreading-flood")
	b.ReportMetric(reading/n, "calls/s-reading-flood")
	b.ReportMetric(stalled/base, "ratio-nonreading")
	b.ReportMetric(reading/base, "ratio-reading")
}
