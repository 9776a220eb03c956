package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// TestMain fails the package's tests if any goroutine outlives them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testNode is a node in process: a strict mediator, the in-memory MCM and a
// Control serving a unix socket in the test's temporary directory. At
// cleanup it shuts the Control down and checks that the mediator holds
// nothing and that nothing pended for ever.
type testNode struct {
	t    *testing.T
	m    *ndis.Mediator
	fab  *memdrv.Fabric
	mcm  *memdrv.MCM
	mem  *MemCallManager
	ctl  *Control
	sock string
}

func startNode(t *testing.T, mode memdrv.Mode) *testNode {
	t.Helper()
	return startNodeWith(t, mode, nodeOptions{})
}

// nodeOptions change what startNodeWith starts.
type nodeOptions struct {
	onViolation func(ndis.Violation) // the mediator's hook; nil: strict (ndis.FailOn)
	logger      *slog.Logger         // the Control's; nil discards
	// noSocket serves no unix socket: sessions come through pipe, all
	// in memory, as a synctest bubble needs them.
	noSocket bool
}

func startNodeWith(t *testing.T, mode memdrv.Mode, o nodeOptions) *testNode {
	t.Helper()
	n := &testNode{t: t, fab: memdrv.NewFabric()}
	if o.onViolation == nil {
		o.onViolation = ndis.FailOn(t)
	}
	n.m = ndis.New(ndis.Options{Name: t.Name(), OnViolation: o.onViolation})
	var st ndis.Status
	n.mcm, st = memdrv.NewMCM(n.m, "mcm", n.fab)
	if st != ndis.StatusSuccess {
		t.Fatalf("NewMCM: %v", st)
	}
	n.mcm.SetMode(mode)
	n.mem = NewMemCallManager(n.mcm, n.fab)
	var err error
	n.ctl, err = NewControl(context.Background(), n.mem, Options{Logger: o.logger})
	if err != nil {
		n.mem.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	if o.noSocket {
		served <- nil
	} else {
		n.sock = filepath.Join(t.TempDir(), "c.sock")
		ln, err := ListenControl(n.sock)
		if err != nil {
			t.Fatal(err)
		}
		go func() { served <- n.ctl.Serve(ln) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a hang is a failure, not a timeout of the whole run
		defer cancel()
		if err := n.ctl.Shutdown(ctx); err != nil {
			t.Errorf("Control.Shutdown: %v\n%v\n%v", err, n.ctl, n.m.Snapshot())
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		n.mem.Close()
		if s := n.m.Snapshot(); !s.Empty() {
			t.Errorf("the mediator still holds objects:\n%v", s)
		}
		n.m.Audit() // strict: anything left is a failure
	})
	return n
}

// pipe opens a control connection to n over net.Pipe and sends req. It
// returns the client's session and the node's end of the connection.
func (n *testNode) pipe(req Request) (*Session, net.Conn, error) { return pipeTo(n.t, n.ctl, req) }

// pipeTo opens a control connection to c over net.Pipe and sends req.
func pipeTo(t testing.TB, c *Control, req Request) (*Session, net.Conn, error) {
	cli, srv := net.Pipe()
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		return nil, nil, errors.New("the Control is down")
	}
	c.conns[srv] = nil
	c.wg.Add(1)
	c.mu.Unlock()
	go c.serveConn(srv)
	conn, br, resp, err := request(context.Background(), cli, req)
	if err != nil {
		return nil, nil, err
	}
	s := &Session{Response: resp, conn: conn, br: br}
	t.Cleanup(func() { s.Close() })
	return s, srv, nil
}

func (n *testNode) listen(service string, echo bool) *Session {
	n.t.Helper()
	s, err := DialListen(context.Background(), n.sock, Request{Service: service, Echo: echo})
	if err != nil {
		n.t.Fatalf("listen %s: %v", service, err)
	}
	n.t.Cleanup(func() { s.Close() })
	return s
}

func (n *testNode) call(req Request) *Session {
	n.t.Helper()
	s, err := DialCall(context.Background(), n.sock, req)
	if err != nil {
		n.t.Fatalf("call %s: %v", req.Dest, err)
	}
	n.t.Cleanup(func() { s.Close() })
	return s
}

// outgoingVcs counts the VCs the mediator holds that a client created.
func (n *testNode) outgoingVcs() int {
	c := 0
	for _, v := range n.m.Snapshot().Vcs {
		if v.Kind == "outgoing" {
			c++
		}
	}
	return c
}

// session frames, read to the close frame.
type transcript struct {
	data   [][]byte
	errors []string
	events []Event
	close  CloseInfo
}

func readAll(t *testing.T, s *Session) transcript {
	t.Helper()
	var tr transcript
	for {
		f, err := s.Recv()
		if err != nil {
			t.Fatalf("no close frame: %v (so far %+v)", err, tr)
		}
		switch f.Type {
		case FrameData:
			tr.data = append(tr.data, f.Payload)
		case FrameError:
			tr.errors = append(tr.errors, string(f.Payload))
		case FrameEvent:
			ev, err := ParseEvent(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			tr.events = append(tr.events, ev)
		case FrameClose:
			info, err := ParseClose(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			tr.close = info
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				t.Errorf("after the close frame: %v, want EOF", err)
			}
			return tr
		default:
			t.Fatalf("unexpected frame %v", f.Type)
		}
	}
}

// recvData reads one frame and wants it to be a data frame.
func recvData(t *testing.T, s *Session) []byte {
	t.Helper()
	f, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != FrameData {
		t.Fatalf("got a %v frame (%s), want data", f.Type, f.Payload)
	}
	return f.Payload
}

func recvEvent(t *testing.T, s *Session) Event {
	t.Helper()
	f, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != FrameEvent {
		t.Fatalf("got a %v frame (%s), want an event", f.Type, f.Payload)
	}
	ev, err := ParseEvent(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

var modes = []memdrv.Mode{memdrv.Immediate, memdrv.Pend, memdrv.PendEarly}

func TestEchoCall(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			ls := n.listen("echo", true)
			cs := n.call(Request{Dest: "any/echo", Tx: &Flowspec{Peak: 1 << 20, MaxSDU: 4000}, Rx: &Flowspec{Peak: 1 << 20}})
			if cs.Response.MaxSDU != 4000 || cs.Response.Vc == "" || cs.Response.Tx == nil || cs.Response.Tx.Peak != 1<<20 {
				t.Errorf("response %+v", cs.Response)
			}
			var sent [][]byte
			for i := range 20 {
				sdu := bytes.Repeat([]byte{byte('a' + i)}, 1+i*197)
				sent = append(sent, sdu)
				if err := cs.Send(sdu); err != nil {
					t.Fatal(err)
				}
			}
			if err := cs.End(); err != nil {
				t.Fatal(err)
			}
			tr := readAll(t, cs)
			if len(tr.data) != len(sent) {
				t.Fatalf("%d SDUs back, want %d", len(tr.data), len(sent))
			}
			for i := range sent {
				if !bytes.Equal(tr.data[i], sent[i]) {
					t.Errorf("SDU %d: %d octets back, want %d (the same)", i, len(tr.data[i]), len(sent[i]))
				}
			}
			if want := (CloseInfo{Normal: true, By: ByLocal, Text: "call closed", Sent: 20}); tr.close != want {
				t.Errorf("close %+v, want %+v", tr.close, want)
			}
			if len(tr.errors) > 0 {
				t.Errorf("error frames: %q", tr.errors)
			}
			if c := n.outgoingVcs(); c != 0 {
				t.Errorf("%d outgoing VC(s) left after the close frame", c)
			}

			if err := ls.End(); err != nil {
				t.Fatal(err)
			}
			lt := readAll(t, ls)
			if len(lt.events) != 2 || lt.events[0].Event != EventCall || lt.events[1].Event != EventClosed ||
				lt.events[0].Peer != "local" || lt.events[1].CloseInfo == nil || !lt.events[1].Normal {
				t.Errorf("listen events %+v", lt.events)
			}
			if !lt.close.Normal || lt.close.By != ByLocal {
				t.Errorf("listen close %+v", lt.close)
			}
		})
	}
}

func TestLinger(t *testing.T) {
	n := startNode(t, memdrv.Pend)
	n.listen("echo", true)
	cs := n.call(Request{Dest: "echo", LingerMs: 20})
	for _, s := range []string{"one", "two", "three"} {
		if err := cs.Send([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	cs.End()
	tr := readAll(t, cs)
	if got := string(bytes.Join(tr.data, []byte("|"))); got != "one|two|three" {
		t.Errorf("got %q back", got)
	}
	if !tr.close.Normal {
		t.Errorf("close %+v", tr.close)
	}
}

func TestOversizeSDURefused(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			n.listen("echo", true)
			cs := n.call(Request{Dest: "any/echo", Tx: &Flowspec{MaxSDU: 100}})
			if cs.Response.MaxSDU != 100 {
				t.Fatalf("max SDU %d, want 100", cs.Response.MaxSDU)
			}
			cs.Send(bytes.Repeat([]byte("x"), 101))
			cs.Send(bytes.Repeat([]byte("y"), 100))
			cs.End()
			tr := readAll(t, cs)
			if len(tr.data) != 1 || !bytes.Equal(tr.data[0], bytes.Repeat([]byte("y"), 100)) {
				t.Errorf("data back: %q", tr.data)
			}
			want := "SDU of 101 octets refused: larger than the call's MaxSduSize (100); not sent"
			if len(tr.errors) != 1 || tr.errors[0] != want {
				t.Errorf("errors %q, want [%q]", tr.errors, want)
			}
			if !tr.close.Normal {
				t.Errorf("close %+v", tr.close)
			}
		})
	}
}

func TestNoDefaultTruncation(t *testing.T) {
	n := startNode(t, memdrv.Immediate)
	n.listen("echo", true)
	cs := n.call(Request{Dest: "echo"})
	if cs.Response.MaxSDU != DefaultMaxSDU {
		t.Fatalf("max SDU %d, want %d when not specified", cs.Response.MaxSDU, DefaultMaxSDU)
	}
	big := bytes.Repeat([]byte("z"), DefaultMaxSDU)
	cs.Send(big)
	cs.Send(append(big, 'z'))
	cs.End()
	tr := readAll(t, cs)
	if len(tr.data) != 1 || len(tr.data[0]) != DefaultMaxSDU || len(tr.errors) != 1 {
		t.Errorf("%d SDU(s) back, errors %q", len(tr.data), tr.errors)
	}
}

func TestCallFailures(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)

			// A client of its own refuses every call on "billing", as a
			// node's allow list would.
			cl, st := memdrv.NewClient(n.m, "acl", n.mcm.Adapter(), n.fab)
			if st != ndis.StatusSuccess {
				t.Fatal(st)
			}
			cl.SetMode(mode)
			cl.Accept = func(*memdrv.ClientVc, *ndis.CallParameters) ndis.Status { return ndis.StatusFailure }
			n.mem.Drain()
			af := cl.Af()
			sap := cl.RegisterSap(af, "billing")
			n.mem.Drain()
			defer func() {
				cl.DeregisterSap(sap)
				n.mem.Drain()
				cl.CloseAf(af)
				n.mem.Drain()
				if st := cl.Unbind(); st != ndis.StatusSuccess {
					t.Errorf("unbind: %v", st)
				}
			}()

			for _, c := range []struct {
				dest, err, status string
				cause             int
			}{
				{"any/nosuch", "call any/nosuch failed: NDIS_STATUS_INVALID_SAP (cause 88, incompatible destination): no such service at the destination",
					"NDIS_STATUS_INVALID_SAP", 88},
				{"local/billing", "call local/billing failed: NDIS_STATUS_FAILURE (cause 21, call rejected): the called node refused the call (its trust setting or allow list, or its listener)",
					"NDIS_STATUS_FAILURE", 21},
				{"mars/echo", `call mars/echo: unknown node "mars" (the in-memory network is "local")`, "", 0},
				{"any/bad name", `call any/bad name: destination "any/bad name": character ' ' is not a letter, digit, '-', '_' or '.'`, "", 0},
			} {
				_, err := DialCall(context.Background(), n.sock, Request{Dest: c.dest})
				var re *RequestError
				if !errors.As(err, &re) {
					t.Fatalf("call %s: %v, want a RequestError", c.dest, err)
				}
				if re.Error() != c.err || re.Response.Status != c.status || re.Response.Cause != c.cause {
					t.Errorf("call %s:\n got %q %s %d\nwant %q %s %d", c.dest, re.Error(), re.Response.Status, re.Response.Cause, c.err, c.status, c.cause)
				}
				if v := n.outgoingVcs(); v != 0 {
					t.Errorf("call %s: %d outgoing VC(s) left", c.dest, v)
				}
			}
		})
	}
}

func TestFarEndClosesNormally(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			ls := n.listen("echo", true)
			cs := n.call(Request{Dest: "any/echo"})
			cs.Send([]byte("ping"))
			if got := recvData(t, cs); string(got) != "ping" {
				t.Fatalf("got %q", got)
			}
			if ev := recvEvent(t, ls); ev.Event != EventCall {
				t.Fatalf("event %+v", ev)
			}
			ls.End() // the listener goes away: its calls are closed normally
			tr := readAll(t, cs)
			want := CloseInfo{Normal: true, By: ByRemote, Status: "NDIS_STATUS_SUCCESS", Cause: 16, CauseText: "normal call clearing",
				Text: "call closed by the far end", Sent: 1}
			if tr.close != want {
				t.Errorf("close %+v\nwant %+v", tr.close, want)
			}
			readAll(t, ls)
		})
	}
}

func TestLinkDown(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			ls := n.listen("echo", true)
			cs := n.call(Request{Dest: "any/echo"})
			cs.Send([]byte("ping"))
			recvData(t, cs)
			recvEvent(t, ls)
			n.mcm.LinkDown(ndis.StatusDestOutOfOrder)
			tr := readAll(t, cs)
			want := CloseInfo{By: ByRemote, Status: "NDIS_STATUS_DEST_OUT_OF_ORDER", Cause: 27, CauseText: "destination out of order",
				Text: "call closed: NDIS_STATUS_DEST_OUT_OF_ORDER (cause 27, destination out of order)", Sent: 1}
			if tr.close != want {
				t.Errorf("close %+v\nwant %+v", tr.close, want)
			}
			ev := recvEvent(t, ls)
			if ev.Event != EventClosed || ev.CloseInfo == nil || ev.Normal || ev.Cause != 27 {
				t.Errorf("listen event %+v", ev)
			}
		})
	}
}

func TestClientGoneClosesCall(t *testing.T) {
	n := startNode(t, memdrv.Pend)
	ls := n.listen("echo", true)
	cs := n.call(Request{Dest: "any/echo"})
	recvEvent(t, ls)
	cs.Send([]byte("ping"))
	recvData(t, cs)
	cs.Close() // no end frame: the node closes the call at once
	ev := recvEvent(t, ls)
	if ev.Event != EventClosed || !ev.Normal {
		t.Errorf("listen event %+v", ev)
	}
}

func TestListenWithoutEcho(t *testing.T) {
	n := startNode(t, memdrv.Immediate)
	ls := n.listen("sink", false)
	cs := n.call(Request{Dest: "sink"})
	if ev := recvEvent(t, ls); ev.Event != EventCall {
		t.Fatalf("event %+v", ev)
	}
	cs.Send([]byte("to the sink"))
	if got := recvData(t, ls); string(got) != "to the sink" {
		t.Errorf("sink got %q", got)
	}
	cs.End()
	if tr := readAll(t, cs); len(tr.data) != 0 || !tr.close.Normal {
		t.Errorf("caller got %+v", tr)
	}
}

// TestListenQuiet: a quiet listen session gets its calls' data and its
// close frame, and not one event frame (Request.Quiet); quiet does not go
// with tagged.
func TestListenQuiet(t *testing.T) {
	n := startNode(t, memdrv.Immediate)
	ls, err := DialListen(context.Background(), n.sock, Request{Service: "sink", Quiet: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ls.Close() })
	for _, sdu := range []string{"one", "two"} {
		cs := n.call(Request{Dest: "sink"})
		cs.Send([]byte(sdu))
		cs.End()
		if tr := readAll(t, cs); !tr.close.Normal {
			t.Errorf("caller got %+v", tr)
		}
	}
	if err := ls.End(); err != nil {
		t.Fatal(err)
	}
	lt := readAll(t, ls)
	if len(lt.events) != 0 || string(bytes.Join(lt.data, []byte("|"))) != "one|two" || !lt.close.Normal {
		t.Errorf("quiet listener got %d event(s) %+v, data %q, close %+v; want no events, one|two, a normal close", len(lt.events), lt.events, lt.data, lt.close)
	}
	_, err = DialListen(context.Background(), n.sock, Request{Service: "svc", Quiet: true, Tagged: true})
	if want := "listen: quiet and tagged do not go together (a tagged session names its calls in events); ask for one"; err == nil || err.Error() != want {
		t.Errorf("quiet and tagged: %v, want %s", err, want)
	}
}

func TestListenServiceInUse(t *testing.T) {
	n := startNode(t, memdrv.Pend)
	n.listen("echo", true)
	_, err := DialListen(context.Background(), n.sock, Request{Service: "echo"})
	want := "listen echo: the call manager refused the SAP: NDIS_STATUS_INVALID_DATA (is the service already registered?)"
	if err == nil || err.Error() != want {
		t.Errorf("second listen: %v\nwant %s", err, want)
	}
}

func TestCallsList(t *testing.T) {
	n := startNode(t, memdrv.Immediate)
	n.listen("echo", true)
	cs := n.call(Request{Dest: "any/echo", Tx: &Flowspec{Service: "controlled-load", Rate: 1000, Peak: 2000, Bucket: 3000, MaxSDU: 1500}})
	for _, s := range []string{"a", "bb", "ccc"} {
		cs.Send([]byte(s))
		recvData(t, cs)
	}
	// A send is counted when it completes, which may come after its echo
	// arrived: wait (bounded) until all three are.
	var calls []CallInfo
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var err error
		if calls, err = ListCalls(context.Background(), n.sock); err != nil {
			t.Fatal(err)
		}
		if len(calls) != 2 || (calls[0].TxPackets == 3 && calls[1].TxPackets == 3) || time.Now().After(deadline) {
			break
		}
	}
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2: %+v", len(calls), calls)
	}
	out, in := calls[0], calls[1]
	if out.Kind != "outgoing" || out.Vc != cs.Response.Vc || out.Client != "control" || out.State != "CONNECTED" ||
		out.Peer != "any" || out.Service != "echo" || out.Parties != 0 ||
		out.TxPackets != 3 || out.TxBytes != 6 || out.RxPackets != 3 || out.RxBytes != 6 {
		t.Errorf("outgoing %+v", out)
	}
	if out.Tx == nil || *out.Tx != (Flowspec{Service: "controlled-load", Rate: 1000, Peak: 2000, Bucket: 3000, MaxSDU: 1500}) {
		t.Errorf("outgoing tx %+v", out.Tx)
	}
	if in.Kind != "incoming(MCM)" || in.State != "CONNECTED" || in.Peer != "local" || in.Service != "echo" ||
		in.RxPackets != 3 || in.RxBytes != 6 || in.TxPackets != 3 {
		t.Errorf("incoming %+v", in)
	}
}

func TestShutdownClosesSessions(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			ls := n.listen("echo", true)
			cs := n.call(Request{Dest: "any/echo"})
			cs.Send([]byte("ping"))
			recvData(t, cs)
			if err := n.ctl.Close(); err != nil {
				t.Fatal(err)
			}
			if s := n.m.Snapshot(); !s.Empty() {
				t.Errorf("after Close:\n%v", s)
			}
			tr := readAll(t, cs)
			if want := (CloseInfo{Normal: true, By: ByNode, Text: "call closed: the node is shutting down", Sent: 1}); tr.close != want {
				t.Errorf("call close %+v", tr.close)
			}
			lt := readAll(t, ls)
			if !lt.close.Normal || lt.close.By != ByNode {
				t.Errorf("listen close %+v", lt.close)
			}
			if _, err := DialCall(context.Background(), n.sock, Request{Dest: "echo"}); err == nil ||
				!strings.HasPrefix(err.Error(), "node not running") {
				t.Errorf("call after shutdown: %v", err)
			}
		})
	}
}

func TestAfWithdrawn(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			ls := n.listen("echo", true)
			cs := n.call(Request{Dest: "any/echo"})
			cs.Send([]byte("ping"))
			recvData(t, cs)
			n.mcm.NotifyCloseAll()
			tr := readAll(t, cs)
			if tr.close.Normal || tr.close.Text != "call closed: the call manager withdrew its address family" {
				t.Errorf("call close %+v", tr.close)
			}
			lt := readAll(t, ls)
			if lt.close.Normal || lt.close.By != ByNode {
				t.Errorf("listen close %+v", lt.close)
			}
			_, err := DialCall(context.Background(), n.sock, Request{Dest: "echo"})
			if err == nil || err.Error() != "call echo: the call manager withdrew its address family" {
				t.Errorf("call after withdrawal: %v", err)
			}
		})
	}
}

func TestConcurrentCalls(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			n.listen("echo", true)
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cs, err := DialCall(context.Background(), n.sock, Request{Dest: "echo"})
					if err != nil {
						t.Error(err)
						return
					}
					defer cs.Close()
					var want bytes.Buffer
					for j := range 50 {
						sdu := fmt.Appendf(nil, "caller %d sdu %d;", i, j)
						want.Write(sdu)
						if err := cs.Send(sdu); err != nil {
							t.Error(err)
							return
						}
					}
					cs.End()
					var got bytes.Buffer
					for {
						f, err := cs.Recv()
						if err != nil {
							t.Error(err)
							return
						}
						if f.Type == FrameClose {
							break
						}
						got.Write(f.Payload)
					}
					if got.String() != want.String() {
						t.Errorf("caller %d got %q", i, got.String())
					}
				}()
			}
			wg.Wait()
		})
	}
}

func TestBadRequests(t *testing.T) {
	n := startNode(t, memdrv.Immediate)
	for _, c := range []struct{ line, want string }{
		{`{"op":"dance"}`, `bad request: unknown op "dance" (call, listen, calls, status, peers, bench, trace, party-add, party-drop, modify or hangup)`},
		{`{"op":"call","dst":"x"}`, `bad request: json: unknown field "dst"`},
		{`{"op":"call"}`, `call: no destination (node/service)`},
		{`{"op":"listen"}`, `listen: no service`},
		{`{"op":"bench","calls":1}`, `bench: no destination (node/service)`},
		{`not json`, `bad request: invalid character 'o' in literal null (expecting 'u')`},
	} {
		conn, err := net.Dial("unix", n.sock)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(conn, c.line)
		b, _ := io.ReadAll(conn)
		conn.Close()
		if got := strings.TrimSpace(string(b)); got != fmt.Sprintf(`{"ok":false,"error":%q}`, c.want) {
			t.Errorf("%s -> %s", c.line, got)
		}
	}
}

func TestNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := ListCalls(context.Background(), sock)
	want := "node not running (" + sock + ": no such socket)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	// A stale socket file: nothing listens on it.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	_, err = ListCalls(context.Background(), sock)
	want = "node not running (" + sock + ": nothing is listening on the socket)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	// ListenControl takes the stale socket over.
	ln, err = ListenControl(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := ListenControl(sock); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Errorf("second ListenControl: %v", err)
	}
}
