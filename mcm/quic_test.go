package mcm_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/quic"
	"github.com/condis-project/condis/uni"
)

// quicWorld is a world on real QUIC between loopback sockets, with
// throwaway certificates from a fresh cluster CA, in wall-clock time.
type quicWorld struct {
	*world
	ca   *pki.CA
	book *quic.AddrBook
	udp  map[string]*net.UDPConn
	// link supervision of every node's endpoint (zero: the transport's
	// defaults)
	idle, keepalive time.Duration
}

// quicTimers: T309 of 2 s, so a lost node is noticed (1 s idle timeout)
// and its calls closed within a few seconds.
func quicTimers() uni.Timers {
	t := testTimers()
	t.T309 = 2 * time.Second
	return t
}

func newQuicWorld(t *testing.T) *quicWorld {
	w := newQuicWorldWith(t, quicTimers())
	w.idle, w.keepalive = time.Second, 250*time.Millisecond
	return w
}

// newQuicWorldWith is a QUIC world with timers and the transport's default
// link supervision.
func newQuicWorldWith(tb testing.TB, timers uni.Timers) *quicWorld {
	ca, err := pki.NewCA()
	if err != nil {
		tb.Fatal(err)
	}
	return &quicWorld{world: &world{t: tb, timers: timers, limit: 30 * time.Second}, ca: ca, book: &quic.AddrBook{}, udp: map[string]*net.UDPConn{}}
}

func (w *quicWorld) addQuicNode(name string) *node {
	w.t.Helper()
	n := w.addNode(name, nil)
	id, err := w.ca.Issue(name)
	if err != nil {
		w.t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		w.t.Fatal(err)
	}
	ep, err := quic.Listen(quic.Config{Identity: id, Handler: n.d.Handler(), Resolve: w.book.Resolve, PacketConn: udp,
		IdleTimeout: w.idle, KeepAlivePeriod: w.keepalive})
	if err != nil {
		w.t.Fatal(err)
	}
	n.d.Attach(ep)
	n.ep = ep
	w.book.Set(name, udp.LocalAddr())
	w.udp[name] = udp
	return n
}

// TestQuicCall: a call over real QUIC with mutual TLS: data both ways as
// datagrams, then over a reliable VC, a refused call (no such service),
// and normal clearing.
func TestQuicCall(t *testing.T) {
	w := newQuicWorld(t)
	defer w.close()
	a, b := w.addQuicNode("a"), w.addQuicNode("b")
	ca, cb := a.client("alice"), b.client("bob")
	b.listen(cb, "echo")

	start := time.Now()
	va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))
	t.Logf("first call (dial, TLS, SETUP/CONNECT) up in %v", time.Since(start))
	p := payload(1000, 1)
	if st := w.send(ca, va, p); st[0] != ndis.StatusSuccess {
		t.Fatalf("send: %v", st)
	}
	if rx := w.received(cb, vb, 1); !bytes.Equal(rx[0], p) {
		t.Errorf("datagram differs")
	}
	if st := w.send(cb, vb, p[:10]); st[0] != ndis.StatusSuccess {
		t.Fatalf("send back: %v", st)
	}
	w.received(ca, va, 1)
	w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
	ca.DeleteVc(va)

	start = time.Now()
	va, vb = w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(20_000), bestEffort(20_000), true))
	t.Logf("second call up in %v", time.Since(start))
	big := payload(20_000, 3)
	if st := w.send(ca, va, big, big[:5]); st[0] != ndis.StatusSuccess || st[1] != ndis.StatusSuccess {
		t.Fatalf("reliable sends: %v", st)
	}
	if rx := w.received(cb, vb, 2); !bytes.Equal(rx[0], big) || !bytes.Equal(rx[1], big[:5]) {
		t.Errorf("reliable SDUs differ")
	}
	w.hangUp(cb, vb, ca, va, ndis.StatusSuccess)
	ca.DeleteVc(va)

	v := w.call(ca, q2931.CallParams("b", "nosuch", bestEffort(100), bestEffort(100), false))
	if r := memdrv.See(ca, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusInvalidSap {
		t.Errorf("call to an unknown service: %v, want INVALID_SAP", r)
	}
	ca.DeleteVc(v)
}

// TestQuicNodeKilled: node b's UDP socket is closed mid-call (the node
// dies). a's transport notices by its idle timeout (1 s), the call is kept
// for T309 (2 s), then a's client gets IncomingCloseCall with
// NDIS_STATUS_DEST_OUT_OF_ORDER. b, which lost its socket, closes its end
// the same way.
func TestQuicNodeKilled(t *testing.T) {
	w := newQuicWorld(t)
	defer w.close()
	a, b := w.addQuicNode("a"), w.addQuicNode("b")
	ca, cb := a.client("alice"), b.client("bob")
	b.listen(cb, "echo")
	va, vb := w.connect(ca, cb, q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false))

	start := time.Now()
	w.udp["b"].Close()
	w.closedByNetwork(ca, va, ndis.StatusDestOutOfOrder)
	took := time.Since(start)
	t.Logf("a's client told DEST_OUT_OF_ORDER %v after b died (idle timeout 1 s + T309 %v)", took, w.timers.T309)
	if took < w.timers.T309 || took > w.timers.T309+3*time.Second {
		t.Errorf("closed after %v", took)
	}
	w.closedByNetwork(cb, vb, ndis.StatusDestOutOfOrder)
	w.deleted(cb, vb)
	ca.DeleteVc(va)
}
