package node

import (
	"context"
	"testing"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// `condis calls` names the far end of every call of the node, not only of
// the control plane's own: here a call made by another client bound to
// alpha's mediator shows peer beta and service echo, from the call
// manager (Q2931CallManager is a CallDescriber).
func TestCallsNameTheFarEndOfOtherClientsCalls(t *testing.T) {
	tn := startTwoNodes(t)
	fab := memdrv.NewFabric()
	c, st := memdrv.NewClient(tn.alpha.Mediator, "other", tn.alpha.MCM.Adapter(), fab)
	if st != ndis.StatusSuccess {
		t.Fatalf("bind: %v", st)
	}
	c.Sap = q2931.ServiceSap
	waitUntil(t, fab, "AF open", func() bool {
		a := c.Af()
		return a != nil && memdrv.See(c, func() bool { return a.Open.Done })
	})
	v, _ := c.CreateVc(c.Af())
	c.MakeCall(v, q2931.CallParams("beta", "echo", bestEffortFlow(), bestEffortFlow(), false), false)
	waitUntil(t, fab, "MakeCall", func() bool { return memdrv.See(c, func() bool { return v.Make.Done }) })
	if r := memdrv.See(c, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusSuccess {
		t.Fatalf("MakeCall: %v", r)
	}

	calls, err := ListCalls(context.Background(), tn.alpha.Config.Control)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, ci := range calls {
		if ci.Vc == v.H.String() {
			found = true
			if ci.Client != "other" || ci.Peer != "beta" || ci.Service != "echo" || ci.State != "CONNECTED" {
				t.Errorf("the other client's call: %+v", ci)
			}
		}
	}
	if !found {
		t.Errorf("%s not listed: %+v", v.H, calls)
	}

	c.CloseCall(v)
	waitUntil(t, fab, "CloseCall", func() bool { return memdrv.See(c, func() bool { return v.Close.Done }) })
	c.DeleteVc(v)
	a := c.Af()
	c.CloseAf(a)
	waitUntil(t, fab, "CloseAf", func() bool { return memdrv.See(c, func() bool { return a.Close.Done }) })
	if st := c.Unbind(); st != ndis.StatusSuccess {
		t.Errorf("unbind: %v", st)
	}
}

// waitUntil runs the client's Loop until cond holds (at most 10 s).
func waitUntil(t *testing.T, fab *memdrv.Fabric, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		fab.Run()
		time.Sleep(time.Millisecond)
	}
}

func bestEffortFlow() ndis.Flowspec {
	return ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, TokenRate: ndis.QoSNotSpecified, TokenBucketSize: ndis.QoSNotSpecified,
		PeakBandwidth: 1_000_000, Latency: ndis.QoSNotSpecified, DelayVariation: ndis.QoSNotSpecified, MaxSduSize: 1000,
		MinimumPolicedSize: ndis.QoSNotSpecified}
}
