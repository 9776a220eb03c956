package vcnet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/uni"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair is alpha and beta, two nodes in this process over QUIC on loopback,
// each with an embedded Network; beta also serves its control socket.
type pair struct {
	alpha, beta *node.Node
	anet, bnet  *Network
}

func startPair(t *testing.T) *pair { t.Helper(); return startPairWith(t, nil) }

// startPairWith is startPair with each node's configuration changed by
// tweak (if not nil) before it starts.
func startPairWith(t *testing.T, tweak func(*node.Config)) *pair {
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
	p := &pair{}
	start := func(name, listen, peer, peerAddr string) (*node.Node, *Network) {
		if _, err := pki.Issue(dir, name); err != nil {
			t.Fatal(err)
		}
		cfg := &node.Config{Name: name, Listen: listen, Control: filepath.Join(dir, name+".sock"),
			CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key"),
			Peers: []node.Peer{{Name: peer, Address: peerAddr}}}
		if tweak != nil {
			tweak(cfg)
		}
		n, err := node.Start(cfg, node.StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nw, err := ForNode(context.Background(), n)
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
		return n, nw
	}
	p.alpha, p.anet = start("alpha", ports[0], "beta", ports[1])
	p.beta, p.bnet = start("beta", ports[1], "alpha", ports[0])
	return p
}

// serveAlphaSocket serves alpha's control socket (a node.Control beside
// the embedded Network).
func (p *pair) serveAlphaSocket(t *testing.T) string {
	t.Helper()
	ctl, err := node.NewControl(context.Background(), p.alpha.CallManager(), node.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := node.ListenControl(p.alpha.Config.Control)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := ctl.Shutdown(ctx); err != nil {
			t.Errorf("Control.Shutdown: %v", err)
		}
		<-served
	})
	return p.alpha.Config.Control
}

// echo serves l: every accepted conn gets back what it sends, and its
// write side is closed when it reads EOF.
func echo(t *testing.T, l *Listener) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.AcceptVC()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.Info().Reliable {
					io.Copy(c, c)
					c.CloseWrite()
					io.Copy(io.Discard, c)
					return
				}
				buf := make([]byte, 1<<16)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					c.Write(buf[:n])
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestConnEmbedded: a reliable VC between two nodes passes nettest's
// net.Conn conformance suite.
func TestConnEmbedded(t *testing.T) {
	p := startPair(t)
	l, err := ListenConfig{Reliable: true}.Listen(ctxT(t), p.bnet, "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := Dialer{Network: p.anet, Reliable: true}
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				accepted <- nil
				return
			}
			accepted <- c
		}()
		c1, err = d.DialContext(ctxT(t), Net, "beta/pipe")
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-accepted
		if c2 == nil {
			c1.Close()
			return nil, nil, nil, errors.New("accept failed")
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestStream: what one end writes the other reads in order, CloseWrite is
// the far end's EOF while the other direction goes on, and Accept's conn
// says who called with which flowspec.
func TestStream(t *testing.T) {
	p := startPair(t)
	l, err := p.bnet.Listen(ctxT(t), "echo")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan *Conn, 1)
	go func() {
		c, err := l.AcceptVC()
		if err == nil {
			accepted <- c
		}
	}()
	d := Dialer{Network: p.anet, Reliable: true, Tx: &Flowspec{Service: "controlled-load", Rate: 50 << 20, Peak: 100 << 20, Bucket: 1 << 20, MaxSDU: 4000}}
	c, err := d.DialVC(ctxT(t), "beta/echo")
	if err != nil {
		t.Fatal(err)
	}
	srv := <-accepted
	defer l.Close()
	info := srv.Info()
	if info.Peer != "alpha" || info.Service != "echo" || !info.Reliable || info.Rx == nil || info.Rx.Rate < 50<<20 || info.Rx.MaxSDU != 4000 {
		t.Errorf("accepted %+v (rx %+v)", info, info.Rx)
	}
	if ci := c.Info(); ci.MaxSDU != 4000 || ci.Peer != "beta" || ci.VC == "" {
		t.Errorf("dialled %+v", ci)
	}
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB: many SDUs
	go func() {
		c.Write(want)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(srv)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d octets (%v), want %d", len(got), err, len(want))
	}
	if _, err := srv.Write([]byte("after EOF")); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	back, err := io.ReadAll(c)
	if err != nil || string(back) != "after EOF" {
		t.Fatalf("read %q, %v", back, err)
	}
	c.Close()
}

// TestDatagram: a datagram VC keeps message boundaries and refuses an SDU
// over the call's maximum.
func TestDatagram(t *testing.T) {
	p := startPair(t)
	l, err := p.bnet.Listen(ctxT(t), "dg")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, l)
	d := Dialer{Network: p.anet, Tx: &Flowspec{MaxSDU: 1000}, Rx: &Flowspec{MaxSDU: 1000}}
	c, err := d.DialVC(ctxT(t), "beta/dg")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var se *SizeError
	if _, err := c.Write(make([]byte, 1001)); !errors.As(err, &se) || se.Max != 1000 {
		t.Fatalf("1001 octets: %v, want a SizeError with max 1000", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, msg := range []string{"one", "two two", "three three three"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("read %q (%v), want %q", buf[:n], err, msg)
		}
	}
}

// TestCallErrors: a call to nothing is a *CallError matching
// ErrNoSuchService; to an unknown node (not a [[peer]]), ErrUnreachable
// with NO_ROUTE_TO_DESTINATION and cause 3, refused before any call; to a
// service whose allow list leaves the caller out, ErrRefused with cause
// 21; a cancelled context returns its error. The same over a control
// socket.
func TestCallErrors(t *testing.T) {
	p := startPairWith(t, func(c *node.Config) {
		if c.Name == "beta" {
			c.SAPs = []node.SAP{{Service: "private", Allow: []string{"gamma"}}}
		}
	})
	private, err := p.bnet.Listen(ctxT(t), "private")
	if err != nil {
		t.Fatal(err)
	}
	defer private.Close()
	embedded := Dialer{Network: p.anet}
	overSocket := Dialer{Network: Socket(p.serveAlphaSocket(t))}
	for _, tc := range []struct {
		name string
		d    *Dialer
	}{{"embedded", &embedded}, {"socket", &overSocket}} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			_, err := d.DialContext(ctxT(t), Net, "beta/nosuch")
			var ce *CallError
			if !errors.As(err, &ce) || !errors.Is(err, ErrNoSuchService) || errors.Is(err, ErrRefused) || ce.Cause != 88 || ce.Status != ndis.StatusInvalidSap {
				t.Errorf("beta/nosuch: %v, want a CallError with INVALID_SAP and cause 88 (ErrNoSuchService)", err)
			}

			_, err = d.DialContext(ctxT(t), Net, "gamma/echo")
			ce = nil
			if !errors.As(err, &ce) || !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrRefused) ||
				ce.Status != ndis.StatusNoRouteToDestination || ce.Cause != uni.CauseNoRouteToDestination {
				t.Errorf("gamma/echo: %v, want a CallError with NO_ROUTE_TO_DESTINATION and cause 3 (ErrUnreachable)", err)
			} else if msg := err.Error(); !strings.Contains(msg, `unknown node "gamma"`) || !strings.Contains(msg, "add one") || strings.Contains(msg, "\n") {
				t.Errorf("gamma/echo: %q, want one line naming the node and what to do", msg)
			}

			_, err = d.DialContext(ctxT(t), Net, "beta/private")
			ce = nil
			if !errors.As(err, &ce) || !errors.Is(err, ErrRefused) || errors.Is(err, ErrNoSuchService) ||
				ce.Status != ndis.StatusFailure || ce.Cause != uni.CauseCallRejected {
				t.Errorf("beta/private: %v, want a CallError with FAILURE and cause 21 (ErrRefused)", err)
			}

			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := d.DialContext(ctx, Net, "beta/nosuch"); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled: %v", err)
			}
			if _, err := d.DialContext(ctxT(t), Net, "nohost"); err == nil {
				t.Error("an address without a service was dialled")
			}
		})
	}
}

// TestHTTP: net/http served over a vcnet Listener, fetched by an
// http.Client whose transport dials with vcnet.
func TestHTTP(t *testing.T) {
	p := startPair(t)
	l, err := ListenConfig{Reliable: true}.Listen(ctxT(t), p.bnet, "http")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("hello " + r.URL.Path + " from " + r.RemoteAddr))
	})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	d := Dialer{Network: p.anet, Reliable: true}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
		// addr is host:port; the host names the node, the service is http.
		host, _, _ := net.SplitHostPort(addr)
		return d.DialContext(ctx, Net, host+"/http")
	}}
	client := &http.Client{Transport: tr}
	for i := range 3 {
		resp, err := client.Get("http://beta/x")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(body) != "hello /x from alpha/http" {
			t.Fatalf("get %d: %q, %v", i, body, err)
		}
	}
	tr.CloseIdleConnections()
	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// accept returns the next conn l accepts, on a channel.
func accept(l *Listener) <-chan *Conn {
	ch := make(chan *Conn, 1)
	go func() {
		c, err := l.AcceptVC()
		if err != nil {
			c = nil
		}
		ch <- c
	}()
	return ch
}

// TestMulti: a point-to-multipoint call reaches every leaf; a dropped
// leaf's conn ends; the last leaf is not dropped.
func TestMulti(t *testing.T) {
	p := startPair(t)
	var ls []*Listener
	for _, svc := range []string{"l1", "l2"} {
		l, err := p.bnet.Listen(ctxT(t), svc)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls = append(ls, l)
	}
	acc1, acc2 := accept(ls[0]), accept(ls[1])
	m, err := (&Dialer{Network: p.anet}).DialMulti(ctxT(t), "beta/l1")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	leaf1 := <-acc1
	defer leaf1.Close()
	party, err := m.AddParty(ctxT(t), "beta/l2")
	if err != nil {
		t.Fatal(err)
	}
	leaf2 := <-acc2
	defer leaf2.Close()
	if _, err := m.Write([]byte("to all")); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*Conn{leaf1, leaf2} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "to all" {
			t.Fatalf("leaf %d read %q, %v", i+1, buf[:n], err)
		}
	}
	if _, err := m.AddParty(ctxT(t), "beta/nosuch"); !errors.Is(err, ErrNoSuchService) {
		t.Fatalf("adding beta/nosuch: %v, want ErrNoSuchService", err)
	}
	if err := m.DropParty(ctxT(t), party); err != nil {
		t.Fatal(err)
	}
	if _, err := leaf2.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("dropped leaf's Read: %v, want io.EOF", err)
	}
	if err := m.DropParty(ctxT(t), m.FirstParty()); err == nil {
		t.Fatal("the last leaf was dropped")
	}
}

// TestCallErrorIs: each sentinel matches the causes that mean it, and
// only those.
func TestCallErrorIs(t *testing.T) {
	for _, tc := range []struct {
		cause uni.Cause
		st    ndis.Status
		want  error
	}{
		{uni.CauseCallRejected, ndis.StatusFailure, ErrRefused},
		{uni.CauseIncompatibleDestination, ndis.StatusInvalidSap, ErrNoSuchService},
		{uni.CauseNoRouteToDestination, ndis.StatusFailure, ErrUnreachable},
		{uni.CauseUnallocatedNumber, ndis.StatusFailure, ErrUnreachable},
		{uni.CauseDestinationOutOfOrder, ndis.StatusDestOutOfOrder, ErrDestOutOfOrder},
	} {
		err := error(&CallError{Op: "dial", Dest: "beta/x", Status: tc.st, Cause: tc.cause})
		for _, s := range []error{ErrRefused, ErrNoSuchService, ErrUnreachable, ErrDestOutOfOrder} {
			if errors.Is(err, s) != (s == tc.want) {
				t.Errorf("cause %d: errors.Is(%v) = %v", tc.cause, s, !(s == tc.want))
			}
		}
	}
}

// TestSocketDial: the same Dialer over a node's control socket reaches an
// embedded listener: stream both ways, CloseWrite, typed errors.
func TestSocketDial(t *testing.T) {
	p := startPair(t)
	sock := p.serveAlphaSocket(t)
	l, err := ListenConfig{Reliable: true}.Listen(ctxT(t), p.bnet, "echo")
	if err != nil {
		t.Fatal(err)
	}
	echo(t, l)
	nw := Socket(sock)
	defer nw.Close(context.Background())
	d := Dialer{Network: nw, Reliable: true}
	c, err := d.DialVC(ctxT(t), "beta/echo")
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("socket "), 20000)
	go func() {
		c.Write(want)
		c.CloseWrite()
	}()
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("echoed %d of %d octets: %v", len(got), len(want), err)
	}
	c.Close()
	if _, err := d.DialContext(ctxT(t), Net, "beta/nosuch"); !errors.Is(err, ErrNoSuchService) {
		t.Fatalf("beta/nosuch over the socket: %v, want ErrNoSuchService", err)
	}
}

// TestConnSocketListener: a reliable VC accepted by a Listener over a
// node's control socket (a tagged listen session), dialled from an
// embedded Network, passes nettest's conformance suite.
func TestConnSocketListener(t *testing.T) {
	p := startPair(t)
	nw := Socket(p.serveAlphaSocket(t))
	defer nw.Close(context.Background())
	l, err := ListenConfig{Reliable: true}.Listen(ctxT(t), nw, "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := Dialer{Network: p.bnet, Reliable: true}
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				accepted <- nil
				return
			}
			accepted <- c
		}()
		c1, err = d.DialContext(ctxT(t), Net, "alpha/pipe")
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-accepted
		if c2 == nil {
			c1.Close()
			return nil, nil, nil, errors.New("accept failed")
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

// TestSocketListener: a Listener over the control socket takes two calls
// at once and keeps them apart (datagrams each way on each), says who
// called with which flowspec, ends a conn the caller closes with io.EOF,
// and after Close refuses new calls while the accepted one goes on.
func TestSocketListener(t *testing.T) {
	p := startPair(t)
	nw := Socket(p.serveAlphaSocket(t))
	defer nw.Close(context.Background())
	l, err := nw.Listen(ctxT(t), "svc")
	if err != nil {
		t.Fatal(err)
	}
	acc := accept(l)
	d := Dialer{Network: p.bnet, Tx: &Flowspec{Service: "controlled-load", Rate: 5 << 20, Peak: 10 << 20, Bucket: 1 << 20, MaxSDU: 1000}, Rx: &Flowspec{MaxSDU: 900}}
	c1, err := d.DialVC(ctxT(t), "alpha/svc")
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	s1 := <-acc
	c2, err := (&Dialer{Network: p.bnet}).DialVC(ctxT(t), "alpha/svc")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	s2 := <-accept(l)
	if i := s1.Info(); i.Peer != "beta" || i.Service != "svc" || i.Reliable || i.Rx == nil || i.Rx.Rate < 5<<20 || i.Rx.MaxSDU != 1000 || i.MaxSDU != 900 || s1.RemoteAddr().String() != "beta/svc" {
		t.Errorf("first accepted: %+v (rx %+v) from %v", i, i.Rx, s1.RemoteAddr())
	}
	if s1.Info().VC == s2.Info().VC {
		t.Fatalf("both accepted on %s", s1.Info().VC)
	}
	c2.Write([]byte("from two"))
	c1.Write([]byte("from one"))
	for _, x := range []struct {
		c    *Conn
		want string
	}{{s1, "from one"}, {s2, "from two"}} {
		x.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		n, err := x.c.Read(buf)
		if err != nil || string(buf[:n]) != x.want {
			t.Fatalf("%s read %q, %v; want %q", x.c.Info().VC, buf[:n], err, x.want)
		}
	}
	s2.Write([]byte("back to two"))
	s1.Write([]byte("back to one"))
	for _, x := range []struct {
		c    *Conn
		want string
	}{{c1, "back to one"}, {c2, "back to two"}} {
		x.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		n, err := x.c.Read(buf)
		if err != nil || string(buf[:n]) != x.want {
			t.Fatalf("caller read %q, %v; want %q", buf[:n], err, x.want)
		}
	}
	c1.Close()
	s1.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := s1.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("after the caller closed: %v, want io.EOF", err)
	}
	l.Close()
	if c, err := (&Dialer{Network: p.bnet}).DialVC(ctxT(t), "alpha/svc"); err == nil {
		c.Close()
		// The deregistration may still be on its way; a second try must fail.
		if c, err = (&Dialer{Network: p.bnet}).DialVC(ctxT(t), "alpha/svc"); err == nil {
			c.Close()
			t.Fatal("a call to a closed Listener's service connected")
		}
	}
	c2.Write([]byte("still"))
	s2.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	if n, err := s2.Read(buf); err != nil || string(buf[:n]) != "still" {
		t.Fatalf("accepted conn after Close read %q, %v", buf[:n], err)
	}
	s2.Close()
}

// TestMultiSocket: DialMulti through a node's control socket reaches every
// leaf; a leaf is added and dropped; the last leaf is not dropped.
func TestMultiSocket(t *testing.T) {
	p := startPair(t)
	nw := Socket(p.serveAlphaSocket(t))
	defer nw.Close(context.Background())
	var ls []*Listener
	for _, svc := range []string{"l1", "l2", "l3"} {
		l, err := p.bnet.Listen(ctxT(t), svc)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ls = append(ls, l)
	}
	acc1, acc2, acc3 := accept(ls[0]), accept(ls[1]), accept(ls[2])
	m, err := (&Dialer{Network: nw}).DialMulti(ctxT(t), "beta/l1", "beta/l2")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	leaf1, leaf2 := <-acc1, <-acc2
	defer leaf1.Close()
	defer leaf2.Close()
	if fp := m.FirstParty(); fp.Dest() != "beta/l1" || fp.Name() == "" {
		t.Errorf("first party %q %q", fp.Name(), fp.Dest())
	}
	party, err := m.AddParty(ctxT(t), "beta/l3")
	if err != nil {
		t.Fatal(err)
	}
	leaf3 := <-acc3
	defer leaf3.Close()
	if _, err := m.Write([]byte("to all")); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*Conn{leaf1, leaf2, leaf3} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "to all" {
			t.Fatalf("leaf %d read %q, %v", i+1, buf[:n], err)
		}
	}
	if _, err := m.AddParty(ctxT(t), "beta/nosuch"); !errors.Is(err, ErrNoSuchService) {
		t.Fatalf("adding beta/nosuch: %v, want ErrNoSuchService", err)
	}
	if err := m.DropParty(ctxT(t), party); err != nil {
		t.Fatal(err)
	}
	leaf3.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := leaf3.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("dropped leaf's Read: %v, want io.EOF", err)
	}
	if _, err := (&Dialer{Network: nw}).DialMulti(ctxT(t), "beta/l1", "beta/nosuch"); !errors.Is(err, ErrNoSuchService) {
		t.Fatalf("DialMulti with a leaf that does not exist: %v, want ErrNoSuchService", err)
	}
}

// TestConnSocket: a reliable VC dialled through a node's control socket
// (to an embedded listener) passes nettest's conformance suite too.
func TestConnSocket(t *testing.T) {
	p := startPair(t)
	nw := Socket(p.serveAlphaSocket(t))
	defer nw.Close(context.Background())
	l, err := ListenConfig{Reliable: true}.Listen(ctxT(t), p.bnet, "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := Dialer{Network: nw, Reliable: true}
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				accepted <- nil
				return
			}
			accepted <- c
		}()
		c1, err = d.DialContext(ctxT(t), Net, "beta/pipe")
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-accepted
		if c2 == nil {
			c1.Close()
			return nil, nil, nil, errors.New("accept failed")
		}
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}
