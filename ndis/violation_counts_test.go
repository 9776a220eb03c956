package ndis_test

import (
	"testing"

	"github.com/condis-project/condis/ndis"
)

// TestViolationCounts: the mediator counts every violation by rule, also
// those it no longer keeps (KeepViolations), and says its name.
func TestViolationCounts(t *testing.T) {
	m := ndis.New(ndis.Options{Name: "alpha", KeepViolations: 2})
	if got := m.ViolationCounts(); len(got) != 0 {
		t.Fatalf("a new mediator counts %v", got)
	}
	for range 5 {
		if _, st := m.AddMiniport("broken", nil, nil, nil); st != ndis.StatusFailure {
			t.Fatalf("a miniport without handlers: %v", st)
		}
	}
	got := m.ViolationCounts()
	if len(got) != 1 || got["R-REG-7"] != 5 {
		t.Errorf("counts %v, want R-REG-7: 5", got)
	}
	if kept := len(m.Violations()); kept > 2 {
		t.Errorf("%d violations kept, want at most 2", kept)
	}
	got["R-REG-7"] = 0 // a copy: the mediator's count stays
	if m.ViolationCounts()["R-REG-7"] != 5 || m.Name() != "alpha" {
		t.Errorf("counts %v, name %q", m.ViolationCounts(), m.Name())
	}
}
