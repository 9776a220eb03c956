package ipvc

import "sync"

// The device writer. Packets from the VCs (and ICMP errors) are queued
// and written into the device in batches by one goroutine: the Linux TUN
// device coalesces a batch's TCP segments (GRO) into a few large writes,
// where writing each packet as it arrives costs a system call apiece.
// Each buffer has room to grow to a coalesced segment.

// maxWriteBatch is the most packets written in one Device.Write.
const maxWriteBatch = 128

// maxWriteQueue bounds the packets waiting for the writer; more are
// dropped (and counted as device errors), as a full device queue would.
const maxWriteQueue = 1024

// bufPool holds buffers of offset+MaxMTU octets.
var bufPool = sync.Pool{New: func() any { b := make([]byte, offset+MaxMTU); return &b }}

// writeQueue is the writer's queue.
type writeQueue struct {
	mu     sync.Mutex
	q      []*[]byte // each buf[:offset+len(packet)]
	wake   chan struct{}
	closed bool
}

// enqueue copies pkt into a buffer for the writer; false if the queue
// is full or closed.
func (ifc *Interface) enqueue(pkt []byte) bool {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:offset+len(pkt)]
	copy(b[offset:], pkt)
	*bp = b
	w := &ifc.wq
	w.mu.Lock()
	if w.closed || len(w.q) >= maxWriteQueue {
		w.mu.Unlock()
		bufPool.Put(bp)
		return false
	}
	w.q = append(w.q, bp)
	first := len(w.q) == 1
	w.mu.Unlock()
	if first {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// writer writes queued packets into the device until Close.
func (ifc *Interface) writer() {
	defer ifc.wg.Done()
	w := &ifc.wq
	var batch []*[]byte
	bufs := make([][]byte, 0, maxWriteBatch)
	for {
		w.mu.Lock()
		for len(w.q) == 0 && !w.closed {
			w.mu.Unlock()
			<-w.wake
			w.mu.Lock()
		}
		if w.closed {
			w.q = nil
			w.mu.Unlock()
			return
		}
		n := min(len(w.q), maxWriteBatch)
		batch = append(batch[:0], w.q[:n]...)
		w.q = append(w.q[:0], w.q[n:]...)
		w.mu.Unlock()
		bufs = bufs[:0]
		for _, bp := range batch {
			// Full capacity: GRO may append a later segment's payload.
			bufs = append(bufs, (*bp)[:len(*bp):cap(*bp)])
		}
		if _, err := ifc.dev.Write(bufs, offset); err != nil {
			ifc.stats.deviceErrors.Add(1)
		}
		for _, bp := range batch {
			*bp = (*bp)[:cap(*bp)]
			bufPool.Put(bp)
		}
		clear(batch)
	}
}

// stopWriter ends the writer.
func (ifc *Interface) stopWriter() {
	w := &ifc.wq
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}
