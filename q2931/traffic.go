package q2931

import (
	"strconv"
	"sync/atomic"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Flowspec <-> UNI 3.1 traffic mapping (docs/protocol.md §6 "Flowspecs").
// Forward is the caller's transmit direction, backward its receive
// direction. Rates in bytes/s become cells/s of 48 payload octets, rounded
// up; buckets in bytes become cells; MaxSduSize is the AAL5 maximum
// CPCS-SDU size of the direction. Each SERVICETYPE is one of UNI 3.1's
// combinations of traffic parameters (§5.4.5.6, uni.TrafficCombination):
//
//	SERVICETYPE     Traffic Descriptor (one direction)      QoS class  bearer (BCOB-X)
//	NO_TRAFFIC      PCR(0+1) = 0                            -          -
//	BESTEFFORT      PCR(0+1) = PeakBandwidth; with the best -          traffic type none
//	                effort indicator when no direction of
//	                the call reserves (UBR)
//	CONTROLLEDLOAD  PCR(0+1) = PeakBandwidth,               3          VBR
//	                SCR(0+1) = TokenRate, MBS(0+1) = bucket
//	GUARANTEED      as CONTROLLEDLOAD                       1          CBR, end-to-end timing
//
// A value left open (QOS_NOT_SPECIFIED, POSITIVE_INFINITY_RATE) is sent as
// 16 777 215, the largest 24-bit value, and read back as QOS_NOT_SPECIFIED;
// an open TokenRate of a reserving direction is sent as its PCR (a
// sustainable rate never exceeds the peak). The QoS Parameter is ITU-T
// coded 0/0 when neither direction has a class, else ATM Forum coded with
// each direction's class, a direction without one taking the other's
// (UNI 3.1 allows classes 1-4 both ways or 0 both ways, nothing between).
// Latency, DelayVariation and MinimumPolicedSize are not signalled. A
// received descriptor is read by its combination: PCR(0+1) = 0 is
// NO_TRAFFIC; one with a sustainable rate is GUARANTEED for QoS class 1,
// else CONTROLLEDLOAD; anything else BESTEFFORT with PeakBandwidth = PCR(0+1).
// Flowspecs that cannot be signalled are refused (CheckFlowspec), never
// clamped.

const (
	cellOctets = 48
	// openCells is the cell rate or burst size that stands for a value
	// the flowspec leaves open: all ones in the 24-bit field.
	openCells = 0xFFFFFF
	// maxCells is the largest cell count a specified value may become.
	maxCells = openCells - 1
	// MaxFlowspecValue is the largest TokenRate or PeakBandwidth
	// (bytes/s), and the largest TokenBucketSize (bytes), a call can
	// signal: 16 777 214 cells of 48 octets (16 777 215, all ones, stands
	// for a value left open).
	MaxFlowspecValue = maxCells * cellOctets
	// MaxAAL5SDU is the largest SDU an AAL5 VC carries (16-bit CPCS-SDU
	// size), and so the largest MaxSduSize a call can negotiate.
	MaxAAL5SDU = 0xFFFF
)

// Unspecified reports whether a flowspec value is left open
// (QOS_NOT_SPECIFIED or POSITIVE_INFINITY_RATE).
func Unspecified(v uint32) bool { return v == ndis.QoSNotSpecified || v == ndis.PositiveInfinityRate }

// cells is the cell rate (or burst size) that signals octets; the value
// has passed CheckFlowspec.
func cells(octets uint32) uni.OptUint {
	if Unspecified(octets) {
		return uni.Some(openCells)
	}
	return uni.Some(uint32((uint64(octets) + cellOctets - 1) / cellOctets))
}

// octets reads a cell rate (or burst size) back into a flowspec value.
func octets(c uni.OptUint) uint32 {
	if !c.Present || c.Value >= openCells {
		return ndis.QoSNotSpecified
	}
	return c.Value * cellOctets // at most 805 306 272: fits
}

// FlowspecError says why a flowspec cannot be signalled in UNI 3.1.
type FlowspecError struct {
	// Field is the FLOWSPEC member at fault: "ServiceType", "TokenRate",
	// "TokenBucketSize" or "PeakBandwidth".
	Field string
	// Value is its value.
	Value uint32
	// Limit is the largest value Field may have: MaxFlowspecValue, or for
	// a TokenRate above the peak the PeakBandwidth. 0 when no value would
	// do (an unsupported ServiceType, a PeakBandwidth of 0).
	Limit uint32
	// Status is what a request carrying the flowspec is refused with:
	// NDIS_STATUS_INVALID_DATA, or NDIS_STATUS_NOT_SUPPORTED for a
	// service type the call manager does not signal.
	Status ndis.Status
}

// Error says in one line what is wrong and what is allowed, naming the
// FLOWSPEC members.
func (e *FlowspecError) Error() string { return e.Describe(func(field string) string { return field }) }

// Describe is Error with each FLOWSPEC member named by name(member): a
// command-line tool passes its flag names.
func (e *FlowspecError) Describe(name func(field string) string) string {
	unit := " bytes/s"
	if e.Field == "TokenBucketSize" {
		unit = " bytes"
	}
	v := strconv.FormatUint(uint64(e.Value), 10)
	switch {
	case e.Field == "ServiceType":
		return name(e.Field) + " " + v + " is not supported: use best effort, controlled load, guaranteed or no traffic"
	case e.Field == "PeakBandwidth" && e.Value == 0:
		return name(e.Field) + " 0: a direction that sends nothing has the service type no traffic"
	case e.Field == "TokenRate" && e.Limit < MaxFlowspecValue:
		return name("TokenRate") + " " + v + unit + " is above " + name("PeakBandwidth") + " " +
			strconv.FormatUint(uint64(e.Limit), 10) + unit + ": the token rate must not exceed the peak"
	}
	return name(e.Field) + " " + v + unit + " is more than a UNI 3.1 traffic descriptor carries: at most " +
		strconv.FormatUint(uint64(e.Limit), 10) + unit + " (" + strconv.Itoa(maxCells) + " cells of 48 octets)"
}

// CheckFlowspec reports whether the call manager can signal f, one
// direction of a call, in a UNI 3.1 ATM Traffic Descriptor without
// changing it beyond rounding to whole cells; if not, the *FlowspecError
// says which member is at fault. It is the check NdisClMakeCall and
// NdisClModifyCallQoS apply (refusing with the error's Status); tools
// apply it before they call. NO_TRAFFIC always passes; for the other
// service types a signalled value (PeakBandwidth; TokenRate and
// TokenBucketSize for controlled load and guaranteed) must be open or at
// most MaxFlowspecValue, PeakBandwidth must not be 0, and TokenRate must
// not exceed PeakBandwidth.
func CheckFlowspec(f ndis.Flowspec) error {
	bad := func(field string, v, limit uint32) error {
		return &FlowspecError{Field: field, Value: v, Limit: limit, Status: ndis.StatusInvalidData}
	}
	switch f.ServiceType {
	case ndis.ServiceNoTraffic:
		return nil
	case ndis.ServiceBestEffort, ndis.ServiceControlledLoad, ndis.ServiceGuaranteed:
	default:
		return &FlowspecError{Field: "ServiceType", Value: uint32(f.ServiceType), Status: ndis.StatusNotSupported}
	}
	too := func(v uint32) bool { return !Unspecified(v) && v > MaxFlowspecValue }
	switch {
	case f.PeakBandwidth == 0:
		return bad("PeakBandwidth", 0, 0)
	case too(f.PeakBandwidth):
		return bad("PeakBandwidth", f.PeakBandwidth, MaxFlowspecValue)
	case !Unspecified(f.TokenRate) && !Unspecified(f.PeakBandwidth) && f.TokenRate > f.PeakBandwidth:
		return bad("TokenRate", f.TokenRate, f.PeakBandwidth)
	case f.ServiceType == ndis.ServiceBestEffort:
		return nil // nothing else of it is signalled
	case too(f.TokenRate):
		return bad("TokenRate", f.TokenRate, MaxFlowspecValue)
	case too(f.TokenBucketSize):
		return bad("TokenBucketSize", f.TokenBucketSize, MaxFlowspecValue)
	}
	return nil
}

// checkFlowspecs applies CheckFlowspec to both directions and returns the
// status to refuse with.
func checkFlowspecs(fs ...ndis.Flowspec) ndis.Status {
	for _, f := range fs {
		if err := CheckFlowspec(f); err != nil {
			return err.(*FlowspecError).Status
		}
	}
	return ndis.StatusSuccess
}

// dirTraffic is one direction of a traffic descriptor.
type dirTraffic struct {
	pcr, scr, mbs uni.OptUint
	class         uint8
}

// direction is what f signals; f has passed CheckFlowspec.
func direction(f ndis.Flowspec) dirTraffic {
	var d dirTraffic
	switch f.ServiceType {
	case ndis.ServiceNoTraffic:
		d.pcr = uni.Some(0)
	case ndis.ServiceBestEffort:
		d.pcr = cells(f.PeakBandwidth)
	case ndis.ServiceControlledLoad, ndis.ServiceGuaranteed:
		d.pcr, d.scr, d.mbs, d.class = cells(f.PeakBandwidth), cells(f.TokenRate), cells(f.TokenBucketSize), classOf(f.ServiceType)
		if Unspecified(f.TokenRate) {
			d.scr = d.pcr
		}
	}
	return d
}

// TrafficDescriptor fills td with the ATM Traffic Descriptor for the two
// directions (forward: the caller's transmit direction), after checking
// them (CheckFlowspec); it returns the status to refuse them with.
func TrafficDescriptor(td *uni.TrafficDescriptor, fwd, bwd ndis.Flowspec) ndis.Status {
	_, _, st := trafficDescriptor(td, fwd, bwd)
	return st
}

// trafficDescriptor is TrafficDescriptor, returning each direction's
// traffic parameters and QoS class too.
func trafficDescriptor(td *uni.TrafficDescriptor, fwd, bwd ndis.Flowspec) (dirTraffic, dirTraffic, ndis.Status) {
	if st := checkFlowspecs(fwd, bwd); st != ndis.StatusSuccess {
		return dirTraffic{}, dirTraffic{}, st
	}
	f, b := direction(fwd), direction(bwd)
	*td = uni.TrafficDescriptor{
		FwdPCR01: f.pcr, BwdPCR01: b.pcr,
		FwdSCR01: f.scr, BwdSCR01: b.scr,
		FwdMBS01: f.mbs, BwdMBS01: b.mbs,
		BestEffort: f.class == 0 && b.class == 0 && (fwd.ServiceType == ndis.ServiceBestEffort || bwd.ServiceType == ndis.ServiceBestEffort),
	}
	return f, b, ndis.StatusSuccess
}

// qosParameter fills q for the QoS classes of the two directions: ITU-T
// coded 0/0 when neither has one, else ATM Forum coded with a direction
// that has no class taking the other's (UNI 3.1 §5.4.5.18).
func qosParameter(q *uni.QoSParameter, fwd, bwd uint8) {
	switch {
	case fwd == 0 && bwd == 0:
		*q = uni.QoSParameter{}
		return
	case fwd == 0:
		fwd = bwd
	case bwd == 0:
		bwd = fwd
	}
	*q = uni.QoSParameter{Instruction: uni.NewIEInstruction(uni.CodingNetwork, false, 0), Forward: fwd, Backward: bwd}
}

// signalled returns the flowspecs the far end reads from the traffic IEs
// that carry fwd and bwd (readSetup): rates rounded up to whole cells,
// open values and what is not signalled QOS_NOT_SPECIFIED, a NO_TRAFFIC
// direction's MaxSduSize 0. Other MaxSduSizes are returned as given: they
// are negotiated through the AAL parameters. fwd and bwd have passed
// CheckFlowspec.
func signalled(fwd, bwd ndis.Flowspec) (ndis.Flowspec, ndis.Flowspec) {
	var td uni.TrafficDescriptor
	var q uni.QoSParameter
	f, b, _ := trafficDescriptor(&td, fwd, bwd)
	qosParameter(&q, f.class, b.class)
	rf, rb := readTraffic(&td, &q)
	sdu := func(asked, read ndis.Flowspec) ndis.Flowspec {
		read.MaxSduSize = asked.MaxSduSize
		if read.ServiceType == ndis.ServiceNoTraffic {
			read.MaxSduSize = 0
		}
		return read
	}
	return sdu(fwd, rf), sdu(bwd, rb)
}

// Granted checks the flowspecs of a call (CheckFlowspec) and returns what
// its signalling carries, as both ends will report it: tx is the caller's
// transmit (forward) direction, rx its receive direction, which for a
// multipoint call carries nothing and is returned as given.
func Granted(tx, rx ndis.Flowspec, multipoint bool) (ndis.Flowspec, ndis.Flowspec, ndis.Status) {
	if g := lastGrant.Load(); g != nil && g.tx == tx && g.rx == rx && g.multipoint == multipoint {
		return g.gtx, g.grx, ndis.StatusSuccess
	}
	gtx, grx, st := workOutGrant(tx, rx, multipoint)
	if st == ndis.StatusSuccess {
		lastGrant.Store(&granted{tx: tx, rx: rx, multipoint: multipoint, gtx: gtx, grx: grx})
	}
	return gtx, grx, st
}

// lastGrant is the latest flowspecs Granted passed, and what it answered.
// Calls in a row mostly ask for the same flowspecs (a client's usual ones,
// a bench's), and working the answer out (a traffic descriptor built and
// read back) was 2% of a calling node's CPU at 64 calls in flight. A
// caller that alternates between flowspecs costs one small allocation per
// call more than before.
var lastGrant atomic.Pointer[granted]

// granted is one answer of Granted, never changed once stored.
type granted struct {
	tx, rx, gtx, grx ndis.Flowspec
	multipoint       bool
}

// workOutGrant is Granted without lastGrant.
func workOutGrant(tx, rx ndis.Flowspec, multipoint bool) (ndis.Flowspec, ndis.Flowspec, ndis.Status) {
	srx := rx
	if multipoint {
		srx = ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}
	}
	if st := checkFlowspecs(tx, srx); st != ndis.StatusSuccess {
		return tx, rx, st
	}
	gtx, grx := signalled(tx, srx)
	if multipoint {
		grx = rx
	}
	return gtx, grx, ndis.StatusSuccess
}

// Grant puts the granted flowspecs into the request's parameters, flagged
// CALL_PARAMETERS_CHANGED when they differ from what was asked (R-CALL-9,
// R-QOS-4): the completion reports what was signalled.
func Grant(p *ndis.CallParameters, tx, rx ndis.Flowspec) {
	cm := p.CallMgrParameters
	if tx != cm.Transmit || rx != cm.Receive {
		cm.Transmit, cm.Receive = tx, rx
		p.Flags |= ndis.CallParametersChanged
	}
}

// TrafficAllowed reports whether a received traffic descriptor is one of
// UNI 3.1's combinations of traffic parameters; if not, the SETUP or MODIFY
// REQUEST is refused with cause 73.
func TrafficAllowed(td *uni.TrafficDescriptor) bool {
	if td == nil {
		return false
	}
	_, _, err := td.Combinations()
	return err == nil
}

// SetupMessage is a SETUP and the information elements it points to, in one
// allocation instead of one per IE: Message is the SETUP. The uni.Link keeps it until the call
// is connected (for T303), so it is not reused.
type SetupMessage struct {
	Message uni.Message
	called  uni.CalledPartyNumber
	calling uni.CallingPartyNumber
	bhli    uni.BHLI
	td      uni.TrafficDescriptor
	bc      uni.BearerCapability
	qos     uni.QoSParameter
	aal     uni.AALParameters
	svc     [MaxServiceLen]byte
}

// NewSetup starts a SETUP from this node's address from to service svc at
// address to.
func NewSetup(from, to *uni.AESA, svc []byte) (*SetupMessage, ndis.Status) {
	s := &SetupMessage{}
	if st := s.Init(from, to, svc); st != ndis.StatusSuccess {
		return nil, st
	}
	return s, ndis.StatusSuccess
}

// Init makes s a new SETUP from from to service svc at to, as NewSetup
// does, forgetting what s held before: a call manager that sends many
// SETUPs reuses one SetupMessage, since uni.Link.Setup keeps nothing of
// the message once its Output is carried out. The addresses are referred
// to, not copied, until then.
func (s *SetupMessage) Init(from, to *uni.AESA, svc []byte) ndis.Status {
	if len(svc) == 0 || len(svc) > MaxServiceLen {
		return ndis.StatusInvalidAddress
	}
	*s = SetupMessage{}
	s.called = uni.CalledPartyNumber{Type: uni.NumberUnknown, Plan: uni.PlanAESA, Address: to[:]}
	s.calling = uni.CallingPartyNumber{Type: uni.NumberUnknown, Plan: uni.PlanAESA, Address: from[:]}
	s.bhli = uni.BHLI{Type: uni.HLUserSpecific, Info: s.svc[:copy(s.svc[:], svc)]}
	s.Message = uni.Message{Called: &s.called, Calling: &s.calling, BHLI: &s.bhli}
	return ndis.StatusSuccess
}

// Traffic fills the traffic IEs of the SETUP (Traffic, Bearer, QoS, AAL).
func (s *SetupMessage) Traffic(fwd, bwd ndis.Flowspec, p2mp, reliable bool) ndis.Status {
	f, b, st := trafficDescriptor(&s.td, fwd, bwd)
	if st != ndis.StatusSuccess {
		return st
	}
	qosParameter(&s.qos, f.class, b.class)
	s.Message.Traffic = &s.td
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
	s.Message.Bearer = &s.bc
	s.Message.QoS = &s.qos
	FillAAL(&s.aal, fwd, bwd, reliable)
	s.Message.AAL = &s.aal
	return ndis.StatusSuccess
}

// AALParams is the AAL5 parameters IE: the max SDU of each direction and
// the SSCS type (SSCOP assured operation for reliable delivery). UNI 3.1
// carries both maximum CPCS-SDU sizes or neither: neither when no
// direction specifies one; otherwise a NO_TRAFFIC direction's is 0 and an
// unspecified one is MaxAAL5SDU (the far end lowers it to what its path
// carries, as it does an unspecified size).
func AALParams(fwd, bwd ndis.Flowspec, reliable bool) *uni.AALParameters {
	a := new(uni.AALParameters)
	FillAAL(a, fwd, bwd, reliable)
	return a
}

// FillAAL fills a with AALParams' IE.
func FillAAL(a *uni.AALParameters, fwd, bwd ndis.Flowspec, reliable bool) {
	*a = uni.AALParameters{Type: uni.AAL5, SSCS: uni.Some(uni.SSCSNull)}
	if reliable {
		a.SSCS = uni.Some(uni.SSCSAssured)
	}
	has := func(f ndis.Flowspec) bool {
		return f.ServiceType != ndis.ServiceNoTraffic && SDUSpecified(f.MaxSduSize)
	}
	if !has(fwd) && !has(bwd) {
		return
	}
	size := func(f ndis.Flowspec) uni.OptUint {
		switch {
		case f.ServiceType == ndis.ServiceNoTraffic:
			return uni.Some(0)
		case !SDUSpecified(f.MaxSduSize):
			return uni.Some(MaxAAL5SDU)
		}
		return uni.Some(min(f.MaxSduSize, MaxAAL5SDU))
	}
	a.FwdMaxSDU, a.BwdMaxSDU = size(fwd), size(bwd)
}

// SDUSpecified reports whether a MaxSduSize is a size, not left open (0 or
// QOS_NOT_SPECIFIED).
func SDUSpecified(v uint32) bool { return v != 0 && v != ndis.QoSNotSpecified }

// readDirection turns one direction of a received traffic descriptor and
// its QoS class back into a flowspec (without MaxSduSize): PCR(0+1) = 0 is
// NO_TRAFFIC; a sustainable rate makes it GUARANTEED for class 1, else
// CONTROLLEDLOAD; anything else is BESTEFFORT with the peak.
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
	case scr.Present:
		f.ServiceType = ndis.ServiceControlledLoad
		if class == uni.QoSClass1 {
			f.ServiceType = ndis.ServiceGuaranteed
		}
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

// ReadSetup returns what a SETUP asks for: the forward and backward
// flowspecs with their max SDU sizes, and whether the VC is reliable.
func ReadSetup(m *uni.Message) (fwd, bwd ndis.Flowspec, reliable bool) {
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
	for _, f := range []*ndis.Flowspec{&fwd, &bwd} {
		if f.ServiceType == ndis.ServiceNoTraffic {
			f.MaxSduSize = 0 // a direction that carries nothing has no SDUs
		}
	}
	return fwd, bwd, reliable
}

// ModifiedFlowspecs applies a MODIFY REQUEST's traffic descriptor to the
// flowspecs tx and rx in force at one end of a call; incoming says that end
// is the called side (its transmit direction is the backward one). Only
// what a traffic descriptor carries (TokenRate, TokenBucketSize,
// PeakBandwidth) changes.
func ModifiedFlowspecs(td *uni.TrafficDescriptor, tx, rx ndis.Flowspec, incoming bool) (ntx, nrx ndis.Flowspec) {
	fwd := func(old ndis.Flowspec) ndis.Flowspec {
		return modified(old, either(td.FwdPCR01, td.FwdPCR0), either(td.FwdSCR01, td.FwdSCR0), either(td.FwdMBS01, td.FwdMBS0))
	}
	bwd := func(old ndis.Flowspec) ndis.Flowspec {
		return modified(old, either(td.BwdPCR01, td.BwdPCR0), either(td.BwdSCR01, td.BwdSCR0), either(td.BwdMBS01, td.BwdMBS0))
	}
	if incoming {
		return bwd(tx), fwd(rx)
	}
	return fwd(tx), bwd(rx)
}

// modified applies the rates of a MODIFY REQUEST's traffic descriptor to a
// direction's current flowspec.
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

// Exceeds reports whether a flowspec asks for more than limit bytes/s
// (0: no limit).
func Exceeds(f ndis.Flowspec, limit uint32) bool {
	if limit == 0 || f.ServiceType == ndis.ServiceNoTraffic {
		return false
	}
	over := func(v uint32) bool { return !Unspecified(v) && v > limit }
	return over(f.TokenRate) || over(f.PeakBandwidth)
}

// SameSignalling reports whether two flowspecs differ only in what a
// MODIFY REQUEST can change.
func SameSignalling(a, b ndis.Flowspec) bool {
	return a.ServiceType == b.ServiceType && a.MaxSduSize == b.MaxSduSize
}
