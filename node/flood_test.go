package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
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
// its peer back, until release is closed.
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
	ep    *quic.Endpoint
	quit  chan struct{}
	done  chan error   // the flood's end (see startFlood)
	sent  atomic.Int64 // SETUPs sent
	links atomic.Int64 // links made

	mu     sync.Mutex
	stalls []*stalled // the handlers of its links that stopped reading
}

var flooders atomic.Int64

// startFlood starts a flooder against tn's beta, sending SETUPs from a set
// of 200,000 encoded ahead (so that its own work in this process is only
// sending: a real one runs elsewhere). It goes round them until stop.
// With once, it floods one link: a send that fails ends the flood, and
// done gets the error (nil if stop came first). Without, it dials beta
// again whenever beta closes its link, and done gets nil.
func startFlood(tb testing.TB, tn *twoNodes, reads, once bool) *flooder {
	tb.Helper()
	name := fmt.Sprintf("mallory%d", flooders.Add(1))
	id, err := pki.Issue(filepath.Dir(tn.beta.Config.CA), name)
	if err != nil {
		tb.Fatal(err)
	}
	book := &quic.AddrBook{}
	book.Set("beta", tn.beta.Endpoint.Addr())
	f := &flooder{quit: make(chan struct{}), done: make(chan error, 1)}
	f.ep, err = quic.Listen(quic.Config{Identity: id, ListenAddr: "127.0.0.1:0", Resolve: book.Resolve,
		Handler: transport.HandlerFunc(func(transport.Link) transport.LinkHandler {
			if reads {
				return &transport.LinkFuncs{}
			}
			st := &stalled{release: make(chan struct{})}
			f.mu.Lock()
			f.stalls = append(f.stalls, st)
			f.mu.Unlock()
			return st
		})})
	if err != nil {
		tb.Fatal(err)
	}
	addr := tn.beta.MCM.Address()
	msgs := make([][]byte, 200000)
	for i := range msgs {
		m := &uni.Message{Type: uni.MsgSetup, CallRef: uni.CallRef{Value: uint32(i%(1<<23) + 1)},
			Traffic: &uni.TrafficDescriptor{FwdPCR01: uni.Some(100), BwdPCR01: uni.Some(100), BestEffort: true},
			Bearer:  &uni.BearerCapability{Class: uni.BCOBX, UserPlane: uni.PointToPoint},
			Called:  uni.CalledAESA(addr), QoS: &uni.QoSParameter{}}
		if msgs[i], err = m.Encode(); err != nil {
			tb.Fatal(err)
		}
	}
	dial := func() (transport.Link, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l, err := f.ep.Dial(ctx, "beta")
		if err == nil {
			f.links.Add(1)
		}
		return l, err
	}
	bl, err := dial()
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		for {
			for i := 0; i < len(msgs); i += 64 {
				select {
				case <-f.quit:
					f.done <- nil
					return
				default:
				}
				batch := msgs[i:min(i+64, len(msgs))]
				if err := bl.(transport.BatchSender).SendBatch(batch); err != nil {
					if once {
						f.done <- err
						return
					}
					f.release() // its LinkDown waits for the stalled handler
					if bl, err = dial(); err != nil {
						f.done <- err
						return
					}
					continue
				}
				f.sent.Add(int64(len(batch)))
			}
		}
	}()
	return f
}

// release unblocks the handlers of the flooder's links so far.
func (f *flooder) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, st := range f.stalls {
		close(st.release)
	}
	f.stalls = nil
}

// stop ends the flooder and returns how its flood ended.
func (f *flooder) stop() error {
	close(f.quit)
	f.release()
	err := <-f.done
	f.release()
	f.ep.Close()
	return err
}

// TestFlooderStallsOnlyItself: mallory, an authenticated node, sends beta
// SETUPs as fast as it can and never reads a reply, while alpha makes
// calls to beta. Beta's replies to mallory pile up until its signalling
// queue for mallory is full and mallory has taken nothing for a while
// (transport/quic's sigStallAfter), and that link is closed; alpha's calls all
// succeed meanwhile. (Before, beta's one signalling sender waited on
// mallory's full window, and alpha's calls hung with it.) The call rates
// are measured by BenchmarkFloodIsolation, not asserted here.
func TestFlooderStallsOnlyItself(t *testing.T) {
	const honest = 2000
	tn := startTwoNodes(t)
	heapBefore := liveHeapMB()
	f := startFlood(t, tn, false, true)
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
		f.done <- err
		if !errors.Is(err, transport.ErrLinkDown) {
			t.Errorf("the flood ended with %v after %d SETUPs, want the link down", err, f.sent.Load())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("beta never closed the link of a peer that does not read")
	}
	f.stop()
	// What the flood left behind is bounded: beta's queue for mallory was
	// (transport/quic's per-link bound), and went with its link.
	if grew := liveHeapMB() - heapBefore; grew > 16 {
		t.Errorf("the live heap grew by %.1f MB over the flood, want at most 16 MB", grew)
	}
}

// liveHeapMB is the live heap after a collection, in MB.
func liveHeapMB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

// BenchmarkFloodIsolation measures alpha's call rate to beta (2,000 calls,
// 16 in flight) with no flood and, in the same run, while a third node
// floods beta with SETUPs for the whole bench: one that never reads (beta
// closes its link each time its queue for it is full and it has taken
// nothing for 1.5 s, and it dials again) and one that reads and discards every answer. It reports both
// rates and their ratios — the bar (issue 8, design.md §7) is a ratio of
// at least 0.5 — how many links the first flooder needed and how many
// SETUPs the second sent per bench, and the most heap in use (every node
// and the flooders, with their SETUPs encoded ahead, are in this process)
// right after a flooded bench.
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
	heap := func() float64 {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapInuse) / (1 << 20)
	}
	var base, stalled, reading, heapMax float64
	var links, sent int64
	for b.Loop() {
		base += rate()
		f := startFlood(b, tn, false, false)
		stalled += rate()
		heapMax = max(heapMax, heap())
		f.stop()
		links += f.links.Load()
		f = startFlood(b, tn, true, false)
		reading += rate()
		heapMax = max(heapMax, heap())
		f.stop()
		sent += f.sent.Load()
	}
	b.ReportMetric(float64(links)/float64(b.N), "links-of-nonreading-flooder")
	b.ReportMetric(float64(sent)/float64(b.N), "SETUPs-of-reading-flooder")
	b.ReportMetric(heapMax, "MB-heap-in-use-max")
	n := float64(b.N)
	b.ReportMetric(base/n, "calls/s")
	b.ReportMetric(stalled/n, "calls/s-nonreading-flood")
	b.ReportMetric(reading/n, "calls/s-reading-flood")
	b.ReportMetric(stalled/base, "ratio-nonreading")
	b.ReportMetric(reading/base, "ratio-reading")
}
