package memdrv

import (
	"encoding/binary"
	"sync"

	"github.com/condis-project/condis/ndis"
)

// OidLinkSpeed is a vendor-specific OID the in-memory miniports answer with
// a 4-byte link speed in bytes per second.
const OidLinkSpeed ndis.Oid = 0xFF010001

// LinkSpeed is what OidLinkSpeed reports.
const LinkSpeed uint32 = 1_250_000_000

// miniportOid answers OidLinkSpeed queries in the given mode.
func miniportOid(l *Loop, mode Mode, req *ndis.OidRequest, complete func(ndis.Status)) ndis.Status {
	if req.Oid != OidLinkSpeed || req.Type != ndis.OidQuery {
		return ndis.StatusInvalidOid
	}
	return respond(l, mode, func(done func(ndis.Status)) {
		if len(req.InformationBuffer) < 4 {
			req.BytesNeeded = 4
			done(ndis.StatusBufferTooShort)
			return
		}
		binary.BigEndian.PutUint32(req.InformationBuffer, LinkSpeed)
		req.BytesWritten = 4
		done(ndis.StatusSuccess)
	}, complete)
}

// Miniport is an in-memory CoNDIS miniport without call management: it
// creates per-VC state, activates VCs on the connection identifier the call
// manager put in the media parameters, and switches cells through the
// Fabric (the split topology).
type Miniport struct {
	fab     *Fabric
	adapter *ndis.Adapter

	mu       sync.Mutex
	mode     atomicMode
	vcs      map[*mpVc]struct{}
	rxOut    int
	rejectAt uint32 // activation of a VC with this token rate fails (R-ACT-3 tests)
}

type mpVc struct {
	mp     *Miniport
	h      *ndis.Vc
	vci    uint32
	active bool
}

// NewMiniport attaches a new in-memory CoNDIS miniport called name to m.
func NewMiniport(m *ndis.Mediator, name string, fab *Fabric) (*Miniport, ndis.Status) {
	mp := &Miniport{fab: fab, vcs: map[*mpVc]struct{}{}}
	a, st := m.AddMiniport(name, mp, mp, nil)
	if st != ndis.StatusSuccess {
		return nil, st
	}
	mp.adapter = a
	return mp, st
}

// Adapter returns the miniport's adapter handle.
func (mp *Miniport) Adapter() *ndis.Adapter { return mp.adapter }

// SetMode sets how the miniport answers activation, deactivation, OIDs and sends.
func (mp *Miniport) SetMode(m Mode) { mp.mode.set(m) }

// RejectTokenRate makes activations asking for this transmit token rate fail
// with NDIS_STATUS_INVALID_DATA (0 disables).
func (mp *Miniport) RejectTokenRate(rate uint32) { mp.mu.Lock(); mp.rejectAt = rate; mp.mu.Unlock() }

func (mp *Miniport) getMode() Mode { return mp.mode.get() }

// Vcs is the number of VCs the miniport holds state for.
func (mp *Miniport) Vcs() int { mp.mu.Lock(); defer mp.mu.Unlock(); return len(mp.vcs) }

// OutstandingReceives is the number of indicated receive lists not returned.
func (mp *Miniport) OutstandingReceives() int { mp.mu.Lock(); defer mp.mu.Unlock(); return mp.rxOut }

// IndicateLinkDown tells every bound protocol the medium is disconnected
// (spec §4.13).
func (mp *Miniport) IndicateLinkDown() {
	mp.adapter.MCoIndicateStatusEx(nil, &ndis.StatusIndication{StatusCode: ndis.StatusMediaDisconnect})
}

// MiniportCoCreateVc allocates per-VC state; it never pends (R-GEN-5).
func (mp *Miniport) MiniportCoCreateVc(adapterCtx any, vc *ndis.Vc) (any, ndis.Status) {
	v := &mpVc{mp: mp, h: vc}
	mp.mu.Lock()
	mp.vcs[v] = struct{}{}
	mp.mu.Unlock()
	return v, ndis.StatusSuccess
}

// MiniportCoDeleteVc frees per-VC state.
func (mp *Miniport) MiniportCoDeleteVc(vcCtx any) ndis.Status {
	mp.mu.Lock()
	delete(mp.vcs, vcCtx.(*mpVc))
	mp.mu.Unlock()
	return ndis.StatusSuccess
}

// MiniportCoActivateVc validates the parameters (R-ACT-3) and attaches the
// VC to its connection identifier.
func (mp *Miniport) MiniportCoActivateVc(vcCtx any, params *ndis.CallParameters) ndis.Status {
	v := vcCtx.(*mpVc)
	return respond(&mp.fab.Loop, mp.getMode(), func(done func(ndis.Status)) {
		vci, ok := VCIOf(params)
		mp.mu.Lock()
		reject := mp.rejectAt != 0 && params.CallMgrParameters != nil && params.CallMgrParameters.Transmit.TokenRate == mp.rejectAt
		mp.mu.Unlock()
		if !ok || reject {
			done(ndis.StatusInvalidData)
			return
		}
		if v.active && v.vci != vci {
			mp.fab.detach(v.vci)
		}
		v.vci, v.active = vci, true
		mp.fab.attach(vci, v)
		done(ndis.StatusSuccess)
	}, func(st ndis.Status) { mp.adapter.MCoActivateVcComplete(st, v.h, params) })
}

// MiniportCoDeactivateVc stops the VC. Sends complete at once in Immediate
// mode, so nothing is in flight when it finishes (R-ACT-7).
func (mp *Miniport) MiniportCoDeactivateVc(vcCtx any) ndis.Status {
	v := vcCtx.(*mpVc)
	return respond(&mp.fab.Loop, mp.getMode(), func(done func(ndis.Status)) {
		mp.fab.detach(v.vci)
		v.active = false
		done(ndis.StatusSuccess)
	}, func(st ndis.Status) { mp.adapter.MCoDeactivateVcComplete(st, v.h) })
}

// MiniportCoSendNetBufferLists switches each list and completes it.
func (mp *Miniport) MiniportCoSendNetBufferLists(vcCtx any, nbls *ndis.NetBufferList, flags ndis.SendFlags) {
	v := vcCtx.(*mpVc)
	for n := nbls; n != nil; n = n.Next {
		mp.fab.switchCell(v.vci, n.Data)
		n.Status = ndis.StatusSuccess
	}
	if mp.getMode() == Immediate {
		mp.adapter.MCoSendNetBufferListsComplete(v.h, nbls, 0)
		return
	}
	mp.fab.Post(func() { mp.adapter.MCoSendNetBufferListsComplete(v.h, nbls, 0) })
}

// MiniportCoOidRequest answers OidLinkSpeed.
func (mp *Miniport) MiniportCoOidRequest(adapterCtx, vcCtx any, req *ndis.OidRequest) ndis.Status {
	return miniportOid(&mp.fab.Loop, mp.getMode(), req, func(st ndis.Status) {
		var vc *ndis.Vc
		if v, ok := vcCtx.(*mpVc); ok {
			vc = v.h
		}
		mp.adapter.MCoOidRequestComplete(vc, req, st)
	})
}

// MiniportReturnNetBufferLists takes back indicated lists.
func (mp *Miniport) MiniportReturnNetBufferLists(adapterCtx any, nbls *ndis.NetBufferList, flags ndis.ReturnFlags) {
	n := nbls.Len()
	mp.mu.Lock()
	mp.rxOut -= n
	mp.mu.Unlock()
}

func (v *mpVc) handleLocked() *ndis.Vc { return v.h }

// deliver indicates a cell; an mpVc is never recycled, so h is v.h.
func (v *mpVc) deliver(h *ndis.Vc, data []byte) {
	nbl := &ndis.NetBufferList{Data: append([]byte(nil), data...)}
	v.mp.mu.Lock()
	v.mp.rxOut++
	v.mp.mu.Unlock()
	v.mp.adapter.MCoIndicateReceiveNetBufferLists(v.h, nbl, 1, 0)
}
