package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/condis-project/condis/ipvc"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/uni"
)

// Q2931 is the node's Q.2931 call manager, of either topology: *mcm.MCM
// (integrated) or [Split] (a stand-alone cm.CM over its miniport). It is
// what the node, the control plane, `condis peers` and `condis calls`, and
// the metrics read from it.
type Q2931 interface {
	// Adapter is the adapter its clients bind to.
	Adapter() *ndis.Adapter
	// Address is the node's ATM End System Address.
	Address() uni.AESA
	// Cause is the Q.2931 cause that ended or refused the last call on
	// vc, as received or produced.
	Cause(vc *ndis.Vc) (uni.Cause, bool)
	// Calls describes every VC that carries or carried a call.
	Calls() []callctl.CallInfo
	// Peers describes every peer it knows of, in name order.
	Peers() []callctl.PeerInfo
	// Totals are the data counters of every VC ever.
	Totals() callctl.Stats
	// Connect brings up the link to peer now, without waiting.
	Connect(peer string)
	// Shutdown releases every call, withdraws the AF and unbinds.
	Shutdown(ctx context.Context) error
}

// Q2931CallManager adapts the node's Q.2931 call manager (either
// topology: [Q2931]) to the control plane: destinations are
// "node/service", services travel in the BHLI user-specific field.
type Q2931CallManager struct {
	CM Q2931
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

// Adapter is the call manager's adapter.
func (a Q2931CallManager) Adapter() *ndis.Adapter { return a.CM.Adapter() }

// AddressFamily is Q.2931, UNI 3.1.
func (a Q2931CallManager) AddressFamily() ndis.AddressFamily {
	return ndis.AddressFamily{AddressFamily: ndis.AFQ2931, MajorVersion: 3, MinorVersion: 1}
}

// CallParams parses "node/service" and builds the Q.2931 call parameters.
func (a Q2931CallManager) CallParams(dest string, tx, rx ndis.Flowspec, reliable bool) (*ndis.CallParameters, error) {
	node, service, ok := strings.Cut(dest, "/")
	if !ok || node == "" || service == "" {
		return nil, fmt.Errorf("%q: want NODE/SERVICE", dest)
	}
	if a.Known != nil && !a.Known(node) {
		return nil, &UnknownNodeError{Node: node}
	}
	if err := checkService(service); err != nil {
		return nil, fmt.Errorf("service %q: %w", service, err)
	}
	return q2931.CallParams(node, service, tx, rx, reliable), nil
}

// RecycleCallParams takes back parameters CallParams built, once the
// client is done with them (clientcore.ParamsRecycler).
func (a Q2931CallManager) RecycleCallParams(p *ndis.CallParameters) { q2931.RecycleCallParams(p) }

// UnknownNodeError is a call to a node this node's trust does not admit
// (not a [[peer]] with trust = "peers"): no SETUP is sent. It is what a
// network answers for a destination it has no route to: cause 3, no route
// to destination, NDIS_STATUS_NO_ROUTE_TO_DESTINATION.
type UnknownNodeError struct{ Node string }

func (e *UnknownNodeError) Error() string {
	return fmt.Sprintf(`unknown node %q (not a [[peer]] of this node: add one, or set trust = "cluster")`, e.Node)
}

// Status is NDIS_STATUS_NO_ROUTE_TO_DESTINATION.
func (e *UnknownNodeError) Status() ndis.Status { return ndis.StatusNoRouteToDestination }

// Cause is cause 3, no route to destination.
func (e *UnknownNodeError) Cause() uni.Cause { return uni.CauseNoRouteToDestination }

// ServiceSap builds the SAP of a service.
func (a Q2931CallManager) ServiceSap(service string) (*ndis.CoSap, error) {
	if err := checkService(service); err != nil {
		return nil, fmt.Errorf("service %q: %w", service, err)
	}
	return q2931.ServiceSap(service), nil
}

// NodeAddress is the node's ATM End System Address: 26 hex digits of
// prefix, a dot, 12 of ESI, a dot, 2 of selector (uni.AESA.String).
func (a Q2931CallManager) NodeAddress() string { return a.CM.Address().String() }

// Endpoints are the peer and service of every call of the call manager,
// by VC.
func (a Q2931CallManager) Endpoints() map[string]Endpoints {
	calls := a.CM.Calls()
	out := make(map[string]Endpoints, len(calls))
	for _, c := range calls {
		out[c.Vc] = Endpoints{Peer: c.Peer, Service: c.Service}
	}
	return out
}

// Caller is the calling node named in an offered call's parameters.
func (a Q2931CallManager) Caller(offered *ndis.CallParameters) string {
	n, _ := q2931.CallingNode(offered)
	return n
}

// Cause is the Q.2931 cause that ended vc's call as the call manager
// received or produced it (Q2931.Cause), when it is the one behind st
// (q2931.CauseExplains: a restart's 41 is behind DEST_OUT_OF_ORDER);
// otherwise st's canonical cause (q2931.CauseForStatus). Several causes
// share a status (NDIS_STATUS_FAILURE: 21, 102, 17, ...), so only the call
// manager can say which.
func (a Q2931CallManager) Cause(vc *ndis.Vc, st ndis.Status) uni.Cause {
	if c, ok := a.CM.Cause(vc); ok && q2931.CauseExplains(c, st) {
		return c
	}
	return q2931.CauseForStatus(st)
}

// CheckFlowspec is q2931.CheckFlowspec: whether Q.2931 can signal f.
func (a Q2931CallManager) CheckFlowspec(f ndis.Flowspec) error { return q2931.CheckFlowspec(f) }
