package mmapfile

import (
	"os"
	"sync/atomic"
)

var pageSize = int64(os.Getpagesize())

// Resident tracks which pages of one shared file mapping Release dropped
// from the process's resident set, so that a periodic trim releases only
// what may have been mapped again since. Users call Touch on every access
// of the mapping (reads and writes) and Release from the trimming
// goroutine. The zero value is ready: nothing released yet.
type Resident struct {
	touched atomic.Bool
	// [lo, hi): released by the last Release and not touched since.
	lo, hi atomic.Int64
}

// Touch notes that the mapping was used. It loads before it stores, so a
// busy mapping's flag is written once per Release round.
func (r *Resident) Touch() {
	if !r.touched.Load() {
		r.touched.Store(true)
	}
}

// Release drops the pages of data[lo:hi] from the process's resident set
// with DontNeed, lo rounded up and hi rounded down to a page (hi ==
// len(data) covers the last, partial page). Unless the mapping was touched
// since the last Release, the part that call released is skipped: a
// mapping that only grows at its end costs one madvise of its new pages.
// The caller must keep the mapping alive and must pass a part nobody
// writes anymore: released pages that are written again stay resident
// until the next Release after a Touch.
func (r *Resident) Release(data []byte, lo, hi int64) error {
	touched := r.touched.Swap(false)
	hi = min(hi, int64(len(data)))
	lo = (lo + pageSize - 1) / pageSize * pageSize
	if hi < int64(len(data)) {
		hi = hi / pageSize * pageSize
	}
	from := lo
	if rlo, rhi := r.lo.Load(), r.hi.Load(); !touched && rlo <= lo && rhi > lo {
		from = rhi
	}
	if from >= hi {
		return nil
	}
	if err := DontNeed(data[from:hi]); err != nil {
		r.touched.Store(true) // retry it all next round
		return err
	}
	r.lo.Store(lo)
	r.hi.Store(hi)
	return nil
}
