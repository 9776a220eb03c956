// Package memdrv holds in-memory CoNDIS drivers written only against the
// public ndis API, exactly as a third-party driver would be: a miniport call
// manager (MCM), a stand-alone call manager (CM) over an in-memory CoNDIS
// miniport, and a scriptable client. They share a Fabric, an in-memory
// network that carries their signalling and cells.
//
// Every driver answers each pendable request in one of three Modes
// (complete at once, pend then complete from the Loop, or complete inside
// the handler and return PENDING), so every flow can be exercised both ways.
// The drivers serve the tests, `condis demo` and the benchmarks.
package memdrv

import (
	"sync"
	"sync/atomic"

	"github.com/condis-project/condis/ndis"
)

// Mode is how a driver answers a pendable request.
type Mode uint8

const (
	// Immediate returns the final status from the handler when the outcome
	// is known at once.
	Immediate Mode = iota
	// Pend returns NDIS_STATUS_PENDING and calls the completion function
	// later, from the Loop.
	Pend
	// PendEarly calls the completion function inside the handler and then
	// returns NDIS_STATUS_PENDING: the completion races the request's
	// return (R-GEN-10).
	PendEarly
)

func (m Mode) String() string {
	return [...]string{"immediate", "pend", "pend-early"}[m]
}

// atomicMode is a Mode read on every request without taking a lock.
type atomicMode struct{ v atomic.Uint32 }

func (a *atomicMode) get() Mode  { return Mode(a.v.Load()) }
func (a *atomicMode) set(m Mode) { a.v.Store(uint32(m)) }

// Loop is deferred work, the in-memory stand-in for DPCs and work items:
// completions of pended requests and actions that must happen after the
// current request has returned (such as deleting a VC once its close has
// finished). Run drains it. It is safe for concurrent use.
type Loop struct {
	mu   sync.Mutex
	q    []task
	head int // next item to run; the slice is reused once drained
}

// task is one item of deferred work. The drivers post records they already
// hold (a VC to delete), so the work every call queues costs no closure.
type task interface{ run() }

// funcTask is a task written as a closure (Post).
type funcTask func()

func (f funcTask) run() { f() }

// Post queues f.
func (l *Loop) Post(f func()) { l.post(funcTask(f)) }

func (l *Loop) post(t task) {
	l.mu.Lock()
	l.q = append(l.q, t)
	l.mu.Unlock()
}

// Run runs queued work, including work queued meanwhile, until none is left.
// It returns how many items ran.
func (l *Loop) Run() int {
	n := 0
	l.mu.Lock()
	for l.head < len(l.q) {
		t := l.q[l.head]
		l.q[l.head] = nil
		l.head++
		l.mu.Unlock()
		t.run()
		n++
		l.mu.Lock()
	}
	l.q, l.head = l.q[:0], 0
	l.mu.Unlock()
	return n
}

// Len returns the number of queued items.
func (l *Loop) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.q) - l.head
}

// step is the rest of a flow, resumed with the outcome of an asynchronous
// stage: an activation, a deactivation, a whole call setup, a request's
// answer. The steps every call takes are methods of records embedded in the
// VC's context, so a call allocates no closures; rarer flows wrap a closure
// in stepFunc.
type step interface{ resume(st ndis.Status) }

// stepFunc is a step written as a closure.
type stepFunc func(ndis.Status)

func (f stepFunc) resume(st ndis.Status) { f(st) }

// completer is a driver's completion function for one request (such as
// NdisMCmMakeCallComplete), told the final status.
type completer interface{ complete(st ndis.Status) }

// completeFunc is a completer written as a closure.
type completeFunc func(ndis.Status)

func (f completeFunc) complete(st ndis.Status) { f(st) }

// respond turns an operation whose outcome may be known now or later into a
// handler return value, according to mode. op must call done exactly once
// and drop it afterwards; complete is the driver's completion function (e.g.
// MCmMakeCallComplete). It runs a pooled reply record with closures: the
// requests on every call's path keep a record in their VC's context instead.
func respond(l *Loop, mode Mode, op func(done func(ndis.Status)), complete func(ndis.Status)) ndis.Status {
	r := replies.Get().(*pooledReply)
	r.begin(l, mode, completeFunc(complete))
	op(r.doneFn)
	st, done := r.end()
	if done {
		replies.Put(r)
	}
	return st
}

// pooledReply is respond's reply record.
type pooledReply struct {
	reply
	doneFn func(ndis.Status) // r.done, made once per record
}

// done delivers the outcome; the record goes back to the pool once the
// handler has returned.
func (r *pooledReply) done(st ndis.Status) {
	if r.deliver(st) {
		replies.Put(r)
	}
}

// Reply states.
const (
	inHandler     uint32 = iota // op is running; no outcome yet
	returned                    // the handler returned PENDING; done finishes
	doneInHandler               // the outcome arrived while op was running
)

var replies sync.Pool

func init() {
	// Set here, not in the declaration: New refers to done, which refers
	// back to the pool.
	replies.New = func() any {
		r := &pooledReply{}
		r.doneFn = r.done
		return r
	}
}

// reply is the answer record of one pendable request: begin arms it, the
// outcome arrives through resume (it is the step that ends the request's
// flow) inside the handler or later, and end gives the handler's return
// value. An outcome known inside the handler is the final return in
// Immediate mode, and PENDING plus the completion in the other modes (from
// the Loop in Pend mode, inside the handler in PendEarly mode); one known
// later is always PENDING plus the completion. One CAS decides which.
//
// The requests every call makes (MakeCall, CloseCall) keep their reply in
// the VC's context, so answering them allocates nothing; respond pools the
// others'.
type reply struct {
	state    atomic.Uint32
	mode     Mode
	st       ndis.Status
	l        *Loop
	complete completer
}

// begin arms r for a request answered in mode, completed through complete.
func (r *reply) begin(l *Loop, mode Mode, complete completer) {
	r.l, r.mode, r.complete = l, mode, complete
	r.state.Store(inHandler)
}

// end returns the handler's status: the outcome that arrived inside the
// handler in Immediate mode, else PENDING. done reports whether the outcome
// has arrived (the record is free again); if not, resume frees it.
func (r *reply) end() (st ndis.Status, done bool) {
	if r.state.CompareAndSwap(inHandler, returned) {
		return ndis.StatusPending, false
	}
	// resume ran inside the handler (state doneInHandler); its store of st
	// happened before its CAS, which we observed.
	st, mode := r.st, r.mode
	r.l, r.complete = nil, nil
	if mode == Immediate {
		return st, true
	}
	return ndis.StatusPending, true
}

// resume delivers the request's outcome; it is called exactly once per begin.
func (r *reply) resume(st ndis.Status) { r.deliver(st) }

// deliver is resume; it reports whether the handler had returned already
// (the record is then free).
func (r *reply) deliver(st ndis.Status) (late bool) {
	complete, l, mode := r.complete, r.l, r.mode
	r.st = st
	if !r.state.CompareAndSwap(inHandler, doneInHandler) {
		// The handler already returned PENDING: complete now.
		r.l, r.complete = nil, nil
		complete.complete(st)
		return true
	}
	switch mode {
	case Pend:
		l.Post(func() { complete.complete(st) })
	case PendEarly: // complete inside the handler, then return PENDING
		complete.complete(st)
	}
	// Immediate: end returns st as the handler's final status.
	return false
}
