package vcnet

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/condis-project/condis/node"
)

// link is what a Conn needs from the VC under it: the embedded client's
// VC or a call session of a node's control socket.
type link interface {
	// send sends one SDU; it may block until the VC can take it.
	send(sdu []byte) error
	// end closes the call once every send has completed.
	end()
}

// Buffers: what a Conn holds of received SDUs before a reliable VC stops
// reading (its QUIC stream's flow control then holds the sender) or a
// datagram VC drops, and what it queues of written SDUs before Write
// waits.
const (
	recvBuffer = 1 << 20
	sendBuffer = 1 << 20
)

// Conn is a VC as a net.Conn. A reliable VC (Dialer.Reliable) is a byte
// stream: Write cuts what it is given into SDUs of at most the call's
// maximum, Read returns the bytes in order, CloseWrite sends an empty SDU
// that the far end's Read sees as io.EOF. A datagram VC keeps message
// boundaries: each Write is one SDU (ErrTooLarge if over the maximum), each
// Read returns one SDU (truncated, like UDP, if b is too short).
//
// Close closes the call once what was written has been sent. A call the
// far end or the network closed makes Read return io.EOF after what was
// received (a normal close) or the *CallError saying why.
type Conn struct {
	reliable bool
	local    Addr
	remote   Addr

	mu       sync.Mutex
	info     CallInfo
	rq       [][]byte // received SDUs not yet read
	rqBytes  int
	rpart    []byte // the rest of an SDU a stream Read did not take
	eof      bool   // Read reached the far end's FIN
	finSent  bool   // our FIN is queued (CloseWrite or Close)
	doneSent bool   // our DONE is queued
	peerFin  bool   // the far end's FIN arrived
	peerDone bool   // the far end's DONE arrived
	release  bool   // the sender ends the call once its queue is empty
	linger   *time.Timer
	callErr  error // the call is over: io.EOF or why
	wq       [][]byte
	wqBytes  int
	wClosed  bool // CloseWrite or Close
	closed   bool
	werr     error // the link refused a send
	dropped  uint64
	rwake    chan struct{} // something to read, or the end
	wwake    chan struct{} // room to write, or the end
	swake    chan struct{} // something for the sender
	space    chan struct{} // room in the receive buffer
	rdl, wdl deadline
	l        link
	done     chan struct{} // closed when the sender is gone

	// A call dialled through a control socket: the socket, and the node's
	// answer (a multipoint call's leaves).
	socket string
	resp   node.Response
}

func newConn(reliable bool, local, remote Addr) *Conn {
	c := &Conn{reliable: reliable, local: local, remote: remote,
		rwake: make(chan struct{}, 1), wwake: make(chan struct{}, 1), swake: make(chan struct{}, 1),
		space: make(chan struct{}, 1), done: make(chan struct{})}
	c.rdl.init()
	c.wdl.init()
	return c
}

// start runs the sender once the VC is up.
func (c *Conn) start(l link) {
	c.mu.Lock()
	c.l = l
	c.mu.Unlock()
	go c.sender()
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// deliver takes received SDUs. On a reliable VC it waits for room if
// wait (the VC's data path waits with it) and acts on the stream's marks;
// a datagram VC drops what does not fit.
func (c *Conn) deliver(sdus [][]byte, wait bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range sdus {
		if c.reliable && len(d) == 0 {
			c.markLocked()
			continue
		}
		for wait && c.reliable && c.rqBytes >= recvBuffer && !c.closed {
			c.mu.Unlock()
			<-c.space
			c.mu.Lock()
		}
		if c.closed || c.peerFin {
			continue
		}
		if !c.reliable && c.rqBytes+len(d) > recvBuffer {
			c.dropped++
			continue
		}
		c.rq = append(c.rq, d)
		c.rqBytes += len(d)
	}
	wake(c.rwake)
}

// markLocked takes an empty SDU on a reliable VC: the far end's FIN (no
// more data), then its DONE (it has sent its FIN and received ours). The
// end that has sent its DONE and received the far end's releases the
// call: by then each end has had all the other sent, so the release
// cannot overtake data still on its way.
func (c *Conn) markLocked() {
	if !c.peerFin {
		c.peerFin = true
		c.rq = append(c.rq, []byte{}) // Read's io.EOF, after the data
		c.maybeDoneLocked()
		return
	}
	c.peerDone = true
	if c.doneSent {
		c.release = true
		wake(c.swake)
	}
}

// maybeDoneLocked queues our DONE once our FIN is queued and the far
// end's has arrived.
func (c *Conn) maybeDoneLocked() {
	if c.finSent && c.peerFin && !c.doneSent {
		c.doneSent = true
		c.wq = append(c.wq, []byte{})
		if c.peerDone {
			c.release = true
		}
		wake(c.swake)
	}
}

// closeLinger bounds how long a closed reliable VC waits for the far end
// to close its side before it releases the call anyway.
const closeLinger = 10 * time.Second

// ended: the call is over; err is io.EOF for a normal close.
func (c *Conn) ended(err error) {
	c.mu.Lock()
	if c.callErr == nil {
		c.callErr = err
	}
	c.mu.Unlock()
	wake(c.rwake)
	wake(c.wwake)
	wake(c.swake)
	wake(c.space)
}

// Read reads from the VC (see Conn for stream and datagram semantics).
func (c *Conn) Read(b []byte) (int, error) {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		case c.rdl.expired():
			c.mu.Unlock()
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		case c.reliable && len(c.rpart) > 0:
			n := copy(b, c.rpart)
			c.rpart = c.rpart[n:]
			c.mu.Unlock()
			return n, nil
		case len(c.rq) > 0:
			d := c.rq[0]
			c.rq[0] = nil
			c.rq = c.rq[1:]
			c.rqBytes -= len(d)
			wake(c.space)
			if c.reliable && len(d) == 0 {
				c.eof = true
				c.mu.Unlock()
				return 0, io.EOF
			}
			n := copy(b, d)
			if c.reliable {
				c.rpart = d[n:]
			}
			c.mu.Unlock()
			if n == 0 && len(b) == 0 {
				return 0, nil
			}
			return n, nil
		case c.eof:
			c.mu.Unlock()
			return 0, io.EOF
		case c.callErr != nil:
			err := c.callErr
			c.mu.Unlock()
			if err == io.EOF {
				return 0, io.EOF
			}
			return 0, c.opErr("read", err)
		}
		c.mu.Unlock()
		select {
		case <-c.rwake:
		case <-c.rdl.wait():
		}
	}
}

// Write writes to the VC: it returns once the SDUs are queued for sending.
func (c *Conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	max := c.info.MaxSDU
	c.mu.Unlock()
	if !c.reliable {
		if len(b) > max {
			return 0, c.opErr("write", &SizeError{Size: len(b), Max: max})
		}
		if err := c.queue(append([]byte(nil), b...)); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	n := 0
	for n < len(b) {
		k := min(len(b)-n, max)
		if err := c.queue(append([]byte(nil), b[n:n+k]...)); err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// queue queues one SDU for the sender, waiting for room.
func (c *Conn) queue(sdu []byte) error {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return c.opErr("write", net.ErrClosed)
		case c.wClosed:
			c.mu.Unlock()
			return c.opErr("write", ErrWriteClosed)
		case c.wdl.expired():
			c.mu.Unlock()
			return c.opErr("write", os.ErrDeadlineExceeded)
		case c.werr != nil:
			err := c.werr
			c.mu.Unlock()
			return c.opErr("write", err)
		case c.callErr != nil:
			err := c.callErr
			c.mu.Unlock()
			if err == io.EOF {
				err = ErrCallClosed
			}
			return c.opErr("write", err)
		case c.wqBytes < sendBuffer || len(c.wq) == 0:
			c.wq = append(c.wq, sdu)
			c.wqBytes += len(sdu)
			c.mu.Unlock()
			wake(c.swake)
			return nil
		}
		c.mu.Unlock()
		select {
		case <-c.wwake:
		case <-c.wdl.wait():
		}
	}
}

// sender sends the queued SDUs, in order, on its own goroutine: a send
// that waits for the VC does not hold up Write's deadline. It ends the
// call once it is to be released (a reliable VC: see markLocked; a
// datagram VC: once closed) and the queue is empty.
func (c *Conn) sender() {
	defer close(c.done)
	defer func() {
		c.mu.Lock()
		if c.linger != nil {
			c.linger.Stop()
		}
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		if c.callErr != nil || c.werr != nil {
			c.wq, c.wqBytes = nil, 0
			c.mu.Unlock()
			wake(c.wwake)
			return
		}
		if len(c.wq) == 0 {
			if c.release || (c.closed && !c.reliable) {
				l := c.l
				c.mu.Unlock()
				l.end()
				return
			}
			c.mu.Unlock()
			<-c.swake
			continue
		}
		sdu := c.wq[0]
		c.wq[0] = nil
		c.wq = c.wq[1:]
		l := c.l
		c.mu.Unlock()
		err := l.send(sdu)
		c.mu.Lock()
		c.wqBytes -= len(sdu)
		if err != nil && c.werr == nil {
			c.werr = err
		}
		c.mu.Unlock()
		wake(c.wwake)
	}
}

// CloseWrite says no more will be written (reliable VCs): the far end's
// Read returns io.EOF once it has read what came before. Reading goes on.
func (c *Conn) CloseWrite() error {
	if !c.reliable {
		return c.opErr("close", ErrNotReliable)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return c.opErr("close", net.ErrClosed)
	case c.finSent:
		return nil
	}
	c.finLocked()
	return nil
}

// finLocked queues our FIN (an empty SDU), and our DONE if the far end's
// FIN is in.
func (c *Conn) finLocked() {
	c.finSent, c.wClosed = true, true
	c.wq = append(c.wq, []byte{})
	c.maybeDoneLocked()
	wake(c.swake)
}

// Close closes the Conn. A datagram VC's call is closed once what was
// written has been sent; a reliable VC's once the far end has closed its
// side too (or after closeLinger), so that nothing either end sent is
// lost. Pending Reads and Writes return net.ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	c.closed, c.wClosed = true, true
	c.rq, c.rqBytes, c.rpart = nil, 0, nil
	started := c.l != nil
	if c.reliable && !c.finSent {
		c.finLocked()
	}
	if c.reliable && started {
		c.linger = time.AfterFunc(closeLinger, func() {
			c.mu.Lock()
			c.release = true
			c.mu.Unlock()
			wake(c.swake)
		})
	}
	c.mu.Unlock()
	c.rdl.close()
	c.wdl.close()
	wake(c.rwake)
	wake(c.wwake)
	wake(c.swake)
	wake(c.space)
	if !started {
		close(c.done)
	}
	return nil
}

// LocalAddr is this end: the node ("" if not known) and, for a call this
// end took, the service.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the far end: its node and the service called, or calling
// in.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { c.rdl.set(t); return nil }

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wdl.set(t); return nil }

// Info describes the call: its VC, the far end, the granted flowspecs and
// the largest SDU.
func (c *Conn) Info() CallInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.info
}

// Dropped counts the SDUs a datagram VC dropped because the application
// did not read them in time.
func (c *Conn) Dropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

func (c *Conn) setInfo(f func(*CallInfo)) {
	c.mu.Lock()
	f(&c.info)
	c.mu.Unlock()
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: Net, Source: c.local, Addr: c.remote, Err: err}
}

// deadline is a Read or Write deadline: wait's channel is closed while it
// has passed (after net.Pipe's).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func (d *deadline) init() { d.cancel = make(chan struct{}) }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for its close
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// close stops the timer: the Conn is closed.
func (d *deadline) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && d.timer.Stop() {
		d.timer = nil
	}
}

func (d *deadline) expired() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return isClosed(d.cancel)
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Errors of a Conn.
var (
	// ErrWriteClosed: Write after CloseWrite.
	ErrWriteClosed = errors.New("vcnet: write after CloseWrite")
	// ErrNotReliable: CloseWrite on a datagram VC, which has no stream to
	// end.
	ErrNotReliable = errors.New("vcnet: CloseWrite needs a reliable VC (Dialer.Reliable)")
	// ErrCallClosed: the call was closed normally; nothing more can be
	// written.
	ErrCallClosed = errors.New("vcnet: the call is closed")
)

// SizeError is a datagram larger than the call's largest SDU: it is not
// sent.
type SizeError struct{ Size, Max int }

func (e *SizeError) Error() string {
	return "vcnet: datagram of " + itoa(e.Size) + " octets, more than the call's largest SDU (" + itoa(e.Max) + "); not sent"
}
