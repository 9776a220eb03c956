package uni

import (
	"bytes"
	"testing"
	"testing/synctest"
)

// TestKeptSetupBlocksReused: the SETUP encodings calls keep in U1 come
// from a few blocks used again once their calls have moved on (CONNECT,
// CALL PROCEEDING, RELEASE, their end), not from new storage per call;
// and a call still in U1 keeps its piece intact while the block around it
// is carved for others, so that its T303 retransmission is its own SETUP.
func TestKeptSetupBlocksReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClocked(t, Config{})
		waiting := c.setup(false) // stays in U1 until its T303 expires
		kept := bytes.Clone(c.l.calls.Get(waiting.key()).setup.bytes())
		blocks := map[*setupBlock]bool{}
		const calls = 500
		for i := range calls {
			id := c.setup(false)
			blocks[c.l.calls.Get(id.key()).setup.b] = true
			switch i % 3 { // each way out of U1 lets go of the piece
			case 0:
				c.recv(peerMsg(MsgConnect, id))
			case 1:
				c.recv(peerMsg(MsgCallProceeding, id))
				c.req(func(l *Link) (Output, error) { return l.Release(id, NewCause(CauseNormalCallClearing)) })
			case 2:
				c.recv(peerMsg(MsgReleaseComplete, id))
			}
			if got := c.l.calls.Get(id.key()); got != nil && got.setup.b != nil {
				t.Fatalf("call %d still holds its SETUP's encoding in %v", i, got.state)
			}
		}
		if len(blocks) > 2 {
			t.Errorf("%d calls kept their SETUPs in %d blocks, want at most 2 (the waiting call's and one used again)", calls, len(blocks))
		}
		if got := c.l.calls.Get(waiting.key()).setup.bytes(); !bytes.Equal(got, kept) {
			t.Fatalf("the waiting call's SETUP changed while its block was carved for others")
		}
		// Its T303 expires: the same SETUP again, from its piece.
		o := c.one(T303, DefaultTimers().T303)
		m := wantSent(t, o, MsgSetup)
		if m.CallRef != waiting.wire() {
			t.Errorf("SETUP again on %v, want %v", m.CallRef, waiting.wire())
		}
		again, err := m.Encode()
		if err != nil || !bytes.Equal(again, kept) {
			t.Errorf("SETUP sent again (%v) differs from the one kept", err)
		}
	})
}
