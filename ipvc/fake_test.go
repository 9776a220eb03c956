package ipvc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// fakeCalls is an in-memory Calls: each Call waits until the test answers
// it (answer), and circuits record what is sent on them.
type fakeCalls struct {
	mu      sync.Mutex
	accept  func(peer string) Receiver
	pending chan *fakeCall // calls made, waiting for an answer
	maxSDU  int
}

type fakeCall struct {
	node   string
	fs     ndis.Flowspec
	rx     Receiver
	answer chan callAnswer
	// returned gets what Call returned.
	returned chan error
}

type callAnswer struct {
	c   *fakeCircuit // nil: failed with cause
	err error
}

func newFakeCalls() *fakeCalls {
	return &fakeCalls{pending: make(chan *fakeCall, 16), maxSDU: 1400}
}

func (f *fakeCalls) Call(ctx context.Context, node string, fs ndis.Flowspec, rx Receiver) error {
	fc := &fakeCall{node: node, fs: fs, rx: rx, answer: make(chan callAnswer, 1), returned: make(chan error, 1)}
	f.pending <- fc
	err := fc.wait(ctx)
	fc.returned <- err
	return err
}

func (fc *fakeCall) wait(ctx context.Context) error {
	select {
	case a := <-fc.answer:
		if a.err != nil {
			return a.err
		}
		fc.rx.Up(a.c)
		return nil
	case <-ctx.Done():
		return &CallError{Node: fc.node, Err: ctx.Err()}
	}
}

func (f *fakeCalls) Listen(accept func(peer string) Receiver) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accept = accept
	return nil
}

// next returns the next call made; it fails the test if there is none.
func (f *fakeCalls) next(t *testing.T) *fakeCall {
	t.Helper()
	select {
	case c := <-f.pending:
		return c
	default:
		t.Fatal("no call was made")
		return nil
	}
}

// nextTo returns the pending call to node, whichever order the calls
// were made in (two packets' calls start on their own goroutines); the
// other pending calls stay pending. It fails the test if there is none.
func (f *fakeCalls) nextTo(t *testing.T, node string) *fakeCall {
	t.Helper()
	var others []*fakeCall
	defer func() {
		for _, c := range others {
			f.pending <- c
		}
	}()
	for {
		select {
		case c := <-f.pending:
			if c.node == node {
				return c
			}
			others = append(others, c)
		default:
			t.Fatalf("no call to %s was made", node)
			return nil
		}
	}
}

// none fails the test if a call was made.
func (f *fakeCalls) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-f.pending:
		t.Fatalf("a call to %s was made, want none", c.node)
	default:
	}
}

// connect answers fc with a connected circuit.
func (f *fakeCalls) connect(fc *fakeCall, name string) *fakeCircuit {
	c := &fakeCircuit{name: name, max: f.maxSDU, rx: fc.rx}
	fc.answer <- callAnswer{c: c}
	return c
}

// refuse answers fc with a failure with cause.
func (fc *fakeCall) refuse(cause uni.Cause) {
	fc.answer <- callAnswer{err: &CallError{Node: fc.node, Status: q2931.StatusForCause(cause), Cause: cause}}
}

type fakeCircuit struct {
	name string
	max  int
	rx   Receiver

	mu     sync.Mutex
	sent   [][]byte
	sends  []int // SDUs per Send call
	closes int
	closed bool
}

func (c *fakeCircuit) Send(sdus ...[]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("closing")
	}
	for _, sdu := range sdus {
		if len(sdu) > c.max {
			return fmt.Errorf("too big")
		}
	}
	c.sent = append(c.sent, sdus...)
	c.sends = append(c.sends, len(sdus))
	return nil
}

// sendSizes is how many SDUs each Send carried.
func (c *fakeCircuit) sendSizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sends)
}

func (c *fakeCircuit) MaxSDU() int { return c.max }

// Close closes at once: Closed follows, as the client's would once the
// call is released.
func (c *fakeCircuit) Close() {
	c.mu.Lock()
	c.closes++
	first := !c.closed
	c.closed = true
	c.mu.Unlock()
	if first {
		c.rx.Closed(CloseReason{Status: ndis.StatusSuccess})
	}
}

func (c *fakeCircuit) String() string { return c.name }

// remoteClose is the far end or the network closing the call.
func (c *fakeCircuit) remoteClose(st ndis.Status, cause uni.Cause) {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.rx.Closed(CloseReason{Status: st, Cause: cause, ByPeer: true})
}

func (c *fakeCircuit) sentSDUs() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.sent...)
}

func (c *fakeCircuit) closeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closes
}

// fakeDevice is an in-memory TUN: the test injects packets the host
// "sends" (in) and reads what IP over condis wrote into it (out).
type fakeDevice struct {
	in      chan []byte
	inBatch chan [][]byte // read as one batch (at most fakeBatchSize)
	out     chan []byte
	mu      sync.Mutex
	mtus    []int
	closed  chan struct{}
	once    sync.Once
}

func newFakeDevice() *fakeDevice {
	return &fakeDevice{in: make(chan []byte), inBatch: make(chan [][]byte), out: make(chan []byte, 256), closed: make(chan struct{})}
}

func (d *fakeDevice) Read(bufs [][]byte, sizes []int, off int) (int, error) {
	select {
	case p := <-d.in:
		sizes[0] = copy(bufs[0][off:], p)
		return 1, nil
	case batch := <-d.inBatch:
		for i, p := range batch {
			sizes[i] = copy(bufs[i][off:], p)
		}
		return len(batch), nil
	case <-d.closed:
		return 0, errors.New("closed")
	}
}

func (d *fakeDevice) Write(bufs [][]byte, off int) (int, error) {
	for _, b := range bufs {
		d.out <- append([]byte(nil), b[off:]...)
	}
	return len(bufs), nil
}

func (d *fakeDevice) BatchSize() int { return fakeBatchSize }

// fakeBatchSize is the most packets one fakeDevice Read returns.
const fakeBatchSize = 8

func (d *fakeDevice) SetMTU(mtu int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mtus = append(d.mtus, mtu)
	return nil
}

func (d *fakeDevice) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

// written returns the next packet written into the device; it fails the
// test if there is none.
func (d *fakeDevice) written(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-d.out:
		return p
	default:
		t.Fatal("nothing was written into the device")
		return nil
	}
}

func (d *fakeDevice) nothingWritten(t *testing.T) {
	t.Helper()
	select {
	case p := <-d.out:
		t.Fatalf("% x was written into the device, want nothing", p)
	default:
	}
}

// ipv4 builds an IPv4 UDP packet from src to dst with payload, DF set.
func ipv4(src, dst string, payload []byte) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	b := make([]byte, 28+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[6] = 0x40 // DF
	b[8], b[9] = 64, 17
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	binary.BigEndian.PutUint16(b[10:], checksum(b[:20], 0))
	binary.BigEndian.PutUint16(b[20:], 4000)
	binary.BigEndian.PutUint16(b[22:], 5000)
	binary.BigEndian.PutUint16(b[24:], uint16(8+len(payload)))
	copy(b[28:], payload)
	return b
}

// ipv6 builds an IPv6 UDP packet from src to dst with payload.
func ipv6(src, dst string, payload []byte) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	b := make([]byte, 48+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	b[6], b[7] = 17, 64
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	copy(b[48:], payload)
	return b
}
