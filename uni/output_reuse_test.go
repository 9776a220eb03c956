package uni

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"github.com/condis-project/condis/internal/racedetect"
)

// consumed is what an owner in reuse mode takes from an Output before
// the next input, as callctl's ApplyLocked does: the messages encoded,
// the timer operations applied (copied here) and the indications copied
// by value (kept, which shares what they point to). want is a deep copy
// of kept taken at once, and msgs the encodings of the lent messages.
type consumed struct {
	sent   [][]byte
	errs   []bool
	timers []TimerOp
	kept   []Indication
	want   []Indication
	msgs   [][]byte
	// offered counts the messages that came with the Link's encoding
	// (Outgoing.Enc), badEnc those whose encoding was not the message's.
	offered, badEnc int
}

func consume(o Output) consumed {
	var c consumed
	for _, og := range o.Messages {
		b, err := og.Msg.Encode()
		c.sent, c.errs = append(c.sent, b), append(c.errs, err != nil)
		if og.Enc != nil {
			c.offered++
			if !bytes.Equal(og.Enc, b) {
				c.badEnc++
			}
		}
	}
	c.timers = slices.Clone(o.Timers)
	for _, ind := range o.Indications {
		var enc []byte
		if ind.Msg != nil {
			enc, _ = ind.Msg.Encode()
		}
		c.msgs = append(c.msgs, enc)
		ind.Msg = nil // lent or the caller's: not what this test is about
		c.kept = append(c.kept, ind)
		if ind.Traffic != nil {
			td := *ind.Traffic
			ind.Traffic = &td
		}
		ind.Cause.Diagnostic = bytes.Clone(ind.Cause.Diagnostic)
		c.want = append(c.want, ind)
	}
	return c
}

// same compares what two Links' Outputs gave (the comparison ignores the
// kept copies, checked apart).
func (c consumed) same(d consumed) bool {
	return reflect.DeepEqual(c.sent, d.sent) && slices.Equal(c.errs, d.errs) && slices.Equal(c.timers, d.timers) &&
		reflect.DeepEqual(c.want, d.want) && reflect.DeepEqual(c.msgs, d.msgs)
}

// TestReuseOutputsSameAsDefault drives a Link with Config.ReuseOutputs
// and a default one with the same long random run of inputs (calls set up
// both ways, accepted, released by either side with causes that differ in
// value and diagnostic, crossing releases, timers expiring, STATUS
// ENQUIRY for unknown calls, the link failing and coming back): each
// Output, carried out at once, gives the same messages, timer operations
// and indications; and the indications an owner copied (which share their
// Cause diagnostics and Traffic with the Link) are unchanged at the end,
// after thousands of later inputs reused the Output storage. Only the
// Link with reuse offers the encodings it made of requests' messages
// (Outgoing.Enc), and each is the message's.
func TestReuseOutputsSameAsDefault(t *testing.T) {
	def, re := NewLink(Config{}), NewLink(Config{ReuseOutputs: true})
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		calls   []CallID
		running = map[TimerKey]bool{}
		kept    []consumed
		step    int
		nextRef uint32 = 1
		offered int
	)
	cause := func() CauseIE {
		vals := []Cause{CauseNormalCallClearing, CauseUserBusy, CauseTemporaryFailure, CauseInvalidIEContents, CauseNoRouteToDestination}
		diag := make([]byte, rng.IntN(3))
		for i := range diag {
			diag[i] = byte(rng.IntN(256))
		}
		return NewCause(vals[rng.IntN(len(vals))], diag...)
	}
	apply := func(what string, od Output, ed error, or Output, er error) {
		t.Helper()
		step++
		if (ed == nil) != (er == nil) {
			t.Fatalf("step %d %s: default error %v, reuse error %v", step, what, ed, er)
		}
		cd, cr := consume(od), consume(or)
		if !cd.same(cr) {
			t.Fatalf("step %d %s: outputs differ\ndefault %+v\nreuse   %+v", step, what, cd, cr)
		}
		if cd.offered != 0 || cr.badEnc != 0 {
			t.Fatalf("step %d %s: the default Link offered %d encodings; %d of the %d the reusing one offered are not the message's", step, what, cd.offered, cr.badEnc, cr.offered)
		}
		offered += cr.offered
		kept = append(kept, cr)
		for _, op := range cd.timers {
			if op.Start {
				running[op.Key] = true
			} else {
				delete(running, op.Key)
			}
		}
		for _, ind := range cd.want {
			switch ind.Kind {
			case IndSetup:
				calls = append(calls, ind.Call)
			case IndReleased:
				calls = slices.DeleteFunc(calls, func(id CallID) bool { return id == ind.Call })
				for k := range running {
					if k.Call == ind.Call {
						delete(running, k)
					}
				}
			}
		}
	}
	both := func(what string, f func(l *Link) (Output, error)) {
		t.Helper()
		od, ed := f(def)
		or, er := f(re)
		apply(what, od, ed, or, er)
	}
	receive := func(what string, m *Message) {
		t.Helper()
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		both(what, func(l *Link) (Output, error) { return l.ReceiveBytes(bytes.Clone(b)), nil })
	}
	pick := func() (CallID, bool) {
		if len(calls) == 0 {
			return CallID{}, false
		}
		return calls[rng.IntN(len(calls))], true
	}

	for range 4000 {
		id, have := pick()
		switch op := rng.IntN(14); {
		case op == 0 && len(calls) < 40:
			ref := nextRef
			nextRef++
			receive("peer SETUP", peerMsg(MsgSetup, CallID{Ref: ref}))
		case op == 1 && len(calls) < 40:
			var id CallID
			both("Setup", func(l *Link) (Output, error) {
				cid, o, err := l.Setup(setupMsg(false))
				id = cid
				return o, err
			})
			calls = append(calls, id)
		case op == 2 && have:
			both("Accept", func(l *Link) (Output, error) { return l.Accept(id, nil) })
		case op == 3 && have:
			c := NewCause(CauseNormalCallClearing)
			both("Proceed or CONNECT ACKNOWLEDGE", func(l *Link) (Output, error) {
				if !id.Local {
					return l.Proceed(id, &ConnectionID{VPAssociated: 1, VPCI: 1, VCI: uint16(32 + id.Ref)})
				}
				return l.Reject(id, c)
			})
			if !id.Local {
				receive("peer CONNECT ACKNOWLEDGE", peerMsg(MsgConnectAck, id))
			}
		case op == 4 && have && id.Local:
			receive("peer CONNECT", peerMsg(MsgConnect, id))
		case (op == 5 || op == 6) && have:
			c := cause()
			both("Release", func(l *Link) (Output, error) { return l.Release(id, c) })
		case op == 7 && have:
			receive("peer RELEASE", &Message{Type: MsgRelease, CallRef: peerRef(id), Causes: []CauseIE{cause()}})
		case op == 8 && have:
			receive("peer RELEASE COMPLETE", &Message{Type: MsgReleaseComplete, CallRef: peerRef(id), Causes: []CauseIE{cause()}})
		case op == 9 || op == 10:
			if len(running) == 0 {
				continue
			}
			keys := make([]TimerKey, 0, len(running))
			for k := range running {
				keys = append(keys, k)
			}
			slices.SortFunc(keys, func(a, b TimerKey) int {
				if a.Call.Ref != b.Call.Ref {
					return int(a.Call.Ref) - int(b.Call.Ref)
				}
				if a.Call.Local != b.Call.Local {
					if a.Call.Local {
						return -1
					}
					return 1
				}
				return int(a.Timer) - int(b.Timer)
			})
			k := keys[rng.IntN(len(keys))]
			delete(running, k)
			both("Expire "+k.Timer.String(), func(l *Link) (Output, error) { return l.Expire(k), nil })
		case op == 11:
			receive("peer STATUS ENQUIRY for an unknown call", &Message{Type: MsgStatusEnquiry, CallRef: CallRef{Value: 0x7000 + uint32(rng.IntN(9))}})
		case op == 12 && have:
			both("StatusEnquiry", func(l *Link) (Output, error) { return l.StatusEnquiry(id) })
		case op == 13 && rng.IntN(20) == 0:
			both("LinkDown", func(l *Link) (Output, error) { return l.LinkDown(), nil })
			both("LinkUp", func(l *Link) (Output, error) { return l.LinkUp(), nil })
		}
	}
	for i, c := range kept {
		if !reflect.DeepEqual(c.kept, c.want) {
			t.Fatalf("output %d: the indications copied from it changed after later inputs:\n got %+v\nwant %+v", i, c.kept, c.want)
		}
	}
	if step < 2000 {
		t.Fatalf("only %d inputs ran", step)
	}
	if offered < 100 {
		t.Fatalf("only %d encodings of SETUPs and CONNECTs offered", offered)
	}
}

// TestReuseOutputsT308ResendsItsOwnCause: the RELEASE a T308 expiry
// sends again carries the cause of the first RELEASE of that call, though
// in reuse mode the first RELEASE was built in the Output storage that
// later inputs (another call's RELEASE with another cause) overwrote.
func TestReuseOutputsT308ResendsItsOwnCause(t *testing.T) {
	l := NewLink(Config{ReuseOutputs: true})
	a, b := CallID{Ref: 1}, CallID{Ref: 2}
	for _, id := range []CallID{a, b} {
		wantInds(t, l.Receive(peerMsg(MsgSetup, id)), IndSetup)
		ok(t)(l.Accept(id, nil))
		wantInds(t, l.Receive(peerMsg(MsgConnectAck, id)), IndConnected)
	}
	causeA := NewCause(CauseUserBusy, 0x11)
	causeB := NewCause(CauseTemporaryFailure, 0x22, 0x33)
	first := ok(t)(l.Release(a, causeA))
	firstMsg := first.Messages[0].Msg
	second := ok(t)(l.Release(b, causeB))
	if second.Messages[0].Msg != firstMsg || &second.Messages[0] != &first.Messages[0] {
		t.Fatal("reuse mode built the second RELEASE in new storage: the Output storage is not reused")
	}
	o := l.Expire(TimerKey{Timer: T308, Call: a})
	if len(o.Messages) != 1 || o.Messages[0].Msg.Type != MsgRelease {
		t.Fatalf("T308 expiry sent %v, want RELEASE", msgTypes(o))
	}
	if got := o.Messages[0].Msg.Causes; len(got) != 1 || !reflect.DeepEqual(got[0], causeA) {
		t.Errorf("T308 RELEASE of call A carries causes %+v, want its first RELEASE's %+v", got, causeA)
	}
	o = l.Receive(peerMsg(MsgReleaseComplete, a))
	wantInds(t, o, IndReleased)
	if got := o.Indications[0].Cause; !reflect.DeepEqual(got, causeA) {
		t.Errorf("IndReleased of call A: cause %+v, want its RELEASE's %+v", got, causeA)
	}
}

// TestReuseOutputsGarbage: a whole call over two Links in reuse mode
// (each Output carried out before the next input, as callctl does) leaves
// little garbage per call: no call records (recycled), no share of blocks
// of Outputs or messages; far less than in the default mode.
func TestReuseOutputsGarbage(t *testing.T) {
	if racedetect.Enabled {
		t.Skip("the race detector changes allocations")
	}
	perCall := func(cfg Config) uint64 {
		call := wholeCall(t, NewLink(cfg), NewLink(cfg), true)
		for range 100 {
			call() // the Decoders' and the reused Outputs' storage
		}
		const n = 2000
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range n {
			call()
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / n
	}
	def, re := perCall(Config{}), perCall(Config{ReuseOutputs: true})
	t.Logf("bytes allocated per call over both Links: default %d, reuse %d", def, re)
	// The caller's SETUP encoding's share of a block (call records are
	// recycled, the causes kept from the RELEASEs shared).
	if re > 120 {
		t.Errorf("reuse mode allocates %d bytes per call, want at most 120", re)
	}
	if re*2 > def {
		t.Errorf("reuse mode allocates %d bytes per call, default %d: want at most half", re, def)
	}
}

// TestCallRecordRecycled: a call's record is reused for a later call once
// the input that ended the first has returned, and the new call starts
// with none of the old one's state: no context, connection identifier,
// modification, kept cause or timer.
func TestCallRecordRecycled(t *testing.T) {
	l := NewLink(Config{ReuseOutputs: true})
	a := CallID{Ref: 1}
	wantInds(t, l.Receive(peerMsg(MsgSetup, a)), IndSetup)
	old := l.calls.Get(a.key())
	l.SetCallContext(a, "call A's record")
	ok(t)(l.Accept(a, &Message{ConnectionID: &ConnectionID{VPAssociated: 1, VPCI: 7, VCI: 77}}))
	wantInds(t, l.Receive(peerMsg(MsgConnectAck, a)), IndConnected)
	ok(t)(l.ModifyQoS(a, trafficUBR()))
	ok(t)(l.Release(a, NewCause(CauseUserBusy, 0x42)))
	wantInds(t, l.Receive(peerMsg(MsgReleaseComplete, a)), IndReleased)
	// The next input frees the record: it no longer holds the call
	// manager's context (which would stay reachable).
	l.Receive(&Message{Type: MsgStatusEnquiry, CallRef: CallRef{Value: 99}})
	if old.ctx != nil || old.release != nil || old.state != 0 {
		t.Errorf("a free call record still holds its call's state: %+v", *old)
	}

	b := CallID{Ref: 2}
	m := peerMsg(MsgSetup, b)
	m.ConnectionID = nil
	o := l.Receive(m)
	wantInds(t, o, IndSetup)
	if l.calls.Get(b.key()) != old {
		t.Fatal("the second call did not reuse the first call's record")
	}
	if ctx := o.Indications[0].Context; ctx != nil {
		t.Errorf("IndSetup of the new call carries context %v, want none", ctx)
	}
	if ctx := l.CallContext(b); ctx != nil {
		t.Errorf("the new call has context %v, want none", ctx)
	}
	if ci, has := l.ConnectionID(b); has {
		t.Errorf("the new call has connection identifier %+v, want none", ci)
	}
	if ms, _ := l.ModifyState(b); ms != ModifyNone {
		t.Errorf("the new call's modification state is %v, want none", ms)
	}
	if st, _ := l.CallState(b); st != StateCallPresent {
		t.Errorf("the new call is in %v, want U6", st)
	}
	// Cleared locally, the new call reports its own cause, not the one the
	// old call kept from its RELEASE.
	o = ok(t)(l.Reject(b, NewCause(CauseNormalCallClearing)))
	wantInds(t, o, IndReleased)
	if got := o.Indications[0].Cause.Value; got != CauseNormalCallClearing {
		t.Errorf("IndReleased of the new call: cause %v, want normal call clearing", got)
	}
}
