package miniport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
)

// ParamMedia is the CO_SPECIFIC_PARAMETERS.ParamType of the MediaSpecific
// parameters this miniport reads on NdisCmActivateVc (see [VCParams] for
// the layout). It differs from mcm.ParamMedia: that blob carries only a
// connection identifier and a flag, because an MCM knows its peer from
// its own call state; a miniport knows nothing but what the call manager
// puts here.
const ParamMedia uint32 = 0xC0D1A010

// VCKind says what a VC carries.
type VCKind uint8

// VC kinds. The zero value is not a kind.
const (
	// Signalling: Q.2931 messages to and from one peer, one per SDU, on
	// the link's signalling stream (Link.Send, LinkHandler.Message), as
	// ATM's VCI 5. One signalling VC per peer.
	Signalling VCKind = iota + 1
	// Datagram: a data VC whose SDUs travel as datagrams tagged with its
	// connection identifier (best effort, like AAL5 over ATM).
	Datagram
	// Reliable: a data VC whose SDUs travel on the link's reliable,
	// ordered stream of its connection identifier.
	Reliable
)

func (k VCKind) String() string {
	switch k {
	case Signalling:
		return "signalling"
	case Datagram:
		return "datagram"
	case Reliable:
		return "reliable"
	}
	return fmt.Sprintf("VCKind(%d)", uint8(k))
}

// Traffic is what the miniport uses of one direction's flowspec: the
// dual token bucket's rates (package internal/shaping) and the largest
// SDU. A rate of 0, QOS_NOT_SPECIFIED or POSITIVE_INFINITY_RATE leaves its
// bucket out; a MaxSduSize of 0 sets no limit of the VC's own (the path's
// limit still holds).
type Traffic struct {
	TokenRate       uint32 // bytes/s
	TokenBucketSize uint32 // bytes
	PeakBandwidth   uint32 // bytes/s
	MaxSduSize      uint32 // bytes
}

// TrafficOf takes a flowspec's traffic fields.
func TrafficOf(f ndis.Flowspec) Traffic {
	return Traffic{TokenRate: f.TokenRate, TokenBucketSize: f.TokenBucketSize, PeakBandwidth: f.PeakBandwidth, MaxSduSize: f.MaxSduSize}
}

// Flowspec returns t as a flowspec (the other fields zero).
func (t Traffic) Flowspec() ndis.Flowspec {
	return ndis.Flowspec{TokenRate: t.TokenRate, TokenBucketSize: t.TokenBucketSize, PeakBandwidth: t.PeakBandwidth, MaxSduSize: t.MaxSduSize}
}

// Role is a data VC's part in its call.
type Role uint8

// Roles. The zero value is a point-to-point VC.
const (
	// PointToPoint: the VC sends to and receives from its Peer on its
	// ConnID.
	PointToPoint Role = iota
	// Root: the root of a point-to-multipoint call. Every SDU it sends
	// goes to each of its Legs (a leaf node and the connection identifier
	// of the call's leg to it); it receives nothing, and has no Peer or
	// ConnID of its own. A re-activation may change its Legs (the call
	// manager re-activates it when a leg is added or goes).
	Root
	// Leaf: a party of a point-to-multipoint call on this node. It
	// receives what its Peer (the root's side) sends on ConnID and sends
	// nothing (UNI 3.1 multipoint calls carry nothing backward). Several
	// leaf VCs (the node's several parties of one call) may share a Peer
	// and ConnID; each receives every SDU.
	Leaf
)

func (r Role) String() string {
	switch r {
	case PointToPoint:
		return "point-to-point"
	case Root:
		return "root"
	case Leaf:
		return "leaf"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Leg is one destination of a Root VC: a leaf node and the connection
// identifier of the call's leg to it.
type Leg struct {
	Peer   string
	ConnID uint32
}

// MaxLegs is the most legs a Root VC's parameters carry.
const MaxLegs = 255

// VCParams are what a call manager tells the miniport about a VC when it
// activates it: the MediaSpecific parameters (ParamType [ParamMedia]) of
// the CO_CALL_PARAMETERS given to NdisCmActivateVc. [VCParams.Media]
// builds them, [ParseMedia] reads them. On the wire (big endian):
//
//	octet 0      format version, 1
//	octet 1      kind (VCKind)
//	octets 2-5   connection identifier (data VCs; 0 for signalling and roots)
//	octets 6-21  transmit Traffic: TokenRate, TokenBucketSize,
//	             PeakBandwidth, MaxSduSize, 4 octets each
//	octets 22-37 receive Traffic, the same
//	octet 38     length of the peer's node name, 1 to pki.MaxNameLen (0 for a root)
//	octets 39-   the peer's node name (as its certificate states it)
//
// then, for a data VC of a multipoint call only (Role not PointToPoint):
//
//	1 octet      Role
//	1 octet      number of legs (a root: 1 to MaxLegs; a leaf: 0)
//	per leg      4 octets connection identifier, 1 octet name length, the name
//
// The CallMgrParameters of the activation are the call manager's business;
// the miniport reads only this.
type VCParams struct {
	Kind VCKind
	// Peer is the node at the other end of the VC ("" for a Root).
	Peer string
	// ConnID is a data VC's connection identifier (VPCI<<16 | VCI), chosen
	// by the call manager as mcm chooses them: unique per peer and
	// direction of the link. 0 for a signalling VC and a Root.
	ConnID uint32
	// Transmit is shaped on send (SDUs held back up to
	// Config.MaxShapingDelay, else dropped); Receive is policed on receive
	// (nonconforming SDUs dropped). Ignored for signalling.
	Transmit, Receive Traffic
	// Role is a data VC's part in its call; Legs are a Root's
	// destinations, distinct, in the order the call manager gives them.
	Role Role
	Legs []Leg
}

// Equal reports whether p and q are the same parameters.
func (p VCParams) Equal(q VCParams) bool {
	return p.Kind == q.Kind && p.Peer == q.Peer && p.ConnID == q.ConnID && p.Transmit == q.Transmit &&
		p.Receive == q.Receive && p.Role == q.Role && slices.Equal(p.Legs, q.Legs)
}

const (
	paramsVersion = 1
	paramsFixed   = 39
)

// Media returns p as the MediaParameters of an activation: the
// MediaSpecific blob, with TransmitVC|ReceiveVC set.
func (p VCParams) Media() *ndis.MediaParameters {
	return &ndis.MediaParameters{Flags: ndis.TransmitVC | ndis.ReceiveVC,
		MediaSpecific: ndis.SpecificParameters{ParamType: ParamMedia, Parameters: p.Marshal()}}
}

// Marshal encodes p (see VCParams for the layout). It does not check p;
// ParseMedia does.
func (p VCParams) Marshal() []byte {
	b := make([]byte, paramsFixed, paramsFixed+len(p.Peer))
	b[0], b[1] = paramsVersion, byte(p.Kind)
	binary.BigEndian.PutUint32(b[2:], p.ConnID)
	putTraffic(b[6:], p.Transmit)
	putTraffic(b[22:], p.Receive)
	b[38] = byte(len(p.Peer))
	b = append(b, p.Peer...)
	if p.Role == PointToPoint {
		return b
	}
	b = append(b, byte(p.Role), byte(len(p.Legs)))
	for _, l := range p.Legs {
		b = binary.BigEndian.AppendUint32(b, l.ConnID)
		b = append(b, byte(len(l.Peer)))
		b = append(b, l.Peer...)
	}
	return b
}

func putTraffic(b []byte, t Traffic) {
	binary.BigEndian.PutUint32(b[0:], t.TokenRate)
	binary.BigEndian.PutUint32(b[4:], t.TokenBucketSize)
	binary.BigEndian.PutUint32(b[8:], t.PeakBandwidth)
	binary.BigEndian.PutUint32(b[12:], t.MaxSduSize)
}

func getTraffic(b []byte) Traffic {
	return Traffic{TokenRate: binary.BigEndian.Uint32(b[0:]), TokenBucketSize: binary.BigEndian.Uint32(b[4:]),
		PeakBandwidth: binary.BigEndian.Uint32(b[8:]), MaxSduSize: binary.BigEndian.Uint32(b[12:])}
}

// ErrBadParams is matched by every error ParseMedia returns.
var ErrBadParams = errors.New("miniport: bad media parameters")

// ParseMedia reads the VCParams of activation parameters. The error says
// what is wrong (the miniport refuses such an activation with
// NDIS_STATUS_INVALID_DATA).
func ParseMedia(cp *ndis.CallParameters) (VCParams, error) {
	if cp == nil || cp.MediaParameters == nil {
		return VCParams{}, fmt.Errorf("%w: no MediaParameters; build them with VCParams.Media", ErrBadParams)
	}
	sp := cp.MediaParameters.MediaSpecific
	if sp.ParamType != ParamMedia {
		return VCParams{}, fmt.Errorf("%w: MediaSpecific ParamType 0x%08X, want miniport.ParamMedia (0x%08X)", ErrBadParams, sp.ParamType, ParamMedia)
	}
	return Unmarshal(sp.Parameters)
}

// Unmarshal decodes and checks VCParams encoded by Marshal.
func Unmarshal(b []byte) (VCParams, error) {
	if len(b) < paramsFixed {
		return VCParams{}, fmt.Errorf("%w: %d octets, want at least %d", ErrBadParams, len(b), paramsFixed)
	}
	if b[0] != paramsVersion {
		return VCParams{}, fmt.Errorf("%w: format version %d, want %d", ErrBadParams, b[0], paramsVersion)
	}
	p := VCParams{Kind: VCKind(b[1]), ConnID: binary.BigEndian.Uint32(b[2:]), Transmit: getTraffic(b[6:]), Receive: getTraffic(b[22:])}
	n := int(b[38])
	if len(b) < paramsFixed+n {
		return VCParams{}, fmt.Errorf("%w: peer name of %d octets announced, %d present", ErrBadParams, n, len(b)-paramsFixed)
	}
	p.Peer = string(b[paramsFixed : paramsFixed+n])
	if err := p.unmarshalMultipoint(b[paramsFixed+n:]); err != nil {
		return VCParams{}, err
	}
	if p.Role != Root {
		if err := pki.ValidName(p.Peer); err != nil {
			return VCParams{}, fmt.Errorf("%w: %v", ErrBadParams, err)
		}
	} else if p.Peer != "" || p.ConnID != 0 {
		return VCParams{}, fmt.Errorf("%w: a root VC has no peer or connection identifier of its own (its legs have)", ErrBadParams)
	}
	switch p.Kind {
	case Signalling:
		if p.ConnID != 0 {
			return VCParams{}, fmt.Errorf("%w: a signalling VC has connection identifier 0, not %d", ErrBadParams, p.ConnID)
		}
		if p.Role != PointToPoint {
			return VCParams{}, fmt.Errorf("%w: a signalling VC is point-to-point, not %v", ErrBadParams, p.Role)
		}
	case Datagram, Reliable:
	default:
		return VCParams{}, fmt.Errorf("%w: unknown VC kind %d", ErrBadParams, b[1])
	}
	return p, nil
}

// unmarshalMultipoint reads the role and legs that follow the peer's name
// (nothing for a point-to-point VC).
func (p *VCParams) unmarshalMultipoint(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if len(b) < 2 {
		return fmt.Errorf("%w: %d octets after the peer name, want none or a role and a leg count", ErrBadParams, len(b))
	}
	p.Role = Role(b[0])
	n := int(b[1])
	b = b[2:]
	switch {
	case p.Role == Leaf && n != 0:
		return fmt.Errorf("%w: a leaf VC has no legs, %d announced", ErrBadParams, n)
	case p.Role == Root && n == 0:
		return fmt.Errorf("%w: a root VC with no legs", ErrBadParams)
	case p.Role != Leaf && p.Role != Root:
		return fmt.Errorf("%w: unknown role %d", ErrBadParams, uint8(p.Role))
	}
	for range n {
		if len(b) < 5 || len(b) < 5+int(b[4]) {
			return fmt.Errorf("%w: leg %d truncated", ErrBadParams, len(p.Legs)+1)
		}
		l := Leg{ConnID: binary.BigEndian.Uint32(b), Peer: string(b[5 : 5+int(b[4])])}
		if err := pki.ValidName(l.Peer); err != nil {
			return fmt.Errorf("%w: leg %d: %v", ErrBadParams, len(p.Legs)+1, err)
		}
		if slices.Contains(p.Legs, l) {
			return fmt.Errorf("%w: leg %s/%d twice", ErrBadParams, l.Peer, l.ConnID)
		}
		p.Legs = append(p.Legs, l)
		b = b[5+int(b[4]):]
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d octets after the last leg", ErrBadParams, len(b))
	}
	return nil
}
