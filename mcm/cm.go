package mcm

// The NDIS side: the ProtocolCm* / ProtocolCo* handlers the mediator calls
// on the MCM, each the call control's (callctl.Core), and what the call
// control needs of the MCM (callctl.Owner).

import (
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931/callctl"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

var _ ndis.MiniportCallManager = (*MCM)(nil)

// ProtocolCmNotifyCloseAfComplete models ProtocolCmNotifyCloseAfComplete;
// the client's close of the AF follows, nothing else is needed.
func (d *MCM) ProtocolCmNotifyCloseAfComplete(afCtx any, st ndis.Status) {}

// ProtocolCoDeleteVc models ProtocolCoDeleteVc.
func (d *MCM) ProtocolCoDeleteVc(vcCtx any) ndis.Status { return d.core.ProtocolCoDeleteVc(vcCtx) }

// ProtocolCmActivateVcComplete is never called for an MCM (R-REG-5).
func (d *MCM) ProtocolCmActivateVcComplete(ndis.Status, any, *ndis.CallParameters) {}

// ProtocolCmDeactivateVcComplete is never called for an MCM (R-REG-5).
func (d *MCM) ProtocolCmDeactivateVcComplete(ndis.Status, any) {}

// owner is the MCM as its call control's callctl.Owner: VCs with a QUIC
// data path, peers over transport links. A type of its own keeps these
// methods off MCM's API.
type owner MCM

var _ callctl.Owner = (*owner)(nil)

// NewVc returns the MCM's vc for r, its data path hook itself.
func (o *owner) NewVc(r callctl.Vc) *callctl.Vc { return &newVC(r).Vc }

// AssocLocked returns the association with node's peer.
func (o *owner) AssocLocked(node string) *callctl.Assoc { return (*MCM)(o).peerLocked(node).as }

// DialLocked dials a's peer unless a dial is running.
func (o *owner) DialLocked(a *callctl.Assoc) { (*MCM)(o).dialLocked(peerOf(a)) }

// DatagramLimit is the transport link to a's peer, nil while it is down.
func (o *owner) DatagramLimit(a *callctl.Assoc) callctl.DatagramLimit {
	if l := peerOf(a).tl; l != nil {
		return l
	}
	return nil
}

// PeerAddress is a's peer's address.
func (o *owner) PeerAddress(a *callctl.Assoc) *uni.AESA { return &peerOf(a).addr }

// RefusedLocked counts a refusal against Config.RefusalRate.
func (o *owner) RefusedLocked(a *callctl.Assoc) { (*MCM)(o).refusedLocked(peerOf(a)) }

// SentLocked counts and traces a message queued for a's peer.
func (o *owner) SentLocked(a *callctl.Assoc, b []byte) {
	p := peerOf(a)
	p.view.Out++
	(*MCM)(o).traceSignal(p, trace.Out, b)
}

// Go runs f on a goroutine Shutdown waits for.
func (o *owner) Go(f func()) bool { return (*MCM)(o).spawn(f) }
