// Package clientcore is one CoNDIS client, written once and used by every
// part of condis that makes or takes calls: the node's control socket
// (package node), VCs for applications (package vcnet) and IP over condis.
//
// A [Core] binds to a call manager's adapter through the public ndis API
// only, opens the call manager's address family when it registers it
// (ProtocolCoAfRegisterNotify), and from then on makes calls ([Core.Call],
// [Core.StartCall]), registers SAPs and takes the calls offered on them
// ([Core.Listen], [Core.StartListen]), sends and receives SDUs, adds and
// drops the parties of point-to-multipoint calls and changes a call's QoS.
// It keeps the CoNDIS contract so that its users need not: a call is closed
// only once every send on its VC has completed (R-CLOSE-1);
// ProtocolClIncomingCloseCall is always answered with NdisClCloseCall
// (R-CLOSE-14); every ProtocolClIncomingDropParty with NdisClDropParty
// (R-PTY-14); a multipoint call is closed with its last party after the
// others are dropped (R-CLOSE-4, R-CLOSE-5); the VCs the Core creates are
// deleted once their call is over (R-CLOSE-12); received lists are returned
// before the receive handler returns, their data copied for the VC's
// handler, or lent to a BorrowingHandler only until its Received returns
// (R-DATA-6); a notify-close of the AF
// closes every call, deregisters every SAP and then closes the AF
// (R-AF-19). Every pendable request's outcome is taken exactly once,
// whether it completes at once or later, even before the request returns
// (R-GEN-10).
//
// Concurrency. The mediator's handlers only record what happened, under
// the Core's lock, and queue the follow-up on the Core's worker goroutine,
// which issues every control request (open and close the AF, register and
// deregister SAPs, make, close and delete calls, add and drop parties,
// modify QoS) one at a time. Sends do not go through the worker.
//
// The Core tells its users what happens through a [Handler] per VC and a
// [ListenHandler] per SAP. Their methods that report a change of state are
// called with the Core's lock held, in the order things happened: they must
// not block, and may call only the methods documented as safe there (those
// that just queue work: Close, EndInput, AddParty, DropParty, ModifyQoS,
// Defer, and the accessors that read fields fixed at creation). Received
// and SendsCompleted are called without the lock, on the data path.
package clientcore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/condis-project/condis/internal/statewait"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// CallManager is what a Core needs from the node's call manager: the
// adapter to bind to, the address family to open, and the AF-specific
// encodings of destinations and SAPs. node.CallManager has the same
// methods, so every call manager the node has satisfies it.
//
// The methods are called from any goroutine, never with the Core's lock
// held, and must not block.
type CallManager interface {
	// Adapter is the adapter the Core binds to as a client.
	Adapter() *ndis.Adapter
	// AddressFamily is the address family the Core opens when the call
	// manager registers it (ProtocolCoAfRegisterNotify).
	AddressFamily() ndis.AddressFamily
	// CallParams builds NdisClMakeCall parameters calling dest (as the user
	// wrote it: "node/service") with the caller's transmit and receive
	// flowspecs. The error says, in one line, why dest cannot be called.
	CallParams(dest string, tx, rx ndis.Flowspec, reliable bool) (*ndis.CallParameters, error)
	// ServiceSap builds the CO_SAP that registers service, or says why
	// service is not a valid service name.
	ServiceSap(service string) (*ndis.CoSap, error)
	// Caller names the calling node of an offered call from the parameters
	// of ProtocolClIncomingCall, or "" if they do not say.
	Caller(offered *ndis.CallParameters) string
	// Cause returns the Q.2931 cause behind status st, with which vc's
	// call failed or was closed. It is asked before the VC is deleted.
	Cause(vc *ndis.Vc, st ndis.Status) uni.Cause
}

// ParamsRecycler is implemented by call managers that take back the
// parameters CallParams built once the Core is done with them: a
// point-to-point NdisClMakeCall's, after its MakeCall has completed (NDIS
// returns them to the client then). A busy node otherwise leaves a set
// behind per call.
type ParamsRecycler interface {
	RecycleCallParams(*ndis.CallParameters)
}

// DeferredWork is implemented by call managers whose deferred work runs
// only when asked (the in-memory MCM's Loop). The Core calls RunDeferred on
// its worker after each request it makes and whenever it is woken, never
// from a handler and never while a request of its own is in progress.
type DeferredWork interface {
	RunDeferred()
}

// Options configure a Core.
type Options struct {
	// Name is the name the Core binds with (ndis.Mediator.BindAdapter), and
	// the prefix of its errors; default "client".
	Name string
	// Logger receives the Core's problems, at Warn; nil discards.
	Logger *slog.Logger
	// Withdrawn, if set, is called on the Core's worker when the call
	// manager withdraws its address family, before the Core closes the
	// calls and SAPs on it. It may call any method of the Core.
	Withdrawn func()
}

// Core is one CoNDIS client bound to one call manager's adapter. See the
// package documentation. All its methods are safe for concurrent use.
type Core struct {
	cm        CallManager
	deferred  func()
	log       *slog.Logger
	name      string
	withdrawn func()

	b *ndis.Binding // set in BindAdapter's bind function, then read-only

	mu       sync.Mutex
	changes  statewait.Changes // wakes await when the state changes
	af       afState
	vcs      []*VC             // every VC the Core has a context for, each at its VC.at
	flows    *Flows            // the flowspecs last granted or offered: calls with the same share them
	offer    Offer             // what ProtocolClIncomingCall tells Offered
	peerAddr string            // the "peer/service" of the call last taken: the next from there shares it
	saps     map[*SAP]struct{} // SAPs started and not yet ended
	starting atomic.Int64      // calls and listens queued for the worker, not yet started
	down     bool              // Shutdown has begun
	unbound  bool
	withdrew bool // the call manager withdrew the AF (and has not offered it again)

	asked atomic.Pointer[Flows] // the flowspecs last asked for: calls that ask for the same share them

	wmu   sync.Mutex
	queue []work // what the worker is to do, in order
	spare []work // the worker's last batch, emptied, for queue to reuse
	wake  chan struct{}
	wstop chan struct{}
	wdone chan struct{}
}

// afPhase is the state of the Core's open of the call manager's AF.
//
//	none --notify--> opening --ok--> open --notify-close--> withdrawn --empty--> closing --> none
//	opening --fail--> failed           open --Shutdown, empty--> closing
type afPhase uint8

const (
	afNone afPhase = iota + 1
	afOpening
	afOpen
	afWithdrawn
	afClosing
	afFailed
)

func (p afPhase) String() string {
	return [...]string{"?", "none", "opening", "open", "withdrawn", "closing", "failed"}[p]
}

type afState struct {
	phase  afPhase
	h      *ndis.Af
	status ndis.Status // of a failed open
}

// New binds a Core to cm's adapter as a CoNDIS client and waits, until ctx
// ends, for it to open cm's address family.
func New(ctx context.Context, cm CallManager, opts Options) (*Core, error) {
	if opts.Name == "" {
		opts.Name = "client"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := cm.Adapter()
	if a == nil || a.Mediator() == nil {
		return nil, fmt.Errorf("%s: the call manager has no adapter", opts.Name)
	}
	c := &Core{
		cm: cm, log: opts.Logger, name: opts.Name, deferred: func() {}, withdrawn: opts.Withdrawn,
		af:   afState{phase: afNone},
		saps: map[*SAP]struct{}{},
		wake: make(chan struct{}, 1), wstop: make(chan struct{}), wdone: make(chan struct{}),
	}
	if d, ok := cm.(DeferredWork); ok {
		c.deferred = d.RunDeferred
	}
	go c.worker()
	_, st := a.Mediator().BindAdapter(a, c.name, c, c, func(b *ndis.Binding) ndis.Status {
		c.b = b
		return ndis.StatusSuccess
	})
	if st != ndis.StatusSuccess {
		c.stopWorker()
		return nil, fmt.Errorf("%s: binding to %v: %v", c.name, a, st)
	}
	c.poke()
	err := c.await(ctx, func() bool { return c.af.phase != afNone && c.af.phase != afOpening })
	c.mu.Lock()
	phase, ast := c.af.phase, c.af.status
	c.mu.Unlock()
	if err == nil && phase != afOpen {
		err = fmt.Errorf("%s: opening the address family: %v", c.name, ast)
	}
	if err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10e9)
		cerr := c.Shutdown(sctx)
		cancel()
		if cerr != nil {
			c.log.Warn(c.name+": shutdown after a failed start", "err", cerr)
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%s: the call manager did not open its address family: %w", c.name, err)
		}
		return nil, err
	}
	return c, nil
}

// Name is the name the Core bound with.
func (c *Core) Name() string { return c.name }

// CallManager is the call manager the Core is bound to.
func (c *Core) CallManager() CallManager { return c.cm }

// Shutdown closes every call normally (ReasonShutdown: calls the Core made
// first, then those it took), deregisters every SAP, closes the address
// family and unbinds, and waits for all of that until ctx ends; then it
// returns ctx's error. New calls and SAPs are refused with [ErrShutdown]
// from the moment it is called. It may be called more than once.
func (c *Core) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	first := !c.down
	c.down = true
	c.notifyLocked()
	c.mu.Unlock()
	if first {
		c.post(func() { c.closeAll(ReasonShutdown) })
	}
	err := c.await(ctx, func() bool {
		return len(c.vcs) == 0 && len(c.saps) == 0 && c.starting.Load() == 0 &&
			(c.af.phase == afNone || c.af.phase == afFailed)
	})
	if err == nil {
		c.mu.Lock()
		unbind := !c.unbound
		c.unbound = true
		c.mu.Unlock()
		if unbind {
			if st := c.b.CloseAdapterEx(); st != ndis.StatusSuccess {
				err = fmt.Errorf("%s: unbinding: %v", c.name, st)
			}
		}
	}
	c.stopWorker()
	return err
}

// closeAll closes every call and SAP for why: the calls the Core made
// first, so that a call whose far end is a SAP of this node learns why it
// ends from its own side (worker).
func (c *Core) closeAll(why Reason) {
	c.mu.Lock()
	var out, in []*VC
	for _, v := range c.vcs {
		if v.Incoming() {
			in = append(in, v)
		} else {
			out = append(out, v)
		}
	}
	saps := make([]*SAP, 0, len(c.saps))
	for s := range c.saps {
		saps = append(saps, s)
	}
	// Oldest first: the order users made them in.
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	sort.Slice(in, func(i, j int) bool { return in[i].seq < in[j].seq })
	sort.Slice(saps, func(i, j int) bool { return saps[i].seq < saps[j].seq })
	for _, v := range out {
		c.wantCloseLocked(v, why)
	}
	c.mu.Unlock()
	for _, v := range out {
		c.progress(v)
	}
	for _, s := range saps {
		c.endSap(s, why, true)
	}
	c.mu.Lock()
	for _, v := range in {
		c.wantCloseLocked(v, why) // those of a SAP closed already go with it
	}
	c.mu.Unlock()
	for _, v := range in {
		c.progress(v)
	}
}

// Defer runs f on the Core's worker, after what is queued. f may call any
// method of the Core. Safe to call from a handler.
func (c *Core) Defer(f func()) { c.post(f) }

// --- the worker ---

func (c *Core) worker() {
	defer close(c.wdone)
	for {
		select {
		case <-c.wake:
		case <-c.wstop:
			return
		}
		for {
			// The whole queue at once: what is posted meanwhile goes into
			// the previous batch's slice, and runs after this batch.
			c.wmu.Lock()
			batch := c.queue
			c.queue, c.spare = c.spare[:0], nil
			c.wmu.Unlock()
			if len(batch) == 0 {
				c.wmu.Lock()
				c.spare = batch
				c.wmu.Unlock()
				break
			}
			for i := range batch {
				w := batch[i]
				batch[i] = work{} // let what it holds go
				w.run(c)
				c.deferred()
			}
			c.wmu.Lock()
			if cap(batch) <= maxSpareWork {
				c.spare = batch[:0]
			}
			c.wmu.Unlock()
		}
		c.deferred()
		c.tendAf()
		c.deferred()
	}
}

// work is one thing queued for the worker: f, or the request v's state
// calls for (progress), or v's close for why (closeVc). Queuing v's
// progress or close this way costs no allocation: a node does both for
// every call.
type work struct {
	f   func()
	v   *VC
	fl  *Flows // makeCall: the flowspecs asked for
	op  workOp
	why Reason
}

type workOp uint8

const (
	workFunc workOp = iota
	workProgress
	workClose
	workMakeCall
)

func (w *work) run(c *Core) {
	switch w.op {
	case workProgress:
		c.progress(w.v)
	case workClose:
		c.closeVc(w.v, w.why, nil)
	case workMakeCall:
		c.makeCall(w.v, w.fl)
	default:
		w.f()
	}
}

// maxSpareWork bounds the queue the worker keeps for reuse: a burst does
// not keep its memory for ever.
const maxSpareWork = 4096

// post queues f for the worker. It never blocks.
func (c *Core) post(f func()) { c.postWork(work{f: f}) }

// postProgress queues progress(v) for the worker. It never blocks.
func (c *Core) postProgress(v *VC) { c.postWork(work{v: v, op: workProgress}) }

func (c *Core) postWork(w work) {
	c.wmu.Lock()
	c.queue = append(c.queue, w)
	c.wmu.Unlock()
	c.poke()
}

// poke wakes the worker even with nothing queued: it runs the call
// manager's deferred work and looks at the AF again (tendAf).
func (c *Core) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Core) stopWorker() {
	select {
	case <-c.wstop:
	default:
		close(c.wstop)
	}
	<-c.wdone
}

// addVCLocked adds v to the Core's VCs. A slice with each VC's index in
// it costs a held call 8 octets where a map cost about 30.
func (c *Core) addVCLocked(v *VC) {
	v.at = int32(len(c.vcs))
	c.vcs = append(c.vcs, v)
}

// removeVCLocked removes v from the Core's VCs, if it is there: the last
// one takes its place.
func (c *Core) removeVCLocked(v *VC) {
	i := int(v.at)
	if i >= len(c.vcs) || c.vcs[i] != v {
		return
	}
	last := len(c.vcs) - 1
	c.vcs[i] = c.vcs[last]
	c.vcs[i].at = int32(i)
	c.vcs[last] = nil
	c.vcs = c.vcs[:last]
	if cap(c.vcs) > 64 && len(c.vcs) < cap(c.vcs)/4 {
		// Most of the calls are gone: so is most of their memory.
		c.vcs = append(make([]*VC, 0, 2*len(c.vcs)), c.vcs...)
	}
}

// flowsLocked is the flowspecs of p (R-IN-10 asks for a copy of what is
// kept); nil if it has none. They are never changed in place, so calls
// with the same flowspecs share one copy: most calls of a node have the
// same, and a copy each cost a held call 64 octets.
func (c *Core) flowsLocked(p *ndis.CallParameters) *Flows {
	if p == nil || p.CallMgrParameters == nil {
		return nil
	}
	tx, rx := p.CallMgrParameters.Transmit, p.CallMgrParameters.Receive
	if f := c.flows; f == nil || f.Tx != tx || f.Rx != rx {
		c.flows = &Flows{tx, rx}
	}
	return c.flows
}

// peerAddrLocked is peer+"/"+service, the addr of an incoming call: the
// string of the call taken before if it is the same (most calls a node
// takes come from few peers), so that a held call has none of its own.
func (c *Core) peerAddrLocked(peer, service string) string {
	a := c.peerAddr
	if len(a) == len(peer)+1+len(service) && a[:len(peer)] == peer && a[len(peer)] == '/' && a[len(peer)+1:] == service {
		return a
	}
	c.peerAddr = peer + "/" + service
	return c.peerAddr
}

// notifyLocked wakes everyone waiting in await.
func (c *Core) notifyLocked() { c.changes.NotifyLocked() }

// await waits until cond (called with c.mu held) holds, or ctx ends.
func (c *Core) await(ctx context.Context, cond func() bool) error {
	return c.changes.Await(ctx, &c.mu, cond, c.poke)
}

// --- the address family ---

// openAf opens the call manager's AF (worker).
func (c *Core) openAf() {
	c.mu.Lock()
	if c.down || (c.af.phase != afNone && c.af.phase != afFailed) {
		c.mu.Unlock()
		return
	}
	c.af = afState{phase: afOpening}
	c.withdrew = false
	c.mu.Unlock()
	h, st := c.b.ClOpenAddressFamilyEx(c.cm.AddressFamily(), c)
	if st != ndis.StatusPending {
		c.openAfDone(h, st)
	}
}

func (c *Core) openAfDone(h *ndis.Af, st ndis.Status) {
	c.mu.Lock()
	if c.af.phase == afOpening { // not already settled by an early completion
		if st == ndis.StatusSuccess {
			c.af = afState{phase: afOpen, h: h}
		} else {
			c.af = afState{phase: afFailed, status: st}
		}
	}
	c.notifyLocked()
	c.mu.Unlock()
	c.log.Debug(c.name+": address family", "status", st)
	c.poke() // a Shutdown may be waiting to close it
}

// tendAf closes the AF once it must go (Shutdown, or the call manager's
// notify-close) and nothing is left on it (R-AF-12) (worker).
func (c *Core) tendAf() {
	c.mu.Lock()
	want := c.af.phase == afWithdrawn || (c.down && c.af.phase == afOpen)
	if !want || len(c.saps) > 0 || c.starting.Load() > 0 || !c.afEmptyLocked() {
		c.mu.Unlock()
		return
	}
	h := c.af.h
	c.af.phase = afClosing
	c.mu.Unlock()
	st := c.b.ClCloseAddressFamily(h)
	if st != ndis.StatusPending {
		c.closeAfDone(st)
	}
}

// afEmptyLocked: no VC of ours, and no call on a call manager's VC, is left
// on the AF. Incoming VCs whose call is over are the call manager's to
// delete; it finishes the close of the AF once it has (R-AF-15).
func (c *Core) afEmptyLocked() bool {
	for _, v := range c.vcs {
		if !v.Incoming() || (v.phase != PhaseOffered && v.phase != PhaseClosed && v.phase != PhaseDeleted) {
			return false
		}
	}
	return true
}

func (c *Core) closeAfDone(st ndis.Status) {
	c.mu.Lock()
	if st == ndis.StatusSuccess {
		c.af = afState{phase: afNone}
	} else {
		// NOT_ACCEPTED: the call manager keeps the AF open. Nothing more
		// can be done from here; the Core stops trying.
		c.log.Warn(c.name+": closing the address family", "status", st)
		c.af = afState{phase: afFailed, status: st}
	}
	c.notifyLocked()
	c.mu.Unlock()
}

// markWithdrawn stops new calls and SAPs on the AF at once, before the
// worker gets to the teardown: the mediator refuses them from now on
// (R-AF-19).
func (c *Core) markWithdrawn() {
	c.mu.Lock()
	if c.af.phase == afOpen {
		c.af.phase = afWithdrawn
	}
	c.withdrew = true
	c.notifyLocked()
	c.mu.Unlock()
}

// withdraw closes every call and SAP because the call manager withdrew
// the AF (worker); tendAf closes the AF once they are gone.
func (c *Core) withdraw() {
	c.markWithdrawn()
	if c.withdrawn != nil {
		c.withdrawn()
	}
	c.closeAll(ReasonWithdrawn)
}

// usableAfLocked returns the open AF, or why there is none.
func (c *Core) usableAfLocked() (*ndis.Af, error) {
	switch {
	case c.down:
		return nil, ErrShutdown
	case c.af.phase == afOpen:
		return c.af.h, nil
	case c.af.phase == afWithdrawn || c.withdrew:
		return nil, ErrWithdrawn
	case c.af.phase == afFailed:
		return nil, &AfError{Status: c.af.status}
	}
	return nil, ErrNoAf
}

// String describes the Core's state, for problem reports.
func (c *Core) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := fmt.Sprintf("%s: af %v, down %v, %d SAP(s), %d VC(s), %d starting\n", c.name, c.af.phase, c.down, len(c.saps), len(c.vcs), c.starting.Load())
	for sp := range c.saps {
		s += fmt.Sprintf("  sap %s: phase %d ending %v calls %d\n", sp.service, sp.phase, sp.ending, sp.calls)
	}
	for _, v := range c.vcs {
		s += fmt.Sprintf("  %s incoming %v phase %v sends %d wantClose %v reason %d inputEnded %v\n", v.Name(), v.Incoming(), v.phase, v.sendsOut, v.wantClose, v.reason, v.inputEnded)
	}
	return s
}
