package index

import (
	"strconv"
	"testing"
)

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "BenchTopic#KEY-" + strconv.Itoa(i)
	}
	return keys
}

func BenchmarkIndexAdd(b *testing.B) {
	x, err := Open(b.TempDir(), Options{SlotsPerFile: 500000, EntriesPerFile: 2000000})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	keys := benchKeys(1 << 16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := x.Add(keys[i&(1<<16-1)], int64(i)*256, t0+int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIndexLookup(b *testing.B) {
	const n = 200000
	x, err := Open(b.TempDir(), Options{SlotsPerFile: 50000, EntriesPerFile: 100000})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	keys := benchKeys(n / 2) // every key twice
	for i := range n {
		if err := x.Add(keys[i%len(keys)], int64(i)*256, t0+int64(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		got, err := x.Lookup(keys[i%len(keys)], 0, 1<<62, 32)
		if err != nil || len(got) != 2 {
			b.Fatal(got, err)
		}
	}
}

// BenchmarkIndexAddSlots adds distinct keys (as a broker indexing unique
// message keys does) to files of different hash-slot counts: the slot
// table is read and written at random, so its size decides how often an
// add misses the caches and the TLB. The 5,000,000 case is Apache
// RocketMQ's default maxHashSlotNum (a 20 MB table).
func BenchmarkIndexAddSlots(b *testing.B) {
	keys := benchKeys(1 << 20)
	for _, slots := range []int{5_000_000, 1_000_000, 500_000} {
		b.Run(strconv.Itoa(slots), func(b *testing.B) {
			x, err := Open(b.TempDir(), Options{SlotsPerFile: slots, EntriesPerFile: 20_000_000})
			if err != nil {
				b.Fatal(err)
			}
			defer x.Close()
			// Touch the whole slot table and the first entries once, so
			// that page faults are not what is measured.
			for i := range keys {
				if err := x.Add(keys[i], int64(i)*256, t0+int64(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := x.Add(keys[i&(1<<20-1)], int64(i)*256, t0+int64(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The indexer adds a run of records' keys at once (AddBatch).
		b.Run(strconv.Itoa(slots)+"-batch32", func(b *testing.B) {
			x, err := Open(b.TempDir(), Options{SlotsPerFile: slots, EntriesPerFile: 20_000_000})
			if err != nil {
				b.Fatal(err)
			}
			defer x.Close()
			es := make([]Entry, 32)
			off := int64(0)
			fill := func(i int) {
				for j := range es {
					es[j] = Entry{Key: keys[(i+j)&(1<<20-1)], CommitLogOffset: off, StoreTimestamp: t0 + off}
					off += 256
				}
			}
			for i := 0; i < len(keys); i += len(es) {
				fill(i)
				if _, err := x.AddBatch(es); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += len(es) {
				fill(i)
				if _, err := x.AddBatch(es); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
