// Package spawn runs the goroutines a driver's shutdown must wait for: a
// Group starts them until it is stopped, and stopping waits for those it
// started. The call managers (mcm, cm) start timers, dials and deferred
// work this way, so that Shutdown returns with none of their goroutines
// left.
package spawn

import "sync"

// Group is a set of goroutines that Stop waits for. The zero value is
// ready to use; a Group must not be copied.
type Group struct {
	mu      sync.Mutex // guards stopped and wg.Add
	stopped bool
	wg      sync.WaitGroup
}

// Go starts f on a goroutine of the group, unless the group is stopped; it
// reports whether it did.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return false
	}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Stop makes Go refuse from now on and waits for every goroutine the group
// started. It must not be called from one of them.
func (g *Group) Stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.wg.Wait()
}
