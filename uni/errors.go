package uni

import (
	"fmt"
	"strconv"
)

// Action is what the Q.2931 error procedures (§5.6) tell the receiver of a
// faulty message or information element to do.
type Action uint8

// Actions. The zero value is not an action.
const (
	// ActionIgnore: discard the message silently, no state change.
	ActionIgnore Action = iota + 1
	// ActionReportStatus: discard the message, no state change, answer
	// STATUS with the cause (and the current call state).
	ActionReportStatus
	// ActionReject: refuse what the message asked for with the cause:
	// RELEASE COMPLETE to a SETUP or RELEASE, ADD PARTY REJECT to an ADD
	// PARTY, MODIFY REJECT to a MODIFY REQUEST, STATUS otherwise.
	ActionReject
	// ActionClearCall: clear the call with the cause (RELEASE; RELEASE
	// COMPLETE when the message was a SETUP). Asked for by an explicit
	// "clear call" instruction.
	ActionClearCall
	// ActionDiscardIE: drop the information element and process the rest
	// of the message (IE-level only).
	ActionDiscardIE
	// ActionDiscardIEReportStatus: drop the information element, process
	// the message, and send STATUS with the cause (IE-level only). This is
	// the regular handling of unrecognised and bad optional IEs.
	ActionDiscardIEReportStatus
)

var actionNames = [...]string{
	ActionIgnore:                "ignore message",
	ActionReportStatus:          "discard message and report status",
	ActionReject:                "reject",
	ActionClearCall:             "clear call",
	ActionDiscardIE:             "discard IE and proceed",
	ActionDiscardIEReportStatus: "discard IE, proceed and report status",
}

// String names the action.
func (a Action) String() string {
	if int(a) < len(actionNames) && actionNames[a] != "" {
		return actionNames[a]
	}
	return "action " + strconv.Itoa(int(a))
}

// DecodeError reports a message that must not be processed as received.
// Cause is the Q.2931 cause the procedures prescribe for the reply (or the
// reason the message is ignored) and Action says what to do with it.
//
// When HeaderOK is true the header was well formed and CallRef, Type and
// Instruction are valid, so the state machine can address its STATUS or
// RELEASE COMPLETE. IE is the offending information element (0 if none),
// the diagnostic for causes 96, 99 and 100.
type DecodeError struct {
	Cause       Cause
	Action      Action
	HeaderOK    bool
	CallRef     CallRef
	Type        MsgType
	Instruction MsgInstruction
	IE          IEID
	// EndpointRef is the message's Endpoint Reference when it decoded
	// although another mandatory IE was missing or invalid (nil
	// otherwise), so an ADD PARTY can be refused with ADD PARTY REJECT.
	EndpointRef *EndpointReference
	Offset      int    // octet offset of the fault in the message
	Reason      string // human-readable detail
}

// Error describes the fault, its cause and the prescribed action.
func (e *DecodeError) Error() string {
	s := "uni: decode"
	if e.HeaderOK {
		s += " " + e.Type.String() + " " + e.CallRef.String()
	}
	s += ": " + e.Reason
	if e.IE != 0 {
		s += " (IE " + e.IE.String() + ")"
	}
	return s + " at octet " + strconv.Itoa(e.Offset) + ": cause " + e.Cause.String() + ", " + e.Action.String()
}

// Diagnostic returns the diagnostic octets Q.2931 puts in the Cause IE of
// the reply: the IE identifier for causes 96, 99 and 100, the message type
// for 97, nothing otherwise.
func (e *DecodeError) Diagnostic() []byte {
	switch e.Cause {
	case CauseMandatoryIEMissing, CauseIEUnknown, CauseInvalidIEContents:
		if e.IE != 0 {
			return []byte{byte(e.IE)}
		}
	case CauseMessageTypeUnknown:
		if e.HeaderOK {
			return []byte{byte(e.Type)}
		}
	}
	return nil
}

// EncodeError reports a Message that cannot be put on the wire: a field out
// of its range, an IE the message type does not carry, a mandatory IE
// missing, or a message longer than 65535 octets.
type EncodeError struct {
	Type   MsgType
	IE     IEID // 0 when the fault is in the header
	Reason string
}

// Error describes the fault.
func (e *EncodeError) Error() string {
	if e.IE != 0 {
		return fmt.Sprintf("uni: encode %v: IE %v: %s", e.Type, e.IE, e.Reason)
	}
	return fmt.Sprintf("uni: encode %v: %s", e.Type, e.Reason)
}

// encodeErr builds an EncodeError for an IE; Message.Append fills in the
// message type.
func encodeErr(ie IEID, reason string) *EncodeError {
	return &EncodeError{IE: ie, Reason: reason}
}
