package ndis_test

import (
	"sync"
	"testing"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// TestNoGlobalLockOnCallPath stops one goroutine inside the mediator while
// it holds the lock of one VC (its R-DATA-2 warning is reported under that
// lock, and the OnViolation hook waits), and requires a complete call on
// other objects of the same mediator to go through meanwhile: create, make,
// close and delete, both ends. With a mediator-wide lock held while
// reporting, the second call would block until the first goroutine left.
// Then the stopped send must finish normally.
func TestNoGlobalLockOnCallPath(t *testing.T) {
	inHook, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	m := ndis.New(ndis.Options{Name: "parallel", OnViolation: func(v ndis.Violation) {
		if v.Rule != "R-DATA-2" {
			t.Errorf("unexpected violation %v", v)
			return
		}
		once.Do(func() { close(inHook) })
		<-release
	}})
	fab := memdrv.NewFabric()
	mcm, st := memdrv.NewMCM(m, "mcm", fab)
	if st != ndis.StatusSuccess {
		t.Fatal(st)
	}
	caller, _ := memdrv.NewClient(m, "caller", mcm.Adapter(), fab)
	callee, _ := memdrv.NewClient(m, "callee", mcm.Adapter(), fab)
	fab.Run()
	callee.RegisterSap(callee.Af(), "svc")
	fab.Run()
	params := func() *ndis.CallParameters {
		return memdrv.CallParams("svc", ndis.Flowspec{TokenRate: 125000, MaxSduSize: 9180}, ndis.Flowspec{TokenRate: 125000, MaxSduSize: 9180})
	}
	held, st := caller.CreateVc(caller.Af())
	if st != ndis.StatusSuccess {
		t.Fatal("create", st)
	}
	if _, st := caller.MakeCall(held, params(), false); st != ndis.StatusSuccess {
		t.Fatal("make", st)
	}
	other, st := caller.CreateVc(caller.Af())
	if st != ndis.StatusSuccess {
		t.Fatal("create", st)
	}

	// A list whose SourceHandle names another VC: the send proceeds, and
	// R-DATA-2 is reported while the sent-on VC is locked.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		caller.Binding().CoSendNetBufferLists(held.H, &ndis.NetBufferList{Data: []byte("x"), SourceHandle: other.H}, 0)
	}()
	select {
	case <-inHook:
	case <-sent:
		t.Fatal("the send returned without reporting R-DATA-2")
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		v, st := caller.CreateVc(caller.Af())
		if st != ndis.StatusSuccess {
			t.Error("create", st)
			return
		}
		if _, st := caller.MakeCall(v, params(), false); st != ndis.StatusSuccess {
			t.Error("make", st)
			return
		}
		if st := caller.CloseCall(v); st != ndis.StatusSuccess {
			t.Error("close", st)
			return
		}
		if st := caller.DeleteVc(v); st != ndis.StatusSuccess {
			t.Error("delete", st)
		}
	}()
	// A watchdog, not a timer under test: with a mediator-wide lock the
	// call never finishes while the hook waits.
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		close(release)
		t.Fatal("a call on other VCs could not proceed while one VC's lock was held: the mediator serialises calls")
	}
	close(release)
	<-sent
	fab.Run()
	if s := m.Snapshot(); s.Counters.CallsMade != 2 || s.Counters.CallsClosed < 2 || s.Counters.SendsForwarded != 1 {
		t.Errorf("counters after both calls and the send: %+v", s.Counters)
	}
}
