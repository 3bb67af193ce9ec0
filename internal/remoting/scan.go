package remoting

import "github.com/txmq/txmq/internal/wordscan"

// Word-at-a-time scanning of JSON strings (package wordscan): the encoder
// and the decoder look for the few bytes a JSON string treats specially
// eight bytes at a time, and step byte by byte only from the first such
// byte. Header keys and values are mostly plain ASCII (topics, groups,
// message ids, offsets), so most of a header is passed over in words.

// quoteOrBackslash marks the bytes '"' and '\\' of w.
func quoteOrBackslash(w uint64) uint64 { return wordscan.Equal(w, '"') | wordscan.Equal(w, '\\') }

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
		w := wordscan.Load(s, i)
		if m := quoteOrBackslash(w) | wordscan.High(w); m != 0 {
			return i + wordscan.First(m)
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
		if m := quoteOrBackslash(wordscan.Load(s, i)); m != 0 {
			return i + wordscan.First(m)
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
		w := wordscan.Load(s, i)
		if m := wordscan.Below(w, 0x20) | quoteOrBackslash(w) | wordscan.High(w); m != 0 {
			return i + wordscan.First(m)
		}
	}
	for ; i < len(s); i++ {
		if encodeSpecial[s[i]] {
			return i
		}
	}
	return len(s)
}
