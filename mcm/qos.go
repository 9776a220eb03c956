package mcm

import (
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Flowspec <-> Q.2931 traffic mapping (docs/protocol.md §6 "Flowspecs").
// Forward is the caller's transmit direction, backward its receive
// direction. Rates in bytes/s become cells/s of 48 payload octets, rounded
// up; buckets in bytes become cells; MaxSduSize is the AAL5 maximum
// CPCS-SDU size of the direction.
//
//	SERVICETYPE      Traffic Descriptor (per direction)     QoS class   bearer (BCOB-X)
//	BESTEFFORT       PCR CLP=0+1 (+ best effort indicator)  0           traffic type none
//	CONTROLLEDLOAD   PCR, SCR, MBS (CLP=0+1)                3           VBR
//	GUARANTEED       PCR (= PeakBandwidth, else TokenRate)  1           CBR, end-to-end timing
//	NO_TRAFFIC       PCR = 0                                0           —
//
// The best effort indicator is set when neither direction asks for more
// than best effort (UBR). QOS_NOT_SPECIFIED and POSITIVE_INFINITY_RATE leave
// the field out; an absent field reads back as QOS_NOT_SPECIFIED. Values
// over 24 bits of cells are clamped. Latency, DelayVariation and
// MinimumPolicedSize are not signalled (the called side sees
// QOS_NOT_SPECIFIED). Other service types are refused with
// NDIS_STATUS_NOT_SUPPORTED.

const (
	cellOctets = 48
	max24      = 0xFFFFFF
	// MaxAAL5SDU is the largest SDU an AAL5 VC carries (16-bit CPCS-SDU
	// size), and so the largest MaxSduSize a call can negotiate.
	MaxAAL5SDU = 0xFFFF
)

func unspecified(v uint32) bool { return v == ndis.QoSNotSpecified || v == ndis.PositiveInfinityRate }

func cells(octets uint32) uni.OptUint {
	if unspecified(octets) {
		return uni.OptUint{}
	}
	c := (uint64(octets) + cellOctets - 1) / cellOctets
	if c > max24 {
		c = max24
	}
	return uni.Some(uint32(c))
}

func octets(c uni.OptUint) uint32 {
	if !c.Present {
		return ndis.QoSNotSpecified
	}
	return uint32(uint64(c.Value) * cellOctets) // at most 805 306 320: fits
}

// dirTraffic is one direction of a traffic descriptor.
type dirTraffic struct {
	pcr, scr, mbs uni.OptUint
	class         uint8
}

func direction(f ndis.Flowspec) (dirTraffic, ndis.Status) {
	var d dirTraffic
	switch f.ServiceType {
	case ndis.ServiceNoTraffic:
		d.pcr = uni.Some(0)
	case ndis.ServiceBestEffort:
		d.pcr = cells(f.PeakBandwidth)
	case ndis.ServiceControlledLoad:
		d.pcr, d.scr, d.mbs, d.class = cells(f.PeakBandwidth), cells(f.TokenRate), cells(f.TokenBucketSize), uni.QoSClass3
	case ndis.ServiceGuaranteed:
		rate := f.PeakBandwidth
		if unspecified(rate) {
			rate = f.TokenRate
		}
		d.pcr, d.mbs, d.class = cells(rate), cells(f.TokenBucketSize), uni.QoSClass1
	default:
		return d, ndis.StatusNotSupported
	}
	return d, ndis.StatusSuccess
}

// checkTraffic reports whether two flowspecs can be signalled (see
// trafficDescriptor), without building anything.
func checkTraffic(fwd, bwd ndis.Flowspec) ndis.Status {
	if _, st := direction(fwd); st != ndis.StatusSuccess {
		return st
	}
	_, st := direction(bwd)
	return st
}

// trafficDescriptor fills td with the ATM Traffic Descriptor for the two
// directions.
func trafficDescriptor(td *uni.TrafficDescriptor, fwd, bwd ndis.Flowspec) (dirTraffic, dirTraffic, ndis.Status) {
	f, st := direction(fwd)
	if st != ndis.StatusSuccess {
		return f, f, st
	}
	b, st := direction(bwd)
	if st != ndis.StatusSuccess {
		return f, b, st
	}
	*td = uni.TrafficDescriptor{
		FwdPCR01: f.pcr, BwdPCR01: b.pcr,
		FwdSCR01: f.scr, BwdSCR01: b.scr,
		FwdMBS01: f.mbs, BwdMBS01: b.mbs,
		BestEffort: f.class == 0 && b.class == 0 && (fwd.ServiceType == ndis.ServiceBestEffort || bwd.ServiceType == ndis.ServiceBestEffort),
	}
	return f, b, ndis.StatusSuccess
}

// setupMsg is a SETUP and the information elements it points to, in one
// allocation instead of one per IE. The uni.Link keeps it until the call
// is connected (for T303), so it is not reused.
type setupMsg struct {
	m       uni.Message
	called  uni.CalledPartyNumber
	calling uni.CallingPartyNumber
	bhli    uni.BHLI
	td      uni.TrafficDescriptor
	bc      uni.BearerCapability
	qos     uni.QoSParameter
	aal     uni.AALParameters
	svc     [MaxServiceLen]byte
}

// newSetup starts a SETUP from this node's address from to service svc at
// address to.
func newSetup(from, to *uni.AESA, svc []byte) (*setupMsg, ndis.Status) {
	if len(svc) == 0 || len(svc) > MaxServiceLen {
		return nil, ndis.StatusInvalidAddress
	}
	s := &setupMsg{}
	s.called = uni.CalledPartyNumber{Type: uni.NumberUnknown, Plan: uni.PlanAESA, Address: to[:]}
	s.calling = uni.CallingPartyNumber{Type: uni.NumberUnknown, Plan: uni.PlanAESA, Address: from[:]}
	s.bhli = uni.BHLI{Type: uni.HLUserSpecific, Info: s.svc[:copy(s.svc[:], svc)]}
	s.m = uni.Message{Called: &s.called, Calling: &s.calling, BHLI: &s.bhli}
	return s, ndis.StatusSuccess
}

// traffic fills the traffic IEs of the SETUP (Traffic, Bearer, QoS, AAL).
func (s *setupMsg) traffic(fwd, bwd ndis.Flowspec, p2mp, reliable bool) ndis.Status {
	f, b, st := trafficDescriptor(&s.td, fwd, bwd)
	if st != ndis.StatusSuccess {
		return st
	}
	s.m.Traffic = &s.td
	s.bc = uni.BearerCapability{Class: uni.BCOBX, HasTrafficType: true, UserPlane: uni.PointToPoint}
	switch {
	case f.class == uni.QoSClass1 || b.class == uni.QoSClass1:
		s.bc.TrafficType, s.bc.Timing = uni.TrafficCBR, uni.TimingRequired
	case f.class == uni.QoSClass3 || b.class == uni.QoSClass3:
		s.bc.TrafficType = uni.TrafficVBR
	}
	if p2mp {
		s.bc.UserPlane = uni.PointToMultipoint
	}
	s.m.Bearer = &s.bc
	s.qos = uni.QoSParameter{Forward: f.class, Backward: b.class}
	if f.class != 0 || b.class != 0 {
		s.qos.Instruction = uni.NewIEInstruction(uni.CodingNetwork, false, 0)
	}
	s.m.QoS = &s.qos
	fillAAL(&s.aal, fwd, bwd, reliable)
	s.m.AAL = &s.aal
	return ndis.StatusSuccess
}

// aalParams is the AAL5 parameters IE: the max SDU of each direction and
// the SSCS type (SSCOP assured operation for reliable delivery).
func aalParams(fwd, bwd ndis.Flowspec, reliable bool) *uni.AALParameters {
	a := new(uni.AALParameters)
	fillAAL(a, fwd, bwd, reliable)
	return a
}

// fillAAL fills a with aalParams' IE.
func fillAAL(a *uni.AALParameters, fwd, bwd ndis.Flowspec, reliable bool) {
	*a = uni.AALParameters{Type: uni.AAL5, SSCS: uni.Some(uni.SSCSNull)}
	if reliable {
		a.SSCS = uni.Some(uni.SSCSAssured)
	}
	if sduSpecified(fwd.MaxSduSize) && fwd.ServiceType != ndis.ServiceNoTraffic {
		a.FwdMaxSDU = uni.Some(min(fwd.MaxSduSize, MaxAAL5SDU))
	}
	if sduSpecified(bwd.MaxSduSize) && bwd.ServiceType != ndis.ServiceNoTraffic {
		a.BwdMaxSDU = uni.Some(min(bwd.MaxSduSize, MaxAAL5SDU))
	}
}

func sduSpecified(v uint32) bool { return v != 0 && v != ndis.QoSNotSpecified }

// readDirection turns one direction of a received traffic descriptor and
// its QoS class back into a flowspec (without MaxSduSize).
func readDirection(pcr, scr, mbs uni.OptUint, class uint8) ndis.Flowspec {
	f := ndis.Flowspec{
		TokenRate: ndis.QoSNotSpecified, TokenBucketSize: ndis.QoSNotSpecified, PeakBandwidth: ndis.QoSNotSpecified,
		Latency: ndis.QoSNotSpecified, DelayVariation: ndis.QoSNotSpecified,
		MaxSduSize: ndis.QoSNotSpecified, MinimumPolicedSize: ndis.QoSNotSpecified,
	}
	switch {
	case pcr.Present && pcr.Value == 0:
		f.ServiceType = ndis.ServiceNoTraffic
		f.TokenRate, f.TokenBucketSize, f.PeakBandwidth = 0, 0, 0
	case class == uni.QoSClass1:
		f.ServiceType = ndis.ServiceGuaranteed
		f.PeakBandwidth, f.TokenRate, f.TokenBucketSize = octets(pcr), octets(pcr), octets(mbs)
	case class == uni.QoSClass2 || class == uni.QoSClass3:
		f.ServiceType = ndis.ServiceControlledLoad
		f.PeakBandwidth, f.TokenRate, f.TokenBucketSize = octets(pcr), octets(scr), octets(mbs)
	default:
		f.ServiceType = ndis.ServiceBestEffort
		f.PeakBandwidth = octets(pcr)
	}
	return f
}

func either(a, b uni.OptUint) uni.OptUint {
	if a.Present {
		return a
	}
	return b
}

// readTraffic returns the forward and backward flowspecs a traffic
// descriptor and QoS parameter describe.
func readTraffic(td *uni.TrafficDescriptor, q *uni.QoSParameter) (fwd, bwd ndis.Flowspec) {
	var fc, bc uint8
	if q != nil {
		fc, bc = q.Forward, q.Backward
	}
	if td == nil {
		td = &uni.TrafficDescriptor{}
	}
	fwd = readDirection(either(td.FwdPCR01, td.FwdPCR0), either(td.FwdSCR01, td.FwdSCR0), either(td.FwdMBS01, td.FwdMBS0), fc)
	bwd = readDirection(either(td.BwdPCR01, td.BwdPCR0), either(td.BwdSCR01, td.BwdSCR0), either(td.BwdMBS01, td.BwdMBS0), bc)
	return fwd, bwd
}

// readSetup returns what a SETUP asks for: the forward and backward
// flowspecs with their max SDU sizes, and whether the VC is reliable.
func readSetup(m *uni.Message) (fwd, bwd ndis.Flowspec, reliable bool) {
	fwd, bwd = readTraffic(m.Traffic, m.QoS)
	if a := m.AAL; a != nil && a.Type == uni.AAL5 {
		if a.FwdMaxSDU.Present {
			fwd.MaxSduSize = a.FwdMaxSDU.Value
		}
		if a.BwdMaxSDU.Present {
			bwd.MaxSduSize = a.BwdMaxSDU.Value
		}
		reliable = a.SSCS.Present && a.SSCS.Value == uni.SSCSAssured
	}
	return fwd, bwd, reliable
}

// modified applies the rates of a MODIFY REQUEST's traffic descriptor to a
// direction's current flowspec: only what a traffic descriptor carries
// (TokenRate, TokenBucketSize, PeakBandwidth) changes.
func modified(old ndis.Flowspec, pcr, scr, mbs uni.OptUint) ndis.Flowspec {
	n := readDirection(pcr, scr, mbs, classOf(old.ServiceType))
	f := old
	f.TokenRate, f.TokenBucketSize, f.PeakBandwidth = n.TokenRate, n.TokenBucketSize, n.PeakBandwidth
	return f
}

func classOf(s ndis.ServiceType) uint8 {
	switch s {
	case ndis.ServiceGuaranteed:
		return uni.QoSClass1
	case ndis.ServiceControlledLoad:
		return uni.QoSClass3
	}
	return 0
}

// exceeds reports whether a flowspec asks for more than limit bytes/s
// (0: no limit).
func exceeds(f ndis.Flowspec, limit uint32) bool {
	if limit == 0 || f.ServiceType == ndis.ServiceNoTraffic {
		return false
	}
	over := func(v uint32) bool { return !unspecified(v) && v > limit }
	return over(f.TokenRate) || over(f.PeakBandwidth)
}

// sameSignalling reports whether two flowspecs differ only in what a
// MODIFY REQUEST can change.
func sameSignalling(a, b ndis.Flowspec) bool {
	return a.ServiceType == b.ServiceType && a.MaxSduSize == b.MaxSduSize
}
