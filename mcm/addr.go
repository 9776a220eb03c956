package mcm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/uni"
)

// AF is the address family the MCM registers: CO_ADDRESS_FAMILY_Q2931,
// version 3.1 (ATM Forum UNI 3.1).
var AF = ndis.AddressFamily{AddressFamily: ndis.AFQ2931, MajorVersion: 3, MinorVersion: 1}

// Type codes of the AF- and medium-specific blobs the MCM reads and writes
// (CO_SPECIFIC_PARAMETERS.ParamType, CO_SAP.SapType).
const (
	// ParamCalledParty marks the CallMgrSpecific parameters of NdisClMakeCall
	// and NdisClAddParty: the destination as the UTF-8 string
	// "node/service" (a node name as pki.ValidName accepts it, a slash, a
	// service name of 1 to 8 octets). CallParams builds it.
	ParamCalledParty uint32 = 0xC0D1A001
	// ParamCallingParty marks the CallMgrSpecific parameters the MCM puts in
	// an offered call (ProtocolClIncomingCall): the caller's node name as
	// UTF-8, as its certificate states it.
	ParamCallingParty uint32 = 0xC0D1A002
	// ParamMedia marks MediaSpecific parameters: 4 octets connection
	// identifier (big endian, VPCI<<16 | VCI) and 1 octet of flags
	// (MediaReliable). In NdisClMakeCall the connection identifier is
	// ignored (the called side assigns it) and only the flags count; in
	// the activation parameters (NdisMCmActivateVc) both are what the VC
	// carries.
	ParamMedia uint32 = 0xC0D1A003
	// SapTypeNSAP is CO_SAP.SapType of a Q.2931 SAP (SAP_TYPE_NSAP of
	// atm.h). See ServiceSap for the format.
	SapTypeNSAP uint32 = 1
)

// MediaReliable is the ParamMedia flag asking for reliable delivery: the
// VC's SDUs travel on a reliable, ordered transport stream instead of best
// effort datagrams. On the wire the AAL5 SSCS type says so (SSCOP assured
// operation).
const MediaReliable byte = 0x01

// MaxServiceLen is the longest service name: the information field of a
// BHLI is at most 8 octets.
const MaxServiceLen = uni.MaxBHLIInfo

// anyAddress in a SAP means "whatever this node's address is".
var anyAddress = func() (a uni.AESA) {
	for i := range a {
		a[i] = 0xFF
	}
	return a
}()

// Lengths of the parts of an ATM End System Address (UNI 3.1 §5.1.3):
// a 13-octet network prefix, a 6-octet end system identifier, a 1-octet
// selector.
const (
	PrefixLen = 13
	ESILen    = 6
)

// Authority and format identifiers of UNI 3.1's private ATM address
// formats, octet 0 of an AESA.
const (
	AFIDCC  byte = 0x39 // data country code (ISO 3166), 2-octet IDI
	AFIICD  byte = 0x47 // international code designator (ISO 6523), 2-octet IDI
	AFIE164 byte = 0x45 // E.164 number, 8-octet IDI
)

// Prefix is the network prefix of an ATM End System Address: the AFI,
// the IDI and the high-order DSP (UNI 3.1 §5.1.3, Annex A). The nodes of
// a cluster share one; Check says whether a prefix has one of UNI 3.1's
// formats.
type Prefix [PrefixLen]byte

// DefaultPrefix is the prefix of a node that configures none:
// 47.9999.c0d1.0000.0000.0000.0000, the ICD format with ICD 9999 and an
// HO-DSP of c0d1 followed by zeros. ISO/IEC 6523 reserves ICDs 9900 to
// 9999 for use by prior agreement between partners, which is what the
// nodes of a cluster are; no ICD is registered to condis, and these
// addresses never leave the cluster. The zeros leave room to give clusters
// (or parts of one) prefixes of their own.
var DefaultPrefix = Prefix{AFIICD, 0x99, 0x99, 0xC0, 0xD1}

// ParsePrefix parses a prefix written as 26 hex digits, AFI first (dots
// between them are ignored: "47.9999.c0d1.0000.0000.0000.0000"), and
// checks it (Check).
func ParsePrefix(s string) (Prefix, error) {
	var p Prefix
	digits := strings.ReplaceAll(s, ".", "")
	for i := 0; i < len(digits); i++ {
		if c := digits[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return p, fmt.Errorf("mcm: %q: %q is not a hex digit (want 26 hex digits, AFI first)", s, c)
		}
	}
	if len(digits) != 2*PrefixLen {
		return p, fmt.Errorf("mcm: %q has %d hex digits, want 26 (13 octets: AFI, IDI, HO-DSP)", s, len(digits))
	}
	hex.Decode(p[:], []byte(digits))
	return p, p.Check()
}

// Check returns an error, in one line, unless p is a prefix of one of
// UNI 3.1's private ATM address formats: AFI 0x47 (ICD: 4 BCD digits), 0x39 (DCC: 3 BCD digits
// and a final 0xF) or 0x45 (E.164: 15 BCD digits, padded with leading
// zeros, and a final 0xF), the rest of the 13 octets being the HO-DSP.
func (p Prefix) Check() error {
	switch p[0] {
	case AFIICD:
		if !bcd(p[1:3], 4) {
			return fmt.Errorf("mcm: ICD %x is not 4 decimal digits", p[1:3])
		}
	case AFIDCC:
		if !bcd(p[1:3], 3) {
			return fmt.Errorf("mcm: DCC %x is not 3 decimal digits and a final f (e.g. 840f)", p[1:3])
		}
	case AFIE164:
		if !bcd(p[1:9], 15) {
			return fmt.Errorf("mcm: E.164 IDI %x is not 15 decimal digits (leading zeros pad the number) and a final f", p[1:9])
		}
	default:
		return fmt.Errorf("mcm: AFI %02x is not a UNI 3.1 address format: want 47 (ICD), 39 (DCC) or 45 (E.164)", p[0])
	}
	return nil
}

// bcd reports whether b holds n decimal digits, one per semi-octet, and
// then (if n is odd) a final 0xF.
func bcd(b []byte, n int) bool {
	for i := range 2 * len(b) {
		d := b[i/2] >> 4
		if i%2 == 1 {
			d = b[i/2] & 0x0F
		}
		if i < n && d > 9 || i >= n && d != 0x0F {
			return false
		}
	}
	return true
}

// String is the prefix as 26 hex digits, as ParsePrefix reads it.
func (p Prefix) String() string { return hex.EncodeToString(p[:]) }

// ESI returns the end system identifier of the node called name: the
// first six octets of SHA-256(name), made a locally administered unicast
// IEEE 802 address (bit 0x02 of octet 0 set, bit 0x01 cleared), since an
// ESI is customarily a MAC address and this one is not a manufacturer's.
// Two names share an ESI only if 46 bits of SHA-256 collide; node
// configurations refuse peers whose ESIs collide.
func ESI(name string) [ESILen]byte {
	h := sha256.Sum256([]byte(name))
	var e [ESILen]byte
	copy(e[:], h[:ESILen])
	e[0] = e[0]&^0x01 | 0x02
	return e
}

// Address returns the ATM End System Address of the node called name
// under prefix: the 13 octets of prefix, the 6 of ESI(name), and selector
// 0. Every node computes every other node's address this way, so a call
// can be addressed by node name.
func Address(prefix Prefix, name string) uni.AESA {
	var a uni.AESA
	copy(a[:PrefixLen], prefix[:])
	e := ESI(name)
	copy(a[PrefixLen:PrefixLen+ESILen], e[:])
	return a
}

// checkAddressing fills in the default prefix and checks the prefixes of
// cfg.
func (cfg *Config) checkAddressing() error {
	if cfg.AddressPrefix == (Prefix{}) {
		cfg.AddressPrefix = DefaultPrefix
	} else if err := cfg.AddressPrefix.Check(); err != nil {
		return fmt.Errorf("mcm: AddressPrefix: %w", unprefixed(err))
	}
	for name, p := range cfg.PeerPrefixes {
		if err := p.Check(); err != nil {
			return fmt.Errorf("mcm: PeerPrefixes[%q]: %w", name, unprefixed(err))
		}
	}
	cfg.PeerPrefixes = maps.Clone(cfg.PeerPrefixes) // the caller may go on changing its map
	return nil
}

// unprefixed is err without the package's "mcm: ", to be wrapped again.
func unprefixed(err error) error { return errors.New(strings.TrimPrefix(err.Error(), "mcm: ")) }

// peerAddress is the address of the node called name: under its entry in
// Config.PeerPrefixes, else under this node's prefix.
func (d *MCM) peerAddress(name string) uni.AESA {
	p, ok := d.cfg.PeerPrefixes[name]
	if !ok {
		p = d.cfg.AddressPrefix
	}
	return Address(p, name)
}

// CallParams builds NdisClMakeCall / NdisClAddParty parameters that call
// service on node with the transmit and receive flowspecs (seen from the
// caller). reliable asks for reliable, ordered delivery (a transport
// stream) instead of best-effort datagrams.
//
// The destination goes in CallMgrSpecific (ParamCalledParty, "node/service");
// reliable goes in MediaSpecific (ParamMedia).
func CallParams(node, service string, tx, rx ndis.Flowspec, reliable bool) *ndis.CallParameters {
	// The parameters and their call-manager part in one allocation, the
	// destination in another: a busy client makes one per call.
	s := new(struct {
		p  ndis.CallParameters
		cm ndis.CallManagerParameters
	})
	dst := make([]byte, 0, len(node)+1+len(service))
	dst = append(append(append(dst, node...), '/'), service...)
	s.cm = ndis.CallManagerParameters{Transmit: tx, Receive: rx,
		CallMgrSpecific: ndis.SpecificParameters{ParamType: ParamCalledParty, Parameters: dst}}
	s.p.CallMgrParameters = &s.cm
	p := &s.p
	if reliable {
		p.MediaParameters = &ndis.MediaParameters{
			Flags:         ndis.TransmitVC | ndis.ReceiveVC,
			MediaSpecific: ndis.SpecificParameters{ParamType: ParamMedia, Parameters: mediaBlob(0, MediaReliable)},
		}
	}
	return p
}

// Destination returns the node and service call parameters made by
// CallParams (or by hand in the same format) call.
func Destination(p *ndis.CallParameters) (node, service string, err error) {
	if p == nil || p.CallMgrParameters == nil {
		return "", "", errors.New("mcm: no call-manager parameters")
	}
	sp := p.CallMgrParameters.CallMgrSpecific
	if sp.ParamType != ParamCalledParty {
		return "", "", fmt.Errorf("mcm: CallMgrSpecific ParamType 0x%08X, want ParamCalledParty (0x%08X)", sp.ParamType, ParamCalledParty)
	}
	node, service, ok := strings.Cut(string(sp.Parameters), "/")
	if !ok {
		return "", "", fmt.Errorf("mcm: destination %q is not node/service", sp.Parameters)
	}
	if err := pki.ValidName(node); err != nil {
		return "", "", fmt.Errorf("mcm: destination %q: %w", sp.Parameters, err)
	}
	if err := validService(service); err != nil {
		return "", "", err
	}
	return node, service, nil
}

// CallingNode returns the caller's node name the MCM put in offered call
// parameters (ParamCallingParty).
func CallingNode(p *ndis.CallParameters) (string, bool) {
	if p == nil || p.CallMgrParameters == nil || p.CallMgrParameters.CallMgrSpecific.ParamType != ParamCallingParty {
		return "", false
	}
	return string(p.CallMgrParameters.CallMgrSpecific.Parameters), true
}

func validService(s string) error {
	if len(s) == 0 || len(s) > MaxServiceLen {
		return fmt.Errorf("mcm: service name %q: 1 to %d octets", s, MaxServiceLen)
	}
	return nil
}

// ServiceSap builds the CO_SAP that registers service on this node. A Q.2931
// SAP is an address plus BHLI (as ATM_SAP is): SapType SapTypeNSAP and Sap
//
//	octets 0-19  the ATM End System Address to listen on; twenty 0xFF octets
//	             (what ServiceSap puts) mean "this node's address"
//	octet  20    BHLI high layer information type: 0x01, user specific
//	octets 21-   BHLI information: the service name, 1 to 8 octets
//
// ServiceSap does not check the name: registering a SAP whose name is empty
// or longer than 8 octets fails with NDIS_STATUS_INVALID_DATA.
func ServiceSap(service string) *ndis.CoSap {
	b := make([]byte, 0, uni.AESALen+1+len(service))
	b = append(b, anyAddress[:]...)
	b = append(b, uni.HLUserSpecific)
	b = append(b, service...)
	return &ndis.CoSap{SapType: SapTypeNSAP, Sap: b}
}

// parseSap decodes a CO_SAP; it returns the service and whether the SAP's
// address is acceptable for a node whose address is own.
func parseSap(s *ndis.CoSap, own uni.AESA) (string, ndis.Status) {
	if s == nil || s.SapType != SapTypeNSAP || len(s.Sap) < uni.AESALen+1 {
		return "", ndis.StatusInvalidData
	}
	var a uni.AESA
	copy(a[:], s.Sap[:uni.AESALen])
	if a != anyAddress && a != own {
		return "", ndis.StatusInvalidAddress
	}
	if s.Sap[uni.AESALen] != uni.HLUserSpecific {
		return "", ndis.StatusInvalidData
	}
	svc := string(s.Sap[uni.AESALen+1:])
	if validService(svc) != nil {
		return "", ndis.StatusInvalidData
	}
	return svc, ndis.StatusSuccess
}

// SapService returns the service name a CO_SAP in the MCM's format
// registers (see ServiceSap), whatever its address; ok is false for a SAP
// of another format.
func SapService(s *ndis.CoSap) (service string, ok bool) {
	if s == nil || s.SapType != SapTypeNSAP || len(s.Sap) < uni.AESALen+2 || s.Sap[uni.AESALen] != uni.HLUserSpecific {
		return "", false
	}
	return string(s.Sap[uni.AESALen+1:]), true
}

func mediaBlob(connID uint32, flags byte) []byte {
	b := mediaArray(connID, flags)
	return b[:]
}

// mediaBlobLen is the length of the ParamMedia blob.
const mediaBlobLen = 5

// mediaArray is mediaBlob in an array, for storage that holds it.
func mediaArray(connID uint32, flags byte) [mediaBlobLen]byte {
	var b [mediaBlobLen]byte
	binary.BigEndian.PutUint32(b[:], connID)
	b[4] = flags
	return b
}

// reliableRequested reports whether NdisClMakeCall parameters ask for
// reliable delivery.
func reliableRequested(p *ndis.CallParameters) bool {
	if p == nil || p.MediaParameters == nil {
		return false
	}
	sp := p.MediaParameters.MediaSpecific
	return sp.ParamType == ParamMedia && len(sp.Parameters) == 5 && sp.Parameters[4]&MediaReliable != 0
}

// Media returns the connection identifier and flags of activation
// parameters the MCM made (ParamMedia).
func Media(p *ndis.CallParameters) (connID uint32, flags byte, ok bool) {
	if p == nil || p.MediaParameters == nil {
		return 0, 0, false
	}
	sp := p.MediaParameters.MediaSpecific
	if sp.ParamType != ParamMedia || len(sp.Parameters) != 5 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(sp.Parameters), sp.Parameters[4], true
}

// sameAddress reports whether a Called Party Number names own.
func sameAddress(c *uni.CalledPartyNumber, own uni.AESA) bool {
	a, ok := c.AESA()
	return ok && bytes.Equal(a[:], own[:])
}
