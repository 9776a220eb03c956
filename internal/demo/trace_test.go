package demo

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/internal/tsharktest"
)

// With TraceDir the story writes TraceDir/calls.md: one Mermaid
// sequenceDiagram per call of the story — seven: the remote close, the local
// close, the call to split gamma, the two refusals, the multipoint call,
// the cut-off (a split node's signalling VCs are no calls) — each under a
// heading that names who called whom and how it ended, each with both
// layers of every node the call touched: the CoNDIS requests and handlers
// and the Q.2931 messages between the call managers, with their causes.
func TestNetworkDemoTrace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "trace")
	var b strings.Builder
	if err := RunNetwork(&b, NetOptions{Quiet: true, T309: time.Second, TraceDir: dir}); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	md, err := os.ReadFile(filepath.Join(dir, "calls.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "7 calls drawn in "+filepath.Join(dir, "calls.md")+"; each node's Q.2931 messages in "+filepath.Join(dir, "{alpha,beta,gamma}.pcapng")) {
		t.Errorf("the output does not say where the calls are drawn:\n%s", b.String())
	}
	type call struct {
		title  string
		step   int
		parts  string     // the participants, in order
		arrows [][]string // each: the words of one arrow or note
	}
	want := []call{
		{"alice@alpha -> beta/echo (connected; released by the network: normal call clearing (16))", 4,
			"alice@alpha NDIS@alpha MCM@alpha MCM@beta NDIS@beta bob@beta", [][]string{
				{"alice@alpha->NDIS@alpha: NdisClMakeCall(vc#"},
				{"MCM@alpha->MCM@beta: SETUP cr=0x1/0 service echo"},
				{"NDIS@beta->bob@beta: ProtocolClIncomingCall(vc#"},
				{"MCM@beta->MCM@alpha: CONNECT cr=0x1/1"},
				{"alice@alpha->NDIS@alpha: NdisCoSendNetBufferLists(vc#"},
				{"bob@beta->NDIS@beta: NdisClCloseCall(vc#"},
				{"MCM@beta->MCM@alpha: RELEASE cr=0x1/1 cause normal call clearing (16)"},
				{"note MCM@alpha: call released by the network: normal call clearing (16), NDIS_STATUS_SUCCESS"},
				{"NDIS@alpha->alice@alpha: ProtocolClIncomingCloseCall(vc#"},
				{"MCM@alpha->MCM@beta: RELEASE COMPLETE cr=0x1/0"},
				{"alice@alpha->NDIS@alpha: NdisCoDeleteVc(vc#"},
			}},
		{"alice@alpha -> beta/echo (connected; released by the client: normal call clearing (16))", 5,
			"alice@alpha NDIS@alpha MCM@alpha MCM@beta NDIS@beta bob@beta", [][]string{
				{"alice@alpha->NDIS@alpha: NdisClCloseCall(vc#"},
				{"MCM@alpha->MCM@beta: RELEASE cr=0x2/0 cause normal call clearing (16)"},
				{"NDIS@beta->bob@beta: ProtocolClIncomingCloseCall(vc#"},
			}},
		{"alice@alpha -> gamma/news (connected; released by the network: normal call clearing (16))", 6,
			"alice@alpha NDIS@alpha MCM@alpha CM@gamma gamma-nic@gamma NDIS@gamma carol@gamma", [][]string{
				{"MCM@alpha->CM@gamma: SETUP cr=0x1/0 service news"},
				{"CM@gamma->NDIS@gamma: NdisCmActivateVc(vc#"},
				{"NDIS@gamma->gamma-nic@gamma: MiniportCoActivateVc(vc#"},
				{"gamma-nic@gamma->NDIS@gamma: NdisMCoActivateVcComplete(vc#"},
				{"NDIS@gamma->carol@gamma: ProtocolClIncomingCall(vc#"},
				{"carol@gamma->NDIS@gamma: NdisClCloseCall(vc#"},
				{"CM@gamma->NDIS@gamma: NdisCmCloseCallComplete(vc#"},
			}},
		{"alice@alpha -> beta/nosuch (failed: incompatible destination (88))", 7,
			"alice@alpha NDIS@alpha MCM@alpha MCM@beta", [][]string{
				{"MCM@alpha->MCM@beta: SETUP cr=0x3/0 service nosuch"},
				{"MCM@beta->MCM@alpha: RELEASE COMPLETE cr=0x3/1 cause incompatible destination (88)"},
				{"note MCM@beta: call refused from alpha, service nosuch: incompatible destination (88)"},
				{"NDIS@alpha->alice@alpha: ProtocolClMakeCallComplete(vc#", "NDIS_STATUS_INVALID_SAP)"},
			}},
		{"bob@beta -> gamma/news (failed: call rejected (21))", 7,
			"bob@beta NDIS@beta MCM@beta CM@gamma", [][]string{
				{"MCM@beta->CM@gamma: SETUP cr=0x1/0 service news"},
				{"CM@gamma->MCM@beta: RELEASE COMPLETE cr=0x1/1 cause call rejected (21)"},
				{"NDIS@beta->bob@beta: ProtocolClMakeCallComplete(vc#", "NDIS_STATUS_FAILURE)"},
			}},
		{"alice@alpha -> beta/echo, gamma/news (connected; released by the client: normal call clearing (16))", 8,
			"alice@alpha NDIS@alpha MCM@alpha MCM@beta NDIS@beta bob@beta CM@gamma gamma-nic@gamma NDIS@gamma carol@gamma", [][]string{
				{"MCM@alpha->MCM@beta: SETUP cr=0x4/0 service echo ep 0"},
				{"alice@alpha->NDIS@alpha: NdisClAddParty(vc#"},
				{"MCM@alpha->CM@gamma: SETUP cr=0x2/0 service news ep 0"},
				{"NDIS@gamma->carol@gamma: ProtocolClIncomingCall(vc#"},
				{"NDIS@alpha->alice@alpha: ProtocolClAddPartyComplete(party#", "NDIS_STATUS_SUCCESS)"},
				{"alice@alpha->NDIS@alpha: NdisClDropParty(party#"},
				{"MCM@alpha->CM@gamma: RELEASE cr=0x2/0 cause normal call clearing (16)"},
				{"MCM@alpha->MCM@beta: RELEASE cr=0x4/0 cause normal call clearing (16)"},
			}},
		{"alice@alpha -> gamma/news (connected; released by the network: destination out of order (27))", 9,
			"alice@alpha NDIS@alpha MCM@alpha CM@gamma gamma-nic@gamma NDIS@gamma carol@gamma", [][]string{
				{"MCM@alpha->CM@gamma: SETUP cr=0x3/0 service news"},
				{"note MCM@alpha: link to gamma down: timeout"},
				{"note MCM@alpha: call released by the network: destination out of order (27), NDIS_STATUS_DEST_OUT_OF_ORDER"},
				{"NDIS@alpha->alice@alpha: ProtocolClIncomingCloseCall(vc#", "NDIS_STATUS_DEST_OUT_OF_ORDER)"},
				{"NDIS@gamma->carol@gamma: ProtocolClIncomingCloseCall(vc#", "NDIS_STATUS_DEST_OUT_OF_ORDER)"},
			}},
	}
	sections := regexp.MustCompile("(?m)^## ").Split(string(md), -1)[1:]
	if len(sections) != len(want) || strings.Count(string(md), "```mermaid\n") != len(want) {
		t.Fatalf("%d sections, %d diagrams; want one per call of the story, %d:\n%s",
			len(sections), strings.Count(string(md), "```mermaid\n"), len(want), md)
	}
	for i, sec := range sections {
		w := want[i]
		head := strings.SplitN(sec, "\n", 2)[0]
		if wh := strconv.Itoa(i+1) + ". " + w.title; head != wh {
			t.Errorf("call %d: heading %q, want %q", i+1, head, wh)
		}
		if !strings.Contains(sec, "Step "+strconv.Itoa(w.step)+" of the story.") {
			t.Errorf("call %d is not said to be step %d's:\n%s", i+1, w.step, sec)
		}
		start := strings.Index(sec, "```mermaid\n")
		end := strings.LastIndex(sec, "```")
		if start < 0 || end <= start {
			t.Errorf("call %d: no fenced mermaid block:\n%s", i+1, sec)
			continue
		}
		d := parseMermaid(t, sec[start+len("```mermaid\n"):end])
		if got := strings.Join(d.names, " "); got != w.parts {
			t.Errorf("call %d: participants %s, want %s", i+1, got, w.parts)
		}
		for _, a := range w.arrows {
			if !hasLine(strings.Join(d.lines, "\n"), a...) {
				t.Errorf("call %d: no arrow or note with %q in\n%s", i+1, a, strings.Join(d.lines, "\n"))
			}
		}
	}
}

// diagram is a parsed sequenceDiagram: the participants' names, and each
// arrow as "from->to: label" or note as "note over: text", unescaped.
type diagram struct {
	names []string
	lines []string
}

var (
	participantRe = regexp.MustCompile(`^    participant ([A-Za-z0-9_]+) as (\S.*)$`)
	arrowRe       = regexp.MustCompile(`^    ([A-Za-z0-9_]+)(->>|-->>|-x)([A-Za-z0-9_]+): (\S.*)$`)
	noteRe        = regexp.MustCompile(`^    Note over ([A-Za-z0-9_]+): (\S.*)$`)
	entityRe      = regexp.MustCompile(`#[0-9]+;`)
)

// parseMermaid checks that s is a sequenceDiagram made of participant
// declarations, arrows and notes, between declared participants, with
// text that Mermaid reads as written (no bare ';' or '#').
func parseMermaid(t *testing.T, s string) diagram {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if lines[0] != "sequenceDiagram" {
		t.Errorf("first line %q, want sequenceDiagram", lines[0])
		return diagram{}
	}
	unescape := strings.NewReplacer("#35;", "#", "#59;", ";")
	bare := func(text string) bool { return strings.ContainsAny(entityRe.ReplaceAllString(text, ""), ";#") }
	name := map[string]string{}
	declared := func(id string) string {
		n, ok := name[id]
		if !ok {
			t.Errorf("participant %q used but not declared", id)
		}
		return n
	}
	var d diagram
	for _, l := range lines[1:] {
		if m := participantRe.FindStringSubmatch(l); m != nil {
			if _, dup := name[m[1]]; dup {
				t.Errorf("participant %q declared twice", m[1])
			}
			name[m[1]] = m[2]
			d.names = append(d.names, m[2])
			continue
		}
		var text string
		if m := arrowRe.FindStringSubmatch(l); m != nil {
			text = m[4]
			d.lines = append(d.lines, declared(m[1])+"->"+declared(m[3])+": "+unescape.Replace(text))
		} else if m := noteRe.FindStringSubmatch(l); m != nil {
			text = m[2]
			d.lines = append(d.lines, "note "+declared(m[1])+": "+unescape.Replace(text))
		} else {
			t.Errorf("not a participant, an arrow or a note: %q", l)
			continue
		}
		if bare(text) {
			t.Errorf("text not escaped for Mermaid: %q", l)
		}
	}
	return d
}

// TestNetworkDemoCaptures: with TraceDir each node's Q.2931 messages are in
// TraceDir/NODE.pcapng, and tshark, with no preference set, decodes them
// as Q.2931: alpha's hold SETUPs, CONNECTs, RELEASEs and RELEASE
// COMPLETEs, and the refusals' causes (88 and 21) are in the captures.
func TestNetworkDemoCaptures(t *testing.T) {
	tshark := tsharktest.Path(t, "the demo's captures")
	dir := filepath.Join(t.TempDir(), "trace")
	var b strings.Builder
	if err := RunNetwork(&b, NetOptions{Quiet: true, T309: time.Second, TraceDir: dir}); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	causes := map[string]bool{}
	for _, name := range []string{"alpha", "beta", "gamma"} {
		out := string(tsharktest.Run(t, tshark, "-r", filepath.Join(dir, name+".pcapng"), "-T", "fields", "-e", "frame.protocols", "-e", "q2931.message_type", "-e", "q2931.cause.value"))
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 4 {
			t.Errorf("%s: %d packets decoded:\n%s", name, len(lines), out)
			continue
		}
		for _, l := range lines {
			if !strings.Contains(l, "q2931") {
				t.Errorf("%s: a packet not decoded as Q.2931: %q", name, l)
			}
		}
		if name == "alpha" {
			for _, want := range []string{"\t0x05\t", "\t0x07\t", "\t0x4d\t", "\t0x5a\t"} { // SETUP, CONNECT, RELEASE, RELEASE COMPLETE
				if !strings.Contains(out, want) {
					t.Errorf("alpha's capture has no message type %s:\n%s", strings.TrimSpace(want), out)
				}
			}
		}
		for _, l := range lines {
			if f := strings.Split(l, "\t"); len(f) == 3 {
				for _, c := range strings.Split(f[2], ",") {
					causes[c] = true
				}
			}
		}
	}
	for _, cause := range []string{"0x58", "0x15"} { // 88 no such service, 21 call rejected
		if !causes[cause] {
			t.Errorf("no capture has cause %s: %v", cause, causes)
		}
	}
}
