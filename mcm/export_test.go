package mcm

import (
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
)

// IllegalMoves is how many VC transitions callctl.State does not draw d
// made: the tests' worlds fail on any.
func IllegalMoves(d *MCM) uint64 { return d.illegalMoves.Load() }

// WrapCM replaces d's CM (the NdisMCm* requests its call control makes)
// with wrap's: a test's CM that pends activations, as a stand-alone call
// manager's miniport may. Call it right after New.
func WrapCM(d *MCM, wrap func(callctl.CM) callctl.CM) { d.core.CM = wrap(d.core.CM) }

// CompleteActivation is the completion of the pended activation or
// deactivation of h (a wrapped CM's ProtocolCmActivateVcComplete /
// ProtocolCmDeactivateVcComplete); false if h is not d's or nothing of it
// was pended.
func CompleteActivation(d *MCM, h *ndis.Vc, st ndis.Status) bool {
	d.mu.Lock()
	var v *vc
	for x := vcOf(d.core.VCs.Head); x != nil; x = vcOf(x.Next()) {
		if x.Handle == h {
			v = x
			break
		}
	}
	d.mu.Unlock()
	return v != nil && d.core.ActivationCompleted(&v.Vc, st)
}
