package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/node"
)

// The commands that act on a VC another session holds (party, modify,
// hangup) and multipoint calls, in process over the in-memory MCM with a
// strict mediator: any CoNDIS contract violation fails the test.

// waitLine waits until buf holds a line matching re and returns its
// submatches. It polls: the line is written by a command running in
// another goroutine (or process).
func waitLine(t *testing.T, what string, buf interface{ String() string }, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := re.FindStringSubmatch(buf.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no line matching %q in %q", what, re, buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitParties waits until buf names n added parties (condis call prints
// them after its "connected" line) and returns them as partyRe matches.
func waitParties(t *testing.T, buf interface{ String() string }, n int) [][]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		parties := partyRe.FindAllStringSubmatch(buf.String(), -1)
		if len(parties) >= n || time.Now().After(deadline) {
			return parties
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var (
	connectedRe = regexp.MustCompile(`condis: (vc#\d+): connected to `)
	partyRe     = regexp.MustCompile(`condis: vc#\d+: party (party#\d+) \((\S+)\) added`)
)

// liveCall is a `condis call -v` running in process, its stdin a pipe.
type liveCall struct {
	c      *command
	stdin  *io.PipeWriter
	stderr *lockedBuffer
	vc     string // the VC, as -v says
}

// callUp starts `condis call -v ARGS...` and returns once it said which
// VC it is on. Its stdout goes to out (nil: discarded).
func callUp(t *testing.T, sock string, out io.Writer, args ...string) *liveCall {
	t.Helper()
	if out == nil {
		out = io.Discard
	}
	inR, inW := io.Pipe()
	lc := &liveCall{stdin: inW, stderr: new(lockedBuffer)}
	lc.c = start(inR, out, lc.stderr, append([]string{"call", "--control", sock, "-v", "--linger", "0"}, args...)...)
	t.Cleanup(func() {
		inW.Close()
		lc.c.wait()
	})
	lc.vc = waitLine(t, "call", lc.stderr, connectedRe)[1]
	return lc
}

// sink is a `condis listen -v SERVICE` (no echo) whose stdout the test
// reads.
type sink struct {
	out    *lockedBuffer
	stderr *lockedBuffer
}

func (n *testNode) sink(t *testing.T, service string) *sink {
	t.Helper()
	s := &sink{out: new(lockedBuffer), stderr: new(lockedBuffer)}
	c := start(nil, s.out, s.stderr, "listen", "--control", n.sock, "-v", service)
	waitLine(t, "listen "+service, s.stderr, regexp.MustCompile(`listening on `))
	t.Cleanup(func() {
		c.cancel()
		if err := c.wait(); err != nil {
			t.Errorf("listen %s: %v", service, err)
		}
	})
	return s
}

// runCmd runs condis args in process to its end and returns its stdout and
// error.
func runCmd(args ...string) (string, error) {
	var out bytes.Buffer
	err := start(strings.NewReader(""), &out, nil, args...).wait()
	return out.String(), err
}

// callsOf lists the node's VCs as condis calls --json prints them.
func callsOf(t *testing.T, sock string) map[string]node.CallInfo {
	t.Helper()
	out, err := runCmd("calls", "--control", sock, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var list []node.CallInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	m := map[string]node.CallInfo{}
	for _, c := range list {
		m[c.Vc] = c
	}
	return m
}

// TestMultipointCall: `condis call` with two destinations makes one VC
// with two parties; what it sends reaches both leaves, nothing comes back,
// and when stdin ends the call closes (the leaves' listeners see it
// closed) and call exits 0.
func TestMultipointCall(t *testing.T) {
	n := startNode(t)
	l1, l2 := n.sink(t, "l1"), n.sink(t, "l2")
	var out bytes.Buffer
	lc := callUp(t, n.sock, &out, "any/l1", "any/l2")
	parties := waitParties(t, lc.stderr, 2)
	if len(parties) != 2 || parties[0][2] != "any/l1" || parties[1][2] != "any/l2" {
		t.Fatalf("parties said: %q", lc.stderr.String())
	}
	ci := callsOf(t, n.sock)[lc.vc]
	if ci.Parties != 2 || len(ci.Leaves) != 2 || ci.Rx == nil || ci.Rx.Service != "no-traffic" {
		t.Fatalf("calls: %+v", ci)
	}
	for i, l := range ci.Leaves {
		if l.Party != parties[i][1] || l.Dest != parties[i][2] || l.State != "CONNECTED" {
			t.Errorf("leaf %d: %+v, want %s %s CONNECTED", i, l, parties[i][1], parties[i][2])
		}
	}
	lc.stdin.Write([]byte("to every leaf"))
	for _, l := range []*sink{l1, l2} {
		waitLine(t, "leaf", l.out, regexp.MustCompile(`^to every leaf$`))
	}
	lc.stdin.Close()
	if err := lc.c.wait(); err != nil {
		t.Fatalf("call: %v (stderr %q)", err, lc.stderr)
	}
	if out.Len() != 0 {
		t.Errorf("the root received %q; a multipoint call carries nothing back", out.String())
	}
	for _, l := range []*sink{l1, l2} {
		waitLine(t, "leaf closed", l.stderr, regexp.MustCompile(`vc#\d+: call closed by the far end`))
	}
}

// TestPartyAddDrop: parties are added to and dropped from a multipoint
// call held by a `condis call` in another "terminal", which says so; the
// errors are one line each.
func TestPartyAddDrop(t *testing.T) {
	n := startNode(t)
	l1, l2 := n.sink(t, "l1"), n.sink(t, "l2")
	lc := callUp(t, n.sock, nil, "--multipoint", "any/l1")
	first := partyRe.FindStringSubmatch(lc.stderr.String())
	if first == nil {
		t.Fatalf("no party said: %q", lc.stderr)
	}

	out, err := runCmd("party", "add", "--control", n.sock, lc.vc, "any/l2")
	if err != nil {
		t.Fatalf("party add: %v", err)
	}
	m := regexp.MustCompile(`^(vc#\d+): (party#\d+) added \(any/l2\)\n$`).FindStringSubmatch(out)
	if m == nil || m[1] != lc.vc {
		t.Fatalf("party add printed %q", out)
	}
	added := m[2]
	waitLine(t, "call", lc.stderr, regexp.MustCompile(regexp.QuoteMeta(lc.vc+": party "+added+" (any/l2) added")))
	lc.stdin.Write([]byte("both"))
	waitLine(t, "l1", l1.out, regexp.MustCompile(`^both$`))
	waitLine(t, "l2", l2.out, regexp.MustCompile(`^both$`))
	if ci := callsOf(t, n.sock)[lc.vc]; len(ci.Leaves) != 2 || ci.Leaves[1].Party != added || ci.Leaves[1].Dest != "any/l2" {
		t.Errorf("calls after the add: %+v", ci.Leaves)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"add", lc.vc, "any/nosuch"}, "party any/nosuch not added: NDIS_STATUS_INVALID_SAP (cause 88, incompatible destination): no such service at the destination"},
		{[]string{"add", "vc#999", "any/l2"}, "party add vc#999: no such VC on this node (condis calls lists them)"},
		{[]string{"add", lc.vc, "mars/l2"}, `party add ` + lc.vc + ` mars/l2: unknown node "mars"`},
		{[]string{"drop", lc.vc, "party#999"}, "party drop " + lc.vc + ": no party party#999 (its parties: " + first[1] + ", " + added + ")"},
		{[]string{"drop", "vc#999", added}, "party drop vc#999: no such VC on this node"},
		{[]string{"add", lc.vc}, "accepts 2 arg(s), received 1"},
	} {
		_, err := runCmd(append([]string{"party", c.args[0], "--control", n.sock}, c.args[1:]...)...)
		oneLine(t, err, c.want)
	}

	out, err = runCmd("party", "drop", "--control", n.sock, lc.vc, added)
	if err != nil || out != lc.vc+": "+added+" dropped\n" {
		t.Fatalf("party drop: %q, %v", out, err)
	}
	waitLine(t, "call", lc.stderr, regexp.MustCompile(regexp.QuoteMeta(lc.vc+": "+added+" (any/l2) dropped (condis party drop)")))
	waitLine(t, "l2 closed", l2.stderr, regexp.MustCompile(`vc#\d+: call closed by the far end`))
	if ci := callsOf(t, n.sock)[lc.vc]; ci.Parties != 1 || len(ci.Leaves) != 1 || ci.Leaves[0].Party != first[1] {
		t.Errorf("calls after the drop: %+v", ci)
	}
	// The last party goes with the call, not alone.
	_, err = runCmd("party", "drop", "--control", n.sock, lc.vc, first[1])
	oneLine(t, err, "party drop "+lc.vc+": "+first[1]+" is the call's last party; hang the call up instead (condis hangup "+lc.vc+")")

	lc.stdin.Close()
	if err := lc.c.wait(); err != nil {
		t.Fatalf("call: %v", err)
	}
}

// TestPartyOnPointToPoint: parties are for multipoint calls; a
// point-to-point call says so.
func TestPartyOnPointToPoint(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	lc := callUp(t, n.sock, nil, "any/echo")
	_, err := runCmd("party", "add", "--control", n.sock, lc.vc, "any/echo")
	oneLine(t, err, "party add "+lc.vc+": not a multipoint call; parties are added to a call made with condis call --multipoint (or with several destinations)")
	_, err = runCmd("party", "drop", "--control", n.sock, lc.vc, "party#1")
	oneLine(t, err, "party drop "+lc.vc+": not a multipoint call; a point-to-point call has no parties to drop (condis hangup "+lc.vc+" ends it)")
	// The listener's side of the call is a VC of the control plane too,
	// and no more multipoint.
	var in string
	for vc, ci := range callsOf(t, n.sock) {
		if ci.Kind != "outgoing" {
			in = vc
		}
	}
	_, err = runCmd("party", "add", "--control", n.sock, in, "any/echo")
	oneLine(t, err, "party add "+in+": not a multipoint call")
}

// TestModify: modify changes a running call's flowspec and prints what was
// granted; the call in the other terminal says so. A change the call
// manager refuses leaves the call as it was; values out of range are
// refused before the node is asked, naming the flag.
func TestModify(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	lc := callUp(t, n.sock, nil, "--rate", "1000", "--peak", "2000", "any/echo")

	out, err := runCmd("modify", "--control", n.sock, lc.vc, "--rate", "1500", "--bucket", "3000")
	want := lc.vc + ": granted transmit controlled-load rate=1500 peak=2000 bucket=3000, receive controlled-load rate=1500 peak=2000 bucket=3000\n"
	if err != nil || out != want {
		t.Fatalf("modify: %q, %v\nwant %q", out, err, want)
	}
	waitLine(t, "call", lc.stderr, regexp.MustCompile(regexp.QuoteMeta(lc.vc+": flowspec changed: transmit controlled-load rate=1500 peak=2000 bucket=3000, receive controlled-load rate=1500 peak=2000 bucket=3000")))
	if ci := callsOf(t, n.sock)[lc.vc]; ci.Tx == nil || ci.Tx.Rate != 1500 || ci.Tx.Bucket != 3000 || ci.Tx.Peak != 2000 {
		t.Errorf("calls: tx %+v", ci.Tx)
	}

	// The in-memory call manager refuses token rates above its limit.
	n.mcm.SetMaxTokenRate(1800)
	_, err = runCmd("modify", "--control", n.sock, lc.vc, "--rate", "1900")
	oneLine(t, err, "modify "+lc.vc+" refused: NDIS_STATUS_FAILURE (cause 21, call rejected)")
	if ci := callsOf(t, n.sock)[lc.vc]; ci.Tx == nil || ci.Tx.Rate != 1500 {
		t.Errorf("after a refused change: tx %+v, want rate 1500 still", ci.Tx)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{lc.vc, "--peak", "900000000"}, "--peak 900000000 bytes/s is more than a UNI 3.1 traffic descriptor carries: at most 805306272 bytes/s"},
		{[]string{lc.vc, "--rate", "200000", "--peak", "100000"}, "--rate 200000 bytes/s is above --peak 100000 bytes/s: the token rate must not exceed the peak"},
		{[]string{lc.vc}, "modify: nothing to change: give --rate, --peak, --bucket or --max-sdu"},
		{[]string{"vc#999", "--rate", "10"}, "modify vc#999: no such VC on this node (condis calls lists them)"},
		{[]string{"--rate", "10"}, "accepts 1 arg(s), received 0"},
	} {
		_, err := runCmd(append([]string{"modify", "--control", n.sock}, c.args...)...)
		oneLine(t, err, c.want)
	}
	if s := lc.stderr.String(); strings.Count(s, "flowspec changed") != 1 {
		t.Errorf("the call heard of %d changes, want 1: %q", strings.Count(s, "flowspec changed"), s)
	}
}

// TestModifyMultipoint: the QoS of a multipoint call cannot change (the
// call manager refuses; the status and its cause in one line).
func TestModifyMultipoint(t *testing.T) {
	n := startNode(t)
	n.sink(t, "l1")
	n.sink(t, "l2")
	lc := callUp(t, n.sock, nil, "any/l1", "any/l2")
	_, err := runCmd("modify", "--control", n.sock, lc.vc, "--peak", "5000")
	oneLine(t, err, "modify "+lc.vc+" refused: NDIS_STATUS_NOT_SUPPORTED (cause 63, service or option not available, unspecified): only the rates and the bucket of a point-to-point call can change")
}

// TestHangup: hangup closes a call another session holds; that `condis
// call` exits 0 saying the call was hung up. A listener's call hung up
// ends only that call.
func TestHangup(t *testing.T) {
	n := startNode(t)
	l := n.sink(t, "sink")
	lc := callUp(t, n.sock, nil, "any/sink")
	out, err := runCmd("hangup", "--control", n.sock, lc.vc)
	if err != nil || out != lc.vc+": hung up\n" {
		t.Fatalf("hangup: %q, %v", out, err)
	}
	if err := lc.c.wait(); err != nil {
		t.Fatalf("the call's exit: %v, want 0", err)
	}
	if want := "condis: call " + lc.vc + " hung up on this node (condis hangup)\n"; !strings.HasSuffix(lc.stderr.String(), want) {
		t.Errorf("the call's stderr %q, want it to end with %q", lc.stderr, want)
	}
	waitLine(t, "listener", l.stderr, regexp.MustCompile(`vc#\d+: call closed by the far end`))

	// The listener's end of a call.
	lc2 := callUp(t, n.sock, nil, "any/sink")
	incoming := regexp.MustCompile(`call (vc#\d+) from local\n`)
	waitLine(t, "listener", l.stderr, regexp.MustCompile(`(?s)from local\n.*from local\n`))
	calls := incoming.FindAllStringSubmatch(l.stderr.String(), -1)
	in := calls[len(calls)-1][1]
	if _, err := runCmd("hangup", "--control", n.sock, in); err != nil {
		t.Fatalf("hangup %s: %v", in, err)
	}
	waitLine(t, "listener", l.stderr, regexp.MustCompile(regexp.QuoteMeta(in+": call "+in+" hung up on this node (condis hangup)")))
	if err := lc2.c.wait(); err != nil {
		t.Errorf("the caller of the hung up call: %v, want 0 (closed normally by the far end)", err)
	}

	for _, c := range []struct{ vc, want string }{
		{"vc#999", "hangup vc#999: no such VC on this node (condis calls lists them)"},
		{lc.vc, "hangup " + lc.vc + ": no such VC on this node"},
		{"", "hangup: no VC (name one as condis calls lists it, e.g. vc#12)"},
	} {
		_, err := runCmd("hangup", "--control", n.sock, c.vc)
		oneLine(t, err, c.want)
	}
}

// TestHangupMultipoint: hanging up a multipoint call drops its other
// leaves first and closes it with the last (the strict mediator fails the
// test on any other order); every leaf sees the call closed normally.
func TestHangupMultipoint(t *testing.T) {
	n := startNode(t)
	sinks := []*sink{n.sink(t, "l1"), n.sink(t, "l2"), n.sink(t, "l3")}
	lc := callUp(t, n.sock, nil, "any/l1", "any/l2", "any/l3")
	if _, err := runCmd("hangup", "--control", n.sock, lc.vc); err != nil {
		t.Fatal(err)
	}
	if err := lc.c.wait(); err != nil {
		t.Fatalf("call: %v", err)
	}
	for _, s := range sinks {
		waitLine(t, "leaf", s.stderr, regexp.MustCompile(`vc#\d+: call closed by the far end`))
	}
	if calls := callsOf(t, n.sock); len(calls) != 0 {
		t.Errorf("VCs left: %+v", calls)
	}
}

// TestMultipointLeafFails: a leaf that cannot be added is reported and
// makes call exit 1 in the end; the others carry the call.
func TestMultipointLeafFails(t *testing.T) {
	n := startNode(t)
	l1 := n.sink(t, "l1")
	lc := callUp(t, n.sock, nil, "any/l1", "any/nosuch")
	if !strings.Contains(lc.stderr.String(), "condis: party any/nosuch not added: NDIS_STATUS_INVALID_SAP (cause 88, incompatible destination)") {
		t.Errorf("stderr %q", lc.stderr)
	}
	lc.stdin.Write([]byte("still"))
	waitLine(t, "l1", l1.out, regexp.MustCompile(`^still$`))
	lc.stdin.Close()
	oneLine(t, lc.c.wait(), "call ended with 1 problem(s) reported above")
}

// TestCallFlowspecGrantedSame: a call granted what it asked for prints
// nothing about its flowspec.
func TestCallFlowspecGrantedSame(t *testing.T) {
	n := startNode(t)
	n.listenEcho(t, "echo")
	var stderr lockedBuffer
	c := start(strings.NewReader("x"), io.Discard, &stderr, "call", "--control", n.sock, "--rate", "1000", "--peak", "2000", "any/echo")
	if err := c.wait(); err != nil {
		t.Fatal(err)
	}
	if stderr.String() != "" {
		t.Errorf("stderr %q", stderr.String())
	}
}

// TestFlowspecDiff: what the granted-flowspec line lists.
func TestFlowspecDiff(t *testing.T) {
	for _, c := range []struct {
		asked, granted node.Flowspec
		want           string
	}{
		{node.Flowspec{Service: "controlled-load", Rate: 1000, Peak: 2000}, node.Flowspec{Service: "controlled-load", Rate: 1008, Peak: 2016, MaxSDU: 1500}, "rate 1000, peak 2000"},
		{node.Flowspec{Service: "best-effort", Peak: 4800}, node.Flowspec{Service: "best-effort", Peak: 4800, MaxSDU: 1200}, ""},
		{node.Flowspec{Service: "best-effort", MaxSDU: 9000}, node.Flowspec{Service: "best-effort", MaxSDU: 1200}, "sdu 9000"},
		{node.Flowspec{Service: "guaranteed", Bucket: 100}, node.Flowspec{Service: "controlled-load", Bucket: 144}, "service guaranteed, bucket 100"},
	} {
		if got := flowspecDiff(&c.asked, &c.granted); got != c.want {
			t.Errorf("%+v granted %+v: %q, want %q", c.asked, c.granted, got, c.want)
		}
	}
}

// TestProgressLine: bench's progress line on a terminal: rewritten in
// place, with the rate since the last update (none carried over from the
// warm-up to the measured run), and erased at the end.
func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	p := &progressLine{w: &b, dest: "beta/echo"}
	p.clear()
	if b.Len() != 0 {
		t.Errorf("clear before any update wrote %q", b.String())
	}
	p.update(node.BenchProgress{Calls: 30000, Done: 2000, Seconds: 1, Warmup: true})
	p.update(node.BenchProgress{Calls: 10000, Done: 1500, Seconds: 1})
	p.update(node.BenchProgress{Calls: 10000, Done: 4500, Failed: 2, Seconds: 2})
	p.clear()
	want := "\r\x1b[Kbench beta/echo (warm-up): 2000/30000 calls, 2000 calls/s" +
		"\r\x1b[Kbench beta/echo: 1500/10000 calls, 1500 calls/s" +
		"\r\x1b[Kbench beta/echo: 4500/10000 calls, 2 failed, 3000 calls/s" +
		"\r\x1b[K"
	if b.String() != want {
		t.Errorf("wrote %q\nwant  %q", b.String(), want)
	}
	if isTerminal(&b) {
		t.Error("a buffer is a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe is a terminal")
	}
}
