package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/pki"
)

// TestPrintPeers: the table has a header and one row per peer, with ages
// relative to now, the RTT in milliseconds, dashes for what is unknown,
// unconfigured peers marked, and the last error with its age.
func TestPrintPeers(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	peers := []node.PeerInfo{
		{Name: "beta", Configured: true, Address: "127.0.0.1:9001", ATMAddress: "479999c0d10000000000000000.3e23e8160039.00",
			State: "up", Since: now.Add(-192 * time.Second), RTTMs: 0.4242, Calls: 3, MessagesIn: 12, MessagesOut: 14,
			LastError: "link down: timeout: no recent network activity", LastErrorAt: now.Add(-2 * time.Hour), LinkLoss: "link down: timeout: no recent network activity"},
		{Name: "delta", State: "connecting", Since: now.Add(-4 * time.Second), ATMAddress: "479999c0d10000000000000000.aaaaaaaaaaaa.00"},
		{Name: "gamma", Configured: true, Address: "127.0.0.1:9002", ATMAddress: "479999c0d10000000000000000.0e5e4bd0b8c3.00", State: "down",
			LastError: "quic: dialling gamma at 127.0.0.1:9002: tls: failed to verify certificate: x509: certificate signed by unknown authority"},
	}
	var b bytes.Buffer
	if err := printPeers(&b, now, peers); err != nil {
		t.Fatal(err)
	}
	want := `PEER                    STATE       SINCE      RTT     CALLS  MSGS IN  MSGS OUT  ADDRESS         ATM ADDRESS                                 LAST ERROR
beta                    up          3m12s ago  0.42ms  3      12       14        127.0.0.1:9001  479999c0d10000000000000000.3e23e8160039.00  link down: timeout: no recent network activity (2h0m ago)
delta (not configured)  connecting  4s ago     -       0      0        0         -               479999c0d10000000000000000.aaaaaaaaaaaa.00  -
gamma                   down        -          -       0      0        0         127.0.0.1:9002  479999c0d10000000000000000.0e5e4bd0b8c3.00  quic: dialling gamma at 127.0.0.1:9002: tls: failed to verify certificate: x509: certificate signed by unknown authority
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestAgeAndRTT(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s ago"}, {59*time.Second + 900*time.Millisecond, "59s ago"}, {time.Minute, "1m0s ago"},
		{time.Hour + 5*time.Minute + 3*time.Second, "1h5m ago"}, {50 * time.Hour, "2d2h ago"}, {-time.Second, "0s ago"},
	} {
		if got := ago(now, now.Add(-tc.d)); got != tc.want {
			t.Errorf("ago(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
	if got := ago(now, time.Time{}); got != "-" {
		t.Errorf("ago(zero) = %q", got)
	}
	for ms, want := range map[float64]string{0: "-", 0.123: "0.12ms", 3.14159: "3.1ms", 120.4: "120ms"} {
		if got := rtt(ms); got != want {
			t.Errorf("rtt(%v) = %q, want %q", ms, got, want)
		}
	}
}

// quicPair is alpha and beta, two nodes running in this process over QUIC
// on loopback, each serving its control socket; alpha also has gamma as a
// [[peer]], which never runs.
type quicPair struct{ alpha, beta *node.Config }

func startQUICPair(t *testing.T) quicPair {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	conns := make([]*net.UDPConn, 3)
	for i := range conns {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	addr := func(i int) string { return conns[i].LocalAddr().String() }
	conns[2].Close() // gamma's
	start := func(name string, conn *net.UDPConn, peers ...node.Peer) *node.Config {
		if _, err := pki.Issue(dir, name); err != nil {
			t.Fatal(err)
		}
		cfg := &node.Config{Name: name, Control: filepath.Join(dir, name+".sock"),
			CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key"), Peers: peers}
		opts := node.StartOptions{}
		opts.Endpoint.PacketConn = conn
		opts.Endpoint.HandshakeTimeout = 300 * time.Millisecond
		n, err := node.Start(cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		ctl, err := node.NewControl(context.Background(), n.CallManager(), node.Options{})
		if err != nil {
			n.Close(context.Background())
			t.Fatal(err)
		}
		ln, err := node.ListenControl(cfg.Control)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- ctl.Serve(ln) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := ctl.Shutdown(ctx); err != nil {
				t.Errorf("%s: Control.Shutdown: %v", name, err)
			}
			<-served
			if err := n.Close(ctx); err != nil {
				t.Errorf("%s: Close: %v", name, err)
			}
		})
		return cfg
	}
	var p quicPair
	p.beta = start("beta", conns[1], node.Peer{Name: "alpha", Address: addr(0)})
	p.alpha = start("alpha", conns[0], node.Peer{Name: "beta", Address: addr(1)}, node.Peer{Name: "gamma", Address: addr(2)})
	return p
}

// TestPeersCommand: `condis peers` on a node with a live peer and a dead
// one: the table and --json show beta up (with its RTT) and gamma down
// with its dial's failure.
func TestPeersCommand(t *testing.T) {
	p := startQUICPair(t)
	var peers []node.PeerInfo
	for deadline := time.Now().Add(5 * time.Second); ; {
		var out bytes.Buffer
		if err := start(nil, &out, nil, "peers", "--control", p.alpha.Control, "--json").wait(); err != nil {
			t.Fatal(err)
		}
		peers = nil
		if err := json.Unmarshal(out.Bytes(), &peers); err != nil {
			t.Fatalf("%v:\n%s", err, out.String())
		}
		if len(peers) == 2 && peers[0].State == "up" && peers[1].State == "down" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("beta not up and gamma not down within 5 s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling the node
	}
	b, g := peers[0], peers[1]
	if b.Name != "beta" || !b.Configured || b.RTTMs <= 0 || b.MessagesOut == 0 || b.MessagesIn == 0 || b.Address != p.alpha.Peers[0].Address {
		t.Errorf("beta: %+v", b)
	}
	if g.Name != "gamma" || !g.Configured || g.LastError == "" || g.Address != p.alpha.Peers[1].Address {
		t.Errorf("gamma: %+v", g)
	}

	var out bytes.Buffer
	if err := start(nil, &out, nil, "peers", "--control", p.alpha.Control).wait(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "PEER ") || !strings.HasPrefix(lines[1], "beta ") || !strings.HasPrefix(lines[2], "gamma ") ||
		!strings.Contains(lines[1], " up ") || !strings.Contains(lines[1], "ms ") || !strings.Contains(lines[2], " down ") ||
		!strings.Contains(lines[2], g.LastError) {
		t.Errorf("table:\n%s", out.String())
	}
}

// TestPeersCommandNoPeers: a node whose call manager links to no other
// node (the in-memory one) has no peers: an empty table, an empty array.
func TestPeersCommandNoPeers(t *testing.T) {
	n := startNode(t)
	var out bytes.Buffer
	if err := start(nil, &out, nil, "peers", "--control", n.sock, "--json").wait(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "[]\n" {
		t.Errorf("--json: %q, want []", out.String())
	}
	out.Reset()
	if err := start(nil, &out, nil, "peers", "--control", n.sock).wait(); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "PEER ") {
		t.Errorf("table: %q", out.String())
	}
}
