package mcm_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// capture records the first signalling message match selects.
func capture(w *world, match sim.Match) func() (*uni.Message, bool) {
	h := w.net.DelayNth(match, 1, 0)
	return func() (*uni.Message, bool) {
		m, ok := h.Hit()
		if !ok {
			return nil, false
		}
		msg, err := uni.Decode(m.Data)
		if err != nil {
			w.t.Errorf("captured message does not decode: %v", err)
			return nil, false
		}
		return msg, true
	}
}

func causeOf(m *uni.Message) uni.Cause {
	c, _ := m.Cause()
	return c
}

// TestRefusedCalls: calls that cannot be set up fail through
// MakeCallComplete with the status of the cause the called node sent
// (q2931.StatusForCause), and leave nothing behind on either node.
func TestRefusedCalls(t *testing.T) {
	cases := []struct {
		name    string
		dest    string // node/service
		adjust  func(*mcm.Config)
		accept  func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status
		cause   uni.Cause // in the RELEASE COMPLETE b sends; 0: none expected
		want    ndis.Status
		offered int // calls b's client was offered
	}{
		{name: "unknown service", dest: "b/nosuch", cause: uni.CauseIncompatibleDestination, want: ndis.StatusInvalidSap},
		{name: "ACL", dest: "b/echo", adjust: func(c *mcm.Config) {
			c.Authorize = func(peer, service string) bool { return !(peer == "a" && service == "echo") }
		}, cause: uni.CauseCallRejected, want: ndis.StatusFailure},
		{name: "client rejects", dest: "b/echo", accept: func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status { return ndis.StatusFailure },
			cause: uni.CauseCallRejected, want: ndis.StatusFailure, offered: 1},
		{name: "client rejects with a status", dest: "b/echo", accept: func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status { return ndis.StatusResources },
			cause: uni.CauseResourceUnavailable, want: ndis.StatusResources, offered: 1},
		{name: "over the rate limit", dest: "b/echo", adjust: func(c *mcm.Config) { c.MaxRate = 1_000_000 },
			cause: uni.CauseCellRateUnavailable, want: ndis.StatusCellrateNotAvailable},
		{name: "client changes the traffic", dest: "b/echo", accept: func(v *memdrv.ClientVc, p *ndis.CallParameters) ndis.Status {
			p.CallMgrParameters.Transmit.PeakBandwidth /= 2
			p.Flags |= ndis.CallParametersChanged
			return ndis.StatusSuccess
		}, cause: uni.CauseQoSUnavailable, want: ndis.StatusIncompatibleQoS, offered: 1},
		{name: "unknown node", dest: "zz/echo", want: ndis.StatusInvalidAddress},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newSimWorld(t, sim.Config{})
				defer w.close()
				a, b := w.addNode("a", nil), w.addNode("b", tc.adjust)
				ca, cb := a.client("alice"), b.client("bob")
				cb.Accept = tc.accept
				b.listen(cb, "echo")
				rc := capture(w, sim.From("b", sim.MsgType(uni.MsgReleaseComplete)))

				node, svc, _ := cut(tc.dest)
				v := w.call(ca, q2931.CallParams(node, svc, bestEffort(1000), bestEffort(1000), false))
				if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != tc.want || r.Returned != ndis.StatusPending {
					t.Errorf("MakeCall: %v; want PENDING then %v", r, tc.want)
				}
				if tc.cause != 0 {
					m, ok := rc()
					if !ok || causeOf(m) != tc.cause {
						t.Errorf("b's RELEASE COMPLETE: %+v; want cause %v", m, tc.cause)
					}
				}
				if n := len(cb.Incoming()); n != tc.offered {
					t.Errorf("b's client was offered %d call(s), want %d", n, tc.offered)
				}
				for _, in := range cb.Incoming() {
					w.deleted(cb, in)
					if tc.want == ndis.StatusIncompatibleQoS {
						n, st := memdrv.See(cb, func() int { return in.CloseIndicated }), memdrv.See(cb, func() ndis.Status { return in.CloseStatus })
						if n != 1 || st != ndis.StatusIncompatibleQoS {
							t.Errorf("callee: %d incoming close(s) with %v; want 1 with INCOMPATABLE_QOS", n, st)
						}
					}
				}
				if st := ca.DeleteVc(v); st != ndis.StatusSuccess {
					t.Errorf("DeleteVc: %v", st)
				}
				if n := len(a.d.Calls()) + len(b.d.Calls()); n != 0 {
					t.Errorf("%d call(s) left", n)
				}
			})
		})
	}
}

func cut(dest string) (string, string, bool) {
	for i := range dest {
		if dest[i] == '/' {
			return dest[:i], dest[i+1:], true
		}
	}
	return dest, "", false
}

// TestRefusedAtOnce: requests the MCM can judge without signalling fail
// synchronously.
func TestRefusedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a := w.addNode("a", func(c *mcm.Config) {
			c.MaxRate = 100_000
			c.Trusts = func(peer string) bool { return peer != "mallory" }
		})
		ca := a.client("alice")
		v, _ := ca.CreateVc(ca.Af())
		bad := &ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{Transmit: bestEffort(100), Receive: bestEffort(100)}}
		for _, tc := range []struct {
			name   string
			params *ndis.CallParameters
			want   ndis.Status
		}{
			{"no destination", bad, ndis.StatusInvalidAddress},
			{"itself", q2931.CallParams("a", "echo", bestEffort(100), bestEffort(100), false), ndis.StatusNoRouteToDestination},
			{"a node it does not trust (Config.Trusts)", q2931.CallParams("mallory", "echo", bestEffort(100), bestEffort(100), false), ndis.StatusInvalidAddress},
			{"service name too long", q2931.CallParams("b", "ninechars", bestEffort(100), bestEffort(100), false), ndis.StatusInvalidAddress},
			{"service type", q2931.CallParams("b", "echo", flow(ndis.ServiceNetworkControl, 1, 1, 1, 100), bestEffort(100), false), ndis.StatusNotSupported},
			{"rate", q2931.CallParams("b", "echo", flow(ndis.ServiceControlledLoad, 200_000, 4800, 200_000, 100), bestEffort(100), false), ndis.StatusCellrateNotAvailable},
			// What UNI 3.1 cannot carry is refused, never clamped.
			{"peak of 900 000 000 B/s", q2931.CallParams("b", "echo", flow(ndis.ServiceBestEffort, ndis.QoSNotSpecified, ndis.QoSNotSpecified, 900_000_000, 100), bestEffort(100), false), ndis.StatusInvalidData},
			{"receive rate of 900 000 000 B/s", q2931.CallParams("b", "echo", bestEffort(100), flow(ndis.ServiceGuaranteed, 900_000_000, 4800, ndis.QoSNotSpecified, 100), false), ndis.StatusInvalidData},
			{"one octet/s over the largest", q2931.CallParams("b", "echo", flow(ndis.ServiceControlledLoad, 100, 4800, q2931.MaxFlowspecValue+1, 100), bestEffort(100), false), ndis.StatusInvalidData},
			{"bucket over the largest", q2931.CallParams("b", "echo", flow(ndis.ServiceControlledLoad, 100, q2931.MaxFlowspecValue+1, 200, 100), bestEffort(100), false), ndis.StatusInvalidData},
			{"token rate above the peak", q2931.CallParams("b", "echo", flow(ndis.ServiceControlledLoad, 50_001, 4800, 50_000, 100), bestEffort(100), false), ndis.StatusInvalidData},
			{"peak of 0", q2931.CallParams("b", "echo", flow(ndis.ServiceBestEffort, ndis.QoSNotSpecified, ndis.QoSNotSpecified, 0, 100), bestEffort(100), false), ndis.StatusInvalidData},
		} {
			if _, st := ca.MakeCall(v, tc.params, false); st != tc.want {
				t.Errorf("%s: MakeCall returned %v, want %v", tc.name, st, tc.want)
			}
		}
		// SAP registration: the name must fit a BHLI.
		s := ca.RegisterSap(ca.Af(), "ninechars")
		if st := memdrv.See(ca, func() ndis.Status { return s.Register.Status }); st != ndis.StatusInvalidData {
			t.Errorf("registering a 9-octet service: %v, want INVALID_DATA", st)
		}
		s = ca.RegisterSap(ca.Af(), "echo")
		if st := memdrv.See(ca, func() ndis.Status { return s.Register.Status }); st != ndis.StatusSuccess {
			t.Errorf("registering echo: %v", st)
		}
		s2 := ca.RegisterSap(ca.Af(), "echo")
		if st := memdrv.See(ca, func() ndis.Status { return s2.Register.Status }); st != ndis.StatusSapInUse {
			t.Errorf("registering echo twice: %v, want SAP_IN_USE", st)
		}
		ca.DeleteVc(v)
	})
}

// TestCalleeHangsUp: the called side closes; the caller is told with
// NDIS_STATUS_SUCCESS, answers with its own close, and the caller's VC can
// carry a new call afterwards (permissive reuse).
func TestCalleeHangsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{Signal: sim.SignalConfig{Delay: 5 * time.Millisecond}})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		ca.CloseLater = true // answer the incoming close from the Loop
		b.listen(cb, "echo")
		params := q2931.CallParams("b", "echo", bestEffort(500), bestEffort(500), false)
		va, vb := w.connect(ca, cb, params)
		w.hangUp(cb, vb, ca, va, ndis.StatusSuccess)
		w.deleted(cb, vb)

		// The VC carries another call.
		ca.MakeCall(va, q2931.CallParams("b", "echo", bestEffort(500), bestEffort(500), false), false)
		w.waitFor("second call", func() bool { return memdrv.See(ca, func() bool { return va.Make.Done }) })
		if st := memdrv.See(ca, func() ndis.Status { return va.Make.Status }); st != ndis.StatusSuccess {
			t.Fatalf("second MakeCall: %v", st)
		}
		w.waitFor("second incoming", func() bool { return len(cb.Incoming()) == 2 })
		vb2 := cb.LastIncoming()
		w.hangUp(ca, va, cb, vb2, ndis.StatusSuccess)
		ca.DeleteVc(va)
	})
}

// TestCalleeLowersMaxSdu: the callee's client may lower the max SDU sizes
// of an offered call; the CONNECT carries them back and the caller's
// MakeCallComplete shows them with CALL_PARAMETERS_CHANGED.
func TestCalleeLowersMaxSdu(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		cb.Accept = func(v *memdrv.ClientVc, p *ndis.CallParameters) ndis.Status {
			p.CallMgrParameters.Receive.MaxSduSize = 300
			p.CallMgrParameters.Transmit.MaxSduSize = 200
			p.Flags |= ndis.CallParametersChanged
			return ndis.StatusSuccess
		}
		b.listen(cb, "echo")
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
		p := memdrv.See(ca, func() *ndis.CallParameters { return va.Params })
		if p.Flags&ndis.CallParametersChanged == 0 || p.CallMgrParameters.Transmit.MaxSduSize != 300 || p.CallMgrParameters.Receive.MaxSduSize != 200 {
			t.Errorf("caller's parameters: flags %#x, %+v", p.Flags, p.CallMgrParameters)
		}
		if st := w.send(ca, va, payload(301, 0), payload(300, 0)); st[0] != ndis.StatusInvalidLength || st[1] != ndis.StatusSuccess {
			t.Errorf("caller sends of 301 and 300 octets: %v", st)
		}
		if st := w.send(cb, vb, payload(201, 0), payload(200, 0)); st[0] != ndis.StatusInvalidLength || st[1] != ndis.StatusSuccess {
			t.Errorf("callee sends of 201 and 200 octets: %v", st)
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)
	})
}

// TestCallerGivesUp: the callee's client pends its answer and does not
// give it in time; the callee's MCM sent CALL PROCEEDING, so the caller
// waits T310, then clears (RELEASE 102) and its MakeCall fails; the
// callee's client is told the offered call closed, and its late answer is
// taken without effect before the MCM deletes the VC.
func TestCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		cb.SetMode(memdrv.Pend)
		b.paused = true
		start := time.Now()
		v := w.call(ca, q2931.CallParams("b", "echo", bestEffort(100), bestEffort(100), false))
		if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusFailure {
			t.Errorf("MakeCall: %v, want FAILURE (cause 102)", r)
		}
		if took := time.Since(start); took < w.timers.T310 || took > w.timers.T310+time.Second {
			t.Errorf("gave up after %v, want T310 (%v)", took, w.timers.T310)
		}
		in := cb.LastIncoming()
		w.waitFor("callee told", func() bool { return memdrv.See(cb, func() bool { return in.Close.Done }) })
		if n, st := memdrv.See(cb, func() int { return in.CloseIndicated }), memdrv.See(cb, func() ndis.Status { return in.CloseStatus }); n != 1 || st != ndis.StatusFailure {
			t.Errorf("callee: %d incoming close(s) with %v", n, st)
		}
		w.pause(time.Second)
		if memdrv.See(cb, func() bool { return in.Deleted }) {
			t.Errorf("VC deleted while its offer was unanswered")
		}
		b.paused = false
		w.deleted(cb, in)
		if r := memdrv.See(cb, func() memdrv.Result { return in.Answer }); !r.ExactlyOnce() {
			t.Errorf("answer: %v", r)
		}
		ca.DeleteVc(v)
	})
}
