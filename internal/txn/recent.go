package txn

// recentRec remembers one resolved transaction.
type recentRec struct {
	off   int64  // half commit-log offset
	uniq  uint64 // hash of UNIQ_KEY
	at    int64  // ms, when it was resolved (the resolving record's store time)
	group uint32
	state State
}

// recentTable is a bounded FIFO of recently resolved transactions, indexed
// by half offset and by UNIQ_KEY hash, so a late END answers "already
// committed" rather than "unknown". Guarded by Service.mu.
type recentTable struct {
	ring   []recentRec
	next   int
	full   bool
	byOff  map[int64]int32
	byUniq map[uint64]int32
}

func (t *recentTable) init(n int) {
	t.ring = make([]recentRec, n)
	t.byOff = make(map[int64]int32)
	t.byUniq = make(map[uint64]int32)
}

func (t *recentTable) add(r recentRec) {
	if t.full {
		old := t.ring[t.next]
		if i, ok := t.byOff[old.off]; ok && int(i) == t.next {
			delete(t.byOff, old.off)
		}
		if i, ok := t.byUniq[old.uniq]; ok && int(i) == t.next {
			delete(t.byUniq, old.uniq)
		}
	}
	t.ring[t.next] = r
	t.byOff[r.off] = int32(t.next)
	t.byUniq[r.uniq] = int32(t.next)
	t.next++
	if t.next == len(t.ring) {
		t.next, t.full = 0, true
	}
}

// byOffset returns the record of a half offset resolved at or after notBefore.
func (t *recentTable) byOffset(off, notBefore int64) (recentRec, bool) {
	i, ok := t.byOff[off]
	if !ok || t.ring[i].off != off || t.ring[i].at < notBefore {
		return recentRec{}, false
	}
	return t.ring[i], true
}

// byHash returns the latest record whose UNIQ_KEY hashes to h.
func (t *recentTable) byHash(h uint64, notBefore int64) (recentRec, bool) {
	i, ok := t.byUniq[h]
	if !ok || t.ring[i].uniq != h || t.ring[i].at < notBefore {
		return recentRec{}, false
	}
	return t.ring[i], true
}

// forget drops what is known of a half offset (it was resumed).
func (t *recentTable) forget(off int64) {
	if i, ok := t.byOff[off]; ok {
		delete(t.byOff, off)
		if j, ok := t.byUniq[t.ring[i].uniq]; ok && j == i {
			delete(t.byUniq, t.ring[i].uniq)
		}
		t.ring[i].off = -1
	}
}
