package clientcore

import (
	"slices"
	"sync/atomic"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// PartyPhase is the Core's view of one leaf of a multipoint call it made.
//
//	adding --AddPartyComplete(SUCCESS)--> up --NdisClDropParty--> dropping --ok--> gone
//	adding --failed--> gone               up --IncomingDropParty--> leaving --NdisClDropParty--> dropping
//	dropping --refused--> back            the last party goes with the call (NdisClCloseCall) --> gone
type PartyPhase uint8

// The phases of a party.
const (
	PartyAdding PartyPhase = iota + 1
	PartyUp
	PartyLeaving
	PartyDropping
	PartyGone
)

// String is the phase as `condis calls` shows it.
func (p PartyPhase) String() string {
	if p > PartyGone {
		return "?"
	}
	return [...]string{"?", "ADDING", "CONNECTED", "DROP_INDICATED", "DROPPING", "GONE"}[p]
}

// Party is the Core's context for one leaf of a multipoint call. Its
// fields are guarded by the Core's lock.
type Party struct {
	v     *VC
	h     *ndis.Party // once NdisClMakeCall or NdisClAddParty returned it
	name  atomic.Pointer[string]
	dest  string
	phase PartyPhase
	prev  PartyPhase // restored if a drop is refused

	err error // why an add failed: a *CallError, or why it was not made

	// Why it went: ReasonRemote (it left: dropSt and dropCause),
	// ReasonLocal (DropParty), or the call's own reason when the call
	// closes.
	reason    Reason
	dropSt    ndis.Status
	dropCause uni.Cause

	added   func(*Party, error) // AddParty's done
	dropped func(*Party, error) // DropParty's done
}

// PartyEnd says why a party went.
type PartyEnd struct {
	// Reason is ReasonRemote if the leaf or the network dropped it
	// (Status and Cause say how), ReasonLocal for DropParty, or the call's
	// own reason if it was dropped to close the call.
	Reason Reason
	Status ndis.Status
	Cause  uni.Cause
	// CallClosing: the party was dropped because its call is closing.
	CallClosing bool
}

// Name is the party's handle as the mediator names it ("party#9"), "" if
// it has none (yet, or any more: a failed add's handle is dead). Safe
// anywhere.
func (p *Party) Name() string {
	if s := p.name.Load(); s != nil {
		return *s
	}
	return ""
}

func (p *Party) setName() {
	if p.h == nil {
		p.name.Store(nil)
		return
	}
	n := p.h.String()
	p.name.Store(&n)
}

// Dest is the leaf's destination ("node/service"). Safe anywhere.
func (p *Party) Dest() string { return p.dest }

// VC is the party's VC. Safe anywhere.
func (p *Party) VC() *VC { return p.v }

// PartyState is a snapshot of a party.
type PartyState struct {
	Phase PartyPhase
	// Err is why an add failed: a *CallError, or why it was not made.
	Err error
	End PartyEnd
}

// State returns a snapshot of p. Not in a handler.
func (p *Party) State() PartyState {
	c := p.v.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return p.stateLocked()
}

// StateLocked is State for handlers, which hold the Core's lock.
func (p *Party) StateLocked() PartyState { return p.stateLocked() }

func (p *Party) stateLocked() PartyState {
	return PartyState{Phase: p.phase, Err: p.err, End: PartyEnd{Reason: p.reason, Status: p.dropSt, Cause: p.dropCause}}
}

// AddParty adds dest as a leaf of v's multipoint call (NdisClAddParty,
// with the call's flowspecs) and returns the party at once; done, if not
// nil, is called with the Core's lock held when the add completed: err is
// nil, a *CallError, a *StateError, ErrNotMultipoint, ErrCallGone, or why
// dest cannot be called. Safe to call from a handler.
func (v *VC) AddParty(dest string, done func(*Party, error)) *Party {
	p := &Party{v: v, dest: dest, phase: PartyAdding, added: done}
	v.c.post(func() { v.c.addParty(p) })
	return p
}

// addParty issues NdisClAddParty for p (worker); p is not yet in
// v.parties. The outcome reaches addPartyDone.
func (c *Core) addParty(p *Party) {
	v := p.v
	c.mu.Lock()
	var tx, rx ndis.Flowspec
	if v.flows != nil {
		tx, rx = v.flows.Tx, v.flows.Rx
	} else if v.Multipoint() {
		tx, rx = v.more.tx, v.more.rx
	}
	var err error
	switch {
	case !v.Multipoint():
		err = ErrNotMultipoint
	case v.phase != PhaseConnected || v.wantClose:
		err = &StateError{State: v.stateLocked().Words()}
	}
	if err != nil {
		c.partyFailedLocked(p, err)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	params, err := c.cm.CallParams(p.dest, tx, rx, v.Reliable())
	if err != nil {
		c.mu.Lock()
		c.partyFailedLocked(p, err)
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	m := v.moreLocked()
	m.parties = append(m.parties, p)
	c.mu.Unlock()
	h, st := c.b.ClAddParty(v.h, p, params)
	if st != ndis.StatusPending {
		c.addPartyDone(p, st, h)
		return
	}
	c.mu.Lock()
	if p.h == nil && p.phase != PartyGone {
		p.h = h // the completion may have come first (R-GEN-10): a failed add's handle stays dead
		p.setName()
	}
	c.mu.Unlock()
}

// addPartyDone records an NdisClAddParty's outcome (any goroutine).
func (c *Core) addPartyDone(p *Party, st ndis.Status, h *ndis.Party) {
	v := p.v
	var cause uni.Cause
	if st != ndis.StatusSuccess {
		cause = c.cm.Cause(v.h, st)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.phase != PartyAdding {
		return
	}
	if h != nil {
		p.h = h
		p.setName()
	}
	if st != ndis.StatusSuccess {
		c.partyFailedLocked(p, &CallError{Status: st, Cause: cause})
		return
	}
	p.phase = PartyUp
	if f := p.added; f != nil {
		p.added = nil
		f(p, nil)
	}
	c.notifyLocked()
	if v.wantClose {
		c.postProgress(v) // the close was waiting for the add
	}
}

// partyFailedLocked ends a party whose add failed, for err. Its handle, if
// it had one, is dead (R-PTY-7).
func (c *Core) partyFailedLocked(p *Party, err error) {
	v := p.v
	p.phase, p.err = PartyGone, err
	p.h = nil
	p.setName()
	if m := v.more; m != nil {
		m.parties = slices.DeleteFunc(m.parties, func(q *Party) bool { return q == p })
	}
	if f := p.added; f != nil {
		p.added = nil
		f(p, err)
	}
	c.notifyLocked()
	if v.wantClose {
		c.postProgress(v)
	}
}

// partyLeft: the network or the leaf dropped p (IncomingDropParty). The
// worker answers with NdisClDropParty.
func (c *Core) partyLeft(p *Party, st ndis.Status) {
	cause := c.cm.Cause(p.v.h, st)
	c.mu.Lock()
	if p.phase != PartyUp {
		c.mu.Unlock()
		return
	}
	p.phase, p.reason, p.dropSt, p.dropCause = PartyLeaving, ReasonRemote, st, cause
	c.mu.Unlock()
	c.post(func() { c.answerDrop(p) })
}

// answerDrop drops a party that left (R-PTY-14) (worker). If it is the
// call's last leaf by now, the call goes instead.
func (c *Core) answerDrop(p *Party) {
	v := p.v
	c.mu.Lock()
	if p.phase != PartyLeaving {
		c.mu.Unlock()
		return
	}
	if c.liveOthersLocked(p) == 0 {
		// The others were dropped meanwhile: the last party cannot be
		// dropped (R-PTY-10); the call is closed with it.
		v.closeSt, v.cause = p.dropSt, p.dropCause
		c.wantCloseLocked(v, ReasonRemote)
		c.mu.Unlock()
		c.progress(v)
		return
	}
	p.prev, p.phase = PartyLeaving, PartyDropping
	c.mu.Unlock()
	c.issueDrop(p)
}

// liveOthersLocked counts v's parties other than p that are up or leaving.
func (c *Core) liveOthersLocked(p *Party) int {
	n := 0
	for _, q := range p.v.partiesLocked() {
		if q != p && (q.phase == PartyUp || q.phase == PartyLeaving) {
			n++
		}
	}
	return n
}

// DropParty drops p from its call (NdisClDropParty); done, if not nil, is
// called with the Core's lock held when the drop completed: err is nil, a
// *StatusError (refused), a *StateError, ErrLastParty (close the call
// instead), or ErrCallGone. Safe to call from a handler.
func (p *Party) DropParty(done func(*Party, error)) {
	c := p.v.c
	c.post(func() {
		v := p.v
		c.mu.Lock()
		var err error
		switch {
		case p.phase == PartyAdding:
			err = &StateError{State: "still being added"}
		case p.phase == PartyDropping:
			err = &StateError{State: "already being dropped"}
		case p.phase == PartyGone:
			err = ErrCallGone
		case v.wantClose || v.phase != PhaseConnected:
			err = &StateError{State: v.stateLocked().Words()}
		case c.liveOthersLocked(p) == 0:
			err = ErrLastParty
		}
		if err != nil {
			c.mu.Unlock()
			if done != nil {
				c.mu.Lock()
				done(p, err)
				c.mu.Unlock()
			}
			return
		}
		p.prev, p.phase, p.reason, p.dropped = p.phase, PartyDropping, ReasonLocal, done
		c.mu.Unlock()
		c.issueDrop(p)
	})
}

// issueDrop issues NdisClDropParty for p, marked dropping (worker).
func (c *Core) issueDrop(p *Party) {
	c.mu.Lock()
	h := p.h
	c.mu.Unlock()
	if st := c.b.ClDropParty(h, nil); st != ndis.StatusPending {
		c.dropPartyDone(p, st)
	}
}

// dropPartyDone records an NdisClDropParty's outcome (any goroutine).
func (c *Core) dropPartyDone(p *Party, st ndis.Status) {
	v := p.v
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.phase != PartyDropping {
		return
	}
	if st != ndis.StatusSuccess {
		c.log.Warn(c.name+": NdisClDropParty refused", "vc", v.Name(), "party", p.Name(), "status", st)
		p.phase = p.prev
		if f := p.dropped; f != nil {
			p.dropped = nil
			f(p, &StatusError{Op: "NdisClDropParty", Status: st})
		}
		c.notifyLocked()
		return
	}
	p.phase = PartyGone
	if m := v.more; m != nil {
		m.parties = slices.DeleteFunc(m.parties, func(q *Party) bool { return q == p })
	}
	if f := p.dropped; f != nil {
		p.dropped = nil
		f(p, nil)
	}
	v.handler.PartyDropped(p, PartyEnd{Reason: p.reason, Status: p.dropSt, Cause: p.dropCause, CallClosing: v.wantClose})
	c.notifyLocked()
	if v.wantClose {
		c.postProgress(v) // the close was waiting for the drop
	}
}

// lastPartyLocked says how to close multipoint call v: with party last
// (ready), or not yet: after the parties in drop are dropped (the caller
// issues the drops, marked dropping here), or once adds and drops in
// progress complete (drop empty).
func (c *Core) lastPartyLocked(v *VC) (last *ndis.Party, drop []*Party, ready bool) {
	var live []*Party
	for _, p := range v.partiesLocked() {
		switch p.phase {
		case PartyAdding, PartyDropping:
			return nil, nil, false
		case PartyUp, PartyLeaving:
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil, nil, true // nothing to close with: the mediator says so
	}
	keep := live[0]
	for _, p := range live {
		if p.phase == PartyUp {
			keep = p
			break
		}
	}
	if len(live) == 1 {
		return keep.h, nil, true
	}
	for _, p := range live {
		if p == keep {
			continue
		}
		if p.phase == PartyUp {
			p.reason = v.reason
		}
		p.prev, p.phase = p.phase, PartyDropping
		drop = append(drop, p)
	}
	return nil, drop, false
}
