package uni

import "testing"

// TestCauseStringAllocatesNothing: String of every cause value, named or
// not, is its name and number (or "cause N"), made without allocating
// (traces and logs format the cause of most calls that end).
func TestCauseStringAllocatesNothing(t *testing.T) {
	for _, c := range []struct {
		c    Cause
		want string
	}{
		{CauseNormalCallClearing, "normal call clearing (16)"},
		{CauseTemporaryFailure, "temporary failure (41)"},
		{Cause(0), "cause 0"},
		{Cause(126), "cause 126"},
		{Cause(255), "cause 255"},
	} {
		if got := c.c.String(); got != c.want {
			t.Errorf("Cause(%d).String() = %q, want %q", c.c, got, c.want)
		}
	}
	var s string
	if n := testing.AllocsPerRun(100, func() {
		for i := range 256 {
			s = Cause(i).String()
		}
	}); n != 0 {
		t.Errorf("String of the 256 cause values allocates %.0f times, want none", n)
	}
	_ = s
}
