package clientcore

import (
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// ModifyQoS asks for v's call to get flowspecs tx and rx
// (NdisClModifyCallQoS). done, if not nil, is called with the Core's lock
// held once the change completed: with the flowspecs granted, or with err a
// *CallError (refused: the call keeps its exact previous flowspecs), a
// *StateError, ErrQoSBusy, ErrFlowsUnknown or ErrCallGone. The handler's
// QoSChanged is called too on success. Safe to call from a handler.
func (v *VC) ModifyQoS(tx, rx ndis.Flowspec, done func(f *Flows, err error)) {
	if done == nil {
		done = func(*Flows, error) {}
	}
	c := v.c
	c.post(func() {
		c.mu.Lock()
		var err error
		switch {
		case v.phase != PhaseConnected || v.wantClose:
			err = &StateError{State: v.stateLocked().Words()}
		case v.qosBusyLocked():
			err = ErrQoSBusy
		case v.flows == nil:
			err = ErrFlowsUnknown
		}
		if err != nil {
			done(nil, err)
			c.mu.Unlock()
			return
		}
		v.moreLocked().qos = done
		c.mu.Unlock()
		// The call manager keeps the parameters until the change completes.
		params := &ndis.CallParameters{CallMgrParameters: &ndis.CallManagerParameters{Transmit: tx, Receive: rx}}
		if st := c.b.ClModifyCallQoS(v.h, params); st != ndis.StatusPending {
			c.modifyDone(v, st, params)
		}
	})
}

// modifyDone records an NdisClModifyCallQoS's outcome (any goroutine). On
// failure the call keeps its previous flowspecs exactly.
func (c *Core) modifyDone(v *VC, st ndis.Status, params *ndis.CallParameters) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v.more == nil || v.more.qos == nil {
		return
	}
	done := v.more.qos
	v.more.qos = nil
	if st != ndis.StatusSuccess {
		done(nil, &CallError{Status: st, Cause: q2931.CauseForStatus(st)})
		return
	}
	if f := c.flowsLocked(params); f != nil {
		v.flows = f
		if !v.Incoming() {
			v.maxSDU = int32(f.MaxSDU())
		}
	}
	var granted *Flows
	if v.flows != nil {
		f := *v.flows
		granted = &f
	}
	done(granted, nil)
	if v.flows != nil {
		v.handler.QoSChanged(v, *v.flows)
	}
}
