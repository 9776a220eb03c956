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

	"github.com/condis-project/condis/cm"
	"github.com/condis-project/condis/ipvc"
	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/metrics"
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/transport/quic"
)

// Node is one running condis node: the mediator, the Q.2931 call manager
// speaking to the configured peers over QUIC with mutual TLS (a miniport
// call manager, or a stand-alone one over a CoNDIS miniport: the config's
// topology), and (see Control) the local control plane.
type Node struct {
	Config   *Config
	Mediator *ndis.Mediator
	// CM is the node's Q.2931 call manager, of either topology: MCM or
	// Split.
	CM Q2931
	// MCM is an integrated node's miniport call manager; nil when split.
	MCM *mcm.MCM
	// Split is a split node's stand-alone call manager and its miniport;
	// nil when integrated.
	Split    *Split
	Endpoint *quic.Endpoint

	metrics *metrics.Server // nil unless the config's metrics key is set
	// Feed hands the node's trace events to `condis trace` sessions
	// ([Node.CallManager] gives it to the Control).
	Feed *TraceFeed

	log     *slog.Logger
	capture *nodeCapture // the capture key's; nil without one
	calls   *callLog     // the call lines of its log; nil if it does not log at info

	ip       *ipvc.Interface // the [ip] section's; nil without one (ip.go)
	ipClient *ipClient
}

// StartOptions tune a node beyond its configuration file.
type StartOptions struct {
	Logger *slog.Logger
	// Endpoint overrides transport settings (keepalive, idle and handshake
	// timeouts); Identity, Handler, Resolve and ListenAddr are the node's.
	Endpoint quic.Config
	// MCM overrides call-manager settings (timers, rate limits); Name,
	// Endpoint, Authorize and the address prefixes are the node's. A
	// split node's call manager takes its Timers and Tracer.
	MCM mcm.Config
	// Miniport overrides a split node's miniport settings (shaping,
	// policing, dial timeout, link speed); its Name is the node's.
	Miniport miniport.Config
	// Trace and OnViolation are handed to the node's mediator (see
	// ndis.Options): every mediator event, and every contract violation.
	Trace       func(ndis.Event)
	OnViolation func(ndis.Violation)
	// Tracer receives the typed events (package trace) of the call
	// manager (Q.2931 messages, links, calls) and of the transport
	// (refused handshakes).
	Tracer trace.Tracer
	// TraceMediator hands the mediator's events to the node's trace feed,
	// for trace sessions (`condis trace`) that draw both layers. Off by
	// default: once the mediator traces, every request and handler costs
	// a lock and an allocation, watched or not.
	TraceMediator bool
}

// Start brings a node up from its configuration: it loads the identity,
// attaches the miniport call manager (which registers the Q.2931 address
// family, with the node's ATM address), and listens for peers. Trust and
// the [[sap]] allow lists become the call manager's access control
// ([Config.Authorize]): a call from a node trust does not admit, or to a
// listed service from a node not on its list, is refused with cause 21.
// The node logs "node up" with its name, UDP and ATM addresses, version and
// trust, and at info one line per call event (see callLog); the transport
// logs links going down and refused handshakes, the call manager links
// coming up. With the metrics key set it serves Prometheus metrics
// (package metrics) there, and logs where. With a capture file configured,
// it writes every Q.2931 message to it (package capture) until Close.
func Start(cfg *Config, opts StartOptions) (*Node, error) {
	id, err := cfg.Identity()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &resolver{cluster: cfg.trust() == TrustCluster}
	for _, p := range cfg.Peers {
		addr, err := net.ResolveUDPAddr("udp", p.Address)
		if err != nil {
			return nil, &Error{File: cfg.File, Key: "peer " + p.Name + " address", Problem: err.Error()}
		}
		r.book.Set(p.Name, addr)
	}
	la := &linkAddrs{r: r}
	feed := NewTraceFeed(la.addrs)
	var nc *nodeCapture
	if cfg.Capture != "" {
		if nc, err = openCapture(cfg, la.addrs); err != nil {
			return nil, err
		}
	}
	calls := newCallLog(log, cfg)
	abandon := func() {
		calls.close()
		if nc != nil {
			nc.close(log)
		}
	}
	ndisTrace := opts.Trace
	if opts.TraceMediator {
		ndisTrace = feed.Mediator
		if t := opts.Trace; t != nil {
			ndisTrace = func(e ndis.Event) { t(e); feed.Mediator(e) }
		}
	}
	m := ndis.New(ndis.Options{Name: cfg.Name, Logger: log, Trace: ndisTrace, OnViolation: opts.OnViolation})
	mc := opts.MCM
	mc.Name, mc.Endpoint, mc.Logger = cfg.Name, nil, log
	mc.Tracer = trace.Join(mc.Tracer, opts.Tracer, feed.Tracer(), calls.tracer())
	if nc != nil {
		mc.Tracer = trace.Join(mc.Tracer, nc.w.Tracer())
	}
	var met *metrics.Metrics
	if cfg.Metrics != "" {
		peers := make([]string, len(cfg.Peers))
		for i, p := range cfg.Peers {
			peers[i] = p.Name
		}
		met = metrics.New(metrics.Options{Peers: peers})
		mc.Tracer = trace.Join(mc.Tracer, met.Tracer())
	}
	if cfg.MaxRate != 0 {
		mc.MaxRate = cfg.MaxRate
	}
	mc.Trusts = cfg.Trusts
	mc.Authorize = cfg.Authorize // a refusal's log line says why (callLog.why)
	mc.AddressPrefix, mc.PeerPrefixes = cfg.prefix(), nil
	for _, p := range cfg.Peers {
		if p.AddressPrefix != (q2931.Prefix{}) {
			if mc.PeerPrefixes == nil {
				mc.PeerPrefixes = make(map[string]q2931.Prefix)
			}
			mc.PeerPrefixes[p.Name] = p.AddressPrefix
		}
	}
	n := &Node{Config: cfg, Mediator: m, Feed: feed, log: log, capture: nc, calls: calls}
	var handler transport.Handler
	var attach func(transport.Endpoint)
	if cfg.topology() == TopologySplit {
		n.Split, err = startSplit(m, mc, opts.Miniport)
		if err == nil {
			n.CM, handler, attach = n.Split, n.Split.Miniport.Handler(), n.Split.Miniport.Attach
		}
	} else {
		n.MCM, err = mcm.New(m, mc)
		if err == nil {
			n.CM, handler, attach = n.MCM, n.MCM.Handler(), n.MCM.Attach
		}
	}
	if err != nil {
		abandon()
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	if met != nil {
		if err := met.Watch(m, n.CM); err != nil {
			n.CM.Shutdown(context.Background())
			abandon()
			return nil, err
		}
		if n.metrics, err = met.Serve(cfg.Metrics); err != nil {
			n.CM.Shutdown(context.Background())
			abandon()
			return nil, &Error{File: cfg.File, Key: "metrics", Problem: err.Error()}
		}
	}
	qc := opts.Endpoint
	qc.Identity, qc.Handler, qc.Resolve, qc.ListenAddr, qc.Logger = id, handler, r.resolve, cfg.Listen, log
	qc.Tracer = trace.Join(qc.Tracer, opts.Tracer, feed.Tracer()) // refused handshakes
	ep, err := quic.Listen(qc)
	if err != nil {
		n.CM.Shutdown(context.Background())
		abandon()
		if n.metrics != nil {
			n.metrics.Close()
		}
		return nil, &Error{File: cfg.File, Key: "listen", Problem: err.Error()}
	}
	if a, ok := ep.Addr().(*net.UDPAddr); ok {
		r.port.Store(int32(a.Port))
	}
	la.ep.Store(ep)
	n.Endpoint = ep
	attach(ep)
	for _, p := range cfg.Peers {
		n.CM.Connect(p.Name) // a restarted node is heard at once (RESTART)
	}
	log.Info("node up", "node", cfg.Name, "listen", ep.Addr().String(), "address", n.CM.Address().String(),
		"version", Version(), "trust", string(cfg.trust()), "topology", string(cfg.topology()), "peers", len(cfg.Peers))
	if n.metrics != nil {
		log.Info("serving metrics", "node", cfg.Name, "url", n.metrics.URL())
	}
	if nc != nil {
		log.Info("capturing Q.2931 messages", "node", cfg.Name, "file", cfg.Capture)
	}
	if err := n.startIP(); err != nil {
		n.Close(context.Background())
		return nil, err
	}
	if met != nil && n.ip != nil {
		if err := met.WatchIP(n.ip); err != nil {
			n.Close(context.Background())
			return nil, err
		}
	}
	return n, nil
}

// routesTo reports whether the [ip] section has a route to node.
func (c *Config) routesTo(node string) bool {
	for _, r := range c.IP.Routes {
		if r.Node == node {
			return true
		}
	}
	return false
}

// MetricsAddr is the TCP address the node serves its metrics on, nil if
// it does not (the configuration has no metrics key).
func (n *Node) MetricsAddr() net.Addr {
	if n.metrics == nil {
		return nil
	}
	return n.metrics.Addr()
}

// Authorize is the node's access control: trust ([Config.Trusts]), then
// the [[sap]] tables: a service with an allow list may be called only by
// the nodes on it; any other service by every node trust admits.
func (c *Config) Authorize(peer, service string) bool {
	if !c.Trusts(peer) {
		return false
	}
	if service == ipvc.Service && c.IP != nil && !c.routesTo(peer) {
		return false // IP over condis takes calls only from the nodes it routes to
	}
	s, ok := c.SAP(service)
	if !ok || s.Allow == nil {
		return true
	}
	return slices.Contains(s.Allow, peer)
}

// CallManager is the node's call manager as the control plane uses it:
// destinations are limited to the nodes trust admits ([Config.Trusts]).
func (n *Node) CallManager() Q2931CallManager {
	return Q2931CallManager{CM: n.CM, IP: n.ip, Known: n.Config.Trusts, Config: n.Config, Feed: n.Feed}
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
// NDIS_STATUS_SUCCESS), withdraws the address family, closes the
// transport, stops serving metrics, and then closes the capture file, once
// it holds every message.
func (n *Node) Close(ctx context.Context) error {
	err := n.stopIP(ctx)
	err = errors.Join(err, n.CM.Shutdown(ctx))
	err = errors.Join(err, n.Endpoint.Close())
	if n.metrics != nil {
		err = errors.Join(err, n.metrics.Close())
	}
	if n.capture != nil {
		err = errors.Join(err, n.capture.close(n.log))
	}
	n.calls.close()
	return err
}

// startSplit brings up a split node's call manager on m: the miniport
// (mpc, named after the node; its medium, the endpoint, comes with
// Attach) and the stand-alone CM bound to it, with what mc says of this
// node (name, prefixes, admission, timers, logger and tracer).
func startSplit(m *ndis.Mediator, mc mcm.Config, mpc miniport.Config) (*Split, error) {
	mpc.Name = mc.Name + "-nic"
	mp, st := miniport.New(m, mpc)
	if st != ndis.StatusSuccess {
		return nil, fmt.Errorf("starting the miniport: %w", st)
	}
	c, err := cm.New(m, cm.Config{Name: mc.Name, Adapter: mp.Adapter(), Policy: mc.Policy, Timers: mc.Timers, RefusalRate: mc.RefusalRate,
		Logger: mc.Logger, Tracer: mc.Tracer})
	if err != nil {
		mp.Halt()
		return nil, err
	}
	return &Split{CM: c, Miniport: mp}, nil
}
