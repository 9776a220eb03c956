package clientcore

import (
	"testing"

	"github.com/condis-project/condis/ndis"
)

// borrower is a BorrowingHandler that records the SDUs it is given
// (not copying them: the test checks whose memory they are).
type borrower struct {
	NopHandler
	got [][]byte
}

func (b *borrower) Received(_ *VC, sdus [][]byte) { b.got = append(b.got, sdus...) }
func (b *borrower) BorrowsReceived()              {}

// TestReceiveCopiesUnlessTheHandlerBorrows: an ordinary handler is given
// copies of the indicated SDUs, its to keep; a BorrowingHandler is given
// the lists' own data, in order, without a copy.
func TestReceiveCopiesUnlessTheHandlerBorrows(t *testing.T) {
	c := &Core{}
	first, second := []byte("first"), []byte("second")
	chain := func() *ndis.NetBufferList {
		n2 := &ndis.NetBufferList{Data: second}
		return &ndis.NetBufferList{Data: first, Next: n2}
	}

	r := newRecorder()
	c.ProtocolCoReceiveNetBufferLists(nil, &VC{c: c, handler: r}, chain(), 2, ndis.ReceiveFlagsResources)
	for _, want := range [][]byte{first, second} {
		got := <-r.got
		if string(got) != string(want) {
			t.Fatalf("ordinary handler got %q, want %q", got, want)
		}
		if &got[0] == &want[0] {
			t.Fatalf("ordinary handler got the list's own data for %q, want a copy", want)
		}
	}

	b := &borrower{}
	c.ProtocolCoReceiveNetBufferLists(nil, &VC{c: c, handler: b}, chain(), 2, ndis.ReceiveFlagsResources)
	if len(b.got) != 2 {
		t.Fatalf("borrowing handler got %d SDUs, want 2", len(b.got))
	}
	for i, want := range [][]byte{first, second} {
		if &b.got[i][0] != &want[0] || len(b.got[i]) != len(want) {
			t.Fatalf("borrowing handler's SDU %d is %q at %p, want the list's own %q at %p", i, b.got[i], &b.got[i][0], want, &want[0])
		}
	}
}
