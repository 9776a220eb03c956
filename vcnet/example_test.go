package vcnet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/vcnet"
)

// A node embedded in the program: listen on a service and dial another
// node's, as with package net.
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
// with vcnet ("http://beta/..." calls beta/http).
func ExampleListener_http() {
	var nw *vcnet.Network // from vcnet.ForNode
	l, err := vcnet.ListenConfig{Reliable: true}.Listen(context.Background(), nw, "http")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s\n", r.RemoteAddr) // "alpha/http": the calling node
	}))

	d := vcnet.Dialer{Network: nw, Reliable: true}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		return d.DialContext(ctx, vcnet.Net, host+"/http")
	}}}
	resp, err := client.Get("http://beta/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
}

// Point-to-multipoint: one VC, every leaf gets what is written.
func ExampleDialer_DialMulti() {
	var nw *vcnet.Network // from vcnet.ForNode
	d := vcnet.Dialer{Network: nw}
	m, err := d.DialMulti(context.Background(), "beta/feed", "gamma/feed")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	p, err := m.AddParty(context.Background(), "delta/feed")
	if err != nil {
		log.Fatal(err)
	}
	m.Write([]byte("tick"))
	m.DropParty(context.Background(), p)
}
