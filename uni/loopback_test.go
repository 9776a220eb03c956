package uni

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// wire connects two Links, each with its own Scheduler, inside a synctest
// bubble. Every message a Link outputs is encoded with the real codec,
// queued, decoded and fed to the other Link; the queue is drained after
// each input unless the test holds it (to make messages cross).
type wire struct {
	t     *testing.T
	mu    sync.Mutex // one lock for both sides: the Schedulers' mutex
	a, b  *end
	queue []packet
	hold  bool
	// drop, when set, loses a message in transit.
	drop func(from *end, m *Message) bool
	sent []string // "A>SETUP", in order, for the scenario's sequence checks
}

type end struct {
	name string
	l    *Link
	s    *Scheduler
	peer *end
	inds []Indication
	all  []Indication // every indication ever, for the end-of-scenario checks
}

type packet struct {
	to *end
	b  []byte
}

func newWire(t *testing.T) *wire {
	w := &wire{t: t}
	w.a = &end{name: "A", l: NewLink(Config{})}
	w.b = &end{name: "B", l: NewLink(Config{})}
	w.a.peer, w.b.peer = w.b, w.a
	for _, e := range []*end{w.a, w.b} {
		e.s = NewScheduler(&w.mu, func(k TimerKey) {
			w.commit(e, e.l.Expire(k))
			w.pump()
		})
	}
	return w
}

// commit carries out an Output: timers, indications, messages onto the wire.
func (w *wire) commit(e *end, o Output) {
	e.s.Apply(o.Timers)
	e.inds = append(e.inds, o.Indications...)
	e.all = append(e.all, o.Indications...)
	for _, m := range o.Messages {
		b, err := m.Msg.Encode()
		if err != nil {
			w.t.Errorf("%s sends %v that does not encode: %v", e.name, m.Msg.Type, err)
			continue
		}
		if m.Msg.CallRef != m.Call.wire() && m.Call != (CallID{}) {
			w.t.Errorf("%s: %v on %v filed under %v", e.name, m.Msg.Type, m.Msg.CallRef, m.Call)
		}
		if w.drop != nil && w.drop(e, m.Msg) {
			continue
		}
		w.sent = append(w.sent, e.name+">"+m.Msg.Type.String())
		w.queue = append(w.queue, packet{e.peer, b})
	}
}

func (w *wire) pump() {
	for !w.hold && len(w.queue) > 0 {
		p := w.queue[0]
		w.queue = w.queue[1:]
		w.commit(p.to, p.to.l.ReceiveBytes(p.b))
	}
}

// do runs a local request on one end and delivers whatever follows.
func (w *wire) do(e *end, f func(l *Link) (Output, error)) {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	o, err := f(e.l)
	if err != nil {
		w.t.Fatalf("%s: request refused: %v", e.name, err)
	}
	w.commit(e, o)
	w.pump()
}

func (w *wire) event(e *end, f func(l *Link) Output) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.commit(e, f(e.l))
	w.pump()
}

func (w *wire) setup(p2mp bool) CallID {
	var id CallID
	w.do(w.a, func(l *Link) (Output, error) {
		var o Output
		var err error
		id, o, err = l.Setup(setupMsg(p2mp))
		return o, err
	})
	return id
}

// crossing holds the queue while f runs, so the messages sent meanwhile
// cross on the wire.
func (w *wire) crossing(f func()) {
	w.mu.Lock()
	w.hold = true
	w.mu.Unlock()
	f()
	w.mu.Lock()
	w.hold = false
	w.pump()
	w.mu.Unlock()
}

// take returns and forgets the indications an end has received.
func (w *wire) take(e *end) []Indication {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := e.inds
	e.inds = nil
	return i
}

func kinds(is []Indication) []IndicationKind {
	var ks []IndicationKind
	for _, i := range is {
		ks = append(ks, i.Kind)
	}
	return ks
}

func (w *wire) want(e *end, ks ...IndicationKind) []Indication {
	w.t.Helper()
	got := w.take(e)
	if !slices.Equal(kinds(got), ks) {
		w.t.Fatalf("%s got %v, want %v", e.name, kinds(got), ks)
	}
	return got
}

// forget drops the record of messages sent so far.
func (w *wire) forget() {
	w.mu.Lock()
	w.sent = nil
	w.mu.Unlock()
}

func (w *wire) wantSeq(seq ...string) {
	w.t.Helper()
	w.mu.Lock()
	got := w.sent
	w.sent = nil
	w.mu.Unlock()
	if !slices.Equal(got, seq) {
		w.t.Fatalf("on the wire %v, want %v", got, seq)
	}
}

// done checks the end of a scenario: no calls, no timers, and every call
// each end reported ended with exactly one IndReleased.
func (w *wire) done() {
	w.t.Helper()
	time.Sleep(time.Hour)
	synctest.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range []*end{w.a, w.b} {
		if e.l.Calls() != 0 || e.s.Pending() != 0 || len(e.inds) != 0 {
			w.t.Errorf("%s: %d calls, %d timers, unread %v", e.name, e.l.Calls(), e.s.Pending(), kinds(e.inds))
		}
		started := map[CallID]bool{}
		released := map[CallID]int{}
		for _, i := range e.all {
			switch i.Kind {
			case IndSetup:
				started[i.Call] = true
			case IndReleased:
				released[i.Call]++
			}
		}
		for id, n := range released {
			if n != 1 {
				w.t.Errorf("%s: %v released %d times", e.name, id, n)
			}
		}
		for id := range started {
			if released[id] != 1 {
				w.t.Errorf("%s: %v never released", e.name, id)
			}
		}
	}
	if len(w.queue) != 0 {
		w.t.Errorf("%d messages undelivered", len(w.queue))
	}
}

// connect sets up a call from A to B through to U10 on both ends.
func (w *wire) connect(p2mp bool) (CallID, CallID) {
	w.t.Helper()
	id := w.setup(p2mp)
	in := w.want(w.b, IndSetup)[0]
	w.do(w.b, func(l *Link) (Output, error) { return l.Accept(in.Call, nil) })
	w.want(w.a, IndConnected)
	w.want(w.b, IndConnected)
	return id, in.Call
}

func loopback(t *testing.T, name string, f func(t *testing.T, w *wire)) {
	t.Run(name, func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) { f(t, newWire(t)) })
	})
}

func TestLoopback(t *testing.T) {
	normal := NewCause(CauseNormalCallClearing)

	loopback(t, "setup connect release", func(t *testing.T, w *wire) {
		id := w.setup(false)
		in := w.want(w.b, IndSetup)[0]
		if in.Call != (CallID{Ref: id.Ref}) || in.Msg.Called == nil {
			t.Fatalf("B sees %v", in)
		}
		w.do(w.b, func(l *Link) (Output, error) {
			return l.Proceed(in.Call, &ConnectionID{VPAssociated: VPExplicit, VCI: 33})
		})
		w.want(w.a, IndProceeding)
		w.do(w.b, func(l *Link) (Output, error) { return l.Accept(in.Call, nil) })
		w.want(w.a, IndConnected)
		w.want(w.b, IndConnected)
		if ci, _ := w.a.l.ConnectionID(id); ci.VCI != 33 {
			t.Errorf("A has connection id %+v", ci)
		}
		w.do(w.a, func(l *Link) (Output, error) { return l.Release(id, normal) })
		rel := w.want(w.b, IndRelease)[0]
		if rel.Cause.Value != CauseNormalCallClearing {
			t.Errorf("B's close cause %v", rel.Cause)
		}
		w.do(w.b, func(l *Link) (Output, error) { return l.Release(in.Call, normal) })
		if r := w.want(w.a, IndReleased)[0]; r.Cause.Value != 0 && r.Cause.Value != CauseNormalCallClearing {
			t.Errorf("A's close cause %v", r.Cause)
		}
		w.want(w.b, IndReleased)
		w.wantSeq("A>SETUP", "B>CALL PROCEEDING", "B>CONNECT", "A>CONNECT ACKNOWLEDGE", "A>RELEASE", "B>RELEASE COMPLETE")
		w.done()
	})

	loopback(t, "reject", func(t *testing.T, w *wire) {
		w.setup(false)
		in := w.want(w.b, IndSetup)[0]
		w.do(w.b, func(l *Link) (Output, error) {
			return l.Reject(in.Call, NewCause(CauseIncompatibleDestination, byte(IEBHLI)))
		})
		r := w.want(w.a, IndReleased)[0]
		if r.Cause.Value != CauseIncompatibleDestination {
			t.Errorf("A sees %v", r)
		}
		w.want(w.b, IndReleased)
		w.wantSeq("A>SETUP", "B>RELEASE COMPLETE")
		w.done()
	})

	loopback(t, "setup lost once, T303 retransmits", func(t *testing.T, w *wire) {
		lost := 0
		w.drop = func(from *end, m *Message) bool {
			if m.Type == MsgSetup && lost == 0 {
				lost++
				return true
			}
			return false
		}
		id := w.setup(false)
		w.want(w.b)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		in := w.want(w.b, IndSetup)[0]
		w.do(w.b, func(l *Link) (Output, error) { return l.Accept(in.Call, nil) })
		w.want(w.a, IndConnected)
		w.want(w.b, IndConnected)
		w.do(w.b, func(l *Link) (Output, error) { return l.Release(in.Call, normal) })
		w.want(w.b)
		w.want(w.a, IndRelease)
		w.do(w.a, func(l *Link) (Output, error) { return l.Release(id, normal) })
		w.want(w.a, IndReleased)
		w.want(w.b, IndReleased)
		w.wantSeq("A>SETUP", "B>CONNECT", "A>CONNECT ACKNOWLEDGE", "B>RELEASE", "A>RELEASE COMPLETE")
		w.done()
	})

	loopback(t, "clear collision", func(t *testing.T, w *wire) {
		a, b := w.connect(false)
		w.crossing(func() {
			w.do(w.a, func(l *Link) (Output, error) { return l.Release(a, normal) })
			w.do(w.b, func(l *Link) (Output, error) { return l.Release(b, normal) })
		})
		w.want(w.a, IndReleased)
		w.want(w.b, IndReleased)
		// The crossing RELEASEs stand for the RELEASE COMPLETEs: none is sent.
		w.wantSeq("A>SETUP", "B>CONNECT", "A>CONNECT ACKNOWLEDGE", "A>RELEASE", "B>RELEASE")
		w.done()
	})

	loopback(t, "add and drop party", func(t *testing.T, w *wire) {
		a, b := w.connect(true)
		addParty := func() (uint16, Indication) {
			var ep uint16
			w.do(w.a, func(l *Link) (Output, error) {
				var o Output
				var err error
				ep, o, err = l.AddParty(a, &Message{Called: CalledAESA(aesaCallee)})
				return o, err
			})
			return ep, w.want(w.b, IndAddParty)[0]
		}
		ep1, in := addParty()
		if in.Endpoint != ep1 || in.Call != b {
			t.Fatalf("B sees %v", in)
		}
		w.do(w.b, func(l *Link) (Output, error) { return l.AcceptParty(b, ep1) })
		if i := w.want(w.a, IndPartyAdded)[0]; i.Endpoint != ep1 {
			t.Errorf("%v", i)
		}
		// A party refused.
		ep2, _ := addParty()
		w.do(w.b, func(l *Link) (Output, error) { return l.RejectParty(b, ep2, NewCause(CauseUserBusy)) })
		if i := w.want(w.a, IndPartyRejected)[0]; i.Endpoint != ep2 || i.Cause.Value != CauseUserBusy {
			t.Errorf("%v", i)
		}
		w.want(w.b, IndPartyRejected)
		// A drops party 1; B acknowledges.
		w.do(w.a, func(l *Link) (Output, error) { return l.DropParty(a, ep1, normal) })
		w.want(w.b, IndDropParty)
		w.do(w.b, func(l *Link) (Output, error) { return l.DropParty(b, ep1, normal) })
		w.want(w.b, IndPartyDropped)
		w.want(w.a, IndPartyDropped)
		// Crossing DROP PARTYs for party 3.
		ep3, _ := addParty()
		w.do(w.b, func(l *Link) (Output, error) { return l.AcceptParty(b, ep3) })
		w.want(w.a, IndPartyAdded)
		w.crossing(func() {
			w.do(w.a, func(l *Link) (Output, error) { return l.DropParty(a, ep3, normal) })
			w.do(w.b, func(l *Link) (Output, error) { return l.DropParty(b, ep3, normal) })
		})
		w.want(w.a, IndPartyDropped)
		w.want(w.b, IndPartyDropped)
		// The last party goes with RELEASE.
		w.do(w.a, func(l *Link) (Output, error) { return l.DropParty(a, 0, normal) })
		w.want(w.b, IndRelease)
		w.do(w.b, func(l *Link) (Output, error) { return l.Release(b, normal) })
		w.want(w.a, IndReleased)
		w.want(w.b, IndReleased)
		w.wantSeq("A>SETUP", "B>CONNECT", "A>CONNECT ACKNOWLEDGE",
			"A>ADD PARTY", "B>ADD PARTY ACKNOWLEDGE",
			"A>ADD PARTY", "B>ADD PARTY REJECT",
			"A>DROP PARTY", "B>DROP PARTY ACKNOWLEDGE",
			"A>ADD PARTY", "B>ADD PARTY ACKNOWLEDGE",
			"A>DROP PARTY", "B>DROP PARTY",
			"A>RELEASE", "B>RELEASE COMPLETE")
		w.done()
	})

	loopback(t, "modify QoS accepted and refused", func(t *testing.T, w *wire) {
		a, b := w.connect(false)
		td := &TrafficDescriptor{FwdPCR01: Some(250000), BwdPCR01: Some(250000), BestEffort: true}
		w.do(w.a, func(l *Link) (Output, error) { return l.ModifyQoS(a, td) })
		if i := w.want(w.b, IndModify)[0]; i.Traffic.FwdPCR01.Value != 250000 {
			t.Errorf("B is asked for %+v", i.Traffic)
		}
		w.do(w.b, func(l *Link) (Output, error) { return l.AcceptModify(b) })
		if i := w.want(w.a, IndModified)[0]; i.Traffic != td {
			t.Errorf("A modified to %+v", i.Traffic)
		}
		// Refused: the other way round.
		w.do(w.b, func(l *Link) (Output, error) { return l.ModifyQoS(b, trafficUBR()) })
		w.want(w.a, IndModify)
		w.do(w.a, func(l *Link) (Output, error) {
			return l.RejectModify(a, NewCause(CauseCellRateUnavailable))
		})
		if i := w.want(w.b, IndModifyRejected)[0]; i.Cause.Value != CauseCellRateUnavailable {
			t.Errorf("B's modification refused with %v", i.Cause)
		}
		// Collision: A originated the call, so A's request wins. B gives
		// its own up (refused, 101 -> FAILURE), is asked for A's, and
		// absorbs A's MODIFY REJECT of its own without a STATUS.
		w.forget()
		winner := &TrafficDescriptor{FwdPCR01: Some(7000), BwdPCR01: Some(7000), BestEffort: true}
		loser := &TrafficDescriptor{FwdPCR01: Some(9000), BwdPCR01: Some(9000), BestEffort: true}
		w.crossing(func() {
			w.do(w.a, func(l *Link) (Output, error) { return l.ModifyQoS(a, winner) })
			w.do(w.b, func(l *Link) (Output, error) { return l.ModifyQoS(b, loser) })
		})
		w.want(w.a)
		got := w.want(w.b, IndModifyRejected, IndModify)
		if got[0].Traffic != loser || got[0].Cause.Value != CauseMessageIncompatible {
			t.Errorf("B's own request ended with %v, traffic %+v", got[0], got[0].Traffic)
		}
		if got[1].Traffic.FwdPCR01.Value != 7000 {
			t.Errorf("B is asked for %+v, want A's", got[1].Traffic)
		}
		if ms, _ := w.b.l.ModifyState(b); ms != ModifyReceived {
			t.Errorf("B in %v after the late reject, want %v", ms, ModifyReceived)
		}
		w.do(w.b, func(l *Link) (Output, error) { return l.AcceptModify(b) })
		if i := w.want(w.a, IndModified)[0]; i.Traffic != winner {
			t.Errorf("A modified to %+v", i.Traffic)
		}
		for e, id := range map[*end]CallID{w.a: a, w.b: b} {
			if ms, _ := e.l.ModifyState(id); ms != ModifyNone {
				t.Errorf("%s in %v", e.name, ms)
			}
			w.mu.Lock()
			t360 := e.s.Running(TimerKey{Timer: T360, Call: id})
			w.mu.Unlock()
			if t360 {
				t.Errorf("%s: T360 still running", e.name)
			}
		}
		w.wantSeq("A>MODIFY REQUEST", "B>MODIFY REQUEST", "A>MODIFY REJECT", "B>MODIFY ACKNOWLEDGE")
		w.do(w.a, func(l *Link) (Output, error) { return l.Release(a, normal) })
		w.want(w.b, IndRelease)
		w.do(w.b, func(l *Link) (Output, error) { return l.Release(b, normal) })
		w.want(w.a, IndReleased)
		w.want(w.b, IndReleased)
		w.done()
	})

	loopback(t, "link failure, T309 expiry", func(t *testing.T, w *wire) {
		active, _ := w.connect(false)
		w.setup(false) // stays in U1 / U6
		w.want(w.b, IndSetup)
		w.forget()
		w.event(w.a, func(l *Link) Output { return l.LinkDown() })
		w.event(w.b, func(l *Link) Output { return l.LinkDown() })
		w.want(w.a, IndReleased)
		w.want(w.b, IndReleased)
		if w.a.l.Calls() != 1 || w.b.l.Calls() != 1 {
			t.Fatalf("kept %d and %d calls", w.a.l.Calls(), w.b.l.Calls())
		}
		time.Sleep(10*time.Second - time.Millisecond)
		synctest.Wait()
		w.want(w.a)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		r := w.want(w.a, IndReleased)[0]
		if r.Call != active || r.Cause.Value != CauseDestinationOutOfOrder {
			t.Errorf("A: %v", r)
		}
		w.want(w.b, IndReleased)
		w.wantSeq() // nothing on the wire while the link is down
		w.done()
	})

	loopback(t, "link restored within T309", func(t *testing.T, w *wire) {
		a, b := w.connect(false)
		a2, b2 := w.connect(false)
		w.forget()
		w.event(w.a, func(l *Link) Output { return l.LinkDown() })
		w.event(w.b, func(l *Link) Output { return l.LinkDown() })
		time.Sleep(5 * time.Second)
		synctest.Wait()
		// While down, B clears its second call locally.
		w.do(w.b, func(l *Link) (Output, error) { return l.Release(b2, normal) })
		w.want(w.b, IndReleased)
		// Both ends learn that the link is back before anything flows.
		w.crossing(func() {
			w.event(w.a, func(l *Link) Output { return l.LinkUp() })
			w.event(w.b, func(l *Link) Output { return l.LinkUp() })
		})
		// The audit: the call both still have stays; the one B lost is
		// cleared at A.
		w.want(w.b, IndStatus)
		r := w.take(w.a)
		if !slices.Equal(kinds(r), []IndicationKind{IndStatus, IndReleased}) || r[1].Call != a2 {
			t.Fatalf("A after the audit: %v", r)
		}
		w.wantSeq("A>STATUS ENQUIRY", "A>STATUS ENQUIRY", "B>STATUS ENQUIRY", "B>STATUS", "B>STATUS", "A>STATUS")
		time.Sleep(time.Minute)
		synctest.Wait()
		w.want(w.a)
		w.want(w.b)
		if st, _ := w.a.l.CallState(a); st != StateActive {
			t.Errorf("A's call in %v", st)
		}
		w.do(w.a, func(l *Link) (Output, error) { return l.Release(a, normal) })
		w.want(w.b, IndRelease)
		w.do(w.b, func(l *Link) (Output, error) { return l.Release(b, normal) })
		w.want(w.a, IndReleased)
		w.want(w.b, IndReleased)
		w.done()
	})

	loopback(t, "restart", func(t *testing.T, w *wire) {
		w.connect(false)
		w.connect(false)
		w.b.l.epoch++ // B's calls date from an earlier signalling link
		w.do(w.a, func(l *Link) (Output, error) { return l.Restart(nil) })
		for _, i := range w.want(w.a, IndReleased, IndReleased) {
			if i.Cause.Value != CauseTemporaryFailure || !i.Restarted {
				t.Errorf("%v: cause %v, restarted %v", i, i.Cause, i.Restarted)
			}
		}
		w.want(w.b, IndReleased, IndReleased, IndRestart)
		w.do(w.b, func(l *Link) (Output, error) { return l.RestartDone(nil) })
		w.want(w.a, IndRestartComplete)
		w.done()
	})
}
