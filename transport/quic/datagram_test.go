package quic

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/condis-project/condis/transport"
	tt "github.com/condis-project/condis/transport/transporttest"
)

// These tests pin down the two changes third_party/quic-go carries over
// quic-go v0.65.0 (third_party/quic-go/CONDIS.md): both fail on the
// upstream module.

// heldDatagrams counts the datagrams beta's link delivers; the first one
// blocks the link's datagram reader until release is closed, as a reader
// the scheduler does not run for a while would.
type heldDatagrams struct {
	transport.LinkFuncs
	release chan struct{}
	n       atomic.Int64
	more    chan struct{} // poked after each datagram
}

func (h *heldDatagrams) Datagram(uint32, []byte) {
	if h.n.Add(1) == 1 {
		<-h.release
	}
	select {
	case h.more <- struct{}{}:
	default:
	}
}

// TestDatagramsWaitWhileTheReaderIsBusy: datagrams that arrive while the
// receiving link's reader is busy wait in quic-go's receive queue and are
// all delivered once it reads again. Upstream quic-go keeps 128 and drops
// the rest silently (quic-go#4222), which IP over condis saw as 10-14% of
// a TCP transfer's packets lost.
func TestDatagramsWaitWhileTheReaderIsBusy(t *testing.T) {
	const n, size = 1000, 100
	h := &heldDatagrams{release: make(chan struct{}), more: make(chan struct{}, 1)}
	ab, ba := pairBoth(t, h, nil)
	released := sync.OnceFunc(func() { close(h.release) })
	defer released()

	before := ba.conn.ConnectionStats().BytesReceived
	for i := range n {
		if err := ab.SendDatagram(uint32(i), make([]byte, size)); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
	// Every datagram has reached beta's quic-go once beta has received at
	// least their octets (anything else it received only ends this sooner,
	// and what is still on its way is read after the release).
	deadline := time.Now().Add(wait)
	for ba.conn.ConnectionStats().BytesReceived-before < n*size {
		if time.Now().After(deadline) {
			t.Fatalf("beta received %d octets, want at least %d", ba.conn.ConnectionStats().BytesReceived-before, n*size)
		}
		time.Sleep(time.Millisecond) // polls quic-go's counter; not a measurement
	}
	released()
	for h.n.Load() < n {
		select {
		case <-h.more:
		case <-time.After(wait):
			t.Fatalf("beta's link delivered %d of %d datagrams sent while its reader was busy", h.n.Load(), n)
		}
	}
}

// sizeRecorder is a socket that notes the size of every packet written.
type sizeRecorder struct {
	net.PacketConn
	mu    sync.Mutex
	sizes []int
}

func (s *sizeRecorder) WriteTo(p []byte, addr net.Addr) (int, error) {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(p))
	s.mu.Unlock()
	return s.PacketConn.WriteTo(p, addr)
}

func (s *sizeRecorder) since(i int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.sizes[i:]...)
}

// unprobedPacketSize is the size of quic-go's packets before path MTU
// discovery grows it (its default InitialPacketSize). A wrapped socket
// cannot set the don't-fragment bit, so quic-go never probes over one.
const unprobedPacketSize = 1280

// TestFullDatagramsFillTheirPackets: a packet carrying a datagram of
// nearly the path's size is padded to exactly the path's packet size, so
// a run of them goes out in one GSO write where the socket can. Upstream
// quic-go leaves such packets 11 octets short (its datagram limit assumes
// 20-octet connection IDs), and its GSO batching takes full packets only,
// so every datagram cost a sendmsg of its own.
func TestFullDatagramsFillTheirPackets(t *testing.T) {
	c := newCluster(t)
	var rec *sizeRecorder
	c.cfg = func(cfg *Config) {
		if cfg.Identity.Name == "alpha" {
			rec = &sizeRecorder{PacketConn: cfg.PacketConn}
			cfg.PacketConn = rec
		}
	}
	a, b := c.start("alpha"), c.start("beta")
	ab, _ := connect(t, a, b)
	max := ab.MaxDatagramPayload()
	from := len(rec.since(0))
	const n = 30
	for i := range n {
		// Full datagrams, and ones a little shorter, as TCP segments
		// over a link whose MTU was set before the path grew are.
		payload := make([]byte, max-i%3*20)
		if err := ab.SendDatagram(uint32(i), payload); err != nil {
			t.Fatalf("datagram %d of %d octets: %v", i, len(payload), err)
		}
	}
	for range n {
		e := b.rec.NextKind(tt.Datagram, wait)
		if want := max - int(e.ConnID)%3*20; len(e.Data) != want {
			t.Fatalf("datagram %d arrived with %d octets, want %d", e.ConnID, len(e.Data), want)
		}
	}
	var big []int
	for _, s := range rec.since(from) {
		if s > unprobedPacketSize*7/8 {
			big = append(big, s)
		}
	}
	if len(big) < n {
		t.Fatalf("%d packets big enough for a datagram of up to %d octets went out, want %d (sizes %v)", len(big), max, n, big)
	}
	for _, s := range big {
		if s != unprobedPacketSize {
			t.Fatalf("a packet carrying a datagram of up to %d octets had %d octets, want the path's %d (sizes %v)", max, s, unprobedPacketSize, big)
		}
	}
}
