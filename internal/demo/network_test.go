package demo

import (
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// The story on three real nodes (QUIC on loopback) passes with the clients
// answering in every completion mode, and its output shows the mediator
// events, the Q.2931 causes and the timing of the cut-off node.
func TestNetworkDemo(t *testing.T) {
	for _, mode := range []memdrv.Mode{memdrv.Immediate, memdrv.Pend, memdrv.PendEarly} {
		t.Run(mode.String(), func(t *testing.T) {
			var b strings.Builder
			if err := RunNetwork(&b, NetOptions{Mode: mode}); err != nil {
				t.Fatalf("%v\n%s", err, b.String())
			}
			out := b.String()
			for _, want := range []string{
				"alpha alice      -> NdisClMakeCall",
				"beta  bob        => ProtocolClIncomingCall",
				"alpha alice      -> NdisClAddParty",
				"alpha alice      -> NdisClDropParty",
				"cause=incompatible destination (88)",
				"call refused by the ACL peer=beta service=news",
				"cause=call rejected (21)",
				"link down peer=gamma reason=timeout",
				"IncomingCloseCall(NDIS_STATUS_DEST_OUT_OF_ORDER)",
				"T309 2s (shortened for the demo",
				"every step behaved",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q\n%s", want, out)
				}
			}
			if strings.Contains(out, "   FAIL ") || strings.Contains(out, "contract violation") {
				t.Errorf("output reports a failure:\n%s", out)
			}
		})
	}
}

// A story that does not go as it must makes RunNetwork fail, naming the
// step, and still shuts every node down (TestMain checks for leaked
// goroutines): here bob refuses every call.
func TestNetworkDemoFailsWhenAStepMisbehaves(t *testing.T) {
	var b strings.Builder
	err := RunNetwork(&b, NetOptions{Quiet: true, T309: time.Second, afterBind: func(s *netStory) {
		s.bob.Accept = func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status { return ndis.StatusFailure }
	}})
	if err == nil || !strings.Contains(err.Error(), "step 4") {
		t.Fatalf("RunNetwork with a refusing callee: %v, want a failure in step 4\n%s", err, b.String())
	}
	if !strings.Contains(b.String(), "FAIL alice's MakeCall to beta/echo") {
		t.Errorf("the output does not show the failed check:\n%s", b.String())
	}
}
