package uni

import (
	"bytes"
	"sync"
)

// Header constants.
const (
	// ProtocolDiscriminator identifies Q.2931 user-network call control.
	ProtocolDiscriminator = 0x09
	// HeaderLen is the length of the message header.
	HeaderLen     = 9
	callRefLength = 3
	// MaxMessageLen is the longest message: header plus a 16-bit length.
	MaxMessageLen = HeaderLen + 0xffff
	ieHeaderLen   = 4
)

type contentAppender interface {
	appendContents(b []byte) ([]byte, error)
}

// appendIE writes identifier, instruction and contents and then patches the
// 2-octet length, so contents are produced in place without a scratch buffer.
func appendIE(b []byte, id IEID, inst IEInstruction, c contentAppender) ([]byte, error) {
	b = append(b, byte(id), 0x80|byte(inst)&0x7f, 0, 0)
	start := len(b)
	b, err := c.appendContents(b)
	if err != nil {
		return b, err
	}
	n := len(b) - start
	if n > 0xffff {
		return b, encodeErr(id, "contents longer than 65535 octets")
	}
	b[start-2], b[start-1] = byte(n>>8), byte(n)
	return b, nil
}

// count returns how many instances of a modelled IE the message carries.
func (m *Message) count(i ie) int {
	p := func(ok bool) int {
		if ok {
			return 1
		}
		return 0
	}
	switch i {
	case ieCause:
		return len(m.Causes)
	case ieCallState:
		return p(m.CallState != nil)
	case ieAAL:
		return p(m.AAL != nil)
	case ieTraffic:
		return p(m.Traffic != nil)
	case ieBearer:
		return p(m.Bearer != nil)
	case ieBHLI:
		return p(m.BHLI != nil)
	case ieRepeat:
		return p(m.Repeat != nil)
	case ieBLLI:
		return len(m.BLLI)
	case ieCalled:
		return p(m.Called != nil)
	case ieCalling:
		return p(m.Calling != nil)
	case ieConnID:
		return p(m.ConnectionID != nil)
	case ieQoS:
		return p(m.QoS != nil)
	case ieSendingComplete:
		return p(m.SendingComplete != nil)
	case ieRestart:
		return p(m.Restart != nil)
	case ieEndpointRef:
		return p(m.EndpointRef != nil)
	case ieEndpointState:
		return p(m.EndpointState != nil)
	case ieReportType:
		return p(m.ReportType != nil)
	}
	return 0
}

// Encode returns the wire encoding of m in a new buffer of exactly its
// length, or nil and the error Append gives. A sender that owns a buffer
// it can reuse should Append to it instead, which allocates nothing.
func (m *Message) Encode() ([]byte, error) {
	p := encodeScratch.Get().(*[]byte)
	b, err := m.Append((*p)[:0])
	var out []byte
	if err == nil {
		out = bytes.Clone(b)
	}
	if cap(b) <= maxPooledEncoding {
		*p = b[:0]
		encodeScratch.Put(p)
	}
	return out, err
}

// encodeScratch holds *[]byte buffers Encode encodes into before copying
// the message out, so that the message it returns costs only its length.
var encodeScratch = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// maxPooledEncoding bounds the buffers encodeScratch keeps, so that one
// long message does not pin its buffer in the pool.
const maxPooledEncoding = 4 << 10

// An Encoder encodes messages for a sender that queues them: each
// encoding is carved from a block the Encoder allocates and never writes
// to again, so it stays valid for as long as its holder keeps it, and
// most encodings cost no allocation (Encode costs one each). The price is
// that a block stays reachable while any encoding in it is: a receiver
// that keeps encodings for long (a trace buffer) should copy them. The
// zero value is ready to use. An Encoder is not safe for concurrent use.
type Encoder struct {
	free []byte // the rest of the current block
}

// encoderBlock is the size of an Encoder's blocks: a few dozen messages
// of a call.
const encoderBlock = 4 << 10

// Encode returns the wire encoding of m, or nil and the error Append
// gives. The octets are the caller's: the Encoder never writes to them
// again. The slice's capacity is its length, so appending to it copies.
func (e *Encoder) Encode(m *Message) ([]byte, error) {
	if len(e.free) < HeaderLen {
		e.free = make([]byte, encoderBlock)
	}
	b, err := m.Append(e.free[:0])
	if err != nil {
		return nil, err
	}
	if len(b) > cap(e.free) {
		// It did not fit: Append grew it into an allocation of its own.
		// The next message starts a new block.
		e.free = make([]byte, encoderBlock)
		return b[:len(b):len(b)], nil
	}
	e.free = e.free[len(b):cap(e.free)]
	return b[:len(b):len(b)], nil
}

// Append appends the wire encoding of m to b and returns the extended
// buffer. It allocates nothing when b has room. On error b is returned
// unchanged. Append refuses messages the peer would have to reject: an
// unknown message type, a field out of range, an IE the message type does
// not carry (or too many of it), or a mandatory IE missing.
func (m *Message) Append(b []byte) ([]byte, error) {
	out, err := m.append(b)
	if err != nil {
		if e, ok := err.(*EncodeError); ok {
			e.Type = m.Type
		}
		return b, err
	}
	return out, nil
}

func (m *Message) append(b []byte) ([]byte, error) {
	s := specs[m.Type]
	if s == nil {
		return b, &EncodeError{Reason: "message type not implemented"}
	}
	if m.CallRef.Value > MaxCallRef {
		return b, &EncodeError{Reason: "call reference value does not fit in 23 bits"}
	}
	for i := ie(0); i < numIE; i++ {
		n, r := m.count(i), s.rules[i]
		switch {
		case n > int(r.max) && r.max == 0:
			return b, encodeErr(ieIDs[i], "not carried by this message type")
		case n > int(r.max):
			return b, encodeErr(ieIDs[i], "repeated more often than the message type allows")
		case n == 0 && r.mandatory:
			return b, encodeErr(ieIDs[i], "mandatory IE missing")
		}
	}
	v := m.CallRef.Value
	flag := byte(0)
	if m.CallRef.Flag {
		flag = 0x80
	}
	start := len(b)
	b = append(b, ProtocolDiscriminator, callRefLength, flag|byte(v>>16), byte(v>>8), byte(v),
		byte(m.Type), 0x80|byte(m.Instruction)&0x7f, 0, 0)
	var err error
	for i := range m.Causes {
		if b, err = appendIE(b, IECause, m.Causes[i].Instruction, &m.Causes[i]); err != nil {
			return b, err
		}
	}
	if m.CallState != nil {
		if b, err = appendIE(b, IECallState, m.CallState.Instruction, m.CallState); err != nil {
			return b, err
		}
	}
	if m.AAL != nil {
		if b, err = appendIE(b, IEAAL, m.AAL.Instruction, m.AAL); err != nil {
			return b, err
		}
	}
	if m.Traffic != nil {
		if b, err = appendIE(b, IETraffic, m.Traffic.Instruction, m.Traffic); err != nil {
			return b, err
		}
	}
	if m.Bearer != nil {
		if b, err = appendIE(b, IEBearer, m.Bearer.Instruction, m.Bearer); err != nil {
			return b, err
		}
	}
	if m.BHLI != nil {
		if b, err = appendIE(b, IEBHLI, m.BHLI.Instruction, m.BHLI); err != nil {
			return b, err
		}
	}
	if m.Repeat != nil {
		if b, err = appendIE(b, IERepeat, m.Repeat.Instruction, m.Repeat); err != nil {
			return b, err
		}
	}
	for i := range m.BLLI {
		if b, err = appendIE(b, IEBLLI, m.BLLI[i].Instruction, &m.BLLI[i]); err != nil {
			return b, err
		}
	}
	if m.Called != nil {
		if b, err = appendIE(b, IECalledParty, m.Called.Instruction, m.Called); err != nil {
			return b, err
		}
	}
	if m.Calling != nil {
		if b, err = appendIE(b, IECallingParty, m.Calling.Instruction, m.Calling); err != nil {
			return b, err
		}
	}
	if m.ConnectionID != nil {
		if b, err = appendIE(b, IEConnectionID, m.ConnectionID.Instruction, m.ConnectionID); err != nil {
			return b, err
		}
	}
	if m.QoS != nil {
		if b, err = appendIE(b, IEQoS, m.QoS.Instruction, m.QoS); err != nil {
			return b, err
		}
	}
	if m.SendingComplete != nil {
		if b, err = appendIE(b, IESendingComplete, m.SendingComplete.Instruction, m.SendingComplete); err != nil {
			return b, err
		}
	}
	if m.Restart != nil {
		if b, err = appendIE(b, IERestartIndicator, m.Restart.Instruction, m.Restart); err != nil {
			return b, err
		}
	}
	if m.EndpointRef != nil {
		if b, err = appendIE(b, IEEndpointRef, m.EndpointRef.Instruction, m.EndpointRef); err != nil {
			return b, err
		}
	}
	if m.EndpointState != nil {
		if b, err = appendIE(b, IEEndpointState, m.EndpointState.Instruction, m.EndpointState); err != nil {
			return b, err
		}
	}
	if m.ReportType != nil {
		if b, err = appendIE(b, IEReportType, m.ReportType.Instruction, m.ReportType); err != nil {
			return b, err
		}
	}
	for i := range m.Unrecognized {
		r := &m.Unrecognized[i]
		if len(r.Contents) > 0xffff {
			return b, encodeErr(r.ID, "contents longer than 65535 octets")
		}
		n := len(r.Contents)
		b = append(b, byte(r.ID), 0x80|byte(r.Instruction)&0x7f, byte(n>>8), byte(n))
		b = append(b, r.Contents...)
	}
	n := len(b) - start - HeaderLen
	if n > 0xffff {
		return b, &EncodeError{Reason: "message longer than 65535 octets after the header"}
	}
	b[start+7], b[start+8] = byte(n>>8), byte(n)
	return b, nil
}

// decoded is where a message is decoded to: the Message and the IEs its
// pointers point to, in groups, so that Decode allocates for each message
// only what its type can carry. A message that carries no IE but Cause
// (CONNECT ACKNOWLEDGE, RELEASE, RELEASE COMPLETE, MODIFY REJECT) takes
// one small allocation (shortMessage); any other message one more
// (fullMessage), and the bulky call-setup IEs, which only SETUP and ADD
// PARTY carry, live in setupIEs, allocated only for a message that has
// one. A Decoder keeps one fullMessage and one setupIEs and decodes every
// message into them again.
type decoded struct {
	m      *Message
	causes *[2]CauseIE
	small  *smallIEs
	setup  *setupIEs
	raw    []RawIE // storage of m.Unrecognized, kept for the next message
	own    []byte  // private copy of the message body, made when a field must keep octets
	copied bool    // own holds the body of the message being decoded
}

// smallIEs are the IEs other than Cause that messages besides SETUP and ADD
// PARTY carry (AAL Parameters: CONNECT).
type smallIEs struct {
	aal     AALParameters
	state   CallStateIE
	connID  ConnectionID
	qos     QoSParameter
	repeat  RepeatIndicator
	sc      SendingComplete
	restart RestartIndicator
	epRef   EndpointReference
	epState EndpointStateIE
	report  ReportType
}

type setupIEs struct {
	traffic TrafficDescriptor
	bearer  BearerCapability
	bhli    BHLI
	blli    [3]BLLI
	called  CalledPartyNumber
	calling CallingPartyNumber
	// Room for the octets of the addresses and the service name, so that
	// a SETUP need not copy its body (see keepsOctets).
	calledAddr  [AESALen]byte
	callingAddr [AESALen]byte
	bhliInfo    [MaxBHLIInfo]byte
}

// inRoom returns p copied into room when it fits (p then comes from the
// caller's buffer: keepsOctets says so), else p itself (then a copy
// already).
func inRoom(p, room []byte) []byte {
	if p == nil || len(p) > len(room) {
		return p
	}
	n := copy(room, p)
	return room[:n:n]
}

// shortMessage is a decoded message that carries no IE but Cause.
type shortMessage struct {
	m      Message
	causes [2]CauseIE
}

// fullMessage is any other decoded message.
type fullMessage struct {
	m      Message
	causes [2]CauseIE
	small  smallIEs
}

// alloc gives d the storage a message of type s needs (Decode).
func (d *decoded) alloc(s *msgSpec) {
	if s.causesOnly {
		x := new(shortMessage)
		d.m, d.causes = &x.m, &x.causes
		return
	}
	x := new(fullMessage)
	d.m, d.causes, d.small = &x.m, &x.causes, &x.small
}

// smallIEs returns the storage of the small IEs. Only a message decoded
// into a shortMessage lacks it, and its type carries none of them; the
// check keeps parse safe should that change.
func (d *decoded) smallIEs() *smallIEs {
	if d.small == nil {
		d.small = new(smallIEs)
	}
	return d.small
}

func (d *decoded) setupIEs() *setupIEs {
	if d.setup == nil {
		d.setup = new(setupIEs)
	}
	return d.setup
}

// A Decoder keeps no more than this from one message for the next, so
// that one long message does not pin its storage.
const (
	maxKeptBody = 4 << 10
	maxKeptRaw  = 16
)

// reset readies d to decode the next message into x: every IE pointer of
// the message cleared, the storage kept. parse zeroes each IE before
// decoding into it, so nothing of the previous message survives.
func (d *decoded) reset(x *fullMessage) {
	x.m = Message{}
	d.m, d.causes, d.small = &x.m, &x.causes, &x.small
	d.copied = false
	if cap(d.own) > maxKeptBody {
		d.own = nil
	}
	if cap(d.raw) > maxKeptRaw {
		d.raw = nil
	}
	d.raw = d.raw[:0]
}

// contents returns octets [from, to) of body: from the private copy when
// the decoded IE may keep a reference to them, so a decoded Message never
// retains the caller's buffer, else straight from body.
func (d *decoded) contents(body []byte, from, to int, keep bool) []byte {
	if !keep {
		return body[from:to:to]
	}
	if !d.copied {
		d.own = append(d.own[:0], body...)
		d.copied = true
	}
	return d.own[from:to:to]
}

// keepsOctets reports whether decoding an IE with these contents can leave
// a slice pointing into them.
func keepsOctets(id IEID, modelled bool, p []byte) bool {
	if !modelled {
		return len(p) > 0
	}
	switch id {
	case IECause:
		return len(p) > 2
	case IEAAL:
		return len(p) > 1 && p[0] != AAL5
	case IECalledParty, IECallingParty:
		// An address that fits an AESA is copied into setupIEs instead.
		return len(p) > 1+AESALen
	}
	// BHLI: valid information fits bhliInfo; invalid contents are kept
	// raw, from a copy.
	return false
}

// parse decodes contents p of a modelled IE into the message; false means
// invalid contents. p must come from d.contents. Every IE is zeroed before
// its decode fills it: the IE decoders count on fields they do not set
// being zero, and a Decoder's storage still holds the previous message.
func (d *decoded) parse(i ie, inst IEInstruction, p []byte) bool {
	m := d.m
	if i != ieCause {
		d.smallIEs() // storage of the small IEs exists
	}
	switch i {
	case ieCause:
		if cs := inst.CodingStandard(); cs != CodingITU && cs != CodingNetwork {
			return false // no cause values UNI 3.1 knows
		}
		n := len(m.Causes)
		c := &d.causes[n]
		*c = CauseIE{}
		if !c.decode(p) {
			*c = CauseIE{}
			return false
		}
		// Either coding is accepted; the value says which one defines it.
		c.Instruction = inst.withCodingStandard(c.Value.CodingStandard())
		m.Causes = d.causes[:n+1]
	case ieCallState:
		d.small.state = CallStateIE{}
		if !d.small.state.decode(p) {
			return false
		}
		d.small.state.Instruction = inst
		m.CallState = &d.small.state
	case ieAAL:
		a := &d.smallIEs().aal
		*a = AALParameters{}
		if !a.decode(p) {
			*a = AALParameters{}
			return false
		}
		a.Instruction = inst
		m.AAL = a
	case ieTraffic:
		td := &d.setupIEs().traffic
		*td = TrafficDescriptor{}
		if !td.decode(p) {
			*td = TrafficDescriptor{}
			return false
		}
		td.Instruction = inst
		m.Traffic = td
	case ieBearer:
		c := &d.setupIEs().bearer
		*c = BearerCapability{}
		if !c.decode(p) {
			*c = BearerCapability{}
			return false
		}
		c.Instruction = inst
		m.Bearer = c
	case ieBHLI:
		h := &d.setupIEs().bhli
		*h = BHLI{}
		if !h.decode(p) {
			return false
		}
		h.Info = inRoom(h.Info, d.setup.bhliInfo[:])
		h.Instruction = inst
		m.BHLI = h
	case ieRepeat:
		d.small.repeat = RepeatIndicator{}
		if !d.small.repeat.decode(p) {
			return false
		}
		d.small.repeat.Instruction = inst
		m.Repeat = &d.small.repeat
	case ieBLLI:
		n := len(m.BLLI)
		blli := &d.setupIEs().blli
		l := &blli[n]
		*l = BLLI{}
		if !l.decode(p) {
			*l = BLLI{}
			return false
		}
		l.Instruction = inst
		m.BLLI = blli[:n+1]
	case ieCalled:
		c := &d.setupIEs().called
		*c = CalledPartyNumber{}
		if !c.decode(p) {
			*c = CalledPartyNumber{}
			return false
		}
		c.Address = inRoom(c.Address, d.setup.calledAddr[:])
		c.Instruction = inst
		m.Called = c
	case ieCalling:
		c := &d.setupIEs().calling
		*c = CallingPartyNumber{}
		if !c.decode(p) {
			*c = CallingPartyNumber{}
			return false
		}
		c.Address = inRoom(c.Address, d.setup.callingAddr[:])
		c.Instruction = inst
		m.Calling = c
	case ieConnID:
		d.small.connID = ConnectionID{}
		if !d.small.connID.decode(p) {
			return false
		}
		d.small.connID.Instruction = inst
		m.ConnectionID = &d.small.connID
	case ieQoS:
		d.small.qos = QoSParameter{}
		if !d.small.qos.decode(p) || qosCodingProblem(inst.CodingStandard(), d.small.qos.Forward, d.small.qos.Backward) != "" {
			d.small.qos = QoSParameter{}
			return false
		}
		d.small.qos.Instruction = inst
		m.QoS = &d.small.qos
	case ieSendingComplete:
		d.small.sc = SendingComplete{}
		if !d.small.sc.decode(p) {
			return false
		}
		d.small.sc.Instruction = inst
		m.SendingComplete = &d.small.sc
	case ieRestart:
		d.small.restart = RestartIndicator{}
		if !d.small.restart.decode(p) {
			return false
		}
		d.small.restart.Instruction = inst
		m.Restart = &d.small.restart
	case ieEndpointRef:
		d.small.epRef = EndpointReference{}
		if !d.small.epRef.decode(p) {
			return false
		}
		d.small.epRef.Instruction = inst
		m.EndpointRef = &d.small.epRef
	case ieEndpointState:
		d.small.epState = EndpointStateIE{}
		if !d.small.epState.decode(p) {
			return false
		}
		d.small.epState.Instruction = inst
		m.EndpointState = &d.small.epState
	case ieReportType:
		d.small.report = ReportType{}
		if !d.small.report.decode(p) {
			return false
		}
		d.small.report.Instruction = inst
		m.ReportType = &d.small.report
	}
	return true
}

// rejectAction is the answer to a message whose mandatory IE is missing or
// invalid (Q.2931 error procedures): requests are refused, anything else gets STATUS.
func rejectAction(t MsgType) Action {
	switch t {
	case MsgSetup, MsgRelease, MsgAddParty, MsgModifyRequest:
		return ActionReject
	}
	return ActionReportStatus
}

// Decode parses one complete message into a new Message. It never panics
// and never retains b: the octets the Message keeps (addresses,
// diagnostics, IEs kept raw) are copies. The Message is the caller's; it
// shares nothing with any other.
//
// A nil error means the message may be processed; IEs the procedures say to
// discard are in Message.Unrecognized with the action to take. A
// *DecodeError means the message must not be processed as received; its
// Cause and Action say how to answer.
//
// Decode allocates the Message and its IEs for every message; a receiver
// that is done with each message before the next arrives can decode into
// reused storage with a [Decoder] instead.
func Decode(b []byte) (*Message, error) {
	var d decoded
	return d.decode(b)
}

// A Decoder decodes messages into a Message and IE storage it keeps from
// one message to the next, so that once it has seen a message of each
// kind, decoding allocates nothing (an error still allocates its
// *DecodeError). The zero value is ready to use. A Decoder is not safe for
// concurrent use.
//
// Ownership: the *Message Decode returns, every IE it points to and every
// slice in it (Causes, BLLI, Unrecognized, addresses, diagnostics, raw
// contents) belong to the Decoder and are valid until its next Decode,
// which overwrites them. A receiver that keeps a message, or any part of
// it, beyond that must copy it first ([Message.Clone]); that includes
// handing it to a [Link], whose Receive keeps the message in indications
// and keeps some of its IEs in call state ([Link.ReceiveBytes] decodes
// with a Decoder of its own, lends the message to the indications until
// its next ReceiveBytes and copies out what the Link keeps).
//
// Like Decode, Decoder.Decode never retains b: what the Message keeps is
// copied into the Decoder's own buffer, so b may be reused as soon as
// Decode returns, as a transport that reuses its read buffer needs.
// (transport/quic today hands each signalling message over in a buffer of
// its own that the handler keeps: transport.LinkHandler.Message and
// transport.BatchHandler.Messages.)
//
// A Decoder must not be copied once it has decoded a message: the copy
// would share its storage.
type Decoder struct {
	msg fullMessage
	d   decoded
}

// Decode parses one complete message exactly as the package-level [Decode]
// does, into the Decoder's storage, and returns the Decoder's Message:
// valid until the next call (see [Decoder] for what may be kept). The
// result equals Decode's field for field, whatever the Decoder decoded
// before; on error the Message is nil, as with Decode.
func (dec *Decoder) Decode(b []byte) (*Message, error) {
	dec.d.reset(&dec.msg)
	return dec.d.decode(b)
}

// decode parses b into d: into the storage reset gave it, or, for Decode,
// into storage allocated for the message's type.
func (d *decoded) decode(b []byte) (*Message, error) {
	if len(b) < HeaderLen {
		return nil, &DecodeError{Cause: CauseIncorrectLength, Action: ActionIgnore, Offset: len(b),
			Reason: "message shorter than the 9-octet header"}
	}
	if b[0] != ProtocolDiscriminator {
		return nil, &DecodeError{Cause: CauseProtocolError, Action: ActionIgnore,
			Reason: "protocol discriminator is not Q.2931 (0x09)"}
	}
	if b[1] != callRefLength {
		return nil, &DecodeError{Cause: CauseProtocolError, Action: ActionIgnore, Offset: 1,
			Reason: "call reference length octet is not 3"}
	}
	e := DecodeError{
		HeaderOK:    true,
		CallRef:     CallRef{Value: uint32(b[2]&0x7f)<<16 | uint32(b[3])<<8 | uint32(b[4]), Flag: b[2]&0x80 != 0},
		Type:        MsgType(b[5]),
		Instruction: MsgInstruction(b[6] & 0x7f),
	}
	fail := func(c Cause, a Action, id IEID, off int, reason string) (*Message, error) {
		e.Cause, e.Action, e.IE, e.Offset, e.Reason = c, a, id, off, reason
		err := e
		return nil, &err
	}
	if n := int(b[7])<<8 | int(b[8]); n != len(b)-HeaderLen {
		return fail(CauseIncorrectLength, ActionReportStatus, 0, 7,
			"message length "+itoa(n)+" but "+itoa(len(b)-HeaderLen)+" octets follow the header")
	}
	s := specs[e.Type]
	if s == nil {
		return fail(CauseMessageTypeUnknown, e.Instruction.unknownTypeAction(), 0, 5, "message type not implemented")
	}

	if d.m == nil {
		d.alloc(s)
	}
	m := d.m
	m.Type, m.CallRef, m.Instruction = e.Type, e.CallRef, e.Instruction
	body := b[HeaderLen:]
	var seen, valid [numIE]uint8
	var firstBad [numIE]int
	for off := 0; off < len(body); {
		at := HeaderLen + off
		if len(body)-off < ieHeaderLen {
			return fail(CauseIncorrectLength, ActionReportStatus, 0, at, "truncated IE header")
		}
		id := IEID(body[off])
		inst := IEInstruction(body[off+1] & 0x7f)
		end := off + ieHeaderLen + (int(body[off+2])<<8 | int(body[off+3]))
		if end > len(body) {
			return fail(CauseIncorrectLength, ActionReportStatus, id, at, "IE length runs past the end of the message")
		}
		i, known := ieIndex(id)
		var r rule
		if known {
			r = s.rules[i]
		}
		start := off + ieHeaderLen
		p := d.contents(body, start, end, keepsOctets(id, known && r.max > 0, body[start:end]))
		off = end
		cause := CauseIEUnknown
		if known && r.max > 0 {
			if seen[i] >= r.max {
				// Q.2931 error procedures: repetitions beyond the permitted number are ignored.
				continue
			}
			seen[i]++
			if d.parse(i, inst, p) {
				valid[i]++
				continue
			}
			cause = CauseInvalidIEContents
			// Kept verbatim: the contents must not alias the caller's buffer.
			p = d.contents(body, start, end, len(p) > 0)
			if r.mandatory {
				if firstBad[i] == 0 {
					firstBad[i] = at
				}
				// Mandatory IE errors are judged below, after all IEs are seen.
				d.keepRaw(id, inst, p, cause)
				continue
			}
		}
		raw := d.keepRaw(id, inst, p, cause)
		switch a := raw.Action(); a {
		case ActionClearCall, ActionIgnore, ActionReportStatus:
			return fail(cause, a, id, at, "IE with explicit instruction to stop processing the message")
		}
	}
	for i := ie(0); i < numIE; i++ {
		r := s.rules[i]
		if !r.mandatory || valid[i] > 0 {
			continue
		}
		if m.EndpointRef != nil {
			// Lets the state machine address an ADD PARTY REJECT when
			// another mandatory IE of an ADD PARTY is at fault.
			ep := *m.EndpointRef
			e.EndpointRef = &ep
		}
		if seen[i] > 0 {
			return fail(CauseInvalidIEContents, rejectAction(e.Type), ieIDs[i], firstBad[i], "mandatory IE has invalid contents")
		}
		return fail(CauseMandatoryIEMissing, rejectAction(e.Type), ieIDs[i], len(b), "mandatory IE missing")
	}
	if len(d.raw) > 0 {
		m.Unrecognized = d.raw
	}
	return m, nil
}

// keepRaw appends an IE kept verbatim to d.raw, which becomes
// m.Unrecognized if the message decodes.
func (d *decoded) keepRaw(id IEID, inst IEInstruction, p []byte, c Cause) *RawIE {
	d.raw = append(d.raw, RawIE{ID: id, Instruction: inst, Contents: nilIfEmpty(p), Cause: c})
	return &d.raw[len(d.raw)-1]
}
