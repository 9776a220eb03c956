package uni

import "strconv"

// CallState is the value of the Call State IE (6 bits): the user-side call
// states U0…U12 of Q.2931 §2 and the restart states carried with the
// global call reference.
type CallState uint8

// Call states. U2, U4, U5 and U7 do not exist in UNI 3.1.
const (
	StateNull                   CallState = 0  // U0
	StateCallInitiated          CallState = 1  // U1: SETUP sent
	StateOutgoingCallProceeding CallState = 3  // U3: CALL PROCEEDING received
	StateCallDelivered          CallState = 4  // U4: ALERTING received (UNI 4.0)
	StateCallPresent            CallState = 6  // U6: SETUP received
	StateCallReceived           CallState = 7  // U7: ALERTING sent (UNI 4.0)
	StateConnectRequest         CallState = 8  // U8: CONNECT sent
	StateIncomingCallProceeding CallState = 9  // U9: CALL PROCEEDING sent
	StateActive                 CallState = 10 // U10
	StateReleaseRequest         CallState = 11 // U11: RELEASE sent
	StateReleaseIndication      CallState = 12 // U12: RELEASE received
	StateRestartRequest         CallState = 61 // Rest1: RESTART sent (global call reference)
	StateRestart                CallState = 62 // Rest2: RESTART received (global call reference)
	maxCallState                CallState = 63
)

var callStateNames = map[CallState]string{
	StateNull:                   "U0 null",
	StateCallInitiated:          "U1 call initiated",
	StateOutgoingCallProceeding: "U3 outgoing call proceeding",
	StateCallDelivered:          "U4 call delivered",
	StateCallPresent:            "U6 call present",
	StateCallReceived:           "U7 call received",
	StateConnectRequest:         "U8 connect request",
	StateIncomingCallProceeding: "U9 incoming call proceeding",
	StateActive:                 "U10 active",
	StateReleaseRequest:         "U11 release request",
	StateReleaseIndication:      "U12 release indication",
	StateRestartRequest:         "Rest1 restart request",
	StateRestart:                "Rest2 restart",
}

// String names the state.
func (s CallState) String() string {
	if n, ok := callStateNames[s]; ok {
		return n
	}
	return "call state " + strconv.Itoa(int(s))
}

// PartyState is the value of the Endpoint State IE (6 bits): the party
// states of a point-to-multipoint leaf.
type PartyState uint8

// Party states (UNI 3.1 §5.6 / Q.2971 numbering).
const (
	PartyNull               PartyState = 0  // P0
	PartyAddPartyInitiated  PartyState = 1  // P1: ADD PARTY / SETUP sent
	PartyAddPartyReceived   PartyState = 6  // P6: ADD PARTY / SETUP received
	PartyActive             PartyState = 10 // P7 in Q.2971's naming
	PartyDropPartyInitiated PartyState = 11 // DROP PARTY sent
	PartyDropPartyReceived  PartyState = 12 // DROP PARTY received
	maxPartyState           PartyState = 63
)

var partyStateNames = map[PartyState]string{
	PartyNull:               "null",
	PartyAddPartyInitiated:  "add party initiated",
	PartyAddPartyReceived:   "add party received",
	PartyActive:             "active",
	PartyDropPartyInitiated: "drop party initiated",
	PartyDropPartyReceived:  "drop party received",
}

// String names the party state.
func (s PartyState) String() string {
	if n, ok := partyStateNames[s]; ok {
		return n
	}
	return "party state " + strconv.Itoa(int(s))
}

// CallStateIE is the Call State information element (identifier 0x14).
type CallStateIE struct {
	Instruction IEInstruction
	State       CallState
}

func (c *CallStateIE) appendContents(b []byte) ([]byte, error) {
	if c.State > maxCallState {
		return b, encodeErr(IECallState, "state does not fit in 6 bits")
	}
	return append(b, byte(c.State)), nil
}

func (c *CallStateIE) decode(p []byte) bool {
	if len(p) != 1 {
		return false
	}
	c.State = CallState(p[0] & 0x3f)
	return true
}

// EndpointStateIE is the Endpoint State information element (identifier
// 0x55).
type EndpointStateIE struct {
	Instruction IEInstruction
	State       PartyState
}

func (e *EndpointStateIE) appendContents(b []byte) ([]byte, error) {
	if e.State > maxPartyState {
		return b, encodeErr(IEEndpointState, "state does not fit in 6 bits")
	}
	return append(b, byte(e.State)), nil
}

func (e *EndpointStateIE) decode(p []byte) bool {
	if len(p) != 1 {
		return false
	}
	e.State = PartyState(p[0] & 0x3f)
	return true
}
