package uni

import (
	"encoding/hex"
	"slices"
	"strconv"
)

// MsgType is the Q.2931 message type octet.
type MsgType uint8

// Message types: Q.2931 / UNI 3.1 §5.3 and, for ModifyCallQoS, the
// Q.2963.1 MODIFY messages (0x88-0x8a; Wireshark does not name them).
const (
	MsgCallProceeding  MsgType = 0x02
	MsgSetup           MsgType = 0x05
	MsgConnect         MsgType = 0x07
	MsgConnectAck      MsgType = 0x0f
	MsgRestart         MsgType = 0x46
	MsgRelease         MsgType = 0x4d
	MsgRestartAck      MsgType = 0x4e
	MsgReleaseComplete MsgType = 0x5a
	MsgStatusEnquiry   MsgType = 0x75
	MsgStatus          MsgType = 0x7d
	MsgAddParty        MsgType = 0x80
	MsgAddPartyAck     MsgType = 0x81
	MsgAddPartyReject  MsgType = 0x82
	MsgDropParty       MsgType = 0x83
	MsgDropPartyAck    MsgType = 0x84
	MsgModifyRequest   MsgType = 0x88 // Q.2963.1
	MsgModifyAck       MsgType = 0x89 // Q.2963.1
	MsgModifyReject    MsgType = 0x8a // Q.2963.1
)

// String returns the Q.2931 name of the message type.
func (t MsgType) String() string {
	if s := specs[t]; s != nil {
		return s.name
	}
	return "message type 0x" + hex.EncodeToString([]byte{byte(t)})
}

// Known reports whether the codec implements the message type.
func (t MsgType) Known() bool { return specs[t] != nil }

// MaxCallRef is the largest call reference value (23 bits). Value 0 is the
// global call reference, used by RESTART and RESTART ACKNOWLEDGE.
const MaxCallRef = 0x7fffff

// CallRef is a call reference: a 23-bit value chosen by the side that
// originated the call, and the flag that tells the two sides' values apart.
type CallRef struct {
	Value uint32
	// Flag is false in messages sent by the side that allocated Value and
	// true in messages sent to it.
	Flag bool
}

// String formats the call reference as value/flag.
func (c CallRef) String() string {
	f := "0"
	if c.Flag {
		f = "1"
	}
	return "cr=0x" + strconv.FormatUint(uint64(c.Value), 16) + "/" + f
}

// MsgInstruction is the message type extension octet (the message
// compatibility instruction) without its extension bit, which is always 1
// on the wire. The zero value is UNI 3.1's 0x80: regular error handling.
//
//	bit 5 flag (follow explicit instructions), bits 2-1 action indicator
type MsgInstruction uint8

// Message action indicator values (bits 2-1), meaningful when the flag is set.
const (
	MsgActionClearCall    = 0 // clear call
	MsgActionDiscard      = 1 // discard and ignore
	MsgActionReportStatus = 2 // discard and report status
	msgInstructionFlag    = 0x10
)

// NewMsgInstruction builds a message compatibility instruction.
func NewMsgInstruction(explicit bool, action uint8) MsgInstruction {
	i := MsgInstruction(action & 3)
	if explicit {
		i |= msgInstructionFlag
	}
	return i
}

// unknownTypeAction is what the Q.2931 error procedures prescribe for a message type the
// receiver does not implement: the explicit instruction if flagged, else
// STATUS with cause 97.
func (i MsgInstruction) unknownTypeAction() Action {
	if i&msgInstructionFlag == 0 {
		return ActionReportStatus
	}
	switch i & 3 {
	case MsgActionClearCall:
		return ActionClearCall
	case MsgActionDiscard:
		return ActionIgnore
	default:
		return ActionReportStatus
	}
}

// Message is one Q.2931 / Q.2963.1 signalling message. Information
// elements the message does not carry are nil (repeatable ones: empty).
// Fields are listed, and encoded, in the codec's canonical IE order.
type Message struct {
	Type        MsgType
	CallRef     CallRef
	Instruction MsgInstruction

	Causes          []CauseIE // at most 2 (RELEASE, RELEASE COMPLETE); 1 elsewhere
	CallState       *CallStateIE
	AAL             *AALParameters
	Traffic         *TrafficDescriptor
	Bearer          *BearerCapability
	BHLI            *BHLI
	Repeat          *RepeatIndicator
	BLLI            []BLLI // at most 3 in SETUP, 1 elsewhere
	Called          *CalledPartyNumber
	Calling         *CallingPartyNumber
	ConnectionID    *ConnectionID
	QoS             *QoSParameter
	SendingComplete *SendingComplete
	Restart         *RestartIndicator
	EndpointRef     *EndpointReference
	EndpointState   *EndpointStateIE
	ReportType      *ReportType

	// Unrecognized holds, in received order, the IEs the decoder did not
	// model (see RawIE). They are encoded after all modelled IEs.
	Unrecognized []RawIE
}

// Cause returns the first Cause IE's value.
func (m *Message) Cause() (Cause, bool) {
	if len(m.Causes) == 0 {
		return 0, false
	}
	return m.Causes[0].Value, true
}

// ie indexes the modelled information elements in canonical order.
type ie uint8

const (
	ieCause ie = iota
	ieCallState
	ieAAL
	ieTraffic
	ieBearer
	ieBHLI
	ieRepeat
	ieBLLI
	ieCalled
	ieCalling
	ieConnID
	ieQoS
	ieSendingComplete
	ieRestart
	ieEndpointRef
	ieEndpointState
	ieReportType
	numIE
)

var ieIDs = [numIE]IEID{
	ieCause: IECause, ieCallState: IECallState, ieAAL: IEAAL, ieTraffic: IETraffic,
	ieBearer: IEBearer, ieBHLI: IEBHLI, ieRepeat: IERepeat, ieBLLI: IEBLLI,
	ieCalled: IECalledParty, ieCalling: IECallingParty, ieConnID: IEConnectionID, ieQoS: IEQoS,
	ieSendingComplete: IESendingComplete, ieRestart: IERestartIndicator,
	ieEndpointRef: IEEndpointRef, ieEndpointState: IEEndpointState, ieReportType: IEReportType,
}

func ieIndex(id IEID) (ie, bool) {
	for i, v := range ieIDs {
		if v == id {
			return ie(i), true
		}
	}
	return 0, false
}

// rule says how often an IE may appear in a message and whether it must.
type rule struct {
	max       uint8 // 0: not allowed
	mandatory bool
}

type msgSpec struct {
	name  string
	rules [numIE]rule
	// causesOnly: the type carries no IE but Cause, so it decodes into a
	// shortMessage.
	causesOnly bool
}

// specs lists, per message type, the IEs of UNI 3.1 §5.3 (ADD PARTY family:
// UNI 3.1 §9, MODIFY family: Q.2963.1 §6). An IE absent from a message's
// list is "unexpected" and handled like an unrecognised one.
var specs = func() (t [256]*msgSpec) {
	var (
		o  = rule{max: 1}
		m1 = rule{max: 1, mandatory: true}
		o2 = rule{max: 2}
		m2 = rule{max: 2, mandatory: true}
		o3 = rule{max: 3}
	)
	add := func(mt MsgType, name string, rules map[ie]rule) {
		s := &msgSpec{name: name}
		s.causesOnly = true
		for k, v := range rules {
			s.rules[k] = v
			s.causesOnly = s.causesOnly && k == ieCause
		}
		t[mt] = s
	}
	add(MsgSetup, "SETUP", map[ie]rule{
		ieAAL: o, ieTraffic: m1, ieBearer: m1, ieBHLI: o, ieRepeat: o, ieBLLI: o3,
		ieCalled: m1, ieCalling: o, ieConnID: o, ieQoS: m1, ieSendingComplete: o, ieEndpointRef: o,
	})
	add(MsgCallProceeding, "CALL PROCEEDING", map[ie]rule{ieConnID: o, ieEndpointRef: o})
	add(MsgConnect, "CONNECT", map[ie]rule{ieAAL: o, ieBLLI: o, ieConnID: o, ieEndpointRef: o})
	add(MsgConnectAck, "CONNECT ACKNOWLEDGE", nil)
	add(MsgRelease, "RELEASE", map[ie]rule{ieCause: m2})
	add(MsgReleaseComplete, "RELEASE COMPLETE", map[ie]rule{ieCause: o2})
	add(MsgStatusEnquiry, "STATUS ENQUIRY", map[ie]rule{ieEndpointRef: o})
	add(MsgStatus, "STATUS", map[ie]rule{ieCause: m1, ieCallState: m1, ieEndpointRef: o, ieEndpointState: o})
	add(MsgRestart, "RESTART", map[ie]rule{ieConnID: o, ieRestart: m1})
	add(MsgRestartAck, "RESTART ACKNOWLEDGE", map[ie]rule{ieConnID: o, ieRestart: m1})
	add(MsgAddParty, "ADD PARTY", map[ie]rule{
		ieAAL: o, ieBHLI: o, ieBLLI: o, ieCalled: m1, ieCalling: o, ieSendingComplete: o, ieEndpointRef: m1,
	})
	add(MsgAddPartyAck, "ADD PARTY ACKNOWLEDGE", map[ie]rule{ieEndpointRef: m1})
	add(MsgAddPartyReject, "ADD PARTY REJECT", map[ie]rule{ieCause: m1, ieEndpointRef: m1})
	add(MsgDropParty, "DROP PARTY", map[ie]rule{ieCause: m1, ieEndpointRef: m1})
	add(MsgDropPartyAck, "DROP PARTY ACKNOWLEDGE", map[ie]rule{ieEndpointRef: m1, ieCause: o})
	add(MsgModifyRequest, "MODIFY REQUEST", map[ie]rule{ieTraffic: m1})
	add(MsgModifyAck, "MODIFY ACKNOWLEDGE", map[ie]rule{ieTraffic: o, ieReportType: o})
	add(MsgModifyReject, "MODIFY REJECT", map[ie]rule{ieCause: m1})
	return t
}()

// Clone returns a deep copy of m that shares no memory with it: every IE
// it points to and every slice (Causes, BLLI, Unrecognized, addresses,
// diagnostics, raw contents) is copied, nil and empty slices stay as they
// are. A receiver decoding with a [Decoder] clones what it keeps beyond
// the next Decode. A decoded message clones in one allocation, sized for
// the IEs it carries (see cloneStorage), unless it carries more than two
// causes or three BLLIs, octets beyond the storage's room (long
// diagnostics, E.164 addresses, AAL contents of other types) or IEs kept
// raw, which take one more each.
func (m *Message) Clone() *Message {
	d, room := m.cloneStorage()
	c := d.m
	*c = *m
	// Octets go to room while it lasts, then to one arena for the rest.
	var arena []byte
	clone := func(b []byte) []byte {
		switch {
		case b == nil:
			return nil
		case len(b) == 0:
			return []byte{}
		case len(b) <= len(room):
			n := copy(room, b)
			x := room[:n:n]
			room = room[n:]
			return x
		}
		if cap(arena)-len(arena) < len(b) {
			arena = make([]byte, 0, max(len(b), m.octets()))
		}
		start := len(arena)
		arena = append(arena, b...)
		return arena[start:len(arena):len(arena)]
	}
	// cloneIn copies b into its own room (an address, the BHLI
	// information) when it fits.
	cloneIn := func(b, own []byte) []byte {
		if b != nil && len(b) <= len(own) {
			return inRoom(b, own)
		}
		return clone(b)
	}
	if m.Causes != nil {
		switch n := len(m.Causes); {
		case n == 0:
			c.Causes = []CauseIE{}
		case n <= len(d.causes):
			c.Causes = d.causes[:n:n]
		default:
			c.Causes = make([]CauseIE, len(m.Causes))
		}
		for i, x := range m.Causes {
			x.Diagnostic = clone(x.Diagnostic)
			c.Causes[i] = x
		}
	}
	if m.CallState != nil {
		d.small.state = *m.CallState
		c.CallState = &d.small.state
	}
	if m.AAL != nil {
		a := &d.small.aal
		*a = *m.AAL
		a.Other = clone(a.Other)
		c.AAL = a
	}
	if m.Traffic != nil {
		d.setup.traffic = *m.Traffic
		c.Traffic = &d.setup.traffic
	}
	if m.Bearer != nil {
		d.setup.bearer = *m.Bearer
		c.Bearer = &d.setup.bearer
	}
	if m.BHLI != nil {
		h := &d.setup.bhli
		*h = *m.BHLI
		h.Info = cloneIn(h.Info, d.setup.bhliInfo[:])
		c.BHLI = h
	}
	if m.Repeat != nil {
		d.small.repeat = *m.Repeat
		c.Repeat = &d.small.repeat
	}
	switch n := len(m.BLLI); {
	case m.BLLI == nil:
	case n == 0:
		c.BLLI = []BLLI{}
	case n <= len(d.setup.blli):
		c.BLLI = d.setup.blli[:n:n]
		copy(c.BLLI, m.BLLI)
	default:
		c.BLLI = slices.Clone(m.BLLI)
	}
	if m.Called != nil {
		p := &d.setup.called
		*p = *m.Called
		p.Address = cloneIn(p.Address, d.setup.calledAddr[:])
		c.Called = p
	}
	if m.Calling != nil {
		p := &d.setup.calling
		*p = *m.Calling
		p.Address = cloneIn(p.Address, d.setup.callingAddr[:])
		c.Calling = p
	}
	if m.ConnectionID != nil {
		d.small.connID = *m.ConnectionID
		c.ConnectionID = &d.small.connID
	}
	if m.QoS != nil {
		d.small.qos = *m.QoS
		c.QoS = &d.small.qos
	}
	if m.SendingComplete != nil {
		d.small.sc = *m.SendingComplete
		c.SendingComplete = &d.small.sc
	}
	if m.Restart != nil {
		d.small.restart = *m.Restart
		c.Restart = &d.small.restart
	}
	if m.EndpointRef != nil {
		d.small.epRef = *m.EndpointRef
		c.EndpointRef = &d.small.epRef
	}
	if m.EndpointState != nil {
		d.small.epState = *m.EndpointState
		c.EndpointState = &d.small.epState
	}
	if m.ReportType != nil {
		d.small.report = *m.ReportType
		c.ReportType = &d.small.report
	}
	if m.Unrecognized != nil {
		c.Unrecognized = make([]RawIE, len(m.Unrecognized))
		for i, r := range m.Unrecognized {
			r.Contents = clone(r.Contents)
			c.Unrecognized[i] = r
		}
	}
	return c
}

// cloneRoom is the room for octets (cause diagnostics, the odd AAL or raw
// contents) a clone carries inline: what the Link's own causes need (a
// timer number, an IE identifier or two, a message type).
const cloneRoom = 8

// The storage of a clone, one allocation each: a message that carries no
// IE but one or two causes (RELEASE, RELEASE COMPLETE, MODIFY REJECT), one
// that carries small IEs too, one that carries call-setup IEs (SETUP, ADD
// PARTY, MODIFY with traffic). A message with no IE at all (CONNECT
// ACKNOWLEDGE, many a CONNECT) is a bare Message.
type (
	cloneOne struct {
		m      Message
		causes [1]CauseIE
		room   [cloneRoom]byte
	}
	cloneShort struct {
		m      Message
		causes [2]CauseIE
		room   [cloneRoom]byte
	}
	cloneFull struct {
		m      Message
		causes [2]CauseIE
		small  smallIEs
		room   [cloneRoom]byte
	}
	cloneSetup struct {
		m      Message
		causes [2]CauseIE
		small  smallIEs
		setup  setupIEs
		room   [cloneRoom]byte
	}
)

// cloneDest is where Clone puts the copy: the message and the storage
// of the IEs it carries (nil where it carries none).
type cloneDest struct {
	m      *Message
	causes []CauseIE
	small  *smallIEs
	setup  *setupIEs
}

// cloneStorage allocates the storage for a clone of m: the smallest of
// the three kinds that holds every IE m carries. The IE storage m does
// not need is nil; Clone writes only to what m carries.
func (m *Message) cloneStorage() (cloneDest, []byte) {
	setup := m.Traffic != nil || m.Bearer != nil || m.BHLI != nil || len(m.BLLI) > 0 || m.Called != nil || m.Calling != nil
	small := m.CallState != nil || m.AAL != nil || m.Repeat != nil || m.ConnectionID != nil || m.QoS != nil ||
		m.SendingComplete != nil || m.Restart != nil || m.EndpointRef != nil || m.EndpointState != nil || m.ReportType != nil
	switch {
	case setup:
		x := new(cloneSetup)
		return cloneDest{m: &x.m, causes: x.causes[:], small: &x.small, setup: &x.setup}, x.room[:]
	case small:
		x := new(cloneFull)
		return cloneDest{m: &x.m, causes: x.causes[:], small: &x.small}, x.room[:]
	}
	switch len(m.Causes) {
	case 0:
		return cloneDest{m: new(Message)}, nil
	case 1:
		x := new(cloneOne)
		return cloneDest{m: &x.m, causes: x.causes[:]}, x.room[:]
	}
	x := new(cloneShort)
	return cloneDest{m: &x.m, causes: x.causes[:]}, x.room[:]
}

// octets counts the octets m's byte slices hold.
func (m *Message) octets() int {
	n := 0
	for _, c := range m.Causes {
		n += len(c.Diagnostic)
	}
	if m.AAL != nil {
		n += len(m.AAL.Other)
	}
	if m.BHLI != nil {
		n += len(m.BHLI.Info)
	}
	if m.Called != nil {
		n += len(m.Called.Address)
	}
	if m.Calling != nil {
		n += len(m.Calling.Address)
	}
	for _, r := range m.Unrecognized {
		n += len(r.Contents)
	}
	return n
}
