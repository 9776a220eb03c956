package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/internal/logtext"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/transport/quic"
	"github.com/condis-project/condis/uni"
)

// logBuffer is a syncBuffer whose readers can wait for a line.
type logBuffer struct {
	syncBuffer
	mu   sync.Mutex
	wake chan struct{} // closed (and dropped) by the next write
}

func (b *logBuffer) Write(p []byte) (int, error) {
	n, err := b.syncBuffer.Write(p)
	b.mu.Lock()
	if b.wake != nil {
		close(b.wake)
		b.wake = nil
	}
	b.mu.Unlock()
	return n, err
}

// waitLine waits for a line holding every one of parts, in that order,
// and returns it.
func (b *logBuffer) waitLine(tb testing.TB, parts ...string) string {
	tb.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		wake := b.wake
		b.mu.Unlock()
		if line, ok := findLine(b.String(), parts...); ok {
			return line
		}
		select {
		case <-wake:
		case <-deadline.C:
			tb.Fatalf("no log line with %q:\n%s", parts, b.String())
			return ""
		}
	}
}

// findLine returns the first line of log holding parts in order.
func findLine(log string, parts ...string) (string, bool) {
next:
	for line := range strings.Lines(log) {
		rest := line
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				continue next
			}
			rest = rest[i+len(p):]
		}
		return strings.TrimSpace(line), true
	}
	return "", false
}

// countLines counts the lines of log holding every one of parts.
func countLines(log string, parts ...string) int {
	n := 0
	for line := range strings.Lines(log) {
		if _, ok := findLine(line, parts...); ok {
			n++
		}
	}
	return n
}

// TestNodeLogsCallsAndLinks: at info a node logs "node up" with its
// version, the link to its peer coming up and going down (with the
// reason), and each call event once: the caller's connected and released,
// the callee's offered, connected and released, with peer, service, VC,
// direction and the Q.2931 cause.
func TestNodeLogsCallsAndLinks(t *testing.T) {
	c := newCluster(t)
	aAddr, bAddr := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1")
	alpha := c.start(Config{Name: "alpha", Listen: aAddr, Peers: []Peer{{Name: "beta", Address: bAddr}}})
	beta := c.start(Config{Name: "beta", Listen: bAddr, Peers: []Peer{{Name: "alpha", Address: aAddr}}})
	if err := alpha.call(t, beta, "beta/echo"); err != nil {
		t.Fatal(err)
	}

	v := Version()
	if v == "" || strings.ContainsAny(v, ` ="`) {
		v = strconv.Quote(v)
	}
	alpha.log.waitLine(t, `level=INFO msg="node up" node=alpha listen=`, " version="+v+" ")

	alpha.log.waitLine(t, `level=INFO msg=call event=connected peer=beta service=echo vc=vc#`, ` dir=out setup=`)
	alpha.log.waitLine(t, `level=INFO msg=call event=released peer=beta service=echo vc=vc#`,
		` dir=out cause="normal call clearing (16)" status=NDIS_STATUS_SUCCESS by="this node"`)
	beta.log.waitLine(t, `level=INFO msg=call event=offered peer=alpha service=echo vc=vc#`, ` dir=in`)
	beta.log.waitLine(t, `level=INFO msg=call event=connected peer=alpha service=echo vc=vc#`, ` dir=in`)
	beta.log.waitLine(t, `level=INFO msg=call event=released peer=alpha service=echo vc=vc#`,
		` dir=in cause="normal call clearing (16)" status=NDIS_STATUS_SUCCESS by=peer`)
	for _, r := range []*runningNode{alpha, beta} {
		log := r.log.String()
		for _, ev := range []string{"offered", "connected", "released", "refused", "failed"} {
			want := map[string]int{"connected": 1, "released": 1}[ev]
			if r == beta && ev == "offered" {
				want = 1
			}
			if n := countLines(log, "msg=call event="+ev+" "); n != want {
				t.Errorf("%s: %d %s lines, want %d:\n%s", r.n.Config.Name, n, ev, want, log)
			}
		}
	}

	// The link: up at both ends, and down at alpha when beta goes, one
	// line each at info, with the transport's reason in words.
	alpha.log.waitLine(t, `level=INFO msg="link up" node=alpha peer=beta`)
	beta.n.Endpoint.Close()
	alpha.log.waitLine(t, `level=INFO msg="link down" node=alpha peer=beta`, ` reason="closed by peer"`)
	if n := countLines(alpha.log.String(), `msg="link down"`); n != 1 {
		t.Errorf("alpha: %d link down lines, want 1:\n%s", n, alpha.log.String())
	}
}

// TestNodeReportsRefusedHandshakes: a node whose peer holds a certificate
// from another CA logs the refusal with the reason, and its
// StartOptions.Tracer gets the transport's trace.Handshake event.
func TestNodeReportsRefusedHandshakes(t *testing.T) {
	dir, otherDir := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, otherDir} {
		if _, err := pki.InitCA(d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pki.Issue(dir, "alpha"); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Issue(otherDir, "beta"); err != nil {
		t.Fatal(err)
	}
	aAddr, bAddr := freeAddr(t, "127.0.0.1"), freeAddr(t, "127.0.0.1")
	config := func(d, name, listen, peer, peerAddr string) *Config {
		return &Config{Name: name, Listen: listen, Control: filepath.Join(d, name+".sock"),
			CA: filepath.Join(d, "ca.pem"), Cert: filepath.Join(d, name+".pem"), Key: filepath.Join(d, name+".key"),
			Peers: []Peer{{Name: peer, Address: peerAddr}}}
	}
	hs := make(chan trace.Handshake, 16)
	var log logBuffer
	// beta does not have alpha as a peer, so only alpha dials (when it
	// starts).
	bcfg := config(otherDir, "beta", bAddr, "alpha", aAddr)
	bcfg.Peers = nil
	beta, err := Start(bcfg, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer beta.Close(context.Background())
	alpha, err := Start(config(dir, "alpha", aAddr, "beta", bAddr), StartOptions{
		Logger: slog.New(slog.NewTextHandler(&log, nil)),
		Tracer: trace.Tracer{Handshake: func(h trace.Handshake) { hs <- h }},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer alpha.Close(context.Background())

	select {
	case h := <-hs:
		if h.Reason != quic.ReasonUnknownAuthority || h.ByPeer || h.Peer != "beta" || h.Node != "alpha" {
			t.Errorf("handshake event %+v, want alpha refusing beta: unknown authority", h)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no refused handshake reported")
	}
	log.waitLine(t, `level=WARN msg="handshake refused" node=alpha remote=127.0.0.1:`, ` peer=beta `, ` refused_by="this node" reason="unknown authority" err=`)
}

// TestCallLogLine: each kind of call event is one line with the event's
// time, and what a refusal or release says.
func TestCallLogLine(t *testing.T) {
	cfg := &Config{Name: "beta", Peers: []Peer{{Name: "alpha"}}, SAPs: []SAP{{Service: "billing", Allow: []string{}}}}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		e    trace.Call
		want string
	}{
		{trace.Call{Event: trace.CallOffered, Peer: "alpha", Service: "echo", VC: "vc#7", Incoming: true},
			`msg=call event=offered peer=alpha service=echo vc=vc#7 dir=in`},
		{trace.Call{Event: trace.CallConnected, Peer: "alpha", Service: "echo", VC: "vc#7", Setup: 1500 * time.Microsecond},
			`msg=call event=connected peer=alpha service=echo vc=vc#7 dir=out setup=1.5ms`},
		{trace.Call{Event: trace.CallRefused, Peer: "gamma", Service: "echo", Incoming: true, Cause: uni.CauseCallRejected},
			`msg=call event=refused peer=gamma service=echo dir=in cause="call rejected (21)" why="gamma is not a [[peer]] of this node (trust = \"peers\")"`},
		{trace.Call{Event: trace.CallRefused, Peer: "alpha", Service: "billing", Incoming: true, Cause: uni.CauseCallRejected},
			`msg=call event=refused peer=alpha service=billing dir=in cause="call rejected (21)" why="alpha is not on the allow list of [[sap]] billing"`},
		{trace.Call{Event: trace.CallRefused, Peer: "alpha", Service: "echo", VC: "vc#8", Incoming: true, Cause: uni.CauseCallRejected, Status: ndis.StatusFailure},
			`msg=call event=refused peer=alpha service=echo vc=vc#8 dir=in cause="call rejected (21)" status=NDIS_STATUS_FAILURE`},
		{trace.Call{Event: trace.CallRefused, Peer: "alpha", Service: "nosuch", Incoming: true, Cause: uni.CauseIncompatibleDestination},
			`msg=call event=refused peer=alpha service=nosuch dir=in cause="incompatible destination (88)"`},
		{trace.Call{Event: trace.CallFailed, Peer: "alpha", Service: "echo", VC: "vc#9", Cause: uni.CauseDestinationOutOfOrder, Status: ndis.StatusDestOutOfOrder},
			`msg=call event=failed peer=alpha service=echo vc=vc#9 dir=out cause="destination out of order (27)" status=NDIS_STATUS_DEST_OUT_OF_ORDER`},
		{trace.Call{Event: trace.CallReleased, Peer: "alpha", Service: "echo", VC: "vc#7", Incoming: true, Cause: uni.CauseNormalCallClearing, ByPeer: true},
			`msg=call event=released peer=alpha service=echo vc=vc#7 dir=in cause="normal call clearing (16)" status=NDIS_STATUS_SUCCESS by=peer`},
	} {
		// slog's handler (--log-format json takes this path), and the
		// node's text handler, to which lines go without a slog.Record.
		var b, bt strings.Builder
		fast, err := logtext.New(&bt, nil)
		if err != nil {
			t.Fatal(err)
		}
		tc.e.Time = at
		for _, l := range []*callLog{{log: slog.New(slog.NewTextHandler(&b, nil)), cfg: cfg}, {log: slog.New(fast), line: fast, cfg: cfg}} {
			l.write(tc.e)
		}
		want := "time=2026-01-02T03:04:05.000Z level=INFO " + tc.want + "\n"
		if b.String() != want || bt.String() != want {
			t.Errorf("%v:\n got %s (slog)\n got %s (logtext)\nwant %s", tc.e.Event, b.String(), bt.String(), want)
		}
	}
}

// TestCallLogAllocatesNothing: a call's lines cost the node no garbage
// with its text log: a released line has eight attributes, three more
// than a slog.Record holds without allocating.
func TestCallLogAllocatesNothing(t *testing.T) {
	h, err := logtext.New(io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := &callLog{log: slog.New(h).With("node", "alpha")}
	l.line = l.log.Handler().(*logtext.Handler)
	e := trace.Call{Time: time.Now(), Event: trace.CallReleased, Peer: "beta", Service: "echo", VC: "vc#7",
		Cause: uni.CauseNormalCallClearing, Status: ndis.StatusSuccess, ByPeer: true}
	if n := testing.AllocsPerRun(100, func() { l.write(e) }); n != 0 {
		t.Errorf("%v allocations per line, want 0", n)
	}
}

// blockingHandler is a slog.Handler whose Handle waits for release.
type blockingHandler struct {
	release chan struct{}
	mu      sync.Mutex
	lines   []string
}

func (h *blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *blockingHandler) Handle(_ context.Context, r slog.Record) error {
	<-h.release
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.lines = append(h.lines, b.String())
	h.mu.Unlock()
	return nil
}
func (h *blockingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *blockingHandler) WithGroup(string) slog.Handler      { return h }

// TestCallLogNeverBlocks: a log that does not keep up does not hold up
// the call manager: the events that find the queue full are counted, the
// count is logged, and the rest are logged in order; close logs what is
// queued.
func TestCallLogNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &blockingHandler{release: make(chan struct{})}
		l := newCallLog(slog.New(h), nil)
		l.add(trace.Call{Event: trace.CallOffered, VC: "vc#0"})
		synctest.Wait() // the log's goroutine holds vc#0, blocked in Handle
		for i := 1; i <= callLogQueue+3; i++ {
			l.add(trace.Call{Event: trace.CallOffered, VC: fmt.Sprintf("vc#%d", i)}) // must not block
		}
		close(h.release)
		l.close()
		if n := len(h.lines); n != callLogQueue+2 {
			t.Fatalf("%d lines, want %d", n, callLogQueue+2)
		}
		if got, want := h.lines[1], "WARN call events not logged: the log did not keep up events=3"; got != want {
			t.Errorf("line 2: %q, want %q", got, want)
		}
		for i, line := range append(h.lines[:1:1], h.lines[2:]...) {
			if !strings.Contains(line, fmt.Sprintf(" vc=vc#%d ", i)) {
				t.Fatalf("line for event %d: %q", i, line)
			}
		}
		l.add(trace.Call{Event: trace.CallOffered}) // after close: dropped, not a panic
	})
}

// TestCallLogOffBelowInfo: a node that does not log at info has no call
// log (and so no goroutine nor hook for it).
func TestCallLogOffBelowInfo(t *testing.T) {
	log := slog.New(slog.NewTextHandler(&strings.Builder{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if l := newCallLog(log, nil); l != nil || l.tracer().Call != nil {
		t.Error("a call log at warn")
	}
}
