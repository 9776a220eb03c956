package memdrv

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/condis-project/condis/ndis"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// respond must turn a known outcome into a final return in Immediate mode
// (no completion), and into PENDING plus exactly one completion otherwise:
// from the Loop in Pend mode, inside the handler in PendEarly mode.
func TestRespondModes(t *testing.T) {
	for _, tc := range []struct {
		mode        Mode
		wantReturn  ndis.Status
		inHandler   int // completions before respond returns
		afterRunTot int // completions after the loop ran
	}{
		{Immediate, ndis.StatusInvalidData, 0, 0},
		{Pend, ndis.StatusPending, 0, 1},
		{PendEarly, ndis.StatusPending, 1, 1},
	} {
		var l Loop
		var got []ndis.Status
		st := respond(&l, tc.mode, func(done func(ndis.Status)) { done(ndis.StatusInvalidData) },
			func(st ndis.Status) { got = append(got, st) })
		if st != tc.wantReturn || len(got) != tc.inHandler {
			t.Fatalf("%v: returned %v with %d completions, want %v with %d", tc.mode, st, len(got), tc.wantReturn, tc.inHandler)
		}
		l.Run()
		if len(got) != tc.afterRunTot {
			t.Fatalf("%v: %d completions after the loop, want %d", tc.mode, len(got), tc.afterRunTot)
		}
		for _, s := range got {
			if s != ndis.StatusInvalidData {
				t.Fatalf("%v: completed with %v", tc.mode, s)
			}
		}
	}
}

// An outcome known only after the handler returned is always a PENDING
// return and one completion, whatever the mode.
func TestRespondLateOutcome(t *testing.T) {
	for _, mode := range []Mode{Immediate, Pend, PendEarly} {
		var l Loop
		var later func(ndis.Status)
		n := 0
		st := respond(&l, mode, func(done func(ndis.Status)) { later = done }, func(ndis.Status) { n++ })
		if st != ndis.StatusPending || n != 0 {
			t.Fatalf("%v: returned %v, %d completions", mode, st, n)
		}
		later(ndis.StatusSuccess)
		l.Run()
		if n != 1 {
			t.Fatalf("%v: %d completions, want 1", mode, n)
		}
	}
}

// The Loop runs work posted while it runs, in order, and reuses its queue.
func TestLoopOrder(t *testing.T) {
	var l Loop
	var order []int
	l.Post(func() {
		order = append(order, 1)
		l.Post(func() { order = append(order, 3) })
	})
	l.Post(func() { order = append(order, 2) })
	if n := l.Run(); n != 3 || l.Len() != 0 {
		t.Fatalf("ran %d, %d left", n, l.Len())
	}
	if len(order) != 3 || order[0] != 1 || order[1] != 2 || order[2] != 3 {
		t.Fatalf("order %v", order)
	}
	allocs := testing.AllocsPerRun(100, func() { l.Post(func() {}); l.Run() })
	if allocs > 1 {
		t.Fatalf("Post+Run allocates %v per item; the queue is not reused", allocs)
	}
}

// The switch delivers point-to-point both ways and multipoint root to leaves,
// and a disconnected VCI receives nothing.
func TestFabricSwitch(t *testing.T) {
	f := NewFabric()
	var got [4][]string
	for i := uint32(1); i <= 3; i++ {
		i := i
		f.attach(i, endFunc(func(b []byte) { got[i] = append(got[i], string(b)) }))
	}
	f.connect(1, 2)
	f.connect(1, 3)
	f.connect(2, 1)
	if n := f.switchCell(1, []byte("x")); n != 2 {
		t.Fatalf("root cell reached %d leaves", n)
	}
	f.switchCell(2, []byte("y"))
	f.disconnect(3)
	if n := f.switchCell(1, []byte("z")); n != 1 {
		t.Fatalf("after disconnect the cell reached %d", n)
	}
	if len(got[1]) != 1 || len(got[2]) != 2 || len(got[3]) != 1 {
		t.Fatalf("deliveries %v", got)
	}
}

type endFunc func([]byte)

func (e endFunc) handleLocked() *ndis.Vc       { return nil }
func (e endFunc) deliver(_ *ndis.Vc, b []byte) { e(b) }
