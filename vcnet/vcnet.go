// Package vcnet gives applications condis VCs as Go net.Conns: dial
// "node/service" with a flowspec and get a connection whose traffic rides a
// signalled call; listen on a service and accept the calls made to it.
//
// A [Network] is where the calls are made: a node embedded in the program
// ([Embedded], [ForNode]: a clientcore.Core of its own on the node's call
// manager) or a running node reached through its control socket
// ([Socket]); the API is the same for both.
//
//	nw, _ := vcnet.ForNode(ctx, n) // n from node.Start
//	defer nw.Close()
//	d := vcnet.Dialer{Network: nw, Reliable: true, Tx: &vcnet.Flowspec{Rate: 125000}}
//	conn, err := d.DialContext(ctx, "beta/echo")
//	if errors.Is(err, vcnet.ErrNoSuchService) { ... }
//
// A reliable VC is a byte stream with deadlines and CloseWrite; a datagram
// VC keeps message boundaries, one SDU per Write and per Read (see [Conn]).
// A call that fails is a *[CallError] with the NDIS status and the Q.2931
// cause; the sentinels ErrRefused, ErrNoSuchService, ErrUnreachable and
// ErrDestOutOfOrder match it with errors.Is.
//
// Over a control socket, a Listener is a tagged listen session of the
// node (each call apart: its SDUs tagged with its VC); a MultiConn's
// leaves are added and dropped with the socket's party-add and party-drop
// requests.
package vcnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// Net is the network name of vcnet addresses.
const Net = "condis"

// Flowspec is a flowspec as the control socket and the CLI write it (rates
// in bytes per second, sizes in octets; zero members are not specified).
type Flowspec = node.Flowspec

// Addr is one end of a call: a node and a service.
type Addr struct{ Node, Service string }

// Network is "condis".
func (a Addr) Network() string { return Net }

// String is "node/service".
func (a Addr) String() string { return a.Node + "/" + a.Service }

// CallInfo describes a call.
type CallInfo struct {
	// VC is the VC's handle on this node ("vc#7").
	VC string
	// Peer is the far end's node; Service the service called (or, on a
	// Listener's conn, called into).
	Peer, Service string
	// Tx and Rx are the flowspecs granted (this end's transmit and
	// receive); nil if not known.
	Tx, Rx *Flowspec
	// MaxSDU is the largest SDU this end may send.
	MaxSDU int
	// Reliable: the VC carries a byte stream.
	Reliable bool
}

// Network is where vcnet makes and takes calls.
type Network struct {
	core   *clientcore.Core // embedded
	socket string           // over a control socket
	self   string           // this node's name, if known

	mu    sync.Mutex
	conns map[*Conn]struct{}
	lns   map[*Listener]struct{} // over a control socket: the Listeners whose session is open
}

// Embedded is a Network on a node in this process: a CoNDIS client
// (clientcore.Core) of its own bound to cm's adapter. self names the node
// (the local end of its calls). Close unbinds it.
func Embedded(ctx context.Context, cm clientcore.CallManager, self string) (*Network, error) {
	core, err := clientcore.New(ctx, cm, clientcore.Options{Name: "vcnet"})
	if err != nil {
		return nil, err
	}
	return &Network{core: core, self: self, conns: map[*Conn]struct{}{}}, nil
}

// ForNode is Embedded on node n (started with node.Start).
func ForNode(ctx context.Context, n *node.Node) (*Network, error) {
	return Embedded(ctx, n.CallManager(), n.Config.Name)
}

// Socket is a Network on the node serving the control socket at path.
// Calls are made when dialled; nothing is opened before.
func Socket(path string) *Network {
	return &Network{socket: path, conns: map[*Conn]struct{}{}, lns: map[*Listener]struct{}{}}
}

// Close closes every call of the Network and, for an embedded one, its
// client; it waits for that until ctx ends.
func (n *Network) Close(ctx context.Context) error {
	n.mu.Lock()
	conns := make([]*Conn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	if n.core != nil {
		return n.core.Shutdown(ctx)
	}
	n.mu.Lock()
	lns := make([]*Listener, 0, len(n.lns))
	for l := range n.lns {
		lns = append(lns, l)
	}
	n.mu.Unlock()
	for _, l := range lns {
		l.Close()
	}
	for _, c := range conns {
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// A listen session ends once its calls are gone.
	for _, l := range lns {
		select {
		case <-l.read:
		case <-ctx.Done():
			l.sess.Close()
			<-l.read
			return ctx.Err()
		}
	}
	return nil
}

func (n *Network) trackListener(l *Listener) {
	n.mu.Lock()
	n.lns[l] = struct{}{}
	n.mu.Unlock()
	go func() {
		<-l.read
		n.mu.Lock()
		delete(n.lns, l)
		n.mu.Unlock()
	}()
}

func (n *Network) track(c *Conn) {
	n.mu.Lock()
	n.conns[c] = struct{}{}
	n.mu.Unlock()
	go func() {
		<-c.done
		n.mu.Lock()
		delete(n.conns, c)
		n.mu.Unlock()
	}()
}

// Dialer makes calls. The zero flowspecs ask for best effort.
type Dialer struct {
	// Network is where the calls are made.
	Network *Network
	// Tx and Rx are the flowspecs asked for (this end's transmit and
	// receive); nil: best effort, nothing specified.
	Tx, Rx *Flowspec
	// Reliable asks for a reliable VC: a byte stream (QUIC stream under
	// it) instead of datagrams.
	Reliable bool
	// Timeout bounds the setup, as net.Dialer's does; 0: none beyond ctx.
	Timeout time.Duration
}

// Dial is DialContext with a background context.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext calls address ("node/service") and returns the connected
// VC as a *Conn. network must be "condis" (or "", the same). If ctx ends
// during setup, the call is closed and ctx's error returned. A call the
// network refuses is a *CallError.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.dial(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// DialVC is DialContext returning the *Conn.
func (d *Dialer) DialVC(ctx context.Context, address string) (*Conn, error) {
	return d.dial(ctx, Net, address)
}

func (d *Dialer) dial(ctx context.Context, network, address string) (*Conn, error) {
	if network != Net && network != "" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("vcnet: network %q, want %q", network, Net)}
	}
	if d.Network == nil {
		return nil, errors.New("vcnet: Dialer has no Network (vcnet.ForNode, vcnet.Embedded or vcnet.Socket)")
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	node, svc, ok := strings.Cut(address, "/")
	if !ok || node == "" || svc == "" {
		return nil, &net.OpError{Op: "dial", Net: Net, Err: fmt.Errorf("vcnet: address %q, want node/service", address)}
	}
	if d.Network.core != nil {
		return d.dialEmbedded(ctx, address, Addr{Node: node, Service: svc}, false)
	}
	return d.dialSocket(ctx, address, Addr{Node: node, Service: svc})
}

// --- embedded ---

// vcHandler is the Core's handler of a Conn's VC.
type vcHandler struct {
	clientcore.NopHandler
	c    *Conn
	v    *clientcore.VC
	mu   sync.Mutex // guards out, and wakes the sender on completions
	out  int        // sends not completed
	free chan struct{}
	// onParty, if set, is told a party of a multipoint call went.
	onParty func(p *clientcore.Party, e clientcore.PartyEnd)
}

// maxOutstanding bounds the sends a Conn has handed to the Core and that
// have not completed.
const maxOutstanding = 64

func newVCHandler(c *Conn) *vcHandler { return &vcHandler{c: c, free: make(chan struct{}, 1)} }

func (h *vcHandler) Received(_ *clientcore.VC, sdus [][]byte) { h.c.deliver(sdus, true) }

func (h *vcHandler) SendsCompleted(_ *clientcore.VC, n int) {
	h.mu.Lock()
	h.out -= n
	h.mu.Unlock()
	wake(h.free)
}

func (h *vcHandler) QoSChanged(_ *clientcore.VC, f clientcore.Flows) {
	h.c.setInfo(func(i *CallInfo) {
		i.Tx, i.Rx = node.FlowspecOf(f.Tx), node.FlowspecOf(f.Rx)
		if !h.c.incoming() {
			i.MaxSDU = f.MaxSDU()
		}
	})
}

func (h *vcHandler) PartyDropped(p *clientcore.Party, e clientcore.PartyEnd) {
	if h.onParty != nil {
		h.onParty(p, e)
	}
}

func (h *vcHandler) Closed(v *clientcore.VC, e clientcore.End) {
	var err error = errEOF
	switch {
	case e.Err != nil:
		err = e.Err
	case e.Reason == clientcore.ReasonRemote && e.Status != ndis.StatusSuccess:
		err = &CallError{Op: "call", Dest: v.Peer() + "/" + v.Service(), Status: e.Status, Cause: e.Cause}
	}
	h.c.ended(err)
	wake(h.free)
}

// send hands sdu to the Core, waiting while maxOutstanding sends are out.
func (h *vcHandler) send(sdu []byte) error {
	for {
		h.mu.Lock()
		if h.out < maxOutstanding {
			h.out++
			h.mu.Unlock()
			break
		}
		h.mu.Unlock()
		<-h.free
		h.c.mu.Lock()
		over := h.c.callErr != nil
		h.c.mu.Unlock()
		if over {
			return ErrCallClosed
		}
	}
	if err := h.v.Send(sdu); err != nil {
		h.mu.Lock()
		h.out--
		h.mu.Unlock()
		return err
	}
	return nil
}

func (h *vcHandler) end() { h.v.Close(clientcore.ReasonLocal, nil) }

func (c *Conn) incoming() bool { return c.local.Service != "" }

func (d *Dialer) dialEmbedded(ctx context.Context, address string, to Addr, multipoint bool) (*Conn, error) {
	tx, err := d.Tx.Ndis()
	var rx ndis.Flowspec
	if err == nil {
		rx, err = d.Rx.Ndis()
	}
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: Net, Addr: to, Err: err}
	}
	n := d.Network
	c := newConn(d.Reliable, Addr{Node: n.self}, to)
	h := newVCHandler(c)
	v, err := n.core.Call(ctx, address, clientcore.CallOptions{Tx: tx, Rx: rx, Reliable: d.Reliable, Multipoint: multipoint}, h)
	if err != nil {
		return nil, dialError(address, err)
	}
	h.v = v
	st := v.State()
	c.setInfo(func(i *CallInfo) {
		*i = CallInfo{VC: v.Name(), Peer: to.Node, Service: to.Service, MaxSDU: st.MaxSDU, Reliable: d.Reliable}
		if st.Flows != nil {
			i.Tx, i.Rx = node.FlowspecOf(st.Flows.Tx), node.FlowspecOf(st.Flows.Rx)
		}
	})
	c.start(h)
	n.track(c)
	return c, nil
}

// dialError is the error of a dial that failed with err.
func dialError(dest string, err error) error {
	var ce *clientcore.CallError
	if errors.As(err, &ce) {
		return &CallError{Op: "dial", Dest: dest, Status: ce.Status, Cause: ce.Cause}
	}
	var ue *node.UnknownNodeError
	if errors.As(err, &ue) { // refused before any SETUP, as a network with no route to it would
		return &CallError{Op: "dial", Dest: dest, Status: ue.Status(), Cause: ue.Cause(), Text: "dial " + dest + ": " + ue.Error()}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &net.OpError{Op: "dial", Net: Net, Err: fmt.Errorf("vcnet: %s: %w", dest, err)}
}

// Listener takes the calls made to a service. It implements net.Listener;
// Accept returns *Conn.
type Listener struct {
	n        *Network
	sap      *clientcore.SAP
	service  string
	reliable bool

	// Over a control socket: the tagged listen session, its calls by VC,
	// and its reader's end.
	sess *node.Session
	byVc map[string]*Conn
	read chan struct{}

	mu      sync.Mutex
	backlog []*Conn
	closed  bool
	endOnce sync.Once
	ended   chan struct{} // closed when the SAP is gone
	wake    chan struct{} // a call to accept
	closing chan struct{} // closed by Close
}

// ListenConfig configures a Listener.
type ListenConfig struct {
	// Reliable makes every call accepted a byte stream, whatever the
	// caller asked for; otherwise a call is a stream if the caller asked
	// for a reliable VC (as the node's call manager says), datagrams if
	// not.
	Reliable bool
}

// maxBacklog bounds the calls connected and not yet accepted; more are
// refused.
const maxBacklog = 128

// Listen registers service ("echo") and returns its Listener.
func (n *Network) Listen(ctx context.Context, service string) (*Listener, error) {
	return ListenConfig{}.Listen(ctx, n, service)
}

// Listen registers service on n and returns its Listener.
func (lc ListenConfig) Listen(ctx context.Context, n *Network, service string) (*Listener, error) {
	l := &Listener{n: n, service: service, reliable: lc.Reliable, ended: make(chan struct{}), wake: make(chan struct{}, 1), closing: make(chan struct{})}
	if n.core == nil {
		if err := l.listenSocket(ctx); err != nil {
			return nil, err
		}
		return l, nil
	}
	sap, err := n.core.Listen(ctx, service, l)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: Net, Addr: Addr{Node: n.self, Service: service}, Err: fmt.Errorf("vcnet: %w", err)}
	}
	l.sap = sap
	return l, nil
}

// Registered: the Core's answer is Listen's.
func (l *Listener) Registered(*clientcore.SAP, error) {}

// Offered accepts a call unless the Listener is closed or its backlog is
// full.
func (l *Listener) Offered(_ *clientcore.SAP, o *clientcore.Offer) clientcore.Handler {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(l.backlog) >= maxBacklog {
		return nil
	}
	reliable := l.reliable
	if _, flags, ok := q2931.Media(o.Params); ok && flags&q2931.MediaReliable != 0 {
		reliable = true
	}
	c := newConn(reliable, Addr{Node: l.n.self, Service: l.service}, Addr{Node: o.Peer, Service: o.Service})
	c.info = CallInfo{VC: o.VC.Name(), Peer: o.Peer, Service: o.Service, Reliable: reliable}
	if f := o.Flows; f != nil {
		c.info.Tx, c.info.Rx, c.info.MaxSDU = node.FlowspecOf(f.Tx), node.FlowspecOf(f.Rx), f.MaxSDU()
	} else {
		c.info.MaxSDU = clientcore.DefaultMaxSDU
	}
	h := newVCHandler(c)
	h.v = o.VC
	return &acceptHandler{vcHandler: h, l: l}
}

// Ended: the SAP is gone.
func (l *Listener) Ended(*clientcore.SAP, clientcore.Reason) { l.sapGone() }

// sapGone: the service is no longer registered; Accept returns what is
// left, then an error.
func (l *Listener) sapGone() { l.endOnce.Do(func() { close(l.ended) }) }

// acceptHandler queues the Conn for Accept once the call is up.
type acceptHandler struct {
	*vcHandler
	l *Listener
}

func (a *acceptHandler) Connected(v *clientcore.VC, f *clientcore.Flows) {
	l := a.l
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		v.Close(clientcore.ReasonLocal, nil)
		return
	}
	a.c.start(a.vcHandler)
	l.n.track(a.c)
	l.backlog = append(l.backlog, a.c)
	l.mu.Unlock()
	wake(l.wake)
}

// Accept waits for the next call and returns its Conn.
func (l *Listener) Accept() (net.Conn, error) { return l.AcceptVC() }

// AcceptVC is Accept returning the *Conn.
func (l *Listener) AcceptVC() (*Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: Net, Addr: l.Addr(), Err: net.ErrClosed}
		}
		if len(l.backlog) > 0 {
			c := l.backlog[0]
			l.backlog = l.backlog[1:]
			l.mu.Unlock()
			return c, nil
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-l.closing:
		case <-l.ended:
			l.mu.Lock()
			more := len(l.backlog) > 0
			l.mu.Unlock()
			if !more {
				return nil, &net.OpError{Op: "accept", Net: Net, Addr: l.Addr(), Err: errors.New("vcnet: the service is no longer registered")}
			}
		}
	}
}

// Close deregisters the service; the calls accepted go on, those not yet
// accepted are closed.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return &net.OpError{Op: "close", Net: Net, Addr: l.Addr(), Err: net.ErrClosed}
	}
	l.closed = true
	pending := l.backlog
	l.backlog = nil
	l.mu.Unlock()
	for _, c := range pending {
		c.Close()
	}
	if l.sess != nil {
		l.sess.End() // deregisters; the calls accepted go on
	} else {
		l.sap.Deregister()
	}
	close(l.closing)
	return nil
}

// Addr is the service on this node.
func (l *Listener) Addr() net.Addr { return Addr{Node: l.n.self, Service: l.service} }

var _ net.Listener = (*Listener)(nil)
var _ net.Conn = (*Conn)(nil)

// errEOF is io.EOF: a normal close.
var errEOF = io.EOF

// statusNamed finds the NDIS status called name among those Q.2931 causes
// map to.
func statusNamed(name string) ndis.Status {
	for c := uni.Cause(0); c < 128; c++ {
		if st := q2931.StatusForCause(c); st.String() == name {
			return st
		}
	}
	return 0
}
