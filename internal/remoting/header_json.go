package remoting

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/txmq/txmq/internal/wordscan"
)

// The JSON header is the RemotingCommand object:
//
//	{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"T"}}
//
// The encoder writes exactly these keys in this order, as G2 does, with
// remark always present and extFields always an object whose values are JSON
// strings (G2 drops a frame with a non-string ext value). It is hand-written:
// no reflection, no allocation, appending into the caller's buffer. Its
// strings are byte for byte what encoding/json writes without HTML escaping.
//
// The decoder is a small hand-written parser that is lenient where peers
// differ: it skips unknown keys (Java's serializeTypeCurrentRPC), accepts null
// for any field, integer fields given as JSON strings or as integral floats,
// and ext values that are numbers, booleans (kept as their JSON text) or
// nested values (kept as raw JSON text); a null ext value is dropped, as Java
// omits nulls. Decoded strings are valid UTF-8: each byte that is not part
// of a valid sequence becomes U+FFFD, as with encoding/json. It makes one
// copy of the header; every string it returns without escapes is a
// substring of that copy. Both scan strings a word at a time (scan.go).

const hexDigits = "0123456789abcdef"

// maxJSONDepth bounds nesting inside skipped values.
const maxJSONDepth = 32

func appendJSONHeader(dst []byte, c *Command) []byte {
	dst = append(dst, `{"code":`...)
	dst = strconv.AppendInt(dst, int64(c.Code), 10)
	dst = append(dst, `,"language":`...)
	dst = appendJSONString(dst, c.Language)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(c.Version), 10)
	dst = append(dst, `,"opaque":`...)
	dst = strconv.AppendInt(dst, int64(c.Opaque), 10)
	dst = append(dst, `,"flag":`...)
	dst = strconv.AppendInt(dst, int64(c.Flag), 10)
	dst = append(dst, `,"remark":`...)
	dst = appendJSONString(dst, c.Remark)
	dst = append(dst, `,"extFields":{`...)
	for i, f := range c.ExtFields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, f.Key)
		dst = append(dst, ':')
		dst = appendJSONString(dst, f.Value)
	}
	return append(dst, "}}"...)
}

// appendJSONString appends s as a JSON string. It escapes '"', '\\', control
// characters, U+2028 and U+2029, and replaces invalid UTF-8 with U+FFFD, as
// encoding/json does (without its HTML escaping).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	// The first bytes one at a time: most strings are short.
	i, n := 0, min(8, len(s))
	for i < n && !encodeSpecial[s[i]] {
		i++
	}
	for i < len(s) {
		if !encodeSpecial[s[i]] {
			i = indexEncodeSpecial(s, i)
		}
		if i == len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// jsonDecoder parses one JSON header held in s.
type jsonDecoder struct {
	s string
	i int
}

func decodeJSONHeader(h []byte) (*Command, error) {
	d := jsonDecoder{s: string(h)}
	c := newDecoded()
	c.SerializeType = SerializeJSON
	d.ws()
	if !d.consume('{') {
		return nil, d.errorf("header is not a JSON object")
	}
	d.ws()
	if !d.consume('}') {
		for {
			d.ws()
			key, err := d.str()
			if err != nil {
				return nil, err
			}
			d.ws()
			if !d.consume(':') {
				return nil, d.errorf("missing ':' after key %q", key)
			}
			d.ws()
			switch key {
			case "code":
				c.Code, err = d.int32Value(key)
			case "language":
				c.Language, err = d.strOrNull()
			case "version":
				c.Version, err = d.int32Value(key)
			case "opaque":
				c.Opaque, err = d.int32Value(key)
			case "flag":
				c.Flag, err = d.int32Value(key)
			case "remark":
				c.Remark, err = d.strOrNull()
			case "extFields":
				err = d.extFields(c)
			default:
				err = d.skipValue(0)
			}
			if err != nil {
				return nil, err
			}
			d.ws()
			if d.consume(',') {
				continue
			}
			if d.consume('}') {
				break
			}
			return nil, d.errorf("expected ',' or '}' after the value of %q", key)
		}
	}
	d.ws()
	if d.i != len(d.s) {
		return nil, d.errorf("trailing data after the header object")
	}
	c.ExtFields = c.ExtFields.dedupe()
	return c, nil
}

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: JSON header at offset %d: %s", ErrMalformedFrame, d.i, fmt.Sprintf(format, args...))
}

func (d *jsonDecoder) ws() {
	// One comparison in the common case: the next byte is a token.
	for d.i < len(d.s) && d.s[d.i] <= ' ' {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) peek() byte {
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

func (d *jsonDecoder) consume(b byte) bool {
	if d.i < len(d.s) && d.s[d.i] == b {
		d.i++
		return true
	}
	return false
}

func (d *jsonDecoder) literal(lit string) bool {
	if strings.HasPrefix(d.s[d.i:], lit) {
		d.i += len(lit)
		return true
	}
	return false
}

// str parses a JSON string. Without escapes the result is a substring of s.
func (d *jsonDecoder) str() (string, error) {
	if !d.consume('"') {
		return "", d.errorf("expected a string")
	}
	start := d.i
	// A word at a time from the start: the header goes on after the
	// string, so a short string ends inside the first word.
	var i int
	if start+8 <= len(d.s) {
		w := wordscan.Load(d.s, start)
		if m := quoteOrBackslash(w) | wordscan.High(w); m != 0 {
			i = start + wordscan.First(m)
		} else {
			i = indexDecodeSpecial(d.s, start+8)
		}
	} else {
		i = indexDecodeSpecial(d.s, start)
	}
	ascii := true
	if i < len(d.s) && d.s[i] >= utf8.RuneSelf {
		// Not ASCII: only the closing quote or an escape end the scan now.
		ascii = false
		i = indexQuoteOrBackslash(d.s, i)
	}
	if i == len(d.s) {
		d.i = i
		return "", d.errorf("unterminated string")
	}
	if d.s[i] == '\\' {
		return d.strEscaped(start)
	}
	d.i = i + 1
	v := d.s[start:i]
	if !ascii && !utf8.ValidString(v) {
		v = validUTF8(v)
	}
	return v, nil
}

// strEscaped parses a string with escapes, starting after its opening quote.
func (d *jsonDecoder) strEscaped(start int) (string, error) {
	// The decoded string is never longer than its escaped form; size the
	// buffer for it once.
	end := indexQuoteOrBackslash(d.s, start)
	for end < len(d.s) && d.s[end] == '\\' {
		end = indexQuoteOrBackslash(d.s, end+2)
	}
	buf := make([]byte, 0, min(end, len(d.s))-start)
	i := start
	for i < len(d.s) {
		// Copy the run up to the next backslash or the closing quote.
		j := indexQuoteOrBackslash(d.s, i)
		buf = append(buf, d.s[i:j]...)
		i = j
		if i >= len(d.s) {
			break
		}
		if d.s[i] == '"' {
			d.i = i + 1
			if len(buf) == 0 {
				return "", nil
			}
			// buf is ours alone and never written again.
			v := unsafe.String(&buf[0], len(buf))
			if !utf8.ValidString(v) {
				v = validUTF8(v)
			}
			return v, nil
		}
		if i+1 >= len(d.s) {
			break
		}
		e := d.s[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			// \u00XX below 0x80 (the property separators \u0001 and
			// \u0002 of every send) is one byte.
			if i+4 <= len(d.s) && d.s[i] == '0' && d.s[i+1] == '0' {
				if h, l := unhex(d.s[i+2]), unhex(d.s[i+3]); h < 8 && l < 16 {
					buf = append(buf, h<<4|l)
					i += 4
					continue
				}
			}
			r, ok := hex4(d.s, i)
			if !ok {
				d.i = i
				return "", d.errorf("bad \\u escape")
			}
			i += 4
			if utf16IsHighSurrogate(r) {
				// A low surrogate must follow as another \u escape.
				if lo, ok := hex4(d.s, i+2); ok && i+1 < len(d.s) && d.s[i] == '\\' && d.s[i+1] == 'u' && utf16IsLowSurrogate(lo) {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				} else {
					r = utf8.RuneError
				}
			} else if utf16IsLowSurrogate(r) {
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		default:
			d.i = i - 1
			return "", d.errorf("bad escape '\\%c'", e)
		}
	}
	d.i = len(d.s)
	return "", d.errorf("unterminated string")
}

// validUTF8 returns s with each byte that is not part of a valid UTF-8
// sequence replaced by U+FFFD, as encoding/json decodes strings.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// unhex returns the value of a hex digit, or 16 for any other byte.
func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 16
}

func utf16IsHighSurrogate(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16IsLowSurrogate(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }

// hex4 parses 4 hex digits at s[i:].
func hex4(s string, i int) (rune, bool) {
	if i < 0 || i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (d *jsonDecoder) strOrNull() (string, error) {
	if d.literal("null") {
		return "", nil
	}
	return d.str()
}

// number scans a JSON number and returns its text and whether it has a
// fraction or exponent.
func (d *jsonDecoder) number() (string, bool, error) {
	start := d.i
	i := d.i
	if i < len(d.s) && d.s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(d.s) && d.s[i] >= '0' && d.s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if n := digits(); n == 0 || (n > 1 && d.s[i-n] == '0') {
		d.i = i
		return "", false, d.errorf("bad number")
	}
	float := false
	if i < len(d.s) && d.s[i] == '.' {
		i++
		float = true
		if digits() == 0 {
			d.i = i
			return "", false, d.errorf("bad number fraction")
		}
	}
	if i < len(d.s) && (d.s[i] == 'e' || d.s[i] == 'E') {
		i++
		float = true
		if i < len(d.s) && (d.s[i] == '+' || d.s[i] == '-') {
			i++
		}
		if digits() == 0 {
			d.i = i
			return "", false, d.errorf("bad number exponent")
		}
	}
	d.i = i
	return d.s[start:i], float, nil
}

// smallInt parses a JSON number that is an integer of at most 9 digits
// (code, version, opaque and flag nearly always are), and reports false,
// consuming nothing, for anything else.
func (d *jsonDecoder) smallInt() (int32, bool) {
	i := d.i
	neg := i < len(d.s) && d.s[i] == '-'
	if neg {
		i++
	}
	j := i
	var n int32
	for j < len(d.s) && j-i < 9 && d.s[j]-'0' <= 9 {
		n = n*10 + int32(d.s[j]-'0')
		j++
	}
	if j == i || d.s[i] == '0' && j-i > 1 {
		return 0, false // no digits, or a leading zero (an error for number)
	}
	if j < len(d.s) {
		if c := d.s[j]; c-'0' <= 9 || c == '.' || c == 'e' || c == 'E' {
			return 0, false // longer, or not an integer
		}
	}
	d.i = j
	if neg {
		n = -n
	}
	return n, true
}

// int32Value parses an integer field: a JSON number (integral), a string
// holding a decimal integer, or null (0).
func (d *jsonDecoder) int32Value(key string) (int32, error) {
	var (
		text  string
		float bool
		err   error
	)
	switch d.peek() {
	case 'n':
		if d.literal("null") {
			return 0, nil
		}
		return 0, d.errorf("bad value for %q", key)
	case '"':
		text, err = d.str()
	default:
		if n, ok := d.smallInt(); ok {
			return n, nil
		}
		text, float, err = d.number()
	}
	if err != nil {
		return 0, err
	}
	if !float {
		n, perr := strconv.ParseInt(text, 10, 32)
		if perr == nil {
			return int32(n), nil
		}
	}
	f, perr := strconv.ParseFloat(text, 64)
	if perr != nil || f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
		return 0, d.errorf("%q=%s is not an int32", key, text)
	}
	return int32(f), nil
}

// extFields parses the extFields object into c.ExtFields.
func (d *jsonDecoder) extFields(c *Command) error {
	if d.literal("null") {
		return nil
	}
	if !d.consume('{') {
		return d.errorf("extFields is not an object")
	}
	d.ws()
	if d.consume('}') {
		return nil
	}
	for {
		d.ws()
		key, err := d.str()
		if err != nil {
			return err
		}
		d.ws()
		if !d.consume(':') {
			return d.errorf("missing ':' after ext key %q", key)
		}
		d.ws()
		var (
			val  string
			null bool
		)
		switch d.peek() {
		case '"':
			val, err = d.str()
		case 'n':
			if null = d.literal("null"); !null {
				err = d.errorf("bad value for ext key %q", key)
			}
		case 't':
			if val = "true"; !d.literal(val) {
				err = d.errorf("bad value for ext key %q", key)
			}
		case 'f':
			if val = "false"; !d.literal(val) {
				err = d.errorf("bad value for ext key %q", key)
			}
		case '{', '[':
			start := d.i
			err = d.skipValue(1)
			val = validUTF8(d.s[start:d.i])
		default:
			val, _, err = d.number()
		}
		if err != nil {
			return err
		}
		if !null {
			c.addDecoded(key, val)
		}
		d.ws()
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			return nil
		}
		return d.errorf("expected ',' or '}' after ext key %q", key)
	}
}

// skipValue skips any JSON value; depth bounds the nesting.
func (d *jsonDecoder) skipValue(depth int) error {
	if depth > maxJSONDepth {
		return d.errorf("nested too deeply")
	}
	switch d.peek() {
	case '"':
		_, err := d.str()
		return err
	case '{', '[':
		closer := byte('}')
		isObj := d.s[d.i] == '{'
		if !isObj {
			closer = ']'
		}
		d.i++
		d.ws()
		if d.consume(closer) {
			return nil
		}
		for {
			d.ws()
			if isObj {
				if _, err := d.str(); err != nil {
					return err
				}
				d.ws()
				if !d.consume(':') {
					return d.errorf("missing ':' in object")
				}
				d.ws()
			}
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			d.ws()
			if d.consume(',') {
				continue
			}
			if d.consume(closer) {
				return nil
			}
			return d.errorf("expected ',' or '%c'", closer)
		}
	case 't':
		if d.literal("true") {
			return nil
		}
	case 'f':
		if d.literal("false") {
			return nil
		}
	case 'n':
		if d.literal("null") {
			return nil
		}
	default:
		_, _, err := d.number()
		return err
	}
	return d.errorf("bad literal")
}
