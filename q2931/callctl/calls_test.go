package callctl

import (
	"sync"
	"testing"

	"github.com/condis-project/condis/uni"
)

// TestVCListOrder: VCs come out in the order they were pushed; removing one
// relinks its neighbours, and removing one not in the list changes nothing.
func TestVCListOrder(t *testing.T) {
	var l VCList
	a, b, c, stranger := &Vc{Seq: 1}, &Vc{Seq: 2}, &Vc{Seq: 3}, &Vc{Seq: 4}
	l.Push(a)
	l.Push(b)
	l.Push(c)
	l.Remove(b)
	l.Remove(stranger)
	var got []uint32
	for v := l.Head; v != nil; v = v.Next() {
		got = append(got, v.Seq)
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 3 || l.Len != 2 {
		t.Fatalf("list %v, Len %d; want [1 3], 2", got, l.Len)
	}
	l.Remove(a)
	l.Remove(c)
	if l.Head != nil || l.Len != 0 {
		t.Fatalf("emptied list: head %v, Len %d", l.Head, l.Len)
	}
}

// TestSeqCompareWraps: sequence numbers compare by serial arithmetic, so
// the first VC after the wrap sorts after the last one before it.
func TestSeqCompareWraps(t *testing.T) {
	if SeqCompare(0xFFFFFFFF, 0) >= 0 || SeqCompare(0, 0xFFFFFFFF) <= 0 || SeqCompare(7, 7) != 0 {
		t.Fatal("SeqCompare does not order across the wrap")
	}
}

// TestLegs: a multipoint root's first leg is Vc.Call; removing it makes
// the next leg the first, and LegOn finds a leg by its association.
func TestLegs(t *testing.T) {
	var mu sync.Mutex
	pa := NewAssoc("alpha", "beta", uni.Config{}, &mu, nil)
	pb := NewAssoc("alpha", "gamma", uni.Config{}, &mu, nil)
	v := &Vc{MP: &RootState{}}
	l1, l2 := &Call{Assoc: pa}, &Call{Assoc: pb}
	v.AddLeg(l1)
	v.AddLeg(l2)
	if v.Call != l1 || len(v.FurtherLegs()) != 1 || v.LegOn(pb) != l2 {
		t.Fatalf("legs: first %p, further %d, on gamma %p", v.Call, len(v.FurtherLegs()), v.LegOn(pb))
	}
	v.RemoveLeg(l1)
	if v.Call != l2 || len(v.FurtherLegs()) != 0 || v.LegOn(pa) != nil {
		t.Fatalf("after removing the first leg: first %p (want the second), %d further", v.Call, len(v.FurtherLegs()))
	}
}

// TestRxDestinations: a point-to-point call's data goes to its one VC; a
// multipoint call's to every VC added, and dropping one keeps the rest.
func TestRxDestinations(t *testing.T) {
	var mu sync.Mutex
	a := NewAssoc("alpha", "beta", uni.Config{}, &mu, nil)
	v1, v2 := &Vc{Seq: 1}, &Vc{Seq: 2}
	var one [1]*Vc
	p2p := &Call{Assoc: a}
	p2p.SetRx(v1)
	if got := p2p.RxToLocked(&one); len(got) != 1 || got[0] != v1 {
		t.Fatalf("point-to-point destinations %v", got)
	}
	p2p.SetRx(nil)
	if got := p2p.RxToLocked(&one); len(got) != 0 {
		t.Fatalf("destinations after SetRx(nil): %v", got)
	}
	mp := &Call{Assoc: a, MP: &CallMP{}}
	mp.AddRx(v1)
	mp.AddRx(v2)
	mp.DropRx(v1)
	if got := mp.RxToLocked(&one); len(got) != 1 || got[0] != v2 {
		t.Fatalf("multipoint destinations after dropping the first: %v", got)
	}
}
