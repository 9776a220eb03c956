package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/condis-project/condis/internal/tsharktest"
	"github.com/condis-project/condis/node"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// tracedPair is alpha and beta, real nodes (Q.2931 over QUIC on loopback)
// in this process, started from configuration files, each serving its
// control socket; beta/echo echoes. alpha's messages are recorded.
type tracedPair struct {
	alphaSock  string
	alphaPort  int
	betaPort   int
	mu         sync.Mutex
	alphaMsgs  []trace.Signal
	stopAlpha  func()
	listenDone chan struct{}
}

func startTracedPair(t *testing.T, opts ...func(*node.StartOptions)) *tracedPair {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	ports := freeUDPPorts(t, 2)
	p := &tracedPair{alphaPort: ports[0], betaPort: ports[1]}
	start := func(name string, port int, peer string, peerPort int, tracer trace.Tracer) (string, func()) {
		if _, err := pki.Issue(dir, name); err != nil {
			t.Fatal(err)
		}
		conf := fmt.Sprintf("name = %q\nlisten = \"127.0.0.1:%d\"\ncontrol = %q\nca = \"ca.pem\"\ncert = \"%s.pem\"\nkey = \"%s.key\"\n\n[[peer]]\nname = %q\naddress = \"127.0.0.1:%d\"\n",
			name, port, name+".sock", name, name, peer, peerPort)
		path := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := node.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		so := node.StartOptions{Tracer: tracer}
		for _, o := range opts {
			o(&so)
		}
		n, err := node.Start(cfg, so)
		if err != nil {
			t.Fatal(err)
		}
		ctl, err := node.NewControl(context.Background(), n.CallManager(), node.Options{})
		if err != nil {
			n.Close(context.Background())
			t.Fatal(err)
		}
		ln, err := node.ListenControl(cfg.Control)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- ctl.Serve(ln) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := errors.Join(ctl.Shutdown(ctx), <-served, n.Close(ctx)); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
		}
		t.Cleanup(stop)
		return cfg.Control, stop
	}
	p.alphaSock, p.stopAlpha = start("alpha", ports[0], "beta", ports[1], trace.Tracer{Signal: func(s trace.Signal) {
		s.Msg = append([]byte(nil), s.Msg...)
		p.mu.Lock()
		p.alphaMsgs = append(p.alphaMsgs, s)
		p.mu.Unlock()
	}})
	betaSock, _ := start("beta", ports[1], "alpha", ports[0], trace.Tracer{})
	listen, err := node.DialListen(context.Background(), betaSock, node.Request{Service: "echo", Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	p.listenDone = make(chan struct{})
	go func() {
		defer close(p.listenDone)
		for {
			if _, err := listen.Recv(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { listen.Close(); <-p.listenDone })
	return p
}

// messages returns alpha's messages recorded from index from on.
func (p *tracedPair) messages(from int) []trace.Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]trace.Signal(nil), p.alphaMsgs[from:]...)
}

// calls makes, with `condis call`, a call from alpha to beta/echo that
// carries a line and ends with stdin, and one to beta/nosuch, which beta
// refuses.
func (p *tracedPair) calls(t *testing.T) {
	t.Helper()
	var out strings.Builder
	c := start(strings.NewReader("hello\n"), &out, nil, "call", "--control", p.alphaSock, "beta/echo")
	if err := c.wait(); err != nil || out.String() != "hello\n" {
		t.Fatalf("call beta/echo: %q, %v", out.String(), err)
	}
	c = start(strings.NewReader(""), io.Discard, nil, "call", "--control", p.alphaSock, "beta/nosuch")
	if err := c.wait(); err == nil || !strings.Contains(err.Error(), "cause 88") {
		t.Fatalf("call beta/nosuch: %v, want refused with cause 88", err)
	}
}

// runTraceCmd starts `condis trace` with args against alpha and returns
// once it is tracing; stop interrupts it and returns its error.
func (p *tracedPair) runTraceCmd(t *testing.T, stdout io.Writer, args ...string) (stop func() error, stderr *strings.Builder) {
	t.Helper()
	pr, pw := io.Pipe()
	c := start(nil, stdout, pw, append([]string{"trace", "--control", p.alphaSock}, args...)...)
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil || line != "condis trace: tracing node alpha; interrupt to stop\n" {
		pw.Close()
		t.Fatalf("trace said %q, %v (%v)", line, err, c.wait())
	}
	stderr = new(strings.Builder)
	copied := make(chan struct{})
	go func() {
		io.Copy(stderr, br)
		close(copied)
	}()
	return func() error {
		c.cancel()
		err := c.wait()
		pw.Close()
		<-copied
		return err
	}, stderr
}

// lockedBuilder is a strings.Builder written by one goroutine and read by
// another.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTraceLines: `condis trace` prints one line per message alpha sends
// or receives, with its time, direction and peer, type, call reference and
// cause, and exits 0 when interrupted.
func TestTraceLines(t *testing.T) {
	p := startTracedPair(t)
	p.calls(t) // the link is up and quiet after them
	from := len(p.messages(0))
	var out strings.Builder // written by trace until stop returns
	stop, stderr := p.runTraceCmd(t, &out)
	p.calls(t)
	// Every message of the calls was traced before they returned; the
	// interrupt ends the session after them.
	msgs := p.messages(from)
	if err := stop(); err != nil {
		t.Fatalf("trace after an interrupt: %v (stderr %q)", err, stderr.String())
	}
	if stderr.String() != "" {
		t.Errorf("stderr: %q", stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(msgs) {
		t.Fatalf("%d lines for %d messages:\n%s", len(lines), len(msgs), out.String())
	}
	re := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{6}  alpha (->|<-) beta  ([A-Z ]+?) +ref (\d+)/([01])(  cause (\d+) \(([a-z ,]+)\))?$`)
	var sawRefusal bool
	for i, l := range lines {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("line %q", l)
			continue
		}
		s := msgs[i]
		typ, ref, _ := s.Header()
		arrow := "->"
		if s.Dir == trace.In {
			arrow = "<-"
		}
		flag := "0"
		if ref.Flag {
			flag = "1"
		}
		if m[1] != arrow || m[2] != typ.String() || m[3] != fmt.Sprint(ref.Value) || m[4] != flag {
			t.Errorf("line %q for %s %v %v", l, s.Dir, typ, ref)
		}
		if s.Time.Local().Format("15:04:05.000000") != l[:15] {
			t.Errorf("line %q for a message at %v", l, s.Time)
		}
		msg, _ := uni.Decode(s.Msg)
		if c, ok := msg.Cause(); ok != (m[5] != "") || ok && m[6] != fmt.Sprint(int(c)) {
			t.Errorf("line %q for a message with cause %v (%v)", l, c, ok)
		}
		if m[1] == "<-" && m[2] == "RELEASE COMPLETE" && m[6] == "88" && m[7] == "incompatible destination" {
			sawRefusal = true
		}
	}
	if !sawRefusal {
		t.Errorf("no line for beta's refusal:\n%s", out.String())
	}
}

// TestTraceWrite: `condis trace -w FILE` writes alpha's messages to a
// pcapng file that tshark decodes as Q.2931 with no preference, with the
// nodes' addresses, and says how many it wrote.
func TestTraceWrite(t *testing.T) {
	tshark := tsharktest.Path(t, "condis trace -w")
	p := startTracedPair(t)
	p.calls(t)
	from := len(p.messages(0))
	file := filepath.Join(t.TempDir(), "alpha.pcapng")
	stop, stderr := p.runTraceCmd(t, io.Discard, "-w", file)
	p.calls(t)
	msgs := p.messages(from)
	if err := stop(); err != nil {
		t.Fatalf("trace -w: %v", err)
	}
	if want := fmt.Sprintf("condis trace: %d message(s) written to %s\n", len(msgs), file); stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	out := tsharktest.Run(t, tshark, "-r", file, "-T", "fields", "-E", "separator=|",
		"-e", "frame.protocols", "-e", "ip.src", "-e", "exported_pdu.src_port", "-e", "exported_pdu.dst_port",
		"-e", "frame.comment", "-e", "q2931.message_type")
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(msgs) {
		t.Fatalf("tshark shows %d packets, alpha traced %d messages:\n%s", len(lines), len(msgs), out)
	}
	for i, s := range msgs {
		typ, _, _ := s.Header()
		want := fmt.Sprintf("exported_pdu:q2931|127.0.0.1|%d|%d|alpha -> beta|0x%02x", p.alphaPort, p.betaPort, uint8(typ))
		if s.Dir == trace.In {
			want = fmt.Sprintf("exported_pdu:q2931|127.0.0.1|%d|%d|alpha <- beta|0x%02x", p.betaPort, p.alphaPort, uint8(typ))
		}
		if lines[i] != want {
			t.Errorf("packet %d: %q, want %q", i+1, lines[i], want)
		}
	}
}

// TestTraceJSONCount: --json prints the node's events as JSON lines, and
// -c N ends the trace after N messages with exit status 0.
func TestTraceJSONCount(t *testing.T) {
	p := startTracedPair(t)
	p.calls(t)
	pr, pw := io.Pipe()
	var out lockedBuilder
	c := start(nil, &out, pw, "trace", "--control", p.alphaSock, "--json", "-c", "2")
	if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || !strings.HasPrefix(line, "condis trace: tracing node alpha") {
		t.Fatalf("trace said %q, %v", line, err)
	}
	go io.Copy(io.Discard, pr)
	defer pw.Close()
	// A call: a SETUP out, then a CONNECT in at least.
	call := start(strings.NewReader(""), io.Discard, nil, "call", "--control", p.alphaSock, "beta/echo")
	if err := call.wait(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("trace -c 2: %v", err)
		}
	case <-time.After(30 * time.Second):
		c.cancel()
		t.Fatal("trace -c 2 did not stop after two messages")
	}
	var signals []string
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var ev node.TraceEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if ev.Kind == node.TraceSignal {
			signals = append(signals, ev.Dir+" "+ev.Type)
			if m, err := uni.Decode(ev.Msg); err != nil || m.Type.String() != ev.Type {
				t.Errorf("signal event's message: %v, %v; its type says %s", m, err, ev.Type)
			}
		}
	}
	if len(signals) != 2 || signals[0] != "out SETUP" {
		t.Errorf("signals %q, want two, the first alpha's SETUP", signals)
	}
}

// TestTraceErrors: what trace refuses, in one line each.
func TestTraceErrors(t *testing.T) {
	mem := startNode(t) // the in-memory call manager: no trace events
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"trace"}, "no control socket"},
		{[]string{"trace", "--control", "x.sock", "-w", "f", "--json"}, "-w and --json do not go together"},
		{[]string{"trace", "--control", "x.sock", "-w", "f", "--all"}, "--all does not go with -w"},
		{[]string{"trace", "--control", "x.sock", "-c", "-1"}, "-c must not be negative"},
		{[]string{"trace", "--control", filepath.Join(t.TempDir(), "none.sock")}, "node not running"},
		{[]string{"trace", "--control", mem.sock}, "this node's call manager has no trace events"},
	} {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			c := start(nil, io.Discard, io.Discard, tc.args...)
			oneLine(t, c.wait(), tc.want)
		})
	}
}

// TestTraceLadder: `condis trace --ladder` draws each call of a node that
// traces its mediator: the CoNDIS requests and handlers beside the Q.2931
// messages, one ladder per call (the call that connected and closed, and
// the one beta refused), and --mermaid the same as sequenceDiagrams.
func TestTraceLadder(t *testing.T) {
	p := startTracedPair(t, func(o *node.StartOptions) { o.TraceMediator = true })
	p.calls(t)
	for _, tc := range []struct {
		flag string
		want []string
	}{
		{"--ladder", []string{"call 1: ", "call 2: ", "NdisClMakeCall(vc#", "SETUP", "CONNECT", "RELEASE", "ProtocolClMakeCallComplete", "incompatible destination (88)"}},
		{"--mermaid", []string{"## 1. ", "## 2. ", "sequenceDiagram", "->>", "SETUP", "incompatible destination (88)"}},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			var out lockedBuilder
			stop, stderr := p.runTraceCmd(t, &out, tc.flag)
			p.calls(t)
			if err := stop(); err != nil {
				t.Fatalf("trace: %v (stderr %q)", err, stderr.String())
			}
			got := out.String()
			t.Logf("condis trace %s:\n%s", tc.flag, got)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %q in:\n%s", w, got)
				}
			}
			if strings.Contains(got, "call 3: ") || strings.Contains(got, "## 3. ") {
				t.Errorf("more than the two calls drawn:\n%s", got)
			}
		})
	}
	// Flags that do not go together.
	for _, args := range [][]string{{"--ladder", "--json"}, {"--mermaid", "-w", "x.pcapng"}, {"--ladder", "--all"}} {
		c := start(nil, io.Discard, io.Discard, append([]string{"trace", "--control", p.alphaSock}, args...)...)
		if err := c.wait(); err == nil || !strings.Contains(err.Error(), "do not go with") {
			t.Errorf("trace %v: %v", args, err)
		}
	}
}
