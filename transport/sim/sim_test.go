package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/condis-project/condis/transport"
	tt "github.com/condis-project/condis/transport/transporttest"
	"github.com/condis-project/condis/uni"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Every test runs in a synctest bubble: time.Sleep below advances virtual
// time only.

type simNode struct {
	ep  *Endpoint
	rec *tt.Recorder
}

func attach(t *testing.T, n *Network, name string) *simNode {
	t.Helper()
	rec := tt.NewRecorder(t, name)
	ep, err := n.Endpoint(name, rec)
	if err != nil {
		t.Fatal(err)
	}
	return &simNode{ep: ep, rec: rec}
}

func dialT(t *testing.T, from *simNode, to string) transport.Link {
	t.Helper()
	l, err := from.ep.Dial(context.Background(), to)
	if err != nil {
		t.Fatalf("%s dialling %s: %v", from.ep.Name(), to, err)
	}
	return l
}

// linked attaches alpha and beta, links them and returns both ends.
func linked(t *testing.T, n *Network) (a, b *simNode, ab, ba transport.Link) {
	t.Helper()
	a, b = attach(t, n, "alpha"), attach(t, n, "beta")
	ab = dialT(t, a, "beta")
	if e := a.rec.NextKind(tt.Up, time.Minute); e.Link != ab {
		t.Fatal("alpha: LinkUp for another link")
	}
	ba = b.rec.NextKind(tt.Up, time.Minute).Link
	return a, b, ab, ba
}

// msg is a Q.2931-shaped message of type typ whose body is seq.
func msg(typ uni.MsgType, seq uint32) []byte {
	m := []byte{0x09, 0x03, 0x00, 0x00, 0x01, byte(typ), 0x80, 0x00, 0x04}
	return binary.BigEndian.AppendUint32(m, seq)
}

func seqOf(m []byte) uint32 { return binary.BigEndian.Uint32(m[9:]) }

const long = time.Hour // failure deadline, virtual

func TestSignallingKeepsOrderUnderJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 1, Signal: SignalConfig{Delay: 10 * time.Millisecond, Jitter: 50 * time.Millisecond}})
		defer n.Close()
		a, b, ab, ba := linked(t, n)
		if ab.Peer() != "beta" || ba.Peer() != "alpha" {
			t.Fatalf("peers %q, %q", ab.Peer(), ba.Peer())
		}
		const k = 500
		sent := make([]time.Time, k)
		for i := range uint32(k) {
			sent[i] = time.Now()
			if err := ab.Send(msg(uni.MsgStatusEnquiry, i)); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
		var maxLat time.Duration
		for i := range uint32(k) {
			e := b.rec.NextKind(tt.Message, long)
			if seqOf(e.Data) != i {
				t.Fatalf("message %d arrived as %d", i, seqOf(e.Data))
			}
			lat := e.At.Sub(sent[i])
			if lat < 10*time.Millisecond {
				t.Fatalf("message %d took %v, less than the delay", i, lat)
			}
			maxLat = max(maxLat, lat)
		}
		// In order, so a message waits for the slowest before it, but
		// never longer than delay + jitter.
		if maxLat >= 60*time.Millisecond {
			t.Fatalf("max latency %v, want < delay+jitter = 60ms", maxLat)
		}
		if s := n.Stats(); s.Messages != k || s.MessagesDropped != 0 {
			t.Fatalf("stats %+v", s)
		}
		if evs := a.rec.Drain(); len(evs) != 0 {
			t.Fatalf("alpha: %v", evs)
		}
		if err := ab.Send(make([]byte, 3)); !errors.Is(err, transport.ErrMessageSize) {
			t.Fatalf("short message: %v", err)
		}
	})
}

// dgRun sends k datagrams one per millisecond and returns, per datagram
// number, its latency (-1 if lost) and the arrival order.
func dgRun(t *testing.T, cfg Config, k int) (lat []time.Duration, order []int, stats Stats) {
	n := New(cfg)
	defer n.Close()
	_, b, ab, _ := linked(t, n)
	b.rec.Discard = false
	sent := make([]time.Time, k)
	for i := range k {
		sent[i] = time.Now()
		if err := ab.SendDatagram(uint32(i), binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(time.Second) // let the stragglers land
	lat = make([]time.Duration, k)
	for i := range lat {
		lat[i] = -1
	}
	for _, e := range b.rec.Drain() {
		if e.Kind != tt.Datagram {
			t.Fatalf("unexpected %v", e)
		}
		i := int(e.ConnID)
		if binary.BigEndian.Uint32(e.Data) != uint32(i) || lat[i] != -1 {
			t.Fatalf("datagram %d corrupt or duplicated", i)
		}
		lat[i] = e.At.Sub(sent[i])
		order = append(order, i)
	}
	return lat, order, n.Stats()
}

func TestDatagramLossDelayReorderStatistics(t *testing.T) {
	const (
		k       = 10000
		loss    = 0.10
		reorder = 0.05
		delay   = 5 * time.Millisecond
		jitter  = 900 * time.Microsecond // below the 1 ms spacing: jitter alone never reorders
		hold    = 20 * time.Millisecond
	)
	cfg := Config{Seed: 42, Datagram: DatagramConfig{Delay: delay, Jitter: jitter, Loss: loss, Reorder: reorder, ReorderDelay: hold}}
	var lat []time.Duration
	var order []int
	var stats Stats
	synctest.Test(t, func(t *testing.T) { lat, order, stats = dgRun(t, cfg, k) })

	// Binomial bounds at 5 standard deviations.
	within := func(what string, got int, p float64, n int) {
		t.Helper()
		mean, sd := p*float64(n), math.Sqrt(float64(n)*p*(1-p))
		if math.Abs(float64(got)-mean) > 5*sd {
			t.Errorf("%s: %d, want %.0f ± %.0f", what, got, mean, 5*sd)
		}
		t.Logf("%s: %d (expected %.0f ± %.0f at 5σ)", what, got, mean, 5*sd)
	}
	lost := 0
	for _, l := range lat {
		if l < 0 {
			lost++
		}
	}
	within("lost", lost, loss, k)
	if stats.Datagrams != k || stats.DatagramsLost != lost || stats.DatagramsDelivered != k-lost {
		t.Errorf("stats %+v disagree with %d lost of %d", stats, lost, k)
	}
	within("held back", stats.DatagramsReordered, reorder, k-lost)

	// Every latency is delay + [0, jitter), or that plus the hold.
	held := 0
	var sum time.Duration
	for i, l := range lat {
		switch {
		case l < 0:
		case l >= delay && l < delay+jitter:
		case l >= delay+hold && l < delay+hold+jitter:
			held++
		default:
			t.Fatalf("datagram %d took %v", i, l)
		}
		if l >= 0 {
			sum += l
		}
	}
	if held != stats.DatagramsReordered {
		t.Errorf("%d datagrams took the hold, stats say %d", held, stats.DatagramsReordered)
	}
	mean := sum / time.Duration(k-lost)
	want := delay + jitter/2 + time.Duration(reorder*float64(hold))
	if d := mean - want; d < -time.Millisecond/2 || d > time.Millisecond/2 {
		t.Errorf("mean latency %v, want %v ± 0.5ms", mean, want)
	}
	// Reordering: jitter is below the spacing, so exactly the held-back
	// datagrams are overtaken by later ones.
	overtaken, maxSeen := 0, -1
	for _, i := range order {
		if i < maxSeen {
			overtaken++
		}
		maxSeen = max(maxSeen, i)
	}
	if overtaken != held {
		t.Errorf("%d datagrams overtaken, %d held back", overtaken, held)
	}
	t.Logf("mean latency %v (expected %v), %d datagrams overtaken", mean, want, overtaken)

	// Same seed, same run; another seed, another run.
	var lat2 []time.Duration
	synctest.Test(t, func(t *testing.T) { lat2, _, _ = dgRun(t, cfg, k) })
	if !slices.Equal(lat, lat2) {
		t.Error("same seed gave a different run")
	}
	cfg.Seed = 43
	synctest.Test(t, func(t *testing.T) { lat2, _, _ = dgRun(t, cfg, k) })
	if slices.Equal(lat, lat2) {
		t.Error("another seed gave the same run")
	}
}

func TestDatagramTooLarge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{MaxDatagramPayload: 100})
		defer n.Close()
		_, b, ab, _ := linked(t, n)
		if ab.MaxDatagramPayload() != 100 {
			t.Fatalf("MaxDatagramPayload = %d", ab.MaxDatagramPayload())
		}
		var tl *transport.DatagramTooLargeError
		if err := ab.SendDatagram(1, make([]byte, 101)); !errors.As(err, &tl) || tl.Max != 100 || !errors.Is(err, transport.ErrDatagramTooLarge) {
			t.Fatalf("101 octets: %v", err)
		}
		if err := ab.SendDatagram(1, make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		if e := b.rec.NextKind(tt.Datagram, long); len(e.Data) != 100 {
			t.Fatalf("got %d octets", len(e.Data))
		}
	})
}

func TestDropNthDropsExactlyTheNthMatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Signal: SignalConfig{Delay: time.Millisecond}})
		defer n.Close()
		a, b, ab, ba := linked(t, n)
		hook := n.DropNth(MsgType(uni.MsgSetup), 2)
		fromBeta := n.DropNth(From("beta", MsgType(uni.MsgSetup)), 1)

		// alpha sends SETUP, CALL PROCEEDING, SETUP, SETUP, CONNECT;
		// numbered 0..4.
		types := []uni.MsgType{uni.MsgSetup, uni.MsgCallProceeding, uni.MsgSetup, uni.MsgSetup, uni.MsgConnect}
		for i, typ := range types {
			ab.Send(msg(typ, uint32(i)))
		}
		for _, want := range []uint32{0, 1, 3, 4} { // 2, the second SETUP, is gone
			if e := b.rec.NextKind(tt.Message, long); seqOf(e.Data) != want {
				t.Fatalf("got message %d, want %d", seqOf(e.Data), want)
			}
		}
		m, ok := hook.Hit()
		if !ok || seqOf(m.Data) != 2 || m.From != "alpha" || m.To != "beta" || m.Type() != uni.MsgSetup {
			t.Fatalf("hook hit %+v, %v; want alpha's message 2", m, ok)
		}
		if hook.Seen() != 3 {
			t.Fatalf("hook saw %d SETUPs, want 3", hook.Seen())
		}
		// The From filter ignored alpha's SETUPs; beta's first goes.
		if _, ok := fromBeta.Hit(); ok {
			t.Fatal("beta's hook fired on alpha's messages")
		}
		ba.Send(msg(uni.MsgSetup, 10))
		ba.Send(msg(uni.MsgSetup, 11))
		if e := a.rec.NextKind(tt.Message, long); seqOf(e.Data) != 11 {
			t.Fatalf("alpha got %d, want 11", seqOf(e.Data))
		}
		if s := n.Stats(); s.MessagesDropped != 2 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestDelayNthHoldsUpTheNthMatchAndThoseBehindIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const d = time.Millisecond
		n := New(Config{Signal: SignalConfig{Delay: d}})
		defer n.Close()
		_, b, ab, _ := linked(t, n)
		hook := n.DelayNth(MsgType(uni.MsgRelease), 2, time.Second)
		start := time.Now()
		for i, typ := range []uni.MsgType{uni.MsgRelease, uni.MsgStatus, uni.MsgRelease, uni.MsgStatus} {
			ab.Send(msg(typ, uint32(i)))
		}
		want := []time.Duration{d, d, time.Second + d, time.Second + d}
		for i := range want {
			e := b.rec.NextKind(tt.Message, long)
			if seqOf(e.Data) != uint32(i) || e.At.Sub(start) != want[i] {
				t.Fatalf("message %d (seq %d) after %v, want seq %d after %v", i, seqOf(e.Data), e.At.Sub(start), i, want[i])
			}
		}
		if m, ok := hook.Hit(); !ok || seqOf(m.Data) != 2 {
			t.Fatalf("hook hit %d, %v", seqOf(m.Data), ok)
		}
		if s := n.Stats(); s.MessagesDelayed != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestShortCutHoldsSignallingAndLosesDatagrams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Signal: SignalConfig{Delay: time.Millisecond}, DetectTimeout: 3 * time.Second})
		defer n.Close()
		a, b, ab, _ := linked(t, n)
		n.Cut("beta", "alpha")
		ab.Send(msg(uni.MsgSetup, 1))
		ab.SendDatagram(5, []byte("lost"))
		ab.SendReliable(6, []byte("waits"))
		time.Sleep(2 * time.Second)
		if evs := b.rec.Drain(); len(evs) != 0 {
			t.Fatalf("beta got %v through a cut", evs)
		}
		if _, err := b.ep.Dial(context.Background(), "alpha"); err != nil {
			t.Fatalf("Dial of a link that is up, though cut: %v", err)
		}
		restored := time.Now()
		n.Restore("alpha", "beta")
		if e := b.rec.NextKind(tt.Message, long); seqOf(e.Data) != 1 || e.At != restored {
			t.Fatalf("after restore: %v at +%v", e, e.At.Sub(restored))
		}
		if e := b.rec.NextKind(tt.StreamData, long); e.ConnID != 6 || string(e.Data) != "waits" {
			t.Fatalf("after restore: %v", e)
		}
		time.Sleep(10 * time.Second)
		if evs := append(a.rec.Drain(), b.rec.Drain()...); len(evs) != 0 {
			t.Fatalf("events after restore: %v", evs)
		}
		if s := n.Stats(); s.DatagramsCut != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
}

func TestLongCutTakesTheLinkDownThenRedial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Signal: SignalConfig{Delay: time.Millisecond}, DetectTimeout: 3 * time.Second})
		defer n.Close()
		a, b, ab, _ := linked(t, n)
		cut := time.Now()
		n.Cut("alpha", "beta")
		ab.Send(msg(uni.MsgSetup, 1)) // dies with the link
		for _, x := range []*simNode{a, b} {
			e := x.rec.NextKind(tt.Down, long)
			var de *transport.LinkDownError
			if !errors.As(e.Err, &de) || de.Reason != transport.DownTimeout || e.At.Sub(cut) != 3*time.Second {
				t.Fatalf("%s: %v after %v, want timeout after 3s", x.ep.Name(), e, e.At.Sub(cut))
			}
		}
		if err := ab.Send(msg(uni.MsgSetup, 2)); !errors.Is(err, transport.ErrLinkDown) {
			t.Fatalf("Send on a dead link: %v", err)
		}
		if _, err := a.ep.Dial(context.Background(), "beta"); !errors.Is(err, transport.ErrUnreachable) {
			t.Fatalf("Dial across a cut: %v", err)
		}
		n.Restore("alpha", "beta")
		l := dialT(t, b, "alpha")
		b.rec.NextKind(tt.Up, long)
		a.rec.NextKind(tt.Up, long)
		l.Send(msg(uni.MsgStatusEnquiry, 3))
		if e := a.rec.NextKind(tt.Message, long); seqOf(e.Data) != 3 {
			t.Fatalf("on the new link: %v", e)
		}
	})
}

func TestCloseAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Signal: SignalConfig{Delay: 5 * time.Millisecond}})
		defer n.Close()
		a, b, ab, _ := linked(t, n)
		ab.Send(msg(uni.MsgRelease, 1))
		ab.Close()
		if e := a.rec.NextKind(tt.Down, long); !isReason(e.Err, transport.DownClosedLocally) {
			t.Fatalf("alpha: %v", e)
		}
		// What alpha sent before closing still arrives, then the close.
		if e := b.rec.NextKind(tt.Message, long); seqOf(e.Data) != 1 {
			t.Fatalf("beta: %v", e)
		}
		if e := b.rec.NextKind(tt.Down, long); !isReason(e.Err, transport.DownClosedByPeer) {
			t.Fatalf("beta: %v", e)
		}

		// beta restarts: its Endpoint closes (LinkDown before Close
		// returns), a new one with the same name attaches and dials.
		dialT(t, a, "beta")
		a.rec.NextKind(tt.Up, long)
		b.rec.NextKind(tt.Up, long)
		b.ep.Close()
		if evs := b.rec.Drain(); len(evs) != 1 || !isReason(evs[0].Err, transport.DownEndpointClosed) {
			t.Fatalf("beta: %v, want its LinkDown before Close returned", evs)
		}
		if _, err := b.ep.Dial(context.Background(), "alpha"); !errors.Is(err, transport.ErrClosed) {
			t.Fatalf("Dial after Close: %v", err)
		}
		b2 := attach(t, n, "beta")
		dialT(t, b2, "alpha")
		b2.rec.NextKind(tt.Up, long)
		if e := a.rec.NextKind(tt.Down, long); !isReason(e.Err, transport.DownClosedByPeer) {
			t.Fatalf("alpha: %v", e)
		}
		if e := a.rec.NextKind(tt.Up, long); e.Peer != "beta" {
			t.Fatalf("alpha: %v", e)
		}
		if _, err := n.Endpoint("beta", b2.rec); err == nil {
			t.Fatal("a second beta attached")
		}
	})
}

func isReason(err error, r transport.DownReason) bool {
	var de *transport.LinkDownError
	return errors.As(err, &de) && de.Reason == r
}

func TestSimultaneousDialYieldsOneLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Signal: SignalConfig{Delay: time.Millisecond}})
		defer n.Close()
		a, b := attach(t, n, "alpha"), attach(t, n, "beta")
		var la, lb transport.Link
		var wg sync.WaitGroup
		wg.Go(func() { la = dialT(t, a, "beta") })
		wg.Go(func() { lb = dialT(t, b, "alpha") })
		wg.Wait()
		if a.rec.NextKind(tt.Up, long).Link != la || b.rec.NextKind(tt.Up, long).Link != lb {
			t.Fatal("Dial and LinkUp disagree")
		}
		la.Send(msg(uni.MsgStatus, 9))
		if e := b.rec.NextKind(tt.Message, long); e.Link != lb {
			t.Fatal("not the two ends of one link")
		}
		synctest.Wait()
		if evs := append(a.rec.Drain(), b.rec.Drain()...); len(evs) != 0 {
			t.Fatalf("extra events %v", evs)
		}
	})
}

func TestSignalLossAndUnknownPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 7, Signal: SignalConfig{Loss: 0.1}})
		defer n.Close()
		a, b, ab, _ := linked(t, n)
		const k = 2000
		for i := range uint32(k) {
			ab.Send(msg(uni.MsgStatus, i))
		}
		synctest.Wait()
		got := len(b.rec.Drain())
		if s := n.Stats(); got != k-s.MessagesDropped || s.MessagesDropped < 140 || s.MessagesDropped > 260 {
			t.Fatalf("%d of %d arrived, stats %+v", got, k, s)
		}
		if _, err := a.ep.Dial(context.Background(), "nobody"); !errors.Is(err, transport.ErrUnknownPeer) {
			t.Fatalf("Dial nobody: %v", err)
		}
		if _, err := a.ep.Dial(context.Background(), "alpha"); !errors.Is(err, transport.ErrUnknownPeer) {
			t.Fatalf("Dial itself: %v", err)
		}
		if _, err := n.Endpoint("Bad Name", a.rec); err == nil {
			t.Fatal("attached an invalid name")
		}
	})
}

func TestConformance(t *testing.T) {
	tt.Conformance(t, func(t *testing.T, names ...string) []tt.Node {
		n := New(Config{Seed: 1, Signal: SignalConfig{Delay: time.Millisecond, Jitter: time.Millisecond},
			Datagram: DatagramConfig{Delay: time.Millisecond, Jitter: 5 * time.Millisecond}})
		t.Cleanup(n.Close)
		var ns []tt.Node
		for _, name := range names {
			x := attach(t, n, name)
			ns = append(ns, tt.Node{EP: x.ep, Rec: x.rec})
		}
		return ns
	}, synctest.Test)
}

func TestMsgTypeMatchesEncodedMessages(t *testing.T) {
	for _, typ := range []uni.MsgType{uni.MsgStatusEnquiry, uni.MsgConnectAck, uni.MsgCallProceeding, uni.MsgReleaseComplete} {
		m := &uni.Message{Type: typ, CallRef: uni.CallRef{Value: 0x1234}}
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		msg := Msg{Data: b}
		if msg.Type() != typ || !MsgType(typ)(msg) || MsgType(uni.MsgConnect)(msg) {
			t.Errorf("%v encoded as % x: Type() = %v", typ, b, msg.Type())
		}
	}
	if (Msg{Data: []byte{9, 3}}).Type() != 0 {
		t.Error("a fragment has a type")
	}
}

func TestCutDuringHandshakeFailsTheDial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Signal: SignalConfig{Delay: 10 * time.Millisecond}, DetectTimeout: 3 * time.Second})
		defer n.Close()
		a, b := attach(t, n, "alpha"), attach(t, n, "beta")
		errc := make(chan error, 1)
		start := time.Now()
		go func() { _, err := a.ep.Dial(context.Background(), "beta"); errc <- err }()
		synctest.Wait() // the Dial is waiting for its LinkUp
		n.Cut("alpha", "beta")
		err := <-errc
		if !errors.Is(err, transport.ErrLinkDown) || !isReason(err, transport.DownTimeout) || time.Since(start) != 3*time.Second {
			t.Fatalf("Dial: %v after %v, want a timeout after 3s", err, time.Since(start))
		}
		synctest.Wait()
		if evs := append(a.rec.Drain(), b.rec.Drain()...); len(evs) != 0 {
			t.Fatalf("events for a link that never came up: %v", evs)
		}
	})
}
