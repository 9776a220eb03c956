package uni

import (
	"bytes"
	"reflect"
	"strconv"
	"testing"
	"unsafe"

	"github.com/condis-project/condis/internal/racedetect"
)

// reuseSetup is a SETUP from the peer for call reference ref, every field
// that ends up in an indication distinct per n.
func reuseSetup(ref uint32, n uint32) *Message {
	m := setupMsg(false)
	m.Type, m.CallRef = MsgSetup, CallRef{Value: ref}
	m.Traffic = &TrafficDescriptor{FwdPCR01: Some(1000 * n), BwdPCR01: Some(2000 * n)}
	called := aesaCallee
	called[19] = byte(n)
	m.Called = CalledAESA(called)
	m.Calling = calling()
	m.Calling.Address[5] = byte(n)
	m.ConnectionID = &ConnectionID{VPAssociated: 1, VPCI: uint16(n), VCI: uint16(32 + n)}
	m.BHLI = echoBHLI()
	return m
}

// TestReceiveBytesOutputSurvivesLaterMessages: ReceiveBytes decodes into
// storage the Link reuses and lends the decoded message to the
// indications (Indication.Msg, valid until the next ReceiveBytes). Everything
// else an Output carries (indications' causes and traffic descriptors,
// messages to send), everything the Link keeps in call state (the causes
// of a RELEASE) and the copy a consumer takes of a lent message with
// Clone must be the receiver's own: still intact after the Link decoded
// further messages into that storage and after the caller overwrote its
// input buffer.
func TestReceiveBytesOutputSurvivesLaterMessages(t *testing.T) {
	z := NewLink(Config{})
	var all []outputSnapshot
	receive := func(m *Message) Output {
		t.Helper()
		o, b := receiveEncoded(t, z, m)
		for i := range b {
			b[i] = 0xff // the caller reuses its buffer at once
		}
		all = append(all, snapshot(o))
		return o
	}

	// Two calls set up; their SETUPs differ in every kept IE. The first
	// SETUP, cloned while it was lent, is intact after the second.
	a, b := CallID{Ref: 1}, CallID{Ref: 2}
	receive(reuseSetup(1, 1))
	keptA := all[len(all)-1].kept[0]
	receive(reuseSetup(2, 2))
	if got := keptA; got == nil || got.Called.Address[19] != 1 || got.Traffic.FwdPCR01.Value != 1000 ||
		got.ConnectionID.VCI != 33 || got.Calling.Address[5] != 1 {
		t.Errorf("clone of the first SETUP's IndSetup message after a second was decoded: %+v", got)
	}
	for _, id := range []CallID{a, b} {
		ok(t)(z.Accept(id, nil))
		wantInds(t, receive(peerMsg(MsgConnectAck, id)), IndConnected)
	}

	// Both calls asked to change their traffic: the first request's
	// indication keeps its own descriptor.
	modify := func(id CallID, pcr uint32) *Message {
		return &Message{Type: MsgModifyRequest, CallRef: peerRef(id), Traffic: &TrafficDescriptor{FwdPCR01: Some(pcr), BwdPCR01: Some(pcr)}}
	}
	modA := receive(modify(a, 4444))
	receive(modify(b, 5555))
	if td := modA.Indications[0].Traffic; td == nil || td.FwdPCR01.Value != 4444 {
		t.Errorf("IndModify of call A carries traffic %+v, want PCR 4444", td)
	}

	// Both calls cleared by the peer with causes whose diagnostics differ;
	// an unknown call reference in between is answered with RELEASE
	// COMPLETE.
	causeA := NewCause(CauseInvalidIEContents, byte(IETraffic))
	causeB := NewCause(CauseMandatoryIEMissing, byte(IEQoS), byte(IEBearer))
	relA := receive(&Message{Type: MsgRelease, CallRef: peerRef(a), Causes: []CauseIE{causeA}})
	receive(&Message{Type: MsgStatusEnquiry, CallRef: CallRef{Value: 99}})
	receive(&Message{Type: MsgRelease, CallRef: peerRef(b), Causes: []CauseIE{causeB}})
	if got := relA.Indications[0]; got.Kind != IndRelease || !reflect.DeepEqual(got.Cause, causeA) {
		t.Errorf("IndRelease of call A: %v, cause %+v, want %+v", got, got.Cause, causeA)
	}

	// The local user completes the clearing: IndReleased reports the
	// peer's cause, which the Link kept in call state since the RELEASE.
	for _, c := range []struct {
		id    CallID
		cause CauseIE
	}{{a, causeA}, {b, causeB}} {
		o := ok(t)(z.Release(c.id, NewCause(CauseNormalCallClearing)))
		wantInds(t, o, IndReleased)
		if got := o.Indications[0].Cause; !reflect.DeepEqual(got, c.cause) {
			t.Errorf("IndReleased of %v: cause %+v, want the peer's %+v", c.id, got, c.cause)
		}
	}

	// Every Output as it was when ReceiveBytes returned it.
	for i, r := range all {
		r.check(t, "input "+strconv.Itoa(i))
	}
	if len(all[len(all)-2].out.Messages) != 1 || all[len(all)-2].out.Messages[0].Msg.Type != MsgStatus {
		t.Errorf("STATUS ENQUIRY for an unknown call: sent %v, want STATUS", msgTypes(all[len(all)-2].out))
	}
}

// TestReceiveBytesLendsIndicationMsg: the message an indication of
// ReceiveBytes carries is lent, not copied: the next ReceiveBytes decodes
// into the same storage (so a consumer that keeps it without copying sees
// the next message), and the consumer that keeps it calls Clone, whose
// copy shares nothing with that storage.
func TestReceiveBytesLendsIndicationMsg(t *testing.T) {
	z := NewLink(Config{})
	receive := func(m *Message) Output {
		t.Helper()
		o, _ := receiveEncoded(t, z, m)
		wantInds(t, o, IndSetup)
		return o
	}
	first := receive(reuseSetup(1, 1))
	lent := first.Indications[0].Msg
	kept := lent.Clone()
	if kept == lent || kept.Called == lent.Called || &kept.Called.Address[0] == &lent.Called.Address[0] || kept.Traffic == lent.Traffic {
		t.Fatal("Clone of a lent message shares storage with it")
	}
	second := receive(reuseSetup(2, 2))
	if second.Indications[0].Msg != lent {
		t.Errorf("the second SETUP's indication carries a new message (%p), want the lent storage %p reused: received messages are copied", second.Indications[0].Msg, lent)
	}
	if lent.CallRef.Value != 2 || lent.Called.Address[19] != 2 {
		t.Errorf("the lent message after the next ReceiveBytes is %v called %x, want the second SETUP's", lent.CallRef, lent.Called.Address)
	}
	if kept.CallRef.Value != 1 || kept.Called.Address[19] != 1 || kept.Calling.Address[5] != 1 ||
		kept.Traffic.FwdPCR01.Value != 1000 || kept.ConnectionID.VCI != 33 {
		t.Errorf("the clone kept of the first SETUP changed with the second: %+v", kept)
	}
}

// outputSnapshot is an Output and a deep copy of it taken when the Link
// returned it: its indications with copies of what they point to, its
// messages encoded, and the clones a consumer would keep of the lent
// indication messages (kept) with their encodings.
type outputSnapshot struct {
	out     Output
	want    []Indication
	sent    [][]byte
	errs    []error
	kept    []*Message
	keptEnc [][]byte
}

func snapshot(o Output) outputSnapshot {
	r := outputSnapshot{out: o}
	for _, ind := range o.Indications {
		if ind.Msg != nil {
			// The consumer's copy of the lent message: Clone.
			c := ind.Msg.Clone()
			enc, _ := ind.Msg.Encode()
			r.kept, r.keptEnc = append(r.kept, c), append(r.keptEnc, enc)
			ind.Msg = nil
		}
		if ind.Traffic != nil {
			td := *ind.Traffic
			ind.Traffic = &td
		}
		ind.Cause.Diagnostic = bytes.Clone(ind.Cause.Diagnostic)
		r.want = append(r.want, ind)
	}
	for _, og := range o.Messages {
		enc, err := og.Msg.Encode()
		r.sent, r.errs = append(r.sent, enc), append(r.errs, err)
	}
	return r
}

// check reports whether the Output (but for the lent Indication.Msg) or
// the clones kept of its lent messages changed since the snapshot.
func (r outputSnapshot) check(t *testing.T, what string) {
	t.Helper()
	var got []Indication
	for _, ind := range r.out.Indications {
		ind.Msg = nil // lent: valid only until the next ReceiveBytes
		got = append(got, ind)
	}
	if !reflect.DeepEqual(got, r.want) {
		t.Errorf("%s: indications changed after later messages:\n got %+v\nwant %+v", what, got, r.want)
	}
	for j, og := range r.out.Messages {
		enc, err := og.Msg.Encode()
		if !bytes.Equal(enc, r.sent[j]) || (err == nil) != (r.errs[j] == nil) {
			t.Errorf("%s: message %d to send changed after later messages: % x (%v), was % x (%v)", what, j, enc, err, r.sent[j], r.errs[j])
		}
	}
	for j, m := range r.kept {
		if enc, _ := m.Encode(); !bytes.Equal(enc, r.keptEnc[j]) {
			t.Errorf("%s: clone of lent message %d changed after later messages: % x, was % x", what, j, enc, r.keptEnc[j])
		}
	}
}

// FuzzLinkReceiveReuse: whatever a Link receives (any octets: messages
// for its calls, damaged ones, garbage), the Output ReceiveBytes returned
// for one input is unchanged after the caller overwrote the input and the
// Link received the next ones. The seeds are ordered pairs of FuzzDecode's
// seeds, so the second message often concerns the call the first set up.
func FuzzLinkReceiveReuse(f *testing.F) {
	seeds := seedMessages(f)
	for _, first := range seeds {
		for _, second := range seeds {
			f.Add(first.wire, second.wire)
		}
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		l := NewLink(Config{})
		var snaps []outputSnapshot
		for _, in := range [][]byte{first, second, first, second} {
			b := bytes.Clone(in)
			snaps = append(snaps, snapshot(l.ReceiveBytes(b)))
			for i := range b {
				b[i] ^= 0xff
			}
		}
		for i, r := range snaps {
			r.check(t, "input "+strconv.Itoa(i))
		}
	})
}

// TestCallAllocations: a whole call through two Links over the wire
// (SETUP, CONNECT, CONNECT ACKNOWLEDGE, RELEASE, RELEASE COMPLETE, each
// encoded into a reused buffer and given to ReceiveBytes) allocates
// nothing of its own over both Links: call records are recycled (begin);
// received messages are lent to the indications, not copied; the peer's
// cause the called side keeps in call state from the RELEASE is shared
// with every call that keeps the same cause (keptCause); and Outputs, the
// Link's own messages and the SETUP encodings kept for T303 come from
// blocks shared by many inputs.
func TestCallAllocations(t *testing.T) {
	if racedetect.Enabled {
		t.Skip("the race detector changes allocation counts")
	}
	call := wholeCall(t, NewLink(Config{}), NewLink(Config{}), false)
	call()         // the Decoders' storage
	const want = 0 // the blocks' share, SETUP encodings' included, rounds to 0
	if allocs := testing.AllocsPerRun(200, call); allocs > want {
		t.Errorf("a whole call allocates %.1f objects over both Links, want at most %d", allocs, want)
	}
}

// TestCallKey: distinct CallIDs (a local and a remote call may share a
// value) pack to distinct keys, and neighbouring references of one side
// to neighbouring keys (the calls table keeps those on one page).
func TestCallKey(t *testing.T) {
	for _, local := range []bool{false, true} {
		a, b := CallID{Ref: 41, Local: local}, CallID{Ref: 42, Local: local}
		if b.key() != a.key()+1 {
			t.Errorf("keys of references 41 and 42 (local %v) are %#x and %#x, want neighbours", local, a.key(), b.key())
		}
	}
	seen := map[uint64]CallID{}
	for _, ref := range []uint32{0, 1, 0x7FFFFF, 0xFFFFFFFF} {
		for _, local := range []bool{false, true} {
			id := CallID{Ref: ref, Local: local}
			if o, dup := seen[id.key()]; dup {
				t.Fatalf("calls %v and %v have the same key %#x", o, id, id.key())
			}
			seen[id.key()] = id
		}
	}
}

// TestCallRecordSize: the record a Link keeps for every call it holds
// stays in the 96-byte size class (it was 96 bytes with a Causes slice
// and padding between its fields, then 64; it carries the call manager's
// context, which saves the call manager a map of its own, and the
// SETUP's encoding for T303, which saves it keeping its message).
func TestCallRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(call{}); n > 96 {
		t.Errorf("call record is %d bytes, want at most 96: order the fields so that none is padded", n)
	}
}

// TestEncoder: an Encoder's encodings equal Encode's, stay intact while
// it encodes more (also after a message too long for the rest of a block,
// and after an error), cannot be appended to in place, and cost about one
// allocation per block.
func TestEncoder(t *testing.T) {
	var e Encoder
	type enc struct{ got, want []byte }
	var all []enc
	long := setupMsg(false)
	long.Type, long.CallRef = MsgSetup, CallRef{Value: 7}
	long.Called = &CalledPartyNumber{Type: NumberUnknown, Plan: PlanE164, Address: bytes.Repeat([]byte("5"), 3000)}
	if b, err := long.Encode(); err != nil || len(b) < encoderBlock/2 {
		t.Fatalf("the long SETUP encodes to %d octets (%v), want more than half a block", len(b), err)
	}
	msgs := append([]*Message{long}, goldenSetupMessage(), goldenReleaseCompleteMessage())
	for _, f := range fixtures() {
		msgs = append(msgs, f.m)
	}
	for range 20 {
		for _, m := range msgs {
			want, err := m.Encode()
			got, gerr := e.Encode(m)
			if (err == nil) != (gerr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("%v: Encoder gives % x (%v), Encode % x (%v)", m.Type, got, gerr, want, err)
			}
			if cap(got) != len(got) {
				t.Fatalf("%v: encoding has room to append in place (len %d cap %d)", m.Type, len(got), cap(got))
			}
			all = append(all, enc{got, want})
		}
		if _, err := e.Encode(&Message{Type: 0x42}); err == nil {
			t.Fatal("an unknown message type encoded")
		}
	}
	for i, x := range all {
		if !bytes.Equal(x.got, x.want) {
			t.Fatalf("encoding %d changed after later ones: % x, want % x", i, x.got, x.want)
		}
	}
	rc := goldenReleaseCompleteMessage()
	if allocs := testing.AllocsPerRun(1000, func() { _, _ = e.Encode(rc) }); allocs > 0.1 {
		t.Errorf("Encoder.Encode of a RELEASE COMPLETE allocates %.2f times, want a share of a block", allocs)
	}
}

// receiveEncoded encodes m and gives it to z's ReceiveBytes; it returns
// the Output and the buffer z decoded.
func receiveEncoded(t *testing.T, z *Link, m *Message) (Output, []byte) {
	t.Helper()
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return z.ReceiveBytes(b), b
}

// encodedHop carries the one message of an Output to another Link as the wire
// would, encoded and decoded, through one buffer it reuses (so it
// allocates nothing once grown).
type encodedHop struct {
	t   testing.TB
	buf []byte
}

func (w *encodedHop) deliver(to *Link, o Output) Output {
	w.t.Helper()
	if len(o.Messages) != 1 {
		w.t.Fatalf("expected one message, got %v", msgTypes(o))
	}
	var err error
	if w.buf, err = o.Messages[0].Msg.Append(w.buf[:0]); err != nil {
		w.t.Fatal(err)
	}
	return to.ReceiveBytes(w.buf)
}

// wholeCall returns a whole call from a to z: set up (with CALL
// PROCEEDING first when proceed), connected, then released from both
// ends at once, every message carried by one encodedHop.
func wholeCall(t testing.TB, a, z *Link, proceed bool) func() {
	setup := setupMsg(false)
	deliver := (&encodedHop{t: t}).deliver
	return func() {
		id, o, err := a.Setup(setup)
		if err != nil {
			t.Fatal(err)
		}
		in := deliver(z, o).Indications[0].Call
		if proceed {
			o, _ = z.Proceed(in, nil)
			deliver(a, o)
		}
		o, _ = z.Accept(in, nil)
		deliver(z, deliver(a, o))
		o, _ = a.Release(id, NewCause(CauseNormalCallClearing))
		deliver(z, o)
		o, _ = z.Release(in, NewCause(CauseNormalCallClearing))
		if o := deliver(a, o); len(o.Indications) != 1 || o.Indications[0].Kind != IndReleased {
			t.Fatalf("RELEASE COMPLETE: indications %v, want released", o.Indications)
		}
	}
}
