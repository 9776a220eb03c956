// Package quic is the real transport between condis nodes: a
// [transport.Endpoint] on github.com/quic-go/quic-go. One UDP socket per
// node serves both its dials and its listener.
//
// # Authentication
//
// TLS 1.3 only, with mutual authentication against the cluster CA (package
// pki): each side verifies the other's certificate chain against the CA pool
// and takes the peer's node name from the leaf certificate's only DNS
// subjectAltName ([pki.NodeName]; the CommonName is not used). A dialler
// also requires that name to be the one it dialled (TLS hostname
// verification with ServerName = the peer's name). A peer whose certificate
// is from another CA, names no node, names this node, or who presents no
// certificate fails the TLS handshake: quic-go never hands such a connection
// to the Endpoint, so no LinkUp is ever called for it. Session tickets are
// disabled, so every connection runs the full mutual authentication. A
// dialler presents its certificate whatever CA the acceptor asks for, so
// that an acceptor of another cluster can say "unknown authority".
//
// Every refused handshake, accepted or dialled, refused by this node or by
// the remote, is reported: a trace.Handshake event (Config.Tracer) and a
// "handshake refused" log line (Config.Logger) with the remote address and
// the reason in words (the Reason constants: unknown authority, name not a
// configured peer, certificate expired, no certificate, wrong protocol
// (ALPN), ...). The side that refuses knows why; the other side learns the
// TLS alert it was sent, which QUIC carries as CRYPTO_ERROR 0x100 + alert
// (unknown_ca 48, certificate_expired 45, certificate_required 116,
// no_application_protocol 120, or bad_certificate 42, which a client sends
// whatever is wrong with a server's certificate). The log is rate-limited:
// at most one line per remote address and reason per 10 s, and the line
// that ends such a window counts the refusals it did not show.
//
// The ALPN protocol is [ALPN] ("condis/1"), the signalling protocol version;
// a client that offers another one, or none, fails the handshake.
//
// # On the wire
//
// Right after the handshake the dialler opens one bidirectional stream, the
// signalling stream, and both sides exchange a preamble on it:
//
//	dialler  -> acceptor   HELLO   0x01, incarnation (8 octets, big endian)
//	acceptor -> dialler    ACCEPT  0x02, incarnation (8 octets)
//
// or the acceptor closes the connection with application error
// [CodeDuplicate] (see "One connection per pair" below). The incarnation is a
// random number drawn when the Endpoint starts: a node that restarted has a
// new one. After the preamble the stream carries Q.2931 messages back to
// back, each preceded by its length as a 4-octet big-endian unsigned integer
// (docs/protocol.md §9). A length below 9 or above 65 544 is a framing error:
// the connection is closed with [CodeFraming]. The stream ending or being
// reset closes the connection with [CodeProtocol].
//
// VC data travels as QUIC datagrams (RFC 9221): the 4-octet connection
// identifier (big endian; VPCI<<16 | VCI) then the payload. A datagram
// shorter than 4 octets is dropped. A VC that asks for reliable delivery
// uses a unidirectional stream per direction: the octet 0x01, the 4-octet
// connection identifier, then SDUs each preceded by a 4-octet big-endian
// length (at most [transport.MaxStreamSDU]); FIN ends it. A stream with
// another first octet, or an SDU that is too long, is cancelled with stream
// error [CodeBadStream]; the connection survives.
//
// Application error codes closing the connection: [CodeNoError] (Link.Close,
// Endpoint.Close), [CodeDuplicate], [CodeSuperseded], [CodeFraming],
// [CodeProtocol].
//
// # One connection per pair
//
// An acceptor decides on every HELLO, under the Endpoint's lock:
//
//   - it has a live link to that peer with the same incarnation: the peer is
//     either racing a dial of its own against a link that was just made, or
//     has lost the link before this side noticed. Refuse with CodeDuplicate,
//     and send a packet on the old connection: if the peer no longer knows
//     it, its stateless reset kills it at once (each Endpoint has a
//     stateless reset key) and the peer's next try succeeds;
//   - it has a live link with another incarnation: the peer restarted. The
//     old link goes down (reason [transport.DownSuperseded]) and the new one
//     is accepted;
//   - it is dialling that peer itself (simultaneous dial): the connection
//     dialled by the node whose name sorts first wins. If this node's name
//     is smaller, refuse with CodeDuplicate (its own dial will be accepted);
//     otherwise accept (its own dial will be refused);
//   - otherwise accept.
//
// A dialler refused with CodeDuplicate waits for the link the peer is making
// (it arrives as an accepted connection) or retries after a back-off from
// 20 ms doubling to 1 s, until its context ends. So simultaneous dials end
// with exactly one connection, the same on both sides, and both Dial calls
// return that link.
//
// # Detecting a dead peer
//
// quic-go sends a keep-alive PING when nothing has been received for
// KeepAlivePeriod (default 1 s) and closes the connection after IdleTimeout
// (default 3 s) without a packet from the peer; both sides offer the same
// idle timeout. After the peer's last packet, its loss is detected between
// IdleTimeout and IdleTimeout + KeepAlivePeriod later (quic-go restarts the
// idle timer on its first ack-eliciting packet after a receipt, RFC 9000
// §10.1), so by default within 4 s, under the 5 s the issue asks for.
// quic-go never lets the timeout be shorter than three probe timeouts, which
// only matters on paths with a round trip of hundreds of milliseconds. A
// peer that closes its connection, or whose stateless reset arrives, is
// detected within one round trip.
package quic
