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

// TestJoinCallIgnored: a joined Call hook ignores an event only when every
// joined Call hook would; a CallIgnored without a Call hook does not
// count, and CallHook is nil then.
func TestJoinCallIgnored(t *testing.T) {
	calls := 0
	hook := func(Call) { calls++ }
	subscribed := false
	feed := Tracer{Call: hook, CallIgnored: func() bool { return !subscribed }}
	for _, tc := range []struct {
		name    string
		tracers []Tracer
		sub     bool
		ignored bool
	}{
		{"no hooks", nil, false, true},
		{"an idle feed", []Tracer{feed}, false, true},
		{"a subscribed feed", []Tracer{feed}, true, false},
		{"two idle feeds", []Tracer{feed, feed}, false, true},
		{"an idle feed and a log", []Tracer{feed, {Call: hook}}, false, false},
		{"a log and an ignoring flag without a hook", []Tracer{{Call: hook}, {CallIgnored: func() bool { return true }}}, false, false},
		{"joined again", []Tracer{Join(feed, feed), feed}, false, true},
	} {
		subscribed = tc.sub
		j := Join(tc.tracers...)
		h := j.CallHook()
		if (h == nil) != tc.ignored {
			t.Errorf("%s: CallHook nil %v, want %v", tc.name, h == nil, tc.ignored)
		}
		if h != nil {
			calls = 0
			h(Call{})
			if calls == 0 {
				t.Errorf("%s: the hook CallHook returned reached no Call", tc.name)
			}
		}
	}
}
