package mmapfile

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// mappedKiB is the Rss of the mapping that starts at b[0], from
// /proc/self/smaps (-1 if not found).
func mappedKiB(t *testing.T, b []byte) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	start := fmt.Sprintf("%x-", uintptr(unsafe.Pointer(&b[0])))
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "-") && !strings.Contains(line, ":  ") && len(strings.Fields(line)) >= 5 {
			in = strings.HasPrefix(line, start)
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// TestResidentRelease: Release drops the pages of the range asked for
// (rounded inwards to pages), skips what it released before unless the
// mapping was touched since, and a Touch makes it release the range again.
// Pages are faulted in by writes: a read fault maps neighbours too.
func TestResidentRelease(t *testing.T) {
	pg := int(pageSize)
	b, _, err := Map(filepath.Join(t.TempDir(), "f"), 16*pg, true)
	if err != nil {
		t.Fatal(err)
	}
	defer Unmap(b)
	pages := func() int64 { return mappedKiB(t, b) * 1024 / pageSize }
	for i := 0; i < 16; i++ {
		b[i*pg] = 1
	}
	if got := pages(); got != 16 {
		t.Skipf("%d of 16 written pages resident: cannot measure", got)
	}
	var r Resident
	check := func(step string, lo, hi int64, want int64) {
		t.Helper()
		if err := r.Release(b, lo, hi); err != nil {
			t.Fatal(err)
		}
		if got := pages(); got != want {
			t.Fatalf("%s: %d pages resident, want %d", step, got, want)
		}
	}
	check("first half", 0, 8*pageSize+100, 8)
	b[2*pg] = 2 // not noted: the released part is skipped
	check("untouched", 0, 12*pageSize, 5)
	b[2*pg] = 3
	r.Touch()
	check("touched", 0, 12*pageSize, 4)
	check("tail", 13*pageSize-1, 16*pageSize, 1)
	if b[2*pg] != 3 || b[15*pg] != 1 {
		t.Fatalf("data lost: %d %d", b[2*pg], b[15*pg])
	}
}
