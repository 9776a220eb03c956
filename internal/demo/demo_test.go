package demo

import (
	"strings"
	"testing"

	"github.com/condis-project/condis/memdrv"
)

// The demo must pass in both topologies and every completion mode, and its
// output must show the mediator events a reader follows.
func TestDemo(t *testing.T) {
	for _, split := range []bool{false, true} {
		for _, mode := range []memdrv.Mode{memdrv.Immediate, memdrv.Pend, memdrv.PendEarly} {
			var b strings.Builder
			if err := Run(&b, Options{Split: split, Mode: mode}); err != nil {
				t.Fatalf("split=%v mode=%v: %v\n%s", split, mode, err, b.String())
			}
			out := b.String()
			for _, want := range []string{"NdisClMakeCall", "ProtocolClIncomingCloseCall", "NdisClAddParty",
				"NdisClDropParty", "every step behaved"} {
				if !strings.Contains(out, want) {
					t.Errorf("split=%v mode=%v: output lacks %q", split, mode, want)
				}
			}
			if strings.Contains(out, "FAIL") || strings.Contains(out, "violation") {
				t.Errorf("split=%v mode=%v: output reports a failure:\n%s", split, mode, out)
			}
		}
	}
}
