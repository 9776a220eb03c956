package quic

import (
	"testing"

	"github.com/condis-project/condis/transport"
	tt "github.com/condis-project/condis/transport/transporttest"
)

// TestLinkPathInfo: both ends of a link say where the other end is (the
// dialled end: the peer's listening address; the accepting end: the
// address the dial came from) and, once a message has made a round trip,
// a round-trip time above zero.
func TestLinkPathInfo(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("alpha"), c.start("bravo")
	ab, ba := connect(t, a, b)
	if err := ab.Send(sigMsg(1, 0)); err != nil {
		t.Fatal(err)
	}
	b.rec.NextKind(tt.Message, wait)
	for _, tc := range []struct {
		name string
		l    transport.Link
		want string
	}{{"alpha's", ab, b.udp.LocalAddr().String()}, {"bravo's", ba, a.udp.LocalAddr().String()}} {
		ra, ok := tc.l.(transport.RemoteAddresser)
		if !ok {
			t.Fatalf("%s link has no RemoteAddr", tc.name)
		}
		if got := ra.RemoteAddr().String(); got != tc.want {
			t.Errorf("%s link's remote address %s, want %s", tc.name, got, tc.want)
		}
		r, ok := tc.l.(transport.RTTer)
		if !ok {
			t.Fatalf("%s link has no RTT", tc.name)
		}
		if rtt := r.RTT(); rtt <= 0 || rtt > wait {
			t.Errorf("%s link's RTT %v", tc.name, rtt)
		}
	}
}
