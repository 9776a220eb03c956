package quic

import (
	"bytes"
	"encoding/binary"
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
// and the stream.
func readStreamOf(data []byte) ([][]byte, *countingStream) {
	var got [][]byte
	l := &link{
		e: &Endpoint{log: slog.New(slog.DiscardHandler)},
		h: &transport.LinkFuncs{OnStreamData: func(id uint32, p []byte) {
			if id != 0x00010020 {
				p = nil // a wrong identifier shows up as a wrong SDU
			}
			got = append(got, p)
		}},
	}
	s := &countingStream{r: bytes.NewReader(data)}
	l.readStream(s)
	return got, s
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
	got, s := readStreamOf(data)
	if len(got) != n {
		t.Fatalf("%d SDUs delivered, want %d", len(got), n)
	}
	for i, p := range got {
		if !bytes.Equal(p, bytes.Repeat([]byte{byte(i)}, i%40)) {
			t.Fatalf("SDU %d: %x", i, p)
		}
	}
	if max := len(data)/relReadBuf + 2; s.reads > max { // the last Read sees EOF
		t.Errorf("%d stream Reads for %d octets in %d SDUs, want at most %d", s.reads, len(data), n, max)
	}
	if s.cancelled {
		t.Errorf("stream cancelled (code %#x) after a clean end", s.code)
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
		t.Run(tc.name, func(t *testing.T) {
			got, s := readStreamOf(tc.data)
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
