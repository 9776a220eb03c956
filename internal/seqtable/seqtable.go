// Package seqtable holds records by identifiers that are handed out in
// sequence, such as call reference values and connection identifiers.
//
// Records whose identifiers are close share a page of 64 slots, so the
// few identifiers in use at any moment (the calls being set up or cleared
// now) stay in the processor's cache however many older ones are still
// held. A Go map hashes its keys apart: with 100,000 calls held between
// two nodes, looking up the calls being set up missed the cache on almost
// every lookup, which cost about 3 µs of CPU per call
// (docs/performance.md, "Many calls held").
//
// The few pages last set are also kept aside, so that finding the record of
// a call in flight usually needs no map lookup at all: with 100,000 calls
// held, the map has some 1,600 pages, and looking pages up in it took 1.7%
// of the nodes' CPU (0.7% with none held).
//
// Memory: a page costs about 530 octets and holds the records of 64
// neighbouring identifiers. Identifiers handed out in sequence fill their
// pages, about 8.3 octets per record; identifiers scattered at random (a
// peer that allocates its call references so) cost up to a page per
// record. Either way the cost is bounded by the number of records.
package seqtable

import "iter"

// pageBits is log2 of the slots per page.
const pageBits = 6

// pageSize is the number of slots per page.
const pageSize = 1 << pageBits

// page holds the records of pageSize consecutive identifiers.
type page[T any] struct {
	slots [pageSize]*T
	used  int // non-nil slots
}

// Table maps uint64 identifiers to records (non-nil pointers). The zero
// Table is empty and ready to use. A Table is not safe for concurrent
// use, except that any number of Get and Len calls may run together while
// nothing changes the Table.
type Table[T any] struct {
	pages  map[uint64]*page[T] // by identifier >> pageBits
	recent [recentPages]recentPage[T]
	spare  *page[T] // an emptied page, kept for the next one needed
	n      int
}

// recentPages is how many pages a Table keeps aside: the last set of
// each page number modulo recentPages. Identifiers handed out in sequence
// put the calls in flight on one page, or two neighbours.
const recentPages = 4

// recentPage is a page kept aside and its number; p is nil while the slot
// holds none.
type recentPage[T any] struct {
	num uint64
	p   *page[T]
}

// find returns page num, nil if there is none. Only Set and Delete change
// t.recent, so Gets may run together.
func (t *Table[T]) find(num uint64) *page[T] {
	if r := &t.recent[num%recentPages]; r.p != nil && r.num == num {
		return r.p
	}
	return t.pages[num]
}

// Get returns the record of id, nil if there is none.
func (t *Table[T]) Get(id uint64) *T {
	p := t.find(id >> pageBits)
	if p == nil {
		return nil
	}
	return p.slots[id&(pageSize-1)]
}

// Set makes r the record of id, replacing any other. r must not be nil
// (Delete removes a record).
func (t *Table[T]) Set(id uint64, r *T) {
	if r == nil {
		panic("seqtable: Set with a nil record")
	}
	num := id >> pageBits
	p := t.find(num)
	if p == nil {
		if t.pages == nil {
			t.pages = make(map[uint64]*page[T])
		}
		p, t.spare = t.spare, nil
		if p == nil {
			p = new(page[T])
		}
		t.pages[num] = p
	}
	t.recent[num%recentPages] = recentPage[T]{num, p}
	s := &p.slots[id&(pageSize-1)]
	if *s == nil {
		p.used++
		t.n++
	}
	*s = r
}

// Delete removes the record of id, if any.
func (t *Table[T]) Delete(id uint64) {
	num := id >> pageBits
	p := t.find(num)
	if p == nil {
		return
	}
	s := &p.slots[id&(pageSize-1)]
	if *s == nil {
		return
	}
	*s = nil
	p.used--
	t.n--
	if p.used == 0 {
		delete(t.pages, num)
		if r := &t.recent[num%recentPages]; r.p == p {
			*r = recentPage[T]{}
		}
		t.spare = p // every slot is nil again
	}
}

// Len returns the number of records.
func (t *Table[T]) Len() int { return t.n }

// All yields every identifier and its record: the pages in no particular
// order, each page's in ascending order. The Table must not change while
// All runs.
func (t *Table[T]) All() iter.Seq2[uint64, *T] {
	return func(yield func(uint64, *T) bool) {
		for num, p := range t.pages {
			for i, r := range &p.slots {
				if r != nil && !yield(num<<pageBits|uint64(i), r) {
					return
				}
			}
		}
	}
}
