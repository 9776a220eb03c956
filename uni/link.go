package uni

import (
	"cmp"
	"errors"
	"slices"
	"strconv"

	"github.com/condis-project/condis/internal/seqtable"
)

// A Link is the signalling state of one association with one peer (one
// signalling channel, in condis one QUIC connection): every call on it with
// its call, party and modification state, the call reference allocator, the
// restart state and the state of the link itself.
//
// A Link is pure: it does no I/O, starts no goroutines, never blocks and
// never reads the clock. It is driven by three kinds of input and answers
// each with an Output (messages to send, timers to start or stop,
// indications for the call manager above), which its owner carries out in
// order — the GoBGP fsm / pion sctp style: the handlers decide, one place
// commits.
//
//   - local requests from the call manager: Setup, Proceed, Accept, Reject,
//     Release, AddParty, AcceptParty, RejectParty, DropParty, ModifyQoS,
//     AcceptModify, RejectModify, StatusEnquiry, Restart, RestartDone;
//   - received messages: Receive (a decoded *Message), ReceiveError (a
//     *DecodeError from Decode), ReceiveBytes (both);
//   - timer expiries (Expire) and changes of the signalling link (LinkDown,
//     LinkUp: SAAL failure and re-establishment).
//
// A Link is not safe for concurrent use; its owner serialises the inputs
// (the Scheduler's mutex is the natural place).
//
// Every call the Link reports (IndSetup) or creates (Setup) ends with
// exactly one IndReleased; every party it reports (IndAddParty) or creates
// (AddParty) ends with exactly one IndPartyRejected or IndPartyDropped,
// unless the whole call ends first (IndReleased ends the call's parties and
// any pending modification).
type Link struct {
	timers Timers
	up     bool
	calls  seqtable.Table[call] // by CallID.key
	// Records of calls that ended: in this input (gone), and free for
	// new calls (freeCalls); see begin.
	gone, freeCalls []*call
	nextRef         uint32 // next call reference value to try

	t309  bool   // T309 running: link down with active calls kept
	epoch uint32 // signalling links so far (LinkUp after LinkDown counts one more)

	restOut  map[restartKey]*restartProc // our RESTARTs awaiting acknowledgement (Rest1)
	restIn   map[restartKey]*restartProc // the peer's RESTARTs awaiting RestartDone (Rest2)
	restSeq  uint64                      // restart procedures started
	restSlot uint16                      // last timer slot handed to one

	scratch []byte // the encodings of the requests validated since the last input began

	// Storage for Outputs and the messages the Link builds (see slab),
	// or with reuse (Config.ReuseOutputs) out and built: the storage of
	// the latest Output, handed out again for the next input, and the
	// messages built for it, of which the current input has used nbuilt.
	reuse        bool
	out          Output
	built        []*linkMessage
	nbuilt       int
	causeSlab    slab[CauseIE]
	plainCauses  map[plainCauseKey]*CauseIE // see keptCause
	outMsgSlab   slab[Outgoing]
	outTimerSlab slab[TimerOp]
	outIndSlab   slab[Indication]
	msgSlab      slab[Message]
	causeMsgSlab slab[linkMessage]
	setupCur     *setupBlock   // the block keepSetup carves from
	setupSpares  []*setupBlock // emptied blocks, for later

	// ReceiveBytes decodes into dec, whose storage the next message
	// overwrites: while such a lent message is processed it is in;
	// keepCause and keepTraffic copy what call state and the Output's
	// causes and traffic descriptors take from it, and keep copies it
	// whole (once, into inKept) for a restart procedure.
	dec    Decoder
	in     *Message
	inKept *Message
}

// Config configures a Link.
type Config struct {
	// Timers holds the timer values; zero fields take the UNI 3.1
	// defaults.
	Timers Timers
	// ReuseOutputs lets the Link hand out the same storage for every
	// Output: an Output, its slices and the messages the Link built for
	// it are valid only until the next input to the Link (see Output).
	// For an owner that carries out each Output at once (encodes its
	// messages, applies its timers, copies its indications) before it
	// gives the Link anything else: such an Output then costs no
	// garbage. Off, every Output is the receiver's to keep.
	ReuseOutputs bool
}

// NewLink returns a Link with no calls whose signalling link is up.
func NewLink(cfg Config) *Link {
	return &Link{
		timers:  cfg.Timers.withDefaults(),
		reuse:   cfg.ReuseOutputs,
		up:      true,
		nextRef: 1,
		restOut: make(map[restartKey]*restartProc),
		restIn:  make(map[restartKey]*restartProc),
	}
}

// Timers returns the timer values in use.
func (l *Link) Timers() Timers { return l.timers }

// CallID names a call on a Link: its call reference value and which side
// allocated it. Both sides allocate values independently; the call
// reference flag keeps them apart, so a local and a remote call may share a
// value.
type CallID struct {
	Ref   uint32 // call reference value, 1…MaxCallRef (0 is the global call reference)
	Local bool   // this side allocated Ref: it originated the call
}

// String formats the call as local/remote and the value.
func (c CallID) String() string {
	s := "remote"
	if c.Local {
		s = "local"
	}
	return s + " cr=0x" + strconv.FormatUint(uint64(c.Ref), 16)
}

// key is a CallID packed into a word, its key in a Link's calls table:
// local and remote references in two ranges, each in the order the
// allocating side hands them out (see seqtable).
func (c CallID) key() uint64 {
	k := uint64(c.Ref)
	if c.Local {
		k |= 1 << 32
	}
	return k
}

// wire is the call reference this side puts in messages about the call:
// flag 0 from the allocating side, 1 towards it.
func (c CallID) wire() CallRef { return CallRef{Value: c.Ref, Flag: !c.Local} }

// callIDOf names the call a received call reference refers to: flag 1
// means the message is sent to us as the allocator.
func callIDOf(cr CallRef) CallID { return CallID{Ref: cr.Value, Local: cr.Flag} }

// Outgoing is one message to send, with the call it belongs to (the zero
// CallID for messages with the global call reference).
type Outgoing struct {
	Call CallID
	Msg  *Message
	// Enc, if not nil, is Msg's encoding, which the Link made to check a
	// request's message (Setup, Accept, AddParty, Restart, a modification
	// request): the receiver can send it as it is rather than encode Msg
	// again. Only a Link with Config.ReuseOutputs sets it, and it follows
	// that rule: valid until the next input to the Link.
	Enc []byte
}

// Output is what a Link decided in answer to one input: messages to send,
// timer operations and indications for the layer above, each in the order
// they must be carried out. Messages must be sent in order; timer
// operations applied in order.
//
// By default an Output, its slices and the messages in it are the
// receiver's to keep: the Link never writes to them again, so they stay
// valid after later inputs. (Their storage is carved from blocks shared
// by many Outputs, which is why most inputs allocate nothing for them.)
// The one exception is the received message an Output of ReceiveBytes
// lends to its indications (see Indication.Msg).
//
// With Config.ReuseOutputs the Link writes the next Output into the same
// storage: the slices, and the messages the Link built itself (RELEASE,
// RELEASE COMPLETE, CONNECT ACKNOWLEDGE, CALL PROCEEDING, STATUS
// ENQUIRY, …), are valid only until the next input to the Link (any
// request, Receive, ReceiveBytes, ReceiveError, Expire, LinkDown, LinkUp,
// PeerRestarted). What an Output points to outside that storage stays
// the receiver's as by default: each Indication's Cause (with its
// Diagnostic), Traffic and Context, a message the caller gave (Setup's,
// Accept's, AddParty's), and Indication.Msg under its own rule. A
// receiver therefore copies the Indication values it keeps and encodes
// or copies the messages before it gives the Link anything else.
type Output struct {
	Messages    []Outgoing
	Timers      []TimerOp
	Indications []Indication
}

// Empty reports whether the Output asks for nothing.
func (o *Output) Empty() bool {
	return len(o.Messages) == 0 && len(o.Timers) == 0 && len(o.Indications) == 0
}

// IndicationKind says what an Indication reports. The zero value is not a
// kind.
type IndicationKind uint8

// Indications. Those marked "answer with" wait for that local request.
const (
	IndSetup           IndicationKind = iota + 1 // SETUP received (U6); answer with Proceed, Accept or Reject
	IndProceeding                                // CALL PROCEEDING received (U3)
	IndConnected                                 // the call is active (U10): CONNECT received (caller) or CONNECT ACKNOWLEDGE received (called side)
	IndRelease                                   // the peer clears an active call (U12); answer with Release
	IndReleased                                  // the call is gone (U0); Cause says why. Ends every call exactly once
	IndAddParty                                  // ADD PARTY received; answer with AcceptParty or RejectParty
	IndPartyAdded                                // ADD PARTY ACKNOWLEDGE received: the party is active
	IndPartyRejected                             // the party never became active (ADD PARTY REJECT, T399, local reject, DROP PARTY before it was active)
	IndDropParty                                 // DROP PARTY received for an active party; answer with DropParty
	IndPartyDropped                              // an active party is gone (DROP PARTY ACKNOWLEDGE, crossing DROP PARTY, T398, local acknowledgement)
	IndModify                                    // MODIFY REQUEST received; answer with AcceptModify or RejectModify
	IndModified                                  // MODIFY ACKNOWLEDGE received: the new traffic parameters apply
	IndModifyRejected                            // the modification was refused (MODIFY REJECT, T360, link failure, a collision it lost); the old parameters stay
	IndStatus                                    // STATUS received that left the call as it was
	IndRestart                                   // RESTART received, its calls cleared (Rest2); answer with RestartDone
	IndRestartComplete                           // RESTART ACKNOWLEDGE received (Rest0)
	IndRestartFailed                             // no RESTART ACKNOWLEDGE after two tries, or the link failed: maintenance alarm
	IndRestartTimeout                            // T317 expired before RestartDone: RESTART ACKNOWLEDGE sent anyway, maintenance alarm
	numIndicationKinds
)

var indicationNames = [numIndicationKinds]string{
	IndSetup: "setup", IndProceeding: "proceeding", IndConnected: "connected",
	IndRelease: "release", IndReleased: "released", IndAddParty: "add party",
	IndPartyAdded: "party added", IndPartyRejected: "party rejected", IndDropParty: "drop party",
	IndPartyDropped: "party dropped", IndModify: "modify", IndModified: "modified",
	IndModifyRejected: "modify rejected", IndStatus: "status", IndRestart: "restart",
	IndRestartComplete: "restart complete", IndRestartFailed: "restart failed",
	IndRestartTimeout: "restart timeout",
}

// String names the kind.
func (k IndicationKind) String() string {
	if k > 0 && k < numIndicationKinds {
		return indicationNames[k]
	}
	return "indication " + strconv.Itoa(int(k))
}

// Indication tells the layer above what happened on the link.
type Indication struct {
	Kind     IndicationKind
	Call     CallID // zero for restart indications
	Endpoint uint16 // party indications: the endpoint reference
	// Cause says why for IndRelease, IndReleased, IndPartyRejected,
	// IndDropParty, IndPartyDropped and IndModifyRejected (and restart
	// failures); zero Value otherwise.
	Cause CauseIE
	// Msg is the received message behind the indication (the SETUP, the
	// CONNECT, the ADD PARTY, …); nil when a timer, a local request or the
	// link caused it.
	//
	// From ReceiveBytes, Msg is lent: it lives in storage the Link decodes
	// the next message into, so it is valid only until the next
	// ReceiveBytes on the same Link. A receiver that needs it (or any part
	// of it, an address, a diagnostic) after that copies what it needs
	// first: the values it reads, or the whole message with
	// [Message.Clone]. From Receive, Msg is the message the caller gave.
	Msg *Message
	// Traffic is the traffic descriptor of a modification: requested
	// (IndModify) or now in force (IndModified, the one requested unless
	// the MODIFY ACKNOWLEDGE carried its own).
	Traffic *TrafficDescriptor
	// Restarted marks an IndReleased of a call a restart cleared: ours or
	// the peer's RESTART, or the peer's new incarnation (PeerRestarted).
	Restarted bool
	// Context is the call's context (SetCallContext) when the indication
	// was made: the call manager's record of the call, found without a
	// lookup by Call. Nil for restart indications and for calls given
	// none (an IndSetup's call has none yet).
	Context any
}

// String formats the indication for logs.
func (i Indication) String() string {
	s := i.Kind.String()
	if i.Call != (CallID{}) {
		s += " " + i.Call.String()
	}
	switch i.Kind {
	case IndAddParty, IndPartyAdded, IndPartyRejected, IndDropParty, IndPartyDropped:
		s += " ep=" + strconv.Itoa(int(i.Endpoint))
	}
	if i.Cause.Value != 0 {
		s += ": " + i.Cause.Value.String()
	}
	return s
}

// Errors of local requests, wrapped in a *RequestError.
var (
	ErrUnknownCall    = errors.New("no such call")
	ErrUnknownParty   = errors.New("no such party")
	ErrState          = errors.New("not allowed in this state")
	ErrNotMultipoint  = errors.New("not a point-to-multipoint call of which this side is the root")
	ErrLinkDown       = errors.New("signalling link is down")
	ErrNoCallRef      = errors.New("no call reference value free")
	ErrNoEndpointRef  = errors.New("no endpoint reference value free")
	ErrEnquiryPending = errors.New("a STATUS ENQUIRY is outstanding")
	ErrInvalidMessage = errors.New("message cannot be encoded")
)

// RequestError reports a local request the Link refused; the Link's state
// is unchanged.
type RequestError struct {
	Op    string // the Link method
	Call  CallID
	State CallState // the call's state when the request arrived
	Err   error     // one of the Err… values, or the *EncodeError of the message
}

// Error describes the refusal.
func (e *RequestError) Error() string {
	s := "uni: " + e.Op
	if e.Call != (CallID{}) {
		s += " " + e.Call.String() + " in " + e.State.String()
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the reason.
func (e *RequestError) Unwrap() error { return e.Err }

func reqErr(op string, c *call, id CallID, err error) error {
	e := &RequestError{Op: op, Call: id, Err: err}
	if c != nil {
		e.State = c.state
	}
	return e
}

// ---- queries ----

// IsUp reports whether the signalling link is up.
func (l *Link) IsUp() bool { return l.up }

// Calls returns the number of calls (in any state but U0).
func (l *Link) Calls() int { return l.calls.Len() }

// CallState returns the state of a call; false when the Link has no such
// call (U0).
func (l *Link) CallState(id CallID) (CallState, bool) {
	if c := l.calls.Get(id.key()); c != nil {
		return c.state, true
	}
	return StateNull, false
}

// SetCallContext attaches ctx (the call manager's record of the call,
// nil to detach it) to a call: every later Indication about the call
// carries it as Context, and CallContext and EachCallContext return it,
// until the call's IndReleased. It returns the call's state; false, and
// nothing is attached, when the Link has no such call.
func (l *Link) SetCallContext(id CallID, ctx any) (CallState, bool) {
	c := l.calls.Get(id.key())
	if c == nil {
		return StateNull, false
	}
	c.ctx = ctx
	return c.state, true
}

// CallContext returns the context attached to a call (SetCallContext);
// nil when there is none or no such call.
func (l *Link) CallContext(id CallID) any {
	if c := l.calls.Get(id.key()); c != nil {
		return c.ctx
	}
	return nil
}

// EachCallContext calls f with the context of every call that has one,
// in no particular order; f must not change the Link.
func (l *Link) EachCallContext(f func(ctx any)) {
	for _, c := range l.calls.All() {
		if c.ctx != nil {
			f(c.ctx)
		}
	}
}

// ConnectionID returns the connection identifier (VPCI/VCI) last carried
// by a SETUP, CALL PROCEEDING or CONNECT of the call.
func (l *Link) ConnectionID(id CallID) (ConnectionID, bool) {
	if c := l.calls.Get(id.key()); c != nil && c.hasConnID {
		return c.connID, true
	}
	return ConnectionID{}, false
}

// ModifyState returns the QoS modification state of a call.
func (l *Link) ModifyState(id CallID) (ModifyState, bool) {
	if c := l.calls.Get(id.key()); c != nil {
		return c.modify, true
	}
	return 0, false
}

// PartyState returns the state of a party of a point-to-multipoint call;
// false when there is no such party (party state Null).
func (l *Link) PartyState(id CallID, ep uint16) (PartyState, bool) {
	if c := l.calls.Get(id.key()); c != nil {
		if p := c.parties[ep]; p != nil {
			return p.state, true
		}
	}
	return PartyNull, false
}

// Parties returns the endpoint references of a call's parties in
// ascending order (nil for a point-to-point call).
func (l *Link) Parties(id CallID) []uint16 {
	c := l.calls.Get(id.key())
	if c == nil || len(c.parties) == 0 {
		return nil
	}
	eps := make([]uint16, 0, len(c.parties))
	for ep := range c.parties {
		eps = append(eps, ep)
	}
	slices.Sort(eps)
	return eps
}

// RestartState returns the restart state: RestRequest while a RESTART of
// ours awaits its acknowledgement, else RestRestart while a received
// RESTART awaits RestartDone, else RestNull.
func (l *Link) RestartState() RestartState {
	switch {
	case len(l.restOut) > 0:
		return RestRequest
	case len(l.restIn) > 0:
		return RestRestart
	}
	return RestNull
}

// Restarts returns how many restart procedures of ours (Rest1) and of the
// peer's (Rest2) are in progress.
func (l *Link) Restarts() (ours, peers int) { return len(l.restOut), len(l.restIn) }

// sortedCalls returns the calls in a fixed order (local before remote,
// ascending references), so outputs that touch every call are
// deterministic.
func (l *Link) sortedCalls() []*call {
	cs := make([]*call, 0, l.calls.Len())
	for _, c := range l.calls.All() {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *call) int {
		if a.id.Local != b.id.Local {
			if a.id.Local {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.id.Ref, b.id.Ref)
	})
	return cs
}

// ---- the one place outputs are assembled ----

// begin starts the Output of an input (every input makes exactly one).
// With reuse, the messages built for the previous Output are free again.
// The records of the calls that ended in earlier inputs are free for new
// calls: nothing refers to a call record but the calls map and the frames
// of the input that ends it, which have returned.
func (l *Link) begin() Output {
	l.nbuilt = 0
	l.scratch = l.scratch[:0]
	if len(l.gone) > 0 {
		for i, c := range l.gone {
			if len(l.freeCalls) < maxFreeCalls {
				*c = call{} // let go of what it pointed to (the context, the SETUP's encoding)
				l.freeCalls = append(l.freeCalls, c)
			}
			l.gone[i] = nil
		}
		l.gone = l.gone[:0]
	}
	return Output{}
}

// maxFreeCalls bounds the call records a Link keeps for new calls.
const maxFreeCalls = 256

func (l *Link) send(o *Output, id CallID, m *Message) {
	l.sendEncoded(o, id, m, nil)
}

// sendEncoded is send for a message validate encoded as enc: with reuse,
// the Output offers the encoding (Outgoing.Enc).
func (l *Link) sendEncoded(o *Output, id CallID, m *Message, enc []byte) {
	if !l.up {
		return // nothing can be sent while the link is down; the procedures never ask
	}
	if !l.reuse {
		enc = nil // an Output kept past the next input would find it overwritten
	}
	appendOutput(l.reuse, &o.Messages, &l.out.Messages, &l.outMsgSlab, outMessages, Outgoing{Call: id, Msg: m, Enc: enc})
}

// appendOutput appends x to one of an Output's lists (*list), starting the
// list, when it has none yet, in the storage the Link reuses (*kept, which
// then keeps what append grew) or in a block of slab.
func appendOutput[T any](reuse bool, list, kept *[]T, slab *slab[T], block int, x T) {
	if *list == nil {
		if reuse {
			*list = (*kept)[:0]
		} else {
			*list = slab.take(block)
		}
	}
	*list = append(*list, x)
	if reuse {
		*kept = *list
	}
}

func (l *Link) startTimer(o *Output, k TimerKey) {
	l.addTimer(o, TimerOp{Key: k, Start: true, After: l.timers.Value(k.Timer)})
}

func (l *Link) stopTimer(o *Output, k TimerKey) { l.addTimer(o, TimerOp{Key: k}) }

func (l *Link) addTimer(o *Output, op TimerOp) {
	appendOutput(l.reuse, &o.Timers, &l.out.Timers, &l.outTimerSlab, outTimers, op)
}

// indicate adds an indication. Its Msg may be the message ReceiveBytes
// is processing: it is lent (see Indication.Msg). The Cause and Traffic of
// an indication are the receiver's to keep, so those taken from a
// received message come from keepCause and keepTraffic.
func (l *Link) indicate(o *Output, ind Indication) {
	appendOutput(l.reuse, &o.Indications, &l.out.Indications, &l.outIndSlab, outIndications, ind)
}

// indicateCall adds an indication about call c, with its CallID and
// context.
func (l *Link) indicateCall(o *Output, c *call, ind Indication) {
	ind.Call, ind.Context = c.id, c.ctx
	l.indicate(o, ind)
}

// validate encodes m at the end of the scratch buffer: a request whose
// message the peer would have to reject is refused before any state
// changes. The encoding it returns stays valid until the next input
// begins (if the buffer grows, the earlier encodings stay in the old
// array, which nothing writes to again); m must not change before it is
// sent.
func (l *Link) validate(m *Message) ([]byte, error) {
	start := len(l.scratch)
	b, err := m.Append(l.scratch)
	if err != nil {
		l.scratch = b[:start]
		return nil, err
	}
	l.scratch = b
	return b[start:len(b):len(b)], nil
}

// ---- received messages ----

// ReceiveBytes decodes one message and feeds it to Receive or, if it does
// not decode, to ReceiveError.
//
// It decodes into storage the Link reuses for every message, so it
// allocates nothing for the message itself. Ownership of what it returns:
//
//   - Indication.Msg is lent: it is valid until the next ReceiveBytes on
//     this Link (the next message is decoded into the same storage). A
//     receiver that needs the message, or any part of it, after that must
//     copy what it needs before calling ReceiveBytes again: the values it
//     reads, or the whole message with [Message.Clone].
//   - Everything else in the Output (its slices, the messages to send, each
//     Indication's Cause and Traffic) and everything the Link keeps in call
//     state (the causes of a RELEASE, a requested traffic descriptor) is
//     copied out of the reused storage: it stays valid whatever the Link
//     receives next.
//
// Nothing refers to b, so b may be reused as soon as ReceiveBytes returns.
func (l *Link) ReceiveBytes(b []byte) Output {
	m, err := l.dec.Decode(b)
	if err != nil {
		var de *DecodeError
		if errors.As(err, &de) {
			return l.ReceiveError(de)
		}
		return Output{}
	}
	l.in, l.inKept = m, nil
	o := l.Receive(m)
	l.in, l.inKept = nil, nil
	return o
}

// lent reports whether m is the message ReceiveBytes decoded into the
// Link's reused storage (the next message overwrites it).
func (l *Link) lent(m *Message) bool { return m != nil && m == l.in }

// keep returns m as something the Link's state may hold beyond the input
// being processed: m itself, unless m is lent, which is then copied (once
// per message). Only the restart procedures keep a whole message.
func (l *Link) keep(m *Message) *Message {
	if !l.lent(m) {
		return m
	}
	if l.inKept == nil {
		l.inKept = m.Clone()
	}
	return l.inKept
}

// keepCause returns m's first cause as something that may outlive the
// input: its diagnostic is copied if m is lent (a cause without one, the
// usual case, costs nothing).
func (l *Link) keepCause(m *Message) CauseIE {
	c := m.Causes[0]
	if l.lent(m) && c.Diagnostic != nil {
		c.Diagnostic = slices.Clone(c.Diagnostic)
	}
	return c
}

// keepTraffic returns m's traffic descriptor as something that may
// outlive the input: a copy if m is lent.
func (l *Link) keepTraffic(m *Message) *TrafficDescriptor {
	if !l.lent(m) || m.Traffic == nil {
		return m.Traffic
	}
	td := *m.Traffic
	return &td
}

// Receive processes one decoded message from the peer.
//
// Ownership: Receive takes m. Indications may carry m itself (as
// Indication.Msg) and the Link may keep parts of it (the causes of a
// RELEASE, a requested traffic descriptor), so the caller must not modify
// or reuse m afterwards. A caller decoding with its own [Decoder] must
// therefore pass a [Message.Clone], or use ReceiveBytes, which decodes
// into the Link's own reused storage, lends the message to the
// indications and copies out what the Link and the rest of the Output
// keep.
//
// Messages arriving while the link is down are ignored.
func (l *Link) Receive(m *Message) Output {
	o := l.begin()
	if !l.up {
		return o
	}
	// A message built by hand rather than decoded gets the checks Decode
	// would have made.
	if !m.Type.Known() {
		return l.ReceiveError(&DecodeError{Cause: CauseMessageTypeUnknown, Action: m.Instruction.unknownTypeAction(),
			HeaderOK: true, CallRef: m.CallRef, Type: m.Type, Instruction: m.Instruction, Reason: "message type not implemented"})
	}
	if id, ok := missingMandatory(m); ok {
		return l.ReceiveError(&DecodeError{Cause: CauseMandatoryIEMissing, Action: rejectAction(m.Type),
			HeaderOK: true, CallRef: m.CallRef, Type: m.Type, Instruction: m.Instruction, IE: id,
			EndpointRef: m.EndpointRef, Reason: "mandatory IE missing"})
	}
	if m.CallRef.Value == 0 {
		l.receiveGlobal(&o, m)
		return o
	}
	id := callIDOf(m.CallRef)
	c := l.calls.Get(id.key())
	switch {
	case c == nil:
		l.receiveUnknown(&o, id, m)
	case m.Type == MsgSetup:
		return o // duplicate SETUP on a call reference in use: ignored
	default:
		l.receiveCall(&o, c, m)
	}
	l.reportDiscardedIEs(&o, id, m)
	return o
}

// missingMandatory returns the first mandatory IE m lacks.
func missingMandatory(m *Message) (IEID, bool) {
	s := specs[m.Type]
	for i := ie(0); i < numIE; i++ {
		if s.rules[i].mandatory && m.count(i) == 0 {
			return ieIDs[i], true
		}
	}
	return 0, false
}

// reportDiscardedIEs answers IEs the decoder discarded under "discard IE,
// proceed, report status" with one STATUS (cause 99 or 100, the IE
// identifiers as diagnostic) once the message has been processed — unless
// the message cleared the call or was itself a clearing message or a
// STATUS.
func (l *Link) reportDiscardedIEs(o *Output, id CallID, m *Message) {
	switch m.Type {
	case MsgRelease, MsgReleaseComplete, MsgStatus:
		return
	}
	var cause Cause
	var diag []byte
	for i := range m.Unrecognized {
		r := &m.Unrecognized[i]
		if r.Action() != ActionDiscardIEReportStatus {
			continue
		}
		if cause == 0 {
			cause = r.Cause
		}
		if r.Cause == cause && len(diag) < maxDiagnosticLen {
			diag = append(diag, byte(r.ID))
		}
	}
	if cause == 0 {
		return
	}
	if id.Ref == 0 {
		l.sendStatus(o, CallID{}, CallRef{Flag: !m.CallRef.Flag}, l.globalState(), NewCause(cause, diag...), nil, nil)
		return
	}
	if c := l.calls.Get(id.key()); c != nil && c.state != StateNull {
		l.sendCallStatus(o, c, NewCause(cause, diag...), nil)
	}
}

// receiveUnknown handles a message for a call reference the Link does not
// know (Q.2931 §5.6.3.2).
func (l *Link) receiveUnknown(o *Output, id CallID, m *Message) {
	switch m.Type {
	case MsgSetup:
		if id.Local {
			return // a SETUP always comes from the allocating side: flag 1 is bogus
		}
		l.incomingSetup(o, id, m)
	case MsgReleaseComplete:
		// Stray RELEASE COMPLETE: ignored, unless it answers a call one
		// of our restarts cleared.
		l.restartCallGone(o, id, m)
	case MsgStatus:
		// A STATUS reporting Null agrees with us; any other state is a
		// call we do not have.
		if m.CallState.State != StateNull {
			l.sendReleaseComplete(o, id, NewCause(CauseMessageIncompatible, byte(MsgStatus)))
		}
	case MsgStatusEnquiry:
		// Answered with the Null state, which makes the peer clear its
		// side (used by the audit after the link comes back).
		l.sendStatus(o, id, id.wire(), StateNull, NewCause(CauseResponseToStatusEnquiry), m.EndpointRef, nil)
	default:
		l.sendReleaseComplete(o, id, NewCause(CauseInvalidCallRef))
	}
}

// ReceiveError processes a message that did not decode, carrying out the
// DecodeError's Action with its Cause:
//
//   - ActionIgnore (or no readable header): nothing;
//   - a message for an unknown call reference: the unknown-call-reference
//     procedure (RELEASE COMPLETE 81; a SETUP is refused with RELEASE
//     COMPLETE and the decode cause; a stray RELEASE COMPLETE or STATUS is
//     ignored);
//   - a duplicate SETUP: ignored;
//   - ActionReportStatus: STATUS with the cause and the call's state;
//   - ActionReject: RELEASE → RELEASE COMPLETE and the call is cleared; ADD
//     PARTY → ADD PARTY REJECT; MODIFY REQUEST → MODIFY REJECT (STATUS
//     when there is nothing to refuse);
//   - ActionClearCall: the call is cleared with RELEASE and the cause.
func (l *Link) ReceiveError(e *DecodeError) Output {
	o := l.begin()
	if !l.up || !e.HeaderOK || e.Action == ActionIgnore || e.Action == 0 {
		return o
	}
	cause := NewCause(e.Cause, e.Diagnostic()...)
	if e.CallRef.Value == 0 {
		if e.Type == MsgStatus {
			return o
		}
		l.sendStatus(&o, CallID{}, CallRef{Flag: !e.CallRef.Flag}, l.globalState(), cause, nil, nil)
		return o
	}
	id := callIDOf(e.CallRef)
	c := l.calls.Get(id.key())
	if c == nil {
		switch e.Type {
		case MsgReleaseComplete, MsgStatus:
		case MsgSetup:
			if !id.Local {
				l.sendReleaseComplete(&o, id, cause)
			}
		default:
			l.sendReleaseComplete(&o, id, NewCause(CauseInvalidCallRef))
		}
		return o
	}
	if e.Type == MsgSetup {
		return o // duplicate SETUP
	}
	switch e.Action {
	case ActionClearCall:
		if e.Type == MsgReleaseComplete {
			l.finish(&o, c, cause, nil)
		} else {
			l.clearCall(&o, c, cause)
		}
	case ActionReject:
		switch e.Type {
		case MsgRelease:
			l.stopCallTimers(&o, c)
			l.sendReleaseComplete(&o, c.id, cause)
			l.finish(&o, c, cause, nil)
			return o
		case MsgAddParty:
			if e.EndpointRef != nil && c.p2mp {
				l.send(&o, c.id, &Message{Type: MsgAddPartyReject, CallRef: c.id.wire(),
					Causes: []CauseIE{cause}, EndpointRef: c.epRef(e.EndpointRef.Value)})
				return o
			}
		case MsgModifyRequest:
			if c.state == StateActive {
				l.send(&o, c.id, l.newMessage(MsgModifyReject, c.id.wire(), cause))
				return o
			}
		}
		l.sendCallStatus(&o, c, cause, e.EndpointRef)
	default:
		l.sendCallStatus(&o, c, cause, e.EndpointRef)
	}
	return o
}

// ---- message builders ----

func (l *Link) sendReleaseComplete(o *Output, id CallID, cause CauseIE) {
	if cause.Value == 0 {
		l.send(o, id, l.newMessage(MsgReleaseComplete, id.wire()))
		return
	}
	l.send(o, id, l.newMessage(MsgReleaseComplete, id.wire(), cause))
}

// sendStatus sends a STATUS. ep (as received) adds the Endpoint Reference
// and, with epState, the Endpoint State.
func (l *Link) sendStatus(o *Output, id CallID, cr CallRef, st CallState, cause CauseIE, ep *EndpointReference, epState *PartyState) {
	m := &Message{Type: MsgStatus, CallRef: cr, Causes: []CauseIE{cause}, CallState: &CallStateIE{State: st}}
	if ep != nil {
		m.EndpointRef = &EndpointReference{Type: ep.Type, Value: ep.Value, Flag: !ep.Flag}
		ps := PartyNull
		if epState != nil {
			ps = *epState
		}
		m.EndpointState = &EndpointStateIE{State: ps}
	}
	l.send(o, id, m)
}

// sendCallStatus sends a STATUS about a call, with the party named by ep
// (as received) on a point-to-multipoint call.
func (l *Link) sendCallStatus(o *Output, c *call, cause CauseIE, ep *EndpointReference) {
	if ep == nil || !c.p2mp {
		l.sendStatus(o, c.id, c.id.wire(), c.state, cause, nil, nil)
		return
	}
	ps := PartyNull
	if p := c.parties[ep.Value]; p != nil {
		ps = p.state
	}
	l.sendStatus(o, c.id, c.id.wire(), c.state, cause, ep, &ps)
}

// ---- signalling link failure (SAAL failure) ----

// LinkDown reports that the signalling link failed (in condis: the QUIC
// connection to the peer was lost). Q.2931 §5.5.6 / field-notes §5.3:
//
//   - calls not yet active (U1, U3, U6, U8, U9) and calls being cleared
//     (U11, U12) are cleared at once: IndReleased, cause 27;
//   - active calls (U10) are kept and T309 is started; their pending
//     sub-procedures end: a requested modification is refused (cause 27),
//     parties not active are released (cause 27), T322 stops;
//   - a restart in progress ends (IndRestartFailed for our own).
//
// Nothing is sent while the link is down; local requests other than
// Release and Reject (which clear the call locally) are refused with
// ErrLinkDown, and received messages are ignored.
func (l *Link) LinkDown() Output {
	o := l.begin()
	if !l.up {
		return o
	}
	l.up = false
	cause := NewCause(CauseDestinationOutOfOrder)
	kept := false
	for _, c := range l.sortedCalls() {
		if c.state != StateActive {
			l.stopCallTimers(&o, c)
			l.finish(&o, c, cause, nil)
			continue
		}
		l.stopEnquiry(&o, c)
		l.stepModify(&o, c, modifyEvent{in: modifyEnded, cause: cause})
		for _, ep := range l.Parties(c.id) {
			if p := c.parties[ep]; p.state != PartyActive {
				l.removeParty(&o, c, ep, p, cause, nil)
			}
		}
		if c.p2mp && len(c.parties) == 0 {
			l.finish(&o, c, cause, nil)
			continue
		}
		kept = true
	}
	if kept {
		l.t309 = true
		l.startTimer(&o, TimerKey{Timer: T309})
	}
	l.endRestartsLinkDown(&o, cause)
	return o
}

// LinkUp reports that the signalling link is (re-)established. If T309 is
// running it stops, the kept calls stay active and each is audited with a
// STATUS ENQUIRY (T322): a peer that lost the call answers with the Null
// state and the call is cleared then.
func (l *Link) LinkUp() Output {
	o := l.begin()
	if l.up {
		return o
	}
	l.up = true
	l.epoch++
	if l.t309 {
		l.t309 = false
		l.stopTimer(&o, TimerKey{Timer: T309})
	}
	for _, c := range l.sortedCalls() {
		l.sendEnquiry(&o, c)
	}
	return o
}

// ---- timers ----

// Expire processes the expiry of a timer the Link started. Expiries of
// timers the Link has since stopped or restarted are ignored, so a late
// delivery is harmless.
func (l *Link) Expire(k TimerKey) Output {
	o := l.begin()
	switch k.Timer {
	case T309:
		if !l.t309 {
			return o
		}
		l.t309 = false
		for _, c := range l.sortedCalls() {
			l.stopCallTimers(&o, c)
			l.finish(&o, c, NewCause(CauseDestinationOutOfOrder), nil)
		}
	case T316:
		l.expireT316(&o, k.Endpoint)
	case T317:
		l.expireT317(&o, k.Endpoint)
	case T303, T308, T310, T313, T322, T360:
		if c := l.calls.Get(k.Call.key()); c != nil {
			l.expireCallTimer(&o, c, k.Timer)
		}
	case T398, T399:
		if c := l.calls.Get(k.Call.key()); c != nil {
			if p := c.parties[k.Endpoint]; p != nil && p.timer == k.Timer {
				l.expirePartyTimer(&o, c, k.Endpoint, p)
			}
		}
	}
	return o
}

// timerCause is the cause of a clearing on timer expiry: 102 with the
// timer number as diagnostic.
func timerCause(t TimerID) CauseIE { return NewCause(CauseTimerExpiry, t.diagnostic()...) }
