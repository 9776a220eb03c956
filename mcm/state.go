package mcm

import (
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
)

// vc is the MCM's context for a VC: the call control's record of it and
// the VC's data path. Data is the vc itself, so that the call records,
// which link callctl.Vcs, lead back to it (vcOf).
type vc struct {
	callctl.Vc
	data dataPath
}

// newVC returns a vc with call record r, its data path hook itself.
func newVC(r callctl.Vc) *vc {
	v := &vc{Vc: r}
	v.Data = v
	return v
}

// vcOf is the MCM's vc of a call record's VC (nil for nil).
func vcOf(x *callctl.Vc) *vc {
	if x == nil {
		return nil
	}
	return x.Data.(*vc)
}

// peerOf is the MCM's peer of a signalling association (nil for nil).
func peerOf(a *callctl.Assoc) *peer {
	if a == nil {
		return nil
	}
	return a.Owner.(*peer)
}

// Open is the call control opening v's data path (callctl.DataPath).
func (v *vc) Open(tx ndis.Flowspec, maxTx int, reliable bool, to *callctl.Call, send, recv bool) {
	v.data.open(tx, maxTx, reliable, to, send, recv)
}

// AllowSend lets the client send on v (callctl.DataPath).
func (v *vc) AllowSend() { v.data.allowSend() }

// AllowReceive lets v's received data reach the client (callctl.DataPath).
func (v *vc) AllowReceive() { v.data.allowReceive() }

// SetDests sets a multipoint root's legs as v's destinations
// (callctl.DataPath).
func (v *vc) SetDests(legs []*callctl.Call) { v.data.setDests(legs) }

// SetFlow replaces v's transmit flowspec (callctl.DataPath).
func (v *vc) SetFlow(tx ndis.Flowspec) { v.data.setFlow(tx) }

// Halt refuses further sends on v with st and completes the queued ones
// (callctl.DataPath).
func (v *vc) Halt(st ndis.Status) { peerOf(v.Assoc).d.haltTx(v, st) }

// Stop ends v's data path and runs idle once it is drained
// (callctl.DataPath).
func (v *vc) Stop(idle func()) { peerOf(v.Assoc).d.stopData(v, idle) }

// CloseStreams ends this side's reliable streams of v's call
// (callctl.DataPath).
func (v *vc) CloseStreams() { v.closeStreams() }

// Reset makes v's data path reusable for a new call (callctl.DataPath).
func (v *vc) Reset() { v.resetData() }

// eachIn calls f for the MCM's vcs of an incoming call, in creation order
// (call.EachIn).
func eachIn(c *callctl.Call, f func(v *vc)) {
	c.EachIn(func(x *callctl.Vc) { f(vcOf(x)) })
}
