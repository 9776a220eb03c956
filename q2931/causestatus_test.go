package q2931

import (
	"testing"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// TestStatusForCause: every cause of field-notes §5.4 maps to its NDIS
// status; the pairs ndis.h documents are exact.
func TestStatusForCause(t *testing.T) {
	for _, tc := range []struct {
		c uni.Cause
		s ndis.Status
	}{
		// Documented in ndis.h.
		{3, ndis.StatusNoRouteToDestination},
		{27, ndis.StatusDestOutOfOrder},
		{35, ndis.StatusVcNotAvailable},
		{45, ndis.StatusVcNotAvailable},
		{37, ndis.StatusCellrateNotAvailable},
		{49, ndis.StatusIncompatibleQoS},
		{93, ndis.StatusAalParamsUnsupported},
		// field-notes §5.4 proposals.
		{1, ndis.StatusInvalidAddress},
		{16, ndis.StatusSuccess},
		{17, ndis.StatusFailure},
		{18, ndis.StatusFailure},
		{21, ndis.StatusFailure},
		{22, ndis.StatusInvalidAddress},
		{28, ndis.StatusInvalidAddress},
		{31, ndis.StatusSuccess},
		{36, ndis.StatusVcNotAvailable},
		{41, ndis.StatusFailure},
		{47, ndis.StatusResources},
		{57, ndis.StatusNotSupported},
		{58, ndis.StatusNotSupported},
		{63, ndis.StatusNotSupported},
		{65, ndis.StatusNotSupported},
		{73, ndis.StatusIncompatibleQoS},
		{78, ndis.StatusAalParamsUnsupported},
		{88, ndis.StatusInvalidSap},
		{92, ndis.StatusResources},
		{102, ndis.StatusFailure},
		{104, ndis.StatusFailure},
		{111, ndis.StatusFailure},
		// Protocol causes and values nobody defined.
		{81, ndis.StatusFailure},
		{101, ndis.StatusFailure},
		{0, ndis.StatusFailure},
		{126, ndis.StatusFailure},
		{200, ndis.StatusFailure},
	} {
		if got := StatusForCause(tc.c); got != tc.s {
			t.Errorf("StatusForCause(%v) = %v, want %v", tc.c, got, tc.s)
		}
	}
}

// TestCauseForStatus: each status a client may return maps to the cause
// condis puts on the wire, and back to the same status.
func TestCauseForStatus(t *testing.T) {
	for _, tc := range []struct {
		s ndis.Status
		c uni.Cause
	}{
		{ndis.StatusSuccess, uni.CauseNormalCallClearing},
		{ndis.StatusFailure, uni.CauseCallRejected},
		{ndis.StatusInvalidAddress, uni.CauseUnallocatedNumber},
		{ndis.StatusNoRouteToDestination, uni.CauseNoRouteToDestination},
		{ndis.StatusDestOutOfOrder, uni.CauseDestinationOutOfOrder},
		{ndis.StatusVcNotAvailable, uni.CauseNoVPCIVCIAvailable},
		{ndis.StatusCellrateNotAvailable, uni.CauseCellRateUnavailable},
		{ndis.StatusIncompatibleQoS, uni.CauseQoSUnavailable},
		{ndis.StatusAalParamsUnsupported, uni.CauseAALUnsupported},
		{ndis.StatusInvalidSap, uni.CauseIncompatibleDestination},
		{ndis.StatusResources, uni.CauseResourceUnavailable},
		{ndis.StatusNotSupported, uni.CauseServiceUnavailable},
	} {
		if got := CauseForStatus(tc.s); got != tc.c {
			t.Errorf("CauseForStatus(%v) = %v, want %v", tc.s, got, tc.c)
		}
		if back := StatusForCause(tc.c); back != tc.s {
			t.Errorf("%v → %v → %v: not a round trip", tc.s, tc.c, back)
		}
	}
	// No failure becomes success on the other side, whatever its severity
	// bits (NOT_ACCEPTED, NOT_RECOGNIZED and CALL_ACTIVE look like
	// successes to a "non-negative" test).
	for _, s := range []ndis.Status{ndis.StatusPending, ndis.StatusNotAccepted, ndis.StatusNotRecognized,
		ndis.StatusCallActive, ndis.StatusInvalidParameter, ndis.StatusClosing, ndis.StatusRequestAborted,
		ndis.StatusSapInUse, ndis.StatusVcNotActivated, ndis.StatusInvalidData, ndis.Status(0xdeadbeef)} {
		c := CauseForStatus(s)
		if StatusForCause(c) == ndis.StatusSuccess {
			t.Errorf("%v → cause %v → success", s, c)
		}
	}
}

// TestCauseStatusTable: the table names each cause once, and each status
// has exactly one canonical cause, which maps back to it.
func TestCauseStatusTable(t *testing.T) {
	causes := map[uni.Cause]bool{}
	canonical := map[ndis.Status]int{}
	statuses := map[ndis.Status]bool{}
	for _, r := range causeStatus {
		if causes[r.Cause] {
			t.Errorf("cause %v listed twice", r.Cause)
		}
		causes[r.Cause] = true
		statuses[r.Status] = true
		if r.Canonical {
			canonical[r.Status]++
		}
	}
	for s := range statuses {
		if canonical[s] != 1 {
			t.Errorf("%v has %d canonical causes, want 1", s, canonical[s])
		}
	}
	// Every named cause is in the table.
	for c := uni.Cause(0); c <= uni.MaxCauseValue; c++ {
		if c.Named() && !causes[c] {
			t.Errorf("cause %v missing from the table", c)
		}
	}
}

// TestCauseExplains: a cause explains the status it maps to, and a
// restart's cause 41 also explains RestartStatus (DEST_OUT_OF_ORDER), so
// tools show 41, not 27, for a call a restart cleared; it explains no
// other status.
func TestCauseExplains(t *testing.T) {
	for _, tc := range []struct {
		c    uni.Cause
		st   ndis.Status
		want bool
	}{
		{16, ndis.StatusSuccess, true},
		{27, ndis.StatusDestOutOfOrder, true},
		{41, ndis.StatusFailure, true},
		{41, RestartStatus, true},
		{41, ndis.StatusSuccess, false},
		{21, ndis.StatusDestOutOfOrder, false},
		{16, ndis.StatusFailure, false},
	} {
		if got := CauseExplains(tc.c, tc.st); got != tc.want {
			t.Errorf("CauseExplains(%d, %v) = %v, want %v", tc.c, tc.st, got, tc.want)
		}
	}
}
