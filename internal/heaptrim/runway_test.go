package heaptrim

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestNextPercent: the runway tightens past LargeLive, loosens at half of
// it or less, and between the two keeps what it had.
func TestNextPercent(t *testing.T) {
	for _, c := range []struct {
		cur  int
		live uint64
		want int
	}{
		{NormalPercent, 0, NormalPercent},
		{NormalPercent, LargeLive, NormalPercent},
		{NormalPercent, LargeLive + 1, TightPercent},
		{TightPercent, LargeLive + 1, TightPercent},
		{TightPercent, LargeLive, TightPercent},
		{TightPercent, LargeLive/2 + 1, TightPercent},
		{NormalPercent, LargeLive/2 + 1, NormalPercent},
		{TightPercent, LargeLive / 2, NormalPercent},
		{TightPercent, 0, NormalPercent},
	} {
		if got := NextPercent(c.cur, c.live); got != c.want {
			t.Errorf("NextPercent(%d, %d) = %d, want %d", c.cur, c.live, got, c.want)
		}
	}
}

// TestRunway: each change of percent is set once, in order, as the live
// heap grows past LargeLive and falls back; nothing is set while it stays
// on one side, and nothing after stop.
func TestRunway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		live := uint64(0)
		var sets []string
		r := Runway{
			Every: time.Second,
			Live:  func() uint64 { mu.Lock(); defer mu.Unlock(); return live },
			Set:   func(from, to int, _ uint64) { mu.Lock(); sets = append(sets, fmt.Sprint(from, "->", to)); mu.Unlock() },
		}
		stop := r.Start(context.Background())
		step := func(l uint64, want string) {
			t.Helper()
			mu.Lock()
			live = l
			mu.Unlock()
			time.Sleep(time.Second)
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			if got := fmt.Sprint(sets); got != want {
				t.Fatalf("live %d: sets %s, want %s", l, got, want)
			}
		}
		step(100<<20, "[]")
		step(LargeLive+1, "[100->50]")
		step(2*LargeLive, "[100->50]")
		step(LargeLive/2+1, "[100->50]")
		step(LargeLive/4, "[100->50 50->100]")
		step(0, "[100->50 50->100]")
		stop()
		mu.Lock()
		live = 4 * LargeLive
		mu.Unlock()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(sets) != 2 {
			t.Fatalf("set after stop: %v", sets)
		}
	})
}
