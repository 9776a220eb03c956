package miniport_test

import (
	"net"
	"testing"
	"time"

	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/transport/quic"
)

// quicNet makes nodes on real QUIC between loopback sockets, with
// throwaway certificates from a fresh cluster CA, in wall-clock time.
type quicNet struct {
	t    *testing.T
	ca   *pki.CA
	book *quic.AddrBook
}

func newQuicNet(t *testing.T) *quicNet {
	ca, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return &quicNet{t: t, ca: ca, book: &quic.AddrBook{}}
}

func (q *quicNet) node(name string, cfg miniport.Config) *node {
	q.t.Helper()
	n := newNode(q.t, name, cfg)
	id, err := q.ca.Issue(name)
	if err != nil {
		q.t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		q.t.Fatal(err)
	}
	ep, err := quic.Listen(quic.Config{Identity: id, Handler: n.mp.Handler(), Resolve: q.book.Resolve, PacketConn: udp})
	if err != nil {
		q.t.Fatal(err)
	}
	n.ep = ep
	n.mp.Attach(ep)
	q.book.Set(name, udp.LocalAddr())
	n.cm = bindCM(q.t, n.mp, n.m)
	return n
}

// TestExchangeQuic: the main scenario over QUIC with mutual TLS.
func TestExchangeQuic(t *testing.T) {
	q := newQuicNet(t)
	a, b := q.node("a", miniport.Config{}), q.node("b", miniport.Config{})
	exchange(t, a, b, 1000, nil)
	a.finish()
	b.finish()
}

// TestCloseCompletesPending: Close with an activation pended on a dial
// that gets no answer (a socket that never replies), a deactivation
// pended on shaped sends and those sends: the activation completes with
// NDIS_STATUS_CLOSING, the sends with NDIS_STATUS_FAILURE, the
// deactivation with SUCCESS after them, each exactly once, and no
// goroutine is left (goleak, TestMain).
func TestCloseCompletesPending(t *testing.T) {
	q := newQuicNet(t)
	a, b := q.node("a", miniport.Config{MaxShapingDelay: time.Minute, DialTimeout: time.Minute}), q.node("b", miniport.Config{})
	ghost, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ghost.Close()
	q.book.Set("ghost", ghost.LocalAddr())

	aSig := a.cm.createVc("a-sig")
	a.cm.mustActivate(aSig, sig("b"), ndis.StatusPending)
	a.cm.event()
	av := a.cm.createVc("a-dg")
	slow := miniport.Traffic{TokenRate: 1000, TokenBucketSize: 1000, MaxSduSize: 1000}
	a.cm.mustActivate(av, data(miniport.Datagram, "b", 90, slow, open), ndis.StatusSuccess)
	a.cm.sendAsync(av, sdu(1000, 0), sdu(1000, 1), sdu(1000, 2))
	if st := a.cm.b.CmDeactivateVc(av.h); st != ndis.StatusPending {
		t.Fatalf("deactivation with shaped sends in flight: %v, want PENDING", st)
	}
	gv := a.cm.createVc("ghost-sig")
	if st := a.cm.b.CmActivateVc(gv.h, &ndis.CallParameters{MediaParameters: sig("ghost").Media()}); st != ndis.StatusPending {
		t.Fatalf("activation towards a silent peer: %v, want PENDING", st)
	}

	a.mp.Close()
	// Everything has completed when Close returns.
	if len(gv.act) != 1 || <-gv.act != ndis.StatusClosing {
		t.Errorf("the pended activation did not complete once with CLOSING")
	}
	if len(av.sent) != 3 {
		t.Fatalf("%d of 3 sends completed by Close", len(av.sent))
	}
	st := a.cm.sentStatuses(av, 3)
	if st[0] != ndis.StatusSuccess || st[1] != ndis.StatusFailure || st[2] != ndis.StatusFailure {
		t.Errorf("sends: %v; want SUCCESS, FAILURE, FAILURE", st)
	}
	if len(av.deact) != 1 || <-av.deact != ndis.StatusSuccess {
		t.Errorf("the pended deactivation did not complete once with SUCCESS")
	}
	a.mp.Close() // idempotent: nothing completes twice
	if len(gv.act)+len(av.sent)+len(av.deact) != 0 {
		t.Errorf("a second completion after Close")
	}
	a.cm.teardown(av, false)
	a.cm.teardown(gv, false)
	a.cm.teardown(aSig, true)
	a.finish()
	b.finish()
}
