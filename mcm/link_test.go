package mcm_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
)

// TestNodeLost: the path to the far node breaks for good mid-call (sim
// Cut, never restored). The transport notices after its detection timeout
// (1 s here); active calls are kept for T309 (10 s) while the MCM redials
// in vain; then each side's client gets IncomingCloseCall with
// NDIS_STATUS_DEST_OUT_OF_ORDER. Meanwhile sends fail and the clients are
// told MEDIA_DISCONNECT.
func TestNodeLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{DetectTimeout: time.Second})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))

		start := time.Now()
		w.net.Cut("a", "b")
		w.pause(2 * time.Second) // the loss is detected after 1 s
		if st := w.send(ca, va, payload(10, 0)); st[0] != ndis.StatusFailure {
			t.Errorf("send while the link is down: %v, want FAILURE", st)
		}
		for _, c := range []*memdrv.Client{ca, cb} {
			if !slices.Contains(c.StatusIndications(), ndis.StatusMediaDisconnect) {
				t.Errorf("%s was not told MEDIA_DISCONNECT: %v", c.Name, c.StatusIndications())
			}
		}
		if n := memdrv.See(ca, func() int { return va.CloseIndicated }); n != 0 {
			t.Fatalf("call closed before T309")
		}
		w.closedByNetwork(ca, va, ndis.StatusDestOutOfOrder)
		took := time.Since(start)
		w.closedByNetwork(cb, vb, ndis.StatusDestOutOfOrder)
		t.Logf("closed %v after the cut (detection 1 s + T309 %v)", took, w.timers.T309)
		if want := time.Second + w.timers.T309; took < want || took > want+100*time.Millisecond {
			t.Errorf("closed %v after the cut, want %v", took, want)
		}
		w.deleted(cb, vb)
		ca.DeleteVc(va)
	})
}

// TestLinkBackWithinT309: the path breaks and comes back before T309
// expires; the MCM redials, the signalling audits the call (STATUS
// ENQUIRY) and the call survives: no close is indicated even after T309
// would have expired, MEDIA_CONNECT follows MEDIA_DISCONNECT, data flows
// again both ways.
func TestLinkBackWithinT309(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{DetectTimeout: time.Second})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))

		w.net.Cut("a", "b")
		w.pause(4 * time.Second) // down after 1 s
		w.net.Restore("a", "b")
		w.pause(2 * w.timers.T309)
		for _, x := range []struct {
			c *memdrv.Client
			v *memdrv.ClientVc
		}{{ca, va}, {cb, vb}} {
			if n := memdrv.See(x.c, func() int { return x.v.CloseIndicated }); n != 0 {
				t.Errorf("%s: the call was closed", x.c.Name)
			}
			st := x.c.StatusIndications()
			if len(st) != 2 || st[0] != ndis.StatusMediaDisconnect || st[1] != ndis.StatusMediaConnect {
				t.Errorf("%s: status indications %v, want MEDIA_DISCONNECT, MEDIA_CONNECT", x.c.Name, st)
			}
		}
		p := payload(700, 4)
		if st := w.send(ca, va, p); st[0] != ndis.StatusSuccess {
			t.Errorf("send after the link came back: %v", st)
		}
		if rx := w.received(cb, vb, 1); !bytes.Equal(rx[0], p) {
			t.Errorf("data after the link came back differs")
		}
		if st := w.send(cb, vb, p); st[0] != ndis.StatusSuccess {
			t.Errorf("send back: %v", st)
		}
		w.received(ca, va, 1)
		if ci := a.d.Calls(); len(ci) != 1 || ci[0].State != "active" {
			t.Errorf("a's calls: %+v", ci)
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)
	})
}

// TestSetupFailsOnLinkLoss: a call not yet active when the link fails is
// cleared at once (not kept for T309): the MakeCall fails with
// DEST_OUT_OF_ORDER (cause 27).
func TestSetupFailsOnLinkLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{DetectTimeout: time.Second})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		cb.SetMode(memdrv.Pend)
		cb.Accept = func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status {
			w.net.Cut("a", "b") // the answer will never reach a
			return ndis.StatusSuccess
		}
		b.listen(cb, "echo")
		start := time.Now()
		v := w.call(ca, q2931.CallParams("b", "echo", bestEffort(100), bestEffort(100), false))
		if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusDestOutOfOrder {
			t.Errorf("MakeCall: %v, want DEST_OUT_OF_ORDER", r)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("failed after %v: kept like an active call?", took)
		}
		in := cb.LastIncoming()
		w.closedByNetwork(cb, in, ndis.StatusDestOutOfOrder)
		w.deleted(cb, in)
		ca.DeleteVc(v)
		w.net.Restore("a", "b")
	})
}

// TestShutdownReleasesCalls: a node shutting down releases its calls with
// normal clearing: the peer's client sees NDIS_STATUS_SUCCESS; its own
// clients are told to close the AF, and the adapter goes once they unbind.
func TestShutdownReleasesCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		ca.Accept = nil
		a.listen(ca, "back")
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(100), bestEffort(100), false))
		wb, wa := w.connect(cb, ca, q2931.CallParams("a", "back", bestEffort(100), bestEffort(100), false))

		errc := make(chan error, 1)
		go func() { errc <- a.d.Shutdown(context.Background()) }()
		w.closedByNetwork(cb, vb, ndis.StatusSuccess)
		w.closedByNetwork(cb, wb, ndis.StatusSuccess)
		af := ca.Af()
		w.waitFor("alice closed the AF", func() bool { return memdrv.See(ca, func() bool { return af.Close.Done }) })
		_, _ = va, wa
		if st := ca.Unbind(); st != ndis.StatusSuccess {
			t.Errorf("unbind: %v", st)
		}
		a.clients = nil // unbound already
		var err error
		w.waitFor("shutdown", func() bool {
			select {
			case err = <-errc:
				return true
			default:
				return false
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if s := a.m.Snapshot(); len(s.Adapters)+len(s.Afs)+len(s.Vcs)+len(s.Saps) != 0 {
			t.Errorf("a's mediator after shutdown: %+v", s)
		}
		cb.DeleteVc(wb)
		// A call to the node that shut down fails.
		v := w.call(cb, q2931.CallParams("a", "back", bestEffort(100), bestEffort(100), false))
		if r := memdrv.See(cb, func() memdrv.Result { return v.Make }); r.Status == ndis.StatusSuccess {
			t.Errorf("call to a node that shut down: %v", r)
		}
		cb.DeleteVc(v)
	})
}
