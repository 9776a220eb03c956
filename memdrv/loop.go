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
	mu sync.Mutex
	q  []func()
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
		if len(l.q) == 0 {
			l.q = l.q[:0]
			l.mu.Unlock()
			return n
		}
		f := l.q[0]
		l.q[0] = nil
		l.q = l.q[1:]
		l.mu.Unlock()
		f()
		n++
	}
}

// Len returns the number of queued items.
func (l *Loop) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.q)
}

// respond turns an operation whose outcome may be known now or later into a
// handler return value, according to mode. op must call done exactly once;
// complete is the driver's completion function (e.g. MCmMakeCallComplete).
func respond(l *Loop, mode Mode, op func(done func(ndis.Status)), complete func(ndis.Status)) ndis.Status {
	r := &responder{l: l, mode: mode, complete: complete, inHandler: true}
	op(r.done)
	r.mu.Lock()
	r.inHandler = false
	have, st := r.have, r.st
	r.mu.Unlock()
	if have {
		return st
	}
	return ndis.StatusPending
}

type responder struct {
	mu        sync.Mutex
	l         *Loop
	mode      Mode
	complete  func(ndis.Status)
	inHandler bool
	have      bool
	st        ndis.Status
}

func (r *responder) done(st ndis.Status) {
	r.mu.Lock()
	in := r.inHandler
	if in && r.mode == Immediate {
		r.st, r.have = st, true
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	switch {
	case in && r.mode == Pend:
		r.l.Post(func() { r.complete(st) })
	default: // PendEarly inside the handler, or any mode once the handler returned
		r.complete(st)
	}
}
