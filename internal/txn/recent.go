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
// position+1 (0: empty) and the top 32 bits of its key's hash, from which
// its home slot follows: a probe compares hashes without reading the ring
// (a cache miss per slot in a table of 64k records), and reads a record
// only to confirm a match. The table holds only positions whose record
// carries the key.
type posTable struct {
	t      *recentTable
	slots  []posSlot
	bits   uint // log2(len(slots)), at most 32
	byUniq bool // key is ring[pos].uniq, else ring[pos].off
}

type posSlot struct {
	hash uint32 // top 32 bits of hash(key)
	pos  int32  // ring position + 1; 0: empty
}

func (p *posTable) init(t *recentTable, n int, byUniq bool) {
	size, bits := 1, uint(0)
	for size < n && bits < 32 {
		size, bits = size*2, bits+1
	}
	p.t, p.slots, p.bits, p.byUniq = t, make([]posSlot, size), bits, byUniq
}

func (p *posTable) key(pos int32) uint64 {
	if p.byUniq {
		return p.t.ring[pos].uniq
	}
	return uint64(p.t.ring[pos].off)
}

// hash32 is the top 32 bits of Fibonacci hashing of k (offsets are multiples
// of record sizes, and the low bits of a key alone would cluster).
func hash32(k uint64) uint32 { return uint32((k * 0x9E3779B97F4A7C15) >> 32) }

// home is the first slot of a key whose hash is h.
func (p *posTable) home(h uint32) int {
	if p.bits == 0 {
		return 0
	}
	return int(h >> (32 - p.bits))
}

func (p *posTable) get(k uint64) (int32, bool) {
	mask, h := len(p.slots)-1, hash32(k)
	for i := p.home(h); ; i = (i + 1) & mask {
		s := p.slots[i]
		if s.pos == 0 {
			return 0, false
		}
		if s.hash == h && p.key(s.pos-1) == k {
			return s.pos - 1, true
		}
	}
}

// set points k at pos (whose record carries k), replacing the position k
// had.
func (p *posTable) set(k uint64, pos int32) {
	mask, h := len(p.slots)-1, hash32(k)
	for i := p.home(h); ; i = (i + 1) & mask {
		s := p.slots[i]
		if s.pos == 0 || s.pos-1 == pos || s.hash == h && p.key(s.pos-1) == k {
			p.slots[i] = posSlot{hash: h, pos: pos + 1}
			return
		}
	}
}

// del removes the slot of k if it holds pos (k may since point elsewhere).
func (p *posTable) del(k uint64, pos int32) {
	mask := len(p.slots) - 1
	i := p.home(hash32(k))
	for ; ; i = (i + 1) & mask {
		s := p.slots[i]
		if s.pos == 0 {
			return
		}
		if s.pos-1 == pos {
			break
		}
	}
	// Backward shift: move up every later slot of the run whose home is
	// not cyclically within (i, j], so no probe meets a hole too early.
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := p.slots[j]
		if s.pos == 0 {
			break
		}
		h := p.home(s.hash)
		if i <= j && (h <= i || h > j) || i > j && h <= i && h > j {
			p.slots[i] = s
			i = j
		}
	}
	p.slots[i] = posSlot{}
}
