package txn

// recentRec remembers one resolved transaction.
type recentRec struct {
	off   int64  // half commit-log offset; -1 once forgotten
	uniq  uint64 // hash of UNIQ_KEY
	at    int64  // ms, when it was resolved (the resolving record's store time)
	group uint32
	state State
}

// recentTable is a bounded FIFO of recently resolved transactions, indexed
// by half offset and by UNIQ_KEY hash, so a late END answers "already
// committed" rather than "unknown". Guarded by Service.mu.
//
// Every END adds to it, so its indexes are two open-addressing tables of
// ring positions (posTable) rather than Go maps: a map of 64k entries costs
// an END several cache misses per insert and delete.
type recentTable struct {
	ring   []recentRec
	next   int
	full   bool
	byOff  posTable // keyed by ring[pos].off
	byUniq posTable // keyed by ring[pos].uniq: the latest position of a hash
}

func (t *recentTable) init(n int) {
	t.ring = make([]recentRec, n)
	t.byOff.init(t, 2*n, false)
	t.byUniq.init(t, 2*n, true)
}

func (t *recentTable) add(r recentRec) {
	pos := int32(t.next)
	if t.full {
		old := &t.ring[pos]
		if old.off >= 0 {
			t.byOff.del(uint64(old.off), pos)
		}
		t.byUniq.del(old.uniq, pos)
	}
	t.ring[pos] = r
	t.byOff.set(uint64(r.off), pos)
	t.byUniq.set(r.uniq, pos)
	t.next++
	if t.next == len(t.ring) {
		t.next, t.full = 0, true
	}
}

// byOffset returns the record of a half offset resolved at or after notBefore.
func (t *recentTable) byOffset(off, notBefore int64) (recentRec, bool) {
	i, ok := t.byOff.get(uint64(off))
	if !ok || t.ring[i].at < notBefore {
		return recentRec{}, false
	}
	return t.ring[i], true
}

// byHash returns the latest record whose UNIQ_KEY hashes to h.
func (t *recentTable) byHash(h uint64, notBefore int64) (recentRec, bool) {
	i, ok := t.byUniq.get(h)
	if !ok || t.ring[i].at < notBefore {
		return recentRec{}, false
	}
	return t.ring[i], true
}

// forget drops what is known of a half offset (it was resumed).
func (t *recentTable) forget(off int64) {
	i, ok := t.byOff.get(uint64(off))
	if !ok {
		return
	}
	t.byOff.del(uint64(off), i)
	t.byUniq.del(t.ring[i].uniq, i) // only if it is the hash's latest
	t.ring[i].off = -1
}

// posTable maps keys to positions in the ring of a recentTable: open
// addressing with linear probing and backward-shift deletion. A slot holds
// position+1 (0: empty); the key of a slot is read from the ring, so the
// table holds only positions whose record carries the key.
type posTable struct {
	t      *recentTable
	slots  []int32
	shift  uint // 64 - log2(len(slots))
	byUniq bool // key is ring[pos].uniq, else ring[pos].off
}

func (p *posTable) init(t *recentTable, n int, byUniq bool) {
	size, bits := 1, uint(0)
	for size < n {
		size, bits = size*2, bits+1
	}
	p.t, p.slots, p.shift, p.byUniq = t, make([]int32, size), 64-bits, byUniq
}

func (p *posTable) key(pos int32) uint64 {
	if p.byUniq {
		return p.t.ring[pos].uniq
	}
	return uint64(p.t.ring[pos].off)
}

// home is k's first slot (Fibonacci hashing: offsets are multiples of
// record sizes, and the low bits of a key alone would cluster).
func (p *posTable) home(k uint64) int {
	if p.shift >= 64 {
		return 0
	}
	return int((k * 0x9E3779B97F4A7C15) >> p.shift)
}

func (p *posTable) get(k uint64) (int32, bool) {
	mask := len(p.slots) - 1
	for i := p.home(k); ; i = (i + 1) & mask {
		v := p.slots[i]
		if v == 0 {
			return 0, false
		}
		if p.key(v-1) == k {
			return v - 1, true
		}
	}
}

// set points k at pos (whose record carries k), replacing the position k
// had.
func (p *posTable) set(k uint64, pos int32) {
	mask := len(p.slots) - 1
	for i := p.home(k); ; i = (i + 1) & mask {
		v := p.slots[i]
		if v == 0 || v-1 == pos || p.key(v-1) == k {
			p.slots[i] = pos + 1
			return
		}
	}
}

// del removes the slot of k if it holds pos (k may since point elsewhere).
func (p *posTable) del(k uint64, pos int32) {
	mask := len(p.slots) - 1
	i := p.home(k)
	for ; ; i = (i + 1) & mask {
		v := p.slots[i]
		if v == 0 {
			return
		}
		if v-1 == pos {
			break
		}
	}
	// Backward shift: move up every later slot of the run whose home is
	// not cyclically within (i, j], so no probe meets a hole too early.
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		v := p.slots[j]
		if v == 0 {
			break
		}
		h := p.home(p.key(v - 1))
		if i <= j && (h <= i || h > j) || i > j && h <= i && h > j {
			p.slots[i] = v
			i = j
		}
	}
	p.slots[i] = 0
}
