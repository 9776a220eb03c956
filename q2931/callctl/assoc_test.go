package callctl

import (
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/uni"
)

// fakeSig is a SignallingLink that keeps a copy of what is sent on it.
type fakeSig struct{ sent [][]byte }

func (s *fakeSig) Send(b []byte) error { s.sent = append(s.sent, slices.Clone(b)); return nil }

// outputs collects the Outputs an association asks its owner to apply.
type outputs struct{ got []uni.Output }

func (o *outputs) apply(out uni.Output) { o.got = append(o.got, out) }

func (o *outputs) messages() []uni.MsgType {
	var ts []uni.MsgType
	for _, out := range o.got {
		for _, m := range out.Messages {
			ts = append(ts, m.Msg.Type)
		}
	}
	return ts
}

func (o *outputs) released() []uni.CallID {
	var ids []uni.CallID
	for _, out := range o.got {
		for _, ind := range out.Indications {
			if ind.Kind == uni.IndReleased {
				ids = append(ids, ind.Call)
			}
		}
	}
	return ids
}

// setupCall starts a call on a's link and applies its Output to o.
func setupCall(t *testing.T, a *Assoc, o *outputs) uni.CallID {
	t.Helper()
	from, to := q2931.Address(q2931.DefaultPrefix, "alpha"), q2931.Address(q2931.DefaultPrefix, "beta")
	sm, st := q2931.NewSetup(&from, &to, []byte("echo"))
	if st != ndis.StatusSuccess {
		t.Fatalf("NewSetup: %v", st)
	}
	ubr := ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, PeakBandwidth: 1 << 20, MaxSduSize: 1500}
	if st := sm.Traffic(ubr, ubr, false, true); st != ndis.StatusSuccess {
		t.Fatalf("Traffic: %v", st)
	}
	id, out, err := a.Link().Setup(&sm.Message)
	if err != nil {
		t.Fatalf("Setup: %v", err)
	}
	o.apply(out)
	return id
}

// TestAssocLinkUp: the first link restarts the association (RESTART goes
// out); the same incarnation again is a re-established link that keeps
// the calls; a new incarnation clears the old one's calls at once; a link
// loss forgets the signalling link and clears calls not yet active.
func TestAssocLinkUp(t *testing.T) {
	var mu sync.Mutex
	a := NewAssoc("alpha", "beta", uni.Config{}, &mu, func(uni.Output) {})
	if a.Link() != nil || a.Up() || a.Calls() != 0 || a.Signalling() != nil {
		t.Fatalf("a new association has a link, or calls: up %v, calls %d", a.Up(), a.Calls())
	}
	var o outputs
	s1 := &fakeSig{}
	mu.Lock()
	defer mu.Unlock()
	if k := a.LinkUp(s1, 7, o.apply); k != FirstLink {
		t.Fatalf("first LinkUp: %v, want %v", k, FirstLink)
	}
	if got := o.messages(); !slices.Equal(got, []uni.MsgType{uni.MsgRestart}) {
		t.Fatalf("first link sent %v, want one RESTART", got)
	}
	if !a.Up() || a.Signalling() != s1 {
		t.Fatalf("after the first LinkUp: up %v, signalling %v", a.Up(), a.Signalling())
	}

	id := setupCall(t, a, &o)
	if a.Calls() != 1 {
		t.Fatalf("%d calls after a SETUP, want 1", a.Calls())
	}
	o = outputs{}
	s2 := &fakeSig{}
	if k := a.LinkUp(s2, 7, o.apply); k != LinkBack {
		t.Fatalf("LinkUp with the same incarnation: %v, want %v", k, LinkBack)
	}
	if a.Calls() != 1 || len(o.released()) != 0 || a.Signalling() != s2 {
		t.Fatalf("the same incarnation: %d calls (want 1), released %v, signalling %v", a.Calls(), o.released(), a.Signalling())
	}

	o = outputs{}
	if k := a.LinkUp(s1, 8, o.apply); k != PeerRestarted {
		t.Fatalf("LinkUp with a new incarnation: %v, want %v", k, PeerRestarted)
	}
	if got := o.released(); !slices.Equal(got, []uni.CallID{id}) || a.Calls() != 0 {
		t.Fatalf("a new incarnation released %v with %d calls left, want %v and none", got, a.Calls(), id)
	}

	id = setupCall(t, a, &o)
	o = outputs{}
	a.LinkDown(o.apply)
	if a.Up() || a.Signalling() != nil {
		t.Fatal("the association is up after LinkDown")
	}
	if got := o.released(); !slices.Equal(got, []uni.CallID{id}) {
		t.Fatalf("LinkDown released %v, want the call being set up, %v", got, id)
	}
	if k := a.LinkUp(s1, 8, o.apply); k != LinkBack {
		t.Fatalf("LinkUp after LinkDown: %v, want %v", k, LinkBack)
	}
}

// TestAssocTimers: the association's uni timers run in (virtual) time:
// RESTART unanswered for T316 is sent again, through the expired callback
// called with the owner's lock held; nothing fires after StopTimers.
func TestAssocTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var fired []uni.Output
		var a *Assoc
		a = NewAssoc("alpha", "beta", uni.Config{}, &mu, func(out uni.Output) {
			if mu.TryLock() {
				t.Error("expired called without the owner's lock")
				mu.Unlock()
			}
			fired = append(fired, out)
			a.ApplyTimers(out.Timers)
		})
		var o outputs
		mu.Lock()
		a.LinkUp(&fakeSig{}, 1, o.apply)
		for _, out := range o.got {
			a.ApplyTimers(out.Timers)
		}
		mu.Unlock()
		t316 := uni.DefaultTimers().T316
		time.Sleep(t316 - time.Second)
		mu.Lock()
		if len(fired) != 0 {
			t.Fatalf("%d expiries before T316", len(fired))
		}
		mu.Unlock()
		time.Sleep(2 * time.Second)
		mu.Lock()
		got := outputs{got: fired}
		if ts := got.messages(); !slices.Equal(ts, []uni.MsgType{uni.MsgRestart}) {
			t.Fatalf("T316 expiry sent %v, want RESTART again", ts)
		}
		a.StopTimers()
		n := len(fired)
		mu.Unlock()
		time.Sleep(10 * t316)
		mu.Lock()
		defer mu.Unlock()
		if len(fired) != n {
			t.Fatalf("%d expiries after StopTimers", len(fired)-n)
		}
	})
}

// TestAssocConnIDs: the two ends of an association allocate connection
// identifiers from disjoint sets (VPCI bit 0 by name order), never a
// reserved VCI (0-31), never one in use; an identifier is freed only by
// the call that holds it.
func TestAssocConnIDs(t *testing.T) {
	var mu sync.Mutex
	lo := NewAssoc("alpha", "beta", uni.Config{}, &mu, nil)
	hi := NewAssoc("beta", "alpha", uni.Config{}, &mu, nil)
	seen := map[uint32]bool{}
	for range 100 {
		for i, a := range []*Assoc{lo, hi} {
			id := a.AllocConn()
			if vpci, vci := id>>16, id&0xFFFF; vpci&1 != uint32(i) || vci < 32 {
				t.Fatalf("association %d allocated VPCI %d VCI %d", i, vpci, vci)
			}
			if seen[id] {
				t.Fatalf("%#x allocated twice", id)
			}
			seen[id] = true
		}
	}
	// The next identifier lo would pick is taken by a call (say one the
	// peer chose): it is skipped.
	probe := NewAssoc("alpha", "beta", uni.Config{}, &mu, nil)
	want := probe.AllocConn()
	x, y := Call{Conn: 1}, Call{Conn: 2}
	fresh := NewAssoc("alpha", "beta", uni.Config{}, &mu, nil)
	fresh.BindConn(want, &x)
	if got := fresh.AllocConn(); got == want {
		t.Fatalf("allocated %#x, which a call holds", got)
	}
	fresh.UnbindConn(want, &y)
	if !fresh.ConnInUse(want) {
		t.Fatal("another call freed an identifier it does not hold")
	}
	fresh.ConnMu.RLock()
	holder := fresh.ConnLocked(want)
	fresh.ConnMu.RUnlock()
	if holder != &x {
		t.Fatalf("connection %#x is held by %v, want the call bound to it", want, holder)
	}
	fresh.UnbindConn(want, &x)
	if fresh.ConnInUse(want) {
		t.Fatal("the identifier is still in use after its call freed it")
	}
}

// TestAssocCallsAndWaiting: calls are kept by call reference with the
// side that allocated it (a local and a remote call may share a value),
// as the contexts of the uni.Link's calls: the indications about a call
// carry its record, which is gone from the Link with its IndReleased;
// waiting requests come back once, in order.
func TestAssocCallsAndWaiting(t *testing.T) {
	var mu sync.Mutex
	a := NewAssoc("alpha", "beta", uni.Config{}, &mu, nil)
	var o outputs
	mu.Lock()
	defer mu.Unlock()
	a.LinkUp(&fakeSig{}, 1, o.apply)
	local := setupCall(t, a, &o)
	from, to := q2931.Address(q2931.DefaultPrefix, "beta"), q2931.Address(q2931.DefaultPrefix, "alpha")
	sm, _ := q2931.NewSetup(&from, &to, []byte("echo"))
	ubr := ndis.Flowspec{ServiceType: ndis.ServiceBestEffort, PeakBandwidth: 1 << 20, MaxSduSize: 1500}
	sm.Traffic(ubr, ubr, false, true)
	sm.Message.Type, sm.Message.CallRef = uni.MsgSetup, uni.CallRef{Value: local.Ref} // the peer's call with our call's value
	b, err := sm.Message.Encode()
	if err != nil {
		t.Fatal(err)
	}
	remote := uni.CallID{Ref: local.Ref}
	if got := a.Receive(b).Indications; len(got) != 1 || got[0].Kind != uni.IndSetup || got[0].Call != remote {
		t.Fatalf("the peer's SETUP indicated %v, want setup of %v", got, remote)
	}

	x, y := Call{Conn: 1}, Call{Conn: 2}
	if st, ok := a.AddCall(local, &x); !ok || st != uni.StateCallInitiated {
		t.Fatalf("AddCall of our call: %v %v", st, ok)
	}
	if st, ok := a.AddCall(remote, &y); !ok || st != uni.StateCallPresent {
		t.Fatalf("AddCall of the peer's call: %v %v", st, ok)
	}
	if _, ok := a.AddCall(uni.CallID{Ref: 99}, &Call{}); ok {
		t.Fatal("AddCall recorded a call the uni.Link does not hold")
	}
	if a.Call(local) != &x || a.Call(remote) != &y || a.CallRecordCount() != 2 {
		t.Fatalf("calls: local %v, remote %v, %d records", a.Call(local), a.Call(remote), a.CallRecordCount())
	}

	// The peer refuses our call: its IndReleased carries our record.
	rc, _ := (&uni.Message{Type: uni.MsgReleaseComplete, CallRef: uni.CallRef{Value: local.Ref, Flag: true},
		Causes: []uni.CauseIE{uni.NewCause(uni.CauseCallRejected)}}).Encode()
	got := a.Receive(rc).Indications
	if len(got) != 1 || got[0].Kind != uni.IndReleased || got[0].Call != local || got[0].Context != &x {
		t.Fatalf("RELEASE COMPLETE of our call indicated %+v, want released of %v with its record", got, local)
	}
	if a.Call(local) != nil || a.CallRecordCount() != 2 {
		t.Fatalf("after IndReleased, before it is carried out: call %v, %d records; want none and 2", a.Call(local), a.CallRecordCount())
	}
	a.RemoveCall(&x)
	if a.Call(local) != nil || a.Call(remote) != &y || !slices.Equal(a.CallRecords(), []*Call{&y}) || a.CallRecordCount() != 1 {
		t.Fatalf("removing the local call: local %v, remote %v, records %v (%d)", a.Call(local), a.Call(remote), a.CallRecords(), a.CallRecordCount())
	}
	setup, party := Waiting{VC: &Vc{Seq: 1}}, Waiting{VC: &Vc{Seq: 2}, Party: &Party{}}
	a.Wait(setup)
	a.Wait(party)
	if got := a.TakeWaiting(); !slices.Equal(got, []Waiting{setup, party}) {
		t.Fatalf("waiting %v", got)
	}
	if got := a.TakeWaiting(); len(got) != 0 {
		t.Fatalf("waiting again %v", got)
	}
}
