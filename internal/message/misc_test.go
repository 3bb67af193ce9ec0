package message

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestProperties(t *testing.T) {
	s := EncodeProperties(map[string]string{"b": "2", "a": "1", "UNIQ_KEY": "X"})
	if s != "UNIQ_KEY\x01X\x02a\x011\x02b\x012\x02" {
		t.Fatalf("encode: %q", s)
	}
	if v, ok := Property(s, "a"); !ok || v != "1" {
		t.Fatalf("Property a = %q %v", v, ok)
	}
	if _, ok := Property(s, "c"); ok {
		t.Fatal("found missing key")
	}
	if v, ok := PropertyBytes([]byte(s), "b"); !ok || v != "2" {
		t.Fatalf("PropertyBytes b = %q", v)
	}
	m := ParseProperties("a\x011\x02junk\x02x\x01y\x01z\x02b\x012")
	if len(m) != 2 || m["a"] != "1" || m["b"] != "2" {
		t.Fatalf("lenient parse: %v", m)
	}
	if got := RemoveProperties(s, "a", "UNIQ_KEY"); got != "b\x012\x02" {
		t.Fatalf("remove: %q", got)
	}
	if got := SetProperty(s, "a", "9"); !strings.Contains(got, "a\x019\x02") || strings.Contains(got, "a\x011") {
		t.Fatalf("set: %q", got)
	}
	allocs := testing.AllocsPerRun(100, func() { Property(s, "b") })
	if allocs != 0 {
		t.Fatalf("Property allocates %v", allocs)
	}
}

func TestValidateProperties(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"", true},
		{"a\x01b\x02", true},
		{"a\x01\x02", true},
		{"a\x01b", false},
		{"\x01b\x02", false},
		{"ab\x02", false},
		{"a\x01b\x01c\x02", false},
		{"a\x01b\x02\x00\x00", false},
	}
	for _, tt := range tests {
		err := ValidateProperties([]byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("ValidateProperties(%q) = %v", tt.in, err)
		}
		if n := NormalizeProperties(tt.in); ValidateProperties([]byte(n)) != nil {
			t.Errorf("NormalizeProperties(%q) = %q still invalid", tt.in, n)
		}
	}
	// The broker normalises every sent message's properties: valid ones
	// (the common case) come back as they are, without an allocation.
	valid := "UNIQ_KEY\x01AABBCCDDEEFF00112233\x02WAIT\x01true\x02"
	if n := testing.AllocsPerRun(100, func() { _ = NormalizeProperties(valid) }); n != 0 {
		t.Errorf("NormalizeProperties of valid properties: %v allocations", n)
	}
}

func TestTagsHashCode(t *testing.T) {
	// Values from protocol.md's heartbeat sample and Java's String.hashCode.
	tests := map[string]int64{"TagA": 2598919, "TagB": 2598920, "": 0, "*": 42, "é": 233, "😀": 55357*31 + 56832}
	for in, want := range tests {
		if got := TagsHashCode(in); got != want {
			t.Errorf("TagsHashCode(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestOffsetMessageID(t *testing.T) {
	for _, h := range []string{"127.0.0.1:10911", "[2001:db8::5]:65535"} {
		host := netip.MustParseAddrPort(h)
		id := OffsetMessageID(host, 0x0102030405060708)
		if strings.ToUpper(id) != id {
			t.Fatalf("not upper case: %s", id)
		}
		gotHost, off, err := ParseOffsetMessageID(id)
		if err != nil || gotHost != host || off != 0x0102030405060708 {
			t.Fatalf("%s -> %s -> %v %x %v", h, id, gotHost, off, err)
		}
	}
	if id := OffsetMessageID(netip.MustParseAddrPort("127.0.0.1:10911"), 16); id != "7F00000100002A9F0000000000000010" {
		t.Fatalf("golden id %s", id)
	}
	for _, bad := range []string{"", "XYZ", strings.Repeat("G", 32), strings.Repeat("0", 33)} {
		if _, _, err := ParseOffsetMessageID(bad); !errors.Is(err, ErrBadMessageID) {
			t.Errorf("ParseOffsetMessageID(%q) err = %v", bad, err)
		}
	}
}

func TestValidateTopic(t *testing.T) {
	for _, ok := range []string{"T", "%RETRY%g", "a-b_c|d", strings.Repeat("x", 127)} {
		if err := ValidateTopic(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "a/b", "a.b", strings.Repeat("x", 128), "é"} {
		if err := ValidateTopic(bad); !errors.Is(err, ErrInvalidTopic) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBatch(t *testing.T) {
	var b []byte
	for i := 0; i < 3; i++ {
		b = AppendBatchItem(b, BatchItem{Flag: int32(i), Body: []byte{byte(i), 1}, Properties: "k\x01v\x02"})
	}
	items, err := DecodeBatch(b, 10)
	if err != nil || len(items) != 3 || items[2].Flag != 2 || items[2].Body[0] != 2 || items[1].Properties != "k\x01v\x02" {
		t.Fatalf("DecodeBatch: %+v %v", items, err)
	}
	if _, err := DecodeBatch(b, 2); !errors.Is(err, ErrBadBatch) {
		t.Fatalf("max items: %v", err)
	}
	for i := 1; i < len(b); i++ {
		if it, err := DecodeBatch(b[:i], 10); err == nil && len(it) != 1 && len(it) != 2 {
			t.Fatalf("prefix %d decoded to %d items", i, len(it))
		}
	}
	if _, err := DecodeBatch(nil, 10); !errors.Is(err, ErrBadBatch) {
		t.Fatal("empty batch accepted")
	}
}

func TestRangeProperties(t *testing.T) {
	var got []string
	RangeProperties("a\x011\x02junk\x02b\x012\x02c\x013\x02", func(k, v string) bool {
		got = append(got, k+"="+v)
		return k != "b"
	})
	if strings.Join(got, ",") != "a=1,b=2" {
		t.Fatalf("got %v", got)
	}
	if n := testing.AllocsPerRun(100, func() { RangeProperties("a\x011\x02b\x012\x02", func(string, string) bool { return true }) }); n != 0 {
		t.Fatalf("allocates %v", n)
	}
	got = got[:0]
	RangePropertiesBytes([]byte("a\x011\x02junk\x02x\x01y\x01z\x02b\x012\x02c\x013\x02"), func(k, v []byte) bool {
		got = append(got, string(k)+"="+string(v))
		return string(k) != "b"
	})
	if strings.Join(got, ",") != "a=1,b=2" {
		t.Fatalf("bytes: got %v", got)
	}
	b := []byte("a\x011\x02b\x012\x02")
	if n := testing.AllocsPerRun(100, func() { RangePropertiesBytes(b, func([]byte, []byte) bool { return true }) }); n != 0 {
		t.Fatalf("bytes: allocates %v", n)
	}
}
