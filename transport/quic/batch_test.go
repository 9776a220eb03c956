package quic

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/condis-project/condis/transport"
)

// batchRec is a transport.BatchHandler that keeps every signalling message
// in the order it was delivered, and counts the Messages calls.
type batchRec struct {
	mu      sync.Mutex
	msgs    [][]byte
	batches int // Messages calls
	more    chan struct{}
}

func newBatchRec() *batchRec { return &batchRec{more: make(chan struct{}, 1)} }

func (r *batchRec) Message(m []byte) { r.add(m) }

func (r *batchRec) Messages(ms [][]byte) {
	r.mu.Lock()
	r.batches++
	r.mu.Unlock()
	r.add(ms...)
}

func (r *batchRec) add(ms ...[]byte) {
	r.mu.Lock()
	r.msgs = append(r.msgs, ms...)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

func (r *batchRec) Datagram(uint32, []byte)   {}
func (r *batchRec) StreamData(uint32, []byte) {}
func (r *batchRec) LinkDown(error)            {}

// waitN waits until n messages have arrived and returns them.
func (r *batchRec) waitN(t *testing.T, n int) [][]byte {
	t.Helper()
	deadline := time.After(wait)
	for {
		r.mu.Lock()
		got := len(r.msgs)
		r.mu.Unlock()
		if got >= n {
			r.mu.Lock()
			defer r.mu.Unlock()
			return append([][]byte(nil), r.msgs...)
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("%d of %d messages arrived", got, n)
		}
	}
}

// batchPair is alpha's link to beta, whose handler is a batchRec.
func batchPair(t *testing.T) (*link, *batchRec) {
	t.Helper()
	rec := newBatchRec()
	return pairWith(t, rec), rec
}

// pairWith is batchPair with h handling beta's side of the link.
func pairWith(t *testing.T, rec transport.LinkHandler) *link {
	t.Helper()
	return pairLogged(t, rec, nil)
}

// pairLogged is pairWith with alpha's endpoint logging to log (nil
// discards).
func pairLogged(t *testing.T, rec transport.LinkHandler, log *slog.Logger) *link {
	t.Helper()
	ab, _ := pairBoth(t, rec, log)
	return ab
}

// pairBoth is pairLogged returning beta's end of the link too.
func pairBoth(t *testing.T, rec transport.LinkHandler, log *slog.Logger) (ab, ba *link) {
	t.Helper()
	c := newCluster(t)
	start := func(name string, h transport.Handler) {
		id, err := c.ca.Issue(name)
		if err != nil {
			t.Fatal(err)
		}
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{Identity: id, Handler: h, Resolve: c.book.Resolve, PacketConn: udp}
		if name == "alpha" {
			cfg.Logger = log
		}
		ep, err := Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.book.Set(name, udp.LocalAddr())
		t.Cleanup(func() { ep.Close() })
		if name == "alpha" {
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			if _, err := ep.Dial(ctx, "beta"); err != nil {
				t.Fatal(err)
			}
		}
	}
	var alpha transport.Link
	beta := make(chan transport.Link, 1)
	start("beta", transport.HandlerFunc(func(l transport.Link) transport.LinkHandler {
		select {
		case beta <- l:
		default:
		}
		return rec
	}))
	start("alpha", transport.HandlerFunc(func(l transport.Link) transport.LinkHandler {
		alpha = l
		return &transport.LinkFuncs{}
	}))
	select {
	case l := <-beta:
		return alpha.(*link), l.(*link)
	case <-time.After(wait):
		t.Fatal("beta never saw the link come up")
		return nil, nil
	}
}

// TestSendBatchKeepsOrderOnce: several goroutines send with Send and
// SendBatch at once, so that the queue and the writer are used; every
// message arrives exactly once and each sender's in its order.
func TestSendBatchKeepsOrderOnce(t *testing.T) {
	ab, rec := batchPair(t)
	const senders, each = 8, 400
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := 0; i < each; {
				k := min(1+i%7, each-i) // batches of 1 to 7
				if k == 1 {
					if err := ab.Send(sigMsg(uint32(g<<16|i), i%50)); err != nil {
						t.Error(err)
						return
					}
					i++
					continue
				}
				var batch [][]byte
				for j := range k {
					batch = append(batch, sigMsg(uint32(g<<16|(i+j)), (i+j)%50))
				}
				if err := ab.SendBatch(batch); err != nil {
					t.Error(err)
					return
				}
				i += k
			}
		})
	}
	wg.Wait()
	got := rec.waitN(t, senders*each)
	if len(got) != senders*each {
		t.Fatalf("%d messages arrived, want %d", len(got), senders*each)
	}
	next := make([]int, senders)
	for _, m := range got {
		s := seqOf(m)
		g, i := int(s>>16), int(s&0xffff)
		if g >= senders || i != next[g] {
			t.Fatalf("sender %d: message %d arrived when %d was due", g, i, next[g])
		}
		next[g]++
		if want := sigMsg(s, i%50); !bytes.Equal(m, want) {
			t.Fatalf("message %x arrived as %x", want, m)
		}
	}
}

// TestQueuedMessagesGoInOneWrite: what is queued while a write is in
// progress goes out with one stream write, in order, and the receiver
// gets what one read brings in with one Messages call.
func TestQueuedMessagesGoInOneWrite(t *testing.T) {
	ab, rec := batchPair(t)
	q := &ab.out
	q.mu.Lock()
	q.busy = true // as if a write were in progress: Sends queue
	q.mu.Unlock()
	w0 := q.writes.Load()
	const n = 40 // 40 × 17 octets: one packet
	for i := range n {
		if err := ab.Send(sigMsg(uint32(i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if w := q.writes.Load(); w != w0 {
		t.Fatalf("%d stream writes while a write was in progress, want none", w-w0)
	}
	q.mu.Lock()
	q.busy = false
	q.kick()
	q.mu.Unlock()
	got := rec.waitN(t, n)
	for i, m := range got {
		if seqOf(m) != uint32(i) {
			t.Fatalf("message %d arrived in place %d", seqOf(m), i)
		}
	}
	if w := q.writes.Load(); w != w0+1 {
		t.Errorf("%d stream writes for the queue, want 1", w-w0)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.batches == 0 {
		t.Errorf("no Messages call: %d messages in one packet were delivered one at a time", n)
	}
}

// TestSendBatchRefusesBadSizes: a batch with a message of a size Send
// refuses is refused whole.
func TestSendBatchRefusesBadSizes(t *testing.T) {
	ab, rec := batchPair(t)
	err := ab.SendBatch([][]byte{sigMsg(1, 0), {0x09}})
	if !errors.Is(err, transport.ErrMessageSize) {
		t.Fatalf("SendBatch with a 1-octet message: %v, want ErrMessageSize", err)
	}
	if err := ab.Send(sigMsg(2, 0)); err != nil {
		t.Fatal(err)
	}
	if got := rec.waitN(t, 1); seqOf(got[0]) != 2 {
		t.Fatalf("first message to arrive: %d, want 2 (nothing of the refused batch)", seqOf(got[0]))
	}
}

// stalledRec is a link handler that stops reading: its first Message
// call blocks until release is closed.
type stalledRec struct {
	transport.LinkFuncs
	release chan struct{}
}

func (r *stalledRec) Message([]byte) { <-r.release }

// queued is the octets waiting in l's signalling queue.
func queued(l *link) int {
	l.out.mu.Lock()
	defer l.out.mu.Unlock()
	return len(l.out.queue)
}

// TestPeerNotReadingLosesItsLink: a peer that stops reading its
// signalling never makes Send wait. Past maxSigQueue the link stays as
// long as no time passes (the peer may only be slower than the burst);
// once the peer has taken nothing for sigStallAfter, the next Send closes
// the link with DownOverflow and fails with it, and the node logs one
// warning naming the peer and what was queued.
// (Before, Send waited for room for as long as the link stayed up, and
// the MCM's one signalling sender with it, for every peer.)
func TestPeerNotReadingLosesItsLink(t *testing.T) {
	rec := &stalledRec{release: make(chan struct{})}
	logs := newLogRecords()
	ab := pairLogged(t, rec, slog.New(logs))
	defer close(rec.release)
	clock := time.Unix(1e9, 0) // read only by Send, on this goroutine
	ab.out.mu.Lock()
	ab.out.now = func() time.Time { return clock }
	ab.out.mu.Unlock()
	big := transport.MaxMessageLen - 13
	sent := 0
	for queued(ab) < 2*maxSigQueue {
		if err := ab.Send(sigMsg(uint32(sent), big)); err != nil {
			t.Fatalf("Send %d, %d octets queued, no time passed: %v", sent, queued(ab), err)
		}
		sent++
	}
	var err error
	steps := 0
	for ; err == nil && steps < 100; steps++ {
		clock = clock.Add(sigStallAfter) // and the peer takes nothing
		err = ab.Send(sigMsg(uint32(sent), big))
	}
	var de *transport.LinkDownError
	if !errors.As(err, &de) || de.Reason != transport.DownOverflow {
		t.Fatalf("after %d stalls of %v: %v, want the link down with reason %v", steps, sigStallAfter, err, transport.DownOverflow)
	}
	if !errors.Is(err, transport.ErrLinkDown) {
		t.Errorf("%v does not match ErrLinkDown", err)
	}
	warned := logs.with("peer is not reading its signalling: closing its link")
	if len(warned) != 1 || warned[0].Level != slog.LevelWarn || warned[0].Attrs["peer"] != "beta" {
		t.Fatalf("the overflow was logged as %+v, want one warning with peer=beta", warned)
	}
	if q, _ := strconv.Atoi(warned[0].Attrs["queued_octets"]); q < 2*maxSigQueue || q > 2*maxSigQueue+(steps+1)*(transport.MaxMessageLen+4) {
		t.Errorf("queued_octets=%s, want what was queued: %d to %d", warned[0].Attrs["queued_octets"], 2*maxSigQueue, 2*maxSigQueue+(steps+1)*(transport.MaxMessageLen+4))
	}
	// How long the peer took nothing, for the operator: the stalls it was
	// given (one, unless the path's probe timeouts asked for more).
	if d, err := time.ParseDuration(warned[0].Attrs["nothing_taken_for"]); err != nil || d != time.Duration(steps)*sigStallAfter {
		t.Errorf("nothing_taken_for=%q, want %v", warned[0].Attrs["nothing_taken_for"], time.Duration(steps)*sigStallAfter)
	}
}

// TestPeerNotReadingHardBound: however fast the burst, the queue for a
// peer that takes nothing never passes hardSigQueue by more than a
// message: the Send that finds it full closes the link.
func TestPeerNotReadingHardBound(t *testing.T) {
	rec := &stalledRec{release: make(chan struct{})}
	logs := newLogRecords()
	ab := pairLogged(t, rec, slog.New(logs))
	defer close(rec.release)
	ab.out.mu.Lock()
	ab.out.now = func() time.Time { return time.Unix(1e9, 0) } // no time passes
	ab.out.mu.Unlock()
	big := transport.MaxMessageLen - 13
	var err error
	sent := 0
	for ; err == nil && sent < 2*hardSigQueue/big; sent++ {
		err = ab.Send(sigMsg(uint32(sent), big))
	}
	var de *transport.LinkDownError
	if !errors.As(err, &de) || de.Reason != transport.DownOverflow {
		t.Fatalf("after %d sends: %v, want the link down with reason %v", sent, err, transport.DownOverflow)
	}
	warned := logs.with("peer is not reading its signalling: closing its link")
	if len(warned) != 1 {
		t.Fatalf("the overflow was logged as %+v, want one warning", warned)
	}
	if q, _ := strconv.Atoi(warned[0].Attrs["queued_octets"]); q < hardSigQueue || q > hardSigQueue+transport.MaxMessageLen+4 {
		t.Errorf("queued_octets=%s, want %d to %d", warned[0].Attrs["queued_octets"], hardSigQueue, hardSigQueue+transport.MaxMessageLen+4)
	}
}

// pausingRec is a batchRec that takes nothing, and so reads nothing
// more, until resume is closed.
type pausingRec struct {
	*batchRec
	resume chan struct{}
}

func (r *pausingRec) Message(m []byte)     { <-r.resume; r.batchRec.Message(m) }
func (r *pausingRec) Messages(ms [][]byte) { <-r.resume; r.batchRec.Messages(ms) }

// TestPausingPeerKeepsItsLink: a peer that stops reading for a while and
// then reads again keeps its link, however far past maxSigQueue the queue
// grew meanwhile, and gets every message in order. (Before, the link was
// closed at the first 1 MiB: a node that cleared a million calls at once
// lost its link to the peer it cleared them with, and the calls were
// cleared by the link's loss.)
func TestPausingPeerKeepsItsLink(t *testing.T) {
	rec := &pausingRec{batchRec: newBatchRec(), resume: make(chan struct{})}
	resume := sync.OnceFunc(func() { close(rec.resume) })
	defer resume() // a failed Send must not leave beta's reader blocked
	ab := pairWith(t, rec)
	n := 0
	send := func() {
		t.Helper()
		if err := ab.Send(sigMsg(uint32(n), 1000)); err != nil {
			t.Fatalf("Send %d, %d octets queued: %v", n, queued(ab), err)
		}
		n++
	}
	for queued(ab) < 4*maxSigQueue {
		send()
	}
	resume()
	for range 1000 {
		send()
	}
	for i, m := range rec.waitN(t, n) {
		if seqOf(m) != uint32(i) {
			t.Fatalf("message %d arrived in place %d", seqOf(m), i)
		}
	}
}

// TestFrameBuffered: frameBufferedAt tells, for every point a stream can
// be cut at, which frames lie whole in the buffer, whether they are read
// out (readFrame) or lent in place, one after the other
// (peekBufferedFrame at a growing offset).
func TestFrameBuffered(t *testing.T) {
	var stream []byte
	var ends []int // where each frame ends
	for i, pad := range []int{0, 3, 0} {
		stream = appendFrame(stream, sigMsg(uint32(i), pad))
		ends = append(ends, len(stream))
	}
	for _, lend := range []bool{false, true} {
		for cut := range len(stream) + 1 {
			br := bufio.NewReaderSize(bytes.NewReader(stream[:cut]), 4096)
			br.Peek(cut) // the buffer holds what has "arrived"
			want := 0
			for _, e := range ends {
				if e <= cut {
					want++
				}
			}
			got, off := 0, 0
			for frameBufferedAt(br, off) {
				m, err := nextBufferedFrame(br, lend, &off)
				if err != nil {
					t.Fatalf("lend %v, cut at %d: frameBufferedAt, then %v", lend, cut, err)
				}
				if seqOf(m) != uint32(got) {
					t.Fatalf("lend %v, cut at %d: frame %d read as %d", lend, cut, got, seqOf(m))
				}
				got++
			}
			if got != want {
				t.Errorf("lend %v, cut at %d: %d frames reported buffered, want %d", lend, cut, got, want)
			}
		}
	}
	// A length out of range counts as buffered: the readers report it.
	br := bufio.NewReader(bytes.NewReader([]byte{0, 0, 0, 1, 0}))
	br.Peek(5)
	if !frameBufferedAt(br, 0) {
		t.Fatal("a frame of length 1 is not reported")
	}
	if _, _, err := peekBufferedFrame(br, 0); !errors.Is(err, errFrameLength) {
		t.Fatalf("peekBufferedFrame: %v, want errFrameLength", err)
	}
	if _, err := readFrame(br, transport.MinMessageLen, transport.MaxMessageLen); !errors.Is(err, errFrameLength) {
		t.Fatalf("readFrame: %v, want errFrameLength", err)
	}
}

// chunkedReader returns at most n octets per Read, as a stream hands over
// what has arrived so far.
type chunkedReader struct {
	r io.Reader
	n int
}

func (c chunkedReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

// msgBorrower is a batch handler that only borrows its messages.
type msgBorrower struct{ *batchRecorder }

func (msgBorrower) BorrowsMessages() {}

// batchRecorder records a copy of each message it is given, unless it
// only counts them.
type batchRecorder struct {
	transport.LinkFuncs
	got   [][]byte
	count bool
	n     int
}

func (r *batchRecorder) Message(msg []byte) { r.Messages([][]byte{msg}) }

func (r *batchRecorder) Messages(msgs [][]byte) {
	for _, m := range msgs {
		if r.count {
			if seqOf(m) != uint32(r.n) {
				panic("out of order")
			}
			r.n++
			continue
		}
		r.got = append(r.got, bytes.Clone(m))
	}
	clear(msgs) // the slice of messages is the transport's, not the messages
}

// TestSignallingLentToBorrowers: a transport.MessageBorrower is lent the
// signalling messages that lie whole in the read buffer (no allocation
// each), intact and in order, whatever pieces the stream hands them over
// in, up to the largest message; any other handler gets messages of its
// own. Both see the same end: io.EOF at a frame boundary,
// io.ErrUnexpectedEOF inside a frame, errFrameLength (after the messages
// before it) for a length out of range.
func TestSignallingLentToBorrowers(t *testing.T) {
	var stream []byte
	var want [][]byte
	for i := range 400 {
		m := sigMsg(uint32(i), (i*37)%300)
		if i == 150 {
			m = sigMsg(uint32(i), transport.MaxMessageLen-13) // the largest
		}
		want = append(want, m)
		stream = appendFrame(stream, m)
	}
	truncated := stream[:len(stream)-5]
	badLength := binary.BigEndian.AppendUint32(bytes.Clone(stream), transport.MaxMessageLen+1)
	for _, tc := range []struct {
		name    string
		data    []byte
		msgs    int
		wantErr error
	}{
		{"clean end", stream, len(want), io.EOF},
		{"truncated", truncated, len(want) - 1, io.ErrUnexpectedEOF},
		{"length out of range", badLength, len(want), errFrameLength},
	} {
		for _, lend := range []bool{false, true} {
			for _, chunk := range []int{1, 100, 1500, 1 << 20} {
				rec := &batchRecorder{}
				var h transport.LinkHandler = rec
				if lend {
					h = msgBorrower{rec}
				}
				l := &link{e: &Endpoint{log: slog.New(slog.DiscardHandler)}, h: h}
				err := l.deliverSignalling(chunkedReader{bytes.NewReader(tc.data), chunk})
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("%s, lend %v, chunks of %d: ended with %v, want %v", tc.name, lend, chunk, err, tc.wantErr)
				}
				if len(rec.got) != tc.msgs {
					t.Fatalf("%s, lend %v, chunks of %d: %d messages, want %d", tc.name, lend, chunk, len(rec.got), tc.msgs)
				}
				for i, m := range rec.got {
					if !bytes.Equal(m, want[i]) {
						t.Fatalf("%s, lend %v, chunks of %d: message %d is not what was sent", tc.name, lend, chunk, i)
					}
				}
			}
		}
	}
	// Allocations: a borrower's messages are lent, not copied out one by one.
	for _, lend := range []bool{false, true} {
		rec := &batchRecorder{count: true}
		var h transport.LinkHandler = rec
		if lend {
			h = msgBorrower{rec}
		}
		l := &link{e: &Endpoint{log: slog.New(slog.DiscardHandler)}, h: h}
		allocs := testing.AllocsPerRun(1, func() {
			rec.n = 0
			l.deliverSignalling(chunkedReader{bytes.NewReader(stream), 1500})
		})
		switch {
		case rec.n != len(want):
			t.Errorf("lend %v: %d messages counted, want %d", lend, rec.n, len(want))
		case !lend && allocs < float64(len(want)):
			t.Errorf("%v allocations for %d messages a handler keeps, want one each", allocs, len(want))
		case lend && allocs > float64(len(want)/10):
			t.Errorf("%v allocations for %d messages lent to a borrower, want a few for the whole stream", allocs, len(want))
		}
	}
}

// waitingStream is a signalling stream whose Write waits until release is
// closed, as a quic-go stream Write of more than about a packet waits for
// the connection's goroutine to pack it; TryWriteAll goes to the real
// stream.
type waitingStream struct {
	sigWriter
	writes  atomic.Int32
	release chan struct{}
}

func (s *waitingStream) Write(b []byte) (int, error) {
	s.writes.Add(1)
	<-s.release
	return s.sigWriter.Write(b)
}

// TestSendOnIdleLinkDoesNotWaitForTheStream: on an idle link Send hands
// the message to the stream without waiting for anything (quic-go's
// goroutine, flow control), on the sender's goroutine: it returns, the
// message arrives, the waiting Write is never used and nothing is queued.
// (Before, Send used Write with a 2 ms deadline: the sender waited for
// quic-go's goroutine, and past the deadline the rest went to the writer.)
func TestSendOnIdleLinkDoesNotWaitForTheStream(t *testing.T) {
	ab, rec := batchPair(t)
	q := &ab.out
	ws := &waitingStream{release: make(chan struct{})}
	defer close(ws.release)
	q.mu.Lock()
	ws.sigWriter, q.w = q.w, ws
	q.mu.Unlock()
	w0 := q.writes.Load()
	msg := sigMsg(7, transport.MaxMessageLen-13) // the longest: many packets
	sent := make(chan error, 1)
	go func() { sent <- ab.Send(msg) }()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("Send on an idle link waited for the stream's Write")
	}
	if n := ws.writes.Load(); n != 0 {
		t.Errorf("%d waiting stream Writes, want none", n)
	}
	if w := q.writes.Load(); w != w0+1 {
		t.Errorf("%d stream writes by the time Send returned, want 1", w-w0)
	}
	q.mu.Lock()
	queued := len(q.queue)
	q.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d octets queued for the writer, want none", queued)
	}
	if got := rec.waitN(t, 1); !bytes.Equal(got[0], msg) {
		t.Fatalf("received %d octets, want the %d sent", len(got[0]), len(msg))
	}
}

// TestStalledWaitsForThePath: a full queue is a stalled peer only after
// the path's patience has passed with nothing taken; anything taken
// starts the wait again, and a queue at hardSigQueue is stalled at once.
func TestStalledWaitsForThePath(t *testing.T) {
	clock := time.Unix(1e9, 0)
	q := &sigQueue{
		queue:    make([]byte, maxSigQueue),
		now:      func() time.Time { return clock },
		patience: func() time.Duration { return 2 * time.Second },
	}
	step := func(d time.Duration, want bool) {
		t.Helper()
		clock = clock.Add(d)
		if _, got := q.stalled(); got != want {
			t.Fatalf("at +%v: stalled %v, want %v", clock.Sub(time.Unix(1e9, 0)), got, want)
		}
	}
	step(0, false) // first found full: the wait starts
	step(2*time.Second-time.Nanosecond, false)
	q.progress.Add(1)            // the peer took a piece
	step(time.Nanosecond, false) // the wait starts again
	step(2*time.Second-time.Nanosecond, false)
	step(time.Nanosecond, true)
	q.queue = make([]byte, hardSigQueue)
	q.progress.Add(1)
	step(0, true)
}

// TestStallAfterFollowsThePath: on a short path a full queue waits
// sigStallAfter; on a long or jittery one, four probe timeouts.
func TestStallAfterFollowsThePath(t *testing.T) {
	for _, c := range []struct {
		srtt, dev, want time.Duration
	}{
		{100 * time.Microsecond, 50 * time.Microsecond, sigStallAfter},
		{20 * time.Millisecond, 40 * time.Millisecond, sigStallAfter},
		{300 * time.Millisecond, 50 * time.Millisecond, 2 * time.Second},
		{200 * time.Millisecond, 100 * time.Millisecond, 2400 * time.Millisecond},
	} {
		if got := stallAfter(quicgo.ConnectionStats{SmoothedRTT: c.srtt, MeanDeviation: c.dev}); got != c.want {
			t.Errorf("srtt %v, deviation %v: %v, want %v", c.srtt, c.dev, got, c.want)
		}
	}
}

// TestStallWaitCoversACreditStep: a peer that reads its signalling at
// minSigReadRate is granted more by its QUIC stack only after it has read
// a quarter of its receive window, up to peerCreditStep (quic-go's 6 MiB
// largest stream window, a quarter of it); the stall rule waits at least
// that long, so that a reading peer is never taken for one that stopped
// (a node clearing a million calls lost its link so).
func TestStallWaitCoversACreditStep(t *testing.T) {
	const quicMaxStreamWindow, quicUpdateThreshold = 6 << 20, 4 // quic-go's DefaultMaxReceiveStreamFlowControlWindow, 1/WindowUpdateThreshold
	if peerCreditStep < quicMaxStreamWindow/quicUpdateThreshold {
		t.Errorf("peerCreditStep %d, below a quarter of quic-go's largest stream window (%d)", peerCreditStep, quicMaxStreamWindow/quicUpdateThreshold)
	}
	if got := time.Duration(peerCreditStep) * time.Second / minSigReadRate; stallAfter(quicgo.ConnectionStats{}) < got {
		t.Errorf("the stall rule waits %v; a peer reading %d octets a second takes %v to earn more credit", stallAfter(quicgo.ConnectionStats{}), minSigReadRate, got)
	}
}

// yieldRecorder is a batch handler that records each batch's size,
// whether the goroutine the previous batch started had run before it,
// and (as the link's readYield) after which batches the reader yielded.
type yieldRecorder struct {
	transport.LinkFuncs
	sizes   []int
	ranLate []int // batches before which the previous one's goroutine had not run
	yields  []int // batches after which the reader yielded
	ran     atomic.Bool
	// away, if set, is how far the yield after batch i moves the clock
	// (the time the reader spends away in it).
	away func(i int) time.Duration
	clk  time.Duration // the link's clock
}

func (r *yieldRecorder) now() time.Time { return time.Unix(0, int64(r.clk)) }

// yield records a yield and moves the clock on by away.
func (r *yieldRecorder) yield() {
	i := len(r.sizes) - 1
	r.yields = append(r.yields, i)
	if r.away != nil {
		r.clk += r.away(i)
	}
}

func (r *yieldRecorder) Message(msg []byte) { r.Messages([][]byte{msg}) }

func (r *yieldRecorder) Messages(msgs [][]byte) {
	if len(r.sizes) > 0 && !r.ran.Load() {
		r.ranLate = append(r.ranLate, len(r.sizes))
	}
	r.sizes = append(r.sizes, len(msgs))
	r.ran.Store(false)
	go r.ran.Store(true) // as a batch's answers wake the connection's goroutine
}

// yieldBorrower is a yieldRecorder that only borrows its messages.
type yieldBorrower struct{ *yieldRecorder }

func (yieldBorrower) BorrowsMessages() {}

// batchStream is n signalling messages, framed.
func batchStream(first, n int) []byte {
	var b []byte
	for i := range n {
		b = appendFrame(b, sigMsg(uint32(first+i), 20))
	}
	return b
}

// TestSignallingReaderYieldsBetweenBatches: with more buffered than a
// batch, the signalling reader delivers batches of maxBatch and yields
// after each full batch with more buffered behind it, so that the
// connection's goroutine sends a batch's answers while the reader has
// more to handle and two busy nodes do not take turns
// (docs/performance.md, "Two nodes taking turns").
func TestSignallingReaderYieldsBetweenBatches(t *testing.T) {
	stream := batchStream(0, 3*maxBatch+5)
	for _, lend := range []bool{false, true} {
		rec := &yieldRecorder{}
		var h transport.LinkHandler = rec
		if lend {
			h = yieldBorrower{rec}
		}
		l := &link{e: &Endpoint{log: slog.New(slog.DiscardHandler)}, h: h, readClock: rec.now, readYield: rec.yield}
		if err := l.deliverSignalling(bytes.NewReader(stream)); err != io.EOF {
			t.Fatalf("lend %v: ended with %v, want io.EOF", lend, err)
		}
		if want := []int{maxBatch, maxBatch, maxBatch, 5}; !slices.Equal(rec.sizes, want) {
			t.Errorf("lend %v: batches of %v, want %v", lend, rec.sizes, want)
		}
		if want := []int{0, 1, 2}; !slices.Equal(rec.yields, want) {
			t.Errorf("lend %v: yielded after batches %v, want %v", lend, rec.yields, want)
		}
	}
}

// TestSignallingReaderYieldLetsAnswersGo: the reader's own yield
// (runtime.Gosched) lets the goroutines a batch made runnable run before
// the next batch, even on one P, where without it they would wait until
// the reader blocked. The scheduler now and then picks the yielding
// goroutine first (its fairness check of the global queue), and a busy
// test binary adds its own goroutines, so this asks for most batches,
// over several rounds, not all: without the yield none would qualify.
func TestSignallingReaderYieldLetsAnswersGo(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const rounds = 20
	stream := batchStream(0, 3*maxBatch+5)
	for _, lend := range []bool{false, true} {
		late, batches := 0, 0
		for range rounds {
			rec := &yieldRecorder{}
			var h transport.LinkHandler = rec
			if lend {
				h = yieldBorrower{rec}
			}
			// A clock that stands still: the yields are never late.
			l := &link{e: &Endpoint{log: slog.New(slog.DiscardHandler)}, h: h, readClock: rec.now}
			if err := l.deliverSignalling(bytes.NewReader(stream)); err != io.EOF {
				t.Fatalf("lend %v: ended with %v, want io.EOF", lend, err)
			}
			late += len(rec.ranLate)
			batches += len(rec.sizes) - 1
		}
		if late > batches/2 {
			t.Errorf("lend %v: %d of %d batches came before the previous batch's goroutine ran: the reader did not yield", lend, late, batches)
		}
	}
}

// twoParts hands over first, then (at the next Read) second, as a stream
// does when the rest arrives after the reader has caught up.
type twoParts struct{ first, second *bytes.Reader }

func (p *twoParts) Read(b []byte) (int, error) {
	if p.first.Len() > 0 {
		return p.first.Read(b)
	}
	return p.second.Read(b)
}

// TestSignallingReaderStopsYieldingWhenLate: a yield that keeps the
// reader away longer than lateYield (the node busy with other work) makes
// it read on without yielding until it has caught up with what arrived, so
// that the peer's signalling queue does not overflow while the reader
// waits for its turns (a node releasing a million calls lost its link so);
// once caught up, it yields again.
func TestSignallingReaderStopsYieldingWhenLate(t *testing.T) {
	rec := &yieldRecorder{away: func(i int) time.Duration {
		if i == 0 || i == 3 {
			return lateYield + time.Millisecond // the yields after batches 0 and 3 come back late
		}
		return lateYield / 2
	}}
	l := &link{e: &Endpoint{log: slog.New(slog.DiscardHandler)}, h: rec, readClock: rec.now, readYield: rec.yield}
	parts := &twoParts{bytes.NewReader(batchStream(0, 3*maxBatch)), bytes.NewReader(batchStream(3*maxBatch, 3*maxBatch))}
	if err := l.deliverSignalling(parts); err != io.EOF {
		t.Fatalf("ended with %v, want io.EOF", err)
	}
	if want := []int{maxBatch, maxBatch, maxBatch, maxBatch, maxBatch, maxBatch}; !slices.Equal(rec.sizes, want) {
		t.Fatalf("batches of %v, want %v", rec.sizes, want)
	}
	// Yields after batches 0 and 3 (the first of each part); none after 1
	// and 4, since the yield before each came back late; none after 2 and
	// 5, the last of each part, with nothing more buffered (a real stream
	// would block there).
	if want := []int{0, 3}; !slices.Equal(rec.yields, want) {
		t.Errorf("yielded after batches %v, want %v", rec.yields, want)
	}
}
