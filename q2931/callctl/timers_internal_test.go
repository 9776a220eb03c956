package callctl

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/uni"
)

func key(t uni.TimerID, ref uint32) uni.TimerKey {
	return uni.TimerKey{Timer: t, Call: uni.CallID{Ref: ref}}
}

// TestTimerQueue: timers fire once, in deadline order, at their time;
// a stopped timer never fires; a restarted one fires at its new time only;
// nothing fires after Stop.
func TestTimerQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		type firing struct {
			key uni.TimerKey
			at  time.Duration
		}
		var fired []firing
		start := time.Now()
		tq := NewTimerQueue(&mu, func(k uni.TimerKey) {
			fired = append(fired, firing{k, time.Since(start)})
		})
		apply := func(ops ...uni.TimerOp) {
			mu.Lock()
			tq.Apply(ops)
			mu.Unlock()
		}
		on := func(k uni.TimerKey, d time.Duration) uni.TimerOp { return uni.TimerOp{Key: k, Start: true, After: d} }
		off := func(k uni.TimerKey) uni.TimerOp { return uni.TimerOp{Key: k} }

		apply(on(key(uni.T308, 1), 30*time.Second), on(key(uni.T303, 1), 4*time.Second), on(key(uni.T303, 2), 4*time.Second))
		time.Sleep(time.Second)
		apply(on(key(uni.T303, 3), 4*time.Second), off(key(uni.T303, 2)))
		time.Sleep(time.Second)
		apply(on(key(uni.T303, 1), 4*time.Second)) // restarted: due at 6 s, not 4
		time.Sleep(time.Minute)
		got := func() []firing {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(fired)
		}
		want := []firing{{key(uni.T303, 3), 5 * time.Second}, {key(uni.T303, 1), 6 * time.Second}, {key(uni.T308, 1), 30 * time.Second}}
		if f := got(); !slices.Equal(f, want) {
			t.Fatalf("fired %v, want %v", f, want)
		}

		apply(on(key(uni.T303, 4), 4*time.Second))
		mu.Lock()
		tq.Stop()
		mu.Unlock()
		apply(on(key(uni.T303, 5), time.Second))
		time.Sleep(time.Minute)
		if f := got(); len(f) != len(want) {
			t.Fatalf("fired after Stop: %v", f[len(want):])
		}
	})
}

// TestTimerQueueCompacts: timers started and stopped by the thousand while
// one stays running do not pile up in the queue, and the one left fires.
func TestTimerQueueCompacts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var fired []uni.TimerKey
		tq := NewTimerQueue(&mu, func(k uni.TimerKey) { fired = append(fired, k) })
		mu.Lock()
		tq.Apply([]uni.TimerOp{{Key: key(uni.T308, 0), Start: true, After: 30 * time.Second}})
		for i := range uint32(100_000) {
			k := key(uni.T308, i+1)
			tq.Apply([]uni.TimerOp{{Key: k, Start: true, After: 30 * time.Second}, {Key: k}})
		}
		f := tq.fifo(30 * time.Second)
		if n := len(f.q) - f.head; n > 1000 {
			t.Errorf("%d queue entries for 1 running timer", n)
		}
		mu.Unlock()
		time.Sleep(time.Minute)
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(fired, []uni.TimerKey{key(uni.T308, 0)}) {
			t.Fatalf("fired %v", fired)
		}
	})
}

// TestKeyPacking: a packed timer key unpacks to the key it was made from,
// and distinct timer keys pack to distinct words.
func TestKeyPacking(t *testing.T) {
	timers := map[timerKey]uni.TimerKey{}
	for _, ref := range []uint32{0, 1, 0x7FFFFF, 0xFFFFFFFF} {
		for _, local := range []bool{false, true} {
			id := uni.CallID{Ref: ref, Local: local}
			for _, tm := range []uni.TimerID{uni.T303, uni.T308, uni.T399} {
				for _, ep := range []uint16{0, 1, 0xFFFF} {
					k := uni.TimerKey{Timer: tm, Call: id, Endpoint: ep}
					x := packTimer(k)
					if got := x.unpack(); got != k {
						t.Fatalf("%v packs to %#x, which unpacks to %v", k, uint64(x), got)
					}
					if o, dup := timers[x]; dup {
						t.Fatalf("timers %v and %v both pack to %#x", o, k, uint64(x))
					}
					timers[x] = k
				}
			}
		}
	}
}
