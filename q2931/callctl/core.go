package callctl

// Core: the call control between CoNDIS and Q.2931, written once for every
// call manager. core_cm.go is its NDIS side (the ProtocolCm* handlers),
// core_signal.go its Q.2931 side (what the peers' uni.Links indicate),
// core_send.go the outbox and the work queue that carry both out.

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/condis-project/condis/internal/statewait"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// Owner is what the call control needs of the call manager that runs it:
// its records of VCs, its peering (which association reaches a node, the
// link under it), its pacing and its goroutines. Methods named …Locked are
// called with the core's lock held.
type Owner interface {
	// NewVc returns a new VC record r in the owner's own record of a VC
	// (which carries its data path: r.Data must be set).
	NewVc(r Vc) *Vc
	// AssocLocked returns the association with node, made if new.
	AssocLocked(node string) *Assoc
	// DialLocked brings up a link to a's peer, unless one is coming.
	DialLocked(a *Assoc)
	// DatagramLimit is the link to a's peer while it is up (what bounds
	// unreliable SDUs), nil while it is down.
	DatagramLimit(a *Assoc) DatagramLimit
	// PeerAddress is the ATM End System Address of a's peer.
	PeerAddress(a *Assoc) *uni.AESA
	// RefusedLocked counts a refusal of one of a's peer's calls (the
	// owner paces the peer's signalling when they come too fast).
	RefusedLocked(a *Assoc)
	// SentLocked notes message b queued for a's peer (counters, traces).
	// b is valid only until it is sent (its buffer is reused then): copy
	// what you keep, as tracers do (trace.Signal).
	SentLocked(a *Assoc, b []byte)
	// Go runs f on a goroutine the owner's shutdown waits for; false if
	// it is shut down already.
	Go(f func()) bool
}

// Config is what a Core is made with.
type Config struct {
	// Name is this node's name; Address its ATM End System Address.
	Name    string
	Address uni.AESA
	// Policy holds the call manager's admission rules (Authorize, Trusts,
	// MaxRate); the core does not use its addressing.
	Policy
	// Tracer receives call events (trace.Call).
	Tracer trace.Tracer
	// Logger logs; nil discards.
	Logger *slog.Logger
	// Moves is where every VC's state changes.
	Moves Transitions
}

// Core is the call control of one call manager: the AF opens, SAPs and
// VCs, the calls on its peers' associations, and the queues of signalling
// and mediator work. It talks to NDIS only through CM, to peers only
// through their Assoc, to the data path through each VC's DataPath, and
// to its owner through Owner.
//
// Everything is guarded by the owner's lock (the one NewCore is given),
// which is never held while NDIS or a transport is called.
type Core struct {
	// CM is the call-manager side of NDIS the core calls; set before the
	// first request.
	CM CM
	// VCs are every VC the core knows, in creation order; AFs the AF opens
	// not closed yet. Guarded by the lock.
	VCs VCList
	AFs map[*AF]struct{}

	mu      *sync.Mutex
	owner   Owner
	cfg     Config
	log     *slog.Logger
	started time.Time // VCs keep times as durations since (Vc.MadeAt)

	saps    map[string]*SAP
	closing bool   // the call manager is shutting down: no new calls
	flows   *Flows // the flowspecs a VC was last given (setFlowsLocked)

	work     []workItem // mediator work, in order (see Run); work[next:] is still to do
	rx       []received // what indications in work read from their messages (workItem.rx)
	next     int
	draining bool
	outbox   []outMsg // signalling to send, in order
	flushing bool
	batch    [][]byte // the flusher's scratch for SendBatch
	// The encodings of the messages in the outbox, one after the other
	// in outEnc; the flusher takes outEnc with the outbox and gives it
	// back as encSpare once the messages are sent (transports copy what
	// they send, tracers what they keep), so that encoding allocates
	// nothing once the two buffers have grown.
	outEnc, encSpare []byte
	// svcStrings are service names as strings, for traced events
	// (serviceStringLocked).
	svcStrings map[ServiceName]string
	// Storage for the SETUP and CONNECT messages the core builds, reused
	// for each: the uni.Link keeps nothing of them once the Output they
	// are in is applied (ApplyLocked encodes it), all under mu.
	setupMsg   q2931.SetupMessage
	connectMsg ConnectIEs
	// causes are the Q.2931 causes that ended VCs' last calls, from the
	// end of the call until the VC is deleted or calls again (see Cause).
	causes map[*ndis.Vc]uni.Cause

	assocMu sync.Mutex // guards assocs (NewAssoc may run with mu held or not)
	assocs  []*Assoc   // every association NewAssoc made, for ClearAll
}

// NewCore returns the call control of owner, guarded by mu.
func NewCore(owner Owner, mu *sync.Mutex, cfg Config) *Core {
	d := &Core{owner: owner, mu: mu, cfg: cfg, log: cfg.Logger, started: time.Now(),
		AFs: map[*AF]struct{}{}, saps: map[string]*SAP{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return d
}

// NewAssoc returns the association of this node with peer, owned by owner
// (Assoc.Owner); expired applies the Output of its expired uni timers, with
// the lock held.
//
// The association's uni.Link reuses its Output storage
// (uni.Config.ReuseOutputs): every Output of it — expired's, those
// Assoc.LinkUp and Assoc.LinkDown give their apply function, Assoc.Receive's
// — must be carried out with ApplyLocked before the Link's next input.
// ApplyLocked is done with an Output when it returns: it encodes the
// messages, applies the timer operations and copies the indications (whose
// Cause, Traffic and Context are not part of the reused storage) into work
// items.
func (d *Core) NewAssoc(peer string, owner any, cfg uni.Config, expired func(uni.Output)) *Assoc {
	cfg.ReuseOutputs = true
	a := NewAssoc(d.cfg.Name, peer, cfg, d.mu, expired)
	a.Owner, a.core = owner, d
	d.assocMu.Lock()
	d.assocs = append(d.assocs, a)
	d.assocMu.Unlock()
	return a
}

// seqs numbers AFs and VCs in creation order, for stable listings.
var seqs atomic.Uint64

func (d *Core) seq() uint64 { return seqs.Add(1) }

// ClosingLocked reports whether the call manager is shutting down.
func (d *Core) ClosingLocked() bool { return d.closing }

// CloseLocked refuses new calls from now on; it reports whether this was
// the first time.
func (d *Core) CloseLocked() (first bool) {
	first = !d.closing
	d.closing = true
	return first
}

// Later queues f as mediator work and runs the queue; the lock is not
// held.
func (d *Core) Later(f func()) {
	d.mu.Lock()
	d.EnqueueLocked(f)
	d.mu.Unlock()
	d.Run()
}

// debugging reports whether per-call debug logging is on: such calls are
// guarded with it, as their arguments are built before slog sees nothing
// is logged.
func (d *Core) debugging() bool { return d.log.Enabled(context.Background(), slog.LevelDebug) }

// moveLocked moves v to state to, for reason why: the one place a VC's
// call state changes (Transitions.Move records the reason and emits
// trace.VcState).
func (d *Core) moveLocked(v *Vc, to State, why Reason) {
	d.cfg.Moves.Move(&v.CallState, v.Handle, to, why)
}

// Cause returns the Q.2931 cause that ended or refused the last call on
// vc (see mcm.MCM.Cause).
func (d *Core) Cause(vc *ndis.Vc) (c uni.Cause, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok = d.causes[vc]
	return c, ok
}

// noteCauseLocked records the cause that ended v's call (see Cause).
func (d *Core) noteCauseLocked(v *Vc, c uni.Cause) {
	if v.Handle == nil || c == 0 {
		return
	}
	if d.causes == nil {
		d.causes = map[*ndis.Vc]uni.Cause{}
	}
	d.causes[v.Handle] = c
}

// failure turns a status for a call that did not come up into a failure:
// normal clearing before the connect is still a failed setup.
func failure(st ndis.Status) ndis.Status {
	if st == ndis.StatusSuccess {
		return ndis.StatusFailure
	}
	return st
}

// traceCall reports an event of v's call; the lock is not held. A cause
// of 0 is looked up among the causes noted for v.
func (d *Core) traceCall(v *Vc, ev trace.CallEvent, cause uni.Cause, st ndis.Status, byPeer bool) {
	h := d.cfg.Tracer.CallHook()
	if h == nil {
		return
	}
	d.mu.Lock()
	e := d.callEventLocked(v, ev, cause, st, byPeer)
	d.mu.Unlock()
	h(e)
}

// traceCallLocked is traceCall with the lock held.
func (d *Core) traceCallLocked(v *Vc, ev trace.CallEvent, cause uni.Cause, st ndis.Status, byPeer bool) {
	if h := d.cfg.Tracer.CallHook(); h != nil {
		h(d.callEventLocked(v, ev, cause, st, byPeer))
	}
}

// callEventLocked builds the event: v's fields and the causes map are
// guarded by the lock.
func (d *Core) callEventLocked(v *Vc, ev trace.CallEvent, cause uni.Cause, st ndis.Status, byPeer bool) trace.Call {
	e := trace.Call{Time: time.Now(), Node: d.cfg.Name, Service: d.serviceStringLocked(v.Service), Incoming: v.Incoming,
		Event: ev, Cause: cause, Status: st, ByPeer: byPeer}
	if v.Assoc != nil {
		e.Peer = v.Assoc.Peer()
	}
	if v.Call != nil {
		e.Ref = v.Call.ID
	}
	if v.Handle != nil {
		e.VC = v.Handle.String()
		if e.Cause == 0 {
			e.Cause = d.causes[v.Handle]
		}
	}
	if ev == trace.CallConnected && !v.Incoming && v.MadeAt != 0 {
		e.Setup = e.Time.Sub(d.started) - v.MadeAt
	}
	return e
}

// maxServiceStrings bounds the service names serviceStringLocked keeps:
// a node serves and calls few services, and one that sees many (a peer
// calling made-up names) formats the rest each time.
const maxServiceStrings = 64

// serviceStringLocked returns s as a string, kept from the last time for
// the services seen first: each traced event of a call names its service,
// which would otherwise allocate a string each time.
func (d *Core) serviceStringLocked(s ServiceName) string {
	if str, ok := d.svcStrings[s]; ok {
		return str
	}
	str := s.String()
	if len(d.svcStrings) < maxServiceStrings {
		if d.svcStrings == nil {
			d.svcStrings = map[ServiceName]string{}
		}
		d.svcStrings[s] = str
	}
	return str
}

// traceRefused reports an incoming call (id) refused before it had a VC.
func (d *Core) traceRefused(p *Assoc, id uni.CallID, service string, cause uni.Cause) {
	if h := d.cfg.Tracer.CallHook(); h != nil {
		h(trace.Call{Time: time.Now(), Node: d.cfg.Name, Peer: p.Peer(), Service: service, Incoming: true,
			Event: trace.CallRefused, Cause: cause, Ref: id})
	}
}

// FailWaitingLocked fails the calls and parties waiting for the link to
// a's peer with st (the link did not come up).
func (d *Core) FailWaitingLocked(a *Assoc, st ndis.Status) {
	for _, r := range a.TakeWaiting() {
		d.LegFailedLocked(r.VC, r.Party, st)
	}
}

// StartWaitingLocked sends the SETUPs (and ADD PARTYs opening new legs)
// that waited for the link to a's peer, now up. One that cannot be built
// for this link (say an SDU larger than its datagrams) fails its MakeCall
// or AddParty now: it was pended, so it must complete (R-GEN-3).
func (d *Core) StartWaitingLocked(a *Assoc) {
	for _, r := range a.TakeWaiting() {
		if st := d.startLegLocked(a, r.VC, r.Party); st != ndis.StatusSuccess {
			d.LegFailedLocked(r.VC, r.Party, st)
		}
	}
}

// ShutdownLocked begins the call manager's shutdown, the first time it is
// called: no new calls; the calls waiting for a link fail, every call on
// assocs (in that order) is released with normal clearing (cause 16), the
// MakeCalls not yet signalled fail, and every AF open is withdrawn
// (NdisMCmNotifyCloseAddressFamily), in the order the AFs were opened.
// It reports whether this was the first time.
func (d *Core) ShutdownLocked(assocs []*Assoc) (first bool) {
	if d.closing {
		return false
	}
	d.closing = true
	for _, p := range assocs {
		d.FailWaitingLocked(p, ndis.StatusFailure)
		for _, c := range p.sortedCalls() {
			if st, ok := p.Link().CallState(c.ID); ok && st != uni.StateReleaseRequest {
				if out, err := p.Link().Release(c.ID, uni.NewCause(uni.CauseNormalCallClearing)); err == nil {
					d.ApplyLocked(p, out)
				}
			}
		}
	}
	for v := d.VCs.Head; v != nil; v = v.Next() {
		if v.State() == Calling && v.Call == nil {
			d.LegFailedLocked(v, v.InitialParty(), ndis.StatusFailure)
		}
	}
	afs := make([]*AF, 0, len(d.AFs))
	for a := range d.AFs {
		afs = append(afs, a)
	}
	slices.SortFunc(afs, func(a, b *AF) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, a := range afs {
		d.EnqueueLocked(func() {
			d.mu.Lock()
			notify := !a.Notified && !a.Closed
			a.Notified = true
			d.mu.Unlock()
			if notify {
				d.CM.NotifyCloseAddressFamily(a.Handle)
			}
		})
	}
	return true
}

// ClearAll is the call-clearing half of a call manager's Shutdown: it
// begins the shutdown (ShutdownLocked) on every association, in peer name
// order, runs the work it queued, waits until the call control holds
// nothing and no association has a call left, then stops the
// associations' timers. It returns ctx's error if ctx ends first.
func (d *Core) ClearAll(ctx context.Context) error {
	d.assocMu.Lock()
	all := slices.Clone(d.assocs)
	d.assocMu.Unlock()
	slices.SortFunc(all, func(a, b *Assoc) int { return cmp.Compare(a.Peer(), b.Peer()) })
	d.mu.Lock()
	d.ShutdownLocked(all)
	d.mu.Unlock()
	d.Run()
	idle := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !d.EmptyLocked() {
			return false
		}
		for _, a := range all {
			if a.Calls() > 0 {
				return false
			}
		}
		return true
	}
	if err := statewait.Poll(ctx, 2*time.Millisecond, idle); err != nil {
		return err
	}
	d.mu.Lock()
	for _, a := range all {
		a.StopTimers()
	}
	d.mu.Unlock()
	return nil
}

// sortedCalls are a's calls, ours first, each side's by call reference.
func (a *Assoc) sortedCalls() []*Call {
	cs := a.CallRecords()
	slices.SortFunc(cs, func(x, y *Call) int {
		if x.ID.Local != y.ID.Local {
			if x.ID.Local {
				return -1
			}
			return 1
		}
		return cmp.Compare(x.ID.Ref, y.ID.Ref)
	})
	return cs
}

// EmptyLocked reports whether the call control holds nothing any more: no
// AF open, no VC, no mediator work queued or running.
func (d *Core) EmptyLocked() bool {
	return len(d.AFs) == 0 && d.VCs.Len == 0 && d.next >= len(d.work) && !d.draining
}
