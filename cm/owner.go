package cm

// What the call control needs of the CM (callctl.Owner), its VCs' data
// path hooks (callctl.DataPath), and the CM operations it calls (ops:
// callctl.Cm with the miniport's media parameters at activation).

import (
	"fmt"
	"strings"

	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// owner is the CM as its call control's callctl.Owner. A type of its own
// keeps these methods off CM's API.
type owner CM

var _ callctl.Owner = (*owner)(nil)

// NewVc returns the CM's record of a VC: the call control's, its data
// path the miniport's.
func (o *owner) NewVc(r callctl.Vc) *callctl.Vc {
	v := &vc{Vc: r, c: (*CM)(o)}
	v.Data = v
	return &v.Vc
}

// AssocLocked returns the association with node.
func (o *owner) AssocLocked(node string) *callctl.Assoc { return (*CM)(o).peerLocked(node).as }

// DialLocked activates a's peer's signalling VC (creating it if need be):
// the miniport pends the activation while it dials.
func (o *owner) DialLocked(a *callctl.Assoc) {
	c := (*CM)(o)
	p := a.Owner.(*peer)
	if !c.spawn(func() { c.startSignalling(p) }) {
		c.core.FailWaitingLocked(a, ndis.StatusClosing)
	}
}

// DatagramLimit is the largest datagram payload of the miniport's links,
// learnt when the link to a's peer came up; nil while it is down.
func (o *owner) DatagramLimit(a *callctl.Assoc) callctl.DatagramLimit {
	if p := a.Owner.(*peer); p.up && p.limit > 0 {
		return datagramLimit(p.limit)
	}
	return nil
}

// PeerAddress is a's peer's address.
func (o *owner) PeerAddress(a *callctl.Assoc) *uni.AESA { return &a.Owner.(*peer).addr }

// RefusedLocked counts a refusal of one of a's peer's calls against
// Config.RefusalRate: over it, the peer's signalling is taken more slowly
// (receiveSignalling).
func (o *owner) RefusedLocked(a *callctl.Assoc) {
	if p := a.Owner.(*peer); p.refusals.Refused() {
		o.log.Warn("the peer's calls are refused faster than the refusal rate: taking its signalling more slowly", "peer", p.name, "per_second", o.cfg.RefusalRate)
	}
}

// SentLocked traces a message queued for a's peer.
func (o *owner) SentLocked(a *callctl.Assoc, b []byte) {
	(*CM)(o).traceSignal(a.Owner.(*peer), trace.Out, b)
}

// Go runs f on a goroutine Shutdown waits for.
func (o *owner) Go(f func()) bool { return (*CM)(o).spawn(f) }

type datagramLimit int

func (l datagramLimit) MaxDatagramPayload() int { return int(l) }

func fmtStatus(what string, st ndis.Status) error { return fmt.Errorf("cm: %s: %w", what, st) }

// vc is the CM's context for a call's VC. Its data goes through the
// miniport, which the activation parameters configure; so the call
// control's data-path hooks have nothing to do, except Stop.
type vc struct {
	callctl.Vc
	c *CM
}

// Open does nothing: the activation's media parameters set the VC up in
// the miniport.
func (v *vc) Open(ndis.Flowspec, int, bool, *callctl.Call, bool, bool) {}

// AllowSend does nothing: the client sends through the miniport.
func (v *vc) AllowSend() {}

// AllowReceive does nothing: the miniport indicates to the client.
func (v *vc) AllowReceive() {}

// SetDests re-activates a multipoint root's VC with its legs now (a leg
// went): see SetDestsThen.
func (v *vc) SetDests(calls []*callctl.Call) { v.SetDestsThen(calls, nil) }

var _ callctl.DestsLater = (*vc)(nil)

// SetDestsThen re-activates a multipoint root's VC with its legs now (a
// leg connected, or went) and runs then once the miniport completed the
// re-activation: the miniport sends each SDU to every leg in its media
// parameters (miniport.Root). Nothing is re-activated once the VC is no
// longer an active call's (its close deactivates it), or with no leg
// left (the call is ending); then runs at once.
func (v *vc) SetDestsThen(calls []*callctl.Call, then func()) {
	if then == nil {
		then = func() {}
	}
	c := v.c
	c.mu.Lock()
	if !v.Multipoint || v.Incoming || v.State() != callctl.Active || !v.Act.InForceLocked() || len(calls) == 0 {
		c.mu.Unlock()
		then()
		return
	}
	kind := miniport.Datagram
	if v.Reliable {
		kind = miniport.Reliable
	}
	mp := miniport.VCParams{Kind: kind, Role: miniport.Root, Transmit: miniport.TrafficOf(v.Tx())}
	for _, x := range calls {
		mp.Legs = append(mp.Legs, miniport.Leg{Peer: x.Assoc.Peer(), ConnID: x.Conn})
	}
	// Stays valid until the re-activation completes (R-ACT-13).
	params := &ndis.CallParameters{Flags: ndis.MultipointVC,
		CallMgrParameters: &ndis.CallManagerParameters{Transmit: v.Tx(), Receive: ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}},
		MediaParameters:   mp.Media()}
	h := v.Handle
	c.mu.Unlock()
	v.Act.Activate(&c.mu, c.ops, h, params, callctl.DoneFunc(func(st ndis.Status) {
		if st != ndis.StatusSuccess {
			c.log.Warn("a multipoint root's legs were not put in force", "vc", h.String(), "legs", len(mp.Legs), "status", st.String())
		}
		then()
	}), 0)
}

// SetFlow does nothing: a QoS change re-activates the VC with the new
// traffic (ops.ActivateVc).
func (v *vc) SetFlow(ndis.Flowspec) {}

// Halt does nothing: the miniport completes the VC's sends, and its
// deactivation waits for them.
func (v *vc) Halt(ndis.Status) {}

// Stop lets the close go on at once: draining the VC's sends is the
// miniport's deactivation (MiniportCoDeactivateVc pends until they are
// completed).
func (v *vc) Stop(idle func()) { v.c.core.Later(idle) }

// CloseStreams does nothing: the miniport ends a reliable VC's stream when
// it is deactivated.
func (v *vc) CloseStreams() {}

// Reset does nothing: the VC keeps no data state in the CM.
func (v *vc) Reset() {}

// ops are the CM operations the call control calls: callctl.Cm, with the
// activation's media parameters turned into the miniport's (VCParams).
type ops struct{ callctl.Cm }

// ActivateVc is NdisCmActivateVc with the miniport's VCParams in
// MediaSpecific, built from the call control's parameters: the adjacent
// peer (its called or calling party), the call's connection identifier and
// reliable flag (q2931.ParamMedia) and the flowspecs in force. The call
// control's parameters are left alone; the miniport gets a copy, which
// stays valid until the activation completes (R-ACT-13).
func (o ops) ActivateVc(h *ndis.Vc, p *ndis.CallParameters) ndis.Status {
	if p.MediaParameters != nil && p.MediaParameters.MediaSpecific.ParamType == miniport.ParamMedia {
		return o.Cm.ActivateVc(h, p) // the CM's own: a multipoint root's legs (vc.SetDests)
	}
	mp, err := mediaFor(p)
	if err != nil {
		return ndis.StatusInvalidData
	}
	q := *p
	q.MediaParameters = mp
	return o.Cm.ActivateVc(h, &q)
}

// mediaFor builds the miniport's media parameters of a call's VC from the
// call control's activation parameters.
func mediaFor(p *ndis.CallParameters) (*ndis.MediaParameters, error) {
	conn, flags, ok := q2931.Media(p)
	if !ok || p.CallMgrParameters == nil {
		return nil, fmt.Errorf("cm: activation parameters without the call's connection (q2931.ParamMedia)")
	}
	cm := p.CallMgrParameters
	party := string(cm.CallMgrSpecific.Parameters)
	if cm.CallMgrSpecific.ParamType == q2931.ParamCalledParty {
		party, _, _ = strings.Cut(party, "/")
	}
	kind := miniport.Datagram
	if flags&q2931.MediaReliable != 0 {
		kind = miniport.Reliable
	}
	vp := miniport.VCParams{Kind: kind, Peer: party, ConnID: conn,
		Transmit: miniport.TrafficOf(cm.Transmit), Receive: miniport.TrafficOf(cm.Receive)}
	switch {
	case p.Flags&ndis.MultipointVC == 0:
	case cm.CallMgrSpecific.ParamType == q2931.ParamCalledParty:
		// A root, activated when its first leg connects; further legs
		// re-activate it (vc.SetDests).
		vp.Role, vp.Legs = miniport.Root, []miniport.Leg{{Peer: party, ConnID: conn}}
		vp.Peer, vp.ConnID, vp.Receive = "", 0, miniport.Traffic{}
	default:
		vp.Role, vp.Transmit = miniport.Leaf, miniport.Traffic{}
	}
	return vp.Media(), nil
}
