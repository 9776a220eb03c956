package memdrv

import (
	"testing"

	"github.com/condis-project/condis/ndis"
)

// lifecycleAllocs is what one steady-state call of the benchmark topology
// (ndis.BenchmarkCallLifecycle) allocates: the mediator's two *ndis.Vc and
// the clients' two *ClientVc. The call managers' VC records are recycled
// once the mediator has deleted their VCs.
const lifecycleAllocs = 4

// A complete point-to-point call (CreateVc, MakeCall, CloseCall, DeleteVc,
// the callee's VC deleted from the Loop) allocates no more than
// lifecycleAllocs objects once the call managers have records to recycle.
func TestCallLifecycleAllocations(t *testing.T) {
	m := ndis.New(ndis.Options{Name: t.Name(), OnViolation: func(v ndis.Violation) { t.Errorf("violation: %v", v) }})
	fab := NewFabric()
	mcm, st := NewMCM(m, "mcm", fab)
	if st != ndis.StatusSuccess {
		t.Fatal(st)
	}
	caller, _ := NewClient(m, "caller", mcm.Adapter(), fab)
	callee, _ := NewClient(m, "callee", mcm.Adapter(), fab)
	caller.NoLog, callee.NoLog = true, true
	fab.Run()
	af := caller.Af()
	if s := callee.RegisterSap(callee.Af(), "bench"); s.Register.Status != ndis.StatusSuccess {
		t.Fatal(s.Register)
	}
	fab.Run()
	params := CallParams("bench", ndis.Flowspec{TokenRate: 125000, MaxSduSize: 9180}, ndis.Flowspec{TokenRate: 125000, MaxSduSize: 9180})
	calls := 0
	lifecycle := func() {
		v, st := caller.CreateVc(af)
		if st != ndis.StatusSuccess {
			t.Fatal("CreateVc", st)
		}
		if _, st := caller.MakeCall(v, params, false); st != ndis.StatusSuccess {
			t.Fatal("MakeCall", st)
		}
		if st := caller.CloseCall(v); st != ndis.StatusSuccess {
			t.Fatal("CloseCall", st)
		}
		if st := caller.DeleteVc(v); st != ndis.StatusSuccess {
			t.Fatal("DeleteVc", st)
		}
		fab.Run()
		calls++
	}
	lifecycle() // the first call's records are allocated; later calls recycle them
	if got := testing.AllocsPerRun(200, lifecycle); got > lifecycleAllocs {
		t.Errorf("a call allocates %v objects, want at most %d", got, lifecycleAllocs)
	}
	if s := m.Snapshot(); len(s.Vcs) != 0 {
		t.Fatalf("VCs left after %d calls:\n%s", calls, s)
	}
	if in := callee.Incoming(); len(in) != 0 {
		t.Fatalf("callee keeps %d deleted VCs", len(in))
	}
}
