package consumequeue

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

// tLogWriter routes log output to t.Log so it shows only on failure.
type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func testOpts(t testing.TB, epf int) Options {
	return Options{EntriesPerFile: epf, Logger: slog.New(slog.NewTextHandler(tLogWriter{t}, nil))}
}

// ent returns the test entry for logical offset i.
func ent(i int64) Entry {
	return Entry{CommitLogOffset: i * 100, Size: int32(50 + i%7), TagsCode: i ^ 0x5a5a}
}

func mustOpen(t testing.TB, root string, epf int) *Queue {
	t.Helper()
	q, err := OpenQueue(root, "TopicA", 3, testOpts(t, epf))
	if err != nil {
		t.Fatalf("OpenQueue: %v", err)
	}
	return q
}

func mustPut(t testing.TB, q *Queue, from, to int64) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := q.Put(i, ent(i)); err != nil {
			t.Fatalf("Put(%d): %v", i, err)
		}
	}
}

// checkRange reads [from, to) in chunks of chunk and compares with ent.
func checkRange(t testing.TB, q *Queue, from, to int64, chunk int) {
	t.Helper()
	if got := q.MinOffset(); got != from {
		t.Fatalf("MinOffset = %d, want %d", got, from)
	}
	if got := q.MaxOffset(); got != to {
		t.Fatalf("MaxOffset = %d, want %d", got, to)
	}
	buf := make([]Entry, chunk)
	for off := from; off < to; {
		n, err := q.Read(off, buf)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if want := min(int64(chunk), to-off); int64(n) != want {
			t.Fatalf("Read(%d) = %d entries, want %d", off, n, want)
		}
		for i := range n {
			if buf[i] != ent(off+int64(i)) {
				t.Fatalf("entry %d = %+v, want %+v", off+int64(i), buf[i], ent(off+int64(i)))
			}
		}
		off += int64(n)
	}
	if n, err := q.Read(to, buf); n != 0 || err != nil {
		t.Fatalf("Read(max) = %d, %v; want 0, nil", n, err)
	}
	if to > from {
		if e, ok := q.Last(); !ok || e != ent(to-1) {
			t.Fatalf("Last = %+v, %v; want %+v", e, ok, ent(to-1))
		}
	} else if _, ok := q.Last(); ok {
		t.Fatalf("Last on empty queue returned ok")
	}
}

func fileNames(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestQueuePutReadAcrossFiles(t *testing.T) {
	for _, tc := range []struct {
		epf   int
		n     int64
		chunk int
	}{
		{1, 5, 1}, {1, 5, 3}, {3, 10, 2}, {4, 8, 32}, {4, 9, 5}, {7, 50, 32}, {1000, 2500, 32},
	} {
		t.Run(fmt.Sprintf("epf%d_n%d_chunk%d", tc.epf, tc.n, tc.chunk), func(t *testing.T) {
			root := t.TempDir()
			q := mustOpen(t, root, tc.epf)
			defer q.Close()
			checkRange(t, q, 0, 0, tc.chunk)
			mustPut(t, q, 0, tc.n)
			checkRange(t, q, 0, tc.n, tc.chunk)
			wantFiles := int((tc.n + int64(tc.epf) - 1) / int64(tc.epf))
			names := fileNames(t, filepath.Join(root, "TopicA", "3"))
			if len(names) != wantFiles {
				t.Fatalf("files = %v, want %d", names, wantFiles)
			}
			if want := fmt.Sprintf("%020d", int64(tc.epf)*EntrySize*int64(wantFiles-1)); names[len(names)-1] != want {
				t.Fatalf("last file %s, want %s", names[len(names)-1], want)
			}
		})
	}
}

func TestQueueReopen(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close bool // Close before reopening; otherwise "crash": Sync and open a second instance
	}{
		{"after-close", true},
		{"after-crash", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			q := mustOpen(t, root, 4)
			mustPut(t, q, 0, 10)
			if tc.close {
				if err := q.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := q.Sync(); err != nil {
					t.Fatal(err)
				}
				defer q.Close()
			}
			q2 := mustOpen(t, root, 4)
			defer q2.Close()
			checkRange(t, q2, 0, 10, 3)
			mustPut(t, q2, 10, 13) // keeps going in the half-full last file
			checkRange(t, q2, 0, 13, 32)
			if err := q2.Put(4, ent(4)); err != nil {
				t.Fatalf("idempotent re-put after reopen: %v", err)
			}
		})
	}
}

func TestQueuePutErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		off  int64
		e    Entry
		want error
	}{
		{"idempotent-first", 0, ent(0), nil},
		{"idempotent-last", 5, ent(5), nil},
		{"idempotent-other-file", 2, ent(2), nil},
		{"conflict-size", 3, Entry{CommitLogOffset: 300, Size: 1, TagsCode: ent(3).TagsCode}, ErrConflict},
		{"conflict-tags", 3, Entry{CommitLogOffset: 300, Size: ent(3).Size, TagsCode: 7}, ErrConflict},
		{"gap", 7, ent(7), ErrOffsetGap},
		{"zero-size", 6, Entry{CommitLogOffset: 600}, ErrInvalidEntry},
		{"negative-size", 6, Entry{CommitLogOffset: 600, Size: -1}, ErrInvalidEntry},
		{"negative-offset", -1, ent(6), ErrInvalidEntry},
		{"negative-clo", 6, Entry{CommitLogOffset: -5, Size: 1}, ErrInvalidEntry},
		{"not-increasing", 6, ent(5), ErrInvalidEntry},
		{"next", 6, ent(6), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := mustOpen(t, t.TempDir(), 4)
			defer q.Close()
			mustPut(t, q, 0, 6)
			err := q.Put(tc.off, tc.e)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Put(%d, %+v) = %v, want %v", tc.off, tc.e, err, tc.want)
			}
			want := int64(6)
			if tc.name == "next" {
				want = 7
			}
			checkRange(t, q, 0, want, 32)
		})
	}
}

func TestQueueRestartWhenEmpty(t *testing.T) {
	root := t.TempDir()
	q := mustOpen(t, root, 4)
	// A fresh queue starts wherever the first Put says.
	mustPut(t, q, 101, 106)
	checkRange(t, q, 101, 106, 32)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = mustOpen(t, root, 4)
	checkRange(t, q, 101, 106, 32)
	// Retention removes everything: the queue holds nothing and can restart.
	if _, err := q.DeleteBefore(1 << 40); err != nil {
		t.Fatal(err)
	}
	if q.MinOffset() != 106 || q.MaxOffset() != 106 {
		t.Fatalf("min,max = %d,%d; want 106,106", q.MinOffset(), q.MaxOffset())
	}
	if err := q.Put(300, ent(300)); err != nil {
		t.Fatalf("restart Put: %v", err)
	}
	mustPut(t, q, 301, 303)
	checkRange(t, q, 300, 303, 2)
	if got := fileNames(t, filepath.Join(root, "TopicA", "3")); !slices.Equal(got, []string{fmt.Sprintf("%020d", 300*EntrySize)}) {
		t.Fatalf("files after restart = %v", got)
	}
	if err := q.Put(305, ent(305)); !errors.Is(err, ErrOffsetGap) {
		t.Fatalf("gap after restart: %v", err)
	}
	q.Close()
	q = mustOpen(t, root, 4)
	defer q.Close()
	checkRange(t, q, 300, 303, 32)
}

func TestQueueTruncateFrom(t *testing.T) {
	for _, tc := range []struct {
		name    string
		clo     int64
		wantMax int64
	}{
		{"mid-file", 550, 6},
		{"exact-entry", 500, 5},
		{"file-boundary", 800, 8},
		{"just-after-boundary", 801, 9},
		{"everything", 0, 0},
		{"nothing", 1000, 10},
		{"beyond", 1 << 40, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, reopen := range []bool{false, true} {
				root := t.TempDir()
				q := mustOpen(t, root, 4)
				mustPut(t, q, 0, 10)
				if err := q.TruncateFrom(tc.clo); err != nil {
					t.Fatal(err)
				}
				checkRange(t, q, 0, tc.wantMax, 3)
				if reopen {
					if err := q.Sync(); err != nil {
						t.Fatal(err)
					}
					q2 := mustOpen(t, root, 4) // crash
					q.Close()
					q = q2
					checkRange(t, q, 0, tc.wantMax, 3)
				}
				// Re-dispatch continues where the queue now ends.
				mustPut(t, q, tc.wantMax, 12)
				checkRange(t, q, 0, 12, 5)
				q.Close()
			}
		})
	}
}

func TestQueueDeleteBefore(t *testing.T) {
	for _, tc := range []struct {
		name        string
		minClo      int64
		wantRemoved int
		wantMin     int64
	}{
		{"none", 0, 0, 0},
		{"within-first-file", 150, 0, 2},
		{"first-file", 400, 1, 4},
		{"two-files-and-some", 950, 2, 10},
		{"all-but-last", 1200, 3, 12},
		{"everything", 1 << 40, 3, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			q := mustOpen(t, root, 4)
			defer q.Close()
			mustPut(t, q, 0, 14)
			n, err := q.DeleteBefore(tc.minClo)
			if err != nil || n != tc.wantRemoved {
				t.Fatalf("DeleteBefore = %d, %v; want %d", n, err, tc.wantRemoved)
			}
			checkRange(t, q, tc.wantMin, 14, 3)
			if len(fileNames(t, filepath.Join(root, "TopicA", "3"))) != 4-tc.wantRemoved {
				t.Fatalf("files left: %v", fileNames(t, filepath.Join(root, "TopicA", "3")))
			}
			if tc.wantMin > 0 {
				var buf [4]Entry
				if _, err := q.Read(tc.wantMin-1, buf[:]); !errors.Is(err, ErrOffsetTooSmall) {
					t.Fatalf("Read below min: %v", err)
				}
				if err := q.Put(tc.wantMin-1, ent(tc.wantMin-1)); err != nil {
					t.Fatalf("re-put below min: %v", err)
				}
			}
			// Idempotent, and MinOffset never goes down.
			if n, err := q.DeleteBefore(0); n != 0 || err != nil || q.MinOffset() != tc.wantMin {
				t.Fatalf("DeleteBefore(0) = %d, %v, min %d", n, err, q.MinOffset())
			}
			// After a reopen MinOffset is the first file's first entry until
			// DeleteBefore corrects it.
			q.Sync()
			q2 := mustOpen(t, root, 4)
			defer q2.Close()
			if _, err := q2.DeleteBefore(tc.minClo); err != nil {
				t.Fatal(err)
			}
			checkRange(t, q2, tc.wantMin, 14, 32)
			mustPut(t, q2, 14, 17)
			checkRange(t, q2, tc.wantMin, 17, 32)
		})
	}
}

func TestQueueSearchByTime(t *testing.T) {
	root := t.TempDir()
	q := mustOpen(t, root, 4)
	defer q.Close()
	// Store time = 1000 + 10*index, with two entries per timestamp after 10.
	storeTime := func(e Entry) (int64, error) {
		i := e.CommitLogOffset / 100
		if i >= 10 {
			i = 10 + (i-10)/2*2
		}
		return 1000 + 10*i, nil
	}
	mustPut(t, q, 0, 20)
	for _, tc := range []struct {
		ts   int64
		want int64
	}{
		{0, 0}, {1000, 0}, {1001, 1}, {1010, 1}, {1055, 6}, {1090, 9}, {1100, 10}, {1101, 12},
		{1120, 12}, {1180, 18}, {1181, 20}, {99999, 20},
	} {
		got, err := q.SearchByTime(tc.ts, storeTime)
		if err != nil || got != tc.want {
			t.Errorf("SearchByTime(%d) = %d, %v; want %d", tc.ts, got, err, tc.want)
		}
	}
	if _, err := q.DeleteBefore(500); err != nil {
		t.Fatal(err)
	}
	if got, _ := q.SearchByTime(0, storeTime); got != 5 {
		t.Errorf("SearchByTime before min = %d, want 5", got)
	}
	boom := errors.New("boom")
	if _, err := q.SearchByTime(1050, func(Entry) (int64, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Errorf("callback error not returned: %v", err)
	}
	empty := mustOpen(t, t.TempDir(), 4)
	defer empty.Close()
	if got, err := empty.SearchByTime(5, storeTime); got != 0 || err != nil {
		t.Errorf("empty SearchByTime = %d, %v", got, err)
	}
}

func TestQueueClosed(t *testing.T) {
	q := mustOpen(t, t.TempDir(), 4)
	mustPut(t, q, 0, 3)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var buf [1]Entry
	if _, err := q.Read(0, buf[:]); !errors.Is(err, ErrClosed) {
		t.Errorf("Read: %v", err)
	}
	if err := q.Put(3, ent(3)); !errors.Is(err, ErrClosed) {
		t.Errorf("Put: %v", err)
	}
	if err := q.Sync(); !errors.Is(err, ErrClosed) {
		t.Errorf("Sync: %v", err)
	}
	if err := q.TruncateFrom(0); !errors.Is(err, ErrClosed) {
		t.Errorf("TruncateFrom: %v", err)
	}
	if _, err := q.DeleteBefore(0); !errors.Is(err, ErrClosed) {
		t.Errorf("DeleteBefore: %v", err)
	}
	if _, ok := q.Last(); ok {
		t.Errorf("Last ok after Close")
	}
}

func TestQueueDestroy(t *testing.T) {
	root := t.TempDir()
	q := mustOpen(t, root, 4)
	mustPut(t, q, 0, 9)
	if err := q.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "TopicA")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("topic dir still there: %v", err)
	}
	q = mustOpen(t, root, 4)
	defer q.Close()
	checkRange(t, q, 0, 0, 4)
}

func TestQueueInvalidTopic(t *testing.T) {
	for _, topic := range []string{"", ".", "..", "a/b", "a\\b", "a\x00"} {
		if _, err := OpenQueue(t.TempDir(), topic, 0, Options{}); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("OpenQueue(%q) = %v", topic, err)
		}
	}
}

// TestQueueLoadCorrupt damages files of a 10-entry queue (epf 4: files 0, 80,
// 160 bytes offset) and checks what OpenQueue keeps.
func TestQueueLoadCorrupt(t *testing.T) {
	name := func(base int64) string { return fmt.Sprintf("%020d", base*EntrySize) }
	for _, tc := range []struct {
		name     string
		damage   func(t *testing.T, dir string)
		min, max int64
	}{
		{"intact", func(*testing.T, string) {}, 0, 10},
		{"zero-size-entry", func(t *testing.T, dir string) {
			writeAt(t, filepath.Join(dir, name(4)), 1*EntrySize+8, []byte{0, 0, 0, 0})
		}, 0, 5},
		{"negative-size", func(t *testing.T, dir string) {
			writeAt(t, filepath.Join(dir, name(4)), 2*EntrySize+8, []byte{0xff, 0, 0, 0})
		}, 0, 6},
		{"not-increasing", func(t *testing.T, dir string) {
			writeAt(t, filepath.Join(dir, name(8)), 0, []byte{0, 0, 0, 0, 0, 0, 0, 0})
		}, 0, 8},
		{"garbage-after-end", func(t *testing.T, dir string) {
			b := make([]byte, EntrySize)
			putEntry(b, ent(12))
			writeAt(t, filepath.Join(dir, name(8)), 3*EntrySize, b)
		}, 0, 10},
		{"last-file-short", func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, name(8)), EntrySize+7); err != nil {
				t.Fatal(err)
			}
		}, 0, 9},
		{"first-file-long", func(t *testing.T, dir string) {
			f, _ := os.OpenFile(filepath.Join(dir, name(0)), os.O_WRONLY|os.O_APPEND, 0)
			f.Write(make([]byte, 33))
			f.Close()
		}, 0, 10},
		{"missing-middle-file", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, name(4)))
		}, 0, 4},
		{"missing-first-file", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, name(0)))
		}, 4, 10},
		{"empty-first-file", func(t *testing.T, dir string) {
			os.Truncate(filepath.Join(dir, name(0)), 0)
		}, 0, 0},
		{"stray-files", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "junk"), []byte("x"), 0o644)
			os.WriteFile(filepath.Join(dir, "00000000000000000007"), []byte("x"), 0o644)
			os.Mkdir(filepath.Join(dir, name(100)), 0o755)
		}, 0, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			q := mustOpen(t, root, 4)
			mustPut(t, q, 0, 10)
			q.Close()
			tc.damage(t, filepath.Join(root, "TopicA", "3"))
			q = mustOpen(t, root, 4)
			checkRange(t, q, tc.min, tc.max, 3)
			mustPut(t, q, tc.max, tc.max+6)
			checkRange(t, q, tc.min, tc.max+6, 3)
			q.Close()
			q = mustOpen(t, root, 4)
			defer q.Close()
			checkRange(t, q, tc.min, tc.max+6, 3)
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

func TestSet(t *testing.T) {
	root := t.TempDir()
	opts := testOpts(t, 4)
	s, err := OpenSet(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s.Get("T1", 0) != nil {
		t.Fatal("Get on empty set returned a queue")
	}
	for _, topic := range []string{"T1", "T2", "%RETRY%g1"} {
		for id := int32(0); id < 3; id++ {
			q, err := s.GetOrCreate(topic, id)
			if err != nil {
				t.Fatal(err)
			}
			if q2, _ := s.GetOrCreate(topic, id); q2 != q || s.Get(topic, id) != q {
				t.Fatal("GetOrCreate/Get returned another queue")
			}
			mustPut(t, q, 0, int64(id)+5)
		}
	}
	if _, err := s.GetOrCreate("a/b", 0); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("GetOrCreate invalid topic: %v", err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTopic("T2"); err != nil {
		t.Fatal(err)
	}
	if s.Get("T2", 1) != nil {
		t.Fatal("deleted topic still present")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "stray"), nil, 0o644)
	os.MkdirAll(filepath.Join(root, "T1", "notanumber"), 0o755)
	s, err = OpenSet(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	s.Range(func(q *Queue) bool {
		got = append(got, fmt.Sprintf("%s/%d:%d", q.Topic(), q.QueueID(), q.MaxOffset()))
		return true
	})
	slices.Sort(got)
	want := []string{"%RETRY%g1/0:5", "%RETRY%g1/1:6", "%RETRY%g1/2:7", "T1/0:5", "T1/1:6", "T1/2:7"}
	if !slices.Equal(got, want) {
		t.Fatalf("queues after reopen = %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(root, "T2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("T2 dir still there")
	}
	calls := 0
	s.Range(func(*Queue) bool { calls++; return false })
	if calls != 1 {
		t.Fatalf("Range did not stop")
	}
}

// TestSetConcurrency runs one writer per queue, several readers that check
// every entry they see, plus Sync and retention, under -race.
func TestSetConcurrency(t *testing.T) {
	s, err := OpenSet(t.TempDir(), testOpts(t, 64))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const queues, perQueue, readers = 2, 3000, 4
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() { // the single writer
		defer wg.Done()
		defer close(done)
		for i := int64(0); i < perQueue; i++ {
			for id := int32(0); id < queues; id++ {
				q, err := s.GetOrCreate("T", id)
				if err != nil {
					t.Error(err)
					return
				}
				if err := q.Put(i, ent(i)); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	errc := make(chan error, readers+1)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]Entry, 32)
			next := int64(0)
			for {
				q := s.Get("T", int32(r%queues))
				if q == nil {
					continue
				}
				n, err := q.Read(next, buf)
				if errors.Is(err, ErrOffsetTooSmall) {
					next = q.MinOffset()
					continue
				}
				if err != nil {
					errc <- err
					return
				}
				for i := range n {
					if buf[i] != ent(next+int64(i)) {
						errc <- fmt.Errorf("reader %d: entry %d = %+v", r, next+int64(i), buf[i])
						return
					}
				}
				next += int64(n)
				if next == perQueue {
					return
				}
				if n == 0 {
					select {
					case <-done:
						if q.MaxOffset() == next {
							errc <- fmt.Errorf("reader %d stuck at %d", r, next)
							return
						}
					default:
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // flusher and retention
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := s.Sync(); err != nil {
				errc <- err
				return
			}
			s.Range(func(q *Queue) bool {
				if _, err := q.DeleteBefore(q.MaxOffset() * 100 / 2); err != nil {
					errc <- err
				}
				return true
			})
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

func TestSetDeleteTopicWhileReading(t *testing.T) {
	s, err := OpenSet(t.TempDir(), testOpts(t, 8))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q, _ := s.GetOrCreate("T", 0)
	mustPut(t, q, 0, 100)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]Entry, 8)
		for {
			if _, err := q.Read(0, buf); errors.Is(err, ErrClosed) {
				return
			} else if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	if err := s.DeleteTopic("T"); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// TestQueueLoadManyFiles checks the end-only validation of middle files.
func TestQueueLoadManyFiles(t *testing.T) {
	const epf = 2
	name := func(base int64) string { return fmt.Sprintf("%020d", base*EntrySize) }
	for _, tc := range []struct {
		name   string
		file   int64 // base of the damaged file
		entry  int64 // entry within it whose size is zeroed
		wantMx int64
	}{
		{"middle-file-first-entry", 4, 0, 4},
		{"middle-file-last-entry", 6, 1, 7},
		{"recent-file", 16, 0, 16},
		{"first-file", 0, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			q := mustOpen(t, root, epf)
			mustPut(t, q, 0, 21) // 11 files
			q.Close()
			writeAt(t, filepath.Join(root, "TopicA", "3", name(tc.file)), tc.entry*EntrySize+8, []byte{0, 0, 0, 0})
			q = mustOpen(t, root, epf)
			defer q.Close()
			checkRange(t, q, 0, tc.wantMx, 3)
			if got := len(fileNames(t, filepath.Join(root, "TopicA", "3"))); int64(got) != (tc.wantMx+epf)/epf {
				t.Fatalf("files left %d", got)
			}
		})
	}
}
