package mcm_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/sim"
	"github.com/condis-project/condis/uni"
)

// Flowspec values that do not divide into 48-octet cells, and what they
// become in whole cells: ⌈v/48⌉·48.
const (
	oddRate, oddRateCells     = 100_001, 100_032 // 2084 cells/s
	oddBucket, oddBucketCells = 10_001, 10_032   // 209 cells
	oddPeak, oddPeakCells     = 200_003, 200_016 // 4167 cells/s
)

func oddFlow(st ndis.ServiceType) ndis.Flowspec {
	switch st {
	case ndis.ServiceNoTraffic:
		return ndis.Flowspec{ServiceType: st}
	case ndis.ServiceBestEffort:
		return flow(st, ndis.QoSNotSpecified, ndis.QoSNotSpecified, oddPeak, 1000)
	}
	return flow(st, oddRate, oddBucket, oddPeak, 1000)
}

// grantedOdd is what both ends must report for oddFlow(st): the values in
// whole cells, what UNI 3.1 does not carry QOS_NOT_SPECIFIED.
func grantedOdd(st ndis.ServiceType) ndis.Flowspec {
	ns := ndis.QoSNotSpecified
	f := ndis.Flowspec{ServiceType: st, TokenRate: oddRateCells, TokenBucketSize: oddBucketCells, PeakBandwidth: oddPeakCells,
		Latency: ns, DelayVariation: ns, MaxSduSize: 1000, MinimumPolicedSize: ns}
	switch st {
	case ndis.ServiceNoTraffic:
		f.TokenRate, f.TokenBucketSize, f.PeakBandwidth, f.MaxSduSize = 0, 0, 0, 0
	case ndis.ServiceBestEffort:
		f.TokenRate, f.TokenBucketSize = ns, ns
	}
	return f
}

// TestFlowspecMapping: every pair of service types a point-to-point call
// can ask for, one SETUP each, checked against docs/protocol.md §6
// "Flowspecs": each direction is the UNI 3.1 combination of traffic
// parameters the table gives, the QoS Parameter is coded as UNI 3.1
// allows (ITU-T 0/0, or ATM Forum classes 1-4 both ways), the bearer
// capability matches, and the AAL parameters carry both SDU sizes (SETUP
// and CONNECT). Both ends then report the same flowspecs: what the SETUP
// signalled, in whole cells, the caller's flagged CALL_PARAMETERS_CHANGED.
func TestFlowspecMapping(t *testing.T) {
	const (
		N = ndis.ServiceNoTraffic
		B = ndis.ServiceBestEffort
		C = ndis.ServiceControlledLoad
		G = ndis.ServiceGuaranteed

		pcr = uni.CombinationPCR01
		scr = uni.CombinationSCR01
		be  = uni.CombinationBestEffort

		itu  = uni.CodingITU
		atmf = uni.CodingNetwork
	)
	type bearer struct{ traffic, timing uint8 }
	none, vbr, cbr := bearer{uni.TrafficNoIndication, uni.TimingNoIndication}, bearer{uni.TrafficVBR, uni.TimingNoIndication},
		bearer{uni.TrafficCBR, uni.TimingRequired}
	for _, tc := range []struct {
		tx, rx           ndis.ServiceType
		fwd, bwd         uni.TrafficCombination
		coding, qfw, qbw uint8
		bc               bearer
	}{
		{N, N, pcr, pcr, itu, 0, 0, none},
		{N, B, be, be, itu, 0, 0, none},
		{N, C, pcr, scr, atmf, 3, 3, vbr},
		{N, G, pcr, scr, atmf, 1, 1, cbr},
		{B, N, be, be, itu, 0, 0, none},
		{B, B, be, be, itu, 0, 0, none},
		{B, C, pcr, scr, atmf, 3, 3, vbr},
		{B, G, pcr, scr, atmf, 1, 1, cbr},
		{C, N, scr, pcr, atmf, 3, 3, vbr},
		{C, B, scr, pcr, atmf, 3, 3, vbr},
		{C, C, scr, scr, atmf, 3, 3, vbr},
		{C, G, scr, scr, atmf, 3, 1, cbr},
		{G, N, scr, pcr, atmf, 1, 1, cbr},
		{G, B, scr, pcr, atmf, 1, 1, cbr},
		{G, C, scr, scr, atmf, 1, 3, cbr},
		{G, G, scr, scr, atmf, 1, 1, cbr},
	} {
		name := map[ndis.ServiceType]string{N: "no-traffic", B: "best-effort", C: "controlled-load", G: "guaranteed"}
		t.Run(name[tc.tx]+"/"+name[tc.rx], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newSimWorld(t, sim.Config{})
				defer w.close()
				a, b := w.addNode("a", nil), w.addNode("b", nil)
				ca, cb := a.client("alice"), b.client("bob")
				b.listen(cb, "echo")
				setup := capture(w, sim.From("a", sim.MsgType(uni.MsgSetup)))
				connect := capture(w, sim.From("b", sim.MsgType(uni.MsgConnect)))

				va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", oddFlow(tc.tx), oddFlow(tc.rx), false))
				m, ok := setup()
				if !ok {
					t.Fatal("no SETUP seen")
				}
				fwd, bwd, err := m.Traffic.Combinations()
				if fwd != tc.fwd || bwd != tc.bwd || err != nil {
					t.Errorf("traffic descriptor %+v: combinations %v / %v (%v), want %v / %v", *m.Traffic, fwd, bwd, err, tc.fwd, tc.bwd)
				}
				if q := m.QoS; q.Instruction.CodingStandard() != tc.coding || q.Forward != tc.qfw || q.Backward != tc.qbw {
					t.Errorf("QoS parameter %+v (coding %d), want coding %d, classes %d/%d", *q, q.Instruction.CodingStandard(), tc.coding, tc.qfw, tc.qbw)
				}
				if bc := m.Bearer; bc.Class != uni.BCOBX || !bc.HasTrafficType || (bearer{bc.TrafficType, bc.Timing}) != tc.bc {
					t.Errorf("bearer capability %+v, want BCOB-X with %+v", *bc, tc.bc)
				}
				// Both sizes, or neither when no direction carries SDUs.
				sizes := tc.tx != N || tc.rx != N
				for _, x := range []struct {
					name string
					m    *uni.Message
					ok   bool
				}{{"SETUP", m, true}, {"CONNECT", nil, false}} {
					if x.m == nil {
						x.m, x.ok = connect()
					}
					if a := x.m.AAL; !x.ok || a == nil || a.FwdMaxSDU.Present != sizes || a.BwdMaxSDU.Present != sizes {
						t.Errorf("%s AAL parameters %+v: want both maximum CPCS-SDU sizes: %v", x.name, a, sizes)
					}
				}

				cp := memdrv.See(ca, func() *ndis.CallParameters { return va.Params.Clone() })
				bp := memdrv.See(cb, func() *ndis.CallParameters { return vb.Params.Clone() })
				wantTx, wantRx := grantedOdd(tc.tx), grantedOdd(tc.rx)
				if got := cp.CallMgrParameters; got.Transmit != wantTx || got.Receive != wantRx {
					t.Errorf("caller's MakeCallComplete:\n tx %+v\n rx %+v\nwant\n tx %+v\n rx %+v", got.Transmit, got.Receive, wantTx, wantRx)
				}
				if cp.Flags&ndis.CallParametersChanged == 0 {
					t.Errorf("caller's MakeCallComplete flags %#x: CALL_PARAMETERS_CHANGED not set", cp.Flags)
				}
				if got := bp.CallMgrParameters; got.Transmit != wantRx || got.Receive != wantTx {
					t.Errorf("callee's flowspecs differ from the caller's:\n tx %+v\n rx %+v\nwant\n tx %+v\n rx %+v", got.Transmit, got.Receive, wantRx, wantTx)
				}
				w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
				ca.DeleteVc(va)
			})
		})
	}
}

// TestGrantedParameters: a flowspec that is signalled exactly comes back
// unflagged; an open rate (POSITIVE_INFINITY_RATE) is read back as
// QOS_NOT_SPECIFIED at both ends and flagged; a QoS change is granted the
// same way; one UNI 3.1 cannot carry is refused with INVALID_DATA, never
// clamped.
func TestGrantedParameters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		ns := ndis.QoSNotSpecified

		// Whole cells, nothing unsignalled specified: granted as asked.
		exact := ndis.Flowspec{ServiceType: ndis.ServiceControlledLoad, TokenRate: 48_000, TokenBucketSize: 4_800, PeakBandwidth: 96_000,
			Latency: ns, DelayVariation: ns, MaxSduSize: 1000, MinimumPolicedSize: ns}
		va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", exact, exact, false))
		cp := memdrv.See(ca, func() *ndis.CallParameters { return va.Params.Clone() })
		if cp.Flags&ndis.CallParametersChanged != 0 || cp.CallMgrParameters.Transmit != exact || cp.CallMgrParameters.Receive != exact {
			t.Errorf("exact flowspecs: flags %#x, %+v", cp.Flags, *cp.CallMgrParameters)
		}

		// A QoS change with an odd rate: the MODIFY REQUEST carries whole
		// cells, the requester's parameters say so (flagged), and both
		// VCs are re-activated with the same flowspecs.
		p := memdrv.See(ca, func() *ndis.CallParameters { return va.Params.Clone() })
		p.CallMgrParameters.Transmit.TokenRate = 48_001 // 1001 cells/s: 48 048 B/s
		if st := ca.ModifyQoS(va, p); st != ndis.StatusPending {
			t.Fatalf("ModifyQoS returned %v", st)
		}
		w.waitFor("QoS change", func() bool { return memdrv.See(ca, func() bool { return va.QoS.Done }) })
		if r := memdrv.See(ca, func() memdrv.Result { return va.QoS }); r.Status != ndis.StatusSuccess {
			t.Fatalf("ModifyQoS: %v", r)
		}
		if got := p.CallMgrParameters.Transmit.TokenRate; got != 48_048 || p.Flags&ndis.CallParametersChanged == 0 {
			t.Errorf("ModifyCallQoSComplete: token rate %d, flags %#x; want 48048, CALL_PARAMETERS_CHANGED", got, p.Flags)
		}
		if tx, rx := vcParams(t, a, va).CallMgrParameters.Transmit, vcParams(t, b, vb).CallMgrParameters.Receive; tx != rx || tx.TokenRate != 48_048 {
			t.Errorf("after the change the caller sends with %+v, the callee receives with %+v", tx, rx)
		}

		// Refused locally, nothing signalled: not signallable.
		for _, tc := range []struct {
			name string
			mod  func(f *ndis.Flowspec)
		}{
			{"900 000 000 B/s", func(f *ndis.Flowspec) { f.TokenRate, f.PeakBandwidth = 900_000_000, 900_000_000 }},
			{"token rate above the peak", func(f *ndis.Flowspec) { f.TokenRate = f.PeakBandwidth + 1 }},
		} {
			q := p.Clone()
			tc.mod(&q.CallMgrParameters.Transmit)
			if st := ca.ModifyQoS(va, q); st != ndis.StatusInvalidData {
				t.Errorf("ModifyQoS with %s: %v, want INVALID_DATA", tc.name, st)
			}
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)

		// An open peak: the SETUP says "no limit", both ends read it as
		// not specified.
		open := bestEffort(1000)
		open.PeakBandwidth = ndis.PositiveInfinityRate
		setup := capture(w, sim.From("a", sim.MsgType(uni.MsgSetup)))
		va, vb = w.connect(ca, cb, q2931.CallParams("b", "echo", open, open, false))
		if m, ok := setup(); !ok || m.Traffic.FwdPCR01 != uni.Some(0xFFFFFF) || m.Traffic.BwdPCR01 != uni.Some(0xFFFFFF) {
			t.Errorf("SETUP for an open peak: %+v", m)
		}
		cp = memdrv.See(ca, func() *ndis.CallParameters { return va.Params.Clone() })
		bp := memdrv.See(cb, func() *ndis.CallParameters { return vb.Params.Clone() })
		if cp.Flags&ndis.CallParametersChanged == 0 || cp.CallMgrParameters.Transmit.PeakBandwidth != ns || bp.CallMgrParameters.Receive != cp.CallMgrParameters.Transmit {
			t.Errorf("open peak: caller %+v (flags %#x), callee %+v", *cp.CallMgrParameters, cp.Flags, *bp.CallMgrParameters)
		}
		w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
		ca.DeleteVc(va)
	})
}

// fakePeer is a node that speaks Q.2931 by hand over transport/sim: it
// sends what a test builds and records what it receives. It answers a
// RESTART and a RELEASE itself, so that the nodes' shutdown ends.
type fakePeer struct {
	w    *world
	name string
	ep   *sim.Endpoint

	mu    sync.Mutex
	links map[string]transport.Link // by peer
	got   []*uni.Message
}

func (w *world) fakePeer(name string) *fakePeer {
	f := &fakePeer{w: w, name: name, links: map[string]transport.Link{}}
	ep, err := w.net.Endpoint(name, f)
	if err != nil {
		w.t.Fatal(err)
	}
	f.ep = ep
	w.closers = append(w.closers, func() { ep.Close() })
	return f
}

func (f *fakePeer) LinkUp(l transport.Link) transport.LinkHandler {
	f.mu.Lock()
	f.links[l.Peer()] = l
	f.mu.Unlock()
	return &transport.LinkFuncs{OnMessage: func(b []byte) { f.received(l, b) }}
}

func (f *fakePeer) received(l transport.Link, b []byte) {
	m, err := uni.Decode(b)
	if err != nil {
		f.w.t.Errorf("%s received a message that does not decode: %v", f.name, err)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, m)
	f.mu.Unlock()
	reply := func(r *uni.Message) {
		if b, err := r.Encode(); err == nil {
			l.Send(b)
		}
	}
	back := uni.CallRef{Value: m.CallRef.Value, Flag: !m.CallRef.Flag}
	switch m.Type {
	case uni.MsgRestart:
		reply(&uni.Message{Type: uni.MsgRestartAck, CallRef: back, ConnectionID: m.ConnectionID, Restart: m.Restart})
	case uni.MsgRelease:
		reply(&uni.Message{Type: uni.MsgReleaseComplete, CallRef: back})
	}
}

// dial makes the link to node.
func (f *fakePeer) dial(node string) {
	if _, err := f.ep.Dial(context.Background(), node); err != nil {
		f.w.t.Fatalf("%s dialling %s: %v", f.name, node, err)
	}
}

// send sends m to node.
func (f *fakePeer) send(node string, m *uni.Message) {
	f.w.t.Helper()
	b, err := m.Encode()
	if err != nil {
		f.w.t.Fatalf("%s: %v", f.name, err)
	}
	f.mu.Lock()
	l := f.links[node]
	f.mu.Unlock()
	if l == nil {
		f.w.t.Fatalf("%s has no link to %s", f.name, node)
	}
	if err := l.Send(b); err != nil {
		f.w.t.Fatalf("%s sending %v: %v", f.name, m.Type, err)
	}
}

// await waits for a message of type mt and returns the first one.
func (f *fakePeer) await(mt uni.MsgType) *uni.Message {
	f.w.t.Helper()
	var m *uni.Message
	f.w.waitFor(fmt.Sprintf("%s to receive %v", f.name, mt), func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, x := range f.got {
			if x.Type == mt {
				m = x
				return true
			}
		}
		return false
	})
	return m
}

// noSCR is what guaranteed service used to send: peak cell rates and
// maximum burst sizes without sustainable rates, no UNI 3.1 combination.
func noSCR() *uni.TrafficDescriptor {
	return &uni.TrafficDescriptor{FwdPCR01: uni.Some(2000), BwdPCR01: uni.Some(2000), FwdMBS01: uni.Some(100), BwdMBS01: uni.Some(100)}
}

// TestUnsupportedTrafficCombination: a SETUP whose traffic descriptor is
// not one of UNI 3.1's combinations of traffic parameters is refused with
// RELEASE COMPLETE cause 73 and offered to nobody; a caller refused with
// cause 73 sees the MakeCall fail with q2931.StatusForCause(73); a MODIFY
// REQUEST outside the combinations gets MODIFY REJECT 73 and changes
// nothing.
func TestUnsupportedTrafficCombination(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newSimWorld(t, sim.Config{})
		defer w.close()
		a, b := w.addNode("a", nil), w.addNode("b", nil)
		ca, cb := a.client("alice"), b.client("bob")
		b.listen(cb, "echo")
		x := w.fakePeer("x")
		x.dial("b")
		setup := func(ref uint32, td *uni.TrafficDescriptor) *uni.Message {
			bhli, _ := uni.ServiceBHLI("echo")
			return &uni.Message{Type: uni.MsgSetup, CallRef: uni.CallRef{Value: ref},
				AAL:     &uni.AALParameters{Type: uni.AAL5, FwdMaxSDU: uni.Some(1000), BwdMaxSDU: uni.Some(1000), SSCS: uni.Some(uni.SSCSNull)},
				Traffic: td, Bearer: &uni.BearerCapability{Class: uni.BCOBX, HasTrafficType: true},
				BHLI: bhli, Called: uni.CalledAESA(b.d.Address()), QoS: &uni.QoSParameter{}}
		}

		// x's SETUP to b with PCR and MBS but no SCR.
		x.send("b", setup(1, noSCR()))
		rc := x.await(uni.MsgReleaseComplete)
		if rc.CallRef != (uni.CallRef{Value: 1, Flag: true}) || causeOf(rc) != uni.CauseUnsupportedTraffic {
			t.Errorf("b answered %+v; want RELEASE COMPLETE cause 73 for call 1", rc)
		}
		if n := len(cb.Incoming()); n != 0 {
			t.Errorf("b's client was offered %d call(s)", n)
		}

		// a's call to x, which refuses it with cause 73.
		v, _ := ca.CreateVc(ca.Af())
		ca.MakeCall(v, q2931.CallParams("x", "echo", bestEffort(1000), bestEffort(1000), false), false)
		in := x.await(uni.MsgSetup)
		x.send("a", &uni.Message{Type: uni.MsgReleaseComplete, CallRef: uni.CallRef{Value: in.CallRef.Value, Flag: true},
			Causes: []uni.CauseIE{uni.NewCause(uni.CauseUnsupportedTraffic)}})
		w.waitFor("MakeCall outcome", func() bool { return memdrv.See(ca, func() bool { return v.Make.Done }) })
		if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != q2931.StatusForCause(uni.CauseUnsupportedTraffic) ||
			r.Status != ndis.StatusIncompatibleQoS || !r.ExactlyOnce() {
			t.Errorf("MakeCall refused with cause 73: %v; want %v (INCOMPATABLE_QOS)", r, q2931.StatusForCause(uni.CauseUnsupportedTraffic))
		}
		ca.DeleteVc(v)

		// x's valid call to b, then a MODIFY REQUEST without SCR.
		x.send("b", setup(2, &uni.TrafficDescriptor{FwdPCR01: uni.Some(2000), BwdPCR01: uni.Some(2000), BestEffort: true}))
		conn := x.await(uni.MsgConnect)
		x.send("b", &uni.Message{Type: uni.MsgConnectAck, CallRef: uni.CallRef{Value: 2}})
		vb := waitIncoming(w, cb, 1)
		w.waitFor("callee connected", func() bool { return memdrv.See(cb, func() bool { return vb.Connected == 1 }) })
		before := vcParams(t, b, vb).Clone()
		x.send("b", &uni.Message{Type: uni.MsgModifyRequest, CallRef: uni.CallRef{Value: 2}, Traffic: noSCR()})
		rej := x.await(uni.MsgModifyReject)
		if rej.CallRef != conn.CallRef || causeOf(rej) != uni.CauseUnsupportedTraffic {
			t.Errorf("b answered the MODIFY REQUEST with %+v; want MODIFY REJECT cause 73", rej)
		}
		if n := memdrv.See(cb, func() int { return vb.QoSChanges }); n != 0 {
			t.Errorf("b's client told of %d QoS change(s)", n)
		}
		if got := vcParams(t, b, vb); !reflect.DeepEqual(got, before) {
			t.Errorf("b's VC changed: %+v, was %+v", *got.CallMgrParameters, *before.CallMgrParameters)
		}
	})
}

// TestCheckFlowspec: what UNI 3.1 can carry passes; anything else gets a
// FlowspecError naming the field, its value and the limit, with the
// status a request is refused with, and one line saying so.
