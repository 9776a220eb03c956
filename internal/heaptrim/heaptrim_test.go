package heaptrim

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestNext(t *testing.T) {
	for _, c := range []struct {
		name    string
		st      State
		vcs     int
		cycles  uint64
		want    State
		collect bool
	}{
		{"calls coming up: the peak follows", State{Peak: 10, Last: 10, Cycles: 3}, 50_000, 3, State{Peak: 50_000, Last: 50_000, Cycles: 3}, false},
		{"a collection ran, calls still coming up", State{Peak: 50_000, Last: 50_000, Cycles: 3}, 80_000, 4, State{Peak: 80_000, Last: 80_000, Cycles: 4}, false},
		{"a collection ran, then a million released", State{Peak: 1_000_000, Last: 1_000_000, Cycles: 3}, 5, 4, State{Peak: 5, Last: 5, Cycles: 4}, true},
		{"a collection ran long after the release", State{Peak: 5, Last: 5, Cycles: 3}, 5, 4, State{Peak: 5, Last: 5, Cycles: 4}, false},
		{"a million released", State{Peak: 1_000_000, Last: 1_000_000, Cycles: 3}, 64, 3, State{Peak: 64, Last: 64, Cycles: 3}, true},
		{"exactly MinDrop, to half", State{Peak: 2 * MinDrop, Last: 2 * MinDrop, Cycles: 3}, MinDrop, 3, State{Peak: MinDrop, Last: MinDrop, Cycles: 3}, true},
		{"one short of MinDrop", State{Peak: 2 * MinDrop, Last: 2 * MinDrop, Cycles: 3}, MinDrop + 1, 3, State{Peak: 2 * MinDrop, Last: MinDrop + 1, Cycles: 3}, false},
		{"MinDrop, but more than half still up", State{Peak: 100_000, Last: 100_000, Cycles: 3}, 60_000, 3, State{Peak: 100_000, Last: 60_000, Cycles: 3}, false},
		{"released from an earlier peak, in steps", State{Peak: 100_000, Last: 60_000, Cycles: 3}, 40_000, 3, State{Peak: 40_000, Last: 40_000, Cycles: 3}, true},
		{"few calls, all released", State{Peak: 9_000, Last: 9_000, Cycles: 3}, 0, 3, State{Peak: 9_000, Last: 0, Cycles: 3}, false},
		{"steady load: calls in flight come and go", State{Peak: 128, Last: 100, Cycles: 3}, 3, 3, State{Peak: 128, Last: 3, Cycles: 3}, false},
	} {
		got, collect := Next(c.st, c.vcs, c.cycles)
		if got != c.want || collect != c.collect {
			t.Errorf("%s: Next(%+v, %d, %d) = %+v, %v; want %+v, %v", c.name, c.st, c.vcs, c.cycles, got, collect, c.want, c.collect)
		}
	}
}

// TestWatcher: a watcher collects once when the VCs fall from their peak,
// not while they rise or stay, not again before they rise and fall again,
// and its goroutine is gone once stopped.
func TestWatcher(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		vcs, cycles, collected := 0, uint64(7), 0
		set := func(n int) { mu.Lock(); vcs = n; mu.Unlock() }
		w := Watcher{
			Every:   time.Second,
			VCs:     func() int { mu.Lock(); defer mu.Unlock(); return vcs },
			Cycles:  func() uint64 { mu.Lock(); defer mu.Unlock(); return cycles },
			Collect: func(int) { mu.Lock(); collected++; cycles++; mu.Unlock() },
		}
		stop := w.Start(context.Background())
		check := func(when string, want int) {
			t.Helper()
			time.Sleep(time.Second)
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			if collected != want {
				t.Fatalf("%s: %d collections, want %d", when, collected, want)
			}
		}
		for _, n := range []int{30_000, 100_000, 100_000} {
			set(n)
			check("calls coming up", 0)
		}
		set(40)
		check("100,000 released", 1)
		check("nothing changed", 1)
		set(0)
		check("the rest released", 1)
		set(60_000)
		check("up again", 1)
		set(10)
		check("released again", 2)
		set(50_000)
		check("up once more", 2)
		mu.Lock()
		vcs, cycles = 0, cycles+1 // a collection of the runtime's own, and then the release, in one look
		mu.Unlock()
		check("released just after a collection", 3)
		stop()
	})
}
