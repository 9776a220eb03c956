package mcm_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// TestTraceAcceptedCallClosed: an incoming call its client accepts and
// then closes before it connected (the CONNECT ACKNOWLEDGE still on its
// way) is traced as offered, then released by this node with cause 16:
// every offered call gets an end, so a consumer that follows calls from
// their offer (the metrics' incoming calls) is never left holding one.
func TestTraceAcceptedCallClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Signal: sim.SignalConfig{Delay: 10 * time.Millisecond}})
		defer w.close()
		var rb traceRec
		a := w.addNode("a", nil)
		b := w.addNode("b", func(c *mcm.Config) { c.Tracer = rb.tracer() })
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		va, st := ca.CreateVc(ca.Af())
		if st != ndis.StatusSuccess {
			t.Fatalf("CreateVc: %v", st)
		}
		ca.MakeCall(va, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false), false)
		w.waitFor("the call offered and accepted", func() bool {
			in := cb.Incoming()
			return len(in) == 1 && memdrv.See(cb, func() bool { return in[0].Answer.Done })
		})
		// The client's answer is known inside its ProtocolClIncomingCall;
		// the mediator takes it once the handler has returned. Closing
		// before then would be the test's own R-IN-3: let the bubble
		// settle (virtual time stands still, so the CONNECT ACKNOWLEDGE,
		// 10 ms away, does not come meanwhile).
		synctest.Wait()
		vb := cb.LastIncoming()
		if n := memdrv.See(cb, func() int { return vb.Connected }); n != 0 {
			t.Fatalf("the callee's call connected already (%d); the test needs it accepted only", n)
		}
		cb.CloseCall(vb)
		w.waitFor("callee's close completed", func() bool { return memdrv.See(cb, func() bool { return vb.Close.Done }) })
		w.waitFor("caller's MakeCall finished", func() bool { return memdrv.See(ca, func() bool { return va.Make.Done }) })
		if memdrv.See(ca, func() bool { return va.Make.Status == ndis.StatusSuccess }) {
			w.closedByNetwork(ca, va, ndis.StatusSuccess)
		}
		ca.DeleteVc(va)
		w.deleted(cb, vb)

		_, _, kb := rb.events()
		var got []string
		for _, c := range kb {
			got = append(got, c.Event.String())
		}
		if want := []string{"offered", "released"}; !slices.Equal(got, want) {
			t.Fatalf("b's call events %v, want %v", got, want)
		}
		if c := kb[1]; c.ByPeer || !c.Incoming || c.Cause != uni.CauseNormalCallClearing || c.Event != trace.CallReleased {
			t.Errorf("b's released event %+v: want incoming, by its own client, cause 16", c)
		}
	})
}
