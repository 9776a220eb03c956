package uni

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// clocked drives one Link with a Scheduler inside a synctest bubble: every
// Output's timer operations are applied, and expiries are fed back to the
// Link and recorded with the virtual time they happened at.
type clocked struct {
	t     *testing.T
	mu    sync.Mutex
	l     *Link
	s     *Scheduler
	start time.Time
	fired []expiry
}

type expiry struct {
	key TimerKey
	at  time.Duration
	out Output
}

func newClocked(t *testing.T, cfg Config) *clocked {
	c := &clocked{t: t, l: NewLink(cfg), start: time.Now()}
	c.s = NewScheduler(&c.mu, func(k TimerKey) {
		o := c.l.Expire(k)
		checkEncodes(t, o)
		c.s.Apply(o.Timers)
		c.fired = append(c.fired, expiry{k, time.Since(c.start), o})
	})
	return c
}

// do runs an input under the mutex and applies its timer operations.
func (c *clocked) do(f func(l *Link) Output) Output {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := f(c.l)
	c.s.Apply(o.Timers)
	return o
}

// advance lets d of virtual time pass and returns the expiries meanwhile.
func (c *clocked) advance(d time.Duration) []expiry {
	time.Sleep(d)
	synctest.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.fired
	c.fired = nil
	return f
}

// one expects exactly one expiry of timer t, d from now, and returns its
// Output; nothing fires before.
func (c *clocked) one(t TimerID, d time.Duration) Output {
	c.t.Helper()
	if early := c.advance(d - time.Millisecond); len(early) != 0 {
		c.t.Fatalf("%v: %v fired %v early", t, early[0].key, time.Millisecond)
	}
	before := time.Since(c.start)
	f := c.advance(time.Millisecond)
	if len(f) != 1 || f[0].key.Timer != t {
		c.t.Fatalf("expiries %+v, want one %v", f, t)
	}
	if f[0].at != before+time.Millisecond {
		c.t.Errorf("%v fired at %v", t, f[0].at)
	}
	return f[0].out
}

// quiet expects nothing to fire for d and that n timers run.
func (c *clocked) quiet(d time.Duration, n int) {
	c.t.Helper()
	if f := c.advance(d); len(f) != 0 {
		c.t.Fatalf("unexpected expiries %+v", f)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if got := c.s.Pending(); got != n {
		c.t.Errorf("%d timers running, want %d", got, n)
	}
}

func (c *clocked) setup(p2mp bool) CallID {
	var id CallID
	c.do(func(l *Link) Output {
		var o Output
		var err error
		id, o, err = l.Setup(setupMsg(p2mp))
		if err != nil {
			c.t.Fatal(err)
		}
		return o
	})
	return id
}

func (c *clocked) recv(m *Message) Output { return c.do(func(l *Link) Output { return l.Receive(m) }) }

func (c *clocked) req(f func(l *Link) (Output, error)) Output {
	c.t.Helper()
	return c.do(func(l *Link) Output { return ok(c.t)(f(l)) })
}

func wantCause(t *testing.T, got CauseIE, v Cause, diag string) {
	t.Helper()
	if got.Value != v || !bytes.Equal(got.Diagnostic, []byte(diag)) && diag != "" {
		t.Errorf("cause %v diagnostic %q, want %v %q", got.Value, got.Diagnostic, v, diag)
	}
}

// TestTimerExpiries runs each timer to its first and (where it has one)
// second expiry in virtual time and checks the action of each.
func TestTimerExpiries(t *testing.T) {
	d := DefaultTimers()
	connect := func(c *clocked, id CallID) {
		m := peerMsg(MsgConnect, id)
		if c.l.calls.Get(id.key()).p2mp {
			m.EndpointRef = peerEP(id, 0)
		}
		c.recv(m)
	}

	t.Run("T303", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			id := c.setup(false)
			o := c.one(T303, d.T303)
			// 1st expiry: the same SETUP again, T303 restarted.
			if m := wantSent(t, o, MsgSetup); m.CallRef != id.wire() {
				t.Errorf("SETUP again on %v", m.CallRef)
			}
			wantTimers(t, o, "+T303")
			wantInds(t, o)
			wantState(t, c.l, id, StateCallInitiated)
			// 2nd expiry: RELEASE COMPLETE 102 "303", the call is gone.
			o = c.one(T303, d.T303)
			wantCause(t, wantSent(t, o, MsgReleaseComplete).Causes[0], CauseTimerExpiry, "303")
			wantInds(t, o, IndReleased)
			wantCause(t, o.Indications[0].Cause, CauseTimerExpiry, "303")
			wantState(t, c.l, id, StateNull)
			c.quiet(time.Hour, 0)
		})
	})
	t.Run("T310", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			id := c.setup(false)
			c.advance(time.Second)
			c.recv(peerMsg(MsgCallProceeding, id))
			o := c.one(T310, d.T310)
			wantCause(t, wantSent(t, o, MsgRelease).Causes[0], CauseTimerExpiry, "310")
			wantTimers(t, o, "+T308")
			wantInds(t, o, IndReleased)
			wantState(t, c.l, id, StateReleaseRequest)
			// Then T308 runs its course; no second IndReleased.
			wantSent(t, c.one(T308, d.T308), MsgRelease)
			o = c.one(T308, d.T308)
			wantSent(t, o)
			wantInds(t, o)
			wantState(t, c.l, id, StateNull)
			c.quiet(time.Hour, 0)
		})
	})
	t.Run("T313", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			c.recv(peerMsg(MsgSetup, remoteCall))
			c.req(func(l *Link) (Output, error) { return l.Accept(remoteCall, nil) })
			o := c.one(T313, d.T313)
			wantCause(t, wantSent(t, o, MsgRelease).Causes[0], CauseTimerExpiry, "313")
			wantTimers(t, o, "+T308")
			wantInds(t, o, IndReleased)
			wantState(t, c.l, remoteCall, StateReleaseRequest)
			// The RELEASE COMPLETE then ends it silently.
			o = c.recv(&Message{Type: MsgReleaseComplete, CallRef: peerRef(remoteCall)})
			wantInds(t, o)
			wantTimers(t, o, "-T308")
			c.quiet(time.Hour, 0)
		})
	})
	t.Run("T308", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			id := c.setup(false)
			connect(c, id)
			c.req(func(l *Link) (Output, error) { return l.Release(id, NewCause(CauseNormalCallClearing)) })
			// 1st expiry: RELEASE again with the original cause.
			o := c.one(T308, d.T308)
			wantCause(t, wantSent(t, o, MsgRelease).Causes[0], CauseNormalCallClearing, "")
			wantTimers(t, o, "+T308")
			wantInds(t, o)
			// 2nd expiry: released locally, nothing sent.
			o = c.one(T308, d.T308)
			wantSent(t, o)
			wantInds(t, o, IndReleased)
			wantState(t, c.l, id, StateNull)
			c.quiet(time.Hour, 0)
		})
	})
	t.Run("T309", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			id := c.setup(false)
			connect(c, id)
			c.do(func(l *Link) Output { return l.LinkDown() })
			o := c.one(T309, d.T309)
			wantSent(t, o)
			wantInds(t, o, IndReleased)
			wantCause(t, o.Indications[0].Cause, CauseDestinationOutOfOrder, "")
			wantState(t, c.l, id, StateNull)
			c.quiet(time.Hour, 0)
		})
	})
	t.Run("T309 stopped by LinkUp", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			id := c.setup(false)
			connect(c, id)
			c.do(func(l *Link) Output { return l.LinkDown() })
			c.quiet(d.T309-time.Second, 1)
			wantSent(t, c.do(func(l *Link) Output { return l.LinkUp() }), MsgStatusEnquiry)
			// Only T322 of the audit runs; T309 never fires.
			c.recv(peerMsg(MsgStatus, id))
			c.quiet(time.Hour, 0)
			wantState(t, c.l, id, StateActive)
		})
	})
	t.Run("T316", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			c.req(func(l *Link) (Output, error) { return l.Restart(nil) })
			o := c.one(T316, d.T316)
			if m := wantSent(t, o, MsgRestart); m.Restart.Class != RestartAllVCs {
				t.Errorf("RESTART again: %+v", m.Restart)
			}
			wantTimers(t, o, "+T316")
			o = c.one(T316, d.T316)
			wantSent(t, o)
			wantInds(t, o, IndRestartFailed)
			if c.l.RestartState() != RestNull {
				t.Errorf("%v", c.l.RestartState())
			}
			c.quiet(time.Hour, 0)
		})
	})
	t.Run("T317", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			c.recv(peerMsg(MsgRestart, CallID{}))
			o := c.one(T317, d.T317)
			wantSent(t, o, MsgRestartAck)
			wantInds(t, o, IndRestartTimeout)
			if c.l.RestartState() != RestNull {
				t.Errorf("%v", c.l.RestartState())
			}
			c.quiet(time.Hour, 0)
		})
	})
	t.Run("T322", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			id := c.setup(false)
			connect(c, id)
			c.req(func(l *Link) (Output, error) { return l.StatusEnquiry(id) })
			o := c.one(T322, d.T322)
			wantSent(t, o, MsgStatusEnquiry)
			wantTimers(t, o, "+T322")
			o = c.one(T322, d.T322)
			wantCause(t, wantSent(t, o, MsgRelease).Causes[0], CauseTemporaryFailure, "")
			wantInds(t, o, IndReleased)
			wantState(t, c.l, id, StateReleaseRequest)
			c.recv(&Message{Type: MsgReleaseComplete, CallRef: peerRef(id)})
			c.quiet(time.Hour, 0)
		})
	})
	t.Run("T360", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			id := c.setup(false)
			connect(c, id)
			c.req(func(l *Link) (Output, error) { return l.ModifyQoS(id, trafficUBR()) })
			o := c.one(T360, d.T360)
			wantCause(t, wantSent(t, o, MsgRelease).Causes[0], CauseTimerExpiry, "360")
			wantInds(t, o, IndModifyRejected, IndReleased)
			wantCause(t, o.Indications[0].Cause, CauseTimerExpiry, "360")
			wantState(t, c.l, id, StateReleaseRequest)
		})
	})
	t.Run("T398", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			id := c.setup(true)
			connect(c, id)
			c.req(func(l *Link) (Output, error) {
				_, o, err := l.AddParty(id, &Message{Called: CalledAESA(aesaCallee)})
				return o, err
			})
			c.recv(peerPartyMsg(MsgAddPartyAck, id, 1))
			c.req(func(l *Link) (Output, error) { return l.DropParty(id, 1, NewCause(CauseNormalCallClearing)) })
			o := c.one(T398, d.T398)
			wantSent(t, o)
			wantInds(t, o, IndPartyDropped)
			wantCause(t, o.Indications[0].Cause, CauseTimerExpiry, "398")
			if _, exists := c.l.PartyState(id, 1); exists {
				t.Error("party survived T398")
			}
			wantState(t, c.l, id, StateActive)
			c.quiet(time.Hour, 0)
		})
	})
	t.Run("T399", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			c := newClocked(t, Config{})
			id := c.setup(true)
			connect(c, id)
			c.req(func(l *Link) (Output, error) {
				_, o, err := l.AddParty(id, &Message{Called: CalledAESA(aesaCallee)})
				return o, err
			})
			o := c.one(T399, d.T399)
			m := wantSent(t, o, MsgDropParty)
			wantCause(t, m.Causes[0], CauseTimerExpiry, "399")
			if m.EndpointRef.Value != 1 {
				t.Errorf("DROP PARTY for %d", m.EndpointRef.Value)
			}
			wantInds(t, o, IndPartyRejected)
			wantTimers(t, o, "+T398")
			// The withdrawal then times out silently.
			o = c.one(T398, d.T398)
			wantInds(t, o)
			if !slices.Equal(c.l.Parties(id), []uint16{0}) {
				t.Errorf("parties %v", c.l.Parties(id))
			}
			c.quiet(time.Hour, 0)
		})
	})
}

// TestTimersStoppedByAnswers: the answer each timer waits for stops it, so
// nothing fires afterwards.
func TestTimersStoppedByAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClocked(t, Config{})
		id := c.setup(true)
		c.advance(time.Second)
		c.recv(peerMsg(MsgCallProceeding, id)) // T303 → T310
		c.advance(time.Second)
		conn := peerMsg(MsgConnect, id)
		conn.EndpointRef = peerEP(id, 0)
		c.recv(conn) // T310 stopped
		c.quiet(time.Minute, 0)
		c.req(func(l *Link) (Output, error) {
			_, o, err := l.AddParty(id, &Message{Called: CalledAESA(aesaCallee)})
			return o, err
		})
		c.recv(peerPartyMsg(MsgAddPartyAck, id, 1)) // T399 stopped
		c.req(func(l *Link) (Output, error) { return l.ModifyQoS(id, trafficUBR()) })
		c.recv(peerMsg(MsgModifyAck, id)) // T360 stopped
		c.req(func(l *Link) (Output, error) { return l.StatusEnquiry(id) })
		c.recv(peerMsg(MsgStatus, id)) // T322 stopped
		c.req(func(l *Link) (Output, error) { return l.DropParty(id, 1, NewCause(CauseNormalCallClearing)) })
		c.recv(peerPartyMsg(MsgDropPartyAck, id, 1)) // T398 stopped
		c.quiet(time.Hour, 0)
		c.req(func(l *Link) (Output, error) { return l.Release(id, NewCause(CauseNormalCallClearing)) })
		c.recv(&Message{Type: MsgReleaseComplete, CallRef: peerRef(id)}) // T308 stopped
		c.req(func(l *Link) (Output, error) { return l.Restart(nil) })
		ack := peerMsg(MsgRestartAck, CallID{})
		c.recv(ack) // T316 stopped
		c.recv(peerMsg(MsgRestart, CallID{}))
		c.req(func(l *Link) (Output, error) { return l.RestartDone(nil) }) // T317 stopped
		c.quiet(time.Hour, 0)
	})
}

// TestConfiguredTimers: values from Config apply; zero fields default.
func TestConfiguredTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClocked(t, Config{Timers: Timers{T303: 1500 * time.Millisecond, T308: time.Second}})
		if got := c.l.Timers(); got.T303 != 1500*time.Millisecond || got.T310 != 10*time.Second || got.T316 != 2*time.Minute {
			t.Errorf("timers %+v", got)
		}
		id := c.setup(false)
		c.one(T303, 1500*time.Millisecond)
		c.one(T303, 1500*time.Millisecond)
		id2 := c.setup(false)
		if id2 == id {
			t.Errorf("reference reused")
		}
		c.req(func(l *Link) (Output, error) { return l.Release(id2, NewCause(CauseNormalCallClearing)) })
		c.one(T308, time.Second)
		c.one(T308, time.Second)
	})
	d := DefaultTimers()
	want := map[TimerID]time.Duration{T303: 4 * time.Second, T308: 30 * time.Second, T309: 10 * time.Second,
		T310: 10 * time.Second, T313: 4 * time.Second, T316: 2 * time.Minute, T317: time.Minute, T322: 4 * time.Second,
		T360: 30 * time.Second, T398: 4 * time.Second, T399: 14 * time.Second}
	for id, v := range want {
		if d.Value(id) != v {
			t.Errorf("%v default %v, want %v", id, d.Value(id), v)
		}
	}
	if d.T317 >= d.T316 {
		t.Error("T317 must be below T316")
	}
}

// TestStaleExpiries: expiries of timers the Link is not running change
// nothing.
func TestStaleExpiries(t *testing.T) {
	l, id := linkIn(t, StateActive, true, true)
	for tm := T303; tm < numTimers; tm++ {
		for _, k := range []TimerKey{{Timer: tm}, {Timer: tm, Call: id}, {Timer: tm, Call: id, Endpoint: 0}, {Timer: tm, Call: CallID{Ref: 99}}} {
			if o := l.Expire(k); !o.Empty() {
				t.Errorf("stale %v acted: %+v", k, o)
			}
		}
	}
	wantState(t, l, id, StateActive)
	// An expiry for a timer that has been replaced by another call timer.
	l, id = linkIn(t, StateOutgoingCallProceeding, true, false)
	if o := l.Expire(TimerKey{Timer: T303, Call: id}); !o.Empty() {
		t.Errorf("T303 acted in U3: %+v", o)
	}
}

// TestScheduler: Apply starts, replaces and stops timers; a stopped or
// replaced timer never reaches fire; Stop stops all.
func TestScheduler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var fired []string
		start := time.Now()
		var s *Scheduler
		s = NewScheduler(&mu, func(k TimerKey) {
			fired = append(fired, k.String()+"@"+time.Since(start).String())
			if k.Timer == T303 {
				// fire may apply further operations: it holds the mutex.
				s.Apply([]TimerOp{{Key: TimerKey{Timer: T308}, Start: true, After: 2 * time.Second}})
			}
		})
		a := TimerKey{Timer: T303, Call: CallID{Ref: 1, Local: true}}
		b := TimerKey{Timer: T310, Call: CallID{Ref: 2}}
		cKey := TimerKey{Timer: T322, Call: CallID{Ref: 3}}
		mu.Lock()
		s.Apply([]TimerOp{
			{Key: a, Start: true, After: 4 * time.Second},
			{Key: b, Start: true, After: 2 * time.Second},
			{Key: cKey, Start: true, After: 3 * time.Second},
			{Key: b, Start: true, After: 5 * time.Second}, // replaces
			{Key: cKey}, // stops
		})
		if s.Pending() != 2 || !s.Running(a) || s.Running(cKey) {
			t.Errorf("pending %d", s.Pending())
		}
		mu.Unlock()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		mu.Lock()
		want := []string{"T303 local cr=0x1@4s", "T310 remote cr=0x2@5s", "T308@6s"}
		if !slices.Equal(fired, want) {
			t.Errorf("fired %v, want %v", fired, want)
		}
		s.Apply([]TimerOp{{Key: a, Start: true, After: time.Second}, {Key: b, Start: true, After: time.Second}})
		s.Stop()
		if s.Pending() != 0 {
			t.Errorf("pending %d after Stop", s.Pending())
		}
		mu.Unlock()
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(fired) != 3 {
			t.Errorf("fired after Stop: %v", fired)
		}
	})
}

// chanLocker is a sync.Locker made of a channel: a goroutine waiting for
// it is durably blocked, so a synctest bubble's clock keeps running while
// a timer callback waits for the lock.
type chanLocker chan struct{}

func (c chanLocker) Lock()   { c <- struct{}{} }
func (c chanLocker) Unlock() { <-c }

// TestSchedulerLateFire: a timer that fired while its owner held the lock
// and meanwhile stopped or replaced it is not delivered.
func TestSchedulerLateFire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mu := make(chanLocker, 1)
		var fired []time.Duration
		start := time.Now()
		s := NewScheduler(mu, func(TimerKey) { fired = append(fired, time.Since(start)) })
		k := TimerKey{Timer: T322, Call: CallID{Ref: 1, Local: true}}
		stopped := TimerKey{Timer: T308, Call: CallID{Ref: 2, Local: true}}

		mu.Lock()
		s.Apply([]TimerOp{{Key: k, Start: true, After: time.Second}, {Key: stopped, Start: true, After: time.Second}})
		time.Sleep(2 * time.Second) // both fire at 1s and wait for the lock
		s.Apply([]TimerOp{{Key: k, Start: true, After: 10 * time.Second}, {Key: stopped}})
		mu.Unlock()
		synctest.Wait()
		mu.Lock()
		if len(fired) != 0 {
			t.Errorf("stale expiries delivered at %v", fired)
		}
		if s.Pending() != 1 {
			t.Errorf("%d timers pending, want the replacement", s.Pending())
		}
		mu.Unlock()

		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(fired) != 1 || fired[0] != 12*time.Second {
			t.Errorf("fired at %v, want once at 12s", fired)
		}
	})
}
