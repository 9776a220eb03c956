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
// MCmMakeCallComplete). Responder records are pooled: the benchmark's
// allocation budget is for the mediator, not for the test drivers'
// bookkeeping.
func respond(l *Loop, mode Mode, op func(done func(ndis.Status)), complete func(ndis.Status)) ndis.Status {
	r := responders.Get().(*responder)
	r.l, r.mode, r.complete = l, mode, complete
	r.inHandler, r.have, r.finished = true, false, false
	op(r.doneFn)
	r.mu.Lock()
	r.inHandler = false
	have, st, finished := r.have, r.st, r.finished
	r.mu.Unlock()
	if finished {
		r.release()
	}
	if have {
		return st
	}
	return ndis.StatusPending
}

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
	mu        sync.Mutex
	l         *Loop
	mode      Mode
	complete  func(ndis.Status)
	doneFn    func(ndis.Status) // r.done, made once per record
	inHandler bool
	have      bool
	finished  bool // done ran while the handler was still running
	st        ndis.Status
}

func (r *responder) release() {
	r.l, r.complete = nil, nil
	responders.Put(r)
}

func (r *responder) done(st ndis.Status) {
	r.mu.Lock()
	in, complete, l := r.inHandler, r.complete, r.l
	if in {
		r.finished = true // respond releases the record
		if r.mode == Immediate {
			r.st, r.have = st, true
			r.mu.Unlock()
			return
		}
	}
	r.mu.Unlock()
	switch {
	case in && r.mode == Pend:
		l.Post(func() { complete(st) })
	case in: // PendEarly: complete inside the handler, then return PENDING
		complete(st)
	default: // the handler returned before the outcome was known
		r.release()
		complete(st)
	}
}
