package node

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// signalKey identifies a traced message: when, which way, to whom, and
// its octets.
func signalKey(at time.Time, dir, peer string, msg []byte) string {
	return fmt.Sprintf("%d %s %s %s", at.UnixNano(), dir, peer, base64.StdEncoding.EncodeToString(msg))
}

// callKey identifies a call event as the stream carries it.
func callKey(c trace.Call) string {
	cause := 0
	if c.Cause != 0 {
		cause = int(c.Cause)
	}
	return fmt.Sprintf("%d %s %s %s %s %v %d", c.Time.UnixNano(), c.Event, c.Peer, c.Service, c.VC, c.Incoming, cause)
}

// TestTraceSession: a trace session gets every message the node traces,
// raw, with its header read out and the link's addresses, and every call
// event, in JSON frames; after an end frame, what was queued and then a
// close frame.
func TestTraceSession(t *testing.T) {
	alpha, beta := startTracedPair(t, pairOptions{})
	callScenario(t, alpha) // the link is up and quiet after it
	sigMark, callMark, _ := alpha.rec.mark()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts, err := DialTrace(ctx, alpha.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	if ts.Node.Node != "alpha" {
		t.Errorf("trace answer names node %q", ts.Node.Node)
	}
	callScenario(t, alpha)
	if err := ts.End(); err != nil {
		t.Fatal(err)
	}
	var events []TraceEvent
	var notices []string
	for {
		ev, err := ts.Next(func(n string) { notices = append(notices, n) })
		var ended *TraceEndedError
		if errors.As(err, &ended) {
			if !ended.Close.Normal || ended.Close.By != ByLocal || ended.Close.Text != "trace ended" {
				t.Errorf("close frame %+v", ended.Close)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if len(notices) > 0 {
		t.Errorf("notices from the node: %q", notices)
	}

	sigs, calls := alpha.rec.since(sigMark, callMark)
	var wantSigs, gotSigs, wantCalls, gotCalls []string
	for _, s := range sigs {
		wantSigs = append(wantSigs, signalKey(s.Time, s.Dir.String(), s.Peer, s.Msg))
	}
	for _, c := range calls {
		wantCalls = append(wantCalls, callKey(c))
	}
	local, remote := "127.0.0.1:"+strconv.Itoa(alpha.port), "127.0.0.1:"+strconv.Itoa(beta.port)
	for _, ev := range events {
		switch ev.Kind {
		case TraceSignal:
			gotSigs = append(gotSigs, signalKey(ev.Time, ev.Dir, ev.Peer, ev.Msg))
			typ, ref, ok := trace.Signal{Msg: ev.Msg}.Header()
			if !ok || ev.Type != typ.String() || ev.CallRef == nil || *ev.CallRef != ref.Value || ev.Flag == nil || *ev.Flag != ref.Flag {
				t.Errorf("signal event %+v: header read as type %q ref %v flag %v; the message says %v %v", ev, ev.Type, ev.CallRef, ev.Flag, typ, ref)
			}
			if ev.Node != "alpha" || ev.Local != local || ev.Remote != remote {
				t.Errorf("signal event: node %q, link %s -> %s; want alpha, %s -> %s", ev.Node, ev.Local, ev.Remote, local, remote)
			}
		case TraceCall:
			c := trace.Call{Time: ev.Time, Peer: ev.Peer, Service: ev.Service, VC: ev.Vc, Incoming: ev.Incoming, Cause: uni.Cause(ev.Cause)}
			for e := trace.CallOffered; e <= trace.CallReleased; e++ {
				if e.String() == ev.Event {
					c.Event = e
				}
			}
			gotCalls = append(gotCalls, callKey(c))
			if ev.Cause != 0 && ev.CauseText != causeText(uni.Cause(ev.Cause)) {
				t.Errorf("call event: cause %d named %q", ev.Cause, ev.CauseText)
			}
		default:
			t.Errorf("unexpected %s event on a quiet link: %+v", ev.Kind, ev)
		}
	}
	// The recorder and the feed see concurrent events in either order.
	for _, l := range [][]string{wantSigs, gotSigs, wantCalls, gotCalls} {
		slices.Sort(l)
	}
	if len(wantSigs) == 0 || !slices.Equal(gotSigs, wantSigs) {
		t.Errorf("signal events:\n%s\nthe node traced:\n%s", strings.Join(gotSigs, "\n"), strings.Join(wantSigs, "\n"))
	}
	if len(wantCalls) == 0 || !slices.Equal(gotCalls, wantCalls) {
		t.Errorf("call events:\n%s\nthe node traced:\n%s", strings.Join(gotCalls, "\n"), strings.Join(wantCalls, "\n"))
	}
	var refused bool
	for _, ev := range events {
		if ev.Kind == TraceCall && ev.Event == "failed" && ev.Service == "nosuch" && ev.Cause == 88 &&
			ev.CauseText == "incompatible destination" && ev.Status != "" {
			refused = true
		}
	}
	if !refused {
		t.Error("no call event for the refused call (failed, cause 88, with its status)")
	}
}

// TestTraceSessionNotReading: a trace client that does not read does not
// slow the node: its calls go on at full pace while the session's queue
// overflows, and when the client reads again it learns how many events
// were dropped: the events it got and the drops it was told of add up to
// every event the node traced.
func TestTraceSessionNotReading(t *testing.T) {
	defer func(n int) { traceQueue = n }(traceQueue)
	traceQueue = 16
	alpha, _ := startTracedPair(t, pairOptions{})
	callScenario(t, alpha) // the link is up and quiet after it
	_, _, mark := alpha.rec.mark()

	conn, err := net.Dial("unix", alpha.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.UnixConn).SetReadBuffer(4096)
	if _, err := conn.Write([]byte(`{"op":"trace"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	line, err := readRequestLine(br) // the answer: the subscription is made
	if err != nil || !strings.Contains(string(line), `"ok":true`) {
		t.Fatalf("trace answer %q, %v", line, err)
	}

	// Hundreds of calls' worth of events, none of them read.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := alpha.ctl.Bench(ctx, Request{Dest: "beta/echo", Calls: 300, Concurrency: 8})
	if err != nil || res.Connected != 300 {
		t.Fatalf("bench with a trace client that does not read: %+v, %v", res, err)
	}
	if _, err := QueryStatus(ctx, alpha.sock); err != nil {
		t.Fatalf("status with a trace client that does not read: %v", err)
	}
	_, _, end := alpha.rec.mark()
	traced := end - mark

	if err := WriteFrame(conn, FrameEnd, nil); err != nil {
		t.Fatal(err)
	}
	var got, dropped int
	for {
		f, err := ReadFrame(br)
		if err != nil {
			t.Fatalf("after %d events and %d dropped: %v", got, dropped, err)
		}
		if f.Type == FrameClose {
			break
		}
		switch f.Type {
		case FrameTrace:
			var ev TraceEvent
			if err := json.Unmarshal(f.Payload, &ev); err != nil {
				t.Fatal(err)
			}
			got++
		case FrameError:
			var n int
			if _, err := fmt.Sscanf(string(f.Payload), "%d trace event(s) dropped: the client did not read fast enough", &n); err != nil {
				t.Fatalf("error frame %q", f.Payload)
			}
			dropped += n
		default:
			t.Fatalf("%v frame", f.Type)
		}
	}
	if dropped == 0 {
		t.Errorf("nothing was dropped (%d events read): the test did not fill the queue", got)
	}
	if got+dropped != traced {
		t.Errorf("%d events read and %d dropped, %d traced", got, dropped, traced)
	}
	t.Logf("%d events traced: %d read, %d dropped", traced, got, dropped)
}

// TestTraceSessionShutdown: a node that shuts down ends its trace
// sessions with a close frame saying so.
func TestTraceSessionShutdown(t *testing.T) {
	alpha, _ := startTracedPair(t, pairOptions{})
	ts, err := DialTrace(context.Background(), alpha.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		alpha.stop()
	}()
	for {
		_, err := ts.Next(nil)
		var ended *TraceEndedError
		if errors.As(err, &ended) {
			if ended.Close.By != ByNode || ended.Close.Text != "trace ended: the node is shutting down" {
				t.Errorf("close frame %+v", ended.Close)
			}
			break
		}
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the node did not shut down")
	}
}

// TestTraceRefusedWithoutFeed: a Control whose call manager has no trace
// feed refuses a trace request in one line.
func TestTraceRefusedWithoutFeed(t *testing.T) {
	n := startNode(t, memdrv.Immediate)
	_, err := DialTrace(context.Background(), n.sock)
	var re *RequestError
	if !errors.As(err, &re) || re.Response.Error != "trace: this node's call manager has no trace events (only a node running the Q.2931 call manager has)" {
		t.Errorf("trace on the in-memory call manager: %v", err)
	}
}

// TestTraceFeedIdle: with no trace session, the feed's hooks cost the
// call manager nothing but a load: no allocation, whatever the event.
func TestTraceFeedIdle(t *testing.T) {
	f := NewTraceFeed(nil)
	tr := f.Tracer()
	msg := []byte{0x09, 0x03, 0, 0, 1, 0x05, 0x80, 0, 0}
	now := time.Now()
	allocs := testing.AllocsPerRun(100, func() {
		tr.Signal(trace.Signal{Time: now, Node: "alpha", Peer: "beta", Dir: trace.Out, Msg: msg})
		tr.Call(trace.Call{Time: now, Node: "alpha", Peer: "beta", Service: "echo", VC: "vc#1", Event: trace.CallConnected})
		tr.Link(trace.Link{Time: now, Node: "alpha", Peer: "beta", Up: true})
		tr.Handshake(trace.Handshake{Time: now, Node: "alpha", Reason: "unknown authority"})
		f.Mediator(ndis.Event{Seq: 1, Kind: ndis.EventRequest, Driver: "control", Func: "NdisClMakeCall", Object: "vc#1"})
	})
	if allocs != 0 {
		t.Errorf("%v allocations per round of events with no subscriber", allocs)
	}
	// Nor a clock read: the emitter may leave a signal's Time zero.
	if !tr.SignalTime().IsZero() {
		t.Error("the idle feed asks for the signal events' time")
	}
	// With one, each event is queued once; the message is copied.
	s := f.subscribe(8)
	defer f.unsubscribe(s)
	if tr.SignalTime().IsZero() {
		t.Error("the subscribed feed goes without the signal events' time")
	}
	tr.Signal(trace.Signal{Time: now, Node: "alpha", Peer: "beta", Dir: trace.Out, Msg: msg})
	msg[4] = 0xff
	if got := (<-s.ch).(trace.Signal); got.Msg[4] != 1 || !got.Time.Equal(now) {
		t.Errorf("the queued message changed with the emitter's buffer: %x (or its time did: %v)", got.Msg, got.Time)
	}
	// An event emitted untimed just before the subscriber came is timed
	// by the feed.
	tr.Signal(trace.Signal{Node: "alpha", Peer: "beta", Dir: trace.Out, Msg: msg})
	if got := (<-s.ch).(trace.Signal); got.Time.Before(now) {
		t.Errorf("an untimed event reached the subscriber with time %v", got.Time)
	}
}

// TestTraceMediator: a node started with TraceMediator streams its
// mediator's events too: the Control's NdisClMakeCall for a call, its
// return, and the completion handler it led to, each with its sequence
// number.
func TestTraceMediator(t *testing.T) {
	alpha, _ := startTracedPair(t, pairOptions{mediator: true})
	callScenario(t, alpha)
	ts, err := DialTrace(context.Background(), alpha.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	callScenario(t, alpha)
	if err := ts.End(); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	var made, returned, completed bool
	for {
		ev, err := ts.Next(nil)
		var ended *TraceEndedError
		if errors.As(err, &ended) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind != TraceNdis {
			continue
		}
		seqs = append(seqs, ev.Seq)
		switch {
		case ev.Event == "request" && ev.Func == "NdisClMakeCall" && ev.Driver == "control" && strings.HasPrefix(ev.Object, "vc#"):
			made = true
		case ev.Event == "return" && ev.Func == "NdisClMakeCall" && ev.Status != "":
			returned = true
		case ev.Event == "upcall" && ev.Func == "ProtocolClMakeCallComplete":
			completed = true
		}
		if ev.Node != "alpha" {
			t.Errorf("ndis event of node %q", ev.Node)
		}
	}
	if !made || !returned || !completed {
		t.Errorf("ndis events: MakeCall request %v, its return %v, ProtocolClMakeCallComplete %v", made, returned, completed)
	}
	// Concurrent requests may reach the feed out of order; their
	// sequence numbers tell the mediator's order.
	slices.Sort(seqs)
	if len(seqs) == 0 || seqs[0] == 0 || len(slices.Compact(seqs)) != len(seqs) {
		t.Errorf("ndis events' sequence numbers: %v", seqs)
	}
}
