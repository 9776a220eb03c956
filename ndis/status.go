package ndis

import "fmt"

// Status is an NDIS_STATUS value. The numeric values are those of the public
// Windows headers (ndis.h), so traces and logs match what a Windows driver
// developer sees in a debugger.
//
// Three codes (NOT_ACCEPTED, NOT_RECOGNIZED, CALL_ACTIVE) carry the success
// severity bits; never test a Status with a "non-negative means OK" rule.
// Compare against StatusSuccess exactly, or use IsSuccess.
type Status uint32

// NDIS_STATUS codes that appear on CoNDIS paths (spec §7.11).
const (
	StatusSuccess              Status = 0x00000000 // NDIS_STATUS_SUCCESS
	StatusPending              Status = 0x00000103 // NDIS_STATUS_PENDING
	StatusNotRecognized        Status = 0x00010001 // NDIS_STATUS_NOT_RECOGNIZED
	StatusNotAccepted          Status = 0x00010003 // NDIS_STATUS_NOT_ACCEPTED
	StatusCallActive           Status = 0x00010007 // NDIS_STATUS_CALL_ACTIVE
	StatusMediaConnect         Status = 0x4001000B // NDIS_STATUS_MEDIA_CONNECT
	StatusMediaDisconnect      Status = 0x4001000C // NDIS_STATUS_MEDIA_DISCONNECT
	StatusFailure              Status = 0xC0000001 // NDIS_STATUS_FAILURE
	StatusInvalidParameter     Status = 0xC000000D // NDIS_STATUS_INVALID_PARAMETER
	StatusResources            Status = 0xC000009A // NDIS_STATUS_RESOURCES
	StatusNotSupported         Status = 0xC00000BB // NDIS_STATUS_NOT_SUPPORTED
	StatusClosing              Status = 0xC0010002 // NDIS_STATUS_CLOSING
	StatusRequestAborted       Status = 0xC001000C // NDIS_STATUS_REQUEST_ABORTED
	StatusResetInProgress      Status = 0xC001000D // NDIS_STATUS_RESET_IN_PROGRESS
	StatusClosingIndicating    Status = 0xC001000E // NDIS_STATUS_CLOSING_INDICATING
	StatusInvalidLength        Status = 0xC0010014 // NDIS_STATUS_INVALID_LENGTH
	StatusInvalidData          Status = 0xC0010015 // NDIS_STATUS_INVALID_DATA
	StatusBufferTooShort       Status = 0xC0010016 // NDIS_STATUS_BUFFER_TOO_SHORT
	StatusInvalidOid           Status = 0xC0010017 // NDIS_STATUS_INVALID_OID
	StatusInvalidSap           Status = 0xC0010020 // NDIS_STATUS_INVALID_SAP
	StatusSapInUse             Status = 0xC0010021 // NDIS_STATUS_SAP_IN_USE
	StatusInvalidAddress       Status = 0xC0010022 // NDIS_STATUS_INVALID_ADDRESS
	StatusVcNotActivated       Status = 0xC0010023 // NDIS_STATUS_VC_NOT_ACTIVATED
	StatusDestOutOfOrder       Status = 0xC0010024 // NDIS_STATUS_DEST_OUT_OF_ORDER
	StatusVcNotAvailable       Status = 0xC0010025 // NDIS_STATUS_VC_NOT_AVAILABLE
	StatusCellrateNotAvailable Status = 0xC0010026 // NDIS_STATUS_CELLRATE_NOT_AVAILABLE
	StatusIncompatibleQoS      Status = 0xC0010027 // NDIS_STATUS_INCOMPATABLE_QOS (sic in ndis.h)
	StatusAalParamsUnsupported Status = 0xC0010028 // NDIS_STATUS_AAL_PARAMS_UNSUPPORTED
	StatusNoRouteToDestination Status = 0xC0010029 // NDIS_STATUS_NO_ROUTE_TO_DESTINATION
)

var statusNames = map[Status]string{
	StatusSuccess:              "NDIS_STATUS_SUCCESS",
	StatusPending:              "NDIS_STATUS_PENDING",
	StatusNotRecognized:        "NDIS_STATUS_NOT_RECOGNIZED",
	StatusNotAccepted:          "NDIS_STATUS_NOT_ACCEPTED",
	StatusCallActive:           "NDIS_STATUS_CALL_ACTIVE",
	StatusMediaConnect:         "NDIS_STATUS_MEDIA_CONNECT",
	StatusMediaDisconnect:      "NDIS_STATUS_MEDIA_DISCONNECT",
	StatusFailure:              "NDIS_STATUS_FAILURE",
	StatusInvalidParameter:     "NDIS_STATUS_INVALID_PARAMETER",
	StatusResources:            "NDIS_STATUS_RESOURCES",
	StatusNotSupported:         "NDIS_STATUS_NOT_SUPPORTED",
	StatusClosing:              "NDIS_STATUS_CLOSING",
	StatusRequestAborted:       "NDIS_STATUS_REQUEST_ABORTED",
	StatusResetInProgress:      "NDIS_STATUS_RESET_IN_PROGRESS",
	StatusClosingIndicating:    "NDIS_STATUS_CLOSING_INDICATING",
	StatusInvalidLength:        "NDIS_STATUS_INVALID_LENGTH",
	StatusInvalidData:          "NDIS_STATUS_INVALID_DATA",
	StatusBufferTooShort:       "NDIS_STATUS_BUFFER_TOO_SHORT",
	StatusInvalidOid:           "NDIS_STATUS_INVALID_OID",
	StatusInvalidSap:           "NDIS_STATUS_INVALID_SAP",
	StatusSapInUse:             "NDIS_STATUS_SAP_IN_USE",
	StatusInvalidAddress:       "NDIS_STATUS_INVALID_ADDRESS",
	StatusVcNotActivated:       "NDIS_STATUS_VC_NOT_ACTIVATED",
	StatusDestOutOfOrder:       "NDIS_STATUS_DEST_OUT_OF_ORDER",
	StatusVcNotAvailable:       "NDIS_STATUS_VC_NOT_AVAILABLE",
	StatusCellrateNotAvailable: "NDIS_STATUS_CELLRATE_NOT_AVAILABLE",
	StatusIncompatibleQoS:      "NDIS_STATUS_INCOMPATABLE_QOS",
	StatusAalParamsUnsupported: "NDIS_STATUS_AAL_PARAMS_UNSUPPORTED",
	StatusNoRouteToDestination: "NDIS_STATUS_NO_ROUTE_TO_DESTINATION",
}

// String returns the ndis.h name of the status, or its hex value if unknown.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("NDIS_STATUS(0x%08X)", uint32(s))
}

// ParseStatus returns the status named name, as String gives it
// ("NDIS_STATUS_SUCCESS" or "NDIS_STATUS(0x...)").
func ParseStatus(name string) (Status, bool) {
	for s, n := range statusNames {
		if n == name {
			return s, true
		}
	}
	var v uint32
	if _, err := fmt.Sscanf(name, "NDIS_STATUS(0x%08X)", &v); err == nil {
		return Status(v), true
	}
	return 0, false
}

// IsSuccess reports whether s is exactly NDIS_STATUS_SUCCESS.
func (s Status) IsSuccess() bool { return s == StatusSuccess }

// Error makes a Status usable as a Go error (for example from vcnet).
func (s Status) Error() string { return s.String() }
