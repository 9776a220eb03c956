package cm_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/transport/sim"
)

// closeAtOnce is a ListenHandler that accepts each call and asks for it to
// be closed at once, before the call manager has said it is up.
type closeAtOnce struct {
	rec *recorder
}

func (l *closeAtOnce) Registered(*clientcore.SAP, error)        {}
func (l *closeAtOnce) Ended(*clientcore.SAP, clientcore.Reason) {}
func (l *closeAtOnce) Offered(_ *clientcore.SAP, o *clientcore.Offer) clientcore.Handler {
	o.VC.Close(clientcore.ReasonLocal, nil)
	return l.rec
}

// TestCloseOfAnAcceptedCall (R-IN-6): a callee that closes a call as soon
// as it accepted it, while the CONNECT ACKNOWLEDGE is still on its way,
// does not cross its call manager's Ndis(M)CmDispatchCallConnected: the
// client core's NdisClCloseCall waits for ProtocolClCallConnected, so the
// callee is told the call was up before it closes it, and the caller sees
// it connected and closed by the far end — on a split and on an
// integrated callee. (Closing from ACCEPTED raced the dispatch: the
// mediator refused the crossing NdisMCmDispatchCallConnected with R-IN-6.)
func TestCloseOfAnAcceptedCall(t *testing.T) {
	for _, split := range []bool{true, false} {
		name := "integrated"
		if split {
			name = "split"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := sim.New(sim.Config{DetectTimeout: time.Second, Signal: sim.SignalConfig{Delay: 5 * time.Millisecond}})
				defer net.Close()
				a, b := newHost(t, net, "alpha", false), newHost(t, net, "beta", split)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				callee := newRecorder()
				if _, err := b.client.Listen(ctx, "once", &closeAtOnce{rec: callee}); err != nil {
					t.Fatal(err)
				}
				caller := newRecorder()
				if _, err := a.client.Call(ctx, "beta/once", clientcore.CallOptions{Tx: flow(), Rx: flow()}, caller); err != nil {
					t.Fatal(err)
				}
				<-caller.closed
				<-callee.closed
				callee.mu.Lock()
				if !callee.up || len(callee.ends) != 1 || !callee.ends[0].WasUp || callee.ends[0].Reason != clientcore.ReasonLocal {
					t.Errorf("callee: up %v, ends %+v; want told the call was up, then one local close", callee.up, callee.ends)
				}
				callee.mu.Unlock()
				caller.mu.Lock()
				if !caller.up || len(caller.ends) != 1 || caller.ends[0].Reason != clientcore.ReasonRemote {
					t.Errorf("caller: up %v, ends %+v; want connected, then closed by the far end", caller.up, caller.ends)
				}
				caller.mu.Unlock()
				a.finish()
				b.finish()
			})
		})
	}
}
