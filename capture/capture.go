// Package capture writes the Q.2931 messages a node sends and receives
// (trace.Signal events) to a pcapng file that a stock Wireshark or tshark
// decodes as Q.2931 with no preference set: each packet is a Wireshark
// exported PDU (link type 252, LINKTYPE_WIRESHARK_UPPER_PDU) naming the
// q2931 dissector, with the two nodes' UDP addresses and ports as its
// source and destination, its direction, and a comment saying which node
// sent it to which ("alpha -> beta"). docs/protocol.md §8 describes the
// format.
//
//	w := capture.New(f, "alpha", capture.WithAddresses(addrs))
//	tracer := trace.Join(tracer, w.Tracer())
//	...
//	err := w.Close() // writes what is queued; f stays open
//
// The Signal hook never blocks the call manager that calls it (with its
// lock held): it copies the message onto a bounded queue that a goroutine
// of the Writer drains into the file. When the queue is full the message
// is dropped and counted ([Writer.Dropped]), as a capture on a busy
// interface drops packets.
package capture

import (
	"io"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/condis-project/condis/capture/pcapng"
	"github.com/condis-project/condis/trace"
)

// Dissector is the Wireshark dissector every packet names.
const Dissector = "q2931"

// DefaultQueue is how many messages a Writer holds for its goroutine
// before it drops them.
const DefaultQueue = 4096

// AddrFunc returns the UDP addresses of a link between this node and peer:
// this node's (local) and the peer's (remote); ok is false if it does not
// know them. It is called from the Writer's goroutine, once per peer.
type AddrFunc func(peer string) (local, remote netip.AddrPort, ok bool)

// Option configures a Writer.
type Option func(*Writer)

// WithAddresses has the Writer tag each packet with the addresses f gives
// for its peer. Without it, or for a peer f does not know, the Writer makes
// addresses up (see [SyntheticAddr]).
func WithAddresses(f AddrFunc) Option { return func(w *Writer) { w.addrs = f } }

// WithQueue sets how many messages may wait for the Writer's goroutine
// (default DefaultQueue; at least 1).
func WithQueue(n int) Option { return func(w *Writer) { w.queueLen = max(n, 1) } }

// Writer writes one node's Q.2931 messages to a pcapng stream. Its methods
// are safe for concurrent use.
type Writer struct {
	node     string
	addrs    AddrFunc
	queueLen int

	mu     sync.RWMutex // held for reading by the hook while it queues; Close takes it to stop the queueing
	closed bool
	queue  chan trace.Signal

	dropped atomic.Uint64
	written atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
	err     error // the first write error; set before done is closed
	once    sync.Once
}

// New starts a Writer that writes node's messages to out: a pcapng section
// header and one interface ("condis:NODE") at once, then a packet for each
// message its Tracer sees. Write errors are returned by Close; after the
// first one no more packets are written (they count as dropped).
func New(out io.Writer, node string, opts ...Option) *Writer {
	w := &Writer{node: node, queueLen: DefaultQueue, stop: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		o(w)
	}
	w.queue = make(chan trace.Signal, w.queueLen)
	go w.run(out)
	return w
}

// Tracer returns the hooks to join into the node's tracer: Signal only.
func (w *Writer) Tracer() trace.Tracer { return trace.Tracer{Signal: w.signal} }

// signal queues a copy of s, or counts it as dropped; it never blocks.
func (w *Writer) signal(s trace.Signal) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	s.Msg = append([]byte(nil), s.Msg...) // the emitter's slice
	select {
	case w.queue <- s:
	default:
		w.dropped.Add(1)
	}
}

// Dropped is how many messages were not written: the queue was full, a
// write had failed, or the Writer was closed.
func (w *Writer) Dropped() uint64 { return w.dropped.Load() }

// Written is how many packets were written (and flushed, or about to be).
func (w *Writer) Written() uint64 { return w.written.Load() }

// Close stops taking messages, writes those queued, flushes, and returns
// the first write error. It does not close the io.Writer given to New.
// Calling it again returns the same error.
func (w *Writer) Close() error {
	w.once.Do(func() {
		w.mu.Lock()
		w.closed = true // no signal is queueing now, and none will
		w.mu.Unlock()
		close(w.stop)
	})
	<-w.done
	return w.err
}

// endpoints are the addresses of a link, as the packets show them.
type endpoints struct{ local, remote netip.AddrPort }

// run writes the file until Close.
func (w *Writer) run(out io.Writer) {
	defer close(w.done)
	pw, err := pcapng.NewWriter(out, "condis")
	if err == nil {
		_, err = pw.AddInterface(pcapng.Interface{LinkType: pcapng.LinkTypeUpperPDU,
			Name: "condis:" + w.node, Description: "Q.2931 signalling of condis node " + w.node})
	}
	if err == nil {
		err = pw.Flush() // a reader of a live capture sees the header at once
	}
	w.err = err
	links := map[string]endpoints{}
	synthetic := map[string]int{} // peer -> its number among the made-up addresses
	var buf []byte
	write := func(s trace.Signal) {
		if w.err != nil {
			w.dropped.Add(1)
			return
		}
		ep, ok := links[s.Peer]
		if !ok {
			if w.addrs != nil {
				ep.local, ep.remote, ok = w.addrs(s.Peer)
			}
			if !ok {
				n, seen := synthetic[s.Peer]
				if !seen {
					n = len(synthetic) + 1
					synthetic[s.Peer] = n
				}
				ep = endpoints{SyntheticAddr(0), SyntheticAddr(n)}
			}
			links[s.Peer] = ep
		}
		hdr := pcapng.UpperPDU{Dissector: Dissector, Src: ep.local, Dst: ep.remote, Direction: pcapng.Outbound}
		comment := s.Node + " -> " + s.Peer
		if s.Dir == trace.In {
			hdr.Src, hdr.Dst, hdr.Direction = ep.remote, ep.local, pcapng.Inbound
			comment = s.Node + " <- " + s.Peer
		}
		buf, w.err = hdr.Append(buf[:0], s.Msg)
		if w.err == nil {
			w.err = pw.WritePacket(pcapng.Packet{Time: s.Time, Data: buf, Direction: hdr.Direction, Comment: comment})
		}
		if w.err != nil {
			w.dropped.Add(1)
			return
		}
		w.written.Add(1)
	}
	flush := func() {
		if w.err == nil {
			w.err = pw.Flush()
		}
	}
	for {
		select {
		case s := <-w.queue:
			write(s)
			if len(w.queue) == 0 {
				flush() // a batch is written: a live reader sees it
			}
		case <-w.stop:
			for {
				select {
				case s := <-w.queue:
					write(s)
				default:
					flush()
					return
				}
			}
		}
	}
}

// SyntheticAddr is the made-up address of a node the Writer has no
// address for: 198.18.0.0/15 is reserved for benchmarking (RFC 2544) and
// never routed, so it cannot be mistaken for a real host. This node is
// number 0 (198.18.0.1), its peers 1, 2, ... in the order they first
// appear in the capture (198.18.0.2, ...). The port is 0: none is tagged.
func SyntheticAddr(n int) netip.AddrPort {
	n++
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18 + byte(n>>16&1), byte(n >> 8), byte(n)}), 0)
}
