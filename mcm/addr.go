package mcm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
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

// Address returns the ATM End System Address of the node called name.
//
// Derivation (the same on every node, so a caller can address any node by
// name): SHA-256 of "condis-aesa:" + name gives h, and the 20 octets are
//
//	octet 0       0x49: AFI "local" (ISO 8348), binary DSP: a private address plan
//	octets 1-12   h[0:12]   rest of the 13-octet prefix
//	octets 13-18  h[12:18]  end system identifier (ESI)
//	octet 19      0x00      selector
//
// Two names share an address only if 144 bits of SHA-256 collide.
func Address(name string) uni.AESA {
	h := sha256.Sum256([]byte("condis-aesa:" + name))
	var a uni.AESA
	a[0] = 0x49
	copy(a[1:19], h[:18])
	return a
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
