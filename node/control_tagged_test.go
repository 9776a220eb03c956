package node

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/memdrv"
)

// recvVcData reads one frame and wants it to be a vc data frame.
func recvVcData(t *testing.T, s *Session) (vc string, sdu []byte) {
	t.Helper()
	f, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != FrameVcData {
		t.Fatalf("got a %v frame (%s), want vc data", f.Type, f.Payload)
	}
	vc, sdu, err = ParseVcData(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return vc, sdu
}

// TestTaggedListen: a tagged listen session carries two calls apart: each
// call's event gives its VC and flowspecs, SDUs come tagged with their
// call and go back on the call they name, one call is closed alone, and
// the end frame only deregisters the SAP: the other call goes on, and the
// session ends once it is gone.
func TestTaggedListen(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			ls, err := DialListen(context.Background(), n.sock, Request{Service: "svc", Tagged: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ls.Close() })
			c1 := n.call(Request{Dest: "svc", Tx: &Flowspec{MaxSDU: 3000}, Rx: &Flowspec{MaxSDU: 3000}})
			ev1 := recvEvent(t, ls)
			c2 := n.call(Request{Dest: "svc"})
			ev2 := recvEvent(t, ls)
			if ev1.Event != EventCall || ev2.Event != EventCall || ev1.Vc == ev2.Vc || ev1.Vc == "" {
				t.Fatalf("events %+v, %+v", ev1, ev2)
			}
			if ev1.MaxSDU != 3000 || ev1.Tx == nil || ev1.Tx.MaxSDU != 3000 || ev2.MaxSDU != DefaultMaxSDU {
				t.Errorf("call events say max_sdu %d (tx %+v) and %d, want 3000 and %d", ev1.MaxSDU, ev1.Tx, ev2.MaxSDU, DefaultMaxSDU)
			}
			c2.Send([]byte("two"))
			if vc, d := recvVcData(t, ls); vc != ev2.Vc || string(d) != "two" {
				t.Fatalf("got %q on %s, want \"two\" on %s", d, vc, ev2.Vc)
			}
			c1.Send([]byte("one"))
			if vc, d := recvVcData(t, ls); vc != ev1.Vc || string(d) != "one" {
				t.Fatalf("got %q on %s, want \"one\" on %s", d, vc, ev1.Vc)
			}
			ls.SendOn(ev2.Vc, []byte("back to two"))
			ls.SendOn(ev1.Vc, []byte("back to one"))
			if got := recvData(t, c1); string(got) != "back to one" {
				t.Errorf("caller 1 got %q", got)
			}
			if got := recvData(t, c2); string(got) != "back to two" {
				t.Errorf("caller 2 got %q", got)
			}
			ls.SendOn("vc#99999", []byte("x"))
			if f, err := ls.Recv(); err != nil || f.Type != FrameError || !strings.Contains(string(f.Payload), `no call "vc#99999"`) {
				t.Fatalf("send on no such call: %v frame %q, %v", f.Type, f.Payload, err)
			}
			ls.Send([]byte("untagged"))
			if f, err := ls.Recv(); err != nil || f.Type != FrameError || !strings.Contains(string(f.Payload), "vc data frames") {
				t.Fatalf("untagged data: %v frame %q, %v", f.Type, f.Payload, err)
			}

			ls.EndCall(ev1.Vc)
			if tr := readAll(t, c1); !tr.close.Normal || tr.close.By != ByRemote {
				t.Errorf("caller 1 closed with %+v, want a normal close by the far end", tr.close)
			}
			if ev := recvEvent(t, ls); ev.Event != EventClosed || ev.Vc != ev1.Vc || ev.CloseInfo == nil || !ev.Normal {
				t.Fatalf("after vc end: %+v", ev)
			}

			ls.End() // deregisters; call 2 goes on
			waitFor(t, func() bool { return len(n.m.Snapshot().Saps) == 0 })
			if _, err := DialCall(context.Background(), n.sock, Request{Dest: "svc"}); err == nil {
				t.Fatal("a call to the deregistered service connected")
			}
			c2.Send([]byte("still here"))
			if vc, d := recvVcData(t, ls); vc != ev2.Vc || string(d) != "still here" {
				t.Fatalf("after the end frame got %q on %s", d, vc)
			}
			c2.End()
			tr := readAll(t, ls)
			if len(tr.events) != 1 || tr.events[0].Event != EventClosed || tr.events[0].Vc != ev2.Vc {
				t.Errorf("listen session's last events %+v", tr.events)
			}
			if !tr.close.Normal || tr.close.By != ByLocal {
				t.Errorf("listen session closed with %+v", tr.close)
			}
		})
	}
}

// TestTaggedListenClientGone: a tagged session whose client goes away
// after its end frame closes the calls it left.
func TestTaggedListenClientGone(t *testing.T) {
	n := startNode(t, memdrv.Pend)
	ls, err := DialListen(context.Background(), n.sock, Request{Service: "svc", Tagged: true})
	if err != nil {
		t.Fatal(err)
	}
	c := n.call(Request{Dest: "svc"})
	recvEvent(t, ls)
	ls.End()
	waitFor(t, func() bool { return len(n.m.Snapshot().Saps) == 0 })
	ls.Close()
	if tr := readAll(t, c); tr.close.By != ByRemote {
		t.Errorf("the caller's call ended with %+v, want closed by the far end", tr.close)
	}
}

// TestTaggedEchoRefused: echo and tagged together are refused in one line.
func TestTaggedEchoRefused(t *testing.T) {
	n := startNode(t, memdrv.Immediate)
	_, err := DialListen(context.Background(), n.sock, Request{Service: "svc", Tagged: true, Echo: true})
	if err == nil || !strings.Contains(err.Error(), "echo and tagged do not go together") {
		t.Fatalf("err %v", err)
	}
}

// TestCallEventJSON: the hand-written event encoding of a tagged call
// event is encoding/json's.
func TestCallEventJSON(t *testing.T) {
	for _, ev := range []Event{
		{Event: EventCall, Vc: "vc#3", Peer: "alpha", MaxSDU: 1500, Reliable: true},
		{Event: EventCall, Vc: "vc#3", MaxSDU: 9180},
	} {
		want, _ := json.Marshal(ev)
		if got := ev.appendJSON(nil); string(got) != string(want) {
			t.Errorf("appendJSON %s\n    want %s", got, want)
		}
	}
}

// TestVcData: the vc data payload round-trips, and one without a name is
// refused.
func TestVcData(t *testing.T) {
	vc, sdu, err := ParseVcData(AppendVcData(nil, "vc#12", []byte("sdu")))
	if err != nil || vc != "vc#12" || string(sdu) != "sdu" {
		t.Errorf("got %q %q %v", vc, sdu, err)
	}
	for _, p := range [][]byte{nil, {0, 'x'}, {5, 'v', 'c'}} {
		if _, _, err := ParseVcData(p); err == nil {
			t.Errorf("ParseVcData(%q) took it", p)
		}
	}
}

// waitFor polls cond (the mediator's state, which no event announces)
// until it holds, for at most 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
