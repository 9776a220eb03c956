// Package pacing paces the readers of peers' signalling, so that one peer
// cannot stall a call manager for the others: the readers take turns
// (Turnstile), and a peer whose calls are refused faster than a rate has
// its signalling read more slowly (Refusals), which the transport's flow
// control turns into back-pressure on that peer alone. Both call managers
// use it: mcm from its links' message handlers, cm from the miniport's
// signalling indications.
package pacing

import (
	"context"
	"sync"

	"golang.org/x/time/rate"
)

// DefaultRefusalRate is how many of a peer's calls a second a call manager
// refuses before it reads that peer's signalling more slowly, unless
// configured otherwise.
const DefaultRefusalRate = 2000

// Turnstile lets goroutines in one at a time, in the order they came: the
// links' signalling readers take turns at the call manager, so that a
// flood on one link delays the others by at most one turn each round.
// (sync.Mutex lets a goroutine that just left barge in again.) The zero
// value is an open turnstile.
type Turnstile struct {
	mu      sync.Mutex
	busy    bool
	waiting []chan struct{}
}

// Enter waits for this goroutine's turn.
func (t *Turnstile) Enter() {
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

// Leave hands the turn to the longest waiting goroutine.
func (t *Turnstile) Leave() {
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

// Refusals paces one peer's signalling by the refusals of its calls: up to
// a rate a second (with a burst of as many) they are free; each one over
// it is counted, and the peer's reader waits for the counted ones (Wait)
// before it reads on. Its methods may be called from any goroutine.
type Refusals struct {
	perSecond int
	limiter   *rate.Limiter

	mu        sync.Mutex
	excess    int  // refusals over the rate not yet waited for
	throttled bool // it has been over the rate (reported once)
}

// NewRefusals returns the pacer of a peer whose calls may be refused
// perSecond times a second (a burst of as many is free); perSecond must be
// positive.
func NewRefusals(perSecond int) *Refusals {
	return &Refusals{perSecond: perSecond, limiter: rate.NewLimiter(rate.Limit(perSecond), perSecond)}
}

// Refused counts a refusal of one of the peer's calls. It reports true for
// the first refusal ever over the rate, for the caller to say once that
// the peer is now read more slowly.
func (r *Refusals) Refused() (first bool) {
	if r.limiter.Allow() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	first = !r.throttled
	r.throttled = true
	r.excess++
	return first
}

// Wait waits, before the peer's signalling is read on, for the refusals
// counted over the rate since the last Wait (at most a second's worth: a
// reader never waits much longer than a second at a time). It reports
// false, at once, if ctx ends first.
func (r *Refusals) Wait(ctx context.Context) bool {
	r.mu.Lock()
	n := min(r.excess, r.perSecond)
	r.excess = 0
	r.mu.Unlock()
	if n == 0 {
		return true
	}
	return r.limiter.WaitN(ctx, n) == nil
}
