package quic

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/trace"
)

// Why a handshake was refused, in words: the Reason of a trace.Handshake
// event and of the endpoint's "handshake refused" log line. The side that
// refuses knows why from its own checks; the other side learns only the
// TLS alert it was sent, which the same words name where they can (a
// client refusing a server's certificate sends bad_certificate whatever
// the reason).
const (
	// The certificate is not signed by the cluster CA (alert unknown_ca).
	ReasonUnknownAuthority = "unknown authority"
	// The dialled peer's certificate names another node: the address
	// configured for the peer answers with someone else's certificate.
	ReasonNotConfiguredPeer = "name not a configured peer"
	// The certificate's validity has ended (alert certificate_expired).
	ReasonExpired = "certificate expired"
	// The certificate's validity has not begun: a clock is wrong.
	ReasonNotYetValid = "certificate not yet valid"
	// The client presented no certificate (alert certificate_required).
	ReasonNoCertificate = "no certificate"
	// The remote does not speak condis/1 (alert no_application_protocol).
	ReasonWrongProtocol = "wrong protocol (ALPN)"
	// The certificate names this node: another node holds its identity.
	ReasonOwnName = "certificate names this node"
	// The certificate carries no node name (no single valid DNS name).
	ReasonNoNodeName = "certificate names no node"
	// Any other problem with the certificate (alert bad_certificate).
	ReasonBadCertificate = "bad certificate"
)

// peerError is verifyPeer's refusal of a certificate the CA vouched for.
type peerError struct {
	reason string // one of the Reason constants
	name   string // the node name the certificate claims, if any
	msg    string
}

func (e *peerError) Error() string { return "quic: " + e.msg }

// handshakeRefusal reports whether err, the error a connection attempt
// ended with, is a refused TLS handshake (a QUIC CRYPTO_ERROR: 0x100 plus
// the TLS alert) and if so why, who refused (byPeer: the remote sent the
// alert) and the node name the remote's certificate claimed, when this
// side saw one. Any other end (a timeout, an application close) is not a
// refusal.
func handshakeRefusal(err error, now time.Time) (reason string, byPeer bool, claimed string, ok bool) {
	var te *quicgo.TransportError
	if !errors.As(err, &te) || !te.ErrorCode.IsCryptoError() {
		return "", false, "", false
	}
	alert := uint8(te.ErrorCode - 0x100)
	if te.Remote {
		return alertReason(alert), true, "", true
	}
	// This side refused: its own error says more than the alert it sent.
	var (
		pe       *peerError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	if errors.As(err, &verify) && len(verify.UnverifiedCertificates) > 0 {
		claimed, _ = pki.NodeName(verify.UnverifiedCertificates[0])
	}
	switch {
	case errors.As(err, &pe):
		return pe.reason, false, pe.name, true
	case errors.As(err, &unknown):
		return ReasonUnknownAuthority, false, claimed, true
	case errors.As(err, &hostname):
		return ReasonNotConfiguredPeer, false, claimed, true
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		if invalid.Cert != nil && now.Before(invalid.Cert.NotBefore) {
			return ReasonNotYetValid, false, claimed, true
		}
		return ReasonExpired, false, claimed, true
	}
	return alertReason(alert), false, claimed, true
}

// TLS alerts (RFC 8446 §6.2) that name a reason.
const (
	alertBadCertificate        = 42
	alertUnsupportedCert       = 43
	alertCertificateExpired    = 45
	alertCertificateUnknown    = 46
	alertUnknownCA             = 48
	alertCertificateRequired   = 116
	alertNoApplicationProtocol = 120
)

// alertReason names the reason a TLS alert gives.
func alertReason(alert uint8) string {
	switch alert {
	case alertUnknownCA:
		return ReasonUnknownAuthority
	case alertCertificateExpired:
		return ReasonExpired
	case alertCertificateRequired:
		return ReasonNoCertificate
	case alertNoApplicationProtocol:
		return ReasonWrongProtocol
	case alertBadCertificate, alertUnsupportedCert, alertCertificateUnknown:
		return ReasonBadCertificate
	}
	return strings.TrimPrefix(tls.AlertError(alert).Error(), "tls: ") // "handshake failure", "alert(200)"
}

// connContext is the Transport's ConnContext: it watches every incoming
// connection and reports the handshakes that end refused, by either side.
// (quic-go's listener hands out only connections whose handshake
// succeeded; the context it derives for each one ends with the error the
// connection ended with. TLS sends nothing once the handshake is done, so a
// CRYPTO_ERROR ends only a handshake, or comes from a peer that breaks TLS:
// reported as well.)
func (e *Endpoint) connContext(ctx context.Context, ci *quicgo.ClientInfo) (context.Context, error) {
	remote := ci.RemoteAddr
	context.AfterFunc(ctx, func() {
		if reason, byPeer, claimed, ok := handshakeRefusal(context.Cause(ctx), time.Now()); ok {
			e.refused(trace.Handshake{Remote: remote, Peer: claimed, ByPeer: byPeer, Reason: reason, Err: context.Cause(ctx)})
		}
	})
	return ctx, nil
}

// dialFailed reports a dial to peer at addr that ended with err, if err is
// a refused handshake.
func (e *Endpoint) dialFailed(peer string, addr net.Addr, err error) {
	if reason, byPeer, _, ok := handshakeRefusal(err, time.Now()); ok {
		e.refused(trace.Handshake{Remote: addr, Peer: peer, Dialed: true, ByPeer: byPeer, Reason: reason, Err: err})
	}
}

// refused reports a refused handshake: to the tracer every time, to the
// log at most once per remote address and reason per refusalWindow.
func (e *Endpoint) refused(h trace.Handshake) {
	h.Time, h.Node = time.Now(), e.name
	if !e.refusals.add(h) {
		return // the endpoint is closed
	}
	if hook := e.tracer.Handshake; hook != nil {
		hook(h)
	}
}

// Rate limits of the "handshake refused" log line.
const (
	// refusalWindow: at most one line per remote address and reason (who
	// refused, and why) per window; the refusals in between are counted
	// and the count logged when the window ends. The reason is part of the
	// key so that a node dialled by a peer it refuses, and refused in turn
	// when it dials that peer, shows both.
	refusalWindow = 10 * time.Second
	// maxRefusalAddrs bounds the windows open at once (an ALPN refusal
	// needs only one spoofable packet); the refusals beyond share one
	// window.
	maxRefusalAddrs = 1024
)

// refusalLog logs refused handshakes, rate-limited per remote address and
// reason.
type refusalLog struct {
	log    *slog.Logger
	mu     sync.Mutex
	closed bool
	addrs  map[string]*refusalWindowState
}

// refusalWindowState is the current window of an address and reason.
type refusalWindowState struct {
	timer      *time.Timer
	suppressed int             // refusals not logged in this window
	last       trace.Handshake // the latest of them
}

// add logs h unless its address already had a line for its reason in this
// window, and reports whether the log is still open.
func (r *refusalLog) add(h trace.Handshake) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	key := "?"
	if h.Remote != nil {
		key = h.Remote.String()
	}
	key += " " + strconv.FormatBool(h.ByPeer) + " " + h.Reason
	w := r.addrs[key]
	if w == nil && len(r.addrs) >= maxRefusalAddrs {
		key = "other addresses"
		w = r.addrs[key]
	}
	if w != nil {
		w.suppressed++
		w.last = h
		return true
	}
	if r.addrs == nil {
		r.addrs = make(map[string]*refusalWindowState)
	}
	w = &refusalWindowState{}
	r.addrs[key] = w
	w.timer = time.AfterFunc(refusalWindow, func() { r.endWindow(key, w) })
	r.write(h, 0)
	return true
}

// endWindow ends key's window: the refusals it suppressed are logged in one
// line, which opens a new window; with none, the key is forgotten.
func (r *refusalLog) endWindow(key string, w *refusalWindowState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.addrs[key] != w {
		return
	}
	if w.suppressed == 0 {
		delete(r.addrs, key)
		return
	}
	r.write(w.last, w.suppressed)
	w.suppressed = 0
	w.timer.Reset(refusalWindow)
}

// write logs one line: h, and with suppressed > 0 how many refusals like
// it from its address (h the latest) the window did not log.
func (r *refusalLog) write(h trace.Handshake, suppressed int) {
	by := "this node"
	if h.ByPeer {
		by = "peer"
	}
	attrs := make([]slog.Attr, 0, 8)
	if h.Remote != nil {
		attrs = append(attrs, slog.String("remote", h.Remote.String()))
	}
	if h.Peer != "" {
		attrs = append(attrs, slog.String("peer", h.Peer))
	}
	attrs = append(attrs, slog.Bool("dialled", h.Dialed), slog.String("refused_by", by), slog.String("reason", h.Reason))
	if h.Err != nil {
		attrs = append(attrs, slog.String("err", h.Err.Error()))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed", suppressed), slog.Duration("window", refusalWindow))
	}
	r.log.LogAttrs(context.Background(), slog.LevelWarn, "handshake refused", attrs...)
}

// close stops the log: nothing is logged or traced after it.
func (r *refusalLog) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, w := range r.addrs {
		w.timer.Stop()
	}
	r.addrs = nil
}
