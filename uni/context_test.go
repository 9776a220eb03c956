package uni

import "testing"

// TestCallContext: the context a call manager attaches to a call comes
// back with every later indication about the call, IndReleased included
// (whether a message, a local request or a timer ended it), and from
// CallContext and EachCallContext until then; a call the Link does not
// hold takes none.
func TestCallContext(t *testing.T) {
	l := NewLink(Config{})
	if _, ok := l.SetCallContext(CallID{Ref: 7}, "nobody"); ok {
		t.Fatal("SetCallContext attached a context to a call the Link does not hold")
	}
	contexts := func() []any {
		var got []any
		l.EachCallContext(func(x any) { got = append(got, x) })
		return got
	}
	wantCtx := func(o Output, want any) {
		t.Helper()
		for _, ind := range o.Indications {
			if ind.Context != want {
				t.Errorf("%v carries context %v, want %v", ind, ind.Context, want)
			}
		}
	}

	// The peer's call: attached once it is indicated.
	in := CallID{Ref: 7}
	o := l.Receive(reuseSetup(7, 1))
	wantInds(t, o, IndSetup)
	wantCtx(o, nil)
	theirs := &struct{ n int }{1}
	if st, ok := l.SetCallContext(in, theirs); !ok || st != StateCallPresent {
		t.Fatalf("SetCallContext of the peer's call: %v %v, want %v", st, ok, StateCallPresent)
	}
	ok(t)(l.Accept(in, nil))
	o = l.Receive(peerMsg(MsgConnectAck, in))
	wantInds(t, o, IndConnected)
	wantCtx(o, theirs)

	// Ours: ended by T303 twice.
	out, so, err := l.Setup(setupMsg(false))
	if err != nil {
		t.Fatal(err)
	}
	wantCtx(so, nil)
	ours := &struct{ n int }{2}
	l.SetCallContext(out, ours)
	if got := contexts(); len(got) != 2 || (got[0] != theirs && got[1] != theirs) || (got[0] != ours && got[1] != ours) {
		t.Fatalf("EachCallContext: %v, want both calls' contexts", got)
	}
	wantInds(t, l.Expire(TimerKey{Timer: T303, Call: out}))
	o = l.Expire(TimerKey{Timer: T303, Call: out})
	wantInds(t, o, IndReleased)
	wantCtx(o, ours)
	if l.CallContext(out) != nil {
		t.Error("CallContext of a released call is not nil")
	}

	// The peer's, cleared by its RELEASE and our Release.
	o = l.Receive(&Message{Type: MsgRelease, CallRef: peerRef(in), Causes: []CauseIE{NewCause(CauseNormalCallClearing)}})
	wantInds(t, o, IndRelease)
	wantCtx(o, theirs)
	if l.CallContext(in) != theirs {
		t.Errorf("CallContext during the clearing: %v, want %v", l.CallContext(in), theirs)
	}
	o = ok(t)(l.Release(in, NewCause(CauseNormalCallClearing)))
	wantInds(t, o, IndReleased)
	wantCtx(o, theirs)
	if got := contexts(); len(got) != 0 || l.CallContext(in) != nil {
		t.Errorf("after both calls ended: contexts %v, CallContext %v", got, l.CallContext(in))
	}
	if _, ok := l.SetCallContext(in, theirs); ok {
		t.Error("SetCallContext attached a context to a released call")
	}
}
