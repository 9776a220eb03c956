package node

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/condis-project/condis/pki"
)

// TestPeerRestartClearsCallsAtOnce: alpha holds three calls to beta/echo
// over QUIC and dies without a word (its socket closed under it, as with
// kill -9). A new alpha process starts on the same address: it connects
// to its configured peer at once, beta sees a new incarnation (and alpha's
// RESTART), and beta's held calls end within 3 s of the restart — not
// after its keepalives give up and T309 runs out — with
// NDIS_STATUS_DEST_OUT_OF_ORDER; a new call works within 2 s. The same
// holds whichever topology either node runs (a split node's stand-alone
// call manager restarts its signalling, and notices a restarted peer,
// through its miniport's link events).
func TestPeerRestartClearsCallsAtOnce(t *testing.T) {
	for _, tc := range []struct{ alpha, beta Topology }{
		{TopologyIntegrated, TopologyIntegrated},
		{TopologySplit, TopologyIntegrated},
		{TopologyIntegrated, TopologySplit},
		{TopologySplit, TopologySplit},
	} {
		t.Run(string(tc.alpha)+"-"+string(tc.beta), func(t *testing.T) { testPeerRestart(t, tc.alpha, tc.beta) })
	}
}

func testPeerRestart(t *testing.T, alphaTopo, betaTopo Topology) {
	dir := t.TempDir()
	if _, err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	udp := func(addr string) *net.UDPConn {
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.ListenUDP("udp", a)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	aConn, bConn := udp("127.0.0.1:0"), udp("127.0.0.1:0")
	aAddr, bAddr := aConn.LocalAddr().String(), bConn.LocalAddr().String()
	cfgOf := func(name string, topo Topology, peer, peerAddr string) *Config {
		if _, err := pki.Issue(dir, name); err != nil {
			t.Fatal(err)
		}
		return &Config{Name: name, Control: filepath.Join(dir, name+".sock"), Topology: topo,
			CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key"),
			Peers: []Peer{{Name: peer, Address: peerAddr}}}
	}
	type running struct {
		n   *Node
		ctl *Control
	}
	start := func(cfg *Config, conn net.PacketConn) running {
		opts := StartOptions{}
		opts.Endpoint.PacketConn = conn
		n, ctl := serveNode(t, cfg, opts)
		return running{n, ctl}
	}
	beta := start(cfgOf("beta", betaTopo, "alpha", aAddr), bConn)
	listen, err := DialListen(context.Background(), beta.n.Config.Control, Request{Service: "echo", Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer listen.Close()
	calls := make(chan string, 16)     // the calls beta's listener saw come up
	closes := make(chan CloseInfo, 16) // how beta's listener saw its calls end
	go func() {
		for {
			f, err := listen.Recv()
			if err != nil {
				return
			}
			if f.Type != FrameEvent {
				continue
			}
			e, err := ParseEvent(f.Payload)
			switch {
			case err != nil:
			case e.Event == EventCall:
				calls <- e.Vc
			case e.Event == EventClosed && e.CloseInfo != nil:
				closes <- *e.CloseInfo
			}
		}
	}()
	acfg := cfgOf("alpha", alphaTopo, "beta", bAddr)
	start(acfg, aConn)
	for range 3 {
		s, err := DialCall(context.Background(), acfg.Control, Request{Dest: "beta/echo"})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	if n := len(beta.n.CM.Calls()); n != 3 {
		t.Fatalf("beta holds %d calls, want 3", n)
	}
	for range 3 { // up at beta's end too (its client's CallConnected)
		select {
		case <-calls:
		case <-time.After(5 * time.Second):
			t.Fatal("beta's listener was not told of a held call coming up")
		}
	}

	// kill -9: the socket goes, nothing is said.
	aConn.Close()
	restarted := time.Now()
	alpha2 := start(acfg2(acfg), udp(aAddr))

	for len(beta.n.CM.Calls()) > 0 {
		if time.Since(restarted) > 3*time.Second {
			t.Fatalf("beta still holds %d calls 3 s after alpha restarted", len(beta.n.CM.Calls()))
		}
		time.Sleep(5 * time.Millisecond) // polling a condition
	}
	cleared := time.Since(restarted)
	// The listener is told the destination went out of order, with the
	// restart's cause 41 (not 27, which that status alone would give).
	for range 3 {
		select {
		case ci := <-closes:
			if ci.Status != "NDIS_STATUS_DEST_OUT_OF_ORDER" || ci.Cause != 41 {
				t.Errorf("beta's listener saw a held call end with %s, cause %d; want NDIS_STATUS_DEST_OUT_OF_ORDER, cause 41", ci.Status, ci.Cause)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("beta's listener was not told of a held call's end")
		}
	}
	res, err := alpha2.ctl.Bench(context.Background(), Request{Dest: "beta/echo", Calls: 1, Concurrency: 1})
	if err != nil || res.Connected != 1 {
		t.Fatalf("a new call after the restart: %+v, %v", res, err)
	}
	newCall := time.Since(restarted)
	if newCall > 2*time.Second {
		t.Errorf("the first new call succeeded %v after the restart (the held calls ended after %v), want within 2 s", newCall, cleared)
	}
	t.Logf("beta's held calls ended %v after alpha restarted; a new call was up %v after it", cleared, newCall)
}

// acfg2 is the restarted alpha's configuration: the same node, with a
// control socket of its own (the dead process's socket file is still
// there).
func acfg2(c *Config) *Config {
	n := *c
	n.Control = c.Control + "2"
	return &n
}
