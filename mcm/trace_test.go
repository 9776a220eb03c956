package mcm_test

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// traceRec records a node's trace events as short strings.
type traceRec struct {
	mu    sync.Mutex
	sigs  []string // "out SETUP", "in CONNECT", ...
	links []string
	calls []trace.Call
}

func (r *traceRec) tracer() trace.Tracer {
	return trace.Tracer{
		Signal: func(s trace.Signal) {
			t, _, ok := s.Header()
			if !ok {
				t = 0
			}
			r.mu.Lock()
			r.sigs = append(r.sigs, s.Dir.String()+" "+t.String())
			r.mu.Unlock()
		},
		Link: func(l trace.Link) {
			r.mu.Lock()
			r.links = append(r.links, map[bool]string{true: "up ", false: "down "}[l.Up]+l.Peer)
			r.mu.Unlock()
		},
		Call: func(c trace.Call) {
			r.mu.Lock()
			r.calls = append(r.calls, c)
			r.mu.Unlock()
		},
	}
}

func (r *traceRec) events() (sigs, links []string, calls []trace.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sigs), slices.Clone(r.links), slices.Clone(r.calls)
}

// TestTraceEvents: the MCM's trace tells the story of a call, a refusal
// and the link, in typed events: every Q.2931 message in and out (type
// from the header), the link coming up, and the calls offered, refused,
// connected, failed and released with their causes.
func TestTraceEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}})
		defer w.close()
		var ra, rb traceRec
		a := w.addNode("a", func(c *mcm.Config) { c.Tracer = ra.tracer() })
		b := w.addNode("b", func(c *mcm.Config) { c.Tracer = rb.tracer() })
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
		w.hangUp(cb, vb, ca, va, ndis.StatusSuccess)
		w.deleted(cb, vb)
		ca.DeleteVc(va)
		vx := w.call(ca, q2931.CallParams("b", "nosuch", bestEffort(1000), bestEffort(1000), false))
		ca.DeleteVc(vx)
		w.pause(100 * time.Millisecond)

		sa, la, ka := ra.events()
		_, lb, kb := rb.events()
		for _, want := range []string{"out RESTART", "in RESTART ACKNOWLEDGE", "out SETUP", "in CONNECT", "out CONNECT ACKNOWLEDGE", "in RELEASE", "out RELEASE COMPLETE", "in RELEASE COMPLETE"} {
			if !slices.Contains(sa, want) {
				t.Errorf("a's signalling trace lacks %q: %v", want, sa)
			}
		}
		if !slices.Equal(la, []string{"up b"}) || !slices.Equal(lb, []string{"up a"}) {
			t.Errorf("link events %v and %v, want one up each", la, lb)
		}
		kinds := func(cs []trace.Call) []string {
			var s []string
			for _, c := range cs {
				s = append(s, c.Event.String()+" "+c.Service)
			}
			return s
		}
		if got, want := kinds(ka), []string{"connected echo", "released echo", "failed nosuch"}; !slices.Equal(got, want) {
			t.Fatalf("a's call events %v, want %v", got, want)
		}
		if got, want := kinds(kb), []string{"offered echo", "connected echo", "released echo", "refused nosuch"}; !slices.Equal(got, want) {
			t.Fatalf("b's call events %v, want %v", got, want)
		}
		if c := ka[0]; c.Incoming || c.Peer != "b" || c.VC == "" || c.Setup <= 0 {
			t.Errorf("a's connected event %+v: want outgoing, peer b, a VC and a setup time", c)
		}
		if c := ka[1]; !c.ByPeer || c.Cause != uni.CauseNormalCallClearing || c.Status != ndis.StatusSuccess {
			t.Errorf("a's released event %+v: want by the peer, cause 16, SUCCESS", c)
		}
		if c := ka[2]; c.Cause != uni.CauseIncompatibleDestination || c.Status != ndis.StatusInvalidSap {
			t.Errorf("a's failed event %+v: want cause 88, INVALID_SAP", c)
		}
		if c := kb[2]; c.ByPeer || c.Cause != uni.CauseNormalCallClearing || !c.Incoming {
			t.Errorf("b's released event %+v: want by its own client, cause 16", c)
		}
		if c := kb[3]; c.Cause != uni.CauseIncompatibleDestination || c.Peer != "a" {
			t.Errorf("b's refused event %+v: want cause 88 from a", c)
		}
		// The call reference ties a call's events to its messages: a's
		// call is a's (Local), the same one b was offered.
		if r := ka[0].Ref; !r.Local || r.Ref == 0 || kb[0].Ref != (uni.CallID{Ref: r.Ref}) || ka[1].Ref != r {
			t.Errorf("call references: a connected %v, released %v; b offered %v", r, ka[1].Ref, kb[0].Ref)
		}
		if r := kb[3].Ref; r.Local || r.Ref == 0 || r == kb[0].Ref {
			t.Errorf("b's refusal of a's second call has call reference %v (the first was %v)", r, kb[0].Ref)
		}
	})
}
