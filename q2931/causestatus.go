package q2931

import (
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// causeStatus is the one table between Q.2931 causes and NDIS statuses
// (field-notes §5.4). Rows marked "documented" are the pairs the WDK's
// ndis.h states; the others are condis's choice. Canonical marks the cause
// CauseForStatus returns for the row's status (one per status).
var causeStatus = []struct {
	Cause     uni.Cause
	Status    ndis.Status
	Canonical bool
}{
	{uni.CauseUnallocatedNumber, ndis.StatusInvalidAddress, true},
	{uni.CauseNoRouteToTransitNetwork, ndis.StatusNoRouteToDestination, false},
	{uni.CauseNoRouteToDestination, ndis.StatusNoRouteToDestination, true}, // documented
	{uni.CauseVPCIVCIUnacceptable, ndis.StatusVcNotAvailable, false},
	{uni.CauseNormalCallClearing, ndis.StatusSuccess, true},
	{uni.CauseUserBusy, ndis.StatusFailure, false},
	{uni.CauseNoUserResponding, ndis.StatusFailure, false},
	{uni.CauseCallRejected, ndis.StatusFailure, true},
	{uni.CauseNumberChanged, ndis.StatusInvalidAddress, false},
	{uni.CauseRejectsCLIR, ndis.StatusFailure, false},
	{uni.CauseDestinationOutOfOrder, ndis.StatusDestOutOfOrder, true}, // documented
	{uni.CauseInvalidNumberFormat, ndis.StatusInvalidAddress, false},
	{uni.CauseResponseToStatusEnquiry, ndis.StatusFailure, false},
	{uni.CauseNormalUnspecified, ndis.StatusSuccess, false},
	{uni.CauseVPCIVCIUnavailable, ndis.StatusVcNotAvailable, false}, // documented
	{uni.CauseVPCIVCIAssignFailure, ndis.StatusVcNotAvailable, false},
	{uni.CauseCellRateUnavailable, ndis.StatusCellrateNotAvailable, true}, // documented
	{uni.CauseNetworkOutOfOrder, ndis.StatusFailure, false},
	{uni.CauseTemporaryFailure, ndis.StatusFailure, false},
	{uni.CauseAccessInfoDiscarded, ndis.StatusFailure, false},
	{uni.CauseNoVPCIVCIAvailable, ndis.StatusVcNotAvailable, true}, // documented
	{uni.CauseResourceUnavailable, ndis.StatusResources, true},
	{uni.CauseQoSUnavailable, ndis.StatusIncompatibleQoS, true}, // documented
	{uni.CauseCellRateUnavailable30, ndis.StatusCellrateNotAvailable, false},
	{uni.CauseBearerNotAuthorized, ndis.StatusNotSupported, false},
	{uni.CauseBearerNotAvailable, ndis.StatusNotSupported, false},
	{uni.CauseServiceUnavailable, ndis.StatusNotSupported, true},
	{uni.CauseBearerNotImplemented, ndis.StatusNotSupported, false},
	{uni.CauseUnsupportedTraffic, ndis.StatusIncompatibleQoS, false},
	{uni.CauseAALUnsupported, ndis.StatusAalParamsUnsupported, true}, // UNI 3.1 code; condis sends it
	{uni.CauseInvalidCallRef, ndis.StatusFailure, false},
	{uni.CauseNoSuchChannel, ndis.StatusFailure, false},
	{uni.CauseIncompatibleDestination, ndis.StatusInvalidSap, true},
	{uni.CauseInvalidEndpointRef, ndis.StatusFailure, false},
	{uni.CauseInvalidTransitNetwork, ndis.StatusFailure, false},
	{uni.CauseTooManyAddParty, ndis.StatusResources, false},
	{uni.CauseAALUnsupported30, ndis.StatusAalParamsUnsupported, false}, // documented (UNI 3.0 code)
	{uni.CauseMandatoryIEMissing, ndis.StatusFailure, false},
	{uni.CauseMessageTypeUnknown, ndis.StatusFailure, false},
	{uni.CauseIEUnknown, ndis.StatusFailure, false},
	{uni.CauseInvalidIEContents, ndis.StatusFailure, false},
	{uni.CauseMessageIncompatible, ndis.StatusFailure, false},
	{uni.CauseTimerExpiry, ndis.StatusFailure, false},
	{uni.CauseIncorrectLength, ndis.StatusFailure, false},
	{uni.CauseProtocolError, ndis.StatusFailure, false},
}

// Defaults for values the table does not list.
const (
	defaultStatus = ndis.StatusFailure
	defaultCause  = uni.CauseCallRejected
)

var (
	statusOfCause [uni.MaxCauseValue + 1]ndis.Status
	causeOfStatus = map[ndis.Status]uni.Cause{}
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
func StatusForCause(c uni.Cause) ndis.Status {
	if c > uni.MaxCauseValue {
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
func CauseForStatus(s ndis.Status) uni.Cause {
	if c, ok := causeOfStatus[s]; ok {
		return c
	}
	return defaultCause
}

// RestartStatus is the status with which a call cleared by a restart (a
// RESTART, ours or the peer's, or the peer's new incarnation; cause 41,
// temporary failure) is indicated to its client: the destination was out
// of order (docs/protocol.md, restart procedures).
const RestartStatus = ndis.StatusDestOutOfOrder

// CauseExplains reports whether a call that ended with cause c is the one
// a client was told of with status st: st is c's status
// (StatusForCause), or c is 41 and st RestartStatus (a restart cleared
// the call). Tools use it to name the cause beside the status only when
// it is the cause behind that status.
func CauseExplains(c uni.Cause, st ndis.Status) bool {
	return StatusForCause(c) == st || c == uni.CauseTemporaryFailure && st == RestartStatus
}

// IndicationStatus is the NDIS status an indication of a uni.Link reports:
// the status of its cause (StatusForCause), NDIS_STATUS_SUCCESS when it
// carries no cause.
func IndicationStatus(ind uni.Indication) ndis.Status {
	if ind.Cause.Value == 0 {
		return ndis.StatusSuccess
	}
	return StatusForCause(ind.Cause.Value)
}
