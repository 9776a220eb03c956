package quic

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/condis-project/condis/transport"
)

// FuzzReadFrame feeds arbitrary octets to the signalling frame reader: it
// must never panic, every frame it returns must be in range, and encoding
// the frames again must give back exactly the octets it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendFrame(nil, make([]byte, transport.MinMessageLen)))
	f.Add(appendFrame(appendFrame(nil, []byte("123456789")), []byte("abcdefghij")))
	f.Add([]byte{0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})  // too short
	f.Add([]byte{0, 1, 0, 9})                          // too long
	f.Add([]byte{0, 0, 0, 12, 0x09, 0x03, 0, 0, 1, 5}) // truncated
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		var again []byte
		for {
			before := r.Len()
			msg, err := readFrame(r, transport.MinMessageLen, transport.MaxMessageLen)
			if err != nil {
				switch {
				case errors.Is(err, io.EOF):
					if before != 0 {
						t.Fatalf("io.EOF with %d octets left", before)
					}
				case errors.Is(err, errFrameLength), errors.Is(err, io.ErrUnexpectedEOF):
				default:
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(msg) < transport.MinMessageLen || len(msg) > transport.MaxMessageLen {
				t.Fatalf("frame of %d octets", len(msg))
			}
			again = appendFrame(again, msg)
		}
		if !bytes.HasPrefix(data, again) {
			t.Fatal("re-encoded frames differ from the input")
		}
	})
}

func TestReadFrameErrors(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want error
	}{
		{nil, io.EOF},
		{[]byte{0, 0}, io.ErrUnexpectedEOF},
		{[]byte{0, 0, 0, 8}, errFrameLength},
		{[]byte{0, 1, 0, 9}, errFrameLength},
		{[]byte{0, 0, 0, 9, 1}, io.ErrUnexpectedEOF},
	} {
		if _, err := readFrame(bytes.NewReader(c.in), transport.MinMessageLen, transport.MaxMessageLen); !errors.Is(err, c.want) {
			t.Errorf("readFrame(% x): %v, want %v", c.in, err, c.want)
		}
	}
	// The largest message passes.
	big := make([]byte, transport.MaxMessageLen)
	if got, err := readFrame(bytes.NewReader(appendFrame(nil, big)), transport.MinMessageLen, transport.MaxMessageLen); err != nil || len(got) != len(big) {
		t.Fatalf("largest frame: %d octets, %v", len(got), err)
	}
}
