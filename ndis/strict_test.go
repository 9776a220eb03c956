package ndis_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/condis-project/condis/ndis"
)

type recorder struct{ msgs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

// Strict mode: a refused request (here R-GEN-8, a request on an adapter that
// was never attached) becomes a test failure naming the rule.
func TestFailOnReportsRuleID(t *testing.T) {
	var r recorder
	m := ndis.New(ndis.Options{OnViolation: ndis.FailOn(&r)})
	if _, st := m.BindAdapter(nil, "stray", nil, nil, nil); st != ndis.StatusFailure {
		t.Fatalf("BindAdapter without handlers: %v", st)
	}
	if len(r.msgs) != 1 || !strings.Contains(r.msgs[0], "R-REG-1") {
		t.Fatalf("strict mode reported %q", r.msgs)
	}
	if got := m.Violations(); len(got) != 1 || got[0].Rule != "R-REG-1" || got[0].Status != ndis.StatusFailure {
		t.Fatalf("Violations() = %v", got)
	}
}

// A misbehaving driver must not grow a node's memory: Violations keeps the
// most recent ones, the counter keeps them all.
func TestViolationsAreBounded(t *testing.T) {
	m := ndis.New(ndis.Options{KeepViolations: 10})
	for i := 0; i < 1000; i++ {
		m.BindAdapter(nil, fmt.Sprint("stray", i), nil, nil, nil)
	}
	got := m.Violations()
	if len(got) != 10 || got[9].Driver != "stray999" || got[0].Driver != "stray990" {
		t.Fatalf("kept %d violations, last %q, first %q", len(got), got[len(got)-1].Driver, got[0].Driver)
	}
	if n := m.Snapshot().Counters.Violations; n != 1000 {
		t.Fatalf("counted %d violations, want 1000", n)
	}
}
