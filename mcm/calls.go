package mcm

// Introspection of the calls: Calls, for `condis calls`.

import "github.com/condis-project/condis/q2931/callctl"

// CallInfo describes one VC's call, for `condis calls` (callctl.CallInfo).
type CallInfo = callctl.CallInfo

// PartyInfo describes one leaf of a multipoint call (callctl.PartyInfo).
type PartyInfo = callctl.PartyInfo

// Stats are a VC's data counters, as the MCM saw them (callctl.Stats).
type Stats = callctl.Stats

// Calls returns every VC that carries or carried a call, in creation order.
func (d *MCM) Calls() []CallInfo {
	out, vs := d.core.Calls()
	for i, v := range vs {
		out[i].Stats = vcOf(v).data.stats()
	}
	return out
}
