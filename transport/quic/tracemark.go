package quic

import (
	"context"
	"encoding/hex"
	rtrace "runtime/trace"
)

// Signalling marks in the execution trace. While a runtime/trace is being
// taken (a `condis node` with CONDIS_NODE_PROFILE set, or `go test
// -trace`), each signalling message leaves a user log in it as it enters
// Send, as its stream write returns, as it is read off the stream and as
// its Message call returns; the log's category says which and its message
// is the Q.2931 call reference and message type (six hex digits and two),
// so that the same message can be followed from one node's trace into the
// other's. docs/performance.md says how to read them. When no trace is
// being taken a mark costs one atomic load.
const (
	markSend    = "sig send"    // Send or SendBatch entered
	markWritten = "sig written" // the stream Write carrying it returned
	markQueued  = "sig queued"  // handed to the writer goroutine
	markRead    = "sig read"    // read off the stream, about to be delivered
	markHandled = "sig handled" // its Message (or Messages) call returned
)

// mark logs msg's call reference and type under what, if a trace is on.
func mark(what string, msg []byte) {
	if !rtrace.IsEnabled() {
		return
	}
	rtrace.Log(context.Background(), what, msgKey(msg))
}

// markAll is mark for each of msgs.
func markAll(what string, msgs [][]byte) {
	if !rtrace.IsEnabled() {
		return
	}
	for _, m := range msgs {
		rtrace.Log(context.Background(), what, msgKey(m))
	}
}

// msgKey is a message's call reference without its flag (so that both ends
// name the call alike) and its message type, in hex: "00002a05" is call
// reference 42, SETUP. A message too short to say is "?".
func msgKey(msg []byte) string {
	// Q.2931 header: discriminator, call reference length (3), the call
	// reference (flag in the top bit), the message type.
	if len(msg) < 6 || msg[1] != 3 {
		return "?"
	}
	k := [4]byte{msg[2] &^ 0x80, msg[3], msg[4], msg[5]}
	return hex.EncodeToString(k[:])
}
