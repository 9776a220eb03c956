package ndis

import "fmt"

// Violation is a broken contract rule observed by the mediator: either a
// request it refused (the status it returned is in Status) or a driver-side
// obligation it saw broken (a double completion, a completion with PENDING,
// a pended operation never completed, ...). Rule is a rule ID of spec §6,
// such as "R-VC-5".
type Violation struct {
	Rule   string // spec §6 rule ID
	Func   string // the DDI function or handler involved, e.g. "NdisCoDeleteVc"
	Driver string // the driver that broke the rule
	Object string // the object involved, e.g. "vc#4"
	Status Status // status returned to the caller; StatusSuccess if the call proceeded
	Detail string // what happened, in a sentence
}

// Error formats the violation; Violation is usable as an error.
func (v Violation) Error() string {
	s := fmt.Sprintf("%s: %s by %s", v.Rule, v.Func, v.Driver)
	if v.Object != "" {
		s += " on " + v.Object
	}
	if v.Status != StatusSuccess {
		s += " -> " + v.Status.String()
	}
	if v.Detail != "" {
		s += ": " + v.Detail
	}
	return s
}

// Errorer is what strict mode needs from a test; *testing.T and *testing.B
// satisfy it.
type Errorer interface {
	Errorf(format string, args ...any)
}

// FailOn returns an Options.OnViolation hook for strict mode: every contract
// violation becomes a failure of t, with its rule ID. Use it to run your own
// driver's tests against the mediator:
//
//	m := ndis.New(ndis.Options{OnViolation: ndis.FailOn(t)})
func FailOn(t Errorer) func(Violation) {
	return func(v Violation) { t.Errorf("CoNDIS contract violation %v", v) }
}
