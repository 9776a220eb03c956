package ndis_test

import (
	"maps"
	"testing"

	"github.com/condis-project/condis/internal/ndistest"
	"github.com/condis-project/condis/memdrv"
)

// TestCountedNotWalked: CallStates counts the VCs by call state and
// VcClient finds a VC's client by its name, as a snapshot would have them,
// through a call's life in every topology and completion mode (a call
// closed at once and one pended); a deleted VC, a name that is not a VC's
// and a VC number never given out are found nowhere.
func TestCountedNotWalked(t *testing.T) {
	forEach(t, func(t *testing.T, topo ndistest.Topology, mode memdrv.Mode) {
		n := ndistest.New(t, topo, mode)
		m := n.M
		ca, _, _ := n.Ready("svc")
		// The split topology's signalling VCs are there before any call.
		sig := m.CallStates()
		if got := sig["IDLE"]; got != len(m.Snapshot().Vcs) {
			t.Errorf("no call: CallStates() = %v\n%s", sig, n.Dump())
		}
		v, _ := call(t, n, n.Caller, ca, "svc", false)
		in := n.Callee.LastIncoming()
		want := maps.Clone(sig)
		want["CONNECTED"] = 2
		if got := m.CallStates(); !maps.Equal(got, want) {
			t.Errorf("a call up: CallStates() = %v, want %v", got, want)
		}
		for _, c := range []struct {
			name, client string
		}{{v.H.String(), n.Caller.Name}, {in.H.String(), n.Callee.Name}} {
			if got, ok := m.VcClient(c.name); !ok || got != c.client {
				t.Errorf("VcClient(%s) = %q, %v; want %q", c.name, got, ok, c.client)
			}
		}
		n.Caller.CloseCall(v)
		n.Run()
		if st := n.Caller.DeleteVc(v); st != 0 {
			t.Fatalf("delete: %v", st)
		}
		if got := m.CallStates(); !maps.Equal(got, sig) {
			t.Errorf("the call closed, its VCs deleted: CallStates() = %v, want %v\n%s", got, sig, n.Dump())
		}
		for _, name := range []string{v.H.String(), in.H.String(), "vc#", "vc#x", "vc#99999", "sap#1", "", "VC#1"} {
			if got, ok := m.VcClient(name); ok {
				t.Errorf("VcClient(%q) = %q, found", name, got)
			}
		}
	})
}
