package quic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/condis-project/condis/transport"
)

// link is one QUIC connection that is the link to a peer; it implements
// transport.Link.
//
// Goroutines: run (the supervisor) calls LinkUp, starts the signalling
// reader and writer, the datagram reader and the stream acceptor (which
// starts a reader per reliable stream), waits for the connection to end and
// for all of them to return, then calls LinkDown.
//
// Signalling out. Send hands a message to the stream on the sender's own
// goroutine when nothing is queued or being written (an unloaded link: no
// goroutine hand-off on our side), with the stream's TryWriteAll: it
// appends the octets to the stream's next frame and wakes the
// connection's goroutine, and never waits, neither for that goroutine to
// pack them (a plain Write of more than about a packet does) nor for the
// peer's flow control (it refuses the whole write instead). Otherwise, and
// when the peer's window is full, the framed message joins a queue that
// the writer goroutine empties with one write per batch, so that a burst
// of messages costs one stream write. Order is kept: a direct write
// happens only with the queue empty, and the queue is written in order by
// one writer at a time. Send never waits for the peer: the queue is
// bounded (maxSigQueue), and a peer that stops reading with it full loses
// its link (DownOverflow), and only its link.
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
	// readClock and readYield are the signalling reader's clock and its
	// yield between batches (nil: time.Now and runtime.Gosched; tests set
	// them before the reader starts).
	readClock func() time.Time
	readYield func()

	localReason atomic.Uint32 // transport.DownReason of a local close, 0 if none

	out sigQueue

	relMu sync.Mutex
	rel   map[uint32]*relStream

	// MaxDatagramPayload, as last learnt (plus one; 0: not yet), and when.
	maxDG   atomic.Int64
	maxDGAt atomic.Int64 // nanoseconds since born
	born    time.Time

	readers sync.WaitGroup
}

var (
	_ transport.Link        = (*link)(nil)
	_ transport.BatchSender = (*link)(nil)
)

// The bounds of a link's queue of signalling waiting for the writer. A
// Send that finds maxSigQueue octets or more queued closes the link
// (DownOverflow) if the peer has taken nothing of what was written for
// sigStallAfter (longer on a long path: stallAfter) since the queue was
// first found that full: it stopped reading. A peer that keeps reading
// keeps its link while the queue stays under hardSigQueue, whatever the
// burst: a node that clears a million calls with it queues about 25 MiB
// of RELEASE at once, which a peer reading tens of thousands of messages a
// second takes in seconds (before, the link was closed at the first 1 MiB,
// and the calls were cleared by the link's loss instead). What the writer
// writes goes in sigWriteChunk pieces while the peer's flow control holds
// it back, so that each grant of flow control shows as progress.
const (
	maxSigQueue   = 1 << 20
	hardSigQueue  = 64 << 20
	sigWriteChunk = 16 << 10
)

// A reading peer's QUIC stack grants the writer more of the signalling
// stream only once the peer has read a quarter of the stream's receive
// window (quic-go's WindowUpdateThreshold), and quic-go grows that window
// up to 6 MiB on a busy stream: a reading peer may take in peerCreditStep
// octets before the writer sees any progress. A peer that reads at
// minSigReadRate shows progress every sigStallAfter. The stall rule waited
// a quarter of a second: a node busy clearing a million calls read its
// peer's RELEASE COMPLETEs at a few MiB a second, its peer saw no progress
// for longer than that, and closed the link (and with it every call on it)
// while it was being read.
const (
	peerCreditStep = 6 << 20 / 4
	minSigReadRate = 1 << 20 // octets a second
	sigStallAfter  = time.Duration(peerCreditStep) * time.Second / minSigReadRate
)

// sigQueue is the outgoing signalling of a link (see the link's comment).
type sigQueue struct {
	mu     sync.Mutex
	queue  []byte        // framed messages waiting for the writer, in order
	spare  []byte        // a buffer to reuse for the queue or a direct write
	busy   bool          // a Write is in progress (direct or the writer's)
	wake   chan struct{} // capacity 1: the writer has something to do
	writes atomic.Uint64 // stream writes, for tests
	w      sigWriter     // the signalling stream (tests put a wrapper in)

	// progress counts writes and pieces of writes the stream has taken;
	// while the queue is over maxSigQueue, overAt is when progress was
	// last seen to have moved (it was overSeen then), for stalled.
	progress atomic.Uint64
	overAt   time.Time
	overSeen uint64
	now      func() time.Time     // time.Now (tests put a clock in)
	patience func() time.Duration // stallAfter on the link's path
}

// stalled tells, for a Send that finds q's queue at maxSigQueue or more,
// whether the peer stopped taking its signalling (see maxSigQueue), and
// how long it has taken nothing since the queue was found that full; q.mu
// is held.
func (q *sigQueue) stalled() (idle time.Duration, stopped bool) {
	t := q.now()
	if p := q.progress.Load(); q.overAt.IsZero() || p != q.overSeen {
		q.overAt, q.overSeen = t, p
	}
	idle = t.Sub(q.overAt)
	return idle, len(q.queue) >= hardSigQueue || idle >= q.patience()
}

// sigWriter is what Send and the writer need of the signalling stream.
type sigWriter interface {
	// TryWriteAll takes all of b at once without waiting, or nothing
	// (quicgo.ErrWouldBlock).
	TryWriteAll(b []byte) error
	// Write takes all of b, waiting for the peer's flow control.
	Write(b []byte) (int, error)
}

// relStream is the sending side of one reliable VC stream.
type relStream struct {
	mu     sync.Mutex
	s      *quicgo.SendStream
	closed bool
	writes atomic.Uint64 // stream writes, for tests
}

// maxRelFrameBuf bounds the frame a relStream assembles and keeps for
// reuse. A longer SDU is written as its prefix and then the SDU itself: a
// second stream Write costs less than copying that many octets, and the
// stream keeps no buffer that large.
const maxRelFrameBuf = 64 << 10

// relReadBuf is the size of the buffer a reliable VC stream is read
// through: one stream Read takes in many small SDUs; a read of this many
// octets or more into an SDU bypasses the buffer while it is empty.
const relReadBuf = 32 << 10

func newLink(e *Endpoint, peer string, conn *quicgo.Conn, sig *quicgo.Stream, peerInc uint64, dialled bool) *link {
	return &link{
		e:       e,
		dialled: dialled,
		peer:    peer,
		conn:    conn,
		sig:     sig,
		peerInc: peerInc,
		upDone:  make(chan struct{}),
		out: sigQueue{wake: make(chan struct{}, 1), w: sig, now: time.Now,
			patience: func() time.Duration { return stallAfter(conn.ConnectionStats()) }},
		downDone: make(chan struct{}),
		rel:      make(map[uint32]*relStream),
		born:     time.Now(),
	}
}

// stallAfter is how long a peer whose signalling queue is full may take
// nothing before its link is closed, on a path with these statistics:
// sigStallAfter, or four of the path's probe timeouts if that is longer
// (on a long or lossy path QUIC may hold a reading peer's data back that
// long while it recovers a loss).
func stallAfter(s quicgo.ConnectionStats) time.Duration {
	return max(sigStallAfter, 4*(s.SmoothedRTT+4*s.MeanDeviation))
}

func (l *link) Peer() string { return l.peer }

// PeerIncarnation returns the incarnation the peer announced in the
// preamble: a random value each endpoint draws when it starts.
func (l *link) PeerIncarnation() uint64 { return l.peerInc }

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
	l.readers.Go(l.writeSignalling)
	l.readers.Go(l.readDatagrams)
	l.readers.Go(l.acceptStreams)
	<-l.conn.Context().Done()
	l.readers.Wait()
	err := l.downError()
	attrs := []any{"peer", l.peer, "dialled", l.dialled, "reason", err.Reason.String()}
	if err.Err != nil {
		attrs = append(attrs, "err", err.Err)
	}
	l.e.log.Info("link down", attrs...)
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
	if err := checkFrameLength(n, lo, hi); err != nil {
		return nil, err
	}
	if n <= frameChunk {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, unexpectedEOF(err)
		}
		return b, nil
	}
	// A long frame is read into pooled chunks as its octets arrive, so
	// that a peer announcing long frames it never sends costs at most a
	// chunk more than it sent; then it is copied once into a slice of
	// exactly its length (bytes.Join does not zero it first).
	var parts [][]byte
	defer func() {
		for _, p := range parts {
			frameChunks.Put(&p)
		}
	}()
	for left := n; left > 0; {
		k := min(left, frameChunk)
		c := (*frameChunks.Get().(*[]byte))[:k]
		parts = append(parts, c)
		if _, err := io.ReadFull(r, c); err != nil {
			return nil, unexpectedEOF(err)
		}
		left -= k
	}
	return bytes.Join(parts, nil), nil
}

// frameChunk is the most readFrame allocates for a frame before its
// octets arrive.
const frameChunk = 64 << 10

// frameChunks holds *[]byte buffers of frameChunk octets for readFrame.
var frameChunks = sync.Pool{New: func() any {
	b := make([]byte, frameChunk)
	return &b
}}

// unexpectedEOF turns io.EOF within a frame into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// appendFrame appends msg as one frame.
func appendFrame(b, msg []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

// maxBatch bounds how many messages one Messages call delivers. A reader
// that has more buffered after a full batch yields before the next (see
// deliverSignalling): 32 was the size at which two busy nodes gained the
// most (docs/performance.md, "Two nodes taking turns").
const maxBatch = 32

// lateYield is how long the signalling reader may be away in a yield
// between batches before it stops yielding until it has caught up.
const lateYield = time.Millisecond

// readSignalling reads length-prefixed messages until the stream or the
// connection ends. Through a buffer: one stream Read takes in whatever
// has arrived, and when the handler is a transport.BatchHandler the whole
// messages already buffered go to it in Messages calls of up to maxBatch,
// with a yield between two. A transport.MessageBorrower is lent the
// messages that lie whole in the buffer instead of getting copies: they
// stay there, unread, until the handler returns.
func (l *link) readSignalling() {
	err := l.deliverSignalling(l.sig)
	if errors.Is(err, errFrameLength) {
		l.e.log.Warn("signalling framing error", "peer", l.peer, "err", err)
		l.closeWith(transport.DownProtocol, CodeFraming, "signalling frame length out of range")
		return
	}
	l.streamEnded(err)
}

// deliverSignalling reads messages from r and delivers them to l's
// handler until a read fails, and returns that error (errFrameLength for
// a length out of range, after the messages before it).
func (l *link) deliverSignalling(r io.Reader) error {
	br := bufio.NewReaderSize(r, sigReadBuf)
	bh, _ := l.h.(transport.BatchHandler)
	_, lend := l.h.(transport.MessageBorrower)
	var msgs [][]byte
	now, yield := l.readClock, l.readYield
	if now == nil {
		now = time.Now
	}
	if yield == nil {
		yield = runtime.Gosched
	}
	yielding := true
	for {
		if br.Buffered() == 0 {
			yielding = true // caught up: whatever made a yield late has passed
		}
		var msg []byte
		var err error
		lent := 0 // octets of br's buffer the messages in hand lie in
		if lend {
			msg, lent, err = peekFrame(br)
		} else {
			msg, err = readFrame(br, transport.MinMessageLen, transport.MaxMessageLen)
		}
		for err == nil && bh != nil && len(msgs) < maxBatch-1 && frameBufferedAt(br, lent) {
			msgs = append(msgs, msg)
			msg, err = nextBufferedFrame(br, lend, &lent)
		}
		full := false
		if len(msgs) > 0 { // what was read before an error is delivered first
			if err == nil {
				msgs = append(msgs, msg)
			}
			full = len(msgs) == maxBatch
			markAll(markRead, msgs)
			bh.Messages(msgs)
			markAll(markHandled, msgs)
			clear(msgs)
			msgs = msgs[:0]
		} else if err == nil {
			mark(markRead, msg)
			l.h.Message(msg)
			mark(markHandled, msg)
		}
		if lent > 0 {
			br.Discard(lent) // cannot fail: the octets are buffered
		}
		if err != nil {
			return err
		}
		if full && yielding && frameBufferedAt(br, 0) {
			// More came than a batch: let this node's other goroutines
			// run before handling it, among them the connection's, which
			// sends the answers to this batch, so that the peer works on
			// them while this node handles the rest. A node runs on one
			// P (internal/procs), so without this its answers left only
			// once it had handled everything that had arrived, and two
			// busy nodes took turns, each idle while the other worked.
			t := now()
			yield()
			if now().Sub(t) > lateYield {
				// The node is busy with other work (a million calls
				// being released): read on without yielding until
				// caught up, or the peer's queue of signalling for this
				// node overflows while the reader waits for its turns.
				yielding = false
			}
		}
	}
}

// nextBufferedFrame reads the frame frameBufferedAt found at *lent: in
// place for a transport.MessageBorrower (lend; *lent grows by the octets
// it occupies), else out of the buffer (readFrame; *lent stays 0).
func nextBufferedFrame(br *bufio.Reader, lend bool, lent *int) ([]byte, error) {
	if !lend {
		return readFrame(br, transport.MinMessageLen, transport.MaxMessageLen)
	}
	msg, n, err := peekBufferedFrame(br, *lent)
	*lent += n
	return msg, err
}

// sigReadBuf is the signalling stream's read buffer: a message that fits
// in it whole can be lent to a transport.MessageBorrower.
const sigReadBuf = 64 << 10

// peekFrame is readFrame for a transport.MessageBorrower: it waits for a
// frame and, if the frame fits in br's buffer, returns its message in
// place, with the octets it occupies (prefix and message), which the
// caller discards once it is done with the message. A longer frame is
// read as readFrame reads it (n is then 0).
func peekFrame(br *bufio.Reader) (msg []byte, n int, err error) {
	hdr, err := br.Peek(4)
	if err != nil {
		if len(hdr) > 0 {
			err = unexpectedEOF(err)
		}
		return nil, 0, err
	}
	size := binary.BigEndian.Uint32(hdr)
	if checkFrameLength(size, transport.MinMessageLen, transport.MaxMessageLen) != nil || 4+int(size) > br.Size() {
		msg, err := readFrame(br, transport.MinMessageLen, transport.MaxMessageLen)
		return msg, 0, err
	}
	b, err := br.Peek(4 + int(size))
	if err != nil {
		return nil, 0, unexpectedEOF(err)
	}
	return b[4:len(b):len(b)], len(b), nil
}

// peekBufferedFrame returns the message of the frame that lies whole in
// br's buffer at off (frameBufferedAt said so), in place, and the octets
// the frame occupies; a length out of range is errFrameLength.
func peekBufferedFrame(br *bufio.Reader, off int) ([]byte, int, error) {
	b, _ := br.Peek(off + 4) // buffered: no read, so nothing lent moves
	size := binary.BigEndian.Uint32(b[off:])
	if err := checkFrameLength(size, transport.MinMessageLen, transport.MaxMessageLen); err != nil {
		return nil, 0, err
	}
	b, _ = br.Peek(off + 4 + int(size))
	return b[off+4 : len(b) : len(b)], 4 + int(size), nil
}

// frameBufferedAt reports whether br's buffer holds, off octets in, a
// whole frame (or a length prefix out of range, which the readers report
// without reading further), so that reading it does not block.
func frameBufferedAt(br *bufio.Reader, off int) bool {
	n := br.Buffered() - off
	if n < 4 {
		return false
	}
	h, _ := br.Peek(off + 4)
	size := binary.BigEndian.Uint32(h[off:])
	return checkFrameLength(size, transport.MinMessageLen, transport.MaxMessageLen) != nil || uint64(n-4) >= uint64(size)
}

// checkFrameLength is errFrameLength, with the length and the range it
// is out of, for a frame length n outside lo to hi; nil inside.
func checkFrameLength(n, lo, hi uint32) error {
	if n < lo || n > hi {
		return fmt.Errorf("%w: %d octets (want %d to %d)", errFrameLength, n, lo, hi)
	}
	return nil
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

// recvStream is what readStream needs of a *quicgo.ReceiveStream.
type recvStream interface {
	io.Reader
	CancelRead(quicgo.StreamErrorCode)
}

// readStream reads one reliable VC stream, through a buffer so that
// small SDUs do not cost a stream Read each.
func (l *link) readStream(s recvStream) {
	br := bufio.NewReaderSize(s, relReadBuf)
	var hdr [1 + transport.ConnIDLen]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		s.CancelRead(CodeBadStream)
		return
	}
	if hdr[0] != streamKindVC {
		l.e.log.Warn("unknown stream kind", "peer", l.peer, "kind", hdr[0])
		s.CancelRead(CodeBadStream)
		return
	}
	id := binary.BigEndian.Uint32(hdr[1:])
	_, borrows := l.h.(transport.DataBorrower)
	for {
		var sdu []byte
		var lent int
		var err error
		if borrows {
			sdu, lent, err = lendFrame(br, transport.MaxStreamSDU)
		} else {
			sdu, err = readFrame(br, 0, transport.MaxStreamSDU)
		}
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
		br.Discard(lent)
	}
}

// lendFrame reads the next frame of at most hi octets for a
// transport.DataBorrower: a frame that fits br's buffer is lent from it,
// without a copy, and lent octets are to be discarded from br once the
// handler is done with them; a longer one is read as readFrame does.
func lendFrame(br *bufio.Reader, hi uint32) (sdu []byte, lent int, err error) {
	hdr, err := br.Peek(4)
	if err != nil {
		if len(hdr) > 0 {
			err = unexpectedEOF(err) // the stream ended inside a frame's prefix
		}
		return nil, 0, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n > hi || int(n) > br.Size()-4 {
		sdu, err = readFrame(br, 0, hi)
		return sdu, 0, err
	}
	b, err := br.Peek(4 + int(n))
	if err != nil {
		return nil, 0, unexpectedEOF(err)
	}
	return b[4:], len(b), nil
}

func (l *link) Send(msg []byte) error {
	if err := transport.CheckMessage(msg); err != nil {
		return err
	}
	return l.send([][]byte{msg})
}

// SendBatch sends msgs in order, as Send would one after the other, with
// one stream write when it can (transport.BatchSender).
func (l *link) SendBatch(msgs [][]byte) error {
	for _, m := range msgs {
		if err := transport.CheckMessage(m); err != nil {
			return err
		}
	}
	return l.send(msgs)
}

// maxKeep bounds the buffers kept for reuse.
const maxKeep = 64 << 10

// send writes msgs at once if the link's signalling is idle, and queues
// them for the writer otherwise (see the link's comment).
func (l *link) send(msgs [][]byte) error {
	markAll(markSend, msgs)
	q := &l.out
	q.mu.Lock()
	if l.conn.Context().Err() != nil {
		q.mu.Unlock()
		return l.downError()
	}
	if q.busy || len(q.queue) > 0 {
		if len(q.queue) >= maxSigQueue {
			if idle, stopped := q.stalled(); stopped {
				queued := len(q.queue)
				q.mu.Unlock()
				l.overflowed(queued, idle)
				return l.downError()
			}
		}
		for _, m := range msgs {
			q.queue = appendFrame(q.queue, m)
		}
		markAll(markQueued, msgs)
		q.kick()
		q.mu.Unlock()
		return nil
	}
	// Idle: hand the batch to the stream on this goroutine. TryWriteAll
	// only appends it to the stream's next frame and wakes the
	// connection's goroutine: it never waits for that goroutine to pack
	// it, nor for the peer's flow control (it refuses instead).
	q.busy = true
	b := q.spare[:0]
	q.spare = nil
	for _, m := range msgs {
		b = appendFrame(b, m)
	}
	w := q.w
	q.mu.Unlock()
	err := w.TryWriteAll(b)
	markAll(markWritten, msgs)
	if errors.Is(err, quicgo.ErrWouldBlock) {
		// The peer's window is full (or nearly): nothing of b went; the
		// writer writes it, ahead of whatever was queued meanwhile.
		q.mu.Lock()
		q.busy = false
		q.queue = append(b, q.queue...)
		q.kick()
		q.mu.Unlock()
		return nil
	}
	l.wrote(b)
	if len(q.queue) > 0 { // queued while this write was in progress
		q.kick()
	}
	q.mu.Unlock()
	if err != nil {
		l.writeFailed(err)
		return l.sendError(err)
	}
	return nil
}

// overflowed closes a link whose peer does not take its signalling, with
// queued octets waiting for it and nothing taken for idle (since the
// queue was found full).
func (l *link) overflowed(queued int, idle time.Duration) {
	if l.conn.Context().Err() == nil {
		l.e.log.Warn("peer is not reading its signalling: closing its link", "peer", l.peer, "queued_octets", queued, "nothing_taken_for", idle)
	}
	l.closeWith(transport.DownOverflow, CodeOverflow, "signalling queue overflow")
}

// write writes the batch b on the signalling stream w; q.busy is set
// and q.mu not held. It returns with q.mu held, busy cleared and b kept for
// reuse, so the caller sees what was queued meanwhile.
func (l *link) write(w sigWriter, b []byte) error {
	err := w.TryWriteAll(b)
	if errors.Is(err, quicgo.ErrWouldBlock) {
		// Wait for the peer's flow control, a piece at a time: each
		// piece taken shows the peer is reading (sigQueue.stalled).
		err = nil
		for rest := b; len(rest) > 0 && err == nil; {
			n := min(len(rest), sigWriteChunk)
			_, err = w.Write(rest[:n])
			rest = rest[n:]
			l.out.progress.Add(1)
		}
	}
	l.wrote(b)
	return err
}

// wrote ends a write of b: it takes q.mu, clears busy and keeps b for
// reuse.
func (l *link) wrote(b []byte) {
	q := &l.out
	q.writes.Add(1)
	q.progress.Add(1)
	q.mu.Lock()
	q.busy = false
	if cap(b) <= maxKeep {
		q.spare = b[:0]
	}
}

// writeFailed handles a failed write on the signalling stream. A stream
// error while the connection lives means the peer stopped the stream:
// without signalling there is no link, so it is closed as a protocol
// failure. Any other error is the connection ending, which run reports.
func (l *link) writeFailed(err error) {
	var se *quicgo.StreamError
	if errors.As(err, &se) {
		l.closeWith(transport.DownProtocol, CodeProtocol, "signalling stream stopped by the peer")
	}
}

// kick wakes the writer; q.mu is held.
func (q *sigQueue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// writeSignalling is the writer: it writes the queue, one Write per batch,
// until the connection ends.
func (l *link) writeSignalling() {
	q := &l.out
	done := l.conn.Context().Done()
	for {
		select {
		case <-q.wake:
		case <-done:
			return
		}
		q.mu.Lock()
		for len(q.queue) > 0 && !q.busy { // busy: a direct write kicks again when done
			b := q.queue
			q.queue, q.spare = q.spare[:0], nil
			q.busy = true
			w := q.w
			q.mu.Unlock()
			err := l.write(w, b)
			if err != nil {
				// The link is going (run reports why), or goes now:
				// what is queued is lost with it.
				q.queue = nil
				q.mu.Unlock()
				l.writeFailed(err)
				return
			}
		}
		q.mu.Unlock()
	}
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
		// A datagram longer than the learnt limit went out: the path grew
		// (path MTU discovery), so the learnt limit is stale.
		if m := l.maxDG.Load(); m > 0 && int64(len(payload)) >= m {
			l.maxDG.Store(0)
		}
		return nil
	}
	var tl *quicgo.DatagramTooLargeError
	if errors.As(err, &tl) {
		m := max(0, int(tl.MaxDatagramPayloadSize)-transport.ConnIDLen)
		l.learnMaxDG(m)
		return &transport.DatagramTooLargeError{Size: len(payload), Max: m}
	}
	return l.sendError(err)
}

// maxDGFresh is how long a learnt MaxDatagramPayload is used without
// asking quic-go again. Asking costs a refused send and an error value,
// and every call setup asks (SDU negotiation); the limit moves seldom
// (path MTU discovery), and a refused datagram teaches the new one at once.
const maxDGFresh = 100 * time.Millisecond

func (l *link) MaxDatagramPayload() int {
	if m := l.maxDG.Load(); m > 0 && time.Since(l.born)-time.Duration(l.maxDGAt.Load()) < maxDGFresh {
		return int(m - 1)
	}
	var tl *quicgo.DatagramTooLargeError
	if err := l.conn.SendDatagram(probe); errors.As(err, &tl) {
		m := max(0, int(tl.MaxDatagramPayloadSize)-transport.ConnIDLen)
		l.learnMaxDG(m)
		return m
	}
	return 0
}

func (l *link) learnMaxDG(m int) {
	l.maxDGAt.Store(int64(time.Since(l.born)))
	l.maxDG.Store(int64(m) + 1)
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
// is held. The stream header (on a new stream), the length prefix and the
// SDU go in one stream Write, unless the SDU is longer than
// maxRelFrameBuf (see there).
// relFrames holds the buffers an SDU's prefix and payload are put
// together in for one Write: quic-go copies what a Write is given before
// the Write returns, so a buffer goes back at once, and an idle stream
// keeps none.
var relFrames = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func (l *link) writeReliable(rs *relStream, connID uint32, sdu []byte) error {
	bp := relFrames.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxRelFrameBuf {
			relFrames.Put(bp)
		}
	}()
	f := (*bp)[:0]
	if rs.s == nil {
		s, err := l.conn.OpenUniStreamSync(l.conn.Context())
		if err != nil {
			return l.sendError(err)
		}
		rs.s = s
		f = append(f, streamKindVC)
		f = binary.BigEndian.AppendUint32(f, connID)
	}
	f = binary.BigEndian.AppendUint32(f, uint32(len(sdu)))
	if len(f)+len(sdu) > maxRelFrameBuf {
		rs.writes.Add(1)
		if _, err := rs.s.Write(f); err != nil {
			return l.sendError(err)
		}
		f = sdu
	} else {
		f = append(f, sdu...)
		*bp = f
	}
	rs.writes.Add(1)
	if _, err := rs.s.Write(f); err != nil {
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

var (
	_ transport.RTTer           = (*link)(nil)
	_ transport.RemoteAddresser = (*link)(nil)
)

// RTT returns the connection's smoothed round-trip time (RFC 9002), as
// quic-go estimates it from acknowledgements.
func (l *link) RTT() time.Duration { return l.conn.ConnectionStats().SmoothedRTT }

// RemoteAddr returns the peer's UDP address.
func (l *link) RemoteAddr() net.Addr { return l.conn.RemoteAddr() }
