// Package wordscan finds bytes of a few kinds eight at a time: a string or
// byte slice is loaded as 64-bit words, and a mask marks the high bit of
// every byte of a word that is of the kind looked for. The codecs use it
// to pass over the plain runs of a header or of encoded properties, and
// step byte by byte only from the first byte that needs a look.
//
// Only the lowest marked byte of a mask is exact: a mask is zero exactly
// when the word holds no byte of the kind, and otherwise First is the
// index of the first such byte. Above it, a borrow out of a byte of the
// kind can mark a byte that is not, or unmark one that is; callers step
// on from First, never read the other marks.
package wordscan

import "math/bits"

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// Load returns s[i:i+8] as a little-endian word; i+8 <= len(s).
func Load[S ~string | ~[]byte](s S, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// Equal marks the bytes of w equal to c.
func Equal(w uint64, c byte) uint64 { return Below(w^(lsb*uint64(c)), 1) }

// Below marks the bytes of w below n, for n <= 0x80.
func Below(w uint64, n byte) uint64 { return (w - lsb*uint64(n)) &^ w & msb }

// High marks the bytes of w at or above 0x80 (bytes of multi-byte UTF-8
// sequences).
func High(w uint64) uint64 { return w & msb }

// First returns the index in its word of the first marked byte of m != 0.
func First(m uint64) int { return bits.TrailingZeros64(m) >> 3 }
