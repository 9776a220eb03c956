package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// Requests that act on a VC the Control already holds, whichever session
// owns it (`condis party add|drop`, `condis modify`, `condis hangup` in one
// terminal, the `condis call` that owns the VC in another), and the
// multipoint calls of call sessions.
//
// Each request names the VC as "calls" lists it. The Control checks it and
// has its Core issue the CoNDIS request; the request's connection waits
// for the completion and answers with one line. The owning session is told
// what changed with an event frame (a party added or dropped, new
// flowspecs) or, for a hangup, ends as when the far end hangs up: its close
// frame says the call was hung up. The Core keeps the contract throughout:
// a call is closed only once its sends have completed (R-CLOSE-1), a
// multipoint call only with its last party after the others are dropped
// (R-CLOSE-4, R-CLOSE-5), and every IncomingDropParty is answered with
// NdisClDropParty (R-PTY-14).

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

// addMoreLocked adds the further leaves a call session asked for, once its
// call is up (a handler of the Core's: AddParty only queues the request).
func (c *Control) addMoreLocked(cv *ctlVc, v *clientcore.VC) {
	m := cv.moreLocked()
	dests := m.more
	m.more = nil
	m.initial = append(m.initial, v.FirstParty())
	for _, dest := range dests {
		p := v.AddParty(dest, func(*clientcore.Party, error) {
			c.mu.Lock()
			m.settling--
			c.notifyLocked()
			c.mu.Unlock()
		})
		m.initial = append(m.initial, p)
	}
}

// partyInfo describes party p of v for a response. Not in a handler.
func partyInfo(v *clientcore.VC, p *clientcore.Party) PartyInfo {
	st := p.State()
	pi := PartyInfo{Party: p.Name(), Dest: p.Dest(), State: st.Phase.String()}
	if st.Phase == clientcore.PartyGone && st.Err != nil {
		pi.State, pi.Error = "FAILED", partyFailText(v, p, st.Err)
		var ce *clientcore.CallError
		if errors.As(st.Err, &ce) {
			pi.Status, pi.Cause, pi.CauseText = ce.Status.String(), int(ce.Cause), causeText(ce.Cause)
		}
	}
	return pi
}

// partyFailText says, in one line, why party p of v was not added.
func partyFailText(v *clientcore.VC, p *clientcore.Party, err error) string {
	var ce *clientcore.CallError
	var se *clientcore.StateError
	switch {
	case errors.As(err, &ce):
		return partyFailure(p.Dest(), ce.Status, ce.Cause)
	case errors.As(err, &se):
		return fmt.Sprintf("party add %s %s: the call is %s", v.Name(), p.Dest(), se.State)
	case errors.Is(err, clientcore.ErrCallGone):
		return "the call went away before the party was added"
	}
	return fmt.Sprintf("party add %s %s: %v", v.Name(), p.Dest(), err)
}

// partyLabel names a party for people: "party#9 (gamma/l2)".
func partyLabel(p *clientcore.Party) string {
	n := p.Name()
	switch {
	case n == "":
		return p.Dest()
	case p.Dest() == "":
		return n
	}
	return n + " (" + p.Dest() + ")"
}

// dropInfo says why a party went, for its call session.
func dropInfo(p *clientcore.Party, e clientcore.PartyEnd) CloseInfo {
	if e.Reason != clientcore.ReasonRemote {
		return CloseInfo{Normal: true, By: ByLocal, Text: partyLabel(p) + " dropped (condis party drop)"}
	}
	info := CloseInfo{By: ByRemote, Status: e.Status.String(), Cause: int(e.Cause), CauseText: causeText(e.Cause)}
	if e.Status == ndis.StatusSuccess {
		info.Normal, info.Text = true, partyLabel(p)+" left the call"
	} else {
		info.Text = partyLabel(p) + " lost: " + describe(e.Status, e.Cause)
	}
	return info
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

// nodeOf is the node of "node/service".
func nodeOf(dest string) string {
	n, _, _ := strings.Cut(dest, "/")
	return n
}

// --- looking VCs up ---

// sessionVc returns the VC a request named, if it is a call a session of
// the Control owns; otherwise the response refusing the request (op names
// it: "hangup", "party add", ...). The caller checks the VC's state again:
// it may change meanwhile.
func (c *Control) sessionVc(op, name string) (*ctlVc, *Response) {
	fail := func(format string, args ...any) (*ctlVc, *Response) {
		return nil, &Response{Error: op + " " + name + ": " + fmt.Sprintf(format, args...)}
	}
	if name == "" {
		return nil, &Response{Error: op + ": no VC (name one as condis calls lists it, e.g. vc#12)"}
	}
	v := c.core.VC(name)
	var cv *ctlVc
	var bench bool
	if v != nil {
		cv, _ = v.Handler().(*ctlVc)
		_, bench = v.Handler().(*benchCall)
	}
	c.mu.Lock()
	owned := cv != nil && cv.s != nil
	c.mu.Unlock()
	switch {
	case v == nil:
		return fail("%s", c.unknownVc(name))
	case bench:
		return fail("a call of a bench run; it ends with the run")
	case !owned:
		return fail("the call is being offered and has no session yet")
	}
	return cv, nil
}

// unknownVc says why name is not a VC of the Control: no such VC on the
// node, or another client's. It asks the mediator: c.mu is not held.
func (c *Control) unknownVc(name string) string {
	if client, ok := c.cm.Adapter().Mediator().VcClient(name); ok {
		return fmt.Sprintf("not a call of this node's control plane (its client is %s); only the control plane's calls can be changed from here", orNone(client))
	}
	return "no such VC on this node (condis calls lists them)"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// flowspecs returns the flowspecs of f; best effort with nothing
// specified if f is nil.
func flowspecs(f *clientcore.Flows) (tx, rx ndis.Flowspec) {
	if f == nil {
		none, _ := (*Flowspec)(nil).Ndis()
		return none, none
	}
	return f.Tx, f.Rx
}

// --- serving the requests ---

// answerWhenDone runs op and writes the response it sends on done; it
// gives up if the node's shutdown does.
func (c *Control) answerWhenDone(conn net.Conn, op func(done chan Response)) {
	done := make(chan Response, 1)
	op(done)
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
		cv, bad := c.sessionVc("party add", req.Vc)
		var v *clientcore.VC
		if bad == nil {
			v = cv.v
			st := v.State()
			switch {
			case req.Dest == "":
				bad = &Response{Error: "party add " + req.Vc + ": no destination (node/service)"}
			case !v.Multipoint():
				bad = &Response{Error: fmt.Sprintf("party add %s: not a multipoint call; parties are added to a call made with condis call --multipoint (or with several destinations)", v.Name())}
			case !st.Up():
				bad = &Response{Error: fmt.Sprintf("party add %s: the call is %s", v.Name(), st.Words())}
			}
		}
		if bad != nil {
			done <- *bad
			return
		}
		v.AddParty(req.Dest, func(p *clientcore.Party, err error) {
			if err != nil {
				r := Response{Error: partyFailText(v, p, err)}
				var ce *clientcore.CallError
				switch {
				case errors.As(err, &ce):
					r.Status, r.Cause, r.CauseText = ce.Status.String(), int(ce.Cause), causeText(ce.Cause)
				case errors.Is(err, clientcore.ErrCallGone):
					r.Error = fmt.Sprintf("party add %s %s: the call went away", v.Name(), p.Dest())
				}
				done <- r
				return
			}
			done <- Response{OK: true, Vc: v.Name(), Party: p.Name()}
			c.mu.Lock()
			if s := cv.s; s != nil {
				s.out.pushEvent(Event{Event: EventPartyAdded, Vc: v.Name(), Peer: nodeOf(p.Dest()), Party: p.Name(), Dest: p.Dest()})
			}
			c.mu.Unlock()
		})
	})
}

// serveDropParty serves a party-drop request: NdisClDropParty of party
// req.Party of VC req.Vc, answered once the drop completed.
func (c *Control) serveDropParty(conn net.Conn, req *Request) {
	c.answerWhenDone(conn, func(done chan Response) {
		cv, bad := c.sessionVc("party drop", req.Vc)
		var p *clientcore.Party
		if bad == nil {
			p, bad = c.partyToDrop(cv.v, req.Party)
		}
		if bad != nil {
			done <- *bad
			return
		}
		v := cv.v
		fail := func(format string, args ...any) Response {
			return Response{Error: "party drop " + v.Name() + ": " + fmt.Sprintf(format, args...)}
		}
		p.DropParty(func(p *clientcore.Party, err error) {
			var se *clientcore.StatusError
			var ste *clientcore.StateError
			switch {
			case err == nil:
				done <- Response{OK: true, Vc: v.Name(), Party: p.Name()}
			case errors.As(err, &se):
				done <- Response{Error: fmt.Sprintf("party drop %s %s refused: %v", v.Name(), p.Name(), se.Status), Status: se.Status.String()}
			case errors.As(err, &ste) && strings.HasPrefix(ste.State, "still") || errors.As(err, &ste) && strings.HasPrefix(ste.State, "already"):
				done <- fail("%s is %s", p.Name(), ste.State)
			case errors.As(err, &ste):
				done <- fail("the call is %s", ste.State)
			case errors.Is(err, clientcore.ErrLastParty):
				done <- fail("%s is the call's last party; hang the call up instead (condis hangup %s)", p.Name(), v.Name())
			default:
				done <- fail("%v", err)
			}
		})
	})
}

// partyToDrop finds the party of v a party-drop request named, or says why
// it cannot be dropped.
func (c *Control) partyToDrop(v *clientcore.VC, name string) (*clientcore.Party, *Response) {
	fail := func(format string, args ...any) (*clientcore.Party, *Response) {
		return nil, &Response{Error: "party drop " + v.Name() + ": " + fmt.Sprintf(format, args...)}
	}
	if !v.Multipoint() {
		return fail("not a multipoint call; a point-to-point call has no parties to drop (condis hangup %s ends it)", v.Name())
	}
	if name == "" {
		return fail("no party (name one as condis calls lists it, e.g. party#9)")
	}
	st := v.State()
	var names []string
	var p *clientcore.Party
	var phase clientcore.PartyPhase
	live := 0
	for _, q := range st.Parties {
		qs := q.State()
		if qs.Phase == clientcore.PartyUp || qs.Phase == clientcore.PartyLeaving {
			names = append(names, q.Name())
			live++
		}
		if q.Name() == name {
			p, phase = q, qs.Phase
		}
	}
	switch {
	case p == nil:
		return fail("no party %s (its parties: %s)", name, strings.Join(names, ", "))
	case phase == clientcore.PartyAdding:
		return fail("%s is still being added", name)
	case phase == clientcore.PartyDropping:
		return fail("%s is already being dropped", name)
	case !st.Up():
		return fail("the call is %s", st.Words())
	case live <= 1:
		return fail("%s is the call's last party; hang the call up instead (condis hangup %s)", name, v.Name())
	}
	return p, nil
}

// serveModify serves a modify request: NdisClModifyCallQoS on VC req.Vc
// with the call's flowspecs, each member that req.Tx and req.Rx set
// replaced; answered with the flowspecs granted once the change completed.
func (c *Control) serveModify(conn net.Conn, req *Request) {
	c.answerWhenDone(conn, func(done chan Response) {
		cv, bad := c.sessionVc("modify", req.Vc)
		var v *clientcore.VC
		var st clientcore.State
		if bad == nil {
			v = cv.v
			st = v.State()
			switch {
			case !st.Up():
				bad = &Response{Error: fmt.Sprintf("modify %s: the call is %s", v.Name(), st.Words())}
			case st.QoSBusy:
				bad = &Response{Error: fmt.Sprintf("modify %s: a QoS change of the call is already in progress", v.Name())}
			case st.Flows == nil:
				bad = &Response{Error: fmt.Sprintf("modify %s: the call's flowspecs are not known", v.Name())}
			}
		}
		if bad != nil {
			done <- *bad
			return
		}
		tx, rx := flowspecs(st.Flows)
		var err error
		if tx, err = modified(tx, req.Tx); err == nil {
			rx, err = modified(rx, req.Rx)
		}
		if err != nil {
			done <- Response{Error: fmt.Sprintf("modify %s: %v", v.Name(), err)}
			return
		}
		if r := c.checkFlowspecs(v.Name(), tx, rx); r != nil {
			done <- *r
			return
		}
		v.ModifyQoS(tx, rx, func(f *clientcore.Flows, err error) {
			var ce *clientcore.CallError
			var se *clientcore.StateError
			switch {
			case err == nil:
				r := Response{OK: true, Vc: v.Name()}
				if f != nil {
					r.Tx, r.Rx = FlowspecOf(f.Tx), FlowspecOf(f.Rx)
				}
				done <- r
			case errors.As(err, &ce):
				done <- Response{Error: fmt.Sprintf("modify %s refused: %s%s", v.Name(), describe(ce.Status, ce.Cause), qosHint(ce.Status)),
					Status: ce.Status.String(), Cause: int(ce.Cause), CauseText: causeText(ce.Cause)}
			case errors.As(err, &se):
				done <- Response{Error: fmt.Sprintf("modify %s: the call is %s", v.Name(), se.State)}
			case errors.Is(err, clientcore.ErrCallGone):
				done <- Response{Error: fmt.Sprintf("modify %s: the call went away", v.Name())}
			default:
				done <- Response{Error: fmt.Sprintf("modify %s: %v", v.Name(), err)}
			}
		})
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

// serveHangup serves a hangup request: NdisClCloseCall on VC req.Vc (once
// its sends have completed), answered once the close completed. The
// session that owns the call ends as when the far end hangs up, its close
// frame saying the call was hung up here; a listen session is told with a
// closed event and goes on.
func (c *Control) serveHangup(conn net.Conn, req *Request) {
	cv, bad := c.sessionVc("hangup", req.Vc)
	if bad == nil {
		if st := cv.v.State(); st.Phase == clientcore.PhaseClosed || st.Phase == clientcore.PhaseDeleted {
			bad = &Response{Error: fmt.Sprintf("hangup %s: the call is over", cv.v.Name())}
		}
	}
	if bad != nil {
		writeJSONLine(conn, *bad)
		return
	}
	v := cv.v
	done := make(chan Response, 1)
	v.Close(whyHangup.reason(), func(st ndis.Status) {
		if st != ndis.StatusSuccess {
			done <- Response{Error: fmt.Sprintf("hangup %s: NdisClCloseCall refused: %v", v.Name(), st), Status: st.String()}
			return
		}
		done <- Response{OK: true, Vc: v.Name()}
	})
	select {
	case r := <-done:
		writeJSONLine(conn, r)
	case <-c.ctx.Done():
	}
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
