package ladder

import (
	"io"
	"testing"
	"time"

	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/trace"
	"github.com/condis-project/condis/uni"
)

// msg is a Q.2931 header (and no more) of type t on call reference ref.
func msg(t uni.MsgType, ref uint32, flag bool) []byte {
	f := byte(0)
	if flag {
		f = 0x80
	}
	return []byte{0x09, 3, f | byte(ref>>16), byte(ref >> 8), byte(ref), byte(t), 0x80, 0, 0}
}

// A Writer forgets a call once it has drawn it — its keys, its VC's and
// call reference's generations, its outstanding requests — so a stream
// that runs for days holds only the calls in progress.
func TestWriterForgetsWhatItDrew(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	nd := func(ms int, k ndis.EventKind, driver, fn, obj string, st ndis.Status) Event {
		return FromNDIS("alpha", at(ms), ndis.Event{Kind: k, Driver: driver, Func: fn, Object: obj, Status: st})
	}
	sig := func(ms int, dir trace.Direction, t uni.MsgType, flag bool) Event {
		return FromSignal(trace.Signal{Time: at(ms), Node: "alpha", Peer: "beta", Dir: dir, Msg: msg(t, 1, flag)})
	}
	w := NewWriter(io.Discard, Text, time.Millisecond)
	for _, e := range []Event{
		nd(0, ndis.EventRequest, "alice", "NdisCoCreateVc", "af#1", 0),
		nd(0, ndis.EventReturn, "alice", "NdisCoCreateVc", "vc#2", ndis.StatusSuccess),
		nd(1, ndis.EventRequest, "alice", "NdisClMakeCall", "vc#2", 0),
		nd(1, ndis.EventUpcall, "mcm", "ProtocolCmMakeCall", "vc#2", 0),
		sig(1, trace.Out, uni.MsgSetup, false),
		nd(1, ndis.EventReturn, "alice", "NdisClMakeCall", "vc#2", ndis.StatusPending),
		sig(3, trace.In, uni.MsgReleaseComplete, true),
		nd(3, ndis.EventUpcall, "alice", "ProtocolClMakeCallComplete", "vc#2", ndis.StatusFailure),
		nd(4, ndis.EventRequest, "alice", "NdisCoDeleteVc", "vc#2", 0),
		nd(4, ndis.EventReturn, "alice", "NdisCoDeleteVc", "vc#2", ndis.StatusSuccess),
	} {
		w.Add(e)
	}
	c := w.c
	if len(c.groups) != 2 || len(c.vcGen) != 0 || len(c.legs["alpha"]) != 0 {
		t.Fatalf("before drawing: %d keys (want the VC's and the call reference's), %d generations, outstanding requests %v (the SETUP answered the MakeCall)",
			len(c.groups), len(c.vcGen), c.legs)
	}
	c.vcGen["alpha|vc#2"], c.wireGen["alpha|beta|1"] = 0, 0 // as if a MakeCall and a SETUP had bumped them
	w.Due(at(5))
	if w.n != 1 {
		t.Fatalf("%d calls drawn, want 1", w.n)
	}
	if len(c.groups) != 0 || len(c.all) != 0 || len(c.vcGen) != 0 || len(c.wireGen) != 0 || len(c.parties) != 0 || len(c.legs) != 0 || len(c.adds) != 0 {
		t.Errorf("after drawing: keys %v, groups %d, generations %v %v, parties %v, requests %v %v",
			c.groups, len(c.all), c.vcGen, c.wireGen, c.parties, c.legs, c.adds)
	}
}

// A Ladder with no events, as a caller might make one, draws an empty
// chart instead of panicking.
func TestEmptyLadder(t *testing.T) {
	var l Ladder
	if err := l.WriteText(io.Discard); err != nil {
		t.Error(err)
	}
	if err := l.WriteMermaid(io.Discard); err != nil {
		t.Error(err)
	}
	if got := l.Title(); got != "no events" {
		t.Errorf("title %q", got)
	}
}
