package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteJSONAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.json")
	var v map[string]int
	if ok, err := ReadJSON(p, &v); ok || err != nil {
		t.Fatalf("missing file: %v %v", ok, err)
	}
	if err := WriteJSONAtomic(p, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSONAtomic(p, map[string]int{"a": 2}); err != nil {
		t.Fatal(err)
	}
	if ok, err := ReadJSON(p, &v); !ok || err != nil || v["a"] != 2 {
		t.Fatalf("read back %v %v %v", v, ok, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temp files left: %v", ents)
	}
	os.WriteFile(p, []byte("{bad"), 0o644)
	if _, err := ReadJSON(p, &v); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func TestLockDir(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	l2, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	l2.Unlock()
}
