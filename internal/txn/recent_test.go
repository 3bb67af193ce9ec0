package txn

import (
	"math/rand/v2"
	"testing"
)

// TestRecentTableMatchesModel drives the recent table with random adds
// (offsets and hashes repeating, so tables see collisions, replacements
// and evictions) and forgets, and checks every lookup against a plain
// model of what it must remember.
func TestRecentTableMatchesModel(t *testing.T) {
	for _, size := range []int{1, 2, 8, 64} {
		var tab recentTable
		tab.init(size)
		type rec struct {
			off       int64
			uniq      uint64
			at        int64
			forgotten bool
		}
		var hist []rec // every add, in order
		// live is what the table remembers: the adds of the generation
		// being filled (of size/2 adds each) and of the one before it, so
		// at least the last size/2 adds and at most size.
		gen := max(1, size/2)
		live := func() []rec {
			if len(hist) == 0 {
				return nil
			}
			b := (len(hist) - 1) / gen // the block of the last add
			return hist[max(0, (b-1)*gen):]
		}
		// latest returns the newest remembered add matching f, or nil.
		latest := func(f func(r *rec) bool) *rec {
			l := live()
			for x := len(l) - 1; x >= 0; x-- {
				if f(&l[x]) {
					return &l[x]
				}
			}
			return nil
		}
		rng := rand.New(rand.NewPCG(uint64(size), 7))
		for step := range 20000 {
			switch rng.IntN(10) {
			case 0: // forget an offset: its newest add, unless forgotten already
				off := int64(rng.IntN(4*size)) * 1000
				tab.forget(off)
				if r := latest(func(r *rec) bool { return r.off == off }); r != nil {
					r.forgotten = true
				}
			default:
				r := rec{off: int64(rng.IntN(4*size)) * 1000, uniq: uint64(rng.IntN(4 * size)), at: int64(step)}
				tab.add(recentRec{off: r.off, uniq: r.uniq, at: r.at})
				hist = append(hist, r)
			}
			// The model: an offset or a hash finds its newest add among
			// those remembered, unless that one was forgotten.
			for k := range 4 * size {
				off, h := int64(k)*1000, uint64(k)
				want := latest(func(r *rec) bool { return r.off == off })
				if want != nil && want.forgotten {
					want = nil
				}
				got, ok := tab.byOffset(off, 0)
				if ok != (want != nil) || ok && (got.at != want.at || got.off != off) {
					t.Fatalf("size %d step %d: byOffset(%d) = %+v %v, want %+v", size, step, off, got, ok, want)
				}
				wantH := latest(func(r *rec) bool { return r.uniq == h })
				if wantH != nil && wantH.forgotten {
					wantH = nil
				}
				gotH, okH := tab.byHash(h, 0)
				if okH != (wantH != nil) || okH && gotH.at != wantH.at {
					t.Fatalf("size %d step %d: byHash(%d) = %+v %v, want %+v", size, step, h, gotH, okH, wantH)
				}
			}
		}
	}
}
