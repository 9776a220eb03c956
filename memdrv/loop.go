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
	q    []func()
	head int // next item to run; the slice is reused once drained
}

// Post queues f.
func (l *Loop) Post(f func()) {
	l.mu.Lock()
	l.q = append(l.q, f)
	l.mu.Unlock()
}

// Run runs queued work, including work queued meanwhile, until none is left.
// It returns how many items ran.
func (l *Loop) Run() int {
	n := 0
	for {
		l.mu.Lock()
		if l.head == len(l.q) {
			l.q, l.head = l.q[:0], 0
			l.mu.Unlock()
			return n
		}
		f := l.q[l.head]
		l.q[l.head] = nil
		l.head++
		l.mu.Unlock()
		f()
		n++
	}
}

// Len returns the number of queued items.
func (l *Loop) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.q) - l.head
}

// respond turns an operation whose outcome may be known now or later into a
// handler return value, according to mode. op must call done exactly once
// and drop it afterwards; complete is the driver's completion function (e.g.
// MCmMakeCallComplete). Responder records are pooled and lock-free (one CAS
// decides whether the outcome arrived inside the handler), because the
// benchmark's budget is meant for the mediator, not for test-driver
// bookkeeping.
func respond(l *Loop, mode Mode, op func(done func(ndis.Status)), complete func(ndis.Status)) ndis.Status {
	r := responders.Get().(*responder)
	r.l, r.mode, r.complete = l, mode, complete
	r.state.Store(inHandler)
	op(r.doneFn)
	if r.state.CompareAndSwap(inHandler, returned) {
		return ndis.StatusPending // done comes later and releases the record
	}
	// done ran inside the handler (state doneInHandler); its store of st
	// happened before its CAS, which we observed.
	st := r.st
	r.release()
	if mode == Immediate {
		return st
	}
	return ndis.StatusPending
}

// Responder states.
const (
	inHandler     uint32 = iota // op is running; no outcome yet
	returned                    // the handler returned PENDING; done finishes
	doneInHandler               // the outcome arrived while op was running
)

var responders sync.Pool

func init() {
	// Set here, not in the declaration: New refers to done, which refers
	// back to the pool.
	responders.New = func() any {
		r := &responder{}
		r.doneFn = r.done
		return r
	}
}

type responder struct {
	state    atomic.Uint32
	l        *Loop
	mode     Mode
	complete func(ndis.Status)
	doneFn   func(ndis.Status) // r.done, made once per record
	st       ndis.Status
}

func (r *responder) release() {
	r.l, r.complete = nil, nil
	responders.Put(r)
}

func (r *responder) done(st ndis.Status) {
	complete, l, mode := r.complete, r.l, r.mode
	r.st = st
	if !r.state.CompareAndSwap(inHandler, doneInHandler) {
		// The handler already returned PENDING: complete now.
		r.release()
		complete(st)
		return
	}
	switch mode {
	case Pend:
		l.Post(func() { complete(st) })
	case PendEarly: // complete inside the handler, then return PENDING
		complete(st)
	}
	// Immediate: respond returns st as the handler's final status.
}
