package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/condis-project/condis/capture"
	"github.com/condis-project/condis/transport/quic"
)

// linkAddrs finds the UDP addresses of the link between this node and a
// peer, for captures and trace sessions: the peer's is where the node
// dials it (its [[peer]] address; with trust = "cluster" its name on this
// node's port), this node's is its listen address or, when that is a
// wildcard (0.0.0.0, [::]), the address its packets to the peer leave
// from. The addresses of a peer that called in from elsewhere are not what
// its link uses; a capture is not a packet trace.
type linkAddrs struct {
	r  *resolver
	ep atomic.Pointer[quic.Endpoint] // set once the node listens
}

// resolveTimeout bounds a name lookup for a capture (trust = "cluster").
const resolveTimeout = 2 * time.Second

// addrs is a capture.AddrFunc.
func (l *linkAddrs) addrs(peer string) (local, remote netip.AddrPort, ok bool) {
	ep := l.ep.Load()
	if ep == nil {
		return local, remote, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	ra, err := l.r.resolve(ctx, peer)
	if err != nil {
		return local, remote, false
	}
	ru, ok1 := ra.(*net.UDPAddr)
	lu, ok2 := ep.Addr().(*net.UDPAddr)
	if !ok1 || !ok2 {
		return local, remote, false
	}
	remote, local = unmap(ru.AddrPort()), unmap(lu.AddrPort())
	if local.Addr().IsUnspecified() {
		// Connecting a UDP socket sends nothing: it asks the kernel for
		// the route, whose source address it then reports.
		if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(remote)); err == nil {
			src := unmap(c.LocalAddr().(*net.UDPAddr).AddrPort())
			c.Close()
			local = netip.AddrPortFrom(src.Addr(), local.Port())
		}
	}
	return local, remote, true
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

// nodeCapture is the capture a node writes from its start (the capture
// key of its configuration).
type nodeCapture struct {
	f *os.File
	w *capture.Writer

	once sync.Once
	err  error
}

// openCapture creates (or truncates) the capture file of cfg, readable by
// its owner only: Q.2931 messages name every peer and service called.
func openCapture(cfg *Config, addrs capture.AddrFunc) (*nodeCapture, error) {
	f, err := os.OpenFile(cfg.Capture, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, &Error{File: cfg.File, Key: "capture", Problem: fmt.Sprintf("%s: %v", cfg.Capture, err)}
	}
	return &nodeCapture{f: f, w: capture.New(f, cfg.Name, capture.WithAddresses(addrs))}, nil
}

// close writes what is queued and closes the file; it logs messages the
// capture dropped. Closing again returns the same error.
func (c *nodeCapture) close(log *slog.Logger) error {
	c.once.Do(func() { c.err = c.closeOnce(log) })
	return c.err
}

func (c *nodeCapture) closeOnce(log *slog.Logger) error {
	err := c.w.Close()
	if n := c.w.Dropped(); n > 0 {
		log.Warn("capture: messages dropped (the file did not keep up, or could not be written)",
			"file", c.f.Name(), "dropped", n, "written", c.w.Written())
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("capture %s: %w", c.f.Name(), err)
	}
	return nil
}
