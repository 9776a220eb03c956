package uni

import (
	"strconv"
	"sync"
	"time"
)

// TimerID names a Q.2931 / UNI 3.1 (or Q.2963.1) timer. The zero value is
// not a timer.
type TimerID uint8

// Timers of the user side (field-notes §5.3; docs/protocol.md §10).
const (
	T303 TimerID = iota + 1 // SETUP sent; 1st expiry: SETUP again; 2nd: RELEASE COMPLETE 102, call cleared
	T308                    // RELEASE sent; 1st: RELEASE again; 2nd: call reference released locally
	T309                    // signalling link lost with active calls; expiry: those calls cleared, cause 27
	T310                    // CALL PROCEEDING received; expiry: RELEASE 102
	T313                    // CONNECT sent; expiry: RELEASE 102
	T316                    // RESTART sent; 1st: RESTART again; 2nd: restart failed (maintenance alarm)
	T317                    // RESTART received; expiry: RESTART ACKNOWLEDGE anyway, maintenance alarm
	T322                    // STATUS ENQUIRY sent; 1st: STATUS ENQUIRY again; 2nd: RELEASE 41
	T360                    // MODIFY REQUEST sent (Q.2963.1); expiry: modification refused, RELEASE 102
	T398                    // DROP PARTY sent; expiry: party released locally
	T399                    // ADD PARTY sent; expiry: party refused (102), DROP PARTY
	numTimers
)

var timerNumbers = [numTimers]string{
	T303: "303", T308: "308", T309: "309", T310: "310", T313: "313", T316: "316",
	T317: "317", T322: "322", T360: "360", T398: "398", T399: "399",
}

// String returns the timer's name, e.g. "T303".
func (t TimerID) String() string {
	if t > 0 && t < numTimers {
		return "T" + timerNumbers[t]
	}
	return "timer " + strconv.Itoa(int(t))
}

// diagnostic is the Cause IE diagnostic of cause 102 for the timer: its
// number as three IA5 digits.
func (t TimerID) diagnostic() []byte { return []byte(timerNumbers[t]) }

// Timers holds the timer values of a Link. A zero field takes the UNI 3.1
// default (DefaultTimers).
type Timers struct {
	T303, T308, T309, T310, T313, T316, T317, T322, T360, T398, T399 time.Duration
}

// DefaultTimers returns the UNI 3.1 defaults (Q.2963.1 for T360; T317 is
// implementation dependent and must be below T316).
func DefaultTimers() Timers {
	return Timers{
		T303: 4 * time.Second,
		T308: 30 * time.Second,
		T309: 10 * time.Second,
		T310: 10 * time.Second,
		T313: 4 * time.Second,
		T316: 2 * time.Minute,
		T317: 60 * time.Second,
		T322: 4 * time.Second,
		T360: 30 * time.Second,
		T398: 4 * time.Second,
		T399: 14 * time.Second,
	}
}

func (t *Timers) ptr(id TimerID) *time.Duration {
	switch id {
	case T303:
		return &t.T303
	case T308:
		return &t.T308
	case T309:
		return &t.T309
	case T310:
		return &t.T310
	case T313:
		return &t.T313
	case T316:
		return &t.T316
	case T317:
		return &t.T317
	case T322:
		return &t.T322
	case T360:
		return &t.T360
	case T398:
		return &t.T398
	case T399:
		return &t.T399
	}
	return nil
}

// Value returns the duration of the timer.
func (t Timers) Value(id TimerID) time.Duration {
	if p := t.ptr(id); p != nil {
		return *p
	}
	return 0
}

// withDefaults fills zero fields with the defaults.
func (t Timers) withDefaults() Timers {
	d := DefaultTimers()
	for id := T303; id < numTimers; id++ {
		if p := t.ptr(id); *p <= 0 {
			*p = d.Value(id)
		}
	}
	return t
}

// TimerKey identifies one running timer of a Link: the timer, the call it
// belongs to (zero for T309, T316 and T317, which belong to the link) and,
// for T398 and T399, the party's endpoint reference.
type TimerKey struct {
	Timer    TimerID
	Call     CallID
	Endpoint uint16
}

// String formats the key for logs.
func (k TimerKey) String() string {
	s := k.Timer.String()
	if k.Call != (CallID{}) {
		s += " " + k.Call.String()
	}
	if k.Timer == T398 || k.Timer == T399 {
		s += " ep=" + strconv.Itoa(int(k.Endpoint))
	}
	return s
}

// TimerOp is one timer operation of an Output: start Key to expire After
// from now (a running timer with the same key is replaced), or stop it.
type TimerOp struct {
	Key   TimerKey
	Start bool
	After time.Duration // when Start
}

// Scheduler carries out the timer operations of a Link's Outputs on Go
// runtime timers (time.AfterFunc) and reports expiries through a callback.
// It starts no goroutines of its own; inside a testing/synctest bubble its
// timers run on the bubble's virtual clock.
//
// Concurrency contract: the Scheduler is guarded by the mutex given to
// NewScheduler. Apply, Stop and Pending must be called with it held, and
// fire is called with it held. Because the check "is this timer still the
// one that was started" and the delivery happen under that one mutex, fire
// is never called for a timer that Apply has stopped or replaced. fire must
// not block (queue messages for sending instead of writing them).
type Scheduler struct {
	mu     sync.Locker
	fire   func(TimerKey)
	timers map[TimerKey]*scheduled
	seq    uint64
}

type scheduled struct {
	t   *time.Timer
	seq uint64
}

// NewScheduler returns a Scheduler that calls fire(key), with mu held, when
// a timer expires. Typically fire feeds the key to Link.Expire and applies
// the returned Output.
func NewScheduler(mu sync.Locker, fire func(TimerKey)) *Scheduler {
	return &Scheduler{mu: mu, fire: fire, timers: make(map[TimerKey]*scheduled)}
}

// Apply carries out ops in order. Call it with the mutex held.
func (s *Scheduler) Apply(ops []TimerOp) {
	for _, op := range ops {
		if e := s.timers[op.Key]; e != nil {
			e.t.Stop()
			delete(s.timers, op.Key)
		}
		if !op.Start {
			continue
		}
		s.seq++
		key, e := op.Key, &scheduled{seq: s.seq}
		e.t = time.AfterFunc(op.After, func() { s.expired(key, e.seq) })
		s.timers[key] = e
	}
}

func (s *Scheduler) expired(key TimerKey, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.timers[key]; e == nil || e.seq != seq {
		return // stopped or replaced after it fired
	}
	delete(s.timers, key)
	s.fire(key)
}

// Stop stops every timer. Call it with the mutex held.
func (s *Scheduler) Stop() {
	for k, e := range s.timers {
		e.t.Stop()
		delete(s.timers, k)
	}
}

// Pending returns the number of running timers. Call it with the mutex held.
func (s *Scheduler) Pending() int { return len(s.timers) }

// Running reports whether the timer key is running. Call it with the mutex
// held.
func (s *Scheduler) Running(key TimerKey) bool { return s.timers[key] != nil }
