package trace

import "testing"

// TestJoinSignalUntimed: a joined Signal goes without Time only when
// every joined Signal hook would ignore it; a SignalUntimed without a
// Signal hook does not count.
func TestJoinSignalUntimed(t *testing.T) {
	hook := func(Signal) {}
	subscribed := false
	feed := Tracer{Signal: hook, SignalUntimed: func() bool { return !subscribed }}
	counter := Tracer{Signal: hook, SignalUntimed: Untimed}
	for _, tc := range []struct {
		name    string
		tracers []Tracer
		sub     bool
		untimed bool
	}{
		{"no hooks", nil, false, false},
		{"a counter", []Tracer{counter}, false, true},
		{"a counter and an idle feed", []Tracer{counter, feed}, false, true},
		{"a counter and a subscribed feed", []Tracer{counter, feed}, true, false},
		{"a counter and a hook that reads Time", []Tracer{counter, {Signal: hook}}, false, false},
		{"a hook that reads Time and an untimed flag without a hook", []Tracer{{Signal: hook}, {SignalUntimed: Untimed}}, false, false},
		{"joined again", []Tracer{Join(counter, feed), counter}, false, true},
	} {
		subscribed = tc.sub
		j := Join(tc.tracers...)
		if got := j.SignalTime().IsZero(); got != tc.untimed {
			t.Errorf("%s: SignalTime zero %v, want %v", tc.name, got, tc.untimed)
		}
	}
}
