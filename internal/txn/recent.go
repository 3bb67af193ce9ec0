package txn

// recentRec remembers one resolved transaction.
type recentRec struct {
	off   int64  // half commit-log offset
	uniq  uint64 // hash of UNIQ_KEY
	at    int64  // ms, when it was resolved (the resolving record's store time)
	group uint32
	state State
	gone  bool // forgotten (the half was resumed): lookups stop at it
}

// recentTable is a bounded FIFO of recently resolved transactions, indexed
// by half offset and by UNIQ_KEY hash, so a late END answers "already
// committed" rather than "unknown". Guarded by Service.mu.
//
// Every END adds to it, so its indexes are open-addressing tables of ring
// positions (posTable) rather than Go maps, and nothing is ever deleted
// from them one by one: the ring is two generations of size records, each
// with its own pair of tables, and when the ring comes back to a
// generation its tables are cleared at once (a memclr), just before its
// records are overwritten. An add is then two slot writes, where evicting
// the oldest record from one pair of tables cost two more probes at random
// and their backward shifts. A table of n records remembers at least the
// last n/2 and at most n. A lookup tries the generation being filled,
// then the other: each table points a key at its newest record in that
// generation, so the first found is the newest of all.
type recentTable struct {
	ring []recentRec // 2*size records: generation g is ring[g*size:(g+1)*size]
	size int         // records per generation
	next int         // ring position of the next add
	gens [2]struct {
		byOff  posTable // keyed by ring[pos].off
		byUniq posTable // keyed by ring[pos].uniq
		// used: the tables hold positions, so they are cleared before the
		// generation is filled again. Tables never used are not cleared:
		// that would fault in pages nothing has touched.
		used bool
	}
}

// init sizes the table for n records (two generations of n/2).
func (t *recentTable) init(n int) {
	t.size = max(1, n/2)
	t.ring = make([]recentRec, 2*t.size)
	for g := range t.gens {
		t.gens[g].byOff.init(t, 2*t.size, false)
		t.gens[g].byUniq.init(t, 2*t.size, true)
	}
}

func (t *recentTable) add(r recentRec) {
	pos := t.next
	g := pos / t.size
	gen := &t.gens[g]
	if pos%t.size == 0 && gen.used {
		// Back to this generation: forget all it holds at once.
		clear(gen.byOff.slots)
		clear(gen.byUniq.slots)
	}
	gen.used = true
	t.ring[pos] = r
	gen.byOff.set(uint64(r.off), int32(pos))
	gen.byUniq.set(r.uniq, int32(pos))
	if t.next++; t.next == len(t.ring) {
		t.next = 0
	}
}

// newest returns the ring position of the newest record carrying key k
// (by offset or by hash), or false.
func (t *recentTable) newest(k uint64, byUniq bool) (int32, bool) {
	// The generation of the last add is being filled; with none yet, both
	// are empty and the order does not matter.
	cur := (t.next + len(t.ring) - 1) % len(t.ring) / t.size
	for _, g := range [2]int{cur, 1 - cur} {
		p := &t.gens[g].byOff
		if byUniq {
			p = &t.gens[g].byUniq
		}
		if i, ok := p.get(k); ok {
			return i, true
		}
	}
	return 0, false
}

// lookup returns the newest record carrying key k unless it was forgotten
// or resolved before notBefore.
func (t *recentTable) lookup(k uint64, byUniq bool, notBefore int64) (recentRec, bool) {
	i, ok := t.newest(k, byUniq)
	if !ok || t.ring[i].gone || t.ring[i].at < notBefore {
		return recentRec{}, false
	}
	return t.ring[i], true
}

// byOffset returns the record of a half offset resolved at or after notBefore.
func (t *recentTable) byOffset(off, notBefore int64) (recentRec, bool) {
	return t.lookup(uint64(off), false, notBefore)
}

// byHash returns the latest record whose UNIQ_KEY hashes to h.
func (t *recentTable) byHash(h uint64, notBefore int64) (recentRec, bool) {
	return t.lookup(h, true, notBefore)
}

// forget drops what is known of a half offset (it was resumed): its newest
// record is marked gone, and lookups by its offset or by its hash stop
// there.
func (t *recentTable) forget(off int64) {
	if i, ok := t.newest(uint64(off), false); ok {
		t.ring[i].gone = true
	}
}

// posTable maps keys to positions in the ring of a recentTable: open
// addressing with linear probing, no deletion (a generation's tables are
// cleared whole). A slot holds position+1 (0: empty) and the top 32 bits
// of its key's hash, from which its home slot follows: a probe compares
// hashes without reading the ring (a cache miss per slot in a table of 64k
// records), and reads a record only to confirm a match. Every position in
// the table is one of its generation's current records, which carries the
// key it was set for.
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

// The probes below are bounded by the table's size, though a generation
// fills at most half of its tables: a bug must not spin under Service.mu.

func (p *posTable) get(k uint64) (int32, bool) {
	mask, h := len(p.slots)-1, hash32(k)
	for i, n := p.home(h), 0; n < len(p.slots); i, n = (i+1)&mask, n+1 {
		s := p.slots[i]
		if s.pos == 0 {
			return 0, false
		}
		if s.hash == h && p.key(s.pos-1) == k {
			return s.pos - 1, true
		}
	}
	return 0, false
}

// set points k at pos (whose record carries k), replacing the position k
// had.
func (p *posTable) set(k uint64, pos int32) {
	mask, h := len(p.slots)-1, hash32(k)
	for i, n := p.home(h), 0; n < len(p.slots); i, n = (i+1)&mask, n+1 {
		s := p.slots[i]
		if s.pos == 0 || s.pos-1 == pos || s.hash == h && p.key(s.pos-1) == k {
			p.slots[i] = posSlot{hash: h, pos: pos + 1}
			return
		}
	}
}
