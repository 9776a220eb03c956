// Package sim is an in-process network of condis nodes behind the
// [transport.Endpoint] interface: the twin of transport/quic that tests use
// to run many nodes in one process, with faults on demand and in virtual
// time.
//
// A [Network] holds nodes by name ([Network.Endpoint]); a Dial between two
// of them makes a link at once (no certificates: every node in a Network
// is trusted, and a name can be registered only once at a time). What the
// network does to traffic:
//
//   - signalling is reliable and in order, as on a QUIC stream: each
//     message takes Signal.Delay plus a uniform random part of
//     Signal.Jitter, but never overtakes an earlier one (a slow message
//     holds up those behind it). [Network.DropNth] and [Network.DelayNth]
//     drop or hold up the Nth message matching a predicate (for instance
//     the second SETUP: [MsgType]). Signal.Loss drops messages at random:
//     QUIC never does that, it is there to exercise the Q.2931 timer
//     procedures;
//   - datagrams take Datagram.Delay plus a random part of Datagram.Jitter;
//     a fraction Datagram.Loss is lost; a fraction Datagram.Reorder is held
//     back by Datagram.ReorderDelay more, so later ones overtake it;
//   - reliable VC SDUs travel like signalling (without hooks or loss), in
//     one ordered channel per direction;
//   - [Network.Cut] breaks the path between two nodes abruptly: no close is
//     sent, datagrams are lost, signalling waits. If the cut lasts
//     DetectTimeout, both ends get LinkDown with reason
//     [transport.DownTimeout], as QUIC's idle timeout would do; if
//     [Network.Restore] comes first, the waiting signalling is delivered
//     and the link lives on. While cut, Dial fails with
//     [transport.ErrUnreachable].
//
// Randomness comes from one generator seeded with Config.Seed and drawn in
// the order of the sends, so a test that sends in a fixed order sees the
// same losses, delays and reorderings every run.
//
// Time is the runtime's clock and timers, so under testing/synctest every
// delay, jitter and timeout passes in virtual time: create the Network
// inside the synctest bubble. All callbacks run on the Network's one event
// goroutine, one at a time, in delivery-time order (which the transport
// contract allows and makes runs reproducible); Link.Close,
// Endpoint.Close and Network.Close follow the contract of package
// transport. Sends never block.
package sim

import (
	"container/heap"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/uni"
)

// Defaults.
const (
	DefaultDetectTimeout      = 3 * time.Second // the QUIC transport's default idle timeout
	DefaultMaxDatagramPayload = 1200
)

// SignalConfig shapes signalling (and reliable VC SDUs, except Loss).
type SignalConfig struct {
	Delay  time.Duration // one-way delay
	Jitter time.Duration // plus uniform [0, Jitter); order is kept
	Loss   float64       // probability a message is dropped (not QUIC-like; for Q.2931 timer tests)
}

// DatagramConfig shapes VC datagrams.
type DatagramConfig struct {
	Delay        time.Duration // one-way delay
	Jitter       time.Duration // plus uniform [0, Jitter)
	Loss         float64       // probability a datagram is lost
	Reorder      float64       // probability a datagram is held back by ReorderDelay
	ReorderDelay time.Duration
}

// Config configures a Network.
type Config struct {
	Seed               uint64
	Signal             SignalConfig
	Datagram           DatagramConfig
	DetectTimeout      time.Duration // cut -> LinkDown; zero takes DefaultDetectTimeout
	MaxDatagramPayload int           // zero takes DefaultMaxDatagramPayload
}

// Stats counts what the Network did.
type Stats struct {
	Messages        int // signalling messages sent
	MessagesDropped int // by DropNth hooks and Signal.Loss
	MessagesDelayed int // by DelayNth hooks
	StreamSDUs      int // reliable SDUs sent

	Datagrams          int // datagrams sent
	DatagramsLost      int // lost to Datagram.Loss
	DatagramsReordered int // held back by Datagram.Reorder
	DatagramsCut       int // lost to a cut or to a link going down
	DatagramsDelivered int
}

// Network is an in-process network of nodes.
type Network struct {
	mu        sync.Mutex
	cfg       Config
	rng       *rand.Rand
	q         eventQueue
	seq       uint64
	endpoints map[string]*Endpoint
	links     map[pair]*simLink // links that are not down
	cuts      map[pair]bool
	hooks     []*Hook
	stats     Stats
	stopped   bool
	nodeMax   map[string]int // per-node datagram limits (SetMaxDatagramPayload)
	incs      uint64         // endpoints attached so far: each is a new incarnation

	wake chan struct{}
	done chan struct{}
}

type pair struct{ a, b string } // a < b

func pairOf(x, y string) pair {
	if x < y {
		return pair{x, y}
	}
	return pair{y, x}
}

// New starts a Network; Close stops it.
func New(cfg Config) *Network {
	if cfg.DetectTimeout <= 0 {
		cfg.DetectTimeout = DefaultDetectTimeout
	}
	if cfg.MaxDatagramPayload <= 0 {
		cfg.MaxDatagramPayload = DefaultMaxDatagramPayload
	}
	n := &Network{
		cfg:       cfg,
		rng:       rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		endpoints: make(map[string]*Endpoint),
		links:     make(map[pair]*simLink),
		cuts:      make(map[pair]bool),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	go n.loop()
	return n
}

// SetSignal changes the signalling impairments for messages sent from now on.
func (n *Network) SetSignal(c SignalConfig) {
	n.mu.Lock()
	n.cfg.Signal = c
	n.mu.Unlock()
}

// SetDatagram changes the datagram impairments for datagrams sent from now on.
func (n *Network) SetDatagram(c DatagramConfig) {
	n.mu.Lock()
	n.cfg.Datagram = c
	n.mu.Unlock()
}

// Stats returns the counters so far.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Close closes every Endpoint (as Endpoint.Close does) and stops the event
// goroutine. Must not be called from a callback.
func (n *Network) Close() {
	n.mu.Lock()
	eps := make([]*Endpoint, 0, len(n.endpoints))
	for _, e := range n.endpoints {
		eps = append(eps, e)
	}
	n.mu.Unlock()
	for _, e := range eps {
		e.Close()
	}
	n.mu.Lock()
	if !n.stopped {
		n.stopped = true
		n.kick()
	}
	n.mu.Unlock()
	<-n.done
}

// kick wakes the event goroutine; n.mu is held.
func (n *Network) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Endpoint attaches a node called name, whose events go to h. The name must
// be a valid node name (pki.ValidName) not attached now; a name whose
// Endpoint was closed may attach again (a restarted node).
func (n *Network) Endpoint(name string, h transport.Handler) (*Endpoint, error) {
	if err := pki.ValidName(name); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if h == nil {
		return nil, fmt.Errorf("sim: nil Handler")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil, transport.ErrClosed
	}
	if n.endpoints[name] != nil {
		return nil, fmt.Errorf("sim: node %q is already attached", name)
	}
	n.incs++
	e := &Endpoint{n: n, name: name, inc: n.incs, h: h, sides: make(map[string]*side)}
	n.endpoints[name] = e
	return e, nil
}

// Cut breaks the path between nodes a and b (in both directions) until
// Restore. See the package documentation.
func (n *Network) Cut(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := pairOf(a, b)
	if n.cuts[p] {
		return
	}
	n.cuts[p] = true
	if l := n.links[p]; l != nil {
		l.cut = true
		l.epoch++
		l.detectAt = time.Now().Add(n.cfg.DetectTimeout)
		n.push(&event{at: l.detectAt, kind: evDetect, link: l, epoch: l.epoch})
	}
}

// Restore mends the path between a and b. A link still up delivers the
// signalling that waited, in order.
func (n *Network) Restore(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := pairOf(a, b)
	if !n.cuts[p] {
		return
	}
	delete(n.cuts, p)
	if l := n.links[p]; l != nil && l.cut {
		l.cut = false
		l.epoch++
		now := time.Now()
		for i := range l.held {
			for _, ev := range l.held[i] {
				ev.at = now // keeps its seq, so its place in the order
				heap.Push(&n.q, ev)
			}
			l.held[i] = nil
		}
		n.kick()
	}
}

// push schedules ev; n.mu is held.
func (n *Network) push(ev *event) {
	if ev.seq == 0 {
		n.seq++
		ev.seq = n.seq
	}
	heap.Push(&n.q, ev)
	n.kick()
}

// jitter returns a uniform duration in [0, j); n.mu is held.
func (n *Network) jitter(j time.Duration) time.Duration {
	if j <= 0 {
		return 0
	}
	return time.Duration(n.rng.Int64N(int64(j)))
}

// Endpoint is one node attached to a Network; it implements
// transport.Endpoint.
type Endpoint struct {
	n      *Network
	name   string
	inc    uint64 // incarnation: a node attached again (restarted) gets a new one
	h      transport.Handler
	closed bool
	sides  map[string]*side // peer -> this node's side of the current link (not down)
	last   map[string]*side // peer -> this node's side of the latest link
}

var _ transport.Endpoint = (*Endpoint)(nil)

// Name returns the node's name.
func (e *Endpoint) Name() string { return e.name }

// Dial returns the link to peer, making it if there is none. See
// transport.Endpoint.
func (e *Endpoint) Dial(ctx context.Context, peer string) (transport.Link, error) {
	n := e.n
	n.mu.Lock()
	if e.closed {
		n.mu.Unlock()
		return nil, transport.ErrClosed
	}
	pe := n.endpoints[peer]
	if pe == nil || pe == e {
		n.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", transport.ErrUnknownPeer, peer)
	}
	p := pairOf(e.name, peer)
	if n.links[p] == nil {
		if n.cuts[p] {
			n.mu.Unlock()
			return nil, fmt.Errorf("%w: %q (path cut)", transport.ErrUnreachable, peer)
		}
		n.newLink(e, pe)
	}
	s := e.sides[peer]
	n.mu.Unlock()
	select {
	case <-s.upDone:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !s.upDelivered || s.l.down {
		return nil, s.downErr
	}
	return s, nil
}

// newLink makes a link from dialler d to acceptor a and schedules the
// LinkUps: the acceptor's when the HELLO arrives, the dialler's when the
// answer does. n.mu is held.
func (n *Network) newLink(d, a *Endpoint) *simLink {
	l := &simLink{n: n}
	now := time.Now()
	for i, ep := range []*Endpoint{d, a} {
		peer := a
		if i == 1 {
			peer = d
		}
		s := &side{l: l, idx: i, ep: ep, peer: peer.name, peerInc: peer.inc, upDone: make(chan struct{}), downDone: make(chan struct{})}
		l.ends[i] = s
		// A new link's LinkUp comes after the previous link's LinkDown.
		if prev := ep.last[peer.name]; prev != nil && !prev.downDelivered {
			s.after = prev.downAt
		}
		if ep.last == nil {
			ep.last = make(map[string]*side)
		}
		ep.last[peer.name] = s
		ep.sides[peer.name] = s
	}
	n.links[pairOf(d.name, a.name)] = l
	hello := n.fifoTime(l.ends[1], now.Add(n.sigDelay()))
	n.push(&event{at: hello, kind: evUp, side: l.ends[1]})
	answer := n.fifoTime(l.ends[0], hello.Add(n.sigDelay()))
	n.push(&event{at: answer, kind: evUp, side: l.ends[0]})
	return l
}

// sigDelay draws one signalling delay; n.mu is held.
func (n *Network) sigDelay() time.Duration {
	return n.cfg.Signal.Delay + n.jitter(n.cfg.Signal.Jitter)
}

// fifoTime returns the delivery time of the next in-order item to s: at, but
// not before anything already scheduled to s. n.mu is held.
func (n *Network) fifoTime(s *side, at time.Time) time.Time {
	if at.Before(s.fifo) {
		at = s.fifo
	}
	if at.Before(s.after) {
		at = s.after
	}
	s.fifo = at
	return at
}

// Close closes every link of the node (each gets its LinkDown before Close
// returns) and detaches it from the Network; the name may attach again.
func (e *Endpoint) Close() error {
	n := e.n
	n.mu.Lock()
	if e.closed {
		n.mu.Unlock()
		return nil
	}
	e.closed = true
	if n.endpoints[e.name] == e {
		delete(n.endpoints, e.name)
	}
	var wait []chan struct{}
	for _, s := range e.sides {
		n.takeDown(s.l, s, transport.DownEndpointClosed)
	}
	for _, s := range e.last {
		wait = append(wait, s.downDone)
	}
	n.mu.Unlock()
	for _, c := range wait {
		<-c
	}
	return nil
}

// takeDown ends link l: the side local (if any) gets LinkDown with reason at
// once; the other side gets DownClosedByPeer after the signalling ahead of
// it, or DownTimeout when the cut would be detected. With no local side (a
// cut detected), both get reason now. n.mu is held.
func (n *Network) takeDown(l *simLink, local *side, reason transport.DownReason) {
	if l.down {
		return
	}
	l.down = true
	delete(n.links, pairOf(l.ends[0].ep.name, l.ends[1].ep.name))
	now := time.Now()
	for _, s := range l.ends {
		if s.ep.sides[s.peer] == s {
			delete(s.ep.sides, s.peer)
		}
		switch {
		case local == nil || s == local:
			n.queueDown(s, now, reason)
		case l.cut:
			n.queueDown(s, l.detectAt, transport.DownTimeout)
		default:
			n.queueDown(s, n.fifoTime(s, now.Add(n.sigDelay())), transport.DownClosedByPeer)
		}
	}
}

// queueDown schedules s's LinkDown; n.mu is held.
func (n *Network) queueDown(s *side, at time.Time, r transport.DownReason) {
	if s.downQueued {
		return
	}
	s.downQueued = true
	s.downAt = at
	s.downErr = &transport.LinkDownError{Peer: s.peer, Reason: r}
	n.push(&event{at: at, kind: evDown, side: s})
}

// simLink is a link between two endpoints; ends[0] dialled.
type simLink struct {
	n        *Network
	ends     [2]*side
	down     bool
	cut      bool
	epoch    int       // changes on every Cut and Restore
	detectAt time.Time // when the current cut is detected
	held     [2][]*event
}

// side is one end of a link: what one node holds. It implements
// transport.Link. Fields are guarded by n.mu.
type side struct {
	l       *simLink
	idx     int
	ep      *Endpoint
	peer    string
	peerInc uint64

	h             transport.LinkHandler
	upDone        chan struct{} // closed when LinkUp returned or was skipped
	downDone      chan struct{} // closed when LinkDown returned or was skipped
	upDelivered   bool          // LinkUp returned
	downQueued    bool          // LinkDown scheduled
	downDelivered bool          // LinkDown handled (called, or skipped as the handler never heard of the link)
	downAt        time.Time
	downErr       *transport.LinkDownError

	fifo  time.Time // delivery time of the last in-order item to this side
	after time.Time // LinkUp not before (the previous link's LinkDown)
}

var _ transport.Link = (*side)(nil)

func (s *side) other() *side { return s.l.ends[1-s.idx] }

func (s *side) Peer() string { return s.peer }

// PeerIncarnation returns the incarnation of the peer's endpoint: it
// changes when the peer's node is attached again (restarted).
func (s *side) PeerIncarnation() uint64 { return s.peerInc }

// deadErr returns the error for a send on s, or nil; n.mu is held. Sends
// fail as soon as the link is down, perhaps a little before this side's
// LinkDown is delivered (as on QUIC).
func (s *side) deadErr() error {
	if s.l.down {
		return s.downErr
	}
	return nil
}

func (s *side) Send(msg []byte) error {
	if err := transport.CheckMessage(msg); err != nil {
		return err
	}
	n := s.l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := s.deadErr(); err != nil {
		return err
	}
	n.stats.Messages++
	data := append([]byte(nil), msg...)
	to := s.other()
	extra := time.Duration(0)
	m := Msg{From: s.ep.name, To: s.peer, Data: data}
	for _, h := range n.hooks {
		if !h.match(m) {
			continue
		}
		h.seen++
		if h.seen != h.nth {
			continue
		}
		h.hit, h.fired = m, true
		if h.drop {
			n.stats.MessagesDropped++
			return nil
		}
		n.stats.MessagesDelayed++
		extra += h.delay
	}
	if n.cfg.Signal.Loss > 0 && n.rng.Float64() < n.cfg.Signal.Loss {
		n.stats.MessagesDropped++
		return nil
	}
	at := n.fifoTime(to, time.Now().Add(n.sigDelay()+extra))
	n.push(&event{at: at, kind: evMsg, side: to, data: data})
	return nil
}

func (s *side) SendDatagram(connID uint32, payload []byte) error {
	n := s.l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if max := n.maxDatagramLocked(s); len(payload) > max {
		return &transport.DatagramTooLargeError{Size: len(payload), Max: max}
	}
	if err := s.deadErr(); err != nil {
		return err
	}
	n.stats.Datagrams++
	if s.l.cut {
		n.stats.DatagramsCut++
		return nil
	}
	c := n.cfg.Datagram
	if c.Loss > 0 && n.rng.Float64() < c.Loss {
		n.stats.DatagramsLost++
		return nil
	}
	d := c.Delay + n.jitter(c.Jitter)
	if c.Reorder > 0 && n.rng.Float64() < c.Reorder {
		d += c.ReorderDelay
		n.stats.DatagramsReordered++
	}
	n.push(&event{at: time.Now().Add(d), kind: evDatagram, side: s.other(), connID: connID, data: append([]byte(nil), payload...)})
	return nil
}

func (s *side) MaxDatagramPayload() int {
	n := s.l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.maxDatagramLocked(s)
}

// maxDatagramLocked is what s may send: its node's limit if one was set,
// else the network's.
func (n *Network) maxDatagramLocked(s *side) int {
	if m, ok := n.nodeMax[s.ep.name]; ok {
		return m
	}
	return n.cfg.MaxDatagramPayload
}

// SetMaxDatagramPayload sets the largest datagram payload node may send,
// overriding Config.MaxDatagramPayload for it: QUIC discovers each
// direction's path MTU on its own, so the two ends of a link may disagree.
func (n *Network) SetMaxDatagramPayload(node string, max int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodeMax == nil {
		n.nodeMax = map[string]int{}
	}
	n.nodeMax[node] = max
}

func (s *side) SendReliable(connID uint32, sdu []byte) error {
	if err := transport.CheckSDU(sdu); err != nil {
		return err
	}
	n := s.l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := s.deadErr(); err != nil {
		return err
	}
	n.stats.StreamSDUs++
	to := s.other()
	at := n.fifoTime(to, time.Now().Add(n.sigDelay()))
	n.push(&event{at: at, kind: evStream, side: to, connID: connID, data: append([]byte(nil), sdu...)})
	return nil
}

// CloseReliable does nothing in the simulation: reliable SDUs of all VCs
// share one ordered channel per direction.
func (s *side) CloseReliable(uint32) error { return nil }

var _ transport.RTTer = (*side)(nil)

// RTT returns twice the configured one-way signalling delay
// (SignalConfig.Delay, without jitter): the round trip the network is set
// to have.
func (s *side) RTT() time.Duration {
	n := s.l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	return 2 * n.cfg.Signal.Delay
}

func (s *side) Close() error {
	n := s.l.n
	n.mu.Lock()
	defer n.mu.Unlock()
	n.takeDown(s.l, s, transport.DownClosedLocally)
	return nil
}

// Events.

type evKind uint8

const (
	evUp evKind = iota + 1
	evMsg
	evStream
	evDatagram
	evDown
	evDetect
)

type event struct {
	at     time.Time
	seq    uint64
	kind   evKind
	side   *side // receiving side
	link   *simLink
	epoch  int
	connID uint32
	data   []byte
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	ev := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return ev
}

// loop is the Network's event goroutine.
func (n *Network) loop() {
	defer close(n.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		n.mu.Lock()
		for !n.stopped && len(n.q) > 0 && !n.q[0].at.After(time.Now()) {
			ev := heap.Pop(&n.q).(*event)
			if f := n.handle(ev); f != nil {
				n.mu.Unlock()
				f()
				n.mu.Lock()
			}
		}
		if n.stopped {
			// Release anyone still waiting on a link that will never
			// come up or go down.
			for _, ev := range n.q {
				if ev.side != nil {
					n.skip(ev.side)
				}
			}
			n.q = nil
			n.mu.Unlock()
			return
		}
		wait := time.Duration(-1)
		if len(n.q) > 0 {
			wait = time.Until(n.q[0].at)
		}
		n.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-n.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// skip gives up on s's pending LinkUp and LinkDown when the Network stops;
// n.mu is held.
func (n *Network) skip(s *side) {
	if s.downDelivered {
		return
	}
	s.downDelivered = true
	if s.downErr == nil {
		s.downErr = &transport.LinkDownError{Peer: s.peer, Reason: transport.DownEndpointClosed}
	}
	if !s.upDelivered {
		close(s.upDone)
	}
	close(s.downDone)
}

// handle decides what to do with a due event, under n.mu, and returns the
// callback to run without it (or nil).
func (n *Network) handle(ev *event) func() {
	s := ev.side
	switch ev.kind {
	case evDetect:
		l := ev.link
		if l.down || !l.cut || l.epoch != ev.epoch {
			return nil
		}
		n.takeDown(l, nil, transport.DownTimeout)
		return nil

	case evUp:
		if s.downDelivered { // went down before it came up: nothing to report
			return nil
		}
		if s.l.cut { // the handshake waits for the path, like signalling
			s.l.held[s.idx] = append(s.l.held[s.idx], ev)
			return nil
		}
		return func() {
			lh := s.ep.h.LinkUp(s)
			if lh == nil {
				lh = &transport.LinkFuncs{}
			}
			n.mu.Lock()
			s.h = lh
			s.upDelivered = true
			close(s.upDone)
			n.mu.Unlock()
		}

	case evDown:
		if s.downDelivered {
			return nil
		}
		s.downDelivered = true
		if !s.upDelivered { // the handler never heard of the link
			close(s.upDone)
			close(s.downDone)
			return nil
		}
		h, err := s.h, s.downErr
		return func() {
			h.LinkDown(err)
			close(s.downDone)
		}

	case evMsg, evStream:
		if s.downDelivered || !s.upDelivered {
			return nil
		}
		if s.l.cut {
			s.l.held[s.idx] = append(s.l.held[s.idx], ev)
			return nil
		}
		h := s.h
		if ev.kind == evMsg {
			return func() { h.Message(ev.data) }
		}
		return func() { h.StreamData(ev.connID, ev.data) }

	case evDatagram:
		if s.downDelivered || !s.upDelivered || s.l.cut {
			n.stats.DatagramsCut++
			return nil
		}
		n.stats.DatagramsDelivered++
		h := s.h
		return func() { h.Datagram(ev.connID, ev.data) }
	}
	return nil
}

// Hooks.

// Msg is a signalling message as hooks see it.
type Msg struct {
	From, To string
	Data     []byte // the whole Q.2931 message
}

// Type returns the Q.2931 message type (octet 6), or 0 for a message too
// short to have one.
func (m Msg) Type() uni.MsgType {
	if len(m.Data) < uni.HeaderLen {
		return 0
	}
	return uni.MsgType(m.Data[5])
}

// Match selects signalling messages.
type Match func(Msg) bool

// MsgType matches messages of Q.2931 type t (the octet at offset 5).
func MsgType(t uni.MsgType) Match { return func(m Msg) bool { return m.Type() == t } }

// From restricts match to messages sent by node.
func From(node string, match Match) Match {
	return func(m Msg) bool { return m.From == node && match(m) }
}

// To restricts match to messages sent to node.
func To(node string, match Match) Match {
	return func(m Msg) bool { return m.To == node && match(m) }
}

// Any matches every message.
func Any(Msg) bool { return true }

// Hook acts on the Nth signalling message a Match selects, counted in the
// order of the Send calls over the whole Network from the hook's creation.
type Hook struct {
	n     *Network
	match Match
	nth   int
	drop  bool
	delay time.Duration

	seen  int
	fired bool
	hit   Msg
}

// DropNth drops the nth (1-based) message that match selects; the sender is
// not told (Send returns nil).
func (n *Network) DropNth(match Match, nth int) *Hook {
	return n.addHook(&Hook{match: match, nth: nth, drop: true})
}

// DelayNth holds up the nth (1-based) message that match selects by d more
// than the network would; as on a stream, the messages sent after it on
// the same link and direction wait behind it.
func (n *Network) DelayNth(match Match, nth int, d time.Duration) *Hook {
	return n.addHook(&Hook{match: match, nth: nth, delay: d})
}

func (n *Network) addHook(h *Hook) *Hook {
	if h.nth < 1 {
		panic("sim: hook for message number < 1")
	}
	h.n = n
	n.mu.Lock()
	n.hooks = append(n.hooks, h)
	n.mu.Unlock()
	return h
}

// Seen returns how many messages the hook's Match has selected so far.
func (h *Hook) Seen() int {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	return h.seen
}

// Hit returns the message the hook acted on, if it has.
func (h *Hook) Hit() (Msg, bool) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	return h.hit, h.fired
}

// Remove stops the hook counting and acting.
func (h *Hook) Remove() {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	for i, x := range h.n.hooks {
		if x == h {
			h.n.hooks = append(h.n.hooks[:i], h.n.hooks[i+1:]...)
			return
		}
	}
}
