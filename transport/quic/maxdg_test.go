package quic

import "testing"

// A learnt datagram limit is stale once a longer datagram went out (the
// path grew by path MTU discovery): MaxDatagramPayload must not keep
// reporting the old, smaller limit, or a caller checking the limit (the
// conformance suite's CheckDatagramLimit, the MCM's SDU negotiation) sees a
// send over "the limit" succeed.
func TestLearntDatagramLimitForgottenWhenTheLimitGrew(t *testing.T) {
	c := newCluster(t)
	a, b := c.start("alpha"), c.start("beta")
	ab, _ := connect(t, a, b)
	l := ab.(*link)
	path := l.MaxDatagramPayload()
	l.learnMaxDG(500) // as if learnt before the path grew
	if got := l.MaxDatagramPayload(); got != 500 {
		t.Fatalf("learnt limit not used: %d", got)
	}
	if err := l.SendDatagram(1, make([]byte, 501)); err != nil {
		t.Fatal(err)
	}
	if got := l.MaxDatagramPayload(); got != path {
		t.Errorf("after a 501-octet datagram went out, MaxDatagramPayload = %d, want the path's %d", got, path)
	}
}
