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
// events, the Q.2931 messages each call manager sent and received with
// their causes, what became of the calls, and the timing of the cut-off
// node — all from typed events (package trace).
func TestNetworkDemo(t *testing.T) {
	for _, mode := range []memdrv.Mode{memdrv.Immediate, memdrv.Pend, memdrv.PendEarly} {
		t.Run(mode.String(), func(t *testing.T) {
			var b strings.Builder
			if err := RunNetwork(&b, NetOptions{Mode: mode}); err != nil {
				t.Fatalf("%v\n%s", err, b.String())
			}
			out := b.String()
			for _, want := range [][]string{
				{"alpha alice      -> NdisClMakeCall"},
				{"beta  bob        => ProtocolClIncomingCall"},
				{"alpha alice      -> NdisClAddParty"},
				{"alpha alice      -> NdisClDropParty"},
				{"alpha ~ >> beta  SETUP cr=0x1/0 service echo"},
				{"beta  ~ << alpha SETUP cr=0x1/0 service echo"},
				{"beta  ~ call offered from alpha, service echo (vc#"},
				{"beta  ~ >> alpha CONNECT cr=0x1/1"},
				{"alpha ~ call connected to beta/echo, setup "},
				{"alpha ~ << beta  RELEASE cr=0x1/1 cause normal call clearing (16)"},
				{"alpha ~ >> beta  RELEASE COMPLETE cr=0x1/0"},
				{"alpha ~ << beta  RELEASE COMPLETE cr=", "cause incompatible destination (88)"},
				{"alpha ~ call failed to beta/nosuch: incompatible destination (88), NDIS_STATUS_INVALID_SAP"},
				{"gamma ~ call refused from beta, service news: call rejected (21)"},
				{"beta  ~ << gamma RELEASE COMPLETE cr=", "cause call rejected (21)"},
				{"alpha ~ >> gamma SETUP cr=", "service news ep 0"},
				{"alpha ~ link to gamma down: timeout"},
				{"alpha ~ call released by the network: destination out of order (27), NDIS_STATUS_DEST_OUT_OF_ORDER"},
				{"IncomingCloseCall(NDIS_STATUS_DEST_OUT_OF_ORDER)"},
				{"T309 2s (shortened for the demo"},
				{"every step behaved"},
			} {
				if !hasLine(out, want...) {
					t.Errorf("output has no line with %q\n%s", want, out)
				}
			}
			if strings.Contains(out, "   FAIL ") || strings.Contains(out, "contract violation") {
				t.Errorf("output reports a failure:\n%s", out)
			}
		})
	}
}

// hasLine reports whether one line of out contains every one of parts.
func hasLine(out string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
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
