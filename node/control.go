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

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Control is the node's control plane: a CoNDIS client, bound to the call
// manager's adapter through the public ndis API only, that makes and
// accepts calls for the sessions of the control socket (see the package
// documentation for the protocol).
//
// Concurrency. Handlers only record what happened, under a short lock, and
// queue the follow-up on the Control's worker goroutine; they never block
// and never hold that lock while calling the mediator. The worker issues
// every control request (open and close the AF, register and deregister
// SAPs, make, close and delete calls), one at a time. The data path does
// not go through the worker: a session's reader goroutine sends SDUs, and
// the receive handler queues received SDUs for the session's writer
// goroutine (or, for an echo listener, sends them back at once).
//
// Contract. A call is closed only once every send on its VC has completed
// (R-CLOSE-1); ProtocolClIncomingCloseCall is always answered with
// NdisClCloseCall (R-CLOSE-14); the VCs the Control creates are deleted
// once their call failed or closed (R-CLOSE-12); received lists are
// returned before the receive handler returns (R-DATA-6); a notify-close
// of the AF closes every call, deregisters every SAP and then closes the
// AF (R-AF-19).
type Control struct {
	cm       CallManager
	deferred func() // the call manager's DeferredWork, or nothing
	log      *slog.Logger
	name     string
	started  time.Time

	b *ndis.Binding // set in BindAdapter's bind function, then read-only

	ctx    context.Context // ends when Shutdown gives up or is done
	cancel context.CancelFunc

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when the state changes and someone waits on it
	watched  bool          // an await holds changed
	af       afState
	sessions map[*session]struct{}  // started and not finished
	benches  map[*benchRun]struct{} // bench requests not yet ended
	vcs      map[*vcState]struct{}  // every VC the Control has a context for
	conns    map[net.Conn]*session  // every open control connection, and its session once it has one
	lns      map[net.Listener]struct{}
	down     bool // Close has begun
	unbound  bool
	withdrew bool // the call manager withdrew the AF (and has not offered it again)

	wmu   sync.Mutex
	queue []func()
	wake  chan struct{}
	wstop chan struct{}
	wdone chan struct{}
	wg    sync.WaitGroup // connection goroutines
}

// afPhase is the state of the Control's open of the call manager's AF.
//
//	none --notify--> opening --ok--> open --notify-close--> withdrawn --empty--> closing --> none
//	opening --fail--> failed           open --Close, empty--> closing
type afPhase uint8

const (
	afNone afPhase = iota + 1
	afOpening
	afOpen
	afWithdrawn
	afClosing
	afFailed
)

func (p afPhase) String() string {
	return [...]string{"?", "none", "opening", "open", "withdrawn", "closing", "failed"}[p]
}

type afState struct {
	phase  afPhase
	h      *ndis.Af
	status ndis.Status // of a failed open
}

// vcPhase is the Control's view of a VC and its call.
//
//	outgoing: created --MakeCall--> making --ok--> connected --CloseCall--> closing --ok--> closed --DeleteVc--> deleted
//	          making --fail--> closed
//	incoming: offered --accept--> accepted --CallConnected--> connected --CloseCall--> closing --ok--> closed
//	          offered --reject--> closed; the call manager deletes the VC (ProtocolCoDeleteVc) --> deleted
type vcPhase uint8

const (
	vcCreated vcPhase = iota + 1
	vcMaking
	vcOffered
	vcAccepted
	vcConnected
	vcClosing
	vcClosed
	vcDeleted
)

func (p vcPhase) String() string {
	return [...]string{"?", "created", "making", "offered", "accepted", "connected", "closing", "closed", "deleted"}[p]
}

// closeWhy is why the Control closes (or closed) a call or ends a session.
type closeWhy uint8

const (
	whyNone     closeWhy = iota
	whyLocal             // end of input, or the listen session ended
	whyGone              // the client went away without saying so
	whyRemote            // the far end or the network closed it
	whyShutdown          // the node is shutting down
	whyWithdraw          // the call manager withdrew the address family
	whyOverflow          // the session went over its cap: its client does not read
	whyHangup            // a hangup request on the control socket
)

func (w closeWhy) String() string {
	return [...]string{"-", "local", "client gone", "remote", "shutdown", "withdrawn", "overflow", "hangup"}[w]
}

// overflowText says why a session that went over its cap ended.
var overflowText = fmt.Sprintf("the client did not read what the node sent it (more than %d MiB queued)", maxQueued>>20)

// vcState is the Control's context for a VC.
type vcState struct {
	h        *ndis.Vc
	name     string
	incoming bool
	s        *session  // its session; for an incoming VC, set once the call is accepted
	bench    *benchRun // the bench request that made it (then s is nil)
	madeAt   time.Time // a bench call's NdisClMakeCall
	peer     string
	service  string

	phase       vcPhase
	beforeClose vcPhase    // the phase NdisClCloseCall was issued in
	flows       *callFlows // granted (outgoing) or offered (incoming) flowspecs, a copy; nil if unknown
	maxSDU      int
	sendsOut    int      // lists handed to NdisCoSendNetBufferLists and not completed
	held        [][]byte // an echo listener's SDUs received before CallConnected

	failStatus ndis.Status // a failed MakeCall
	wasUp      bool        // the call was connected
	why        closeWhy
	wantClose  bool        // close the call as soon as sends have completed
	closeSt    ndis.Status // ProtocolClIncomingCloseCall's status
	cause      uni.Cause
	// closeRefused is the status NdisClCloseCall was refused with, if it
	// was (a hangup request waiting for the close is told).
	closeRefused ndis.Status

	// What the Control sent: SDUs completed, and of them those the call
	// manager dropped by policing (NDIS_STATUS_RESOURCES).
	sent, policed uint64

	// A point-to-multipoint call the Control made (vcops.go).
	multipoint bool
	reliable   bool
	parties    []*vcParty    // its leaves not gone yet
	initial    []*vcParty    // the leaves its call session asked for, in order
	more       []string      // of those, the ones still to add once the call is up
	settling   int           // of those, how many are not yet added or failed
	qos        chan Response // a modify request waiting for its ModifyCallQoSComplete

	// linger after end of input
	inputEnded bool
	endAt      time.Time
	quietAt    time.Time // last receive or send completion
	linger     time.Duration
	timer      *time.Timer
}

// Options configure a Control.
type Options struct {
	// Name is the name the Control binds with (default "control").
	Name string
	// Logger receives what the control plane does, at Debug level, and its
	// problems, at Warn; nil discards.
	Logger *slog.Logger
}

// NewControl binds a Control to cm's adapter as a CoNDIS client and waits,
// until ctx ends, for it to open cm's address family. It serves nothing
// until Serve is called.
func NewControl(ctx context.Context, cm CallManager, opts Options) (*Control, error) {
	if opts.Name == "" {
		opts.Name = "control"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := cm.Adapter()
	if a == nil || a.Mediator() == nil {
		return nil, errors.New("control: the call manager has no adapter")
	}
	c := &Control{
		cm: cm, log: opts.Logger, name: opts.Name, deferred: func() {}, started: time.Now(),
		changed:  make(chan struct{}),
		af:       afState{phase: afNone},
		sessions: map[*session]struct{}{}, vcs: map[*vcState]struct{}{}, benches: map[*benchRun]struct{}{},
		conns: map[net.Conn]*session{}, lns: map[net.Listener]struct{}{},
		wake: make(chan struct{}, 1), wstop: make(chan struct{}), wdone: make(chan struct{}),
	}
	if d, ok := cm.(DeferredWork); ok {
		c.deferred = d.RunDeferred
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.worker()
	_, st := a.Mediator().BindAdapter(a, c.name, c, c, func(b *ndis.Binding) ndis.Status {
		c.b = b
		return ndis.StatusSuccess
	})
	if st != ndis.StatusSuccess {
		c.stopWorker()
		c.cancel()
		return nil, fmt.Errorf("control: binding to %v: %v", a, st)
	}
	c.poke()
	err := c.await(ctx, func() bool { return c.af.phase != afNone && c.af.phase != afOpening })
	c.mu.Lock()
	phase, ast := c.af.phase, c.af.status
	c.mu.Unlock()
	if err == nil && phase != afOpen {
		err = fmt.Errorf("control: opening the address family: %v", ast)
	}
	if err != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		cerr := c.Shutdown(sctx)
		cancel()
		if cerr != nil {
			c.log.Warn("control: shutdown after a failed start", "err", cerr)
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("control: the call manager did not open its address family: %w", err)
		}
		return nil, err
	}
	return c, nil
}

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
		c.post(c.shutdownSessions)
	}
	err := c.await(ctx, func() bool {
		return len(c.sessions) == 0 && len(c.vcs) == 0 &&
			(c.af.phase == afNone || c.af.phase == afFailed)
	})
	if err == nil {
		c.mu.Lock()
		unbind := !c.unbound
		c.unbound = true
		c.mu.Unlock()
		if unbind {
			if st := c.b.CloseAdapterEx(); st != ndis.StatusSuccess {
				err = fmt.Errorf("control: unbinding: %v", st)
			}
		}
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
	c.stopWorker()
	return err
}

// shutdownSessions ends every session and bench (worker).
func (c *Control) shutdownSessions() {
	c.stopBenches("the node is shutting down")
	for _, s := range c.sessionList() {
		c.endSession(s, whyShutdown)
	}
}

// sessionList lists the sessions, call sessions first: a call whose far
// end is a listen session of this node then learns why it ends from its
// own session, not as a remote close.
func (c *Control) sessionList() []*session {
	c.mu.Lock()
	defer c.mu.Unlock()
	var calls, listens []*session
	for s := range c.sessions {
		if s.kind == sessionCall {
			calls = append(calls, s)
		} else {
			listens = append(listens, s)
		}
	}
	return append(calls, listens...)
}

// --- the worker ---

func (c *Control) worker() {
	defer close(c.wdone)
	for {
		select {
		case <-c.wake:
		case <-c.wstop:
			return
		}
		for {
			c.wmu.Lock()
			if len(c.queue) == 0 {
				c.queue = nil
				c.wmu.Unlock()
				break
			}
			f := c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
			c.wmu.Unlock()
			f()
			c.deferred()
		}
		c.deferred()
		c.tendAf()
		c.deferred()
	}
}

// post queues f for the worker. It never blocks.
func (c *Control) post(f func()) {
	c.wmu.Lock()
	c.queue = append(c.queue, f)
	c.wmu.Unlock()
	c.poke()
}

// poke wakes the worker even with nothing queued: it runs the call
// manager's deferred work and looks at the AF again (tendAf).
func (c *Control) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Control) stopWorker() {
	select {
	case <-c.wstop:
	default:
		close(c.wstop)
	}
	<-c.wdone
}

// notifyLocked wakes everyone waiting in await. With nobody waiting it
// costs nothing: state changes happen several times per call.
func (c *Control) notifyLocked() {
	if !c.watched {
		return
	}
	close(c.changed)
	c.changed = make(chan struct{})
	c.watched = false
}

// await waits until cond (called with c.mu held) holds, or ctx ends.
func (c *Control) await(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		if cond() {
			c.mu.Unlock()
			return nil
		}
		ch := c.changed
		c.watched = true
		c.mu.Unlock()
		c.poke()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// --- the address family ---

// openAf opens the call manager's AF (worker).
func (c *Control) openAf() {
	c.mu.Lock()
	if c.down || (c.af.phase != afNone && c.af.phase != afFailed) {
		c.mu.Unlock()
		return
	}
	c.af = afState{phase: afOpening}
	c.withdrew = false
	c.mu.Unlock()
	h, st := c.b.ClOpenAddressFamilyEx(c.cm.AddressFamily(), c)
	if st != ndis.StatusPending {
		c.openAfDone(h, st)
	}
}

func (c *Control) openAfDone(h *ndis.Af, st ndis.Status) {
	c.mu.Lock()
	if c.af.phase == afOpening { // not already settled by an early completion
		if st == ndis.StatusSuccess {
			c.af = afState{phase: afOpen, h: h}
		} else {
			c.af = afState{phase: afFailed, status: st}
		}
	}
	c.notifyLocked()
	c.mu.Unlock()
	c.log.Debug("control: address family", "status", st)
	c.poke() // a Close may be waiting to close it
}

// tendAf closes the AF once it must go (Close, or the call manager's
// notify-close) and nothing is left on it (R-AF-12) (worker).
func (c *Control) tendAf() {
	c.mu.Lock()
	want := c.af.phase == afWithdrawn || (c.down && c.af.phase == afOpen)
	if !want || len(c.sessions) > 0 || !c.afEmptyLocked() {
		c.mu.Unlock()
		return
	}
	h := c.af.h
	c.af.phase = afClosing
	c.mu.Unlock()
	st := c.b.ClCloseAddressFamily(h)
	if st != ndis.StatusPending {
		c.closeAfDone(st)
	}
}

// afEmptyLocked: no VC of ours, and no call on a call manager's VC, is left
// on the AF. Incoming VCs whose call is over are the call manager's to
// delete; it finishes the close of the AF once it has (R-AF-15).
func (c *Control) afEmptyLocked() bool {
	for v := range c.vcs {
		if !v.incoming || (v.phase != vcOffered && v.phase != vcClosed && v.phase != vcDeleted) {
			return false
		}
	}
	return true
}

func (c *Control) closeAfDone(st ndis.Status) {
	c.mu.Lock()
	if st == ndis.StatusSuccess {
		c.af = afState{phase: afNone}
	} else {
		// NOT_ACCEPTED: the call manager keeps the AF open. Nothing more
		// can be done from here; the Control stops trying.
		c.log.Warn("control: closing the address family", "status", st)
		c.af = afState{phase: afFailed, status: st}
	}
	c.notifyLocked()
	c.mu.Unlock()
}

// withdraw ends every session because the call manager withdrew the AF
// (worker); tendAf closes the AF once they are gone.
func (c *Control) withdraw() {
	c.markWithdrawn()
	c.stopBenches("the call manager withdrew its address family")
	for _, s := range c.sessionList() {
		c.endSession(s, whyWithdraw)
	}
}

// usableAfLocked returns the open AF, or why there is none.
func (c *Control) usableAfLocked() (*ndis.Af, string) {
	switch {
	case c.down:
		return nil, "the node is shutting down"
	case c.af.phase == afOpen:
		return c.af.h, ""
	case c.af.phase == afWithdrawn || c.withdrew:
		return nil, "the call manager withdrew its address family"
	case c.af.phase == afFailed:
		return nil, fmt.Sprintf("the address family could not be opened (%v)", c.af.status)
	}
	return nil, "the call manager has not registered its address family"
}

// --- calls ---

// progress issues the next request v's state calls for, if any: close the
// call once that is wanted and every send has completed (R-CLOSE-1), delete
// an outgoing VC once its call is over (worker).
func (c *Control) progress(v *vcState) {
	c.mu.Lock()
	switch {
	case v.wantClose && v.sendsOut == 0 && (v.phase == vcConnected || v.phase == vcAccepted):
		var last *ndis.Party
		if v.multipoint {
			// A multipoint call is closed with its last party (R-CLOSE-4,
			// R-CLOSE-5): the others are dropped first, and adds and drops
			// in progress complete first; their completions come back here.
			var drop []*vcParty
			var ready bool
			if last, drop, ready = c.lastPartyLocked(v); !ready {
				c.mu.Unlock()
				for _, p := range drop {
					c.issueDrop(p)
				}
				return
			}
		}
		prev := v.phase
		v.phase, v.beforeClose = vcClosing, prev
		c.stopTimerLocked(v)
		c.mu.Unlock()
		st := c.b.ClCloseCall(v.h, last, nil)
		switch st {
		case ndis.StatusPending:
		case ndis.StatusSuccess:
			c.closeCallDone(v, st)
		default:
			c.log.Warn("control: NdisClCloseCall refused", "vc", v.name, "status", st)
			c.mu.Lock()
			if v.phase == vcClosing {
				v.phase = prev
			}
			v.closeRefused = st
			c.notifyLocked()
			c.mu.Unlock()
		}
	case v.phase == vcClosed && !v.incoming:
		c.mu.Unlock()
		st := c.b.CoDeleteVc(v.h)
		if st != ndis.StatusSuccess {
			c.log.Warn("control: NdisCoDeleteVc refused", "vc", v.name, "status", st)
			return
		}
		c.mu.Lock()
		c.vcGoneLocked(v)
		c.mu.Unlock()
	default:
		c.mu.Unlock()
	}
}

func (c *Control) closeCallDone(v *vcState, st ndis.Status) {
	c.mu.Lock()
	if v.phase != vcClosing {
		c.mu.Unlock()
		return
	}
	if st != ndis.StatusSuccess {
		c.log.Warn("control: close of a call failed", "vc", v.name, "status", st)
		v.phase = v.beforeClose // the call goes on, as the mediator restores it
		v.closeRefused = st
		c.notifyLocked()
		c.mu.Unlock()
		return
	}
	v.phase = vcClosed
	c.callOverLocked(v)
	c.notifyLocked()
	c.mu.Unlock()
	c.post(func() { c.progress(v) })
}

// wantCloseLocked asks for v's call to be closed, for why, unless it is
// already going.
func (c *Control) wantCloseLocked(v *vcState, why closeWhy) {
	if v.why == whyNone {
		v.why = why
	}
	v.wantClose = true
}

// vcGoneLocked forgets a deleted VC and tells its session.
func (c *Control) vcGoneLocked(v *vcState) {
	v.phase = vcDeleted
	c.stopTimerLocked(v)
	delete(c.vcs, v)
	s := v.s
	c.notifyLocked()
	if v.bench != nil {
		c.benchGoneLocked(v)
	}
	if s == nil {
		return
	}
	switch s.kind {
	case sessionCall:
		c.finishLocked(s, v.closeInfo())
	case sessionListen:
		if _, ok := s.calls[v]; ok {
			delete(s.calls, v)
			if v.wasUp {
				info := v.closeInfo()
				s.out.pushEvent(Event{Event: EventClosed, Vc: v.name, Peer: v.peer, CloseInfo: &info})
			}
		}
		c.maybeFinishListenLocked(s)
	}
}

// closeInfo says how v's call ended, for its session, and what was sent
// on it.
func (v *vcState) closeInfo() CloseInfo {
	info := v.closeReason()
	info.Sent, info.Policed = v.sent, v.policed
	return info
}

// closeReason says how v's call ended.
func (v *vcState) closeReason() CloseInfo {
	switch v.why {
	case whyRemote:
		if v.closeSt == ndis.StatusSuccess {
			return CloseInfo{Normal: true, By: ByRemote, Status: v.closeSt.String(), Cause: int(v.cause), CauseText: causeText(v.cause),
				Text: "call closed by the far end"}
		}
		return CloseInfo{By: ByRemote, Status: v.closeSt.String(), Cause: int(v.cause), CauseText: causeText(v.cause),
			Text: "call closed: " + describe(v.closeSt, v.cause)}
	case whyShutdown:
		return CloseInfo{Normal: true, By: ByNode, Text: "call closed: the node is shutting down"}
	case whyWithdraw:
		return CloseInfo{By: ByNode, Text: "call closed: the call manager withdrew its address family"}
	case whyOverflow:
		return CloseInfo{By: ByNode, Text: "call closed: " + overflowText}
	case whyHangup:
		return CloseInfo{Normal: true, By: ByHangup, Text: "call " + v.name + " hung up on this node (condis hangup)"}
	}
	return CloseInfo{Normal: true, By: ByLocal, Text: "call closed"}
}

// startCall creates a VC and makes the call a session asked for (worker).
// The session learns the outcome through its VC's phase, or s.startErr.
func (c *Control) startCall(s *session, req *Request) {
	fail := func(r Response) {
		c.mu.Lock()
		s.startErr = &r
		c.notifyLocked()
		c.mu.Unlock()
	}
	tx, err := req.Tx.Ndis()
	if err == nil {
		var rx ndis.Flowspec
		if rx, err = req.Rx.Ndis(); err == nil {
			var params *ndis.CallParameters
			if params, err = c.cm.CallParams(req.Dest, tx, rx, req.Reliable); err == nil {
				c.makeCall(s, req, params, fail)
				return
			}
		}
	}
	fail(Response{Error: fmt.Sprintf("call %s: %v", req.Dest, err)})
}

func (c *Control) makeCall(s *session, req *Request, params *ndis.CallParameters, fail func(Response)) {
	c.mu.Lock()
	af, why := c.usableAfLocked()
	if af == nil {
		c.mu.Unlock()
		fail(Response{Error: fmt.Sprintf("call %s: %s", req.Dest, why)})
		return
	}
	v := &vcState{s: s, service: req.Dest, phase: vcCreated, linger: time.Duration(req.LingerMs) * time.Millisecond, reliable: req.Reliable}
	if n, svc, ok := strings.Cut(req.Dest, "/"); ok {
		v.peer, v.service = n, svc
	}
	var first *vcParty // the first leaf of a multipoint call: its party context
	if req.Multipoint || len(req.Parties) > 0 {
		first = c.multipointLocked(v, req)
	}
	s.vc = v
	c.sessions[s] = struct{}{}
	c.mu.Unlock()

	h, st := c.b.CoCreateVc(af, v)
	if st != ndis.StatusSuccess {
		c.mu.Lock()
		delete(c.sessions, s)
		s.vc = nil
		c.mu.Unlock()
		fail(Response{Error: fmt.Sprintf("call %s: NdisCoCreateVc: %v", req.Dest, st), Status: st.String()})
		return
	}
	c.mu.Lock()
	v.h, v.name = h, h.String()
	c.vcs[v] = struct{}{}
	v.phase = vcMaking // before the request: its completion may come first (R-GEN-10)
	c.mu.Unlock()
	var ph *ndis.Party
	if first != nil {
		ph, st = c.b.ClMakeCall(h, params, first)
	} else {
		_, st = c.b.ClMakeCall(h, params, nil)
	}
	if st != ndis.StatusPending {
		c.makeCallDone(v, st, params, ph)
	}
}

// makeCallDone records a MakeCall's outcome (any goroutine); ph is the
// initial party of a multipoint call.
func (c *Control) makeCallDone(v *vcState, st ndis.Status, params *ndis.CallParameters, ph *ndis.Party) {
	var cause uni.Cause
	if st != ndis.StatusSuccess {
		cause = c.cm.Cause(v.h, st)
	}
	c.mu.Lock()
	if v.phase != vcMaking {
		c.mu.Unlock()
		return
	}
	if st == ndis.StatusSuccess {
		v.phase = vcConnected
		v.wasUp = true
		if v.bench == nil { // a bench call sends nothing and is closed at once
			v.flows = flowsOf(params)
			v.maxSDU = v.flows.maxSDU()
			v.quietAt = time.Now()
		}
	} else {
		v.phase = vcClosed
		v.failStatus, v.cause = st, cause
	}
	if v.bench != nil {
		c.benchMadeLocked(v, st, cause)
	}
	if v.multipoint {
		c.firstPartyLocked(v, st, cause, ph)
	}
	again := st != ndis.StatusSuccess || v.wantClose
	c.notifyLocked()
	c.mu.Unlock()
	if again {
		c.post(func() { c.progress(v) })
	}
}

// callFlows are the flowspecs of a call, as its session and `condis calls`
// report them. The Control keeps these, not a clone of the whole call
// parameters (R-IN-10 asks for a copy of what is kept): that was three
// allocations per call.
type callFlows struct{ tx, rx ndis.Flowspec }

// flowsOf copies the flowspecs of p; nil if it has none.
func flowsOf(p *ndis.CallParameters) *callFlows {
	if p == nil || p.CallMgrParameters == nil {
		return nil
	}
	return &callFlows{p.CallMgrParameters.Transmit, p.CallMgrParameters.Receive}
}

// maxSDU is the largest SDU the caller may send on a call with flows f.
func (f *callFlows) maxSDU() int {
	n := uint32(DefaultMaxSDU)
	if f != nil {
		if m := f.tx.MaxSduSize; m != 0 && m != ndis.QoSNotSpecified {
			n = m
		}
	}
	if n > MaxFrame {
		n = MaxFrame
	}
	return int(n)
}

// send sends one SDU on a call session's VC (the session's reader). It
// returns a message for an error frame if the SDU is refused.
func (c *Control) send(v *vcState, sdu []byte) string {
	c.mu.Lock()
	if v.phase != vcConnected || v.wantClose || v.inputEnded {
		c.mu.Unlock()
		return "" // the call is going away; its close frame says why
	}
	if len(sdu) > v.maxSDU {
		c.mu.Unlock()
		return fmt.Sprintf("SDU of %d octets refused: larger than the call's MaxSduSize (%d); not sent", len(sdu), v.maxSDU)
	}
	v.sendsOut++
	c.mu.Unlock()
	c.b.CoSendNetBufferLists(v.h, &ndis.NetBufferList{Data: sdu, Context: v}, 0)
	c.poke() // completions may be deferred work
	return ""
}

// inputEnded: the client of a call session sent its end frame (worker).
func (c *Control) inputEnded(v *vcState) {
	c.mu.Lock()
	if v.inputEnded {
		c.mu.Unlock()
		return
	}
	v.inputEnded = true
	now := time.Now()
	v.endAt = now
	if v.phase == vcConnected && !v.wantClose && v.linger > 0 {
		c.armLingerLocked(v, now)
		c.mu.Unlock()
		return
	}
	c.wantCloseLocked(v, whyLocal)
	c.mu.Unlock()
	c.progress(v)
}

// armLingerLocked (re)arms v's linger timer: the call is closed once every
// send has completed and nothing has been received for v.linger, and at
// the latest 10 × v.linger after the end of input.
func (c *Control) armLingerLocked(v *vcState, now time.Time) {
	if v.wantClose || v.phase != vcConnected {
		return
	}
	quiet := later(v.quietAt, v.endAt)
	due := quiet.Add(v.linger)
	if deadline := v.endAt.Add(10 * v.linger); deadline.Before(due) {
		due = deadline
	}
	if v.sendsOut == 0 && !now.Before(due) {
		c.wantCloseLocked(v, whyLocal)
		c.post(func() { c.progress(v) })
		return
	}
	wait := due.Sub(now)
	if v.sendsOut > 0 && wait <= 0 {
		return // the last send completion re-arms it
	}
	c.stopTimerLocked(v)
	v.timer = time.AfterFunc(wait, func() {
		c.post(func() {
			c.mu.Lock()
			c.armLingerLocked(v, time.Now())
			c.mu.Unlock()
		})
	})
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (c *Control) stopTimerLocked(v *vcState) {
	if v.timer != nil {
		v.timer.Stop()
		v.timer = nil
	}
}

// --- listen ---

// startListen registers the SAP a session asked for (worker).
func (c *Control) startListen(s *session) {
	fail := func(r Response) {
		c.mu.Lock()
		s.startErr = &r
		c.notifyLocked()
		c.mu.Unlock()
	}
	coSap, err := c.cm.ServiceSap(s.service)
	if err != nil {
		fail(Response{Error: fmt.Sprintf("listen %s: %v", s.service, err)})
		return
	}
	c.mu.Lock()
	af, why := c.usableAfLocked()
	if af == nil {
		c.mu.Unlock()
		fail(Response{Error: fmt.Sprintf("listen %s: %s", s.service, why)})
		return
	}
	s.sapPhase = sapRegistering
	c.sessions[s] = struct{}{}
	c.mu.Unlock()
	h, st := c.b.ClRegisterSap(af, s, coSap)
	if st != ndis.StatusPending {
		c.registerSapDone(s, h, st)
	}
}

// sapPhase is the state of a listen session's SAP.
type sapPhase uint8

const (
	sapNone sapPhase = iota
	sapRegistering
	sapRegistered
	sapDeregistering
	sapDead
)

func (c *Control) registerSapDone(s *session, h *ndis.Sap, st ndis.Status) {
	c.mu.Lock()
	if s.sapPhase != sapRegistering {
		c.mu.Unlock()
		return
	}
	if st == ndis.StatusSuccess {
		s.sap, s.sapPhase = h, sapRegistered
	} else {
		s.sapPhase, s.sapStatus = sapDead, st
		delete(c.sessions, s)
		if !s.ending {
			s.startErr = &Response{Error: fmt.Sprintf("listen %s: the call manager refused the SAP: %v%s", s.service, st, sapHint(st)),
				Status: st.String()}
		}
	}
	ending := s.ending
	c.notifyLocked()
	c.mu.Unlock()
	if ending && st == ndis.StatusSuccess {
		c.post(func() { c.deregister(s) })
	}
	c.mu.Lock()
	c.maybeFinishListenLocked(s)
	c.mu.Unlock()
}

func sapHint(st ndis.Status) string {
	switch st {
	case ndis.StatusInvalidData, ndis.StatusSapInUse:
		return " (is the service already registered?)"
	}
	return ""
}

// deregister deregisters a listen session's SAP once it is registered (worker).
func (c *Control) deregister(s *session) {
	c.mu.Lock()
	if s.sapPhase != sapRegistered {
		c.mu.Unlock()
		return
	}
	s.sapPhase = sapDeregistering
	h := s.sap
	c.mu.Unlock()
	if st := c.b.ClDeregisterSap(h); st != ndis.StatusPending {
		c.deregisterSapDone(s, st)
	}
}

func (c *Control) deregisterSapDone(s *session, st ndis.Status) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.sapPhase != sapDeregistering {
		return
	}
	if st != ndis.StatusSuccess {
		c.log.Warn("control: deregistering a SAP", "service", s.service, "status", st)
		s.sapPhase = sapRegistered
		return
	}
	s.sapPhase = sapDead
	c.maybeFinishListenLocked(s)
}

// endSession ends a session for why (worker): a call session closes its
// call; a listen session deregisters its SAP and closes its calls.
func (c *Control) endSession(s *session, why closeWhy) {
	c.mu.Lock()
	if s.ending || s.finished {
		c.mu.Unlock()
		return
	}
	s.ending, s.why = true, why
	var vcs []*vcState
	switch s.kind {
	case sessionCall:
		if v := s.vc; v != nil {
			c.wantCloseLocked(v, why)
			vcs = append(vcs, v)
		}
	case sessionListen:
		for v := range s.calls {
			c.wantCloseLocked(v, why)
			vcs = append(vcs, v)
		}
	}
	c.notifyLocked()
	c.mu.Unlock()
	for _, v := range vcs {
		c.progress(v)
	}
	if s.kind == sessionListen {
		c.deregister(s)
		c.mu.Lock()
		c.maybeFinishListenLocked(s)
		c.mu.Unlock()
	}
}

// maybeFinishListenLocked finishes an ending listen session once its SAP
// and its calls are gone.
func (c *Control) maybeFinishListenLocked(s *session) {
	if !s.ending || s.finished || len(s.calls) > 0 {
		return
	}
	if s.sapPhase != sapDead && s.sapPhase != sapNone {
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
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "control: af %v, down %v, %d session(s), %d VC(s)\n", c.af.phase, c.down, len(c.sessions), len(c.vcs))
	for s := range c.sessions {
		fmt.Fprintf(&b, "  %v session: ending %v finished %v sap %d calls %d\n", s.kind, s.ending, s.finished, s.sapPhase, len(s.calls))
	}
	for v := range c.vcs {
		fmt.Fprintf(&b, "  %s incoming %v phase %v sends %d wantClose %v why %v inputEnded %v\n", v.name, v.incoming, v.phase, v.sendsOut, v.wantClose, v.why, v.inputEnded)
	}
	return b.String()
}
