package procs

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestNext(t *testing.T) {
	for _, c := range []struct {
		name string
		st   State
		most int
		s    Sample
		want State
	}{
		{"one P, idle node", State{Procs: 1}, 8, Sample{Busy: 0.1, HostIdle: 7}, State{Procs: 1}},
		{"one P kept busy, host has CPUs", State{Procs: 1}, 8, Sample{Busy: 0.9, HostIdle: 6.5}, State{Procs: 2}},
		{"one P kept busy, host saturated", State{Procs: 1}, 8, Sample{Busy: 0.95, HostIdle: 0.3}, State{Procs: 1}},
		{"busy, host idle unknown: doubles", State{Procs: 2}, 8, Sample{Busy: 1.8, HostIdle: -1}, State{Procs: 4}},
		{"adds what the host has idle", State{Procs: 4}, 16, Sample{Busy: 3.9, HostIdle: 2.7}, State{Procs: 6}},
		{"never more than doubles", State{Procs: 2}, 16, Sample{Busy: 2, HostIdle: 12}, State{Procs: 4}},
		{"never past most", State{Procs: 6}, 8, Sample{Busy: 6, HostIdle: 10}, State{Procs: 8}},
		{"at most, stays", State{Procs: 2}, 2, Sample{Busy: 2, HostIdle: 1}, State{Procs: 2}},
		{"two Ps, between the thresholds", State{Procs: 2}, 8, Sample{Busy: 1.0, HostIdle: 2}, State{Procs: 2}},
		{"two Ps, light once", State{Procs: 2}, 8, Sample{Busy: 0.5, HostIdle: 5}, State{Procs: 2, low: 1}},
		{"two Ps, light the third time", State{Procs: 2, low: 2}, 8, Sample{Busy: 0.5, HostIdle: 5}, State{Procs: 1}},
		{"a busier window ends the light run", State{Procs: 4, low: 2}, 8, Sample{Busy: 2, HostIdle: 1}, State{Procs: 4}},
		{"one P kept busy, half a CPU idle: no CPU to give", State{Procs: 1}, 2, Sample{Busy: 0.9, HostIdle: 0.6}, State{Procs: 1}},
		{"two Ps, contended once", State{Procs: 2}, 2, Sample{Busy: 0.8, HostIdle: 0.1}, State{Procs: 2, low: 1}},
		{"two Ps, contended the third time", State{Procs: 2, low: 2}, 2, Sample{Busy: 0.8, HostIdle: 0.1}, State{Procs: 1}},
		{"contended: keeps the CPUs it got", State{Procs: 8, low: 2}, 8, Sample{Busy: 5.2, HostIdle: 0.1}, State{Procs: 6}},
		{"saturated host, but the node gets its Ps' worth", State{Procs: 2, low: 2}, 2, Sample{Busy: 1.9, HostIdle: 0.1}, State{Procs: 2}},
		{"host idle unknown: never contended", State{Procs: 2, low: 2}, 2, Sample{Busy: 0.8, HostIdle: -1}, State{Procs: 2}},
		{"one P is never dropped", State{Procs: 1, low: 5}, 8, Sample{Busy: 0}, State{Procs: 1}},
	} {
		if got := Next(c.st, c.most, c.s); got != c.want {
			t.Errorf("%s: Next(%+v, %d, %+v) = %+v, want %+v", c.name, c.st, c.most, c.s, got, c.want)
		}
	}
}

// Whatever the node's demand and the other processes' load, the Ps settle
// within 30 windows and stay put: the thresholds leave a band between
// raising and lowering. The node gets what it asks for, up to its Ps and
// what the other processes leave of the host's CPUs.
func TestNextDoesNotSwingOnASteadyLoad(t *testing.T) {
	for _, host := range []float64{2, 8} {
		for other := 0.0; other < host; other += 0.5 {
			for demand := 0.0; demand <= host; demand += 0.05 {
				st := State{Procs: 1}
				var seen []int
				for range 40 {
					busy := min(demand, float64(st.Procs), host-other)
					st = Next(st, int(host), Sample{Busy: busy, HostIdle: host - other - busy})
					seen = append(seen, st.Procs)
				}
				last := seen[len(seen)-10:]
				for _, p := range last {
					if p != last[0] {
						t.Fatalf("host %v, others %v, demand %.2f: Ps still change after 30 windows: %v", host, other, demand, seen)
					}
				}
			}
		}
	}
}

// Two busy nodes on a 2-CPU host that leave half a CPU idle between them
// (the two-node benchmark) keep one P each: a second P would have to share
// a CPU with the other node.
func TestNextTwoNodesOnTwoCPUs(t *testing.T) {
	st := State{Procs: 1}
	for range 10 {
		st = Next(st, 2, Sample{Busy: 0.83, HostIdle: 0.5})
	}
	if st.Procs != 1 {
		t.Errorf("Ps %d, want 1", st.Procs)
	}
	st = State{Procs: 2} // raised while the other node was idle
	for range dropAfter {
		st = Next(st, 2, Sample{Busy: 0.85, HostIdle: 0.1})
	}
	if st.Procs != 1 {
		t.Errorf("after %d contended windows: Ps %d, want 1", dropAfter, st.Procs)
	}
}

func TestParseIdle(t *testing.T) {
	got, ok := parseIdle([]byte("cpu  4993395 3261 1634708 4441107 15575 0 103909 0 0 0\n"))
	if want := time.Duration(4441107+15575) * 10 * time.Millisecond; !ok || got != want {
		t.Errorf("parseIdle = %v, %v; want %v, true", got, ok, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5\n", "cpu 1 2 3\n", "cpu 1 2 3 x 5\n"} {
		if _, ok := parseIdle([]byte(bad)); ok {
			t.Errorf("parseIdle(%q) ok, want not", bad)
		}
	}
}

// fakeHost is a process and host whose CPU times advance as the test
// says, in virtual time.
type fakeHost struct {
	mu         sync.Mutex
	used, idle time.Duration
	busy, free float64 // CPUs used and idle from now on
	at         time.Time
	idleKnown  bool
}

func (h *fakeHost) advance() {
	now := time.Now()
	d := now.Sub(h.at)
	h.used += time.Duration(h.busy * float64(d))
	h.idle += time.Duration(h.free * float64(d))
	h.at = now
}

func (h *fakeHost) load(busy, free float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.advance()
	h.busy, h.free = busy, free
}

func (h *fakeHost) read() (used, idle time.Duration, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.advance()
	return h.used, h.idle, h.idleKnown
}

func TestControllerFollowsTheLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))) }
		const justAfter = time.Millisecond // a load changes right after a window ends
		h := &fakeHost{at: start, idleKnown: true, free: 4}
		var mu sync.Mutex
		var set []int
		var changes []string
		c := &Controller{
			Window: time.Second, Max: 4, Read: h.read,
			Set: func(n int) { mu.Lock(); set = append(set, n); mu.Unlock() },
			Changed: func(from, to int, s Sample) {
				changes = append(changes, fmt.Sprintf("%d to %d at %.1f", from, to, s.Busy))
			},
		}
		stop := c.Start(context.Background())

		at(3*time.Second + justAfter) // three idle windows: one P
		h.load(1, 3)                  // one P kept busy, three CPUs idle
		at(4*time.Second + justAfter) // the window that showed it: 2 Ps
		h.load(2, 2)
		at(5*time.Second + justAfter) // 4 Ps, the most
		h.load(4, 0)
		at(8*time.Second + justAfter) // three windows at the most
		h.load(0.2, 3.8)
		at(10*time.Second + time.Second/2) // two light windows: no change yet
		mu.Lock()
		mid := slices.Clone(set)
		mu.Unlock()
		at(14*time.Second + time.Second/2) // the third: 2 Ps; three more: 1
		stop()

		if want := []int{1, 2, 4}; !slices.Equal(mid, want) {
			t.Errorf("Ps set before the third light window: %v, want %v", mid, want)
		}
		if want := []int{1, 2, 4, 2, 1}; !slices.Equal(set, want) {
			t.Errorf("Ps set: %v, want %v", set, want)
		}
		if want := []string{"1 to 2 at 1.0", "2 to 4 at 2.0", "4 to 2 at 0.2", "2 to 1 at 0.2"}; !slices.Equal(changes, want) {
			t.Errorf("changes reported: %q, want %q", changes, want)
		}
	})
}

// Without the host's idle time the controller raises on the process's
// own use alone.
func TestControllerWithoutHostIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &fakeHost{at: time.Now(), busy: 1}
		var set []int
		c := &Controller{Window: time.Second, Max: 8, Read: h.read, Set: func(n int) { set = append(set, n) }}
		stop := c.Start(context.Background())
		time.Sleep(1500 * time.Millisecond)
		stop()
		if want := []int{1, 2}; !slices.Equal(set, want) {
			t.Errorf("Ps set: %v, want %v", set, want)
		}
	})
}
