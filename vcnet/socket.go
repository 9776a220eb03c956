package vcnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/node"
)

// socketLink is a call session of a node's control socket under a Conn.
type socketLink struct{ s *node.Session }

func (l socketLink) send(sdu []byte) error { return l.s.Send(sdu) }

// end sends the end frame: the node closes the call once its sends have
// completed (no linger).
func (l socketLink) end() { l.s.End() }

func (d *Dialer) dialSocket(ctx context.Context, address string, to Addr) (*Conn, error) {
	return d.dialSocketReq(ctx, node.Request{Dest: address, Tx: d.Tx, Rx: d.Rx, Reliable: d.Reliable}, to)
}

// dialSocketReq makes the call req asks for through the control socket.
func (d *Dialer) dialSocketReq(ctx context.Context, req node.Request, to Addr) (*Conn, error) {
	n, address := d.Network, req.Dest
	s, err := node.DialCall(ctx, n.socket, req)
	if err != nil {
		return nil, socketError("dial", address, to, err)
	}
	r := s.Response
	c := newConn(d.Reliable, Addr{Node: n.self}, to)
	c.socket, c.resp = n.socket, r
	c.info = CallInfo{VC: r.Vc, Peer: to.Node, Service: to.Service, Tx: r.Tx, Rx: r.Rx, MaxSDU: r.MaxSDU, Reliable: d.Reliable}
	c.start(socketLink{s})
	n.track(c)
	go c.readSession(s, address)
	return c, nil
}

// socketError is the error of a request the node refused or could not
// take: a *CallError when it says with which status and cause.
func socketError(op, dest string, to net.Addr, err error) error {
	var re *node.RequestError
	switch {
	case errors.As(err, &re) && (re.Response.Cause != 0 || re.Response.Status != ""):
		r := re.Response
		return &CallError{Op: op, Dest: dest, Status: statusNamed(r.Status), StatusText: r.Status,
			Cause: causeOf(r.Cause), Text: r.Error}
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return &net.OpError{Op: op, Net: Net, Addr: to, Err: err}
}

// readSession takes the node's frames for a Conn until the close frame,
// then closes the session.
func (c *Conn) readSession(s *node.Session, dest string) {
	defer s.Close()
	for {
		f, err := s.Recv()
		if err != nil {
			c.ended(fmt.Errorf("vcnet: lost the node: %w", err))
			return
		}
		switch f.Type {
		case node.FrameData:
			// Not waited for: the node's session queue is the buffer, and
			// what it drops is reported in an error frame.
			c.deliver([][]byte{f.Payload}, false)
		case node.FrameError:
			if msg := string(f.Payload); c.reliable && strings.Contains(msg, "dropped") {
				c.ended(fmt.Errorf("vcnet: data lost: %s", msg)) // a stream with a hole in it is no stream
			}
		case node.FrameEvent:
			if ev, err := node.ParseEvent(f.Payload); err == nil && ev.Event == node.EventQoS {
				c.setInfo(func(i *CallInfo) {
					i.Tx, i.Rx = ev.Tx, ev.Rx
					if ev.Tx != nil && ev.Tx.MaxSDU != 0 {
						i.MaxSDU = int(ev.Tx.MaxSDU)
					}
				})
			}
		case node.FrameClose:
			info, err := node.ParseClose(f.Payload)
			if err != nil {
				c.ended(err)
			} else {
				c.ended(closeError(dest, info))
			}
			return
		}
	}
}

// closeError is how a call whose end info describes ended, for its Conn:
// io.EOF for a normal close.
func closeError(dest string, info node.CloseInfo) error {
	if info.Normal {
		return errEOF
	}
	return &CallError{Op: "call", Dest: dest, Status: statusNamed(info.Status), StatusText: info.Status,
		Cause: causeOf(info.Cause), Text: info.Text}
}

// --- listening through a tagged listen session ---

// taggedLink is one call of a Listener's tagged listen session.
type taggedLink struct {
	s  *node.Session
	vc string
}

func (l taggedLink) send(sdu []byte) error { return l.s.SendOn(l.vc, sdu) }

// end sends the call's vc end frame: the node closes it once its sends
// have completed.
func (l taggedLink) end() { l.s.EndCall(l.vc) }

// listenSocket registers the Listener's service through a tagged listen
// session of the node's control socket.
func (l *Listener) listenSocket(ctx context.Context) error {
	s, err := node.DialListen(ctx, l.n.socket, node.Request{Service: l.service, Tagged: true})
	if err != nil {
		return socketError("listen", l.service, l.Addr(), err)
	}
	l.sess, l.byVc, l.read = s, map[string]*Conn{}, make(chan struct{})
	l.n.trackListener(l)
	go l.readSession()
	return nil
}

// readSession takes the node's frames for the Listener's calls until the
// session's close frame (or the node is lost), then closes the session.
func (l *Listener) readSession() {
	s := l.sess
	defer close(l.read)
	defer s.Close()
	lost := func(err error) {
		l.mu.Lock()
		conns := l.byVc
		l.byVc = map[string]*Conn{}
		l.mu.Unlock()
		for _, c := range conns {
			c.ended(err)
		}
		l.sapGone()
	}
	for {
		f, err := s.Recv()
		if err != nil {
			lost(fmt.Errorf("vcnet: lost the node: %w", err))
			return
		}
		switch f.Type {
		case node.FrameVcData:
			vc, sdu, err := node.ParseVcData(f.Payload)
			if err != nil {
				continue
			}
			l.mu.Lock()
			c := l.byVc[vc]
			l.mu.Unlock()
			if c != nil {
				c.deliver([][]byte{sdu}, false) // the node's session queue is the buffer
			}
		case node.FrameEvent:
			ev, err := node.ParseEvent(f.Payload)
			if err != nil {
				continue
			}
			switch ev.Event {
			case node.EventCall:
				l.offered(ev)
			case node.EventClosed:
				l.mu.Lock()
				c := l.byVc[ev.Vc]
				delete(l.byVc, ev.Vc)
				l.mu.Unlock()
				if c != nil && ev.CloseInfo != nil {
					c.ended(closeError(ev.Peer+"/"+l.service, *ev.CloseInfo))
				} else if c != nil {
					c.ended(errEOF)
				}
			}
		case node.FrameError:
			// SDUs the node dropped cannot be told apart by call: every
			// reliable Conn has a hole in its stream now.
			if msg := string(f.Payload); strings.Contains(msg, "dropped") {
				l.mu.Lock()
				var broken []*Conn
				for _, c := range l.byVc {
					if c.reliable {
						broken = append(broken, c)
					}
				}
				l.mu.Unlock()
				for _, c := range broken {
					c.ended(fmt.Errorf("vcnet: data lost: %s", msg))
				}
			}
		case node.FrameClose:
			info, err := node.ParseClose(f.Payload)
			if err == nil {
				err = closeError(l.service, info)
			}
			lost(err)
			return
		}
	}
}

// offered takes a call the node accepted on the Listener's service: it is
// queued for Accept, or closed if the Listener is closed or its backlog
// full.
func (l *Listener) offered(ev node.Event) {
	reliable := l.reliable || ev.Reliable
	c := newConn(reliable, Addr{Node: l.n.self, Service: l.service}, Addr{Node: ev.Peer, Service: l.service})
	c.info = CallInfo{VC: ev.Vc, Peer: ev.Peer, Service: l.service, Tx: ev.Tx, Rx: ev.Rx, MaxSDU: ev.MaxSDU, Reliable: reliable}
	if c.info.MaxSDU == 0 {
		c.info.MaxSDU = clientcore.DefaultMaxSDU
	}
	l.mu.Lock()
	if l.closed || len(l.backlog) >= maxBacklog {
		l.mu.Unlock()
		l.sess.EndCall(ev.Vc)
		return
	}
	l.byVc[ev.Vc] = c
	c.start(taggedLink{l.sess, ev.Vc})
	l.n.track(c)
	l.backlog = append(l.backlog, c)
	l.mu.Unlock()
	wake(l.wake)
}

// --- point-to-multipoint ---

// MultiConn is a point-to-multipoint call this end made: what it writes
// goes to every leaf (its Read gets nothing: leaves do not send). Leaves
// are added and dropped while it is up.
type MultiConn struct {
	*Conn
	h     *vcHandler // embedded
	first *Party     // over a control socket: the first leaf
}

// Party is one leaf of a MultiConn.
type Party struct {
	p          *clientcore.Party // embedded
	name, dest string            // over a control socket
}

// Name is the party's handle on this node ("party#9").
func (p *Party) Name() string {
	if p.p != nil {
		return p.p.Name()
	}
	return p.name
}

// Dest is the leaf's address ("node/service").
func (p *Party) Dest() string {
	if p.p != nil {
		return p.p.Dest()
	}
	return p.dest
}

// DialMulti makes a point-to-multipoint call to dests[0], then adds the
// other dests as leaves; it fails if any leaf cannot be added (the call
// is closed then).
func (d *Dialer) DialMulti(ctx context.Context, dests ...string) (*MultiConn, error) {
	if len(dests) == 0 {
		return nil, errors.New("vcnet: DialMulti needs at least one destination")
	}
	if d.Network == nil {
		return nil, errors.New("vcnet: Dialer has no Network (vcnet.ForNode, vcnet.Embedded or vcnet.Socket)")
	}
	node, svc, ok := strings.Cut(dests[0], "/")
	if !ok || node == "" || svc == "" {
		return nil, &net.OpError{Op: "dial", Net: Net, Err: fmt.Errorf("vcnet: address %q, want node/service", dests[0])}
	}
	to := Addr{Node: node, Service: svc}
	if d.Network.core == nil {
		return d.dialMultiSocket(ctx, dests, to)
	}
	c, err := d.dialEmbedded(ctx, dests[0], to, true)
	if err != nil {
		return nil, err
	}
	h := c.l.(*vcHandler)
	m := &MultiConn{Conn: c, h: h}
	for _, dest := range dests[1:] {
		if _, err := m.AddParty(ctx, dest); err != nil {
			c.Close()
			return nil, err
		}
	}
	return m, nil
}

// dialMultiSocket makes a multipoint call through the control socket: the
// node adds the further leaves before it answers.
func (d *Dialer) dialMultiSocket(ctx context.Context, dests []string, to Addr) (*MultiConn, error) {
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	req := node.Request{Dest: dests[0], Parties: dests[1:], Multipoint: true, Tx: d.Tx, Rx: d.Rx, Reliable: d.Reliable}
	sc, err := d.dialSocketReq(ctx, req, to)
	if err != nil {
		return nil, err
	}
	m := &MultiConn{Conn: sc}
	for _, pi := range sc.resp.Parties {
		if pi.State == "FAILED" {
			sc.Close()
			return nil, &CallError{Op: "add party", Dest: pi.Dest, Status: statusNamed(pi.Status), StatusText: pi.Status,
				Cause: causeOf(pi.Cause), Text: pi.Error}
		}
		if m.first == nil {
			m.first = &Party{name: pi.Party, dest: pi.Dest}
		}
	}
	if m.first == nil {
		m.first = &Party{dest: dests[0]}
	}
	return m, nil
}

// FirstParty is the leaf the call was made to.
func (m *MultiConn) FirstParty() *Party {
	if m.h == nil {
		return m.first
	}
	return &Party{p: m.h.v.FirstParty()}
}

// AddParty adds dest as a leaf (NdisClAddParty) and waits until it is
// added; a leaf the network refuses is a *CallError.
func (m *MultiConn) AddParty(ctx context.Context, dest string) (*Party, error) {
	if m.h == nil {
		r, err := node.AddParty(ctx, m.socket, m.Info().VC, dest)
		if err != nil {
			return nil, socketError("add party", dest, nil, err)
		}
		return &Party{name: r.Party, dest: dest}, nil
	}
	type result struct {
		p   *clientcore.Party
		err error
	}
	done := make(chan result, 1)
	m.h.v.AddParty(dest, func(p *clientcore.Party, err error) { done <- result{p, err} })
	select {
	case r := <-done:
		if r.err != nil {
			return nil, dialError(dest, r.err)
		}
		return &Party{p: r.p}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// DropParty drops leaf p (NdisClDropParty) and waits until it is dropped.
// The last leaf is not dropped: Close the call instead.
func (m *MultiConn) DropParty(ctx context.Context, p *Party) error {
	if m.h == nil {
		if err := node.DropParty(ctx, m.socket, m.Info().VC, p.Name()); err != nil {
			return fmt.Errorf("vcnet: drop %s: %w", p.Dest(), err)
		}
		return nil
	}
	done := make(chan error, 1)
	p.p.DropParty(func(_ *clientcore.Party, err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("vcnet: drop %s: %w", p.Dest(), err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
