package quic

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/transport"
)

// Both benchmarks compare against a baseline measured in the same run, with
// the same iteration count, and report the ratio (design §5).

// waitQuiet waits until *n has not changed for 100 ms and returns it: the
// datagrams still in flight have landed or are lost.
func waitQuiet(n *atomic.Int64) int64 {
	last := n.Load()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		cur := n.Load()
		if cur == last {
			return cur
		}
		last = cur
	}
	return last
}

// rawPair is two quic-go connections on loopback with datagrams enabled and
// the same mutual TLS as condis, without condis on top.
type rawPair struct {
	trs      []*quicgo.Transport
	udps     []*net.UDPConn
	client   *quicgo.Conn
	server   *quicgo.Conn
	dgCount  atomic.Int64 // datagram octets received
	sdus     atomic.Int64 // stream SDUs received
	sduBytes atomic.Int64 // their octets
	done     chan struct{}
	streams  sync.WaitGroup
}

func newRawPair(tb testing.TB, a, b *pki.Identity) *rawPair {
	tb.Helper()
	p := &rawPair{done: make(chan struct{})}
	for range 2 {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatal(err)
		}
		p.udps = append(p.udps, udp)
		p.trs = append(p.trs, &quicgo.Transport{Conn: udp})
	}
	qc := &quicgo.Config{EnableDatagrams: true, MaxIdleTimeout: DefaultIdleTimeout, KeepAlivePeriod: DefaultKeepAlivePeriod}
	ln, err := p.trs[1].Listen(&tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{b.Certificate},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    b.CAs,
		NextProtos:   []string{"raw"},
	}, qc)
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	p.client, err = p.trs[0].Dial(ctx, p.udps[1].LocalAddr(), &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{a.Certificate},
		RootCAs:      a.CAs,
		ServerName:   b.Name,
		NextProtos:   []string{"raw"},
	}, qc)
	if err != nil {
		tb.Fatal(err)
	}
	p.server, err = ln.Accept(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		defer close(p.done)
		for {
			d, err := p.server.ReceiveDatagram(context.Background())
			if err != nil {
				return
			}
			p.dgCount.Add(int64(len(d)))
		}
	}()
	p.streams.Go(func() {
		for {
			s, err := p.server.AcceptUniStream(context.Background())
			if err != nil {
				return
			}
			p.streams.Go(func() { p.readFrames(s) })
		}
	})
	return p
}

// readFrames reads length-prefixed SDUs (the reliable VC framing) into one
// reused buffer and counts them.
func (p *rawPair) readFrames(s *quicgo.ReceiveStream) {
	var hdr [4]byte
	buf := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(s, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if int(n) > len(buf) {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(s, buf[:n]); err != nil {
			return
		}
		p.sdus.Add(1)
		p.sduBytes.Add(int64(n))
	}
}

func (p *rawPair) close() {
	p.client.CloseWithError(0, "")
	p.server.CloseWithError(0, "")
	<-p.done
	p.streams.Wait()
	for i := range p.trs {
		p.trs[i].Close()
		p.udps[i].Close()
	}
}

// BenchmarkDatagramThroughput sends 1200-octet VC datagrams from alpha to
// beta on loopback through a condis link, then the same number through a
// bare quic-go connection, and reports the delivered goodput of both and
// their ratio.
func BenchmarkDatagramThroughput(b *testing.B) {
	const size = 1200
	c := newCluster(b)
	var got atomic.Int64 // payload octets delivered to beta
	ida, _ := c.ca.Issue("alpha")
	idb, _ := c.ca.Issue("beta")
	start := func(id *pki.Identity, h transport.Handler) *Endpoint {
		ep, _ := c.listen(id, h)
		return ep
	}
	nop := transport.HandlerFunc(func(transport.Link) transport.LinkHandler { return &transport.LinkFuncs{} })
	a := start(ida, nop)
	defer a.Close()
	bb := start(idb, transport.HandlerFunc(func(transport.Link) transport.LinkHandler {
		return &transport.LinkFuncs{OnDatagram: func(_ uint32, p []byte) { got.Add(int64(len(p))) }}
	}))
	defer bb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	l, err := a.Dial(ctx, "beta")
	if err != nil {
		b.Fatal(err)
	}
	if m := l.MaxDatagramPayload(); m < size {
		b.Skipf("path carries only %d octets per datagram", m)
	}
	raw := newRawPair(b, ida, idb)
	defer raw.close()

	payload := make([]byte, size)
	b.SetBytes(size)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := l.SendDatagram(0x00010020, payload); err != nil {
			b.Fatal(err)
		}
		n++
	}
	elapsed := b.Elapsed()
	delivered := waitQuiet(&got)

	rawStart := time.Now()
	for range n {
		if err := raw.client.SendDatagram(payload); err != nil {
			b.Fatal(err)
		}
	}
	rawElapsed := time.Since(rawStart)
	rawDelivered := waitQuiet(&raw.dgCount)

	gbps := float64(delivered) * 8 / elapsed.Seconds() / 1e9
	rawGbps := float64(rawDelivered) * 8 / rawElapsed.Seconds() / 1e9
	b.ReportMetric(gbps, "Gbit/s")
	b.ReportMetric(rawGbps, "raw-Gbit/s")
	b.ReportMetric(gbps/rawGbps, "ratio")
	b.ReportMetric(100*(1-float64(delivered)/float64(n*size)), "loss-%")
	b.ReportMetric(100*(1-float64(rawDelivered)/float64(n*size)), "raw-loss-%")
}

// processCPU is the user and system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// streamLeg is one measured transfer on a reliable stream: from the first
// write to the last SDU delivered, and the CPU the process used meanwhile.
type streamLeg struct {
	elapsed, cpu time.Duration
	octets       int64
}

func (l streamLeg) add(o streamLeg) streamLeg {
	return streamLeg{l.elapsed + o.elapsed, l.cpu + o.cpu, l.octets + o.octets}
}

// waitCount waits until n reaches want and returns when it did (to within
// a millisecond).
func waitCount(tb testing.TB, n *atomic.Int64, want int64) time.Time {
	deadline := time.Now().Add(time.Minute)
	for n.Load() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d SDUs delivered", n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Now()
}

// BenchmarkStreamThroughput sends 1200-octet SDUs on one reliable VC stream
// (Link.SendReliable, connection identifier 0x00010020) from alpha to beta
// through a condis link, and the same number of SDUs, framed the same way
// (4-octet length, then the SDU; one Write per SDU), on a uni stream of a
// bare quic-go connection whose reader reads them frame by frame into one
// buffer. Legs in the order condis, raw, raw, condis (the first is the
// b.Loop), so drift weighs on both alike; it reports delivered goodput,
// the process's CPU per delivered kilobyte, and their ratios.
func BenchmarkStreamThroughput(b *testing.B) { benchStreamThroughput(b, 1200) }

// BenchmarkStreamThroughputLargeSDU is BenchmarkStreamThroughput with
// 256 KiB SDUs: longer than maxRelFrameBuf, so written as prefix then SDU.
func BenchmarkStreamThroughputLargeSDU(b *testing.B) { benchStreamThroughput(b, 256<<10) }

func benchStreamThroughput(b *testing.B, size int) {
	c := newCluster(b)
	var sdus, octets atomic.Int64 // delivered to beta
	ida, _ := c.ca.Issue("alpha")
	idb, _ := c.ca.Issue("beta")
	start := func(id *pki.Identity, h transport.Handler) *Endpoint {
		ep, _ := c.listen(id, h)
		return ep
	}
	nop := transport.HandlerFunc(func(transport.Link) transport.LinkHandler { return &transport.LinkFuncs{} })
	a := start(ida, nop)
	defer a.Close()
	bb := start(idb, transport.HandlerFunc(func(transport.Link) transport.LinkHandler {
		return &transport.LinkFuncs{OnStreamData: func(_ uint32, p []byte) {
			sdus.Add(1)
			octets.Add(int64(len(p)))
		}}
	}))
	defer bb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	l, err := a.Dial(ctx, "beta")
	if err != nil {
		b.Fatal(err)
	}
	const conn = 0x00010020
	defer l.CloseReliable(conn)
	raw := newRawPair(b, ida, idb)
	defer raw.close()
	rs, err := raw.client.OpenUniStreamSync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer rs.Close()

	payload := make([]byte, size)
	frame := binary.BigEndian.AppendUint32(nil, uint32(size))
	frame = append(frame, payload...)
	condisLeg := func(n int) streamLeg {
		want := sdus.Load() + int64(n)
		o0, cpu0, t0 := octets.Load(), processCPU(), time.Now()
		for range n {
			if err := l.SendReliable(conn, payload); err != nil {
				b.Fatal(err)
			}
		}
		end := waitCount(b, &sdus, want)
		return streamLeg{end.Sub(t0), processCPU() - cpu0, octets.Load() - o0}
	}
	rawLeg := func(n int) streamLeg {
		want := raw.sdus.Load() + int64(n)
		o0, cpu0, t0 := raw.sduBytes.Load(), processCPU(), time.Now()
		for range n {
			if _, err := rs.Write(frame); err != nil {
				b.Fatal(err)
			}
		}
		end := waitCount(b, &raw.sdus, want)
		return streamLeg{end.Sub(t0), processCPU() - cpu0, raw.sduBytes.Load() - o0}
	}
	// Warm up the streams and the congestion windows: 256 SDUs of 1200
	// octets, or as many octets.
	warm := max(4, 256*1200/size)
	condisLeg(warm)
	rawLeg(warm)

	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := 0
	want := sdus.Load()
	o0, cpu0, t0 := octets.Load(), processCPU(), time.Now()
	for b.Loop() {
		if err := l.SendReliable(conn, payload); err != nil {
			b.Fatal(err)
		}
		n++
	}
	end := waitCount(b, &sdus, want+int64(n))
	cl := streamLeg{end.Sub(t0), processCPU() - cpu0, octets.Load() - o0}
	b.StopTimer()
	rl := rawLeg(n)
	rl = rl.add(rawLeg(n))
	cl = cl.add(condisLeg(n))

	gbps := float64(cl.octets) * 8 / cl.elapsed.Seconds() / 1e9
	rawGbps := float64(rl.octets) * 8 / rl.elapsed.Seconds() / 1e9
	cpu := float64(cl.cpu.Nanoseconds()) / (float64(cl.octets) / 1000)
	rawCPU := float64(rl.cpu.Nanoseconds()) / (float64(rl.octets) / 1000)
	b.ReportMetric(gbps, "Gbit/s")
	b.ReportMetric(rawGbps, "raw-Gbit/s")
	b.ReportMetric(gbps/rawGbps, "ratio")
	b.ReportMetric(cpu, "cpu-ns/kB")
	b.ReportMetric(rawCPU, "raw-cpu-ns/kB")
	b.ReportMetric(rawCPU/cpu, "cpu-ratio")
}

// BenchmarkSignallingRoundTrip bounces a 30-octet signalling message
// between alpha and beta (beta's Message handler sends it back), then the
// same number of 34-octet UDP datagrams between two loopback sockets (the
// message plus its length prefix), and reports both round-trip times and
// their ratio.
func BenchmarkSignallingRoundTrip(b *testing.B) {
	c := newCluster(b)
	ida, _ := c.ca.Issue("alpha")
	idb, _ := c.ca.Issue("beta")
	back := make(chan struct{}, 1)
	start := func(id *pki.Identity, h transport.Handler) *Endpoint {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		ep, err := Listen(Config{Identity: id, Handler: h, Resolve: c.book.Resolve, PacketConn: udp})
		if err != nil {
			b.Fatal(err)
		}
		c.book.Set(id.Name, udp.LocalAddr())
		return ep
	}
	a := start(ida, transport.HandlerFunc(func(transport.Link) transport.LinkHandler {
		return &transport.LinkFuncs{OnMessage: func([]byte) { back <- struct{}{} }}
	}))
	defer a.Close()
	bb := start(idb, transport.HandlerFunc(func(l transport.Link) transport.LinkHandler {
		return &transport.LinkFuncs{OnMessage: func(m []byte) { l.Send(m) }}
	}))
	defer bb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	l, err := a.Dial(ctx, "beta")
	if err != nil {
		b.Fatal(err)
	}
	msg := sigMsg(1, 17) // 30 octets

	// UDP baseline sockets.
	u1, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer u1.Close()
	u2, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		buf := make([]byte, 2048)
		for {
			n, addr, err := u2.ReadFrom(buf)
			if err != nil {
				return
			}
			u2.WriteTo(buf[:n], addr)
		}
	}()
	defer func() { u2.Close(); <-echoDone }()

	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := l.Send(msg); err != nil {
			b.Fatal(err)
		}
		<-back
		n++
	}
	rtt := b.Elapsed() / time.Duration(n)

	ping := make([]byte, len(msg)+4)
	buf := make([]byte, 2048)
	u1.SetReadDeadline(time.Now().Add(time.Minute))
	udpStart := time.Now()
	for range n {
		if _, err := u1.WriteTo(ping, u2.LocalAddr()); err != nil {
			b.Fatal(err)
		}
		if _, _, err := u1.ReadFrom(buf); err != nil {
			b.Fatal(err) // loopback UDP does not lose a lone packet
		}
	}
	udpRTT := time.Since(udpStart) / time.Duration(n)

	b.ReportMetric(float64(rtt.Nanoseconds()), "ns/rtt")
	b.ReportMetric(float64(udpRTT.Nanoseconds()), "udp-ns/rtt")
	b.ReportMetric(float64(rtt)/float64(udpRTT), "ratio")
}
