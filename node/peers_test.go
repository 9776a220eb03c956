package node

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/pki"
)

// peerNamed returns the peer called name among ps.
func peerNamed(t *testing.T, ps []PeerInfo, name string) PeerInfo {
	t.Helper()
	for _, p := range ps {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("%s is not among the peers: %+v", name, ps)
	return PeerInfo{}
}

// waitPeer asks the node at socket for its peers until cond holds for
// the one called name, for at most limit; it returns the last answer.
func waitPeer(t *testing.T, socket, name string, limit time.Duration, what string, cond func(PeerInfo) bool) PeerInfo {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ps, err := QueryPeers(context.Background(), socket)
		if err != nil {
			t.Fatal(err)
		}
		p := peerNamed(t, ps, name)
		if cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %+v", what, limit, p)
		}
		time.Sleep(20 * time.Millisecond) // polling another node's state
	}
}

// TestPeersBeforeAndAfterLinkDrops: `peers` on a node with two [[peer]]s
// over QUIC. beta, running, is up; after a call it shows the link's
// round-trip time, the call, signalling counted both ways and its UDP and
// ATM addresses. gamma, configured but not running, is listed down at its
// configured address with the failed dial as its last error. Then beta
// dies without a word (its socket closed under it): beta is connecting
// (the call kept for T309) with the link loss, a timeout, as its reason;
// once T309 is over it is down, with no calls.
func TestPeersBeforeAndAfterLinkDrops(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	udp := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	aConn, bConn, gConn := udp(), udp(), udp()
	aAddr, bAddr, gAddr := aConn.LocalAddr().String(), bConn.LocalAddr().String(), gConn.LocalAddr().String()
	gConn.Close() // gamma never runs
	cfgOf := func(name string, peers ...Peer) *Config {
		if _, err := pki.Issue(dir, name); err != nil {
			t.Fatal(err)
		}
		return &Config{Name: name, Control: filepath.Join(dir, name+".sock"),
			CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key"),
			Peers: peers}
	}
	start := func(cfg *Config, conn net.PacketConn) (*Node, *Control) {
		opts := StartOptions{}
		opts.Endpoint.PacketConn = conn
		opts.Endpoint.KeepAlivePeriod, opts.Endpoint.IdleTimeout = 100*time.Millisecond, 500*time.Millisecond
		opts.Endpoint.HandshakeTimeout = 300 * time.Millisecond
		opts.MCM.Timers.T309 = 2 * time.Second
		return serveNode(t, cfg, opts)
	}
	beta, _ := start(cfgOf("beta", Peer{Name: "alpha", Address: aAddr}), bConn)
	listen, err := DialListen(context.Background(), beta.Config.Control, Request{Service: "echo", Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer listen.Close()
	go func() {
		for {
			if _, err := listen.Recv(); err != nil {
				return
			}
		}
	}()
	acfg := cfgOf("alpha", Peer{Name: "beta", Address: bAddr}, Peer{Name: "gamma", Address: gAddr})
	start(acfg, aConn)
	sock := acfg.Control

	// The node connects to its peers when it starts.
	waitPeer(t, sock, "beta", 5*time.Second, "beta up", func(p PeerInfo) bool { return p.State == PeerUp })
	g := waitPeer(t, sock, "gamma", 5*time.Second, "gamma's dial failed", func(p PeerInfo) bool { return p.State == PeerDown })
	if !g.Configured || g.Address != gAddr || g.ATMAddress != acfg.PeerATMAddress("gamma").String() || g.LastError == "" ||
		g.LastErrorAt.IsZero() || g.LinkLoss != "" || g.Calls != 0 || g.MessagesIn+g.MessagesOut != 0 || g.RTTMs != 0 {
		t.Errorf("gamma, configured, never reached: %+v", g)
	}

	s, err := DialCall(context.Background(), sock, Request{Dest: "beta/echo", Reliable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if f, err := s.Recv(); err != nil || f.Type != FrameData || string(f.Payload) != "ping" {
		t.Fatalf("echo: %v %q, %v", f.Type, f.Payload, err)
	}
	ps, err := QueryPeers(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "beta" || ps[1].Name != "gamma" {
		t.Fatalf("peers: %+v", ps)
	}
	b := ps[0]
	if !b.Configured || b.State != PeerUp || b.Since.IsZero() || b.Address != bAddr || b.ATMAddress != acfg.PeerATMAddress("beta").String() ||
		b.RTTMs <= 0 || b.RTTMs > 1000 || b.Calls != 1 || b.MessagesIn < 2 || b.MessagesOut < 3 || b.LinkLoss != "" {
		t.Errorf("beta, up with a call: %+v", b)
	}

	st, err := QueryStatus(context.Background(), beta.Config.Control)
	if err != nil {
		t.Fatal(err)
	}
	if st.Node != "beta" || st.VcStates["CONNECTED"] != 1 || len(st.Saps) != 1 || st.Saps[0].Service != "echo" || st.Saps[0].Client != "control" {
		t.Errorf("beta's status: %+v", st)
	}

	// kill -9: beta's socket goes, nothing is said.
	killed := time.Now()
	bConn.Close()
	b = waitPeer(t, sock, "beta", 5*time.Second, "beta's loss seen", func(p PeerInfo) bool { return p.State != PeerUp })
	if b.State != PeerConnecting || b.Calls != 1 || !strings.HasPrefix(b.LinkLoss, "link down: timeout") || b.RTTMs != 0 ||
		b.Since.Before(killed) || b.LastErrorAt.Before(killed) {
		t.Errorf("beta, lost, its call kept for T309: %+v", b)
	}
	b = waitPeer(t, sock, "beta", 10*time.Second, "beta down once T309 is over", func(p PeerInfo) bool { return p.State == PeerDown })
	if b.Calls != 0 || b.Since.Before(killed.Add(2*time.Second)) || !strings.HasPrefix(b.LinkLoss, "link down: timeout") || b.LastError == "" {
		t.Errorf("beta, T309 over: %+v", b)
	}
	t.Logf("gamma: %q; beta: lost %q, last error %q", g.LastError, b.LinkLoss, b.LastError)
}

// TestPeersTLSFailure: a [[peer]] whose certificate comes from another CA
// is not a dead peer: `peers` shows it down with the TLS verification
// failure as its last error, on both nodes (each dials the other when it
// starts).
func TestPeersTLSFailure(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, other} {
		if _, err := pki.InitCA(d); err != nil {
			t.Fatal(err)
		}
	}
	udp := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	aConn, bConn := udp(), udp()
	start := func(ca, name, peer string, conn, peerConn net.PacketConn) string {
		if _, err := pki.Issue(ca, name); err != nil {
			t.Fatal(err)
		}
		cfg := &Config{Name: name, Control: filepath.Join(dir, name+".sock"),
			CA: filepath.Join(ca, "ca.pem"), Cert: filepath.Join(ca, name+".pem"), Key: filepath.Join(ca, name+".key"),
			Peers: []Peer{{Name: peer, Address: peerConn.LocalAddr().String()}}}
		opts := StartOptions{}
		opts.Endpoint.PacketConn = conn
		serveNode(t, cfg, opts)
		return cfg.Control
	}
	asock := start(dir, "alpha", "beta", aConn, bConn)
	bsock := start(other, "beta", "alpha", bConn, aConn)
	for _, tc := range []struct{ sock, peer string }{{asock, "beta"}, {bsock, "alpha"}} {
		p := waitPeer(t, tc.sock, tc.peer, 5*time.Second, tc.peer+"'s dial failed", func(p PeerInfo) bool {
			return p.State == PeerDown && p.LastError != ""
		})
		t.Logf("%s: %q", tc.peer, p.LastError)
		if !strings.Contains(p.LastError, "certificate signed by unknown authority") || p.MessagesIn+p.MessagesOut != 0 {
			t.Errorf("%s, with a certificate from another CA: %+v", tc.peer, p)
		}
	}
}

// TestPeerStateNames: the states a PeerInfo names are the MCM's.
func TestPeerStateNames(t *testing.T) {
	for s, want := range map[mcm.LinkState]string{mcm.LinkUp: PeerUp, mcm.LinkConnecting: PeerConnecting, mcm.LinkDown: PeerDown} {
		if s.String() != want {
			t.Errorf("mcm state %q, the node's %q", s, want)
		}
	}
}
