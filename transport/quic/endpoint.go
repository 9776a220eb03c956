package quic

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport"
)

// ALPN is the TLS application protocol of condis signalling, version 1.
const ALPN = "condis/1"

// Application error codes for closing a connection (see the package
// documentation).
const (
	CodeNoError    quicgo.ApplicationErrorCode = 0x000 // Link.Close, Endpoint.Close
	CodeDuplicate  quicgo.ApplicationErrorCode = 0x101 // another connection of this pair is the link
	CodeSuperseded quicgo.ApplicationErrorCode = 0x102 // the peer restarted and connected again
	CodeFraming    quicgo.ApplicationErrorCode = 0x103 // signalling frame length out of range
	CodeProtocol   quicgo.ApplicationErrorCode = 0x104 // bad preamble, signalling stream ended or reset
	CodeOverflow   quicgo.ApplicationErrorCode = 0x105 // the peer did not read its signalling: the queue for it overflowed
)

// CodeBadStream is the stream error code for a reliable VC stream with a bad
// header or an oversized SDU.
const CodeBadStream quicgo.StreamErrorCode = 0x201

// Defaults (see the package documentation, "Detecting a dead peer").
const (
	DefaultKeepAlivePeriod    = 1 * time.Second
	DefaultIdleTimeout        = 3 * time.Second
	DefaultHandshakeTimeout   = 5 * time.Second
	DefaultMaxReliableStreams = 1024
)

const (
	preambleHello  = 0x01
	preambleAccept = 0x02
	preambleLen    = 9
	streamKindVC   = 0x01
)

// Config configures an Endpoint.
type Config struct {
	// Identity is the node's certificate and key and the cluster CA
	// (package pki). Required. The node's name is Identity.Name.
	Identity *pki.Identity

	// Handler receives the link events. Required.
	Handler transport.Handler

	// Resolve returns the UDP address of a peer for Dial. An error
	// wrapping transport.ErrUnknownPeer says the name is unknown.
	// Required for dialling; an Endpoint that only accepts may leave it
	// nil. An AddrBook's Resolve will do.
	Resolve func(ctx context.Context, peer string) (net.Addr, error)

	// ListenAddr is the UDP address to listen on ("127.0.0.1:0" picks a
	// port on loopback). Ignored if PacketConn is set.
	ListenAddr string
	// PacketConn, if set, is the socket to use; the Endpoint owns it and
	// closes it on Close.
	PacketConn net.PacketConn

	// KeepAlivePeriod, IdleTimeout and HandshakeTimeout: zero takes the
	// default. A dead peer is detected between IdleTimeout and
	// IdleTimeout+KeepAlivePeriod after its last packet. HandshakeTimeout
	// bounds the TLS handshake and the preamble.
	KeepAlivePeriod  time.Duration
	IdleTimeout      time.Duration
	HandshakeTimeout time.Duration

	// MaxReliableStreams is how many reliable VC streams the peer may
	// have open towards this node at once; zero takes the default.
	MaxReliableStreams int

	// Logger receives link events and refusals; nil discards them. A
	// refused TLS handshake, by this node or by the remote, is one
	// "handshake refused" line (Warn) with the remote address and the
	// reason in words, at most one per remote address and reason per
	// 10 s: the line that ends such a window counts the refusals it did
	// not show.
	Logger *slog.Logger

	// Tracer receives a trace.Handshake event for every refused TLS
	// handshake, accepted or dialled, none left out; its other hooks are
	// not used.
	Tracer trace.Tracer
}

// Endpoint is a node's QUIC attachment; it implements transport.Endpoint.
type Endpoint struct {
	name    string
	inc     uint64 // incarnation
	id      *pki.Identity
	handler transport.Handler
	resolve func(context.Context, string) (net.Addr, error)
	log     *slog.Logger
	hsTime  time.Duration
	tracer  trace.Tracer

	refusals refusalLog

	pconn net.PacketConn
	tr    *quicgo.Transport
	ln    *quicgo.Listener
	qconf *quicgo.Config
	stls  *tls.Config

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the Endpoint

	mu     sync.Mutex
	closed bool
	peers  map[string]*peerState
}

var _ transport.Endpoint = (*Endpoint)(nil)

// peerState is what the Endpoint knows about one peer; guarded by mu.
type peerState struct {
	link     *link         // the current link, nil if none; may be dead
	dialing  bool          // a dialOnce to this peer is running
	lastDown chan struct{} // closed when the last link's LinkDown returned
	changed  chan struct{} // closed (and replaced) when link or dialing changes
}

func (ps *peerState) notify() {
	close(ps.changed)
	ps.changed = make(chan struct{})
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Listen starts an Endpoint: it opens (or takes) the UDP socket and accepts
// connections from peers at once.
func Listen(cfg Config) (*Endpoint, error) {
	if cfg.Identity == nil {
		return nil, errors.New("quic: Config.Identity is required")
	}
	if cfg.Handler == nil {
		return nil, errors.New("quic: Config.Handler is required")
	}
	if err := pki.ValidName(cfg.Identity.Name); err != nil {
		return nil, fmt.Errorf("quic: %w", err)
	}
	if leaf := cfg.Identity.Certificate.Leaf; leaf != nil {
		if name, err := pki.NodeName(leaf); err != nil || name != cfg.Identity.Name {
			return nil, fmt.Errorf("quic: the certificate names %q, the identity %q (%v)", name, cfg.Identity.Name, err)
		}
	}
	ka, idle, hs := cfg.KeepAlivePeriod, cfg.IdleTimeout, cfg.HandshakeTimeout
	if ka <= 0 {
		ka = DefaultKeepAlivePeriod
	}
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if hs <= 0 {
		hs = DefaultHandshakeTimeout
	}
	maxRel := cfg.MaxReliableStreams
	if maxRel <= 0 {
		maxRel = DefaultMaxReliableStreams
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pconn := cfg.PacketConn
	if pconn == nil {
		addr := cfg.ListenAddr
		if addr == "" {
			addr = ":0"
		}
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("quic: listen address: %w", err)
		}
		uc, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, fmt.Errorf("quic: %w", err)
		}
		pconn = uc
	}
	var b [8 + 32]byte
	rand.Read(b[:])
	resetKey := quicgo.StatelessResetKey(b[8:])

	e := &Endpoint{
		name:    cfg.Identity.Name,
		inc:     binary.BigEndian.Uint64(b[:8]),
		id:      cfg.Identity,
		handler: cfg.Handler,
		resolve: cfg.Resolve,
		log:     log.With("node", cfg.Identity.Name),
		hsTime:  hs,
		tracer:  cfg.Tracer,
		pconn:   pconn,
		peers:   make(map[string]*peerState),
	}
	e.refusals.log = e.log
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.qconf = &quicgo.Config{
		HandshakeIdleTimeout:  hs,
		MaxIdleTimeout:        idle,
		KeepAlivePeriod:       ka,
		EnableDatagrams:       true,
		MaxIncomingStreams:    1, // the signalling stream
		MaxIncomingUniStreams: int64(maxRel),
	}
	e.stls = &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cfg.Identity.Certificate},
		ClientAuth:             tls.RequireAndVerifyClientCert,
		ClientCAs:              cfg.Identity.CAs,
		NextProtos:             []string{ALPN},
		SessionTicketsDisabled: true,
		VerifyConnection:       e.verifyPeer(""),
	}
	e.tr = &quicgo.Transport{Conn: pconn, StatelessResetKey: &resetKey, ConnContext: e.connContext}
	ln, err := e.tr.Listen(e.stls, e.qconf)
	if err != nil {
		e.tr.Close()
		pconn.Close()
		e.cancel()
		return nil, fmt.Errorf("quic: %w", err)
	}
	e.ln = ln
	e.wg.Go(e.acceptLoop)
	return e, nil
}

// Name returns the node's name.
func (e *Endpoint) Name() string { return e.name }

// Addr returns the local UDP address.
func (e *Endpoint) Addr() net.Addr { return e.pconn.LocalAddr() }

// clientTLS is the TLS configuration for dialling peer. The node presents
// its certificate even to a server whose CA did not issue it (crypto/tls
// would otherwise send none), so that such a server can tell its operator
// "unknown authority", not "no certificate".
func (e *Endpoint) clientTLS(peer string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &e.id.Certificate, nil
		},
		RootCAs:          e.id.CAs,
		ServerName:       peer,
		NextProtos:       []string{ALPN},
		VerifyConnection: e.verifyPeer(peer),
	}
}

// verifyPeer checks, after the chain has been verified against the CA, that
// the peer names a node (want, if set), not this one, and speaks ALPN. Its
// refusals are *peerErrors.
func (e *Endpoint) verifyPeer(want string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if cs.NegotiatedProtocol != ALPN {
			return &peerError{reason: ReasonWrongProtocol, msg: fmt.Sprintf("peer speaks %q, not %q", cs.NegotiatedProtocol, ALPN)}
		}
		if len(cs.PeerCertificates) == 0 {
			return &peerError{reason: ReasonNoCertificate, msg: "peer presented no certificate"}
		}
		name, err := pki.NodeName(cs.PeerCertificates[0])
		if err != nil {
			return &peerError{reason: ReasonNoNodeName, msg: strings.TrimPrefix(err.Error(), "pki: ")}
		}
		if want != "" && name != want {
			return &peerError{reason: ReasonNotConfiguredPeer, name: name, msg: fmt.Sprintf("dialled %q but the peer is %q", want, name)}
		}
		if name == e.name {
			return &peerError{reason: ReasonOwnName, name: name, msg: fmt.Sprintf("peer claims this node's own name %q", name)}
		}
		return nil
	}
}

// peerName returns the authenticated name of a connection's peer.
func peerName(conn *quicgo.Conn) string {
	certs := conn.ConnectionState().TLS.PeerCertificates
	if len(certs) == 0 {
		return ""
	}
	name, _ := pki.NodeName(certs[0])
	return name
}

// peer returns the state of peer; e.mu must be held.
func (e *Endpoint) peer(name string) *peerState {
	ps := e.peers[name]
	if ps == nil {
		ps = &peerState{lastDown: closedChan, changed: make(chan struct{})}
		e.peers[name] = ps
	}
	return ps
}

// live reports whether l is a link whose connection is still open.
func live(l *link) bool { return l != nil && l.conn.Context().Err() == nil }

// Dial returns the link to peer, making the connection if needed. See
// transport.Endpoint.
func (e *Endpoint) Dial(ctx context.Context, peer string) (transport.Link, error) {
	if err := pki.ValidName(peer); err != nil {
		return nil, fmt.Errorf("%w: %w", transport.ErrUnknownPeer, err)
	}
	if peer == e.name {
		return nil, fmt.Errorf("%w: %q is this node", transport.ErrUnknownPeer, peer)
	}
	backoff := 20 * time.Millisecond
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, transport.ErrClosed
		}
		ps := e.peer(peer)
		if l := ps.link; live(l) {
			e.mu.Unlock()
			select {
			case <-l.upDone:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if live(l) {
				return l, nil
			}
			continue
		}
		if ps.dialing {
			changed := ps.changed
			e.mu.Unlock()
			select {
			case <-changed:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			continue
		}
		ps.dialing = true
		ps.notify()
		e.mu.Unlock()

		l, changed, err := e.dialOnce(ctx, peer, ps)
		if err == nil {
			select {
			case <-l.upDone:
				return l, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if !errors.Is(err, errDuplicate) {
			return nil, err
		}
		// The peer has, or is making, the link: wait for it to arrive or
		// try again.
		t := time.NewTimer(backoff)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
		backoff = min(2*backoff, time.Second)
	}
}

var errDuplicate = errors.New("quic: the peer refused the connection as a duplicate")

// dialOnce makes one connection attempt. It clears ps.dialing when done and
// returns the peer's changed channel as of then.
func (e *Endpoint) dialOnce(ctx context.Context, peer string, ps *peerState) (l *link, changed chan struct{}, err error) {
	var (
		conn *quicgo.Conn
		addr net.Addr
	)
	defer func() {
		e.mu.Lock()
		ps.dialing = false
		if err == nil {
			if e.closed {
				err = transport.ErrClosed
			} else if live(ps.link) {
				// Cannot happen if the peer keeps the rules; keep the
				// existing link.
				err = errDuplicate
			} else {
				ps.link = l
				l.waitFor, ps.lastDown = ps.lastDown, l.downDone
			}
		}
		if err == nil {
			e.wg.Add(1) // under mu: Close has not started waiting
		}
		ps.notify()
		changed = ps.changed
		e.mu.Unlock()
		if err != nil {
			if conn != nil {
				code, msg := CodeProtocol, "preamble failed"
				switch {
				case errors.Is(err, errDuplicate):
					code, msg = CodeDuplicate, "duplicate"
				case errors.Is(err, transport.ErrClosed):
					code, msg = CodeNoError, "endpoint closed"
				}
				conn.CloseWithError(code, msg)
			}
			l = nil
			return
		}
		go func() {
			defer e.wg.Done()
			l.run()
		}()
	}()

	if e.resolve == nil {
		return nil, nil, fmt.Errorf("%w: %q (no Resolve configured)", transport.ErrUnknownPeer, peer)
	}
	addr, err = e.resolve(ctx, peer)
	if err != nil {
		return nil, nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, e.hsTime)
	defer cancel()
	stop := context.AfterFunc(e.ctx, cancel)
	defer stop()

	conn, err = e.tr.Dial(hctx, addr, e.clientTLS(peer), e.qconf)
	if err != nil {
		if e.ctx.Err() != nil {
			return nil, nil, transport.ErrClosed
		}
		e.dialFailed(peer, addr, err)
		return nil, nil, fmt.Errorf("quic: dialling %s at %v: %w", peer, addr, err)
	}
	// A TLS 1.3 server refuses a client's certificate after the client has
	// finished its side of the handshake: that refusal ends the
	// connection, and with it whichever of these steps is under way.
	st, err := conn.OpenStreamSync(hctx)
	if err != nil {
		err = connErr(conn, err)
		e.dialFailed(peer, addr, err)
		return nil, nil, fmt.Errorf("quic: dialling %s: %w", peer, err)
	}
	deadline, _ := hctx.Deadline()
	st.SetDeadline(deadline)
	var pre [preambleLen]byte
	pre[0] = preambleHello
	binary.BigEndian.PutUint64(pre[1:], e.inc)
	if _, err := st.Write(pre[:]); err != nil {
		err = connErr(conn, err)
		e.dialFailed(peer, addr, err)
		return nil, nil, fmt.Errorf("quic: dialling %s: %w", peer, err)
	}
	if _, err := io.ReadFull(st, pre[:]); err != nil {
		err = connErr(conn, err)
		var ae *quicgo.ApplicationError
		if errors.As(err, &ae) && ae.Remote && ae.ErrorCode == CodeDuplicate {
			conn = nil // already closed by the peer
			return nil, nil, errDuplicate
		}
		e.dialFailed(peer, addr, err)
		return nil, nil, fmt.Errorf("quic: dialling %s: %w", peer, err)
	}
	if pre[0] != preambleAccept {
		conn.CloseWithError(CodeProtocol, "bad preamble")
		conn = nil
		return nil, nil, fmt.Errorf("quic: dialling %s: bad preamble octet 0x%02x", peer, pre[0])
	}
	st.SetDeadline(time.Time{})
	l = newLink(e, peer, conn, st, binary.BigEndian.Uint64(pre[1:]), true)
	e.log.Debug("link up (dialled)", "peer", peer, "addr", addr)
	return l, nil, nil
}

// connErr prefers the connection's close reason to the stream error it
// caused.
func connErr(conn *quicgo.Conn, err error) error {
	if conn.Context().Err() != nil {
		if cause := context.Cause(conn.Context()); cause != nil {
			return cause
		}
	}
	return err
}

func (e *Endpoint) acceptLoop() {
	for {
		conn, err := e.ln.Accept(e.ctx)
		if err != nil {
			return
		}
		e.wg.Go(func() { e.handleIncoming(conn) })
	}
}

// handleIncoming runs the acceptor's side of the preamble and, if the
// connection becomes the link, the link.
func (e *Endpoint) handleIncoming(conn *quicgo.Conn) {
	peer := peerName(conn)
	if peer == "" { // cannot happen: verifyPeer checked
		conn.CloseWithError(CodeProtocol, "no node name")
		return
	}
	hctx, cancel := context.WithTimeout(e.ctx, e.hsTime)
	defer cancel()
	st, err := conn.AcceptStream(hctx)
	if err != nil {
		e.log.Info("refused connection: no signalling stream", "peer", peer, "err", err)
		conn.CloseWithError(CodeProtocol, "no signalling stream")
		return
	}
	deadline, _ := hctx.Deadline()
	st.SetDeadline(deadline)
	var pre [preambleLen]byte
	if _, err := io.ReadFull(st, pre[:]); err != nil || pre[0] != preambleHello {
		e.log.Info("refused connection: bad preamble", "peer", peer, "err", err)
		conn.CloseWithError(CodeProtocol, "bad preamble")
		return
	}
	inc := binary.BigEndian.Uint64(pre[1:])

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		conn.CloseWithError(CodeNoError, "endpoint closed")
		return
	}
	ps := e.peer(peer)
	var poke, replaced *link
	dup := false
	switch old := ps.link; {
	case live(old) && old.peerInc == inc:
		dup, poke = true, old
	case live(old):
		replaced = old
	case ps.dialing && e.name < peer:
		dup = true
	}
	var l *link
	if !dup {
		l = newLink(e, peer, conn, st, inc, false)
		ps.link = l
		l.waitFor, ps.lastDown = ps.lastDown, l.downDone
		ps.notify()
	}
	e.mu.Unlock()

	if dup {
		e.log.Debug("refused duplicate connection", "peer", peer)
		if poke != nil {
			poke.conn.SendDatagram(nil) // a stateless reset answers if the peer lost it
		}
		conn.CloseWithError(CodeDuplicate, "duplicate")
		return
	}
	if replaced != nil {
		e.log.Info("peer restarted; replacing its link", "peer", peer)
		replaced.closeWith(transport.DownSuperseded, CodeSuperseded, "superseded")
	}
	pre[0] = preambleAccept
	binary.BigEndian.PutUint64(pre[1:], e.inc)
	if _, err := st.Write(pre[:]); err == nil {
		st.SetDeadline(time.Time{})
	}
	// A failed write means the connection is going; run reports it.
	e.log.Debug("link up (accepted)", "peer", peer, "addr", conn.RemoteAddr())
	l.run()
}

// Close closes every link, stops accepting and waits for every goroutine.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	var links []*link
	for _, ps := range e.peers {
		if ps.link != nil {
			links = append(links, ps.link)
		}
		ps.notify()
	}
	e.mu.Unlock()

	e.cancel()
	e.refusals.close()
	for _, l := range links {
		l.closeWith(transport.DownEndpointClosed, CodeNoError, "endpoint closed")
	}
	e.ln.Close()
	e.wg.Wait()
	err := e.tr.Close()
	if cerr := e.pconn.Close(); err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = cerr
	}
	return err
}

// AddrBook is a table of peer addresses, safe for concurrent use; its
// Resolve method is a Config.Resolve.
type AddrBook struct {
	mu sync.Mutex
	m  map[string]net.Addr
}

// Set records (or, with a nil addr, forgets) peer's address.
func (b *AddrBook) Set(peer string, addr net.Addr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = make(map[string]net.Addr)
	}
	if addr == nil {
		delete(b.m, peer)
		return
	}
	b.m[peer] = addr
}

// Resolve returns peer's address or an error wrapping
// transport.ErrUnknownPeer.
func (b *AddrBook) Resolve(_ context.Context, peer string) (net.Addr, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.m[peer]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("%w: %q", transport.ErrUnknownPeer, peer)
}
