package ladder_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/condis-project/condis/ladder"
	"github.com/condis-project/condis/memdrv"
	"github.com/condis-project/condis/ndis"
	"github.com/condis-project/condis/q2931"
	"github.com/condis-project/condis/trace"
)

func text(t *testing.T, ls []*ladder.Ladder) string {
	t.Helper()
	var b strings.Builder
	if err := ladder.Write(&b, ladder.Text, 1, ls); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// lines returns the chart's lines that contain every one of words.
func lines(chart string, words ...string) []string {
	var out []string
	for _, l := range strings.Split(chart, "\n") {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// A call the far node refuses (no SAP matches: cause 88) is one call in
// both nodes' traces, and one in the callee's alone, where it has no VC:
// the SETUP in, the RELEASE COMPLETE out with cause 88, and the call
// manager's word on the refusal, tied to them by the call reference.
func TestRefusedCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		alpha, beta := w.addNode("alpha"), w.addNode("beta")
		alice, bob := w.client(alpha, "alice"), w.client(beta, "bob")
		w.listen(bob, "echo")
		v := w.makeCall(alice, "beta", "nosuch")
		if r := memdrv.See(alice, func() memdrv.Result { return v.Make }); r.Status != ndis.StatusInvalidSap {
			t.Fatalf("MakeCall to beta/nosuch: %v, want NDIS_STATUS_INVALID_SAP", r)
		}
		alice.DeleteVc(v)
		w.pause(10 * time.Millisecond)
		evs := w.rec.all()
		w.close()

		both := collect(evs)
		if len(both) != 1 {
			t.Fatalf("both traces: %d calls, want 1:\n%s", len(both), text(t, both))
		}
		if got, want := both[0].Title(), "alice@alpha -> beta/nosuch (failed: incompatible destination (88))"; got != want {
			t.Errorf("title %q, want %q", got, want)
		}
		callee := collect(onNode(evs, "beta"))
		if len(callee) != 1 {
			t.Fatalf("beta's trace: %d calls, want 1:\n%s", len(callee), text(t, callee))
		}
		chart := text(t, callee)
		for _, want := range [][]string{
			{"|<--", "SETUP cr=0x1/0 service nosuch"},
			{"-->|", "RELEASE COMPLETE cr=0x1/1 cause incompatible destination (88)"},
			{"*", "call refused from alpha, service nosuch: incompatible destination (88)"},
		} {
			if len(lines(chart, want...)) != 1 {
				t.Errorf("beta's chart has no line with %q:\n%s", want, chart)
			}
		}
		if strings.Contains(chart, "Ndis") || strings.Contains(chart, "NDIS@") {
			t.Errorf("beta's chart of a call refused before it had a VC shows CoNDIS events:\n%s", chart)
		}
	})
}

// A point-to-multipoint call with leaves on two other nodes is one call:
// the SETUP to gamma, sent while alice's NdisClAddParty was outstanding, is
// the same call's, and so are carol's and bob's VCs on their nodes. From
// alpha's trace alone, both peers are columns of their own.
func TestMultipointCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t)
		alpha, beta, gamma := w.addNode("alpha"), w.addNode("beta"), w.addNode("gamma")
		alice, bob, carol := w.client(alpha, "alice"), w.client(beta, "bob"), w.client(gamma, "carol")
		w.listen(bob, "echo")
		w.listen(carol, "news")
		v, st := alice.CreateVc(alice.Af())
		if st != ndis.StatusSuccess {
			t.Fatal(st)
		}
		alice.MakeCall(v, q2931.CallParams("beta", "echo", bestEffort, ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}, false), true)
		w.waitFor("MakeCall", func() bool { return memdrv.See(alice, func() bool { return v.Make.Done }) })
		second, _ := alice.AddParty(v, q2931.CallParams("gamma", "news", bestEffort, ndis.Flowspec{ServiceType: ndis.ServiceNoTraffic}, false))
		w.waitFor("AddParty", func() bool { return memdrv.See(alice, func() bool { return second.Add.Done }) })
		if r := memdrv.See(alice, func() memdrv.Result { return second.Add }); r.Status != ndis.StatusSuccess {
			t.Fatalf("AddParty: %v", r)
		}
		w.waitFor("carol's call", func() bool { return carol.LastIncoming() != nil })
		carolIn := carol.LastIncoming()
		alice.DropParty(second)
		w.waitFor("DropParty", func() bool { return memdrv.See(alice, func() bool { return second.Drop.Done }) })
		w.waitFor("carol's VC deleted", func() bool { return memdrv.See(carol, func() bool { return carolIn.Deleted }) })
		bobIn := bob.LastIncoming()
		alice.CloseCall(v)
		w.waitFor("CloseCall", func() bool { return memdrv.See(alice, func() bool { return v.Close.Done }) })
		w.waitFor("bob's VC deleted", func() bool { return memdrv.See(bob, func() bool { return bobIn.Deleted }) })
		alice.DeleteVc(v)
		w.pause(10 * time.Millisecond)
		evs := w.rec.all()
		w.close()

		all := collect(evs)
		if len(all) != 1 {
			t.Fatalf("three traces: %d calls, want 1:\n%s", len(all), text(t, all))
		}
		if got, want := all[0].Title(), "alice@alpha -> beta/echo, gamma/news (connected; released by the client: normal call clearing (16))"; got != want {
			t.Errorf("title %q, want %q", got, want)
		}
		chart := text(t, all)
		head := strings.Fields(strings.Split(chart, "\n")[1])
		if want := "ms alice@alpha NDIS@alpha MCM@alpha MCM@beta NDIS@beta bob@beta MCM@gamma NDIS@gamma carol@gamma"; strings.Join(head, " ") != want {
			t.Errorf("columns %v, want %s", head, want)
		}
		for _, want := range [][]string{
			{"SETUP cr=0x1/0 service echo"}, {"SETUP cr=0x1/0 service news"},
			{"ProtocolClIncomingCall(vc#"}, {"NdisClAddParty(vc#"}, {"ProtocolCmAddParty(party#"},
			{"ProtocolClAddPartyComplete(party#", "NDIS_STATUS_SUCCESS"}, {"NdisClDropParty(party#"},
		} {
			if n := len(lines(chart, want...)); n == 0 || (want[0] == "ProtocolClIncomingCall(vc#" && n != 2) {
				t.Errorf("%d lines with %q in\n%s", n, want, chart)
			}
		}
		mine := collect(onNode(evs, "alpha"))
		if len(mine) != 1 {
			t.Fatalf("alpha's trace: %d calls, want 1:\n%s", len(mine), text(t, mine))
		}
		head = strings.Fields(strings.Split(text(t, mine), "\n")[1])
		if want := "ms alice@alpha NDIS@alpha MCM@alpha beta gamma"; strings.Join(head, " ") != want {
			t.Errorf("alpha's columns %v, want %s", head, want)
		}
	})
}

// A Writer draws a call once it has been over (every VC deleted) for the
// linger time, exactly once, the same chart the Collector gives; a call
// not over is drawn by Flush.
func TestWriter(t *testing.T) {
	var evs []ladder.Event
	synctest.Test(t, func(t *testing.T) { evs = remoteClose(t) })
	want := text(t, collect(evs))

	var b bytes.Buffer
	w := ladder.NewWriter(&b, ladder.Text, 5*time.Millisecond)
	for i, e := range evs {
		if err := w.Add(e); err != nil {
			t.Fatal(err)
		}
		if b.Len() > 0 && i < len(evs)-1 {
			t.Fatalf("drawn after event %d of %d, before the call was over:\n%s", i+1, len(evs), b.String())
		}
	}
	end := evs[len(evs)-1].Time
	if err := w.Due(end.Add(4 * time.Millisecond)); err != nil || b.Len() > 0 {
		t.Fatalf("drawn before the linger time passed (%v):\n%s", err, b.String())
	}
	if err := w.Due(end.Add(5 * time.Millisecond)); err != nil || b.String() != want {
		t.Fatalf("after the linger time (%v):\n%s\nwant\n%s", err, b.String(), want)
	}
	if err := w.Flush(); err != nil || b.String() != want {
		t.Fatalf("Flush drew the call again (%v):\n%s", err, b.String())
	}
	// Once drawn, a call is forgotten: the same events again (the same
	// handles and call reference, an hour later) are a new call, call 2.
	for _, e := range evs {
		e.Time = e.Time.Add(time.Hour)
		w.Add(e)
	}
	w.Due(end.Add(time.Hour + 5*time.Millisecond))
	if again := strings.Replace(want, "call 1:", "call 2:", 1); b.String() != want+again {
		t.Fatalf("the same call again:\n%s\nwant\n%s", strings.TrimPrefix(b.String(), want), again)
	}

	// Without the mediator's trace (a stream of the call manager's events
	// only), a call is over once the call manager says it ended.
	b.Reset()
	w = ladder.NewWriter(&b, ladder.Text, 5*time.Millisecond)
	var released time.Time
	for _, e := range evs {
		if e.NDIS != nil {
			continue
		}
		w.Add(e)
		if e.Call != nil && e.Call.Event == trace.CallReleased {
			released = e.Time
		}
	}
	w.Due(released.Add(5 * time.Millisecond))
	if got := b.String(); !strings.HasPrefix(got, "call 1: alpha -> beta/echo (connected; released by the network: normal call clearing (16))") ||
		!strings.Contains(got, "RELEASE COMPLETE") || strings.Contains(got, "Ndis") {
		t.Errorf("the call manager's events alone, after the release:\n%s", got)
	}

	// Cut short before alice deletes her VC: only Flush draws it.
	b.Reset()
	w = ladder.NewWriter(&b, ladder.Text, time.Millisecond)
	cut := len(evs) - 4 // NdisCoDeleteVc's request, upcall, handled, return
	for _, e := range evs[:cut] {
		w.Add(e)
	}
	w.Due(end.Add(time.Hour))
	if b.Len() > 0 {
		t.Fatalf("a call whose VC is not deleted was drawn:\n%s", b.String())
	}
	w.Flush()
	if got := b.String(); !strings.HasPrefix(got, "call 1: alice@alpha -> beta/echo") || strings.Contains(got, "NdisCoDeleteVc") {
		t.Errorf("Flush drew:\n%s", got)
	}
}

// Stream draws each call of a live stream once it has been over for
// DefaultLinger, also when no event follows, and returns when the stream
// ends, having drawn nothing twice.
func TestStream(t *testing.T) {
	var evs []ladder.Event
	synctest.Test(t, func(t *testing.T) { evs = remoteClose(t) })
	want := text(t, collect(evs))
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan ladder.Event)
		var b lockedBuffer
		done := make(chan error, 1)
		go func() { done <- ladder.Stream(context.Background(), &b, ladder.Text, ch) }()
		for _, e := range evs {
			ch <- e
		}
		synctest.Wait()
		if got := b.String(); got != "" {
			t.Fatalf("drawn at once:\n%s", got)
		}
		time.Sleep(2 * ladder.DefaultLinger)
		synctest.Wait()
		if got := b.String(); got != want {
			t.Fatalf("after %v with no event:\n%s\nwant\n%s", 2*ladder.DefaultLinger, got, want)
		}
		close(ch)
		if err := <-done; err != nil || b.String() != want {
			t.Errorf("Stream at the end: %v\n%s", err, b.String())
		}
	})
}

// lockedBuffer is a bytes.Buffer for one writer goroutine and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
