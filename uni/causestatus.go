package uni

import "github.com/condis-project/condis/ndis"

// causeStatus is the one table between Q.2931 causes and NDIS statuses
// (field-notes §5.4). Rows marked "documented" are the pairs the WDK's
// ndis.h states; the others are condis's choice. Canonical marks the cause
// CauseForStatus returns for the row's status (one per status).
var causeStatus = []struct {
	Cause     Cause
	Status    ndis.Status
	Canonical bool
}{
	{CauseUnallocatedNumber, ndis.StatusInvalidAddress, true},
	{CauseNoRouteToTransitNetwork, ndis.StatusNoRouteToDestination, false},
	{CauseNoRouteToDestination, ndis.StatusNoRouteToDestination, true}, // documented
	{CauseVPCIVCIUnacceptable, ndis.StatusVcNotAvailable, false},
	{CauseNormalCallClearing, ndis.StatusSuccess, true},
	{CauseUserBusy, ndis.StatusFailure, false},
	{CauseNoUserResponding, ndis.StatusFailure, false},
	{CauseCallRejected, ndis.StatusFailure, true},
	{CauseNumberChanged, ndis.StatusInvalidAddress, false},
	{CauseRejectsCLIR, ndis.StatusFailure, false},
	{CauseDestinationOutOfOrder, ndis.StatusDestOutOfOrder, true}, // documented
	{CauseInvalidNumberFormat, ndis.StatusInvalidAddress, false},
	{CauseResponseToStatusEnquiry, ndis.StatusFailure, false},
	{CauseNormalUnspecified, ndis.StatusSuccess, false},
	{CauseVPCIVCIUnavailable, ndis.StatusVcNotAvailable, false}, // documented
	{CauseVPCIVCIAssignFailure, ndis.StatusVcNotAvailable, false},
	{CauseCellRateUnavailable, ndis.StatusCellrateNotAvailable, true}, // documented
	{CauseNetworkOutOfOrder, ndis.StatusFailure, false},
	{CauseTemporaryFailure, ndis.StatusFailure, false},
	{CauseAccessInfoDiscarded, ndis.StatusFailure, false},
	{CauseNoVPCIVCIAvailable, ndis.StatusVcNotAvailable, true}, // documented
	{CauseResourceUnavailable, ndis.StatusResources, true},
	{CauseQoSUnavailable, ndis.StatusIncompatibleQoS, true}, // documented
	{CauseCellRateUnavailable30, ndis.StatusCellrateNotAvailable, false},
	{CauseBearerNotAuthorized, ndis.StatusNotSupported, false},
	{CauseBearerNotAvailable, ndis.StatusNotSupported, false},
	{CauseServiceUnavailable, ndis.StatusNotSupported, true},
	{CauseBearerNotImplemented, ndis.StatusNotSupported, false},
	{CauseUnsupportedTraffic, ndis.StatusIncompatibleQoS, false},
	{CauseAALUnsupported, ndis.StatusAalParamsUnsupported, true}, // UNI 3.1 code; condis sends it
	{CauseInvalidCallRef, ndis.StatusFailure, false},
	{CauseNoSuchChannel, ndis.StatusFailure, false},
	{CauseIncompatibleDestination, ndis.StatusInvalidSap, true},
	{CauseInvalidEndpointRef, ndis.StatusFailure, false},
	{CauseInvalidTransitNetwork, ndis.StatusFailure, false},
	{CauseTooManyAddParty, ndis.StatusResources, false},
	{CauseAALUnsupported30, ndis.StatusAalParamsUnsupported, false}, // documented (UNI 3.0 code)
	{CauseMandatoryIEMissing, ndis.StatusFailure, false},
	{CauseMessageTypeUnknown, ndis.StatusFailure, false},
	{CauseIEUnknown, ndis.StatusFailure, false},
	{CauseInvalidIEContents, ndis.StatusFailure, false},
	{CauseMessageIncompatible, ndis.StatusFailure, false},
	{CauseTimerExpiry, ndis.StatusFailure, false},
	{CauseIncorrectLength, ndis.StatusFailure, false},
	{CauseProtocolError, ndis.StatusFailure, false},
}

// Defaults for values the table does not list.
const (
	defaultStatus = ndis.StatusFailure
	defaultCause  = CauseCallRejected
)

var (
	statusOfCause [maxCauseValue + 1]ndis.Status
	causeOfStatus = map[ndis.Status]Cause{}
)

func init() {
	for i := range statusOfCause {
		statusOfCause[i] = defaultStatus
	}
	for _, r := range causeStatus {
		statusOfCause[r.Cause] = r.Status
		if r.Canonical {
			causeOfStatus[r.Status] = r.Cause
		}
	}
}

// StatusForCause returns the NDIS status the layer above reports for a
// Q.2931 cause: what a caller's MakeCallComplete, an IncomingCloseCall, an
// AddPartyComplete or a ModifyCallQoSComplete carries when the peer or the
// network gave that cause. Normal clearing (16, and UNI 3.0's 31) is
// NDIS_STATUS_SUCCESS; causes the table does not list are
// NDIS_STATUS_FAILURE.
func StatusForCause(c Cause) ndis.Status {
	if c > maxCauseValue {
		return defaultStatus
	}
	return statusOfCause[c]
}

// CauseForStatus returns the cause to put on the wire for an NDIS status:
// why a client refused an incoming call, a party or a modification, or
// closed a call. NDIS_STATUS_SUCCESS is 16 (normal call clearing); statuses
// without a cause of their own are 21 (call rejected), which maps back to
// NDIS_STATUS_FAILURE — never to success, whatever the severity bits of the
// status (NOT_ACCEPTED, NOT_RECOGNIZED and CALL_ACTIVE carry success
// severity).
func CauseForStatus(s ndis.Status) Cause {
	if c, ok := causeOfStatus[s]; ok {
		return c
	}
	return defaultCause
}
