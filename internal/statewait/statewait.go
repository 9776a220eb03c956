// Package statewait lets goroutines wait until a condition on state
// guarded by a mutex holds, woken each time the state changes — a
// sync.Cond whose wait also ends with a context.
package statewait

import (
	"context"
	"sync"
	"time"
)

// Changes wakes the goroutines waiting in Await when its owner's state
// changes. Its zero value is ready. It is guarded by the owner's mutex:
// NotifyLocked is called with it held, Await takes it.
type Changes struct {
	ch      chan struct{} // closed and replaced when the state changes and someone waits on it
	watched bool          // an Await holds ch
}

// NotifyLocked wakes everyone waiting in Await; mu is held. With nobody
// waiting it costs nothing, so owners may call it on every change.
func (c *Changes) NotifyLocked() {
	if !c.watched {
		return
	}
	close(c.ch)
	c.ch = nil
	c.watched = false
}

// Await waits until cond (called with mu held) holds, or ctx ends (then
// its error). Before each wait it calls kick, if not nil, without mu held:
// the owner's chance to get on with the work that will change the state.
func (c *Changes) Await(ctx context.Context, mu sync.Locker, cond func() bool, kick func()) error {
	for {
		mu.Lock()
		if cond() {
			mu.Unlock()
			return nil
		}
		if c.ch == nil {
			c.ch = make(chan struct{})
		}
		ch := c.ch
		c.watched = true
		mu.Unlock()
		if kick != nil {
			kick()
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Poll calls cond every interval until it holds, or ctx ends (then its
// error): for conditions no one signals, such as another driver's
// objects going away in the mediator.
func Poll(ctx context.Context, interval time.Duration, cond func() bool) error {
	for !cond() {
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
