package callctl

import (
	"testing"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
)

// TestLegal: the arrows State's doc comment draws, and no others.
func TestLegal(t *testing.T) {
	arrows := map[[2]State]bool{}
	for _, a := range [][2]State{
		{0, Idle}, {0, Offered},
		{Idle, Calling}, {Idle, Offered},
		{Calling, Active}, {Calling, Idle},
		{Offered, Accepted}, {Offered, Active}, {Offered, Released}, {Offered, Idle},
		{Accepted, Active}, {Accepted, Released}, {Accepted, Closing},
		{Active, Released}, {Active, Closing},
		{Released, ClosingReleased},
		{Closing, Finishing}, {ClosingReleased, Finishing},
		{Finishing, Idle},
	} {
		arrows[a] = true
	}
	for from := State(0); from <= numStates; from++ {
		for to := State(0); to <= numStates; to++ {
			if got := Legal(from, to); got != arrows[[2]State{from, to}] {
				t.Errorf("Legal(%v, %v) = %v", from, to, got)
			}
		}
	}
}

// TestStatePredicates: IsClosing is the client's close in progress; Ended
// adds the network's release.
func TestStatePredicates(t *testing.T) {
	for s := Idle; s < numStates; s++ {
		closing := s == Closing || s == ClosingReleased || s == Finishing
		if s.IsClosing() != closing || s.Ended() != (closing || s == Released) {
			t.Errorf("%v: IsClosing %v, Ended %v", s, s.IsClosing(), s.Ended())
		}
		if s.String() == "" || s.String()[0] == 's' && s != 0 {
			t.Errorf("state %d has no name: %q", s, s.String())
		}
	}
	if State(0).String() != "state 0" || State(200).String() != "state 200" {
		t.Errorf("unnamed states: %q %q", State(0).String(), State(200).String())
	}
}

// TestTransitionsMove: each move records its reason and emits one event
// naming both states; a move to the state the VC is in records the reason
// only; a move with no arrow is reported and made.
func TestTransitionsMove(t *testing.T) {
	var events []trace.VcState
	type bad struct {
		from, to State
		why      Reason
	}
	var illegal []bad
	tr := Transitions{Node: "alpha", Trace: func(e trace.VcState) { events = append(events, e) },
		Illegal: func(_ *ndis.Vc, from, to State, why Reason) { illegal = append(illegal, bad{from, to, why}) }}
	var v VC
	tr.Move(&v, nil, Idle, ReasonCreated)
	tr.Move(&v, nil, Calling, ReasonMakeCall)
	tr.Move(&v, nil, Calling, ReasonMakeCall)
	tr.Move(&v, nil, Active, ReasonConnect)
	if v.State() != Active || v.Reason() != ReasonConnect {
		t.Fatalf("VC %v (%v)", v.State(), v.Reason())
	}
	want := []trace.VcState{
		{Node: "alpha", From: "", To: "idle", Reason: "created"},
		{Node: "alpha", From: "idle", To: "calling", Reason: "MakeCall"},
		{Node: "alpha", From: "calling", To: "active", Reason: "CONNECT"},
	}
	if len(events) != len(want) {
		t.Fatalf("events %+v", events)
	}
	for i, e := range events {
		if e.Time.IsZero() {
			t.Errorf("event %d has no time", i)
		}
		e.Time = want[i].Time
		if e != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, e, want[i])
		}
	}
	if len(illegal) != 0 {
		t.Fatalf("legal moves reported: %+v", illegal)
	}
	tr.Move(&v, nil, Calling, ReasonMakeCall)
	if v.State() != Calling || len(illegal) != 1 || illegal[0] != (bad{Active, Calling, ReasonMakeCall}) {
		t.Errorf("illegal move: VC %v, reported %+v", v.State(), illegal)
	}
}
