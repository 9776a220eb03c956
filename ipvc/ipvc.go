// Package ipvc carries IP over condis VCs: a TUN interface whose packets
// ride on-demand signalled calls, one VC per destination node, in the
// spirit of Classical IP over ATM (RFC 2225, Windows' atmarpc) with
// switched VCs.
//
// A node with an [ip] section ([Config]) gets an interface (condis0 by
// default) with its address, and a route on it for every prefix of its
// [[ip.route]] tables. A packet for a prefix routed to node N goes over a
// datagram VC to N's "ip" service ([Service]):
//
//   - The first packet for N sets up the call (with the route's flowspec,
//     both directions); up to QueueLen packets wait while it is set up,
//     more are dropped and counted (Stats.QueueDrops).
//   - If the call fails, the waiting packets, and for RefusedHold those
//     that follow, are answered with ICMP destination unreachable from
//     the unreachable address itself (the kernel drops packets that come in
//     from one of its own addresses): "communication administratively prohibited"
//     (ICMPv4 3/13, ICMPv6 1/1) when N refused the call (cause 21 call
//     rejected, 88 incompatible destination: it does not admit this node
//     or offers no "ip" service), "host unreachable" (ICMPv4 3/1, ICMPv6
//     1/3 address unreachable) for every other cause (out of order, no
//     route, timer expiry, resources). Then the next packet tries again.
//   - One IP packet is one SDU. A packet larger than the VC's negotiated
//     MaxSduSize is not sent: the sender gets ICMP fragmentation needed
//     (3/4, IPv4 with DF; without DF it is dropped) or packet too big
//     (ICMPv6 2), with the VC's size as the MTU.
//   - N may call this node as well: an incoming call to "ip" is accepted
//     only from a node this node has a route to, and then carries packets
//     both ways like one this node made. Packets from N are delivered
//     only if their source address is in a prefix routed to N (as
//     WireGuard's AllowedIPs); others are dropped and counted.
//   - A VC that carried no packet, either way, for IdleTimeout is closed.
//     A VC the network closes (a node out of order: DEST_OUT_OF_ORDER) is
//     forgotten, and the next packet sets up a new one.
//   - Without a configured MTU the interface starts at MinMTU and follows
//     the VCs: once they are up it takes the smallest MaxSduSize among
//     them, the largest packet every VC carries.
//
// The VCs are ordinary calls of the node: `condis calls` lists them.
package ipvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Interface is IP over condis on one node: the TUN device, the routes, and
// a VC per destination node.
type Interface struct {
	cfg   Config
	dev   Device
	calls Calls
	log   *slog.Logger
	idle  time.Duration
	qlen  int

	// routes, longest prefix first; read-only after New.
	routes []routeEntry

	mu     sync.Mutex
	peers  map[string]*peer // by node name; one per node that has a route
	closed bool
	mtu    int // the device's MTU as last set

	stats   counters
	wq      writeQueue
	ctx     context.Context // ends at Close: calls being set up give up
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	readErr chan error
}

type routeEntry struct {
	prefix netip.Prefix
	p      *peer
}

// peerPhase is the state of the VCs to one destination node.
//
//	idle --packet--> dialing --connected--> up --last VC closed--> idle
//	dialing --failed--> refused --RefusedHold passed, packet--> dialing
//	idle, refused --incoming call connected--> up
type peerPhase uint8

const (
	peerIdle peerPhase = iota + 1
	peerDialing
	peerUp
	peerRefused
)

func (p peerPhase) String() string {
	return [...]string{"?", "idle", "dialing", "up", "refused"}[p]
}

// peer is a destination node. Fields but the read-only ones are guarded
// by Interface.mu.
type peer struct {
	node     string         // read-only
	fs       ndis.Flowspec  // read-only
	prefixes []netip.Prefix // read-only

	phase      peerPhase
	vcs        []*vc    // connected, in the order they came up: the first carries what is sent
	queue      [][]byte // packets waiting for the call being set up
	dialing    bool     // a Call is in progress (also while an incoming VC came up first)
	refusedAt  time.Time
	refusedWhy Unreachable
}

// vc is one circuit to a peer, and the Receiver of its events.
type vc struct {
	ifc      *Interface
	p        *peer
	incoming bool

	c     Circuit      // set by Up, under Interface.mu
	last  atomic.Int64 // time of the last packet either way, UnixNano
	timer *time.Timer  // idle timer, under Interface.mu
	gone  bool         // Closed ran, under Interface.mu
}

// counters are the Interface's statistics.
type counters struct {
	txPackets, txBytes, rxPackets, rxBytes          atomic.Uint64
	queueDrops, noRoute, spoofed, tooBig            atomic.Uint64
	sendErrors, icmpSent, calls, connected, refused atomic.Uint64
	accepted, rejected, idleClosed, closed          atomic.Uint64
	deviceErrors                                    atomic.Uint64
}

// Stats are the Interface's counters since it started.
type Stats struct {
	TxPackets    uint64 `json:"tx_packets"`    // sent on VCs
	TxBytes      uint64 `json:"tx_bytes"`      // their octets
	RxPackets    uint64 `json:"rx_packets"`    // received on VCs and written to the device
	RxBytes      uint64 `json:"rx_bytes"`      // their octets
	QueueDrops   uint64 `json:"queue_drops"`   // packets dropped: the queue of a call being set up was full
	NoRoute      uint64 `json:"no_route"`      // packets for an address no route covers (dropped, ICMP host unreachable)
	Spoofed      uint64 `json:"spoofed"`       // packets from a node whose source is not routed to it (dropped)
	TooBig       uint64 `json:"too_big"`       // packets larger than their VC carries (dropped, ICMP too big)
	SendErrors   uint64 `json:"send_errors"`   // packets a VC refused (closing, too big)
	ICMPSent     uint64 `json:"icmp_sent"`     // ICMP errors written to the device
	Calls        uint64 `json:"calls"`         // calls made
	Connected    uint64 `json:"connected"`     // calls made that connected
	Refused      uint64 `json:"refused"`       // calls made that failed
	Accepted     uint64 `json:"accepted"`      // incoming calls accepted
	Rejected     uint64 `json:"rejected"`      // incoming calls refused: no route to their node
	IdleClosed   uint64 `json:"idle_closed"`   // VCs closed for idleness
	Closed       uint64 `json:"closed"`        // VCs gone, for any reason
	DeviceErrors uint64 `json:"device_errors"` // packets not written into the device: its write failed, or more than 1024 were waiting
}

// New starts IP over condis on dev with calls: it registers the "ip"
// service and starts reading packets. cfg must pass Check. The device's
// routes and address are the caller's (Open sets them).
func New(cfg Config, dev Device, calls Calls) (*Interface, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ifc := &Interface{
		cfg: cfg, dev: dev, calls: calls, log: log,
		idle: cfg.idleTimeout(), qlen: cfg.queueLen(),
		peers: map[string]*peer{}, mtu: cfg.MTU, readErr: make(chan error, 1),
	}
	ifc.wq.wake = make(chan struct{}, 1)
	if ifc.mtu == 0 {
		ifc.mtu = MinMTU
	}
	for _, r := range cfg.Routes {
		p := ifc.peers[r.Node]
		if p == nil {
			p = &peer{node: r.Node, fs: r.Flowspec, phase: peerIdle}
			ifc.peers[r.Node] = p
		}
		p.prefixes = append(p.prefixes, r.Prefixes...)
		for _, pre := range r.Prefixes {
			ifc.routes = append(ifc.routes, routeEntry{pre, p})
		}
	}
	slices.SortStableFunc(ifc.routes, func(a, b routeEntry) int { return b.prefix.Bits() - a.prefix.Bits() })
	ifc.ctx, ifc.cancel = context.WithCancel(context.Background())
	if err := calls.Listen(ifc.accept); err != nil {
		ifc.cancel()
		return nil, fmt.Errorf("ip: registering the %q service: %w", Service, err)
	}
	ifc.wg.Add(2)
	go ifc.reader()
	go ifc.writer()
	return ifc, nil
}

// Close stops reading, closes every VC and the device. The Calls (and its
// "ip" service) are the caller's to close.
func (ifc *Interface) Close() error {
	ifc.mu.Lock()
	if ifc.closed {
		ifc.mu.Unlock()
		return nil
	}
	ifc.closed = true
	var vcs []*vc
	for _, p := range ifc.peers {
		vcs = append(vcs, p.vcs...)
		p.queue = nil
	}
	ifc.mu.Unlock()
	ifc.cancel()
	for _, v := range vcs {
		v.c.Close()
	}
	ifc.stopWriter()
	err := ifc.dev.Close()
	ifc.wg.Wait()
	return err
}

// Config is the configuration the Interface runs with.
func (ifc *Interface) Config() Config { return ifc.cfg }

// Stats returns the counters.
func (ifc *Interface) Stats() Stats {
	s := &ifc.stats
	return Stats{
		TxPackets: s.txPackets.Load(), TxBytes: s.txBytes.Load(), RxPackets: s.rxPackets.Load(), RxBytes: s.rxBytes.Load(),
		QueueDrops: s.queueDrops.Load(), NoRoute: s.noRoute.Load(), Spoofed: s.spoofed.Load(), TooBig: s.tooBig.Load(),
		SendErrors: s.sendErrors.Load(), ICMPSent: s.icmpSent.Load(), Calls: s.calls.Load(), Connected: s.connected.Load(), Refused: s.refused.Load(),
		Accepted: s.accepted.Load(), Rejected: s.rejected.Load(), IdleClosed: s.idleClosed.Load(), Closed: s.closed.Load(),
		DeviceErrors: s.deviceErrors.Load(),
	}
}

// PeerInfo is the state of the VCs to one destination node.
type PeerInfo struct {
	Node  string   `json:"node"`
	Phase string   `json:"phase"` // idle, dialing, up, refused
	VCs   []string `json:"vcs"`   // the circuits up, as condis calls names them
}

// Peers lists the destination nodes, in name order.
func (ifc *Interface) Peers() []PeerInfo {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	var out []PeerInfo
	for _, p := range ifc.peers {
		pi := PeerInfo{Node: p.node, Phase: p.phase.String()}
		for _, v := range p.vcs {
			pi.VCs = append(pi.VCs, v.c.String())
		}
		out = append(out, pi)
	}
	slices.SortFunc(out, func(a, b PeerInfo) int {
		if a.Node < b.Node {
			return -1
		}
		if a.Node > b.Node {
			return 1
		}
		return 0
	})
	return out
}

// ReadErr delivers the error that stopped the reader if the device failed
// (not when Close closed it): IP over condis has stopped.
func (ifc *Interface) ReadErr() <-chan error { return ifc.readErr }

// lookup is the peer whose route holds dst, longest prefix first.
func (ifc *Interface) lookup(dst netip.Addr) *peer {
	for _, r := range ifc.routes {
		if r.prefix.Contains(dst) {
			return r.p
		}
	}
	return nil
}

// --- out: device to VCs ---

func (ifc *Interface) reader() {
	defer ifc.wg.Done()
	n := ifc.dev.BatchSize()
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, offset+MaxMTU)
	}
	sizes := make([]int, n)
	var run sendRun
	for {
		k, err := ifc.dev.Read(bufs, sizes, offset)
		if k > 0 {
			ifc.outputBatch(bufs[:k], sizes[:k], &run)
		}
		if err != nil {
			ifc.mu.Lock()
			closed := ifc.closed
			ifc.mu.Unlock()
			if !closed {
				ifc.log.Error("ip: reading the interface failed; IP over condis stops", "device", ifc.cfg.device(), "err", err)
				ifc.readErr <- err
			}
			return
		}
	}
}

// sendRun is consecutive packets of one Read batch bound for the same VC:
// they go to it in one Send, one list (NdisCoSendNetBufferLists) per run
// rather than per packet. The packets are copied into one slab per batch
// (Send keeps what it is given).
type sendRun struct {
	v    *vc
	pkts [][]byte
	slab []byte
}

// outputBatch sends the packets of one Read (each valid until it returns).
func (ifc *Interface) outputBatch(bufs [][]byte, sizes []int, run *sendRun) {
	total := 0
	for _, s := range sizes {
		total += s
	}
	run.slab = make([]byte, 0, total)
	for i, b := range bufs {
		pkt := b[offset : offset+sizes[i]]
		v := ifc.output(pkt)
		if v == nil {
			continue
		}
		if max := v.c.MaxSDU(); len(pkt) > max {
			ifc.stats.tooBig.Add(1)
			ifc.icmp(pkt, TooBig, max)
			continue
		}
		if run.v != v {
			ifc.flush(run)
			run.v = v
		}
		at := len(run.slab)
		run.slab = append(run.slab, pkt...)
		run.pkts = append(run.pkts, run.slab[at:len(run.slab):len(run.slab)])
	}
	ifc.flush(run)
	run.slab = nil
}

// flush sends the run's packets on its VC in one Send.
func (ifc *Interface) flush(run *sendRun) {
	if len(run.pkts) == 0 {
		return
	}
	ifc.sendAll(run.v, run.pkts)
	clear(run.pkts)
	run.pkts, run.v = run.pkts[:0], nil
}

// output routes one packet read from the device (valid until it returns):
// it returns the VC it is to be sent on, or nil if it was dealt with
// here (queued for a call being set up, answered with ICMP, dropped).
func (ifc *Interface) output(pkt []byte) *vc {
	_, dst, ok := addrs(pkt)
	if !ok {
		return nil
	}
	p := ifc.lookup(dst)
	if p == nil {
		ifc.stats.noRoute.Add(1)
		ifc.icmp(pkt, HostUnreachable, 0)
		return nil
	}
	ifc.mu.Lock()
	if ifc.closed {
		ifc.mu.Unlock()
		return nil
	}
	if len(p.vcs) > 0 {
		v := p.vcs[0]
		ifc.mu.Unlock()
		return v
	}
	if p.phase == peerRefused {
		if time.Since(p.refusedAt) < RefusedHold {
			why := p.refusedWhy
			ifc.mu.Unlock()
			ifc.icmp(pkt, why, 0)
			return nil
		}
		p.phase = peerIdle
	}
	if len(p.queue) >= ifc.qlen {
		ifc.mu.Unlock()
		ifc.stats.queueDrops.Add(1)
		return nil
	}
	p.queue = append(p.queue, slices.Clone(pkt))
	dial := !p.dialing
	if dial {
		p.dialing = true
		p.phase = peerDialing
		ifc.wg.Add(1)
	}
	ifc.mu.Unlock()
	if dial {
		go ifc.dial(p)
	}
	return nil
}

// sendAll sends pkts, each no larger than v carries, on v in one Send,
// which keeps them.
func (ifc *Interface) sendAll(v *vc, pkts [][]byte) {
	v.last.Store(time.Now().UnixNano())
	if err := v.c.Send(pkts...); err != nil {
		ifc.stats.sendErrors.Add(uint64(len(pkts)))
		return
	}
	octets := 0
	for _, p := range pkts {
		octets += len(p)
	}
	ifc.stats.txPackets.Add(uint64(len(pkts)))
	ifc.stats.txBytes.Add(uint64(octets))
}

// dial makes the call to p and sends what waited for it, or answers it
// with ICMP.
func (ifc *Interface) dial(p *peer) {
	defer ifc.wg.Done()
	ifc.stats.calls.Add(1)
	v := &vc{ifc: ifc, p: p}
	err := ifc.calls.Call(ifc.ctx, p.node, p.fs, v)
	ifc.mu.Lock()
	p.dialing = false
	if err == nil {
		ifc.mu.Unlock()
		ifc.stats.connected.Add(1)
		return // Up sent the queue
	}
	ifc.stats.refused.Add(1)
	why := HostUnreachable
	var ce *CallError
	if errors.As(err, &ce) && (ce.Cause == uni.CauseCallRejected || ce.Cause == uni.CauseIncompatibleDestination) {
		why = Prohibited
	}
	var queue [][]byte
	if len(p.vcs) == 0 { // no incoming call came up meanwhile
		queue, p.queue = p.queue, nil
		p.phase, p.refusedAt, p.refusedWhy = peerRefused, time.Now(), why
	}
	closed := ifc.closed
	ifc.mu.Unlock()
	if closed {
		return
	}
	ifc.log.Info("ip: call failed; answering its packets with ICMP unreachable", "node", p.node, "err", err, "packets", len(queue))
	for _, pkt := range queue {
		ifc.icmp(pkt, why, 0)
	}
}

// icmp writes the ICMP error about pkt into the device, if one may be
// sent.
func (ifc *Interface) icmp(pkt []byte, why Unreachable, mtu int) {
	m := icmpError(pkt, why, mtu)
	if m == nil {
		return
	}
	ifc.stats.icmpSent.Add(1)
	ifc.write(m)
}

// write queues one packet (copied) for the device writer.
func (ifc *Interface) write(pkt []byte) bool {
	if !ifc.enqueue(pkt) {
		ifc.stats.deviceErrors.Add(1)
		return false
	}
	return true
}

// --- in: VCs to device ---

// accept is asked for each call offered to the "ip" service.
func (ifc *Interface) accept(peerName string) Receiver {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	p := ifc.peers[peerName]
	if p == nil || ifc.closed {
		ifc.stats.rejected.Add(1)
		ifc.log.Info("ip: refused a call from a node with no [[ip.route]]", "node", peerName)
		return nil
	}
	ifc.stats.accepted.Add(1)
	return &vc{ifc: ifc, p: p, incoming: true}
}

// Up: the call is connected. Packets waiting for the peer go out on it.
func (v *vc) Up(c Circuit) {
	ifc, p := v.ifc, v.p
	v.last.Store(time.Now().UnixNano())
	ifc.mu.Lock()
	v.c = c
	if v.gone { // Closed came first
		ifc.mu.Unlock()
		return
	}
	if ifc.closed {
		ifc.mu.Unlock()
		c.Close()
		return
	}
	p.vcs = append(p.vcs, v)
	p.phase = peerUp
	queue := p.queue
	p.queue = nil
	v.timer = time.AfterFunc(ifc.idle, v.idleCheck)
	ifc.followMTULocked()
	ifc.mu.Unlock()
	ifc.log.Info("ip: VC up", "node", p.node, "vc", c.String(), "incoming", v.incoming, "max_sdu", c.MaxSDU(), "queued", len(queue))
	fit := queue[:0]
	for _, pkt := range queue {
		if max := c.MaxSDU(); len(pkt) > max {
			ifc.stats.tooBig.Add(1)
			ifc.icmp(pkt, TooBig, max)
			continue
		}
		fit = append(fit, pkt)
	}
	if len(fit) > 0 {
		ifc.sendAll(v, fit)
	}
}

// Receive writes a packet from the peer into the device, if its source
// is routed to the peer.
func (v *vc) Receive(sdu []byte) {
	ifc := v.ifc
	v.last.Store(time.Now().UnixNano())
	src, _, ok := addrs(sdu)
	if !ok || !v.p.holds(src) {
		ifc.stats.spoofed.Add(1)
		return
	}
	if ifc.write(sdu) {
		ifc.stats.rxPackets.Add(1)
		ifc.stats.rxBytes.Add(uint64(len(sdu)))
	}
}

// holds reports whether a is in a prefix routed to p.
func (p *peer) holds(a netip.Addr) bool {
	for _, pre := range p.prefixes {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// Closed forgets the VC; the next packet for its peer sets up a new one.
func (v *vc) Closed(r CloseReason) {
	ifc, p := v.ifc, v.p
	ifc.mu.Lock()
	v.gone = true
	if v.timer != nil {
		v.timer.Stop()
	}
	if i := slices.Index(p.vcs, v); i >= 0 {
		p.vcs = slices.Delete(p.vcs, i, i+1)
		ifc.stats.closed.Add(1)
	}
	if len(p.vcs) == 0 && p.phase == peerUp {
		p.phase = peerIdle
		if p.dialing {
			p.phase = peerDialing
		}
	}
	ifc.followMTULocked()
	ifc.mu.Unlock()
	name := "-"
	if v.c != nil {
		name = v.c.String()
	}
	ifc.log.Info("ip: VC closed", "node", p.node, "vc", name, "reason", r.String())
}

// idleCheck closes the VC once it has been idle for the idle timeout,
// or re-arms the timer for when it will have been.
func (v *vc) idleCheck() {
	ifc := v.ifc
	ifc.mu.Lock()
	if v.gone || ifc.closed {
		ifc.mu.Unlock()
		return
	}
	quiet := time.Since(time.Unix(0, v.last.Load()))
	if quiet < ifc.idle {
		v.timer.Reset(ifc.idle - quiet)
		ifc.mu.Unlock()
		return
	}
	// Packets for the peer from now on wait for a new call, not for this
	// one, which is closing.
	if i := slices.Index(v.p.vcs, v); i >= 0 {
		v.p.vcs = slices.Delete(v.p.vcs, i, i+1)
		ifc.stats.closed.Add(1)
		if len(v.p.vcs) == 0 && v.p.phase == peerUp {
			v.p.phase = peerIdle
		}
	}
	ifc.mu.Unlock()
	ifc.stats.idleClosed.Add(1)
	ifc.log.Info("ip: closing an idle VC", "node", v.p.node, "vc", v.c.String(), "idle", quiet.Round(time.Millisecond))
	v.c.Close()
}

// followMTULocked sets the device's MTU, unless one is configured, to the
// smallest MaxSduSize of the VCs up (at least MinMTU): the largest packet
// each of them carries.
func (ifc *Interface) followMTULocked() {
	if ifc.cfg.MTU != 0 || ifc.closed {
		return
	}
	m := 0
	for _, p := range ifc.peers {
		for _, v := range p.vcs {
			if s := v.c.MaxSDU(); m == 0 || s < m {
				m = s
			}
		}
	}
	if m == 0 || m == ifc.mtu {
		return
	}
	m = max(m, MinMTU)
	if m == ifc.mtu {
		return
	}
	if err := ifc.dev.SetMTU(m); err != nil {
		ifc.log.Warn("ip: setting the interface's MTU", "mtu", m, "err", err)
		return
	}
	ifc.log.Info("ip: the interface's MTU follows the VCs", "device", ifc.cfg.device(), "mtu", m)
	ifc.mtu = m
}

// MTU is the interface's MTU as last set.
func (ifc *Interface) MTU() int {
	ifc.mu.Lock()
	defer ifc.mu.Unlock()
	return ifc.mtu
}
