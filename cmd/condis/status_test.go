package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/ipvc"
	"github.com/condis-project/condis/node"
)

// TestPrintStatus: one line per item; VCs and violations with their parts,
// the largest first; SAPs with their clients, and their state unless they
// are registered.
func TestPrintStatus(t *testing.T) {
	st := node.NodeStatus{Node: "alpha", Address: "479999c0d10000000000000000.8ed3f6ad685b.00", Version: "devel 9fd8c13a41b2", Topology: node.TopologySplit,
		Started: time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC), Uptime: 3723.4,
		Vcs: 13, VcStates: map[string]int{"CONNECTED": 11, "CLOSING": 1, "IDLE": 1},
		Saps: []node.SapStatus{{Sap: "sap#2", Service: "echo", Client: "control", State: "REGISTERED"},
			{Sap: "sap#5", Client: "rogue", State: "DEREGISTERING"}},
		Violations: map[string]uint64{"R-VC-6": 3, "R-CLOSE-1": 1}}
	var b bytes.Buffer
	if err := printStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	want := `node        alpha
address     479999c0d10000000000000000.8ed3f6ad685b.00
version     devel 9fd8c13a41b2
topology    split
uptime      1h2m3s, since 2026-12-07T01:00:00Z
vcs         13: 11 CONNECTED, 1 CLOSING, 1 IDLE
saps        2: echo (control), sap#5 (rogue, DEREGISTERING)
violations  4: R-VC-6 3, R-CLOSE-1 1
`
	if b.String() != want {
		t.Errorf("status:\n%s\nwant:\n%s", b.String(), want)
	}

	// With IP over condis: the device, its peers, packets, calls, drops.
	b.Reset()
	withIP := node.NodeStatus{Node: "alpha", Started: st.Started, IP: &node.IPStatus{Device: "condis0", Address: "198.18.0.1/24", MTU: 1400,
		Peers: []ipvc.PeerInfo{{Node: "beta", Phase: "up", VCs: []string{"vc#3"}}, {Node: "gamma", Phase: "refused"}},
		Stats: ipvc.Stats{TxPackets: 10, TxBytes: 1200, RxPackets: 9, RxBytes: 1100, ICMPSent: 2, Calls: 3, Connected: 2, Refused: 1,
			Accepted: 1, Closed: 2, IdleClosed: 1, NoRoute: 1, TooBig: 4}}}
	if err := printStatus(&b, withIP); err != nil {
		t.Fatal(err)
	}
	wantIP := `ip          condis0 198.18.0.1/24, mtu 1400
ip peers    beta up (vc#3), gamma refused
ip packets  tx 10 (1200 octets), rx 9 (1100 octets), 2 ICMP errors sent
ip calls    out 3 (2 connected, 1 failed), in 1 accepted, 0 refused; 2 closed (1 idle)
ip drops    no route 1, too big 4
`
	if !strings.HasSuffix(b.String(), "violations  none\n"+wantIP) {
		t.Errorf("status with IP:\n%s\nwant it to end:\n%s", b.String(), wantIP)
	}

	b.Reset()
	if err := printStatus(&b, node.NodeStatus{Node: "idle", Started: st.Started}); err != nil {
		t.Fatal(err)
	}
	want = `node        idle
address     -
version     -
topology    -
uptime      0s, since 2026-12-07T01:00:00Z
vcs         0
saps        0
violations  none
`
	if b.String() != want {
		t.Errorf("status of an idle node:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestStatusCommand: `condis status` on a node with a listener and a call,
// as text and as JSON.
func TestStatusCommand(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	_, _, _ = runningCall(t, n, "any/echo")
	var out bytes.Buffer
	if err := start(nil, &out, nil, "status", "--control", n.sock, "--json").wait(); err != nil {
		t.Fatal(err)
	}
	var st node.NodeStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if st.Node != t.Name() || st.Vcs != 2 || st.VcStates["CONNECTED"] != 2 || len(st.Saps) != 1 || st.Saps[0].Service != "echo" ||
		st.Saps[0].Client != "control" || st.ViolationTotal() != 0 {
		t.Errorf("status: %s", out.String())
	}

	out.Reset()
	if err := start(nil, &out, nil, "status", "--control", n.sock).wait(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"node        " + t.Name() + "\n", "vcs         2: 2 CONNECTED\n", "saps        1: echo (control)\n", "violations  none\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status does not say %q:\n%s", want, out.String())
		}
	}
}

// TestStatusPeersNotRunning: both commands say in one line that the node
// is not running, and that a socket is needed when none is given.
func TestStatusPeersNotRunning(t *testing.T) {
	sock := t.TempDir() + "/none.sock"
	for _, cmd := range []string{"status", "peers"} {
		err := start(nil, io.Discard, nil, cmd, "--control", sock).wait()
		oneLine(t, err, "node not running ("+sock+": no such socket)")
		err = start(nil, io.Discard, nil, cmd, "--control", "").wait()
		oneLine(t, err, "no control socket")
	}
}
