package quic

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/trace"
)

// logRecords is a slog.Handler that keeps every record, its attributes
// (with those of the logger) flattened to strings.
type logRecords struct {
	mu    *sync.Mutex
	recs  *[]logRecord
	attrs []slog.Attr
}

type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func newLogRecords() *logRecords { return &logRecords{mu: new(sync.Mutex), recs: new([]logRecord)} }

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.Attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.recs = append(*h.recs, rec)
	return nil
}

func (h *logRecords) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecords{mu: h.mu, recs: h.recs, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *logRecords) WithGroup(string) slog.Handler { return h }

// with returns the records whose message is msg.
func (h *logRecords) with(msg string) []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRecord
	for _, r := range *h.recs {
		if r.Msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// noDoubledPrefix fails the test if a record's text repeats a prefix of
// its own ("timeout: timeout: ...").
func noDoubledPrefix(t *testing.T, r logRecord) {
	t.Helper()
	for k, v := range r.Attrs {
		parts := strings.Split(v, ": ")
		for i := 1; i < len(parts); i++ {
			if parts[i] == parts[i-1] {
				t.Errorf("%s=%q repeats %q", k, v, parts[i])
			}
		}
	}
}

// observed is a node whose endpoint logs to a logRecords and traces its
// refused handshakes.
type observed struct {
	*node
	log *logRecords
	hs  chan trace.Handshake
}

// startObserved starts name with id (a certificate of c's CA if nil).
func (c *cluster) startObserved(name string, id *pki.Identity) *observed {
	c.t.Helper()
	if id == nil {
		var err error
		if id, err = c.ca.Issue(name); err != nil {
			c.t.Fatal(err)
		}
	}
	o := &observed{log: newLogRecords(), hs: make(chan trace.Handshake, 16)}
	saved := c.cfg
	c.cfg = func(cfg *Config) {
		cfg.Logger = slog.New(o.log)
		cfg.Tracer = trace.Tracer{Handshake: func(h trace.Handshake) { o.hs <- h }}
	}
	o.node = c.startWith(name, id)
	c.cfg = saved
	return o
}

// wantRefusal is what one side of a refused handshake should report.
type wantRefusal struct {
	reason string
	byPeer bool
	peer   string   // the name the remote claimed or was dialled as
	remote net.Addr // nil: not checked
	dialed bool
}

// checkRefusal waits for o's next trace.Handshake event and checks it, and
// that o logged it in one "handshake refused" line.
func checkRefusal(t *testing.T, o *observed, want wantRefusal) {
	t.Helper()
	h := nextRefusal(t, o)
	if h.Reason != want.reason || h.ByPeer != want.byPeer || h.Peer != want.peer || h.Dialed != want.dialed ||
		h.Node != o.name || h.Err == nil || h.Time.IsZero() {
		t.Errorf("%s: event %+v, want %+v", o.name, h, want)
	}
	if want.remote != nil && (h.Remote == nil || h.Remote.String() != want.remote.String()) {
		t.Errorf("%s: remote %v, want %v", o.name, h.Remote, want.remote)
	}
	lines := o.log.with("handshake refused")
	if len(lines) != 1 {
		t.Fatalf("%s: %d handshake refused lines, want 1: %+v", o.name, len(lines), lines)
	}
	l := lines[0]
	by := map[bool]string{false: "this node", true: "peer"}[want.byPeer]
	if l.Level != slog.LevelWarn || l.Attrs["reason"] != want.reason || l.Attrs["refused_by"] != by ||
		l.Attrs["dialled"] != fmt.Sprint(want.dialed) || l.Attrs["peer"] != want.peer || l.Attrs["node"] != o.name ||
		l.Attrs["remote"] != fmt.Sprint(h.Remote) || l.Attrs["err"] == "" {
		t.Errorf("%s: log line %+v, want reason %q refused_by %q peer %q remote %v", o.name, l, want.reason, by, want.peer, h.Remote)
	}
	noDoubledPrefix(t, l)
	t.Logf("%s: %v %v", o.name, l.Msg, l.Attrs)
}

// nextRefusal waits for o's next trace.Handshake event.
func nextRefusal(t *testing.T, o *observed) trace.Handshake {
	t.Helper()
	select {
	case h := <-o.hs:
		return h
	case <-time.After(wait):
		t.Fatalf("%s: no refused handshake reported", o.name)
		return trace.Handshake{}
	}
}

// noMoreRefusals checks that o reported no refused handshake beyond those
// checked.
func noMoreRefusals(t *testing.T, o *observed) {
	t.Helper()
	select {
	case h := <-o.hs:
		t.Errorf("%s: unexpected refusal %+v", o.name, h)
	default:
	}
}

// issueValid is ca.Issue with the validity period given: certificates no
// node would be issued, for tests.
func issueValid(t *testing.T, ca *pki.CA, name string, notBefore, notAfter time.Time) *pki.Identity {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &pki.Identity{Name: name, Certificate: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, CAs: ca.Pool()}
}

// dialRefused dials to from from and fails the test if it succeeds.
func dialRefused(t *testing.T, from *observed, to string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := from.ep.Dial(ctx, to); err == nil {
		t.Fatalf("%s dialling %s: the handshake succeeded", from.name, to)
	} else {
		t.Logf("%s dialling %s: %v", from.name, to, err)
	}
}

// rawClient is a QUIC client (or server) that is not a condis node, on a
// socket of its own (so that its address is known and stays the same
// across dials).
type rawClient struct {
	tr *quicgo.Transport
}

func newRawClient(t *testing.T) *rawClient {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{tr: &quicgo.Transport{Conn: udp}}
	t.Cleanup(func() { c.tr.Close(); udp.Close() })
	return c
}

func (c *rawClient) addr() net.Addr { return c.tr.Conn.LocalAddr() }

// dial connects to addr and returns how the connection ended: the dial
// error, or the one that closed it (a server refuses a client certificate
// after the client has finished its handshake).
func (c *rawClient) dial(t *testing.T, addr net.Addr, conf *tls.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := c.tr.Dial(ctx, addr, conf, &quicgo.Config{EnableDatagrams: true})
	if err != nil {
		return err
	}
	defer conn.CloseWithError(0, "")
	select {
	case <-conn.Context().Done():
		return context.Cause(conn.Context())
	case <-ctx.Done():
		return nil
	}
}

// TestRefusedHandshakes: every kind of refused handshake is reported, as a
// trace.Handshake event and one "handshake refused" log line with the
// remote address and the reason in words, by the side that refused and,
// where TLS lets it know (the alert it was sent), by the other side.
func TestRefusedHandshakes(t *testing.T) {
	t.Run("certificate from another CA, dialled", func(t *testing.T) {
		c := newCluster(t)
		a := c.startObserved("alpha", nil)
		other := newCluster(t)
		mid, err := other.ca.Issue("beta")
		if err != nil {
			t.Fatal(err)
		}
		m := c.startObserved("beta", mid) // mallory, at beta's address
		dialRefused(t, a, "beta")
		checkRefusal(t, a, wantRefusal{reason: ReasonUnknownAuthority, peer: "beta", remote: m.ep.Addr(), dialed: true})
		// A client refusing a server's certificate sends bad_certificate.
		checkRefusal(t, m, wantRefusal{reason: ReasonBadCertificate, byPeer: true, remote: a.ep.Addr()})
		noMoreRefusals(t, a)
		noMoreRefusals(t, m)
	})
	t.Run("certificate from another CA, accepted", func(t *testing.T) {
		c := newCluster(t)
		a := c.startObserved("alpha", nil)
		other := newCluster(t)
		mid, err := other.ca.Issue("beta")
		if err != nil {
			t.Fatal(err)
		}
		mid.CAs.AddCert(c.ca.Cert) // mallory accepts alpha's certificate
		m := c.startObserved("beta", mid)
		dialRefused(t, m, "alpha")
		checkRefusal(t, a, wantRefusal{reason: ReasonUnknownAuthority, peer: "beta", remote: m.ep.Addr()})
		checkRefusal(t, m, wantRefusal{reason: ReasonUnknownAuthority, byPeer: true, peer: "alpha", remote: a.ep.Addr(), dialed: true})
	})
	t.Run("name not a configured peer", func(t *testing.T) {
		c := newCluster(t)
		a, g := c.startObserved("alpha", nil), c.startObserved("gamma", nil)
		c.book.Set("beta", g.ep.Addr()) // beta's address answers as gamma
		dialRefused(t, a, "beta")
		checkRefusal(t, a, wantRefusal{reason: ReasonNotConfiguredPeer, peer: "beta", remote: g.ep.Addr(), dialed: true})
		checkRefusal(t, g, wantRefusal{reason: ReasonBadCertificate, byPeer: true, remote: a.ep.Addr()})
	})
	now := time.Now()
	t.Run("expired certificate, dialled", func(t *testing.T) {
		c := newCluster(t)
		a := c.startObserved("alpha", nil)
		b := c.startObserved("beta", issueValid(t, c.ca, "beta", now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
		dialRefused(t, a, "beta")
		checkRefusal(t, a, wantRefusal{reason: ReasonExpired, peer: "beta", remote: b.ep.Addr(), dialed: true})
		checkRefusal(t, b, wantRefusal{reason: ReasonBadCertificate, byPeer: true, remote: a.ep.Addr()})
	})
	t.Run("expired certificate, accepted", func(t *testing.T) {
		c := newCluster(t)
		a := c.startObserved("alpha", nil)
		b := c.startObserved("beta", issueValid(t, c.ca, "beta", now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
		dialRefused(t, b, "alpha")
		checkRefusal(t, a, wantRefusal{reason: ReasonExpired, peer: "beta", remote: b.ep.Addr()})
		checkRefusal(t, b, wantRefusal{reason: ReasonExpired, byPeer: true, peer: "alpha", remote: a.ep.Addr(), dialed: true})
	})
	t.Run("certificate not yet valid, accepted", func(t *testing.T) {
		c := newCluster(t)
		a := c.startObserved("alpha", nil)
		b := c.startObserved("beta", issueValid(t, c.ca, "beta", now.Add(24*time.Hour), now.Add(48*time.Hour)))
		dialRefused(t, b, "alpha")
		checkRefusal(t, a, wantRefusal{reason: ReasonNotYetValid, peer: "beta", remote: b.ep.Addr()})
		// TLS has one alert for both ends of the validity period.
		checkRefusal(t, b, wantRefusal{reason: ReasonExpired, byPeer: true, peer: "alpha", remote: a.ep.Addr(), dialed: true})
	})
	t.Run("no client certificate", func(t *testing.T) {
		c := newCluster(t)
		a := c.startObserved("alpha", nil)
		rc := newRawClient(t)
		err := rc.dial(t, a.ep.Addr(), &tls.Config{RootCAs: a.id.CAs, ServerName: "alpha", NextProtos: []string{ALPN}})
		if !isCryptoError(err, alertCertificateRequired) {
			t.Fatalf("client without a certificate: %v, want certificate_required", err)
		}
		checkRefusal(t, a, wantRefusal{reason: ReasonNoCertificate, remote: rc.addr()})
	})
	t.Run("wrong protocol, accepted", func(t *testing.T) {
		c := newCluster(t)
		a := c.startObserved("alpha", nil)
		b, err := c.ca.Issue("beta")
		if err != nil {
			t.Fatal(err)
		}
		rc := newRawClient(t)
		err = rc.dial(t, a.ep.Addr(), &tls.Config{Certificates: []tls.Certificate{b.Certificate}, RootCAs: a.id.CAs,
			ServerName: "alpha", NextProtos: []string{"h3"}})
		if !isCryptoError(err, alertNoApplicationProtocol) {
			t.Fatalf("ALPN h3: %v, want no_application_protocol", err)
		}
		checkRefusal(t, a, wantRefusal{reason: ReasonWrongProtocol, remote: rc.addr()})
	})
	t.Run("wrong protocol, dialled", func(t *testing.T) {
		c := newCluster(t)
		a := c.startObserved("alpha", nil)
		b, err := c.ca.Issue("beta")
		if err != nil {
			t.Fatal(err)
		}
		// An HTTP/3 server with a certificate of the cluster at beta's
		// address.
		srv := newRawClient(t)
		ln, err := srv.tr.Listen(&tls.Config{Certificates: []tls.Certificate{b.Certificate}, NextProtos: []string{"h3"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c.book.Set("beta", srv.addr())
		dialRefused(t, a, "beta")
		checkRefusal(t, a, wantRefusal{reason: ReasonWrongProtocol, byPeer: true, peer: "beta", remote: srv.addr(), dialed: true})
	})
}

// TestRefusedHandshakeLogIsRateLimited: two refusals from one address
// within the window make one log line (and two trace events); another
// address has its own line.
func TestRefusedHandshakeLogIsRateLimited(t *testing.T) {
	c := newCluster(t)
	a := c.startObserved("alpha", nil)
	noCert := &tls.Config{RootCAs: a.id.CAs, ServerName: "alpha", NextProtos: []string{ALPN}}
	rc, rc2 := newRawClient(t), newRawClient(t)
	for range 2 {
		rc.dial(t, a.ep.Addr(), noCert)
		if h := nextRefusal(t, a); h.Remote.String() != rc.addr().String() || h.Reason != ReasonNoCertificate {
			t.Fatalf("event %+v", h)
		}
	}
	rc2.dial(t, a.ep.Addr(), noCert)
	if h := nextRefusal(t, a); h.Remote.String() != rc2.addr().String() {
		t.Fatalf("event %+v", h)
	}
	lines := a.log.with("handshake refused")
	if len(lines) != 2 || lines[0].Attrs["remote"] != rc.addr().String() || lines[1].Attrs["remote"] != rc2.addr().String() {
		t.Fatalf("log lines %+v, want one for %v and one for %v", lines, rc.addr(), rc2.addr())
	}
}

// TestRefusalLogWindows: the refusals of an address for one reason within
// a window after its line are counted, and the count is logged when the
// window ends, in a line that opens a new window; another reason has a
// line of its own; an address quiet for a whole window is forgotten, and
// its next refusal is logged at once.
func TestRefusalLogWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		recs := newLogRecords()
		r := &refusalLog{log: slog.New(recs)}
		addrA := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4800}
		addrB := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 4800}
		refuse := func(addr net.Addr, reason string) {
			if !r.add(trace.Handshake{Remote: addr, Reason: reason}) {
				t.Fatal("the log is closed")
			}
		}
		lines := func() []logRecord { return recs.with("handshake refused") }
		check := func(n int, remote, reason, suppressed string) {
			t.Helper()
			ls := lines()
			if len(ls) != n {
				t.Fatalf("%d lines, want %d: %+v", len(ls), n, ls)
			}
			l := ls[n-1]
			if l.Attrs["remote"] != remote || l.Attrs["reason"] != reason || l.Attrs["suppressed"] != suppressed {
				t.Fatalf("line %d: %+v, want remote %s reason %q suppressed %q", n, l.Attrs, remote, reason, suppressed)
			}
			if suppressed != "" && l.Attrs["window"] != "10s" {
				t.Fatalf("line %d: %+v, want the window", n, l.Attrs)
			}
		}

		refuse(addrA, ReasonExpired)
		refuse(addrA, ReasonExpired)
		check(1, addrA.String(), ReasonExpired, "")
		refuse(addrB, ReasonNoCertificate)
		check(2, addrB.String(), ReasonNoCertificate, "")
		refuse(addrA, ReasonUnknownAuthority) // another reason: its own line
		check(3, addrA.String(), ReasonUnknownAuthority, "")
		if !r.add(trace.Handshake{Remote: addrA, Reason: ReasonUnknownAuthority, ByPeer: true}) { // refused by the peer
			t.Fatal("the log is closed")
		}
		check(4, addrA.String(), ReasonUnknownAuthority, "")

		time.Sleep(refusalWindow) // A's expired window ends with a count; the others with none
		synctest.Wait()
		check(5, addrA.String(), ReasonExpired, "1")
		refuse(addrB, ReasonNoCertificate) // B was forgotten: a line at once
		check(6, addrB.String(), ReasonNoCertificate, "")
		refuse(addrA, ReasonExpired) // within A's new window
		refuse(addrA, ReasonExpired)
		check(6, addrB.String(), ReasonNoCertificate, "")

		time.Sleep(refusalWindow)
		synctest.Wait()
		check(7, addrA.String(), ReasonExpired, "2")
		time.Sleep(refusalWindow) // nothing more: A is forgotten
		synctest.Wait()
		check(7, addrA.String(), ReasonExpired, "2")
		refuse(addrA, ReasonExpired)
		check(8, addrA.String(), ReasonExpired, "")

		// Past maxRefusalAddrs addresses, the others share one window.
		r.close()
		r = &refusalLog{log: slog.New(recs)}
		for i := range maxRefusalAddrs {
			refuse(&net.UDPAddr{IP: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)), Port: 1}, ReasonNoCertificate)
		}
		n := len(lines())
		refuse(addrA, ReasonExpired)
		refuse(addrB, ReasonExpired)
		refuse(addrB, ReasonNoCertificate)
		if got := len(lines()); got != n+1 {
			t.Fatalf("%d lines for three more windows, want 1", got-n)
		}
		r.close()
		if r.add(trace.Handshake{Remote: addrA}) {
			t.Error("a closed log took a refusal")
		}
	})
}

// TestHandshakeRefusalIsACryptoError: only a CRYPTO_ERROR is a refused
// handshake; an alert without a reason of its own is named by TLS.
func TestHandshakeRefusalIsACryptoError(t *testing.T) {
	for _, err := range []error{
		&quicgo.IdleTimeoutError{}, &quicgo.HandshakeTimeoutError{}, &quicgo.StatelessResetError{},
		&quicgo.ApplicationError{Remote: true, ErrorCode: CodeDuplicate},
		&quicgo.TransportError{Remote: true, ErrorCode: quicgo.ProtocolViolation},
		fmt.Errorf("quic: dialling beta: %w", context.DeadlineExceeded),
	} {
		if reason, _, _, ok := handshakeRefusal(err, time.Now()); ok {
			t.Errorf("%v: a refused handshake (%s)", err, reason)
		}
	}
	err := fmt.Errorf("quic: dialling beta: %w", &quicgo.TransportError{Remote: true, ErrorCode: 0x100 + 40})
	if reason, byPeer, _, ok := handshakeRefusal(err, time.Now()); !ok || !byPeer || reason != "handshake failure" {
		t.Errorf("%v: %q by peer %v (%v), want handshake failure by the peer", err, reason, byPeer, ok)
	}
}
