package transporttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/condis-project/condis/transport"
)

// Node is one node a Maker started.
type Node struct {
	EP  transport.Endpoint
	Rec *Recorder
}

// Maker starts nodes with the given names on a fresh network, each with a
// Recorder as its Handler, and registers their cleanup on t.
type Maker func(t *testing.T, names ...string) []Node

// Conformance runs the behaviour every transport.Endpoint implementation
// must share against mk. wrap, if not nil, runs each case's body (for
// example synctest.Test, for an implementation that runs in virtual time).
func Conformance(t *testing.T, mk Maker, wrap func(*testing.T, func(*testing.T))) {
	if wrap == nil {
		wrap = func(t *testing.T, f func(*testing.T)) { f(t) }
	}
	for _, c := range []struct {
		name string
		f    func(*testing.T, Maker)
	}{
		{"DialBringsUpBothSides", confDial},
		{"SignallingInOrderBothWays", confSignalling},
		{"DatagramsCarryTheirConnID", confDatagrams},
		{"ReliableStreamsPerConnID", confReliable},
		{"LinkCloseReasons", confLinkClose},
		{"EndpointClose", confEndpointClose},
		{"SimultaneousDial", confSimultaneous},
		{"SizeLimits", confSizes},
	} {
		t.Run(c.name, func(t *testing.T) { wrap(t, func(t *testing.T) { c.f(t, mk) }) })
	}
}

const confWait = 30 * time.Second

// Msg returns a Q.2931-shaped signalling message (protocol discriminator
// 0x09, a 3-octet call reference, message type typ) whose 4-octet body is
// seq.
func Msg(typ uint8, seq uint32) []byte {
	m := []byte{0x09, 0x03, 0x00, 0x00, 0x01, typ, 0x80, 0x00, 0x04}
	return binary.BigEndian.AppendUint32(m, seq)
}

// Seq returns the body of a message made by Msg.
func Seq(msg []byte) uint32 { return binary.BigEndian.Uint32(msg[9:]) }

func dialOK(t *testing.T, n Node, peer string) transport.Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), confWait)
	defer cancel()
	l, err := n.EP.Dial(ctx, peer)
	if err != nil {
		t.Fatalf("%s dialling %s: %v", n.EP.Name(), peer, err)
	}
	return l
}

// up dials from a to b and returns both ends.
func up(t *testing.T, a, b Node) (ab, ba transport.Link) {
	t.Helper()
	ab = dialOK(t, a, b.EP.Name())
	if e := a.Rec.NextKind(Up, confWait); e.Link != ab {
		t.Fatalf("%s: LinkUp for another link than Dial returned", a.EP.Name())
	}
	e := b.Rec.NextKind(Up, confWait)
	if e.Peer != a.EP.Name() {
		t.Fatalf("%s: LinkUp from %q", b.EP.Name(), e.Peer)
	}
	return ab, e.Link
}

func reasonOf(err error) transport.DownReason {
	var de *transport.LinkDownError
	if errors.As(err, &de) {
		return de.Reason
	}
	return 0
}

func confDial(t *testing.T, mk Maker) {
	ns := mk(t, "alpha", "beta")
	ab, ba := up(t, ns[0], ns[1])
	if ab.Peer() != "beta" || ba.Peer() != "alpha" {
		t.Fatalf("Peer: %q, %q", ab.Peer(), ba.Peer())
	}
	if ns[0].EP.Name() != "alpha" {
		t.Fatalf("Name: %q", ns[0].EP.Name())
	}
	// Dialling again, from either side, returns the same link.
	if l := dialOK(t, ns[0], "beta"); l != ab {
		t.Fatal("a second Dial made another link")
	}
	if l := dialOK(t, ns[1], "alpha"); l != ba {
		t.Fatal("the peer's Dial made another link")
	}
	if evs := append(ns[0].Rec.Drain(), ns[1].Rec.Drain()...); len(evs) != 0 {
		t.Fatalf("extra events %v", evs)
	}
	if _, err := ns[0].EP.Dial(context.Background(), "nobody"); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("Dial of an unknown node: %v", err)
	}
}

func confSignalling(t *testing.T, mk Maker) {
	ns := mk(t, "alpha", "beta")
	ab, ba := up(t, ns[0], ns[1])
	const k = 200
	var wg sync.WaitGroup
	for _, l := range []transport.Link{ab, ba} {
		wg.Go(func() {
			for i := range uint32(k) {
				if err := l.Send(Msg(0x7d, i)); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, n := range ns {
		for i := range uint32(k) {
			if e := n.Rec.NextKind(Message, confWait); Seq(e.Data) != i {
				t.Fatalf("%s: message %d arrived as %d", n.EP.Name(), i, Seq(e.Data))
			}
		}
	}
}

func confDatagrams(t *testing.T, mk Maker) {
	ns := mk(t, "alpha", "beta")
	ab, ba := up(t, ns[0], ns[1])
	for _, d := range []struct {
		l  transport.Link
		to Node
	}{{ab, ns[1]}, {ba, ns[0]}} {
		const k = 10
		for i := range uint32(k) {
			if err := d.l.SendDatagram(0x10000+i, binary.BigEndian.AppendUint32(nil, i)); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[uint32]bool{}
		for len(seen) < k {
			e := d.to.Rec.NextKind(Datagram, confWait)
			i := binary.BigEndian.Uint32(e.Data)
			if e.ConnID != 0x10000+i || seen[i] {
				t.Fatalf("datagram %d on conn %#x (duplicate: %v)", i, e.ConnID, seen[i])
			}
			seen[i] = true
		}
	}
}

func confReliable(t *testing.T, mk Maker) {
	ns := mk(t, "alpha", "beta")
	ab, _ := up(t, ns[0], ns[1])
	const k = 50
	for i := range k {
		for _, id := range []uint32{3, 4} {
			sdu := append(binary.BigEndian.AppendUint32(nil, uint32(i)), bytes.Repeat([]byte{byte(id)}, i*100)...)
			if err := ab.SendReliable(id, sdu); err != nil {
				t.Fatal(err)
			}
		}
	}
	next := map[uint32]uint32{}
	for range 2 * k {
		e := ns[1].Rec.NextKind(StreamData, confWait)
		if got := binary.BigEndian.Uint32(e.Data); got != next[e.ConnID] || len(e.Data) != 4+int(got)*100 {
			t.Fatalf("conn %d: SDU %d (%d octets), want %d", e.ConnID, got, len(e.Data), next[e.ConnID])
		}
		next[e.ConnID]++
	}
	if err := ab.CloseReliable(3); err != nil {
		t.Fatal(err)
	}
}

func confLinkClose(t *testing.T, mk Maker) {
	ns := mk(t, "alpha", "beta")
	ab, _ := up(t, ns[0], ns[1])
	if err := ab.Close(); err != nil {
		t.Fatal(err)
	}
	if e := ns[0].Rec.NextKind(Down, confWait); reasonOf(e.Err) != transport.DownClosedLocally || !errors.Is(e.Err, transport.ErrLinkDown) {
		t.Fatalf("alpha: %v", e)
	}
	if e := ns[1].Rec.NextKind(Down, confWait); reasonOf(e.Err) != transport.DownClosedByPeer {
		t.Fatalf("beta: %v", e)
	}
	for what, err := range map[string]error{
		"Send":         ab.Send(Msg(0x7d, 0)),
		"SendDatagram": ab.SendDatagram(1, nil),
		"SendReliable": ab.SendReliable(1, nil),
	} {
		if !errors.Is(err, transport.ErrLinkDown) {
			t.Errorf("%s after Close: %v, want ErrLinkDown", what, err)
		}
	}
	ab.Close() // idempotent
	// A new link, from the other side.
	_, ab2 := up(t, ns[1], ns[0])
	if ab2 == ab {
		t.Fatal("the closed link came back")
	}
}

func confEndpointClose(t *testing.T, mk Maker) {
	ns := mk(t, "alpha", "beta")
	up(t, ns[0], ns[1])
	if err := ns[1].EP.Close(); err != nil {
		t.Fatal(err)
	}
	if evs := ns[1].Rec.Drain(); len(evs) != 1 || evs[0].Kind != Down || reasonOf(evs[0].Err) != transport.DownEndpointClosed {
		t.Fatalf("beta: %v, want its LinkDown before Close returned", evs)
	}
	if e := ns[0].Rec.NextKind(Down, confWait); reasonOf(e.Err) != transport.DownClosedByPeer {
		t.Fatalf("alpha: %v", e)
	}
	if _, err := ns[1].EP.Dial(context.Background(), "alpha"); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Dial after Close: %v", err)
	}
	if err := ns[1].EP.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func confSimultaneous(t *testing.T, mk Maker) {
	ns := mk(t, "alpha", "beta")
	var la, lb transport.Link
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() { <-start; la = dialOK(t, ns[0], "beta") })
	wg.Go(func() { <-start; lb = dialOK(t, ns[1], "alpha") })
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	if ns[0].Rec.NextKind(Up, confWait).Link != la || ns[1].Rec.NextKind(Up, confWait).Link != lb {
		t.Fatal("Dial and LinkUp disagree")
	}
	la.Send(Msg(0x7d, 1))
	if e := ns[1].Rec.NextKind(Message, confWait); e.Link != lb {
		t.Fatal("not the two ends of one link")
	}
	lb.Send(Msg(0x7d, 2))
	if e := ns[0].Rec.NextKind(Message, confWait); e.Link != la {
		t.Fatal("not the two ends of one link")
	}
	if evs := append(ns[0].Rec.Drain(), ns[1].Rec.Drain()...); len(evs) != 0 {
		t.Fatalf("extra events %v", evs)
	}
}

func confSizes(t *testing.T, mk Maker) {
	ns := mk(t, "alpha", "beta")
	ab, _ := up(t, ns[0], ns[1])
	for _, n := range []int{0, transport.MinMessageLen - 1, transport.MaxMessageLen + 1} {
		if err := ab.Send(make([]byte, n)); !errors.Is(err, transport.ErrMessageSize) {
			t.Errorf("Send of %d octets: %v", n, err)
		}
	}
	big := make([]byte, transport.MaxMessageLen)
	copy(big, Msg(0x05, 77))
	if err := ab.Send(big); err != nil {
		t.Fatal(err)
	}
	if e := ns[1].Rec.NextKind(Message, confWait); len(e.Data) != transport.MaxMessageLen || Seq(e.Data) != 77 {
		t.Fatalf("largest message arrived as %d octets", len(e.Data))
	}
	if max := ab.MaxDatagramPayload(); max < 1000 {
		t.Fatalf("MaxDatagramPayload %d", max)
	}
	CheckDatagramLimit(t, ab)
	if err := ab.SendReliable(1, make([]byte, transport.MaxStreamSDU+1)); !errors.Is(err, transport.ErrMessageSize) {
		t.Fatalf("oversized SDU: %v", err)
	}
}

// CheckDatagramLimit checks that a datagram one octet over
// l.MaxDatagramPayload is refused with a *transport.DatagramTooLargeError.
// The limit may grow meanwhile (path MTU discovery); then the datagram goes
// out whole, which is fine, and the check is made again with the new limit.
func CheckDatagramLimit(t *testing.T, l transport.Link) {
	t.Helper()
	for range 20 {
		max := l.MaxDatagramPayload()
		err := l.SendDatagram(1, make([]byte, max+1))
		if err == nil {
			if l.MaxDatagramPayload() > max {
				continue // the path grew under us
			}
			t.Fatalf("SendDatagram of %d octets over a limit of %d succeeded", max+1, max)
		}
		var tl *transport.DatagramTooLargeError
		if !errors.As(err, &tl) || !errors.Is(err, transport.ErrDatagramTooLarge) || tl.Size != max+1 || tl.Max < max {
			t.Fatalf("SendDatagram of %d octets: %v, want DatagramTooLargeError{Size %d, Max >= %d}", max+1, err, max+1, max)
		}
		return
	}
	t.Fatal("the datagram limit kept growing")
}
