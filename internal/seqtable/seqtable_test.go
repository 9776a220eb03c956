package seqtable

import (
	"math/rand/v2"
	"testing"
)

// TestTableAgainstMap runs random Sets and Deletes on a Table and a Go map
// side by side, over identifiers in sequence and scattered ones, and
// checks Get, Len and All agree after every step.
func TestTableAgainstMap(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   func(r *rand.Rand, step int) uint64
	}{
		{"in sequence", func(r *rand.Rand, step int) uint64 { return uint64(step/2 + r.IntN(200)) }},
		{"scattered", func(r *rand.Rand, _ int) uint64 { return r.Uint64() % (1 << 34) }},
		{"few", func(r *rand.Rand, _ int) uint64 { return uint64(r.IntN(3)) << 32 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var tab Table[int]
			want := map[uint64]*int{}
			for step := range 20000 {
				id := tc.id(r, step)
				if r.IntN(3) == 0 {
					tab.Delete(id)
					delete(want, id)
				} else {
					v := new(int)
					*v = step
					tab.Set(id, v)
					want[id] = v
				}
				if got := tab.Get(id); got != want[id] {
					t.Fatalf("step %d: Get(%d) = %p, want %p", step, id, got, want[id])
				}
				if tab.Len() != len(want) {
					t.Fatalf("step %d: Len = %d, want %d", step, tab.Len(), len(want))
				}
				if step%1000 == 0 {
					checkAll(t, &tab, want)
				}
			}
			checkAll(t, &tab, want)
			for id := range want {
				tab.Delete(id)
			}
			if tab.Len() != 0 || len(tab.pages) != 0 {
				t.Fatalf("emptied table: Len %d, %d pages left", tab.Len(), len(tab.pages))
			}
		})
	}
}

// checkAll checks that All yields exactly want, each identifier once.
func checkAll(t *testing.T, tab *Table[int], want map[uint64]*int) {
	t.Helper()
	seen := map[uint64]bool{}
	for id, v := range tab.All() {
		if seen[id] {
			t.Fatalf("All yields %d twice", id)
		}
		seen[id] = true
		if want[id] != v {
			t.Fatalf("All yields %d -> %p, want %p", id, v, want[id])
		}
	}
	if len(seen) != len(want) {
		t.Fatalf("All yields %d records, want %d", len(seen), len(want))
	}
}

// TestTablePages checks that records in sequence share pages, that an
// emptied page goes (and is reused), and that All stops when asked to.
func TestTablePages(t *testing.T) {
	var tab Table[string]
	if tab.Get(7) != nil {
		t.Fatal("zero Table has a record")
	}
	tab.Delete(7) // no page: nothing to do
	recs := make([]string, 3*pageSize)
	for i := range recs {
		tab.Set(uint64(i), &recs[i])
	}
	if len(tab.pages) != 3 {
		t.Fatalf("%d records in sequence use %d pages, want 3", len(recs), len(tab.pages))
	}
	first := tab.pages[0]
	for i := range pageSize {
		tab.Delete(uint64(i))
	}
	if len(tab.pages) != 2 || tab.spare != first {
		t.Fatalf("emptied page: %d pages, spare %p, want 2 and %p", len(tab.pages), tab.spare, first)
	}
	tab.Set(10*pageSize, &recs[0])
	if tab.pages[10] != first || tab.spare != nil {
		t.Fatal("the next page needed is not the spare one")
	}
	tab.Set(10*pageSize, &recs[1]) // replacing does not count twice
	if tab.Len() != 2*pageSize+1 || tab.Get(10*pageSize) != &recs[1] {
		t.Fatalf("Len %d after a replace, want %d", tab.Len(), 2*pageSize+1)
	}
	n := 0
	for range tab.All() {
		n++
		if n == 5 {
			break
		}
	}
	if n != 5 {
		t.Fatalf("All yielded %d after the loop broke at 5", n)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Set with a nil record did not panic")
		}
	}()
	tab.Set(1, nil)
}

// TestRecentPagesForgotten: a page kept aside is forgotten when it empties,
// so that when it is used again for other identifiers, its old ones do not
// find their records.
func TestRecentPagesForgotten(t *testing.T) {
	var tab Table[int]
	recs := make([]int, 2)
	tab.Set(3, &recs[0])
	tab.Delete(3) // page 0 empties and becomes the spare
	tab.Set(5*pageSize+3, &recs[1])
	if tab.pages[5] == nil || tab.spare != nil {
		t.Fatal("page 5 is not the spare page reused")
	}
	if got := tab.Get(3); got != nil {
		t.Fatalf("Get(3) after its delete = %p (the record of %d, on the reused page)", got, 5*pageSize+3)
	}
	tab.Delete(3)
	if tab.Get(5*pageSize+3) != &recs[1] || tab.Len() != 1 {
		t.Fatalf("Delete(3) removed the record of %d", 5*pageSize+3)
	}
	// Pages that share a slot aside replace each other there.
	for i := range 2 * recentPages {
		tab.Set(uint64(i*recentPages*pageSize), &recs[0])
	}
	for i := range 2 * recentPages {
		if tab.Get(uint64(i*recentPages*pageSize)) != &recs[0] {
			t.Fatalf("page %d lost", i*recentPages)
		}
	}
}

// BenchmarkLookupHeld looks up records of identifiers in use now (a
// window of 64 moving forward) with 100,000 older ones held, in a Table
// and in a Go map.
func BenchmarkLookupHeld(b *testing.B) {
	const held = 100_000
	recs := make([]int, held+1<<20)
	b.Run("table", func(b *testing.B) {
		var tab Table[int]
		for i := range held {
			tab.Set(uint64(i), &recs[i])
		}
		for i := 0; b.Loop(); i++ {
			id := uint64(held + i%(1<<20))
			tab.Set(id, &recs[id])
			if tab.Get(id-uint64(i%64)) == nil {
				b.Fatal("missing")
			}
			if i >= 64 {
				tab.Delete(uint64(held + (i-64)%(1<<20)))
			}
		}
	})
	b.Run("map", func(b *testing.B) {
		m := map[uint64]*int{}
		for i := range held {
			m[uint64(i)] = &recs[i]
		}
		for i := 0; b.Loop(); i++ {
			id := uint64(held + i%(1<<20))
			m[id] = &recs[id]
			if m[id-uint64(i%64)] == nil {
				b.Fatal("missing")
			}
			if i >= 64 {
				delete(m, uint64(held+(i-64)%(1<<20)))
			}
		}
	})
}
