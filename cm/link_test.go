package cm_test

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport/sim"
)

// TestLinkLossSplit: the path between a split node and its peer (split or
// integrated) breaks with a call up, with the miniports completing at once
// and pending. Cut for less than T309: the split node re-activates its
// signalling VC (the miniport dials) until the link is back, the call is
// kept past T309 and carries data both ways again. Cut for longer than
// T309: both clients see the call closed with NDIS_STATUS_DEST_OUT_OF_ORDER
// (cause 27, T309 expired) no sooner than T309 after the link went down,
// and nothing is left in either mediator. Each client is told
// MEDIA_DISCONNECT when the link goes and MEDIA_CONNECT when it is back,
// whichever kind its node is.
func TestLinkLossSplit(t *testing.T) {
	for _, pend := range []bool{false, true} {
		for _, peerSplit := range []bool{false, true} {
			t.Run(fmt.Sprintf("pend=%v/peerSplit=%v", pend, peerSplit), func(t *testing.T) { linkLossCase(t, pend, peerSplit) })
		}
	}
}

func linkLossCase(t *testing.T, pend, peerSplit bool) {
	synctest.Test(t, func(t *testing.T) {
		const detect = time.Second
		net := sim.New(sim.Config{DetectTimeout: detect})
		defer net.Close()
		mpc := miniport.Config{Pend: pend}
		var evA, evB events
		a := newHostOpts(t, net, "alpha", hostOpts{split: true, mpc: mpc, trace: evA.add})
		b := newHostOpts(t, net, "beta", hostOpts{split: peerSplit, mpc: mpc, trace: evB.add})
		t309 := testTimers().T309

		// Back before T309: the call survives.
		c := connect(t, a, b, "svc", flow(), flow())
		net.Cut("alpha", "beta")
		time.Sleep(4 * time.Second) // the link is down after 1 s
		net.Restore("alpha", "beta")
		time.Sleep(2 * t309)
		for _, r := range []*recorder{c.outRec, c.inRec} {
			r.mu.Lock()
			if len(r.ends) != 0 {
				t.Errorf("a call end across a short outage: %+v", r.ends)
			}
			r.mu.Unlock()
		}
		// The clients were told the medium went and came back, as mcm tells
		// them (the split node's miniport indicates it on the VC).
		for _, x := range []struct {
			h  *host
			ev *events
			v  *clientcore.VC
		}{{a, &evA, c.out}, {b, &evB, c.in}} {
			want := []ndis.Status{ndis.StatusMediaDisconnect, ndis.StatusMediaConnect}
			if got := x.ev.clientStatus(x.h.name+"-app", x.v.Name()); !slices.Equal(got, want) {
				t.Errorf("%s's client was told %v on its VC, want %v", x.h.name, got, want)
			}
		}
		if err := c.out.Send([]byte("after")); err != nil {
			t.Fatalf("send after the outage: %v", err)
		}
		if err := c.in.Send([]byte("back")); err != nil {
			t.Fatalf("send back after the outage: %v", err)
		}
		waitUntil(t, "data both ways after the outage", func() bool {
			return len(c.inRec.received()) == 1 && len(c.outRec.received()) == 1
		})
		if st := closeAndWait(t, c.out); st != ndis.StatusSuccess {
			t.Errorf("close after the outage: %v", st)
		}
		<-c.inRec.closed
		c.sap.Close(clientcore.ReasonLocal)

		// Longer than T309: the call ends on both sides, cause 27.
		c = connect(t, a, b, "svc2", flow(), flow())
		cut := time.Now()
		net.Cut("alpha", "beta")
		for _, r := range []*recorder{c.outRec, c.inRec} {
			select {
			case <-r.closed:
			case <-time.After(time.Minute):
				t.Fatalf("no end of the call after a long outage")
			}
			if el := time.Since(cut); el < detect+t309 {
				t.Errorf("call ended %v after the cut, before the link loss + T309 (%v)", el, detect+t309)
			}
			r.mu.Lock()
			if e := r.ends; len(e) != 1 || e[0].Status != ndis.StatusDestOutOfOrder || !e[0].WasUp {
				t.Errorf("ends %+v, want one of a call that was up, DEST_OUT_OF_ORDER", e)
			}
			r.mu.Unlock()
		}
		c.sap.Close(clientcore.ReasonLocal)
		for _, h := range []*host{a, b} {
			waitUntil(t, h.name+": no call VC left", func() bool { return len(h.callVCs()) == 0 })
		}
		net.Restore("alpha", "beta")
		a.finish()
		b.finish()
	})
}

// clientStatus lists the status codes indicated to the client binding
// driver on VC vc (ProtocolCoStatusEx), in order.
func (e *events) clientStatus(driver, vc string) []ndis.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []ndis.Status
	for _, ev := range e.all {
		if ev.Kind == ndis.EventUpcall && ev.Func == "ProtocolCoStatusEx" && ev.Driver == driver && ev.Object == vc {
			out = append(out, ev.Status)
		}
	}
	return out
}
