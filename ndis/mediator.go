package ndis

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
)

// VcReusePolicy says whether a VC's creator may start a new call on it after
// its call closed (spec §9.1).
type VcReusePolicy uint8

const (
	// ReusePermissive lets the creator start another call once the close
	// completed with SUCCESS on a deactivated VC (the default). The
	// creator may activate the VC again before the new call, in either
	// order (spec §9.4); a VC whose close completed while it was still
	// active carries no new call until it has been deactivated (R-CLOSE-8).
	ReusePermissive VcReusePolicy = iota
	// ReuseStrict forbids any new call on a VC that has been closed; only
	// deletion is allowed (NDIS_STATUS_CLOSING).
	ReuseStrict
)

// Options configure a Mediator.
type Options struct {
	// Name identifies the mediator (the node) in logs.
	Name string
	// VcReuse is the VC reuse policy of spec §9.1.
	VcReuse VcReusePolicy
	// Logger receives violations at Warn level; nil means no logging.
	Logger *slog.Logger
	// OnViolation is called for every violation, on the goroutine that
	// observed it. A test in strict mode fails here. It must not call into
	// the mediator.
	OnViolation func(Violation)
	// Trace, if set, receives every request, return and handler invocation in
	// order. It must not call into the mediator.
	Trace func(Event)
	// KeepViolations is how many recent violations Violations returns
	// (default 4096); older ones are dropped but still counted, so a
	// misbehaving driver cannot grow a long-running node's memory.
	KeepViolations int
}

// Mediator is one NDIS instance (one node). The zero value is not usable;
// call New.
//
// Its state is locked per object (see the package documentation for the
// lock order): topo guards the topology, each Af, Vc (with its parties) and
// the VC table's shards their own state, and a few leaf locks the rest.
type Mediator struct {
	opts Options

	// topo guards the topology: adapters, their bindings and AF
	// registrations, and the list of AF opens. No call takes it, except the
	// creation of a stand-alone call manager's signalling VC.
	topo     sync.Mutex
	adapters []*Adapter
	afs      afList   // every AF open not yet closed
	retired  []*Af    // closed AF opens that still list VCs (R-AF-15), until those are deleted
	gone     vcTotals // the totals of AF opens and bindings no longer listed

	vcs vcTable // object numbers and call counters

	// earlyMu guards early: the completions that arrived while the
	// responder's handler was still running (opEarly), keyed by their
	// operation. Rare, so an opRec is one byte rather than carrying a
	// pointer each. A parked completion's fields belong to the lock of the
	// object its operation is on; earlyMu guards only the map.
	earlyMu   sync.Mutex
	early     map[*opRec]*earlyCompletion
	earlyFree []*earlyCompletion // records settled and no longer referred to, for reuse (newEarlyLocked)

	// namesMu guards instanceNames: the names given by
	// NdisCoAssignInstanceName, until their VC is deleted (R-VC-13). Few
	// VCs have one; named counts them so deleting a VC skips the lock.
	namesMu       sync.Mutex
	instanceNames map[*Vc]string
	named         atomic.Int32

	// oidMu guards the operation record of every outstanding OID request.
	oidMu sync.Mutex

	vmu        sync.Mutex
	violations []Violation
	vtotal     uint64            // violations ever reported, under vmu
	vbyRule    map[string]uint64 // violations ever reported, by rule ID, under vmu
	seq        uint64            // trace sequence, under vmu
}

// Counters are lifetime totals kept by a Mediator.
type Counters struct {
	VcsCreated, VcsDeleted       uint64
	CallsMade, CallsDispatched   uint64
	CallsClosed                  uint64
	PartiesAdded, PartiesDropped uint64
	SendsForwarded, SendsRefused uint64
	ReceivesIndicated            uint64
	ReceivesDropped              uint64
	Violations                   uint64
}

// New returns a mediator.
func New(opts Options) *Mediator {
	m := &Mediator{opts: opts}
	m.vcs.init()
	return m
}

// newID returns a fresh object number for display. Numbers follow the
// order of creation across every kind of object, as traces, charts and the
// examples in the docs show them (af#3, then vc#4), so they come from one
// counter: an atomic add on a cache line of its own, once per object.
func (m *Mediator) newID() uint64 { return m.vcs.ids.Add(1) }

// report records a violation. It may be called with object locks held;
// OnViolation must not re-enter the mediator.
func (m *Mediator) report(v Violation) {
	m.vmu.Lock()
	m.vtotal++
	if m.vbyRule == nil {
		m.vbyRule = map[string]uint64{}
	}
	m.vbyRule[v.Rule]++
	m.violations = append(m.violations, v)
	if keep := m.keepViolations(); len(m.violations) >= 2*keep {
		// Trim in batches so reporting stays amortized O(1).
		m.violations = append(m.violations[:0], m.violations[len(m.violations)-keep:]...)
	}
	m.vmu.Unlock()
	if m.opts.Logger != nil {
		m.opts.Logger.Warn("CoNDIS contract violation", "node", m.opts.Name, "rule", v.Rule,
			"func", v.Func, "driver", v.Driver, "object", v.Object, "status", v.Status.String(), "detail", v.Detail)
	}
	if m.opts.OnViolation != nil {
		m.opts.OnViolation(v)
	}
}

func (m *Mediator) keepViolations() int {
	if m.opts.KeepViolations > 0 {
		return m.opts.KeepViolations
	}
	return 4096
}

// Violations returns the recent violations (at least the last
// Options.KeepViolations), oldest first. Snapshot().Counters.Violations
// counts every violation ever reported.
func (m *Mediator) Violations() []Violation {
	m.vmu.Lock()
	defer m.vmu.Unlock()
	v := m.violations
	if keep := m.keepViolations(); len(v) > keep {
		v = v[len(v)-keep:]
	}
	return append([]Violation(nil), v...)
}

// ViolationCounts returns how many violations of each rule (by rule ID)
// were ever reported, including those Violations no longer keeps.
func (m *Mediator) ViolationCounts() map[string]uint64 {
	m.vmu.Lock()
	defer m.vmu.Unlock()
	out := make(map[string]uint64, len(m.vbyRule))
	for r, n := range m.vbyRule {
		out[r] = n
	}
	return out
}

// Name is the mediator's name (Options.Name): the node's.
func (m *Mediator) Name() string { return m.opts.Name }

// driver is the identity of a calling or called driver: a *Binding or an *Adapter.
type driver interface {
	driverName() string
}

func nameOf(d driver) string {
	if d == nil {
		return "NDIS"
	}
	return d.driverName()
}

// reject reports a violation and returns st. It is the single exit for
// every refused request, so every refusal carries a rule ID. The caller
// releases its locks first: reporting runs OnViolation and the logger.
func (m *Mediator) reject(st Status, rule, fn string, who driver, obj fmt.Stringer, format string, args ...any) Status {
	m.report(Violation{Rule: rule, Func: fn, Driver: nameOf(who), Object: objName(obj), Status: st, Detail: fmt.Sprintf(format, args...)})
	m.emit(EventRefused, who, fn, obj, st)
	return st
}

// warn reports a driver-side violation for a call that proceeds.
func (m *Mediator) warn(rule, fn string, who driver, obj fmt.Stringer, format string, args ...any) {
	m.report(Violation{Rule: rule, Func: fn, Driver: nameOf(who), Object: objName(obj), Detail: fmt.Sprintf(format, args...)})
}

func objName(o fmt.Stringer) string {
	if o == nil {
		return ""
	}
	switch v := o.(type) {
	case *Vc:
		if v == nil {
			return "vc(nil)"
		}
	case *Af:
		if v == nil {
			return "af(nil)"
		}
	case *Sap:
		if v == nil {
			return "sap(nil)"
		}
	case *Party:
		if v == nil {
			return "party(nil)"
		}
	}
	return o.String()
}

// foreignHandle explains a handle the mediator did not hand out: a zero
// value a driver made itself, or a handle of another mediator (another node
// in the same process).
const foreignHandle = "not a handle of this node's NDIS (forged, or another node's)"

// idName formats an object's name ("vc#7") in one allocation: the string
// itself. Callers outside the mediator (traces, logs) ask for a VC's name on
// every call event.
func idName(prefix string, id uint64) string {
	var b [32]byte // the longest prefix and a 20-digit number fit
	return string(strconv.AppendUint(append(b[:0], prefix...), id, 10))
}

// opState tracks one pendable operation (spec §3.0).
type opState uint8

const (
	opNone   opState = iota // no operation outstanding
	opUpcall                // the responder's handler is running
	opPended                // the handler returned PENDING; completion awaited
	opEarly                 // completed while the handler was still running
)

// opRec is the record of one pendable operation. It lives inside the object
// it concerns so that tracking costs no allocation; only a completion that
// races its handler (rare) allocates the record of what it carried, which the
// mediator keeps (Mediator.early) until the handler returns.
type opRec struct {
	state opState
}

// earlyCompletion is what a completion function carried when it arrived
// while the responder's handler was still running.
type earlyCompletion struct {
	st     Status
	ctx    any // CM party/AF/SAP context
	params *CallParameters

	// A close the call manager indicated after it completed a MakeCall
	// early with SUCCESS: delivered right after the client's
	// ProtocolClMakeCallComplete (dispatchIncomingCloseCall).
	closeHeld bool
	closeSt   Status
	closeData []byte

	// A deletion of the VC the creator asked for after it completed the
	// close early with SUCCESS: carried out once the close settles
	// (closeSettlingLocked).
	deleteBy driver
	deleteFn string
}

func (o *opRec) busy() bool { return o.state != opNone }

// earlyOf returns the completion parked for o, or nil. Caller holds the
// lock of o's object.
func (m *Mediator) earlyOf(o *opRec) *earlyCompletion {
	if o.state != opEarly {
		return nil // only a completion that raced its handler is parked
	}
	m.earlyMu.Lock()
	e := m.early[o]
	m.earlyMu.Unlock()
	return e
}

// takeEarly removes the completion parked for o and returns a copy of
// it; ok=false if there was none. Caller holds the lock of o's object.
// The record is recycled unless a caller still refers to it: one carrying
// a held close (ClMakeCall delivers it) or a deferred deletion (ClCloseCall
// carries it out); those callers free it when done (freeEarly).
func (m *Mediator) takeEarly(o *opRec) (e earlyCompletion, ok bool) {
	if o.state != opEarly {
		return e, false
	}
	m.earlyMu.Lock()
	p := m.early[o]
	delete(m.early, o)
	if p != nil {
		e, ok = *p, true
		if !p.closeHeld && p.deleteBy == nil {
			m.putEarlyLocked(p)
		}
	}
	m.earlyMu.Unlock()
	return e, ok
}

// maxEarlyFree bounds the records kept for reuse: about as many as can be
// parked at once on a busy node, a few KiB at most.
const maxEarlyFree = 64

// newEarlyLocked returns a zeroed record for a completion to park, reused
// if one is free (m.earlyMu held): a call whose call manager completes
// while its handler still runs then allocates nothing for it.
func (m *Mediator) newEarlyLocked() *earlyCompletion {
	if n := len(m.earlyFree); n > 0 {
		e := m.earlyFree[n-1]
		m.earlyFree[n-1] = nil
		m.earlyFree = m.earlyFree[:n-1]
		return e
	}
	return new(earlyCompletion)
}

// putEarlyLocked keeps e, which nothing refers to any more, for reuse
// (m.earlyMu held). It is cleared so that it holds no context, parameters
// or close data alive.
func (m *Mediator) putEarlyLocked(e *earlyCompletion) {
	*e = earlyCompletion{}
	if len(m.earlyFree) < maxEarlyFree {
		m.earlyFree = append(m.earlyFree, e)
	}
}

// freeEarly recycles a record a caller kept past settle (a held close, a
// deferred deletion) once it is done with it.
func (m *Mediator) freeEarly(e *earlyCompletion) {
	m.earlyMu.Lock()
	m.putEarlyLocked(e)
	m.earlyMu.Unlock()
}

// complete records a completion; the caller holds the lock of o's object.
// It returns deliver=true when the caller must finish the operation now and
// run the requester's completion handler; when the handler is still running
// the result is parked and delivered by settle. ok=false means there was
// nothing to complete.
func (o *opRec) complete(m *Mediator, st Status, ctx any, params *CallParameters) (deliver, ok bool) {
	switch o.state {
	case opUpcall:
		m.earlyMu.Lock()
		if m.early == nil {
			m.early = make(map[*opRec]*earlyCompletion)
		}
		e := m.newEarlyLocked()
		e.st, e.ctx, e.params = st, ctx, params
		o.state, m.early[o] = opEarly, e
		m.earlyMu.Unlock()
		return false, true
	case opPended:
		o.state = opNone
		return true, true
	}
	return false, false
}

// settle is called, with the lock of o's object held, when the responder's
// handler returned st. It returns the final status to finish with now, and
// whether the requester's completion handler must be delivered (the
// operation pended and was already completed). finish=false means the
// operation stays pending.
//
// ctx and params are what the handler returned along with st; they are
// passed through when st is final.
func (o *opRec) settle(m *Mediator, st Status, ctx any, params *CallParameters, fn string, who driver, obj fmt.Stringer) (final Status, fctx any, fparams *CallParameters, finish, deliver bool) {
	e, early := m.takeEarly(o)
	if st == StatusPending {
		if early {
			o.state = opNone
			return e.st, e.ctx, e.params, true, true
		}
		o.state = opPended
		return 0, nil, nil, false, false
	}
	if early {
		// The responder both returned a final status and called the
		// completion function: a double completion. The return wins.
		m.warn("R-GEN-2", fn, who, obj, "handler returned %v and also called the completion function (with %v); the completion is ignored", st, e.st)
	}
	o.state = opNone
	return st, ctx, params, true, false
}

// startCompletion opens every completion function: it traces the call and
// refuses NDIS_STATUS_PENDING as a completion status (R-GEN-1). ok=false:
// the completion was refused with ret. It takes no lock.
func (m *Mediator) startCompletion(who driver, fn string, obj fmt.Stringer, st Status) (ret Status, ok bool) {
	m.emit(EventRequest, who, fn, obj, st)
	if st == StatusPending {
		return m.reject(StatusFailure, "R-GEN-1", fn, who, obj, "completion status may not be NDIS_STATUS_PENDING"), false
	}
	return 0, true
}

// completion is what takeCompletionLocked found.
type completion uint8

const (
	completeNow    completion = iota // finish the operation and deliver the requester's handler
	completeParked                   // parked for a handler still running (R-GEN-10): return SUCCESS
	completeNone                     // nothing pending: refuse (R-GEN-2)
)

// takeCompletionLocked records a completion of op, with the lock of op's
// object held (and kept): completeNow means the caller finishes the
// operation and delivers the requester's completion handler; completeParked
// that the completion waits for the responder's handler (the completion
// function returns SUCCESS); completeNone that nothing was pending (a
// double completion, or one for a request that did not pend: R-GEN-2).
func (m *Mediator) takeCompletionLocked(op *opRec, st Status, ctx any, params *CallParameters) completion {
	deliver, ok := op.complete(m, st, ctx, params)
	switch {
	case !ok:
		return completeNone
	case !deliver:
		return completeParked
	}
	return completeNow
}

// refuseDoubleCompletion is the refusal of a completion with nothing
// pending (completeNone), for a caller that has released its lock.
func (m *Mediator) refuseDoubleCompletion(fn string, who driver, obj fmt.Stringer, what string) Status {
	return m.reject(StatusFailure, "R-GEN-2", fn, who, obj, "no pended %s to complete", what)
}

// EventKind classifies a trace Event.
type EventKind uint8

// Trace event kinds.
const (
	EventRequest EventKind = iota + 1 // a driver called a mediator function
	EventReturn                       // that function returned
	EventUpcall                       // the mediator invoked a driver handler
	EventHandled                      // the handler returned
	EventRefused                      // the mediator refused a request (a violation)
)

// Event is one step of a trace: who called what, on which object, with which status.
type Event struct {
	Seq    uint64
	Kind   EventKind
	Driver string // caller for Request/Return/Refused, callee for Upcall/Handled
	Func   string
	Object string
	Status Status // for Return, Handled and Refused
}

func (m *Mediator) tracing() bool { return m.opts.Trace != nil }

func (m *Mediator) emit(kind EventKind, who driver, fn string, obj fmt.Stringer, st Status) {
	if m.opts.Trace != nil { // inlined: without a tracer an event costs a test
		m.emitTraced(kind, who, fn, obj, st)
	}
}

func (m *Mediator) emitTraced(kind EventKind, who driver, fn string, obj fmt.Stringer, st Status) {
	m.vmu.Lock()
	m.seq++
	e := Event{Seq: m.seq, Kind: kind, Driver: nameOf(who), Func: fn, Object: objName(obj), Status: st}
	m.vmu.Unlock()
	m.opts.Trace(e)
}

// String renders an event as one line a person can follow.
func (e Event) String() string {
	obj := ""
	if e.Object != "" {
		obj = e.Object
	}
	switch e.Kind {
	case EventRequest:
		return fmt.Sprintf("%-10s -> %s(%s)", e.Driver, e.Func, obj)
	case EventReturn:
		return fmt.Sprintf("%-10s <- %s(%s) = %v", e.Driver, e.Func, obj, e.Status)
	case EventUpcall:
		return fmt.Sprintf("%-10s => %s(%s)", e.Driver, e.Func, obj)
	case EventHandled:
		return fmt.Sprintf("%-10s <= %s(%s) = %v", e.Driver, e.Func, obj, e.Status)
	case EventRefused:
		return fmt.Sprintf("%-10s !! %s(%s) refused: %v", e.Driver, e.Func, obj, e.Status)
	}
	return "?"
}

// vcList is an intrusive doubly linked list, so that tracking a VC for
// introspection costs no allocation on the call path.
type vcList struct {
	head *Vc
	n    int
}

func (l *vcList) add(v *Vc) {
	v.next = l.head
	if l.head != nil {
		l.head.prev = v
	}
	l.head = v
	l.n++
}

func (l *vcList) remove(v *Vc) {
	if v.prev != nil {
		v.prev.next = v.next
	} else {
		l.head = v.next
	}
	if v.next != nil {
		v.next.prev = v.prev
	}
	v.prev, v.next = nil, nil
	l.n--
}

type afList struct{ items []*Af }

func (l *afList) add(a *Af) { l.items = append(l.items, a) }
func (l *afList) remove(a *Af) {
	for i, x := range l.items {
		if x == a {
			l.items = append(l.items[:i], l.items[i+1:]...)
			return
		}
	}
}

// vcShards is how many counter shards the mediator has: enough that
// goroutines on different cores rarely pick the same one (a power of two).
const vcShards = 64 // at most 256: a VC keeps its shard's index in a byte

// vcTable numbers VCs and keeps the call counters, in shards. A goroutine
// counts on the shard its processor (P) has been using (pick is a
// sync.Pool, whose Get and Put stay on the current P), so two cores
// making calls do not write the same counters. A VC remembers its shard.
// The VCs themselves are listed on their AF open (Af.vcList) or, for a
// signalling VC, on its call manager's binding (Binding.sigVcs).
type vcTable struct {
	shards [vcShards]vcShard
	pick   sync.Pool     // *vcShard, P-local
	rr     atomic.Uint32 // hands shards to pick.New in turn
	_      [64]byte      // ids is written on every creation: keep it off the lines read on every call
	ids    atomic.Uint64 // object numbers (newID)
	_      [56]byte
}

// vcShard is one shard of the call counters, atomic so that a snapshot
// reads them without a lock. The data and party counters of a VC are kept
// in the VC and added up where it is listed when it is deleted (vcTotals).
type vcShard struct {
	created atomic.Uint64
	parties atomic.Int64 // parties on its VCs' lists (Live)
	// How its VCs' calls moved, for CallStates: the VCs listed and
	// unlisted in each call state, and the moves between states
	// (Vc.setCallLocked), so that counting a million calls walks none of
	// them. One counter per move, rather than a count per state that
	// each move would change twice: a call's lifecycle moves it four
	// times or more. The calls made, dispatched and closed are moves
	// too (into).
	listed, unlisted [callStates]atomic.Uint64
	moves            [callStates][callStates]atomic.Uint64
	ix               uint8 // its index in vcTable.shards (Vc.shardIx)

	_ [64]byte // keep neighbouring shards off this shard's cache lines
}

// vcTotals are the counters a VC keeps itself (under its lock), added up
// under the lock of the list it leaves when it is deleted (its AF's, or
// m.topo for a signalling VC), and from there into Mediator.gone when the
// list goes.
type vcTotals struct {
	deleted                            uint64
	sendsForwarded, sendsRefused       uint64
	receivesIndicated, receivesDropped uint64
	partiesAdded, partiesDropped       uint64
}

// add adds what v counted (v.mu held, or v is unreachable).
func (t *vcTotals) add(v *Vc) {
	x := v.more
	if x == nil {
		return // no data and no party ever
	}
	t.sendsForwarded += x.stats.TxPackets + x.stats.TxErrors + uint64(x.sendsOut)
	t.sendsRefused += x.stats.SendsRefused
	t.receivesIndicated += x.stats.RxPackets
	t.receivesDropped += x.stats.RxDrops
	t.partiesAdded += uint64(x.partiesAdded)
	t.partiesDropped += uint64(x.partiesDropped)
}

func (t *vcTotals) sum(o *vcTotals) {
	t.deleted += o.deleted
	t.sendsForwarded += o.sendsForwarded
	t.sendsRefused += o.sendsRefused
	t.receivesIndicated += o.receivesIndicated
	t.receivesDropped += o.receivesDropped
	t.partiesAdded += o.partiesAdded
	t.partiesDropped += o.partiesDropped
}

// into is how many calls of the shard's VCs moved into state c: every
// MakeCall the mediator passed on moved one into OUT_SETUP, every
// dispatched call into OFFERED, every close completed into CLOSED.
func (sh *vcShard) into(c callState) uint64 {
	var n uint64
	for o := range sh.moves {
		n += sh.moves[o][c].Load()
	}
	return n
}

func (t *vcTable) init() {
	for i := range t.shards {
		t.shards[i].ix = uint8(i)
	}
	t.pick.New = func() any { return &t.shards[t.rr.Add(1)%vcShards] }
}

// local returns the shard the current processor uses.
func (t *vcTable) local() *vcShard {
	s := t.pick.Get().(*vcShard)
	t.pick.Put(s)
	return s
}

// number gives a new VC its object number and counter shard.
func (t *vcTable) number(v *Vc) {
	v.id = t.ids.Add(1)
	v.shardIx = t.local().ix
}
