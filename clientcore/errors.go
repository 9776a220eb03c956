package clientcore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Errors for requests the Core refuses before it asks the mediator.
var (
	// ErrShutdown: the Core is shutting down.
	ErrShutdown = errors.New("the client is shutting down")
	// ErrWithdrawn: the call manager withdrew its address family.
	ErrWithdrawn = errors.New("the call manager withdrew its address family")
	// ErrNoAf: the call manager has not registered its address family yet.
	ErrNoAf = errors.New("the call manager has not registered its address family")
	// ErrClosing: the call is being closed (or is over); nothing more is
	// sent on it.
	ErrClosing = errors.New("the call is closing")
	// ErrNotConnected: the call is not connected yet.
	ErrNotConnected = errors.New("the call is not connected")
	// ErrCallGone: the call went away before the request completed.
	ErrCallGone = errors.New("the call went away")
	// ErrQoSBusy: a QoS change of the call is already in progress.
	ErrQoSBusy = errors.New("a QoS change of the call is already in progress")
	// ErrFlowsUnknown: the call's flowspecs are not known.
	ErrFlowsUnknown = errors.New("the call's flowspecs are not known")
	// ErrNotMultipoint: parties are added to point-to-multipoint calls only.
	ErrNotMultipoint = errors.New("not a multipoint call")
	// ErrLastParty: the last party of a call is not dropped; the call is
	// closed instead (R-PTY-10).
	ErrLastParty = errors.New("the call's last party; close the call instead")
)

// AfError says the call manager's address family could not be opened.
type AfError struct{ Status ndis.Status }

func (e *AfError) Error() string {
	return fmt.Sprintf("the address family could not be opened (%v)", e.Status)
}

// StatusError is a request the mediator or the call manager refused with
// Status: Op names the request ("NdisCoCreateVc").
type StatusError struct {
	Op     string
	Status ndis.Status
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s: %v", e.Op, e.Status) }

// CallError is a call (or party) the network did not set up, or a QoS
// change it refused: the NDIS status of the completion and the Q.2931
// cause behind it.
type CallError struct {
	Status ndis.Status
	Cause  uni.Cause
}

func (e *CallError) Error() string { return Describe(e.Status, e.Cause) }

// Describe says status st and cause c in words: "NDIS_STATUS_... (cause 3,
// no route to destination)".
func Describe(st ndis.Status, c uni.Cause) string {
	return fmt.Sprintf("%v (cause %d, %s)", st, int(c), CauseText(c))
}

// CauseText is cause c's name without its number.
func CauseText(c uni.Cause) string {
	return strings.TrimSuffix(c.String(), " ("+strconv.Itoa(int(c))+")")
}

// SapError is a SAP the call manager refused.
type SapError struct{ Status ndis.Status }

func (e *SapError) Error() string {
	hint := ""
	switch e.Status {
	case ndis.StatusInvalidData, ndis.StatusSapInUse:
		hint = " (is the service already registered?)"
	}
	return fmt.Sprintf("the call manager refused the SAP: %v%s", e.Status, hint)
}

// StateError is a request the call's state does not allow: State says
// what the call is ("closing", "still being set up", "over").
type StateError struct{ State string }

func (e *StateError) Error() string { return "the call is " + e.State }

// SDUSizeError is an SDU larger than the call's maximum: it is not sent.
type SDUSizeError struct{ Size, Max int }

func (e *SDUSizeError) Error() string {
	return fmt.Sprintf("SDU of %d octets refused: larger than the call's MaxSduSize (%d); not sent", e.Size, e.Max)
}
