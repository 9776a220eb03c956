package node

import (
	"slices"
	"strconv"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// SapDescriber is implemented by call managers that can read the service
// a CO_SAP of theirs registers: the status answer names the service of
// every SAP of the node, not only of the control plane's own.
type SapDescriber interface {
	// SapService returns the service sap registers; ok is false if sap is
	// not in the call manager's format.
	SapService(sap *ndis.CoSap) (service string, ok bool)
}

// SapService reads the service of a Q.2931 SAP (q2931.SapService).
func (a Q2931CallManager) SapService(sap *ndis.CoSap) (string, bool) { return q2931.SapService(sap) }

// TopologyReporter is implemented by call managers that say how they sit
// on the network ([Topology]): the status answer carries it.
type TopologyReporter interface {
	Topology() Topology
}

// Topology is the call manager's topology: split for [Split], integrated
// otherwise.
func (a Q2931CallManager) Topology() Topology {
	switch a.CM.(type) {
	case Split, *Split:
		return TopologySplit
	}
	return TopologyIntegrated
}

// topologyOf is cm's topology, "" if it does not say.
func topologyOf(cm CallManager) Topology {
	if r, ok := cm.(TopologyReporter); ok {
		return r.Topology()
	}
	return ""
}

// saps lists the mediator's SAPs with their services: as the call manager
// reads them, or for the control plane's own, as their listen sessions
// asked.
func (c *Control) saps(saps []ndis.SapInfo) []SapStatus {
	c.mu.Lock()
	ours := make(map[string]string)
	for s := range c.sessions {
		if s.sap != nil {
			ours[s.sap.String()] = s.service
		}
	}
	c.mu.Unlock()
	d, _ := c.cm.(SapDescriber)
	out := make([]SapStatus, 0, len(saps))
	for _, si := range saps {
		ss := SapStatus{Sap: si.Handle, Client: si.Client, State: si.State}
		if d != nil {
			ss.Service, _ = d.SapService(&si.Sap)
		}
		if svc, ok := ours[si.Handle]; ok && ss.Service == "" {
			ss.Service = svc
		}
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b SapStatus) int { return handleNumber(a.Sap) - handleNumber(b.Sap) })
	return out
}

// handleNumber orders "sap#7" before "sap#12" (and "vc#7" before "vc#12").
func handleNumber(name string) int {
	for i := len(name); i > 0; i-- {
		if name[i-1] == '#' {
			n, _ := strconv.Atoi(name[i:])
			return n
		}
	}
	return 0
}
