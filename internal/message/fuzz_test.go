package message

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; a record it accepts re-encodes to the same
// bytes (with V1 magic) and parses again to the same fields.
func FuzzParse(f *testing.F) {
	f.Add(sampleExt().AppendTo(nil))
	m := sampleExt()
	m.Body = nil
	m.Properties = ""
	f.Add(m.AppendTo(nil))
	f.Add([]byte{0, 0, 0, 8, 0xDA, 0xA3, 0x20, 0xA7})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Parse(b)
		if err != nil {
			return
		}
		if v.Len() > len(b) {
			t.Fatalf("record of %d bytes from %d", v.Len(), len(b))
		}
		_ = v.VerifyCRC()
		_ = ValidateProperties(v.Properties())
		e := v.Ext()
		if len(e.Topic) > MaxTopicLen || e.Validate() != nil {
			return // V2 records may carry longer topics
		}
		re := e.AppendTo(nil)
		v2, err := Parse(re)
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
		if !bytes.Equal(v2.Body(), v.Body()) || !bytes.Equal(v2.Topic(), v.Topic()) ||
			!bytes.Equal(v2.Properties(), v.Properties()) || v2.QueueOffset() != v.QueueOffset() ||
			v2.CommitLogOffset() != v.CommitLogOffset() || v2.StoreTimestamp() != v.StoreTimestamp() {
			t.Fatal("re-encoded record differs")
		}
	})
}

// FuzzProperties: the properties helpers never panic, and whatever
// NormalizeProperties returns validates and parses to the same map.
func FuzzProperties(f *testing.F) {
	f.Add("a\x01b\x02c\x01d\x02")
	f.Add("\x01\x02\x01")
	f.Add("KEYS\x01k1 k2\x02TAGS\x01x")
	f.Add("UNIQ_KEY\x017F0000010F2C18B4AAC2512D6B4A0000\x02WAIT\x01true\x02PGROUP\x01a\x01b\x02\x00x\x01y\x02\x02TAGS\x01t")
	f.Fuzz(func(t *testing.T, s string) {
		m := ParseProperties(s)
		n := NormalizeProperties(s)
		if err := ValidateProperties([]byte(n)); err != nil {
			t.Fatalf("normalized %q invalid: %v", n, err)
		}
		for k, v := range ParseProperties(n) {
			if m[k] != v {
				t.Fatalf("normalize changed %q: %q vs %q", k, m[k], v)
			}
		}
		for k, v := range m {
			got, ok := Property(s, k)
			if !ok {
				t.Fatalf("Property misses %q", k)
			}
			_ = got
			_ = v
		}
		_ = RemoveProperties(s, "a")
		// The byte-slice walk sees exactly the pairs the string walk sees.
		var want, got []string
		RangeProperties(s, func(k, v string) bool { want = append(want, k+"\x00"+v); return true })
		RangePropertiesBytes([]byte(s), func(k, v []byte) bool { got = append(got, string(k)+"\x00"+string(v)); return true })
		if strings.Join(want, "|") != strings.Join(got, "|") {
			t.Fatalf("RangePropertiesBytes %q, RangeProperties %q", got, want)
		}
		// Both see what the definition gives: the entries between property
		// separators holding exactly one name/value separator.
		var def []string
		firstOf := map[string]string{}
		for _, item := range strings.Split(s, string(PropertySeparator)) {
			if strings.Count(item, string(NameValueSeparator)) == 1 {
				k, v, _ := strings.Cut(item, string(NameValueSeparator))
				def = append(def, k+"\x00"+v)
				if _, seen := firstOf[k]; !seen {
					firstOf[k] = v
				}
			}
		}
		if strings.Join(want, "|") != strings.Join(def, "|") {
			t.Fatalf("RangeProperties(%q) = %q, by definition %q", s, want, def)
		}
		for k, v := range firstOf {
			if got, ok := Property(s, k); !ok || got != v {
				t.Fatalf("Property(%q, %q) = %q, %v; want the first entry's %q", s, k, got, ok, v)
			}
			if got, ok := PropertyBytes([]byte(s), k); !ok || got != v {
				t.Fatalf("PropertyBytes(%q, %q) = %q, %v; want %q", s, k, got, ok, v)
			}
		}
	})
}

// FuzzDecodeBatch: never panics; every accepted item re-encodes to the
// bytes it came from.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatchItem(nil, BatchItem{Flag: 1, Body: []byte("x"), Properties: "a\x01b\x02"}))
	f.Add([]byte{0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := DecodeBatch(b, 64)
		if err != nil {
			return
		}
		var re []byte
		for _, it := range items {
			re = AppendBatchItem(re, it)
		}
		if len(re) != len(b) {
			t.Fatalf("re-encoded %d bytes from %d", len(re), len(b))
		}
	})
}

// FuzzParseOffsetMessageID: never panics; an accepted id round-trips.
func FuzzParseOffsetMessageID(f *testing.F) {
	f.Add("7F00000100002A9F0000000000000010")
	f.Add("20010DB800000000000000000000000500002A9F0000000000000010")
	f.Fuzz(func(t *testing.T, id string) {
		host, off, err := ParseOffsetMessageID(id)
		if err != nil {
			return
		}
		if _, off2, err := ParseOffsetMessageID(OffsetMessageID(host, off)); err != nil || off2 != off {
			t.Fatalf("round trip of %q: %d %v", id, off2, err)
		}
	})
}
