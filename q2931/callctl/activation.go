package callctl

import (
	"strconv"
	"sync"

	"github.com/condis-project/condis/ndis"
)

// ActivationState is where a VC's activation stands. The zero value is not
// a state (a VcActivation's zero value is Inactive).
//
//	Inactive ──Activate──▶ Activating ──completed SUCCESS──▶ Active
//	Activating ──completed with a failure──▶ the state before (Inactive, or Active with its old parameters)
//	Active ──Activate (new parameters: a QoS change)──▶ Activating
//	Active ──Deactivate──▶ Deactivating ──completed──▶ Inactive (Active again if it failed)
//
// One activation or deactivation at a time (R-ACT-10): a request made while
// another is in flight waits for it.
type ActivationState uint8

// Activation states.
const (
	Inactive ActivationState = iota + 1
	Activating
	ActiveVc
	Deactivating
)

// String names the activation state.
func (s ActivationState) String() string {
	switch s {
	case Inactive:
		return "inactive"
	case Activating:
		return "activating"
	case ActiveVc:
		return "active"
	case Deactivating:
		return "deactivating"
	}
	return "activation state " + strconv.Itoa(int(s))
}

// Done is told the outcome of an activation or deactivation request: step
// is the tag the request was made with (the call manager's way to say
// which flow continues, without a closure per request), st the status
// the CM returned or completed with.
type Done interface {
	ActivationDone(step uint8, st ndis.Status)
}

// DoneFunc is a Done that ignores the step.
type DoneFunc func(st ndis.Status)

// ActivationDone calls f.
func (f DoneFunc) ActivationDone(_ uint8, st ndis.Status) { f(st) }

// VcActivation carries out the activations and deactivations of one VC
// through a CM, whether the CM completes them at once (NdisMCmActivateVc)
// or returns NDIS_STATUS_PENDING and completes them later
// (NdisCmActivateVc, which a miniport may pend: the call manager's
// ProtocolCmActivateVcComplete / ProtocolCmDeactivateVcComplete handler
// calls Completed). It is meant to live inside a call manager's VC
// context, guarded by the call manager's lock: every method takes that
// lock as mu, which the caller must not hold (methods named ...Locked
// excepted), and releases it around the CM's calls and the Done. Each
// request's Done is called exactly once, after the outcome is known,
// holding no lock; requests run one at a time in the order they were
// made.
//
// The zero value is an inactive VC. While no request is pended or waiting
// it holds no storage beyond its own 16 bytes and allocates nothing: a CM
// that completes at once costs nothing per request.
type VcActivation struct {
	state ActivationState // 0 reads as Inactive
	prev  ActivationState // the state before the request in flight: where a failure goes back to
	busy  bool            // a request is in flight (its CM call running, or pended)
	asked bool            // the CM's call for it is running
	fl    *flight         // a pended request, an early completion, waiting requests; nil when none
}

// flight is what only a VC with a pended or waiting request needs.
type flight struct {
	cur     actReq // the request whose CM call returned PENDING (pended)
	pended  bool
	early   bool        // Completed came before the CM's call returned (spec §3.0)
	earlySt ndis.Status // its status
	queue   []actReq    // requests made while one was in flight
}

type actReq struct {
	deactivate bool
	step       uint8
	params     *ndis.CallParameters
	done       Done
}

// StateLocked returns the VC's activation state; mu is held.
func (a *VcActivation) StateLocked() ActivationState {
	if a.state == 0 {
		return Inactive
	}
	return a.state
}

// InForceLocked reports, with mu held, whether the VC is activated: an
// activation succeeded and no deactivation has since (a re-activation or
// deactivation in flight leaves the previous one in force until it
// completes).
func (a *VcActivation) InForceLocked() bool {
	switch a.state {
	case ActiveVc:
		return true
	case Activating, Deactivating:
		return a.prev == ActiveVc
	}
	return false
}

// Activate activates vc with params through cm (a re-activation if it is
// active) and tells done the outcome with step. It reports whether params
// are the caller's again when it returns: true if the request completed
// within the call (done has been told). Otherwise — it waits behind
// another, or the CM pended it — params stay resident until done is told
// (R-ACT-13).
func (a *VcActivation) Activate(mu sync.Locker, cm CM, vc *ndis.Vc, params *ndis.CallParameters, done Done, step uint8) bool {
	return a.request(mu, cm, vc, actReq{params: params, done: done, step: step})
}

// Deactivate deactivates vc through cm and tells done the outcome with
// step; a VC that is inactive when its turn comes is done with
// NDIS_STATUS_SUCCESS without asking the CM.
func (a *VcActivation) Deactivate(mu sync.Locker, cm CM, vc *ndis.Vc, done Done, step uint8) {
	a.request(mu, cm, vc, actReq{deactivate: true, done: done, step: step})
}

func (a *VcActivation) request(mu sync.Locker, cm CM, vc *ndis.Vc, r actReq) bool {
	mu.Lock()
	if a.busy {
		fl := a.flightLocked()
		fl.queue = append(fl.queue, r)
		mu.Unlock()
		return false
	}
	a.busy = true
	return a.driveLocked(mu, cm, vc, r, 0, false)
}

// Completed is the completion of vc's pended activation or deactivation
// (ProtocolCmActivateVcComplete, ProtocolCmDeactivateVcComplete); the
// next waiting request, if any, starts through cm. It reports false if no
// request of the VC is waiting for a completion.
func (a *VcActivation) Completed(mu sync.Locker, cm CM, vc *ndis.Vc, st ndis.Status) bool {
	mu.Lock()
	if !a.busy {
		mu.Unlock()
		return false
	}
	if !a.asked && (a.fl == nil || !a.fl.pended) {
		mu.Unlock()
		return false // no CM call made for the request in flight yet
	}
	fl := a.flightLocked()
	if !fl.pended {
		// The CM's call has not returned PENDING yet: it finishes the
		// request when it does.
		if fl.early {
			mu.Unlock()
			return false
		}
		fl.early, fl.earlySt = true, st
		mu.Unlock()
		return true
	}
	r := fl.cur
	fl.cur, fl.pended = actReq{}, false
	a.settleLocked(r, st)
	a.driveLocked(mu, cm, vc, r, st, true)
	return true
}

func (a *VcActivation) flightLocked() *flight {
	if a.fl == nil {
		a.fl = new(flight)
	}
	return a.fl
}

// driveLocked runs r (finished already with st if finished) and the
// requests waiting behind it, with mu held and a.busy set; it returns with
// mu released, when the queue is empty or a request is pended, and reports
// whether r itself finished.
func (a *VcActivation) driveLocked(mu sync.Locker, cm CM, vc *ndis.Vc, r actReq, st ndis.Status, finished bool) bool {
	first := true
	for {
		if !finished {
			var ok bool
			if st, ok = a.startLocked(mu, cm, vc, r); !ok {
				mu.Unlock()
				return !first // pended: Completed goes on
			}
		}
		finished, first = false, false
		next, more := a.popLocked()
		if !more {
			// Requests made from r's done start at once.
			a.busy = false
			if fl := a.fl; fl != nil && !fl.early && !fl.pended {
				a.fl = nil
			}
		}
		mu.Unlock()
		r.done.ActivationDone(r.step, st)
		if !more {
			return true
		}
		mu.Lock()
		r = next
	}
}

// startLocked asks the CM for r, releasing mu meanwhile; ok is false if
// the request is pended (kept in a.fl for Completed).
func (a *VcActivation) startLocked(mu sync.Locker, cm CM, vc *ndis.Vc, r actReq) (st ndis.Status, ok bool) {
	if r.deactivate && a.StateLocked() == Inactive {
		return ndis.StatusSuccess, true
	}
	a.prev = a.StateLocked()
	if r.deactivate {
		a.state = Deactivating
	} else {
		a.state = Activating
	}
	a.asked = true
	mu.Unlock()
	if r.deactivate {
		st = cm.DeactivateVc(vc)
	} else {
		st = cm.ActivateVc(vc, r.params)
	}
	mu.Lock()
	a.asked = false
	if st == ndis.StatusPending {
		fl := a.flightLocked()
		if !fl.early {
			fl.cur, fl.pended = r, true
			return 0, false
		}
		st, fl.early = fl.earlySt, false // completed before the call returned (spec §3.0)
	}
	a.settleLocked(r, st)
	return st, true
}

// settleLocked moves to where r's outcome st leads.
func (a *VcActivation) settleLocked(r actReq, st ndis.Status) {
	switch {
	case st != ndis.StatusSuccess:
		a.state = a.prev
	case r.deactivate:
		a.state = Inactive
	default:
		a.state = ActiveVc
	}
}

func (a *VcActivation) popLocked() (actReq, bool) {
	fl := a.fl
	if fl == nil || len(fl.queue) == 0 {
		return actReq{}, false
	}
	r := fl.queue[0]
	fl.queue[0] = actReq{}
	fl.queue = fl.queue[1:]
	return r, true
}

// Activation is a VcActivation with a lock, a CM and a VC of its own, for
// a user that has no lock to guard it with. The zero value is not ready:
// use NewActivation.
type Activation struct {
	cm CM
	vc *ndis.Vc
	mu sync.Mutex
	a  VcActivation
}

// NewActivation returns the Activation of vc through cm; vc is inactive.
func NewActivation(cm CM, vc *ndis.Vc) *Activation {
	return &Activation{cm: cm, vc: vc}
}

// State returns the VC's activation state.
func (a *Activation) State() ActivationState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.a.StateLocked()
}

// Activate activates the VC with params (a re-activation if it is active)
// and calls done with the outcome. params must stay valid until done.
func (a *Activation) Activate(params *ndis.CallParameters, done func(ndis.Status)) {
	a.a.Activate(&a.mu, a.cm, a.vc, params, DoneFunc(done), 0)
}

// Deactivate deactivates the VC and calls done with the outcome; a VC that
// is inactive (and has nothing in flight) is done at once with
// NDIS_STATUS_SUCCESS, without asking the CM.
func (a *Activation) Deactivate(done func(ndis.Status)) {
	a.a.Deactivate(&a.mu, a.cm, a.vc, DoneFunc(done), 0)
}

// Completed is the completion of a pended activation or deactivation
// (ProtocolCmActivateVcComplete, ProtocolCmDeactivateVcComplete). It
// reports false if no request of the VC is waiting for one.
func (a *Activation) Completed(st ndis.Status) bool {
	return a.a.Completed(&a.mu, a.cm, a.vc, st)
}
