package uni

import "strconv"

// Cause is a Q.2931 / UNI 3.1 cause value (Cause IE octet 6, 7 bits).
type Cause uint8

// Cause values of Q.2931 and UNI 3.1 (field-notes §5.4). Where UNI 3.0 and
// 3.1 differ both codes are listed; condis emits the UNI 3.1 ones.
const (
	CauseUnallocatedNumber       Cause = 1   // unallocated (unassigned) number
	CauseNoRouteToTransitNetwork Cause = 2   // no route to specified transit network
	CauseNoRouteToDestination    Cause = 3   // no route to destination
	CauseVPCIVCIUnacceptable     Cause = 10  // VPCI/VCI unacceptable (UNI 3.0)
	CauseNormalCallClearing      Cause = 16  // normal call clearing (UNI 3.1)
	CauseUserBusy                Cause = 17  // user busy
	CauseNoUserResponding        Cause = 18  // no user responding
	CauseCallRejected            Cause = 21  // call rejected
	CauseNumberChanged           Cause = 22  // number changed
	CauseRejectsCLIR             Cause = 23  // user rejects all calls with calling line identification restriction
	CauseDestinationOutOfOrder   Cause = 27  // destination out of order
	CauseInvalidNumberFormat     Cause = 28  // invalid number format (address incomplete)
	CauseResponseToStatusEnquiry Cause = 30  // response to STATUS ENQUIRY
	CauseNormalUnspecified       Cause = 31  // normal, unspecified (UNI 3.0 normal clearing)
	CauseVPCIVCIUnavailable      Cause = 35  // requested VPCI/VCI not available
	CauseVPCIVCIAssignFailure    Cause = 36  // VPCI/VCI assignment failure
	CauseCellRateUnavailable     Cause = 37  // user cell rate not available (UNI 3.1)
	CauseNetworkOutOfOrder       Cause = 38  // network out of order
	CauseTemporaryFailure        Cause = 41  // temporary failure
	CauseAccessInfoDiscarded     Cause = 43  // access information discarded
	CauseNoVPCIVCIAvailable      Cause = 45  // no VPCI/VCI available
	CauseResourceUnavailable     Cause = 47  // resource unavailable, unspecified
	CauseQoSUnavailable          Cause = 49  // quality of service unavailable
	CauseCellRateUnavailable30   Cause = 51  // user cell rate not available (UNI 3.0)
	CauseBearerNotAuthorized     Cause = 57  // bearer capability not authorized
	CauseBearerNotAvailable      Cause = 58  // bearer capability not presently available
	CauseServiceUnavailable      Cause = 63  // service or option not available, unspecified
	CauseBearerNotImplemented    Cause = 65  // bearer capability not implemented
	CauseUnsupportedTraffic      Cause = 73  // unsupported combination of traffic parameters
	CauseAALUnsupported          Cause = 78  // AAL parameters cannot be supported (UNI 3.1)
	CauseInvalidCallRef          Cause = 81  // invalid call reference value
	CauseNoSuchChannel           Cause = 82  // identified channel does not exist
	CauseIncompatibleDestination Cause = 88  // incompatible destination
	CauseInvalidEndpointRef      Cause = 89  // invalid endpoint reference
	CauseInvalidTransitNetwork   Cause = 91  // invalid transit network selection
	CauseTooManyAddParty         Cause = 92  // too many pending add party requests
	CauseAALUnsupported30        Cause = 93  // AAL parameters cannot be supported (UNI 3.0)
	CauseMandatoryIEMissing      Cause = 96  // mandatory information element is missing
	CauseMessageTypeUnknown      Cause = 97  // message type non-existent or not implemented
	CauseIEUnknown               Cause = 99  // information element non-existent or not implemented
	CauseInvalidIEContents       Cause = 100 // invalid information element contents
	CauseMessageIncompatible     Cause = 101 // message not compatible with call state
	CauseTimerExpiry             Cause = 102 // recovery on timer expiry
	CauseIncorrectLength         Cause = 104 // incorrect message length
	CauseProtocolError           Cause = 111 // protocol error, unspecified
)

var causeNames = map[Cause]string{
	CauseUnallocatedNumber:       "unallocated number",
	CauseNoRouteToTransitNetwork: "no route to specified transit network",
	CauseNoRouteToDestination:    "no route to destination",
	CauseVPCIVCIUnacceptable:     "VPCI/VCI unacceptable",
	CauseNormalCallClearing:      "normal call clearing",
	CauseUserBusy:                "user busy",
	CauseNoUserResponding:        "no user responding",
	CauseCallRejected:            "call rejected",
	CauseNumberChanged:           "number changed",
	CauseRejectsCLIR:             "user rejects calls with CLIR",
	CauseDestinationOutOfOrder:   "destination out of order",
	CauseInvalidNumberFormat:     "invalid number format",
	CauseResponseToStatusEnquiry: "response to STATUS ENQUIRY",
	CauseNormalUnspecified:       "normal, unspecified",
	CauseVPCIVCIUnavailable:      "requested VPCI/VCI not available",
	CauseVPCIVCIAssignFailure:    "VPCI/VCI assignment failure",
	CauseCellRateUnavailable:     "user cell rate not available",
	CauseNetworkOutOfOrder:       "network out of order",
	CauseTemporaryFailure:        "temporary failure",
	CauseAccessInfoDiscarded:     "access information discarded",
	CauseNoVPCIVCIAvailable:      "no VPCI/VCI available",
	CauseResourceUnavailable:     "resource unavailable, unspecified",
	CauseQoSUnavailable:          "quality of service unavailable",
	CauseCellRateUnavailable30:   "user cell rate not available (UNI 3.0)",
	CauseBearerNotAuthorized:     "bearer capability not authorized",
	CauseBearerNotAvailable:      "bearer capability not presently available",
	CauseServiceUnavailable:      "service or option not available, unspecified",
	CauseBearerNotImplemented:    "bearer capability not implemented",
	CauseUnsupportedTraffic:      "unsupported combination of traffic parameters",
	CauseAALUnsupported:          "AAL parameters cannot be supported",
	CauseInvalidCallRef:          "invalid call reference value",
	CauseNoSuchChannel:           "identified channel does not exist",
	CauseIncompatibleDestination: "incompatible destination",
	CauseInvalidEndpointRef:      "invalid endpoint reference",
	CauseInvalidTransitNetwork:   "invalid transit network selection",
	CauseTooManyAddParty:         "too many pending add party requests",
	CauseAALUnsupported30:        "AAL parameters cannot be supported (UNI 3.0)",
	CauseMandatoryIEMissing:      "mandatory information element is missing",
	CauseMessageTypeUnknown:      "message type non-existent or not implemented",
	CauseIEUnknown:               "information element non-existent or not implemented",
	CauseInvalidIEContents:       "invalid information element contents",
	CauseMessageIncompatible:     "message not compatible with call state",
	CauseTimerExpiry:             "recovery on timer expiry",
	CauseIncorrectLength:         "incorrect message length",
	CauseProtocolError:           "protocol error, unspecified",
}

// Named reports whether c is one of the causes this package names
// (field-notes §5.4): those String spells out.
func (c Cause) Named() bool {
	_, ok := causeNames[c]
	return ok
}

// String returns the Q.2931 name of the cause followed by its number.
func (c Cause) String() string { return causeStrings[c] }

// causeStrings holds String of every Cause, made once: traces and logs
// format a cause for most calls that end, which would otherwise allocate
// each time.
var causeStrings = func() (s [256]string) {
	for i := range s {
		c := Cause(i)
		if n, ok := causeNames[c]; ok {
			s[i] = n + " (" + strconv.Itoa(i) + ")"
		} else {
			s[i] = "cause " + strconv.Itoa(i)
		}
	}
	return s
}()

// Location is the Cause IE location field (octet 5, 4 bits): where the
// cause was generated.
type Location uint8

// Location values of Q.2931.
const (
	LocUser               Location = 0  // user
	LocPrivateLocal       Location = 1  // private network serving the local user
	LocPublicLocal        Location = 2  // public network serving the local user
	LocTransit            Location = 3  // transit network
	LocPublicRemote       Location = 4  // public network serving the remote user
	LocPrivateRemote      Location = 5  // private network serving the remote user
	LocInternational      Location = 7  // international network
	LocBeyondInterworking Location = 10 // network beyond interworking point
)

// MaxCauseValue is the largest cause value: the field has 7 bits.
const MaxCauseValue Cause = 127

const (
	maxLocation Location = 15
	// The Cause IE carries at most 34 content octets (the bound FreeBSD's
	// libunimsg enforces for Q.2931): location, cause value, 32 diagnostic octets.
	causeIEContentsMaxLength = 34
	maxDiagnosticLen         = causeIEContentsMaxLength - 2
)

var locationNames = [...]string{
	LocUser:               "user",
	LocPrivateLocal:       "private network serving the local user",
	LocPublicLocal:        "public network serving the local user",
	LocTransit:            "transit network",
	LocPublicRemote:       "public network serving the remote user",
	LocPrivateRemote:      "private network serving the remote user",
	LocInternational:      "international network",
	LocBeyondInterworking: "network beyond interworking point",
}

// String names the location.
func (l Location) String() string {
	if int(l) < len(locationNames) && locationNames[l] != "" {
		return locationNames[l]
	}
	return "location " + strconv.Itoa(int(l))
}

// CauseIE is the Cause information element (identifier 0x08).
//
// The coding standard of Instruction must be the one that defines Value
// (Cause.CodingStandard; NewCause sets it): Append refuses any other. The
// decoder accepts a cause in either ITU-T or ATM Forum-specific coding and
// reports it with the coding standard that defines its value, so a decoded
// cause always encodes; the ISO and national coding standards define no
// cause values UNI 3.1 knows and are invalid contents (cause 100).
//
// Diagnostic holds the diagnostic octets verbatim (nil when absent); their
// meaning depends on the cause: IE identifiers for 96/99/100, a message
// type for 97/101, three IA5 timer digits for 102.
type CauseIE struct {
	Instruction IEInstruction
	Location    Location
	Value       Cause
	Diagnostic  []byte
}

// CodingStandard returns the coding standard that defines the cause value,
// the one its Cause IE is coded with (IE instruction bits 7-6). ITU-T's
// Q.850 / Q.2610 / Q.2971 define most values; CodingNetwork ("ATM Forum
// specific" in UNI 3.1) marks the values only the ATM Forum defines, or
// defines differently:
//
//	10  VPCI/VCI unacceptable (UNI 3.0; unassigned in Q.850)
//	23  user rejects all calls with CLIR (Q.850's 23 is "redirection to new destination")
//	51  user cell rate not available (UNI 3.0; unassigned in Q.850)
//	78  AAL parameters cannot be supported (UNI 3.1; ITU-T's is 93)
//	92  too many pending add party requests (UNI 3.1; Q.2971's is 32)
//	104 incorrect message length (UNI 3.1; unassigned in Q.850)
//
// Every other value, assigned or not, is ITU-T coded.
func (c Cause) CodingStandard() uint8 {
	switch c {
	case CauseVPCIVCIUnacceptable, CauseRejectsCLIR, CauseCellRateUnavailable30,
		CauseAALUnsupported, CauseTooManyAddParty, CauseIncorrectLength:
		return CodingNetwork
	}
	return CodingITU
}

// NewCause returns a Cause IE generated by the user side, the location an
// end system puts in every cause it sends, coded with the coding standard
// that defines v (Cause.CodingStandard).
func NewCause(v Cause, diagnostic ...byte) CauseIE {
	c := CauseIE{Instruction: NewIEInstruction(v.CodingStandard(), false, 0), Location: LocUser, Value: v}
	if len(diagnostic) > 0 {
		c.Diagnostic = diagnostic
	}
	return c
}

func (c *CauseIE) appendContents(b []byte) ([]byte, error) {
	if c.Location > maxLocation {
		return b, encodeErr(IECause, "location does not fit in 4 bits")
	}
	if c.Value > MaxCauseValue {
		return b, encodeErr(IECause, "cause value does not fit in 7 bits")
	}
	if len(c.Diagnostic) > maxDiagnosticLen {
		return b, encodeErr(IECause, "diagnostic longer than 32 octets")
	}
	if cs := c.Value.CodingStandard(); c.Instruction.CodingStandard() != cs {
		return b, encodeErr(IECause, "cause "+itoa(int(c.Value))+" is coded with coding standard "+itoa(int(cs))+
			" ("+codingNames[cs]+"), the one that defines it")
	}
	b = append(b, 0x80|byte(c.Location), 0x80|byte(c.Value))
	return append(b, c.Diagnostic...), nil
}

func (c *CauseIE) decode(p []byte) bool {
	// Octets 5 and 6 both end their group: a clear extension bit would
	// announce the Q.850 recommendation octet, which Q.2931 does not have.
	if len(p) < 2 || len(p) > causeIEContentsMaxLength || p[0]&0x80 == 0 || p[1]&0x80 == 0 {
		return false
	}
	c.Location = Location(p[0] & 0x0f)
	c.Value = Cause(p[1] & 0x7f)
	c.Diagnostic = nilIfEmpty(p[2:])
	return true
}
