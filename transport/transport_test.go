package transport

import (
	"errors"
	"fmt"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestErrorsMatch(t *testing.T) {
	de := &LinkDownError{Peer: "beta", Reason: DownTimeout, Err: errors.New("idle")}
	if !errors.Is(de, ErrLinkDown) || !errors.Is(fmt.Errorf("wrapped: %w", de), ErrLinkDown) {
		t.Error("LinkDownError does not match ErrLinkDown")
	}
	if got, want := de.Error(), "transport: link to beta down: timeout: idle"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// quic-go's idle timeout starts with the reason's own word.
	de.Err = errors.New("timeout: no recent network activity")
	if got, want := de.Error(), "transport: link to beta down: timeout: no recent network activity"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	tl := &DatagramTooLargeError{Size: 1500, Max: 1389}
	if !errors.Is(tl, ErrDatagramTooLarge) || errors.Is(tl, ErrLinkDown) {
		t.Error("DatagramTooLargeError matching")
	}
	if err := CheckMessage(make([]byte, MinMessageLen)); err != nil {
		t.Error(err)
	}
	if err := CheckMessage(make([]byte, MaxMessageLen+1)); !errors.Is(err, ErrMessageSize) {
		t.Error(err)
	}
	if err := CheckSDU(make([]byte, MaxStreamSDU+1)); !errors.Is(err, ErrMessageSize) {
		t.Error(err)
	}
	if MaxMessageLen != 65544 || MinMessageLen != 9 {
		t.Errorf("message bounds %d..%d, docs/protocol.md §9 says 9..65544", MinMessageLen, MaxMessageLen)
	}
}

func TestDownReasonNames(t *testing.T) {
	for r := DownTimeout; r <= DownNetwork; r++ {
		if s := r.String(); s == "" || s[0] == 'D' {
			t.Errorf("DownReason(%d) has no name: %q", r, s)
		}
	}
	if s := DownReason(0).String(); s != "DownReason(0)" {
		t.Errorf("zero DownReason: %q", s)
	}
}
