// Package uni is a codec for ITU-T Q.2931 / ATM Forum UNI 3.1 signalling
// messages, plus the Q.2963.1 MODIFY messages used for ModifyCallQoS.
//
// The package is pure: it opens no sockets, starts no goroutines and never
// blocks. It has two layers:
//
//   - the codec turns a [Message] into octets ([Message.Append],
//     [Message.Encode]) and octets into a [Message] ([Decode], or a
//     [Decoder] that reuses one Message and its IE storage from message to
//     message) and keeps no other state between calls;
//   - the signalling state machines: a [Link] holds every call of one
//     signalling association with its call, party, modification and restart
//     state. Local requests, received messages and timer expiries go in;
//     each returns an [Output] (messages to send, timers to start or stop,
//     [Indication]s for the call manager above) that the owner carries out.
//     An Output is the owner's to keep, or, with [Config].ReuseOutputs,
//     valid until the Link's next input (then it costs no garbage).
//     A [Scheduler] maps the timer operations onto runtime timers.
//     (Package q2931 translates between Q.2931 causes and NDIS statuses: uni
//     knows nothing of NDIS.)
//
// The states and their transitions are drawn on [CallState], [PartyState],
// [ModifyState] and [RestartState]; docs/protocol.md §9-11 describes the
// timers and procedures.
//
// Wire layout (Q.2931 §4):
//
//	octet 1     protocol discriminator 0x09
//	octet 2     call reference length 0x03
//	octets 3-5  flag bit (0x80 of octet 3) + 23-bit call reference value
//	octet 6     message type
//	octet 7     message type extension (compatibility instruction; 0x80 in UNI 3.1)
//	octets 8-9  message length (octets after the header)
//	octets 10-  information elements: identifier, instruction, 2-octet length, contents
//
// Encoding writes information elements in one canonical order (the order of
// the Q.2931 SETUP table, see [Message]), so decode(encode(m)) == m and
// encode(decode(encode(m))) == encode(m) octet for octet. Decoding accepts
// any order.
//
// Encoding also refuses what UNI 3.1 does not allow an IE to say: an AAL5
// maximum CPCS-SDU size in one direction only, QoS classes the coding
// standard does not carry (ITU-T: 0 both ways; ATM Forum specific: 1-4
// both ways), a cause coded with a standard that does not define it
// ([Cause.CodingStandard]); the decoder treats the first two as invalid
// contents and accepts a cause in either coding. Whether a traffic
// descriptor is one of UNI 3.1's combinations of traffic parameters is for
// the call manager to judge ([TrafficDescriptor.Combinations], cause 73).
//
// Memory: Append writes into the caller's buffer and allocates nothing
// when it has room; Encode returns a buffer of exactly the message's
// length. Decode allocates the Message and its IEs: one allocation for
// most messages, two for a SETUP, one more when the message holds octets
// the IEs have no room for (a cause diagnostic, an IE kept raw, an address
// longer than an AESA). A warm [Decoder] allocates nothing,
// and its Message is valid only until its next Decode ([Message.Clone]
// keeps one). Neither Decode nor a Decoder keeps the caller's buffer: the
// octets a Message holds are copies, so a transport may reuse its read
// buffer as soon as the decode returns.
//
// Error handling follows Q.2931 §5.6: a message the receiver must not act on
// yields a [*DecodeError] whose Cause and Action say what the procedures
// prescribe; information elements that are unknown, unexpected in the
// message, or (if optional) badly coded are kept verbatim in
// [Message.Unrecognized] together with the action their instruction field
// asks for, so the state machine can report them and re-encoding keeps them.
package uni
