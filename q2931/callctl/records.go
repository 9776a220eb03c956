package callctl

// The call control's records: what it keeps of the address-family opens,
// SAPs, offered calls and parties it handles. Their fields are guarded by
// the call manager's lock.

import (
	"strconv"
	"sync"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// AF is the call manager's context for one client's open of the address
// family (ProtocolCmOpenAf).
type AF struct {
	Seq      uint64
	Handle   *ndis.Af
	VCs      int  // VCs the call manager created on this open and has not deleted (R-q2931.AF-15)
	Closing  bool // ProtocolCmCloseAf pended until VCs reaches 0
	Closed   bool
	Notified bool // (M)CmNotifyCloseAddressFamily sent
	SAPs     map[*SAP]struct{}
}

// SAP is the call manager's context for a registered SAP.
type SAP struct {
	AF      *AF
	Handle  *ndis.Sap
	Service string
}

// Offer is an incoming call offered to the client
// ((M)CmDispatchIncomingCall) that has not answered yet: the buffer the
// client was given and what was offered. The VC lets go of it when the
// answer arrives, and it is recycled (offers).
type Offer struct {
	Params       ndis.CallParameters // the buffer given to the client (which may change it)
	CM           ndis.CallManagerParameters
	Media        ndis.MediaParameters
	Blob         [q2931.MediaBlobLen]byte
	Calling      [32]byte      // storage for the calling node's name in CM, if it fits
	Tx, Rx       ndis.Flowspec // what was offered, kept apart from the client's buffer
	SAP          *SAP          // the SAP the call is offered to
	Given        bool          // the VC is activated and the offer on its way to the client
	Lost         bool          // the network ended the call before the client was given it
	Pending      bool          // MCmDispatchIncomingCall returned PENDING and no answer came yet
	DeleteWanted bool          // deletion waits for the answer
}

// offers recycles offers (NewOffer, Offer.Free). Once the client has
// answered, the buffer it was given is the call manager's again (R-IN-10:
// a client that wants the parameters later copies them), and every
// incoming call needs one.
var offers = sync.Pool{New: func() any { return new(Offer) }}

// Free recycles o (see offers).
func (o *Offer) Free() {
	*o = Offer{}
	offers.Put(o)
}

// NewOffer returns an offer of tx and rx, from the pool, its other fields
// zero: the caller fills in the client's buffer.
func NewOffer(tx, rx ndis.Flowspec) *Offer {
	o := offers.Get().(*Offer)
	*o = Offer{Tx: tx, Rx: rx}
	return o
}

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
