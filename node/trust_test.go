package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/uni"
)

// cluster is a CA in a directory, and the nodes started from it in this
// process over QUIC on loopback, each with its Control serving its socket
// (as `condis node` runs them) and a listen session with echo on "echo".
type cluster struct {
	tb  testing.TB
	dir string
}

func newCluster(tb testing.TB) *cluster {
	tb.Helper()
	dir := tb.TempDir()
	if _, err := pki.InitCA(dir); err != nil {
		tb.Fatal(err)
	}
	return &cluster{tb: tb, dir: dir}
}

// freeAddr returns a UDP address on host with a port free there now.
func freeAddr(tb testing.TB, host string) string {
	tb.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// runningNode is one node of a cluster.
type runningNode struct {
	n      *Node
	log    *logBuffer
	events chan Event // of its listen session
}

func (r *runningNode) sock() string { return r.n.Config.Control }

// start issues name's certificate and runs the node of cfg (Name, Listen,
// Trust, AddressPrefix and Peers as the test sets them).
func (c *cluster) start(cfg Config) *runningNode {
	tb := c.tb
	tb.Helper()
	if _, err := pki.Issue(c.dir, cfg.Name); err != nil {
		tb.Fatal(err)
	}
	cfg.File = filepath.Join(c.dir, cfg.Name+".toml")
	cfg.Control = filepath.Join(c.dir, cfg.Name+".sock")
	cfg.CA, cfg.Cert, cfg.Key = filepath.Join(c.dir, "ca.pem"), filepath.Join(c.dir, cfg.Name+".pem"), filepath.Join(c.dir, cfg.Name+".key")
	r := &runningNode{log: &logBuffer{}, events: make(chan Event, 16)}
	log := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	n, err := Start(&cfg, StartOptions{Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	r.n = n
	ctl, err := NewControl(context.Background(), n.CallManager(), Options{})
	if err != nil {
		n.Close(context.Background())
		tb.Fatal(err)
	}
	ln, err := ListenControl(cfg.Control)
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := ctl.Shutdown(ctx); err != nil {
			tb.Errorf("%s: Control.Shutdown: %v", cfg.Name, err)
		}
		if err := <-served; err != nil {
			tb.Errorf("%s: Serve: %v", cfg.Name, err)
		}
		if err := n.Close(ctx); err != nil {
			tb.Errorf("%s: Close: %v", cfg.Name, err)
		}
		if s := n.Mediator.Snapshot(); !s.Empty() {
			tb.Errorf("%s: the mediator still holds objects:\n%v", cfg.Name, s)
		}
	})
	listen, err := DialListen(context.Background(), cfg.Control, Request{Service: "echo", Echo: true})
	if err != nil {
		tb.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			f, err := listen.Recv()
			if err != nil {
				return
			}
			if f.Type == FrameEvent {
				if e, err := ParseEvent(f.Payload); err == nil {
					select {
					case r.events <- e:
					default:
					}
				}
			}
		}
	}()
	tb.Cleanup(func() {
		listen.Close()
		<-drained
	})
	return r
}

// call calls dest (a service of node to) from the node and, once it is up
// at both ends, sends one SDU and checks the echo (on a reliable VC: a
// datagram may be lost); it returns the error of a call that failed.
func (r *runningNode) call(tb testing.TB, to *runningNode, dest string) error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := DialCall(ctx, r.sock(), Request{Dest: dest, Reliable: true,
		Tx: &Flowspec{Service: "best-effort", Peak: 1_000_000, MaxSDU: 1000},
		Rx: &Flowspec{Service: "best-effort", Peak: 1_000_000, MaxSDU: 1000}})
	if err != nil {
		return err
	}
	defer s.Close()
	// A session that hangs fails the test instead of stalling it.
	defer time.AfterFunc(20*time.Second, func() { s.Close() }).Stop()
	// The echo listener drops what arrives before its call is connected
	// (CONNECT ACKNOWLEDGE may come after the caller's first SDU).
	for up := false; !up; {
		select {
		case e := <-to.events:
			up = e.Event == EventCall // not the end of an earlier call
		case <-ctx.Done():
			tb.Fatalf("call %s: the listener never saw the call", dest)
		}
	}
	if err := s.Send([]byte("ping")); err != nil {
		tb.Fatal(err)
	}
	f, err := s.Recv()
	if err != nil || f.Type != FrameData || string(f.Payload) != "ping" {
		tb.Fatalf("call %s: echo %+v, %v", dest, f, err)
	}
	if err := s.End(); err != nil {
		tb.Fatal(err)
	}
	for {
		f, err := s.Recv()
		if err != nil {
			tb.Fatalf("call %s: no close frame: %v", dest, err)
		}
		if f.Type == FrameClose {
			return nil
		}
	}
}

// wantRefused checks that err is the node's refusal of a call with cause
// (0: refused before any signalling) and a text containing text.
func wantRefused(tb testing.TB, what string, err error, cause uni.Cause, text string) {
	tb.Helper()
	var re *RequestError
	if !errors.As(err, &re) {
		tb.Errorf("%s: %v, want the node to refuse the call", what, err)
		return
	}
	if uni.Cause(re.Response.Cause) != cause || !strings.Contains(re.Response.Error, text) {
		tb.Errorf("%s: refused with cause %d: %q; want cause %d and %q", what, re.Response.Cause, re.Response.Error, cause, text)
	}
}

// TestTwoNodesCustomPrefix: two nodes sharing a DCC prefix call each
// other; each shows its address (prefix + ESI of its name + selector 0) in
// its "node up" log line and in the answer to `condis calls`.
func TestTwoNodesCustomPrefix(t *testing.T) {
	c := newCluster(t)
	prefix, err := q2931.ParsePrefix("39.840f.80ffe1.0000.0000.0001.00")
	if err != nil {
		t.Fatal(err)
	}
	aAddr, bAddr := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1")
	alpha := c.start(Config{Name: "alpha", Listen: aAddr, AddressPrefix: prefix, Peers: []Peer{{Name: "beta", Address: bAddr}}})
	beta := c.start(Config{Name: "beta", Listen: bAddr, AddressPrefix: prefix, Peers: []Peer{{Name: "alpha", Address: aAddr}}})
	for _, tc := range []struct {
		from, to *runningNode
		dest     string
	}{{alpha, beta, "beta/echo"}, {beta, alpha, "alpha/echo"}} {
		if err := tc.from.call(t, tc.to, tc.dest); err != nil {
			t.Errorf("%s: %v", tc.dest, err)
		}
	}
	for _, r := range []*runningNode{alpha, beta} {
		// 39840f80ffe100000000000100 + ESI: sha256("alpha") = 8ed3f6ad685b...,
		// sha256("beta") = f44e64e75f39... (0x02 set: f6).
		want := map[string]string{
			"alpha": "39840f80ffe100000000000100.8ed3f6ad685b.00",
			"beta":  "39840f80ffe100000000000100.f64e64e75f39.00",
		}[r.n.Config.Name]
		if got := r.n.MCM.Address().String(); got != want {
			t.Errorf("%s: address %s, want %s", r.n.Config.Name, got, want)
		}
		if line := logLine(r.log.String(), `msg="node up"`); !strings.Contains(line, "address="+want) || !strings.Contains(line, "trust=peers") {
			t.Errorf("%s: the node up line does not show address %s and trust: %q", r.n.Config.Name, want, line)
		}
		l, err := ListNodeCalls(context.Background(), r.sock())
		if err != nil {
			t.Fatal(err)
		}
		if l.Address != want {
			t.Errorf("%s: calls shows address %q, want %s", r.n.Config.Name, l.Address, want)
		}
		st, err := QueryStatus(context.Background(), r.sock())
		if err != nil {
			t.Fatal(err)
		}
		if st.Address != want {
			t.Errorf("%s: status shows address %q, want %s", r.n.Config.Name, st.Address, want)
		}
	}
}

// TestTwoNodesPeerPrefix: a [[peer]] with a prefix of its own is called at
// its address under that prefix; told nothing, the caller addresses it
// under its own prefix and the peer refuses the call (cause 88).
func TestTwoNodesPeerPrefix(t *testing.T) {
	c := newCluster(t)
	ap, err := q2931.ParsePrefix("47.9999.c0d1.0001.0000.0000.0000")
	if err != nil {
		t.Fatal(err)
	}
	bp, err := q2931.ParsePrefix("39.840f.80ffe1.0000.0000.0002.00")
	if err != nil {
		t.Fatal(err)
	}
	aAddr, bAddr, gAddr := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1")
	alpha := c.start(Config{Name: "alpha", Listen: aAddr, AddressPrefix: ap, Peers: []Peer{
		{Name: "beta", Address: bAddr, AddressPrefix: bp}, {Name: "gamma", Address: gAddr}}})
	beta := c.start(Config{Name: "beta", Listen: bAddr, AddressPrefix: bp, Peers: []Peer{{Name: "alpha", Address: aAddr, AddressPrefix: ap}}})
	gamma := c.start(Config{Name: "gamma", Listen: gAddr, AddressPrefix: bp, Peers: []Peer{{Name: "alpha", Address: aAddr, AddressPrefix: ap}}})
	if err := alpha.call(t, beta, "beta/echo"); err != nil {
		t.Errorf("beta/echo: %v", err)
	}
	wantRefused(t, "gamma/echo", alpha.call(t, gamma, "gamma/echo"), uni.CauseIncompatibleDestination, "NDIS_STATUS_INVALID_SAP")
}

// TestTrustPeers: with trust = "peers" a node neither accepts calls from
// an authenticated node that is not its [[peer]] (cause 21) nor calls one,
// even over the link that node opened (refused before any SETUP, with
// cause 3, no route to destination).
func TestTrustPeers(t *testing.T) {
	c := newCluster(t)
	aAddr, bAddr := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1")
	alpha := c.start(Config{Name: "alpha", Listen: aAddr, Peers: []Peer{{Name: "beta", Address: bAddr}}})
	beta := c.start(Config{Name: "beta", Listen: bAddr, Trust: TrustPeers})

	wantRefused(t, "alpha calls beta, which does not know alpha", alpha.call(t, beta, "beta/echo"), uni.CauseCallRejected, "cause 21")
	beta.log.waitLine(t, `msg=call event=refused peer=alpha service=echo dir=in cause="call rejected (21)" why="alpha is not a [[peer]] of this node (trust = \"peers\")"`)
	// The link alpha opened is up, but alpha is still not beta's peer.
	wantRefused(t, "beta calls alpha", beta.call(t, alpha, "alpha/echo"), uni.CauseNoRouteToDestination, `unknown node "alpha" (not a [[peer]] of this node: add one, or set trust = "cluster")`)
	// Nor does the transport dial a node that is not a [[peer]].
	r := &resolver{}
	if _, err := r.resolve(context.Background(), "alpha"); !errors.Is(err, transport.ErrUnknownPeer) ||
		!strings.Contains(err.Error(), `"alpha" is not a [[peer]] of this node (trust = "peers")`) {
		t.Errorf("resolving a non-peer under trust = peers: %v", err)
	}
}

// TestTrustCluster: with trust = "cluster" a node calls a node that is not
// its [[peer]], found by its name (here "localhost") on the node's own
// port, and that node, not knowing the caller either, accepts the call and
// can call back.
func TestTrustCluster(t *testing.T) {
	// Two nodes on one port need two loopback addresses: "localhost" is
	// 127.0.0.1, alpha listens on 127.0.0.2.
	port := freeAddr(t, "127.0.0.1")
	_, p, _ := net.SplitHostPort(port)
	probe, err := net.ListenPacket("udp", "127.0.0.2:"+p)
	if err != nil {
		t.Skipf("no second loopback address (127.0.0.2) here: %v", err)
	}
	probe.Close()
	if ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip4", "localhost"); err != nil || len(ips) == 0 || ips[0].Unmap().String() != "127.0.0.1" {
		t.Skipf("localhost does not resolve to 127.0.0.1 here: %v %v", ips, err)
	}
	c := newCluster(t)
	local := c.start(Config{Name: "localhost", Listen: "127.0.0.1:" + p, Trust: TrustCluster})
	alpha := c.start(Config{Name: "alpha", Listen: "127.0.0.2:" + p, Trust: TrustCluster})
	if err := alpha.call(t, local, "localhost/echo"); err != nil {
		t.Fatalf("alpha calls localhost, which neither has as a [[peer]]: %v", err)
	}
	if err := local.call(t, alpha, "alpha/echo"); err != nil {
		t.Errorf("localhost calls alpha back: %v", err)
	}
	if line := logLine(alpha.log.String(), `msg="node up"`); !strings.Contains(line, "trust=cluster") {
		t.Errorf("node up line: %q", line)
	}
}

// TestTrustClusterAllowList: with trust = "cluster" a [[sap]] allow list
// may name nodes that are not [[peer]]s, and still refuses the others
// (cause 21).
func TestTrustClusterAllowList(t *testing.T) {
	c := newCluster(t)
	aAddr, bAddr, gAddr := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1")
	beta := c.start(Config{Name: "beta", Listen: bAddr, Trust: TrustCluster, SAPs: []SAP{{Service: "echo", Allow: []string{"gamma"}}}})
	alpha := c.start(Config{Name: "alpha", Listen: aAddr, Peers: []Peer{{Name: "beta", Address: bAddr}}})
	gamma := c.start(Config{Name: "gamma", Listen: gAddr, Peers: []Peer{{Name: "beta", Address: bAddr}}})
	if err := gamma.call(t, beta, "beta/echo"); err != nil {
		t.Errorf("gamma, on beta's allow list: %v", err)
	}
	wantRefused(t, "alpha, not on the list", alpha.call(t, beta, "beta/echo"), uni.CauseCallRejected, "cause 21")
	beta.log.waitLine(t, `msg=call event=refused peer=alpha service=echo dir=in cause="call rejected (21)" why="alpha is not on the allow list of [[sap]] echo"`)
}

// logLine returns the first line of log containing s.
func logLine(log, s string) string {
	for line := range strings.Lines(log) {
		if strings.Contains(line, s) {
			return strings.TrimSpace(line)
		}
	}
	return fmt.Sprintf("(no line with %s)", s)
}
