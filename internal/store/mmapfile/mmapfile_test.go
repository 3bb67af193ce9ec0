package mmapfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMapWriteSyncReopen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	b, resized, err := Map(p, 8192, true)
	if err != nil || !resized || len(b) != 8192 {
		t.Fatalf("map: %v %v %d", err, resized, len(b))
	}
	copy(b[4096:], "hello")
	if err := Msync(b); err != nil {
		t.Fatal(err)
	}
	if err := Unmap(b); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Map(p, 8192, true); !os.IsExist(err) {
		t.Fatalf("create of an existing file: %v", err)
	}
	b, resized, err = Map(p, 8192, false)
	if err != nil || resized || string(b[4096:4101]) != "hello" {
		t.Fatalf("reopen: %v %v %q", err, resized, b[4096:4101])
	}
	Unmap(b)
	b, resized, err = Map(p, 4096, false)
	if err != nil || !resized || len(b) != 4096 {
		t.Fatalf("shrink: %v %v", err, resized)
	}
	Unmap(b)
	if st, _ := os.Stat(p); st.Size() != 4096 {
		t.Fatalf("size %d", st.Size())
	}
}
