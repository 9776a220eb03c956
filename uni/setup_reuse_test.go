package uni

import (
	"bytes"
	"testing"
)

// TestSetupKeepsNothingOfTheMessage: Setup keeps the SETUP's encoding,
// not the caller's message, so a caller that reuses its message (and the
// IEs it points to) for the next call once it has sent the Output's SETUP
// does not change what T303 sends again: the retransmission is the same
// octets, in a message of its own.
func TestSetupKeepsNothingOfTheMessage(t *testing.T) {
	l := NewLink(Config{})
	m := setupMsg(false)
	id, o, err := l.Setup(m)
	if err != nil {
		t.Fatal(err)
	}
	first, err := o.Messages[0].Msg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// The caller reuses its message and its IEs for another call.
	m.Called.Address[19] ^= 0xff
	m.Traffic.FwdPCR01 = Some(12345)
	m.CallRef = CallRef{Value: 99}

	o = l.Expire(TimerKey{Timer: T303, Call: id})
	wantInds(t, o)
	if len(o.Messages) != 1 {
		t.Fatalf("T303's first expiry sent %v, want the SETUP again", msgTypes(o))
	}
	again := o.Messages[0].Msg
	if again == m {
		t.Fatal("the retransmitted SETUP is the caller's message")
	}
	if b, err := again.Encode(); err != nil || !bytes.Equal(b, first) {
		t.Errorf("SETUP sent again:\n % x (%v)\nwant the first one:\n % x", b, err, first)
	}
}
