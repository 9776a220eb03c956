package node

import (
	"fmt"
	"strings"

	"github.com/condis-project/condis/ipvc"
	"github.com/condis-project/condis/mcm"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// MCMCallManager adapts the Q.2931 miniport call manager (package mcm) to
// the control plane: destinations are "node/service", services travel in
// the BHLI user-specific field.
type MCMCallManager struct {
	MCM *mcm.MCM
	// IP is the node's IP over condis interface, nil without one: status
	// reports it.
	IP *ipvc.Interface
	// Known reports whether a node name can be called: the nodes the
	// node's trust admits ([Config.Trusts]; [Node.CallManager] sets it).
	// Nil accepts any name and lets signalling find out.
	Known func(node string) bool
	// Config, if set, is the node's configuration: its [[peer]]s are
	// listed by Peers even before the node has reached them.
	Config *Config

	// Feed is the node's trace feed, for trace requests ([Node.CallManager]
	// sets it); nil: the Control refuses them.
	Feed *TraceFeed
}

// Adapter is the MCM's adapter.
func (a MCMCallManager) Adapter() *ndis.Adapter { return a.MCM.Adapter() }

// AddressFamily is Q.2931, UNI 3.1.
func (a MCMCallManager) AddressFamily() ndis.AddressFamily {
	return ndis.AddressFamily{AddressFamily: ndis.AFQ2931, MajorVersion: 3, MinorVersion: 1}
}

// CallParams parses "node/service" and builds the MCM's call parameters.
func (a MCMCallManager) CallParams(dest string, tx, rx ndis.Flowspec, reliable bool) (*ndis.CallParameters, error) {
	node, service, ok := strings.Cut(dest, "/")
	if !ok || node == "" || service == "" {
		return nil, fmt.Errorf("%q: want NODE/SERVICE", dest)
	}
	if a.Known != nil && !a.Known(node) {
		return nil, fmt.Errorf(`unknown node %q (not a [[peer]] of this node: add one, or set trust = "cluster")`, node)
	}
	if err := checkService(service); err != nil {
		return nil, fmt.Errorf("service %q: %w", service, err)
	}
	return q2931.CallParams(node, service, tx, rx, reliable), nil
}

// ServiceSap builds the SAP of a service.
func (a MCMCallManager) ServiceSap(service string) (*ndis.CoSap, error) {
	if err := checkService(service); err != nil {
		return nil, fmt.Errorf("service %q: %w", service, err)
	}
	return q2931.ServiceSap(service), nil
}

// NodeAddress is the node's ATM End System Address: 26 hex digits of
// prefix, a dot, 12 of ESI, a dot, 2 of selector (uni.AESA.String).
func (a MCMCallManager) NodeAddress() string { return a.MCM.Address().String() }

// Endpoints are the peer and service of every call of the MCM, by VC.
func (a MCMCallManager) Endpoints() map[string]Endpoints {
	calls := a.MCM.Calls()
	out := make(map[string]Endpoints, len(calls))
	for _, c := range calls {
		out[c.Vc] = Endpoints{Peer: c.Peer, Service: c.Service}
	}
	return out
}

// Caller is the calling node named in an offered call's parameters.
func (a MCMCallManager) Caller(offered *ndis.CallParameters) string {
	n, _ := q2931.CallingNode(offered)
	return n
}

// Cause is the Q.2931 cause that ended vc's call as the MCM received or
// produced it (mcm.MCM.Cause), when it is the one behind st; otherwise st's
// canonical cause (q2931.CauseForStatus). Several causes share a status
// (NDIS_STATUS_FAILURE: 21, 102, 17, ...), so only the MCM can say which.
func (a MCMCallManager) Cause(vc *ndis.Vc, st ndis.Status) uni.Cause {
	if c, ok := a.MCM.Cause(vc); ok && q2931.StatusForCause(c) == st {
		return c
	}
	return q2931.CauseForStatus(st)
}

// CheckFlowspec is q2931.CheckFlowspec: whether the MCM can signal f.
func (a MCMCallManager) CheckFlowspec(f ndis.Flowspec) error { return q2931.CheckFlowspec(f) }
