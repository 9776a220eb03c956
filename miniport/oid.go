package miniport

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport"
)

// OIDs the miniport answers (queries only; a set of one of them gets
// NDIS_STATUS_NOT_SUPPORTED, any other OID NDIS_STATUS_INVALID_OID, every
// request after Close NDIS_STATUS_NOT_ACCEPTED, R-OID-7). Values are
// those of ntddndis.h; buffers are little endian, as the C structures
// are in memory. A buffer too short gets NDIS_STATUS_BUFFER_TOO_SHORT
// with BytesNeeded set.
const (
	// OidGenCoLinkSpeed (OID_GEN_CO_LINK_SPEED): NDIS_CO_LINK_SPEED, two
	// ULONGs, outbound then inbound, in units of 100 bit/s:
	// Config.LinkSpeed both ways.
	OidGenCoLinkSpeed ndis.Oid = 0x00010107
	// OidGenMaximumFrameSize (OID_GEN_MAXIMUM_FRAME_SIZE): a ULONG, the
	// largest SDU the path carries now. On a VC: a signalling VC's
	// transport.MaxMessageLen, a reliable VC's transport.MaxStreamSDU, a
	// datagram VC's link's MaxDatagramPayload (NDIS_STATUS_FAILURE while
	// its peer has no link). Adapter-wide: the smallest MaxDatagramPayload
	// of the links up (NDIS_STATUS_FAILURE if none is).
	OidGenMaximumFrameSize ndis.Oid = 0x00010106
	// OidGenCoXmitPdusOk (OID_GEN_CO_XMIT_PDUS_OK): a ULONG64, SDUs sent,
	// by the VC or (adapter-wide) by every VC ever.
	OidGenCoXmitPdusOk ndis.Oid = 0x00020101
	// OidGenCoRcvPdusOk (OID_GEN_CO_RCV_PDUS_OK): a ULONG64, SDUs indicated.
	OidGenCoRcvPdusOk ndis.Oid = 0x00020102
	// OidGenCoXmitPdusError (OID_GEN_CO_XMIT_PDUS_ERROR): a ULONG64, sends
	// completed with a failure status.
	OidGenCoXmitPdusError ndis.Oid = 0x00020103
	// OidGenCoRcvPdusError (OID_GEN_CO_RCV_PDUS_ERROR): a ULONG64, SDUs
	// received and dropped (policed, too long, not indicated).
	OidGenCoRcvPdusError ndis.Oid = 0x00020104
	// OidVcStats is vendor-specific: the VC's Stats, or adapter-wide the
	// AdapterStats, as ParseStats and ParseAdapterStats read them.
	OidVcStats ndis.Oid = 0xFFC0D001
	// OidSignallingOpen is vendor-specific, a set with no buffer on a
	// signalling VC whose activation has completed: the call manager
	// takes the peer's messages from now on. The miniport indicates what
	// it holds for the VC, then each message as it comes. It opens the
	// VC's receive path because only the call manager knows when the
	// mediator holds the VC active: a miniport that completes an
	// activation while MiniportCoActivateVc still runs has its completion
	// parked by the mediator, and an indication right after it would
	// reach a VC still ACTIVATING (R-ACT-7). NDIS_STATUS_INVALID_DATA on
	// another VC or adapter-wide, NDIS_STATUS_FAILURE on a signalling VC
	// that is not active.
	OidSignallingOpen ndis.Oid = 0xFFC0D002
)

// Stats are a VC's counters (or, in AdapterStats.Total, every VC's summed).
type Stats struct {
	TxPackets, TxBytes uint64 // sends completed with SUCCESS
	TxDropped          uint64 // sends completed with any other status
	TxShaped           uint64 // sends held back to conform
	TxPoliced          uint64 // sends dropped: they could not conform in time (RESOURCES)
	RxPackets, RxBytes uint64 // SDUs indicated
	RxDropped          uint64 // SDUs not indicated: too long, wrong kind, VC not ready, refused
	RxPoliced          uint64 // SDUs dropped: not conforming to the receive traffic
}

const statsLen = 9 * 8

func (s Stats) put(b []byte) {
	for i, x := range []uint64{s.TxPackets, s.TxBytes, s.TxDropped, s.TxShaped, s.TxPoliced, s.RxPackets, s.RxBytes, s.RxDropped, s.RxPoliced} {
		binary.LittleEndian.PutUint64(b[8*i:], x)
	}
}

// ParseStats reads the OidVcStats answer of a VC-specific request.
func ParseStats(b []byte) (Stats, error) {
	if len(b) < statsLen {
		return Stats{}, fmt.Errorf("miniport: VC stats of %d octets, want %d", len(b), statsLen)
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
	return Stats{TxPackets: u(0), TxBytes: u(1), TxDropped: u(2), TxShaped: u(3), TxPoliced: u(4),
		RxPackets: u(5), RxBytes: u(6), RxDropped: u(7), RxPoliced: u(8)}, nil
}

// AdapterStats are the miniport's own counters.
type AdapterStats struct {
	Total             Stats  // every VC's, summed since the miniport started
	UnknownConnID     uint64 // data SDUs for a connection identifier no VC is bound to
	SignallingDropped uint64 // signalling messages dropped: held too many, or the link went down while held
	LinksUp           uint64 // links that came up
}

const adapterStatsLen = statsLen + 3*8

// ParseAdapterStats reads the OidVcStats answer of an adapter-wide request.
func ParseAdapterStats(b []byte) (AdapterStats, error) {
	if len(b) < adapterStatsLen {
		return AdapterStats{}, fmt.Errorf("miniport: adapter stats of %d octets, want %d", len(b), adapterStatsLen)
	}
	t, _ := ParseStats(b)
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[statsLen+8*i:]) }
	return AdapterStats{Total: t, UnknownConnID: u(0), SignallingDropped: u(1), LinksUp: u(2)}, nil
}

// Stats returns the miniport's counters.
func (mp *Miniport) Stats() AdapterStats {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	return mp.stats
}

// Vcs returns the number of VCs the miniport holds state for.
func (mp *Miniport) Vcs() int {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	return len(mp.vcs)
}

// InForce returns the VCParams in force for the VC h (what its last
// successful activation or re-activation set: the traffic it is shaped
// and policed to), and whether h is bound (activating, active or
// deactivating) in the miniport.
func (mp *Miniport) InForce(h *ndis.Vc) (VCParams, bool) {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	for v := range mp.vcs {
		if v.h == h && v.state != vcIdle {
			return v.p, true
		}
	}
	return VCParams{}, false
}

// MiniportCoOidRequest models MiniportCoOidRequest. It answers at once
// (never PENDING); see the Oid constants for what it answers.
func (mp *Miniport) MiniportCoOidRequest(adapterCtx, vcCtx any, req *ndis.OidRequest) ndis.Status {
	v, _ := vcCtx.(*vc)
	mp.mu.Lock()
	defer mp.mu.Unlock()
	if mp.closed {
		return ndis.StatusNotAccepted
	}
	var answer func(b []byte) ndis.Status
	need := 0
	switch req.Oid {
	case OidGenCoLinkSpeed:
		need = 8
		answer = func(b []byte) ndis.Status {
			units := uint32(min(mp.cfg.LinkSpeed/100, math.MaxUint32))
			binary.LittleEndian.PutUint32(b, units)
			binary.LittleEndian.PutUint32(b[4:], units)
			return ndis.StatusSuccess
		}
	case OidGenMaximumFrameSize:
		need = 4
		answer = func(b []byte) ndis.Status {
			n, ok := mp.frameSizeLocked(v)
			if !ok {
				return ndis.StatusFailure
			}
			binary.LittleEndian.PutUint32(b, uint32(n))
			return ndis.StatusSuccess
		}
	case OidGenCoXmitPdusOk, OidGenCoRcvPdusOk, OidGenCoXmitPdusError, OidGenCoRcvPdusError:
		need = 8
		s := mp.stats.Total
		if v != nil {
			s = v.st
		}
		x := map[ndis.Oid]uint64{OidGenCoXmitPdusOk: s.TxPackets, OidGenCoRcvPdusOk: s.RxPackets,
			OidGenCoXmitPdusError: s.TxDropped, OidGenCoRcvPdusError: s.RxDropped + s.RxPoliced}[req.Oid]
		answer = func(b []byte) ndis.Status { binary.LittleEndian.PutUint64(b, x); return ndis.StatusSuccess }
	case OidVcStats:
		if v != nil {
			need = statsLen
			answer = func(b []byte) ndis.Status { v.st.put(b); return ndis.StatusSuccess }
		} else {
			need = adapterStatsLen
			answer = func(b []byte) ndis.Status {
				s := mp.stats
				s.Total.put(b)
				for i, x := range []uint64{s.UnknownConnID, s.SignallingDropped, s.LinksUp} {
					binary.LittleEndian.PutUint64(b[statsLen+8*i:], x)
				}
				return ndis.StatusSuccess
			}
		}
	case OidSignallingOpen:
		if req.Type != ndis.OidSet {
			return ndis.StatusNotSupported
		}
		return mp.openSignallingLocked(v)
	default:
		return ndis.StatusInvalidOid
	}
	if req.Type != ndis.OidQuery {
		return ndis.StatusNotSupported
	}
	if len(req.InformationBuffer) < need {
		req.BytesNeeded = need
		return ndis.StatusBufferTooShort
	}
	st := answer(req.InformationBuffer[:need])
	if st == ndis.StatusSuccess {
		req.BytesWritten = need
	}
	return st
}

// openSignallingLocked is OidSignallingOpen: v's held signalling is
// indicated from another goroutine (the request's caller may hold its
// locks), and later messages as they come.
func (mp *Miniport) openSignallingLocked(v *vc) ndis.Status {
	switch {
	case v == nil || v.p.Kind != Signalling:
		return ndis.StatusInvalidData
	case v.state != vcActive || v.peer == nil:
		return ndis.StatusFailure
	}
	v.rxReady = true
	pr := v.peer
	mp.goLocked(func() { mp.deliverSignalling(pr) })
	return ndis.StatusSuccess
}

// frameSizeLocked is OidGenMaximumFrameSize's answer.
func (mp *Miniport) frameSizeLocked(v *vc) (int, bool) {
	if v != nil {
		if v.peer == nil && v.p.Role != Root {
			return 0, false
		}
		switch v.p.Kind {
		case Signalling:
			return transport.MaxMessageLen, true
		case Reliable:
			return transport.MaxStreamSDU, true
		}
		ts := v.targetsLocked() // a root's: the smallest of its legs'
		if len(ts) == 0 {
			return 0, false
		}
		n := math.MaxInt
		for _, t := range ts {
			n = min(n, t.l.MaxDatagramPayload())
		}
		return n, true
	}
	n := math.MaxInt
	for _, pr := range mp.peers {
		if pr.link != nil {
			n = min(n, pr.link.MaxDatagramPayload())
		}
	}
	return n, n != math.MaxInt
}
