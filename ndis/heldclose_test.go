package ndis_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/condis-project/condis/ndis"
)

// Regression (found building package mcm): a call manager that completes a
// MakeCall with SUCCESS while its ProtocolCmMakeCall is still running
// (R-GEN-10: the completion of a network reply on another goroutine may
// beat the handler's return) and then learns the call was closed (the far
// end hung up at once, the link died) indicates the close. It cannot know
// the client has not been told the call is up. The mediator refused that
// close (R-CLOSE-20) and the call stayed up; now it holds the close and
// indicates it right after the client's MakeCallComplete.
func TestRegressionCloseAfterEarlyMakeCallComplete(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.cm.makeCall = func(v *rlVc, p *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
			rlMust(t, x.cm.activate(v.h, p), "activate")
			v.active.Store(true)
			rlMust(t, x.cm.makeCallComplete(ndis.StatusSuccess, v.h, nil, nil, p), "early completion")
			rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusDestOutOfOrder, v.h), "close before NDIS told the client")
			return nil, ndis.StatusPending
		}
		vc := x.newVc(x.c1)
		_, st := x.c1.b.ClMakeCall(vc, rlParams(), nil)
		rlIs(t, "ClMakeCall", st, ndis.StatusPending)
		var got []string
		for _, e := range x.c1.all() {
			if strings.HasPrefix(e, "MakeCallComplete") || strings.HasPrefix(e, "IncomingCloseCall") {
				got = append(got, e)
			}
		}
		want := []string{"MakeCallComplete(NDIS_STATUS_SUCCESS,party=false)", "IncomingCloseCall(NDIS_STATUS_DEST_OUT_OF_ORDER)"}
		if !slices.Equal(got, want) {
			t.Errorf("client saw %q, want %q", got, want)
		}
		x.wantState(vc, "ACTIVE/CLOSE_INDICATED")
		x.hangup(x.c1, vc, nil)
		x.Teardown()
	})
}

// The held close is dropped when the client closes the call from its
// MakeCallComplete handler: the two closes crossed.
func TestRegressionHeldCloseCrossesClientClose(t *testing.T) {
	rlBoth(t, func(t *testing.T, x *rlFx) {
		x.cm.makeCall = func(v *rlVc, p *ndis.CallParameters, party *ndis.Party) (any, ndis.Status) {
			rlMust(t, x.cm.activate(v.h, p), "activate")
			v.active.Store(true)
			rlMust(t, x.cm.makeCallComplete(ndis.StatusSuccess, v.h, nil, nil, p), "early completion")
			rlMust(t, x.cm.dispatchIncomingCloseCall(ndis.StatusSuccess, v.h), "close before NDIS told the client")
			return nil, ndis.StatusPending
		}
		vc := x.newVc(x.c1)
		x.c1.makeDone = func() { rlMust(t, x.c1.b.ClCloseCall(vc, nil, nil), "close from MakeCallComplete") }
		_, st := x.c1.b.ClMakeCall(vc, rlParams(), nil)
		rlIs(t, "ClMakeCall", st, ndis.StatusPending)
		if n := x.c1.count("IncomingCloseCall"); n != 0 {
			t.Errorf("%d incoming close(s) after the client's own close", n)
		}
		x.wantState(vc, "INACTIVE/CLOSED")
		rlMust(t, x.c1.b.CoDeleteVc(vc), "delete")
		x.Teardown()
	})
}
