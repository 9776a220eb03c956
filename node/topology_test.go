package node_test

// Nodes of either topology interoperate over QUIC: the split topology's
// stand-alone call manager and miniport (topology = "split") against the
// integrated MCM, and against each other (issue 9 item 6).

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/vcnet"
)

// topoNode is a node of the test, with its embedded vcnet Network.
type topoNode struct {
	n  *node.Node
	nw *vcnet.Network
}

// startTopologies starts alpha and beta over QUIC on loopback with the
// given topologies; a contract violation on either fails the test, and
// both mediators must be empty once they have closed.
func startTopologies(t *testing.T, alpha, beta node.Topology) (a, b *topoNode) {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	ports := make([]string, 2)
	for i := range ports {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = c.LocalAddr().String()
		c.Close()
	}
	start := func(name string, topo node.Topology, listen, peer, peerAddr string) *topoNode {
		if _, err := pki.Issue(dir, name); err != nil {
			t.Fatal(err)
		}
		cfg := &node.Config{Name: name, Listen: listen, Control: filepath.Join(dir, name+".sock"), Topology: topo,
			CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key"),
			Peers: []node.Peer{{Name: peer, Address: peerAddr}}}
		n, err := node.Start(cfg, node.StartOptions{OnViolation: func(v ndis.Violation) {
			t.Errorf("%s (%s): CoNDIS contract violation: %v", name, topo, v)
		}})
		if err != nil {
			t.Fatal(err)
		}
		if (n.Split != nil) != (topo == node.TopologySplit) || (n.MCM != nil) == (topo == node.TopologySplit) ||
			n.CallManager().Topology() != topo {
			t.Fatalf("%s: topology %q, but Split %v, MCM %v, status says %q", name, topo, n.Split != nil, n.MCM != nil, n.CallManager().Topology())
		}
		nw, err := vcnet.ForNode(context.Background(), n)
		if err != nil {
			n.Close(context.Background())
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := nw.Close(ctx); err != nil {
				t.Errorf("%s: Network.Close: %v", name, err)
			}
			if err := n.Close(ctx); err != nil {
				t.Errorf("%s: Close: %v", name, err)
			}
			if s := n.Mediator.Snapshot(); !s.Empty() {
				t.Errorf("%s: the mediator still holds objects:\n%v", name, s)
			}
		})
		return &topoNode{n: n, nw: nw}
	}
	a = start("alpha", alpha, ports[0], "beta", ports[1])
	b = start("beta", beta, ports[1], "alpha", ports[0])
	return a, b
}

// serveEcho echoes every call made to service on tn; closeFirst makes the
// callee close each call once it has read one SDU, without echoing it (a
// close from the callee: a datagram sent just before a RELEASE may be
// overtaken by it). It stops when the test ends.
func serveEcho(t *testing.T, ctx context.Context, tn *topoNode, service string, closeFirst bool) {
	t.Helper()
	l, err := tn.nw.Listen(ctx, service)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.AcceptVC()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 1<<16)
				for {
					n, err := c.Read(buf)
					if err != nil || closeFirst {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
}

// echoOnce writes one SDU on c and checks that it comes back.
func echoOnce(t *testing.T, c net.Conn, what string) {
	t.Helper()
	msg := bytes.Repeat([]byte(what), 40)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatalf("%s: write: %v", what, err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("%s: read: %v", what, err)
	}
	if !bytes.Equal(buf[:n], msg) {
		t.Fatalf("%s: echoed %d octets, want the %d sent", what, n, len(msg))
	}
}

// TestTopologiesInteroperate: between a split node and an integrated one
// (both ways round) and between two split nodes, over QUIC with mutual TLS:
// calls both ways with data echoed, datagram and reliable VCs, a close from
// the caller and from the callee, a refusal (no such service); every peer
// reported up with the right counters; the split node's data counters are
// its miniport's. No contract violation, nothing left in either mediator.
func TestTopologiesInteroperate(t *testing.T) {
	for _, tc := range []struct{ alpha, beta node.Topology }{
		{node.TopologySplit, node.TopologyIntegrated},
		{node.TopologyIntegrated, node.TopologySplit},
		{node.TopologySplit, node.TopologySplit},
	} {
		t.Run(string(tc.alpha)+"-"+string(tc.beta), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			a, b := startTopologies(t, tc.alpha, tc.beta)
			serveEcho(t, ctx, b, "echo", false)
			serveEcho(t, ctx, b, "once", true)
			serveEcho(t, ctx, a, "echo", false)

			for _, reliable := range []bool{false, true} {
				d := vcnet.Dialer{Network: a.nw, Reliable: reliable}
				c, err := d.DialVC(ctx, "beta/echo")
				if err != nil {
					t.Fatalf("alpha -> beta/echo (reliable %v): %v", reliable, err)
				}
				echoOnce(t, c, "a->b")
				if err := c.Close(); err != nil { // the caller closes
					t.Errorf("close: %v", err)
				}
			}

			// The callee closes: the caller reads EOF (normal clearing).
			c, err := (&vcnet.Dialer{Network: a.nw}).DialVC(ctx, "beta/once")
			if err != nil {
				t.Fatalf("alpha -> beta/once: %v", err)
			}
			if _, err := c.Write([]byte("bye")); err != nil {
				t.Fatalf("alpha -> beta/once: write: %v", err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 16)); err != io.EOF {
				t.Errorf("after the callee closed: Read = %v, want io.EOF", err)
			}
			c.Close()

			// The other way round.
			c, err = (&vcnet.Dialer{Network: b.nw}).DialVC(ctx, "alpha/echo")
			if err != nil {
				t.Fatalf("beta -> alpha/echo: %v", err)
			}
			echoOnce(t, c, "b->a")

			// A refusal: no such service.
			if _, err := (&vcnet.Dialer{Network: a.nw}).DialVC(ctx, "beta/nothing"); !errors.Is(err, vcnet.ErrNoSuchService) {
				t.Errorf("alpha -> beta/nothing: %v, want ErrNoSuchService", err)
			}

			for _, tn := range []*topoNode{a, b} {
				ps := tn.n.CM.Peers()
				if len(ps) != 1 || ps[0].State != callctl.LinkUp || ps[0].MessagesIn == 0 || ps[0].MessagesOut == 0 || ps[0].Remote == nil {
					t.Errorf("%s: peers %+v, want the other node, up, with messages both ways and its address", tn.n.Config.Name, ps)
				}
			}
			// beta's echo call from beta: one live call each side.
			calls := b.n.CM.Calls()
			var live *callctl.CallInfo
			for i := range calls {
				if calls[i].Peer == "alpha" && calls[i].State == "active" && calls[i].Direction == "outgoing" {
					live = &calls[i]
				}
			}
			if live == nil {
				t.Fatalf("beta's calls: %+v, want its call to alpha/echo active", calls)
			}
			if live.Stats.TxPackets != 1 || live.Stats.RxPackets != 1 || live.Stats.TxBytes != 4*40 {
				t.Errorf("beta's call to alpha/echo: stats %+v, want one SDU of 160 octets each way", live.Stats)
			}
			if tot := b.n.CM.Totals(); tot.TxPackets < 1 || tot.RxPackets < 1 {
				t.Errorf("beta's totals: %+v", tot)
			}
			c.Close()
		})
	}
}
