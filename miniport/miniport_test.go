package miniport_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/sim"
)

var open = miniport.Traffic{} // no buckets, no SDU limit of the VC's own

// exchange runs the main scenario between a and b (b's CM activates a
// signalling VC for every peer that connects, from its link-up
// indication): a's CM activates a signalling VC for b, which dials (the
// activation pends), b's for a completes at once inside the link-up;
// Q.2931-sized messages both ways; a datagram and a reliable data VC, SDUs
// both ways; everything deactivated and deleted. settle, if not nil, waits
// until nothing runs (synctest.Wait): the deactivations must then complete
// at once.
func exchange(t *testing.T, a, b *node, maxDatagram int, settle func()) {
	var bSig *tvc
	// Under the CM's lock: over QUIC, the only order between this write and
	// b's link-up is through the network, which the race detector does
	// not see.
	b.cm.mu.Lock()
	b.cm.onLink = func(e miniport.LinkEvent) {
		if !e.Up {
			return
		}
		bSig = b.cm.createVc("b-sig")
		// Inside ProtocolCoStatusEx: the link is up, nothing is held, so
		// the activation completes at once.
		if ret, _ := b.cm.activate(bSig, sig(e.Peer)); ret != ndis.StatusSuccess {
			t.Errorf("b's signalling VC for %s: NdisCmActivateVc returned %v, want SUCCESS at once", e.Peer, ret)
		}
	}
	b.cm.mu.Unlock()

	aSig := a.cm.createVc("a-sig")
	a.cm.mustActivate(aSig, sig(b.name), ndis.StatusPending) // no link yet: dials

	for _, n := range []*node{a, b} {
		e := n.cm.event()
		peer := map[*node]string{a: b.name, b: a.name}[n]
		if !e.Up || e.Peer != peer || e.Incarnation == 0 || e.Reason != 0 {
			t.Fatalf("%s: link event %+v, want up to %s with an incarnation", n.name, e, peer)
		}
	}

	// Signalling both ways, in order, sizes up to the largest message.
	msgs := [][]byte{q2931(transport.MinMessageLen, 1), q2931(120, 2), q2931(1500, 3), q2931(transport.MaxMessageLen, 4)}
	if st := a.cm.send(aSig, msgs...); !allSuccess(st) {
		t.Fatalf("a's signalling sends: %v", st)
	}
	for i, m := range b.cm.received(bSig, len(msgs)) {
		if !bytes.Equal(m, msgs[i]) {
			t.Errorf("b got message %d of %d octets, want %d octets as sent", i, len(m), len(msgs[i]))
		}
	}
	if st := b.cm.send(bSig, msgs[1], msgs[0]); !allSuccess(st) {
		t.Fatalf("b's signalling sends: %v", st)
	}
	if got := a.cm.received(aSig, 2); !bytes.Equal(got[0], msgs[1]) || !bytes.Equal(got[1], msgs[0]) {
		t.Errorf("a got the wrong messages")
	}

	// Data VCs: one datagram, one reliable, activated at once (link up).
	const dgConn, relConn = 0x00010020, 0x00010021
	aDg, bDg := a.cm.createVc("a-dg"), b.cm.createVc("b-dg")
	aRel, bRel := a.cm.createVc("a-rel"), b.cm.createVc("b-rel")
	a.cm.mustActivate(aDg, data(miniport.Datagram, b.name, dgConn, open, open), ndis.StatusSuccess)
	b.cm.mustActivate(bDg, data(miniport.Datagram, a.name, dgConn, open, open), ndis.StatusSuccess)
	a.cm.mustActivate(aRel, data(miniport.Reliable, b.name, relConn, open, open), ndis.StatusSuccess)
	b.cm.mustActivate(bRel, data(miniport.Reliable, a.name, relConn, open, open), ndis.StatusSuccess)

	dg := [][]byte{sdu(maxDatagram, 1), sdu(1, 2), sdu(500, 3)}
	if st := a.cm.send(aDg, dg...); !allSuccess(st) {
		t.Fatalf("datagram sends a->b: %v", st)
	}
	got := b.cm.received(bDg, len(dg))
	for _, d := range dg {
		if !slices.ContainsFunc(got, func(g []byte) bool { return bytes.Equal(g, d) }) {
			t.Errorf("datagram of %d octets not received", len(d))
		}
	}
	if st := b.cm.send(bDg, dg[2]); !allSuccess(st) {
		t.Fatalf("datagram send b->a: %v", st)
	}
	if g := a.cm.received(aDg, 1); !bytes.Equal(g[0], dg[2]) {
		t.Errorf("datagram b->a differs")
	}

	rel := [][]byte{sdu(100_000, 4), sdu(3, 5), sdu(70_000, 6)}
	if st := a.cm.send(aRel, rel...); !allSuccess(st) {
		t.Fatalf("reliable sends a->b: %v", st)
	}
	for i, g := range b.cm.received(bRel, len(rel)) {
		if !bytes.Equal(g, rel[i]) {
			t.Errorf("reliable SDU %d: %d octets, want %d as sent, in order", i, len(g), len(rel[i]))
		}
	}
	if st := b.cm.send(bRel, rel[1]); !allSuccess(st) {
		t.Fatalf("reliable send b->a: %v", st)
	}
	if g := a.cm.received(aRel, 1); !bytes.Equal(g[0], rel[1]) {
		t.Errorf("reliable b->a differs")
	}

	if s := a.cm.vcStats(aRel); s.TxPackets != 3 || s.TxBytes != 170_003 || s.RxPackets != 1 || s.RxBytes != 3 {
		t.Errorf("a's reliable VC counters %+v", s)
	}

	// Nothing in flight: every deactivation succeeds, at once once the
	// miniport has settled. (A send is uncounted from in flight just after
	// its completion is indicated, so without settling a deactivation right
	// behind it may pend for that instant.)
	if settle != nil {
		settle()
	}
	for _, c := range []struct {
		cm *testCM
		v  *tvc
	}{{a.cm, aDg}, {b.cm, bDg}, {a.cm, aRel}, {b.cm, bRel}, {a.cm, aSig}, {b.cm, bSig}} {
		ret, fin := c.cm.deactivate(c.v)
		if (ret != ndis.StatusSuccess && (settle != nil || ret != ndis.StatusPending)) || fin != ndis.StatusSuccess {
			t.Errorf("deactivate %s: returned %v, final %v; want SUCCESS (at once when settled)", c.v.name, ret, fin)
		}
		c.cm.teardown(c.v, false)
	}
}

func allSuccess(sts []ndis.Status) bool {
	for _, st := range sts {
		if st != ndis.StatusSuccess {
			return false
		}
	}
	return true
}

// TestExchangeSim: the main scenario over transport/sim.
func TestExchangeSim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}, Datagram: sim.DatagramConfig{Delay: time.Millisecond}})
		defer net.Close()
		a, b := simNode(t, net, "a", miniport.Config{}), simNode(t, net, "b", miniport.Config{})
		exchange(t, a, b, sim.DefaultMaxDatagramPayload, synctest.Wait)
		a.finish()
		b.finish()
	})
}

// simPair is two nodes on a sim network whose signalling VCs are up: a's
// activated by dialling, b's from its link-up indication.
func simPair(t *testing.T, cfgA, cfgB miniport.Config) (net *sim.Network, a, b *node, aSig, bSig *tvc) {
	net = sim.New(sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}, Datagram: sim.DatagramConfig{Delay: time.Millisecond}})
	a, b = simNode(t, net, "a", cfgA), simNode(t, net, "b", cfgB)
	b.cm.onLink = func(e miniport.LinkEvent) {
		if e.Up {
			bSig = b.cm.createVc("b-sig")
			b.cm.activate(bSig, sig(e.Peer))
		}
	}
	aSig = a.cm.createVc("a-sig")
	a.cm.mustActivate(aSig, sig("b"), ndis.StatusPending)
	a.cm.event()
	b.cm.event()
	return net, a, b, aSig, bSig
}

// TestHeldSignalling: messages from a peer whose signalling VC the CM has
// not activated are held, at most MaxHeldSignalling (the rest dropped and
// counted); activating the VC (at once: the link is up) indicates none of
// them; opening it (OidSignallingOpen) indicates them, in order, and
// later messages as they come.
func TestHeldSignalling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}})
		defer net.Close()
		a := simNode(t, net, "a", miniport.Config{})
		b := simNode(t, net, "b", miniport.Config{MaxHeldSignalling: 3})
		aSig := a.cm.createVc("a-sig")
		a.cm.mustActivate(aSig, sig("b"), ndis.StatusPending)
		msgs := [][]byte{q2931(20, 1), q2931(21, 2), q2931(22, 3), q2931(23, 4), q2931(24, 5)}
		if st := a.cm.send(aSig, msgs...); !allSuccess(st) {
			t.Fatalf("sends: %v", st)
		}
		synctest.Wait()
		time.Sleep(10 * time.Millisecond) // virtual: the messages arrive and are held
		synctest.Wait()
		if s := b.mp.Stats(); s.SignallingDropped != 2 {
			t.Errorf("SignallingDropped = %d, want 2 (5 sent, 3 held)", s.SignallingDropped)
		}
		if e := b.cm.event(); !e.Up || e.Peer != "a" {
			t.Fatalf("b: %+v", e)
		}

		bSig := b.cm.createVc("b-sig")
		if st := b.cm.b.CmActivateVc(bSig.h, &ndis.CallParameters{MediaParameters: sig("a").Media()}); st != ndis.StatusSuccess {
			t.Fatalf("activating b's signalling VC: %v, want SUCCESS at once", st)
		}
		synctest.Wait()
		if h := b.cm.history(); len(h) != 0 {
			t.Errorf("b's CM was told %q before it opened the VC, want nothing", h)
		}
		b.cm.openSignalling(bSig)
		for i, m := range b.cm.received(bSig, 3) {
			if !bytes.Equal(m, msgs[i]) {
				t.Errorf("held message %d: %d octets, want %d", i, len(m), len(msgs[i]))
			}
		}
		want := []string{"rx b-sig 20", "rx b-sig 21", "rx b-sig 22"}
		if h := b.cm.history(); !slices.Equal(h, want) {
			t.Errorf("b's CM was told %q, want %q", h, want)
		}
		// Later messages flow directly.
		a.cm.send(aSig, msgs[4])
		if m := b.cm.received(bSig, 1); !bytes.Equal(m[0], msgs[4]) {
			t.Errorf("message after activation differs")
		}
		a.cm.teardown(aSig, true)
		b.cm.teardown(bSig, true)
		a.finish()
		b.finish()
	})
}

// TestOpenSignallingWaitsForRoom: once a peer's signalling VC is open, a
// call manager that takes its time with what it is indicated (pacing a
// peer, waiting for its turn) holds that link's reader back instead of
// losing messages: while the CM sits on the first message (indicated from
// the miniport's goroutine that delivers what was held when the VC
// opened), 39 more arrive with room for 3, and all 40 reach it in order,
// none dropped.
func TestOpenSignallingWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{Signal: sim.SignalConfig{Delay: time.Millisecond}})
		defer net.Close()
		a := simNode(t, net, "a", miniport.Config{})
		b := simNode(t, net, "b", miniport.Config{MaxHeldSignalling: 3})
		aSig := a.cm.createVc("a-sig")
		a.cm.mustActivate(aSig, sig("b"), ndis.StatusPending)
		var msgs [][]byte
		for i := range 40 {
			msgs = append(msgs, q2931(20+i%5, byte(i)))
		}
		if st := a.cm.send(aSig, msgs[0]); !allSuccess(st) {
			t.Fatalf("send: %v", st)
		}
		time.Sleep(10 * time.Millisecond) // virtual: the first message is held at b
		synctest.Wait()
		bSig := b.cm.createVc("b-sig")
		if st := b.cm.b.CmActivateVc(bSig.h, &ndis.CallParameters{MediaParameters: sig("a").Media()}); st != ndis.StatusSuccess {
			t.Fatalf("activating b's signalling VC: %v", st)
		}
		b.cm.gate = make(chan struct{})
		b.cm.openSignalling(bSig) // the held message is indicated, and the CM sits on it
		if st := a.cm.send(aSig, msgs[1:]...); !allSuccess(st) {
			t.Fatalf("sends: %v", st)
		}
		time.Sleep(50 * time.Millisecond) // virtual: the rest arrive while the CM is busy
		synctest.Wait()
		close(b.cm.gate)
		for i, m := range b.cm.received(bSig, len(msgs)) {
			if !bytes.Equal(m, msgs[i]) {
				t.Fatalf("message %d: %d octets, want %d (lost or out of order)", i, len(m), len(msgs[i]))
			}
		}
		if s := b.mp.Stats(); s.SignallingDropped != 0 {
			t.Errorf("SignallingDropped = %d, want 0", s.SignallingDropped)
		}
		a.cm.teardown(aSig, true)
		b.cm.teardown(bSig, true)
		a.finish()
		b.finish()
	})
}

// TestActivateFails: a signalling VC for a peer the network does not know
// pends while the dial runs and completes with
// NDIS_STATUS_NO_ROUTE_TO_DESTINATION; one for a peer cut off completes
// with NDIS_STATUS_DEST_OUT_OF_ORDER. The VCs stay inactive (a send is
// refused by the mediator) and can be activated again or deleted.
func TestActivateFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{})
		defer net.Close()
		a := simNode(t, net, "a", miniport.Config{})
		b := simNode(t, net, "b", miniport.Config{})
		v := a.cm.createVc("a-sig")
		if ret, fin := a.cm.activate(v, sig("nosuch")); ret != ndis.StatusPending || fin != ndis.StatusNoRouteToDestination {
			t.Errorf("unknown peer: returned %v, completed %v; want PENDING, NO_ROUTE_TO_DESTINATION", ret, fin)
		}
		net.Cut("a", "b")
		if ret, fin := a.cm.activate(v, sig("b")); ret != ndis.StatusPending || fin != ndis.StatusDestOutOfOrder {
			t.Errorf("cut-off peer: returned %v, completed %v; want PENDING, DEST_OUT_OF_ORDER", ret, fin)
		}
		net.Restore("a", "b")
		a.cm.mustActivate(v, sig("b"), ndis.StatusPending)
		a.cm.teardown(v, true)
		a.finish()
		b.finish()
		// Only the mediator's own refusal of nothing: no violations above.
	})
}

// TestActivationRefusals: unreadable parameters get INVALID_DATA; a
// second signalling VC for a peer, or a second data VC on a connection
// identifier, VC_NOT_AVAILABLE; a re-activation that changes the peer or
// connection identifier INVALID_DATA, one that changes only the traffic
// SUCCESS at once. None of these is a contract violation.
func TestActivationRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, a, b, aSig, bSig := simPair(t, miniport.Config{}, miniport.Config{})
		defer net.Close()
		v := a.cm.createVc("x")
		bad := []*ndis.CallParameters{
			{},
			{MediaParameters: &ndis.MediaParameters{MediaSpecific: ndis.SpecificParameters{ParamType: 0xC0D1A003, Parameters: []byte{0, 0, 0, 32, 0}}}},
			{MediaParameters: miniport.VCParams{Kind: 9, Peer: "b"}.Media()},
			{MediaParameters: miniport.VCParams{Kind: miniport.Signalling, Peer: ""}.Media()},
			{MediaParameters: miniport.VCParams{Kind: miniport.Signalling, Peer: "b", ConnID: 5}.Media()},
		}
		for i, p := range bad {
			if st := a.cm.b.CmActivateVc(v.h, p); st != ndis.StatusInvalidData {
				t.Errorf("bad parameters %d: %v, want INVALID_DATA", i, st)
			}
		}
		if ret, _ := a.cm.activate(v, sig("b")); ret != ndis.StatusVcNotAvailable {
			t.Errorf("second signalling VC for b: %v, want VC_NOT_AVAILABLE", ret)
		}
		d := a.cm.createVc("d")
		a.cm.mustActivate(d, data(miniport.Datagram, "b", 40, open, open), ndis.StatusSuccess)
		if ret, _ := a.cm.activate(v, data(miniport.Reliable, "b", 40, open, open)); ret != ndis.StatusVcNotAvailable {
			t.Errorf("second VC on connection 40: %v, want VC_NOT_AVAILABLE", ret)
		}
		if ret, _ := a.cm.activate(d, data(miniport.Datagram, "b", 41, open, open)); ret != ndis.StatusInvalidData {
			t.Errorf("re-activation on another connection: %v, want INVALID_DATA", ret)
		}
		slow := miniport.Traffic{TokenRate: 1000, TokenBucketSize: 1000, MaxSduSize: 1000}
		if ret, _ := a.cm.activate(d, data(miniport.Datagram, "b", 40, slow, open)); ret != ndis.StatusSuccess {
			t.Errorf("re-activation with new traffic: %v, want SUCCESS", ret)
		}
		// The new traffic is in force: 1000 octets/s, so the second SDU
		// of 1000 octets would wait 1 s, beyond MaxShapingDelay.
		if st := a.cm.send(d, sdu(1000, 1), sdu(1000, 2)); st[0] != ndis.StatusSuccess || st[1] != ndis.StatusResources {
			t.Errorf("sends after the QoS change: %v, want SUCCESS, RESOURCES", st)
		}
		for _, x := range []*tvc{d, aSig} {
			a.cm.teardown(x, true)
		}
		a.cm.teardown(v, false)
		b.cm.teardown(bSig, true)
		a.finish()
		b.finish()
	})
}

// TestDeactivatePendsForSends: sends held back by shaping are in the
// miniport when the VC is deactivated: the deactivation pends, the SDUs
// still go out at their time and complete with SUCCESS, and only then
// does NdisMCoDeactivateVcComplete come.
func TestDeactivatePendsForSends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, a, b, aSig, bSig := simPair(t, miniport.Config{MaxShapingDelay: time.Second}, miniport.Config{})
		defer net.Close()
		shaped := miniport.Traffic{TokenRate: 10_000, TokenBucketSize: 1000, MaxSduSize: 1000} // 1000 octets per 100 ms
		av, bv := a.cm.createVc("a-dg"), b.cm.createVc("b-dg")
		a.cm.mustActivate(av, data(miniport.Datagram, "b", 50, shaped, open), ndis.StatusSuccess)
		b.cm.mustActivate(bv, data(miniport.Datagram, "a", 50, open, open), ndis.StatusSuccess)

		start := time.Now()
		a.cm.sendAsync(av, sdu(1000, 1), sdu(1000, 2), sdu(1000, 3))
		if ret := a.cm.b.CmDeactivateVc(av.h); ret != ndis.StatusPending {
			t.Fatalf("deactivation with 2 shaped sends in flight returned %v, want PENDING", ret)
		}
		if st := wait(t, av.deact, "deactivation"); st != ndis.StatusSuccess {
			t.Fatalf("deactivation completed with %v", st)
		}
		if took := time.Since(start); took < 190*time.Millisecond {
			t.Errorf("deactivation completed after %v, before the shaped sends were due (200 ms)", took)
		}
		if st := a.cm.sentStatuses(av, 3); !allSuccess(st) {
			t.Errorf("shaped sends: %v", st)
		}
		h := a.cm.history()
		if last := h[len(h)-1]; last != "deactivated a-dg NDIS_STATUS_SUCCESS" {
			t.Errorf("a's CM was told %q last; want the deactivation after every send completion", last)
		}
		b.cm.received(bv, 3)
		if s := a.cm.vcStats(av); s.TxShaped != 2 || s.TxPackets != 3 {
			t.Errorf("counters %+v, want 2 shaped of 3 sent", s)
		}
		a.cm.teardown(av, false)
		b.cm.teardown(bv, true)
		a.cm.teardown(aSig, true)
		b.cm.teardown(bSig, true)
		a.finish()
		b.finish()
	})
}

// TestLinkLossMidSend: sends waiting to be shaped when the peer goes away
// complete with NDIS_STATUS_FAILURE at once; the CM is told the link went
// down, why, and the peer's incarnation; later sends fail too; a
// deactivation waiting for those sends completes.
func TestLinkLossMidSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, a, b, aSig, bSig := simPair(t, miniport.Config{MaxShapingDelay: 10 * time.Second}, miniport.Config{})
		defer net.Close()
		shaped := miniport.Traffic{TokenRate: 1000, TokenBucketSize: 1000, MaxSduSize: 1000} // 1 s per SDU
		av, bv := a.cm.createVc("a-rel"), b.cm.createVc("b-rel")
		a.cm.mustActivate(av, data(miniport.Reliable, "b", 60, shaped, open), ndis.StatusSuccess)
		b.cm.mustActivate(bv, data(miniport.Reliable, "a", 60, open, open), ndis.StatusSuccess)
		a.cm.sendAsync(av, sdu(1000, 1), sdu(1000, 2), sdu(1000, 3))
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		b.mp.Close() // b's node goes away
		e := a.cm.event()
		if e.Up || e.Peer != "b" || e.Reason != transport.DownClosedByPeer || e.Incarnation == 0 {
			t.Errorf("a's CM told %+v; want b down, closed by peer, with b's incarnation", e)
		}
		st := a.cm.sentStatuses(av, 3)
		if st[0] != ndis.StatusSuccess || st[1] != ndis.StatusFailure || st[2] != ndis.StatusFailure {
			t.Errorf("sends: %v; want the first SUCCESS, the two waiting FAILURE", st)
		}
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("waiting sends completed %v after the link went, not at once", took)
		}
		if st := a.cm.send(aSig, q2931(30, 1)); st[0] != ndis.StatusFailure {
			t.Errorf("signalling send without a link: %v, want FAILURE", st)
		}
		// The data VC (not the signalling one) was told its medium went.
		if got, want := a.cm.mediaStatus(), []string{"a-rel NDIS_STATUS_MEDIA_DISCONNECT"}; !slices.Equal(got, want) {
			t.Errorf("a's status indications on VCs %q, want %q", got, want)
		}
		a.cm.teardown(av, true)
		a.cm.teardown(aSig, true)
		b.cm.teardown(bv, true)
		b.cm.teardown(bSig, true)
		a.finish()
		b.finish()
	})
}

// TestSendStatusesAndPolicing: each list completes with its own status:
// too long for the VC, for the path's datagrams, or for a signalling
// message is INVALID_LENGTH; a send that cannot conform within
// MaxShapingDelay is RESOURCES and counted policed. On receive, SDUs
// beyond the receive traffic are dropped and counted policed, SDUs for a
// connection identifier with no VC dropped and counted by the adapter.
func TestSendStatusesAndPolicing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, a, b, aSig, bSig := simPair(t, miniport.Config{MaxShapingDelay: 30 * time.Millisecond}, miniport.Config{})
		defer net.Close()
		net.SetMaxDatagramPayload("a", 800)

		txLimited := miniport.Traffic{TokenRate: 10_000, TokenBucketSize: 2000, MaxSduSize: 1000} // 100 ms per 1000 octets
		rxPoliced := miniport.Traffic{TokenRate: 1000, TokenBucketSize: 1000, MaxSduSize: 1000}
		av, bv := a.cm.createVc("a-dg"), b.cm.createVc("b-dg")
		a.cm.mustActivate(av, data(miniport.Datagram, "b", 70, txLimited, open), ndis.StatusSuccess)
		b.cm.mustActivate(bv, data(miniport.Datagram, "a", 70, open, rxPoliced), ndis.StatusSuccess)

		st := a.cm.send(av, sdu(1001, 0), sdu(900, 1), sdu(800, 2), sdu(800, 3), sdu(800, 4))
		want := []ndis.Status{ndis.StatusInvalidLength, ndis.StatusInvalidLength, ndis.StatusSuccess, ndis.StatusSuccess, ndis.StatusResources}
		if !slices.Equal(st, want) {
			t.Errorf("send statuses %v, want %v (over MaxSduSize, over the path, two within the bucket, one that would wait 40 ms, past the 30 ms limit)", st, want)
		}
		if s := a.cm.vcStats(av); s.TxPoliced != 1 || s.TxPackets != 2 || s.TxDropped != 3 {
			t.Errorf("a's counters %+v; want 1 policed, 2 sent, 3 dropped", s)
		}
		// b polices at 1000 octets/s with a 1000-octet bucket: the first
		// SDU conforms, the second (at once) does not.
		b.cm.received(bv, 1)
		synctest.Wait()
		time.Sleep(10 * time.Millisecond)
		if s := b.cm.vcStats(bv); s.RxPoliced != 1 || s.RxPackets != 1 {
			t.Errorf("b's counters %+v; want 1 received, 1 policed", s)
		}
		if st := a.cm.send(aSig, q2931(transport.MinMessageLen-1, 0)); st[0] != ndis.StatusInvalidLength {
			t.Errorf("short signalling message: %v, want INVALID_LENGTH", st)
		}

		// A datagram for a connection identifier b has no VC for.
		stray := a.cm.createVc("stray")
		a.cm.mustActivate(stray, data(miniport.Datagram, "b", 71, open, open), ndis.StatusSuccess)
		a.cm.send(stray, sdu(10, 0), sdu(10, 1))
		time.Sleep(10 * time.Millisecond)
		if s := b.mp.Stats(); s.UnknownConnID != 2 {
			t.Errorf("b's UnknownConnID = %d, want 2", s.UnknownConnID)
		}
		req, rs := b.cm.oid(nil, miniport.OidVcStats, 128)
		if as, err := miniport.ParseAdapterStats(req.InformationBuffer[:req.BytesWritten]); rs != ndis.StatusSuccess || err != nil || as.UnknownConnID != 2 || as.Total.RxPoliced != 1 {
			t.Errorf("adapter OidVcStats: %v %v %+v", rs, err, as)
		}
		for _, x := range []*tvc{av, stray, aSig} {
			a.cm.teardown(x, true)
		}
		for _, x := range []*tvc{bv, bSig} {
			b.cm.teardown(x, true)
		}
		a.finish()
		b.finish()
	})
}

// TestOids: link speed, the largest SDU per VC and adapter-wide, per-VC
// counters; a short buffer gets BUFFER_TOO_SHORT and BytesNeeded, a set
// NOT_SUPPORTED, an unknown OID INVALID_OID, anything after Close
// NOT_ACCEPTED.
func TestOids(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, a, b, aSig, bSig := simPair(t, miniport.Config{LinkSpeed: 10_000_000_000}, miniport.Config{})
		defer net.Close()
		av, bv := a.cm.createVc("a-dg"), b.cm.createVc("b-dg")
		a.cm.mustActivate(av, data(miniport.Datagram, "b", 80, open, open), ndis.StatusSuccess)
		b.cm.mustActivate(bv, data(miniport.Datagram, "a", 80, open, open), ndis.StatusSuccess)
		a.cm.send(av, sdu(100, 0), sdu(100, 1))
		a.cm.send(av, sdu(2000, 0))
		b.cm.received(bv, 2)

		u32 := func(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24 }
		u64 := func(b []byte) uint64 { return uint64(u32(b)) | uint64(u32(b[4:]))<<32 }
		req, st := a.cm.oid(nil, miniport.OidGenCoLinkSpeed, 8)
		if st != ndis.StatusSuccess || req.BytesWritten != 8 || u32(req.InformationBuffer) != 100_000_000 || u32(req.InformationBuffer[4:]) != 100_000_000 {
			t.Errorf("OID_GEN_CO_LINK_SPEED: %v %+v, want 10 Gbit/s (1e8 units of 100 bit/s) both ways", st, req)
		}
		for _, c := range []struct {
			v    *tvc
			want uint32
		}{{av, sim.DefaultMaxDatagramPayload}, {aSig, transport.MaxMessageLen}, {nil, sim.DefaultMaxDatagramPayload}} {
			req, st := a.cm.oid(c.v, miniport.OidGenMaximumFrameSize, 4)
			if st != ndis.StatusSuccess || u32(req.InformationBuffer) != c.want {
				t.Errorf("OID_GEN_MAXIMUM_FRAME_SIZE on %v: %v %d, want %d", c.v, st, u32(req.InformationBuffer), c.want)
			}
		}
		for oid, want := range map[ndis.Oid]uint64{miniport.OidGenCoXmitPdusOk: 2, miniport.OidGenCoXmitPdusError: 1, miniport.OidGenCoRcvPdusOk: 0} {
			req, st := a.cm.oid(av, oid, 8)
			if st != ndis.StatusSuccess || u64(req.InformationBuffer) != want {
				t.Errorf("OID 0x%08X on the VC: %v %d, want %d", uint32(oid), st, u64(req.InformationBuffer), want)
			}
		}
		if req, st := a.cm.oid(av, miniport.OidGenCoLinkSpeed, 4); st != ndis.StatusBufferTooShort || req.BytesNeeded != 8 {
			t.Errorf("short buffer: %v, BytesNeeded %d; want BUFFER_TOO_SHORT, 8", st, req.BytesNeeded)
		}
		set := &ndis.OidRequest{Type: ndis.OidSet, Oid: miniport.OidGenCoLinkSpeed, InformationBuffer: make([]byte, 8)}
		if st := a.cm.b.CoOidRequest(nil, nil, nil, set); st != ndis.StatusNotSupported {
			t.Errorf("set: %v, want NOT_SUPPORTED", st)
		}
		if _, st := a.cm.oid(nil, 0x00010199, 8); st != ndis.StatusInvalidOid {
			t.Errorf("unknown OID: %v, want INVALID_OID", st)
		}
		a.mp.Close()
		if _, st := a.cm.oid(nil, miniport.OidGenCoLinkSpeed, 8); st != ndis.StatusNotAccepted {
			t.Errorf("after Close: %v, want NOT_ACCEPTED", st)
		}
		for _, x := range []*tvc{av, aSig} {
			a.cm.teardown(x, true)
		}
		for _, x := range []*tvc{bv, bSig} {
			b.cm.teardown(x, true)
		}
		a.finish()
		b.finish()
	})
}

// TestHaltUnboundWaitsForProtocols (R-AF-23): HaltUnbound halts the
// miniport only once every protocol bound to its adapter has unbound — a
// client may unbind after the call manager is gone, as the split node's
// clients do when the CM withdraws their AF — and a ctx that ends first
// closes the medium but leaves the adapter. Before, the split node halted
// right after its CM and the mediator refused with R-AF-23 whenever a
// client was still unbinding.
func TestHaltUnboundWaitsForProtocols(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{})
		defer net.Close()
		n := simNode(t, net, "a", miniport.Config{})
		client := bindCM(t, n.mp, n.m) // a second protocol, still bound
		if st := n.cm.b.CloseAdapterEx(); st != ndis.StatusSuccess {
			t.Fatalf("the CM's NdisCloseAdapterEx: %v", st)
		}

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := n.mp.HaltUnbound(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("HaltUnbound with a protocol bound: %v, want the deadline", err)
		}
		if s := n.m.Snapshot(); len(s.Adapters) != 1 {
			t.Fatalf("the adapter is gone while a protocol was bound:\n%v", s)
		}
		if _, err := net.Endpoint("a", n.mp.Handler()); err != nil {
			t.Fatalf("the medium is still open after the deadline: its name is taken (%v)", err)
		}

		done := make(chan error, 1)
		go func() { done <- n.mp.HaltUnbound(t.Context()) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("HaltUnbound returned %v while a protocol was bound", err)
		default:
		}
		if st := client.b.CloseAdapterEx(); st != ndis.StatusSuccess {
			t.Fatalf("the client's NdisCloseAdapterEx: %v", st)
		}
		if err := <-done; err != nil {
			t.Fatalf("HaltUnbound after the last unbinding: %v", err)
		}
		if s := n.m.Snapshot(); !s.Empty() || len(s.Adapters) != 0 {
			t.Errorf("left in the mediator:\n%v", s)
		}
		for _, v := range n.m.Violations() {
			t.Errorf("violation %+v", v)
		}
	})
}
