package index

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzIndexLoad feeds arbitrary bytes as an index file and checks that Open,
// Lookup, Add, TruncateFrom, DeleteBefore and a reopen never panic or loop,
// and that whatever is added after loading can be looked up.
func FuzzIndexLoad(f *testing.F) {
	// Seeds: a valid clean file and a valid crashed file, built with the
	// geometry the fuzz function uses.
	for _, clean := range []bool{true, false} {
		dir := f.TempDir()
		x, err := Open(dir, Options{SlotsPerFile: 4, EntriesPerFile: 16})
		if err != nil {
			f.Fatal(err)
		}
		addRecords(f, x, 0, 6)
		if clean {
			x.Close()
		} else {
			x.Sync()
		}
		b, err := os.ReadFile(filepath.Join(dir, "00000000000000000000"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		x.Close()
	}
	f.Add([]byte("TXIX"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "00000000000000000000"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		opts := Options{SlotsPerFile: 4, EntriesPerFile: 16}
		x, err := Open(root, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		for _, k := range []string{"T#k0", "T#k1", "T#u3", "x"} {
			if _, err := x.Lookup(k, -1<<62, 1<<62, 64); err != nil {
				t.Fatal(err)
			}
		}
		next := x.MaxCommitLogOffset() + 1
		if next <= 0 || next > 1<<60 {
			next = 1 << 60
			if err := x.TruncateFrom(next); err != nil {
				t.Fatal(err)
			}
			next = max(x.MaxCommitLogOffset()+1, next)
		}
		if err := x.Add("T#fresh", next, t0); err != nil {
			t.Fatal(err)
		}
		got, err := x.Lookup("T#fresh", t0, t0, 64)
		if err != nil || len(got) == 0 || got[0] != next {
			t.Fatalf("Lookup(fresh) = %v, %v; want %d first", got, err, next)
		}
		if err := x.TruncateFrom(next / 2); err != nil {
			t.Fatal(err)
		}
		if _, err := x.DeleteBefore(next); err != nil {
			t.Fatal(err)
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		x, err = Open(root, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		if _, err := x.Lookup("T#k1", -1<<62, 1<<62, 64); err != nil {
			t.Fatal(err)
		}
	})
}
