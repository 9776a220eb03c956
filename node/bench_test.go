package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/condis-project/condis/clientcore"
)

// listenRead is listen with the session's frames read (and dropped), as
// `condis listen` reads them: a listen session whose client does not read
// holds up the node's shutdown once its socket is full (Shutdown waits for
// the close frame to be written).
func (n *testNode) listenRead(service string) {
	s := n.listen(service, true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := s.Recv(); err != nil {
				return
			}
		}
	}()
	n.t.Cleanup(func() {
		s.Close()
		<-done
	})
}

// TestBench: the bench's calls are real CoNDIS calls, each connected,
// closed and deleted, with the mediator checking every request (strict
// mode), whether the call manager answers at once or pends.
func TestBench(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			n.listenRead("echo")
			res, err := n.ctl.Bench(context.Background(), Request{Dest: "local/echo", Calls: 100, Concurrency: 7})
			if err != nil {
				t.Fatal(err)
			}
			if res.Calls != 100 || res.Connected != 100 || res.Failed != 0 || res.Stopped != "" || res.FirstError != "" {
				t.Fatalf("result %+v, want 100 calls connected and closed", res)
			}
			if res.Concurrency != 7 || res.Dest != "local/echo" {
				t.Errorf("result says concurrency %d to %q", res.Concurrency, res.Dest)
			}
			for _, l := range []Latency{res.Setup, res.Cycle} {
				if !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
					t.Errorf("percentiles out of order: %+v", l)
				}
			}
			if v := n.outgoingVcs(); v != 0 {
				t.Errorf("%d outgoing VCs left", v)
			}
		})
	}
}

// TestBenchFailedCalls: calls to a service nobody listens on fail; each is
// counted, the first failure is reported as a call session would, and the
// VCs are deleted.
func TestBenchFailedCalls(t *testing.T) {
	n := startNode(t, modes[1])
	res, err := n.ctl.Bench(context.Background(), Request{Dest: "local/nobody", Calls: 10, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls != 10 || res.Failed != 10 || res.Connected != 0 {
		t.Fatalf("result %+v, want 10 failed calls", res)
	}
	if !strings.HasPrefix(res.FirstError, "call local/nobody failed: NDIS_STATUS_") {
		t.Errorf("first error %q", res.FirstError)
	}
	if v := n.outgoingVcs(); v != 0 {
		t.Errorf("%d outgoing VCs left", v)
	}
}

func TestBenchBadRequests(t *testing.T) {
	n := startNode(t, modes[0])
	for _, c := range []struct {
		req  Request
		want string
	}{
		{Request{Calls: 1}, "no destination"},
		{Request{Dest: "local/echo"}, "calls must be 1 to"},
		{Request{Dest: "local/echo", Calls: MaxBenchCalls + 1}, "calls must be 1 to"},
		{Request{Dest: "local/echo", Calls: 1, Concurrency: -1}, "concurrency must be 1 to"},
		{Request{Dest: "local/echo", Calls: 1, Concurrency: MaxBenchConcurrency + 1}, "concurrency must be 1 to"},
		{Request{Dest: "local/echo", Calls: 1, Hold: -1}, "hold must be 0 to"},
		{Request{Dest: "local/echo", Calls: 1, Hold: MaxBenchHold + 1}, "hold must be 0 to"},
		{Request{Dest: "local/echo", Calls: 1, Warmup: -1}, "warmup must be 0 to"},
		{Request{Dest: "local/echo", Calls: 1, Warmup: MaxBenchCalls + 1}, "warmup must be 0 to"},
		{Request{Dest: "elsewhere/echo", Calls: 1}, "unknown node"},
		{Request{Dest: "local/echo", Calls: 1, Tx: &Flowspec{Service: "premium"}}, "unknown service type"},
	} {
		_, err := n.ctl.Bench(context.Background(), c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error saying %q", c.req, err, c.want)
		}
		// The same over the socket: the node's answer.
		_, err = Bench(context.Background(), n.sock, c.req)
		var re *RequestError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("socket, %+v: %v, want the node to refuse with %q", c.req, err, c.want)
		}
	}
}

// TestBenchHold: a bench with Hold sets up the calls to hold first and
// keeps them established while every measured call is made and closed
// (as the called side sees it: none of the held calls closes before the
// last measured one), then releases them all: no VC is left on either
// side, and the result says how many were held.
func TestBenchHold(t *testing.T) {
	const hold, calls = 400, 60 // enough held calls that their heap stands out of the noise of a GC
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			ls := n.listen("echo", false)
			events := make(chan Event, 2*(hold+calls))
			go func() {
				defer close(events)
				for {
					f, err := ls.Recv()
					if err != nil {
						return
					}
					if f.Type == FrameEvent {
						if ev, err := ParseEvent(f.Payload); err == nil {
							events <- ev
						}
					}
				}
			}()
			res, err := Bench(context.Background(), n.sock, Request{Dest: "local/echo", Calls: calls, Concurrency: 5, Hold: hold})
			if err != nil {
				t.Fatal(err)
			}
			if res.Calls != calls || res.Connected != calls || res.Failed != 0 || res.Stopped != "" {
				t.Fatalf("result %+v, want %d measured calls connected and closed", res, calls)
			}
			if res.Hold != hold || res.Held != hold || res.HeldLost != 0 || res.HoldSeconds <= 0 {
				t.Errorf("result says hold %d, held %d, lost %d in %v s; want %d held, none lost", res.Hold, res.Held, res.HeldLost, res.HoldSeconds, hold)
			}
			if res.HeapPerHeldVc <= 0 {
				t.Errorf("heap per held VC %v, want the held calls to take some", res.HeapPerHeldVc)
			}
			// The called side's view, in order: hold calls offered, then
			// the measured calls come and go, then the held ones go.
			offered := map[string]int{} // VC -> order offered
			var closedHeld, closedMeasured int
			deadline := time.After(20 * time.Second) // a failure deadline, not a measurement
			for closedHeld+closedMeasured < hold+calls {
				var ev Event
				select {
				case e, ok := <-events:
					if !ok {
						t.Fatalf("the listen session ended after %d held and %d measured calls closed", closedHeld, closedMeasured)
					}
					ev = e
				case <-deadline:
					t.Fatalf("only %d held and %d measured calls closed", closedHeld, closedMeasured)
				}
				switch ev.Event {
				case EventCall:
					offered[ev.Vc] = len(offered)
				case EventClosed:
					i, ok := offered[ev.Vc]
					switch {
					case !ok:
						t.Fatalf("%s closed, never offered", ev.Vc)
					case i < hold:
						if closedMeasured < calls {
							t.Fatalf("held call %s closed after only %d of the %d measured calls", ev.Vc, closedMeasured, calls)
						}
						closedHeld++
					default:
						closedMeasured++
					}
				}
			}
			if len(offered) != hold+calls {
				t.Errorf("%d calls offered, want %d", len(offered), hold+calls)
			}
			n.waitNoVcs(t)
		})
	}
}

// TestBenchHoldFails: when the calls to hold cannot all be set up, no
// measured call is made, the result says why, and those held are
// released.
func TestBenchHoldFails(t *testing.T) {
	n := startNode(t, modes[1])
	res, err := n.ctl.Bench(context.Background(), Request{Dest: "local/nobody", Calls: 10, Hold: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 0 || res.Held != 0 || res.Failed == 0 || !strings.HasPrefix(res.Stopped, "only 0 of the 5 calls to hold were held") {
		t.Fatalf("result %+v, want no call held or measured, and why", res)
	}
	if !strings.HasPrefix(res.FirstError, "call local/nobody failed: NDIS_STATUS_") {
		t.Errorf("first error %q", res.FirstError)
	}
	n.waitNoVcs(t)
}

// TestBenchWarmup: a bench with Warmup makes its unmeasured calls first
// (with Hold, once the held calls are up), at BenchWarmupConcurrency in
// flight or as many as the measured calls if more, and reports them apart from the measured
// ones; every call is closed and deleted after.
func TestBenchWarmup(t *testing.T) {
	n := startNode(t, modes[1])
	n.listen("echo", false)
	for _, c := range []struct {
		req      Request
		warmConc int
	}{
		{Request{Dest: "local/echo", Calls: 20, Concurrency: 2, Warmup: 100}, BenchWarmupConcurrency},
		{Request{Dest: "local/echo", Calls: 20, Concurrency: 2, Warmup: 100, Hold: 30}, BenchWarmupConcurrency},
		{Request{Dest: "local/echo", Calls: 100, Concurrency: 80, Warmup: 100, Hold: 30}, 80},
		{Request{Dest: "local/echo", Calls: 20, Concurrency: 2, Warmup: 10, Hold: 30}, 10},
	} {
		res, err := Bench(context.Background(), n.sock, c.req)
		if err != nil {
			t.Fatalf("%+v: %v", c.req, err)
		}
		w := res.Warmup
		if w == nil || w.Calls != c.req.Warmup || w.Connected != c.req.Warmup || w.Concurrency != c.warmConc {
			t.Errorf("%+v: warm-up %+v, want %d calls connected, %d in flight", c.req, w, c.req.Warmup, c.warmConc)
		}
		if res.Calls != c.req.Calls || res.Connected != c.req.Calls || res.Stopped != "" || res.Held != c.req.Hold {
			t.Errorf("%+v: result %+v, want every measured call connected and %d held", c.req, res, c.req.Hold)
		}
		if res.Setup.P50 <= 0 {
			t.Errorf("%+v: no setup latency measured", c.req)
		}
	}
	n.waitNoVcs(t)
	res, err := Bench(context.Background(), n.sock, Request{Dest: "local/echo", Calls: 20, Warmup: 0})
	if err != nil || res.Warmup != nil {
		t.Errorf("without Warmup: %v, warm-up %+v, want none", err, res.Warmup)
	}
}

// TestBenchWarmupFails: when a warm-up call fails, or the warm-up is
// stopped, no measured call is made, the result says why, and held calls
// are released; a warm-up makes no more calls after one failed.
func TestBenchWarmupFails(t *testing.T) {
	n := startNode(t, modes[1])
	res, err := n.ctl.Bench(context.Background(), Request{Dest: "local/nobody", Calls: 10, Warmup: 4})
	if err != nil {
		t.Fatal(err)
	}
	if w := res.Warmup; w == nil || w.Failed != 4 || res.Calls != 0 || res.Stopped != "4 of the 4 warm-up calls failed (the first: "+w.FirstError+"); nothing measured" {
		t.Fatalf("result %+v, warm-up %+v: want the warm-up calls failed, nothing measured, and why", res, w)
	}
	// A warm-up ends at its first failed call: the calls then in flight
	// end, no more are made.
	res, err = n.ctl.Bench(context.Background(), Request{Dest: "local/nobody", Calls: 10, Warmup: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	if w := res.Warmup; w == nil || w.Calls > 2*BenchWarmupConcurrency || w.Failed != w.Calls || !strings.HasPrefix(w.Stopped, "a warm-up call failed") || res.Calls != 0 {
		t.Fatalf("result %+v, warm-up %+v: want the warm-up stopped at its first failed call", res, w)
	}

	// With calls held: stopped while it warms up (its context ends once
	// the called side has seen the held calls and ten more).
	const hold = 5
	ls := n.listen("echo", false)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		offered := 0
		for {
			f, err := ls.Recv()
			if err != nil {
				return
			}
			if ev, err := ParseEvent(f.Payload); f.Type == FrameEvent && err == nil && ev.Event == EventCall {
				if offered++; offered == hold+10 {
					cancel()
				}
			}
		}
	}()
	res, err = n.ctl.Bench(ctx, Request{Dest: "local/echo", Calls: 10, Warmup: MaxBenchCalls, Hold: hold})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if w := res.Warmup; w == nil || w.Connected < 10 || res.Calls != 0 || res.Held != hold ||
		!strings.HasPrefix(res.Stopped, "the warm-up was stopped: ") || !strings.HasSuffix(res.Stopped, "; nothing measured") {
		t.Fatalf("result %+v, warm-up %+v: want the warm-up stopped after the held calls, nothing measured, and why", res, w)
	}
	n.waitNoVcs(t)
}

// waitNoVcs waits until the mediator holds no VC at all, on either side.
func (n *testNode) waitNoVcs(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // a failure deadline, not a measurement
	for {
		vcs := n.m.Snapshot().Vcs
		if len(vcs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d VCs left: %+v", len(vcs), vcs)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBenchStops: a bench ends early, with the reason in Stopped, when its
// context ends, its client goes away or the node shuts down; the calls in
// flight are closed and deleted all the same.
func TestBenchStops(t *testing.T) {
	t.Run("cancelled", func(t *testing.T) {
		n := startNode(t, modes[1])
		n.listenRead("echo")
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errors.New("enough"))
		res, err := n.ctl.Bench(ctx, Request{Dest: "local/echo", Calls: MaxBenchCalls, Concurrency: 4})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stopped != "enough" || res.Calls >= MaxBenchCalls || res.Connected+res.Failed != res.Calls {
			t.Fatalf("result %+v, want stopped early for %q", res, "enough")
		}
		if v := n.outgoingVcs(); v != 0 {
			t.Errorf("%d outgoing VCs left", v)
		}
	})
	t.Run("client gone", func(t *testing.T) {
		n := startNode(t, modes[1])
		n.listenRead("echo")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := Bench(ctx, n.sock, Request{Dest: "local/echo", Calls: MaxBenchCalls, Concurrency: 4})
			done <- err
		}()
		n.waitBenches(t, 1)
		cancel() // closes the connection
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Bench after cancel: %v", err)
		}
		n.waitBenches(t, 0) // the node stopped it
	})
	t.Run("shutdown", func(t *testing.T) {
		n := startNode(t, modes[1])
		n.listenRead("echo")
		type outcome struct {
			res BenchResult
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			res, err := Bench(context.Background(), n.sock, Request{Dest: "local/echo", Calls: MaxBenchCalls, Concurrency: 4})
			done <- outcome{res, err}
		}()
		n.waitBenches(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.ctl.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v\n%v\n%v", err, n.ctl, n.m.Snapshot())
		}
		o := <-done
		if o.err != nil {
			t.Fatal(o.err)
		}
		if o.res.Stopped != "the node is shutting down" || o.res.Connected+o.res.Failed != o.res.Calls {
			t.Fatalf("result %+v, want stopped by the shutdown", o.res)
		}
	})
}

// waitBenches waits until the Control runs n benches.
func (n *testNode) waitBenches(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // a failure deadline, not a measurement
	for {
		n.ctl.mu.Lock()
		got := len(n.ctl.benches)
		n.ctl.mu.Unlock()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d benches running, want %d", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBenchOverSocket: the socket's bench answers with the same result as
// the Control's.
func TestBenchOverSocket(t *testing.T) {
	n := startNode(t, modes[2])
	n.listenRead("echo")
	res, err := Bench(context.Background(), n.sock, Request{Dest: "any/echo", Calls: 50, Concurrency: 50})
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls != 50 || res.Connected != 50 || res.Concurrency != 50 || res.Rate <= 0 {
		t.Fatalf("result %+v", res)
	}
}

// TestEventJSON: the hand-written JSON of events is what encoding/json
// makes of them, byte for byte, whatever the strings hold.
func TestEventJSON(t *testing.T) {
	strs := []string{"", "vc#12", "alpha", `quote " and \ backslash`, "line\nbreak\ttab\rcr", "<html>&amp;</html>",
		"\x00\x01\x1f\x7f", "é ü 日本", "\u2028\u2029", "bad \xff utf-8 \xc3", "call closed: NDIS_STATUS_DEST_OUT_OF_ORDER (cause 27, destination out of order)"}
	for _, s := range strs {
		for _, ev := range []Event{
			{Event: EventCall, Vc: s, Peer: s},
			{Event: s, Vc: "vc#1"},
			{Event: EventClosed, Vc: "vc#2", Peer: "beta", CloseInfo: &CloseInfo{Normal: true, By: ByRemote, Status: s, Cause: 16, CauseText: s, Text: s}},
			{Event: EventClosed, Vc: "vc#3", CloseInfo: &CloseInfo{By: s, Cause: -1, Text: s}},
			{Event: EventClosed, Vc: "vc#4", CloseInfo: &CloseInfo{}},
			{Event: EventQoS, Vc: s, Peer: "beta", Tx: &Flowspec{Service: s, Rate: 1, Bucket: 2, Peak: 3, MaxSDU: 4, Latency: 5, Jitter: 6, MinSize: 7}, Rx: &Flowspec{}},
			{Event: EventQoS, Vc: "vc#5", Rx: &Flowspec{Peak: 1 << 31, MinSize: 9}},
			{Event: EventPartyDropped, Vc: "vc#6", Peer: s, Party: s, Dest: s, MaxSDU: 9180, Reliable: true, CloseInfo: &CloseInfo{By: ByRemote, Text: s, Sent: 3, Policed: 1}},
		} {
			want, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := ev.appendJSON(nil); string(got) != string(want) {
				t.Errorf("event %+v:\n got %s\nwant %s", ev, got, want)
			}
		}
	}
}

// FuzzJSONString holds appendJSONString to encoding/json for any string.
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "<>&", "\u2028", "\xff", "日本", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
		if !utf8.Valid(appendJSONString(nil, s)) {
			t.Errorf("%q: not valid UTF-8", s)
		}
	})
}

// TestEventsBounded: a session whose client does not read keeps at most
// maxQueuedData octets of events (each counted with its place in the
// queue); the rest are dropped and the client is told how many. The
// session is not ended for it.
func TestEventsBounded(t *testing.T) {
	var q outQueue
	q.init()
	q.overflow = func(int) { t.Error("a session ended for unread events") }
	ev := Event{Event: EventCall, Vc: "vc#1", Peer: "alpha"}
	size := len(ev.appendJSON(nil)) + frameOverhead
	fit := maxQueuedData / size
	for range fit + 10 {
		q.pushEvent(ev)
	}
	frames, ok := q.next()
	if !ok {
		t.Fatal("queue dead")
	}
	if len(frames) != fit+1 {
		t.Fatalf("%d frames, want %d events and one error", len(frames), fit)
	}
	last := frames[len(frames)-1]
	if want := fmt.Sprintf("%d event(s) dropped", 10); last.Type != FrameError || !strings.HasPrefix(string(last.Payload), want) {
		t.Errorf("last frame: %v %q, want an error saying %q", last.Type, last.Payload, want)
	}
}

// TestFramesNoGarbage: the control plane's per-frame work allocates only
// the payload a frame must own: writing a frame none, reading one from a
// buffered reader one, queuing an event none (its JSON goes into the
// queue's reused buffer), encoding one (into a buffer big enough) none
// (issue 12 item 3).
func TestFramesNoGarbage(t *testing.T) {
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 64<<10)
	payload := []byte(`{"event":"call","vc":"vc#1"}`)
	if n := testing.AllocsPerRun(100, func() {
		if err := writeFrameTo(bw, FrameEvent, payload); err != nil {
			t.Fatal(err)
		}
		bw.Reset(&out)
		out.Reset()
	}); n != 0 {
		t.Errorf("writeFrameTo: %v allocations per frame, want 0", n)
	}
	var stream bytes.Buffer
	for range 200 {
		WriteFrame(&stream, FrameEvent, payload)
	}
	br := bufio.NewReader(&stream)
	if n := testing.AllocsPerRun(100, func() {
		f, err := ReadFrame(br)
		if err != nil || f.Type != FrameEvent || string(f.Payload) != string(payload) {
			t.Fatalf("ReadFrame: %v %q, %v", f.Type, f.Payload, err)
		}
	}); n != 1 {
		t.Errorf("ReadFrame: %v allocations per frame, want 1 (the payload)", n)
	}
	var q outQueue
	q.init()
	info := CloseInfo{Normal: true, By: ByRemote, Text: "call closed by the far end"}
	if n := testing.AllocsPerRun(100, func() {
		q.pushEvent(Event{Event: EventClosed, Vc: "vc#12", Peer: "alpha", CloseInfo: &info})
		fs, _ := q.next()
		q.written(fs)
	}); n != 0 {
		t.Errorf("pushEvent: %v allocations per event, want 0", n)
	}
	buf := make([]byte, 0, 512)
	ev := Event{Event: EventQoS, Vc: "vc#12", Tx: &Flowspec{Service: "guaranteed", Rate: 1}, Rx: &Flowspec{Peak: 2}}
	if n := testing.AllocsPerRun(100, func() { buf = ev.appendJSON(buf[:0]) }); n != 0 {
		t.Errorf("Event.appendJSON: %v allocations per event, want 0", n)
	}
}

// TestReadFrameEnds: ReadFrame says how a stream ended the same from a
// buffered reader as from any other: io.EOF between frames,
// io.ErrUnexpectedEOF within one, and refuses a frame longer than
// MaxFrame.
func TestReadFrameEnds(t *testing.T) {
	var whole bytes.Buffer
	WriteFrame(&whole, FrameData, []byte("sdu"))
	long := []byte{byte(FrameData), 0xff, 0xff, 0xff, 0xff}
	for _, tc := range []struct {
		name   string
		stream []byte
		want   error
	}{
		{"empty", nil, io.EOF},
		{"half a header", whole.Bytes()[:3], io.ErrUnexpectedEOF},
		{"half a payload", whole.Bytes()[:frameHeader+1], io.ErrUnexpectedEOF},
		{"too long", long, errFrameTooLong},
	} {
		for _, buffered := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(tc.stream)
			if buffered {
				r = bufio.NewReader(r)
			}
			if _, err := ReadFrame(r); !errors.Is(err, tc.want) {
				t.Errorf("%s (buffered %v): %v, want %v", tc.name, buffered, err, tc.want)
			}
		}
	}
	f, err := ReadFrame(bufio.NewReader(bytes.NewReader(whole.Bytes())))
	if err != nil || f.Type != FrameData || string(f.Payload) != "sdu" {
		t.Errorf("a whole frame: %v %q, %v", f.Type, f.Payload, err)
	}
}

// TestBenchCallSmall: what the control plane keeps per call is small: a
// measured bench call's handler, and a listen session's ctlVc (issue 12
// item 3: they were a 176-octet ctlVc each, and a map entry per held call;
// held calls now share one handler).
func TestBenchCallSmall(t *testing.T) {
	if s := unsafe.Sizeof(benchCall{}); s > 16 {
		t.Errorf("benchCall takes %d octets, more than 16", s)
	}
	if s := unsafe.Sizeof(ctlVc{}); s > 48 {
		t.Errorf("ctlVc takes %d octets, more than 48", s)
	}
}

// TestSessionCalls: a listen session's calls are a slice with each call's
// index in it: removing one (any one, twice, or one never added) says
// whether it was there and leaves exactly the others, each at its index.
func TestSessionCalls(t *testing.T) {
	s := &session{}
	var all []*ctlVc
	for range 500 {
		cv := &ctlVc{}
		all = append(all, cv)
		s.addCallLocked(cv)
	}
	if s.removeCallLocked(&ctlVc{}) {
		t.Error("a call never added was removed")
	}
	want := map[*ctlVc]bool{}
	for i, cv := range all {
		if i%7 == 2 {
			want[cv] = true
			continue
		}
		if !s.removeCallLocked(cv) || s.removeCallLocked(cv) {
			t.Fatalf("call %d: removed not once", i)
		}
	}
	if len(s.calls) != len(want) || cap(s.calls) > 4*len(want) {
		t.Fatalf("%d calls (capacity %d) left, want %d", len(s.calls), cap(s.calls), len(want))
	}
	for i, cv := range s.calls {
		if !want[cv] || int(cv.at) != i {
			t.Errorf("call at %d says %d; kept %v", i, cv.at, want[cv])
		}
	}
}

// TestEventBufferReuse: events share a buffer the queue reuses once the
// writer has written them; events queued while a batch is being written
// never touch the batch's payloads, and each frame is its own event.
func TestEventBufferReuse(t *testing.T) {
	var q outQueue
	q.init()
	n := 0
	push := func(k int) (want []string) {
		for range k {
			n++
			ev := Event{Event: EventCall, Vc: fmt.Sprintf("vc#%d", n), Peer: strings.Repeat("p", n%7)}
			want = append(want, string(ev.appendJSON(nil)))
			q.pushEvent(ev)
		}
		return want
	}
	check := func(what string, batch []Frame, want []string) {
		t.Helper()
		if len(batch) != len(want) {
			t.Fatalf("%s: %d frames, want %d", what, len(batch), len(want))
		}
		for i, f := range batch {
			if f.Type != FrameEvent || string(f.Payload) != want[i] {
				t.Errorf("%s: frame %d is %v %s, want %s", what, i, f.Type, f.Payload, want[i])
			}
		}
	}
	want := push(3)
	for round := range 5 {
		batch, ok := q.next()
		if !ok {
			t.Fatal("the queue is dead")
		}
		next := push(3 + round*40) // while the batch is being written; enough to grow the buffer
		check(fmt.Sprintf("round %d, being written", round), batch, want)
		q.written(batch)
		want = next
	}
}

// TestBenchHeldGone: a held call whose VC goes before the release counts
// as lost; once the release began, the last held call gone closes
// released, exactly once.
func TestBenchHeldGone(t *testing.T) {
	c := &Control{}
	r := &benchRun{c: c, hold: true, held: 3, released: make(chan struct{})}
	r.holder = &benchCall{r: r}
	c.benchGoneLocked(r.holder, clientcore.End{WasUp: true, Reason: clientcore.ReasonRemote})
	if r.held != 2 || r.lost != 1 {
		t.Fatalf("after one held call went: held %d, lost %d; want 2 and 1", r.held, r.lost)
	}
	r.releasing = true
	for i := range 2 {
		select {
		case <-r.released:
			t.Fatalf("released with %d held calls left", 2-i)
		default:
		}
		c.benchGoneLocked(r.holder, clientcore.End{WasUp: true, Reason: clientcore.ReasonLocal})
	}
	select {
	case <-r.released:
	default:
		t.Fatal("the last held call went and released is not closed")
	}
	if r.held != 0 || r.lost != 1 {
		t.Errorf("held %d, lost %d; want 0 and 1", r.held, r.lost)
	}
}
