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
