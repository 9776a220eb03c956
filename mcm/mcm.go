package mcm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport"
	"github.com/condis-project/condis/uni"
)

// Defaults of Config.
const (
	DefaultMaxShapingDelay = 100 * time.Millisecond
	DefaultRefusalRate     = 2000
	DefaultAdapterName     = "mcm"
)

// Config configures an MCM.
type Config struct {
	// Name is this node's name (pki.ValidName); it must be the name the
	// transport endpoint authenticates. Required.
	Name string
	// AdapterName names the MCM's adapter in the mediator (default "mcm").
	AdapterName string
	// Endpoint reaches the peers. It may be set later with Attach, when the
	// endpoint needs the MCM's Handler to be created.
	Endpoint transport.Endpoint
	// AddressPrefix is the network prefix of this node's ATM End System
	// Address (see Address); zero takes DefaultPrefix. It must pass
	// Prefix.Check. Peers not in PeerPrefixes are taken to share it.
	AddressPrefix q2931.Prefix
	// PeerPrefixes gives the prefix of each peer whose prefix is not
	// AddressPrefix: its address is then Address(PeerPrefixes[name], name).
	PeerPrefixes map[string]q2931.Prefix
	// Timers are the Q.2931 timer values; zero fields take the UNI 3.1
	// defaults (uni.DefaultTimers).
	Timers uni.Timers
	// Authorize decides whether peer may call service on this node. It is
	// called without any MCM lock held and must not block. A refusal
	// answers the SETUP with RELEASE COMPLETE cause 21 (call rejected): the
	// caller's MakeCall fails with NDIS_STATUS_FAILURE. Nil allows every
	// call.
	Authorize func(peer, service string) bool
	// Trusts, if set, decides which authenticated nodes this one deals
	// with at all, both ways: a call to a node it refuses fails at
	// NdisClMakeCall (or NdisClAddParty) with NDIS_STATUS_INVALID_ADDRESS,
	// as for an unknown node, and Authorize should refuse calls from it.
	// It is called without any MCM lock held and must not block. Nil
	// trusts every authenticated node.
	Trusts func(peer string) bool
	// MaxRate, if not zero, is the most a call may ask for in either
	// direction, in bytes/s (TokenRate and PeakBandwidth). Calls and QoS
	// changes asking for more are refused with cause 37 (user cell rate
	// not available): NDIS_STATUS_CELLRATE_NOT_AVAILABLE.
	MaxRate uint32
	// MaxShapingDelay bounds how long a nonconforming SDU is held back to
	// make it conform to the VC's transmit flowspec (default 100 ms). An
	// SDU that would need longer is dropped and completed with
	// NDIS_STATUS_RESOURCES.
	MaxShapingDelay time.Duration
	// DialTimeout bounds one attempt to reach a peer (default 2×T303).
	DialTimeout time.Duration
	// RefusalRate is how many of a peer's calls (SETUP, ADD PARTY) a
	// second this node refuses before it reads that peer's signalling
	// more slowly: at this rate, so that QUIC flow control holds the peer
	// back (default DefaultRefusalRate; a burst of as many is free). A
	// peer that floods the node with calls it will not take costs it
	// little and slows nobody else down.
	RefusalRate int
	// Logger receives link and call events; nil discards them.
	Logger *slog.Logger
	// Tracer receives the MCM's typed events: every Q.2931 message sent
	// and received, links up and down, calls offered, refused,
	// connected, failed and released, and every change of a VC's call
	// state (see package trace). Hooks are
	// called with the MCM's lock held at times: they must not call the
	// MCM or block.
	Tracer trace.Tracer
}

// MCM is a miniport call manager for CO_ADDRESS_FAMILY_Q2931: CoNDIS calls
// on one side, Q.2931 / UNI 3.1 signalling over a transport.Endpoint on the
// other. See the package documentation.
type MCM struct {
	m     *ndis.Mediator
	a     *ndis.Adapter
	cm    callctl.CM          // the NdisMCm* side of a: every call-control request to the mediator goes through it
	moves callctl.Transitions // the one place a VC's call state changes (moveLocked)
	// illegalMoves counts transitions callctl.State does not draw (each
	// is logged); the package's tests fail on any.
	illegalMoves atomic.Uint64
	cfg          Config
	name         string
	addr         uni.AESA
	log          *slog.Logger
	timers       uni.Timers
	started      time.Time       // when New ran: VCs keep times as durations since (vc.madeAt)
	ctx          context.Context // cancelled by Shutdown: dials stop
	cancel       context.CancelFunc
	wg           sync.WaitGroup // dial loops, shapers, kicked drainers, delayed deletions
	spawnMu      sync.Mutex     // guards stopped and wg.Add
	stopped      bool           // Shutdown is waiting for the goroutines: start no more

	// mu guards everything below, every peer's uni.Link, Scheduler and
	// call records, and the call state of every vc and party. It is never
	// held while the mediator or the transport is called.
	mu       sync.Mutex
	turns    turnstile // received signalling: the links take turns (see Messages)
	ep       transport.Endpoint
	peers    map[string]*peer
	saps     map[string]*sap
	afs      map[*af]struct{}
	vcs      vcList
	closing  bool // Shutdown began: no new calls
	detached bool // Shutdown finished: transport events are ignored
	halted   bool // the adapter is removed

	work     []workItem // mediator work, in order (see run); work[next:] is still to do
	next     int
	draining bool
	outbox   []outMsg // signalling to send, in order
	flushing bool
	batch    [][]byte // the flusher's scratch for SendBatch
	// causes are the Q.2931 causes that ended VCs' last calls, from the
	// end of the call until the VC is deleted or calls again (see Cause).
	causes map[*ndis.Vc]uni.Cause

	totals dataTotals // every VC's data counters, summed (Totals)
}

// workItem is one piece of mediator work: f, or else an indication of p's
// uni.Link (kept as data: a closure for each would be an allocation each).
type workItem struct {
	f   func()
	p   *peer
	ind uni.Indication
}

// outMsg is one encoded signalling message for the signalling link to p
// that was up when it was queued.
type outMsg struct {
	sig callctl.SignallingLink
	p   *peer
	b   []byte
}

// New attaches a miniport call manager to m and registers the Q.2931
// address family, version 3.1, from its MiniportInitializeEx
// (NdisMCmRegisterAddressFamilyEx).
func New(m *ndis.Mediator, cfg Config) (*MCM, error) {
	if err := pki.ValidName(cfg.Name); err != nil {
		return nil, fmt.Errorf("mcm: %w", err)
	}
	if cfg.AdapterName == "" {
		cfg.AdapterName = DefaultAdapterName
	}
	if cfg.MaxShapingDelay <= 0 {
		cfg.MaxShapingDelay = DefaultMaxShapingDelay
	}
	if cfg.RefusalRate <= 0 {
		cfg.RefusalRate = DefaultRefusalRate
	}
	if err := cfg.checkAddressing(); err != nil {
		return nil, err
	}
	d := &MCM{m: m, cfg: cfg, name: cfg.Name, addr: q2931.Address(cfg.AddressPrefix, cfg.Name), log: cfg.Logger,
		peers: map[string]*peer{}, saps: map[string]*sap{}, afs: map[*af]struct{}{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.log = d.log.With("node", cfg.Name)
	d.started = time.Now()
	d.timers = uni.NewLink(uni.Config{Timers: cfg.Timers}).Timers()
	d.moves = callctl.Transitions{Node: cfg.Name, Trace: cfg.Tracer.VcState,
		Illegal: func(h *ndis.Vc, from, to callctl.State, why callctl.Reason) {
			name := "(new)"
			if h != nil {
				name = h.String()
			}
			d.log.Error("call control: a VC moved where its state machine has no arrow", "vc", name, "from", from.String(), "to", to.String(), "reason", why.String())
			d.illegalMoves.Add(1)
		}}
	if d.cfg.DialTimeout <= 0 {
		d.cfg.DialTimeout = 2 * d.timers.T303
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	a, st := m.AddMiniportCallManager(cfg.AdapterName, d, d, func(a *ndis.Adapter) ndis.Status {
		d.a, d.cm = a, callctl.MCm{A: a}
		return a.MCmRegisterAddressFamilyEx(q2931.AF)
	})
	if st != ndis.StatusSuccess {
		d.cancel()
		return nil, fmt.Errorf("mcm: attaching the adapter: %w", st)
	}
	d.a, d.cm = a, callctl.MCm{A: a}
	if cfg.Endpoint != nil {
		d.Attach(cfg.Endpoint)
	}
	return d, nil
}

// Adapter returns the MCM's adapter handle, for clients to bind to.
func (d *MCM) Adapter() *ndis.Adapter { return d.a }

// Name returns the node name.
func (d *MCM) Name() string { return d.name }

// Address returns this node's ATM End System Address (see Address).
func (d *MCM) Address() uni.AESA { return d.addr }

// Handler returns the transport.Handler to give the endpoint (quic.Config
// Handler, sim.Network.Endpoint). Links that come up before Attach are
// served too.
func (d *MCM) Handler() transport.Handler { return handler{d} }

// Attach sets the endpoint the MCM dials peers with. Call it once, before
// any call is made to another node.
func (d *MCM) Attach(ep transport.Endpoint) {
	d.mu.Lock()
	d.ep = ep
	d.mu.Unlock()
}

// ---- peers ----

// peer is everything about one other node: its signalling association
// (callctl.Assoc: the uni.Link, which lives across transport
// reconnections so that active calls survive a link loss shorter than
// T309, its timers, the calls on it and the calls waiting for the link)
// and the transport link that carries it.
type peer struct {
	d    *MCM
	name string
	addr uni.AESA // its address (peerAddress), worked out once: it is a SHA-256
	as   *callctl.Assoc[call, setupReq]
	tl   transport.Link // current transport link, nil while down

	// refusals paces the refusals of the peer's calls (Config.RefusalRate);
	// excess counts those over it that its signalling reader has not
	// waited for yet.
	refusals  *rate.Limiter
	excess    int
	throttled bool // logged once: it has been over the rate

	dialing bool

	cur atomic.Pointer[linkRef] // tl, for the data path

	view peerView // what Peers reports: link state, counters, last error
}

type linkRef struct{ l transport.Link }

// current returns the transport link for data, nil while down.
func (p *peer) current() transport.Link {
	if r := p.cur.Load(); r != nil {
		return r.l
	}
	return nil
}

func (p *peer) setLink(l transport.Link) {
	p.tl = l
	if l == nil {
		p.cur.Store(nil)
	} else {
		p.cur.Store(&linkRef{l})
	}
}

// setupReq is a SETUP (or an ADD PARTY opening a new leg) waiting for the
// transport link to the peer.
type setupReq struct {
	v  *vc
	pt *party // nil for a point-to-point call
}

func (d *MCM) peerLocked(name string) *peer {
	p := d.peers[name]
	if p == nil {
		p = &peer{d: d, name: name, refusals: rate.NewLimiter(rate.Limit(d.cfg.RefusalRate), d.cfg.RefusalRate), addr: d.peerAddress(name)}
		p.as = callctl.NewAssoc[call, setupReq](d.name, name, uni.Config{Timers: d.timers}, &d.mu, func(out uni.Output) {
			d.applyLocked(p, out)
			d.kickLocked()
		})
		d.peers[name] = p
	}
	return p
}

// up reports whether signalling can go to the peer now.
func (p *peer) up() bool { return p.tl != nil && p.as.Up() }

// unbindConn frees c's connection identifier, if it has one.
func (p *peer) unbindConn(c *call) {
	if c.hasConn {
		p.as.UnbindConn(c.conn, c)
	}
}

// applyLocked carries out a uni.Output: messages to the outbox (in order),
// timer operations to the Scheduler, indications to the work queue.
func (d *MCM) applyLocked(p *peer, o uni.Output) {
	for _, m := range o.Messages {
		b, err := m.Msg.Encode()
		if err != nil {
			d.log.Error("encoding a Q.2931 message", "peer", p.name, "type", m.Msg.Type.String(), "err", err)
			continue
		}
		if sig := p.as.Signalling(); sig != nil {
			d.outbox = append(d.outbox, outMsg{sig, p, b})
			p.view.out++
			d.traceSignal(p, trace.Out, b)
		}
	}
	p.as.ApplyTimers(o.Timers)
	for _, ind := range o.Indications {
		d.work = append(d.work, workItem{p: p, ind: ind})
	}
}

// debugging reports whether per-call debug logging is on. Such calls are
// guarded with it: their arguments are built (and allocated) before slog
// can see that nothing is logged.
func (d *MCM) debugging() bool { return d.log.Enabled(context.Background(), slog.LevelDebug) }

// enqueueLocked adds mediator work.
func (d *MCM) enqueueLocked(f func()) { d.work = append(d.work, workItem{f: f}) }

// run sends queued signalling and delivers queued mediator work, unless
// another goroutine is doing it already (it will see what was queued). It
// is called after every change, with d.mu not held. Work runs in the order
// it was queued, one item at a time, without d.mu; an item may re-enter
// the MCM (a mediator call reaches a client, whose request reaches our
// handlers), which only queues more.
func (d *MCM) run() {
	d.mu.Lock()
	d.flushLocked()
	if d.draining {
		d.mu.Unlock()
		return
	}
	d.draining = true
	for d.next < len(d.work) {
		w := d.work[d.next]
		d.work[d.next] = workItem{}
		d.next++
		d.mu.Unlock()
		if w.f != nil {
			w.f()
		} else {
			d.indication(w.p, w.ind)
		}
		d.mu.Lock()
		d.flushLocked()
	}
	// Empty: the array is reused, unless a burst made it large.
	d.work, d.next = d.work[:0], 0
	if cap(d.work) > 4096 {
		d.work = nil
	}
	d.draining = false
	d.mu.Unlock()
}

// flushLocked sends the outbox in order, one sender at a time; d.mu is
// held, and released while sending. What has queued up for one link goes
// in one SendBatch when the link takes batches, so that many calls in
// flight cost few stream writes.
func (d *MCM) flushLocked() {
	if d.flushing || len(d.outbox) == 0 {
		return
	}
	d.flushing = true
	for len(d.outbox) > 0 {
		q := d.outbox
		d.outbox = nil
		d.mu.Unlock()
		for i := 0; i < len(q); {
			j := i + 1
			for j < len(q) && q[j].sig == q[i].sig {
				j++
			}
			d.sendSignalling(q[i:j])
			i = j
		}
		clear(q)
		d.mu.Lock()
		if d.outbox == nil && cap(q) <= 1024 {
			d.outbox = q[:0] // reuse the array: it is nobody else's now
		}
	}
	d.flushing = false
}

// sendSignalling sends messages for one link, in order (the flusher).
func (d *MCM) sendSignalling(ms []outMsg) {
	sig := ms[0].sig
	var err error
	if bs, ok := sig.(transport.BatchSender); ok && len(ms) > 1 {
		d.batch = d.batch[:0]
		for _, m := range ms {
			d.batch = append(d.batch, m.b)
		}
		err = bs.SendBatch(d.batch)
		clear(d.batch)
	} else {
		for _, m := range ms {
			if err = sig.Send(m.b); err != nil {
				break
			}
		}
	}
	if err != nil && !errors.Is(err, transport.ErrLinkDown) {
		d.log.Warn("sending signalling", "peer", ms[0].p.name, "err", err)
	}
}

// kickLocked makes sure queued work runs when the caller cannot run it
// (a timer callback holds d.mu).
func (d *MCM) kickLocked() {
	if (d.next < len(d.work) && !d.draining) || (len(d.outbox) > 0 && !d.flushing) {
		d.goLocked(d.run)
	}
}

// goLocked starts f on a goroutine Shutdown waits for.
func (d *MCM) goLocked(f func()) { d.spawn(f) }

// spawn starts f on a goroutine Shutdown waits for, unless Shutdown is
// over; it reports whether it did.
func (d *MCM) spawn(f func()) bool {
	if !d.enter() {
		return false
	}
	go func() {
		defer d.wg.Done()
		f()
	}()
	return true
}

// enter counts the calling goroutine (a timer's) as one Shutdown waits for,
// unless Shutdown is over; then it reports false. If it reports true, the
// caller calls d.wg.Done when it is finished.
func (d *MCM) enter() bool {
	d.spawnMu.Lock()
	defer d.spawnMu.Unlock()
	if d.stopped {
		return false
	}
	d.wg.Add(1)
	return true
}

// ---- transport events ----

type handler struct{ d *MCM }

// LinkUp is a new transport link: the first one to a peer creates its
// uni.Link; a later one re-establishes it (uni LinkUp: T309 stops, kept
// calls are audited with STATUS ENQUIRY). Calls waiting for the link go
// out.
func (h handler) LinkUp(l transport.Link) transport.LinkHandler {
	d := h.d
	d.mu.Lock()
	if d.detached || d.closing {
		d.mu.Unlock()
		l.Close()
		return &transport.LinkFuncs{}
	}
	p := d.peerLocked(l.Peer())
	lh := &linkHandler{d: d, p: p, l: l}
	p.setLink(l)
	d.log.Info("link up", "peer", p.name)
	d.traceLink(p, true, nil)
	p.noteStateLocked()
	calls := p.as.Calls()
	switch p.as.LinkUp(l, l.PeerIncarnation(), func(out uni.Output) { d.applyLocked(p, out) }) {
	case callctl.PeerRestarted:
		d.log.Info("peer restarted: cleared its calls", "peer", p.name, "calls", calls)
	case callctl.LinkBack:
		d.mediaStatusLocked(p, ndis.StatusMediaConnect)
	}
	for _, r := range p.as.TakeWaiting() {
		// A SETUP that cannot be built for this link (say an SDU larger
		// than its datagrams) fails its MakeCall or AddParty now: it was
		// pended, so it must complete (R-GEN-3).
		if st := d.startLegLocked(p, r.v, r.pt); st != ndis.StatusSuccess {
			d.legFailedLocked(r.v, r.pt, st)
		}
	}
	d.mu.Unlock()
	d.run()
	return lh
}

type linkHandler struct {
	d *MCM
	p *peer
	l transport.Link
}

func (h *linkHandler) Message(msg []byte) { h.Messages([][]byte{msg}) }

// turnSize is how many received messages of one link are applied in one
// turn (see turnstile).
const turnSize = 16

// Messages is Message for several messages at once
// (transport.BatchHandler): they are applied in order, turnSize at a time
// under one lock, then the mediator work and the signalling they caused go
// out together. Links take turns (d.turns): a peer that floods gets one
// turn in each round like any other, and while it waits its transport
// stops reading, so QUIC flow control holds it back.
func (h *linkHandler) Messages(msgs [][]byte) {
	d, p := h.d, h.p
	for len(msgs) > 0 {
		if !d.paceRefusals(p) {
			return // shutting down
		}
		n := min(len(msgs), turnSize)
		d.turns.enter()
		d.mu.Lock()
		if p.tl != h.l || d.detached {
			d.mu.Unlock()
			d.turns.leave()
			return
		}
		for _, msg := range msgs[:n] {
			p.view.in++
			d.traceSignal(p, trace.In, msg)
			d.applyLocked(p, p.as.Receive(msg))
		}
		d.mu.Unlock()
		d.run()
		d.turns.leave()
		msgs = msgs[n:]
	}
}

// paceRefusals waits, before a turn of p's signalling, for the refusals
// of p's calls over Config.RefusalRate; it reports false if the MCM is
// shutting down.
func (d *MCM) paceRefusals(p *peer) bool {
	d.mu.Lock()
	n := min(p.excess, d.cfg.RefusalRate)
	p.excess = 0
	d.mu.Unlock()
	if n == 0 {
		return true
	}
	return p.refusals.WaitN(d.ctx, n) == nil
}

// refusedLocked counts a refusal of one of p's calls against
// Config.RefusalRate.
func (d *MCM) refusedLocked(p *peer) {
	if p.refusals.Allow() {
		return
	}
	if p.excess == 0 && !p.throttled {
		d.log.Warn("refusing a peer's calls faster than the refusal rate: reading its signalling more slowly", "peer", p.name, "per_second", d.cfg.RefusalRate)
	}
	p.throttled = true
	p.excess++
}

// turnstile lets goroutines in one at a time, in the order they came: the
// links' signalling readers take turns at the MCM, so that a flood on one
// link delays the others by at most one turn each round. (sync.Mutex lets
// a goroutine that just left barge in again.)
type turnstile struct {
	mu      sync.Mutex
	busy    bool
	waiting []chan struct{}
}

// enter waits for this goroutine's turn.
func (t *turnstile) enter() {
	t.mu.Lock()
	if !t.busy {
		t.busy = true
		t.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	t.waiting = append(t.waiting, ch)
	t.mu.Unlock()
	<-ch // the turn is handed over: busy stays set
}

// leave hands the turn to the longest waiting goroutine.
func (t *turnstile) leave() {
	t.mu.Lock()
	if len(t.waiting) == 0 {
		t.busy = false
		t.mu.Unlock()
		return
	}
	next := t.waiting[0]
	t.waiting[0] = nil
	t.waiting = t.waiting[1:]
	t.mu.Unlock()
	close(next)
}

var _ transport.BatchHandler = (*linkHandler)(nil)

func (h *linkHandler) Datagram(connID uint32, payload []byte) { h.d.receive(h.p, connID, payload) }

func (h *linkHandler) StreamData(connID uint32, sdu []byte) { h.d.receive(h.p, connID, sdu) }

// LinkDown is a SAAL failure: uni clears the calls not active at once and
// keeps the active ones for T309, while the MCM redials.
func (h *linkHandler) LinkDown(err error) {
	d, p := h.d, h.p
	d.mu.Lock()
	if p.tl != h.l {
		d.mu.Unlock()
		return
	}
	p.setLink(nil)
	p.as.Detach()
	d.log.Debug("link down", "peer", p.name, "err", err) // the transport logs it with its reason
	d.traceLink(p, false, err)
	if !d.detached {
		p.as.LinkDown(func(out uni.Output) { d.applyLocked(p, out) })
		if p.as.Calls() > 0 {
			d.mediaStatusLocked(p, ndis.StatusMediaDisconnect)
			d.dialLocked(p)
		}
	}
	p.noteLinkDownLocked(err)
	d.mu.Unlock()
	d.run()
}

// mediaStatusLocked queues a per-VC status indication (MEDIA_DISCONNECT
// when the link to p is lost with calls kept for T309, MEDIA_CONNECT when
// it is back) for every established VC with a call on p.
func (d *MCM) mediaStatusLocked(p *peer, st ndis.Status) {
	seen := map[*vc]bool{}
	var vcs []*vc
	add := func(v *vc) {
		if !seen[v] && v.state() == callctl.Active && v.h != nil {
			seen[v] = true
			vcs = append(vcs, v)
		}
	}
	for _, c := range p.as.CallRecords() {
		if c.out != nil {
			add(c.out)
		} else {
			c.eachIn(add)
		}
	}
	slices.SortFunc(vcs, func(a, b *vc) int { return seqCompare(a.seq, b.seq) })
	for _, v := range vcs {
		d.enqueueLocked(func() {
			d.mu.Lock()
			ok := v.state() == callctl.Active
			d.mu.Unlock()
			if ok {
				d.cm.IndicateStatus(v.h, &ndis.StatusIndication{StatusCode: st})
			}
		})
	}
}

// dialLocked starts (re)dialling p unless a dial is running. It keeps
// trying while calls wait for the link or calls are kept for T309.
func (d *MCM) dialLocked(p *peer) {
	if p.dialing || d.ep == nil || d.closing || d.detached {
		if d.ep == nil && !p.dialing {
			d.failWaitingLocked(p, ndis.StatusDestOutOfOrder)
		}
		return
	}
	p.dialing = true
	p.noteStateLocked()
	ctx, cancel := context.WithCancel(d.ctx)
	ep := d.ep
	d.goLocked(func() {
		defer cancel()
		d.dialLoop(ctx, ep, p)
	})
}

// Connect makes the link to peer in the background if there is none: one
// attempt (redialled only while calls need the link). A node connects to
// its configured peers when it starts, so that a restarted node is heard
// at once: its RESTART, and its new incarnation, make the peers clear the
// calls of the earlier one without waiting for their own timers.
func (d *MCM) Connect(peer string) {
	if pki.ValidName(peer) != nil || peer == d.name {
		return
	}
	d.mu.Lock()
	if p := d.peerLocked(peer); p.tl == nil {
		d.dialLocked(p)
	}
	d.mu.Unlock()
}

func (d *MCM) dialLoop(ctx context.Context, ep transport.Endpoint, p *peer) {
	backoff := 50 * time.Millisecond
	for {
		dctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
		_, err := ep.Dial(dctx, p.name)
		cancel()
		d.mu.Lock()
		if err == nil || p.tl != nil || ctx.Err() != nil {
			if err != nil && p.tl == nil {
				d.failWaitingLocked(p, ndis.StatusFailure)
			}
			p.dialing = false
			p.noteStateLocked()
			d.mu.Unlock()
			d.run()
			return
		}
		d.log.Debug("dial failed", "peer", p.name, "err", err)
		p.noteDialErrorLocked(err, d.cfg.DialTimeout)
		st := ndis.StatusDestOutOfOrder // cause 27
		if errors.Is(err, transport.ErrUnknownPeer) {
			st = ndis.StatusInvalidAddress // cause 1: no such node
		}
		d.failWaitingLocked(p, st)
		if p.as.Calls() == 0 {
			p.dialing = false
			p.noteStateLocked()
			d.mu.Unlock()
			d.run()
			return
		}
		d.mu.Unlock()
		d.run()
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// failWaitingLocked fails the calls and parties waiting for the link.
func (d *MCM) failWaitingLocked(p *peer, st ndis.Status) {
	for _, r := range p.as.TakeWaiting() {
		d.legFailedLocked(r.v, r.pt, st)
	}
}

// ---- shutdown and introspection ----

// Cause returns the Q.2931 cause with which the network ended or refused
// the last call on vc: the cause of the RELEASE or RELEASE COMPLETE
// received, or of the MCM's own clearing (27 once T309 ran out, 102 when
// the peer never answered). It is there from the MakeCallComplete or
// IncomingCloseCall that reports the end until vc is deleted or makes
// another call; ok is false for calls that ended without a cause (a
// local close) or that were never signalled. Tools show it next to the
// NDIS status, which several causes share.
func (d *MCM) Cause(vc *ndis.Vc) (c uni.Cause, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok = d.causes[vc]
	return c, ok
}

// moveLocked moves v to state to, for reason why: the one place a VC's
// call state changes (callctl.Transitions.Move records the reason and
// emits trace.VcState).
func (d *MCM) moveLocked(v *vc, to callctl.State, why callctl.Reason) {
	d.moves.Move(&v.cs, v.h, to, why)
}

// noteCauseLocked records the cause that ended v's call (see Cause).
func (d *MCM) noteCauseLocked(v *vc, c uni.Cause) {
	if v.h == nil || c == 0 {
		return
	}
	if d.causes == nil {
		d.causes = map[*ndis.Vc]uni.Cause{}
	}
	d.causes[v.h] = c
}

// Shutdown takes the MCM down: no new calls are accepted; every call is
// released with normal clearing (cause 16, so peers' clients see
// NDIS_STATUS_SUCCESS); every AF open is withdrawn
// (NdisMCmNotifyCloseAddressFamily), which makes each client close its
// calls, deregister its SAPs and close the AF; once every AF open is closed
// and every VC the MCM created is deleted, and every protocol bound to the
// adapter has unbound (NdisCloseAdapterEx), the adapter is halted
// (MiniportHaltEx: RemoveAdapter). Shutdown waits for all of that, and for
// every goroutine of the MCM, until ctx ends; it then returns ctx's error.
// The transport endpoint is left to its owner; after Shutdown the MCM
// ignores it. Calling Shutdown again waits for the same end; once the
// adapter is halted it returns nil at once.
func (d *MCM) Shutdown(ctx context.Context) error {
	d.mu.Lock()
	first := !d.closing
	d.closing = true
	var afs []*af
	if first {
		for _, p := range d.sortedPeersLocked() {
			d.failWaitingLocked(p, ndis.StatusFailure)
			for _, c := range p.sortedCallsLocked() {
				if st, ok := p.as.Link().CallState(c.id); ok && st != uni.StateReleaseRequest {
					if out, err := p.as.Link().Release(c.id, uni.NewCause(uni.CauseNormalCallClearing)); err == nil {
						d.applyLocked(p, out)
					}
				}
			}
		}
		for v := d.vcs.head; v != nil; v = v.next {
			if v.state() == callctl.Calling && v.c == nil {
				d.legFailedLocked(v, v.initialParty(), ndis.StatusFailure)
			}
		}
		for a := range d.afs {
			afs = append(afs, a)
		}
		sort.Slice(afs, func(i, j int) bool { return afs[i].seq < afs[j].seq })
		for _, a := range afs {
			d.enqueueLocked(func() {
				d.mu.Lock()
				notify := !a.notified && !a.closed
				a.notified = true
				d.mu.Unlock()
				if notify {
					d.cm.NotifyCloseAddressFamily(a.h)
				}
			})
		}
	}
	d.mu.Unlock()
	d.run()

	idle := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		if len(d.afs) > 0 || d.vcs.n > 0 || d.next < len(d.work) || d.draining {
			return false
		}
		for _, p := range d.peers {
			if p.as.Calls() > 0 {
				return false
			}
		}
		return true
	}
	if err := poll(ctx, idle); err != nil {
		return fmt.Errorf("mcm: shutdown: calls, VCs or q2931.AF opens remain: %w", err)
	}
	d.mu.Lock()
	for _, p := range d.peers {
		p.as.StopTimers()
	}
	d.mu.Unlock()
	d.cancel()
	unbound := func() bool {
		for _, a := range d.m.Snapshot().Adapters {
			if a.Name == d.cfg.AdapterName && len(a.Bindings) > 0 {
				return false
			}
		}
		return true
	}
	if err := poll(ctx, unbound); err != nil {
		return fmt.Errorf("mcm: shutdown: protocols still bound to the adapter: %w", err)
	}
	d.mu.Lock()
	d.detached = true
	d.mu.Unlock()
	d.spawnMu.Lock()
	d.stopped = true
	d.spawnMu.Unlock()
	d.wg.Wait()
	d.mu.Lock()
	halted := d.halted
	d.halted = true
	d.mu.Unlock()
	if halted {
		return nil
	}
	if st := d.a.RemoveAdapter(); st != ndis.StatusSuccess {
		return fmt.Errorf("mcm: halting the adapter: %w", st)
	}
	return nil
}

// poll waits until cond holds or ctx ends.
func poll(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

func (d *MCM) sortedPeersLocked() []*peer {
	ps := make([]*peer, 0, len(d.peers))
	for _, p := range d.peers {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	return ps
}

func (p *peer) sortedCallsLocked() []*call {
	cs := p.as.CallRecords()
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].id.Local != cs[j].id.Local {
			return cs[i].id.Local
		}
		return cs[i].id.Ref < cs[j].id.Ref
	})
	return cs
}

// CallInfo describes one VC's call, for `condis calls`.
type CallInfo struct {
	Vc        string // the VC handle, e.g. "vc#7"
	Direction string // "outgoing" (the client made the call) or "incoming"
	State     string // callctl.State: idle, calling, offered, accepted, active, released, closing, closing-released, finishing
	Peer      string // the other node (the first leaf's node for a multipoint call)
	Service   string // the called service
	ConnID    uint32 // connection identifier (VPCI<<16 | VCI) of the first leg
	Reliable  bool
	// Transmit and Receive are the flowspecs in force (the activation
	// parameters), seen from this node.
	Transmit, Receive ndis.Flowspec
	Multipoint        bool
	Parties           []PartyInfo // root of a multipoint call
	Stats             Stats
}

// PartyInfo describes one leaf of a multipoint call.
type PartyInfo struct {
	Node, Service string
	State         string // adding, active, dropping, drop-indicated, closing, gone
	Endpoint      uint16 // endpoint reference on its leg
}

// Stats are a VC's data counters, as the MCM saw them.
type Stats struct {
	TxPackets, TxBytes uint64 // sent (completed with SUCCESS)
	TxDropped          uint64 // completed with a failure: too long, nonconforming, link down, closing
	TxPoliced          uint64 // of TxDropped, nonconforming: dropped by policing (NDIS_STATUS_RESOURCES)
	TxShaped           uint64 // held back by the shaper before going out
	RxPackets, RxBytes uint64 // indicated to the client
	RxDropped          uint64 // arrived when the VC could not take them
}

// Calls returns every VC that carries or carried a call, in creation order.
func (d *MCM) Calls() []CallInfo {
	d.mu.Lock()
	var vs []*vc
	for v := d.vcs.head; v != nil; v = v.next {
		if v.h != nil && v.state() != callctl.Idle {
			vs = append(vs, v)
		}
	}
	slices.SortStableFunc(vs, func(a, b *vc) int { return seqCompare(a.seq, b.seq) })
	out := make([]CallInfo, 0, len(vs))
	for _, v := range vs {
		ci := CallInfo{Vc: v.h.String(), Direction: "outgoing", State: v.state().String(), Service: v.service.String(),
			Reliable: v.reliable, Multipoint: v.multipoint}
		if v.p != nil {
			ci.Peer = v.p.name
		}
		if v.incoming {
			ci.Direction = "incoming"
		}
		if v.act.InForceLocked() {
			ci.Transmit, ci.Receive = v.tx, v.rx
		}
		if c := v.c; c != nil && c.hasConn {
			ci.ConnID = c.conn
		}
		for _, pt := range v.parties() {
			ci.Parties = append(ci.Parties, PartyInfo{Node: pt.node, Service: pt.service, State: pt.state.String(), Endpoint: pt.ep})
		}
		out = append(out, ci)
	}
	d.mu.Unlock()
	for i, v := range vs {
		out[i].Stats = v.data.stats()
	}
	return out
}
