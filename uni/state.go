package uni

import "strconv"

// CallState is the value of the Call State IE (6 bits): the user-side call
// states U0…U12 of Q.2931 §2 and the restart states carried with the
// global call reference.
//
// The call state machine of a Link (user side, Q.2931 §5 / UNI 3.1 §5).
// Messages are shown as received (?) or sent (!), local requests by their
// Link method, timers as Txxx.
//
// As caller:
//
//	U0 ──Setup / !SETUP, T303──▶ U1
//	U1 ──T303 (1st) / !SETUP, T303──▶ U1
//	U1 ──T303 (2nd) / !RELEASE COMPLETE 102──▶ U0
//	U1 ──?CALL PROCEEDING / T310──▶ U3
//	U1, U3 ──?CONNECT / !CONNECT ACKNOWLEDGE──▶ U10
//	U3 ──T310 / !RELEASE 102, T308──▶ U11
//	U1, U3 ──?RELEASE / !RELEASE COMPLETE──▶ U0
//
// As called side:
//
//	U0 ──?SETUP──▶ U6
//	U6 ──Proceed / !CALL PROCEEDING──▶ U9
//	U6, U9 ──Accept / !CONNECT, T313──▶ U8
//	U6, U9 ──Reject / !RELEASE COMPLETE──▶ U0
//	U8 ──?CONNECT ACKNOWLEDGE──▶ U10
//	U8 ──T313 / !RELEASE 102, T308──▶ U11
//	U6, U8, U9 ──?RELEASE / !RELEASE COMPLETE──▶ U0
//
// Clearing, either side:
//
//	U1…U10 ──Release / !RELEASE, T308──▶ U11
//	U10 ──?RELEASE──▶ U12 ──Release / !RELEASE COMPLETE──▶ U0
//	U11 ──?RELEASE COMPLETE──▶ U0
//	U11 ──?RELEASE (clear collision)──▶ U0, nothing sent
//	U11 ──T308 (1st) / !RELEASE, T308──▶ U11
//	U11 ──T308 (2nd)──▶ U0, call reference released locally
//	U12 ──?RELEASE──▶ U12, ignored
//	any ──?RELEASE COMPLETE──▶ U0
//
// Audit and link failure:
//
//	any ──StatusEnquiry / !STATUS ENQUIRY, T322──▶ same
//	any ──T322 (1st) / !STATUS ENQUIRY, T322──▶ same
//	any ──T322 (2nd) / !RELEASE 41, T308──▶ U11
//	any ──?STATUS reporting U0──▶ U0, nothing sent
//	U1…U10 ──?STATUS reporting an incompatible state / !RELEASE 101──▶ U11
//	U10 ──LinkDown / T309──▶ U10 ──LinkUp / !STATUS ENQUIRY, T322──▶ U10
//	U10 ──T309 (link still down)──▶ U0, cause 27
//	other ──LinkDown──▶ U0, cause 27
//
// In every state a duplicate SETUP is ignored, STATUS ENQUIRY is answered
// with STATUS cause 30, and a message not expected in the state with
// STATUS cause 101 (diagnostic: its message type) and the current state.
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
//
// The party state machine of a Link (UNI 3.1 §9, root-initiated parties
// only). Each
// party is named by its endpoint reference; the root (the side that
// originated the call) allocates them, 0 being the party of the SETUP.
// Party messages are allowed while the call is active (U10).
//
// Root side, adding a party:
//
//	Null ──AddParty / !ADD PARTY, T399──▶ AddPartyInitiated
//	AddPartyInitiated ──?ADD PARTY ACKNOWLEDGE──▶ Active            (IndPartyAdded)
//	AddPartyInitiated ──?ADD PARTY REJECT──▶ Null                   (IndPartyRejected)
//	AddPartyInitiated ──T399 / !DROP PARTY 102, T398──▶ DropPartyInitiated (IndPartyRejected)
//
// Other side, a party being added:
//
//	Null ──?ADD PARTY──▶ AddPartyReceived                           (IndAddParty)
//	AddPartyReceived ──AcceptParty / !ADD PARTY ACKNOWLEDGE──▶ Active
//	AddPartyReceived ──RejectParty / !ADD PARTY REJECT──▶ Null        (IndPartyRejected)
//
// Dropping, either side:
//
//	Active, AddPartyInitiated ──DropParty / !DROP PARTY, T398──▶ DropPartyInitiated
//	  (the last party is dropped by clearing the call: !RELEASE, call U11)
//	DropPartyInitiated ──?DROP PARTY ACKNOWLEDGE──▶ Null            (IndPartyDropped)
//	DropPartyInitiated ──?DROP PARTY (crossing)──▶ Null, nothing sent (IndPartyDropped)
//	DropPartyInitiated ──T398──▶ Null, released locally             (IndPartyDropped)
//	Active ──?DROP PARTY──▶ DropPartyReceived                       (IndDropParty)
//	DropPartyReceived ──DropParty / !DROP PARTY ACKNOWLEDGE──▶ Null  (IndPartyDropped)
//	AddPartyInitiated, AddPartyReceived ──?DROP PARTY / !DROP PARTY ACKNOWLEDGE──▶ Null (IndPartyRejected)
//
// A party that never was active ends with IndPartyRejected where an active
// one ends with IndPartyDropped. A party message naming an endpoint
// reference the call does not have is
// answered with DROP PARTY ACKNOWLEDGE cause 89 (a stray DROP PARTY
// ACKNOWLEDGE is ignored, a duplicate ADD PARTY too); one not allowed in
// the party's state with STATUS cause 101 carrying the endpoint state.
// When a party is removed and none is left, the call is cleared (RELEASE
// cause 16).
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
