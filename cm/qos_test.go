package cm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/miniport"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/transport/sim"
)

// call is one call set up between two hosts' clients.
type call struct {
	out, in       *clientcore.VC
	outRec, inRec *recorder
	sap           *clientcore.SAP
}

// connect calls callee's svc from caller with flows tx and rx and waits
// until both ends have the call up.
func connect(t *testing.T, caller, callee *host, svc string, tx, rx ndis.Flowspec) call {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := newListener(false)
	sap, err := callee.client.Listen(ctx, svc, l)
	if err != nil {
		t.Fatalf("%s: listen %s: %v", callee.name, svc, err)
	}
	rec := newRecorder()
	out, err := caller.client.Call(ctx, callee.name+"/"+svc, clientcore.CallOptions{Tx: tx, Rx: rx}, rec)
	if err != nil {
		t.Fatalf("%s -> %s: call: %v", caller.name, callee.name, err)
	}
	in, inRec := <-l.offered, <-l.rec
	waitUntil(t, "the callee's call up", func() bool { inRec.mu.Lock(); defer inRec.mu.Unlock(); return inRec.up })
	return call{out: out, in: in, outRec: rec, inRec: inRec, sap: sap}
}

// modify asks for new flowspecs on v and waits for the outcome.
func modify(t *testing.T, v *clientcore.VC, tx, rx ndis.Flowspec) (*clientcore.Flows, error) {
	t.Helper()
	type result struct {
		f   *clientcore.Flows
		err error
	}
	done := make(chan result, 2)
	v.ModifyQoS(tx, rx, func(f *clientcore.Flows, err error) { done <- result{f, err} })
	select {
	case r := <-done:
		return r.f, r.err
	case <-time.After(time.Minute):
		t.Fatalf("ModifyQoS on %s never completed", v.Name())
		return nil, nil
	}
}

// inForce is the traffic h's miniport enforces for the VC h (split).
func inForce(t *testing.T, h *host, v *clientcore.VC) miniport.VCParams {
	t.Helper()
	p, ok := h.mp.InForce(v.Handle())
	if !ok {
		t.Fatalf("%s: the miniport has no VC %s bound", h.name, v.Name())
	}
	return p
}

func controlledLoad(rate, bucket, peak, sdu uint32) ndis.Flowspec {
	return ndis.Flowspec{TokenRate: rate, TokenBucketSize: bucket, PeakBandwidth: peak, MaxSduSize: sdu, ServiceType: ndis.ServiceControlledLoad}
}

// TestModifyQoSSplit: NdisClModifyCallQoS on a call with a split node
// (miniport + cm), asked from the split node and from its peer (integrated
// or split), accepted and refused (cause 37 over the answering node's
// MaxRate), with the miniport completing activations at once and pending
// them (miniport.Config.Pend). An accepted change reaches the miniport by
// re-activating the active VC (its shaping and policing follow: the
// traffic in force changes); a refused one leaves the traffic in force
// exactly as it was, and the far client is told of accepted changes only.
func TestModifyQoSSplit(t *testing.T) {
	for _, pend := range []bool{false, true} {
		for _, peerSplit := range []bool{false, true} {
			for _, fromSplit := range []bool{true, false} {
				name := fmt.Sprintf("pend=%v/peerSplit=%v/fromSplit=%v", pend, peerSplit, fromSplit)
				t.Run(name, func(t *testing.T) { modifyCase(t, pend, peerSplit, fromSplit) })
			}
		}
	}
}

func modifyCase(t *testing.T, pend, peerSplit, fromSplit bool) {
	synctest.Test(t, func(t *testing.T) {
		net := sim.New(sim.Config{DetectTimeout: time.Second})
		defer net.Close()
		var ev events
		// The node that answers the change refuses more than 150 000 B/s.
		const limit = 150_000
		aOpts := hostOpts{split: true, trace: ev.add, mpc: miniport.Config{Pend: pend}}
		bOpts := hostOpts{split: peerSplit, mpc: miniport.Config{Pend: pend}}
		if fromSplit {
			bOpts.maxRate = limit
		} else {
			aOpts.maxRate = limit
		}
		a, b := newHostOpts(t, net, "alpha", aOpts), newHostOpts(t, net, "beta", bOpts)
		cl := controlledLoad(48_000, 4_800, 96_000, 1000)
		c := connect(t, a, b, "svc", cl, cl)
		// asker asks for the change; the other end answers it.
		asker, answerer, askerRec, answererRec := c.out, c.in, c.outRec, c.inRec
		askHost, ansHost := a, b
		if !fromSplit {
			asker, answerer, askerRec, answererRec = c.in, c.out, c.inRec, c.outRec
			askHost, ansHost = b, a
		}

		// Accepted: the asker doubles its transmit rates.
		tx := cl
		tx.TokenRate, tx.PeakBandwidth = 96_000, 144_000
		f, err := modify(t, asker, tx, cl)
		if err != nil || f == nil || f.Tx.TokenRate != 96_000 || f.Tx.PeakBandwidth != 144_000 {
			t.Fatalf("accepted ModifyQoS: flows %+v, err %v", f, err)
		}
		answererRec.mu.Lock()
		told := append([]clientcore.Flows(nil), answererRec.qos...)
		answererRec.mu.Unlock()
		if len(told) != 1 || told[0].Rx.TokenRate != 96_000 || told[0].Rx.PeakBandwidth != 144_000 {
			t.Errorf("the answering client was told %+v, want one change with receive rate 96000, peak 144000", told)
		}
		for _, x := range []struct {
			h      *host
			v      *clientcore.VC
			sender bool
		}{{askHost, asker, true}, {ansHost, answerer, false}} {
			if !x.h.split() {
				continue
			}
			p := inForce(t, x.h, x.v)
			got := p.Receive
			if x.sender {
				got = p.Transmit
			}
			if got.TokenRate != 96_000 || got.PeakBandwidth != 144_000 {
				t.Errorf("%s's miniport enforces %+v on the changed direction, want rate 96000, peak 144000", x.h.name, got)
			}
		}
		if pend {
			// The re-activation went through the miniport's pended path.
			vc := c.out.Handle().String()
			if n := strings.Count(strings.Join(ev.lines(), "\n"), "ProtocolCmActivateVcComplete("+vc+")"); n < 2 {
				t.Errorf("alpha: %d ProtocolCmActivateVcComplete for %s, want the activation's and the re-activation's", n, vc)
			}
		}

		// Refused by the answering node (over its limit): nothing changes.
		var before []miniport.VCParams
		for _, h := range []*host{a, b} {
			if h.split() {
				v := c.out
				if h == b {
					v = c.in
				}
				before = append(before, inForce(t, h, v))
			}
		}
		tx2 := tx
		tx2.PeakBandwidth = 200_000
		_, err = modify(t, asker, tx2, cl)
		var ce *clientcore.CallError
		if !errors.As(err, &ce) || ce.Status != ndis.StatusCellrateNotAvailable {
			t.Errorf("refused ModifyQoS: %v, want a CallError with CELLRATE_NOT_AVAILABLE", err)
		}
		i := 0
		for _, h := range []*host{a, b} {
			if h.split() {
				v := c.out
				if h == b {
					v = c.in
				}
				if got := inForce(t, h, v); !got.Equal(before[i]) {
					t.Errorf("%s's miniport changed a VC on a refused change:\n got %+v\nwant %+v", h.name, got, before[i])
				}
				i++
			}
		}
		answererRec.mu.Lock()
		if n := len(answererRec.qos); n != 1 {
			t.Errorf("the answering client was told of %d changes after a refused one, want 1", n)
		}
		answererRec.mu.Unlock()
		askerRec.mu.Lock()
		if n := len(askerRec.qos); n != 1 {
			t.Errorf("the asking client saw %d QoSChanged, want 1 (its accepted change)", n)
		}
		askerRec.mu.Unlock()

		// The call still carries data both ways.
		if err := c.out.Send([]byte("after")); err != nil {
			t.Fatal(err)
		}
		if err := c.in.Send([]byte("back")); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for len(c.inRec.received()) != 1 || len(c.outRec.received()) != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("data after the changes: callee received %q, caller %q; alpha's miniport %+v", c.inRec.received(), c.outRec.received(), a.mp.Stats())
			}
			time.Sleep(time.Millisecond)
		}
		if st := closeAndWait(t, c.out); st != ndis.StatusSuccess {
			t.Errorf("close: %v", st)
		}
		<-c.inRec.closed
		c.sap.Close(clientcore.ReasonLocal)
		for _, h := range []*host{a, b} {
			waitUntil(t, h.name+": no call VC left", func() bool { return len(h.callVCs()) == 0 })
		}
		a.finish()
		b.finish()
		if t.Failed() {
			ev.mu.Lock()
			for _, e := range ev.all {
				t.Log(e.String())
			}
			ev.mu.Unlock()
		}
	})
}
