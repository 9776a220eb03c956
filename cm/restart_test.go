package cm_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// restartPairs are the (alpha, beta) topologies of the RESTART tests: a
// split node on either end, and on both.
var restartPairs = [][2]bool{{true, false}, {false, true}, {true, true}}

// TestRestartOnFirstLinkSplit: each node's first link with a peer starts
// with RESTART (all VCs) from each end, each acknowledged, with a split
// node on either end; the call made on that link is not touched by them.
// A link that comes back after a cut is no first link: no RESTART, and
// the call kept across the cut stays up.
func TestRestartOnFirstLinkSplit(t *testing.T) {
	for _, pair := range restartPairs {
		t.Run(fmt.Sprintf("split=%v", pair), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := sim.New(sim.Config{DetectTimeout: time.Second, Signal: sim.SignalConfig{Delay: time.Millisecond}})
				defer net.Close()
				restarts := net.DropNth(sim.MsgType(uni.MsgRestart), 1<<30) // counts, drops none
				acks := net.DropNth(sim.MsgType(uni.MsgRestartAck), 1<<30)
				fromA := net.DropNth(sim.From("alpha", sim.MsgType(uni.MsgRestart)), 1<<30)
				a := newHostOpts(t, net, "alpha", hostOpts{split: pair[0]})
				b := newHostOpts(t, net, "beta", hostOpts{split: pair[1]})
				c := connect(t, a, b, "svc", flow(), flow())
				time.Sleep(100 * time.Millisecond)
				if restarts.Seen() != 2 || fromA.Seen() != 1 || acks.Seen() != 2 {
					t.Fatalf("%d RESTARTs (%d from alpha), %d RESTART ACKNOWLEDGEs; want one each way, each acknowledged",
						restarts.Seen(), fromA.Seen(), acks.Seen())
				}
				net.Cut("alpha", "beta")
				time.Sleep(2 * time.Second) // the loss is noticed; T309 keeps the call
				net.Restore("alpha", "beta")
				time.Sleep(3 * time.Second) // redialled, audited
				if restarts.Seen() != 2 {
					t.Errorf("%d RESTARTs after the link came back, want none more", restarts.Seen()-2)
				}
				for _, r := range []*recorder{c.outRec, c.inRec} {
					r.mu.Lock()
					if len(r.ends) != 0 {
						t.Errorf("the call ended: %+v", r.ends)
					}
					r.mu.Unlock()
				}
				if err := c.out.Send([]byte("kept")); err != nil {
					t.Fatal(err)
				}
				waitUntil(t, "data on the kept call", func() bool { return len(c.inRec.received()) == 1 })
				if st := closeAndWait(t, c.out); st != ndis.StatusSuccess {
					t.Errorf("close: %v", st)
				}
				<-c.inRec.closed
				c.sap.Close(clientcore.ReasonLocal)
				for _, h := range []*host{a, b} {
					waitUntil(t, h.name+": no call VC left", func() bool { return len(h.callVCs()) == 0 })
				}
				a.finish()
				b.finish()
			})
		})
	}
}

// TestPeerIncarnationClearsCallsSplit: beta dies mid-call (the path is
// cut, then its endpoint goes) and a new beta attaches, with a split node
// on either end. Alpha keeps its call under T309 and gets the link back;
// the link is from beta's new incarnation, so the call is cleared at once:
// alpha's client sees NDIS_STATUS_DEST_OUT_OF_ORDER within 2 s of the path
// being restored, well before T309 would have run out, and a new call to the new beta works. Nothing is left in
// any mediator, the dead beta's included.
func TestPeerIncarnationClearsCallsSplit(t *testing.T) {
	for _, pair := range restartPairs {
		t.Run(fmt.Sprintf("split=%v", pair), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := sim.New(sim.Config{DetectTimeout: time.Second, Signal: sim.SignalConfig{Delay: time.Millisecond}})
				defer net.Close()
				a := newHostOpts(t, net, "alpha", hostOpts{split: pair[0]})
				b := newHostOpts(t, net, "beta", hostOpts{split: pair[1]})
				c := connect(t, a, b, "svc", flow(), flow())
				net.Cut("alpha", "beta")
				b.ep.Close()
				time.Sleep(1500 * time.Millisecond) // alpha notices the loss; T309 runs
				c.outRec.mu.Lock()
				if len(c.outRec.ends) != 0 {
					t.Fatalf("alpha's call ended at the link loss %+v, want it kept for T309", c.outRec.ends)
				}
				c.outRec.mu.Unlock()
				b2 := newHostOpts(t, net, "beta", hostOpts{split: pair[1]})
				net.Restore("alpha", "beta")
				start := time.Now()
				select {
				case <-c.outRec.closed:
				case <-time.After(time.Minute):
					t.Fatal("alpha's call never ended")
				}
				// T309 would end it 8.5 s from now (it started 1 s after the
				// cut); the new incarnation ends it as soon as the link is back.
				if took := time.Since(start); took >= 2*time.Second {
					t.Errorf("alpha's client told %v after the path was restored: T309's expiry, not the new incarnation", took)
				}
				c.outRec.mu.Lock()
				if e := c.outRec.ends; len(e) != 1 || e[0].Status != ndis.StatusDestOutOfOrder {
					t.Errorf("alpha's call ends %+v, want one, DEST_OUT_OF_ORDER", e)
				}
				c.outRec.mu.Unlock()
				pointToPoint(t, a, b2, "svc2", true)
				a.finish()
				b2.finish()
				b.finish() // the dead incarnation: its call ended by T309
			})
		})
	}
}
