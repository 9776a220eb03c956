package mcm_test

import (
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport/sim"
)

// peerOf returns d's PeerInfo of name.
func peerOf(t *testing.T, d *mcm.MCM, name string) mcm.PeerInfo {
	t.Helper()
	for _, p := range d.Peers() {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("%s is not among the peers: %+v", name, d.Peers())
	return mcm.PeerInfo{}
}

// TestPeersLifecycle follows one peer through Peers: up with the path's
// round-trip time, its call and its signalling counted both ways (on a
// node with no tracer: the counters must not need one, and they agree
// with what the far node traced); then the path breaks: connecting
// (redialling while the call is kept for T309) with the link-down reason
// as the last error; then, T309 over, down with no calls. A node the MCM
// was asked to reach and could not is listed down with the dial's error.
func TestPeersLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Signal: sim.SignalConfig{Delay: 5 * time.Millisecond}, DetectTimeout: time.Second})
		defer w.close()
		var mu sync.Mutex
		bIn, bOut := 0, 0 // b's trace of its signalling with a
		a := w.addNode("a", nil)
		b := w.addNode("b", func(c *mcm.Config) {
			c.Tracer = trace.Tracer{Signal: func(s trace.Signal) {
				mu.Lock()
				defer mu.Unlock()
				if s.Peer != "a" {
					return
				}
				if s.Dir == trace.In {
					bIn++
				} else {
					bOut++
				}
			}}
		})
		if ps := a.d.Peers(); len(ps) != 0 {
			t.Fatalf("peers before any link: %+v", ps)
		}

		a.d.Connect("nowhere") // not on the network
		w.pause(100 * time.Millisecond)
		if p := peerOf(t, a.d, "nowhere"); p.State != mcm.LinkDown || !strings.Contains(p.LastError, "unknown peer") ||
			p.Since.IsZero() || p.LastErrorAt.IsZero() || p.Calls != 0 || p.MessagesIn+p.MessagesOut != 0 {
			t.Errorf("a peer that cannot be reached: %+v", p)
		}

		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		before := time.Now()
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
		w.pause(100 * time.Millisecond) // CONNECT ACKNOWLEDGE arrives
		p := peerOf(t, a.d, "b")
		mu.Lock()
		in, out := bIn, bOut
		mu.Unlock()
		if p.State != mcm.LinkUp || p.Since.Before(before) || p.Since.After(time.Now()) || p.RTT != 10*time.Millisecond ||
			p.Calls != 1 || p.LastError != "" || p.Address != q2931.Address(q2931.DefaultPrefix, "b") || p.LinkLoss != "" {
			t.Errorf("b, up with a call: %+v", p)
		}
		// RESTART, SETUP, CONNECT ACKNOWLEDGE out; RESTART ACKNOWLEDGE,
		// CONNECT (and perhaps CALL PROCEEDING) in.
		if p.MessagesOut < 3 || p.MessagesIn < 2 || p.MessagesOut != uint64(in) || p.MessagesIn != uint64(out) {
			t.Errorf("a counted %d in, %d out; b traced %d in, %d out", p.MessagesIn, p.MessagesOut, in, out)
		}

		cut := time.Now()
		w.net.Cut("a", "b")
		w.pause(1500 * time.Millisecond) // the loss is detected after 1 s
		p = peerOf(t, a.d, "b")
		if p.State != mcm.LinkConnecting || p.Calls != 1 || p.RTT != 0 || !strings.HasPrefix(p.LinkLoss, "link down: timeout") ||
			p.Since.Before(cut.Add(time.Second)) || p.LastErrorAt.Before(cut.Add(time.Second)) {
			t.Errorf("b, link lost, call kept for T309: %+v", p)
		}
		lost := p.LinkLoss

		w.closedByNetwork(ca, va, ndis.StatusDestOutOfOrder)
		w.closedByNetwork(cb, vb, ndis.StatusDestOutOfOrder)
		w.pause(2 * time.Second) // the last redial gives up
		p = peerOf(t, a.d, "b")
		if p.State != mcm.LinkDown || p.Calls != 0 || p.Since.Before(cut.Add(w.timers.T309)) || p.LinkLoss != lost ||
			!strings.Contains(p.LastError, "path cut") {
			t.Errorf("b, T309 over: %+v", p)
		}
		t.Logf("link lost: %q; last error at the end: %q", lost, p.LastError)
		w.deleted(cb, vb)
		ca.DeleteVc(va)
	})
}
