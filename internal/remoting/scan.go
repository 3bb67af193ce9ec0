package remoting

import "math/bits"

// Word-at-a-time scanning of JSON strings: the encoder and the decoder look
// for the few bytes a JSON string treats specially eight bytes at a time,
// and step byte by byte only from the first such byte. Header keys and
// values are mostly plain ASCII (topics, groups, message ids, offsets), so
// most of a header is passed over in words.
//
// Each mask below has the high bit of a byte set for every byte of the word
// that matches (no false negatives). A set bit may also appear in a byte
// above a matching one (a borrow runs upwards), never below it, so the
// lowest set bit always marks the first matching byte.

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// load8 returns s[i:i+8] as a little-endian word. i+8 <= len(s).
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// zeroBytes marks the zero bytes of w.
func zeroBytes(w uint64) uint64 { return (w - lsb8) &^ w & msb8 }

// quoteOrBackslash marks the bytes '"' and '\\' of w.
func quoteOrBackslash(w uint64) uint64 {
	return zeroBytes(w^(lsb8*'"')) | zeroBytes(w^(lsb8*'\\'))
}

// firstMarked returns the index in its word of the first marked byte.
func firstMarked(m uint64) int { return bits.TrailingZeros64(m) >> 3 }

// decodeSpecial and encodeSpecial mark the bytes indexDecodeSpecial and
// indexEncodeSpecial look for, for byte-at-a-time loops: a short string
// (most keys and values) is scanned faster with one table load per byte
// than with a word it does not fill.
var decodeSpecial, encodeSpecial = func() (d, e [256]bool) {
	for c := range 256 {
		d[c] = c == '"' || c == '\\' || c >= 0x80
		e[c] = d[c] || c < 0x20
	}
	return d, e
}()

// indexDecodeSpecial returns the index of the first byte of s at or after i
// that a decoder must look at in a string: '"', '\\', or a byte of a
// multi-byte UTF-8 sequence (>= 0x80); len(s) if there is none.
func indexDecodeSpecial(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := load8(s, i)
		if m := quoteOrBackslash(w) | w&msb8; m != 0 {
			return i + firstMarked(m)
		}
	}
	for ; i < len(s); i++ {
		if decodeSpecial[s[i]] {
			return i
		}
	}
	return len(s)
}

// indexQuoteOrBackslash returns the index of the first '"' or '\\' of s at
// or after i; len(s) if there is none.
func indexQuoteOrBackslash(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		if m := quoteOrBackslash(load8(s, i)); m != 0 {
			return i + firstMarked(m)
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			return i
		}
	}
	return len(s)
}

// indexEncodeSpecial returns the index of the first byte of s at or after i
// that the encoder cannot copy as it is: a control character (< 0x20), '"',
// '\\', or a byte >= 0x80 (checked as UTF-8 by the caller); len(s) if there
// is none.
func indexEncodeSpecial(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		w := load8(s, i)
		if m := (w-lsb8*0x20)&^w&msb8 | quoteOrBackslash(w) | w&msb8; m != 0 {
			return i + firstMarked(m)
		}
	}
	for ; i < len(s); i++ {
		if encodeSpecial[s[i]] {
			return i
		}
	}
	return len(s)
}
