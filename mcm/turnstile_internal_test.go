package mcm

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
)

// TestTurnstileFIFO: goroutines get their turns one at a time, in the
// order they arrived, even when the one leaving comes straight back (a
// flooding link waits behind the others).
func TestTurnstileFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ts turnstile
		var mu sync.Mutex
		var order []int
		ts.enter() // the flooder holds a turn
		var wg sync.WaitGroup
		for i := 1; i <= 3; i++ {
			wg.Go(func() {
				ts.enter()
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				ts.leave()
			})
			synctest.Wait() // i is queued before i+1
		}
		ts.leave()
		ts.enter() // the flooder at once wants another turn: it is last
		mu.Lock()
		order = append(order, 0)
		mu.Unlock()
		ts.leave()
		wg.Wait()
		if want := []int{1, 2, 3, 0}; !slices.Equal(order, want) {
			t.Errorf("turns in order %v, want %v", order, want)
		}
	})
}
