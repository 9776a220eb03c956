package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/condis-project/condis/internal/tsharktest"
	"github.com/condis-project/condis/pki"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// recorder keeps every trace event a node emits, copied.
type recorder struct {
	mu      sync.Mutex
	signals []trace.Signal
	calls   []trace.Call
	events  int // of every kind
}

func (r *recorder) tracer() trace.Tracer {
	return trace.Tracer{
		Signal: func(s trace.Signal) {
			s.Msg = slices.Clone(s.Msg)
			r.mu.Lock()
			r.signals = append(r.signals, s)
			r.events++
			r.mu.Unlock()
		},
		Call: func(c trace.Call) {
			r.mu.Lock()
			r.calls = append(r.calls, c)
			r.events++
			r.mu.Unlock()
		},
		Link:      func(trace.Link) { r.count() },
		Handshake: func(trace.Handshake) { r.count() },
	}
}

func (r *recorder) count() {
	r.mu.Lock()
	r.events++
	r.mu.Unlock()
}

// mark is where the record is now: (signals, calls, events).
func (r *recorder) mark() (int, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.signals), len(r.calls), r.events
}

// since returns what was recorded after mark.
func (r *recorder) since(signals, calls int) ([]trace.Signal, []trace.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.signals[signals:]), slices.Clone(r.calls[calls:])
}

// tracedNode is a node started from its configuration file, as `condis
// node` starts it, with its Control on its socket and a recorder of its
// trace.
type tracedNode struct {
	n    *Node
	ctl  *Control
	sock string
	port int
	rec  *recorder
	stop func() // shuts the Control down and closes the node; once
}

// pairOptions change what startTracedPair starts.
type pairOptions struct {
	extra    func(name string) string // added to each node's file
	mediator bool                     // StartOptions.TraceMediator
}

// startTracedPair starts alpha and beta, peers of each other on loopback,
// from TOML files. A listen session with echo serves beta/echo until the
// pair is stopped.
func startTracedPair(t *testing.T, o pairOptions) (alpha, beta *tracedNode) {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	ports := make([]int, 2)
	for i := range ports {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
	}
	start := func(name string, port int, peer string, peerPort int) *tracedNode {
		if _, err := pki.Issue(dir, name); err != nil {
			t.Fatal(err)
		}
		extra := ""
		if o.extra != nil {
			extra = o.extra(name)
		}
		conf := fmt.Sprintf("name = %q\nlisten = \"127.0.0.1:%d\"\ncontrol = %q\nca = \"ca.pem\"\ncert = \"%s.pem\"\nkey = \"%s.key\"\n%s\n[[peer]]\nname = %q\naddress = \"127.0.0.1:%d\"\n",
			name, port, name+".sock", name, name, extra, peer, peerPort)
		path := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		tn := &tracedNode{sock: cfg.Control, port: port, rec: &recorder{}}
		if tn.n, err = Start(cfg, StartOptions{Tracer: tn.rec.tracer(), TraceMediator: o.mediator}); err != nil {
			t.Fatal(err)
		}
		if tn.ctl, err = NewControl(context.Background(), tn.n.CallManager(), Options{}); err != nil {
			tn.n.Close(context.Background())
			t.Fatal(err)
		}
		ln, err := ListenControl(cfg.Control)
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- tn.ctl.Serve(ln) }()
		var once sync.Once
		tn.stop = func() {
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				if err := tn.ctl.Shutdown(ctx); err != nil {
					t.Errorf("%s: Control.Shutdown: %v", name, err)
				}
				if err := <-served; err != nil {
					t.Errorf("%s: Serve: %v", name, err)
				}
				if err := tn.n.Close(ctx); err != nil {
					t.Errorf("%s: Close: %v", name, err)
				}
			})
		}
		t.Cleanup(tn.stop)
		return tn
	}
	alpha = start("alpha", ports[0], "beta", ports[1])
	beta = start("beta", ports[1], "alpha", ports[0])
	listen, err := DialListen(context.Background(), beta.sock, Request{Service: "echo", Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			if _, err := listen.Recv(); err != nil {
				return
			}
		}
	}()
	stopBeta := beta.stop
	beta.stop = func() {
		listen.Close()
		<-drained
		stopBeta()
	}
	t.Cleanup(func() { listen.Close(); <-drained })
	return alpha, beta
}

// callScenario makes, from alpha, a call to beta/echo that carries data
// and is then closed, and a call to beta/nosuch that beta refuses (cause
// 88, no such service).
func callScenario(t *testing.T, alpha *tracedNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := DialCall(ctx, alpha.sock, Request{Dest: "beta/echo"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Send([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if f, err := s.Recv(); err != nil || f.Type != FrameData || string(f.Payload) != "hello" {
		t.Fatalf("echo: %v %q, %v", f.Type, f.Payload, err)
	}
	if err := s.End(); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := s.Recv()
		if err != nil {
			t.Fatalf("call: no close frame: %v", err)
		}
		if f.Type == FrameClose {
			if info, err := ParseClose(f.Payload); err != nil || !info.Normal {
				t.Fatalf("call closed %+v, %v", info, err)
			}
			break
		}
	}
	_, err = DialCall(ctx, alpha.sock, Request{Dest: "beta/nosuch"})
	var re *RequestError
	if !errors.As(err, &re) || re.Response.Cause != int(uni.CauseIncompatibleDestination) {
		t.Fatalf("call to beta/nosuch: %v, want refused with cause 88", err)
	}
}

// causesHex is the causes of a message as tshark lists q2931.cause.value.
func causesHex(t *testing.T, msg []byte) string {
	m, err := uni.Decode(msg)
	if err != nil {
		t.Fatalf("a traced message does not decode: %v", err)
	}
	var cs []string
	for _, c := range m.Causes {
		cs = append(cs, fmt.Sprintf("0x%02x", uint8(c.Value)))
	}
	return strings.Join(cs, ",")
}

// TestCaptureTwoNodes: two nodes with the capture key make a call with
// data, close it, and have a call refused. Each capture, read back by a
// stock tshark with no preference, holds every message its node traced
// (trace.Signal), each decoded as Q.2931: type, call reference and cause
// as sent, with the nodes' UDP addresses and ports, its direction and its
// time.
func TestCaptureTwoNodes(t *testing.T) {
	tshark := tsharktest.Path(t, "node captures")
	alpha, beta := startTracedPair(t, pairOptions{extra: func(name string) string { return fmt.Sprintf("capture = %q", name+".pcapng") }})
	callScenario(t, alpha)
	alpha.stop()
	beta.stop() // the captures are complete once the nodes are closed

	for _, tn := range []*tracedNode{alpha, beta} {
		name := tn.n.Config.Name
		t.Run(name, func(t *testing.T) {
			file := tn.n.Config.Capture
			if filepath.Base(file) != name+".pcapng" || !filepath.IsAbs(file) {
				t.Fatalf("capture file %q", file)
			}
			if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("capture file: %v, %v; want mode 0600", fi, err)
			}
			other := beta
			if tn == beta {
				other = alpha
			}
			sigs, _ := tn.rec.since(0, 0)
			var want []string
			types := map[uni.MsgType]bool{}
			for _, s := range sigs {
				typ, ref, ok := s.Header()
				if !ok {
					t.Fatalf("a traced message has no Q.2931 header: %x", s.Msg)
				}
				types[typ] = true
				src, dst, arrow := tn.port, other.port, " -> "
				if s.Dir == trace.In {
					src, dst, arrow = other.port, tn.port, " <- "
				}
				flag := 0
				if ref.Flag {
					flag = 1
				}
				want = append(want, fmt.Sprintf("%d.%09d|exported_pdu:q2931|127.0.0.1|127.0.0.1|%d|%d|%s%s%s|0x%02x|%d|%06x|%s",
					s.Time.Unix(), s.Time.Nanosecond(), src, dst, name, arrow, s.Peer, uint8(typ), flag, ref.Value, causesHex(t, s.Msg)))
			}
			for _, typ := range []uni.MsgType{uni.MsgSetup, uni.MsgConnect, uni.MsgRelease, uni.MsgReleaseComplete} {
				if !types[typ] {
					t.Errorf("%s traced no %v: the scenario did not run", name, typ)
				}
			}
			out := tsharktest.Run(t, tshark, "-r", file, "-T", "fields", "-E", "separator=|",
				"-e", "frame.time_epoch", "-e", "frame.protocols", "-e", "ip.src", "-e", "ip.dst",
				"-e", "exported_pdu.src_port", "-e", "exported_pdu.dst_port", "-e", "frame.comment",
				"-e", "q2931.message_type", "-e", "q2931.call_ref_flag", "-e", "q2931.call_ref", "-e", "q2931.cause.value")
			t.Logf("tshark: %s", out)
			got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(got) != len(sigs) {
				t.Errorf("tshark shows %d packets; the node traced %d messages", len(got), len(sigs))
			}
			// The tracer and the capture see concurrent messages in either
			// order; each message must be there once, as it was.
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("tshark shows\n%s\nthe node traced\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if name == "alpha" && !slices.ContainsFunc(got, func(l string) bool {
				return strings.Contains(l, "|alpha <- beta|0x5a|") && strings.HasSuffix(l, "|0x58")
			}) {
				t.Errorf("alpha's capture has no RELEASE COMPLETE with cause 88 from beta")
			}
		})
	}
}

// TestCaptureConfig: the capture key names a file relative to the
// configuration's directory; an empty one, or a file the node cannot
// create, is refused naming the key.
func TestCaptureConfig(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.InitCA(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Issue(dir, "alpha"); err != nil {
		t.Fatal(err)
	}
	load := func(capture string) (*Config, error) {
		path := filepath.Join(dir, "alpha.toml")
		conf := "name = \"alpha\"\nlisten = \"127.0.0.1:0\"\ncontrol = \"alpha.sock\"\nca = \"ca.pem\"\ncert = \"alpha.pem\"\nkey = \"alpha.key\"\n" + capture
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(path)
	}
	c, err := load(`capture = "caps/alpha.pcapng"` + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "caps", "alpha.pcapng"); c.Capture != want {
		t.Errorf("capture %q, want %q", c.Capture, want)
	}
	// The directory does not exist: Start fails, naming the key and the file.
	_, err = Start(c, StartOptions{})
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "capture" || !strings.Contains(err.Error(), c.Capture+": no such file or directory") {
		t.Errorf("Start with a capture it cannot create: %v", err)
	}
	if c, err := load(""); err != nil || c.Capture != "" {
		t.Errorf("no capture key: %q, %v", c.Capture, err)
	}
	_, err = load(`capture = ""` + "\n")
	if !errors.As(err, &ce) || ce.Key != "capture" || !strings.Contains(ce.Problem, "empty") {
		t.Errorf("empty capture: %v", err)
	}
	_, err = load("capture = 1\n")
	if !errors.As(err, &ce) || ce.Key != "capture" || ce.Problem != "is an integer, want a string" {
		t.Errorf("capture = 1: %v", err)
	}
}
