package callctl

import (
	"strconv"
	"sync"

	"github.com/condis-project/condis/ndis"
)

// ActivationState is where a VC's activation stands. The zero value is not
// a state.
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

// Activation carries out the activations and deactivations of one VC
// through a CM, whether the CM completes them at once (NdisMCmActivateVc)
// or returns NDIS_STATUS_PENDING and completes them later
// (NdisCmActivateVc, which a miniport may pend: the CM's
// ProtocolCmActivateVcComplete / ProtocolCmDeactivateVcComplete handler
// calls Completed). Each request's done is called exactly once, after the
// outcome is known, holding no lock; requests run one at a time in the
// order they were made. The zero value is not ready: use NewActivation.
type Activation struct {
	cm CM
	vc *ndis.Vc

	mu    sync.Mutex
	state ActivationState
	cur   *activationReq   // in flight
	queue []*activationReq // waiting for cur
}

type activationReq struct {
	deactivate bool
	params     *ndis.CallParameters
	done       func(ndis.Status)
	prev       ActivationState // the state to go back to on failure
	started    bool            // the CM has been asked
	returned   bool            // the CM's call returned PENDING
	completed  bool            // Completed came before the CM's call returned
	st         ndis.Status     // Completed's status, while !returned
}

// NewActivation returns the Activation of vc through cm; vc is inactive.
func NewActivation(cm CM, vc *ndis.Vc) *Activation {
	return &Activation{cm: cm, vc: vc, state: Inactive}
}

// State returns the VC's activation state.
func (a *Activation) State() ActivationState {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state
}

// Activate activates the VC with params (a re-activation if it is active)
// and calls done with the outcome. params must stay valid until done.
func (a *Activation) Activate(params *ndis.CallParameters, done func(ndis.Status)) {
	a.request(&activationReq{params: params, done: done})
}

// Deactivate deactivates the VC and calls done with the outcome; a VC that
// is inactive (and has nothing in flight) is done at once with
// NDIS_STATUS_SUCCESS, without asking the CM.
func (a *Activation) Deactivate(done func(ndis.Status)) {
	a.request(&activationReq{deactivate: true, done: done})
}

func (a *Activation) request(r *activationReq) {
	a.mu.Lock()
	if a.cur != nil {
		a.queue = append(a.queue, r)
		a.mu.Unlock()
		return
	}
	a.cur = r
	a.startLocked(r)
}

// startLocked starts r, which is a.cur, with a.mu held; it returns with
// a.mu released, having run r's done (and what queued behind it) if the
// CM completed at once.
func (a *Activation) startLocked(r *activationReq) {
	for r != nil {
		if r.deactivate && a.state == Inactive {
			next := a.popLocked()
			a.cur = next // what arrives meanwhile queues behind it
			a.mu.Unlock()
			r.done(ndis.StatusSuccess)
			a.mu.Lock()
			r = next
			continue
		}
		r.prev, r.started = a.state, true
		if r.deactivate {
			a.state = Deactivating
		} else {
			a.state = Activating
		}
		a.mu.Unlock()
		var st ndis.Status
		if r.deactivate {
			st = a.cm.DeactivateVc(a.vc)
		} else {
			st = a.cm.ActivateVc(a.vc, r.params)
		}
		a.mu.Lock()
		if st == ndis.StatusPending {
			r.returned = true
			if !r.completed {
				a.mu.Unlock()
				return // Completed finishes it
			}
			st = r.st // completed before the call returned (spec §3.0)
		}
		r = a.finishLocked(st)
	}
	a.mu.Unlock()
}

// Completed is the completion of a pended activation or deactivation
// (ProtocolCmActivateVcComplete, ProtocolCmDeactivateVcComplete). It
// reports false if no request of the VC is waiting for one.
func (a *Activation) Completed(st ndis.Status) bool {
	a.mu.Lock()
	r := a.cur
	if r == nil || !r.started || r.completed {
		a.mu.Unlock()
		return false
	}
	if !r.returned {
		// The CM's call has not returned PENDING yet: it finishes the
		// request when it does.
		r.completed, r.st = true, st
		a.mu.Unlock()
		return true
	}
	r.completed = true
	a.startLocked(a.finishLocked(st))
	return true
}

// finishLocked ends the request in flight with st: the state it leads to,
// then its done (without a.mu); it returns, with a.mu held, the next
// request to start, which is a.cur already (requests made while done runs
// queue behind it).
func (a *Activation) finishLocked(st ndis.Status) *activationReq {
	r := a.cur
	switch {
	case st != ndis.StatusSuccess:
		a.state = r.prev
	case r.deactivate:
		a.state = Inactive
	default:
		a.state = ActiveVc
	}
	next := a.popLocked()
	a.cur = next
	a.mu.Unlock()
	r.done(st)
	a.mu.Lock()
	return next
}

func (a *Activation) popLocked() *activationReq {
	if len(a.queue) == 0 {
		return nil
	}
	r := a.queue[0]
	a.queue[0] = nil
	a.queue = a.queue[1:]
	return r
}
