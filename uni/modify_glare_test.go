package uni

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// TestModifyGlare: two MODIFY REQUESTs cross. The side that originated the
// call wins on both ends; the other gives its own up at once (refused with
// 101, NDIS_STATUS_FAILURE), handles the winner's, and absorbs the
// winner's late MODIFY REJECT of the abandoned request without a STATUS.
func TestModifyGlare(t *testing.T) {
	ours := &TrafficDescriptor{FwdPCR01: Some(5000), BwdPCR01: Some(5000), BestEffort: true}
	theirs := func(l *Link, id CallID) (Output, error) { return l.Receive(peerMsg(MsgModifyRequest, id)), nil }
	lateReject := func(l *Link, id CallID) (Output, error) {
		m := peerMsg(MsgModifyReject, id)
		m.Causes = []CauseIE{glareCause()}
		return l.Receive(m), nil
	}
	ack := func(l *Link, id CallID) (Output, error) { return l.Receive(peerMsg(MsgModifyAck, id)), nil }
	accept := func(l *Link, id CallID) (Output, error) { return l.AcceptModify(id) }
	refuse := func(l *Link, id CallID) (Output, error) {
		return l.RejectModify(id, NewCause(CauseCellRateUnavailable))
	}
	t360 := func(l *Link, id CallID) (Output, error) { return l.Expire(TimerKey{Timer: T360, Call: id}), nil }
	modify := func(l *Link, id CallID) (Output, error) { return l.ModifyQoS(id, ours) }

	type step struct {
		name   string
		do     func(*Link, CallID) (Output, error)
		err    error // the request is refused with it, nothing output
		sent   []MsgType
		inds   []IndicationKind
		timers []string
		next   ModifyState
		call   CallState // 0: still active
	}
	cases := []struct {
		name       string
		originator bool
		steps      []step
	}{
		{"originator wins", true, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, sent: []MsgType{MsgModifyReject}, next: ModifyRequested},
			{name: "ours acknowledged", do: ack, inds: []IndicationKind{IndModified}, timers: []string{"-T360"}, next: ModifyNone},
			{name: "late T360 expiry", do: t360, next: ModifyNone},
		}},
		{"originator wins, then refused by the peer", true, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, sent: []MsgType{MsgModifyReject}, next: ModifyRequested},
			{name: "ours refused", do: lateReject, inds: []IndicationKind{IndModifyRejected}, timers: []string{"-T360"}, next: ModifyNone},
		}},
		{"originator wins, peer never answers", true, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, sent: []MsgType{MsgModifyReject}, next: ModifyRequested},
			{name: "T360", do: t360, sent: []MsgType{MsgRelease}, inds: []IndicationKind{IndModifyRejected, IndReleased}, timers: []string{"+T308"}, next: ModifyNone, call: StateReleaseRequest},
		}},
		{"other side yields, accepts, then the late reject", false, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, inds: []IndicationKind{IndModifyRejected, IndModify}, next: ModifyYieldedReceived},
			{name: "ModifyQoS while yielded", do: modify, err: ErrState, next: ModifyYieldedReceived},
			{name: "accepts the winner's", do: accept, sent: []MsgType{MsgModifyAck}, next: ModifyYielded},
			{name: "ModifyQoS before the late reject", do: modify, err: ErrState, next: ModifyYielded},
			{name: "late reject absorbed", do: lateReject, timers: []string{"-T360"}, next: ModifyNone},
			{name: "a new request goes out", do: modify, sent: []MsgType{MsgModifyRequest}, timers: []string{"+T360"}, next: ModifyRequested},
		}},
		{"other side yields, late reject before its answer", false, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, inds: []IndicationKind{IndModifyRejected, IndModify}, next: ModifyYieldedReceived},
			{name: "late reject absorbed", do: lateReject, timers: []string{"-T360"}, next: ModifyReceived},
			{name: "accepts the winner's", do: accept, sent: []MsgType{MsgModifyAck}, next: ModifyNone},
			{name: "a second MODIFY REJECT is out of place", do: lateReject, sent: []MsgType{MsgStatus}, next: ModifyNone},
		}},
		{"other side yields, refuses the winner's", false, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, inds: []IndicationKind{IndModifyRejected, IndModify}, next: ModifyYieldedReceived},
			{name: "refuses the winner's", do: refuse, sent: []MsgType{MsgModifyReject}, next: ModifyYielded},
			{name: "late reject absorbed", do: lateReject, timers: []string{"-T360"}, next: ModifyNone},
		}},
		{"other side yields, the late reject never comes", false, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, inds: []IndicationKind{IndModifyRejected, IndModify}, next: ModifyYieldedReceived},
			{name: "T360 before the answer", do: t360, next: ModifyReceived},
			{name: "accepts the winner's", do: accept, sent: []MsgType{MsgModifyAck}, next: ModifyNone},
		}},
		{"other side yields, answers, the late reject never comes", false, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, inds: []IndicationKind{IndModifyRejected, IndModify}, next: ModifyYieldedReceived},
			{name: "accepts the winner's", do: accept, sent: []MsgType{MsgModifyAck}, next: ModifyYielded},
			{name: "T360", do: t360, next: ModifyNone},
			{name: "the reject after all is out of place", do: lateReject, sent: []MsgType{MsgStatus}, next: ModifyNone},
		}},
		{"other side yields, winner's acknowledgement of ours is out of place", false, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, inds: []IndicationKind{IndModifyRejected, IndModify}, next: ModifyYieldedReceived},
			{name: "accepts the winner's", do: accept, sent: []MsgType{MsgModifyAck}, next: ModifyYielded},
			{name: "MODIFY ACKNOWLEDGE of the abandoned request", do: ack, sent: []MsgType{MsgStatus}, next: ModifyYielded},
		}},
		{"other side yields, call cleared", false, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, inds: []IndicationKind{IndModifyRejected, IndModify}, next: ModifyYieldedReceived},
			{name: "accepts the winner's", do: accept, sent: []MsgType{MsgModifyAck}, next: ModifyYielded},
			{name: "Release", do: func(l *Link, id CallID) (Output, error) { return l.Release(id, NewCause(CauseNormalCallClearing)) },
				sent: []MsgType{MsgRelease}, timers: []string{"-T360", "+T308"}, next: ModifyNone, call: StateReleaseRequest},
		}},
		{"other side yields, link fails", false, []step{
			{name: "MODIFY REQUEST crosses ours", do: theirs, inds: []IndicationKind{IndModifyRejected, IndModify}, next: ModifyYieldedReceived},
			{name: "LinkDown", do: func(l *Link, id CallID) (Output, error) { return l.LinkDown(), nil },
				timers: []string{"-T360", "+T309"}, next: ModifyNone},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, id := linkIn(t, StateActive, tc.originator, false)
			o := ok(t)(l.ModifyQoS(id, ours))
			wantSent(t, o, MsgModifyRequest)
			wantTimers(t, o, "+T360")
			for _, s := range tc.steps {
				o, err := s.do(l, id)
				if !errors.Is(err, s.err) {
					t.Fatalf("%s: %v, want %v", s.name, err, s.err)
				}
				if got := msgTypes(o); !slices.Equal(got, s.sent) {
					t.Fatalf("%s: sent %v, want %v", s.name, got, s.sent)
				}
				checkEncodes(t, o)
				if got := indKinds(o); !slices.Equal(got, s.inds) {
					t.Fatalf("%s: indications %v, want %v", s.name, got, s.inds)
				}
				if got := timerOps(o); !slices.Equal(got, s.timers) {
					t.Fatalf("%s: timers %v, want %v", s.name, got, s.timers)
				}
				if got, _ := l.ModifyState(id); got != s.next {
					t.Fatalf("%s: modify state %v, want %v", s.name, got, s.next)
				}
				st := s.call
				if st == 0 {
					st = StateActive
				}
				wantState(t, l, id, st)
				checkGlareOutput(t, s.name, o, tc.originator, ours)
			}
		})
	}
}

// checkGlareOutput checks the contents of what a glare step output: the
// winner's MODIFY REJECT and the loser's refusal of its own request carry
// cause 101 with the MODIFY REQUEST as diagnostic, and the loser is asked
// for exactly the winner's parameters.
func checkGlareOutput(t *testing.T, step string, o Output, originator bool, ours *TrafficDescriptor) {
	t.Helper()
	for _, m := range o.Messages {
		if m.Msg.Type == MsgModifyReject && originator {
			if c := m.Msg.Causes[0]; c.Value != CauseMessageIncompatible || !bytes.Equal(c.Diagnostic, []byte{byte(MsgModifyRequest)}) {
				t.Errorf("%s: MODIFY REJECT cause %v %x, want 101 with diagnostic MODIFY REQUEST", step, c.Value, c.Diagnostic)
			}
		}
	}
	for _, ind := range o.Indications {
		switch ind.Kind {
		case IndModifyRejected:
			if ind.Traffic != ours {
				t.Errorf("%s: refused modification carries %+v, want ours", step, ind.Traffic)
			}
			if !originator && ind.Msg == nil && (ind.Cause.Value != CauseMessageIncompatible ||
				!bytes.Equal(ind.Cause.Diagnostic, []byte{byte(MsgModifyRequest)})) {
				t.Errorf("%s: yielded request refused with %v, want 101", step, ind.Cause)
			}
		case IndModify:
			if ind.Traffic == nil || ind.Traffic.FwdPCR01.Value != 200000 {
				t.Errorf("%s: asked for %+v, want the winner's", step, ind.Traffic)
			}
		case IndModified:
			if ind.Traffic != ours {
				t.Errorf("%s: modified to %+v, want ours", step, ind.Traffic)
			}
		}
	}
}
