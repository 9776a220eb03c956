package memdrv

import (
	"testing"

	"github.com/condis-project/condis/ndis"
)

// lifecycleAllocs is what one steady-state call of the benchmark topology
// (ndis.BenchmarkCallLifecycle) allocates: the mediator's two *ndis.Vc,
// and the clients' two *ClientVc unless they recycle them (RecycleVcs).
// The call managers' VC records are recycled once the mediator has deleted
// their VCs, and the mediator's activation parameters come from its pool.
func lifecycleAllocs(recycle bool) float64 {
	if recycle {
		return 2
	}
	return 4
}

// A complete point-to-point call (CreateVc, MakeCall, CloseCall, DeleteVc,
// the callee's VC deleted from the Loop) allocates no more than
// lifecycleAllocs objects once the call managers have records to recycle.
func TestCallLifecycleAllocations(t *testing.T) {
	t.Run("keep", func(t *testing.T) { testCallLifecycleAllocations(t, false) })
	t.Run("recycle", func(t *testing.T) { testCallLifecycleAllocations(t, true) })
}

func testCallLifecycleAllocations(t *testing.T, recycle bool) {
	m, fab, mcm := newStrictMCM(t)
	caller, _ := NewClient(m, "caller", mcm.Adapter(), fab)
	callee, _ := NewClient(m, "callee", mcm.Adapter(), fab)
	caller.NoLog, callee.NoLog = true, true
	caller.RecycleVcs, callee.RecycleVcs = recycle, recycle
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
	if got, want := testing.AllocsPerRun(200, lifecycle), lifecycleAllocs(recycle); got > want {
		t.Errorf("a call allocates %v objects, want at most %v", got, want)
	}
	if s := m.Snapshot(); len(s.Vcs) != 0 {
		t.Fatalf("VCs left after %d calls:\n%s", calls, s)
	}
	if in := callee.Incoming(); len(in) != 0 {
		t.Fatalf("callee keeps %d deleted VCs", len(in))
	}
}

// A recycled VC record is not its last VC: link loss at the far end of a
// deleted VC's call, whose leaf is still closing, leaves the call the
// record carries now alone.
func TestRecycledVcRecordIsNotItsLastCall(t *testing.T) {
	m := ndis.New(ndis.Options{Name: t.Name(), OnViolation: func(v ndis.Violation) { t.Errorf("violation: %v", v) }})
	fab := NewFabric()
	a, st := NewMCM(m, "a", fab)
	if st != ndis.StatusSuccess {
		t.Fatal(st)
	}
	b, st := NewMCM(m, "b", fab)
	if st != ndis.StatusSuccess {
		t.Fatal(st)
	}
	caller, _ := NewClient(m, "caller", a.Adapter(), fab)
	onA, _ := NewClient(m, "onA", a.Adapter(), fab)
	onB, _ := NewClient(m, "onB", b.Adapter(), fab)
	onB.CloseLater = true // its leaf stays until the Loop runs its close
	fab.Run()
	onA.RegisterSap(onA.Af(), "svcA")
	onB.RegisterSap(onB.Af(), "svcB")
	fab.Run()
	flow := ndis.Flowspec{TokenRate: 1000}

	v1, _ := caller.CreateVc(caller.Af())
	if _, st := caller.MakeCall(v1, CallParams("svcB", flow, flow), false); st != ndis.StatusSuccess {
		t.Fatal("MakeCall to b:", st)
	}
	if st := caller.CloseCall(v1); st != ndis.StatusSuccess {
		t.Fatal("CloseCall:", st)
	}
	if st := caller.DeleteVc(v1); st != ndis.StatusSuccess {
		t.Fatal("DeleteVc:", st)
	}
	free := func() int { fab.mu.Lock(); defer fab.mu.Unlock(); return len(a.core.freeRoots) }
	if n := free(); n != 1 {
		t.Fatalf("%d root records kept after the deletion, want 1", n)
	}
	v2, _ := caller.CreateVc(caller.Af()) // takes v1's record
	if n := free(); n != 0 {
		t.Fatalf("%d root records kept after CreateVc, want 0 (recycled)", n)
	}
	if _, st := caller.MakeCall(v2, CallParams("svcA", flow, flow), false); st != ndis.StatusSuccess {
		t.Fatal("MakeCall to a:", st)
	}

	b.LinkDown(ndis.StatusDestOutOfOrder) // b's leaf of v1's call is still closing
	if n := See(caller, func() int { return v2.CloseIndicated }); n != 0 {
		t.Fatalf("link loss at b closed the call v2 makes to a (%d close indication(s)): it followed the link of v1's call, whose record v2 took over", n)
	}

	fab.Run() // onB closes v1's leaf; the MCM deletes it
	if st := caller.CloseCall(v2); st != ndis.StatusSuccess {
		t.Fatal("CloseCall v2:", st)
	}
	deleteLastVc(t, m, fab, caller, v2)
}

// A client that recycles its VC records drops the work it posted for a VC
// whose record stands for a later VC by the time the Loop runs it: here
// AutoDelete's deletion of a VC whose call failed, when the caller deleted
// that VC itself first and created another, which took its record.
func TestRecycledClientVcDropsStaleWork(t *testing.T) {
	m, fab, mcm := newStrictMCM(t)
	caller, _ := NewClient(m, "caller", mcm.Adapter(), fab)
	caller.AutoDelete, caller.RecycleVcs = true, true
	fab.Run()
	af := caller.Af()
	flow := ndis.Flowspec{TokenRate: 1000}

	v1, _ := caller.CreateVc(af)
	if _, st := caller.MakeCall(v1, CallParams("nobody", flow, flow), false); st != ndis.StatusInvalidSap {
		t.Fatalf("a call to an unregistered service: %v, want INVALID_SAP at once", st)
	}
	// AutoDelete has posted v1's deletion; the caller deletes it first.
	if st := caller.DeleteVc(v1); st != ndis.StatusSuccess {
		t.Fatal("DeleteVc:", st)
	}
	v2, st := caller.CreateVc(af)
	if st != ndis.StatusSuccess {
		t.Fatal("CreateVc:", st)
	}
	if v2 != v1 {
		t.Fatal("the new VC did not take the deleted VC's record")
	}
	fab.Run() // the posted deletion of v1 runs
	if s := m.Snapshot(); len(s.Vcs) != 1 || See(caller, func() bool { return v2.Deleted }) {
		t.Fatalf("the work posted for the deleted VC deleted the VC that took its record:\n%s", s)
	}
	deleteLastVc(t, m, fab, caller, v2)
}

// deleteLastVc deletes v, the last VC, and checks that the mediator then
// has none.
func deleteLastVc(t *testing.T, m *ndis.Mediator, fab *Fabric, c *Client, v *ClientVc) {
	t.Helper()
	if st := c.DeleteVc(v); st != ndis.StatusSuccess {
		t.Fatal("DeleteVc:", st)
	}
	fab.Run()
	if s := m.Snapshot(); len(s.Vcs) != 0 {
		t.Fatalf("VCs left:\n%s", s)
	}
}

// newStrictMCM is a mediator that fails t on any violation, with one MCM.
func newStrictMCM(t *testing.T) (*ndis.Mediator, *Fabric, *MCM) {
	t.Helper()
	m := ndis.New(ndis.Options{Name: t.Name(), OnViolation: func(v ndis.Violation) { t.Errorf("violation: %v", v) }})
	fab := NewFabric()
	mcm, st := NewMCM(m, "mcm", fab)
	if st != ndis.StatusSuccess {
		t.Fatal(st)
	}
	return m, fab, mcm
}
