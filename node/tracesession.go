package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/condis-project/condis/capture"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
)

// TraceQueue is how many trace events the node holds for a trace
// session's client beyond what its connection buffers; more are dropped.
const TraceQueue = 4096

// traceQueue is TraceQueue; tests lower it.
var traceQueue = TraceQueue

// TraceFeed hands a node's trace events to the control sessions that
// subscribe to them (`condis trace`). [Start] makes one per node and joins
// its Tracer into the call manager's tracer. While nobody subscribes, each
// hook costs an atomic load; a subscriber's events are copied onto its own
// bounded queue, so a hook never waits for a session's client.
type TraceFeed struct {
	addrs capture.AddrFunc // the UDP addresses of a link; nil if unknown

	n    atomic.Int32 // len(subs), read by the hooks without the lock
	mu   sync.RWMutex
	subs map[*traceSub]struct{}
}

// NewTraceFeed returns a feed with no subscribers. addrs, if not nil,
// gives the UDP addresses of the link to a peer for signal events.
func NewTraceFeed(addrs capture.AddrFunc) *TraceFeed {
	return &TraceFeed{addrs: addrs, subs: map[*traceSub]struct{}{}}
}

// Tracer returns the hooks to join into the call manager's tracer.
func (f *TraceFeed) Tracer() trace.Tracer {
	return trace.Tracer{
		Signal: func(s trace.Signal) {
			if f.n.Load() == 0 {
				return
			}
			if s.Time.IsZero() { // the first subscriber came after SignalUntimed
				s.Time = time.Now()
			}
			s.Msg = bytes.Clone(s.Msg) // the emitter's
			f.publish(s)
		},
		SignalUntimed: func() bool { return f.n.Load() == 0 },
		// The check comes before the event is boxed: boxing allocates.
		Call: func(e trace.Call) {
			if f.n.Load() != 0 {
				f.publish(e)
			}
		},
		CallIgnored: func() bool { return f.n.Load() == 0 },
		Link: func(e trace.Link) {
			if f.n.Load() != 0 {
				f.publish(e)
			}
		},
		Handshake: func(e trace.Handshake) {
			if f.n.Load() != 0 {
				f.publish(e)
			}
		},
	}
}

// Mediator is the hook for the mediator's trace (ndis.Options.Trace).
func (f *TraceFeed) Mediator(e ndis.Event) {
	if f.n.Load() == 0 {
		return
	}
	f.publish(mediatorEvent{time.Now(), e})
}

// mediatorEvent is an ndis.Event and when the feed saw it.
type mediatorEvent struct {
	at time.Time
	e  ndis.Event
}

// publish offers e to every subscriber: queued, or dropped and counted.
func (f *TraceFeed) publish(e any) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for s := range f.subs {
		select {
		case s.ch <- e:
		default:
			s.lost.Add(1)
		}
	}
}

// traceSub is one subscriber's queue.
type traceSub struct {
	ch   chan any // trace.Signal, trace.Call, trace.Link, trace.Handshake, mediatorEvent
	lost atomic.Uint64
}

func (f *TraceFeed) subscribe(queue int) *traceSub {
	s := &traceSub{ch: make(chan any, queue)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.n.Store(int32(len(f.subs)))
	f.mu.Unlock()
	return s
}

func (f *TraceFeed) unsubscribe(s *traceSub) {
	f.mu.Lock()
	delete(f.subs, s)
	f.n.Store(int32(len(f.subs)))
	f.mu.Unlock()
}

// TraceSource is implemented by call managers whose node has a trace feed:
// the Control serves trace requests from it.
type TraceSource interface {
	TraceFeed() *TraceFeed
}

// TraceFeed is the node's trace feed ([Node.CallManager] sets it); nil if
// it has none.
func (a Q2931CallManager) TraceFeed() *TraceFeed { return a.Feed }

// traceFeedOf returns cm's feed, nil if it has none.
func traceFeedOf(cm CallManager) *TraceFeed {
	if s, ok := cm.(TraceSource); ok {
		return s.TraceFeed()
	}
	return nil
}

// --- the session ---

// serveTrace serves a trace request: the answer line, then trace frames
// until the client sends an end frame or goes away, or the node shuts down.
// The events come from the feed's bounded queue, so a client that does not
// read costs the node that queue and nothing else.
func (c *Control) serveTrace(conn net.Conn, br *bufio.Reader) {
	feed := traceFeedOf(c.cm)
	if feed == nil {
		writeJSONLine(conn, Response{Error: "trace: this node's call manager has no trace events (only a node running the Q.2931 call manager has)"})
		return
	}
	// A session marks the connection, so that Shutdown leaves it open for
	// the close frame.
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		writeJSONLine(conn, Response{Error: "the node is shutting down"})
		return
	}
	c.conns[conn] = c.newSession(sessionTrace, conn)
	c.mu.Unlock()

	sub := feed.subscribe(traceQueue)
	defer feed.unsubscribe(sub)
	st := c.Status()
	if err := writeJSONLine(conn, Response{OK: true, Node: &st}); err != nil {
		return
	}

	// Why the session ends: the client's end frame, its going away, or
	// the node shutting down. The first one counts.
	stop := make(chan closeWhy, 1)
	end := func(why closeWhy) {
		select {
		case stop <- why:
		default:
		}
	}
	notes := make(chan string, 1) // error frames for what the client sent
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			f, err := ReadFrame(br)
			if err != nil {
				end(whyGone)
				return
			}
			if f.Type == FrameEnd {
				end(whyLocal)
				return
			}
			select {
			case notes <- fmt.Sprintf("unexpected %v frame in a trace session (it takes only an end frame); ignored", f.Type):
			default:
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if c.await(ctx, func() bool { return c.down }) == nil {
			end(whyShutdown)
			// A client that does not read its close frame within the
			// grace is disconnected.
			conn.SetWriteDeadline(time.Now().Add(lastFrameGrace))
		}
	}()
	defer func() {
		cancel()
		<-watchDone
		conn.Close() // ends the reader
		<-readerDone
	}()

	w := traceWriter{bw: bufio.NewWriterSize(conn, 64<<10), node: st.Node, addrs: feed.addrs, links: map[string][2]string{}}
	for {
		var err error
		select {
		case e := <-sub.ch:
			if n := sub.lost.Swap(0); n > 0 {
				err = w.lost(n)
			}
			if err == nil {
				err = w.event(e)
			}
		case msg := <-notes:
			err = writeFrameTo(w.bw, FrameError, []byte(msg))
		case why := <-stop:
			if why == whyGone {
				return
			}
			// What is queued was traced before the end: it goes first.
			for n := len(sub.ch); n > 0 && err == nil; n-- {
				err = w.event(<-sub.ch)
			}
			if n := sub.lost.Swap(0); n > 0 && err == nil {
				err = w.lost(n)
			}
			if err != nil {
				return
			}
			info := CloseInfo{Normal: true, By: ByLocal, Text: "trace ended"}
			if why == whyShutdown {
				info = CloseInfo{Normal: true, By: ByNode, Text: "trace ended: the node is shutting down"}
			}
			b, _ := json.Marshal(info)
			if writeFrameTo(w.bw, FrameClose, b) == nil {
				w.bw.Flush()
			}
			return
		}
		if err == nil && len(sub.ch) == 0 {
			err = w.bw.Flush() // the queue is empty: the client sees what there is
		}
		if err != nil {
			return // the client is gone, or did not read within the grace
		}
	}
}

// traceWriter turns a session's events into trace frames.
type traceWriter struct {
	bw    *bufio.Writer
	node  string
	addrs capture.AddrFunc
	links map[string][2]string // peer -> local, remote address ("" if unknown)
}

func (w *traceWriter) lost(n uint64) error {
	return writeFrameTo(w.bw, FrameError, fmt.Appendf(nil, "%d trace event(s) dropped: the client did not read fast enough", n))
}

func (w *traceWriter) event(e any) error {
	ev := w.traceEvent(e)
	b, err := json.Marshal(&ev)
	if err != nil {
		panic(err) // our own types always marshal
	}
	return writeFrameTo(w.bw, FrameTrace, b)
}

// traceEvent is the JSON form of one of the feed's events.
func (w *traceWriter) traceEvent(e any) TraceEvent {
	switch e := e.(type) {
	case trace.Signal:
		ev := TraceEvent{Kind: TraceSignal, Time: e.Time, Node: e.Node, Peer: e.Peer, Dir: e.Dir.String(), Msg: e.Msg}
		if t, ref, ok := e.Header(); ok {
			ev.Type, ev.CallRef, ev.Flag = t.String(), &ref.Value, &ref.Flag
		}
		ev.Local, ev.Remote = w.linkAddrs(e.Peer)
		return ev
	case trace.Call:
		ev := TraceEvent{Kind: TraceCall, Time: e.Time, Node: e.Node, Peer: e.Peer, Event: e.Event.String(),
			Service: e.Service, Vc: e.VC, Incoming: e.Incoming, ByPeer: e.ByPeer, SetupUs: e.Setup.Microseconds()}
		if e.Cause != 0 {
			ev.Cause, ev.CauseText = int(e.Cause), causeText(e.Cause)
		}
		if e.Event == trace.CallFailed || e.Event == trace.CallReleased {
			ev.Status = e.Status.String()
		}
		if e.Ref.Ref != 0 {
			flag := !e.Ref.Local // the flag of the messages this node sends on the call
			ev.CallRef, ev.Flag = &e.Ref.Ref, &flag
		}
		return ev
	case trace.Link:
		ev := TraceEvent{Kind: TraceLink, Time: e.Time, Node: e.Node, Peer: e.Peer, Event: "down", Reason: e.Reason}
		if e.Up {
			ev.Event = "up"
		}
		if e.Err != nil {
			ev.Error = e.Err.Error()
		}
		return ev
	case trace.Handshake:
		ev := TraceEvent{Kind: TraceHandshake, Time: e.Time, Node: e.Node, Peer: e.Peer, Event: "refused",
			Reason: e.Reason, Dialed: e.Dialed}
		if e.Remote != nil {
			ev.Remote = e.Remote.String()
		}
		if e.Err != nil {
			ev.Error = e.Err.Error()
		}
		return ev
	case mediatorEvent:
		ev := TraceEvent{Kind: TraceNdis, Time: e.at, Node: w.node, Event: ndisEventName(e.e.Kind), Seq: e.e.Seq,
			Driver: e.e.Driver, Func: e.e.Func, Object: e.e.Object}
		// Every kind carries a status: a completion's request and its
		// upcall carry the completion status, a return or a refusal the
		// result (0, NDIS_STATUS_SUCCESS, where none applies).
		ev.Status = e.e.Status.String()
		return ev
	}
	panic(fmt.Sprintf("trace feed: event of type %T", e))
}

// linkAddrs returns the addresses of the link to peer, asked for once per
// session.
func (w *traceWriter) linkAddrs(peer string) (local, remote string) {
	if a, ok := w.links[peer]; ok {
		return a[0], a[1]
	}
	if w.addrs != nil {
		if l, r, ok := w.addrs(peer); ok {
			local, remote = l.String(), r.String()
		}
	}
	w.links[peer] = [2]string{local, remote}
	return local, remote
}

func ndisEventName(k ndis.EventKind) string {
	switch k {
	case ndis.EventRequest:
		return "request"
	case ndis.EventReturn:
		return "return"
	case ndis.EventUpcall:
		return "upcall"
	case ndis.EventHandled:
		return "handled"
	case ndis.EventRefused:
		return "refused"
	}
	return "?"
}

// --- the client ---

// TraceStream is the client side of a trace session.
type TraceStream struct {
	// Node is the traced node's status, from its answer.
	Node NodeStatus

	conn net.Conn
	br   *bufio.Reader
}

// DialTrace asks the node at socket for its trace. Events are read with
// Next; Close ends the session.
func DialTrace(ctx context.Context, socket string) (*TraceStream, error) {
	conn, br, resp, err := dial(ctx, socket, Request{Op: OpTrace})
	if err != nil {
		return nil, err
	}
	if resp.Node == nil {
		conn.Close()
		return nil, errors.New("the node's answer to trace has no status")
	}
	return &TraceStream{Node: *resp.Node, conn: conn, br: br}, nil
}

// TraceEndedError is returned by Next once the node has ended the session
// (after an End, or when it shuts down): the close frame's text says why.
type TraceEndedError struct{ Close CloseInfo }

func (e *TraceEndedError) Error() string { return e.Close.Text }

// Next returns the next event. A notice from the node (events dropped
// because the client did not keep up) is passed to notice, if not nil, and
// reading goes on. Once the node ends the session it returns an
// *TraceEndedError; a lost connection is another error.
func (s *TraceStream) Next(notice func(string)) (TraceEvent, error) {
	for {
		f, err := ReadFrame(s.br)
		if err != nil {
			return TraceEvent{}, fmt.Errorf("lost the node: %v", err)
		}
		switch f.Type {
		case FrameTrace:
			var ev TraceEvent
			if err := json.Unmarshal(f.Payload, &ev); err != nil {
				return TraceEvent{}, fmt.Errorf("the node's trace frame is not understood: %v", err)
			}
			return ev, nil
		case FrameError:
			if notice != nil {
				notice(string(f.Payload))
			}
		case FrameClose:
			info, err := ParseClose(f.Payload)
			if err != nil {
				return TraceEvent{}, err
			}
			return TraceEvent{}, &TraceEndedError{Close: info}
		default:
			return TraceEvent{}, fmt.Errorf("the node's answer is not understood: a %v frame in a trace", f.Type)
		}
	}
}

// Buffered is how many octets of the stream have arrived and not been
// read: 0 means Next would wait for the node.
func (s *TraceStream) Buffered() int { return s.br.Buffered() }

// End asks the node to end the session: Next returns the events already
// sent, then *TraceEndedError.
func (s *TraceStream) End() error { return WriteFrame(s.conn, FrameEnd, nil) }

// Close closes the connection.
func (s *TraceStream) Close() error { return s.conn.Close() }

// Signal returns the trace.Signal a signal event describes (Msg is the
// event's), for consumers such as package capture; ok is false for other
// kinds.
func (ev TraceEvent) Signal() (s trace.Signal, ok bool) {
	if ev.Kind != TraceSignal {
		return trace.Signal{}, false
	}
	s = trace.Signal{Time: ev.Time, Node: ev.Node, Peer: ev.Peer, Msg: ev.Msg, Dir: trace.Out}
	if ev.Dir == trace.In.String() {
		s.Dir = trace.In
	}
	return s, true
}

// LinkAddrs returns the UDP addresses of a signal event's link; ok is
// false if the event has none (or they do not parse).
func (ev TraceEvent) LinkAddrs() (local, remote netip.AddrPort, ok bool) {
	l, err1 := netip.ParseAddrPort(ev.Local)
	r, err2 := netip.ParseAddrPort(ev.Remote)
	return l, r, err1 == nil && err2 == nil
}
