package quic

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"testing"

	quicgo "github.com/quic-go/quic-go"

	tt "github.com/condis-project/condis/transport/transporttest"

	"github.com/condis-project/condis/transport"
)

// TestReliableSDUIsOneStreamWrite: the stream header, each SDU's length
// prefix and the SDU go out in one stream Write per SDU (one more only
// for an SDU beyond maxRelFrameBuf), and arrive whole and in order.
func TestReliableSDUIsOneStreamWrite(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("alpha"), c.start("beta")
	ab, _ := connect(t, a, b)
	l := ab.(*link)
	const conn, n = 0x00010020, 50
	sdu := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1200+i) }
	for i := range n {
		if err := l.SendReliable(conn, sdu(i)); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte{0xa5}, maxRelFrameBuf+1)
	if err := l.SendReliable(conn, big); err != nil {
		t.Fatal(err)
	}
	l.relMu.Lock()
	rs := l.rel[conn]
	l.relMu.Unlock()
	if w := rs.writes.Load(); w != n+2 {
		t.Errorf("%d stream writes for %d SDUs and one of %d octets, want %d", w, n, len(big), n+2)
	}
	for i := range n {
		e := b.rec.NextKind(tt.StreamData, wait)
		if e.ConnID != conn || !bytes.Equal(e.Data, sdu(i)) {
			t.Fatalf("SDU %d: conn %#x, %d octets, want conn %#x, %d octets", i, e.ConnID, len(e.Data), conn, len(sdu(i)))
		}
	}
	if e := b.rec.NextKind(tt.StreamData, wait); !bytes.Equal(e.Data, big) {
		t.Fatalf("long SDU: %d octets, want %d", len(e.Data), len(big))
	}
}

// countingStream is a receive stream over fixed octets that counts Reads
// and records CancelRead.
type countingStream struct {
	r         io.Reader
	reads     int
	cancelled bool
	code      quicgo.StreamErrorCode
}

func (s *countingStream) Read(p []byte) (int, error) {
	s.reads++
	return s.r.Read(p)
}

func (s *countingStream) CancelRead(code quicgo.StreamErrorCode) {
	s.cancelled, s.code = true, code
}

// readStreamOf runs readStream over data and returns the SDUs delivered
// and the stream; with borrow, its handler is a transport.DataBorrower
// (and keeps copies: it is only lent the SDUs).
func readStreamOf(data []byte, borrow bool) ([][]byte, *countingStream) {
	got, _, s := readStreamLending(data, borrow)
	return got, s
}

// readStreamLending is readStreamOf that also returns, for each SDU, the
// end of the memory it was delivered in: SDUs lent from one read buffer
// share it.
func readStreamLending(data []byte, borrow bool) (got [][]byte, ends []*byte, s *countingStream) {
	f := &transport.LinkFuncs{OnStreamData: func(id uint32, p []byte) {
		var end *byte
		if cap(p) > 0 {
			end = &p[:cap(p)][cap(p)-1]
		}
		ends = append(ends, end)
		if borrow {
			p = bytes.Clone(p)
		}
		if id != 0x00010020 {
			p = nil // a wrong identifier shows up as a wrong SDU
		}
		got = append(got, p)
	}}
	var h transport.LinkHandler = f
	if borrow {
		h = borrower{f}
	}
	l := &link{e: &Endpoint{log: slog.New(slog.DiscardHandler)}, h: h}
	s = &countingStream{r: bytes.NewReader(data)}
	l.readStream(s)
	return got, ends, s
}

// borrower is a LinkHandler that only borrows stream SDUs.
type borrower struct{ *transport.LinkFuncs }

func (borrower) BorrowsStreamData() {}

// TestReliableStreamLendsToBorrowers: a transport.DataBorrower is lent its
// SDUs from the stream's read buffer (no allocation per SDU), intact, and
// an SDU longer than the buffer is still delivered whole; any other
// handler gets SDUs of its own, never sharing memory.
func TestReliableStreamLendsToBorrowers(t *testing.T) {
	data := vcStreamHeader()
	var want [][]byte
	for i := range 30 {
		sdu := bytes.Repeat([]byte{byte(i)}, 700+i)
		if i == 20 {
			sdu = bytes.Repeat([]byte{0xee}, relReadBuf+100) // past the buffer
		}
		want = append(want, sdu)
		data = appendFrame(data, sdu)
	}
	for _, borrow := range []bool{false, true} {
		got, ends, _ := readStreamLending(data, borrow)
		if len(got) != len(want) {
			t.Fatalf("borrow %v: %d SDUs, want %d", borrow, len(got), len(want))
		}
		shared := 0
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("borrow %v: SDU %d is %d octets, not what was sent (%d)", borrow, i, len(got[i]), len(want[i]))
			}
			if i > 0 && ends[i] == ends[i-1] {
				shared++
			}
		}
		switch {
		case !borrow && shared != 0:
			t.Errorf("%d SDUs share memory with the one before, for a handler that keeps them", shared)
		case borrow && shared < len(got)-4:
			t.Errorf("only %d of %d SDUs were lent from the read buffer", shared, len(got)-1)
		}
	}
}

func vcStreamHeader() []byte {
	return binary.BigEndian.AppendUint32([]byte{streamKindVC}, 0x00010020)
}

// TestReliableStreamReadIsBuffered: many small SDUs cost a few stream
// Reads, not one or two each, and keep their boundaries; a clean end
// after a whole SDU does not cancel the stream.
func TestReliableStreamReadIsBuffered(t *testing.T) {
	data := vcStreamHeader()
	const n = 200
	for i := range n {
		data = appendFrame(data, bytes.Repeat([]byte{byte(i)}, i%40))
	}
	for _, borrow := range []bool{false, true} {
		got, s := readStreamOf(data, borrow)
		if len(got) != n {
			t.Fatalf("borrow %v: %d SDUs delivered, want %d", borrow, len(got), n)
		}
		for i, p := range got {
			if !bytes.Equal(p, bytes.Repeat([]byte{byte(i)}, i%40)) {
				t.Fatalf("borrow %v: SDU %d: %x", borrow, i, p)
			}
		}
		if max := len(data)/relReadBuf + 2; s.reads > max { // the last Read sees EOF
			t.Errorf("borrow %v: %d stream Reads for %d octets in %d SDUs, want at most %d", borrow, s.reads, len(data), n, max)
		}
		if s.cancelled {
			t.Errorf("borrow %v: stream cancelled (code %#x) after a clean end", borrow, s.code)
		}
	}
}

// TestReliableStreamReadErrors: a length beyond MaxStreamSDU, a truncated
// SDU (short or read in chunks) and an unknown stream kind cancel the
// stream with CodeBadStream and deliver nothing past the last whole SDU;
// SDUs longer than a chunk, up to exactly MaxStreamSDU octets, are
// delivered whole.
func TestReliableStreamReadErrors(t *testing.T) {
	full := bytes.Repeat([]byte{7}, transport.MaxStreamSDU)
	tooLong := binary.BigEndian.AppendUint32(appendFrame(vcStreamHeader(), []byte("ok")), transport.MaxStreamSDU+1)
	truncated := appendFrame(appendFrame(vcStreamHeader(), []byte("ok")), []byte("cut short"))
	truncated = truncated[:len(truncated)-3]
	long := bytes.Repeat([]byte{9}, 3*frameChunk+5) // read in chunks
	longCut := appendFrame(appendFrame(vcStreamHeader(), long), bytes.Repeat([]byte{8}, len(long)))
	longCut = longCut[:len(longCut)-frameChunk-7]
	for _, tc := range []struct {
		name   string
		data   []byte
		sdus   int
		cancel bool
	}{
		{"largest SDU", appendFrame(vcStreamHeader(), full), 1, false},
		{"too long", tooLong, 1, true},
		{"truncated", truncated, 1, true},
		{"long SDU, then a long one truncated", longCut, 1, true},
		{"unknown kind", append([]byte{streamKindVC + 1, 0, 1, 0, 0x20}, appendFrame(nil, []byte("x"))...), 0, true},
		{"header only", vcStreamHeader(), 0, false},
	} {
		for _, borrow := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/borrow=%v", tc.name, borrow), func(t *testing.T) {
				got, s := readStreamOf(tc.data, borrow)
				if len(got) != tc.sdus {
					t.Errorf("%d SDUs delivered, want %d", len(got), tc.sdus)
				}
				if tc.name == "largest SDU" && len(got) == 1 && !bytes.Equal(got[0], full) {
					t.Errorf("largest SDU delivered as %d octets", len(got[0]))
				}
				if bytes.Equal(tc.data, longCut) && len(got) == 1 && !bytes.Equal(got[0], long) {
					t.Errorf("long SDU delivered as %d octets, want %d of 9", len(got[0]), len(long))
				}
				if s.cancelled != tc.cancel || (tc.cancel && s.code != CodeBadStream) {
					t.Errorf("cancelled %v (code %#x), want %v (code %#x)", s.cancelled, s.code, tc.cancel, CodeBadStream)
				}
			})
		}
	}
}
