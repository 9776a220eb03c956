// # The control socket
//
// A running node serves `condis call`, `condis listen`, `condis calls`,
// `condis bench`, `condis status`, `condis peers` and `condis trace` on a unix socket
// (control in the configuration file). [Control] is the server: a CoNDIS
// client bound to the node's call manager that does the calls on behalf
// of the command line. The commands in cmd/condis are plain clients of
// the socket; [DialCall], [DialListen], [ListCalls], [EachCall], [Bench],
// [QueryStatus], [QueryPeers], [DialTrace], [AddParty], [DropParty],
// [ModifyQoS], [Hangup] and [BenchWithProgress] are the client side. The Control works over any
// [CallManager]: [Q2931CallManager] for the Q.2931 call manager of a running
// node, memdrv.CallManager for the in-memory one of tests and demos.
//
// One connection is one session. The client writes one request: a JSON
// object on one line ([Request], at most [MaxRequestLine] octets). The node
// answers with one JSON line ([Response]): "ok": true, or "ok": false with
// a one-line "error" and, when the CoNDIS request failed, the NDIS
// "status" and the Q.2931 "cause" behind it.
//
//	{"op":"call","dest":"beta/echo","tx":{"service":"best-effort","peak":125000,"max_sdu":1500},"rx":{...},"reliable":false,"linger_ms":500}
//	{"op":"listen","service":"echo","echo":true}
//	{"op":"listen","service":"http","tagged":true}
//	{"op":"calls"}
//	{"op":"status"}
//	{"op":"peers"}
//	{"op":"bench","dest":"beta/echo","calls":10000,"concurrency":16}
//	{"op":"trace"}
//
// A call with "multipoint": true, or with "parties", is point-to-multipoint
// (root to leaves only: "rx" should be {"service":"no-traffic"}): "dest"
// is its first leaf (NdisClMakeCall with a party), "parties" the others,
// added with NdisClAddParty once it is up. The answer comes once every
// leaf is added or failed, and lists them ([PartyInfo]): a failed one with
// its "error", "status" and "cause"; the call goes on with the others.
//
//	{"op":"call","dest":"beta/l1","parties":["gamma/l2"],"multipoint":true,"tx":{...},"rx":{"service":"no-traffic"}}
//	{"ok":true,"vc":"vc#12",...,"parties":[{"party":"party#13","dest":"beta/l1","state":"CONNECTED"},
//	 {"dest":"gamma/l2","state":"FAILED","error":"party gamma/l2 not added: NDIS_STATUS_INVALID_SAP (cause 88, ...)",...}]}
//
// Four requests act on a VC a session already holds, whichever session
// (a `condis call` in another terminal): "vc" names it as "calls" does,
// "party" a party as "calls" lists it in "leaves". Each is answered once
// its CoNDIS request completed, or refused in one line (no such VC, a VC
// of another client, not a multipoint call, no such party, the call's
// last party, a call not connected).
//
//	{"op":"party-add","vc":"vc#12","dest":"gamma/l2"}   NdisClAddParty; answer {"ok":true,"vc":"vc#12","party":"party#14"}
//	{"op":"party-drop","vc":"vc#12","party":"party#14"} NdisClDropParty (never of the last party)
//	{"op":"modify","vc":"vc#12","tx":{"rate":1500},"rx":{"rate":1500}}
//	{"op":"hangup","vc":"vc#12"}                        NdisClCloseCall, once the call's sends completed
//
// "modify" asks NdisClModifyCallQoS for the call's flowspecs with each
// member "tx" and "rx" set replaced (a no-traffic direction keeps none),
// and answers with the flowspecs granted ("tx", "rx"). A flowspec the call
// manager cannot signal is refused before it is asked, the member at fault
// in "flowspec_fault" ([FlowspecFault]); a refusal by the call manager or
// the far end carries the status and its cause, and the call keeps its
// flowspecs exactly. "hangup" closes a multipoint call's other parties
// first. The owning call session is told with event frames: "party-added",
// "party-dropped" (with why, as in a close frame) and "qos" (the flowspecs
// now in force, "tx" and "rx"); a hung-up call's session ends with a close
// frame saying so ("by":"hangup", "normal":true), a listen session's call
// with a closed event.
//
// "calls" is answered with {"ok":true,"count":N,"address":A} (A: the
// node's own address, for the Q.2931 call manager its ATM End System
// Address) and then N call frames, one per VC ([CallInfo]) in the order of their handles, and a close frame;
// the node then closes the connection. A node with 100,000 VCs answers
// with 100,000 frames, never with one huge line.
//
// "status" is answered with "node" ([NodeStatus]): the node's name,
// version, uptime, its VCs (how many, and how many in each call state),
// its SAPs (service and the client that registered each) and the contract
// violations its mediator has reported, by rule; the node then closes the
// connection.
//
//	{"ok":true,"node":{"node":"alpha","version":"devel 9fd8c13a41b2","started":"2026-12-07T01:00:00Z",
//	 "uptime_seconds":3600.25,"vcs":12,"vc_states":{"CONNECTED":11,"CLOSING":1},
//	 "saps":[{"sap":"sap#2","service":"echo","client":"control","state":"REGISTERED"}],"violations":{"R-VC-6":3}}}
//
// "peers" is answered with "peers" ([PeerInfo]), in name order: every
// [[peer]] of the node's configuration and every node it has a link with
// or tried to reach, with the link's state (up, connecting, down) and
// since when, its round-trip time, the calls with the peer, the Q.2931
// messages exchanged and the last error (a link lost, a dial refused);
// the node then closes the connection. An answer line is at most
// [MaxResponseLine] octets.
//
//	{"ok":true,"peers":[{"name":"beta","configured":true,"address":"192.0.2.7:9000",
//	 "atm_address":"479999c0d10000000000000000.3e23e8160039.00","state":"up","since":"2026-12-07T01:00:00.5Z",
//	 "rtt_ms":0.42,"calls":3,"messages_in":12,"messages_out":14}]}
//
// "bench" makes "calls" calls to "dest" (each set up and closed again,
// with no data; "tx" and "rx" as for a call), "concurrency" of them in
// flight at once, inside the node: the Control is their CoNDIS client, so
// neither the control socket nor the session goroutines are part of what
// is measured. It is answered once the last call is gone, with "bench"
// ([BenchResult]): the rate and the setup latency percentiles. A client
// that goes away stops it (calls in flight still close normally). With
// "progress": true the node first sends a line about once a second,
// {"ok":true,"progress":{...}} ([BenchProgress]: calls done so far of
// those asked for), before the one with "bench". With "hold": N (at most
// [MaxBenchHold]) the node first sets up N calls to "dest" and keeps them
// established while it makes the measured calls, then releases them and
// answers; "bench" then also says how many were held and the node's live
// heap per held VC (a growth bench: `condis bench --growth N`).
//
// "trace" subscribes the connection to the node's trace (see The trace
// stream below): it is answered with "node" ([NodeStatus], for the node's
// name), then trace frames until the client sends an end frame or goes
// away, or the node shuts down.
//
// After a successful "call" or "listen" response both sides exchange
// frames until the session ends. A frame is
//
//	octet  0     type
//	octets 1-4   length of the payload, big endian (at most MaxFrame)
//	octets 5-    payload
//
// with the types
//
//	1 data   either way: one SDU. From the client, one SDU to send on the
//	         call's VC; the node refuses an SDU larger than the call's
//	         MaxSduSize with an error frame and never truncates it. From
//	         the node, one SDU received on the VC (for a listen session
//	         without echo or tagged, on any of its calls).
//	2 end    client to node, empty: end of input. The node waits until
//	         every SDU sent has completed, lingers until nothing has been
//	         received for linger_ms (at most 10 × linger_ms; data in
//	         flight, like `nc -q`), closes the call and deletes the VC.
//	         For a listen session it is the same as closing the
//	         connection (a tagged one: see below).
//	3 error  node to client, text: a problem that does not end the
//	         session, such as a refused SDU.
//	4 event  node to client, JSON (Event): a listen session's call came
//	         up or went away; a call session's multipoint call gained or
//	         lost a leaf, or its flowspecs changed.
//	5 close  node to client, JSON (CloseInfo): the session is over, and
//	         why. It is the last frame; the node then closes the
//	         connection. For a call it comes once the call is closed and
//	         the VC deleted.
//	6 call   node to client, JSON (CallInfo): one VC of a "calls" answer.
//	7 trace  node to client, JSON (TraceEvent): one event of a "trace"
//	         session.
//	8 vc data either way, tagged listen sessions only: one SDU on one of
//	         the session's calls. The payload is the length of the VC's
//	         name (one octet), the name as the call event gave it
//	         ("vc#12"), then the SDU (AppendVcData, ParseVcData).
//	9 vc end client to node, tagged listen sessions only: the VC's name;
//	         the node closes that call once its sends have completed (no
//	         linger) and says so with its closed event.
//
// A listen session with "tagged": true carries each of its calls apart,
// so that one client can serve many calls of one service (vcnet's
// Listener over a control socket). The node accepts each call offered
// (ProtocolClIncomingCall) as for any listen session; a client that does
// not want it closes it with a vc end frame. Its call event gives the
// call's VC, "peer", the flowspecs offered ("tx", "rx"), "max_sdu" (the
// largest SDU the client may send on it) and "reliable" (the caller asked
// for a reliable VC); SDUs that arrive before the call is connected are
// held (a bounded few) and follow its event. Untagged data frames are
// refused with an error frame; an unknown VC name too (the call may just
// have gone: its closed event says so). The end frame deregisters the SAP
// and takes no more calls, but leaves the calls up: the session ends, with
// its close frame, once they are gone. The connection going away closes
// them. "tagged" and "echo" do not go together.
//
//	{"event":"call","vc":"vc#12","peer":"beta","tx":{...},"rx":{...},"max_sdu":1500,"reliable":true}
//
// The answer to a call and the close frame of a call the network lost:
//
//	{"ok":true,"vc":"vc#12","max_sdu":1500,"tx":{"service":"best-effort","peak":125000,"max_sdu":1500},"rx":{...}}
//	{"normal":false,"by":"remote","status":"NDIS_STATUS_DEST_OUT_OF_ORDER","cause":27,"cause_text":"destination out of order",
//	 "text":"call closed: NDIS_STATUS_DEST_OUT_OF_ORDER (cause 27, destination out of order)"}
//
// "normal" is what `condis call` turns into its exit status: true for an
// end of input, a release by the far end with NDIS_STATUS_SUCCESS (normal
// call clearing), a hangup request, or a node shutting down; false for
// anything else, whose "text" it prints. "sent" and "policed" count the
// SDUs the session sent that the call manager completed, and of them
// those it dropped because they did not conform to the transmit flowspec
// (NDIS_STATUS_RESOURCES: policing).
//
// What the node queues for a session's client is bounded: at most
// 8 MiB, counting every frame queued and not yet written (its payload
// and its place in the queue). Received SDUs and events that would take
// the queue past 7 MiB are dropped, and the client is told how many in an
// error frame, as a full socket buffer drops datagrams; the last MiB is
// kept for error frames. A client that keeps drawing error frames (bad
// frames, refused SDUs) without reading them takes its session over the
// cap: the node logs it, drops what is queued, ends the session (its call
// is closed, or its SAP deregistered and its calls closed), and sends a
// close frame saying so, "by":"node". From then on each write to the
// client has 10 s to go through; a client that does not read is
// disconnected.
//
// # The trace stream
//
// A trace session gets one trace frame per event of the node, in the order
// the node saw them: every Q.2931 message it sends or receives ("signal",
// raw, as on the wire), its links to peers coming and going ("link"),
// refused handshakes ("handshake"), calls offered, refused, connected,
// failed and released ("call"), and, when the node was started with
// [StartOptions].TraceMediator, every request, completion and handler of
// its mediator ("ndis"). Each is a JSON object ([TraceEvent]) whose
// "kind" says which, with "time" (RFC 3339, nanoseconds) and "node"; the
// fields of other kinds are absent:
//
//	{"kind":"signal","time":"2026-12-07T01:00:00.000001Z","node":"alpha","peer":"beta","dir":"out",
//	 "type":"SETUP","call_ref":1,"flag":false,"local":"127.0.0.1:4800","remote":"127.0.0.1:4801","msg":"CQMAAAEFgACg..."}
//	{"kind":"call","time":"...","node":"alpha","peer":"beta","event":"refused","service":"nosuch",
//	 "incoming":true,"cause":88,"cause_text":"incompatible destination"}
//	{"kind":"call","time":"...","node":"alpha","peer":"beta","event":"released","service":"echo","vc":"vc#3",
//	 "cause":16,"cause_text":"normal call clearing","status":"NDIS_STATUS_SUCCESS","by_peer":true}
//	{"kind":"link","time":"...","node":"alpha","peer":"beta","event":"down","reason":"timeout","error":"..."}
//	{"kind":"handshake","time":"...","node":"alpha","peer":"mallory","event":"refused","remote":"192.0.2.9:4800",
//	 "reason":"unknown authority","error":"..."}
//	{"kind":"ndis","time":"...","node":"alpha","event":"request","seq":812,"driver":"control",
//	 "func":"NdisClMakeCall","object":"vc#3"}
//
// A signal's "msg" is the whole message, header first, in base64; "type",
// "call_ref" and "flag" are read from its header (absent if the header is
// not Q.2931's); nothing else of it is decoded, so a message that does not
// decode is traced too. "local" and "remote" are the UDP addresses of the
// link, when the node knows them. The time of an ndis event is when the
// node's trace saw it; "seq" orders them exactly.
//
// The node holds at most [TraceQueue] events for a session's client, and
// the session's connection buffers; what does not fit is dropped, never
// waited for, and the client is told how many in an error frame ("120
// trace event(s) dropped: the client did not read fast enough"). A client
// that never reads costs the node that much memory and nothing else. When
// the node shuts down it sends a close frame; a client that does not read
// it within 10 s is disconnected.
//
// A call session whose connection goes away without an end frame closes
// its call at once (once its sends have completed). A listen session lasts
// until its connection goes away or it sends an end frame: the node then
// deregisters the SAP and closes the session's calls normally. When the
// node shuts down it closes every call normally and tells every session
// with a close frame.
package node

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/condis-project/condis/ipvc"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/uni"
)

// Limits of the control protocol.
const (
	// MaxRequestLine is the longest request line, in octets.
	MaxRequestLine = 64 << 10
	// MaxResponseLine is the longest answer line a client takes, in
	// octets: room for the peers and the SAPs of a large node.
	MaxResponseLine = 16 << 20
	// MaxFrame is the longest frame payload, in octets. A longer frame
	// ends the session.
	MaxFrame = 1 << 20
	// DefaultMaxSDU is the SDU limit of a call whose MaxSduSize is not
	// specified: the largest AAL5 CPCS-SDU.
	DefaultMaxSDU = 65535
)

// FrameType is the first octet of a frame.
type FrameType uint8

// Frame types.
const (
	FrameData   FrameType = 1 // one SDU, either way
	FrameEnd    FrameType = 2 // client: end of input
	FrameError  FrameType = 3 // node: a problem that does not end the session (text)
	FrameEvent  FrameType = 4 // node: a listen session's call came or went (JSON Event)
	FrameClose  FrameType = 5 // node: the session is over (JSON CloseInfo); last frame
	FrameCall   FrameType = 6 // node: one VC of a calls answer (JSON CallInfo)
	FrameTrace  FrameType = 7 // node: one event of a trace session (JSON TraceEvent)
	FrameVcData FrameType = 8 // either way, tagged listen sessions: one SDU on one call (AppendVcData)
	FrameVcEnd  FrameType = 9 // client, tagged listen sessions: close one call (its VC's name)
)

func (t FrameType) String() string {
	switch t {
	case FrameData:
		return "data"
	case FrameEnd:
		return "end"
	case FrameError:
		return "error"
	case FrameEvent:
		return "event"
	case FrameClose:
		return "close"
	case FrameCall:
		return "call"
	case FrameTrace:
		return "trace"
	case FrameVcData:
		return "vc data"
	case FrameVcEnd:
		return "vc end"
	}
	return "frame type " + strconv.Itoa(int(t))
}

// Frame is one frame of a session.
type Frame struct {
	Type    FrameType
	Payload []byte
}

const frameHeader = 5

// WriteFrame writes one frame to w in a single Write.
func WriteFrame(w io.Writer, t FrameType, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("frame of %d octets, more than %d", len(payload), MaxFrame)
	}
	b := make([]byte, frameHeader+len(payload))
	b[0] = byte(t)
	binary.BigEndian.PutUint32(b[1:], uint32(len(payload)))
	copy(b[frameHeader:], payload)
	_, err := w.Write(b)
	return err
}

// writeFrameTo writes one frame into bw: no buffer of its own, unlike
// WriteFrame, for the session writer, which flushes a batch at once.
func writeFrameTo(bw *bufio.Writer, t FrameType, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("frame of %d octets, more than %d", len(payload), MaxFrame)
	}
	// The header goes into bw's own buffer: a header of our own would
	// escape to the heap, once per frame.
	h := append(bw.AvailableBuffer(), byte(t), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(h[1:], uint32(len(payload)))
	bw.Write(h)
	_, err := bw.Write(payload)
	return err
}

// errFrameTooLong is returned by ReadFrame for a frame longer than MaxFrame.
var errFrameTooLong = errors.New("frame longer than the control protocol allows")

// ReadFrame reads one frame from r. io.EOF means the peer closed the
// connection between frames.
func ReadFrame(r io.Reader) (Frame, error) {
	var t FrameType
	var n uint32
	if br, ok := r.(*bufio.Reader); ok {
		// Every reader of frames is buffered: the header is read in place,
		// without a buffer of its own, which would escape to the heap.
		h, err := br.Peek(frameHeader)
		if err != nil {
			if len(h) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF // as io.ReadFull says it
			}
			return Frame{}, err
		}
		t, n = FrameType(h[0]), binary.BigEndian.Uint32(h[1:])
		br.Discard(frameHeader)
	} else {
		var h [frameHeader]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return Frame{}, err
		}
		t, n = FrameType(h[0]), binary.BigEndian.Uint32(h[1:])
	}
	if n > MaxFrame {
		return Frame{}, fmt.Errorf("%w (%d octets, at most %d)", errFrameTooLong, n, MaxFrame)
	}
	f := Frame{Type: t, Payload: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return f, nil
}

// Operations of a request.
const (
	OpCall   = "call"
	OpListen = "listen"
	OpCalls  = "calls"
	OpStatus = "status"
	OpBench  = "bench"
	OpPeers  = "peers"
	OpTrace  = "trace"
)

// Operations on a VC the control plane already holds (see node/vcops.go):
// the VC is named as "calls" lists it ("vc#12"), whichever session owns it.
const (
	OpAddParty  = "party-add"  // NdisClAddParty: add Dest as a leaf of multipoint VC Vc
	OpDropParty = "party-drop" // NdisClDropParty: drop party Party of VC Vc
	OpModify    = "modify"     // NdisClModifyCallQoS on VC Vc: the members of Tx and Rx that are set
	OpHangup    = "hangup"     // NdisClCloseCall on VC Vc; the session that owns it ends
)

// Limits of a bench request.
const (
	MaxBenchCalls       = 10_000_000
	MaxBenchConcurrency = 100_000
	MaxBenchHold        = 1_000_000
	// BenchHoldConcurrency is how many of the held calls of a bench
	// with Hold are set up at once (or Concurrency, if more).
	BenchHoldConcurrency = 64
	// BenchWarmupConcurrency is how many of a bench's warm-up calls
	// (Request.Warmup) are in flight at once (or as many as the measured
	// calls, if more): they are there to bring the nodes to their steady
	// state, not to be measured.
	BenchWarmupConcurrency = 64
)

// Request is the first line a client sends.
type Request struct {
	Op string `json:"op"` // OpCall, OpListen, OpCalls, OpStatus, OpPeers, OpBench or OpTrace

	// call
	Dest     string    `json:"dest,omitempty"`      // "node/service", as the call manager accepts it
	Tx       *Flowspec `json:"tx,omitempty"`        // transmit flowspec (the caller's); nil: not specified
	Rx       *Flowspec `json:"rx,omitempty"`        // receive flowspec
	Reliable bool      `json:"reliable,omitempty"`  // ask for reliable, ordered delivery
	LingerMs int64     `json:"linger_ms,omitempty"` // after end of input: close once quiet this long (0: at once)
	// A point-to-multipoint call: Dest is its first leaf (NdisClMakeCall
	// with a party), Parties the others, added with NdisClAddParty once
	// the call is up. Parties imply Multipoint.
	Multipoint bool     `json:"multipoint,omitempty"`
	Parties    []string `json:"parties,omitempty"`

	// listen
	Service string `json:"service,omitempty"` // the service to register a SAP for
	Echo    bool   `json:"echo,omitempty"`    // echo every SDU back on its VC instead of forwarding it
	// Tagged makes the session carry each of its calls apart: SDUs both
	// ways in vc data frames naming their call, a call closed with a vc
	// end frame, the end frame only deregistering the SAP. Not with Echo.
	Tagged bool `json:"tagged,omitempty"`
	// Quiet asks for no event frames (a call came, went, gained or lost a
	// party, changed its QoS): a listener that shows none of them saves
	// the node two frames per call and itself reading them. Data, error
	// and close frames come as without it. Not with Tagged, whose calls
	// are named in their events.
	Quiet bool `json:"quiet,omitempty"`

	// bench (with Dest, Tx and Rx)
	Calls       int `json:"calls,omitempty"`       // how many calls (1 to MaxBenchCalls)
	Concurrency int `json:"concurrency,omitempty"` // how many in flight at once (default 1, at most MaxBenchConcurrency)
	// Progress asks for a progress line about once a second while the
	// bench runs (Response.Progress), before the result.
	Progress bool `json:"progress,omitempty"`
	// Hold asks for a growth bench: first set up Hold calls to Dest and
	// keep them established, then make the measured calls, then release
	// the held ones (0 to MaxBenchHold; 0: none).
	Hold int `json:"hold,omitempty"`
	// Warmup asks for this many calls to Dest that are not measured,
	// made just before the measured ones (with Hold, once the held calls
	// are up), BenchWarmupConcurrency in flight or as many as the
	// measured calls if more (0 to MaxBenchCalls; 0: none). Setting up
	// many calls to hold grows a node's live heap, and so the heap the
	// collector lets it fill before it collects: the calls after are the
	// first to use that memory, and fault its pages in
	// (docs/performance.md).
	Warmup int `json:"warmup,omitempty"`

	// party-add (with Dest), party-drop, modify (with Tx and Rx), hangup
	Vc    string `json:"vc,omitempty"`    // the VC, as "calls" names it
	Party string `json:"party,omitempty"` // party-drop: the party, as "calls" names it ("party#9")
}

// Response is the node's answer line.
type Response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"` // one line, for people

	// When a CoNDIS request failed: its NDIS status and the Q.2931 cause.
	Status    string `json:"status,omitempty"`
	Cause     int    `json:"cause,omitempty"`
	CauseText string `json:"cause_text,omitempty"`

	// call: the VC and what the call manager granted.
	Vc     string    `json:"vc,omitempty"`
	MaxSDU int       `json:"max_sdu,omitempty"` // the largest SDU the client may send
	Tx     *Flowspec `json:"tx,omitempty"`
	Rx     *Flowspec `json:"rx,omitempty"`

	// calls: how many call frames follow
	Count int `json:"count,omitempty"`

	// status
	Node *NodeStatus `json:"node,omitempty"`

	// peers: every peer of the node, in name order
	Peers []PeerInfo `json:"peers,omitempty"`

	// calls: the node's own address, when its call manager has one (an
	// AddressReporter: for the Q.2931 call manager, its ATM End System
	// Address)
	Address string `json:"address,omitempty"`

	// bench
	Bench *BenchResult `json:"bench,omitempty"`
	// bench with progress: a progress line (the result comes later)
	Progress *BenchProgress `json:"progress,omitempty"`

	// call (multipoint): every leaf asked for, the first one first, and
	// what became of it; party-add: the party added.
	Parties []PartyInfo `json:"parties,omitempty"`
	Party   string      `json:"party,omitempty"`
	// A flowspec the call manager cannot signal (modify): the member at
	// fault, as q2931.FlowspecError names it.
	Fault *FlowspecFault `json:"flowspec_fault,omitempty"`
}

// BenchProgress is how far a bench has got.
type BenchProgress struct {
	Calls     int     `json:"calls"`     // calls asked for
	Started   int     `json:"started"`   // MakeCalls issued
	Done      int     `json:"done"`      // calls over: connected and closed, or failed
	Connected int     `json:"connected"` // of which connected
	Failed    int     `json:"failed"`
	Seconds   float64 `json:"seconds"` // since the first MakeCall
	// Warmup marks the progress of the warm-up's calls (Request.Warmup),
	// which come first; Calls is then the warm-up's.
	Warmup bool `json:"warmup,omitempty"`
}

// PartyInfo is one leaf of a point-to-multipoint call.
type PartyInfo struct {
	Party string `json:"party,omitempty"` // the party handle ("party#9"); "" if it was never added
	Dest  string `json:"dest,omitempty"`  // "node/service", when the control plane added it
	State string `json:"state"`           // ADDING, CONNECTED, DROP_INDICATED, DROPPING, ... as the mediator says; FAILED
	// A failed add: why, as a call failure is reported.
	Error     string `json:"error,omitempty"`
	Status    string `json:"status,omitempty"`
	Cause     int    `json:"cause,omitempty"`
	CauseText string `json:"cause_text,omitempty"`
}

// FlowspecFault is a flowspec member the call manager cannot signal.
type FlowspecFault struct {
	Field string `json:"field"` // TokenRate, TokenBucketSize, PeakBandwidth or ServiceType
	Value uint32 `json:"value"`
	Limit uint32 `json:"limit"` // the largest value allowed; 0 when none would do
}

// BenchResult is the outcome of a bench request.
type BenchResult struct {
	Dest        string `json:"dest"`
	Calls       int    `json:"calls"`       // calls made (MakeCall issued)
	Connected   int    `json:"connected"`   // of which connected (MakeCallComplete with SUCCESS) and then closed
	Failed      int    `json:"failed"`      // of which failed: MakeCall, or NdisCoCreateVc, refused
	Concurrency int    `json:"concurrency"` // in flight at once
	// Stopped says why the bench ended before making every call asked
	// for (the client went away, the node is shutting down, ...).
	Stopped    string `json:"stopped,omitempty"`
	FirstError string `json:"first_error,omitempty"` // the first failure, as a call session would report it

	Seconds float64 `json:"seconds"` // from the first MakeCall to the last VC deleted
	// Rate is Connected / Seconds: calls set up and torn down per second.
	Rate float64 `json:"calls_per_second"`
	// Setup is the setup latency of the connected calls: from
	// NdisClMakeCall to ProtocolClMakeCallComplete, SETUP to CONNECT.
	Setup Latency `json:"setup_us"`
	// Cycle is a connected call's whole life: from NdisClMakeCall until
	// its VC is deleted after NdisClCloseCall completed.
	Cycle Latency `json:"cycle_us"`

	// A bench with Hold: how many calls were asked to be held, how many
	// were established and held while the measured calls ran, and how
	// many of those the far end closed before they were released.
	Hold     int `json:"hold,omitempty"`
	Held     int `json:"held,omitempty"`
	HeldLost int `json:"held_lost,omitempty"`
	// HoldSeconds is how long setting up the held calls took.
	HoldSeconds float64 `json:"hold_seconds,omitempty"`
	// HeapPerHeldVc is this node's live Go heap (after a garbage
	// collection) with the calls held, less the same before they were set
	// up, divided by Held, in octets. It is the calling node's memory
	// only; the called node's is not measured.
	HeapPerHeldVc float64 `json:"heap_per_held_vc,omitempty"`
	// Warmup is the run of the request's unmeasured calls
	// (Request.Warmup), nil without any. A warm-up with a failed call
	// ends the bench before the measured calls: Stopped says so.
	Warmup *BenchResult `json:"warmup,omitempty"`
}

// Latency summarises durations, in microseconds.
type Latency struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// Flowspec is the JSON form of a FLOWSPEC. Absent (zero) fields are
// QOS_NOT_SPECIFIED.
type Flowspec struct {
	Service string `json:"service,omitempty"` // best-effort, controlled-load, guaranteed, no-traffic, ...
	Rate    uint32 `json:"rate,omitempty"`    // TokenRate, bytes/s
	Bucket  uint32 `json:"bucket,omitempty"`  // TokenBucketSize, bytes
	Peak    uint32 `json:"peak,omitempty"`    // PeakBandwidth, bytes/s
	MaxSDU  uint32 `json:"max_sdu,omitempty"` // MaxSduSize, bytes
	Latency uint32 `json:"latency,omitempty"` // microseconds
	Jitter  uint32 `json:"delay_variation,omitempty"`
	MinSize uint32 `json:"min_policed,omitempty"` // MinimumPolicedSize, bytes
}

var serviceNames = []struct {
	t    ndis.ServiceType
	name string
}{
	{ndis.ServiceNoTraffic, "no-traffic"},
	{ndis.ServiceBestEffort, "best-effort"},
	{ndis.ServiceControlledLoad, "controlled-load"},
	{ndis.ServiceGuaranteed, "guaranteed"},
	{ndis.ServiceNetworkUnavailable, "network-unavailable"},
	{ndis.ServiceGeneralInformation, "general-information"},
	{ndis.ServiceNoChange, "no-change"},
	{ndis.ServiceNonConforming, "non-conforming"},
	{ndis.ServiceNetworkControl, "network-control"},
	{ndis.ServiceQualitative, "qualitative"},
}

// ParseServiceType returns the SERVICETYPE called name (as Flowspec.Service
// spells it).
func ParseServiceType(name string) (ndis.ServiceType, error) {
	for _, s := range serviceNames {
		if s.name == name {
			return s.t, nil
		}
	}
	return 0, fmt.Errorf("unknown service type %q (best-effort, controlled-load or guaranteed)", name)
}

func serviceTypeName(t ndis.ServiceType) string {
	for _, s := range serviceNames {
		if s.t == t {
			return s.name
		}
	}
	return "0x" + strconv.FormatUint(uint64(t), 16)
}

func specified(v uint32) uint32 {
	if v == ndis.QoSNotSpecified {
		return 0
	}
	return v
}

func orUnspecified(v uint32) uint32 {
	if v == 0 {
		return ndis.QoSNotSpecified
	}
	return v
}

// FlowspecOf returns the JSON form of f.
func FlowspecOf(f ndis.Flowspec) *Flowspec {
	return &Flowspec{
		Service: serviceTypeName(f.ServiceType),
		Rate:    specified(f.TokenRate), Bucket: specified(f.TokenBucketSize), Peak: specified(f.PeakBandwidth),
		MaxSDU: specified(f.MaxSduSize), Latency: specified(f.Latency), Jitter: specified(f.DelayVariation),
		MinSize: specified(f.MinimumPolicedSize),
	}
}

// Ndis returns the FLOWSPEC f describes; a nil f is best effort with
// nothing specified.
func (f *Flowspec) Ndis() (ndis.Flowspec, error) {
	if f == nil {
		f = &Flowspec{}
	}
	st := ndis.ServiceBestEffort
	if f.Service != "" {
		var err error
		if st, err = ParseServiceType(f.Service); err != nil {
			return ndis.Flowspec{}, err
		}
	}
	return ndis.Flowspec{
		ServiceType: st,
		TokenRate:   orUnspecified(f.Rate), TokenBucketSize: orUnspecified(f.Bucket), PeakBandwidth: orUnspecified(f.Peak),
		MaxSduSize: orUnspecified(f.MaxSDU), Latency: orUnspecified(f.Latency), DelayVariation: orUnspecified(f.Jitter),
		MinimumPolicedSize: orUnspecified(f.MinSize),
	}, nil
}

// CallInfo describes one VC of the node, as `condis calls` lists it: what
// the mediator's snapshot says of it, plus the peer and service the control
// plane knows for its own calls.
type CallInfo struct {
	Vc         string    `json:"vc"`
	Kind       string    `json:"kind"`   // outgoing, incoming(MCM), ...
	Client     string    `json:"client"` // the client driver on the VC
	State      string    `json:"state"`  // call state: OUT_SETUP, CONNECTED, CLOSING, ...
	Activation string    `json:"activation"`
	Closing    bool      `json:"closing,omitempty"`
	Peer       string    `json:"peer,omitempty"`    // the node at the other end, when known
	Service    string    `json:"service,omitempty"` // the service called or listened on, when known
	Tx         *Flowspec `json:"tx,omitempty"`
	Rx         *Flowspec `json:"rx,omitempty"`
	Parties    int       `json:"parties"`
	// Leaves are the parties of a multipoint VC: the handles as
	// party-drop takes them, and the destination of those the control
	// plane added.
	Leaves    []PartyInfo `json:"leaves,omitempty"`
	TxPackets uint64      `json:"tx_packets"`
	TxBytes   uint64      `json:"tx_bytes"`
	TxErrors  uint64      `json:"tx_errors,omitempty"`
	RxPackets uint64      `json:"rx_packets"`
	RxBytes   uint64      `json:"rx_bytes"`
	RxDrops   uint64      `json:"rx_drops,omitempty"`
	// TxPoliced counts the SDUs the control plane sent on the VC that the
	// call manager dropped because they did not conform to the transmit
	// flowspec (completed with NDIS_STATUS_RESOURCES); for the VCs of
	// other clients it is not known (0).
	TxPoliced uint64 `json:"tx_policed,omitempty"`
}

// NodeStatus is the answer to a status request: what a node is and how
// it is doing.
type NodeStatus struct {
	Node    string `json:"node"`              // the node's name (its mediator's)
	Address string `json:"address,omitempty"` // its ATM End System Address, when its call manager has one
	Version string `json:"version,omitempty"` // the build of condis the node runs, when known
	// Topology is how its call manager sits on the network: "integrated"
	// or "split" ([Topology]), when the call manager says.
	Topology Topology `json:"topology,omitempty"`
	// Started is when the node's control plane started: the node's
	// start, give or take its call manager's.
	Started time.Time `json:"started"`
	Uptime  float64   `json:"uptime_seconds"`
	Vcs     int       `json:"vcs"` // VCs the mediator holds, whoever created them
	// VcStates counts those VCs by the state of their call, as the
	// mediator names it: IDLE (no call), OUT_SETUP, OFFERED, ACCEPTED,
	// CONNECTED, CLOSE_INDICATED, CLOSING, CLOSED.
	VcStates map[string]int `json:"vc_states"`
	// Saps are the SAPs registered with the call manager, whoever
	// registered them, in the order of their handles.
	Saps []SapStatus `json:"saps"`
	// Violations counts the CoNDIS contract violations the node's mediator
	// has reported since it started: every refused request and every
	// broken driver obligation, by rule ID ("R-VC-6"). Our own drivers
	// must never cause one.
	Violations map[string]uint64 `json:"violations"`
	// IP is IP over condis on this node, nil without an [ip] section.
	IP *IPStatus `json:"ip,omitempty"`
}

// IPStatus is a node's IP over condis interface: its device, its
// address, its MTU now, the destination nodes with their VCs, and its
// counters.
type IPStatus struct {
	Device  string          `json:"device"`
	Address string          `json:"address"`
	MTU     int             `json:"mtu"`
	Peers   []ipvc.PeerInfo `json:"peers"`
	Stats   ipvc.Stats      `json:"stats"`
}

// SapStatus is one SAP of a node.
type SapStatus struct {
	Sap     string `json:"sap"`               // its handle, as ndis names it: "sap#3"
	Service string `json:"service,omitempty"` // the service it listens on, when the call manager can read it
	Client  string `json:"client"`            // the client driver that registered it ("control": a condis listen session)
	State   string `json:"state"`             // REGISTERING, REGISTERED or DEREGISTERING
}

// ViolationTotal is the number of violations of every rule.
func (s NodeStatus) ViolationTotal() uint64 {
	var n uint64
	for _, c := range s.Violations {
		n += c
	}
	return n
}

// Kinds of trace events (TraceEvent.Kind).
const (
	TraceSignal    = "signal"    // a Q.2931 message sent or received
	TraceCall      = "call"      // a call offered, refused, connected, failed or released
	TraceLink      = "link"      // a link to a peer up or down
	TraceHandshake = "handshake" // a connection refused before it became a link
	TraceNdis      = "ndis"      // a mediator request, return, handler call or refusal
)

// TraceEvent is the payload of a trace frame: one event of the node (see
// The trace stream in the package documentation). Kind says which of the
// groups of fields below it has.
type TraceEvent struct {
	Kind string    `json:"kind"` // TraceSignal, TraceCall, TraceLink, TraceHandshake or TraceNdis
	Time time.Time `json:"time"`
	Node string    `json:"node"`
	Peer string    `json:"peer,omitempty"`

	// Event is what happened: for a call offered, refused, connected,
	// failed or released (trace.CallEvent); for a link up or down; for a
	// handshake refused; for ndis request, return, upcall, handled or
	// refused (ndis.EventKind).
	Event string `json:"event,omitempty"`

	// signal (and call: the call's reference, and the flag of the messages
	// this node sends on it)
	Dir     string  `json:"dir,omitempty"`      // "out" (sent to Peer) or "in" (received from it)
	Type    string  `json:"type,omitempty"`     // the message type, from the header: "SETUP", "RELEASE COMPLETE", ...
	CallRef *uint32 `json:"call_ref,omitempty"` // the call reference value, from the header
	Flag    *bool   `json:"flag,omitempty"`     // the call reference flag: false from the side that allocated the value
	Local   string  `json:"local,omitempty"`    // this node's UDP address on the link, when known
	Msg     []byte  `json:"msg,omitempty"`      // the whole message, as on the wire (base64 in JSON)

	// signal and handshake: the peer's UDP address, when known
	Remote string `json:"remote,omitempty"`

	// call
	Service   string `json:"service,omitempty"`
	Vc        string `json:"vc,omitempty"`
	Incoming  bool   `json:"incoming,omitempty"` // the peer called this node
	Cause     int    `json:"cause,omitempty"`    // the Q.2931 cause of a refused, failed or released call
	CauseText string `json:"cause_text,omitempty"`
	ByPeer    bool   `json:"by_peer,omitempty"`  // released by the peer or the network
	SetupUs   int64  `json:"setup_us,omitempty"` // a connected outgoing call: NdisClMakeCall to MakeCallComplete

	// call (failed, released) and ndis (return, handled, refused): an NDIS status
	Status string `json:"status,omitempty"`

	// link and handshake
	Reason string `json:"reason,omitempty"` // in words: "timeout", "unknown authority", ...
	Error  string `json:"error,omitempty"`
	Dialed bool   `json:"dialed,omitempty"` // handshake: this node dialled

	// ndis (ndis.Event)
	Seq    uint64 `json:"seq,omitempty"`
	Driver string `json:"driver,omitempty"` // the caller of a request, the callee of a handler
	Func   string `json:"func,omitempty"`   // the DDI function or handler
	Object string `json:"object,omitempty"` // the handle it was about ("vc#3")
}

// Events of a listen session.
const (
	EventCall   = "call"   // a call to the service came up
	EventClosed = "closed" // one of the session's calls went away
)

// Events of a call session (changes made from other sessions, or by the
// network).
const (
	EventPartyAdded   = "party-added"   // a leaf joined the multipoint call (Party, Dest)
	EventPartyDropped = "party-dropped" // a leaf left or was dropped (Party, Dest, CloseInfo: why)
	EventQoS          = "qos"           // the call's flowspecs changed (Tx, Rx: now in force)
)

// Event is the payload of an event frame.
type Event struct {
	Event string `json:"event"` // EventCall, EventClosed, EventPartyAdded, EventPartyDropped or EventQoS
	Vc    string `json:"vc"`
	Peer  string `json:"peer,omitempty"`
	Party string `json:"party,omitempty"` // party events
	Dest  string `json:"dest,omitempty"`  // party events: the leaf's node/service, when known
	// EventQoS: the flowspecs now in force.
	Tx *Flowspec `json:"tx,omitempty"`
	Rx *Flowspec `json:"rx,omitempty"`
	// EventCall of a tagged listen session: the largest SDU the client may
	// send on the call, and whether the caller asked for a reliable VC.
	MaxSDU   int  `json:"max_sdu,omitempty"`
	Reliable bool `json:"reliable,omitempty"`
	*CloseInfo
}

// Who ended a session.
const (
	ByLocal  = "local"  // the client: end of input, or its listen session ended
	ByRemote = "remote" // the far end or the network
	ByNode   = "node"   // the node: shutting down, or the call manager withdrew its address family
	ByHangup = "hangup" // a hangup request on the node's control socket (condis hangup)
)

// CloseInfo is the payload of a close frame: how the session ended.
type CloseInfo struct {
	Normal    bool   `json:"normal"`           // an orderly end: exit status 0
	By        string `json:"by"`               // ByLocal, ByRemote or ByNode
	Status    string `json:"status,omitempty"` // NDIS close status
	Cause     int    `json:"cause,omitempty"`  // its Q.2931 cause
	CauseText string `json:"cause_text,omitempty"`
	Text      string `json:"text"` // one line for people
	// What the control plane sent on the call: SDUs handed to the call
	// manager, and of them those dropped by policing (the transmit
	// flowspec; completed with NDIS_STATUS_RESOURCES).
	Sent    uint64 `json:"sent,omitempty"`
	Policed uint64 `json:"policed,omitempty"`
}

// causeText is the name of a cause without its number.
func causeText(c uni.Cause) string {
	return strings.TrimSuffix(c.String(), " ("+strconv.Itoa(int(c))+")")
}

// describe renders a status and its cause the way the CLI prints them:
// "NDIS_STATUS_DEST_OUT_OF_ORDER (cause 27, destination out of order)".
func describe(st ndis.Status, c uni.Cause) string {
	return fmt.Sprintf("%v (cause %d, %s)", st, int(c), causeText(c))
}

// AppendVcData appends the payload of a vc data frame to b: the length of
// vc's name (one octet), the name ("vc#12"), then the SDU.
func AppendVcData(b []byte, vc string, sdu []byte) []byte {
	b = append(b, byte(len(vc)))
	b = append(b, vc...)
	return append(b, sdu...)
}

// ParseVcData splits the payload of a vc data frame into the call's VC
// name and the SDU (which shares p's memory).
func ParseVcData(p []byte) (vc string, sdu []byte, err error) {
	if len(p) == 0 || len(p) < 1+int(p[0]) || p[0] == 0 {
		return "", nil, errors.New("vc data frame without a VC name")
	}
	n := int(p[0])
	return string(p[1 : 1+n]), p[1+n:], nil
}

// readRequestLine reads the request line of a connection.
func readRequestLine(br *bufio.Reader) ([]byte, error) {
	return readLine(br, "request", MaxRequestLine)
}

// readLine reads one line of at most limit octets; what names the line in
// the error about a longer one.
func readLine(br *bufio.Reader, what string, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := br.ReadLine()
		if err != nil {
			return nil, err
		}
		line = append(line, chunk...)
		if len(line) > limit {
			return nil, fmt.Errorf("%s line longer than %d octets", what, limit)
		}
		if !isPrefix {
			return line, nil
		}
	}
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// appendJSON appends e as encoding/json marshals it (the tests hold it to
// that, byte for byte), without reflection.
//
// Nothing of e escapes: an event built on the stack stays there.
func (e *Event) appendJSON(b []byte) []byte {
	b = append(b, `{"event":`...)
	b = appendJSONString(b, e.Event)
	b = append(b, `,"vc":`...)
	b = appendJSONString(b, e.Vc)
	if e.Peer != "" {
		b = append(b, `,"peer":`...)
		b = appendJSONString(b, e.Peer)
	}
	if e.Party != "" {
		b = append(b, `,"party":`...)
		b = appendJSONString(b, e.Party)
	}
	if e.Dest != "" {
		b = append(b, `,"dest":`...)
		b = appendJSONString(b, e.Dest)
	}
	if e.Tx != nil {
		b = append(b, `,"tx":`...)
		b = e.Tx.appendJSON(b)
	}
	if e.Rx != nil {
		b = append(b, `,"rx":`...)
		b = e.Rx.appendJSON(b)
	}
	if e.MaxSDU != 0 {
		b = append(b, `,"max_sdu":`...)
		b = strconv.AppendInt(b, int64(e.MaxSDU), 10)
	}
	if e.Reliable {
		b = append(b, `,"reliable":true`...)
	}
	if ci := e.CloseInfo; ci != nil {
		b = append(b, `,"normal":`...)
		b = strconv.AppendBool(b, ci.Normal)
		b = append(b, `,"by":`...)
		b = appendJSONString(b, ci.By)
		if ci.Status != "" {
			b = append(b, `,"status":`...)
			b = appendJSONString(b, ci.Status)
		}
		if ci.Cause != 0 {
			b = append(b, `,"cause":`...)
			b = strconv.AppendInt(b, int64(ci.Cause), 10)
		}
		if ci.CauseText != "" {
			b = append(b, `,"cause_text":`...)
			b = appendJSONString(b, ci.CauseText)
		}
		b = append(b, `,"text":`...)
		b = appendJSONString(b, ci.Text)
		if ci.Sent != 0 {
			b = append(b, `,"sent":`...)
			b = strconv.AppendUint(b, ci.Sent, 10)
		}
		if ci.Policed != 0 {
			b = append(b, `,"policed":`...)
			b = strconv.AppendUint(b, ci.Policed, 10)
		}
	}
	return append(b, '}')
}

// appendJSON appends f as encoding/json marshals it.
func (f *Flowspec) appendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	sep := func(b []byte, name string) []byte {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, name...)
		return append(b, '"', ':')
	}
	if f.Service != "" {
		b = sep(b, "service")
		b = appendJSONString(b, f.Service)
	}
	for _, n := range [...]struct {
		name string
		v    uint32
	}{{"rate", f.Rate}, {"bucket", f.Bucket}, {"peak", f.Peak}, {"max_sdu", f.MaxSDU}, {"latency", f.Latency},
		{"delay_variation", f.Jitter}, {"min_policed", f.MinSize}} {
		if n.v != 0 {
			b = sep(b, n.name)
			b = strconv.AppendUint(b, uint64(n.v), 10)
		}
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string the way encoding/json does:
// HTML-safe, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
