package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/condis-project/condis/node"
)

// TestPrintCallsAddress: `condis calls` shows the node's ATM address on a
// line of its own above the table, and no such line for a call manager
// without one.
func TestPrintCallsAddress(t *testing.T) {
	calls := []node.CallInfo{{Vc: "vc#1", Kind: "outgoing", State: "CONNECTED", Peer: "beta", Service: "echo"}}
	for _, tc := range []struct{ address, first string }{
		{"479999c0d10000000000000000.8ed3f6ad685b.00", "address 479999c0d10000000000000000.8ed3f6ad685b.00"},
		{"", "VC "},
	} {
		var b bytes.Buffer
		if err := printCalls(&b, tc.address, calls); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		want := 2
		if tc.address != "" {
			want = 3
		}
		if len(lines) != want || !strings.HasPrefix(lines[0], tc.first) || !strings.HasPrefix(lines[len(lines)-2], "VC ") ||
			!strings.HasPrefix(lines[len(lines)-1], "vc#1 ") {
			t.Errorf("address %q:\n%s", tc.address, b.String())
		}
	}
}
