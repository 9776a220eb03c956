package node

import (
	"context"
	"errors"
	"path/filepath"
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

// TestFlooderStallsOnlyItself: mallory, an authenticated node, sends beta
// SETUPs as fast as it can and never reads a reply, while alpha makes
// calls to beta. Beta's replies to mallory pile up until its signalling
// queue for mallory overflows and that link is closed; alpha's calls all
// succeed meanwhile. (Before, beta's one signalling sender waited on
// mallory's full window, and alpha's calls hung with it.) The call rates
// with and without the flood are logged; the isolation bar is measured
// by the benchmark, not asserted on timing here.
func TestFlooderStallsOnlyItself(t *testing.T) {
	const floodMax, honest = 200000, 2000
	tn := startTwoNodes(t)
	base, err := tn.actl.Bench(context.Background(), Request{Dest: "beta/echo", Calls: honest, Concurrency: 16})
	if err != nil || base.Connected != honest {
		t.Fatalf("bench without the flood: %+v, %v", base, err)
	}

	dir := filepath.Dir(tn.beta.Config.CA)
	id, err := pki.Issue(dir, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	book := &quic.AddrBook{}
	book.Set("beta", tn.beta.Endpoint.Addr())
	rec := &stalled{release: make(chan struct{})}
	var bl transport.Link
	mal, err := quic.Listen(quic.Config{Identity: id, ListenAddr: "127.0.0.1:0", Resolve: book.Resolve,
		Handler: transport.HandlerFunc(func(l transport.Link) transport.LinkHandler { return rec })})
	if err != nil {
		t.Fatal(err)
	}
	defer mal.Close()
	defer close(rec.release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if bl, err = mal.Dial(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	addr := tn.beta.MCM.Address()
	flood := make(chan error, 1)
	go func() {
		for i := range floodMax {
			m := &uni.Message{Type: uni.MsgSetup, CallRef: uni.CallRef{Value: uint32(i%(1<<23) + 1)},
				Traffic: &uni.TrafficDescriptor{FwdPCR01: uni.Some(100), BwdPCR01: uni.Some(100), BestEffort: true},
				Bearer:  &uni.BearerCapability{Class: uni.BCOBX, UserPlane: uni.PointToPoint},
				Called:  uni.CalledAESA(addr), QoS: &uni.QoSParameter{}}
			b, err := m.Encode()
			if err != nil {
				flood <- err
				return
			}
			if err := bl.Send(b); err != nil {
				flood <- err
				return
			}
		}
		flood <- nil
	}()
	start := time.Now()
	res, err := tn.actl.Bench(context.Background(), Request{Dest: "beta/echo", Calls: honest, Concurrency: 16})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != honest || res.Failed != 0 {
		t.Errorf("alpha's calls during the flood: %+v", res)
	}
	t.Logf("alpha→beta: %.0f calls/s without the flood, %.0f with it (%.2f×) in %v",
		base.Rate, res.Rate, res.Rate/base.Rate, time.Since(start))
	// Beta ends mallory's link: mallory's sends then fail.
	select {
	case err := <-flood:
		if !errors.Is(err, transport.ErrLinkDown) {
			t.Errorf("the flood ended with %v, want the link down", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("beta never closed the link of a peer that does not read")
	}
}
