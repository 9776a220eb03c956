package quic

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	quicgo "github.com/quic-go/quic-go"

	"github.com/condis-project/condis/transport"
)

// link is one QUIC connection that is the link to a peer; it implements
// transport.Link.
//
// Goroutines: run (the supervisor) calls LinkUp, starts the signalling
// reader, the datagram reader and the stream acceptor (which starts a reader
// per reliable stream), waits for the connection to end and for all of them
// to return, then calls LinkDown.
type link struct {
	e       *Endpoint
	peer    string
	conn    *quicgo.Conn
	sig     *quicgo.Stream
	peerInc uint64
	dialled bool // this side dialled the connection

	waitFor  chan struct{} // the previous link's downDone; set under e.mu before run
	upDone   chan struct{} // closed when LinkUp has returned
	downDone chan struct{} // closed when LinkDown has returned
	h        transport.LinkHandler

	localReason atomic.Uint32 // transport.DownReason of a local close, 0 if none

	sendMu  sync.Mutex
	sendBuf []byte

	relMu sync.Mutex
	rel   map[uint32]*relStream

	readers sync.WaitGroup
}

var _ transport.Link = (*link)(nil)

type relStream struct {
	mu     sync.Mutex
	s      *quicgo.SendStream
	closed bool
}

func newLink(e *Endpoint, peer string, conn *quicgo.Conn, sig *quicgo.Stream, peerInc uint64, dialled bool) *link {
	return &link{
		e:        e,
		dialled:  dialled,
		peer:     peer,
		conn:     conn,
		sig:      sig,
		peerInc:  peerInc,
		upDone:   make(chan struct{}),
		downDone: make(chan struct{}),
		rel:      make(map[uint32]*relStream),
	}
}

func (l *link) Peer() string { return l.peer }

// run is the link's supervisor; see the type's comment.
func (l *link) run() {
	defer close(l.downDone)
	<-l.waitFor
	l.h = l.e.handler.LinkUp(l)
	if l.h == nil {
		l.h = &transport.LinkFuncs{}
	}
	close(l.upDone)
	l.readers.Go(l.readSignalling)
	l.readers.Go(l.readDatagrams)
	l.readers.Go(l.acceptStreams)
	<-l.conn.Context().Done()
	l.readers.Wait()
	err := l.downError()
	l.e.log.Info("link down", "peer", l.peer, "dialled", l.dialled, "reason", err.Reason, "err", err.Err)
	l.h.LinkDown(err)
}

// downError describes why the connection ended.
func (l *link) downError() *transport.LinkDownError {
	cause := context.Cause(l.conn.Context())
	if r := transport.DownReason(l.localReason.Load()); r != 0 {
		return &transport.LinkDownError{Peer: l.peer, Reason: r}
	}
	var (
		idle  *quicgo.IdleTimeoutError
		app   *quicgo.ApplicationError
		reset *quicgo.StatelessResetError
		terr  *quicgo.TransportError
	)
	reason := transport.DownNetwork
	switch {
	case errors.As(cause, &idle):
		reason = transport.DownTimeout
	case errors.As(cause, &reset):
		reason = transport.DownReset
	case errors.As(cause, &app) && app.Remote:
		switch app.ErrorCode {
		case CodeNoError, CodeDuplicate:
			reason = transport.DownClosedByPeer
		case CodeSuperseded:
			reason = transport.DownSuperseded
		default:
			reason = transport.DownProtocol
		}
	case errors.As(cause, &terr):
		reason = transport.DownProtocol
	}
	return &transport.LinkDownError{Peer: l.peer, Reason: reason, Err: cause}
}

// sendError is what a send on a link that failed returns.
func (l *link) sendError(err error) error {
	if l.conn.Context().Err() != nil {
		return l.downError()
	}
	return err
}

// closeWith closes the connection, recording reason as the local cause if it
// is the first.
func (l *link) closeWith(reason transport.DownReason, code quicgo.ApplicationErrorCode, msg string) {
	if l.conn.Context().Err() == nil {
		l.localReason.CompareAndSwap(0, uint32(reason))
	}
	l.conn.CloseWithError(code, msg)
}

func (l *link) Close() error {
	l.closeWith(transport.DownClosedLocally, CodeNoError, "closed")
	return nil
}

// errFrameLength: a frame's length prefix is out of range.
var errFrameLength = errors.New("quic: frame length out of range")

// readFrame reads one frame: a 4-octet big-endian length of lo to hi
// octets, then that many octets. At a frame boundary with nothing more to
// read it returns io.EOF; a length out of range is errFrameLength (and
// nothing after the prefix is read).
func readFrame(r io.Reader, lo, hi uint32) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < lo || n > hi {
		return nil, fmt.Errorf("%w: %d octets (want %d to %d)", errFrameLength, n, lo, hi)
	}
	// Grow the buffer as the octets arrive, so that a peer announcing
	// long frames it never sends costs little memory.
	const chunk = 64 << 10
	b := make([]byte, 0, min(n, chunk))
	for uint32(len(b)) < n {
		k := min(n-uint32(len(b)), chunk)
		b = append(b, make([]byte, k)...)
		if _, err := io.ReadFull(r, b[uint32(len(b))-k:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return b, nil
}

// appendFrame appends msg as one frame.
func appendFrame(b, msg []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

// readSignalling reads length-prefixed messages until the stream or the
// connection ends.
func (l *link) readSignalling() {
	for {
		msg, err := readFrame(l.sig, transport.MinMessageLen, transport.MaxMessageLen)
		if errors.Is(err, errFrameLength) {
			l.e.log.Warn("signalling framing error", "peer", l.peer, "err", err)
			l.closeWith(transport.DownProtocol, CodeFraming, "signalling frame length out of range")
			return
		}
		if err != nil {
			l.streamEnded(err)
			return
		}
		l.h.Message(msg)
	}
}

// streamEnded handles a read error on the signalling stream: if the stream
// ended (FIN or reset) while the connection lives, the peer broke the
// protocol; otherwise the connection is going and run reports why.
func (l *link) streamEnded(err error) {
	var se *quicgo.StreamError
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &se) {
		l.closeWith(transport.DownProtocol, CodeProtocol, "signalling stream ended")
	}
}

func (l *link) readDatagrams() {
	for {
		b, err := l.conn.ReceiveDatagram(l.conn.Context())
		if err != nil {
			return
		}
		if len(b) < transport.ConnIDLen {
			continue // a probe, or garbage
		}
		l.h.Datagram(binary.BigEndian.Uint32(b), b[transport.ConnIDLen:])
	}
}

func (l *link) acceptStreams() {
	for {
		s, err := l.conn.AcceptUniStream(l.conn.Context())
		if err != nil {
			return
		}
		l.readers.Go(func() { l.readStream(s) })
	}
}

// readStream reads one reliable VC stream.
func (l *link) readStream(s *quicgo.ReceiveStream) {
	var hdr [1 + transport.ConnIDLen]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		s.CancelRead(CodeBadStream)
		return
	}
	if hdr[0] != streamKindVC {
		l.e.log.Warn("unknown stream kind", "peer", l.peer, "kind", hdr[0])
		s.CancelRead(CodeBadStream)
		return
	}
	id := binary.BigEndian.Uint32(hdr[1:])
	for {
		sdu, err := readFrame(s, 0, transport.MaxStreamSDU)
		if err != nil {
			if errors.Is(err, errFrameLength) {
				l.e.log.Warn("reliable VC SDU too long", "peer", l.peer, "conn_id", id, "err", err)
			}
			if !errors.Is(err, io.EOF) {
				s.CancelRead(CodeBadStream)
			}
			return
		}
		l.h.StreamData(id, sdu)
	}
}

func (l *link) Send(msg []byte) error {
	if err := transport.CheckMessage(msg); err != nil {
		return err
	}
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	if l.conn.Context().Err() != nil {
		return l.downError()
	}
	b := appendFrame(l.sendBuf[:0], msg)
	_, err := l.sig.Write(b)
	if cap(b) <= 4096 {
		l.sendBuf = b[:0]
	}
	if err != nil {
		return l.sendError(err)
	}
	return nil
}

var dgPool = sync.Pool{New: func() any { b := make([]byte, 0, 1500); return &b }}

// probe is longer than any datagram frame quic-go accepts (16383 octets), so
// SendDatagram(probe) always fails with the current limit, copying nothing.
var probe = make([]byte, 1<<16)

func (l *link) SendDatagram(connID uint32, payload []byte) error {
	bp := dgPool.Get().(*[]byte)
	b := binary.BigEndian.AppendUint32((*bp)[:0], connID)
	b = append(b, payload...)
	err := l.conn.SendDatagram(b) // copies b
	*bp = b[:0]
	dgPool.Put(bp)
	if err == nil {
		return nil
	}
	var tl *quicgo.DatagramTooLargeError
	if errors.As(err, &tl) {
		return &transport.DatagramTooLargeError{Size: len(payload), Max: max(0, int(tl.MaxDatagramPayloadSize)-transport.ConnIDLen)}
	}
	return l.sendError(err)
}

func (l *link) MaxDatagramPayload() int {
	var tl *quicgo.DatagramTooLargeError
	if err := l.conn.SendDatagram(probe); errors.As(err, &tl) {
		return max(0, int(tl.MaxDatagramPayloadSize)-transport.ConnIDLen)
	}
	return 0
}

func (l *link) SendReliable(connID uint32, sdu []byte) error {
	if err := transport.CheckSDU(sdu); err != nil {
		return err
	}
	for {
		l.relMu.Lock()
		rs := l.rel[connID]
		if rs == nil {
			rs = &relStream{}
			l.rel[connID] = rs
		}
		l.relMu.Unlock()

		rs.mu.Lock()
		if rs.closed { // CloseReliable got in between; use a new stream
			rs.mu.Unlock()
			continue
		}
		err := l.writeReliable(rs, connID, sdu)
		rs.mu.Unlock()
		return err
	}
}

// writeReliable writes one SDU, opening the stream first if needed; rs.mu
// is held.
func (l *link) writeReliable(rs *relStream, connID uint32, sdu []byte) error {
	var hdr [1 + transport.ConnIDLen + 4]byte
	h := hdr[:0]
	if rs.s == nil {
		s, err := l.conn.OpenUniStreamSync(l.conn.Context())
		if err != nil {
			return l.sendError(err)
		}
		rs.s = s
		h = append(h, streamKindVC)
		h = binary.BigEndian.AppendUint32(h, connID)
	}
	h = binary.BigEndian.AppendUint32(h, uint32(len(sdu)))
	if _, err := rs.s.Write(h); err != nil {
		return l.sendError(err)
	}
	if _, err := rs.s.Write(sdu); err != nil {
		return l.sendError(err)
	}
	return nil
}

func (l *link) CloseReliable(connID uint32) error {
	l.relMu.Lock()
	rs := l.rel[connID]
	delete(l.rel, connID)
	l.relMu.Unlock()
	if rs == nil {
		return nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.closed = true
	if rs.s != nil {
		if err := rs.s.Close(); err != nil {
			return l.sendError(err)
		}
	}
	return nil
}
