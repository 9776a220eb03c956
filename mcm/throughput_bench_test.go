package mcm_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	quicgo "github.com/quic-go/quic-go"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/sim"
)

// VC data throughput (design §7: ≥ 90% of raw quic-go on the same path).
//
// BenchmarkVcThroughput sends SDUs end to end through a VC: alice on node
// a sends on an established call (NdisCoSendNetBufferLists through the
// mediator, the MCM's policing and shaping, the QUIC link) and bob on node
// b receives them (the MCM indicates them through the mediator to bob's
// ProtocolCoReceiveNetBufferLists). Both nodes run in this process over
// real QUIC on 127.0.0.1 with mutual TLS. Then, in the same run and with
// the same number of SDUs of the same size, the same transfer between two
// plain quic-go connections on loopback (same TLS, same datagram setting):
//
//   - datagram: a best-effort VC; each SDU is one QUIC datagram. The
//     baseline is quic-go's SendDatagram/ReceiveDatagram;
//   - reliable: a VC whose media parameters ask for reliable delivery; its
//     SDUs travel length-prefixed on a QUIC stream. The baseline writes the
//     same length-prefixed frames, one Write per SDU, on a plain quic-go
//     unidirectional stream and reads them back frame by frame.
//
// The clients are benchClients: the sender keeps at most window SDUs
// outstanding, the receiver counts. Throughput is what was delivered
// (payload octets the receiver got) divided by the time from the first
// send to the last delivery (Gbit/s, raw-Gbit/s, ratio); loss is the
// fraction of offered SDUs not delivered. The legs run in the order
// condis, raw, raw, condis, condis, raw with the same number of SDUs. On a
// machine shared with other work the wall-clock ratio swings from run to
// run, so the process's CPU time per delivered kilobyte is reported too
// (cpu-ns/kB, raw-cpu-ns/kB, cpu-ratio = raw/condis): the steadier
// comparison. The transmit flowspec polices and shapes (both buckets are
// in place) but does not limit: its rates are far above what loopback
// carries.
//
// Run: go test -run '^$' -bench VcThroughput -count 5 ./mcm
func BenchmarkVcThroughput(b *testing.B) {
	b.Run("datagram", func(b *testing.B) { benchVcThroughput(b, false, 1200) })
	b.Run("reliable", func(b *testing.B) { benchVcThroughput(b, true, 1200) })
}

// unlimited is a controlled-load flowspec whose buckets never hold an SDU
// back on loopback: the largest rate UNI 3.1 signals (805 MB/s) sustained
// and peak, a 1 MB bucket.
func unlimited(sdu uint32) ndis.Flowspec {
	return flow(ndis.ServiceControlledLoad, q2931.MaxFlowspecValue, 1_000_000, q2931.MaxFlowspecValue, sdu)
}

// newBenchQuicWorld is newQuicWorld for a benchmark: the transport's
// default idle timeout (3 s) and T309 of 10 s, so that a machine busy with
// other work does not take the link down in the middle of a measurement.
func newBenchQuicWorld(tb testing.TB) *quicWorld { return newQuicWorldWith(tb, testTimers()) }

// delivery tracks how much a receiver got.
type delivery struct {
	sdus, octets atomic.Int64
}

// settle polls count every millisecond until it reaches want (if want >
// 0) or has not changed for quiet, and returns the time it last grew.
func settle(count func() int64, want int64, quiet time.Duration) time.Time {
	last, lastAt := count(), time.Now()
	for {
		time.Sleep(time.Millisecond)
		cur := count()
		now := time.Now()
		if cur != last {
			last, lastAt = cur, now
		}
		if (want > 0 && cur >= want) || now.Sub(lastAt) >= quiet {
			return lastAt
		}
	}
}

// window is how many SDUs the sending client keeps outstanding (sent, not
// completed) at most. A datagram VC completes an SDU as soon as QUIC
// queued it; a reliable VC once its stream took it, so this is how the
// stream's flow control holds the client back.
const window = 1024

// leg is one measured transfer: from the first send to the last
// delivery, and the CPU time the process used meanwhile.
type leg struct {
	elapsed, cpu time.Duration
	sdus, octets int64
}

func (l leg) add(o leg) leg {
	return leg{l.elapsed + o.elapsed, l.cpu + o.cpu, l.sdus + o.sdus, l.octets + o.octets}
}

func (l leg) gbps() float64 { return float64(l.octets) * 8 / l.elapsed.Seconds() / 1e9 }

// cpuPerKB is the CPU time per delivered kilobyte, in ns.
func (l leg) cpuPerKB() float64 { return float64(l.cpu.Nanoseconds()) / (float64(l.octets) / 1000) }

// vcSender sends SDUs on an established call from alice's benchClient
// and counts what bob's benchClient receives.
type vcSender struct {
	ca, cb   *benchClient
	va       *benchVc
	payload  []byte
	reliable bool
	sent     int64
}

func (s *vcSender) sendOne() {
	s.ca.send(s.va, s.payload)
	s.sent++
	if s.sent%64 == 0 {
		s.ca.wait("send completions", func() bool {
			return s.sent-(s.ca.txDone.Load()+s.ca.txFailed.Load()) <= window
		})
	}
}

// finish waits for the transfer that began at start with rx0 SDUs
// received to end: every SDU delivered (reliable) or nothing more
// arriving; every send completed.
func (s *vcSender) finish(start time.Time, cpu0 time.Duration, n int, rx0, octets0 int64) leg {
	want := int64(0)
	if s.reliable {
		want = rx0 + int64(n)
	}
	end := settle(s.cb.rxSDUs.Load, want, 300*time.Millisecond)
	cpu := processCPU() - cpu0
	s.ca.wait("send completions", func() bool { return s.ca.txDone.Load()+s.ca.txFailed.Load() == s.sent })
	return leg{end.Sub(start), cpu, s.cb.rxSDUs.Load() - rx0, s.cb.rxOctets.Load() - octets0}
}

// run sends n SDUs and measures the transfer.
func (s *vcSender) run(n int) leg {
	rx0, octets0 := s.cb.rxSDUs.Load(), s.cb.rxOctets.Load()
	cpu0, start := processCPU(), time.Now()
	for range n {
		s.sendOne()
	}
	return s.finish(start, cpu0, n, rx0, octets0)
}

func benchVcThroughput(b *testing.B, reliable bool, size int) {
	w := newBenchQuicWorld(b)
	na, nb := w.addQuicNode("a"), w.addQuicNode("b")
	ca, cb := newBenchClient(na, "alice"), newBenchClient(nb, "bob")
	cb.listen("sink")
	va := ca.makeCalls(1, func() *ndis.CallParameters {
		return q2931.CallParams("b", "sink", unlimited(uint32(size)), unlimited(uint32(size)), reliable)
	})[0]
	cb.waitIncoming(1, 1)
	raw := newRawQuic(b, w.ca)

	s := &vcSender{ca: ca, cb: cb, va: va, payload: payload(size, 7), reliable: reliable}
	// Warm up both paths (path MTU, congestion window, the VC's stream)
	// outside the measurement.
	s.run(512)
	raw.run(b, reliable, s.payload, 512)

	// Legs of the same number of SDUs in the order condis, raw, raw,
	// condis, condis, raw, so that what drifts during the run (other load
	// on the machine, the heap) weighs on both alike. The first leg is
	// the b.Loop.
	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := 0
	rx0, octets0 := cb.rxSDUs.Load(), cb.rxOctets.Load()
	cpu0, start := processCPU(), time.Now()
	for b.Loop() {
		s.sendOne()
		n++
	}
	vc := s.finish(start, cpu0, n, rx0, octets0)
	b.StopTimer()
	rw := raw.run(b, reliable, s.payload, n)
	rw = rw.add(raw.run(b, reliable, s.payload, n))
	vc = vc.add(s.run(n))
	vc = vc.add(s.run(n))
	rw = rw.add(raw.run(b, reliable, s.payload, n))
	const legs = 3

	b.ReportMetric(vc.gbps(), "Gbit/s")
	b.ReportMetric(rw.gbps(), "raw-Gbit/s")
	b.ReportMetric(vc.gbps()/rw.gbps(), "ratio")
	b.ReportMetric(float64(vc.sdus)/vc.elapsed.Seconds(), "SDU/s")
	b.ReportMetric(100*(1-float64(vc.sdus)/float64(legs*n)), "loss-%")
	b.ReportMetric(100*(1-float64(rw.sdus)/float64(legs*n)), "raw-loss-%")
	// CPU per delivered kilobyte (the whole process: both ends and
	// QUIC): on a busy machine a steadier comparison than wall-clock.
	b.ReportMetric(vc.cpuPerKB(), "cpu-ns/kB")
	b.ReportMetric(rw.cpuPerKB(), "raw-cpu-ns/kB")
	b.ReportMetric(rw.cpuPerKB()/vc.cpuPerKB(), "cpu-ratio")
	if f := ca.txFailed.Load(); f > 0 {
		ca.mu.Lock()
		b.Errorf("%d send(s) failed: %v", f, ca.txFailures)
		ca.mu.Unlock()
	}
	if reliable && vc.sdus != int64(legs*n) {
		b.Errorf("reliable VC delivered %d of %d SDUs", vc.sdus, legs*n)
	}

	raw.close()
	ca.closeCalls([]*benchVc{va})
	cb.waitIncoming(0, 0)
	ca.teardown()
	cb.teardown()
	w.close()
}

// rawQuic is two plain quic-go connections on loopback, with the TLS and
// datagram settings of transport/quic, and nothing of condis on top.
type rawQuic struct {
	trs    []*quicgo.Transport
	udps   []*net.UDPConn
	client *quicgo.Conn
	server *quicgo.Conn

	got     delivery
	readers sync.WaitGroup
}

func newRawQuic(tb testing.TB, ca *pki.CA) *rawQuic {
	tb.Helper()
	ida, err := ca.Issue("rawa")
	if err != nil {
		tb.Fatal(err)
	}
	idb, err := ca.Issue("rawb")
	if err != nil {
		tb.Fatal(err)
	}
	r := &rawQuic{}
	for range 2 {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatal(err)
		}
		r.udps = append(r.udps, udp)
		r.trs = append(r.trs, &quicgo.Transport{Conn: udp})
	}
	qc := &quicgo.Config{EnableDatagrams: true, MaxIdleTimeout: 3 * time.Second, KeepAlivePeriod: time.Second, MaxIncomingUniStreams: 16}
	ln, err := r.trs[1].Listen(&tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{idb.Certificate},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: idb.CAs, NextProtos: []string{"raw"},
	}, qc)
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.client, err = r.trs[0].Dial(ctx, r.udps[1].LocalAddr(), &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{ida.Certificate},
		RootCAs: ida.CAs, ServerName: idb.Name, NextProtos: []string{"raw"},
	}, qc)
	if err != nil {
		tb.Fatal(err)
	}
	r.server, err = ln.Accept(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	r.readers.Go(func() {
		for {
			d, err := r.server.ReceiveDatagram(context.Background())
			if err != nil {
				return
			}
			r.got.sdus.Add(1)
			r.got.octets.Add(int64(len(d)))
		}
	})
	r.readers.Go(func() {
		for {
			s, err := r.server.AcceptUniStream(context.Background())
			if err != nil {
				return
			}
			r.readers.Go(func() { r.readFrames(s) })
		}
	})
	return r
}

// readFrames reads length-prefixed SDUs, as transport/quic frames them.
func (r *rawQuic) readFrames(s *quicgo.ReceiveStream) {
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
		r.got.sdus.Add(1)
		r.got.octets.Add(int64(n))
	}
}

// send sends n SDUs as datagrams or length-prefixed on a new stream.
func (r *rawQuic) send(tb testing.TB, reliable bool, payload []byte, n int) {
	if !reliable {
		for range n {
			if err := r.client.SendDatagram(payload); err != nil {
				tb.Fatal(err)
			}
		}
		return
	}
	s, err := r.client.OpenUniStreamSync(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	frame = append(frame, payload...)
	for range n {
		if _, err := s.Write(frame); err != nil {
			tb.Fatal(err)
		}
	}
	s.Close()
}

// run sends n SDUs and measures the transfer: from the first send to the
// last delivery.
func (r *rawQuic) run(tb testing.TB, reliable bool, payload []byte, n int) leg {
	rx0, octets0 := r.got.sdus.Load(), r.got.octets.Load()
	cpu0, start := processCPU(), time.Now()
	r.send(tb, reliable, payload, n)
	want := int64(0)
	if reliable {
		want = rx0 + int64(n)
	}
	end := settle(r.got.sdus.Load, want, 300*time.Millisecond)
	return leg{end.Sub(start), processCPU() - cpu0, r.got.sdus.Load() - rx0, r.got.octets.Load() - octets0}
}

func (r *rawQuic) close() {
	r.client.CloseWithError(0, "")
	r.server.CloseWithError(0, "")
	r.readers.Wait()
	for i := range r.trs {
		r.trs[i].Close()
		r.udps[i].Close()
	}
}

// BenchmarkVcDataPathSim is what condis's own layers cost per SDU, without
// QUIC: the same end-to-end transfer as BenchmarkVcThroughput (alice's
// sends through the mediator and the MCM's policing and shaping, bob's
// receives through the MCM and the mediator) over transport/sim, whose
// links hand datagrams and reliable SDUs to the peer on the network's
// goroutine at once. In the same run, the same number of SDUs go over a
// bare sim link between two other endpoints of the same network (the
// baseline: the transport alone). The difference in CPU time per SDU
// (overhead-cpu-ns/SDU) is what the mediator, the MCM and the clients add
// to each SDU; ns/op and allocs/op are those of the condis leg. The sender
// keeps at most window SDUs undelivered.
func BenchmarkVcDataPathSim(b *testing.B) {
	b.Run("datagram", func(b *testing.B) { benchVcDataPathSim(b, false, 1200) })
	b.Run("reliable", func(b *testing.B) { benchVcDataPathSim(b, true, 1200) })
}

func benchVcDataPathSim(b *testing.B, reliable bool, size int) {
	w := newSimWorld(b, sim.Config{Seed: 1})
	na, nb := w.addNode("a", nil), w.addNode("b", nil)
	ca, cb := newBenchClient(na, "alice"), newBenchClient(nb, "bob")
	cb.wakeOnRx = true
	cb.listen("sink")
	va := ca.makeCalls(1, func() *ndis.CallParameters {
		return q2931.CallParams("b", "sink", unlimited(uint32(size)), unlimited(uint32(size)), reliable)
	})[0]
	cb.waitIncoming(1, 1)

	// The baseline: a bare link between two more endpoints.
	var rawRx atomic.Int64
	rawWake := make(chan struct{}, 1)
	count := func(uint32, []byte) {
		rawRx.Add(1)
		select {
		case rawWake <- struct{}{}:
		default:
		}
	}
	nop := transport.HandlerFunc(func(transport.Link) transport.LinkHandler { return &transport.LinkFuncs{} })
	sink := transport.HandlerFunc(func(transport.Link) transport.LinkHandler {
		return &transport.LinkFuncs{OnDatagram: count, OnStreamData: count}
	})
	epx, err := w.net.Endpoint("x", nop)
	if err != nil {
		b.Fatal(err)
	}
	defer epx.Close()
	epy, err := w.net.Endpoint("y", sink)
	if err != nil {
		b.Fatal(err)
	}
	defer epy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rawLink, err := epx.Dial(ctx, "y")
	if err != nil {
		b.Fatal(err)
	}
	data := payload(size, 9)
	rawSend := func() {
		var err error
		if reliable {
			err = rawLink.SendReliable(0x00010020, data)
		} else {
			err = rawLink.SendDatagram(0x00010020, data)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	// Both legs keep at most window SDUs undelivered.
	var sent int64
	vcSend := func() {
		ca.send(va, data)
		sent++
		if sent%64 == 0 {
			cb.wait("deliveries", func() bool { return sent-cb.rxSDUs.Load() <= window })
		}
	}
	rawWait := func(cond func() bool) {
		for !cond() {
			select {
			case <-rawWake:
			case <-time.After(time.Millisecond):
			}
		}
	}
	rawLeg := func(n int) time.Duration {
		cpu0 := processCPU()
		rx0 := rawRx.Load()
		for i := range int64(n) {
			rawSend()
			if i%64 == 63 {
				rawWait(func() bool { return i+1-(rawRx.Load()-rx0) <= window })
			}
		}
		rawWait(func() bool { return rawRx.Load()-rx0 == int64(n) })
		return processCPU() - cpu0
	}
	vcLeg := func(n int) time.Duration {
		cpu0 := processCPU()
		for range n {
			vcSend()
		}
		cb.wait("deliveries", func() bool { return cb.rxSDUs.Load() == sent })
		return processCPU() - cpu0
	}
	vcLeg(1000) // warm up
	rawLeg(1000)

	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := 0
	cpu0 := processCPU()
	for b.Loop() {
		vcSend()
		n++
	}
	cb.wait("deliveries", func() bool { return cb.rxSDUs.Load() == sent })
	vcCPU := processCPU() - cpu0
	b.StopTimer()
	rawCPU := rawLeg(n)
	rawCPU += rawLeg(n)
	vcCPU += vcLeg(n)

	perSDU := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(2*n) }
	b.ReportMetric(perSDU(vcCPU), "cpu-ns/SDU")
	b.ReportMetric(perSDU(rawCPU), "raw-cpu-ns/SDU")
	b.ReportMetric(perSDU(vcCPU)-perSDU(rawCPU), "overhead-cpu-ns/SDU")
	if f := ca.txFailed.Load(); f > 0 {
		b.Errorf("%d send(s) failed", f)
	}

	ca.closeCalls([]*benchVc{va})
	cb.waitIncoming(0, 0)
	ca.teardown()
	cb.teardown()
	epx.Close()
	epy.Close()
	w.close()
}
