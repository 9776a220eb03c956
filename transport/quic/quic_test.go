package quic

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/transport"
	tt "github.com/condis-project/condis/transport/transporttest"
)

func TestMain(m *testing.M) {
	// Test sockets wrapped in muteConn cannot have their buffers resized;
	// quic-go would say so on stderr.
	os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	goleak.VerifyTestMain(m)
}

// wait bounds every wait for an event that must come; it is a failure
// deadline, not a measurement.
const wait = 10 * time.Second

type node struct {
	name string
	id   *pki.Identity
	ep   *Endpoint
	rec  *tt.Recorder
	udp  *net.UDPConn
}

type cluster struct {
	t    testing.TB
	ca   *pki.CA
	book *AddrBook
	cfg  func(*Config) // adjusts every node's Config
}

func newCluster(t testing.TB) *cluster {
	ca, err := pki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, ca: ca, book: &AddrBook{}}
}

// start starts a node called name on its own loopback socket and registers
// it in the address book; the node is closed when the test ends.
func (c *cluster) start(name string) *node {
	c.t.Helper()
	id, err := c.ca.Issue(name)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.startWith(name, id)
}

func (c *cluster) startWith(name string, id *pki.Identity) *node {
	c.t.Helper()
	n := &node{name: name, id: id, rec: tt.NewRecorder(c.t, name)}
	n.ep, n.udp = c.listen(id, n.rec)
	c.t.Cleanup(func() { n.ep.Close() })
	return n
}

// listen starts an endpoint for id with handler h on its own loopback
// socket and registers it in the address book; the caller closes it.
func (c *cluster) listen(id *pki.Identity, h transport.Handler) (*Endpoint, *net.UDPConn) {
	c.t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		c.t.Fatal(err)
	}
	cfg := Config{Identity: id, Handler: h, Resolve: c.book.Resolve, PacketConn: udp}
	if c.cfg != nil {
		c.cfg(&cfg)
	}
	ep, err := Listen(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.book.Set(id.Name, udp.LocalAddr())
	return ep, udp
}

func dial(t *testing.T, from *node, to string) transport.Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	l, err := from.ep.Dial(ctx, to)
	if err != nil {
		t.Fatalf("%s dialling %s: %v", from.name, to, err)
	}
	return l
}

// connect dials b from a and returns both ends, checked against the
// recorders' LinkUp events.
func connect(t *testing.T, a, b *node) (ab, ba transport.Link) {
	t.Helper()
	ab = dial(t, a, b.name)
	if e := a.rec.NextKind(tt.Up, wait); e.Link != ab || e.Peer != b.name {
		t.Fatalf("%s: LinkUp %v, want the dialled link to %s", a.name, e, b.name)
	}
	e := b.rec.NextKind(tt.Up, wait)
	if e.Peer != a.name {
		t.Fatalf("%s: LinkUp from %q, want %q", b.name, e.Peer, a.name)
	}
	return ab, e.Link
}

// sigMsg is a minimal Q.2931-shaped message (protocol discriminator 0x09,
// call reference length 3, a message type, message length) whose body
// carries seq and pad octets.
func sigMsg(seq uint32, pad int) []byte {
	body := binary.BigEndian.AppendUint32(nil, seq)
	body = append(body, bytes.Repeat([]byte{0xa5}, pad)...)
	m := []byte{0x09, 0x03, 0x00, 0x00, 0x01, 0x75, 0x80, byte(len(body) >> 8), byte(len(body))}
	return append(m, body...)
}

func seqOf(msg []byte) uint32 { return binary.BigEndian.Uint32(msg[9:]) }

func TestSignallingInOrderAndDatagramsBothWays(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("alpha"), c.start("beta")
	ab, ba := connect(t, a, b)
	if ab.Peer() != "beta" || ba.Peer() != "alpha" {
		t.Fatalf("peers: %q and %q", ab.Peer(), ba.Peer())
	}

	// Signalling: both directions at once, sizes up to the maximum.
	const n = 300
	var wg sync.WaitGroup
	for _, dir := range []struct{ from transport.Link }{{ab}, {ba}} {
		wg.Go(func() {
			for i := range uint32(n) {
				pad := int(i*97) % 2000
				if i == n-1 {
					pad = transport.MaxMessageLen - transport.MinMessageLen - 4
				}
				if err := dir.from.Send(sigMsg(i, pad)); err != nil {
					t.Errorf("Send %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, r := range []*node{a, b} {
		for i := range uint32(n) {
			e := r.rec.NextKind(tt.Message, wait)
			if got := seqOf(e.Data); got != i {
				t.Fatalf("%s: message %d arrived as number %d", r.name, i, got)
			}
			if i == n-1 && len(e.Data) != transport.MaxMessageLen {
				t.Fatalf("%s: last message has %d octets, want %d", r.name, len(e.Data), transport.MaxMessageLen)
			}
		}
	}
	for _, bad := range [][]byte{make([]byte, transport.MinMessageLen-1), make([]byte, transport.MaxMessageLen+1)} {
		if err := ab.Send(bad); !errors.Is(err, transport.ErrMessageSize) {
			t.Errorf("Send of %d octets: %v, want ErrMessageSize", len(bad), err)
		}
	}

	// Datagrams: both directions, each tagged with its own connection
	// identifier; loopback with a handful in flight loses none.
	for _, dir := range []struct {
		from transport.Link
		to   *node
	}{{ab, b}, {ba, a}} {
		const k = 20
		for i := range uint32(k) {
			if err := dir.from.SendDatagram(0x00010020+i, fmt.Appendf(nil, "dg %d from %s", i, dir.from.Peer())); err != nil {
				t.Fatalf("SendDatagram: %v", err)
			}
		}
		seen := map[uint32]bool{}
		for len(seen) < k {
			e := dir.to.rec.NextKind(tt.Datagram, wait)
			i := e.ConnID - 0x00010020
			if want := fmt.Sprintf("dg %d from %s", i, dir.from.Peer()); string(e.Data) != want || seen[i] {
				t.Fatalf("%s: datagram conn %#x carries %q (seen before: %v), want %q", dir.to.name, e.ConnID, e.Data, seen[i], want)
			}
			seen[i] = true
		}
	}

	// The datagram limit: exactly the maximum goes through whole, one more
	// octet is refused (the limit only grows on loopback, as path MTU
	// discovery proceeds).
	max := ab.MaxDatagramPayload()
	if max < 1000 || max > 1500 {
		t.Fatalf("MaxDatagramPayload = %d, want about a packet", max)
	}
	t.Logf("MaxDatagramPayload on loopback: %d octets", max)
	big := bytes.Repeat([]byte{0x5a}, max)
	if err := ab.SendDatagram(1, big); err != nil {
		t.Fatalf("SendDatagram of MaxDatagramPayload octets: %v", err)
	}
	if e := b.rec.NextKind(tt.Datagram, wait); e.ConnID != 1 || !bytes.Equal(e.Data, big) {
		t.Fatalf("largest datagram arrived as %d octets on conn %#x", len(e.Data), e.ConnID)
	}
	tt.CheckDatagramLimit(t, ab)
}

func TestReliableVCStreams(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("alpha"), c.start("beta")
	ab, ba := connect(t, a, b)

	sdu := func(conn uint32, i int) []byte {
		n := (i * 7919) % 70000 // up to 70 kB, beyond one datagram
		if i == 0 {
			n = 0 // an empty SDU is an SDU
		}
		b := binary.BigEndian.AppendUint32(nil, conn)
		b = binary.BigEndian.AppendUint32(b, uint32(i))
		return append(b, bytes.Repeat([]byte{byte(i)}, n)...)
	}
	const n = 60
	conns := []uint32{7, 9, 0x00050021}
	var wg sync.WaitGroup
	for _, from := range []transport.Link{ab, ba} {
		for _, id := range conns {
			wg.Go(func() {
				for i := range n {
					if err := from.SendReliable(id, sdu(id, i)); err != nil {
						t.Errorf("SendReliable(%d, %d): %v", id, i, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for _, to := range []*node{a, b} {
		next := map[uint32]int{}
		for range n * len(conns) {
			e := to.rec.NextKind(tt.StreamData, wait)
			want := sdu(e.ConnID, next[e.ConnID])
			if !bytes.Equal(e.Data, want) {
				t.Fatalf("%s: conn %d SDU %d: got %d octets, want %d", to.name, e.ConnID, next[e.ConnID], len(e.Data), len(want))
			}
			next[e.ConnID]++
		}
	}

	// Closing a stream and using the connection identifier again.
	if err := ab.CloseReliable(7); err != nil {
		t.Fatal(err)
	}
	if err := ab.CloseReliable(12345); err != nil {
		t.Fatalf("CloseReliable of a stream never opened: %v", err)
	}
	if err := ab.SendReliable(7, []byte("again")); err != nil {
		t.Fatal(err)
	}
	if e := b.rec.NextKind(tt.StreamData, wait); e.ConnID != 7 || string(e.Data) != "again" {
		t.Fatalf("after reopening: %v %q", e, e.Data)
	}
	if err := ab.SendReliable(1, make([]byte, transport.MaxStreamSDU+1)); !errors.Is(err, transport.ErrMessageSize) {
		t.Fatalf("oversized SDU: %v, want ErrMessageSize", err)
	}
}

// rawDial connects with quic-go directly, as a client that is not a condis
// node would, sends a HELLO, and reports how the connection ended: the dial
// error, or the error that closed it shortly after (TLS 1.3 servers reject a
// client certificate after the client has finished its side of the
// handshake). It returns nil if the connection is still open when stop is
// closed or after two seconds.
func rawDial(t *testing.T, addr net.Addr, tlsConf *tls.Config, stop <-chan struct{}) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := quicgo.DialAddr(ctx, addr.String(), tlsConf, &quicgo.Config{EnableDatagrams: true})
	if err != nil {
		return err
	}
	defer conn.CloseWithError(0, "")
	if st, err := conn.OpenStream(); err == nil {
		st.Write([]byte{preambleHello, 0, 0, 0, 0, 0, 0, 0, 1})
	}
	timer := time.NewTimer(2 * time.Second)
	defer timer.Stop()
	select {
	case <-conn.Context().Done():
		return context.Cause(conn.Context())
	case <-stop:
		return nil
	case <-timer.C:
		return nil
	}
}

// isCryptoError reports whether err is the TLS alert alert (0x100+alert as a
// QUIC transport error code).
func isCryptoError(err error, alert uint8) bool {
	var te *quicgo.TransportError
	return errors.As(err, &te) && te.ErrorCode == quicgo.TransportErrorCode(0x100+uint16(alert))
}

func TestPeerFromAnotherCAIsRefused(t *testing.T) {
	c := newCluster(t)
	a := c.start("alpha")

	// mallory calls itself beta, with a certificate from its own CA.
	other := newCluster(t)
	mid, err := other.ca.Issue("beta")
	if err != nil {
		t.Fatal(err)
	}
	mallory := c.startWith("beta", mid) // in c's address book as beta

	// alpha dials "beta": mallory's server certificate does not verify.
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := a.ep.Dial(ctx, "beta"); err == nil {
		t.Fatal("alpha accepted a server certificate from another CA")
	} else {
		t.Logf("alpha dialling mallory: %v", err)
	}
	// mallory dials alpha: mallory itself does not trust alpha's CA, so
	// use a client that trusts it and presents mallory's certificate.
	// (GetClientCertificate, because crypto/tls would otherwise send no
	// certificate to a server that asks for alpha's CA.)
	err = rawDial(t, a.ep.Addr(), &tls.Config{
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &mid.Certificate, nil },
		RootCAs:              a.id.CAs,
		ServerName:           "alpha",
		NextProtos:           []string{ALPN},
	}, nil)
	if !isCryptoError(err, 42) && !isCryptoError(err, 48) { // bad_certificate, unknown_ca
		t.Fatalf("client certificate from another CA: %v, want a TLS bad_certificate or unknown_ca alert", err)
	}
	t.Logf("mallory dialling alpha: %v", err)

	// A good node still gets in, and is the only link alpha ever reported.
	g := c.start("gamma")
	connect(t, g, a)
	if n := a.rec.Ups("beta"); n != 0 {
		t.Fatalf("alpha reported %d links from the impostor", n)
	}
	if n := mallory.rec.Ups("alpha"); n != 0 {
		t.Fatalf("mallory reported %d links to alpha", n)
	}
	if evs := a.rec.Drain(); len(evs) != 0 {
		t.Fatalf("alpha: unexpected events %v", evs)
	}
}

func TestClientWithoutCertificateIsRefused(t *testing.T) {
	c := newCluster(t)
	a := c.start("alpha")
	err := rawDial(t, a.ep.Addr(), &tls.Config{RootCAs: a.id.CAs, ServerName: "alpha", NextProtos: []string{ALPN}}, nil)
	if !isCryptoError(err, 116) { // certificate_required
		t.Fatalf("client without certificate: %v, want a TLS certificate_required alert", err)
	}
	t.Logf("no client certificate: %v", err)
	if evs := a.rec.Drain(); len(evs) != 0 {
		t.Fatalf("alpha reported %v", evs)
	}
}

func TestWrongALPNIsRefused(t *testing.T) {
	c := newCluster(t)
	a := c.start("alpha")
	b, err := c.ca.Issue("beta")
	if err != nil {
		t.Fatal(err)
	}
	for _, protos := range [][]string{{"condis/2"}, {"h3"}} {
		err := rawDial(t, a.ep.Addr(), &tls.Config{
			Certificates: []tls.Certificate{b.Certificate},
			RootCAs:      a.id.CAs,
			ServerName:   "alpha",
			NextProtos:   protos,
		}, nil)
		if !isCryptoError(err, 120) { // no_application_protocol
			t.Fatalf("ALPN %q: %v, want a TLS no_application_protocol alert", protos, err)
		}
	}
	if evs := a.rec.Drain(); len(evs) != 0 {
		t.Fatalf("alpha reported %v", evs)
	}
	// The right ALPN with the same certificate is let in.
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- rawDial(t, a.ep.Addr(), &tls.Config{
			Certificates: []tls.Certificate{b.Certificate},
			RootCAs:      a.id.CAs,
			ServerName:   "alpha",
			NextProtos:   []string{ALPN},
		}, stop)
	}()
	if e := a.rec.NextKind(tt.Up, wait); e.Peer != "beta" {
		t.Fatalf("alpha: %v", e)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("ALPN %q: %v", ALPN, err)
	}
	a.rec.NextKind(tt.Down, wait)
}

func TestDialledNameMustMatchCertificate(t *testing.T) {
	c := newCluster(t)
	a, g := c.start("alpha"), c.start("gamma")
	c.book.Set("beta", g.ep.Addr()) // beta's entry points at gamma
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := a.ep.Dial(ctx, "beta"); err == nil {
		t.Fatal("alpha accepted gamma as beta")
	} else {
		t.Logf("alpha dialling beta at gamma's address: %v", err)
	}
	if n := g.rec.Ups("alpha"); n != 0 {
		t.Fatalf("gamma reported %d links", n)
	}
	if _, err := a.ep.Dial(ctx, "delta"); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("dialling an unknown name: %v, want ErrUnknownPeer", err)
	}
	if _, err := a.ep.Dial(ctx, "alpha"); !errors.Is(err, transport.ErrUnknownPeer) {
		t.Fatalf("dialling itself: %v, want ErrUnknownPeer", err)
	}
}

// checkOneLink asserts that a and b each have exactly one link, that they are
// the two ends of one connection, dialled by the smaller name if want is
// set, and that the Dial results are those links.
func checkOneLink(t *testing.T, a, b *node, la, lb transport.Link, smallerWins bool) {
	t.Helper()
	ea := a.rec.NextKind(tt.Up, wait)
	eb := b.rec.NextKind(tt.Up, wait)
	if ea.Link != la || eb.Link != lb {
		t.Fatalf("Dial returned other links than LinkUp reported")
	}
	ia, ib := la.(*link), lb.(*link)
	if ia.dialled == ib.dialled {
		t.Fatalf("both ends claim dialled=%v: not one connection", ia.dialled)
	}
	if smallerWins && !ia.dialled { // a is the smaller name in these tests
		t.Fatalf("the connection dialled by %s won; want %s's", b.name, a.name)
	}
	// The two ends talk to each other.
	if err := la.Send(sigMsg(1, 0)); err != nil {
		t.Fatal(err)
	}
	if e := b.rec.NextKind(tt.Message, wait); e.Link != lb {
		t.Fatal("message arrived on another link")
	}
	if evs := append(a.rec.Drain(), b.rec.Drain()...); len(evs) != 0 {
		t.Fatalf("extra events: %v", evs)
	}
}

func TestSimultaneousDialYieldsOneLink(t *testing.T) {
	for round := range 10 {
		c := newCluster(t)
		a, b := c.start("alpha"), c.start("beta")
		var la, lb transport.Link
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() { <-start; la = dial(t, a, "beta") })
		wg.Go(func() { <-start; lb = dial(t, b, "alpha") })
		close(start)
		wg.Wait()
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
		checkOneLink(t, a, b, la, lb, false)
		a.ep.Close()
		b.ep.Close()
	}
}

// gatedResolve wraps Resolve so that dials to peer wait for release: it
// holds a dial between "dialling" and the handshake.
func gatedResolve(book *AddrBook, entered chan<- struct{}, release <-chan struct{}) func(context.Context, string) (net.Addr, error) {
	return func(ctx context.Context, peer string) (net.Addr, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return book.Resolve(ctx, peer)
	}
}

// TestSimultaneousDialTieBreak forces both orders of a crossing dial and
// checks that the connection dialled by the smaller name wins both times.
func TestSimultaneousDialTieBreak(t *testing.T) {
	for _, held := range []string{"alpha", "beta"} {
		t.Run("held "+held, func(t *testing.T) {
			c := newCluster(t)
			entered, release := make(chan struct{}, 1), make(chan struct{})
			c.cfg = func(cfg *Config) {
				if cfg.Identity.Name == held {
					cfg.Resolve = gatedResolve(c.book, entered, release)
				}
			}
			a, b := c.start("alpha"), c.start("beta")
			first, second := a, b
			if held == "beta" {
				first, second = b, a
			}
			var l1, l2 transport.Link
			var wg sync.WaitGroup
			wg.Go(func() { l1 = dial(t, first, second.name) })
			<-entered // first is dialling, held before its handshake
			done := make(chan struct{})
			go func() { l2 = dial(t, second, first.name); close(done) }()
			if held == "beta" {
				// alpha's dial reaches beta while beta is dialling;
				// beta accepts it (alpha < beta) and alpha's Dial
				// returns before beta's dial is released.
				<-done
			}
			close(release)
			wg.Wait()
			<-done
			la, lb := l1, l2
			if held == "beta" {
				la, lb = l2, l1
			}
			checkOneLink(t, a, b, la, lb, true)
		})
	}
}

func TestCloseIsReportedOnBothSides(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("alpha"), c.start("beta")
	ab, _ := connect(t, a, b)
	ab.Close()
	if e := a.rec.NextKind(tt.Down, wait); !isReason(e.Err, transport.DownClosedLocally) {
		t.Fatalf("alpha: %v, want closed locally", e)
	}
	if e := b.rec.NextKind(tt.Down, wait); !isReason(e.Err, transport.DownClosedByPeer) {
		t.Fatalf("beta: %v, want closed by peer", e)
	}
	if err := ab.Send(sigMsg(1, 0)); !errors.Is(err, transport.ErrLinkDown) {
		t.Fatalf("Send after Close: %v, want ErrLinkDown", err)
	}
	if err := ab.SendDatagram(1, nil); !errors.Is(err, transport.ErrLinkDown) {
		t.Fatalf("SendDatagram after Close: %v, want ErrLinkDown", err)
	}
	if err := ab.SendReliable(1, nil); !errors.Is(err, transport.ErrLinkDown) {
		t.Fatalf("SendReliable after Close: %v, want ErrLinkDown", err)
	}

	// Redial from the other side: a new link, LinkUp on both.
	_, ab2 := connect(t, b, a)
	if ab2 == ab {
		t.Fatal("the old link came back")
	}
	// Endpoint.Close: LinkDown before Close returns, peer told.
	b.ep.Close()
	if evs := b.rec.Drain(); len(evs) != 1 || !isReason(evs[0].Err, transport.DownEndpointClosed) {
		t.Fatalf("beta: %v, want its LinkDown (endpoint closed) before Close returned", evs)
	}
	if e := a.rec.NextKind(tt.Down, wait); !isReason(e.Err, transport.DownClosedByPeer) {
		t.Fatalf("alpha: %v, want closed by peer", e)
	}
	if _, err := b.ep.Dial(context.Background(), "alpha"); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Dial after Close: %v, want ErrClosed", err)
	}
}

func isReason(err error, r transport.DownReason) bool {
	var de *transport.LinkDownError
	return errors.As(err, &de) && de.Reason == r
}

func TestFramingErrorClosesTheLink(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("alpha"), c.start("beta")
	ab, _ := connect(t, a, b)
	// A frame length of 8: below the Q.2931 header.
	ab.(*link).sig.Write([]byte{0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})
	if e := b.rec.NextKind(tt.Down, wait); !isReason(e.Err, transport.DownProtocol) {
		t.Fatalf("beta: %v, want protocol error", e)
	}
	if e := a.rec.NextKind(tt.Down, wait); !isReason(e.Err, transport.DownProtocol) {
		t.Fatalf("alpha: %v, want protocol error", e)
	}
}

// TestDeadPeerIsDetected kills beta abruptly (its UDP socket closed: no
// CONNECTION_CLOSE leaves) and measures how long alpha takes to report the
// link down, with short timeouts and with the defaults.
func TestDeadPeerIsDetected(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keepAlive time.Duration
		idle      time.Duration
	}{
		{"short", 100 * time.Millisecond, 400 * time.Millisecond},
		{"default", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "default" && testing.Short() {
				t.Skip("takes the default detection time (3-4 s)")
			}
			c := newCluster(t)
			c.cfg = func(cfg *Config) { cfg.KeepAlivePeriod, cfg.IdleTimeout = tc.keepAlive, tc.idle }
			a, b := c.start("alpha"), c.start("beta")
			connect(t, a, b)
			// Some traffic first, as a live link would have.
			ab := a.rec.Active("beta")
			ab.Send(sigMsg(1, 0))
			b.rec.NextKind(tt.Message, wait)

			killed := time.Now()
			b.udp.Close()
			e := a.rec.NextKind(tt.Down, wait)
			detect := e.At.Sub(killed)
			if !isReason(e.Err, transport.DownTimeout) {
				t.Fatalf("alpha: %v, want timeout", e)
			}
			ka, idle := tc.keepAlive, tc.idle
			if ka == 0 {
				ka, idle = DefaultKeepAlivePeriod, DefaultIdleTimeout
			}
			t.Logf("keep-alive %v, idle timeout %v: dead peer detected after %v", ka, idle, detect.Round(time.Millisecond))
			if e := b.rec.NextKind(tt.Down, wait); !isReason(e.Err, transport.DownNetwork) {
				t.Fatalf("beta: %v, want network error", e)
			}
		})
	}
}

// TestRestartedPeerSupersedesItsOldLink restarts beta (new socket, new
// incarnation) before alpha notices the old one died: the new connection
// replaces the old link at once.
func TestRestartedPeerSupersedesItsOldLink(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("alpha"), c.start("beta")
	connect(t, a, b)
	b.udp.Close()
	b.rec.NextKind(tt.Down, wait)
	b.ep.Close()

	b2 := c.startWith("beta", b.id)
	l := dial(t, b2, "alpha")
	b2.rec.NextKind(tt.Up, wait)
	if e := a.rec.NextKind(tt.Down, wait); !isReason(e.Err, transport.DownSuperseded) {
		t.Fatalf("alpha: %v, want superseded", e)
	}
	e := a.rec.NextKind(tt.Up, wait)
	if e.Peer != "beta" {
		t.Fatalf("alpha: %v", e)
	}
	l.Send(sigMsg(7, 0))
	if m := a.rec.NextKind(tt.Message, wait); m.Link != e.Link || seqOf(m.Data) != 7 {
		t.Fatal("message did not arrive on the new link")
	}
}

// muteConn is a socket whose sending can be switched off: packets written
// while muted vanish.
type muteConn struct {
	net.PacketConn
	muted atomic.Bool
}

func (m *muteConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if m.muted.Load() {
		return len(p), nil
	}
	return m.PacketConn.WriteTo(p, addr)
}

// TestLostLinkIsReplacedQuickly covers the peer that lost the connection
// while this side still holds it: beta closes its connection while its
// packets vanish (so alpha still holds the link, as after beta's idle
// timeout), then dials again with the same incarnation. alpha refuses the
// duplicate and pokes the old connection, which beta answers with a
// stateless reset (or its lingering CONNECTION_CLOSE); beta's retry then
// succeeds, long before alpha's one-minute idle timeout.
func TestLostLinkIsReplacedQuickly(t *testing.T) {
	c := newCluster(t)
	var mute *muteConn
	c.cfg = func(cfg *Config) {
		cfg.IdleTimeout, cfg.KeepAlivePeriod = time.Minute, 20*time.Second
		if cfg.Identity.Name == "beta" {
			mute = &muteConn{PacketConn: cfg.PacketConn}
			cfg.PacketConn = mute
		}
	}
	a, b := c.start("alpha"), c.start("beta")
	_, ba := connect(t, a, b)
	mute.muted.Store(true)
	ba.Close()
	if e := b.rec.NextKind(tt.Down, wait); !isReason(e.Err, transport.DownClosedLocally) {
		t.Fatalf("beta: %v", e)
	}
	mute.muted.Store(false)
	if evs := a.rec.Drain(); len(evs) != 0 {
		t.Fatalf("alpha noticed: %v", evs)
	}

	start := time.Now()
	l := dial(t, b, "alpha")
	took := time.Since(start)
	e := a.rec.NextKind(tt.Down, wait)
	if !isReason(e.Err, transport.DownReset) && !isReason(e.Err, transport.DownClosedByPeer) {
		t.Fatalf("alpha: %v, want reset or closed by peer", e)
	}
	t.Logf("alpha's stale link went down (%v); beta's redial took %v", e.Err, took)
	up := a.rec.NextKind(tt.Up, wait)
	b.rec.NextKind(tt.Up, wait)
	l.Send(sigMsg(3, 0))
	if m := a.rec.NextKind(tt.Message, wait); m.Link != up.Link {
		t.Fatal("message on another link")
	}
}

func TestConformance(t *testing.T) {
	tt.Conformance(t, func(t *testing.T, names ...string) []tt.Node {
		c := newCluster(t)
		var ns []tt.Node
		for _, name := range names {
			n := c.start(name)
			ns = append(ns, tt.Node{EP: n.ep, Rec: n.rec})
		}
		return ns
	}, nil)
}
