package callctl

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/condis-project/condis/ndis"
)

// fakeCM is the CM side of a call manager whose miniport completes
// activations and deactivations at once, pends them (the test completes
// them), or completes them inside the request and then returns PENDING
// (spec §3.0). It records what it was asked; only ActivateVc and
// DeactivateVc are used here.
type fakeCM struct {
	CM   // the other requests are not used by Activation
	mode string
	st   ndis.Status // what the CM completes with
	a    *Activation

	mu  sync.Mutex
	log []string
}

func (f *fakeCM) note(s string) {
	f.mu.Lock()
	f.log = append(f.log, s)
	f.mu.Unlock()
}

func (f *fakeCM) answer(op string) ndis.Status {
	f.note(op)
	switch f.mode {
	case "pend":
		return ndis.StatusPending
	case "pend-early":
		if !f.a.Completed(f.st) {
			f.note("early completion refused")
		}
		return ndis.StatusPending
	}
	return f.st
}

func (f *fakeCM) ActivateVc(vc *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	return f.answer(fmt.Sprintf("ActivateVc(%d)", p.CallMgrParameters.Transmit.TokenRate))
}

func (f *fakeCM) DeactivateVc(vc *ndis.Vc) ndis.Status { return f.answer("DeactivateVc") }

func params(rate uint32) *ndis.CallParameters {
	return &ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{Transmit: ndis.Flowspec{TokenRate: rate}}}
}

// TestActivationModes: activate, re-activate and deactivate, in each mode
// of the CM: each done exactly once, after the CM was asked and (pended)
// after the completion, in order; the state follows; a second deactivation
// does not reach the CM.
func TestActivationModes(t *testing.T) {
	for _, mode := range []string{"immediate", "pend", "pend-early"} {
		t.Run(mode, func(t *testing.T) {
			f := &fakeCM{mode: mode, st: ndis.StatusSuccess}
			a := NewActivation(f, nil)
			f.a = a
			done := func(what string) func(ndis.Status) {
				return func(st ndis.Status) { f.note(fmt.Sprintf("%s done %v", what, st)) }
			}
			complete := func() {
				if mode == "pend" {
					f.note("complete")
					if !a.Completed(ndis.StatusSuccess) {
						t.Fatal("Completed refused for a pended request")
					}
				}
			}
			a.Activate(params(1), done("activate"))
			if want := map[bool]ActivationState{true: Activating, false: ActiveVc}[mode == "pend"]; a.State() != want {
				t.Errorf("after Activate: %v, want %v", a.State(), want)
			}
			complete()
			a.Activate(params(2), done("re-activate"))
			complete()
			if a.State() != ActiveVc {
				t.Errorf("after re-activation: %v", a.State())
			}
			a.Deactivate(done("deactivate"))
			complete()
			if a.State() != Inactive {
				t.Errorf("after Deactivate: %v", a.State())
			}
			a.Deactivate(done("deactivate again"))
			var want []string
			for _, s := range []string{"ActivateVc(1)|activate", "ActivateVc(2)|re-activate", "DeactivateVc|deactivate"} {
				op, what, _ := cut(s)
				want = append(want, op)
				if mode == "pend" {
					want = append(want, "complete")
				}
				want = append(want, what+" done NDIS_STATUS_SUCCESS")
			}
			want = append(want, "deactivate again done NDIS_STATUS_SUCCESS")
			if !slices.Equal(f.log, want) {
				t.Errorf("log\n%q\nwant\n%q", f.log, want)
			}
			if a.Completed(ndis.StatusSuccess) {
				t.Error("a completion with nothing pending was taken")
			}
		})
	}
}

func cut(s string) (string, string, bool) {
	for i := range s {
		if s[i] == '|' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// TestActivationOneAtATime: a deactivation asked while a pended activation
// is in flight waits for it (R-ACT-10): the CM is not asked until the
// activation completed, and the two dones come in order.
func TestActivationOneAtATime(t *testing.T) {
	f := &fakeCM{mode: "pend", st: ndis.StatusSuccess}
	a := NewActivation(f, nil)
	f.a = a
	a.Activate(params(7), func(st ndis.Status) { f.note("activate done " + st.String()) })
	a.Deactivate(func(st ndis.Status) { f.note("deactivate done " + st.String()) })
	if !slices.Equal(f.log, []string{"ActivateVc(7)"}) {
		t.Fatalf("the deactivation did not wait: %q", f.log)
	}
	a.Completed(ndis.StatusSuccess)
	if a.State() != Deactivating {
		t.Errorf("state %v, want deactivating", a.State())
	}
	a.Completed(ndis.StatusSuccess)
	want := []string{"ActivateVc(7)", "activate done NDIS_STATUS_SUCCESS", "DeactivateVc", "deactivate done NDIS_STATUS_SUCCESS"}
	if !slices.Equal(f.log, want) || a.State() != Inactive {
		t.Errorf("log %q, state %v", f.log, a.State())
	}
}

// TestActivationFailure: a failed activation leaves the VC as it was —
// inactive, or active with its old parameters for a failed re-activation
// — and a failed deactivation leaves it active; in both modes.
func TestActivationFailure(t *testing.T) {
	for _, mode := range []string{"immediate", "pend"} {
		t.Run(mode, func(t *testing.T) {
			f := &fakeCM{mode: mode, st: ndis.StatusResources}
			a := NewActivation(f, nil)
			f.a = a
			var got []ndis.Status
			done := func(st ndis.Status) { got = append(got, st) }
			finish := func(st ndis.Status) {
				if mode == "pend" {
					a.Completed(st)
				}
			}
			a.Activate(params(1), done)
			finish(ndis.StatusResources)
			if a.State() != Inactive {
				t.Errorf("after a failed activation: %v", a.State())
			}
			f.st = ndis.StatusSuccess
			a.Activate(params(2), done)
			finish(ndis.StatusSuccess)
			f.st = ndis.StatusCellrateNotAvailable
			a.Activate(params(3), done)
			finish(ndis.StatusCellrateNotAvailable)
			if a.State() != ActiveVc {
				t.Errorf("after a failed re-activation: %v", a.State())
			}
			f.st = ndis.StatusFailure
			a.Deactivate(done)
			finish(ndis.StatusFailure)
			if a.State() != ActiveVc {
				t.Errorf("after a failed deactivation: %v", a.State())
			}
			want := []ndis.Status{ndis.StatusResources, ndis.StatusSuccess, ndis.StatusCellrateNotAvailable, ndis.StatusFailure}
			if !slices.Equal(got, want) {
				t.Errorf("dones %v, want %v", got, want)
			}
		})
	}
}

// TestActivationConcurrentCompletion: completions arriving on other
// goroutines while requests keep coming: every done exactly once, in
// request order (run with -race).
func TestActivationConcurrentCompletion(t *testing.T) {
	f := &fakeCM{mode: "pend", st: ndis.StatusSuccess}
	a := NewActivation(f, nil)
	f.a = a
	const n = 200
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() { // the miniport: completes whatever is pending
		for {
			select {
			case <-stop:
				return
			default:
				a.Completed(ndis.StatusSuccess)
			}
		}
	}()
	wg.Add(n)
	for i := range n {
		done := func(ndis.Status) {
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			wg.Done()
		}
		if i%2 == 0 {
			a.Activate(params(uint32(i)), done)
		} else {
			a.Deactivate(done)
		}
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(10 * time.Second): // a lost completion would hang the test
		close(stop)
		t.Fatalf("%d of %d requests never done", n-len(order), n)
	}
	close(stop)
	for i, k := range order {
		if i != k {
			t.Fatalf("done %d came %d-th: %v", k, i, order[:i+1])
		}
	}
	if len(order) != n {
		t.Fatalf("%d dones for %d requests", len(order), n)
	}
}

// immediateCM completes activations and deactivations at once.
type immediateCM struct {
	CM
	n int
}

func (c *immediateCM) ActivateVc(*ndis.Vc, *ndis.CallParameters) ndis.Status {
	c.n++
	return ndis.StatusSuccess
}

func (c *immediateCM) DeactivateVc(*ndis.Vc) ndis.Status {
	c.n++
	return ndis.StatusSuccess
}

type countDone struct{ steps []uint8 }

func (d *countDone) ActivationDone(step uint8, st ndis.Status) {
	if st == ndis.StatusSuccess {
		d.steps = append(d.steps[:0], step)
	}
}

// TestVcActivationImmediateAllocatesNothing: with a CM that completes at
// once (an MCM's NdisMCmActivateVc), an activation and a deactivation
// through a VcActivation under the owner's lock allocate nothing, reach the
// CM once each and report their steps; the VC holds no flight storage
// afterwards.
func TestVcActivationImmediateAllocatesNothing(t *testing.T) {
	var mu sync.Mutex
	var a VcActivation
	cm := &immediateCM{}
	done := &countDone{steps: make([]uint8, 0, 1)}
	p := params(1)
	allocs := testing.AllocsPerRun(100, func() {
		if !a.Activate(&mu, cm, nil, p, done, 7) {
			t.Fatal("params not given back after an immediate activation")
		}
		if done.steps[0] != 7 {
			t.Fatalf("activation step %v", done.steps)
		}
		mu.Lock()
		inForce := a.InForceLocked()
		mu.Unlock()
		if !inForce {
			t.Fatal("not in force after a successful activation")
		}
		a.Deactivate(&mu, cm, nil, done, 9)
		if done.steps[0] != 9 {
			t.Fatalf("deactivation step %v", done.steps)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per activation and deactivation, want 0", allocs)
	}
	if cm.n != 2*101 {
		t.Errorf("the CM was asked %d times, want %d", cm.n, 2*101)
	}
	if a.fl != nil || a.busy || a.StateLocked() != Inactive {
		t.Errorf("after the requests: flight %v busy %v state %v", a.fl, a.busy, a.StateLocked())
	}
}

// TestVcActivationQueuedParams: a pended request's params, and those of a
// request waiting behind it, stay in use (Activate says so); the pended one's
// completion starts it, and InForce stays true through a pended
// re-activation until it fails.
func TestVcActivationQueuedParams(t *testing.T) {
	var mu sync.Mutex
	var a VcActivation
	f := &fakeCM{mode: "pend", st: ndis.StatusSuccess}
	var got []string
	done := DoneFunc(func(st ndis.Status) { got = append(got, st.String()) })
	if a.Activate(&mu, f, nil, params(1), done, 0) {
		t.Fatal("a pended request says its params are free (R-ACT-13: resident until it completes)")
	}
	if a.Activate(&mu, f, nil, params(2), done, 0) {
		t.Fatal("a request waiting behind a pended one says its params are free")
	}
	if !a.Completed(&mu, f, nil, ndis.StatusSuccess) {
		t.Fatal("completion refused")
	}
	mu.Lock()
	inForce, st := a.InForceLocked(), a.StateLocked()
	mu.Unlock()
	if !inForce || st != Activating {
		t.Errorf("during the pended re-activation: in force %v, state %v; want true, activating", inForce, st)
	}
	if !a.Completed(&mu, f, nil, ndis.StatusResources) {
		t.Fatal("second completion refused")
	}
	if want := []string{"NDIS_STATUS_SUCCESS", "NDIS_STATUS_RESOURCES"}; !slices.Equal(got, want) {
		t.Errorf("outcomes %q, want %q", got, want)
	}
	if a.StateLocked() != ActiveVc || a.fl != nil {
		t.Errorf("after a failed re-activation: %v (flight %v), want active with its old parameters", a.StateLocked(), a.fl)
	}
	if a.Completed(&mu, f, nil, ndis.StatusSuccess) {
		t.Error("a completion with nothing pending was taken")
	}
	if want := []string{"ActivateVc(1)", "ActivateVc(2)"}; !slices.Equal(f.log, want) {
		t.Errorf("CM log %q, want %q", f.log, want)
	}
}
