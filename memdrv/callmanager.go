package memdrv

import (
	"fmt"
	"strings"
	"sync"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// CallManager adapts the in-memory miniport call manager (MCM) to what
// node's control plane needs of a call manager (node.CallManager,
// node.DeferredWork, node.SapDescriber), so the control plane runs in
// process without a network: tests and demos. It lives here, not in node,
// so that node does not import the test drivers. Every call goes to a service of the same
// fabric, named "service", "any/service" or "NAME/service" (NAME is the
// CallManager's Name).
//
// The fabric's Loop runs on the Control's worker (RunDeferred). One
// Control per fabric: a Loop run by two workers could run an item before
// the request that queued it has returned.
type CallManager struct {
	// Name is the node name the in-memory network answers to ("local"
	// unless set before use).
	Name string

	mcm *MCM
	fab *Fabric
	run sync.Mutex // one Loop.Run at a time
}

// NewCallManager wraps mcm, attached to fab.
func NewCallManager(mcm *MCM, fab *Fabric) *CallManager {
	return &CallManager{Name: "local", mcm: mcm, fab: fab}
}

// RunDeferred runs the fabric's Loop until it is empty.
func (d *CallManager) RunDeferred() {
	d.run.Lock()
	d.fab.Run()
	d.run.Unlock()
}

// Drain runs the fabric's Loop on the calling goroutine until it is empty.
// Tests use it for drivers of their own on the fabric, while the Control
// has no request in progress. Do not call it from a handler.
func (d *CallManager) Drain() { d.RunDeferred() }

// Close runs what is left of the Loop.
func (d *CallManager) Close() { d.RunDeferred() }

// MCM returns the wrapped call manager.
func (d *CallManager) MCM() *MCM { return d.mcm }

// Adapter returns the MCM's adapter.
func (d *CallManager) Adapter() *ndis.Adapter { return d.mcm.Adapter() }

// AddressFamily is AF (Q.2931, UNI 3.1).
func (d *CallManager) AddressFamily() ndis.AddressFamily { return AF }

// CallParams accepts "service", "any/service" and "NAME/service".
func (d *CallManager) CallParams(dest string, tx, rx ndis.Flowspec, reliable bool) (*ndis.CallParameters, error) {
	service := dest
	if n, s, ok := strings.Cut(dest, "/"); ok {
		if n != "any" && n != d.Name {
			return nil, fmt.Errorf("unknown node %q (the in-memory network is %q)", n, d.Name)
		}
		service = s
	}
	if err := q2931.CheckServiceName(service); err != nil || service == "" {
		if err == nil {
			err = fmt.Errorf("empty service name")
		}
		return nil, fmt.Errorf("destination %q: %v", dest, err)
	}
	// The fabric carries no data stream per VC: reliable asks for nothing more.
	return q2931.CallParams(d.Name, service, tx, rx, false), nil
}

// ServiceSap builds memdrv's SAP for service.
func (d *CallManager) ServiceSap(service string) (*ndis.CoSap, error) {
	if service == "" {
		return nil, fmt.Errorf("empty service name")
	}
	if err := q2931.CheckServiceName(service); err != nil {
		return nil, fmt.Errorf("service %q: %v", service, err)
	}
	return ServiceSap(service), nil
}

// Caller is the CallManager's Name: every call comes from this process.
func (d *CallManager) Caller(*ndis.CallParameters) string { return d.Name }

// Cause maps the status (q2931.CauseForStatus).
func (d *CallManager) Cause(_ *ndis.Vc, st ndis.Status) uni.Cause { return q2931.CauseForStatus(st) }

// SapService reads the service of a Q.2931 SAP (q2931.SapService).
func (d *CallManager) SapService(sap *ndis.CoSap) (string, bool) { return q2931.SapService(sap) }
