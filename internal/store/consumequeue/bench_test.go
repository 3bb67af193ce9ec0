package consumequeue

import (
	"testing"
)

func BenchmarkQueuePut(b *testing.B) {
	q, err := OpenQueue(b.TempDir(), "Bench", 0, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	// Preallocate the files so the timed loop measures the steady state.
	b.ReportAllocs()
	b.SetBytes(EntrySize)
	b.ResetTimer()
	for i := range int64(b.N) {
		if err := q.Put(i, Entry{CommitLogOffset: i * 256, Size: 256, TagsCode: i}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkQueueRead32(b *testing.B) {
	const n = 100000
	q, err := OpenQueue(b.TempDir(), "Bench", 0, Options{EntriesPerFile: 30000})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	for i := range int64(n) {
		if err := q.Put(i, Entry{CommitLogOffset: i * 256, Size: 256, TagsCode: i}); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]Entry, 32)
	b.ReportAllocs()
	b.SetBytes(32 * EntrySize)
	b.ResetTimer()
	off := int64(0)
	for range b.N {
		got, err := q.Read(off, buf)
		if err != nil || got == 0 {
			b.Fatal(got, err)
		}
		off += int64(got)
		if off >= n {
			off = 0
		}
	}
}

func BenchmarkSetGet(b *testing.B) {
	s, err := OpenSet(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for id := range int32(8) {
		if _, err := s.GetOrCreate("BenchTopic", id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := range b.N {
		if s.Get("BenchTopic", int32(i&7)) == nil {
			b.Fatal("nil")
		}
	}
}
