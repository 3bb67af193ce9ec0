package txn

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestEntryHeapMatchesModel drives both kinds of heap with random pushes,
// removals, key changes (fix) and pops, and checks after every step that
// the minimum is the model's, that every entry's index field names its
// slot, and that popping everything yields the model's order.
func TestEntryHeapMatchesModel(t *testing.T) {
	for _, byStored := range []bool{false, true} {
		h := entryHeap{byStored: byStored}
		key := func(e *entry) int64 {
			if byStored {
				return e.stored
			}
			return e.next
		}
		less := func(a, b *entry) int {
			if d := key(a) - key(b); d != 0 {
				return int(d)
			}
			return int(a.off - b.off)
		}
		var live []*entry
		seed := uint64(1)
		if byStored {
			seed = 2
		}
		rng := rand.New(rand.NewPCG(9, seed))
		off := int64(0)
		check := func(step int) {
			for i, e := range h.a {
				if int(*h.idx(e)) != i {
					t.Fatalf("byStored %v step %d: entry at %d has index %d", byStored, step, i, *h.idx(e))
				}
			}
			if len(live) != h.len() {
				t.Fatalf("byStored %v step %d: %d entries, model %d", byStored, step, h.len(), len(live))
			}
			if len(live) > 0 && h.peek() != slices.MinFunc(live, less) {
				t.Fatalf("byStored %v step %d: minimum %+v, model %+v", byStored, step, *h.peek(), *slices.MinFunc(live, less))
			}
		}
		for step := range 20000 {
			switch op := rng.IntN(10); {
			case op < 5 || len(live) == 0: // push; keys repeat, so ties are common
				off += 100
				e := &entry{off: off, stored: rng.Int64N(50), next: rng.Int64N(50), hidx: -1, aidx: -1}
				h.push(e)
				live = append(live, e)
			case op < 8: // remove any
				i := rng.IntN(len(live))
				h.remove(live[i])
				if *h.idx(live[i]) != -1 {
					t.Fatalf("removed entry keeps index %d", *h.idx(live[i]))
				}
				h.remove(live[i]) // a second removal is a no-op
				live = slices.Delete(live, i, i+1)
			case op < 9: // change a key and fix
				e := live[rng.IntN(len(live))]
				if byStored {
					e.stored = rng.Int64N(50)
				} else {
					e.next = rng.Int64N(50)
				}
				h.fix(e)
			default: // pop the minimum
				want := slices.MinFunc(live, less)
				if got := h.pop(); got != want {
					t.Fatalf("byStored %v step %d: pop %+v, want %+v", byStored, step, *got, *want)
				}
				live = slices.DeleteFunc(live, func(e *entry) bool { return e == want })
			}
			check(step)
		}
		slices.SortFunc(live, less)
		for _, want := range live {
			if got := h.pop(); got != want {
				t.Fatalf("byStored %v: drain popped %+v, want %+v", byStored, *got, *want)
			}
		}
		if h.pop() != nil {
			t.Fatal("pop of an empty heap")
		}
	}
}
