package mcm_test

import (
	"bytes"
	"reflect"
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

// vcParams returns the activation parameters the mediator holds for v.
func vcParams(t testing.TB, n *node, v *memdrv.ClientVc) *ndis.CallParameters {
	for _, x := range n.m.Snapshot().Vcs {
		if x.Handle == v.H.String() {
			return x.Params
		}
	}
	t.Fatalf("%s: no VC %v", n.name, v.H)
	return nil
}

// TestModifyQoS: NdisClModifyCallQoS end to end (Q.2963.1 MODIFY REQUEST):
// accepted by the peer (both VCs re-activated with the new parameters, the
// peer's client told), from either end; refused by the peer with cause 37
// (both VCs keep exactly their previous parameters); refused locally when
// it asks for what a MODIFY cannot carry.
func TestModifyQoS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", func(c *mcm.Config) { c.MaxRate = 150_000 })
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		cl := flow(ndis.ServiceControlledLoad, 48_000, 4_800, 96_000, 1000)
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", cl, cl, false))
		modify := capture(w, sim.From("a", sim.MsgType(uni.MsgModifyRequest)))

		// Accepted: the caller doubles its transmit rates.
		p := memdrv.See(ca, func() *ndis.CallParameters { return va.Params.Clone() })
		p.CallMgrParameters.Transmit.TokenRate, p.CallMgrParameters.Transmit.PeakBandwidth = 96_000, 144_000
		if st := ca.ModifyQoS(va, p); st != ndis.StatusPending {
			t.Fatalf("ModifyQoS returned %v", st)
		}
		w.waitFor("QoS change", func() bool { return memdrv.See(ca, func() bool { return va.QoS.Done }) })
		if r := memdrv.See(ca, func() memdrv.Result { return va.QoS }); r.Status != ndis.StatusSuccess || !r.ExactlyOnce() {
			t.Fatalf("ModifyQoS: %v", r)
		}
		if m, ok := modify(); !ok || m.Traffic == nil || !m.Traffic.FwdSCR01.Present || m.Traffic.FwdSCR01.Value != 96_000/48 {
			t.Errorf("MODIFY REQUEST: %+v", m)
		}
		if n := memdrv.See(cb, func() int { return vb.QoSChanges }); n != 1 {
			t.Errorf("callee told of %d QoS change(s), want 1", n)
		}
		if got := vcParams(t, a, va).CallMgrParameters.Transmit; got.TokenRate != 96_000 || got.PeakBandwidth != 144_000 {
			t.Errorf("caller's VC after the change: %+v", got)
		}
		if got := vcParams(t, b, vb).CallMgrParameters.Receive; got.TokenRate != 96_000 || got.PeakBandwidth != 144_000 {
			t.Errorf("callee's VC after the change: %+v", got)
		}

		// Refused by the peer (over its 150 000 B/s limit): nothing changes.
		beforeA, beforeB := vcParams(t, a, va).Clone(), vcParams(t, b, vb).Clone()
		p2 := p.Clone()
		p2.CallMgrParameters.Transmit.PeakBandwidth = 200_000
		ca.ModifyQoS(va, p2)
		w.waitFor("refused QoS change", func() bool { return memdrv.See(ca, func() bool { return va.QoS.Done }) })
		if r := memdrv.See(ca, func() memdrv.Result { return va.QoS }); r.Status != ndis.StatusCellrateNotAvailable || !r.ExactlyOnce() {
			t.Errorf("refused ModifyQoS: %v, want CELLRATE_NOT_AVAILABLE", r)
		}
		if got := vcParams(t, a, va); !reflect.DeepEqual(got, beforeA) {
			t.Errorf("caller's VC changed on a refused change:\n got %+v\nwant %+v", got.CallMgrParameters, beforeA.CallMgrParameters)
		}
		if got := vcParams(t, b, vb); !reflect.DeepEqual(got, beforeB) {
			t.Errorf("callee's VC changed on a refused change:\n got %+v\nwant %+v", got.CallMgrParameters, beforeB.CallMgrParameters)
		}
		if n := memdrv.See(cb, func() int { return vb.QoSChanges }); n != 1 {
			t.Errorf("callee told of %d QoS change(s) after a refused one, want 1", n)
		}

		// Refused locally: a MODIFY cannot change the max SDU size.
		p3 := p.Clone()
		p3.CallMgrParameters.Transmit.MaxSduSize = 500
		if st := ca.ModifyQoS(va, p3); st != ndis.StatusNotSupported {
			t.Errorf("ModifyQoS of MaxSduSize: %v, want NOT_SUPPORTED", st)
		}

		// From the called side: its transmit direction is the call's
		// backward direction.
		q := memdrv.See(cb, func() *ndis.CallParameters { return vb.Params.Clone() })
		q.CallMgrParameters.Transmit.TokenRate = 24_000
		cb.ModifyQoS(vb, q)
		w.waitFor("callee's QoS change", func() bool { return memdrv.See(cb, func() bool { return vb.QoS.Done }) })
		if r := memdrv.See(cb, func() memdrv.Result { return vb.QoS }); r.Status != ndis.StatusSuccess {
			t.Errorf("callee's ModifyQoS: %v", r)
		}
		if got := vcParams(t, a, va).CallMgrParameters.Receive.TokenRate; got != 24_000 {
			t.Errorf("caller's receive token rate %d, want 24000", got)
		}
		if n := memdrv.See(ca, func() int { return va.QoSChanges }); n != 1 {
			t.Errorf("caller told of %d QoS change(s), want 1", n)
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)
	})
}

// TestShaping: a burst beyond the transmit flowspec (controlled load,
// 48 000 B/s, a 4 800-octet bucket, peak 96 000 B/s) is shaped (held back
// to conform) up to MaxShapingDelay (100 ms) and the rest is dropped with
// NDIS_STATUS_RESOURCES; what went out arrives intact.
func TestShaping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "sink")
		tx := flow(ndis.ServiceControlledLoad, 48_000, 4_800, 96_000, 1200)
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "sink", tx, bestEffort(1200), false))

		start := time.Now()
		var burst [][]byte
		for i := range 20 {
			burst = append(burst, payload(1200, byte(i)))
		}
		st := w.send(ca, va, burst...)
		took := time.Since(start)
		ok, dropped := 0, 0 // statuses are in completion order, drops first
		for i, s := range st {
			switch s {
			case ndis.StatusSuccess:
				ok++
			case ndis.StatusResources:
				dropped++
			default:
				t.Errorf("SDU %d: %v", i, s)
			}
		}
		t.Logf("burst of 20: %d sent, %d dropped, last completion after %v", ok, dropped, took)
		// Bucket (4) plus what 100 ms of token rate and peak allow.
		if ok < 6 || ok > 10 || ok+dropped != 20 {
			t.Errorf("%d sent, %d dropped; want 6-10 sent and the rest dropped", ok, dropped)
		}
		if took < 75*time.Millisecond || took > 110*time.Millisecond {
			t.Errorf("the burst took %v to complete; shaping should hold the last conforming SDU about 100 ms", took)
		}
		// The head of the burst went out, in order; the tail was dropped.
		rx := w.received(cb, vb, ok)
		for i := range ok {
			if !bytes.Equal(rx[i], burst[i]) {
				t.Errorf("received SDU %d is not SDU %d of the burst", i, i)
			}
		}
		if s := a.d.Calls()[0].Stats; s.TxShaped == 0 || s.TxDropped != uint64(dropped) || s.TxPackets != uint64(ok) {
			t.Errorf("stats %+v", s)
		}
		// Once the buckets refill, SDUs go out at once again.
		w.pause(time.Second)
		start = time.Now()
		if st := w.send(ca, va, payload(1200, 0)); st[0] != ndis.StatusSuccess || time.Since(start) != 0 {
			t.Errorf("after a pause: %v after %v", st, time.Since(start))
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)
	})
}

// TestMaxSdu: an SDU above the negotiated MaxSduSize, or above what the
// path carries in one datagram, is refused with NDIS_STATUS_INVALID_LENGTH
// and never truncated; an unspecified size is negotiated to the path's
// datagram limit (CALL_PARAMETERS_CHANGED); a size the path cannot carry
// fails the call unless ROUND_DOWN_FLOW allows rounding; reliable VCs
// carry up to 65 535 octets.
func TestMaxSdu(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{}) // sim datagrams carry 1200 octets
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "sink")

		va, vb := w.connect(ca, cb, q2931.CallParams("b", "sink", bestEffort(1000), bestEffort(1000), false))
		if st := w.send(ca, va, payload(1001, 1), payload(1000, 2)); st[0] != ndis.StatusInvalidLength || st[1] != ndis.StatusSuccess {
			t.Errorf("sends of 1001 and 1000 octets with MaxSduSize 1000: %v", st)
		}
		w.received(cb, vb, 1)
		w.pause(10 * time.Millisecond)
		if rx := vb.RxData(); len(rx) != 1 || !bytes.Equal(rx[0], payload(1000, 2)) {
			t.Errorf("callee received %d packet(s); want exactly the 1000-octet one", len(rx))
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)

		// Unspecified: the path's limit.
		p := q2931.CallParams("b", "sink", bestEffort(ndis.QoSNotSpecified), bestEffort(0), false)
		va, vb = w.connect(ca, cb, p)
		got := memdrv.See(ca, func() *ndis.CallParameters { return va.Params })
		if got.Flags&ndis.CallParametersChanged == 0 || got.CallMgrParameters.Transmit.MaxSduSize != 1200 || got.CallMgrParameters.Receive.MaxSduSize != 1200 {
			t.Errorf("negotiated parameters: flags %#x %+v", got.Flags, got.CallMgrParameters)
		}
		if st := w.send(ca, va, payload(1201, 0), payload(1200, 0)); st[0] != ndis.StatusInvalidLength || st[1] != ndis.StatusSuccess {
			t.Errorf("sends of 1201 and 1200 octets: %v", st)
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)

		// More than a datagram carries: refused, or rounded down.
		v := w.call(ca, q2931.CallParams("b", "sink", bestEffort(5000), bestEffort(1000), false))
		if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusAalParamsUnsupported {
			t.Errorf("MaxSduSize 5000 on datagrams: %v, want AAL_PARAMS_UNSUPPORTED", r)
		}
		ca.DeleteVc(v)
		p = q2931.CallParams("b", "sink", bestEffort(5000), bestEffort(1000), false)
		p.MediaParameters = &ndis.MediaParameters{Flags: ndis.RoundDownFlow}
		va, vb = w.connect(ca, cb, p)
		if got := memdrv.See(ca, func() uint32 { return va.Params.CallMgrParameters.Transmit.MaxSduSize }); got != 1200 {
			t.Errorf("rounded-down MaxSduSize %d, want 1200", got)
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)

		// Reliable: large SDUs on the VC's stream, whole.
		va, vb = w.connect(ca, cb, q2931.CallParams("b", "sink", bestEffort(60_000), bestEffort(60_000), true))
		big := payload(60_000, 5)
		if st := w.send(ca, va, payload(60_001, 0), big); st[0] != ndis.StatusInvalidLength || st[1] != ndis.StatusSuccess {
			t.Errorf("reliable sends of 60001 and 60000 octets: %v", st)
		}
		if rx := w.received(cb, vb, 1); !bytes.Equal(rx[0], big) {
			t.Errorf("reliable SDU arrived with %d octets", len(rx[0]))
		}
		if ci := b.d.Calls(); len(ci) != 1 || !ci[0].Reliable {
			t.Errorf("callee's call: %+v", ci)
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)
	})
}

// The two directions of a QUIC path discover their MTU on their own, so the
// caller may offer a larger SDU than the callee's datagrams can carry. The
// callee lowers it in CONNECT's AAL parameters (Q.2931 AAL negotiation) and
// the caller's client sees CALL_PARAMETERS_CHANGED; the call is not refused
// with cause 78. (It was, intermittently, in the two-process test.)
func TestCalleeLowersSduToItsPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		w.net.SetMaxDatagramPayload("a", 1400)
		w.net.SetMaxDatagramPayload("b", 1200)
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "sink")
		p := q2931.CallParams("b", "sink", bestEffort(ndis.QoSNotSpecified), bestEffort(ndis.QoSNotSpecified), false)
		va, vb := w.connect(ca, cb, p)
		got := memdrv.See(ca, func() *ndis.CallParameters { return va.Params })
		if got.Flags&ndis.CallParametersChanged == 0 || got.CallMgrParameters.Transmit.MaxSduSize != 1200 || got.CallMgrParameters.Receive.MaxSduSize != 1200 {
			t.Errorf("caller's negotiated parameters: flags %#x, tx %d, rx %d; want CALL_PARAMETERS_CHANGED and 1200 both ways",
				got.Flags, got.CallMgrParameters.Transmit.MaxSduSize, got.CallMgrParameters.Receive.MaxSduSize)
		}
		if st := w.send(ca, va, payload(1201, 0), payload(1200, 1)); st[0] != ndis.StatusInvalidLength || st[1] != ndis.StatusSuccess {
			t.Errorf("sends of 1201 and 1200 octets: %v", st)
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)
	})
}
