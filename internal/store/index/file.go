package index

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"

	"github.com/txmq/txmq/internal/store/mmapfile"
)

// On-disk format. All integers are big-endian.
//
//	header (64 bytes)
//	  0 magic       uint32  "TXIX"
//	  4 version     uint16  1
//	  6 flags       uint16  bit 0: clean (contents synced, untouched since)
//	  8 slotCount   uint32
//	 12 capacity    uint32  entries the file can hold
//	 16 beginTs     int64   store timestamp (ms) of the first entry; base of timeDiff
//	 24 endTs       int64   highest store timestamp added
//	 32 minTs       int64   lowest store timestamp added
//	 40 beginOffset int64   commit-log offset of the first entry
//	 48 endOffset   int64   commit-log offset of the last entry
//	 56 slotsUsed   uint32  non-empty slots
//	 60 count       uint32  entries in use
//	slots: slotCount x uint32, 1 + index of the newest entry of the slot's chain, 0 = empty
//	entries: capacity x 20 bytes
//	  0 keyHash         uint32
//	  4 commitLogOffset int64
//	 12 timeDiff        int32   storeTs - beginTs, milliseconds (a file is
//	                            closed early rather than let it overflow)
//	 16 prev            uint32  1 + index of the previous entry of the chain, 0 = none
const (
	magic      = 0x54584958 // "TXIX"
	version    = 1
	flagClean  = 1
	headerSize = 64
	slotSize   = 4
	entrySize  = 20

	hMagic     = 0
	hVersion   = 4
	hFlags     = 6
	hSlots     = 8
	hCapacity  = 12
	hBeginTs   = 16
	hEndTs     = 24
	hMinTs     = 32
	hBeginOff  = 40
	hEndOff    = 48
	hSlotsUsed = 56
	hCount     = 60

	// maxGeometry bounds slotCount and capacity read from disk.
	maxGeometry = 1 << 28

	fileNameLen = 20
)

var be = binary.BigEndian

func fileSize(slots, capacity int) int64 {
	return headerSize + int64(slots)*slotSize + int64(capacity)*entrySize
}

// indexFile is one mapped index file.
type indexFile struct {
	name     int64  // from the file name; orders files
	path     string // full path
	data     []byte // the mapping
	slots    int64
	capacity int64

	// rw guards the mapped content against the writer: Add and repair take
	// it for writing, Lookup for reading. Unmapping is guarded by
	// Index.mapMu, not by rw.
	rw    sync.RWMutex
	dirty atomic.Bool
	// clean mirrors the on-disk clean flag; changed only with Index.mu held
	// (Add, TruncateFrom, Close) or, for files that are not the last one,
	// under Index.mapMu read-locked by Sync (no writer touches those).
	clean atomic.Bool
	res   mmapfile.Resident // Add and lookups touch it, Trim releases
}

func (f *indexFile) u32(off int64) uint32       { return be.Uint32(f.data[off:]) }
func (f *indexFile) i64(off int64) int64        { return int64(be.Uint64(f.data[off:])) }
func (f *indexFile) putU32(off int64, v uint32) { be.PutUint32(f.data[off:], v) }
func (f *indexFile) putI64(off int64, v int64)  { be.PutUint64(f.data[off:], uint64(v)) }

func (f *indexFile) count() int64 {
	return min(int64(f.u32(hCount)), f.capacity)
}

func (f *indexFile) slotOff(b int64) int64  { return headerSize + b*slotSize }
func (f *indexFile) entryOff(i int64) int64 { return headerSize + f.slots*slotSize + i*entrySize }

type entry struct {
	hash     uint32
	offset   int64
	timeDiff int32
	prev     uint32
}

func (f *indexFile) entry(i int64) entry {
	b := f.data[f.entryOff(i):]
	_ = b[entrySize-1]
	return entry{
		hash:     be.Uint32(b[0:]),
		offset:   int64(be.Uint64(b[4:])),
		timeDiff: int32(be.Uint32(b[12:])),
		prev:     be.Uint32(b[16:]),
	}
}

func (f *indexFile) putEntry(i int64, e entry) {
	b := f.data[f.entryOff(i):]
	_ = b[entrySize-1]
	be.PutUint32(b[0:], e.hash)
	be.PutUint64(b[4:], uint64(e.offset))
	be.PutUint32(b[12:], uint32(e.timeDiff))
	be.PutUint32(b[16:], e.prev)
}

// initHeader writes the header of a new file.
func (f *indexFile) initHeader() {
	f.putU32(hMagic, magic)
	be.PutUint16(f.data[hVersion:], version)
	be.PutUint16(f.data[hFlags:], 0)
	f.putU32(hSlots, uint32(f.slots))
	f.putU32(hCapacity, uint32(f.capacity))
}

func (f *indexFile) setCleanFlag(on bool) {
	fl := be.Uint16(f.data[hFlags:])
	if on {
		fl |= flagClean
	} else {
		fl &^= flagClean
	}
	be.PutUint16(f.data[hFlags:], fl)
}

// fitsTimeDiff reports whether ts can be stored relative to base.
func fitsTimeDiff(ts, base int64) bool {
	d := ts - base
	return (ts >= base) == (d >= 0) && d >= math.MinInt32 && d <= math.MaxInt32
}

// timeDiff converts a store timestamp into the stored offset from base
// (saturating; Add starts a new file before it would saturate).
func timeDiff(ts, base int64) int32 {
	if !fitsTimeDiff(ts, base) {
		if ts < base {
			return math.MinInt32
		}
		return math.MaxInt32
	}
	return int32(ts - base)
}

// add appends an entry; f.rw must be write-locked and the file not full.
func (f *indexFile) add(h uint32, off, ts int64) {
	n := f.count()
	if n == 0 {
		f.putI64(hBeginTs, ts)
		f.putI64(hEndTs, ts)
		f.putI64(hMinTs, ts)
		f.putI64(hBeginOff, off)
	}
	b := int64(h % uint32(f.slots))
	prev := f.u32(f.slotOff(b))
	if int64(prev) > n {
		prev = 0 // cannot happen in a repaired file; never link forward
	}
	f.putEntry(n, entry{hash: h, offset: off, timeDiff: timeDiff(ts, f.i64(hBeginTs)), prev: prev})
	f.putU32(f.slotOff(b), uint32(n+1))
	if prev == 0 {
		f.putU32(hSlotsUsed, f.u32(hSlotsUsed)+1)
	}
	f.putI64(hEndOff, off)
	if ts > f.i64(hEndTs) {
		f.putI64(hEndTs, ts)
	}
	if ts < f.i64(hMinTs) {
		f.putI64(hMinTs, ts)
	}
	f.putU32(hCount, uint32(n+1))
}

// truncate removes the entries [k, count), newest first, restoring each
// slot to the entry's predecessor. f.rw must be write-locked.
func (f *indexFile) truncate(k int64) {
	n := f.count()
	used := int64(f.u32(hSlotsUsed))
	for i := n - 1; i >= k; i-- {
		e := f.entry(i)
		so := f.slotOff(int64(e.hash % uint32(f.slots)))
		if int64(f.u32(so)) == i+1 {
			p := e.prev
			if int64(p) > i {
				p = 0
			}
			f.putU32(so, p)
			if p == 0 && used > 0 {
				used--
			}
		}
		clear(f.data[f.entryOff(i) : f.entryOff(i)+entrySize])
	}
	f.putU32(hSlotsUsed, uint32(used))
	f.putU32(hCount, uint32(k))
	if k == 0 {
		clear(f.data[hBeginTs:hCount])
		return
	}
	f.putI64(hEndOff, f.entry(k-1).offset)
}

// repair validates the entries and slots of a file that was not closed
// cleanly and fixes what it must: the entry count is cut at the first
// invalid entry, and the slot table is rebuilt when it disagrees with the
// entries. It reports whether anything changed. f.rw must be write-locked.
func (f *indexFile) repair() (changed bool) {
	n := f.count()
	if int64(f.u32(hCount)) != n {
		changed = true
	}
	prevOff := int64(0)
	minDiff, maxDiff := int32(math.MaxInt32), int32(math.MinInt32)
	k := int64(0)
	for ; k < n; k++ {
		e := f.entry(k)
		if e.offset < prevOff || int64(e.prev) > k ||
			(e.prev != 0 && f.entry(int64(e.prev)-1).hash%uint32(f.slots) != e.hash%uint32(f.slots)) {
			break
		}
		prevOff = e.offset
		minDiff, maxDiff = min(minDiff, e.timeDiff), max(maxDiff, e.timeDiff)
	}
	if k != n {
		changed = true
		n = k
		f.putU32(hCount, uint32(n))
	}
	// Slots must point at the newest entry of their bucket.
	slotsOK := true
	for b := int64(0); b < f.slots; b++ {
		v := int64(f.u32(f.slotOff(b)))
		if v > n || v > 0 && int64(f.entry(v-1).hash%uint32(f.slots)) != b {
			slotsOK = false
			break
		}
	}
	if !slotsOK {
		changed = true
		clear(f.data[f.slotOff(0):f.entryOff(0)])
		used := uint32(0)
		for i := int64(0); i < n; i++ {
			e := f.entry(i)
			so := f.slotOff(int64(e.hash % uint32(f.slots)))
			p := f.u32(so)
			if p == 0 {
				used++
			}
			if e.prev != p {
				e.prev = p
				f.putEntry(i, e)
			}
			f.putU32(so, uint32(i+1))
		}
		f.putU32(hSlotsUsed, used)
	}
	if n == 0 {
		if !allZero(f.data[hBeginTs:hCount]) {
			changed = true
			clear(f.data[hBeginTs:hCount])
		}
		return changed
	}
	// Derive the summary fields from the entries, conservatively.
	base := f.i64(hBeginTs)
	minTs := base + int64(minDiff)
	maxTs := base + int64(maxDiff)
	fix := func(off, v int64) {
		if f.i64(off) != v {
			f.putI64(off, v)
			changed = true
		}
	}
	if f.i64(hMinTs) > minTs {
		fix(hMinTs, minTs)
	}
	if f.i64(hEndTs) < maxTs {
		fix(hEndTs, maxTs)
	}
	fix(hBeginOff, f.entry(0).offset)
	fix(hEndOff, f.entry(n-1).offset)
	return changed
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
