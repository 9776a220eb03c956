package node

import (
	"fmt"
	"strings"
	"sync"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// CallManager is what the control plane needs from the node's call
// manager: the adapter to bind to, the address family to open, and the
// AF-specific encodings of destinations and SAPs. It lets [Control] run
// over the in-memory MCM ([MemCallManager]) as over the real one.
//
// The methods are called from any goroutine, never with a lock of the
// control plane held, and must not block.
type CallManager interface {
	// Adapter is the adapter the control plane binds to as a client.
	Adapter() *ndis.Adapter
	// AddressFamily is the address family the control plane opens when
	// the call manager registers it (ProtocolCoAfRegisterNotify).
	AddressFamily() ndis.AddressFamily
	// CallParams builds NdisClMakeCall parameters calling dest (as the user
	// wrote it: "node/service") with the caller's transmit and receive
	// flowspecs. The error says, in one line, why dest cannot be called
	// (an unknown node, a malformed destination).
	CallParams(dest string, tx, rx ndis.Flowspec, reliable bool) (*ndis.CallParameters, error)
	// ServiceSap builds the CO_SAP that registers service, or says why
	// service is not a valid service name.
	ServiceSap(service string) (*ndis.CoSap, error)
	// Caller names the calling node of an offered call from the parameters
	// of ProtocolClIncomingCall, or "" if they do not say.
	Caller(offered *ndis.CallParameters) string
	// Cause returns the Q.2931 cause behind status st, with which vc's
	// call failed (ProtocolClMakeCallComplete) or was closed
	// (ProtocolClIncomingCloseCall). It is asked before the VC is deleted;
	// a call manager that remembers the cause it received says it, others
	// map the status (q2931.CauseForStatus).
	Cause(vc *ndis.Vc, st ndis.Status) uni.Cause
}

// Endpoints are the far end of a call: the peer node and the service
// called (the caller's side) or calling into (the callee's side).
type Endpoints struct{ Peer, Service string }

// CallDescriber is implemented by call managers that know the far end of
// the calls on their VCs, whoever the client: `condis calls` shows them for
// every VC of the node, not only the control plane's own.
type CallDescriber interface {
	// Endpoints maps VC handles (as ndis names them: "vc#7") to the far
	// end of their calls.
	Endpoints() map[string]Endpoints
}

// AddressReporter is implemented by call managers whose node has an
// address of its own (the Q.2931 call manager: its ATM End System
// Address); the answer to "calls" carries it.
type AddressReporter interface {
	// NodeAddress is the node's address as people read it.
	NodeAddress() string
}

// nodeAddress is cm's NodeAddress, or "" if it has none.
func nodeAddress(cm CallManager) string {
	if r, ok := cm.(AddressReporter); ok {
		return r.NodeAddress()
	}
	return ""
}

// DeferredWork is implemented by call managers whose deferred work runs
// only when asked: the in-memory MCM's Loop, which stands in for DPCs and
// work items (completions of pended requests, and work that must run after
// the request that queued it has returned). [Control] calls RunDeferred on
// its worker goroutine, after each request it makes and whenever it is
// woken, never from a handler and never while a request of its own is in
// progress. That is what memdrv's Loop assumes: its items run after the
// request that queued them has returned (a VC is deleted only once its
// close has finished).
type DeferredWork interface {
	RunDeferred()
}

// MemCallManager adapts the in-memory miniport call manager of package
// memdrv to [CallManager], so the control plane runs in process without a
// network: tests and demos. Every call goes to a service of the same
// fabric, named "service", "any/service" or "NAME/service" (NAME is the
// MemCallManager's Name).
//
// The fabric's Loop runs on the Control's worker ([DeferredWork]). One
// Control per fabric: a Loop run by two workers could run an item before
// the request that queued it has returned.
type MemCallManager struct {
	// Name is the node name the in-memory network answers to ("local"
	// unless set before use).
	Name string

	mcm *memdrv.MCM
	fab *memdrv.Fabric
	run sync.Mutex // one Loop.Run at a time
}

// NewMemCallManager wraps mcm, attached to fab.
func NewMemCallManager(mcm *memdrv.MCM, fab *memdrv.Fabric) *MemCallManager {
	return &MemCallManager{Name: "local", mcm: mcm, fab: fab}
}

// RunDeferred runs the fabric's Loop until it is empty.
func (d *MemCallManager) RunDeferred() {
	d.run.Lock()
	d.fab.Run()
	d.run.Unlock()
}

// Drain runs the fabric's Loop on the calling goroutine until it is empty.
// Tests use it for drivers of their own on the fabric, while the Control
// has no request in progress. Do not call it from a handler.
func (d *MemCallManager) Drain() { d.RunDeferred() }

// Close runs what is left of the Loop.
func (d *MemCallManager) Close() { d.RunDeferred() }

// MCM returns the wrapped call manager.
func (d *MemCallManager) MCM() *memdrv.MCM { return d.mcm }

// Adapter returns the MCM's adapter.
func (d *MemCallManager) Adapter() *ndis.Adapter { return d.mcm.Adapter() }

// AddressFamily is memdrv.AF (Q.2931, UNI 3.1).
func (d *MemCallManager) AddressFamily() ndis.AddressFamily { return memdrv.AF }

// CallParams accepts "service", "any/service" and "NAME/service".
func (d *MemCallManager) CallParams(dest string, tx, rx ndis.Flowspec, reliable bool) (*ndis.CallParameters, error) {
	service := dest
	if n, s, ok := strings.Cut(dest, "/"); ok {
		if n != "any" && n != d.Name {
			return nil, fmt.Errorf("unknown node %q (the in-memory network is %q)", n, d.Name)
		}
		service = s
	}
	if err := checkService(service); err != nil || service == "" {
		if err == nil {
			err = fmt.Errorf("empty service name")
		}
		return nil, fmt.Errorf("destination %q: %v", dest, err)
	}
	return memdrv.CallParams(service, tx, rx), nil
}

// ServiceSap builds memdrv's SAP for service.
func (d *MemCallManager) ServiceSap(service string) (*ndis.CoSap, error) {
	if service == "" {
		return nil, fmt.Errorf("empty service name")
	}
	if err := checkService(service); err != nil {
		return nil, fmt.Errorf("service %q: %v", service, err)
	}
	return memdrv.ServiceSap(service), nil
}

// Caller is the MemCallManager's Name: every call comes from this process.
func (d *MemCallManager) Caller(*ndis.CallParameters) string { return d.Name }

// Cause maps the status (q2931.CauseForStatus).
func (d *MemCallManager) Cause(_ *ndis.Vc, st ndis.Status) uni.Cause { return q2931.CauseForStatus(st) }
