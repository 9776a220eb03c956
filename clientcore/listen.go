package clientcore

import (
	"context"
	"sync/atomic"

	"github.com/condis-project/condis/ndis"
)

// sapPhase is the state of a SAP.
//
//	none --register--> registering --ok--> registered --deregister--> deregistering --ok--> dead
//	registering --fail--> dead            deregistering --refused--> registered
type sapPhase uint8

const (
	sapNone sapPhase = iota
	sapRegistering
	sapRegistered
	sapDeregistering
	sapDead
)

// ListenHandler is told what happens to one SAP. Its methods are called
// with the Core's lock held (see the package documentation).
type ListenHandler interface {
	// Registered: the SAP's registration completed; err is nil, a
	// *SapError (the call manager refused it), or why it could not be
	// registered (the service name, the address family). Called once.
	Registered(s *SAP, err error)
	// Offered: a call is offered on the SAP (ProtocolClIncomingCall). The
	// handler returned takes the call's VC; nil refuses the call. o is
	// the Core's, valid only during Offered: keep what it holds, not o.
	Offered(s *SAP, o *Offer) Handler
	// Ended: the SAP is gone (deregistered, or never registered) and so
	// are its calls, after Close (why is Close's reason), or because its
	// registration failed (why is ReasonNone). Called once, after
	// Registered.
	Ended(s *SAP, why Reason)
}

// Offer is a call offered on a SAP. The Core reuses it: it is valid only
// during ListenHandler.Offered.
type Offer struct {
	// VC is the call's VC; its Peer and Service are set.
	VC *VC
	// Peer is the calling node, "" if the call manager does not say.
	Peer string
	// Service is the SAP's service.
	Service string
	// Flows are the flowspecs offered, nil if not known.
	Flows *Flows
	// Params are the call parameters offered, the call manager's: valid
	// only during Offered, read-only.
	Params *ndis.CallParameters
}

// SAP is one service the Core registered (NdisClRegisterSap). Its fields
// are guarded by the Core's lock.
type SAP struct {
	c       *Core
	service string
	seq     uint64
	handler ListenHandler

	h       *ndis.Sap
	phase   sapPhase
	ending  bool
	reason  Reason
	regErr  error
	regDone bool
	ended   bool
	// calls counts the calls accepted on the SAP and not yet deleted:
	// the VCs whose sap it is (no set of its own, which cost a held call
	// about 20 octets).
	calls int
}

var sapSeq atomic.Uint64

// Service is the service the SAP registers. Safe anywhere.
func (s *SAP) Service() string { return s.service }

// Handle is the SAP's mediator handle, nil unless it is registered. Not in
// a handler.
func (s *SAP) Handle() *ndis.Sap {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.h
}

// HandleLocked is Handle for handlers, which hold the Core's lock.
func (s *SAP) HandleLocked() *ndis.Sap { return s.h }

// StartListen registers service (the call manager's ServiceSap) on the
// worker and returns the SAP at once; h learns the outcome (Registered)
// and is offered the calls. Safe to call from a handler.
func (c *Core) StartListen(service string, h ListenHandler) *SAP {
	s := &SAP{c: c, service: service, handler: h, seq: sapSeq.Add(1)}
	c.starting.Add(1)
	c.post(func() { c.startListen(s) })
	return s
}

// Listen registers service and waits until it is registered; the error is
// a *SapError, or why the SAP could not be registered. If ctx ends first,
// the SAP is closed and ctx's error returned. Not in a handler.
func (c *Core) Listen(ctx context.Context, service string, h ListenHandler) (*SAP, error) {
	s := c.StartListen(service, h)
	if err := c.await(ctx, func() bool { return s.regDone }); err != nil {
		s.Close(ReasonLocal)
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.regErr != nil {
		return nil, s.regErr
	}
	return s, nil
}

// startListen registers s (worker).
func (c *Core) startListen(s *SAP) {
	coSap, err := c.cm.ServiceSap(s.service)
	c.mu.Lock()
	c.starting.Add(-1)
	var af *ndis.Af
	if err == nil {
		af, err = c.usableAfLocked()
	}
	if err == nil && s.ending {
		err = context.Canceled // closed before it was registered
	}
	if err != nil {
		s.phase = sapDead
		c.registeredLocked(s, err)
		c.mu.Unlock()
		return
	}
	s.phase = sapRegistering
	c.saps[s] = struct{}{}
	c.mu.Unlock()
	h, st := c.b.ClRegisterSap(af, s, coSap)
	if st != ndis.StatusPending {
		c.registerSapDone(s, h, st)
	}
}

// registeredLocked tells s's handler how its registration went; a SAP that
// was not registered ends.
func (c *Core) registeredLocked(s *SAP, err error) {
	s.regErr, s.regDone = err, true
	s.handler.Registered(s, err)
	if err != nil {
		s.ending = true
		c.maybeEndSapLocked(s)
	}
	c.notifyLocked()
}

func (c *Core) registerSapDone(s *SAP, h *ndis.Sap, st ndis.Status) {
	c.mu.Lock()
	if s.phase != sapRegistering {
		c.mu.Unlock()
		return
	}
	var err error
	if st == ndis.StatusSuccess {
		s.h, s.phase = h, sapRegistered
	} else {
		s.phase = sapDead
		err = &SapError{Status: st}
	}
	ending := s.ending
	c.registeredLocked(s, err)
	c.mu.Unlock()
	if ending && st == ndis.StatusSuccess {
		c.post(func() { c.deregister(s) })
	}
}

// Close deregisters the SAP and closes its calls for why (ReasonLocal, or
// a reason of the user's own); the handler's Ended follows once all are
// gone. Safe to call from a handler.
func (s *SAP) Close(why Reason) { s.c.post(func() { s.c.endSap(s, why, true) }) }

// Deregister deregisters the SAP and takes no more calls on it, but leaves
// the calls it took up; the handler's Ended follows once they are gone
// too. Safe to call from a handler.
func (s *SAP) Deregister() { s.c.post(func() { s.c.endSap(s, ReasonLocal, false) }) }

// endSap ends s for why (worker): it is deregistered, and its calls are
// closed if closeCalls.
func (c *Core) endSap(s *SAP, why Reason, closeCalls bool) {
	c.mu.Lock()
	if s.ending {
		c.mu.Unlock()
		return
	}
	s.ending, s.reason = true, why
	var vcs []*VC
	for _, v := range c.vcs {
		if closeCalls && v.sap == s {
			c.wantCloseLocked(v, why)
			vcs = append(vcs, v)
		}
	}
	c.notifyLocked()
	c.mu.Unlock()
	for _, v := range vcs {
		c.progress(v)
	}
	c.deregister(s)
	c.mu.Lock()
	c.maybeEndSapLocked(s)
	c.mu.Unlock()
}

// deregister deregisters s once it is registered (worker).
func (c *Core) deregister(s *SAP) {
	c.mu.Lock()
	if s.phase != sapRegistered {
		c.mu.Unlock()
		return
	}
	s.phase = sapDeregistering
	h := s.h
	c.mu.Unlock()
	if st := c.b.ClDeregisterSap(h); st != ndis.StatusPending {
		c.deregisterSapDone(s, st)
	}
}

func (c *Core) deregisterSapDone(s *SAP, st ndis.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.phase != sapDeregistering {
		return
	}
	if st != ndis.StatusSuccess {
		c.log.Warn(c.name+": deregistering a SAP", "service", s.service, "status", st)
		s.phase = sapRegistered
		return
	}
	s.phase = sapDead
	c.maybeEndSapLocked(s)
}

// maybeEndSapLocked ends an ending SAP once it is deregistered and its
// calls are gone.
func (c *Core) maybeEndSapLocked(s *SAP) {
	if !s.ending || s.ended || s.calls > 0 || !s.regDone {
		return
	}
	if s.phase != sapDead && s.phase != sapNone {
		return
	}
	s.ended = true
	delete(c.saps, s)
	s.h = nil
	s.handler.Ended(s, s.reason)
	c.notifyLocked()
}
