package statewait

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestAwaitWokenByChange: Await returns once a change makes cond hold,
// not before; the kick runs before it waits.
func TestAwaitWokenByChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var c Changes
		n, kicks := 0, 0
		done := make(chan error)
		go func() {
			done <- c.Await(context.Background(), &mu, func() bool { return n >= 2 }, func() { kicks++ })
		}()
		for i := 1; i <= 2; i++ {
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("Await returned (%v) at n=%d", err, n)
			default:
			}
			mu.Lock()
			n = i
			c.NotifyLocked()
			mu.Unlock()
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if kicks != 2 {
			t.Errorf("kicked %d times, want 2 (once per wait)", kicks)
		}
	})
}

// TestAwaitContext: a cancelled context ends the wait with its error.
func TestAwaitContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var c Changes
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Await(ctx, &mu, func() bool { return false }, nil) }()
		synctest.Wait()
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("Await: %v, want context.Canceled", err)
		}
		mu.Lock()
		c.NotifyLocked() // nobody waits any more: no panic, no block
		c.NotifyLocked()
		mu.Unlock()
	})
}

// TestPoll: Poll returns once cond holds, checking every interval (virtual
// time), and with ctx's error when ctx ends first.
func TestPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start, calls := time.Now(), 0
		if err := Poll(context.Background(), 2*time.Millisecond, func() bool { calls++; return calls == 4 }); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 6*time.Millisecond || calls != 4 {
			t.Errorf("took %v and %d checks, want 6ms and 4", took, calls)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		defer cancel()
		if err := Poll(ctx, 2*time.Millisecond, func() bool { return false }); err != context.DeadlineExceeded {
			t.Errorf("Poll past its context: %v, want DeadlineExceeded", err)
		}
	})
}
