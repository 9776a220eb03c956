package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport"
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
	// Endpoint, Authorize and the address prefixes are the node's.
	MCM mcm.Config
	// Trace and OnViolation are handed to the node's mediator (see
	// ndis.Options): every mediator event, and every contract violation.
	Trace       func(ndis.Event)
	OnViolation func(ndis.Violation)
	// Tracer receives the call manager's typed events (package trace):
	// Q.2931 messages, links, calls.
	Tracer trace.Tracer
}

// Start brings a node up from its configuration: it loads the identity,
// attaches the miniport call manager (which registers the Q.2931 address
// family, with the node's ATM address), and listens for peers. Trust and
// the [[sap]] allow lists become the call manager's access control
// ([Config.Authorize]): a call from a node trust does not admit, or to a
// listed service from a node not on its list, is refused with cause 21.
// The node logs "node up" with its name, UDP and ATM addresses and trust.
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
	mc.Name, mc.Endpoint, mc.Logger = cfg.Name, nil, log
	mc.Tracer = trace.Join(mc.Tracer, opts.Tracer)
	mc.Trusts = cfg.Trusts
	mc.Authorize = func(peer, service string) bool {
		if !cfg.Trusts(peer) {
			log.Info(`call refused: the caller is not a [[peer]] of this node (trust = "peers")`, "peer", peer, "service", service)
			return false
		}
		return cfg.Authorize(peer, service)
	}
	if cfg.MaxRate != 0 {
		mc.MaxRate = cfg.MaxRate
	}
	mc.AddressPrefix, mc.PeerPrefixes = cfg.prefix(), nil
	for _, p := range cfg.Peers {
		if p.AddressPrefix != (mcm.Prefix{}) {
			if mc.PeerPrefixes == nil {
				mc.PeerPrefixes = make(map[string]mcm.Prefix)
			}
			mc.PeerPrefixes[p.Name] = p.AddressPrefix
		}
	}
	d, err := mcm.New(m, mc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	r := &resolver{cluster: cfg.trust() == TrustCluster}
	for _, p := range cfg.Peers {
		addr, err := net.ResolveUDPAddr("udp", p.Address)
		if err != nil {
			d.Shutdown(context.Background())
			return nil, &Error{File: cfg.File, Key: "peer " + p.Name + " address", Problem: err.Error()}
		}
		r.book.Set(p.Name, addr)
	}
	qc := opts.Endpoint
	qc.Identity, qc.Handler, qc.Resolve, qc.ListenAddr, qc.Logger = id, d.Handler(), r.resolve, cfg.Listen, log
	ep, err := quic.Listen(qc)
	if err != nil {
		d.Shutdown(context.Background())
		return nil, &Error{File: cfg.File, Key: "listen", Problem: err.Error()}
	}
	if a, ok := ep.Addr().(*net.UDPAddr); ok {
		r.port.Store(int32(a.Port))
	}
	d.Attach(ep)
	for _, p := range cfg.Peers {
		d.Connect(p.Name) // a restarted node is heard at once (RESTART)
	}
	log.Info("node up", "node", cfg.Name, "listen", ep.Addr().String(), "address", d.Address().String(),
		"trust", string(cfg.trust()), "peers", len(cfg.Peers))
	return &Node{Config: cfg, Mediator: m, MCM: d, Endpoint: ep}, nil
}

// Authorize is the node's access control: trust ([Config.Trusts]), then
// the [[sap]] tables: a service with an allow list may be called only by
// the nodes on it; any other service by every node trust admits.
func (c *Config) Authorize(peer, service string) bool {
	if !c.Trusts(peer) {
		return false
	}
	s, ok := c.SAP(service)
	if !ok || s.Allow == nil {
		return true
	}
	return slices.Contains(s.Allow, peer)
}

// CallManager is the node's call manager as the control plane uses it:
// destinations are limited to the nodes trust admits ([Config.Trusts]).
func (n *Node) CallManager() MCMCallManager {
	return MCMCallManager{MCM: n.MCM, Known: n.Config.Trusts}
}

// resolver finds a peer's UDP address for the transport: its [[peer]]
// table, or with trust = "cluster" its name (a DNS name) on this node's
// own port.
type resolver struct {
	book    quic.AddrBook
	cluster bool
	port    atomic.Int32 // the port the node listens on, once it does
}

func (r *resolver) resolve(ctx context.Context, peer string) (net.Addr, error) {
	if a, err := r.book.Resolve(ctx, peer); err == nil {
		return a, nil
	}
	if !r.cluster {
		return nil, fmt.Errorf(`%w: %q is not a [[peer]] of this node (trust = "peers")`, transport.ErrUnknownPeer, peer)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", peer)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("%w: %q is not a [[peer]] of this node, and its name does not resolve: %v", transport.ErrUnknownPeer, peer, err)
	}
	ip := ips[0]
	for _, a := range ips { // IPv4 first, as net.ResolveUDPAddr does
		if a.Unmap().Is4() {
			ip = a.Unmap()
			break
		}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(r.port.Load()))), nil
}

// Close releases every call with normal clearing (peers see
// NDIS_STATUS_SUCCESS), withdraws the address family, and closes the
// transport.
func (n *Node) Close(ctx context.Context) error {
	err := n.MCM.Shutdown(ctx)
	return errors.Join(err, n.Endpoint.Close())
}
