package txn

// entryHeap is a binary min-heap of entries that keeps each entry's index
// in one of its fields, so entries can be removed or fixed in O(log n).
// The service keeps two: by next check time (index in hidx) and, with
// byStored, by store time (index in aidx); ties go to the lower offset.
// The order and the index field are chosen by a flag rather than by
// function values, so comparisons and swaps compile inline.
type entryHeap struct {
	a        []*entry
	byStored bool
}

func (h *entryHeap) less(a, b *entry) bool {
	if h.byStored {
		return a.stored < b.stored || a.stored == b.stored && a.off < b.off
	}
	return a.next < b.next || a.next == b.next && a.off < b.off
}

func (h *entryHeap) idx(e *entry) *int32 {
	if h.byStored {
		return &e.aidx
	}
	return &e.hidx
}

func (h *entryHeap) len() int { return len(h.a) }

func (h *entryHeap) peek() *entry {
	if len(h.a) == 0 {
		return nil
	}
	return h.a[0]
}

func (h *entryHeap) push(e *entry) {
	*h.idx(e) = int32(len(h.a))
	h.a = append(h.a, e)
	h.up(len(h.a) - 1)
}

func (h *entryHeap) pop() *entry {
	if len(h.a) == 0 {
		return nil
	}
	e := h.a[0]
	h.remove(e)
	return e
}

func (h *entryHeap) remove(e *entry) {
	p := h.idx(e)
	i := int(*p)
	if i < 0 || i >= len(h.a) || h.a[i] != e {
		return
	}
	last := len(h.a) - 1
	if i != last {
		h.swap(i, last)
	}
	h.a[last] = nil
	h.a = h.a[:last]
	*p = -1
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
	if cap(h.a) > 1024 && len(h.a) < cap(h.a)/4 {
		h.a = append([]*entry(nil), h.a...)
	}
}

// fix restores the order after e's key changed.
func (h *entryHeap) fix(e *entry) {
	i := int(*h.idx(e))
	if i < 0 {
		return
	}
	if !h.down(i) {
		h.up(i)
	}
}

func (h *entryHeap) swap(i, j int) {
	h.a[i], h.a[j] = h.a[j], h.a[i]
	*h.idx(h.a[i]) = int32(i)
	*h.idx(h.a[j]) = int32(j)
}

func (h *entryHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(h.a[j], h.a[i]) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h *entryHeap) down(i0 int) bool {
	i, n := i0, len(h.a)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if j2 := j + 1; j2 < n && h.less(h.a[j2], h.a[j]) {
			j = j2
		}
		if !h.less(h.a[j], h.a[i]) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
