package miniport

import (
	"slices"
	"time"

	"github.com/condis-project/condis/ndis"
)

// The receive path. Every SDU is indicated with
// NdisMCoIndicateReceiveNetBufferLists, one list per SDU, with
// NDIS_RECEIVE_FLAGS_RESOURCES: the protocol copies what it keeps, the
// list is the miniport's again when the indication returns, and nothing
// is outstanding when a VC is deactivated (R-ACT-7).
//
// Signalling of a peer goes to the peer's signalling VC, in the order the
// peer sent it. Until that VC is active and open (OidSignallingOpen) the
// messages are held, at most Config.MaxHeldSignalling per peer (later
// ones are dropped and counted in AdapterStats.SignallingDropped); what
// is held is indicated once the call manager opens the VC, and dropped
// if the link goes down first (it belonged to a link that is gone).
// Data of a multipoint call goes to each leaf VC bound to its peer and
// connection identifier.
//
// Data goes to the VC bound to the peer and connection identifier: a
// datagram to a Datagram VC, a reliable SDU to a Reliable VC. Data for a
// connection identifier no VC is bound to is dropped and counted
// (AdapterStats.UnknownConnID); so is data of the wrong kind, data longer
// than the VC's receive MaxSduSize or arriving before its activation
// completed (Stats.RxDropped), and data that does not conform to the VC's
// receive traffic within Config.PolicingTolerance (Stats.RxPoliced).

// rxList is the list an indication carries.
func rxList(data []byte) *ndis.NetBufferList { return &ndis.NetBufferList{Data: data} }

// deliverSignalling indicates the peer's held signalling on its
// signalling VC while that VC is active, one goroutine at a time so the
// order holds.
func (mp *Miniport) deliverSignalling(pr *peer) {
	mp.mu.Lock()
	if pr.delivering {
		mp.mu.Unlock()
		return
	}
	pr.delivering = true
	for {
		v := pr.sig
		if v == nil || v.state != vcActive || !v.rxReady || len(pr.held) == 0 {
			pr.delivering = false
			mp.mu.Unlock()
			return
		}
		msg := pr.held[0]
		pr.held[0] = nil
		pr.held = pr.held[1:]
		pr.room.Broadcast() // a reader waiting for room (Message) may go on
		mp.startRxLocked(v, len(msg))
		mp.mu.Unlock()
		st := mp.adapter.MCoIndicateReceiveNetBufferLists(v.h, rxList(msg), 1, ndis.ReceiveFlagsResources)
		mp.mu.Lock()
		mp.countRxLocked(v, st, len(msg))
		if v.drainedLocked() {
			mp.mu.Unlock()
			mp.finishDeactivate(v)
			mp.mu.Lock()
		}
	}
}

// receiveData indicates one data SDU of kind from pr on the VC of connID
// (on each leaf VC of this node's parties, for a multipoint call).
func (mp *Miniport) receiveData(pr *peer, connID uint32, sdu []byte, kind VCKind) {
	mp.mu.Lock()
	vs := slices.Clone(pr.receiversLocked(connID))
	if len(vs) == 0 {
		mp.stats.UnknownConnID++
		mp.mu.Unlock()
		return
	}
	mp.mu.Unlock()
	for _, v := range vs {
		mp.receiveOn(v, sdu, kind)
	}
}

// receiveOn indicates one data SDU of kind on v, unless it is dropped.
func (mp *Miniport) receiveOn(v *vc, sdu []byte, kind VCKind) {
	mp.mu.Lock()
	if v.state != vcActive || !v.rxReady || v.p.Kind != kind || len(sdu) > v.maxRx() {
		v.st.RxDropped++
		mp.stats.Total.RxDropped++
		mp.mu.Unlock()
		return
	}
	if _, ok := v.rxB.Conform(v.rxRates, time.Now(), len(sdu), mp.cfg.PolicingTolerance); !ok {
		v.st.RxPoliced++
		mp.stats.Total.RxPoliced++
		mp.mu.Unlock()
		return
	}
	mp.startRxLocked(v, len(sdu))
	mp.mu.Unlock()
	st := mp.adapter.MCoIndicateReceiveNetBufferLists(v.h, rxList(sdu), 1, ndis.ReceiveFlagsResources)
	mp.mu.Lock()
	mp.countRxLocked(v, st, len(sdu))
	mp.unlockFinishing(v)
}

// startRxLocked enters an indication of size octets on v and counts it
// as received: before the protocol hears of it, so its counters agree with
// what it was given (countRxLocked corrects a refused one).
func (mp *Miniport) startRxLocked(v *vc, size int) {
	v.rxBusy++
	v.st.RxPackets++
	v.st.RxBytes += uint64(size)
	mp.stats.Total.RxPackets++
	mp.stats.Total.RxBytes += uint64(size)
}

// countRxLocked leaves an indication of size octets that ended with st; a
// refused one is counted dropped instead of received.
func (mp *Miniport) countRxLocked(v *vc, st ndis.Status, size int) {
	v.rxBusy--
	if st == ndis.StatusSuccess {
		return
	}
	v.st.RxPackets--
	v.st.RxBytes -= uint64(size)
	mp.stats.Total.RxPackets--
	mp.stats.Total.RxBytes -= uint64(size)
	v.st.RxDropped++
	mp.stats.Total.RxDropped++
}

// MiniportReturnNetBufferLists models MiniportReturnNetBufferLists. The
// miniport indicates with NDIS_RECEIVE_FLAGS_RESOURCES, so no list comes
// back; there is nothing to do.
func (mp *Miniport) MiniportReturnNetBufferLists(adapterCtx any, nbls *ndis.NetBufferList, flags ndis.ReturnFlags) {
}
