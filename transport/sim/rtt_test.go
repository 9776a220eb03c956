package sim

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/transport"
)

// TestRTT: a link's round-trip time is twice the network's one-way
// signalling delay, as set now, at both ends.
func TestRTT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Signal: SignalConfig{Delay: 7 * time.Millisecond, Jitter: time.Millisecond}})
		defer n.Close()
		_, _, ab, ba := linked(t, n)
		for _, l := range []transport.Link{ab, ba} {
			if got := l.(transport.RTTer).RTT(); got != 14*time.Millisecond {
				t.Errorf("%s's RTT %v, want 14ms", l.Peer(), got)
			}
		}
		n.SetSignal(SignalConfig{Delay: 40 * time.Millisecond})
		if got := ab.(transport.RTTer).RTT(); got != 80*time.Millisecond {
			t.Errorf("after SetSignal: RTT %v, want 80ms", got)
		}
	})
}
