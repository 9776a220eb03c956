package q2931

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/uni"
)

// AF is the Q.2931 address family: CO_ADDRESS_FAMILY_Q2931, version 3.1
// (ATM Forum UNI 3.1). Every call manager of condis registers it
// (NdisMCmRegisterAddressFamilyEx, NdisCmRegisterAddressFamilyEx) and every
// client opens it.
var AF = ndis.AddressFamily{AddressFamily: ndis.AFQ2931, MajorVersion: 3, MinorVersion: 1}

// Type codes of the AF- and medium-specific blobs of the Q.2931 address
// family (CO_SPECIFIC_PARAMETERS.ParamType, CO_SAP.SapType).
const (
	// ParamCalledParty marks the CallMgrSpecific parameters of NdisClMakeCall
	// and NdisClAddParty: the destination as the UTF-8 string
	// "node/service" (a node name as pki.ValidName accepts it, a slash, a
	// service name of 1 to 8 octets). CallParams builds it. A call
	// manager's activation parameters of an outgoing call carry it too.
	ParamCalledParty uint32 = 0xC0D1A001
	// ParamCallingParty marks the CallMgrSpecific parameters a call manager
	// puts in an offered call (ProtocolClIncomingCall) and in the
	// activation parameters of an incoming call: the caller's node name as
	// UTF-8.
	ParamCallingParty uint32 = 0xC0D1A002
	// ParamMedia marks MediaSpecific parameters: 4 octets connection
	// identifier (big endian, VPCI<<16 | VCI) and 1 octet of flags
	// (MediaReliable). In NdisClMakeCall the connection identifier is
	// ignored (the called side assigns it) and only the flags count; in
	// the activation parameters (NdisMCmActivateVc, NdisCmActivateVc)
	// both are what the VC carries.
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

// MediaBlobLen is the length of the ParamMedia blob.
const MediaBlobLen = 5

// CallParams builds NdisClMakeCall / NdisClAddParty parameters that call
// service on node with the transmit and receive flowspecs (seen from the
// caller). reliable asks for reliable, ordered delivery (a transport
// stream) instead of best-effort datagrams.
//
// The destination goes in CallMgrSpecific (ParamCalledParty, "node/service");
// reliable goes in MediaSpecific (ParamMedia).
//
// A client that is done with the parameters (its MakeCall completed) may
// hand them back with RecycleCallParams, for a later call to be built in.
func CallParams(node, service string, tx, rx ndis.Flowspec, reliable bool) *ndis.CallParameters {
	s := callParamsPool.Get().(*callParamsBlock)
	dst := s.room[:0:len(s.room)]
	if n := len(node) + 1 + len(service); n > len(s.room) {
		dst = make([]byte, 0, n)
	}
	dst = append(append(append(dst, node...), '/'), service...)
	dst = dst[:len(dst):len(dst)] // an append by the holder must not write past it
	s.cm = ndis.CallManagerParameters{Transmit: tx, Receive: rx,
		CallMgrSpecific: ndis.SpecificParameters{ParamType: ParamCalledParty, Parameters: dst}}
	s.p = ndis.CallParameters{CallMgrParameters: &s.cm}
	p := &s.p
	if reliable {
		blob := MediaArray(0, MediaReliable)
		p.MediaParameters = &ndis.MediaParameters{
			Flags:         ndis.TransmitVC | ndis.ReceiveVC,
			MediaSpecific: ndis.SpecificParameters{ParamType: ParamMedia, Parameters: blob[:]},
		}
	}
	return p
}

// callParamsBlock is what CallParams allocates: the parameters, their
// call-manager part and (unless it is long) the destination, in one
// object, which a busy client recycles (RecycleCallParams).
type callParamsBlock struct {
	p    ndis.CallParameters // first: a *ndis.CallParameters CallParams made is its block's address
	cm   ndis.CallManagerParameters
	room [callParamsRoom]byte
}

// callParamsRoom is the room for the destination ("node/service") that
// CallParams allocates with the parameters: enough for usual names.
const callParamsRoom = 48

// callParamsPool holds the blocks recycled, for CallParams to reuse: a
// client making calls at a high rate otherwise leaves one behind per call.
var callParamsPool = sync.Pool{New: func() any { return new(callParamsBlock) }}

// RecycleCallParams hands back parameters CallParams built, for a later
// CallParams to build in: the caller, and everyone it lent them to, must be
// done with them. A client may so hand back a point-to-point
// NdisClMakeCall's once its MakeCall has completed, when NDIS has returned
// them (a multipoint call's first party keeps them in its call manager).
// It reports whether p was taken: parameters made otherwise are left
// alone.
func RecycleCallParams(p *ndis.CallParameters) bool {
	// CallParams' parameters point at their call-manager part, which lies
	// at a fixed offset in the same block: a check that needs no
	// conversion of a pointer that may not be one to a block.
	if p == nil || uintptr(unsafe.Pointer(p.CallMgrParameters)) != uintptr(unsafe.Pointer(p))+unsafe.Offsetof(callParamsBlock{}.cm) {
		return false
	}
	s := (*callParamsBlock)(unsafe.Pointer(p))
	*s = callParamsBlock{} // nothing of the call it was stays reachable from the pool
	callParamsPool.Put(s)
	return true
}

// Destination returns the node and service call parameters made by
// CallParams (or by hand in the same format) call.
func Destination(p *ndis.CallParameters) (node, service string, err error) {
	if p == nil || p.CallMgrParameters == nil {
		return "", "", errors.New("q2931: no call-manager parameters")
	}
	sp := p.CallMgrParameters.CallMgrSpecific
	if sp.ParamType != ParamCalledParty {
		return "", "", fmt.Errorf("q2931: CallMgrSpecific ParamType 0x%08X, want ParamCalledParty (0x%08X)", sp.ParamType, ParamCalledParty)
	}
	node, service, ok := strings.Cut(string(sp.Parameters), "/")
	if !ok {
		return "", "", fmt.Errorf("q2931: destination %q is not node/service", sp.Parameters)
	}
	if err := pki.ValidName(node); err != nil {
		return "", "", fmt.Errorf("q2931: destination %q: %w", sp.Parameters, err)
	}
	if err := ValidService(service); err != nil {
		return "", "", err
	}
	return node, service, nil
}

// DestinationService returns the service part of call parameters in
// CallParams' format without copying it, and without checking the node
// part: for a call manager whose network is one switch (package memdrv).
// The slice aliases p and must not be kept.
func DestinationService(p *ndis.CallParameters) ([]byte, bool) {
	if p == nil || p.CallMgrParameters == nil || p.CallMgrParameters.CallMgrSpecific.ParamType != ParamCalledParty {
		return nil, false
	}
	b := p.CallMgrParameters.CallMgrSpecific.Parameters
	i := bytes.IndexByte(b, '/')
	if n := len(b) - i - 1; i < 0 || n == 0 || n > MaxServiceLen { // ValidService, without a copy
		return nil, false
	}
	return b[i+1:], true
}

// CallingNode returns the caller's node name a call manager put in offered
// call parameters (ParamCallingParty).
func CallingNode(p *ndis.CallParameters) (string, bool) {
	if p == nil || p.CallMgrParameters == nil || p.CallMgrParameters.CallMgrSpecific.ParamType != ParamCallingParty {
		return "", false
	}
	return string(p.CallMgrParameters.CallMgrSpecific.Parameters), true
}

// MediaArray is the ParamMedia blob of connection identifier connID with
// flags, in an array, for storage that holds it.
func MediaArray(connID uint32, flags byte) [MediaBlobLen]byte {
	var b [MediaBlobLen]byte
	binary.BigEndian.PutUint32(b[:], connID)
	b[4] = flags
	return b
}

// ReliableRequested reports whether NdisClMakeCall parameters ask for
// reliable delivery (ParamMedia flag MediaReliable).
func ReliableRequested(p *ndis.CallParameters) bool {
	_, flags, ok := Media(p)
	return ok && flags&MediaReliable != 0
}

// Media returns the connection identifier and flags of parameters in the
// ParamMedia format: what a call manager activates a VC with.
func Media(p *ndis.CallParameters) (connID uint32, flags byte, ok bool) {
	if p == nil || p.MediaParameters == nil {
		return 0, 0, false
	}
	sp := p.MediaParameters.MediaSpecific
	if sp.ParamType != ParamMedia || len(sp.Parameters) != MediaBlobLen {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(sp.Parameters), sp.Parameters[4], true
}

// ConnectionID is the Connection Identifier IE's value for a connection
// identifier (VPCI<<16 | VCI), explicitly signalled.
func ConnectionID(id uint32) uni.ConnectionID {
	return uni.ConnectionID{VPAssociated: uni.VPExplicit, Exclusive: uni.ExclusiveVCI, VPCI: uint16(id >> 16), VCI: uint16(id)}
}

// ConnectionIE is ConnectionID in an IE of its own.
func ConnectionIE(id uint32) *uni.ConnectionID {
	ci := ConnectionID(id)
	return &ci
}

// ConnectionOf is the connection identifier (VPCI<<16 | VCI) a Connection
// Identifier IE names.
func ConnectionOf(ci *uni.ConnectionID) uint32 { return uint32(ci.VPCI)<<16 | uint32(ci.VCI) }
