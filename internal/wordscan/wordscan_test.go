package wordscan

import (
	"math/rand/v2"
	"testing"
)

// checkMasks holds every mask of w to the byte-at-a-time definition: zero
// exactly when no byte is of the kind, else First is the first that is.
func checkMasks(t *testing.T, b [8]byte) {
	t.Helper()
	w := Load(string(b[:]), 0)
	if wb := Load(b[:], 0); wb != w {
		t.Fatalf("Load of %x: string %x, bytes %x", b, w, wb)
	}
	for _, k := range []struct {
		name string
		m    uint64
		is   func(byte) bool
	}{
		{"Equal '\"'", Equal(w, '"'), func(c byte) bool { return c == '"' }},
		{"Equal 0x02", Equal(w, 0x02), func(c byte) bool { return c == 0x02 }},
		{"Equal 0", Equal(w, 0), func(c byte) bool { return c == 0 }},
		{"Below 0x20", Below(w, 0x20), func(c byte) bool { return c < 0x20 }},
		{"Below 3", Below(w, 3), func(c byte) bool { return c < 3 }},
		{"Below 0x80", Below(w, 0x80), func(c byte) bool { return c < 0x80 }},
		{"High", High(w), func(c byte) bool { return c >= 0x80 }},
	} {
		first := -1
		for i, c := range b {
			if k.is(c) {
				first = i
				break
			}
		}
		if first >= 0 && First(k.m) != first {
			t.Fatalf("%s of %x: First %d, want %d", k.name, b, First(k.m), first)
		}
		if first < 0 && k.m != 0 {
			t.Fatalf("%s of %x: mask %x without a byte of the kind", k.name, b, k.m)
		}
	}
}

func TestMasks(t *testing.T) {
	// Every byte value at every position of a plain word, then random
	// words from an alphabet rich in the bytes looked for and their
	// neighbours (where borrows and false marks happen).
	for pos := range 8 {
		for c := range 256 {
			b := [8]byte{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'}
			b[pos] = byte(c)
			checkMasks(t, b)
		}
	}
	alphabet := []byte{0, 1, 2, 3, 0x1f, 0x20, 0x21, '"', '#', '\\', ']', 0x7f, 0x80, 0x81, 0xff, 'a'}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		var b [8]byte
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		checkMasks(t, b)
	}
}
