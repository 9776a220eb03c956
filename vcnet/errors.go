package vcnet

import (
	"errors"
	"strconv"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Sentinels for the common reasons a call fails, for errors.Is with a
// *CallError.
var (
	// ErrRefused: the called node refused the call (cause 21, call
	// rejected: its trust setting, allow list or listener).
	ErrRefused = errors.New("vcnet: call refused")
	// ErrNoSuchService: nothing listens on the service at the destination
	// (cause 88, incompatible destination).
	ErrNoSuchService = errors.New("vcnet: no such service")
	// ErrUnreachable: no route to the destination node, or no such node
	// (causes 1, 2, 3); also a node this node's trust does not admit,
	// refused before any SETUP with cause 3.
	ErrUnreachable = errors.New("vcnet: destination unreachable")
	// ErrDestOutOfOrder: the destination node is out of order (cause 27,
	// NDIS_STATUS_DEST_OUT_OF_ORDER).
	ErrDestOutOfOrder = errors.New("vcnet: destination out of order")
)

// CallError is a call the network did not set up, or closed abnormally:
// the NDIS status of the completion (or close) and the Q.2931 cause behind
// it. It matches the sentinels with errors.Is.
type CallError struct {
	// Op is what failed: "dial", or "call" for a call closed under the
	// Conn.
	Op string
	// Dest is the destination as dialled ("beta/echo").
	Dest string
	// Status is the NDIS status; StatusText its name as the node gave it
	// (over a control socket the name is all there is).
	Status     ndis.Status
	StatusText string
	// Cause is the Q.2931 cause.
	Cause uni.Cause
	// Text is the node's own words, if it gave any.
	Text string
}

func (e *CallError) Error() string {
	if e.Text != "" {
		return "vcnet: " + e.Text
	}
	st := e.StatusText
	if st == "" {
		st = e.Status.String()
	}
	return "vcnet: " + e.Op + " " + e.Dest + ": " + st + " (cause " + itoa(int(e.Cause)) + ", " + clientcore.CauseText(e.Cause) + ")"
}

// Is matches the sentinel that says what the cause means.
func (e *CallError) Is(target error) bool {
	switch target {
	case ErrRefused:
		return e.Cause == uni.CauseCallRejected
	case ErrNoSuchService:
		return e.Cause == uni.CauseIncompatibleDestination
	case ErrUnreachable:
		return e.Cause == uni.CauseUnallocatedNumber || e.Cause == uni.CauseNoRouteToDestination ||
			e.Cause == uni.CauseNoRouteToTransitNetwork
	case ErrDestOutOfOrder:
		return e.Cause == uni.CauseDestinationOutOfOrder || e.Status == ndis.StatusDestOutOfOrder
	}
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }

// causeOf is the cause numbered n.
func causeOf(n int) uni.Cause { return uni.Cause(n) }
