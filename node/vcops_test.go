package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
)

// The requests that act on a VC a session owns, and multipoint calls, in
// every mode of the in-memory MCM (completing at once, pending, pending
// with early completions), with a strict mediator: a request out of the
// CoNDIS contract's order (a close with more than one party left, a close
// before sends completed, an IncomingDropParty unanswered) fails the test.

// noTraffic is the receive flowspec of a multipoint root.
var noTraffic = &Flowspec{Service: "no-traffic"}

// waitEvent reads s's frames until an event, and returns it; data frames
// on the way are returned too.
func waitEvent(t *testing.T, s *Session) (Event, [][]byte) {
	t.Helper()
	// A missing event fails the test rather than hanging it.
	s.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer s.conn.SetReadDeadline(time.Time{})
	var data [][]byte
	for {
		f, err := s.Recv()
		if err != nil {
			t.Fatalf("waiting for an event: %v", err)
		}
		switch f.Type {
		case FrameData:
			data = append(data, f.Payload)
		case FrameEvent:
			ev, err := ParseEvent(f.Payload)
			if err != nil {
				t.Fatal(err)
			}
			return ev, data
		default:
			t.Fatalf("got a %v frame (%s), want an event", f.Type, f.Payload)
		}
	}
}

// TestMultipointSession: a call session with three leaves; data reaches
// each; a leaf that hangs up is dropped (the call session is told it
// left); a party added from another connection and one dropped from
// another connection are told too; a hangup closes the call with its last
// party after dropping the others.
func TestMultipointSession(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			l1, l2, l3 := n.listen("l1", false), n.listen("l2", false), n.listen("l3", false)
			cs := n.call(Request{Dest: "any/l1", Parties: []string{"any/l2", "any/l3"}, Tx: &Flowspec{Peak: 1 << 20}, Rx: noTraffic})
			ps := cs.Response.Parties
			if len(ps) != 3 {
				t.Fatalf("parties %+v", ps)
			}
			for i, dest := range []string{"any/l1", "any/l2", "any/l3"} {
				if ps[i].Dest != dest || ps[i].State != "CONNECTED" || !strings.HasPrefix(ps[i].Party, "party#") || ps[i].Error != "" {
					t.Errorf("party %d: %+v", i, ps[i])
				}
			}
			for _, l := range []*Session{l1, l2, l3} {
				if ev := recvEvent(t, l); ev.Event != EventCall {
					t.Fatalf("leaf event %+v", ev)
				}
			}
			cs.Send([]byte("all"))
			for _, l := range []*Session{l1, l2, l3} {
				if got := recvData(t, l); string(got) != "all" {
					t.Errorf("leaf got %q", got)
				}
			}

			// l3's listener goes away: its call is closed normally, the
			// root is told with IncomingDropParty and drops the party.
			l3.End()
			readAll(t, l3)
			ev, _ := waitEvent(t, cs)
			if ev.Event != EventPartyDropped || ev.Party != ps[2].Party || ev.Dest != "any/l3" || ev.CloseInfo == nil ||
				!ev.Normal || ev.By != ByRemote || ev.Text != ps[2].Party+" (any/l3) left the call" {
				t.Errorf("event %+v %+v", ev, ev.CloseInfo)
			}

			// A party added from another connection.
			resp, err := AddParty(context.Background(), n.sock, cs.Response.Vc, "any/l2")
			if err != nil || !strings.HasPrefix(resp.Party, "party#") || resp.Vc != cs.Response.Vc {
				t.Fatalf("party add: %+v, %v", resp, err)
			}
			ev, _ = waitEvent(t, cs)
			if ev.Event != EventPartyAdded || ev.Party != resp.Party || ev.Dest != "any/l2" || ev.Peer != "any" {
				t.Errorf("event %+v", ev)
			}
			if ev := recvEvent(t, l2); ev.Event != EventCall {
				t.Fatalf("l2's second call: %+v", ev)
			}
			calls, _ := ListCalls(context.Background(), n.sock)
			var root CallInfo
			for _, c := range calls {
				if c.Vc == cs.Response.Vc {
					root = c
				}
			}
			if root.Parties != 3 || len(root.Leaves) != 3 || root.Leaves[2].Party != resp.Party || root.Leaves[2].Dest != "any/l2" {
				t.Errorf("calls: %+v", root)
			}

			// ... and one dropped from another connection.
			if err := DropParty(context.Background(), n.sock, cs.Response.Vc, ps[0].Party); err != nil {
				t.Fatalf("party drop: %v", err)
			}
			ev, _ = waitEvent(t, cs)
			if ev.Event != EventPartyDropped || ev.Party != ps[0].Party || ev.CloseInfo == nil || ev.By != ByLocal ||
				ev.Text != ps[0].Party+" (any/l1) dropped (condis party drop)" {
				t.Errorf("event %+v %+v", ev, ev.CloseInfo)
			}
			if ev := recvEvent(t, l1); ev.Event != EventClosed || !ev.Normal {
				t.Errorf("l1: %+v", ev)
			}

			// Two leaves left, both on l2: the hangup drops one and closes
			// the call with the other.
			if err := Hangup(context.Background(), n.sock, cs.Response.Vc); err != nil {
				t.Fatalf("hangup: %v", err)
			}
			tr := readAll(t, cs)
			want := CloseInfo{Normal: true, By: ByHangup, Text: "call " + cs.Response.Vc + " hung up on this node (condis hangup)", Sent: 1}
			if tr.close != want || len(tr.events) != 0 {
				t.Errorf("close %+v, events %+v\nwant %+v", tr.close, tr.events, want)
			}
			for range 2 {
				if ev := recvEvent(t, l2); ev.Event != EventClosed || !ev.Normal {
					t.Errorf("l2: %+v", ev)
				}
			}
			if v := n.outgoingVcs(); v != 0 {
				t.Errorf("%d outgoing VC(s) left", v)
			}
		})
	}
}

// TestMultipointLastLeafLeaves: when the last leaf hangs up, the call is
// closed (IncomingCloseCall): the session ends as for a point-to-point
// call.
func TestMultipointLastLeafLeaves(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			l1 := n.listen("l1", false)
			cs := n.call(Request{Dest: "any/l1", Multipoint: true, Rx: noTraffic})
			if len(cs.Response.Parties) != 1 || cs.Response.Parties[0].State != "CONNECTED" {
				t.Fatalf("parties %+v", cs.Response.Parties)
			}
			recvEvent(t, l1)
			l1.End()
			readAll(t, l1)
			tr := readAll(t, cs)
			if !tr.close.Normal || tr.close.By != ByRemote || tr.close.Text != "call closed by the far end" {
				t.Errorf("close %+v", tr.close)
			}
		})
	}
}

// TestMultipointPartyFails: a leaf that cannot be added is in the call's
// answer with its status and cause; the call goes on with the others.
func TestMultipointPartyFails(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			l1 := n.listen("l1", false)
			cs := n.call(Request{Dest: "any/l1", Parties: []string{"any/nosuch", "mars/l1"}, Rx: noTraffic})
			ps := cs.Response.Parties
			if len(ps) != 3 || ps[0].State != "CONNECTED" {
				t.Fatalf("parties %+v", ps)
			}
			if p := ps[1]; p.State != "FAILED" || p.Status != "NDIS_STATUS_INVALID_SAP" || p.Cause != 88 || p.Party != "" ||
				p.Error != "party any/nosuch not added: NDIS_STATUS_INVALID_SAP (cause 88, incompatible destination): no such service at the destination" {
				t.Errorf("party any/nosuch: %+v", p)
			}
			if p := ps[2]; p.State != "FAILED" || p.Status != "" || !strings.HasPrefix(p.Error, `party add `+cs.Response.Vc+` mars/l1: unknown node "mars"`) {
				t.Errorf("party mars/l1: %+v", p)
			}
			recvEvent(t, l1)
			cs.Send([]byte("on"))
			if got := recvData(t, l1); string(got) != "on" {
				t.Errorf("l1 got %q", got)
			}
			cs.End()
			if tr := readAll(t, cs); !tr.close.Normal || tr.close.By != ByLocal {
				t.Errorf("close %+v", tr.close)
			}
		})
	}
}

// TestVcRequestErrors: requests naming VCs or parties that are not there,
// or calls that are not multipoint, are refused in one line and change
// nothing.
func TestVcRequestErrors(t *testing.T) {
	n := startNode(t, memdrv.Pend)
	ls := n.listen("echo", true)
	cs := n.call(Request{Dest: "any/echo"})
	recvEvent(t, ls)
	vc := cs.Response.Vc

	// A client of its own holds a VC: not the control plane's.
	cl, st := memdrv.NewClient(n.m, "other", n.mcm.Adapter(), n.fab)
	if st != ndis.StatusSuccess {
		t.Fatal(st)
	}
	n.mem.Drain()
	af := cl.Af()
	other, _ := cl.CreateVc(af)
	n.mem.Drain()
	defer func() {
		cl.DeleteVc(other)
		cl.CloseAf(af)
		n.mem.Drain()
		cl.Unbind()
	}()
	otherVc := other.H.String()

	ctx := context.Background()
	for _, c := range []struct {
		name string
		do   func() error
		want string
	}{
		{"hangup unknown", func() error { return Hangup(ctx, n.sock, "vc#999") }, "hangup vc#999: no such VC on this node (condis calls lists them)"},
		{"hangup other client's", func() error { return Hangup(ctx, n.sock, otherVc) },
			"hangup " + otherVc + ": not a call of this node's control plane (its client is other); only the control plane's calls can be changed from here"},
		{"party add point-to-point", func() error { _, err := AddParty(ctx, n.sock, vc, "any/echo"); return err },
			"party add " + vc + ": not a multipoint call; parties are added to a call made with condis call --multipoint (or with several destinations)"},
		{"party add no dest", func() error { _, err := AddParty(ctx, n.sock, vc, ""); return err }, "party add " + vc + ": no destination (node/service)"},
		{"party drop point-to-point", func() error { return DropParty(ctx, n.sock, vc, "party#1") },
			"party drop " + vc + ": not a multipoint call; a point-to-point call has no parties to drop (condis hangup " + vc + " ends it)"},
		{"modify unknown", func() error { _, err := ModifyQoS(ctx, n.sock, "vc#999", &Flowspec{Rate: 1}, nil); return err },
			"modify vc#999: no such VC on this node (condis calls lists them)"},
		{"modify bad service", func() error { _, err := ModifyQoS(ctx, n.sock, vc, &Flowspec{Service: "premium"}, nil); return err },
			`modify ` + vc + `: unknown service type "premium" (best-effort, controlled-load or guaranteed)`},
	} {
		err := c.do()
		var re *RequestError
		if !errors.As(err, &re) || err.Error() != c.want {
			t.Errorf("%s: %v\nwant %s", c.name, err, c.want)
		}
	}
	// The call is untouched.
	cs.Send([]byte("still up"))
	if got := recvData(t, cs); string(got) != "still up" {
		t.Errorf("echo %q", got)
	}
}

// TestModifySession: a QoS change of a call session's VC from another
// connection: the answer carries what was granted, the session is told,
// and the call's SDU limit follows; a refused change leaves the call as it
// was and a second change may follow.
func TestModifySession(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			ls := n.listen("echo", true)
			fs := &Flowspec{Service: "controlled-load", Rate: 1000, Peak: 2000, MaxSDU: 1000}
			cs := n.call(Request{Dest: "any/echo", Tx: fs, Rx: fs})
			recvEvent(t, ls)

			resp, err := ModifyQoS(context.Background(), n.sock, cs.Response.Vc, &Flowspec{Rate: 1500, MaxSDU: 500}, &Flowspec{Rate: 1500})
			want := Flowspec{Service: "controlled-load", Rate: 1500, Peak: 2000, MaxSDU: 500}
			if err != nil || resp.Tx == nil || *resp.Tx != want || resp.Rx == nil || resp.Rx.Rate != 1500 || resp.Rx.MaxSDU != 1000 {
				t.Fatalf("modify: %+v %+v, %v", resp.Tx, resp.Rx, err)
			}
			ev, _ := waitEvent(t, cs)
			if ev.Event != EventQoS || ev.Vc != cs.Response.Vc || ev.Tx == nil || *ev.Tx != want {
				t.Errorf("event %+v", ev)
			}
			// The new MaxSduSize holds for what the session sends.
			cs.Send(make([]byte, 600))
			if f, err := cs.Recv(); err != nil || f.Type != FrameError ||
				string(f.Payload) != "SDU of 600 octets refused: larger than the call's MaxSduSize (500); not sent" {
				t.Errorf("oversize SDU: %v %q, %v", f.Type, f.Payload, err)
			}

			n.mcm.SetMaxTokenRate(1800)
			_, err = ModifyQoS(context.Background(), n.sock, cs.Response.Vc, &Flowspec{Rate: 1900}, nil)
			var re *RequestError
			if !errors.As(err, &re) || re.Response.Status != "NDIS_STATUS_FAILURE" || re.Response.Cause != 21 ||
				err.Error() != "modify "+cs.Response.Vc+" refused: NDIS_STATUS_FAILURE (cause 21, call rejected)" {
				t.Errorf("refused modify: %v %+v", err, re)
			}
			n.mcm.SetMaxTokenRate(0)
			if resp, err = ModifyQoS(context.Background(), n.sock, cs.Response.Vc, &Flowspec{Peak: 3000}, nil); err != nil || resp.Tx.Peak != 3000 || resp.Tx.Rate != 1500 {
				t.Errorf("modify after a refusal: %+v, %v", resp.Tx, err)
			}
			cs.End()
			tr := readAll(t, cs)
			if len(tr.events) != 1 || tr.events[0].Event != EventQoS || tr.events[0].Tx.Peak != 3000 {
				t.Errorf("events %+v", tr.events)
			}
		})
	}
}

// TestHangupListenCall: hanging up a listen session's call ends that call
// only; the listen session is told and goes on; the caller sees the far
// end hang up.
func TestHangupListenCall(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			n := startNode(t, mode)
			ls := n.listen("echo", true)
			cs := n.call(Request{Dest: "any/echo"})
			ev := recvEvent(t, ls)
			if err := Hangup(context.Background(), n.sock, ev.Vc); err != nil {
				t.Fatal(err)
			}
			closed := recvEvent(t, ls)
			if closed.Event != EventClosed || closed.Vc != ev.Vc || closed.CloseInfo == nil || closed.By != ByHangup || !closed.Normal {
				t.Errorf("listen event %+v", closed)
			}
			if tr := readAll(t, cs); !tr.close.Normal || tr.close.By != ByRemote {
				t.Errorf("caller %+v", tr.close)
			}
			// The listener takes the next call.
			cs2 := n.call(Request{Dest: "any/echo"})
			cs2.Send([]byte("again"))
			if got := recvData(t, cs2); string(got) != "again" {
				t.Errorf("second call echoed %q", got)
			}
			// A VC whose call is over is no more.
			err := Hangup(context.Background(), n.sock, ev.Vc)
			if err == nil || !strings.HasPrefix(err.Error(), "hangup "+ev.Vc+": no such VC") {
				t.Errorf("second hangup: %v", err)
			}
		})
	}
}

// TestBenchProgress: a bench asked for progress reports it while it runs:
// counts that only grow, never past what was asked.
func TestBenchProgress(t *testing.T) {
	n := startNode(t, memdrv.Pend)
	n.listenRead("echo")
	var got []BenchProgress
	res, err := n.ctl.bench(context.Background(), Request{Dest: "local/echo", Calls: 500}, time.Microsecond, func(p BenchProgress) { got = append(got, p) })
	if err != nil || res.Connected != 500 {
		t.Fatalf("bench: %+v, %v", res, err)
	}
	if len(got) == 0 {
		t.Fatal("no progress while 500 calls were made one at a time")
	}
	prev := BenchProgress{}
	for _, p := range got {
		if p.Calls != 500 || p.Done < prev.Done || p.Started < prev.Started || p.Done > p.Started || p.Started > 500 ||
			p.Connected < p.Done || p.Seconds < prev.Seconds || p.Failed != 0 {
			t.Fatalf("progress %+v after %+v", p, prev)
		}
		prev = p
	}

	// With a warm-up: its progress first, marked, then the measured run's.
	got = nil
	res, err = n.ctl.bench(context.Background(), Request{Dest: "local/echo", Calls: 300, Warmup: 300}, time.Microsecond, func(p BenchProgress) { got = append(got, p) })
	if err != nil || res.Connected != 300 || res.Warmup == nil || res.Warmup.Connected != 300 {
		t.Fatalf("bench: %+v, %v", res, err)
	}
	warm, measured := 0, 0
	for _, p := range got {
		switch {
		case p.Warmup && measured > 0:
			t.Fatalf("warm-up progress %+v after the measured run's", p)
		case p.Warmup:
			warm++
		default:
			measured++
		}
	}
	if warm == 0 || measured == 0 {
		t.Errorf("%d warm-up and %d measured progress reports, want some of each", warm, measured)
	}
}

// TestBenchWithProgressClient: the client reads progress lines until the
// result, and asks for them only when it wants them.
func TestBenchWithProgressClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reqs := make(chan Request, 2)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(conn)
			line, _ := br.ReadBytes('\n')
			var req Request
			json.Unmarshal(line, &req)
			reqs <- req
			if req.Progress {
				for _, d := range []int{3, 7} {
					writeJSONLine(conn, Response{OK: true, Progress: &BenchProgress{Calls: 10, Done: d}})
				}
			}
			writeJSONLine(conn, Response{OK: true, Bench: &BenchResult{Calls: 10, Connected: 10}})
			conn.Close()
		}
	}()
	var seen []int
	res, err := BenchWithProgress(context.Background(), sock, Request{Dest: "x/y", Calls: 10}, func(p BenchProgress) { seen = append(seen, p.Done) })
	if err != nil || res.Connected != 10 || len(seen) != 2 || seen[0] != 3 || seen[1] != 7 {
		t.Errorf("with progress: %+v %v, seen %v", res, err, seen)
	}
	if r := <-reqs; !r.Progress || r.Op != OpBench {
		t.Errorf("request %+v", r)
	}
	if res, err := Bench(context.Background(), sock, Request{Dest: "x/y", Calls: 10}); err != nil || res.Connected != 10 {
		t.Errorf("without: %+v %v", res, err)
	}
	if r := <-reqs; r.Progress {
		t.Errorf("Bench asked for progress: %+v", r)
	}
}
