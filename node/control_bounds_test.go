package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// otherClient binds another client, called name, to n's call manager and
// creates count VCs on its address family, with no call on them: VCs of
// the node that cost one NdisCoCreateVc each. They are deleted at cleanup,
// before the node's own checks.
func (n *testNode) otherClient(name string, count int) (*memdrv.Client, []*memdrv.ClientVc) {
	t := n.t
	t.Helper()
	c, st := memdrv.NewClient(n.m, name, n.mcm.Adapter(), n.fab)
	if st != ndis.StatusSuccess {
		t.Fatalf("bind: %v", st)
	}
	c.NoLog = true
	n.mem.Drain()
	a := c.Af()
	if a == nil || !memdrv.See(c, func() bool { return a.Open.Done && a.Open.Status == ndis.StatusSuccess }) {
		t.Fatalf("the %s client's AF did not open", name)
	}
	vcs := make([]*memdrv.ClientVc, count)
	for i := range vcs {
		v, st := c.CreateVc(a)
		if st != ndis.StatusSuccess {
			t.Fatalf("NdisCoCreateVc #%d: %v", i, st)
		}
		vcs[i] = v
	}
	t.Cleanup(func() {
		for _, v := range vcs {
			if st := c.DeleteVc(v); st != ndis.StatusSuccess {
				t.Errorf("NdisCoDeleteVc %v: %v", v.H, st)
			}
		}
		if st := c.CloseAf(a); st != ndis.StatusSuccess && st != ndis.StatusPending {
			t.Errorf("NdisClCloseAddressFamily: %v", st)
		}
		n.mem.Drain()
		if st := c.Unbind(); st != ndis.StatusSuccess {
			t.Errorf("unbind: %v", st)
		}
	})
	return c, vcs
}

// TestCallsManyVcs: `condis calls` lists a node with 10,000 VCs (and a
// call) over the socket, every VC once, in order. The whole list used to
// be one response line, longer than the client's line limit from about
// 260 VCs on.
func TestCallsManyVcs(t *testing.T) {
	const idle = 10_000
	n := startNode(t, memdrv.Immediate)
	n.listen("echo", true)
	cs := n.call(Request{Dest: "any/echo"})
	_, vcs := n.otherClient("idle", idle)

	calls, err := ListCalls(context.Background(), n.sock)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != idle+2 {
		t.Fatalf("%d VCs listed, want %d", len(calls), idle+2)
	}
	want := map[string]bool{cs.Response.Vc: true}
	for _, v := range vcs {
		want[v.H.String()] = true
	}
	prev, calling, idleSeen := -1, 0, 0
	for _, ci := range calls {
		if k := vcNumber(ci.Vc); k <= prev {
			t.Fatalf("%s listed after vc#%d", ci.Vc, prev)
		} else {
			prev = k
		}
		switch {
		case ci.Vc == cs.Response.Vc:
			calling++
			if ci.State != "CONNECTED" || ci.Service != "echo" || ci.Client != "control" {
				t.Errorf("the call: %+v", ci)
			}
		case want[ci.Vc]:
			idleSeen++
			if ci.Client != "idle" || ci.Kind != "outgoing" {
				t.Errorf("an idle VC: %+v", ci)
			}
		}
	}
	if calling != 1 || idleSeen != idle {
		t.Errorf("listed the call %d time(s) and %d of the %d idle VCs", calling, idleSeen, idle)
	}
}

// TestQueueCapCountsEveryFrame: every frame counts against a session's
// cap, error frames too, from when it is queued until the writer has
// written it; SDUs leave room for error frames; the frame that would take
// the queue over the cap ends the session (once), what is queued is
// dropped, and only the close frame is taken after it.
func TestQueueCapCountsEveryFrame(t *testing.T) {
	var q outQueue
	q.init()
	var overflows []int
	q.overflow = func(queued int) { overflows = append(overflows, queued) }
	const msg = "unexpected frame type 0 frame; ignored"
	errCost := len(msg) + frameOverhead

	// SDUs stop at maxQueuedData and leave room for error frames.
	sdu := make([]byte, 64<<10)
	for range maxQueued / len(sdu) {
		q.pushData(sdu)
	}
	if q.octets > maxQueuedData || q.dropped == 0 {
		t.Fatalf("SDUs queued up to %d octets (%d dropped), want at most %d", q.octets, q.dropped, maxQueuedData)
	}
	q.pushError(msg)
	if len(overflows) != 0 {
		t.Fatal("an error frame after a full queue of SDUs ended the session")
	}

	// The writer takes the batch and has not written it: it still counts.
	batch, _ := q.next()
	held := q.octets
	if held != q.batch || held == 0 {
		t.Fatalf("the batch being written counts %d, the queue %d", q.batch, held)
	}
	fit := (maxQueued - held) / errCost
	for range fit {
		q.pushError(msg)
	}
	if len(overflows) != 0 || q.octets != held+fit*errCost || q.octets > maxQueued {
		t.Fatalf("%d error frames on a batch of %d octets: queue %d octets, overflows %v", fit, held, q.octets, overflows)
	}
	q.pushError(msg) // one too many
	if len(overflows) != 1 || overflows[0] != held+(fit+1)*errCost {
		t.Fatalf("overflows %v, want one of %d octets", overflows, held+(fit+1)*errCost)
	}
	if q.octets != held || len(q.frames) != 0 {
		t.Errorf("after the overflow %d octets in %d frames are queued, want only the batch (%d)", q.octets, len(q.frames), held)
	}
	if q.peak > maxQueued || q.peakFrames != len(batch)+fit {
		t.Errorf("peak %d octets, %d frames; want at most %d, and %d frames", q.peak, q.peakFrames, maxQueued, len(batch)+fit)
	}
	// Nothing but the close frame is taken now.
	q.pushError(msg)
	q.pushData([]byte("late"))
	q.pushEvent(Event{Event: EventCall, Vc: "vc#9"})
	q.written(batch)
	if q.octets != 0 || len(overflows) != 1 {
		t.Fatalf("after the batch was written: %d octets queued, overflows %v", q.octets, overflows)
	}
	q.pushClose(CloseInfo{By: ByNode, Text: "call closed: " + overflowText})
	frames, ok := q.next()
	if !ok || len(frames) != 1 || frames[0].Type != FrameClose {
		t.Fatalf("after the overflow the writer got %d frame(s), want the close frame alone", len(frames))
	}
}

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// flood writes frames of type 0 (which the node answers with an error
// frame each) to conn until a write fails, and returns that error.
func flood(conn net.Conn) error {
	const perWrite = 512
	batch := bytes.Repeat([]byte{0, 0, 0, 0, 0}, perWrite)
	for range 2_000_000 / perWrite {
		if _, err := conn.Write(batch); err != nil {
			return err
		}
	}
	return errors.New("the node took 2,000,000 bad frames without ending the session")
}

// queueOf is the out queue of the session on the node's end srv of a
// control connection.
func (n *testNode) queueOf(srv net.Conn) *outQueue {
	n.ctl.mu.Lock()
	defer n.ctl.mu.Unlock()
	s := n.ctl.conns[srv]
	if s == nil {
		n.t.Fatal("no session on the connection")
	}
	return &s.out
}

// echoes sends an SDU on a call session and wants it back.
func echoes(t *testing.T, s *Session, sdu string) {
	t.Helper()
	if err := s.Send([]byte(sdu)); err != nil {
		t.Fatal(err)
	}
	if got := recvData(t, s); string(got) != sdu {
		t.Fatalf("echoed %q, want %q", got, sdu)
	}
}

// TestSessionOverCapNeverReads: a client that sends bad frames and never
// reads the error frames they draw takes its session over its cap. The
// node's queue for it never holds more than the cap, the session ends
// (its call closed and its VC deleted, or its SAP deregistered), the node
// logs why, and lastFrameGrace after the writes to it stalled (virtual
// time) the connection is closed. Other sessions carry on throughout.
func TestSessionOverCapNeverReads(t *testing.T) {
	for _, kind := range []sessionKind{sessionCall, sessionListen} {
		t.Run(kind.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var log syncBuffer
				n := startNodeWith(t, memdrv.Immediate, nodeOptions{noSocket: true,
					logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
				echo, _, err := n.pipe(Request{Op: OpListen, Service: "echo", Echo: true})
				if err != nil {
					t.Fatal(err)
				}
				go func() { // read its events, as condis listen does
					for {
						if _, err := echo.Recv(); err != nil {
							return
						}
					}
				}()
				good, _, err := n.pipe(Request{Op: OpCall, Dest: "any/echo"})
				if err != nil {
					t.Fatal(err)
				}
				echoes(t, good, "before")

				req := Request{Op: OpCall, Dest: "any/echo"}
				if kind == sessionListen {
					req = Request{Op: OpListen, Service: "sink"}
				}
				bad, srv, err := n.pipe(req)
				if err != nil {
					t.Fatal(err)
				}
				q := n.queueOf(srv)
				start := time.Now()
				flooded := make(chan error, 1)
				go func() { flooded <- flood(bad.conn) }()
				synctest.Wait() // the node stopped reading the flood, or the flood is over

				if !q.overCap() {
					t.Fatalf("the flood did not take the session over its cap (peak %d octets)", q.peak)
				}
				echoes(t, good, "during") // the other call goes on

				err = <-flooded // the node disconnects the client ...
				if !errors.Is(err, io.ErrClosedPipe) {
					t.Errorf("the flood ended with %v, want the connection closed", err)
				}
				if waited := time.Since(start); waited != lastFrameGrace { // ... once its last write stalled that long
					t.Errorf("disconnected after %v, want %v", waited, lastFrameGrace)
				}
				q.mu.Lock()
				peak, peakFrames := q.peak, q.peakFrames
				q.mu.Unlock()
				if peak > maxQueued || peakFrames > maxQueued/frameOverhead {
					t.Errorf("the session's queue held up to %d octets in %d frames; the cap is %d octets", peak, peakFrames, maxQueued)
				}
				synctest.Wait()
				n.ctl.mu.Lock()
				sessions, conns := len(n.ctl.sessions), len(n.ctl.conns)
				n.ctl.mu.Unlock()
				if sessions != 2 || conns != 2 { // the echo listener and the good call
					t.Errorf("%d sessions on %d connections left, want 2 and 2", sessions, conns)
				}
				if v := n.outgoingVcs(); v != 1 {
					t.Errorf("%d outgoing VCs, want the good call's alone", v)
				}
				if !strings.Contains(log.String(), "ending a session whose client does not read what the node sends it") ||
					!strings.Contains(log.String(), "session="+kind.String()) {
					t.Errorf("log:\n%s", log.String())
				}
				echoes(t, good, "after")
				again, _, err := n.pipe(Request{Op: OpCall, Dest: "any/echo"})
				if err != nil {
					t.Fatal(err)
				}
				echoes(t, again, "a new call")
			})
		})
	}
}

// TestSessionOverCapLastFrame: a flooding client that reads once the
// node has stopped taking its frames finds the close frame, saying why,
// after what was already being written (what was queued is dropped).
func TestSessionOverCapLastFrame(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := startNodeWith(t, memdrv.Immediate, nodeOptions{noSocket: true})
		ls, _, err := n.pipe(Request{Op: OpListen, Service: "echo", Echo: true})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				if _, err := ls.Recv(); err != nil {
					return
				}
			}
		}()
		bad, srv, err := n.pipe(Request{Op: OpCall, Dest: "any/echo"})
		if err != nil {
			t.Fatal(err)
		}
		q := n.queueOf(srv)
		flooded := make(chan error, 1)
		go func() { flooded <- flood(bad.conn) }()
		synctest.Wait()
		q.mu.Lock()
		over, writing := q.over, q.batchFrames // the client has read nothing: the writer is in its first batch
		q.mu.Unlock()
		if !over {
			t.Fatal("the flood did not take the session over its cap")
		}
		start := time.Now()
		tr := readAll(t, bad)
		if len(tr.errors) != writing {
			t.Errorf("%d error frames before the close frame, want the %d being written (the queued ones dropped)", len(tr.errors), writing)
		}
		want := CloseInfo{By: ByNode, Text: "call closed: " + overflowText}
		if tr.close != want {
			t.Errorf("close frame %+v, want %+v", tr.close, want)
		}
		if time.Since(start) != 0 {
			t.Errorf("the close frame came after %v", time.Since(start))
		}
		if err := <-flooded; !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("the flood ended with %v, want the connection closed", err)
		}
		if v := n.outgoingVcs(); v != 0 {
			t.Errorf("%d outgoing VCs left", v)
		}
	})
}

// TestStatus: the status request names the node, says how long it has
// been up and how many VCs it holds, and counts the contract violations
// its mediator reported, by rule: here one provoked by a client that asks
// to close a call on a VC that has none.
func TestStatus(t *testing.T) {
	var mu sync.Mutex
	var seen []ndis.Violation
	n := startNodeWith(t, memdrv.Immediate, nodeOptions{onViolation: func(v ndis.Violation) {
		mu.Lock()
		seen = append(seen, v)
		mu.Unlock()
	}})
	before, err := QueryStatus(context.Background(), n.sock)
	if err != nil {
		t.Fatal(err)
	}
	if before.Node != t.Name() || before.Vcs != 0 || len(before.Violations) != 0 || before.ViolationTotal() != 0 ||
		before.Uptime < 0 || before.Started.IsZero() || before.Started.After(time.Now()) {
		t.Errorf("status of a new node: %+v", before)
	}

	n.listen("echo", true)
	n.call(Request{Dest: "any/echo"})
	rogue, vcs := n.otherClient("rogue", 1)
	if st := rogue.Binding().ClCloseCall(vcs[0].H, nil, nil); st == ndis.StatusSuccess || st == ndis.StatusPending {
		t.Fatalf("NdisClCloseCall on a VC with no call: %v", st)
	}
	mu.Lock()
	if len(seen) != 1 {
		t.Fatalf("the mediator reported %v, want one violation", seen)
	}
	rule := seen[0].Rule
	mu.Unlock()

	after, err := QueryStatus(context.Background(), n.sock)
	if err != nil {
		t.Fatal(err)
	}
	if after.Node != t.Name() || after.Vcs != 3 || after.Uptime < before.Uptime || !after.Started.Equal(before.Started) {
		t.Errorf("status: %+v, want 3 VCs (the call's two and the rogue's)", after)
	}
	if len(after.Violations) != 1 || after.Violations[rule] != 1 || after.ViolationTotal() != 1 {
		t.Errorf("violations %v, want %s: 1", after.Violations, rule)
	}
}
