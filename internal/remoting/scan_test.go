package remoting

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// jsonEncodeString is encoding/json's encoding of s, without HTML escaping.
func jsonEncodeString(t testing.TB, s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// nextSpecial is the byte-at-a-time definition of the index functions, for
// every start position at once: next[i] is the index of the first special
// byte at or after i, len(s) if none.
func nextSpecial(s string, special func(byte) bool) []int {
	next := make([]int, len(s)+1)
	next[len(s)] = len(s)
	for i := len(s) - 1; i >= 0; i-- {
		if special(s[i]) {
			next[i] = i
		} else {
			next[i] = next[i+1]
		}
	}
	return next
}

// nextStart is the start position checkScanAgrees checks after i.
func nextStart(i, n int) int {
	if n <= 256 || i < 64 {
		return i + 1
	}
	return min(i+61, max(n, i+1))
}

func isDecodeSpecial(c byte) bool    { return c == '"' || c == '\\' || c >= 0x80 }
func isQuoteOrBackslash(c byte) bool { return c == '"' || c == '\\' }
func isEncodeSpecial(c byte) bool    { return c < 0x20 || isDecodeSpecial(c) }

// checkScanAgrees checks that the word-at-a-time index functions find
// what a byte loop finds: from every start position of a short s, and from
// the first 64 and then every 61st of a long one (every start of a long
// run without special bytes costs time quadratic in its length).
func checkScanAgrees(t *testing.T, s string) {
	t.Helper()
	for _, f := range []struct {
		name    string
		got     func(string, int) int
		special func(byte) bool
	}{
		{"indexDecodeSpecial", indexDecodeSpecial, isDecodeSpecial},
		{"indexQuoteOrBackslash", indexQuoteOrBackslash, isQuoteOrBackslash},
		{"indexEncodeSpecial", indexEncodeSpecial, isEncodeSpecial},
	} {
		next := nextSpecial(s, f.special)
		for i := 0; i <= len(s); i = nextStart(i, len(s)) {
			if got := f.got(s, i); got != next[i] {
				t.Fatalf("%s(%q, %d) = %d, want %d", f.name, s, i, got, next[i])
			}
		}
	}
}

// checkJSONStringAgrees holds our JSON strings to encoding/json's: the
// encoding of s is byte for byte encoding/json's, our decoder reads it
// back as encoding/json does, and s written raw between quotes (which
// may make any header at all) decodes as encoding/json reads it whenever
// encoding/json accepts it.
func checkJSONStringAgrees(t *testing.T, s string) {
	t.Helper()
	checkScanAgrees(t, s)
	want := jsonEncodeString(t, s)
	got := appendJSONString(nil, s)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendJSONString(%q) = %s, encoding/json writes %s", s, got, want)
	}
	var back string
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatalf("encoding/json rejects its own %s: %v", want, err)
	}
	for _, h := range []string{`{"remark":` + string(got) + `}`, `{"remark":` + string(got) + `,"code":1}`} {
		cmd, err := DecodeHeader(SerializeJSON, []byte(h))
		if err != nil {
			t.Fatalf("decode %s: %v", h, err)
		}
		if cmd.Remark != back {
			t.Fatalf("decode %s: remark %q, encoding/json reads %q", h, cmd.Remark, back)
		}
	}

	// encoding/json matches struct fields case-insensitively; the header's
	// keys are exact, so its view is taken through a map.
	for _, h := range []string{`{"remark":"` + s + `"}`, `{"extFields":{"k":"` + s + `"},"code":1}`} {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(h), &m) != nil {
			continue // we are more lenient; only agreement on what it accepts is required
		}
		var (
			remark, language string
			code             int32
			ext              map[string]string
		)
		typed := true
		for k, dst := range map[string]any{"remark": &remark, "language": &language, "code": &code, "extFields": &ext} {
			if v, ok := m[k]; ok && json.Unmarshal(v, dst) != nil {
				typed = false // a value we refuse (or read differently, like "17" for code)
			}
		}
		if !typed {
			continue
		}
		cmd, err := DecodeHeader(SerializeJSON, []byte(h))
		if err != nil {
			if strings.Contains(err.Error(), "nested too deeply") {
				continue // our depth bound is smaller than encoding/json's
			}
			t.Fatalf("decode %q: %v (encoding/json reads %v)", h, err, m)
		}
		if cmd.Remark != remark || cmd.Language != language || cmd.Code != code {
			t.Fatalf("decode %q: %+v, encoding/json reads remark %q language %q code %d", h, cmd, remark, language, code)
		}
		for k, v := range ext {
			if got, ok := cmd.Ext(k); !ok || got != v {
				t.Fatalf("decode %q: ext %q = %q, encoding/json reads %q", h, k, got, v)
			}
		}
	}
}

func TestJSONStringAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "a", "plain ascii of more than eight bytes", "1234567", "12345678", "123456789",
		`"`, `\`, `quote " in the middle`, `long run then \ backslash`, "x\x00y", "\x1f\x20\x7f",
		"\b\f\n\r\t", "tab\tin a long string past the word", "\u2028\u2029", "主题🚀 topic",
		"ascii then é then more ascii past a word", "\xff", "a\xff\xfeb", "\xed\xa0\x80 surrogate",
		"UNIQ_KEY\x017F0000010F2C18B4AAC2512D6B4A0000\x02WAIT\x01true\x02",
		`\u0041`, `\"`, `","code":7,"x":"`, "\x80\x80\x80\x80\x80\x80\x80\x80\x80",
		strings.Repeat("abcdefg\"", 5), strings.Repeat("\\", 17),
	} {
		t.Run("", func(t *testing.T) { checkJSONStringAgrees(t, s) })
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"b\`, "\x00\x01\x1f", "主题🚀", "\u2028", "a\xffb",
		"UNIQ_KEY\x01ABC\x02WAIT\x01true\x02", `\u00e9`, `\ud83d\ude80`, `","code":3,"remark":"x`} {
		f.Add(s)
	}
	f.Fuzz(checkJSONStringAgrees)
}
