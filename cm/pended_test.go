package cm_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport/sim"
)

// events records a mediator's trace.
type events struct {
	mu  sync.Mutex
	all []ndis.Event
}

func (e *events) add(ev ndis.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

// lines are the events of the NdisCm*/ProtocolCm* functions as
// "Kind Func Status".
func (e *events) lines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if strings.Contains(ev.Func, "Cm") || strings.Contains(ev.Func, "MCo") {
			out = append(out, ev.String())
		}
	}
	return out
}

// TestPendedCompletions: a call from the split node to a peer it has no
// link with, as alpha's mediator sees it: ProtocolCmMakeCall pends; the
// signalling VC's NdisCmActivateVc pends while the miniport dials; the
// miniport completes it (NdisMCoActivateVcComplete ->
// ProtocolCmActivateVcComplete); only then is the call's VC activated and
// the MakeCall completed. The far end's close reaches the client
// (NdisCmDispatchIncomingCloseCall), whose close deactivates the VC
// before NdisCmCloseCallComplete.
func TestPendedCompletions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{DetectTimeout: time.Second})
		defer net.Close()
		var ev events
		a := newHostWith(t, net, "alpha", true, ev.add, miniport.Config{})
		b := newHost(t, net, "beta", false)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l := newListener(false)
		if _, err := b.client.Listen(ctx, "svc", l); err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		out, err := a.client.Call(ctx, "beta/svc", clientcore.CallOptions{Tx: flow(), Rx: flow()}, rec)
		if err != nil {
			t.Fatal(err)
		}
		in := <-l.offered
		<-l.rec
		closeAndWait(t, in)
		<-rec.closed
		vc := out.Handle().String()
		// The signalling VC's activation returns PENDING; its completion
		// comes from the miniport's goroutine once MiniportCoActivateVc has
		// returned, and may be traced before or after the mediator's
		// PENDING return to the CM, and before or after the CM's own
		// PENDING return from ProtocolCmMakeCall: those are checked apart.
		want := []string{
			"-> NdisMCoActivateVcComplete(sig)",
			"=> ProtocolCmActivateVcComplete(sig)",
			"<- NdisCmActivateVc(" + vc + ") = NDIS_STATUS_SUCCESS",
			"-> NdisCmMakeCallComplete(" + vc + ")",
			"-> NdisCmDispatchIncomingCloseCall(" + vc + ")",
			"=> ProtocolCmCloseCall(" + vc + ")",
			"<- NdisCmDeactivateVc(" + vc + ") = NDIS_STATUS_SUCCESS",
			"-> NdisCmCloseCallComplete(" + vc + ")",
		}
		got := ev.lines()
		// The signalling VC is the first one activated that is not the call's.
		sig := "?"
		for _, line := range got {
			if _, obj, ok := strings.Cut(line, "-> NdisCmActivateVc("); ok && !strings.HasPrefix(obj, vc+")") {
				sig, _, _ = strings.Cut(obj, ")")
				break
			}
		}
		i := 0
		for _, line := range got {
			if i < len(want) && strings.HasSuffix(line, strings.ReplaceAll(want[i], "(sig)", "("+sig+")")) {
				i++
			}
		}
		if i < len(want) {
			t.Errorf("alpha's mediator never showed %q in this order; it showed:\n%s", want[i], strings.Join(got, "\n"))
		}
		for _, pended := range []string{"<- NdisCmActivateVc(" + sig + ") = NDIS_STATUS_PENDING", "<= ProtocolCmMakeCall(" + vc + ") = NDIS_STATUS_PENDING"} {
			if !slices.ContainsFunc(got, func(line string) bool { return strings.HasSuffix(line, pended) }) {
				t.Errorf("alpha's mediator never showed %q; it showed:\n%s", pended, strings.Join(got, "\n"))
			}
		}
		a.finish()
		b.finish()
	})
}
