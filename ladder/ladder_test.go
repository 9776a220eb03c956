package ladder_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/ladder"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// remoteClose tells the story of a call with a remote close on alpha and
// beta over transport/sim (1 ms each way, virtual time): alice on alpha
// calls beta/echo, bob on beta accepts, sends, and hangs up; alice answers
// the close and deletes her VC. It returns every event both nodes traced.
func remoteClose(t *testing.T) []ladder.Event {
	w := newWorld(t)
	alpha, beta := w.addNode("alpha"), w.addNode("beta")
	alice, bob := w.client(alpha, "alice"), w.client(beta, "bob")
	w.listen(bob, "echo")
	v := w.makeCall(alice, "beta", "echo")
	if r := memdrv.See(alice, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusSuccess {
		t.Fatalf("MakeCall: %v", r)
	}
	w.waitFor("bob's CallConnected", func() bool {
		in := bob.LastIncoming()
		return in != nil && memdrv.See(bob, func() bool { return in.Connected == 1 })
	})
	in := bob.LastIncoming()
	bob.CloseCall(in)
	w.waitFor("alice's answering close", func() bool {
		return memdrv.See(alice, func() bool { return v.CloseIndicated == 1 && v.Close.Done })
	})
	w.waitFor("bob's VC deleted", func() bool { return memdrv.See(bob, func() bool { return in.Deleted }) })
	if st := alice.DeleteVc(v); st != ndis.StatusSuccess {
		t.Fatalf("DeleteVc: %v", st)
	}
	w.pause(10 * time.Millisecond)
	evs := w.rec.all()
	w.close()
	return evs
}

func onNode(evs []ladder.Event, node string) []ladder.Event {
	var out []ladder.Event
	for _, e := range evs {
		if e.Node == node {
			out = append(out, e)
		}
	}
	return out
}

func collect(evs []ladder.Event) []*ladder.Ladder {
	c := ladder.NewCollector()
	for _, e := range evs {
		c.Add(e)
	}
	return c.Ladders()
}

// A call with a remote close, drawn as text from alpha's trace alone (the
// peer beta a bare column) and from both nodes' traces (one chart, both
// nodes' layers, each message drawn once from sender to receiver), is the
// golden chart: every CoNDIS request, upcall and status of the call in
// order, with the Q.2931 messages between them — SETUP, CONNECT, CONNECT
// ACKNOWLEDGE, bob's RELEASE with cause 16, RELEASE COMPLETE — and the
// call manager's word on the call, at times relative to the call's first
// event. Address-family and SAP events, and the links' RESTARTs, are no
// call's and are left out.
func TestRemoteCloseText(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		evs := remoteClose(t)
		var b strings.Builder
		for _, tc := range []struct {
			what string
			evs  []ladder.Event
		}{{"alpha's trace", onNode(evs, "alpha")}, {"alpha's and beta's traces", evs}} {
			ls := collect(tc.evs)
			if len(ls) != 1 {
				t.Fatalf("%s: %d calls, want 1", tc.what, len(ls))
			}
			b.WriteString("# from " + tc.what + "\n")
			if err := ladder.Write(&b, ladder.Text, 1, ls); err != nil {
				t.Fatal(err)
			}
		}
		golden(t, "remote-close.txt", b.String())
	})
}

// The same call as Mermaid: a sequenceDiagram whose every line declares a
// participant, draws an arrow between declared participants, or notes
// over one; with the participants client, NDIS, MCM and the peer node.
func TestRemoteCloseMermaid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		evs := remoteClose(t)
		for _, tc := range []struct {
			what  string
			evs   []ladder.Event
			parts []string
		}{
			{"alpha's trace", onNode(evs, "alpha"), []string{"alice@alpha", "NDIS@alpha", "MCM@alpha", "beta"}},
			{"both traces", evs, []string{"alice@alpha", "NDIS@alpha", "MCM@alpha", "MCM@beta", "NDIS@beta", "bob@beta"}},
		} {
			ls := collect(tc.evs)
			if len(ls) != 1 {
				t.Fatalf("%s: %d calls, want 1", tc.what, len(ls))
			}
			var b strings.Builder
			if err := ls[0].WriteMermaid(&b); err != nil {
				t.Fatal(err)
			}
			d := parseMermaid(t, b.String())
			if strings.Join(d.names, ",") != strings.Join(tc.parts, ",") {
				t.Errorf("%s: participants %v, want %v", tc.what, d.names, tc.parts)
			}
			for _, want := range []string{
				"alice@alpha->NDIS@alpha: NdisClMakeCall(vc#",
				"MCM@alpha->" + tc.parts[3] + ": SETUP cr=0x1/0 service echo",
				tc.parts[3] + "->MCM@alpha: RELEASE cr=0x1/1 cause normal call clearing (16)",
				"NDIS@alpha->alice@alpha: ProtocolClIncomingCloseCall(vc#",
				"MCM@alpha->" + tc.parts[3] + ": RELEASE COMPLETE cr=0x1/0",
			} {
				if !d.has(want) {
					t.Errorf("%s: no arrow %q in\n%s", tc.what, want, b.String())
				}
			}
		}
	})
}

// diagram is a parsed sequenceDiagram: participants by id, arrows as
// "from->to: label" with names and labels unescaped.
type diagram struct {
	names  []string
	arrows []string
}

func (d diagram) has(prefix string) bool {
	for _, a := range d.arrows {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

var (
	participantRe = regexp.MustCompile(`^    participant ([A-Za-z0-9_]+) as (\S.*)$`)
	arrowRe       = regexp.MustCompile(`^    ([A-Za-z0-9_]+)(->>|-->>|-x)([A-Za-z0-9_]+): (\S.*)$`)
	noteRe        = regexp.MustCompile(`^    Note over ([A-Za-z0-9_]+): (\S.*)$`)
	entityRe      = regexp.MustCompile(`#[0-9]+;`)
)

// parseMermaid checks that s is a sequenceDiagram made of participant
// declarations, arrows and notes, every arrow and note between declared
// participants, and returns it.
func parseMermaid(t *testing.T, s string) diagram {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if lines[0] != "sequenceDiagram" {
		t.Fatalf("first line %q, want sequenceDiagram", lines[0])
	}
	unescape := strings.NewReplacer("#35;", "#", "#59;", ";")
	name := map[string]string{}
	var d diagram
	declared := func(id string) string {
		n, ok := name[id]
		if !ok {
			t.Errorf("participant %q used but not declared", id)
		}
		return n
	}
	for _, l := range lines[1:] {
		switch {
		case participantRe.MatchString(l):
			m := participantRe.FindStringSubmatch(l)
			if _, dup := name[m[1]]; dup {
				t.Errorf("participant %q declared twice", m[1])
			}
			name[m[1]] = m[2]
			d.names = append(d.names, m[2])
		case arrowRe.MatchString(l):
			m := arrowRe.FindStringSubmatch(l)
			if unescaped(m[4]) {
				t.Errorf("label not escaped for Mermaid: %q", l)
			}
			d.arrows = append(d.arrows, declared(m[1])+"->"+declared(m[3])+": "+unescape.Replace(m[4]))
		case noteRe.MatchString(l):
			m := noteRe.FindStringSubmatch(l)
			declared(m[1])
			if unescaped(m[2]) {
				t.Errorf("note not escaped for Mermaid: %q", l)
			}
		default:
			t.Errorf("not a participant, an arrow or a note: %q", l)
		}
	}
	if len(d.arrows) == 0 {
		t.Errorf("no arrows in\n%s", s)
	}
	return d
}

// unescaped reports whether Mermaid text has a ';' or a '#' outside an
// entity such as "#35;".
func unescaped(s string) bool { return strings.ContainsAny(entityRe.ReplaceAllString(s, ""), ";#") }

func golden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if got != string(want) {
		t.Errorf("the chart differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}
