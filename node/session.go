package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// sessionKind says what a control connection does.
type sessionKind uint8

const (
	sessionCall sessionKind = iota + 1
	sessionListen
	sessionBench // only marks the connection of a bench request (Control.conns)
)

func (k sessionKind) String() string {
	switch k {
	case sessionListen:
		return "listen"
	case sessionBench:
		return "bench"
	}
	return "call"
}

// session is one call or listen session of the control socket.
type session struct {
	kind sessionKind
	conn net.Conn
	out  outQueue

	// Under Control.mu.
	startErr *Response // the start failed: the response to send
	ending   bool      // endSession has run
	finished bool      // the close frame is queued; the session is out of Control.sessions
	why      closeWhy

	vc *vcState // call

	service   string // listen
	echo      bool
	sap       *ndis.Sap
	sapPhase  sapPhase
	sapStatus ndis.Status
	calls     map[*vcState]struct{} // accepted and not yet deleted
}

// maxQueued is how many octets of received SDUs and events a session may
// have waiting for its client; beyond it they are dropped (and the client
// told), since a handler may not wait. Without the bound, a listen session
// whose client does not read would grow by two events per call.
const maxQueued = 8 << 20

// outQueue holds the frames waiting for a session's writer. Pushing never
// blocks.
type outQueue struct {
	mu      sync.Mutex
	frames  []Frame
	bytes   int
	last    bool // the close frame is queued: nothing more is taken
	dead    bool // the writer is gone
	dropped int  // SDUs
	lostEvs int  // events
	wake    chan struct{}
}

func (q *outQueue) init() { q.wake = make(chan struct{}, 1) }

func (q *outQueue) push(f Frame) {
	q.mu.Lock()
	if q.dead || q.last {
		q.mu.Unlock()
		return
	}
	if (f.Type == FrameData || f.Type == FrameEvent) && q.bytes+len(f.Payload) > maxQueued {
		if f.Type == FrameData {
			q.dropped++
		} else {
			q.lostEvs++
		}
		q.mu.Unlock()
		return
	}
	q.frames = append(q.frames, f)
	q.bytes += len(f.Payload)
	if f.Type == FrameClose {
		q.last = true
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *outQueue) pushData(sdu []byte)  { q.push(Frame{Type: FrameData, Payload: sdu}) }
func (q *outQueue) pushError(msg string) { q.push(Frame{Type: FrameError, Payload: []byte(msg)}) }

func (q *outQueue) pushJSON(t FrameType, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // our own types always marshal
	}
	q.push(Frame{Type: t, Payload: b})
}

func (q *outQueue) pushClose(info CloseInfo) { q.pushJSON(FrameClose, info) }

// pushEvent queues an event frame. Its JSON is written by hand: a listen
// session gets two per call, and encoding/json's reflection was 7% of the
// called node's CPU at a high call rate.
func (q *outQueue) pushEvent(ev Event) {
	q.push(Frame{Type: FrameEvent, Payload: ev.appendJSON(make([]byte, 0, 96))})
}

// next waits for frames; ok is false once the queue is dead.
func (q *outQueue) next() (frames []Frame, ok bool) {
	for {
		q.mu.Lock()
		if q.dead {
			q.mu.Unlock()
			return nil, false
		}
		for _, lost := range []struct {
			n    *int
			what string
		}{{&q.dropped, "received SDU(s)"}, {&q.lostEvs, "event(s)"}} {
			if *lost.n == 0 {
				continue
			}
			msg := fmt.Sprintf("%d %s dropped: the client did not read fast enough", *lost.n, lost.what)
			*lost.n = 0
			// Before the close frame, if there is one.
			i := len(q.frames)
			if q.last {
				i--
			}
			q.frames = append(q.frames[:i], append([]Frame{{Type: FrameError, Payload: []byte(msg)}}, q.frames[i:]...)...)
		}
		if len(q.frames) > 0 {
			fs := q.frames
			q.frames, q.bytes = nil, 0
			q.mu.Unlock()
			return fs, true
		}
		q.mu.Unlock()
		<-q.wake
	}
}

// kill drops everything queued and to come, and wakes the writer.
func (q *outQueue) kill() {
	q.mu.Lock()
	q.dead = true
	q.frames = nil
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func newSession(kind sessionKind, conn net.Conn) *session {
	s := &session{kind: kind, conn: conn}
	s.out.init()
	return s
}

// serveConn serves one control connection.
func (c *Control) serveConn(conn net.Conn) {
	defer c.wg.Done()
	defer func() {
		conn.Close()
		c.mu.Lock()
		delete(c.conns, conn)
		c.mu.Unlock()
	}()
	br := bufio.NewReader(conn)
	line, err := readRequestLine(br)
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			writeJSONLine(conn, Response{Error: "bad request: " + err.Error()})
		}
		return
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSONLine(conn, Response{Error: "bad request: " + err.Error()})
		return
	}
	c.mu.Lock()
	down := c.down
	c.mu.Unlock()
	if down {
		writeJSONLine(conn, Response{Error: "the node is shutting down"})
		return
	}
	switch req.Op {
	case OpCalls:
		writeJSONLine(conn, Response{OK: true, Address: nodeAddress(c.cm), Calls: c.Calls()})
	case OpCall:
		if req.Dest == "" {
			writeJSONLine(conn, Response{Error: "call: no destination (node/service)"})
			return
		}
		if req.LingerMs < 0 {
			writeJSONLine(conn, Response{Error: "call: negative linger"})
			return
		}
		c.serveCall(conn, br, &req)
	case OpBench:
		c.serveBench(conn, br, &req)
	case OpListen:
		if req.Service == "" {
			writeJSONLine(conn, Response{Error: "listen: no service"})
			return
		}
		c.serveListen(conn, br, &req)
	default:
		writeJSONLine(conn, Response{Error: fmt.Sprintf("bad request: unknown op %q (call, listen, calls or bench)", req.Op)})
	}
}

// attach marks conn as carrying session s, unless the node is going down.
func (c *Control) attach(conn net.Conn, s *session) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return false
	}
	c.conns[conn] = s
	return true
}

func (c *Control) serveCall(conn net.Conn, br *bufio.Reader, req *Request) {
	s := newSession(sessionCall, conn)
	if !c.attach(conn, s) {
		writeJSONLine(conn, Response{Error: "the node is shutting down"})
		return
	}
	c.post(func() { c.startCall(s, req) })
	err := c.await(c.ctx, func() bool {
		return s.startErr != nil || s.finished || (s.vc != nil && s.vc.wasUp)
	})
	if err != nil {
		return // Shutdown gave up waiting
	}
	c.mu.Lock()
	var resp Response
	v := s.vc
	switch {
	case s.startErr != nil:
		resp = *s.startErr
	case v.wasUp:
		resp = Response{OK: true, Vc: v.name, MaxSDU: v.maxSDU}
		if f := v.flows; f != nil {
			resp.Tx, resp.Rx = FlowspecOf(f.tx), FlowspecOf(f.rx)
		}
	default:
		resp = callFailure(req.Dest, v.failStatus, v.cause)
	}
	c.mu.Unlock()
	if err := writeJSONLine(conn, resp); err != nil {
		if resp.OK {
			c.post(func() { c.endSession(s, whyGone) })
			c.runSession(s, br, nil) // drains to the close frame
		}
		return
	}
	if !resp.OK {
		return
	}
	c.runSession(s, br, v)
}

func (c *Control) serveListen(conn net.Conn, br *bufio.Reader, req *Request) {
	s := newSession(sessionListen, conn)
	s.service, s.echo, s.calls = req.Service, req.Echo, map[*vcState]struct{}{}
	if !c.attach(conn, s) {
		writeJSONLine(conn, Response{Error: "the node is shutting down"})
		return
	}
	c.post(func() { c.startListen(s) })
	err := c.await(c.ctx, func() bool {
		return s.startErr != nil || s.finished || s.sapPhase == sapRegistered || s.sapPhase == sapDeregistering
	})
	if err != nil {
		return
	}
	c.mu.Lock()
	resp := Response{OK: true}
	if s.startErr != nil {
		resp = *s.startErr
	}
	c.mu.Unlock()
	if err := writeJSONLine(conn, resp); err != nil || !resp.OK {
		if resp.OK {
			c.post(func() { c.endSession(s, whyGone) })
			c.runSession(s, br, nil)
		}
		return
	}
	c.runSession(s, br, nil)
}

// runSession runs a started session until its close frame is written (or
// the client is gone): the writer on its own goroutine, the reader here.
// v is the call's VC, nil for a listen session.
func (c *Control) runSession(s *session, br *bufio.Reader, v *vcState) {
	done := make(chan struct{})
	go c.writer(s, done)
	ended := false
	for {
		f, err := ReadFrame(br)
		if err != nil {
			if errors.Is(err, errFrameTooLong) {
				s.out.pushError(err.Error() + "; ending the session")
			}
			if !ended {
				c.post(func() { c.endSession(s, whyGone) })
			}
			break
		}
		switch {
		case f.Type == FrameData && v != nil && !ended:
			if msg := c.send(v, f.Payload); msg != "" {
				s.out.pushError(msg)
			}
		case f.Type == FrameData && v == nil:
			s.out.pushError("a listen session takes no data; frame ignored")
		case f.Type == FrameData:
			s.out.pushError("data after the end of input; frame ignored")
		case f.Type == FrameEnd && !ended:
			ended = true
			if v != nil {
				c.post(func() { c.inputEnded(v) })
			} else {
				c.post(func() { c.endSession(s, whyLocal) })
			}
		case f.Type == FrameEnd:
		default:
			s.out.pushError(fmt.Sprintf("unexpected %v frame; ignored", f.Type))
		}
	}
	<-done
}

// writer writes a session's frames until the close frame, then closes the
// connection (which ends the reader).
func (c *Control) writer(s *session, done chan struct{}) {
	defer close(done)
	defer s.conn.Close()
	bw := bufio.NewWriter(s.conn)
	for {
		frames, ok := s.out.next()
		if !ok {
			return
		}
		last := false
		for _, f := range frames {
			if err := writeFrameTo(bw, f.Type, f.Payload); err != nil {
				s.out.kill()
				c.post(func() { c.endSession(s, whyGone) })
				return
			}
			last = last || f.Type == FrameClose
		}
		if err := bw.Flush(); err != nil {
			s.out.kill()
			c.post(func() { c.endSession(s, whyGone) })
			return
		}
		if last {
			return
		}
	}
}

// causeHints explain, in the words of the command line, the causes a user
// meets most.
var causeHints = map[uni.Cause]string{
	uni.CauseUnallocatedNumber:       "no such node",
	uni.CauseNoRouteToDestination:    "no route to the destination node",
	uni.CauseCallRejected:            "the called node refused the call (its trust setting or allow list, or its listener)",
	uni.CauseDestinationOutOfOrder:   "the destination node is out of order",
	uni.CauseCellRateUnavailable:     "the requested cell rate is not available",
	uni.CauseResourceUnavailable:     "the call manager is out of resources",
	uni.CauseQoSUnavailable:          "the requested quality of service is not available",
	uni.CauseIncompatibleDestination: "no such service at the destination",
}

// callFailure is the response to a call whose MakeCall failed.
func callFailure(dest string, st ndis.Status, cause uni.Cause) Response {
	text := fmt.Sprintf("call %s failed: %s", dest, describe(st, cause))
	if h := causeHints[cause]; h != "" {
		text += ": " + h
	}
	return Response{Error: text, Status: st.String(), Cause: int(cause), CauseText: causeText(cause)}
}

// Calls lists every VC of the node: the mediator's snapshot, with the peer
// and service of each call as the call manager knows them (a
// [CallDescriber]) or, for the Control's own calls, as they were asked.
func (c *Control) Calls() []CallInfo {
	snap := c.cm.Adapter().Mediator().Snapshot()
	type known struct {
		peer, service string
		flows         *callFlows
	}
	c.mu.Lock()
	ours := make(map[string]known, len(c.vcs))
	for v := range c.vcs {
		if v.name != "" {
			ours[v.name] = known{v.peer, v.service, v.flows}
		}
	}
	c.mu.Unlock()
	// The call manager knows the far end of every call, including those of
	// other clients of the node.
	var cms map[string]Endpoints
	if d, ok := c.cm.(CallDescriber); ok {
		cms = d.Endpoints()
	}
	out := make([]CallInfo, 0, len(snap.Vcs))
	for _, vi := range snap.Vcs {
		ci := CallInfo{
			Vc: vi.Handle, Kind: vi.Kind, Client: vi.Client, State: vi.Call, Activation: vi.Activation,
			Closing: vi.Closing, Parties: len(vi.Parties),
			TxPackets: vi.Stats.TxPackets, TxBytes: vi.Stats.TxBytes, TxErrors: vi.Stats.TxErrors,
			RxPackets: vi.Stats.RxPackets, RxBytes: vi.Stats.RxBytes, RxDrops: vi.Stats.RxDrops,
		}
		flows := flowsOf(vi.Params)
		if e, ok := cms[vi.Handle]; ok {
			ci.Peer, ci.Service = e.Peer, e.Service
		}
		if k, ok := ours[vi.Handle]; ok {
			ci.Peer, ci.Service = k.peer, k.service
			if flows == nil {
				flows = k.flows
			}
		}
		if flows != nil {
			ci.Tx, ci.Rx = FlowspecOf(flows.tx), FlowspecOf(flows.rx)
		}
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b CallInfo) int { return vcNumber(a.Vc) - vcNumber(b.Vc) })
	return out
}

// vcNumber orders "vc#7" before "vc#12".
func vcNumber(name string) int {
	n, _ := strconv.Atoi(name[min(len(name), 3):])
	return n
}
