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
	n := d.Network
	s, err := node.DialCall(ctx, n.socket, node.Request{Dest: address, Tx: d.Tx, Rx: d.Rx, Reliable: d.Reliable})
	if err != nil {
		var re *node.RequestError
		switch {
		case errors.As(err, &re) && (re.Response.Cause != 0 || re.Response.Status != ""):
			r := re.Response
			return nil, &CallError{Op: "dial", Dest: address, Status: statusNamed(r.Status), StatusText: r.Status,
				Cause: causeOf(r.Cause), Text: r.Error}
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			return nil, err
		}
		return nil, &net.OpError{Op: "dial", Net: Net, Addr: to, Err: err}
	}
	r := s.Response
	c := newConn(d.Reliable, Addr{Node: n.self}, to)
	c.info = CallInfo{VC: r.Vc, Peer: to.Node, Service: to.Service, Tx: r.Tx, Rx: r.Rx, MaxSDU: r.MaxSDU, Reliable: d.Reliable}
	c.start(socketLink{s})
	n.track(c)
	go c.readSession(s, address)
	return c, nil
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
			switch {
			case err != nil:
				c.ended(err)
			case info.Normal:
				c.ended(errEOF)
			default:
				c.ended(&CallError{Op: "call", Dest: dest, Status: statusNamed(info.Status), StatusText: info.Status,
					Cause: causeOf(info.Cause), Text: info.Text})
			}
			return
		}
	}
}

// --- point-to-multipoint ---

// MultiConn is a point-to-multipoint call this end made: what it writes
// goes to every leaf (its Read gets nothing: leaves do not send). Leaves
// are added and dropped while it is up.
type MultiConn struct {
	*Conn
	h *vcHandler
}

// Party is one leaf of a MultiConn.
type Party struct{ p *clientcore.Party }

// Name is the party's handle on this node ("party#9").
func (p *Party) Name() string { return p.p.Name() }

// Dest is the leaf's address ("node/service").
func (p *Party) Dest() string { return p.p.Dest() }

// DialMulti makes a point-to-multipoint call to dests[0], then adds the
// other dests as leaves; it fails if any leaf cannot be added (the call
// is closed then). Embedded Networks only.
func (d *Dialer) DialMulti(ctx context.Context, dests ...string) (*MultiConn, error) {
	if len(dests) == 0 {
		return nil, errors.New("vcnet: DialMulti needs at least one destination")
	}
	if d.Network == nil || d.Network.core == nil {
		return nil, errors.New("vcnet: DialMulti needs an embedded Network (vcnet.ForNode or vcnet.Embedded)")
	}
	node, svc, ok := strings.Cut(dests[0], "/")
	if !ok || node == "" || svc == "" {
		return nil, &net.OpError{Op: "dial", Net: Net, Err: fmt.Errorf("vcnet: address %q, want node/service", dests[0])}
	}
	c, err := d.dialEmbedded(ctx, dests[0], Addr{Node: node, Service: svc}, true)
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

// FirstParty is the leaf the call was made to.
func (m *MultiConn) FirstParty() *Party { return &Party{m.h.v.FirstParty()} }

// AddParty adds dest as a leaf (NdisClAddParty) and waits until it is
// added; a leaf the network refuses is a *CallError.
func (m *MultiConn) AddParty(ctx context.Context, dest string) (*Party, error) {
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
		return &Party{r.p}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// DropParty drops leaf p (NdisClDropParty) and waits until it is dropped.
// The last leaf is not dropped: Close the call instead.
func (m *MultiConn) DropParty(ctx context.Context, p *Party) error {
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
