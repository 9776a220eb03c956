package callctl

// The call control's records: what it keeps of the address-family opens,
// SAPs, offered calls and parties it handles.

import (
	"strconv"

	"github.com/condis-project/condis/q2931"
)

// ServiceName is a service name (1 to MaxServiceLen octets) held in place: a
// string would be a pointer per VC for the collector to follow and, for a
// call the client made, an allocation.
type ServiceName struct {
	b [q2931.MaxServiceLen]byte
	n uint8
}

// MakeServiceName holds s (at most q2931.MaxServiceLen octets; longer is cut).
func MakeServiceName(s string) ServiceName {
	var n ServiceName
	n.n = uint8(copy(n.b[:], s))
	return n
}

// Bytes returns the name's octets (not a copy).
func (s *ServiceName) Bytes() []byte { return s.b[:s.n] }

// String returns the name.
func (s ServiceName) String() string { return string(s.b[:s.n]) }

// PartyState is the state of a CoNDIS party of a multipoint root. The zero
// value is not a state.
//
//	adding ──ADD PARTY ACKNOWLEDGE / CONNECT──▶ active
//	adding ──ADD PARTY REJECT / RELEASE / T399──▶ gone (AddPartyComplete failure)
//	active ──ProtocolCmDropParty──▶ dropping ──DROP PARTY ACKNOWLEDGE / RELEASE COMPLETE──▶ gone
//	active ──the leaf left: IncomingDropParty──▶ drop-indicated ──ProtocolCmDropParty──▶ gone
//	active, drop-indicated ──ProtocolCmCloseCall (last party)──▶ closing ──▶ gone
type PartyState uint8

// The states of a party.
const (
	PartyAdding        PartyState = iota + 1 // AddParty (or the MakeCall) pended: waiting for the leaf
	PartyActive                              // the leaf is in the call
	PartyDropping                            // ProtocolCmDropParty: waiting for the leaf to go
	PartyDropIndicated                       // the leaf left (IncomingDropParty); the client's DropParty is awaited
	PartyClosing                             // the call is closing with this party in it
	PartyGone                                // the party is over
)

// String names the state as `condis calls` shows it.
func (s PartyState) String() string {
	switch s {
	case PartyAdding:
		return "adding"
	case PartyActive:
		return "active"
	case PartyDropping:
		return "dropping"
	case PartyDropIndicated:
		return "drop-indicated"
	case PartyClosing:
		return "closing"
	case PartyGone:
		return "gone"
	}
	return "party state " + strconv.Itoa(int(s))
}
