package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport/quic"
)

// Node is one running condis node: the mediator, the Q.2931 miniport call
// manager speaking to the configured peers over QUIC with mutual TLS, and
// (see Control) the local control plane.
type Node struct {
	Config   *Config
	Mediator *ndis.Mediator
	MCM      *mcm.MCM
	Endpoint *quic.Endpoint
}

// StartOptions tune a node beyond its configuration file.
type StartOptions struct {
	Logger *slog.Logger
	// Endpoint overrides transport settings (keepalive, idle and handshake
	// timeouts); Identity, Handler, Resolve and ListenAddr are the node's.
	Endpoint quic.Config
	// MCM overrides call-manager settings (timers, rate limits); Name,
	// Endpoint and Authorize are the node's.
	MCM mcm.Config
	// Trace and OnViolation are handed to the node's mediator (see
	// ndis.Options): every mediator event, and every contract violation.
	Trace       func(ndis.Event)
	OnViolation func(ndis.Violation)
}

// Start brings a node up from its configuration: it loads the identity,
// attaches the miniport call manager (which registers the Q.2931 address
// family), and listens for peers. The [[sap]] allow lists become the call
// manager's access control: a call to a listed service from a peer not on
// its list is refused with cause 21.
func Start(cfg *Config, opts StartOptions) (*Node, error) {
	id, err := cfg.Identity()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := ndis.New(ndis.Options{Name: cfg.Name, Logger: log, Trace: opts.Trace, OnViolation: opts.OnViolation})
	mc := opts.MCM
	mc.Name, mc.Endpoint, mc.Authorize, mc.Logger = cfg.Name, nil, cfg.Authorize, log
	d, err := mcm.New(m, mc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	book := &quic.AddrBook{}
	for _, p := range cfg.Peers {
		addr, err := net.ResolveUDPAddr("udp", p.Address)
		if err != nil {
			d.Shutdown(context.Background())
			return nil, &Error{File: cfg.File, Key: "peer " + p.Name + " address", Problem: err.Error()}
		}
		book.Set(p.Name, addr)
	}
	qc := opts.Endpoint
	qc.Identity, qc.Handler, qc.Resolve, qc.ListenAddr, qc.Logger = id, d.Handler(), book.Resolve, cfg.Listen, log
	ep, err := quic.Listen(qc)
	if err != nil {
		d.Shutdown(context.Background())
		return nil, &Error{File: cfg.File, Key: "listen", Problem: err.Error()}
	}
	d.Attach(ep)
	for _, p := range cfg.Peers {
		d.Connect(p.Name) // a restarted node is heard at once (RESTART)
	}
	log.Info("node up", "node", cfg.Name, "listen", ep.Addr().String(), "peers", len(cfg.Peers))
	return &Node{Config: cfg, Mediator: m, MCM: d, Endpoint: ep}, nil
}

// Authorize is the access control of the [[sap]] tables: a service with an
// allow list may be called only by the peers on it; any other service by
// every authenticated peer.
func (c *Config) Authorize(peer, service string) bool {
	s, ok := c.SAP(service)
	if !ok || s.Allow == nil {
		return true
	}
	return slices.Contains(s.Allow, peer)
}

// Close releases every call with normal clearing (peers see
// NDIS_STATUS_SUCCESS), withdraws the address family, and closes the
// transport.
func (n *Node) Close(ctx context.Context) error {
	err := n.MCM.Shutdown(ctx)
	return errors.Join(err, n.Endpoint.Close())
}
