package clientcore

import (
	"context"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Phase is the Core's view of a VC and its call.
//
//	outgoing: created --MakeCall--> making --ok--> connected --CloseCall--> closing --ok--> closed --DeleteVc--> deleted
//	          making --fail--> closed
//	incoming: offered --accept--> accepted --CallConnected--> connected --CloseCall--> closing --ok--> closed
//	          offered --reject--> closed; the call manager deletes the VC (ProtocolCoDeleteVc) --> deleted
type Phase uint8

// The phases of a VC.
const (
	PhaseCreated Phase = iota + 1
	PhaseMaking
	PhaseOffered
	PhaseAccepted
	PhaseConnected
	PhaseClosing
	PhaseClosed
	PhaseDeleted
)

func (p Phase) String() string {
	if p > PhaseDeleted {
		return "?"
	}
	return [...]string{"?", "created", "making", "offered", "accepted", "connected", "closing", "closed", "deleted"}[p]
}

// Reason is why a call was closed or a SAP ended. Values from ReasonUser
// up are the user's own: the Core carries them from Close to End.
type Reason uint8

// The reasons the Core knows.
const (
	ReasonNone      Reason = iota
	ReasonLocal            // the user closed it
	ReasonRemote           // the far end or the network closed it
	ReasonShutdown         // the Core is shutting down
	ReasonWithdrawn        // the call manager withdrew the address family
	ReasonUser             // the first of the user's own reasons
)

// Flows are the flowspecs of a call: granted (outgoing) or offered
// (incoming), as the call manager gave them. The *Flows the Core hands
// out are read-only: they are never changed (a QoS change gives the call
// new ones), and calls with the same flowspecs share them.
type Flows struct{ Tx, Rx ndis.Flowspec }

// DefaultMaxSDU is the SDU limit of a call whose transmit MaxSduSize is not
// specified: the largest AAL5 CPCS-SDU.
const DefaultMaxSDU = 65535

// MaxSDU is the largest SDU the local end may send on a call with flows f.
func (f *Flows) MaxSDU() int {
	n := uint32(DefaultMaxSDU)
	if f != nil {
		if m := f.Tx.MaxSduSize; m != 0 && m != ndis.QoSNotSpecified {
			n = m
		}
	}
	return int(min(n, 1<<31-1))
}

// Handler is told what happens to one VC. See the package documentation
// for which methods are called with the Core's lock held.
type Handler interface {
	// Connected: the call is up (outgoing: NdisClMakeCall succeeded;
	// incoming: ProtocolClCallConnected). f are its flowspecs, nil if not
	// known; read-only (see Flows). Called with the lock held.
	Connected(v *VC, f *Flows)
	// Received: SDUs arrived on the VC; they are copies, the handler's to
	// keep (unless it is a [BorrowingHandler]). Called without the lock;
	// it may Send.
	Received(v *VC, sdus [][]byte)
	// SendsCompleted: n of the VC's sends completed. Called without the
	// lock.
	SendsCompleted(v *VC, n int)
	// QoSChanged: the call's flowspecs changed (the far end's
	// ProtocolClIncomingCallQoSChange, or the VC's own ModifyQoS). Called
	// with the lock held.
	QoSChanged(v *VC, f Flows)
	// PartyDropped: a leaf of the VC's multipoint call is gone: dropped by
	// DropParty, or it left and the Core answered with NdisClDropParty.
	// Called with the lock held.
	PartyDropped(p *Party, e PartyEnd)
	// Closed: the call is over and the VC is gone, or the call never came
	// up. Called exactly once per VC, with the lock held.
	Closed(v *VC, e End)
}

// BorrowingHandler is a [Handler] that takes received SDUs without the
// Core copying them first: the SDUs Received is given are the indicated
// lists' own data, valid only until Received returns. A handler that
// copies what it keeps anyway (IP over condis queues each packet for its
// device) saves a copy per SDU.
type BorrowingHandler interface {
	Handler
	// BorrowsReceived is a marker: the handler's Received does not keep
	// the SDUs it is given.
	BorrowsReceived()
}

// NopHandler does nothing; embed it to implement only some of [Handler].
type NopHandler struct{}

// Connected does nothing.
func (NopHandler) Connected(*VC, *Flows) {}

// Received does nothing.
func (NopHandler) Received(*VC, [][]byte) {}

// SendsCompleted does nothing.
func (NopHandler) SendsCompleted(*VC, int) {}

// QoSChanged does nothing.
func (NopHandler) QoSChanged(*VC, Flows) {}

// PartyDropped does nothing.
func (NopHandler) PartyDropped(*Party, PartyEnd) {}

// Closed does nothing.
func (NopHandler) Closed(*VC, End) {}

// End says how a VC's call ended.
type End struct {
	// Reason is why: the reason its Close was given, ReasonRemote if the
	// far end or the network closed it, ReasonNone if it never came up.
	Reason Reason
	// Err is why a call never came up: a *CallError (NdisClMakeCall
	// failed), or the error that kept it from being made (the
	// destination, the address family, NdisCoCreateVc).
	Err error
	// Status and Cause are the close status of ProtocolClIncomingCloseCall
	// and the Q.2931 cause behind it (ReasonRemote).
	Status ndis.Status
	Cause  uni.Cause
	// WasUp: the call was connected.
	WasUp bool
	// Sent counts the SDUs whose sends completed; Policed those of them the
	// call manager dropped by policing (NDIS_STATUS_RESOURCES).
	Sent, Policed uint64
}

// CallOptions are what a call asks for.
type CallOptions struct {
	// Tx and Rx are the flowspecs asked for, in the caller's direction.
	Tx, Rx ndis.Flowspec
	// Reliable asks for reliable delivery (the MCM carries the VC on a
	// QUIC stream).
	Reliable bool
	// Multipoint makes the call point-to-multipoint: the destination is
	// its first leaf, more are added with AddParty.
	Multipoint bool
}

// VC is the Core's context for one VC and its call. Its fields are guarded
// by the Core's lock; the accessors say which may be read anywhere.
//
// A node holds one per call for as long as the call is up, so the VC keeps
// inline only what every call uses; the rest (multipoint, EndInput, QoS
// changes, waiting closes, failures) is in more, allocated when first
// needed (issue 12: memory per held call).
type VC struct {
	c       *Core
	h       *ndis.Vc
	handler Handler
	sap     *SAP   // the SAP an incoming call came on, once accepted
	flows   *Flows // never changed in place: handlers keep it
	more    *vcMore
	// addr is the destination a call the Core made was asked for
	// ("node/service", as written), or "peer/service" for one it took;
	// the peer is addr[:cut], the service addr[cut+1:] (all of addr if
	// cut is -1).
	addr string
	seq  uint64

	sent     uint64
	maxSDU   int32
	sendsOut int32 // lists handed to NdisCoSendNetBufferLists and not completed
	closeSt  ndis.Status
	cut      int32
	at       int32 // its index in Core.vcs

	// nameLen is set (atomically, once) after name holds the VC's handle
	// as the mediator names it: Name is safe anywhere without a string
	// and a pointer to it per VC.
	nameLen atomic.Uint32
	name    [maxNameLen]byte

	phase       Phase
	beforeClose Phase
	reason      Reason
	cause       uni.Cause
	kind        vcKind // fixed at creation: read anywhere
	wasUp       bool
	wantClose   bool
	// closeIndicated: the call manager indicated the call's close
	// (ProtocolClIncomingCloseCall), so an accepted call is closed
	// without waiting for CallConnected.
	closeIndicated bool
	inputEnded     bool
}

// vcKind is what a VC is, fixed when it is created.
type vcKind uint8

const (
	vcIncoming vcKind = 1 << iota
	vcMultipoint
	vcReliable
)

// maxNameLen is the longest VC name the mediator gives: "vc#" and a
// uint64 in decimal.
const maxNameLen = len("vc#18446744073709551615")

// vcMore is the part of a VC that most calls never use.
type vcMore struct {
	// tx and rx are the flowspecs a multipoint call asked for: AddParty
	// asks for them too while the granted ones are not known.
	tx, rx ndis.Flowspec

	setupErr     error       // the call could not be made
	failStatus   ndis.Status // of a failed NdisClMakeCall
	closeRefused ndis.Status
	policed      uint64 // sends completed with NDIS_STATUS_RESOURCES
	closeDone    []func(ndis.Status)

	parties []*Party
	first   *Party // set before the VC is returned, never changed
	qos     func(f *Flows, err error)

	// closing after the end of input (EndInput)
	endAt   time.Time
	quietAt time.Time // last receive or send completion after the end of input
	linger  time.Duration
	timer   *time.Timer
}

// moreLocked returns v.more, allocating it if need be.
func (v *VC) moreLocked() *vcMore {
	if v.more == nil {
		v.more = &vcMore{}
	}
	return v.more
}

// setupErrLocked is why the call could not be made, nil if it could.
func (v *VC) setupErrLocked() error {
	if v.more == nil {
		return nil
	}
	return v.more.setupErr
}

// partiesLocked are the leaves of a multipoint call not yet gone.
func (v *VC) partiesLocked() []*Party {
	if v.more == nil {
		return nil
	}
	return v.more.parties
}

// policedLocked counts the sends the call manager dropped by policing.
func (v *VC) policedLocked() uint64 {
	if v.more == nil {
		return 0
	}
	return v.more.policed
}

// failStatusLocked is the status NdisClMakeCall failed with, 0 if it did
// not.
func (v *VC) failStatusLocked() ndis.Status {
	if v.more == nil {
		return 0
	}
	return v.more.failStatus
}

// qosBusyLocked: a ModifyQoS is in progress.
func (v *VC) qosBusyLocked() bool { return v.more != nil && v.more.qos != nil }

// setName records v's handle's name, once.
func (v *VC) setName(h *ndis.Vc) {
	n := len(h.AppendName(v.name[:0])) // fits: maxNameLen is the longest
	v.nameLen.Store(uint32(n))
}

var vcSeq atomic.Uint64

// Name is the VC's handle as the mediator names it ("vc#7"), "" before
// NdisCoCreateVc returned it. Safe anywhere.
func (v *VC) Name() string {
	n := v.nameLen.Load()
	if n == 0 {
		return ""
	}
	// name is written once, before nameLen: the string never changes.
	return unsafe.String(&v.name[0], n)
}

// Handle is the VC's mediator handle, nil before it is created. Not for
// handlers of other VCs: read under the Core's lock.
func (v *VC) Handle() *ndis.Vc {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	return v.h
}

// Incoming reports whether the call was offered to a SAP. Safe anywhere.
func (v *VC) Incoming() bool { return v.kind&vcIncoming != 0 }

// Peer is the far end's node: the destination's node for a call the Core
// made, the calling node (CallManager.Caller) for one it took. Safe
// anywhere.
func (v *VC) Peer() string {
	if v.cut < 0 {
		return ""
	}
	return v.addr[:v.cut]
}

// Service is the service called, or called into. Safe anywhere.
func (v *VC) Service() string { return v.addr[v.cut+1:] }

// Dest is the destination a call the Core made was asked for, as written;
// "" for an incoming call. Safe anywhere.
func (v *VC) Dest() string {
	if v.Incoming() {
		return ""
	}
	return v.addr
}

// Handler is the VC's handler. Safe anywhere.
func (v *VC) Handler() Handler { return v.handler }

// Multipoint reports whether the call is point-to-multipoint. Safe
// anywhere.
func (v *VC) Multipoint() bool { return v.kind&vcMultipoint != 0 }

// FirstParty is the first leaf of a multipoint call (its destination),
// nil for a point-to-point call. Safe anywhere.
func (v *VC) FirstParty() *Party {
	if !v.Multipoint() {
		return nil // v.more may be allocated meanwhile: not read here
	}
	return v.more.first // set before the VC was returned
}

// Reliable reports whether the call asked for reliable delivery. Safe
// anywhere.
func (v *VC) Reliable() bool { return v.kind&vcReliable != 0 }

// State is a snapshot of a VC.
type State struct {
	Phase Phase
	// Closing: a close was asked for (or is in progress).
	Closing bool
	// InputEnded: EndInput was called.
	InputEnded bool
	// Flows are the call's flowspecs, nil if not known.
	Flows *Flows
	// MaxSDU is the largest SDU Send takes.
	MaxSDU int
	// QoSBusy: a ModifyQoS is in progress.
	QoSBusy bool
	// WasUp: the call was connected.
	WasUp         bool
	Sent, Policed uint64
	// Parties are the leaves of a multipoint call not yet gone, in the
	// order they were added.
	Parties []*Party
	// First is the first leaf of a multipoint call (the destination).
	First *Party
}

// Words says what state the call is in, for people: "connected",
// "closing", "still being set up" or "over".
func (s State) Words() string {
	switch {
	case s.Closing || s.Phase == PhaseClosing:
		return "closing"
	case s.Phase == PhaseMaking || s.Phase == PhaseAccepted || s.Phase == PhaseCreated:
		return "still being set up"
	case s.Phase == PhaseConnected:
		return "connected"
	}
	return "over"
}

// Up reports whether the call is connected and no close was asked for.
func (s State) Up() bool { return s.Phase == PhaseConnected && !s.Closing }

// State returns a snapshot of v. Not in a handler.
func (v *VC) State() State {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	return v.stateLocked()
}

func (v *VC) stateLocked() State {
	var fl *Flows
	if v.flows != nil {
		f := *v.flows
		fl = &f
	}
	return State{Phase: v.phase, Closing: v.wantClose, InputEnded: v.inputEnded, Flows: fl, MaxSDU: int(v.maxSDU),
		QoSBusy: v.qosBusyLocked(), WasUp: v.wasUp, Sent: v.sent, Policed: v.policedLocked(),
		Parties: append([]*Party(nil), v.partiesLocked()...), First: v.FirstParty()}
}

// Info describes one of the Core's VCs ([Core.VCs]).
type Info struct {
	VC            *VC
	Name          string
	Peer, Service string
	Flows         *Flows
	Policed       uint64
	// Leaves maps the handles of a multipoint call's parties to their
	// destinations.
	Leaves map[string]string
}

// VCs describes every VC the Core holds a context for.
func (c *Core) VCs() []Info {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Info, 0, len(c.vcs))
	for _, v := range c.vcs {
		if v.h == nil {
			continue
		}
		in := Info{VC: v, Name: v.Name(), Peer: v.Peer(), Service: v.Service(), Flows: v.flows, Policed: v.policedLocked()}
		if ps := v.partiesLocked(); len(ps) > 0 {
			in.Leaves = make(map[string]string, len(ps))
			for _, p := range ps {
				in.Leaves[p.Name()] = p.dest
			}
		}
		out = append(out, in)
	}
	return out
}

// EachVC calls f for each VC the Core holds a context for, with the
// Core's lock held: f may call only what a handler may. Not in a handler.
func (c *Core) EachVC(f func(v *VC)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.vcs {
		f(v)
	}
}

// VC returns the Core's VC called name ("vc#7"), nil if it has none.
func (c *Core) VC(name string) *VC {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.vcs {
		if v.phase != PhaseDeleted && v.Name() == name {
			return v
		}
	}
	return nil
}

// --- making calls ---

// StartCall makes a call to dest ("node/service", as the call manager's
// CallParams takes it) on the worker and returns its VC at once; h learns
// the outcome: Connected, or Closed with End.Err saying why the call did
// not come up. Safe to call from a handler.
func (c *Core) StartCall(dest string, o CallOptions, h Handler) *VC {
	if h == nil {
		h = NopHandler{}
	}
	v := &VC{c: c, addr: dest, cut: int32(strings.IndexByte(dest, '/')), handler: h, phase: PhaseCreated, seq: vcSeq.Add(1)}
	if o.Multipoint {
		v.kind |= vcMultipoint
	}
	if o.Reliable {
		v.kind |= vcReliable
	}
	if o.Multipoint {
		m := v.moreLocked() // not yet shared
		m.tx, m.rx = o.Tx, o.Rx
		m.first = &Party{v: v, dest: dest, phase: PartyAdding}
		m.parties = []*Party{m.first}
	}
	c.starting.Add(1)
	c.postWork(work{v: v, fl: c.askedFlows(o.Tx, o.Rx), op: workMakeCall})
	return v
}

// Call makes a call to dest and waits until it is connected. If the call
// fails, the error is a *CallError (the network refused it) or why it
// could not be made; if ctx ends first, the call is closed (once its setup
// completes) and ctx's error returned. h is told everything that happens
// to the VC, including its Closed. Not in a handler.
func (c *Core) Call(ctx context.Context, dest string, o CallOptions, h Handler) (*VC, error) {
	v := c.StartCall(dest, o, h)
	err := c.await(ctx, func() bool {
		return v.wasUp || v.setupErrLocked() != nil || v.phase == PhaseClosed || v.phase == PhaseDeleted
	})
	if err == nil {
		err = ctx.Err() // the setup may have ended just as ctx did: ctx still wins
	}
	if err != nil {
		v.Close(ReasonLocal, nil)
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case v.setupErrLocked() != nil:
		return nil, v.setupErrLocked()
	case !v.wasUp:
		return nil, &CallError{Status: v.failStatusLocked(), Cause: v.cause}
	}
	return v, nil
}

// askedFlows is tx and rx as read-only Flows, shared with the calls that
// asked for the same before: queuing a call for the worker costs no copy
// of them. It takes no lock (StartCall is called from handlers).
func (c *Core) askedFlows(tx, rx ndis.Flowspec) *Flows {
	if f := c.asked.Load(); f != nil && f.Tx == tx && f.Rx == rx {
		return f
	}
	f := &Flows{tx, rx}
	c.asked.Store(f)
	return f
}

// setupFailed ends a call that could not be made: its handler is told.
func (c *Core) setupFailed(v *VC, err error) {
	c.mu.Lock()
	v.moreLocked().setupErr = err
	v.phase = PhaseDeleted
	c.starting.Add(-1)
	if p := v.FirstParty(); p != nil {
		p.err = err
	}
	c.callOverLocked(v)
	v.handler.Closed(v, End{Err: err})
	c.notifyLocked()
	c.mu.Unlock()
}

// makeCall creates v's VC and makes its call (worker).
func (c *Core) makeCall(v *VC, asked *Flows) {
	params, err := c.cm.CallParams(v.addr, asked.Tx, asked.Rx, v.Reliable())
	if err != nil {
		c.setupFailed(v, err)
		return
	}
	c.mu.Lock()
	af, err := c.usableAfLocked()
	if err == nil && v.wantClose {
		err = context.Canceled // closed before it was made
	}
	c.mu.Unlock()
	if err != nil {
		c.setupFailed(v, err)
		return
	}
	h, st := c.b.CoCreateVc(af, v)
	if st != ndis.StatusSuccess {
		c.setupFailed(v, &StatusError{Op: "NdisCoCreateVc", Status: st})
		return
	}
	v.setName(h)
	c.mu.Lock()
	v.h = h
	c.addVCLocked(v)
	c.starting.Add(-1)
	v.phase = PhaseMaking // before the request: its completion may come first (R-GEN-10)
	c.mu.Unlock()
	var ph *ndis.Party
	if first := v.FirstParty(); first != nil {
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
func (c *Core) makeCallDone(v *VC, st ndis.Status, params *ndis.CallParameters, ph *ndis.Party) {
	var cause uni.Cause
	if st != ndis.StatusSuccess {
		cause = c.cm.Cause(v.h, st)
	}
	c.mu.Lock()
	if v.phase != PhaseMaking {
		c.mu.Unlock()
		c.recycleParams(v, params)
		return
	}
	if st == ndis.StatusSuccess {
		v.phase = PhaseConnected
		v.wasUp = true
		v.flows = c.flowsLocked(params)
		v.maxSDU = int32(v.flows.MaxSDU())
	} else {
		v.phase = PhaseClosed
		v.moreLocked().failStatus, v.cause = st, cause
	}
	if p := v.FirstParty(); p != nil {
		if ph != nil {
			p.h = ph
			p.setName()
		}
		if st != ndis.StatusSuccess {
			p.phase, p.err = PartyGone, &CallError{Status: st, Cause: cause}
		} else {
			p.phase = PartyUp
		}
	}
	if st == ndis.StatusSuccess {
		v.handler.Connected(v, v.flows)
	} else {
		c.callOverLocked(v)
	}
	again := st != ndis.StatusSuccess || v.wantClose
	c.notifyLocked()
	c.mu.Unlock()
	c.recycleParams(v, params)
	if again {
		c.postProgress(v)
	}
}

// recycleParams hands a completed MakeCall's parameters back to the call
// manager that built them (ParamsRecycler): those of a point-to-point
// call, whose flowspecs the Core has copied (flowsLocked); a multipoint
// call's first party keeps its own in its call manager.
func (c *Core) recycleParams(v *VC, params *ndis.CallParameters) {
	if r, ok := c.cm.(ParamsRecycler); ok && !v.Multipoint() {
		r.RecycleCallParams(params)
	}
}

// --- closing ---

// Close asks for v's call to be closed for why (ReasonLocal, or a reason
// of the user's own), unless it is already going: once its setup has
// completed and every send has completed (R-CLOSE-1), a multipoint call
// with its last party after the others are dropped. done, if not nil, is
// called (with the Core's lock held) once NdisClCloseCall has completed
// (NDIS_STATUS_SUCCESS, also when the call ended otherwise) or was
// refused (the status: the call goes on). Safe to call from a handler.
func (v *VC) Close(why Reason, done func(ndis.Status)) {
	c := v.c
	if done == nil {
		c.postWork(work{v: v, op: workClose, why: why})
		return
	}
	c.post(func() { c.closeVc(v, why, done) })
}

// closeVc is Close on the worker.
func (c *Core) closeVc(v *VC, why Reason, done func(ndis.Status)) {
	c.mu.Lock()
	if done != nil {
		if v.setupErrLocked() != nil || v.phase == PhaseClosed || v.phase == PhaseDeleted {
			done(ndis.StatusSuccess)
		} else {
			m := v.moreLocked()
			m.closeRefused = 0
			m.closeDone = append(m.closeDone, done)
		}
	}
	c.wantCloseLocked(v, why)
	c.notifyLocked()
	c.mu.Unlock()
	c.progress(v)
}

// wantCloseLocked asks for v's call to be closed, for why, unless it is
// already going.
func (c *Core) wantCloseLocked(v *VC, why Reason) {
	if v.reason == ReasonNone {
		v.reason = why
	}
	v.wantClose = true
}

// progress issues the next request v's state calls for, if any: close the
// call once that is wanted and every send has completed (R-CLOSE-1), delete
// an outgoing VC once its call is over (worker). An incoming call the
// client accepted is closed only once the call manager said it is up
// (CallConnected) or closed it: closing it in between would cross the call
// manager's NdisCmDispatchCallConnected, which R-IN-6 then refuses.
func (c *Core) progress(v *VC) {
	c.mu.Lock()
	switch {
	case v.wantClose && v.sendsOut == 0 && (v.phase == PhaseConnected || v.phase == PhaseAccepted && v.closeIndicated):
		var last *ndis.Party
		if v.Multipoint() {
			// A multipoint call is closed with its last party (R-CLOSE-4,
			// R-CLOSE-5): the others are dropped first, and adds and drops
			// in progress complete first; their completions come back here.
			var drop []*Party
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
		v.phase, v.beforeClose = PhaseClosing, prev
		c.stopTimerLocked(v)
		c.mu.Unlock()
		st := c.b.ClCloseCall(v.h, last, nil)
		switch st {
		case ndis.StatusPending:
		case ndis.StatusSuccess:
			c.closeCallDone(v, st)
		default:
			c.log.Warn(c.name+": NdisClCloseCall refused", "vc", v.Name(), "status", st)
			c.mu.Lock()
			if v.phase == PhaseClosing {
				v.phase = prev
			}
			c.closeRefusedLocked(v, st)
			c.mu.Unlock()
		}
	case v.phase == PhaseClosed && !v.Incoming():
		c.mu.Unlock()
		st := c.b.CoDeleteVc(v.h)
		if st != ndis.StatusSuccess {
			c.log.Warn(c.name+": NdisCoDeleteVc refused", "vc", v.Name(), "status", st)
			return
		}
		c.mu.Lock()
		c.vcGoneLocked(v)
		c.mu.Unlock()
	default:
		c.mu.Unlock()
	}
}

// closeRefusedLocked: NdisClCloseCall was refused with st; the call goes
// on, and whoever waits for the close is told.
func (c *Core) closeRefusedLocked(v *VC, st ndis.Status) {
	m := v.moreLocked()
	m.closeRefused = st
	for _, f := range m.closeDone {
		f(st)
	}
	m.closeDone = nil
	c.notifyLocked()
}

func (c *Core) closeCallDone(v *VC, st ndis.Status) {
	c.mu.Lock()
	if v.phase != PhaseClosing {
		c.mu.Unlock()
		return
	}
	if st != ndis.StatusSuccess {
		c.log.Warn(c.name+": close of a call failed", "vc", v.Name(), "status", st)
		v.phase = v.beforeClose // the call goes on, as the mediator restores it
		c.closeRefusedLocked(v, st)
		c.mu.Unlock()
		return
	}
	v.phase = PhaseClosed
	c.callOverLocked(v)
	c.notifyLocked()
	c.mu.Unlock()
	c.postProgress(v)
}

// callOverLocked: v's call is over. Its parties are gone, and the requests
// waiting on them, on a QoS change or on the close, are answered.
func (c *Core) callOverLocked(v *VC) {
	m := v.more
	if m == nil {
		return // nothing waits
	}
	if m.qos != nil {
		f := m.qos
		m.qos = nil
		f(nil, ErrCallGone)
	}
	for _, p := range m.parties {
		switch {
		case p.added != nil:
			f := p.added
			p.added = nil
			f(p, ErrCallGone)
		case p.dropped != nil:
			f := p.dropped
			p.dropped = nil
			f(p, nil) // gone with the call: dropped all the same
		}
		if p.phase == PartyAdding && p.err == nil {
			p.err = ErrCallGone
		}
		p.phase = PartyGone
	}
	m.parties = nil
	for _, f := range m.closeDone {
		f(ndis.StatusSuccess)
	}
	m.closeDone = nil
}

// vcGoneLocked forgets a deleted VC and tells its handler.
func (c *Core) vcGoneLocked(v *VC) {
	if v.phase == PhaseDeleted {
		return
	}
	v.phase = PhaseDeleted
	c.stopTimerLocked(v)
	c.removeVCLocked(v)
	c.callOverLocked(v)
	e := End{Reason: v.reason, Status: v.closeSt, Cause: v.cause, WasUp: v.wasUp, Sent: v.sent, Policed: v.policedLocked()}
	if !v.wasUp && !v.Incoming() {
		e.Reason = ReasonNone
		e.Err = &CallError{Status: v.failStatusLocked(), Cause: v.cause}
	}
	if s := v.sap; s != nil {
		s.calls--
	}
	if v.Incoming() && !v.wasUp && v.sap == nil {
		// Offered and rejected, or never accepted: nobody to tell.
		c.notifyLocked()
		return
	}
	v.handler.Closed(v, e)
	if s := v.sap; s != nil {
		c.maybeEndSapLocked(s)
	}
	c.notifyLocked()
}

// --- ending input: closing after lingering ---

// EndInput says no more SDUs will be sent on v: the call is closed
// (ReasonLocal) once every send has completed and nothing has been
// received for linger, and at the latest 10 × linger after now; with
// linger 0, as soon as every send has completed. Safe to call from a
// handler.
func (v *VC) EndInput(linger time.Duration) {
	c := v.c
	c.post(func() {
		c.mu.Lock()
		if v.inputEnded {
			c.mu.Unlock()
			return
		}
		v.inputEnded = true
		now := time.Now()
		m := v.moreLocked()
		m.endAt = now
		m.linger = linger
		if v.phase == PhaseConnected && !v.wantClose && linger > 0 {
			c.armLingerLocked(v, now)
			c.mu.Unlock()
			return
		}
		c.wantCloseLocked(v, ReasonLocal)
		c.mu.Unlock()
		c.progress(v)
	})
}

// armLingerLocked (re)arms v's linger timer: the call is closed once every
// send has completed and nothing has been received for v.linger, and at
// the latest 10 × v.linger after the end of input.
func (c *Core) armLingerLocked(v *VC, now time.Time) {
	if v.wantClose || v.phase != PhaseConnected {
		return
	}
	m := v.more // allocated by EndInput
	quiet := later(m.quietAt, m.endAt)
	due := quiet.Add(m.linger)
	if deadline := m.endAt.Add(10 * m.linger); deadline.Before(due) {
		due = deadline
	}
	if v.sendsOut == 0 && !now.Before(due) {
		c.wantCloseLocked(v, ReasonLocal)
		c.postProgress(v)
		return
	}
	wait := due.Sub(now)
	if v.sendsOut > 0 && wait <= 0 {
		return // the last send completion re-arms it
	}
	c.stopTimerLocked(v)
	m.timer = time.AfterFunc(wait, func() {
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

func (c *Core) stopTimerLocked(v *VC) {
	if m := v.more; m != nil && m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

// quietLocked records that v received or completed a send at now: after
// the end of input, its linger counts from the last of these. Before it,
// the end of input is later than any of them, so none is kept.
func (v *VC) quietLocked(now func() time.Time) {
	if v.inputEnded {
		v.more.quietAt = now()
	}
}

// --- sending ---

// Send sends SDUs on v (NdisCoSendNetBufferLists), in one list. It refuses
// them all with ErrNotConnected before the call is up, ErrClosing once it
// is going away (or after EndInput), and *SDUSizeError if one is larger
// than the call's maximum. Sends complete later (Handler.SendsCompleted);
// the call is not closed before they have. Not in a handler other than
// Received (it calls the mediator).
func (v *VC) Send(sdus ...[]byte) error {
	c := v.c
	c.mu.Lock()
	switch {
	case v.phase == PhaseCreated || v.phase == PhaseMaking || v.phase == PhaseAccepted || v.phase == PhaseOffered:
		c.mu.Unlock()
		return ErrNotConnected
	case v.phase != PhaseConnected || v.wantClose || v.inputEnded:
		c.mu.Unlock()
		return ErrClosing
	}
	for _, d := range sdus {
		if len(d) > int(v.maxSDU) {
			c.mu.Unlock()
			return &SDUSizeError{Size: len(d), Max: int(v.maxSDU)}
		}
	}
	v.sendsOut += int32(len(sdus))
	c.mu.Unlock()
	if len(sdus) > 0 {
		// One allocation for the whole chain.
		nbls := make([]ndis.NetBufferList, len(sdus))
		for i, d := range sdus {
			nbls[i] = ndis.NetBufferList{Data: d, Context: v}
			if i > 0 {
				nbls[i-1].Next = &nbls[i]
			}
		}
		c.b.CoSendNetBufferLists(v.h, &nbls[0], 0)
	}
	c.poke() // completions may be deferred work
	return nil
}
