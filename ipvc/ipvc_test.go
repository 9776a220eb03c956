package ipvc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

var (
	self  = "198.18.0.1"
	beta  = "198.18.0.2"
	gamma = "198.18.1.7"
)

// testConfig routes 198.18.0.2/32 to beta and 198.18.1.0/24 to gamma
// (gamma's with a flowspec), with a 2-minute idle timeout and a queue of 3.
func testConfig() Config {
	return Config{
		Address:     netip.MustParsePrefix("198.18.0.1/24"),
		IdleTimeout: 2 * time.Minute,
		QueueLen:    3,
		Routes: []Route{
			{Node: "beta", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.18.0.2/32"), netip.MustParsePrefix("2001:db8::2/128")}},
			{Node: "gamma", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24")},
				Flowspec: ndis.Flowspec{ServiceType: ndis.ServiceGuaranteed, TokenRate: 125000, PeakBandwidth: 250000}},
		},
	}
}

// start runs an Interface on a fake device and fake calls; it is closed
// when the test ends.
func start(t *testing.T, cfg Config) (*Interface, *fakeDevice, *fakeCalls) {
	t.Helper()
	d, c := newFakeDevice(), newFakeCalls()
	ifc, err := New(cfg, d, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ifc.Close() })
	return ifc, d, c
}

// TestFirstPacketSetsUpTheCallAndTheQueueFollows: the first packet for a
// node makes one call (service ip, the route's flowspec); packets wait,
// at most QueueLen, while it is set up, the rest are dropped and counted;
// once connected, the queue goes out in order, then packets go straight
// on the VC with no new call.
func TestFirstPacketSetsUpTheCallAndTheQueueFollows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ifc, d, calls := start(t, testConfig())
		var pkts [][]byte
		for i := range 5 {
			p := ipv4(self, gamma, []byte{byte(i)})
			pkts = append(pkts, p)
			d.in <- p
			synctest.Wait()
		}
		fc := calls.next(t)
		calls.none(t)
		if fc.node != "gamma" || fc.fs.ServiceType != ndis.ServiceGuaranteed || fc.fs.TokenRate != 125000 {
			t.Fatalf("call to %s with %+v, want gamma with the route's flowspec", fc.node, fc.fs)
		}
		if s := ifc.Stats(); s.QueueDrops != 2 || s.Calls != 1 {
			t.Fatalf("stats %+v, want 2 queue drops and 1 call", s)
		}
		c := calls.connect(fc, "vc#1")
		synctest.Wait()
		d.in <- pkts[4]
		synctest.Wait()
		calls.none(t)
		got := c.sentSDUs()
		want := [][]byte{pkts[0], pkts[1], pkts[2], pkts[4]}
		if len(got) != len(want) {
			t.Fatalf("sent %d SDUs, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("SDU %d is % x, want % x", i, got[i], want[i])
			}
		}
		if p := ifc.Peers(); len(p) != 2 || p[1].Node != "gamma" || p[1].Phase != "up" || len(p[1].VCs) != 1 || p[1].VCs[0] != "vc#1" {
			t.Fatalf("peers %+v", p)
		}
		d.nothingWritten(t)
	})
}

// checkICMP4 checks that m is an ICMPv4 destination unreachable with code,
// from the destination of about to its source, quoting about, with good
// checksums.
func checkICMP4(t *testing.T, m []byte, code byte, about []byte) {
	t.Helper()
	if len(m) < 28 || m[0] != 0x45 || m[9] != 1 {
		t.Fatalf("not an ICMPv4 packet: % x", m)
	}
	if checksum(m[:20], 0) != 0 || checksum(m[20:], 0) != 0 {
		t.Fatalf("bad checksum: % x", m)
	}
	src, dst, _ := addrs(m)
	asrc, adst, _ := addrs(about)
	if src != adst || dst != asrc {
		t.Fatalf("ICMP from %v to %v, want from %v to %v", src, dst, adst, asrc)
	}
	if m[20] != 3 || m[21] != code {
		t.Fatalf("ICMP type %d code %d, want 3 code %d", m[20], m[21], code)
	}
	if !bytes.Equal(m[28:], about) {
		t.Fatalf("ICMP quotes % x, want % x", m[28:], about)
	}
}

// TestRefusedCallGivesICMPUnreachable: a call the node refuses (cause 21)
// answers every waiting packet with ICMP "administratively prohibited";
// for RefusedHold the next packets get it at once, with no call; after
// that a packet tries again, and a node out of order (cause 27) gives
// "host unreachable".
func TestRefusedCallGivesICMPUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ifc, d, calls := start(t, testConfig())
		p1, p2 := ipv4(beta, gamma, []byte("one")), ipv4(beta, gamma, []byte("two"))
		d.in <- p1
		d.in <- p2
		synctest.Wait()
		calls.next(t).refuse(uni.CauseCallRejected)
		synctest.Wait()
		checkICMP4(t, d.written(t), 13, p1)
		checkICMP4(t, d.written(t), 13, p2)

		time.Sleep(RefusedHold / 2)
		p3 := ipv4(beta, gamma, []byte("three"))
		d.in <- p3
		synctest.Wait()
		calls.none(t)
		checkICMP4(t, d.written(t), 13, p3)

		time.Sleep(RefusedHold)
		d.in <- p3
		synctest.Wait()
		calls.next(t).refuse(uni.CauseDestinationOutOfOrder)
		synctest.Wait()
		checkICMP4(t, d.written(t), 1, p3)
		if s := ifc.Stats(); s.Calls != 2 || s.Refused != 2 || s.ICMPSent != 4 {
			t.Fatalf("stats %+v, want 2 calls refused and 4 ICMP errors", s)
		}
		// No ICMP about an ICMP error.
		time.Sleep(RefusedHold)
		d.in <- icmpError(ipv4(gamma, beta, []byte("x")), HostUnreachable, 0)
		synctest.Wait()
		calls.next(t).refuse(uni.CauseCallRejected)
		synctest.Wait()
		d.nothingWritten(t)
	})
}

// TestRefusedCallGivesICMPv6Unreachable: the same for IPv6 (type 1 code 1),
// with a good checksum over the pseudo-header.
func TestRefusedCallGivesICMPv6Unreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Address = netip.MustParsePrefix("2001:db8::1/64")
		cfg.Routes[0].Prefixes = []netip.Prefix{netip.MustParsePrefix("2001:db8::2/128")}
		_, d, calls := start(t, cfg)
		p := ipv6("2001:db8::1", "2001:db8::2", []byte("hello"))
		d.in <- p
		synctest.Wait()
		calls.next(t).refuse(uni.CauseIncompatibleDestination)
		synctest.Wait()
		m := d.written(t)
		if m[0]>>4 != 6 || m[6] != 58 || m[40] != 1 || m[41] != 1 {
			t.Fatalf("not ICMPv6 1/1: % x", m)
		}
		sum := sum16(m[8:40], 0) + uint32(len(m)-40) + 58
		if checksum(m[40:], sum) != 0 {
			t.Fatalf("bad ICMPv6 checksum: % x", m)
		}
		if !bytes.Equal(m[48:], p) || !bytes.Equal(m[24:40], p[8:24]) || !bytes.Equal(m[8:24], p[24:40]) {
			t.Fatalf("ICMPv6 to the wrong host or quoting the wrong packet: % x", m)
		}
	})
}

// TestIdleVCIsClosed: a VC is closed once it has carried no packet
// either way for the idle timeout, not before (a received packet counts
// too); the next packet sets up a new call.
func TestIdleVCIsClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ifc, d, calls := start(t, testConfig())
		d.in <- ipv4(self, beta, []byte("x"))
		synctest.Wait()
		c := calls.connect(calls.next(t), "vc#1")
		synctest.Wait()

		time.Sleep(90 * time.Second)
		c.rx.Receive(ipv4(beta, self, []byte("reply"))) // traffic the other way keeps it
		synctest.Wait()
		if got := d.written(t); !bytes.Equal(got, ipv4(beta, self, []byte("reply"))) {
			t.Fatalf("device got % x", got)
		}
		time.Sleep(2*time.Minute - time.Second)
		synctest.Wait()
		if c.closeCount() != 0 {
			t.Fatal("closed before the idle timeout since the last packet")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if c.closeCount() != 1 {
			t.Fatalf("closed %d times at the idle timeout, want once", c.closeCount())
		}
		if s := ifc.Stats(); s.IdleClosed != 1 || s.Closed != 1 {
			t.Fatalf("stats %+v", s)
		}
		if p := ifc.Peers()[0]; p.Phase != "idle" || len(p.VCs) != 0 {
			t.Fatalf("beta %+v after the idle close", p)
		}
		d.in <- ipv4(self, beta, []byte("again"))
		synctest.Wait()
		if fc := calls.next(t); fc.node != "beta" {
			t.Fatalf("new call to %s", fc.node)
		}
	})
}

// TestIncomingCallsOnlyFromRoutedNodes: a call from a node with no route
// is refused; one from beta is accepted, and packets for beta then go out
// on it with no call of our own. Packets from beta whose source is not
// routed to beta are dropped.
func TestIncomingCallsOnlyFromRoutedNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ifc, d, calls := start(t, testConfig())
		if rx := calls.accept("delta"); rx != nil {
			t.Fatal("accepted a call from delta, which has no route")
		}
		rx := calls.accept("beta")
		if rx == nil {
			t.Fatal("refused a call from beta")
		}
		c := &fakeCircuit{name: "vc#9", max: 1400, rx: rx}
		rx.Up(c)
		d.in <- ipv4(self, beta, []byte("out"))
		synctest.Wait()
		calls.none(t)
		if len(c.sentSDUs()) != 1 {
			t.Fatalf("sent %d on the incoming VC, want 1", len(c.sentSDUs()))
		}
		rx.Receive(ipv4(gamma, self, []byte("spoofed"))) // gamma's address, from beta
		rx.Receive(ipv4(beta, self, []byte("fine")))
		synctest.Wait()
		if got := d.written(t); !bytes.Equal(got, ipv4(beta, self, []byte("fine"))) {
			t.Fatalf("device got % x", got)
		}
		d.nothingWritten(t)
		if s := ifc.Stats(); s.Rejected != 1 || s.Accepted != 1 || s.Spoofed != 1 || s.RxPackets != 1 {
			t.Fatalf("stats %+v", s)
		}
	})
}

// TestClosedByTheNetworkThenANewCall: a VC the network closes (its node
// out of order) is forgotten; the next packet makes a new call.
func TestClosedByTheNetworkThenANewCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, d, calls := start(t, testConfig())
		d.in <- ipv4(self, beta, []byte("1"))
		synctest.Wait()
		c := calls.connect(calls.next(t), "vc#1")
		synctest.Wait()
		c.remoteClose(ndis.StatusDestOutOfOrder, uni.CauseDestinationOutOfOrder)
		d.in <- ipv4(self, beta, []byte("2"))
		synctest.Wait()
		c2 := calls.connect(calls.next(t), "vc#2")
		synctest.Wait()
		if len(c.sentSDUs()) != 1 || len(c2.sentSDUs()) != 1 || c2.sentSDUs()[0][28] != '2' {
			t.Fatalf("first VC sent %d, second %d", len(c.sentSDUs()), len(c2.sentSDUs()))
		}
	})
}

// TestPacketTooBigForTheVC: a packet longer than the VC's MaxSduSize is
// not sent; the host gets ICMP fragmentation needed with the VC's size.
// The interface's MTU follows the VC.
func TestPacketTooBigForTheVC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ifc, d, calls := start(t, testConfig())
		calls.maxSDU = 1300
		d.in <- ipv4(self, beta, nil)
		synctest.Wait()
		c := calls.connect(calls.next(t), "vc#1")
		synctest.Wait()
		if ifc.MTU() != 1300 {
			t.Fatalf("MTU %d, want the VC's 1300", ifc.MTU())
		}
		big := ipv4(self, beta, make([]byte, 1400))
		d.in <- big
		synctest.Wait()
		m := d.written(t)
		if m[20] != 3 || m[21] != 4 || binary.BigEndian.Uint16(m[26:]) != 1300 {
			t.Fatalf("ICMP % x, want fragmentation needed with MTU 1300", m[:28])
		}
		if len(c.sentSDUs()) != 1 || ifc.Stats().TooBig != 1 {
			t.Fatalf("sent %d, stats %+v", len(c.sentSDUs()), ifc.Stats())
		}
	})
}

// TestCloseClosesTheVCs: Close closes every VC and stops. A call still
// being set up is abandoned: its Call's context is cancelled, and Close
// returns only once that Call has returned; the packets that waited for
// it are dropped, not answered with ICMP (the device is going), and its
// answer, should it still come, connects nothing.
func TestCloseClosesTheVCs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ifc, d, calls := start(t, testConfig())
		d.in <- ipv4(self, beta, nil)
		d.in <- ipv4(self, gamma, nil)
		synctest.Wait()
		c1 := calls.connect(calls.nextTo(t, "beta"), "vc#1")
		fc := calls.nextTo(t, "gamma") // still being set up when Close comes
		synctest.Wait()
		if err := ifc.Close(); err != nil {
			t.Fatal(err)
		}
		if c1.closeCount() != 1 {
			t.Fatalf("beta's VC closed %d times", c1.closeCount())
		}
		select {
		case err := <-fc.returned:
			var ce *CallError
			if !errors.As(err, &ce) || ce.Node != "gamma" || !errors.Is(err, context.Canceled) {
				t.Fatalf("gamma's Call returned %v, want a CallError for gamma wrapping context.Canceled", err)
			}
		default:
			t.Fatal("Close returned while gamma's Call was still waiting for its setup")
		}
		late := calls.connect(fc, "vc#2") // the answer nobody waits for any more
		synctest.Wait()
		if late.closeCount() != 0 || len(late.sentSDUs()) != 0 {
			t.Fatalf("the abandoned call's late answer was used: %d closes, %d SDUs", late.closeCount(), len(late.sentSDUs()))
		}
		d.nothingWritten(t)
		if s := ifc.Stats(); s.Calls != 2 || s.Connected != 1 || s.ICMPSent != 0 || s.TxPackets != 1 {
			t.Fatalf("stats %+v: want 2 calls, 1 connected, 1 packet sent, no ICMP", s)
		}
	})
}

// TestConfigCheck: each mistake is one line naming it.
func TestConfigCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no address", func(c *Config) { c.Address = netip.Prefix{} }, "ip address: missing"},
		{"host bits", func(c *Config) { c.Routes[1].Prefixes[0] = netip.MustParsePrefix("198.18.1.1/24") }, "has host bits set (did you mean 198.18.1.0/24?)"},
		{"twice", func(c *Config) { c.Routes[1].Prefixes[0] = netip.MustParsePrefix("198.18.0.2/32") }, "already routed by route[1]"},
		{"own address", func(c *Config) { c.Routes[1].Prefixes[0] = netip.MustParsePrefix("198.18.0.0/24") }, "holds this node's own address"},
		{"mtu", func(c *Config) { c.MTU = 100 }, "ip mtu 100"},
		{"no node", func(c *Config) { c.Routes[0].Node = "" }, "no node"},
	} {
		c := testConfig()
		tc.mod(&c)
		err := c.Check()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", tc.name, err, tc.want)
		}
	}
	c := testConfig()
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestReadBatchGoesOutOneSendPerRun: the packets of one device Read go to
// their VCs in one Send per run of packets for the same VC (one list per
// run, not per packet), in order; a packet too big for its VC is
// answered with ICMP and does not break the run; what is sent is a copy,
// not the device's read buffer.
func TestReadBatchGoesOutOneSendPerRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ifc, d, calls := start(t, testConfig())
		d.in <- ipv4(self, beta, []byte("b0"))
		synctest.Wait()
		cb := calls.connect(calls.next(t), "vc#1")
		synctest.Wait()
		d.in <- ipv4(self, gamma, []byte("g0"))
		synctest.Wait()
		cg := calls.connect(calls.next(t), "vc#2")
		synctest.Wait()

		g1, g2 := ipv4(self, gamma, []byte("g1")), ipv4(self, gamma, []byte("g2"))
		b1 := ipv4(self, beta, []byte("b1"))
		g3, g4 := ipv4(self, gamma, []byte("g3")), ipv4(self, gamma, []byte("g4"))
		big := ipv4(self, gamma, make([]byte, 1400))
		g5 := ipv4(self, gamma, []byte("g5"))
		d.inBatch <- [][]byte{g1, g2, b1, g3, g4, big, g5}
		synctest.Wait()

		if got, want := cg.sendSizes(), []int{1, 2, 3}; !slices.Equal(got, want) {
			t.Fatalf("gamma's VC got Sends of %v SDUs, want %v", got, want)
		}
		if got, want := cb.sendSizes(), []int{1, 1}; !slices.Equal(got, want) {
			t.Fatalf("beta's VC got Sends of %v SDUs, want %v", got, want)
		}
		gs := cg.sentSDUs()
		for i, want := range [][]byte{g1, g2, g3, g4, g5} {
			if !bytes.Equal(gs[1+i], want) {
				t.Fatalf("gamma's SDU %d is % x, want % x", 1+i, gs[1+i], want)
			}
		}
		if bs := cb.sentSDUs(); !bytes.Equal(bs[1], b1) {
			t.Fatalf("beta's SDU 1 is % x, want % x", bs[1], b1)
		}
		// The next batch reuses the read buffers: what was sent stays.
		d.inBatch <- [][]byte{ipv4(self, gamma, []byte("xx")), ipv4(self, gamma, []byte("yy"))}
		synctest.Wait()
		if gs := cg.sentSDUs(); !bytes.Equal(gs[1], g1) || !bytes.Equal(gs[5], g5) {
			t.Fatalf("SDUs sent earlier changed: % x, % x", gs[1], gs[5])
		}
		m := d.written(t)
		if m[20] != 3 || m[21] != 4 {
			t.Fatalf("ICMP % x, want fragmentation needed", m[:28])
		}
		if s := ifc.Stats(); s.TxPackets != 10 || s.TooBig != 1 {
			t.Fatalf("stats %+v, want 10 packets sent and 1 too big", s)
		}
	})
}
