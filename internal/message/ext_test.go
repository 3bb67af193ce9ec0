package message

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func sampleExt() *Ext {
	return &Ext{
		Topic:                     "TopicTest",
		QueueID:                   3,
		Flag:                      7,
		QueueOffset:               42,
		CommitLogOffset:           1 << 33,
		SysFlag:                   FlagCompressed,
		BornTimestamp:             1_700_000_000_123,
		BornHost:                  netip.MustParseAddrPort("10.1.2.3:5555"),
		StoreTimestamp:            1_700_000_000_456,
		StoreHost:                 netip.MustParseAddrPort("192.168.0.9:10911"),
		ReconsumeTimes:            2,
		PreparedTransactionOffset: 99,
		Body:                      []byte("hello world"),
		Properties:                EncodeProperties(map[string]string{PropTags: "TagA", PropKeys: "k1 k2", PropUniqClientMessageID: "ABC"}),
	}
}

func TestExtRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Ext)
	}{
		{"ipv4", func(*Ext) {}},
		{"ipv6 born", func(m *Ext) { m.BornHost = netip.MustParseAddrPort("[2001:db8::1]:80") }},
		{"ipv6 store", func(m *Ext) { m.StoreHost = netip.MustParseAddrPort("[::1]:10911") }},
		{"empty body and props", func(m *Ext) { m.Body = nil; m.Properties = "" }},
		{"max topic", func(m *Ext) { m.Topic = string(bytes.Repeat([]byte("t"), MaxTopicLen)) }},
		{"big body", func(m *Ext) { m.Body = bytes.Repeat([]byte{0xab}, 1<<20) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sampleExt()
			tt.mod(m)
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			prefix := []byte("xx")
			b := m.AppendTo(prefix)
			if !bytes.Equal(b[:2], prefix) || len(b)-2 != m.EncodedLen() {
				t.Fatalf("encoded %d bytes, want %d", len(b)-2, m.EncodedLen())
			}
			got, n, err := Decode(append(b[2:], 1, 2, 3))
			if err != nil {
				t.Fatal(err)
			}
			if n != m.EncodedLen() {
				t.Fatalf("n = %d, want %d", n, m.EncodedLen())
			}
			want := *m
			want.SysFlag = got.SysFlag // host flags are derived
			if want.Body == nil {
				want.Body = []byte{}
			}
			if !equalExt(got, &want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, &want)
			}
			if isV6(m.BornHost) != (got.SysFlag&FlagBornHostV6 != 0) || isV6(m.StoreHost) != (got.SysFlag&FlagStoreHostV6 != 0) {
				t.Fatalf("host flags wrong: %#x", got.SysFlag)
			}
			v, _ := Parse(b[2:])
			if err := v.VerifyCRC(); err != nil {
				t.Fatal(err)
			}
			if v.Flag() != m.Flag || v.BornHost() != m.BornHost || v.StoreHost() != m.StoreHost {
				t.Fatalf("view: flag %d born %v store %v, want %d %v %v", v.Flag(), v.BornHost(), v.StoreHost(), m.Flag, m.BornHost, m.StoreHost)
			}
			if err := ValidateProperties(v.Properties()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func equalExt(a, b *Ext) bool {
	return a.Topic == b.Topic && a.QueueID == b.QueueID && a.Flag == b.Flag && a.QueueOffset == b.QueueOffset &&
		a.CommitLogOffset == b.CommitLogOffset && a.SysFlag == b.SysFlag && a.BornTimestamp == b.BornTimestamp &&
		a.BornHost == b.BornHost && a.StoreTimestamp == b.StoreTimestamp && a.StoreHost == b.StoreHost &&
		a.ReconsumeTimes == b.ReconsumeTimes && a.PreparedTransactionOffset == b.PreparedTransactionOffset &&
		a.BodyCRC == b.BodyCRC && bytes.Equal(a.Body, b.Body) && a.Properties == b.Properties
}

// TestExtGoldenLayout pins the byte layout to RocketMQ's MessageExt order.
func TestExtGoldenLayout(t *testing.T) {
	m := &Ext{
		Topic: "T", QueueID: 1, Flag: 2, QueueOffset: 3, CommitLogOffset: 4, BornTimestamp: 5,
		BornHost: netip.MustParseAddrPort("1.2.3.4:6"), StoreTimestamp: 7,
		StoreHost: netip.MustParseAddrPort("5.6.7.8:9"), ReconsumeTimes: 10, PreparedTransactionOffset: 11,
		Body: []byte{0xEE}, Properties: "a\x01b\x02",
	}
	got := m.AppendTo(nil)
	crc := BodyCRC32([]byte{0xEE})
	want := []byte{
		0, 0, 0, 97, // total
		0xDA, 0xA3, 0x20, 0xA7, // magic V1
		byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc),
		0, 0, 0, 1, // queue id
		0, 0, 0, 2, // flag
		0, 0, 0, 0, 0, 0, 0, 3, // queue offset
		0, 0, 0, 0, 0, 0, 0, 4, // physical offset
		0, 0, 0, 0, // sys flag
		0, 0, 0, 0, 0, 0, 0, 5, // born ts
		1, 2, 3, 4, 0, 0, 0, 6, // born host
		0, 0, 0, 0, 0, 0, 0, 7, // store ts
		5, 6, 7, 8, 0, 0, 0, 9, // store host
		0, 0, 0, 10, // reconsume
		0, 0, 0, 0, 0, 0, 0, 11, // prepared tx offset
		0, 0, 0, 1, 0xEE, // body
		1, 'T', // topic
		0, 4, 'a', 1, 'b', 2, // props
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("layout:\n got % x\nwant % x", got, want)
	}
	if len(got) != 97 {
		t.Fatalf("len %d", len(got))
	}
}

func TestParseRejects(t *testing.T) {
	good := sampleExt().AppendTo(nil)
	// Every truncation must fail cleanly.
	for i := 0; i < len(good); i++ {
		if _, err := Parse(good[:i]); err == nil {
			t.Fatalf("Parse of %d/%d bytes succeeded", i, len(good))
		}
	}
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"bad magic", mut(func(b []byte) { b[4] = 0 }), ErrBadMagic},
		{"total too small", mut(func(b []byte) { b[0], b[1], b[2], b[3] = 0, 0, 0, 10 }), ErrBadLength},
		{"negative total", mut(func(b []byte) { b[0] = 0xff }), ErrBadLength},
		{"total larger than buffer", mut(func(b []byte) { b[3]++ }), ErrShortRecord},
		{"body length too big", mut(func(b []byte) { b[PosBornHost+8+8+8+4+8] = 0x7f }), ErrBadLength},
		{"props length mismatch", mut(func(b []byte) { b[len(b)-len(sampleExt().Properties)-1]++ }), ErrBadLength},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("crc", func(t *testing.T) {
		b := mut(func(b []byte) { b[PosBodyCRC] ^= 0x01 })
		v, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.VerifyCRC(); !errors.Is(err, ErrBodyCRC) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestPatchFields(t *testing.T) {
	for _, born := range []string{"1.2.3.4:5", "[::2]:5"} {
		m := sampleExt()
		m.BornHost = netip.MustParseAddrPort(born)
		b := m.AppendTo(nil)
		SetQueueOffset(b, 1234)
		SetCommitLogOffset(b, 5678)
		SetStoreTimestamp(b, 999)
		v, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if v.QueueOffset() != 1234 || v.CommitLogOffset() != 5678 || v.StoreTimestamp() != 999 {
			t.Fatalf("%s: patched fields %d %d %d", born, v.QueueOffset(), v.CommitLogOffset(), v.StoreTimestamp())
		}
		if v.ReconsumeTimes() != m.ReconsumeTimes || string(v.Topic()) != m.Topic {
			t.Fatalf("%s: neighbours clobbered", born)
		}
	}
}

func TestDecodeAll(t *testing.T) {
	var b []byte
	for i := 0; i < 5; i++ {
		m := sampleExt()
		m.QueueOffset = int64(i)
		b = m.AppendTo(b)
	}
	ms, err := DecodeAll(b)
	if err != nil || len(ms) != 5 || ms[4].QueueOffset != 4 {
		t.Fatalf("DecodeAll: %d msgs, %v", len(ms), err)
	}
	if _, err := DecodeAll(b[:len(b)-1]); err == nil {
		t.Fatal("truncated concatenation decoded")
	}
}

func BenchmarkEncode1K(b *testing.B) {
	m := sampleExt()
	m.Body = make([]byte, 1024)
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(m.EncodedLen()))
	for i := 0; i < b.N; i++ {
		buf = m.AppendTo(buf[:0])
	}
}

func BenchmarkParse1K(b *testing.B) {
	m := sampleExt()
	m.Body = make([]byte, 1024)
	rec := m.AppendTo(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(rec)))
	for i := 0; i < b.N; i++ {
		v, err := Parse(rec)
		if err != nil || v.VerifyCRC() != nil {
			b.Fatal(err)
		}
	}
}
