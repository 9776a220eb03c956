package node

import (
	"context"
	"maps"
	"sync"
	"testing"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
)

// TestStatusVcsSapsViolations: the status answer counts the node's VCs by
// call state, lists every SAP with its service and the client that
// registered it (the control plane's listen session and another client's
// own), and counts contract violations by rule.
func TestStatusVcsSapsViolations(t *testing.T) {
	var mu sync.Mutex
	var seen []ndis.Violation
	n := startNodeWith(t, memdrv.Immediate, nodeOptions{onViolation: func(v ndis.Violation) {
		mu.Lock()
		seen = append(seen, v)
		mu.Unlock()
	}})
	st, err := QueryStatus(context.Background(), n.sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Vcs != 0 || len(st.VcStates) != 0 || len(st.Saps) != 0 {
		t.Errorf("status of a new node: %+v", st)
	}

	n.listen("echo", true)
	n.call(Request{Dest: "any/echo"})
	rogue, vcs := n.otherClient("rogue", 1)
	sap := rogue.RegisterSap(rogue.Af(), "other")
	n.mem.Drain()
	if s := memdrv.See(rogue, func() ndis.Status { return sap.Register.Status }); s != ndis.StatusSuccess {
		t.Fatalf("the rogue's SAP: %v", s)
	}
	t.Cleanup(func() {
		if s := rogue.DeregisterSap(sap); s != ndis.StatusSuccess && s != ndis.StatusPending {
			t.Errorf("NdisClDeregisterSap: %v", s)
		}
		n.mem.Drain()
	})
	if s := rogue.Binding().ClCloseCall(vcs[0].H, nil, nil); s == ndis.StatusSuccess || s == ndis.StatusPending {
		t.Fatalf("NdisClCloseCall on a VC with no call: %v", s)
	}
	mu.Lock()
	if len(seen) != 1 {
		t.Fatalf("the mediator reported %v, want one violation", seen)
	}
	rule := seen[0].Rule
	mu.Unlock()

	st, err = QueryStatus(context.Background(), n.sock)
	if err != nil {
		t.Fatal(err)
	}
	// The call's two VCs (outgoing and the one the call manager made for
	// the listener) and the rogue's VC, which has no call.
	if want := map[string]int{"CONNECTED": 2, "IDLE": 1}; st.Vcs != 3 || !maps.Equal(st.VcStates, want) {
		t.Errorf("%d VCs by state %v, want 3: %v", st.Vcs, st.VcStates, want)
	}
	if len(st.Saps) != 2 ||
		st.Saps[0].Service != "echo" || st.Saps[0].Client != "control" || st.Saps[0].State != "REGISTERED" ||
		st.Saps[1].Service != "other" || st.Saps[1].Client != "rogue" || st.Saps[1].State != "REGISTERED" ||
		st.Saps[0].Sap == "" || handleNumber(st.Saps[0].Sap) >= handleNumber(st.Saps[1].Sap) {
		t.Errorf("SAPs: %+v", st.Saps)
	}
	if len(st.Violations) != 1 || st.Violations[rule] != 1 {
		t.Errorf("violations %v, want %s: 1", st.Violations, rule)
	}
}

// TestSapService: each call manager reads the service of a Q.2931 SAP
// (one encoding, package q2931, for the network's and the in-memory call
// managers) and of no other format.
func TestSapService(t *testing.T) {
	var q Q2931CallManager
	mem := &MemCallManager{}
	for _, tc := range []struct {
		name    string
		read    func(*ndis.CoSap) (string, bool)
		sap     *ndis.CoSap
		service string
		ok      bool
	}{
		{"mcm reads its own", q.SapService, q2931.ServiceSap("echo"), "echo", true},
		{"mcm reads memdrv's", q.SapService, memdrv.ServiceSap("echo"), "echo", true},
		{"mcm refuses another format", q.SapService, &ndis.CoSap{SapType: 0xC0D15003, Sap: []byte("echo")}, "", false},
		{"mcm refuses an empty name", q.SapService, q2931.ServiceSap(""), "", false},
		{"memdrv reads its own", mem.SapService, memdrv.ServiceSap("echo"), "echo", true},
		{"memdrv reads mcm's", mem.SapService, q2931.ServiceSap("echo"), "echo", true},
		{"memdrv refuses another format", mem.SapService, &ndis.CoSap{SapType: 0xC0D15003, Sap: []byte("echo")}, "", false},
		{"nil", q.SapService, nil, "", false},
	} {
		if s, ok := tc.read(tc.sap); s != tc.service || ok != tc.ok {
			t.Errorf("%s: %q %v, want %q %v", tc.name, s, ok, tc.service, tc.ok)
		}
	}
}
