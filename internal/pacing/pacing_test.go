package pacing

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestTurnstileFIFO: goroutines get their turns one at a time, in the
// order they arrived, even when the one leaving comes straight back (a
// flooding link waits behind the others).
func TestTurnstileFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ts Turnstile
		var mu sync.Mutex
		var order []int
		ts.Enter() // the flooder holds a turn
		var wg sync.WaitGroup
		for i := 1; i <= 3; i++ {
			wg.Go(func() {
				ts.Enter()
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				ts.Leave()
			})
			synctest.Wait() // i is queued before i+1
		}
		ts.Leave()
		ts.Enter() // the flooder at once wants another turn: it is last
		mu.Lock()
		order = append(order, 0)
		mu.Unlock()
		ts.Leave()
		wg.Wait()
		if want := []int{1, 2, 3, 0}; !slices.Equal(order, want) {
			t.Errorf("turns in order %v, want %v", order, want)
		}
	})
}

// TestTurnstileWaiterGetsTurn: a goroutine that comes while another has
// the turn waits for exactly as long as that turn lasts, and no two are
// ever in at once.
func TestTurnstileWaiterGetsTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ts Turnstile
		var mu sync.Mutex
		in := 0
		enter := func() {
			ts.Enter()
			mu.Lock()
			in++
			if in != 1 {
				t.Errorf("%d goroutines in at once", in)
			}
			mu.Unlock()
		}
		leave := func() {
			mu.Lock()
			in--
			mu.Unlock()
			ts.Leave()
		}
		enter()
		start := time.Now()
		got := make(chan time.Duration)
		go func() {
			enter()
			got <- time.Since(start)
			leave()
		}()
		synctest.Wait()
		select {
		case d := <-got:
			t.Fatalf("the waiter got in after %v while the turn was taken", d)
		default:
		}
		time.Sleep(time.Second) // a long turn
		leave()
		if d := <-got; d != time.Second {
			t.Errorf("the waiter got its turn after %v, want 1s (when the turn ended)", d)
		}
	})
}

// TestRefusalsWaitForExcess: a burst of perSecond refusals is free; each
// one over it makes Wait take 1/perSecond of a second, at most a second at
// a time, and only the first over the rate is reported.
func TestRefusalsWaitForExcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const perSecond = 10
		r := NewRefusals(perSecond)
		ctx := context.Background()
		firsts := 0
		for range perSecond {
			if r.Refused() {
				firsts++
			}
		}
		start := time.Now()
		if !r.Wait(ctx) || time.Since(start) != 0 {
			t.Fatalf("a burst of %d refusals made Wait take %v, want none", perSecond, time.Since(start))
		}
		if firsts != 0 {
			t.Errorf("a refusal within the rate reported as over it")
		}
		for range 5 {
			if r.Refused() {
				firsts++
			}
		}
		if firsts != 1 {
			t.Errorf("%d refusals reported as the first over the rate, want 1", firsts)
		}
		start = time.Now()
		if !r.Wait(ctx) {
			t.Fatal("Wait failed")
		}
		if d := time.Since(start); d != 500*time.Millisecond {
			t.Errorf("5 refusals over %d/s: Wait took %v, want 500ms", perSecond, d)
		}
		if start = time.Now(); !r.Wait(ctx) || time.Since(start) != 0 {
			t.Errorf("a second Wait with nothing counted took %v", time.Since(start))
		}
		// 3 s worth over the rate: one Wait takes a second, no more.
		for range 3 * perSecond {
			r.Refused()
		}
		start = time.Now()
		r.Wait(ctx)
		if d := time.Since(start); d != time.Second {
			t.Errorf("Wait for 3 s of refusals took %v, want 1s", d)
		}
	})
}

// TestRefusalsWaitEndsWithContext: a Wait ends, false, as soon as its
// context does.
func TestRefusalsWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRefusals(1)
		r.Refused() // the burst
		r.Refused() // one over: a second to wait
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		if r.Wait(ctx) {
			t.Error("Wait reported success with its context cancelled")
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Errorf("Wait returned %v after the start, want at the cancel (100ms)", d)
		}
	})
}
