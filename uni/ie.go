package uni

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
)

// IEID is an information element identifier (the first octet of an IE).
type IEID uint8

// Information element identifiers (Q.2931 §4.5, Q.2963.1).
const (
	IECause            IEID = 0x08
	IECallState        IEID = 0x14
	IEEndpointRef      IEID = 0x54
	IEEndpointState    IEID = 0x55
	IEAAL              IEID = 0x58 // ATM adaptation layer parameters
	IETraffic          IEID = 0x59 // ATM traffic descriptor
	IEConnectionID     IEID = 0x5a
	IEQoS              IEID = 0x5c // quality of service parameter
	IEBHLI             IEID = 0x5d // broadband high-layer information
	IEBearer           IEID = 0x5e // broadband bearer capability
	IEBLLI             IEID = 0x5f // broadband low-layer information
	IESendingComplete  IEID = 0x62 // broadband sending complete
	IERepeat           IEID = 0x63 // broadband repeat indicator
	IECallingParty     IEID = 0x6c // calling party number
	IECallingSubaddr   IEID = 0x6d // calling party subaddress (not modelled)
	IECalledParty      IEID = 0x70 // called party number
	IECalledSubaddr    IEID = 0x71 // called party subaddress (not modelled)
	IETransitNetwork   IEID = 0x78 // transit network selection (not modelled)
	IERestartIndicator IEID = 0x79
	IEReportType       IEID = 0x89 // broadband report type (Q.2963.1)
)

var ieNames = map[IEID]string{
	IECause:            "Cause",
	IECallState:        "Call State",
	IEEndpointRef:      "Endpoint Reference",
	IEEndpointState:    "Endpoint State",
	IEAAL:              "AAL Parameters",
	IETraffic:          "ATM Traffic Descriptor",
	IEConnectionID:     "Connection Identifier",
	IEQoS:              "QoS Parameter",
	IEBHLI:             "BHLI",
	IEBearer:           "Broadband Bearer Capability",
	IEBLLI:             "BLLI",
	IESendingComplete:  "Broadband Sending Complete",
	IERepeat:           "Broadband Repeat Indicator",
	IECallingParty:     "Calling Party Number",
	IECallingSubaddr:   "Calling Party Subaddress",
	IECalledParty:      "Called Party Number",
	IECalledSubaddr:    "Called Party Subaddress",
	IETransitNetwork:   "Transit Network Selection",
	IERestartIndicator: "Restart Indicator",
	IEReportType:       "Broadband Report Type",
}

// String names the IE and shows its identifier.
func (id IEID) String() string {
	h := "0x" + hex.EncodeToString([]byte{byte(id)})
	if n, ok := ieNames[id]; ok {
		return n + " (" + h + ")"
	}
	return h
}

// IEInstruction is the IE instruction field (octet 2 of every IE) without
// its extension bit, which is always 1 on the wire. The zero value is what
// UNI 3.1 end systems send: ITU-T coding, regular error handling.
//
//	bits 7-6 coding standard, bit 5 flag, bit 4 reserved, bits 3-1 action indicator
type IEInstruction uint8

// Coding standards (IE instruction bits 7-6).
const (
	CodingITU      = 0 // ITU-T standardized coding
	CodingISO      = 1 // ISO/IEC standard
	CodingNational = 2 // national standard
	CodingNetwork  = 3 // standard defined for the network (ATM Forum specific in UNI 3.1)
)

var codingNames = [4]string{CodingITU: "ITU-T", CodingISO: "ISO/IEC", CodingNational: "national", CodingNetwork: "ATM Forum specific"}

// IE action indicator values (IE instruction bits 3-1), meaningful when the
// flag bit is set.
const (
	IEActionClearCall              = 0 // clear call
	IEActionDiscardIE              = 1 // discard information element and proceed
	IEActionDiscardIEReportStatus  = 2 // discard IE, proceed, and report status
	IEActionDiscardMessage         = 5 // discard message, and ignore
	IEActionDiscardMessageReport   = 6 // discard message, and report status
	ieInstructionFlag              = 0x10
	ieInstructionActionMask        = 0x07
	ieInstructionCodingStdShift    = 5
	ieInstructionCodingStdMaskLow2 = 0x03
)

// NewIEInstruction builds an instruction field. With explicit false the
// regular error procedures apply and action is not significant.
func NewIEInstruction(codingStandard uint8, explicit bool, action uint8) IEInstruction {
	i := IEInstruction((codingStandard&ieInstructionCodingStdMaskLow2)<<ieInstructionCodingStdShift | action&ieInstructionActionMask)
	if explicit {
		i |= ieInstructionFlag
	}
	return i
}

// CodingStandard returns bits 7-6.
func (i IEInstruction) CodingStandard() uint8 {
	return uint8(i>>ieInstructionCodingStdShift) & ieInstructionCodingStdMaskLow2
}

// withCodingStandard returns i with bits 7-6 set to cs.
func (i IEInstruction) withCodingStandard(cs uint8) IEInstruction {
	return i&^(ieInstructionCodingStdMaskLow2<<ieInstructionCodingStdShift) |
		IEInstruction(cs&ieInstructionCodingStdMaskLow2)<<ieInstructionCodingStdShift
}

// Explicit reports whether the flag bit asks the receiver to follow the
// action indicator instead of the regular error procedures.
func (i IEInstruction) Explicit() bool { return i&ieInstructionFlag != 0 }

// ActionIndicator returns bits 3-1.
func (i IEInstruction) ActionIndicator() uint8 { return uint8(i & ieInstructionActionMask) }

// action resolves what a receiver does with an IE it cannot use: the
// explicit instruction when the flag is set, else the regular procedure
// (discard the IE, proceed, report status).
func (i IEInstruction) action() Action {
	if !i.Explicit() {
		return ActionDiscardIEReportStatus
	}
	switch i.ActionIndicator() {
	case IEActionClearCall:
		return ActionClearCall
	case IEActionDiscardIE:
		return ActionDiscardIE
	case IEActionDiscardMessage:
		return ActionIgnore
	case IEActionDiscardMessageReport:
		return ActionReportStatus
	default: // 2 and the reserved codes 3, 4, 7
		return ActionDiscardIEReportStatus
	}
}

// RawIE is an information element kept verbatim: one the codec does not
// model, one not allowed in the message it arrived in (both cause 99), or
// an optional one whose contents were invalid (cause 100). Encoding writes
// it back unchanged after the modelled IEs.
type RawIE struct {
	ID          IEID
	Instruction IEInstruction
	Contents    []byte // nil when empty
	// Cause is why the decoder did not model the IE: CauseIEUnknown or
	// CauseInvalidIEContents. Encoding ignores it.
	Cause Cause
}

// Action is what the receiver does about the IE (Q.2931 error procedures).
func (r *RawIE) Action() Action { return r.Instruction.action() }

// OptUint is an optional numeric subfield: AAL parameters and ATM traffic
// descriptor subfields are each present or absent on the wire.
type OptUint struct {
	Value   uint32
	Present bool
}

// Some returns a present OptUint.
func Some(v uint32) OptUint { return OptUint{Value: v, Present: true} }

// EndpointReference is the Endpoint Reference IE (0x54): identifies a leaf
// of a point-to-multipoint call. Value 0 is the first party (set up by SETUP).
type EndpointReference struct {
	Instruction IEInstruction
	Type        uint8  // endpoint reference type; 0 = locally defined integer
	Flag        bool   // true: sent to the side that allocated the value
	Value       uint16 // 15 bits
}

// MaxEndpointRef is the largest endpoint reference value.
const MaxEndpointRef = 0x7fff

func (e *EndpointReference) appendContents(b []byte) ([]byte, error) {
	if e.Value > MaxEndpointRef {
		return b, encodeErr(IEEndpointRef, "value does not fit in 15 bits")
	}
	v := e.Value
	if e.Flag {
		v |= 0x8000
	}
	return append(b, e.Type, byte(v>>8), byte(v)), nil
}

func (e *EndpointReference) decode(p []byte) bool {
	if len(p) != 3 {
		return false
	}
	e.Type = p[0]
	e.Flag = p[1]&0x80 != 0
	e.Value = uint16(p[1]&0x7f)<<8 | uint16(p[2])
	return true
}

// AAL types (AAL Parameters octet 5).
const (
	AALVoice       = 0x00
	AAL1           = 0x01
	AAL2           = 0x02
	AAL34          = 0x03
	AAL5           = 0x05
	AALUserDefined = 0x10
)

// AAL5 subfield identifiers and values.
const (
	aalFwdMaxSDU = 0x8c
	aalBwdMaxSDU = 0x81
	aalMode      = 0x83
	aalSSCS      = 0x84

	// AAL5 SSCS types.
	SSCSNull            = 0 // null SSCS
	SSCSAssured         = 1 // data SSCS based on SSCOP, assured operation
	SSCSNonAssured      = 2 // data SSCS based on SSCOP, non-assured operation
	SSCSFrameRelay      = 4 // frame relay SSCS
	AALModeMessage      = 1 // AAL mode (UNI 3.0 only): message
	AALModeStreaming    = 2 // AAL mode (UNI 3.0 only): streaming
	maxAAL5SDU          = 0xffff
	maxAALOctetSubfield = 0xff
)

// AALParameters is the AAL Parameters IE (0x58). For AAL5 the subfields
// are modelled; for any other AAL type the octets after the type are kept
// in Other. UNI 3.1 (§5.4.5.5) carries the forward and backward maximum
// CPCS-SDU sizes together or not at all: Append refuses one without the
// other and the decoder treats one alone as invalid contents (cause 100).
type AALParameters struct {
	Instruction IEInstruction
	Type        uint8
	FwdMaxSDU   OptUint // forward maximum CPCS-SDU size (16 bits)
	BwdMaxSDU   OptUint // backward maximum CPCS-SDU size (16 bits)
	Mode        OptUint // AAL mode, UNI 3.0 only (8 bits)
	SSCS        OptUint // SSCS type (8 bits)
	Other       []byte  // contents after octet 5 for non-AAL5 types; nil for AAL5
}

func (a *AALParameters) appendContents(b []byte) ([]byte, error) {
	b = append(b, a.Type)
	if a.Type != AAL5 {
		if a.FwdMaxSDU.Present || a.BwdMaxSDU.Present || a.Mode.Present || a.SSCS.Present {
			return b, encodeErr(IEAAL, "AAL5 subfields set for another AAL type")
		}
		return append(b, a.Other...), nil
	}
	if a.Other != nil {
		return b, encodeErr(IEAAL, "Other set for AAL5")
	}
	if a.FwdMaxSDU.Value > maxAAL5SDU || a.BwdMaxSDU.Value > maxAAL5SDU ||
		a.Mode.Value > maxAALOctetSubfield || a.SSCS.Value > maxAALOctetSubfield {
		return b, encodeErr(IEAAL, "subfield out of range")
	}
	if a.FwdMaxSDU.Present != a.BwdMaxSDU.Present {
		return b, encodeErr(IEAAL, "UNI 3.1 carries the forward and backward maximum CPCS-SDU sizes together or neither")
	}
	if a.FwdMaxSDU.Present {
		b = append(b, aalFwdMaxSDU, byte(a.FwdMaxSDU.Value>>8), byte(a.FwdMaxSDU.Value))
	}
	if a.BwdMaxSDU.Present {
		b = append(b, aalBwdMaxSDU, byte(a.BwdMaxSDU.Value>>8), byte(a.BwdMaxSDU.Value))
	}
	if a.Mode.Present {
		b = append(b, aalMode, byte(a.Mode.Value))
	}
	if a.SSCS.Present {
		b = append(b, aalSSCS, byte(a.SSCS.Value))
	}
	return b, nil
}

func (a *AALParameters) decode(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	a.Type = p[0]
	p = p[1:]
	if a.Type != AAL5 {
		a.Other = nilIfEmpty(p)
		return true
	}
	for len(p) > 0 {
		var f *OptUint
		n := 1
		switch p[0] {
		case aalFwdMaxSDU:
			f, n = &a.FwdMaxSDU, 2
		case aalBwdMaxSDU:
			f, n = &a.BwdMaxSDU, 2
		case aalMode:
			f = &a.Mode
		case aalSSCS:
			f = &a.SSCS
		default:
			return false
		}
		// A repeated subfield has no defined meaning; refusing it keeps
		// decode(encode(m)) == m.
		if f.Present || len(p) < 1+n {
			return false
		}
		v := uint32(p[1])
		if n == 2 {
			v = v<<8 | uint32(p[2])
		}
		*f = Some(v)
		p = p[1+n:]
	}
	// UNI 3.1: both maximum CPCS-SDU sizes or neither.
	return a.FwdMaxSDU.Present == a.BwdMaxSDU.Present
}

// TrafficDescriptor is the ATM Traffic Descriptor IE (0x59). Cell rates are
// in cells per second and burst sizes in cells, 24 bits each; CLP=0 and
// CLP=0+1 name the cells the value applies to. The codec carries any set
// of subfields; whether they form one of the combinations UNI 3.1 allows
// is for the call manager to judge (Combinations, cause 73).
type TrafficDescriptor struct {
	Instruction IEInstruction
	FwdPCR0     OptUint // forward peak cell rate, CLP=0 (0x82)
	BwdPCR0     OptUint // backward peak cell rate, CLP=0 (0x83)
	FwdPCR01    OptUint // forward peak cell rate, CLP=0+1 (0x84)
	BwdPCR01    OptUint // backward peak cell rate, CLP=0+1 (0x85)
	FwdSCR0     OptUint // forward sustainable cell rate, CLP=0 (0x88)
	BwdSCR0     OptUint // backward sustainable cell rate, CLP=0 (0x89)
	FwdSCR01    OptUint // forward sustainable cell rate, CLP=0+1 (0x90)
	BwdSCR01    OptUint // backward sustainable cell rate, CLP=0+1 (0x91)
	FwdMBS0     OptUint // forward maximum burst size, CLP=0 (0xa0)
	BwdMBS0     OptUint // backward maximum burst size, CLP=0 (0xa1)
	FwdMBS01    OptUint // forward maximum burst size, CLP=0+1 (0xb0)
	BwdMBS01    OptUint // backward maximum burst size, CLP=0+1 (0xb1)
	BestEffort  bool    // best effort indicator (0xbe): UBR
	// Options is the traffic management options octet (0xbf) when
	// HasOptions; see the Tag* and FrameDiscard* bits.
	HasOptions bool
	Options    uint8
}

// Traffic management option bits.
const (
	TagForward           = 0x01 // tagging requested in the forward direction
	TagBackward          = 0x02 // tagging requested in the backward direction
	FrameDiscardBackward = 0x40 // frame discard allowed backward (UNI 4.0)
	FrameDiscardForward  = 0x80 // frame discard allowed forward (UNI 4.0)
)

// Traffic descriptor subfield identifiers in wire (and canonical) order.
var tdIDs = [12]byte{0x82, 0x83, 0x84, 0x85, 0x88, 0x89, 0x90, 0x91, 0xa0, 0xa1, 0xb0, 0xb1}

const (
	tdBestEffort = 0xbe
	tdOptions    = 0xbf
	maxUint24    = 0xffffff
)

func (t *TrafficDescriptor) fields() [12]*OptUint {
	return [12]*OptUint{&t.FwdPCR0, &t.BwdPCR0, &t.FwdPCR01, &t.BwdPCR01, &t.FwdSCR0, &t.BwdSCR0,
		&t.FwdSCR01, &t.BwdSCR01, &t.FwdMBS0, &t.BwdMBS0, &t.FwdMBS01, &t.BwdMBS01}
}

func (t *TrafficDescriptor) appendContents(b []byte) ([]byte, error) {
	for i, f := range t.fields() {
		if !f.Present {
			continue
		}
		if f.Value > maxUint24 {
			return b, encodeErr(IETraffic, "cell rate or burst size does not fit in 24 bits")
		}
		b = append(b, tdIDs[i], byte(f.Value>>16), byte(f.Value>>8), byte(f.Value))
	}
	if t.BestEffort {
		b = append(b, tdBestEffort)
	}
	if t.HasOptions {
		b = append(b, tdOptions, t.Options)
	}
	return b, nil
}

func (t *TrafficDescriptor) decode(p []byte) bool {
	fs := t.fields()
	for len(p) > 0 {
		id := p[0]
		switch id {
		case tdBestEffort:
			if t.BestEffort {
				return false
			}
			t.BestEffort = true
			p = p[1:]
			continue
		case tdOptions:
			if t.HasOptions || len(p) < 2 {
				return false
			}
			t.HasOptions, t.Options = true, p[1]
			p = p[2:]
			continue
		}
		i := tdIndex(id)
		if i < 0 || fs[i].Present || len(p) < 4 {
			return false
		}
		*fs[i] = Some(uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]))
		p = p[4:]
	}
	return true
}

// TrafficCombination is one of the combinations of traffic parameters UNI
// 3.1 allows for a direction of a call (§5.4.5.6, in the order listed
// there); CombinationBestEffort covers both directions at once.
type TrafficCombination uint8

// The combinations. CombinationNone is any other set of parameters: what
// cause 73 (unsupported combination of traffic parameters) refuses.
const (
	CombinationNone       TrafficCombination = iota
	CombinationPCR0                          // PCR CLP=0 and PCR CLP=0+1
	CombinationPCR0Tagged                    // PCR CLP=0 and PCR CLP=0+1, tagging requested
	CombinationSCR0                          // PCR CLP=0+1, SCR CLP=0 and MBS CLP=0
	CombinationSCR0Tagged                    // PCR CLP=0+1, SCR CLP=0 and MBS CLP=0, tagging requested
	CombinationPCR01                         // PCR CLP=0+1 alone
	CombinationSCR01                         // PCR CLP=0+1, SCR CLP=0+1 and MBS CLP=0+1
	CombinationBestEffort                    // both directions: PCR CLP=0+1 each way and the best effort indicator
)

var combinationNames = [...]string{
	CombinationNone:       "no allowed combination",
	CombinationPCR0:       "PCR(0), PCR(0+1)",
	CombinationPCR0Tagged: "PCR(0), PCR(0+1), tagging",
	CombinationSCR0:       "PCR(0+1), SCR(0), MBS(0)",
	CombinationSCR0Tagged: "PCR(0+1), SCR(0), MBS(0), tagging",
	CombinationPCR01:      "PCR(0+1)",
	CombinationSCR01:      "PCR(0+1), SCR(0+1), MBS(0+1)",
	CombinationBestEffort: "best effort: PCR(0+1) + best effort indicator",
}

// String lists the parameters of the combination.
func (c TrafficCombination) String() string {
	if int(c) < len(combinationNames) {
		return combinationNames[c]
	}
	return "combination " + itoa(int(c))
}

// Combinations returns the UNI 3.1 combination of traffic parameters of
// each direction, and an error naming the direction that has none (the
// descriptor is then refused with cause 73). The best effort indicator
// makes both directions CombinationBestEffort and allows nothing but the
// two PCR CLP=0+1. Traffic management options other than tagging (frame
// discard, UNI 4.0) do not take part.
func (t *TrafficDescriptor) Combinations() (fwd, bwd TrafficCombination, err error) {
	if t.BestEffort {
		only := TrafficDescriptor{FwdPCR01: t.FwdPCR01, BwdPCR01: t.BwdPCR01}
		switch {
		case !t.FwdPCR01.Present || !t.BwdPCR01.Present:
			err = errors.New("best effort needs the peak cell rate (CLP=0+1) of both directions")
		case t.fieldsSet() != only.fieldsSet():
			err = errors.New("best effort carries the peak cell rates (CLP=0+1) and nothing else")
		case t.HasOptions && t.Options&(TagForward|TagBackward) != 0:
			err = errors.New("best effort allows no tagging")
		default:
			return CombinationBestEffort, CombinationBestEffort, nil
		}
		return CombinationNone, CombinationNone, err
	}
	tags := uint8(0)
	if t.HasOptions {
		tags = t.Options
	}
	fwd = combination(t.FwdPCR0, t.FwdPCR01, t.FwdSCR0, t.FwdSCR01, t.FwdMBS0, t.FwdMBS01, tags&TagForward != 0)
	bwd = combination(t.BwdPCR0, t.BwdPCR01, t.BwdSCR0, t.BwdSCR01, t.BwdMBS0, t.BwdMBS01, tags&TagBackward != 0)
	switch {
	case fwd == CombinationNone:
		err = errors.New("the forward traffic parameters are not a UNI 3.1 combination")
	case bwd == CombinationNone:
		err = errors.New("the backward traffic parameters are not a UNI 3.1 combination")
	}
	return fwd, bwd, err
}

// fieldsSet is a bit mask of the rate and burst subfields present.
func (t *TrafficDescriptor) fieldsSet() uint16 {
	var m uint16
	for i, f := range t.fields() {
		if f.Present {
			m |= 1 << i
		}
	}
	return m
}

// combination identifies one direction's parameters.
func combination(pcr0, pcr01, scr0, scr01, mbs0, mbs01 OptUint, tagged bool) TrafficCombination {
	if !pcr01.Present {
		return CombinationNone
	}
	var c TrafficCombination
	switch {
	case pcr0.Present && !scr0.Present && !scr01.Present && !mbs0.Present && !mbs01.Present:
		c = CombinationPCR0
	case !pcr0.Present && scr0.Present && mbs0.Present && !scr01.Present && !mbs01.Present:
		c = CombinationSCR0
	case !pcr0.Present && !scr0.Present && !scr01.Present && !mbs0.Present && !mbs01.Present:
		c = CombinationPCR01
	case !pcr0.Present && !scr0.Present && scr01.Present && mbs01.Present && !mbs0.Present:
		c = CombinationSCR01
	default:
		return CombinationNone
	}
	if tagged {
		// Tagging only where the CLP=0 cells have parameters of their own.
		switch c {
		case CombinationPCR0:
			return CombinationPCR0Tagged
		case CombinationSCR0:
			return CombinationSCR0Tagged
		}
		return CombinationNone
	}
	return c
}

func tdIndex(id byte) int {
	for i, v := range tdIDs {
		if v == id {
			return i
		}
	}
	return -1
}

// Bearer classes (Broadband Bearer Capability octet 5, 5 bits).
const (
	BCOBA = 0x01 // BCOB-A: constant bit rate, end-to-end timing
	BCOBC = 0x03 // BCOB-C: variable bit rate, no timing
	BCOBX = 0x10 // BCOB-X: transport service chosen by the user (octet 5a)
)

// Traffic types and timing requirements (octet 5a, UNI 3.1).
const (
	TrafficNoIndication = 0 // no indication
	TrafficCBR          = 1 // constant bit rate
	TrafficVBR          = 2 // variable bit rate
	TimingNoIndication  = 0 // no indication
	TimingRequired      = 1 // end-to-end timing required
	TimingNotRequired   = 2 // end-to-end timing not required
)

// User-plane connection configurations (octet 6, bits 2-1).
const (
	PointToPoint      = 0
	PointToMultipoint = 1
)

// BearerCapability is the Broadband Bearer Capability IE (0x5e).
type BearerCapability struct {
	Instruction IEInstruction
	Class       uint8 // BCOBA, BCOBC, BCOBX (5 bits)
	// HasTrafficType puts octet 5a (traffic type and timing) on the wire;
	// UNI 3.1 requires it for BCOB-X.
	HasTrafficType bool
	TrafficType    uint8 // 3 bits
	Timing         uint8 // 2 bits
	Clipping       bool  // susceptible to clipping
	UserPlane      uint8 // PointToPoint or PointToMultipoint (2 bits)
}

func (c *BearerCapability) appendContents(b []byte) ([]byte, error) {
	if c.Class > 0x1f || c.TrafficType > 7 || c.Timing > 3 || c.UserPlane > 3 {
		return b, encodeErr(IEBearer, "field out of range")
	}
	if c.HasTrafficType {
		b = append(b, c.Class, 0x80|c.TrafficType<<2|c.Timing)
	} else {
		if c.TrafficType != 0 || c.Timing != 0 {
			return b, encodeErr(IEBearer, "traffic type or timing set without octet 5a")
		}
		b = append(b, 0x80|c.Class)
	}
	o := byte(0x80) | c.UserPlane
	if c.Clipping {
		o |= 0x20
	}
	return append(b, o), nil
}

func (c *BearerCapability) decode(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	c.Class = p[0] & 0x1f
	if p[0]&0x80 == 0 {
		if len(p) != 3 || p[1]&0x80 == 0 {
			return false
		}
		c.HasTrafficType = true
		c.TrafficType = p[1] >> 2 & 7
		c.Timing = p[1] & 3
		p = p[2:]
	} else {
		p = p[1:]
	}
	if len(p) != 1 || p[0]&0x80 == 0 {
		return false
	}
	switch p[0] >> 5 & 3 {
	case 0:
	case 1:
		c.Clipping = true
	default:
		return false
	}
	c.UserPlane = p[0] & 3
	return true
}

// QoS classes (QoS Parameter octets 5 and 6). Classes 1-4 are ATM Forum
// specific and need coding standard CodingNetwork in the IE instruction.
const (
	QoSUnspecified = 0
	QoSClass1      = 1
	QoSClass2      = 2
	QoSClass3      = 3
	QoSClass4      = 4
)

// QoSParameter is the Quality of Service Parameter IE (0x5c).
//
// UNI 3.1 (§5.4.5.18) ties the classes to the coding standard of the IE
// instruction: ITU-T coding carries the unspecified QoS class (0) in both
// directions and nothing else; the ATM Forum-specific coding (CodingNetwork)
// carries one of the specified QoS classes 1-4 in each direction. Append
// refuses any other combination and the decoder treats one as invalid
// contents (cause 100).
type QoSParameter struct {
	Instruction IEInstruction
	Forward     uint8
	Backward    uint8
}

// qosCodingProblem says what is wrong with QoS classes fwd and bwd under
// coding standard cs; "" when they are valid.
func qosCodingProblem(cs, fwd, bwd uint8) string {
	switch cs {
	case CodingITU:
		if fwd != QoSUnspecified || bwd != QoSUnspecified {
			return "ITU-T coding carries only the unspecified QoS class (0) both ways; classes 1-4 need the ATM Forum-specific coding standard"
		}
	case CodingNetwork:
		if fwd < QoSClass1 || fwd > QoSClass4 || bwd < QoSClass1 || bwd > QoSClass4 {
			return "the ATM Forum-specific coding standard carries QoS classes 1-4 in both directions; 0/0 is ITU-T coded"
		}
	default:
		return "QoS classes are ITU-T or ATM Forum-specific coded"
	}
	return ""
}

func (q *QoSParameter) appendContents(b []byte) ([]byte, error) {
	if p := qosCodingProblem(q.Instruction.CodingStandard(), q.Forward, q.Backward); p != "" {
		return b, encodeErr(IEQoS, p)
	}
	return append(b, q.Forward, q.Backward), nil
}

func (q *QoSParameter) decode(p []byte) bool {
	if len(p) != 2 {
		return false
	}
	q.Forward, q.Backward = p[0], p[1]
	return true
}

// Type of number and numbering plan (party number octet 5).
const (
	NumberUnknown       = 0 // type of number: unknown (used with AESAs)
	NumberInternational = 1 // type of number: international (E.164)
	PlanE164            = 1 // numbering plan: ISDN/telephony E.164
	PlanAESA            = 2 // numbering plan: ATM End System Address (ISO NSAP format)
	PlanPrivate         = 9 // numbering plan: private
	// AESALen is the length of an ATM End System Address.
	AESALen = 20
)

// Presentation and screening indicators (calling party number octet 5a).
const (
	PresentationAllowed    = 0
	PresentationRestricted = 1
	NumberNotAvailable     = 2
	ScreenUserNotScreened  = 0
	ScreenUserPassed       = 1
	ScreenUserFailed       = 2
	ScreenNetwork          = 3
)

// AESA is a 20-octet ATM End System Address.
type AESA [AESALen]byte

// String prints the address as 40 hex digits with the customary dots after
// the 13-octet prefix and the 6-octet ESI: PREFIX.ESI.SEL.
func (a AESA) String() string {
	h := hex.EncodeToString(a[:])
	return h[:26] + "." + h[26:38] + "." + h[38:]
}

// ParseAESA parses 40 hex digits, ignoring dots.
func ParseAESA(s string) (AESA, error) {
	var a AESA
	raw, err := hex.DecodeString(strings.ReplaceAll(s, ".", ""))
	if err != nil || len(raw) != AESALen {
		return a, errors.New("uni: an AESA is 40 hex digits")
	}
	copy(a[:], raw)
	return a, nil
}

// CalledPartyNumber is the Called Party Number IE (0x70).
type CalledPartyNumber struct {
	Instruction IEInstruction
	Type        uint8  // type of number (3 bits)
	Plan        uint8  // numbering plan (4 bits)
	Address     []byte // 20 octets for PlanAESA, IA5 digits for PlanE164
}

// CalledAESA returns a Called Party Number carrying an AESA.
func CalledAESA(a AESA) *CalledPartyNumber {
	return &CalledPartyNumber{Type: NumberUnknown, Plan: PlanAESA, Address: append([]byte(nil), a[:]...)}
}

// AESA returns the address when the number is an AESA.
func (c *CalledPartyNumber) AESA() (AESA, bool) { return toAESA(c.Plan, c.Address) }

func toAESA(plan uint8, addr []byte) (AESA, bool) {
	var a AESA
	if plan != PlanAESA || len(addr) != AESALen {
		return a, false
	}
	copy(a[:], addr)
	return a, true
}

func checkNumber(id IEID, typ, plan uint8, addr []byte) error {
	if typ > 7 || plan > 15 {
		return encodeErr(id, "type of number or numbering plan out of range")
	}
	if plan == PlanAESA && addr != nil && len(addr) != AESALen {
		return encodeErr(id, "an AESA is 20 octets")
	}
	return nil
}

func (c *CalledPartyNumber) appendContents(b []byte) ([]byte, error) {
	if err := checkNumber(IECalledParty, c.Type, c.Plan, c.Address); err != nil {
		return b, err
	}
	if len(c.Address) == 0 {
		return b, encodeErr(IECalledParty, "no address")
	}
	b = append(b, 0x80|c.Type<<4|c.Plan)
	return append(b, c.Address...), nil
}

func (c *CalledPartyNumber) decode(p []byte) bool {
	if len(p) < 2 || p[0]&0x80 == 0 {
		return false
	}
	c.Type, c.Plan = p[0]>>4&7, p[0]&0x0f
	c.Address = p[1:]
	return c.Plan != PlanAESA || len(c.Address) == AESALen
}

// CallingPartyNumber is the Calling Party Number IE (0x6c). Octet 5a
// (presentation and screening indicators) is sent when HasIndicators.
type CallingPartyNumber struct {
	Instruction   IEInstruction
	Type          uint8
	Plan          uint8
	HasIndicators bool
	Presentation  uint8 // 2 bits
	Screening     uint8 // 2 bits
	Address       []byte
}

// CallingAESA returns a Calling Party Number carrying an AESA, user
// provided and not screened.
func CallingAESA(a AESA) *CallingPartyNumber {
	return &CallingPartyNumber{Type: NumberUnknown, Plan: PlanAESA, Address: append([]byte(nil), a[:]...)}
}

// AESA returns the address when the number is an AESA.
func (c *CallingPartyNumber) AESA() (AESA, bool) { return toAESA(c.Plan, c.Address) }

func (c *CallingPartyNumber) appendContents(b []byte) ([]byte, error) {
	if err := checkNumber(IECallingParty, c.Type, c.Plan, c.Address); err != nil {
		return b, err
	}
	if c.Presentation > 3 || c.Screening > 3 {
		return b, encodeErr(IECallingParty, "presentation or screening indicator out of range")
	}
	if c.HasIndicators {
		b = append(b, c.Type<<4|c.Plan, 0x80|c.Presentation<<5|c.Screening)
	} else {
		if c.Presentation != 0 || c.Screening != 0 {
			return b, encodeErr(IECallingParty, "indicators set without octet 5a")
		}
		b = append(b, 0x80|c.Type<<4|c.Plan)
	}
	return append(b, c.Address...), nil
}

func (c *CallingPartyNumber) decode(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	c.Type, c.Plan = p[0]>>4&7, p[0]&0x0f
	if p[0]&0x80 == 0 {
		if len(p) < 2 || p[1]&0x80 == 0 {
			return false
		}
		c.HasIndicators = true
		c.Presentation, c.Screening = p[1]>>5&3, p[1]&3
		p = p[2:]
	} else {
		p = p[1:]
	}
	// The address may be absent when the number is not available.
	c.Address = nilIfEmpty(p)
	return c.Plan != PlanAESA || c.Address == nil || len(c.Address) == AESALen
}

// High layer information types (BHLI octet 5).
const (
	HLISO            = 0x00 // ISO/IEC
	HLUserSpecific   = 0x01 // user specific: condis puts the service name here
	HLProfile        = 0x02 // high layer profile (UNI 3.0 only)
	HLVendorSpecific = 0x03 // vendor-specific application identifier (OUI + 4-octet id)
	// MaxBHLIInfo is the longest high layer information field.
	MaxBHLIInfo = 8
)

// BHLI is the Broadband High Layer Information IE (0x5d).
type BHLI struct {
	Instruction IEInstruction
	Type        uint8  // 7 bits
	Info        []byte // at most 8 octets; nil when empty
}

// ServiceBHLI returns a user-specific BHLI carrying a condis service name
// (1 to 8 octets).
func ServiceBHLI(name string) (*BHLI, error) {
	if len(name) == 0 || len(name) > MaxBHLIInfo {
		return nil, errors.New("uni: a service name is 1 to 8 octets")
	}
	return &BHLI{Type: HLUserSpecific, Info: []byte(name)}, nil
}

// ServiceName returns the condis service name a user-specific BHLI carries.
func (h *BHLI) ServiceName() (string, bool) {
	if h.Type != HLUserSpecific || len(h.Info) == 0 {
		return "", false
	}
	return string(h.Info), true
}

func (h *BHLI) appendContents(b []byte) ([]byte, error) {
	if h.Type > 0x7f || len(h.Info) > MaxBHLIInfo {
		return b, encodeErr(IEBHLI, "type out of range or information longer than 8 octets")
	}
	b = append(b, 0x80|h.Type)
	return append(b, h.Info...), nil
}

func (h *BHLI) decode(p []byte) bool {
	if len(p) < 1 || len(p) > 1+MaxBHLIInfo || p[0]&0x80 == 0 {
		return false
	}
	h.Type = p[0] & 0x7f
	h.Info = nilIfEmpty(p[1:])
	return true
}

// Layer 2 protocols (BLLI octet 7).
const (
	L2ISO1745      = 0x01
	L2Q921         = 0x02
	L2X25Link      = 0x06
	L2X25Multilink = 0x07
	L2LAPB         = 0x08
	L2HDLCARM      = 0x09
	L2HDLCNRM      = 0x0a
	L2HDLCABM      = 0x0b
	L2LLC          = 0x0c // ISO 8802/2 LLC: RFC 2684 LLC encapsulation
	L2X75          = 0x0d
	L2Q922         = 0x0e
	L2UserSpecific = 0x10
	L2ISO7776      = 0x11
)

// Layer 3 protocols (BLLI octet 8).
const (
	L3X25          = 0x06
	L3ISO8208      = 0x07
	L3X223         = 0x08
	L3ISO8473      = 0x09
	L3T70          = 0x0a
	L3TR9577       = 0x0b // ISO/IEC TR 9577: octets 8a-8b carry an IPI
	L3UserSpecific = 0x10
	// IPISNAP is the TR 9577 initial protocol identifier announcing SNAP
	// (OUI + PID) in octets 8.1-8.6.
	IPISNAP = 0x80
)

// ExtOctets holds the extension octets that follow a BLLI layer octet
// (7a-7b, 8a-8c), as 7-bit payloads without their extension bits.
type ExtOctets struct {
	Len    uint8
	Octets [3]uint8
}

// Ext builds ExtOctets from 7-bit payloads (at most three).
func Ext(o ...uint8) ExtOctets {
	var e ExtOctets
	e.Len = uint8(copy(e.Octets[:], o))
	return e
}

// BLLI is the Broadband Low Layer Information IE (0x5f). Each layer is
// absent when its protocol is 0. The extension octets are kept as 7-bit
// payloads: for user-specified layer 2/3 protocols octet 7a/8a is the
// user-specified information; for TR 9577 octets 8a-8b carry the IPI.
type BLLI struct {
	Instruction IEInstruction
	L1          uint8 // user information layer 1 protocol (5 bits), octet 6
	L2          uint8 // user information layer 2 protocol (5 bits), octet 7
	L2Ext       ExtOctets
	L3          uint8 // user information layer 3 protocol (5 bits), octet 8
	L3Ext       ExtOctets
	// HasSNAP is set when L3 is TR 9577 with IPI SNAP: octets 8.1-8.6
	// carry the OUI and PID.
	HasSNAP bool
	OUI     [3]byte
	PID     uint16
}

// UserL2 returns a BLLI with a user-specified layer 2 protocol whose 7-bit
// user information is info.
func UserL2(info uint8) BLLI { return BLLI{L2: L2UserSpecific, L2Ext: Ext(info & 0x7f)} }

// IPI returns the TR 9577 initial protocol identifier when layer 3 is TR 9577.
func (l *BLLI) IPI() (uint8, bool) {
	if l.L3 != L3TR9577 || l.L3Ext.Len != 2 {
		return 0, false
	}
	return l.L3Ext.Octets[0]<<1 | l.L3Ext.Octets[1]>>6&1, true
}

// SetIPI sets layer 3 to TR 9577 with the given IPI.
func (l *BLLI) SetIPI(ipi uint8) {
	l.L3 = L3TR9577
	l.L3Ext = Ext(ipi>>1, (ipi&1)<<6)
}

func appendLayer(b []byte, layer, proto uint8, ext ExtOctets, maxExt uint8) ([]byte, error) {
	if proto > 0x1f || ext.Len > maxExt {
		return b, encodeErr(IEBLLI, "protocol or extension octets out of range")
	}
	o := layer<<5 | proto
	if ext.Len == 0 {
		o |= 0x80
	}
	b = append(b, o)
	for i := uint8(0); i < ext.Len; i++ {
		e := ext.Octets[i]
		if e > 0x7f {
			return b, encodeErr(IEBLLI, "extension octet payload does not fit in 7 bits")
		}
		if i == ext.Len-1 {
			e |= 0x80
		}
		b = append(b, e)
	}
	return b, nil
}

func (l *BLLI) appendContents(b []byte) ([]byte, error) {
	if l.L1 == 0 && l.L2 == 0 && l.L3 == 0 {
		return b, encodeErr(IEBLLI, "no layer present")
	}
	var err error
	if l.L1 != 0 {
		if b, err = appendLayer(b, 1, l.L1, ExtOctets{}, 0); err != nil {
			return b, err
		}
	}
	if l.L2 != 0 {
		if b, err = appendLayer(b, 2, l.L2, l.L2Ext, 2); err != nil {
			return b, err
		}
	} else if l.L2Ext.Len != 0 {
		return b, encodeErr(IEBLLI, "layer 2 extension octets without layer 2")
	}
	if l.L3 != 0 {
		if b, err = appendLayer(b, 3, l.L3, l.L3Ext, 3); err != nil {
			return b, err
		}
	} else if l.L3Ext.Len != 0 {
		return b, encodeErr(IEBLLI, "layer 3 extension octets without layer 3")
	}
	ipi, ok := l.IPI()
	if (ok && ipi == IPISNAP) != l.HasSNAP {
		return b, encodeErr(IEBLLI, "SNAP octets go with TR 9577 IPI SNAP and nothing else")
	}
	if l.HasSNAP {
		b = append(b, 0x80, l.OUI[0], l.OUI[1], l.OUI[2], byte(l.PID>>8), byte(l.PID))
	}
	return b, nil
}

func (l *BLLI) decode(p []byte) bool {
	last := uint8(0)
	for len(p) > 0 {
		o := p[0]
		layer, proto := o>>5&3, o&0x1f
		// Layers appear once each, in order, and name a protocol.
		if layer <= last || proto == 0 {
			return false
		}
		last = layer
		p = p[1:]
		var ext ExtOctets
		maxExt := [4]uint8{0, 0, 2, 3}[layer]
		for more := o&0x80 == 0; more; {
			if len(p) == 0 || ext.Len == maxExt {
				return false
			}
			ext.Octets[ext.Len] = p[0] & 0x7f
			ext.Len++
			more = p[0]&0x80 == 0
			p = p[1:]
		}
		switch layer {
		case 1:
			l.L1 = proto
		case 2:
			l.L2, l.L2Ext = proto, ext
		case 3:
			l.L3, l.L3Ext = proto, ext
			if ipi, ok := l.IPI(); ok && ipi == IPISNAP {
				if len(p) < 6 || p[0] != 0x80 {
					return false
				}
				l.HasSNAP = true
				copy(l.OUI[:], p[1:4])
				l.PID = uint16(p[4])<<8 | uint16(p[5])
				p = p[6:]
			}
		}
	}
	return last != 0
}

// RepeatIndicator is the Broadband Repeat Indicator IE (0x63), sent before
// a list of BLLI IEs.
type RepeatIndicator struct {
	Instruction IEInstruction
	Indication  uint8 // 4 bits; RepeatPrioritized
}

// RepeatPrioritized marks a prioritised list, most preferred first.
const RepeatPrioritized = 0x02

func (r *RepeatIndicator) appendContents(b []byte) ([]byte, error) {
	if r.Indication > 0x0f {
		return b, encodeErr(IERepeat, "indication does not fit in 4 bits")
	}
	return append(b, 0x80|r.Indication), nil
}

func (r *RepeatIndicator) decode(p []byte) bool {
	if len(p) != 1 || p[0]&0x80 == 0 {
		return false
	}
	r.Indication = p[0] & 0x0f
	return true
}

// SendingComplete is the Broadband Sending Complete IE (0x62): the called
// number in the message is complete.
type SendingComplete struct {
	Instruction IEInstruction
}

const sendingCompleteIndication = 0xa1

func (s *SendingComplete) appendContents(b []byte) ([]byte, error) {
	return append(b, sendingCompleteIndication), nil
}

func (s *SendingComplete) decode(p []byte) bool {
	return len(p) == 1 && p[0] == sendingCompleteIndication
}

// Restart classes (Restart Indicator octet 5, 3 bits).
const (
	RestartIndicatedVC = 0 // the VC named by the Connection Identifier IE
	RestartAllVCs      = 2 // all VCs controlled by the sending layer 3 entity
)

// RestartIndicator is the Restart Indicator IE (0x79).
type RestartIndicator struct {
	Instruction IEInstruction
	Class       uint8
}

func (r *RestartIndicator) appendContents(b []byte) ([]byte, error) {
	if r.Class > 7 {
		return b, encodeErr(IERestartIndicator, "class does not fit in 3 bits")
	}
	return append(b, 0x80|r.Class), nil
}

func (r *RestartIndicator) decode(p []byte) bool {
	if len(p) != 1 || p[0]&0x80 == 0 {
		return false
	}
	r.Class = p[0] & 7
	return true
}

// VP-associated signalling and preferred/exclusive codes (Connection
// Identifier octet 5).
const (
	VPAssociated   = 0 // VP-associated signalling
	VPExplicit     = 1 // explicit indication of VPCI (what UNI 3.1 uses)
	ExclusiveVCI   = 0 // exclusive VPCI, exclusive VCI
	ExclusiveAnyVC = 1 // exclusive VPCI, any VCI
)

// ConnectionID is the Connection Identifier IE (0x5a): the VPCI/VCI of the
// call's virtual channel.
type ConnectionID struct {
	Instruction  IEInstruction
	VPAssociated uint8 // 2 bits: VPAssociated or VPExplicit
	Exclusive    uint8 // 3 bits: ExclusiveVCI or ExclusiveAnyVC
	VPCI         uint16
	VCI          uint16
}

func (c *ConnectionID) appendContents(b []byte) ([]byte, error) {
	if c.VPAssociated > 3 || c.Exclusive > 7 {
		return b, encodeErr(IEConnectionID, "field out of range")
	}
	return append(b, 0x80|c.VPAssociated<<3|c.Exclusive,
		byte(c.VPCI>>8), byte(c.VPCI), byte(c.VCI>>8), byte(c.VCI)), nil
}

func (c *ConnectionID) decode(p []byte) bool {
	if len(p) != 5 || p[0]&0x80 == 0 {
		return false
	}
	c.VPAssociated, c.Exclusive = p[0]>>3&3, p[0]&7
	c.VPCI = uint16(p[1])<<8 | uint16(p[2])
	c.VCI = uint16(p[3])<<8 | uint16(p[4])
	return true
}

// ReportType is the Broadband Report Type IE (0x89) of Q.2963.1: a MODIFY
// ACKNOWLEDGE carrying it asks the requester to confirm the modification
// with CONNECTION AVAILABLE.
type ReportType struct {
	Instruction IEInstruction
	Type        uint8 // 3 bits; ReportModificationConfirmation
}

// ReportModificationConfirmation asks for a modification confirmation.
const ReportModificationConfirmation = 0x01

func (r *ReportType) appendContents(b []byte) ([]byte, error) {
	if r.Type > 7 {
		return b, encodeErr(IEReportType, "type of report does not fit in 3 bits")
	}
	return append(b, 0x80|r.Type), nil
}

func (r *ReportType) decode(p []byte) bool {
	if len(p) != 1 || p[0]&0x80 == 0 {
		return false
	}
	r.Type = p[0] & 7
	return true
}

func nilIfEmpty(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	return p
}

// itoa formats numbers in error details.
func itoa(v int) string { return strconv.Itoa(v) }
