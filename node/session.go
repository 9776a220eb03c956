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
	"time"
	"unsafe"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// sessionKind says what a control connection does.
type sessionKind uint8

const (
	sessionCall sessionKind = iota + 1
	sessionListen
	sessionBench // only marks the connection of a bench request (Control.conns)
	sessionTrace // only marks the connection of a trace request (Control.conns)
)

func (k sessionKind) String() string {
	switch k {
	case sessionListen:
		return "listen"
	case sessionBench:
		return "bench"
	case sessionTrace:
		return "trace"
	}
	return "call"
}

// session is one call or listen session of the control socket.
type session struct {
	c    *Control
	kind sessionKind
	conn net.Conn
	out  outQueue

	// Under Control.mu.
	startErr *Response // the start failed: the response to send
	ending   bool      // endSession has run
	finished bool      // the close frame is queued; the session is out of Control.sessions
	why      closeWhy

	vc     *ctlVc        // call
	linger time.Duration // call: how long to linger after the end of input

	service    string // listen
	echo       bool
	tagged     bool              // each call apart: vc data frames, vc end frames
	soft       bool              // tagged: ending by deregistering only; its calls go on
	byName     map[string]*ctlVc // tagged: the calls the client was told of, by VC name
	lsap       *clientcore.SAP
	sap        *ndis.Sap // its handle while registered
	registered bool
	sapGone    bool
	calls      []*ctlVc // accepted and not yet deleted, each at its ctlVc.at
}

// Bounds of what a session may have queued for its client (see the
// package documentation). Every frame counts: its payload and its place in
// the queue, from when it is queued until the writer has written it. A
// handler may not wait, so what does not fit is dropped (SDUs, events) or
// ends the session (error frames: the client keeps drawing them and reads
// none). Without the bound, a client that sends bad frames and never reads
// grew the node by the error frames it drew, for ever.
const (
	// maxQueued is the cap of a session's queue, in octets.
	maxQueued = 8 << 20
	// maxQueuedData is where received SDUs and events stop being queued:
	// the rest of the cap is kept for error frames and the close frame.
	maxQueuedData = maxQueued - 1<<20
	// frameOverhead is what a frame costs in the queue beyond its
	// payload: its place in the queue's slice.
	frameOverhead = int(unsafe.Sizeof(Frame{}))
	// lastFrameGrace is how long each write may take once a session went
	// over its cap: a client that does not read its last frames within it
	// is disconnected.
	lastFrameGrace = 10 * time.Second
)

// frameCost is what f counts against its session's cap.
func frameCost(f Frame) int { return frameOverhead + len(f.Payload) }

// outQueue holds the frames waiting for a session's writer. Pushing never
// blocks.
type outQueue struct {
	mu          sync.Mutex
	frames      []Frame
	octets      int // cost of the queued frames and of the batch being written
	batch       int // cost of the batch the writer took and has not written yet
	batchFrames int
	last        bool // the close frame is queued: nothing more is taken
	dead        bool // the writer is gone
	over        bool // the session went over its cap: only the close frame is taken
	dropped     int  // SDUs
	lostEvs     int  // events
	noEvents    bool // the client asked for none (Request.Quiet)
	wake        chan struct{}

	// Events are written into evBuf, and their frames' payloads are parts
	// of it; next hands it to the writer with them (writing), and written
	// gives it back (evSpare) for the events to come: an event costs no
	// allocation of its own.
	evBuf, writing, evSpare []byte

	// peak and peakFrames are the most the queue ever held (octets as
	// counted against the cap, and frames), for the tests.
	peak, peakFrames int

	// overflow is called once, without the queue's lock, when the session
	// goes over its cap; queued is the octets it would have queued.
	overflow func(queued int)
}

func (q *outQueue) init() { q.wake = make(chan struct{}, 1) }

func (q *outQueue) push(f Frame) {
	q.mu.Lock()
	_, queued := q.admitLocked(f)
	q.mu.Unlock()
	q.admitted(queued)
}

// admitLocked queues f unless the session's state or its cap refuses it,
// and says whether it did. queued is for admitted, once q.mu is released:
// what the session would have queued if f took it over its cap, 0 if
// not.
func (q *outQueue) admitLocked(f Frame) (taken bool, queued int) {
	cost := frameCost(f)
	if q.dead || q.last || (q.over && f.Type != FrameClose) {
		return false, 0
	}
	switch {
	case f.Type == FrameClose:
		// Always taken: it is one frame, the last.
	case (f.Type == FrameData || f.Type == FrameEvent) && q.octets+cost > maxQueuedData:
		if f.Type == FrameData {
			q.dropped++
		} else {
			q.lostEvs++
		}
		return false, 0
	case q.octets+cost > maxQueued:
		// Over the cap: what is queued goes (what the writer is writing
		// cannot), and so does every frame to come but the close frame.
		queued := q.octets + cost
		q.over = true
		q.frames, q.octets = nil, q.batch
		q.evBuf = q.evBuf[:0] // its events went with their frames
		q.dropped, q.lostEvs = 0, 0
		return false, queued
	}
	q.frames = append(q.frames, f)
	q.octets += cost
	q.peak = max(q.peak, q.octets)
	q.peakFrames = max(q.peakFrames, len(q.frames)+q.batchFrames)
	if f.Type == FrameClose {
		q.last = true
	}
	return true, 0
}

// admitted follows admitLocked, without q.mu: it tells the session it went
// over its cap, or wakes the writer.
func (q *outQueue) admitted(queued int) {
	if queued > 0 {
		if q.overflow != nil {
			q.overflow(queued)
		}
		return
	}
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
// called node's CPU at a high call rate. ev does not escape, and the JSON
// goes into the queue's evBuf: an event costs no allocation.
func (q *outQueue) pushEvent(ev Event) {
	q.mu.Lock()
	if q.noEvents {
		q.mu.Unlock()
		return
	}
	start := len(q.evBuf)
	buf := ev.appendJSON(q.evBuf)
	// The payload is capped at its end: nothing appended later reaches it.
	taken, queued := q.admitLocked(Frame{Type: FrameEvent, Payload: buf[start:len(buf):len(buf)]})
	if taken {
		q.evBuf = buf
	} else if !q.over {
		q.evBuf = buf[:start]
	}
	q.mu.Unlock()
	q.admitted(queued)
}

// maxReusedEvents bounds the event buffer a session's queue keeps for
// reuse.
const maxReusedEvents = 64 << 10

// next waits for frames and hands them to the writer as one batch, which
// counts against the cap until the writer calls written; ok is false once
// the queue is dead.
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
			f := Frame{Type: FrameError, Payload: []byte(msg)}
			q.frames = append(q.frames[:i], append([]Frame{f}, q.frames[i:]...)...)
			q.octets += frameCost(f)
		}
		if len(q.frames) > 0 {
			fs := q.frames
			q.frames = nil
			q.writing, q.evBuf, q.evSpare = q.evBuf, q.evSpare[:0], nil
			q.batch, q.batchFrames = q.octets, len(fs)
			q.mu.Unlock()
			return fs, true
		}
		q.mu.Unlock()
		<-q.wake
	}
}

// written: the writer has written batch, which next handed it. Its slice
// takes the frames to come, unless some came meanwhile: a session's
// queue is not grown anew for every batch.
func (q *outQueue) written(batch []Frame) {
	clear(batch) // let the payloads go
	q.mu.Lock()
	q.octets -= q.batch
	q.batch, q.batchFrames = 0, 0
	if q.frames == nil && !q.dead && !q.over && cap(batch) <= maxReusedFrames {
		q.frames = batch[:0]
	}
	// Every event frame in writing was in the batch: it is free again.
	if !q.dead && cap(q.writing) <= maxReusedEvents {
		q.evSpare = q.writing[:0]
	}
	q.writing = nil
	q.mu.Unlock()
}

// maxReusedFrames bounds the slice a session's queue keeps for reuse: a
// burst of frames does not keep its memory for ever.
const maxReusedFrames = 1024

// overCap reports whether the session went over its cap.
func (q *outQueue) overCap() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.over
}

// kill drops everything queued and to come, and wakes the writer.
func (q *outQueue) kill() {
	q.mu.Lock()
	q.dead = true
	q.frames = nil
	q.evBuf, q.evSpare = nil, nil
	q.octets, q.batch, q.batchFrames = 0, 0, 0
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// newSession returns a session of conn. One that goes over its cap is
// ended: the log says so, the client gets lastFrameGrace per write to take
// its last frames, and the worker ends the session.
func (c *Control) newSession(kind sessionKind, conn net.Conn) *session {
	s := &session{c: c, kind: kind, conn: conn}
	s.out.init()
	s.out.overflow = func(queued int) {
		c.log.Warn("control: ending a session whose client does not read what the node sends it",
			"session", kind.String(), "queued", queued, "cap", maxQueued)
		conn.SetWriteDeadline(time.Now().Add(lastFrameGrace))
		c.core.Defer(func() { c.endSession(s, whyOverflow) }) // push may run in a handler of the Core's
	}
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
		c.serveCalls(conn)
	case OpStatus:
		st := c.Status()
		writeJSONLine(conn, Response{OK: true, Node: &st})
	case OpPeers:
		writeJSONLine(conn, Response{OK: true, Peers: c.Peers()})
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
		if req.Echo && req.Tagged {
			writeJSONLine(conn, Response{Error: "listen: echo and tagged do not go together (an echo listener forwards nothing); ask for one"})
			return
		}
		if req.Quiet && req.Tagged {
			writeJSONLine(conn, Response{Error: "listen: quiet and tagged do not go together (a tagged session names its calls in events); ask for one"})
			return
		}
		c.serveListen(conn, br, &req)
	case OpTrace:
		c.serveTrace(conn, br)
	case OpAddParty:
		c.serveAddParty(conn, &req)
	case OpDropParty:
		c.serveDropParty(conn, &req)
	case OpModify:
		c.serveModify(conn, &req)
	case OpHangup:
		c.serveHangup(conn, &req)
	default:
		writeJSONLine(conn, Response{Error: fmt.Sprintf("bad request: unknown op %q (call, listen, calls, status, peers, bench, trace, party-add, party-drop, modify or hangup)", req.Op)})
	}
}

// serveCalls answers a calls request: the response line with the count,
// one call frame per VC, and a close frame. The frames are written as
// they are encoded, so the node holds the list of VCs but never its whole
// encoding; a client that does not read blocks only this connection (and
// Shutdown closes it).
func (c *Control) serveCalls(conn net.Conn) {
	calls := c.Calls()
	bw := bufio.NewWriterSize(conn, 64<<10)
	if err := writeJSONLine(bw, Response{OK: true, Count: len(calls), Address: nodeAddress(c.cm)}); err != nil {
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for i := range calls {
		buf.Reset()
		if err := enc.Encode(&calls[i]); err != nil {
			panic(err) // our own types always marshal
		}
		if err := writeFrameTo(bw, FrameCall, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})); err != nil {
			return
		}
		calls[i] = CallInfo{} // written: let its strings go
	}
	info, _ := json.Marshal(CloseInfo{Normal: true, By: ByNode, Text: fmt.Sprintf("%d VC(s) listed", len(calls))})
	if writeFrameTo(bw, FrameClose, info) == nil {
		bw.Flush()
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
	s := c.newSession(sessionCall, conn)
	if !c.attach(conn, s) {
		writeJSONLine(conn, Response{Error: "the node is shutting down"})
		return
	}
	c.startCall(s, req)
	err := c.await(c.ctx, func() bool {
		// A multipoint call answers once its further leaves are added too.
		return s.startErr != nil || s.finished || (s.vc != nil && s.vc.wasUp && s.vc.settlingLocked() == 0)
	})
	if err != nil {
		return // Shutdown gave up waiting
	}
	c.mu.Lock()
	var resp Response
	cv := s.vc
	var initial []*clientcore.Party
	switch {
	case s.startErr != nil:
		resp = *s.startErr
	case cv.wasUp:
		resp = Response{OK: true, Vc: cv.v.Name(), MaxSDU: int(cv.maxSDU)}
		if f := cv.flows; f != nil {
			resp.Tx, resp.Rx = FlowspecOf(f.Tx), FlowspecOf(f.Rx)
		}
		if cv.more != nil {
			initial = cv.more.initial
		}
	default:
		var ce *clientcore.CallError
		if cv.more != nil && cv.more.end != nil && errors.As(cv.more.end.Err, &ce) {
			resp = callFailure(req.Dest, ce.Status, ce.Cause)
		} else {
			resp = Response{Error: fmt.Sprintf("call %s failed", req.Dest)}
		}
	}
	c.mu.Unlock()
	for _, p := range initial {
		resp.Parties = append(resp.Parties, partyInfo(cv.v, p))
	}
	if err := writeJSONLine(conn, resp); err != nil {
		if resp.OK {
			c.endSession(s, whyGone)
			c.runSession(s, br, nil) // drains to the close frame
		}
		return
	}
	if !resp.OK {
		return
	}
	c.runSession(s, br, cv)
}

func (c *Control) serveListen(conn net.Conn, br *bufio.Reader, req *Request) {
	s := c.newSession(sessionListen, conn)
	s.service, s.echo = req.Service, req.Echo
	s.tagged, s.byName = req.Tagged, map[string]*ctlVc{}
	s.out.noEvents = req.Quiet
	if !c.attach(conn, s) {
		writeJSONLine(conn, Response{Error: "the node is shutting down"})
		return
	}
	c.startListen(s)
	err := c.await(c.ctx, func() bool {
		return s.startErr != nil || s.finished || s.registered
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
			c.endSession(s, whyGone)
			c.runSession(s, br, nil)
		}
		return
	}
	c.runSession(s, br, nil)
}

// runSession runs a started session until its close frame is written (or
// the client is gone): the writer on its own goroutine, the reader here.
// v is the call's VC, nil for a listen session.
func (c *Control) runSession(s *session, br *bufio.Reader, v *ctlVc) {
	done := make(chan struct{})
	go c.writer(s, done)
	ended := false
	for {
		f, err := ReadFrame(br)
		if err != nil {
			if errors.Is(err, errFrameTooLong) {
				s.out.pushError(err.Error() + "; ending the session")
			}
			if !ended || s.tagged { // a tagged session's end frame left its calls up
				c.endSession(s, whyGone)
			}
			break
		}
		switch {
		case s.tagged && (f.Type == FrameVcData || f.Type == FrameVcEnd || f.Type == FrameData):
			c.tagged(s, f)
		case s.tagged && f.Type == FrameEnd && !ended:
			ended = true
			c.deregisterSession(s)
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
				v.v.EndInput(s.linger)
			} else {
				c.endSession(s, whyLocal)
			}
		case f.Type == FrameEnd:
		default:
			s.out.pushError(fmt.Sprintf("unexpected %v frame; ignored", f.Type))
		}
		if s.out.overCap() {
			break // the session is ending: nothing the client sends matters now
		}
	}
	<-done
}

// tagged acts on a frame from the client of a tagged listen session: an
// SDU to send on one of its calls, or one of its calls to close.
func (c *Control) tagged(s *session, f Frame) {
	if f.Type == FrameData {
		s.out.pushError("a tagged listen session takes vc data frames, which name their call; frame ignored")
		return
	}
	name, sdu := string(f.Payload), []byte(nil)
	if f.Type == FrameVcData {
		var err error
		if name, sdu, err = ParseVcData(f.Payload); err != nil {
			s.out.pushError(err.Error() + "; frame ignored")
			return
		}
	}
	c.mu.Lock()
	cv := s.byName[name]
	c.mu.Unlock()
	switch {
	case cv == nil:
		// It may have just gone: its closed event says so.
		s.out.pushError(fmt.Sprintf("no call %q in this session; %v frame ignored", name, f.Type))
	case f.Type == FrameVcEnd:
		cv.v.Close(whyLocal.reason(), nil)
	default:
		if msg := c.send(cv, sdu); msg != "" {
			s.out.pushError(name + ": " + msg)
		}
	}
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
		if s.out.overCap() {
			s.conn.SetWriteDeadline(time.Now().Add(lastFrameGrace))
		}
		last := false
		for _, f := range frames {
			if err := writeFrameTo(bw, f.Type, f.Payload); err != nil {
				s.out.kill()
				c.endSession(s, whyGone)
				return
			}
			last = last || f.Type == FrameClose
		}
		if err := bw.Flush(); err != nil {
			s.out.kill()
			c.endSession(s, whyGone)
			return
		}
		s.out.written(frames)
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
		flows         *clientcore.Flows
		policed       uint64
		leaves        map[string]string // party handle -> node/service
	}
	vcs := c.core.VCs()
	ours := make(map[string]known, len(vcs))
	for _, v := range vcs {
		ours[v.Name] = known{v.Peer, v.Service, v.Flows, v.Policed, v.Leaves}
	}
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
		k, isOurs := ours[vi.Handle]
		if isOurs {
			ci.Peer, ci.Service, ci.TxPoliced = k.peer, k.service, k.policed
			if flows == nil {
				flows = k.flows
			}
		}
		for _, pi := range vi.Parties {
			ci.Leaves = append(ci.Leaves, PartyInfo{Party: pi.Handle, Dest: k.leaves[pi.Handle], State: pi.State})
		}
		if flows != nil {
			ci.Tx, ci.Rx = FlowspecOf(flows.Tx), FlowspecOf(flows.Rx)
		}
		out = append(out, ci)
	}
	slices.SortFunc(out, func(a, b CallInfo) int { return vcNumber(a.Vc) - vcNumber(b.Vc) })
	return out
}

// Status says what the node is and how it is doing: its name, the build
// it runs, its uptime, its VCs (by call state), its SAPs and the contract
// violations its mediator has reported, by rule.
func (c *Control) Status() NodeStatus {
	m := c.cm.Adapter().Mediator()
	// Counted, not listed: a snapshot walks every VC under its AF's lock,
	// which with a million calls up stops the node's calls for a second.
	return NodeStatus{
		Node: m.Name(), Address: nodeAddress(c.cm), Version: Version(), Topology: topologyOf(c.cm),
		Started: c.started.UTC().Truncate(time.Second), Uptime: time.Since(c.started).Round(time.Millisecond).Seconds(),
		Vcs: m.Live().Vcs, VcStates: m.CallStates(), Saps: c.saps(m.Saps()),
		Violations: m.ViolationCounts(), IP: c.ipStatus(),
	}
}

// ipStatus is the call manager's IP over condis interface, if it has one.
func (c *Control) ipStatus() *IPStatus {
	if r, ok := c.cm.(IPReporter); ok {
		return r.IPStatus()
	}
	return nil
}

// vcNumber orders "vc#7" before "vc#12".
func vcNumber(name string) int {
	n, _ := strconv.Atoi(name[min(len(name), 3):])
	return n
}
