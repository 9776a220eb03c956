package miniport

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport"
)

// StatusLinkEvent is the StatusCode of the adapter-wide
// NdisMCoIndicateStatusEx by which the miniport tells every bound protocol
// that a link to a peer came up or went down. Its Buffer is a [LinkEvent]
// ([ParseLinkEvent] reads it). The value is an informational status with
// the customer bit set (0x6000xxxx), which ndis.h leaves to drivers: it is
// not NDIS_STATUS_MEDIA_(DIS)CONNECT, because one peer's link going is not
// the medium going.
const StatusLinkEvent ndis.Status = 0x60C0D001

// LinkEvent is the status buffer of StatusLinkEvent. On the wire (big
// endian): octet 0 format version (1), octet 1 up (1) or down (0), octet 2
// the transport.DownReason (0 when up), octets 3-10 the peer's
// incarnation, octet 11 the length of the peer's name, then the name.
type LinkEvent struct {
	Peer string
	Up   bool
	// Reason is why the link went down (zero when Up).
	Reason transport.DownReason
	// Incarnation is the peer's Link.PeerIncarnation on that link: a
	// link up with a different incarnation than the last one means the
	// peer restarted and knows none of the calls (clear them).
	Incarnation uint64
}

const linkEventFixed = 12

// Marshal encodes e.
func (e LinkEvent) Marshal() []byte {
	b := make([]byte, linkEventFixed, linkEventFixed+len(e.Peer))
	b[0] = 1
	if e.Up {
		b[1] = 1
	}
	b[2] = byte(e.Reason)
	binary.BigEndian.PutUint64(b[3:], e.Incarnation)
	b[11] = byte(len(e.Peer))
	return append(b, e.Peer...)
}

// ErrNotLinkEvent is returned by ParseLinkEvent for an indication that is
// not a StatusLinkEvent.
var ErrNotLinkEvent = errors.New("miniport: not a link event")

// ParseLinkEvent reads the LinkEvent of a status indication; it fails with
// ErrNotLinkEvent for other status codes.
func ParseLinkEvent(ind *ndis.StatusIndication) (LinkEvent, error) {
	if ind == nil || ind.StatusCode != StatusLinkEvent {
		return LinkEvent{}, ErrNotLinkEvent
	}
	b := ind.Buffer
	if len(b) < linkEventFixed || b[0] != 1 || b[1] > 1 || len(b) != linkEventFixed+int(b[11]) {
		return LinkEvent{}, fmt.Errorf("miniport: malformed link event of %d octets", len(b))
	}
	return LinkEvent{Up: b[1] == 1, Reason: transport.DownReason(b[2]), Incarnation: binary.BigEndian.Uint64(b[3:]), Peer: string(b[linkEventFixed:])}, nil
}
