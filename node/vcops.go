package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// Requests that act on a VC the Control already holds, whichever session
// owns it (`condis party add|drop`, `condis modify`, `condis hangup` in one
// terminal, the `condis call` that owns the VC in another), and the
// multipoint calls of call sessions.
//
// Each request names the VC as "calls" lists it. The worker checks it and
// issues the CoNDIS request; the request's connection waits for the
// completion and answers with one line. The owning session is told what
// changed with an event frame (a party added or dropped, new flowspecs) or,
// for a hangup, ends as when the far end hangs up: its close frame says
// the call was hung up. The Control's contract holds throughout: a call is
// closed only once its sends have completed (R-CLOSE-1), a multipoint call
// only with its last party after the others are dropped (R-CLOSE-4,
// R-CLOSE-5), and every IncomingDropParty is answered with NdisClDropParty
// (R-PTY-14).

// partyPhase is the Control's view of one leaf of a multipoint call it made.
//
//	adding --AddPartyComplete(SUCCESS)--> up --NdisClDropParty--> dropping --ok--> gone
//	adding --failed--> gone               up --IncomingDropParty--> leaving --NdisClDropParty--> dropping
//	dropping --refused--> back            the last party goes with the call (NdisClCloseCall) --> gone
type partyPhase uint8

const (
	partyAdding partyPhase = iota + 1
	partyUp
	partyLeaving
	partyDropping
	partyGone
)

func (p partyPhase) String() string {
	return [...]string{"?", "ADDING", "CONNECTED", "DROP_INDICATED", "DROPPING", "GONE"}[p]
}

// vcParty is the Control's context for one leaf of a multipoint call.
// Fields are guarded by Control.mu.
type vcParty struct {
	v     *vcState
	h     *ndis.Party // once NdisClMakeCall or NdisClAddParty returned it
	dest  string      // "node/service"
	phase partyPhase
	prev  partyPhase // restored if a drop is refused

	// A failed add: its status and cause, and the one-line reason.
	failSt    ndis.Status
	failCause uni.Cause
	failText  string

	// Why it went: whyRemote (it left: dropSt and dropCause), whyLocal (a
	// party-drop request), or the call's own reason when the call closes.
	why       closeWhy
	dropSt    ndis.Status
	dropCause uni.Cause

	added   chan Response // the party-add request waiting for the add
	dropped chan Response // the party-drop request waiting for the drop
	extra   bool          // one of the further leaves the call session asked for
}

// name is the party's handle as the mediator names it ("party#9"), "" if
// it has none yet.
func (p *vcParty) name() string {
	if p.h == nil {
		return ""
	}
	return p.h.String()
}

// label names the party for people: "party#9 (gamma/l2)".
func (p *vcParty) label() string {
	n := p.name()
	switch {
	case n == "":
		return p.dest
	case p.dest == "":
		return n
	}
	return n + " (" + p.dest + ")"
}

// info describes the party for a response.
func (p *vcParty) info() PartyInfo {
	pi := PartyInfo{Party: p.name(), Dest: p.dest, State: p.phase.String()}
	if p.phase == partyGone && p.failText != "" {
		pi.State, pi.Error = "FAILED", p.failText
		if p.failSt != 0 {
			pi.Status, pi.Cause, pi.CauseText = p.failSt.String(), int(p.failCause), causeText(p.failCause)
		}
	}
	return pi
}

// FlowspecChecker is implemented by call managers that can tell, before a
// request is made, whether they can signal a flowspec: the Control checks
// the flowspecs a modify request asks for with it, so that a user learns
// which member is at fault rather than a bare NDIS_STATUS_INVALID_DATA.
type FlowspecChecker interface {
	// CheckFlowspec returns nil if f can be signalled, else an error that
	// says why in one line (a *q2931.FlowspecError for the MCM).
	CheckFlowspec(f ndis.Flowspec) error
}

// --- multipoint calls of call sessions ---

// multipointLocked makes v's call point-to-multipoint: Dest is its first
// leaf, req.Parties the others, added once the call is up. It returns the
// first leaf's party context for NdisClMakeCall.
func (c *Control) multipointLocked(v *vcState, req *Request) *vcParty {
	v.multipoint = true
	first := &vcParty{v: v, dest: req.Dest, phase: partyAdding}
	v.parties = []*vcParty{first}
	v.initial = []*vcParty{first}
	v.more = slices.Clone(req.Parties)
	v.settling = len(req.Parties)
	return first
}

// firstPartyLocked records the initial party's fate with its MakeCall's;
// once the call is up the worker adds the further leaves.
func (c *Control) firstPartyLocked(v *vcState, st ndis.Status, cause uni.Cause, ph *ndis.Party) {
	first := v.initial[0]
	if ph != nil {
		first.h = ph
	}
	if st != ndis.StatusSuccess {
		first.phase, first.failSt, first.failCause = partyGone, st, cause
		c.callOverLocked(v)
		return
	}
	first.phase = partyUp
	if len(v.more) > 0 {
		c.post(func() { c.addMore(v) })
	}
}

// addMore adds the further leaves a call session asked for (worker).
func (c *Control) addMore(v *vcState) {
	c.mu.Lock()
	dests := v.more
	v.more = nil
	c.mu.Unlock()
	for _, dest := range dests {
		p := &vcParty{v: v, dest: dest, phase: partyAdding, extra: true}
		c.mu.Lock()
		v.initial = append(v.initial, p)
		c.mu.Unlock()
		c.addParty(v, p)
	}
}

// addParty issues NdisClAddParty for p on v (worker); p is not yet in
// v.parties. The outcome reaches addPartyDone.
func (c *Control) addParty(v *vcState, p *vcParty) {
	c.mu.Lock()
	tx, rx := v.flows.flowspecs()
	up := v.phase == vcConnected && !v.wantClose
	c.mu.Unlock()
	if !up {
		c.mu.Lock()
		c.partyFailedLocked(p, 0, 0, fmt.Sprintf("party add %s %s: the call is %s", v.name, p.dest, v.phaseWords()))
		c.mu.Unlock()
		return
	}
	params, err := c.cm.CallParams(p.dest, tx, rx, v.reliable)
	if err != nil {
		c.mu.Lock()
		c.partyFailedLocked(p, 0, 0, fmt.Sprintf("party add %s %s: %v", v.name, p.dest, err))
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	v.parties = append(v.parties, p)
	c.mu.Unlock()
	h, st := c.b.ClAddParty(v.h, p, params)
	if st != ndis.StatusPending {
		c.addPartyDone(p, st, h)
		return
	}
	c.mu.Lock()
	if p.h == nil && p.phase != partyGone {
		p.h = h // the completion may have come first (R-GEN-10): a failed add's handle stays dead
	}
	c.mu.Unlock()
}

// addPartyDone records an NdisClAddParty's outcome (any goroutine).
func (c *Control) addPartyDone(p *vcParty, st ndis.Status, h *ndis.Party) {
	v := p.v
	var cause uni.Cause
	if st != ndis.StatusSuccess {
		cause = c.cm.Cause(v.h, st)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.phase != partyAdding {
		return
	}
	if h != nil {
		p.h = h
	}
	if st != ndis.StatusSuccess {
		c.partyFailedLocked(p, st, cause, partyFailure(p.dest, st, cause))
		return
	}
	p.phase = partyUp
	if p.extra {
		v.settling--
	}
	if p.added != nil {
		p.added <- Response{OK: true, Vc: v.name, Party: p.name()}
		p.added = nil
		if s := v.s; s != nil {
			s.out.pushEvent(Event{Event: EventPartyAdded, Vc: v.name, Peer: nodeOf(p.dest), Party: p.name(), Dest: p.dest})
		}
	}
	c.notifyLocked()
	if v.wantClose {
		c.post(func() { c.progress(v) }) // the close was waiting for the add
	}
}

// partyFailure says why a leaf could not be added, as callFailure says
// why a call failed.
func partyFailure(dest string, st ndis.Status, cause uni.Cause) string {
	text := fmt.Sprintf("party %s not added: %s", dest, describe(st, cause))
	if h := causeHints[cause]; h != "" {
		text += ": " + h
	}
	return text
}

// partyFailedLocked ends a party whose add failed, for the reason text.
// Its handle, if it had one, is dead (R-PTY-7).
func (c *Control) partyFailedLocked(p *vcParty, st ndis.Status, cause uni.Cause, text string) {
	v := p.v
	p.phase, p.failSt, p.failCause, p.failText = partyGone, st, cause, text
	p.h = nil
	v.parties = slices.DeleteFunc(v.parties, func(q *vcParty) bool { return q == p })
	if p.extra {
		v.settling--
	}
	if p.added != nil {
		r := Response{Error: text}
		if st != 0 {
			r.Status, r.Cause, r.CauseText = st.String(), int(cause), causeText(cause)
		}
		p.added <- r
		p.added = nil
	}
	c.notifyLocked()
	if v.wantClose {
		c.post(func() { c.progress(v) })
	}
}

// partyLeft: the network or the leaf dropped p (IncomingDropParty). The
// worker answers with NdisClDropParty.
func (c *Control) partyLeft(p *vcParty, st ndis.Status) {
	cause := c.cm.Cause(p.v.h, st)
	c.mu.Lock()
	if p.phase != partyUp {
		c.mu.Unlock()
		return
	}
	p.phase, p.why, p.dropSt, p.dropCause = partyLeaving, whyRemote, st, cause
	c.mu.Unlock()
	c.post(func() { c.answerDrop(p) })
}

// answerDrop drops a party that left (R-PTY-14) (worker). If it is the
// call's last leaf by now, the call goes instead.
func (c *Control) answerDrop(p *vcParty) {
	v := p.v
	c.mu.Lock()
	if p.phase != partyLeaving {
		c.mu.Unlock()
		return
	}
	if c.liveOthersLocked(p) == 0 {
		// The others were dropped meanwhile: the last party cannot be
		// dropped (R-PTY-10); the call is closed with it.
		v.closeSt, v.cause = p.dropSt, p.dropCause
		c.wantCloseLocked(v, whyRemote)
		c.mu.Unlock()
		c.progress(v)
		return
	}
	p.prev, p.phase = partyLeaving, partyDropping
	c.mu.Unlock()
	c.issueDrop(p)
}

// liveOthersLocked counts v's parties other than p that are up or leaving.
func (c *Control) liveOthersLocked(p *vcParty) int {
	n := 0
	for _, q := range p.v.parties {
		if q != p && (q.phase == partyUp || q.phase == partyLeaving) {
			n++
		}
	}
	return n
}

// issueDrop issues NdisClDropParty for p, marked dropping (worker).
func (c *Control) issueDrop(p *vcParty) {
	c.mu.Lock()
	h := p.h
	c.mu.Unlock()
	if st := c.b.ClDropParty(h, nil); st != ndis.StatusPending {
		c.dropPartyDone(p, st)
	}
}

// dropPartyDone records an NdisClDropParty's outcome (any goroutine).
func (c *Control) dropPartyDone(p *vcParty, st ndis.Status) {
	v := p.v
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.phase != partyDropping {
		return
	}
	if st != ndis.StatusSuccess {
		c.log.Warn("control: NdisClDropParty refused", "vc", v.name, "party", p.name(), "status", st)
		p.phase = p.prev
		if p.dropped != nil {
			p.dropped <- Response{Error: fmt.Sprintf("party drop %s %s refused: %v", v.name, p.name(), st), Status: st.String()}
			p.dropped = nil
		}
		c.notifyLocked()
		return
	}
	p.phase = partyGone
	v.parties = slices.DeleteFunc(v.parties, func(q *vcParty) bool { return q == p })
	if p.dropped != nil {
		p.dropped <- Response{OK: true, Vc: v.name, Party: p.name()}
		p.dropped = nil
	}
	if s := v.s; s != nil && !v.wantClose {
		info := p.dropInfo()
		s.out.pushEvent(Event{Event: EventPartyDropped, Vc: v.name, Peer: nodeOf(p.dest), Party: p.name(), Dest: p.dest, CloseInfo: &info})
	}
	c.notifyLocked()
	if v.wantClose {
		c.post(func() { c.progress(v) }) // the close was waiting for the drop
	}
}

// dropInfo says why a party went, for its call session.
func (p *vcParty) dropInfo() CloseInfo {
	if p.why != whyRemote {
		return CloseInfo{Normal: true, By: ByLocal, Text: p.label() + " dropped (condis party drop)"}
	}
	info := CloseInfo{By: ByRemote, Status: p.dropSt.String(), Cause: int(p.dropCause), CauseText: causeText(p.dropCause)}
	if p.dropSt == ndis.StatusSuccess {
		info.Normal, info.Text = true, p.label()+" left the call"
	} else {
		info.Text = p.label() + " lost: " + describe(p.dropSt, p.dropCause)
	}
	return info
}

// lastPartyLocked says how to close multipoint call v: with party last
// (ready), or not yet: after the parties in drop are dropped (the caller
// issues the drops, marked dropping here), or once adds and drops in
// progress complete (drop empty).
func (c *Control) lastPartyLocked(v *vcState) (last *ndis.Party, drop []*vcParty, ready bool) {
	var live []*vcParty
	for _, p := range v.parties {
		switch p.phase {
		case partyAdding, partyDropping:
			return nil, nil, false
		case partyUp, partyLeaving:
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil, nil, true // nothing to close with: the mediator says so
	}
	keep := live[0]
	for _, p := range live {
		if p.phase == partyUp {
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
		if p.phase == partyUp {
			p.why = v.why
		}
		p.prev, p.phase = p.phase, partyDropping
		drop = append(drop, p)
	}
	return nil, drop, false
}

// callOverLocked: v's call is over. Its parties are gone, and the
// requests waiting on them, or on a QoS change, are answered.
func (c *Control) callOverLocked(v *vcState) {
	if v.qos != nil {
		v.qos <- Response{Error: fmt.Sprintf("modify %s: the call went away", v.name)}
		v.qos = nil
	}
	for _, p := range v.parties {
		switch {
		case p.added != nil:
			p.added <- Response{Error: fmt.Sprintf("party add %s %s: the call went away", v.name, p.dest)}
			p.added = nil
		case p.dropped != nil:
			p.dropped <- Response{OK: true, Vc: v.name, Party: p.name()} // gone with the call: dropped all the same
			p.dropped = nil
		}
		if p.phase == partyAdding && p.failText == "" {
			p.failText = "the call went away before the party was added"
		}
		p.phase = partyGone
	}
	v.parties = nil
	v.more = nil
	v.settling = 0
}

// nodeOf is the node of "node/service".
func nodeOf(dest string) string {
	n, _, _ := strings.Cut(dest, "/")
	return n
}

// --- looking VCs up ---

// vcByNameLocked returns the Control's VC called name, or nil.
func (c *Control) vcByNameLocked(name string) *vcState {
	for v := range c.vcs {
		if v.name == name && v.phase != vcDeleted {
			return v
		}
	}
	return nil
}

// sessionVc returns the VC a request named, if it is a call a session of
// the Control owns; otherwise the response refusing the request (op names
// it: "hangup", "party add", ...). The caller checks the VC's state again
// under c.mu: it may change meanwhile.
func (c *Control) sessionVc(op, name string) (*vcState, *Response) {
	fail := func(format string, args ...any) (*vcState, *Response) {
		return nil, &Response{Error: op + " " + name + ": " + fmt.Sprintf(format, args...)}
	}
	if name == "" {
		return nil, &Response{Error: op + ": no VC (name one as condis calls lists it, e.g. vc#12)"}
	}
	c.mu.Lock()
	v := c.vcByNameLocked(name)
	bench, owned := v != nil && v.bench != nil, v != nil && v.s != nil && v.phase != vcOffered
	c.mu.Unlock()
	switch {
	case v == nil:
		return fail("%s", c.unknownVc(name))
	case bench:
		return fail("a call of a bench run; it ends with the run")
	case !owned:
		return fail("the call is being offered and has no session yet")
	}
	return v, nil
}

// unknownVc says why name is not a VC of the Control: no such VC on the
// node, or another client's. It asks the mediator: c.mu is not held.
func (c *Control) unknownVc(name string) string {
	for _, vi := range c.cm.Adapter().Mediator().Snapshot().Vcs {
		if vi.Handle == name {
			return fmt.Sprintf("not a call of this node's control plane (its client is %s); only the control plane's calls can be changed from here", orNone(vi.Client))
		}
	}
	return "no such VC on this node (condis calls lists them)"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// phaseWords says what state v's call is in, for people.
func (v *vcState) phaseWords() string {
	switch {
	case v.wantClose || v.phase == vcClosing:
		return "closing"
	case v.phase == vcMaking || v.phase == vcAccepted || v.phase == vcCreated:
		return "still being set up"
	case v.phase == vcConnected:
		return "connected"
	}
	return "over"
}

// flowspecs returns the flowspecs of f; best effort with nothing
// specified if f is nil.
func (f *callFlows) flowspecs() (tx, rx ndis.Flowspec) {
	if f == nil {
		none, _ := (*Flowspec)(nil).Ndis()
		return none, none
	}
	return f.tx, f.rx
}

// --- serving the requests ---

// answerWhenDone runs op on the worker and writes the response it sends
// on done; it gives up if the node's shutdown does.
func (c *Control) answerWhenDone(conn net.Conn, op func(done chan Response)) {
	done := make(chan Response, 1)
	c.post(func() { op(done) })
	select {
	case r := <-done:
		writeJSONLine(conn, r)
	case <-c.ctx.Done():
	}
}

// serveAddParty serves a party-add request: NdisClAddParty of req.Dest on
// multipoint VC req.Vc, answered once the add completed.
func (c *Control) serveAddParty(conn net.Conn, req *Request) {
	c.answerWhenDone(conn, func(done chan Response) {
		v, bad := c.sessionVc("party add", req.Vc)
		c.mu.Lock()
		switch {
		case bad != nil:
		case req.Dest == "":
			bad = &Response{Error: "party add " + req.Vc + ": no destination (node/service)"}
		case !v.multipoint:
			bad = &Response{Error: fmt.Sprintf("party add %s: not a multipoint call; parties are added to a call made with condis call --multipoint (or with several destinations)", v.name)}
		case v.phase != vcConnected || v.wantClose:
			bad = &Response{Error: fmt.Sprintf("party add %s: the call is %s", v.name, v.phaseWords())}
		}
		if bad != nil {
			c.mu.Unlock()
			done <- *bad
			return
		}
		p := &vcParty{v: v, dest: req.Dest, phase: partyAdding, added: done}
		c.mu.Unlock()
		c.addParty(v, p)
	})
}

// serveDropParty serves a party-drop request: NdisClDropParty of party
// req.Party of VC req.Vc, answered once the drop completed.
func (c *Control) serveDropParty(conn net.Conn, req *Request) {
	c.answerWhenDone(conn, func(done chan Response) {
		v, bad := c.sessionVc("party drop", req.Vc)
		c.mu.Lock()
		var p *vcParty
		if bad == nil {
			p, bad = c.partyToDropLocked(v, req.Party)
		}
		if bad != nil {
			c.mu.Unlock()
			done <- *bad
			return
		}
		p.prev, p.phase, p.why, p.dropped = p.phase, partyDropping, whyLocal, done
		c.mu.Unlock()
		c.issueDrop(p)
	})
}

// partyToDropLocked finds the party of v a party-drop request named, or
// says why it cannot be dropped.
func (c *Control) partyToDropLocked(v *vcState, name string) (*vcParty, *Response) {
	fail := func(format string, args ...any) (*vcParty, *Response) {
		return nil, &Response{Error: "party drop " + v.name + ": " + fmt.Sprintf(format, args...)}
	}
	if !v.multipoint {
		return fail("not a multipoint call; a point-to-point call has no parties to drop (condis hangup %s ends it)", v.name)
	}
	if name == "" {
		return fail("no party (name one as condis calls lists it, e.g. party#9)")
	}
	var names []string
	var p *vcParty
	for _, q := range v.parties {
		if q.phase == partyUp || q.phase == partyLeaving {
			names = append(names, q.name())
		}
		if q.name() == name {
			p = q
		}
	}
	switch {
	case p == nil:
		return fail("no party %s (its parties: %s)", name, strings.Join(names, ", "))
	case p.phase == partyAdding:
		return fail("%s is still being added", name)
	case p.phase == partyDropping:
		return fail("%s is already being dropped", name)
	case v.wantClose || v.phase != vcConnected:
		return fail("the call is %s", v.phaseWords())
	case c.liveOthersLocked(p) == 0:
		return fail("%s is the call's last party; hang the call up instead (condis hangup %s)", name, v.name)
	}
	return p, nil
}

// serveModify serves a modify request: NdisClModifyCallQoS on VC req.Vc
// with the call's flowspecs, each member that req.Tx and req.Rx set
// replaced; answered with the flowspecs granted once the change completed.
func (c *Control) serveModify(conn net.Conn, req *Request) {
	c.answerWhenDone(conn, func(done chan Response) {
		v, bad := c.sessionVc("modify", req.Vc)
		c.mu.Lock()
		switch {
		case bad != nil:
		case v.phase != vcConnected || v.wantClose:
			bad = &Response{Error: fmt.Sprintf("modify %s: the call is %s", v.name, v.phaseWords())}
		case v.qos != nil:
			bad = &Response{Error: fmt.Sprintf("modify %s: a QoS change of the call is already in progress", v.name)}
		case v.flows == nil:
			bad = &Response{Error: fmt.Sprintf("modify %s: the call's flowspecs are not known", v.name)}
		}
		if bad != nil {
			c.mu.Unlock()
			done <- *bad
			return
		}
		tx, rx := v.flows.flowspecs()
		c.mu.Unlock()
		var err error
		if tx, err = modified(tx, req.Tx); err == nil {
			rx, err = modified(rx, req.Rx)
		}
		if err != nil {
			done <- Response{Error: fmt.Sprintf("modify %s: %v", v.name, err)}
			return
		}
		if r := c.checkFlowspecs(v.name, tx, rx); r != nil {
			done <- *r
			return
		}
		c.mu.Lock()
		if v.phase != vcConnected || v.wantClose || v.qos != nil {
			c.mu.Unlock()
			done <- Response{Error: fmt.Sprintf("modify %s: the call is %s", v.name, v.phaseWords())}
			return
		}
		v.qos = done
		c.mu.Unlock()
		// The call manager keeps the parameters until the change completes.
		params := &ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{Transmit: tx, Receive: rx}}
		if st := c.b.ClModifyCallQoS(v.h, params); st != ndis.StatusPending {
			c.modifyDone(v, st, params)
		}
	})
}

// modified is f with the members that change sets (non-zero) replaced. A
// direction without traffic keeps none.
func modified(f ndis.Flowspec, change *Flowspec) (ndis.Flowspec, error) {
	if change == nil || f.ServiceType == ndis.ServiceNoTraffic {
		return f, nil
	}
	if change.Service != "" {
		st, err := ParseServiceType(change.Service)
		if err != nil {
			return f, err
		}
		f.ServiceType = st
	}
	for _, m := range []struct {
		v   uint32
		dst *uint32
	}{{change.Rate, &f.TokenRate}, {change.Bucket, &f.TokenBucketSize}, {change.Peak, &f.PeakBandwidth},
		{change.MaxSDU, &f.MaxSduSize}, {change.Latency, &f.Latency}, {change.Jitter, &f.DelayVariation},
		{change.MinSize, &f.MinimumPolicedSize}} {
		if m.v != 0 {
			*m.dst = m.v
		}
	}
	return f, nil
}

// checkFlowspecs asks the call manager, if it can tell, whether it can
// signal the flowspecs; the response refuses the request if not.
func (c *Control) checkFlowspecs(vc string, fs ...ndis.Flowspec) *Response {
	ch, ok := c.cm.(FlowspecChecker)
	if !ok {
		return nil
	}
	for _, f := range fs {
		err := ch.CheckFlowspec(f)
		if err == nil {
			continue
		}
		r := &Response{Error: fmt.Sprintf("modify %s: %v", vc, err)}
		var fe *q2931.FlowspecError
		if errors.As(err, &fe) {
			r.Status = fe.Status.String()
			r.Fault = &FlowspecFault{Field: fe.Field, Value: fe.Value, Limit: fe.Limit}
		}
		return r
	}
	return nil
}

// modifyDone records an NdisClModifyCallQoS's outcome and answers the
// modify request (any goroutine). On failure the call keeps its previous
// flowspecs exactly.
func (c *Control) modifyDone(v *vcState, st ndis.Status, params *ndis.CallParameters) {
	var cause uni.Cause
	if st != ndis.StatusSuccess {
		cause = q2931.CauseForStatus(st)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	done := v.qos
	v.qos = nil
	if done == nil {
		return
	}
	if st != ndis.StatusSuccess {
		done <- Response{Error: fmt.Sprintf("modify %s refused: %s%s", v.name, describe(st, cause), qosHint(st)),
			Status: st.String(), Cause: int(cause), CauseText: causeText(cause)}
		return
	}
	if f := flowsOf(params); f != nil {
		v.flows = f
		if !v.incoming {
			v.maxSDU = f.maxSDU()
		}
	}
	r := Response{OK: true, Vc: v.name}
	if f := v.flows; f != nil {
		r.Tx, r.Rx = FlowspecOf(f.tx), FlowspecOf(f.rx)
	}
	done <- r
	c.qosChangedLocked(v)
}

// qosHint explains the statuses a QoS change meets most.
func qosHint(st ndis.Status) string {
	switch st {
	case ndis.StatusCellrateNotAvailable:
		return ": a node on the call's path does not grant that rate (its max_rate)"
	case ndis.StatusNotSupported:
		return ": only the rates and the bucket of a point-to-point call can change (not its service type, its SDU size, or a multipoint call's)"
	case ndis.StatusInvalidData:
		return ": UNI 3.1 cannot signal that flowspec"
	}
	return ""
}

// qosChangedLocked tells v's session its flowspecs changed.
func (c *Control) qosChangedLocked(v *vcState) {
	s, f := v.s, v.flows
	if s == nil || f == nil {
		return
	}
	s.out.pushEvent(Event{Event: EventQoS, Vc: v.name, Peer: v.peer, Tx: FlowspecOf(f.tx), Rx: FlowspecOf(f.rx)})
}

// serveHangup serves a hangup request: NdisClCloseCall on VC req.Vc (once
// its sends have completed), answered once the close completed. The
// session that owns the call ends as when the far end hangs up, its close
// frame saying the call was hung up here; a listen session is told with a
// closed event and goes on.
func (c *Control) serveHangup(conn net.Conn, req *Request) {
	found := make(chan *vcState, 1)
	var refusal Response
	c.post(func() {
		v, bad := c.sessionVc("hangup", req.Vc)
		c.mu.Lock()
		if bad == nil && (v.phase == vcClosed || v.phase == vcDeleted) {
			bad = &Response{Error: fmt.Sprintf("hangup %s: the call is over", v.name)}
		}
		if bad != nil {
			refusal = *bad
			c.mu.Unlock()
			found <- nil
			return
		}
		v.closeRefused = 0
		c.wantCloseLocked(v, whyHangup)
		c.mu.Unlock()
		found <- v
		c.progress(v)
	})
	var v *vcState
	select {
	case v = <-found:
	case <-c.ctx.Done():
		return
	}
	if v == nil {
		writeJSONLine(conn, refusal)
		return
	}
	err := c.await(c.ctx, func() bool {
		return v.phase == vcClosed || v.phase == vcDeleted || v.closeRefused != 0
	})
	if err != nil {
		return
	}
	c.mu.Lock()
	resp := Response{OK: true, Vc: v.name}
	if st := v.closeRefused; st != 0 && v.phase != vcClosed && v.phase != vcDeleted {
		resp = Response{Error: fmt.Sprintf("hangup %s: NdisClCloseCall refused: %v", v.name, st), Status: st.String()}
	}
	c.mu.Unlock()
	writeJSONLine(conn, resp)
}

// --- the client side ---

// ask sends req to the node at socket and returns its one-line answer; a
// refusal is a *RequestError carrying the response.
func ask(ctx context.Context, socket string, req Request) (Response, error) {
	conn, _, resp, err := dial(ctx, socket, req)
	if err != nil {
		return resp, err
	}
	conn.Close()
	return resp, nil
}

// AddParty asks the node at socket to add dest ("node/service") as a leaf
// of its multipoint call on VC vc (NdisClAddParty), and returns once the
// add completed: the response names the party.
func AddParty(ctx context.Context, socket, vc, dest string) (Response, error) {
	return ask(ctx, socket, Request{Op: OpAddParty, Vc: vc, Dest: dest})
}

// DropParty asks the node at socket to drop party of its multipoint call
// on VC vc (NdisClDropParty), and returns once the drop completed.
func DropParty(ctx context.Context, socket, vc, party string) error {
	_, err := ask(ctx, socket, Request{Op: OpDropParty, Vc: vc, Party: party})
	return err
}

// ModifyQoS asks the node at socket to change the flowspecs of its call on
// VC vc (NdisClModifyCallQoS): each member tx and rx set replaces the
// call's. It returns once the change completed; the response carries the
// flowspecs granted (Tx, Rx).
func ModifyQoS(ctx context.Context, socket, vc string, tx, rx *Flowspec) (Response, error) {
	return ask(ctx, socket, Request{Op: OpModify, Vc: vc, Tx: tx, Rx: rx})
}

// Hangup asks the node at socket to close its call on VC vc
// (NdisClCloseCall), and returns once the close completed.
func Hangup(ctx context.Context, socket, vc string) error {
	_, err := ask(ctx, socket, Request{Op: OpHangup, Vc: vc})
	return err
}
