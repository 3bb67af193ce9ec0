package index

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func testOpts(t testing.TB, slots, entries int) Options {
	return Options{SlotsPerFile: slots, EntriesPerFile: entries, Logger: slog.New(slog.NewTextHandler(tLogWriter{t}, nil))}
}

func mustOpen(t testing.TB, root string, slots, entries int) *Index {
	t.Helper()
	x, err := Open(root, testOpts(t, slots, entries))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return x
}

const t0 = int64(1_700_000_000_000)

// record i has keys k<i%5> and u<i>, offset 1000*i and store time t0+500*i.
func addRecords(t testing.TB, x *Index, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		off, ts := int64(1000*i), t0+int64(500*i)
		for _, k := range []string{fmt.Sprintf("T#k%d", i%5), fmt.Sprintf("T#u%d", i)} {
			if err := x.Add(k, off, ts); err != nil {
				t.Fatalf("Add(%s, %d): %v", k, off, err)
			}
		}
	}
}

// want returns the offsets of records in [from, to) whose key is key and
// store time lies in the window, newest first, at most maxNum.
func want(key string, from, to int, beginTs, endTs int64, maxNum int) []int64 {
	var res []int64
	for i := to - 1; i >= from && len(res) < maxNum; i-- {
		ts := t0 + int64(500*i)
		if ts < beginTs || ts > endTs {
			continue
		}
		if key == fmt.Sprintf("T#k%d", i%5) || key == fmt.Sprintf("T#u%d", i) {
			res = append(res, int64(1000*i))
		}
	}
	return res
}

func lookup(t testing.TB, x *Index, key string, beginTs, endTs int64, maxNum int) []int64 {
	t.Helper()
	got, err := x.Lookup(key, beginTs, endTs, maxNum)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", key, err)
	}
	return got
}

// checkAll verifies lookups of every key of records [from, to) over the
// whole time range. With few slots, collisions add candidates: the check
// then is that every expected offset is present, in order, plus only
// offsets of real records.
func checkAll(t testing.TB, x *Index, from, to int, exact bool) {
	t.Helper()
	keys := []string{"T#k0", "T#k1", "T#k2", "T#k3", "T#k4", "T#none"}
	for i := from; i < to; i++ {
		keys = append(keys, fmt.Sprintf("T#u%d", i))
	}
	for _, k := range keys {
		got := lookup(t, x, k, 0, 1<<62, 1<<20)
		w := want(k, from, to, 0, 1<<62, 1<<20)
		if exact {
			if !slices.Equal(got, w) {
				t.Fatalf("Lookup(%s) = %v, want %v", k, got, w)
			}
			continue
		}
		if !slices.IsSortedFunc(got, func(a, b int64) int { return int(b - a) }) {
			t.Fatalf("Lookup(%s) = %v not newest first", k, got)
		}
		for _, o := range w {
			if !slices.Contains(got, o) {
				t.Fatalf("Lookup(%s) = %v misses %d", k, got, o)
			}
		}
		for _, o := range got {
			if o%1000 != 0 || o < int64(1000*from) || o >= int64(1000*to) {
				t.Fatalf("Lookup(%s) = %v has unknown offset %d", k, got, o)
			}
		}
	}
	wantMax := int64(-1)
	if to > 0 {
		wantMax = int64(1000 * (to - 1))
	}
	if got := x.MaxCommitLogOffset(); got != wantMax {
		t.Fatalf("MaxCommitLogOffset = %d, want %d", got, wantMax)
	}
}

func files(t testing.TB, root string) []string {
	t.Helper()
	des, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestIndexAddLookup(t *testing.T) {
	for _, tc := range []struct {
		name           string
		slots, entries int
		records        int
		wantFiles      int
		exact          bool
	}{
		{"one-file", 1024, 1024, 100, 1, true},
		{"collisions-one-slot", 1, 1024, 100, 1, false},
		{"collisions-few-slots", 3, 1024, 100, 1, false},
		{"rollover", 64, 30, 100, 7, true},
		{"rollover-collisions", 2, 7, 50, 15, false},
		{"entry-per-file", 4, 1, 5, 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			x := mustOpen(t, root, tc.slots, tc.entries)
			checkAll(t, x, 0, 0, true)
			addRecords(t, x, 0, tc.records)
			checkAll(t, x, 0, tc.records, tc.exact)
			if got := len(files(t, root)); got != tc.wantFiles {
				t.Fatalf("files = %v, want %d", files(t, root), tc.wantFiles)
			}
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
			// Reopen with another geometry: existing files keep theirs.
			x = mustOpen(t, root, 5, 3)
			defer x.Close()
			checkAll(t, x, 0, tc.records, tc.exact)
			addRecords(t, x, tc.records, tc.records+10)
			checkAll(t, x, 0, tc.records+10, false)
		})
	}
}

func TestIndexCollisionsAreCandidates(t *testing.T) {
	x := mustOpen(t, t.TempDir(), 1, 100)
	defer x.Close()
	// Find two keys with the same full hash is impractical; with one slot
	// every key shares the chain, and only equal hashes are returned.
	x.Add("T#a", 10, t0)
	x.Add("T#b", 20, t0)
	x.Add("T#a", 30, t0)
	if got := lookup(t, x, "T#a", 0, 1<<62, 10); !slices.Equal(got, []int64{30, 10}) {
		t.Fatalf("T#a = %v", got)
	}
	if got := lookup(t, x, "T#b", 0, 1<<62, 10); !slices.Equal(got, []int64{20}) {
		t.Fatalf("T#b = %v", got)
	}
}

func TestIndexTimeRangeAndMaxNum(t *testing.T) {
	root := t.TempDir()
	x := mustOpen(t, root, 16, 20)
	defer x.Close()
	addRecords(t, x, 0, 60) // store times t0 .. t0+29500, 6 files
	for _, tc := range []struct {
		key            string
		beginTs, endTs int64
		maxNum         int
		want           []int64
	}{
		{"T#k1", 0, 1 << 62, 100, want("T#k1", 0, 60, 0, 1<<62, 100)},
		{"T#k1", 0, 1 << 62, 3, []int64{56000, 51000, 46000}},
		{"T#k1", 0, 1 << 62, 0, nil},
		{"T#k1", 0, 1 << 62, -1, nil},
		// Record 11 at t0+5500, 16 at t0+8000, 21 at t0+10500; second granularity.
		{"T#k1", t0 + 5000, t0 + 10000, 100, []int64{16000, 11000}},
		{"T#k1", t0 + 8000, t0 + 8000, 100, []int64{16000}},
		{"T#k1", t0 + 8001, t0 + 10499, 100, nil},
		{"T#u31", t0 + 15500, t0 + 15500, 100, []int64{31000}},
		{"T#u31", t0, t0 + 10000, 100, nil},
		{"T#k1", t0 + 100000, t0 + 200000, 100, nil},
		{"T#k1", 5, 1, 100, nil},
	} {
		got := lookup(t, x, tc.key, tc.beginTs, tc.endTs, tc.maxNum)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Lookup(%s, %d, %d, %d) = %v, want %v", tc.key, tc.beginTs-t0, tc.endTs-t0, tc.maxNum, got, tc.want)
		}
	}
}

func TestIndexTimeBeforeBase(t *testing.T) {
	x := mustOpen(t, t.TempDir(), 8, 8)
	defer x.Close()
	// Store times need not be monotonic (clock steps back).
	x.Add("T#a", 0, t0)
	x.Add("T#a", 100, t0-5500)
	x.Add("T#a", 200, t0+3000)
	for _, tc := range []struct {
		b, e int64
		want []int64
	}{
		{t0 - 6000, t0 - 5000, []int64{100}},
		{t0 - 10000, t0 - 6001, nil},
		{t0, t0, []int64{0}},
		{t0 - 1<<40, t0 + 1<<40, []int64{200, 100, 0}},
	} {
		if got := lookup(t, x, "T#a", tc.b, tc.e, 10); !slices.Equal(got, tc.want) {
			t.Errorf("Lookup [%d,%d] = %v, want %v", tc.b-t0, tc.e-t0, got, tc.want)
		}
	}
}

func TestIndexIdempotentRedispatch(t *testing.T) {
	x := mustOpen(t, t.TempDir(), 16, 10)
	defer x.Close()
	addRecords(t, x, 0, 20)
	// Re-dispatch from an earlier point: lower offsets are ignored, the
	// keys of the last record are added again and de-duplicated.
	addRecords(t, x, 5, 25)
	checkAll(t, x, 0, 25, true)
	for _, tc := range []struct {
		key string
		off int64
		err error
	}{
		{"", 0, ErrInvalidKey},
		{"T#x", -1, ErrInvalidOffset},
	} {
		if err := x.Add(tc.key, tc.off, t0); !errors.Is(err, tc.err) {
			t.Errorf("Add(%q, %d) = %v, want %v", tc.key, tc.off, err, tc.err)
		}
	}
}

func TestIndexReopenAfterCrash(t *testing.T) {
	for _, tc := range []struct {
		name string
		sync bool
	}{
		{"synced", true},
		{"unsynced", false}, // page cache survives a process crash
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			x := mustOpen(t, root, 8, 16)
			addRecords(t, x, 0, 30)
			if tc.sync {
				if err := x.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			x2 := mustOpen(t, root, 8, 16) // the first instance never closes cleanly
			defer x.Close()
			defer x2.Close()
			checkAll(t, x2, 0, 30, false)
			addRecords(t, x2, 30, 40)
			checkAll(t, x2, 0, 40, false)
		})
	}
}

func TestIndexTruncateFrom(t *testing.T) {
	for _, tc := range []struct {
		name    string
		off     int64
		keepRec int // records kept
	}{
		{"mid-file", 13500, 14},
		{"exact-record", 13000, 13},
		{"file-boundary", 10000, 10}, // 2 entries per record, 20 per file
		{"everything", 0, 0},
		{"nothing", 30000, 30},
		{"beyond", 1 << 50, 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, slots := range []int{1, 7, 64} {
				for _, reopen := range []bool{false, true} {
					root := t.TempDir()
					x := mustOpen(t, root, slots, 20)
					addRecords(t, x, 0, 30)
					if err := x.TruncateFrom(tc.off); err != nil {
						t.Fatal(err)
					}
					checkAll(t, x, 0, tc.keepRec, slots == 64)
					if reopen {
						x.Close()
						x = mustOpen(t, root, slots, 20)
						checkAll(t, x, 0, tc.keepRec, slots == 64)
					}
					addRecords(t, x, tc.keepRec, 35)
					checkAll(t, x, 0, 35, slots == 64)
					x.Close()
				}
			}
		})
	}
}

func TestIndexDeleteBefore(t *testing.T) {
	root := t.TempDir()
	x := mustOpen(t, root, 16, 10) // 5 records per file
	defer x.Close()
	addRecords(t, x, 0, 23) // 5 files, last one partly full
	for _, tc := range []struct {
		min         int64
		wantRemoved int
		wantFiles   int
	}{
		{0, 0, 5},
		{4000, 0, 5},
		{4001, 1, 4},
		{12000, 1, 3},
		{1 << 50, 2, 1}, // never the current file
	} {
		n, err := x.DeleteBefore(tc.min)
		if err != nil || n != tc.wantRemoved || len(files(t, root)) != tc.wantFiles {
			t.Fatalf("DeleteBefore(%d) = %d, %v, files %v; want %d, %d files", tc.min, n, err, files(t, root), tc.wantRemoved, tc.wantFiles)
		}
	}
	if got := lookup(t, x, "T#k0", 0, 1<<62, 100); !slices.Equal(got, []int64{20000}) {
		t.Fatalf("after retention Lookup = %v", got)
	}
	addRecords(t, x, 23, 26)
	checkAll(t, x, 20, 26, true)
}

func TestIndexClosed(t *testing.T) {
	x := mustOpen(t, t.TempDir(), 8, 8)
	addRecords(t, x, 0, 3)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Add("T#a", 5000, t0); !errors.Is(err, ErrClosed) {
		t.Errorf("Add: %v", err)
	}
	if _, err := x.Lookup("T#a", 0, 1, 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Lookup: %v", err)
	}
	if err := x.TruncateFrom(0); !errors.Is(err, ErrClosed) {
		t.Errorf("TruncateFrom: %v", err)
	}
	if _, err := x.DeleteBefore(0); !errors.Is(err, ErrClosed) {
		t.Errorf("DeleteBefore: %v", err)
	}
	if err := x.Sync(); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync: %v", err)
	}
}

func TestIndexOpenOptions(t *testing.T) {
	for _, o := range []Options{{SlotsPerFile: -1}, {EntriesPerFile: -1}, {SlotsPerFile: maxGeometry + 1}} {
		if _, err := Open(t.TempDir(), o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("Open(%+v) = %v", o, err)
		}
	}
}

// TestIndexLoadCorrupt damages a closed or crashed index and checks that
// Open repairs it and lookups stay correct for what is kept.
func TestIndexLoadCorrupt(t *testing.T) {
	const slots, entries = 8, 20 // 10 records per file
	entryPos := func(i int) int64 { return headerSize + slots*slotSize + int64(i)*entrySize }
	name := func(n int64) string { return fmt.Sprintf("%020d", n) }
	for _, tc := range []struct {
		name    string
		crash   bool
		damage  func(t *testing.T, root string)
		from    int
		keepRec int
	}{
		{"intact-clean", false, func(*testing.T, string) {}, 0, 25},
		{"intact-crash", true, func(*testing.T, string) {}, 0, 25},
		{"bad-magic-last", true, func(t *testing.T, root string) {
			writeAt(t, filepath.Join(root, name(20000)), 0, []byte("XXXX"))
		}, 0, 20},
		{"bad-magic-clean-first", false, func(t *testing.T, root string) {
			writeAt(t, filepath.Join(root, name(0)), 0, []byte("XXXX"))
		}, 10, 25},
		{"truncated-file", true, func(t *testing.T, root string) {
			os.Truncate(filepath.Join(root, name(20000)), 100)
		}, 0, 20},
		{"tiny-file", true, func(t *testing.T, root string) {
			os.Truncate(filepath.Join(root, name(20000)), 3)
		}, 0, 20},
		{"offset-goes-down", true, func(t *testing.T, root string) {
			writeAt(t, filepath.Join(root, name(20000)), entryPos(6)+4, []byte{0, 0, 0, 0, 0, 0, 0, 0})
		}, 0, 23},
		{"forward-link", true, func(t *testing.T, root string) {
			writeAt(t, filepath.Join(root, name(20000)), entryPos(4)+16, []byte{0, 0, 0, 9})
		}, 0, 22},
		{"count-too-big", true, func(t *testing.T, root string) {
			writeAt(t, filepath.Join(root, name(20000)), hCount, []byte{0xff, 0, 0, 0})
		}, 0, 25},
		{"slots-garbage", true, func(t *testing.T, root string) {
			writeAt(t, filepath.Join(root, name(20000)), headerSize, []byte{0, 0, 0, 99, 0, 0, 0, 1, 0, 0, 0, 1})
		}, 0, 25},
		{"stray-files", false, func(t *testing.T, root string) {
			os.WriteFile(filepath.Join(root, "junk"), nil, 0o644)
			os.Mkdir(filepath.Join(root, name(5)), 0o755)
		}, 0, 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			x := mustOpen(t, root, slots, entries)
			addRecords(t, x, 0, 25)
			if tc.crash {
				x.Sync()
				defer x.Close()
			} else {
				x.Close()
			}
			tc.damage(t, root)
			x2 := mustOpen(t, root, slots, entries)
			defer x2.Close()
			checkAll(t, x2, tc.from, tc.keepRec, false)
			addRecords(t, x2, tc.keepRec, 30)
			checkAll(t, x2, tc.from, 30, false)
		})
	}
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestIndexConcurrency runs one writer, several readers, a flusher and
// retention under -race.
func TestIndexConcurrency(t *testing.T) {
	x := mustOpen(t, t.TempDir(), 64, 200)
	defer x.Close()
	const records = 2000
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		addRecords(t, x, 0, records)
	}()
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				maxOff := x.MaxCommitLogOffset()
				if maxOff < 0 {
					continue
				}
				i := int(maxOff / 1000)
				got, err := x.Lookup(fmt.Sprintf("T#u%d", i-r), 0, 1<<62, 4)
				if err != nil {
					t.Error(err)
					return
				}
				// Retention may have removed it; if found it must be right.
				for _, o := range got {
					if o != int64(1000*(i-r)) {
						t.Errorf("Lookup(u%d) = %v", i-r, got)
						return
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := x.Sync(); err != nil {
				t.Error(err)
			}
			if _, err := x.DeleteBefore(x.MaxCommitLogOffset() - 500_000); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
}

func TestIndexTimeSpanRollsOver(t *testing.T) {
	root := t.TempDir()
	x := mustOpen(t, root, 8, 100)
	defer x.Close()
	const day = int64(24 * 3600 * 1000)
	for i, ts := range []int64{t0, t0 + 20*day, t0 + 30*day, t0 - 1*day, t0 + 60*day} {
		if err := x.Add("T#a", int64(i*10), ts); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(files(t, root)); n != 4 {
		t.Fatalf("files = %v, want 4", files(t, root))
	}
	for _, tc := range []struct {
		b, e int64
		want []int64
	}{
		{t0, t0, []int64{0}},
		{t0 + 30*day, t0 + 30*day, []int64{20}},
		{t0 - 1*day, t0 - 1*day, []int64{30}},
		{t0 - 2*day, t0 + 100*day, []int64{40, 30, 20, 10, 0}},
	} {
		if got := lookup(t, x, "T#a", tc.b, tc.e, 10); !slices.Equal(got, tc.want) {
			t.Errorf("Lookup [%d,%d] = %v, want %v", tc.b-t0, tc.e-t0, got, tc.want)
		}
	}
}

// TestAddBatchMatchesAdd: AddBatch leaves the same lookups as Add one by
// one (a small file geometry, so that new files are started mid-batch),
// and stops at an invalid key.
func TestAddBatchMatchesAdd(t *testing.T) {
	one := mustOpen(t, t.TempDir(), 7, 16)
	defer one.Close()
	many := mustOpen(t, t.TempDir(), 7, 16)
	defer many.Close()
	var es []Entry
	for i := 0; i < 100; i++ {
		e := Entry{Key: fmt.Sprintf("T#k%d", i%13), CommitLogOffset: int64(i * 100), StoreTimestamp: 1000 + int64(i)}
		if err := one.Add(e.Key, e.CommitLogOffset, e.StoreTimestamp); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	if n, err := many.AddBatch(es); n != len(es) || err != nil {
		t.Fatalf("AddBatch: %d, %v", n, err)
	}
	for k := 0; k < 13; k++ {
		key := fmt.Sprintf("T#k%d", k)
		a, err1 := one.Lookup(key, 0, 1<<62, 64)
		b, err2 := many.Lookup(key, 0, 1<<62, 64)
		if err1 != nil || err2 != nil || !slices.Equal(a, b) {
			t.Fatalf("%s: Add %v (%v), AddBatch %v (%v)", key, a, err1, b, err2)
		}
	}
	n, err := many.AddBatch([]Entry{{Key: "T#x", CommitLogOffset: 1 << 20}, {Key: "", CommitLogOffset: 2 << 20}})
	if n != 1 || !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("AddBatch with an empty key: %d, %v", n, err)
	}
}
