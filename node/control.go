package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/condis-project/condis/clientcore"
	"github.com/condis-project/condis/internal/statewait"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Control is the node's control plane: the control socket (see the package
// documentation for the protocol) as a thin adapter over one CoNDIS client,
// a [clientcore.Core] bound to the call manager's adapter, which makes and
// accepts the calls of the socket's sessions and keeps the CoNDIS contract
// (package clientcore says which rules).
//
// Concurrency. The Core reports what happens to each VC and SAP through
// handlers it calls with its lock held (control_handlers.go); those take
// the Control's lock after the Core's, never the other way round: the
// Control never calls a Core method that takes the Core's lock while it
// holds its own. A session's reader goroutine sends SDUs; received SDUs are
// queued for the session's writer goroutine (or, for an echo listener, sent
// back at once).
type Control struct {
	cm      CallManager
	core    *clientcore.Core
	log     *slog.Logger
	name    string
	started time.Time

	ctx    context.Context // ends when Shutdown gives up or is done
	cancel context.CancelFunc

	mu       sync.Mutex
	changes  statewait.Changes      // wakes await when the state changes
	sessions map[*session]struct{}  // started and not finished
	benches  map[*benchRun]struct{} // bench requests not yet ended
	conns    map[net.Conn]*session  // every open control connection, and its session once it has one
	lns      map[net.Listener]struct{}
	down     bool // Shutdown has begun

	wg sync.WaitGroup // connection goroutines
}

// closeWhy is why the Control closes (or closed) a call or ends a session:
// the Core's reasons, and the Control's own beyond them.
type closeWhy clientcore.Reason

const (
	whyNone     = closeWhy(clientcore.ReasonNone)
	whyLocal    = closeWhy(clientcore.ReasonLocal)     // end of input, or the listen session ended
	whyRemote   = closeWhy(clientcore.ReasonRemote)    // the far end or the network closed it
	whyShutdown = closeWhy(clientcore.ReasonShutdown)  // the node is shutting down
	whyWithdraw = closeWhy(clientcore.ReasonWithdrawn) // the call manager withdrew the address family
	whyGone     = closeWhy(clientcore.ReasonUser)      // the client went away without saying so
	whyOverflow = closeWhy(clientcore.ReasonUser + 1)  // the session went over its cap: its client does not read
	whyHangup   = closeWhy(clientcore.ReasonUser + 2)  // a hangup request on the control socket
)

func (w closeWhy) String() string {
	switch w {
	case whyLocal:
		return "local"
	case whyRemote:
		return "remote"
	case whyShutdown:
		return "shutdown"
	case whyWithdraw:
		return "withdrawn"
	case whyGone:
		return "client gone"
	case whyOverflow:
		return "overflow"
	case whyHangup:
		return "hangup"
	}
	return "-"
}

// reason is w as the Core carries it.
func (w closeWhy) reason() clientcore.Reason { return clientcore.Reason(w) }

// overflowText says why a session that went over its cap ended.
var overflowText = fmt.Sprintf("the client did not read what the node sent it (more than %d MiB queued)", maxQueued>>20)

// Options configure a Control.
type Options struct {
	// Name is the name the Control binds with (default "control").
	Name string
	// Logger receives what the control plane does, at Debug level, and its
	// problems, at Warn; nil discards.
	Logger *slog.Logger
}

// NewControl binds a Control to cm's adapter as a CoNDIS client (a
// clientcore.Core) and waits, until ctx ends, for it to open cm's address
// family. It serves nothing until Serve is called.
func NewControl(ctx context.Context, cm CallManager, opts Options) (*Control, error) {
	if opts.Name == "" {
		opts.Name = "control"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Control{
		cm: cm, log: opts.Logger, name: opts.Name, started: time.Now(),
		sessions: map[*session]struct{}{}, benches: map[*benchRun]struct{}{},
		conns: map[net.Conn]*session{}, lns: map[net.Listener]struct{}{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	core, err := clientcore.New(ctx, cm, clientcore.Options{Name: opts.Name, Logger: opts.Logger,
		Withdrawn: func() { c.stopBenches("the call manager withdrew its address family") }})
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.core = core
	return c, nil
}

// Core is the CoNDIS client the Control runs on.
func (c *Control) Core() *clientcore.Core { return c.core }

// ListenControl listens on the unix socket path for a Control. A socket
// file left by a node that is gone is removed; if a node is answering on
// path, it fails. The socket is made accessible to its owner only.
func ListenControl(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("control socket %s: the file exists and is not a socket", path)
		}
		if conn, err := net.Dial("unix", path); err == nil {
			conn.Close()
			return nil, fmt.Errorf("control socket %s: a node is already serving it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: removing the stale socket: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// Serve accepts control connections on ln until Close or Shutdown, which
// close ln; it then returns nil. Serve may be called for several listeners.
func (c *Control) Serve(ln net.Listener) error {
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		ln.Close()
		return nil
	}
	c.lns[ln] = struct{}{}
	c.mu.Unlock()
	for {
		conn, err := ln.Accept()
		if err != nil {
			c.mu.Lock()
			down := c.down
			delete(c.lns, ln)
			c.mu.Unlock()
			if down {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				c.log.Warn("control: accept", "err", err)
				time.Sleep(10 * time.Millisecond) // out of descriptors: let some connection end
				continue
			}
			return err
		}
		c.mu.Lock()
		if c.down {
			c.mu.Unlock()
			conn.Close()
			continue
		}
		c.conns[conn] = nil
		c.wg.Add(1)
		c.mu.Unlock()
		go c.serveConn(conn)
	}
}

// Close is Shutdown without a deadline.
func (c *Control) Close() error { return c.Shutdown(context.Background()) }

// Shutdown stops accepting connections, closes every session's calls
// normally (telling each session so in its close frame), deregisters every
// SAP, closes the address family and unbinds. It waits for all of that,
// and for the sessions' close frames to be written, until ctx ends; then
// it closes what connections remain and returns ctx's error.
func (c *Control) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	first := !c.down
	c.down = true
	for ln := range c.lns {
		ln.Close()
	}
	for conn, s := range c.conns {
		if s == nil { // no session yet: nothing to say
			conn.Close()
		}
	}
	c.notifyLocked()
	c.mu.Unlock()
	if first {
		c.stopBenches("the node is shutting down")
	}
	// The Core closes every call and SAP; their handlers finish the
	// sessions, whose close frames say why.
	err := c.core.Shutdown(ctx)
	if err == nil {
		err = c.await(ctx, func() bool { return len(c.sessions) == 0 })
	}
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
		c.cancel()
		c.mu.Lock()
		for conn, s := range c.conns {
			conn.Close()
			if s != nil {
				s.out.kill()
			}
		}
		c.mu.Unlock()
		<-done
	}
	c.cancel()
	return err
}

// notifyLocked wakes everyone waiting in await.
func (c *Control) notifyLocked() { c.changes.NotifyLocked() }

// await waits until cond (called with c.mu held) holds, or ctx ends.
func (c *Control) await(ctx context.Context, cond func() bool) error {
	return c.changes.Await(ctx, &c.mu, cond, nil)
}

// startError is the words of the Core's refusal to start a call or a SAP,
// as the control socket says them.
func startError(err error) string {
	if errors.Is(err, clientcore.ErrShutdown) {
		return "the node is shutting down"
	}
	return err.Error()
}

// --- calls ---

// ctlVc is the Control's context for one of the Core's VCs: the handler
// of its events (control_handlers.go). Fields are guarded by Control.mu.
//
// A listen session holds one per call it took, for as long as the call is
// up: what only some calls need is in more, allocated when first needed.
type ctlVc struct {
	v     *clientcore.VC    // set once StartCall returned, or when offered
	s     *session          // its session (and through it the Control), fixed when it is made
	flows *clientcore.Flows // granted (outgoing) or offered (incoming) flowspecs; nil if unknown
	more  *ctlVcMore

	maxSDU    int32
	at        int32 // a listen session's call: its index in session.calls, -1 once out
	incoming  bool
	connected bool
	wasUp     bool
	reliable  bool // incoming: the caller asked for a reliable VC
}

// ctlVcMore is the part of a ctlVc that most calls never use.
type ctlVcMore struct {
	held [][]byte        // an echo or tagged listener's SDUs received before CallConnected
	end  *clientcore.End // a call session's call: how it ended

	// A point-to-multipoint call of a call session: the leaves its
	// session asked for, in order, and how many of them are not yet added
	// or failed.
	initial  []*clientcore.Party
	more     []string
	settling int
}

// addCallLocked adds cv to s's calls. A slice with each call's index in
// it costs a held call 8 octets where a map cost about 30.
func (s *session) addCallLocked(cv *ctlVc) {
	cv.at = int32(len(s.calls))
	s.calls = append(s.calls, cv)
}

// removeCallLocked removes cv from s's calls and says whether it was
// there: the last one takes its place.
func (s *session) removeCallLocked(cv *ctlVc) bool {
	i := int(cv.at)
	if i < 0 || i >= len(s.calls) || s.calls[i] != cv {
		return false
	}
	last := len(s.calls) - 1
	s.calls[i] = s.calls[last]
	s.calls[i].at = int32(i)
	s.calls[last] = nil
	s.calls = s.calls[:last]
	cv.at = -1
	if cap(s.calls) > 64 && len(s.calls) < cap(s.calls)/4 {
		// Most of the calls are gone: so is most of their memory.
		s.calls = append(make([]*ctlVc, 0, 2*len(s.calls)), s.calls...)
	}
	return true
}

// moreLocked returns cv.more, allocating it if need be.
func (cv *ctlVc) moreLocked() *ctlVcMore {
	if cv.more == nil {
		cv.more = &ctlVcMore{}
	}
	return cv.more
}

// settlingLocked is how many of a multipoint call's further leaves are not
// yet added or failed.
func (cv *ctlVc) settlingLocked() int {
	if cv.more == nil {
		return 0
	}
	return cv.more.settling
}

// holdLocked keeps SDUs received before the call is connected, a bounded
// few: maxHeldSDUs.
func (cv *ctlVc) holdLocked(sdus [][]byte) {
	m := cv.moreLocked()
	for _, d := range sdus {
		if len(m.held) < maxHeldSDUs {
			m.held = append(m.held, d)
		}
	}
}

// flowsOf copies the flowspecs of p; nil if it has none.
func flowsOf(p *ndis.CallParameters) *clientcore.Flows {
	if p == nil || p.CallMgrParameters == nil {
		return nil
	}
	return &clientcore.Flows{Tx: p.CallMgrParameters.Transmit, Rx: p.CallMgrParameters.Receive}
}

// maxSDU is the largest SDU a session may send on a call with flows f.
func maxSDU(f *clientcore.Flows) int { return min(f.MaxSDU(), MaxFrame) }

// closeInfo says how cv's call ended, for its session, and what was sent
// on it.
func (cv *ctlVc) closeInfo(e *clientcore.End) CloseInfo {
	info := closeReason(cv.v.Name(), closeWhy(e.Reason), e.Status, e.Cause)
	info.Sent, info.Policed = e.Sent, e.Policed
	return info
}

// closeReason says how a call ended.
func closeReason(name string, why closeWhy, st ndis.Status, cause uni.Cause) CloseInfo {
	switch why {
	case whyRemote:
		if st == ndis.StatusSuccess {
			return CloseInfo{Normal: true, By: ByRemote, Status: st.String(), Cause: int(cause), CauseText: causeText(cause),
				Text: "call closed by the far end"}
		}
		return CloseInfo{By: ByRemote, Status: st.String(), Cause: int(cause), CauseText: causeText(cause),
			Text: "call closed: " + describe(st, cause)}
	case whyShutdown:
		return CloseInfo{Normal: true, By: ByNode, Text: "call closed: the node is shutting down"}
	case whyWithdraw:
		return CloseInfo{By: ByNode, Text: "call closed: the call manager withdrew its address family"}
	case whyOverflow:
		return CloseInfo{By: ByNode, Text: "call closed: " + overflowText}
	case whyHangup:
		return CloseInfo{Normal: true, By: ByHangup, Text: "call " + name + " hung up on this node (condis hangup)"}
	}
	return CloseInfo{Normal: true, By: ByLocal, Text: "call closed"}
}

// startCall has the Core make the call a call session asked for. The
// session learns the outcome through its VC's handler, or s.startErr.
func (c *Control) startCall(s *session, req *Request) {
	fail := func(r Response) {
		c.mu.Lock()
		s.startErr = &r
		c.notifyLocked()
		c.mu.Unlock()
	}
	tx, err := req.Tx.Ndis()
	var rx ndis.Flowspec
	if err == nil {
		rx, err = req.Rx.Ndis()
	}
	if err != nil {
		fail(Response{Error: fmt.Sprintf("call %s: %v", req.Dest, err)})
		return
	}
	cv := &ctlVc{s: s}
	o := clientcore.CallOptions{Tx: tx, Rx: rx, Reliable: req.Reliable, Multipoint: req.Multipoint || len(req.Parties) > 0}
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		fail(Response{Error: fmt.Sprintf("call %s: the node is shutting down", req.Dest)})
		return
	}
	if o.Multipoint {
		m := cv.moreLocked()
		m.more = append([]string(nil), req.Parties...)
		m.settling = len(req.Parties)
	}
	s.vc, s.linger = cv, time.Duration(req.LingerMs)*time.Millisecond
	c.sessions[s] = struct{}{}
	// Under c.mu, so that Shutdown, which sets c.down first, finds the
	// call counted by the Core. StartCall takes no lock of the Core's.
	cv.v = c.core.StartCall(req.Dest, o, cv)
	c.mu.Unlock()
}

// send sends one SDU on a call session's VC (the session's reader). It
// returns a message for an error frame if the SDU is refused.
func (c *Control) send(cv *ctlVc, sdu []byte) string {
	err := cv.v.Send(sdu)
	var se *clientcore.SDUSizeError
	if errors.As(err, &se) {
		return se.Error()
	}
	return "" // sent, or the call is going away: its close frame says why
}

// --- listen ---

// startListen has the Core register the SAP a session asked for.
func (c *Control) startListen(s *session) {
	c.mu.Lock()
	if c.down {
		s.startErr = &Response{Error: fmt.Sprintf("listen %s: the node is shutting down", s.service)}
		c.notifyLocked()
		c.mu.Unlock()
		return
	}
	c.sessions[s] = struct{}{}
	s.lsap = c.core.StartListen(s.service, s)
	c.mu.Unlock()
}

// endSession ends a session for why: a call session closes its call; a
// listen session deregisters its SAP and closes its calls.
func (c *Control) endSession(s *session, why closeWhy) {
	c.mu.Lock()
	if (s.ending && !s.soft) || s.finished {
		c.mu.Unlock()
		return
	}
	soft := s.soft
	s.ending, s.soft, s.why = true, false, why
	var v *clientcore.VC
	if s.vc != nil {
		v = s.vc.v
	}
	lsap := s.lsap
	var calls []*clientcore.VC
	if soft { // the SAP is going already: close what calls it left
		for _, cv := range s.calls {
			calls = append(calls, cv.v)
		}
	}
	c.notifyLocked()
	c.mu.Unlock()
	switch {
	case s.kind == sessionCall && v != nil:
		v.Close(why.reason(), nil)
	case soft:
		for _, v := range calls {
			v.Close(why.reason(), nil)
		}
	case s.kind == sessionListen && lsap != nil:
		lsap.Close(why.reason())
	}
}

// deregisterSession ends a tagged listen session softly (its client's end
// frame): the SAP is deregistered and takes no more calls, the calls it
// took go on, and the session ends once they are gone.
func (c *Control) deregisterSession(s *session) {
	c.mu.Lock()
	if s.ending || s.finished {
		c.mu.Unlock()
		return
	}
	s.ending, s.soft, s.why = true, true, whyLocal
	lsap := s.lsap
	c.notifyLocked()
	c.mu.Unlock()
	if lsap != nil {
		lsap.Deregister()
	}
}

// maybeFinishListenLocked finishes an ending listen session once its SAP
// and its calls are gone.
func (c *Control) maybeFinishListenLocked(s *session) {
	if !s.ending || s.finished || len(s.calls) > 0 || !s.sapGone {
		return
	}
	var info CloseInfo
	switch s.why {
	case whyShutdown:
		info = CloseInfo{Normal: true, By: ByNode, Text: "listen ended: the node is shutting down"}
	case whyWithdraw:
		info = CloseInfo{By: ByNode, Text: "listen ended: the call manager withdrew its address family"}
	case whyOverflow:
		info = CloseInfo{By: ByNode, Text: "listen ended: " + overflowText}
	default:
		info = CloseInfo{Normal: true, By: ByLocal, Text: "listen ended"}
	}
	c.finishLocked(s, info)
}

// finishLocked ends a session: its close frame is the last frame.
func (c *Control) finishLocked(s *session, info CloseInfo) {
	if s.finished {
		return
	}
	s.finished = true
	delete(c.sessions, s)
	s.out.pushClose(info)
	c.notifyLocked()
}

// String describes the Control's state, for problem reports.
func (c *Control) String() string {
	core := c.core.String()
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "control: down %v, %d session(s)\n", c.down, len(c.sessions))
	for s := range c.sessions {
		fmt.Fprintf(&b, "  %v session: ending %v finished %v sap gone %v calls %d\n", s.kind, s.ending, s.finished, s.sapGone, len(s.calls))
	}
	b.WriteString(core)
	return b.String()
}
