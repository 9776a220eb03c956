package mcm_test

import (
	"bytes"
	"testing"
	"testing/synctest"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/transport/sim"
)

// TestCallDataAndClose: a point-to-point call from a to b's "echo"
// service, data both ways, the caller hangs up; the callee is told with
// NDIS_STATUS_SUCCESS (normal clearing) and the MCM deletes its VC. Every
// mode in which the callee's client answers (at once, pended, pended
// early).
func TestCallDataAndClose(t *testing.T) {
	for _, mode := range []memdrv.Mode{memdrv.Immediate, memdrv.Pend, memdrv.PendEarly} {
		t.Run(mode.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newSimWorld(t, sim.Config{})
				defer w.close()
				a, b := w.addNode("a", nil), w.addNode("b", nil)
				ca, cb := a.client("alice"), b.client("bob")
				cb.SetMode(mode)
				b.listen(cb, "echo")

				params := q2931.CallParams("b", "echo", bestEffort(1000), bestEffort(1000), false)
				va, vb := w.connect(ca, cb, params)

				// What the callee was offered: the caller's flowspecs seen
				// from the other end, and who called.
				got := memdrv.See(cb, func() *ndis.CallParameters { return vb.Params })
				if got.CallMgrParameters.Receive.MaxSduSize != 1000 || got.CallMgrParameters.Transmit.MaxSduSize != 1000 {
					t.Errorf("offered flowspecs %+v", got.CallMgrParameters)
				}
				if got.CallMgrParameters.Receive.ServiceType != ndis.ServiceBestEffort {
					t.Errorf("offered service type %v", got.CallMgrParameters.Receive.ServiceType)
				}

				// Data both ways.
				p1, p2 := payload(1000, 1), payload(10, 7)
				if st := w.send(ca, va, p1, p2); st[0] != ndis.StatusSuccess || st[1] != ndis.StatusSuccess {
					t.Fatalf("send a->b: %v", st)
				}
				rx := w.received(cb, vb, 2)
				if !bytes.Equal(rx[0], p1) || !bytes.Equal(rx[1], p2) {
					t.Errorf("b received %d+%d octets, not what a sent", len(rx[0]), len(rx[1]))
				}
				p3 := payload(999, 3)
				if st := w.send(cb, vb, p3); st[0] != ndis.StatusSuccess {
					t.Fatalf("send b->a: %v", st)
				}
				if rx := w.received(ca, va, 1); !bytes.Equal(rx[0], p3) {
					t.Errorf("a received %d octets, not what b sent", len(rx[0]))
				}

				// Both MCMs list the call with its counters. A receive is
				// counted once the client's handler has returned, which may
				// be just after the client saw it.
				w.waitFor("the receives counted", func() bool {
					ca, cb := a.d.Calls(), b.d.Calls()
					return len(ca) == 1 && len(cb) == 1 && ca[0].Stats.RxPackets == 1 && cb[0].Stats.RxPackets == 2
				})
				ci := a.d.Calls()
				if len(ci) != 1 || ci[0].State != "active" || ci[0].Peer != "b" || ci[0].Service != "echo" || ci[0].Direction != "outgoing" ||
					ci[0].Stats.TxPackets != 2 || ci[0].Stats.TxBytes != 1010 || ci[0].Stats.RxPackets != 1 {
					t.Errorf("a's calls: %+v", ci)
				}
				ci = b.d.Calls()
				if len(ci) != 1 || ci[0].Direction != "incoming" || ci[0].Peer != "a" || ci[0].ConnID == 0 || ci[0].Stats.RxPackets != 2 {
					t.Errorf("b's calls: %+v", ci)
				}

				w.hangUp(ca, va, cb, vb, ndis.StatusSuccess)
				w.deleted(cb, vb)
				if n := len(a.d.Calls()) + len(b.d.Calls()); n != 0 {
					t.Errorf("%d call(s) listed after the close", n)
				}
				if st := ca.DeleteVc(va); st != ndis.StatusSuccess {
					t.Errorf("DeleteVc: %v", st)
				}
			})
		})
	}
}
