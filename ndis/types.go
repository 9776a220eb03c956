package ndis

import "sync/atomic"

// AF is an NDIS_AF address-family type (spec §7.7).
type AF uint32

// Address-family types from ndis.h.
const (
	AFQ2931      AF = 0x1   // CO_ADDRESS_FAMILY_Q2931: ATM UNI Q.2931
	AFPsched     AF = 0x2   // CO_ADDRESS_FAMILY_PSCHED
	AFL2TP       AF = 0x3   // CO_ADDRESS_FAMILY_L2TP
	AFIrda       AF = 0x4   // CO_ADDRESS_FAMILY_IRDA
	AF1394       AF = 0x5   // CO_ADDRESS_FAMILY_1394
	AFPPP        AF = 0x6   // CO_ADDRESS_FAMILY_PPP
	AFInfiniband AF = 0x7   // CO_ADDRESS_FAMILY_INFINIBAND
	AFTapi       AF = 0x800 // CO_ADDRESS_FAMILY_TAPI
	AFTapiProxy  AF = 0x801 // CO_ADDRESS_FAMILY_TAPI_PROXY
)

// AddressFamily models CO_ADDRESS_FAMILY: a signalling protocol and its version.
// Two registrations conflict when their AddressFamily types are equal; the
// versions are for clients deciding in ProtocolCoAfRegisterNotify (spec §7.7).
type AddressFamily struct {
	AddressFamily AF
	MajorVersion  uint32
	MinorVersion  uint32
}

// CallFlags are the CO_CALL_PARAMETERS Flags (spec §7.1).
type CallFlags uint32

// CO_CALL_PARAMETERS flag values.
const (
	PermanentVC           CallFlags = 0x01 // PERMANENT_VC
	CallParametersChanged CallFlags = 0x02 // CALL_PARAMETERS_CHANGED
	QueryCallParameters   CallFlags = 0x04 // QUERY_CALL_PARAMETERS
	BroadcastVC           CallFlags = 0x08 // BROADCAST_VC
	MultipointVC          CallFlags = 0x10 // MULTIPOINT_VC
)

// CallParameters models CO_CALL_PARAMETERS. The buffer handed to ClMakeCall
// belongs to the call manager until the call completes (R-CALL-2), which may
// rewrite it and flag CallParametersChanged.
type CallParameters struct {
	Flags             CallFlags
	CallMgrParameters *CallManagerParameters
	MediaParameters   *MediaParameters
}

// CallManagerParameters models CO_CALL_MANAGER_PARAMETERS: what the call
// manager signals (spec §7.2).
type CallManagerParameters struct {
	Transmit        Flowspec
	Receive         Flowspec
	CallMgrSpecific SpecificParameters
}

// ServiceType is a FLOWSPEC SERVICETYPE value (qos.h).
type ServiceType uint32

// SERVICETYPE values (spec §7.3).
const (
	ServiceNoTraffic          ServiceType = 0x0
	ServiceBestEffort         ServiceType = 0x1
	ServiceControlledLoad     ServiceType = 0x2
	ServiceGuaranteed         ServiceType = 0x3
	ServiceNetworkUnavailable ServiceType = 0x4
	ServiceGeneralInformation ServiceType = 0x5
	ServiceNoChange           ServiceType = 0x6
	ServiceNonConforming      ServiceType = 0x9
	ServiceNetworkControl     ServiceType = 0xA
	ServiceQualitative        ServiceType = 0xD
)

// Special FLOWSPEC values (qos.h).
const (
	QoSNotSpecified      uint32 = 0xFFFFFFFF // QOS_NOT_SPECIFIED
	PositiveInfinityRate uint32 = 0xFFFFFFFE // POSITIVE_INFINITY_RATE
)

// Flowspec models the qos.h FLOWSPEC of one direction of a call.
type Flowspec struct {
	TokenRate          uint32 // bytes/s, long-term rate
	TokenBucketSize    uint32 // bytes
	PeakBandwidth      uint32 // bytes/s
	Latency            uint32 // microseconds
	DelayVariation     uint32 // microseconds
	ServiceType        ServiceType
	MaxSduSize         uint32 // bytes
	MinimumPolicedSize uint32 // bytes
}

// MediaFlags are the CO_MEDIA_PARAMETERS Flags (spec §7.4).
type MediaFlags uint32

// CO_MEDIA_PARAMETERS flag values.
const (
	ReceiveTimeIndication MediaFlags = 0x001
	UseTimeStamps         MediaFlags = 0x002
	TransmitVC            MediaFlags = 0x004
	ReceiveVC             MediaFlags = 0x008
	IndicateErredPackets  MediaFlags = 0x010
	IndicateEndOfTx       MediaFlags = 0x020
	ReserveResourcesVC    MediaFlags = 0x040
	RoundDownFlow         MediaFlags = 0x080
	RoundUpFlow           MediaFlags = 0x100
)

// MediaParameters models CO_MEDIA_PARAMETERS: what the miniport (or the
// miniport half of an MCM) uses to activate a VC.
type MediaParameters struct {
	Flags           MediaFlags
	ReceivePriority uint32
	ReceiveSizeHint uint32
	MediaSpecific   SpecificParameters
}

// SpecificParameters models CO_SPECIFIC_PARAMETERS: an AF- or medium-specific
// blob identified by ParamType.
type SpecificParameters struct {
	ParamType  uint32
	Parameters []byte
}

// CoSap models CO_SAP: an AF-specific service access point descriptor.
type CoSap struct {
	SapType uint32
	Sap     []byte
}

// Clone returns a deep copy of p, so a driver can keep parameters past the
// point where the buffer stops being its own (R-IN-10).
func (p *CallParameters) Clone() *CallParameters {
	if p == nil {
		return nil
	}
	c := &CallParameters{Flags: p.Flags}
	if p.CallMgrParameters != nil {
		cm := *p.CallMgrParameters
		cm.CallMgrSpecific.Parameters = append([]byte(nil), cm.CallMgrSpecific.Parameters...)
		c.CallMgrParameters = &cm
	}
	if p.MediaParameters != nil {
		mp := *p.MediaParameters
		mp.MediaSpecific.Parameters = append([]byte(nil), mp.MediaSpecific.Parameters...)
		c.MediaParameters = &mp
	}
	return c
}

// SendFlags are NdisCoSendNetBufferLists flags.
type SendFlags uint32

// SendCompleteFlags are NdisMCoSendNetBufferListsComplete flags.
type SendCompleteFlags uint32

// ReceiveFlags are NdisMCoIndicateReceiveNetBufferLists flags.
type ReceiveFlags uint32

// ReturnFlags are NdisReturnNetBufferLists flags.
type ReturnFlags uint32

// Data-path flags.
const (
	SendFlagsDispatchLevel         SendFlags         = 0x1 // NDIS_SEND_FLAGS_DISPATCH_LEVEL
	SendFlagsCheckForLoopback      SendFlags         = 0x2 // NDIS_SEND_FLAGS_CHECK_FOR_LOOPBACK
	SendCompleteFlagsDispatchLevel SendCompleteFlags = 0x1 // NDIS_SEND_COMPLETE_FLAGS_DISPATCH_LEVEL
	ReceiveFlagsDispatchLevel      ReceiveFlags      = 0x1 // NDIS_RECEIVE_FLAGS_DISPATCH_LEVEL
	// ReceiveFlagsResources (NDIS_RECEIVE_FLAGS_RESOURCES) means the
	// protocol must copy the data and may not keep the lists (R-DATA-6).
	ReceiveFlagsResources ReceiveFlags = 0x2
)

// NetBufferList models a NET_BUFFER_LIST carrying one packet (SDU). Lists are
// chained through Next. The sender owns nothing in a submitted chain until
// it is completed (R-DATA-3); the mediator tracks ownership to catch double
// completion and sends that never come back.
type NetBufferList struct {
	Next *NetBufferList
	// Data is the packet.
	Data []byte
	// Status is set per list by the miniport when it completes a send.
	Status Status
	// SourceHandle is the VC the list was sent or indicated on (R-DATA-2).
	SourceHandle *Vc
	// Context is free for the owning driver.
	Context any

	// owner is who holds the list inside the mediator's bookkeeping (an
	// nblOwner), read and changed atomically: the lists of different VCs
	// are handled under different locks, and a list handed to two of them
	// at once (a driver's mistake) must be caught, not raced on.
	owner uint32
}

const (
	nblFree       uint32 = iota
	nblSending           // handed to a miniport by CoSendNetBufferLists
	nblIndicated         // indicated up, not yet returned
	nblCompleting        // being handed back to its owner by the mediator
)

func (n *NetBufferList) ownerIs(o uint32) bool { return atomic.LoadUint32(&n.owner) == o }

func (n *NetBufferList) setOwner(o uint32) { atomic.StoreUint32(&n.owner, o) }

// claimChain moves every list of the chain from nblFree to o. If one is not
// free, the lists claimed so far are freed again and it returns false.
func claimChain(nbls *NetBufferList, o uint32) bool {
	for n := nbls; n != nil; n = n.Next {
		if !atomic.CompareAndSwapUint32(&n.owner, nblFree, o) {
			for x := nbls; x != n; x = x.Next {
				x.setOwner(nblFree)
			}
			return false
		}
	}
	return true
}

// releaseChain frees every list of a chain the mediator holds (claimed, or
// marked nblCompleting). Next is read before each list is freed: a freed
// list is its driver's again.
func releaseChain(nbls *NetBufferList) {
	for n := nbls; n != nil; {
		next := n.Next
		n.setOwner(nblFree)
		n = next
	}
}

// Len returns the number of lists in the chain starting at n.
func (n *NetBufferList) Len() int {
	c := 0
	for ; n != nil; n = n.Next {
		c++
	}
	return c
}

// OidRequestType is the NDIS_OID_REQUEST RequestType.
type OidRequestType uint32

// Request types.
const (
	OidQuery  OidRequestType = 0 // NdisRequestQueryInformation
	OidSet    OidRequestType = 1 // NdisRequestSetInformation
	OidMethod OidRequestType = 2 // NdisRequestMethod
)

// Oid is an NDIS object identifier.
type Oid uint32

// Call-manager and client OIDs (spec §7.9).
const (
	OidCoAddPvc             Oid = 0xFE000001
	OidCoDeletePvc          Oid = 0xFE000002
	OidCoGetCallInformation Oid = 0xFE000003
	OidCoAddAddress         Oid = 0xFE000004
	OidCoDeleteAddress      Oid = 0xFE000005
	OidCoGetAddresses       Oid = 0xFE000006
	OidCoAddressChange      Oid = 0xFE000007
	OidCoSignalingEnabled   Oid = 0xFE000008
	OidCoSignalingDisabled  Oid = 0xFE000009
	OidCoAfClose            Oid = 0xFE00000A
)

// OidRequest models NDIS_OID_REQUEST. The requester owns it and must keep it
// unchanged until the request completes (R-OID-3).
type OidRequest struct {
	Type              OidRequestType
	Oid               Oid
	InformationBuffer []byte
	BytesWritten      int
	BytesRead         int
	BytesNeeded       int

	route oidRoute // set by the mediator while the request is outstanding
}

// StatusIndication models NDIS_STATUS_INDICATION.
type StatusIndication struct {
	StatusCode Status
	Buffer     []byte
}
