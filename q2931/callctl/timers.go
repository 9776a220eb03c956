package callctl

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/condis-project/condis/uni"
)

// TimerQueue carries out the timer operations of one association's
// uni.Link Outputs, as uni.Scheduler does, with the same contract (Apply and Stop
// with mu held; fire called with mu held, never for a timer that was
// stopped or started again since). uni.Scheduler gives every running timer
// a runtime timer of its own; each call starts and stops several (T303 or
// T310, T313, T308), and at tens of thousands of calls per second that
// was a twentieth of the CPU. Here there is one runtime timer per peer: a
// start appends to the queue of its duration (deadlines of one duration
// come in order), a stop only forgets the key, and queue entries of
// stopped timers are dropped when reached or compacted away.
type TimerQueue struct {
	mu      sync.Locker
	fire    func(uni.TimerKey)
	running map[timerKey]uint64 // started timers: the generation of their start
	queues  []*timerFIFO        // one per duration
	gen     uint64
	t       *time.Timer
	// Deadlines are durations since base: reading the monotonic clock
	// alone (time.Since) costs half of time.Now, which reads the wall
	// clock too, and Apply reads it for nearly every call.
	base    time.Time
	armed   time.Duration // when t fires, since base; valid if isArmed
	isArmed bool
	stopped bool
}

// timerFIFO holds the starts of one duration, in deadline order; q[head:]
// is live or not yet dropped.
type timerFIFO struct {
	after time.Duration
	q     []timerStart
	head  int
}

type timerStart struct {
	at  time.Duration // since the queue's base
	key timerKey
	gen uint64
}

// timerKey is a uni.TimerKey packed into a word, so that the running map
// takes the runtime's fast path for integer keys (a struct key with
// padding is hashed and compared field by field, through calls).
type timerKey uint64

func packTimer(k uni.TimerKey) timerKey {
	x := uint64(k.Timer) | uint64(k.Endpoint)<<8 | uint64(k.Call.Ref)<<24
	if k.Call.Local {
		x |= 1 << 56
	}
	return timerKey(x)
}

func (x timerKey) unpack() uni.TimerKey {
	return uni.TimerKey{Timer: uni.TimerID(x), Endpoint: uint16(x >> 8),
		Call: uni.CallID{Ref: uint32(x >> 24), Local: x>>56&1 != 0}}
}

// NewTimerQueue returns a TimerQueue whose expiries call fire with mu
// held (mu is the lock of the association's owner, held by whoever calls
// Apply and Stop).
func NewTimerQueue(mu sync.Locker, fire func(uni.TimerKey)) *TimerQueue {
	return &TimerQueue{mu: mu, fire: fire, running: map[timerKey]uint64{}, base: time.Now()}
}

// Apply carries out ops in order; mu is held.
func (tq *TimerQueue) Apply(ops []uni.TimerOp) {
	if len(ops) == 0 || tq.stopped {
		return
	}
	now, read := time.Duration(0), false
	for _, op := range ops {
		k := packTimer(op.Key)
		delete(tq.running, k)
		if !op.Start {
			continue
		}
		if !read {
			now, read = time.Since(tq.base), true
		}
		tq.gen++
		tq.running[k] = tq.gen
		at := now + op.After
		tq.fifo(op.After).push(timerStart{at: at, key: k, gen: tq.gen}, len(tq.running), tq.running)
		if !tq.isArmed || at < tq.armed {
			tq.arm(at, now)
		}
	}
}

// fifo returns the queue of duration after.
func (tq *TimerQueue) fifo(after time.Duration) *timerFIFO {
	for _, f := range tq.queues {
		if f.after == after {
			return f
		}
	}
	f := &timerFIFO{after: after}
	tq.queues = append(tq.queues, f)
	return f
}

// push appends e; when the queue holds many more entries than there are
// running timers, the stopped ones are dropped first (amortised O(1)).
func (f *timerFIFO) push(e timerStart, live int, running map[timerKey]uint64) {
	if n := len(f.q) - f.head; n >= 64 && n > 4*live {
		kept := f.q[:0]
		for _, x := range f.q[f.head:] {
			if running[x.key] == x.gen {
				kept = append(kept, x)
			}
		}
		clear(f.q[len(kept):])
		f.q, f.head = kept, 0
	}
	f.q = append(f.q, e)
}

// dropStopped drops stopped timers from the front of f and returns the
// first live deadline; ok is false if there is none.
func (f *timerFIFO) dropStopped(running map[timerKey]uint64) (at time.Duration, ok bool) {
	for f.head < len(f.q) {
		x := f.q[f.head]
		if running[x.key] == x.gen {
			return x.at, true
		}
		f.q[f.head] = timerStart{}
		f.head++
	}
	f.q, f.head = f.q[:0], 0
	return 0, false
}

func (tq *TimerQueue) arm(at, now time.Duration) {
	tq.armed, tq.isArmed = at, true
	if tq.t == nil {
		tq.t = time.AfterFunc(at-now, tq.expired)
		return
	}
	tq.t.Reset(at - now)
}

// expired fires the timers that are due and arms for the next.
func (tq *TimerQueue) expired() {
	tq.mu.Lock()
	defer tq.mu.Unlock()
	if tq.stopped {
		return
	}
	now := time.Since(tq.base)
	tq.isArmed = false
	var due []timerStart
	for _, f := range tq.queues {
		for f.head < len(f.q) && f.q[f.head].at <= now {
			x := f.q[f.head]
			f.q[f.head] = timerStart{}
			f.head++
			if tq.running[x.key] == x.gen {
				due = append(due, x)
			}
		}
	}
	slices.SortFunc(due, func(a, b timerStart) int { return cmp.Compare(a.at, b.at) })
	for _, x := range due {
		if tq.running[x.key] != x.gen {
			continue // stopped by an earlier expiry's output
		}
		delete(tq.running, x.key)
		tq.fire(x.key.unpack())
	}
	if tq.stopped {
		return
	}
	next, found := time.Duration(0), false
	for _, f := range tq.queues {
		if at, ok := f.dropStopped(tq.running); ok && (!found || at < next) {
			next, found = at, true
		}
	}
	if found && (!tq.isArmed || next < tq.armed) {
		tq.arm(next, now)
	}
}

// Stop stops every timer; mu is held. Nothing fires afterwards.
func (tq *TimerQueue) Stop() {
	tq.stopped = true
	if tq.t != nil {
		tq.t.Stop()
	}
	clear(tq.running)
	tq.queues = nil
}
