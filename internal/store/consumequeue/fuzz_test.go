package consumequeue

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzQueueLoad feeds arbitrary bytes as the files of a queue (the first
// fuzzEPF*EntrySize bytes as the first file, the rest as the second) and
// checks the load invariants:
//
//   - OpenQueue never panics and never fails on content;
//   - every entry it serves has Size > 0, CommitLogOffset >= 0 and
//     strictly increasing commit-log offsets, and lies in [MinOffset,
//     MaxOffset);
//   - the queue accepts the next entry and serves it after a reopen.
func FuzzQueueLoad(f *testing.F) {
	const fuzzEPF = 8
	good := make([]byte, 11*EntrySize)
	for i := range int64(11) {
		putEntry(good[i*EntrySize:], ent(i))
	}
	f.Add(good)
	f.Add(good[:3*EntrySize+5])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, "T", "0")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		first, rest := data, []byte(nil)
		if len(data) > fuzzEPF*EntrySize {
			first, rest = data[:fuzzEPF*EntrySize], data[fuzzEPF*EntrySize:]
		}
		if err := os.WriteFile(filepath.Join(dir, "00000000000000000000"), first, 0o644); err != nil {
			t.Fatal(err)
		}
		if rest != nil {
			if err := os.WriteFile(filepath.Join(dir, "00000000000000000160"), rest, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		opts := Options{EntriesPerFile: fuzzEPF}
		q, err := OpenQueue(root, "T", 0, opts)
		if err != nil {
			t.Fatalf("OpenQueue: %v", err)
		}
		check := func(q *Queue) {
			minOff, maxOff := q.MinOffset(), q.MaxOffset()
			if minOff > maxOff || minOff < 0 {
				t.Fatalf("min %d max %d", minOff, maxOff)
			}
			buf := make([]Entry, 3)
			prev := int64(-1)
			for off := minOff; off < maxOff; {
				n, err := q.Read(off, buf)
				if err != nil || n == 0 {
					t.Fatalf("Read(%d) = %d, %v (min %d max %d)", off, n, err, minOff, maxOff)
				}
				for _, e := range buf[:n] {
					if e.Size <= 0 || e.CommitLogOffset < 0 || e.CommitLogOffset <= prev {
						t.Fatalf("bad entry %+v at %d after %d", e, off, prev)
					}
					prev = e.CommitLogOffset
				}
				off += int64(n)
			}
		}
		check(q)
		next := Entry{CommitLogOffset: 1 << 50, Size: 1}
		if last, ok := q.Last(); ok {
			next.CommitLogOffset = last.CommitLogOffset + 1
		}
		maxOff := q.MaxOffset()
		if err := q.Put(maxOff, next); err != nil {
			t.Fatalf("Put after load: %v", err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q, err = OpenQueue(root, "T", 0, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		check(q)
		if q.MaxOffset() != maxOff+1 {
			t.Fatalf("max after reopen %d, want %d", q.MaxOffset(), maxOff+1)
		}
		if e, ok := q.Last(); !ok || e != next {
			t.Fatalf("Last after reopen = %+v, %v", e, ok)
		}
	})
}
