package cm_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// refusalLog records when a split node refused calls, by peer.
type refusalLog struct {
	mu    sync.Mutex
	times map[string][]time.Time
}

func (r *refusalLog) call(e trace.Call) {
	if e.Event != trace.CallRefused {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.times == nil {
		r.times = map[string][]time.Time{}
	}
	r.times[e.Peer] = append(r.times[e.Peer], e.Time)
}

func (r *refusalLog) of(peer string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.times[peer]...)
}

// floodHosts makes a split node with Config.RefusalRate rate, recording
// the calls it refuses, and an integrated node to flood it.
func floodHosts(t *testing.T, net *sim.Network, rate int) (split, flooder *host, refused *refusalLog) {
	refused = &refusalLog{}
	split = newHostOpts(t, net, "split", hostOpts{split: true, refusalRate: rate, tracer: trace.Tracer{Call: refused.call}})
	return split, newHost(t, net, "flood", false), refused
}

// TestRefusedCallsArePacedSplit (issue 8 item 1, issue 9 item 6): a peer
// (an integrated node) floods a split node with SETUPs to a service that
// does not exist. The split node refuses each exactly once (RELEASE
// COMPLETE, cause 88), but takes the flooder's signalling at
// Config.RefusalRate once the free burst is spent: counted per virtual
// second, the flooder gets no more than a burst plus the rate in the first
// second and the rate in each after, and its miniport drops none of the
// flooder's messages (they wait in the transport). Meanwhile an honest peer's call to
// the same split node connects and carries data. No contract violation,
// no illegal VC move, nothing left in any mediator.
func TestRefusedCallsArePacedSplit(t *testing.T) {
	const rate, n = 20, 60
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{DetectTimeout: time.Second, Signal: sim.SignalConfig{Delay: time.Millisecond}})
		defer net.Close()
		s, flooder, refused := floodHosts(t, net, rate)
		honest := newHost(t, net, "honest", false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l := newListener(false)
		sap, err := s.client.Listen(ctx, "svc", l)
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		// Both links up before the flood, so that only the pacing spaces
		// the refusals out.
		warm := newRecorder()
		wv, err := flooder.client.Call(ctx, "split/svc", clientcore.CallOptions{Tx: flow(), Rx: flow()}, warm)
		if err != nil {
			t.Fatalf("flood -> split/svc before the flood: %v", err)
		}
		<-l.offered
		<-l.rec
		if st := closeAndWait(t, wv); st != ndis.StatusSuccess {
			t.Fatalf("close before the flood: %v", st)
		}

		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, errs[i] = flooder.client.Call(ctx, "split/nosuch", clientcore.CallOptions{Tx: flow(), Rx: flow()}, newRecorder())
			})
		}
		// The honest peer calls while the flood is on.
		time.Sleep(10 * time.Millisecond)
		rec := newRecorder()
		hv, err := honest.client.Call(ctx, "split/svc", clientcore.CallOptions{Tx: flow(), Rx: flow()}, rec)
		if err != nil {
			t.Fatalf("honest -> split/svc during the flood: %v", err)
		}
		in, inRec := <-l.offered, <-l.rec
		if err := hv.Send([]byte("honest")); err != nil {
			t.Fatalf("honest send: %v", err)
		}
		waitUntil(t, "the honest call's data", func() bool { return len(inRec.received()) == 1 })
		wg.Wait()

		for i, err := range errs {
			var ce *clientcore.CallError
			if !errors.As(err, &ce) || ce.Cause != uni.CauseIncompatibleDestination {
				t.Errorf("flood call %d: %v, want a refusal with cause 88", i, err)
			}
		}
		times := refused.of("flood")
		if len(times) != n {
			t.Fatalf("the split node refused %d of the flooder's calls, want each of %d once", len(times), n)
		}
		perSecond := map[int]int{}
		for _, at := range times {
			perSecond[int(at.Sub(times[0])/time.Second)]++
		}
		for sec, got := range perSecond {
			limit := rate
			if sec == 0 {
				limit = 2 * rate // the free burst, then the rate
			}
			if got > limit {
				t.Errorf("second %d of the flood: %d refusals, want at most %d (RefusalRate %d/s)", sec, got, limit, rate)
			}
		}
		if span, want := times[n-1].Sub(times[0]), time.Duration(n-2*rate)*time.Second/rate; span < want {
			t.Errorf("%d refusals took %v, want at least %v at %d a second", n, span, want, rate)
		}
		if d := s.mp.Stats().SignallingDropped; d != 0 {
			t.Errorf("the split node's miniport dropped %d signalling messages: the flood was held back by loss, not by pacing", d)
		}
		if got := refused.of("honest"); len(got) != 0 {
			t.Errorf("the honest peer's calls were refused %d times", len(got))
		}

		if st := closeAndWait(t, hv); st != ndis.StatusSuccess {
			t.Errorf("close of the honest call: %v", st)
		}
		<-inRec.closed
		_ = in
		sap.Close(clientcore.ReasonLocal)
		for _, h := range []*host{s, flooder, honest} {
			waitUntil(t, h.name+": no call VC left", func() bool { return len(h.callVCs()) == 0 })
		}
		for _, h := range []*host{s, flooder, honest} {
			h.finish()
		}
	})
}

// TestShutdownDuringPacedFlood: a split node shut down while it takes a
// flooding peer's signalling slowly does not wait for the pacing: the
// waiting reader (a second per refused call, at one a second) gives up at
// once, Shutdown returns within half a second (virtual), and nothing is
// left in the mediator.
func TestShutdownDuringPacedFlood(t *testing.T) {
	const rate, n = 1, 20
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{DetectTimeout: time.Second, Signal: sim.SignalConfig{Delay: time.Millisecond}})
		defer net.Close()
		s, flooder, refused := floodHosts(t, net, rate)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				flooder.client.Call(ctx, "split/nosuch", clientcore.CallOptions{Tx: flow(), Rx: flow()}, newRecorder())
			})
		}
		waitUntil(t, "the flood paced", func() bool { return len(refused.of("flood")) > 2*rate })
		start := time.Now()
		s.finish()
		if d := time.Since(start); d >= time.Second/2 {
			t.Errorf("shutting the split node down during a paced flood took %v, want under half a second", d)
		}
		if got := len(refused.of("flood")); got >= n {
			t.Errorf("all %d flood calls were refused before the shutdown: the flood was not paced", got)
		}
		wg.Wait()
		flooder.finish()
	})
}
