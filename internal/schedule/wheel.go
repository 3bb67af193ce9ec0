package schedule

import (
	"container/heap"
	"slices"
)

// entry is one scheduled message: the commit-log offset of its scheduled
// record and its due time (ms since the epoch, broker clock). 16 bytes;
// the record itself stays in the commit log until it is due.
type entry struct {
	off int64
	due int64
}

func (a entry) before(b entry) bool {
	return a.due < b.due || a.due == b.due && a.off < b.off
}

// bucket holds the entries due within one second. Entries are appended
// unsorted; a bucket is sorted (from head on) once, when its second
// arrives, and consumed from head.
type bucket struct {
	ents   []entry
	head   int
	sorted bool
}

// wheel is the set of scheduled entries, bucketed by due second: a map
// from second to bucket plus a min-heap of the seconds that have a
// bucket. Adding is O(1) (O(log B) for the first entry of a second, B =
// buckets); taking what is due touches only due buckets; nothing ever
// walks the whole set. Memory: 16 bytes per entry plus slice slack
// (append growth, ≤ 25% for large buckets) plus about 100 bytes per
// non-empty second (map slot, bucket, heap slot); seconds are bounded by
// the longest delay (3 days = 259,200 with the default timerMaxDelaySec).
//
// Not safe for concurrent use (the service guards it with its mutex).
type wheel struct {
	buckets map[int64]*bucket
	secs    secHeap
	n       int
}

func newWheel() *wheel { return &wheel{buckets: make(map[int64]*bucket)} }

func secOf(dueMs int64) int64 {
	if dueMs < 0 {
		return -1
	}
	return dueMs / 1000
}

// add inserts e.
func (w *wheel) add(e entry) {
	s := secOf(e.due)
	b := w.buckets[s]
	if b == nil {
		b = &bucket{sorted: true}
		w.buckets[s] = b
		heap.Push(&w.secs, s)
	}
	if b.sorted && len(b.ents) > b.head && e.before(b.ents[len(b.ents)-1]) {
		b.sorted = false
	}
	b.ents = append(b.ents, e)
	w.n++
}

// len is the number of entries.
func (w *wheel) len() int { return w.n }

// next returns a lower bound of the earliest due time (exact once the
// earliest bucket has been sorted), and false when the wheel is empty.
func (w *wheel) next() (int64, bool) {
	if len(w.secs) == 0 {
		return 0, false
	}
	s := w.secs[0]
	b := w.buckets[s]
	if b.sorted && b.head < len(b.ents) {
		return b.ents[b.head].due, true
	}
	return s * 1000, true
}

// popDue appends to dst, in (due, offset) order, up to max entries whose
// due time is ≤ now and removes them.
func (w *wheel) popDue(now int64, max int, dst []entry) []entry {
	for len(dst) < max && len(w.secs) > 0 {
		s := w.secs[0]
		if s*1000 > now {
			break
		}
		b := w.buckets[s]
		if !b.sorted {
			rest := b.ents[b.head:]
			slices.SortFunc(rest, func(x, y entry) int {
				if x.before(y) {
					return -1
				}
				if y.before(x) {
					return 1
				}
				return 0
			})
			b.sorted = true
		}
		for b.head < len(b.ents) && len(dst) < max && b.ents[b.head].due <= now {
			dst = append(dst, b.ents[b.head])
			b.head++
			w.n--
		}
		if b.head < len(b.ents) {
			break // the rest of this second is not due yet, or dst is full
		}
		delete(w.buckets, s)
		heap.Pop(&w.secs)
	}
	return dst
}

// each calls fn for every entry, in no particular order.
func (w *wheel) each(fn func(entry)) {
	for _, b := range w.buckets {
		for _, e := range b.ents[b.head:] {
			fn(e)
		}
	}
}

// secHeap is a min-heap of seconds.
type secHeap []int64

func (h secHeap) Len() int           { return len(h) }
func (h secHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h secHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *secHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *secHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
