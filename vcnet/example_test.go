package vcnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/vcnet"
)

// A node embedded in the program: listen on a service and dial another
// node's, as with package net.
//
// Compile-only (no Output line): it reads alpha.toml and calls a beta
// that must be running. ExampleListener_http runs in-process.
func Example() {
	cfg, err := node.Load("alpha.toml")
	if err != nil {
		log.Fatal(err)
	}
	n, err := node.Start(cfg, node.StartOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Close(context.Background())
	nw, err := vcnet.ForNode(context.Background(), n)
	if err != nil {
		log.Fatal(err)
	}
	defer nw.Close(context.Background())

	d := vcnet.Dialer{Network: nw, Reliable: true, Tx: &vcnet.Flowspec{Service: "controlled-load", Rate: 1 << 20, Peak: 2 << 20}}
	conn, err := d.DialContext(context.Background(), vcnet.Net, "beta/echo")
	switch {
	case errors.Is(err, vcnet.ErrNoSuchService):
		log.Fatal("nothing listens on beta/echo")
	case err != nil:
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintln(conn, "hello over a VC")
}

// A running node reached through its control socket: the same Dialer.
//
// Compile-only (no Output line): it needs a node serving
// /run/condis/alpha.sock.
func ExampleSocket() {
	d := vcnet.Dialer{Network: vcnet.Socket("/run/condis/alpha.sock"), Reliable: true}
	conn, err := d.DialContext(context.Background(), vcnet.Net, "beta/echo")
	if err != nil {
		var ce *vcnet.CallError
		if errors.As(err, &ce) {
			log.Fatalf("refused: %v (cause %d)", ce.Status, ce.Cause)
		}
		log.Fatal(err)
	}
	defer conn.Close()
	conn.(*vcnet.Conn).CloseWrite()
	io.Copy(io.Discard, conn)
}

// HTTP over VCs: serve on a Listener, fetch with a Transport that dials
// with vcnet ("http://beta/..." calls beta/http). alpha and beta are two
// nodes embedded in this process, over QUIC on loopback.
func ExampleListener_http() {
	alpha, beta, stop := exampleNodes()
	defer stop()

	l, err := vcnet.ListenConfig{Reliable: true}.Listen(context.Background(), beta, "http")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s\n", r.RemoteAddr) // "alpha/http": the calling node
	})}
	go srv.Serve(l)
	defer srv.Close()

	d := vcnet.Dialer{Network: alpha, Reliable: true}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return d.DialContext(ctx, vcnet.Net, host+"/http")
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("http://beta/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(string(body))
	// Output: hello alpha/http
}

// Point-to-multipoint: one VC, every leaf gets what is written. Here the
// leaves are two services of beta, a node embedded in this process.
func ExampleDialer_DialMulti() {
	alpha, beta, stop := exampleNodes()
	defer stop()
	var leaves []*vcnet.Listener
	for _, svc := range []string{"feed", "feed2"} {
		l, err := beta.Listen(context.Background(), svc)
		if err != nil {
			log.Fatal(err)
		}
		defer l.Close()
		leaves = append(leaves, l)
	}

	d := vcnet.Dialer{Network: alpha}
	m, err := d.DialMulti(context.Background(), "beta/feed")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	p, err := m.AddParty(context.Background(), "beta/feed2")
	if err != nil {
		log.Fatal(err)
	}
	m.Write([]byte("tick"))
	for _, l := range leaves {
		c, err := l.AcceptVC()
		if err != nil {
			log.Fatal(err)
		}
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		fmt.Printf("%s got %q (%v)\n", c.LocalAddr(), buf[:n], err)
		c.Close()
	}
	if err := m.DropParty(context.Background(), p); err != nil {
		log.Fatal(err)
	}
	// Output:
	// beta/feed got "tick" (<nil>)
	// beta/feed2 got "tick" (<nil>)
}

// exampleNodes starts alpha and beta, two nodes in this process that are
// each other's [[peer]] over QUIC on loopback, with certificates from a
// CA made in a temporary directory, and returns a Network on each. stop
// closes everything.
func exampleNodes() (alpha, beta *vcnet.Network, stop func()) {
	dir, err := os.MkdirTemp("", "vcnet-example-")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := pki.InitCA(dir); err != nil {
		log.Fatal(err)
	}
	var addrs [2]string
	for i := range addrs {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		addrs[i] = c.LocalAddr().String()
		c.Close()
	}
	var stops []func()
	start := func(name, listen, peer, peerAddr string) *vcnet.Network {
		if _, err := pki.Issue(dir, name); err != nil {
			log.Fatal(err)
		}
		n, err := node.Start(&node.Config{Name: name, Listen: listen, Control: filepath.Join(dir, name+".sock"),
			CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key"),
			Peers: []node.Peer{{Name: peer, Address: peerAddr}}}, node.StartOptions{})
		if err != nil {
			log.Fatal(err)
		}
		nw, err := vcnet.ForNode(context.Background(), n)
		if err != nil {
			log.Fatal(err)
		}
		stops = append(stops, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			nw.Close(ctx)
			n.Close(ctx)
		})
		return nw
	}
	alpha = start("alpha", addrs[0], "beta", addrs[1])
	beta = start("beta", addrs[1], "alpha", addrs[0])
	return alpha, beta, func() {
		for _, f := range stops {
			f()
		}
		os.RemoveAll(dir)
	}
}
