package remoting

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"
)

// requireCommandsEqual fails unless a and b carry the same fields. nil and
// empty ext fields and bodies count as equal.
func requireCommandsEqual(t testing.TB, want, got *Command) {
	t.Helper()
	if err := commandsDiffer(want, got); err != "" {
		t.Fatalf("commands differ: %s\nwant %v\ngot  %v", err, want, got)
	}
}

func commandsDiffer(a, b *Command) string {
	switch {
	case a.Code != b.Code:
		return "code"
	case a.Language != b.Language:
		return "language"
	case a.Version != b.Version:
		return "version"
	case a.Opaque != b.Opaque:
		return "opaque"
	case a.Flag != b.Flag:
		return "flag"
	case a.Remark != b.Remark:
		return "remark"
	case a.SerializeType != b.SerializeType:
		return "serialize type"
	case len(a.ExtFields) != len(b.ExtFields) || !maps.Equal(a.ExtFields.Map(), b.ExtFields.Map()):
		return "ext fields"
	case !bytes.Equal(a.Body, b.Body):
		return "body"
	}
	return ""
}

// frame builds a frame by hand: length prefix, meta, header, body.
func frame(st SerializeType, header, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(4+len(header)+len(body)))
	b = binary.BigEndian.AppendUint32(b, uint32(st)<<24|uint32(len(header)))
	b = append(b, header...)
	return append(b, body...)
}

func TestRemotingCodecRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	cases := []struct {
		name string
		cmd  Command
	}{
		{"empty", Command{}},
		{"request", Command{Code: ReqSendMessage, Language: "GO", Version: 317, Opaque: 7,
			ExtFields: ExtOf(map[string]string{"topic": "T", "queueId": "3"}), Body: []byte("hello")}},
		{"response", Command{Code: RespTopicNotExist, Language: "JAVA", Version: 479, Opaque: -5,
			Flag: FlagResponse, Remark: "topic[T] not exist, apply first please!"}},
		{"oneway", Command{Code: ReqCheckTransactionState, Flag: FlagOneway, Opaque: 1 << 30}},
		{"escapes", Command{Code: 1, Language: "GO", Remark: "q\"b\\s/\n\r\t\b\f\x00\x01\x1f\x7f",
			ExtFields: ExtOf(map[string]string{"k\"ey": "v\\al", "properties": "UNIQ_KEY\x01ABC\x02TAGS\x01a<b>&c\x02"})}},
		{"unicode", Command{Code: 2, Language: "GO", Remark: "主题 🚀 é \u2028\u2029",
			ExtFields: ExtOf(map[string]string{"键": "値 🚀", "": ""})}},
		{"empty ext values", Command{Code: 3, Language: "GO", ExtFields: ExtOf(map[string]string{"a": "", "b": ""})}},
		{"many ext", Command{Code: 4, Language: "GO", ExtFields: ExtOf(sendExt())}},
		{"big body", Command{Code: ReqSendMessage, Language: "GO", Body: big}},
		{"extreme ints", Command{Code: 32767, Language: "GO", Version: -32768, Opaque: -2147483648, Flag: 2147483647}},
	}
	for _, tc := range cases {
		for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
			t.Run(tc.name+"/"+st.String(), func(t *testing.T) {
				cmd := tc.cmd
				cmd.SerializeType = st
				if st == SerializeRocketMQ && cmd.Language == "" {
					cmd.Language = "GO" // binary has no empty language
				}
				prefix := []byte("prefix")
				b, err := AppendFrame(append([]byte(nil), prefix...), &cmd)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.HasPrefix(b, prefix) {
					t.Fatal("AppendFrame clobbered dst")
				}
				got, err := DecodeFrame(b[len(prefix):], DefaultMaxFrameSize)
				if err != nil {
					t.Fatal(err)
				}
				requireCommandsEqual(t, &cmd, got)

				// The same through ReadFrame, twice in a row.
				stream := append(append([]byte(nil), b[len(prefix):]...), b[len(prefix):]...)
				br := bufio.NewReader(bytes.NewReader(stream))
				for range 2 {
					got, err = ReadFrame(br, DefaultMaxFrameSize)
					if err != nil {
						t.Fatal(err)
					}
					requireCommandsEqual(t, &cmd, got)
				}
				if _, err := ReadFrame(br, DefaultMaxFrameSize); err != io.EOF {
					t.Fatalf("after the last frame: got %v, want io.EOF", err)
				}
			})
		}
	}
}

func sendExt() map[string]string {
	return map[string]string{
		"producerGroup": "PG", "topic": "TopicTest", "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": "3", "sysFlag": "0", "bornTimestamp": "1700000000000", "flag": "0",
		"properties":     "UNIQ_KEY\x017F0000010F2C18B4AAC2512D6B4A0000\x02TAGS\x01TagA\x02KEYS\x01k1 k2\x02WAIT\x01true\x02",
		"reconsumeTimes": "0", "unitMode": "false", "maxReconsumeTimes": "0", "batch": "false", "bname": "broker-a",
	}
}

// The JSON header we write is byte for byte what G2 writes for the same
// command (one ext field, so map order does not matter).
func TestRemotingCodecJSONEncodeMatchesG2(t *testing.T) {
	cmd := &Command{Code: 105, Language: "GO", Version: 317, Opaque: 1, ExtFields: ExtOf(map[string]string{"topic": "T"})}
	b, err := AppendFrame(nil, cmd)
	if err != nil {
		t.Fatal(err)
	}
	want := frame(SerializeJSON, []byte(`{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"T"}}`), nil)
	if !bytes.Equal(b, want) {
		t.Fatalf("got  %q\nwant %q", b, want)
	}
	// Empty ext fields are still an object, and remark is always present.
	b, _ = AppendFrame(nil, &Command{Code: 0, Language: "GO", Flag: 1})
	if got := string(b[8:]); got != `{"code":0,"language":"GO","version":0,"opaque":0,"flag":1,"remark":"","extFields":{}}` {
		t.Fatalf("empty header: %s", got)
	}
}

// protocol.md A1: a real GET_ROUTEINFO_BY_TOPIC request captured from G2.
// The lengths in the capture (0x6c total, 0x64 header) leave 4 body bytes.
func TestRemotingCodecG2CapturedRequest(t *testing.T) {
	header := `{"code":105,"language":"GO","version":317,"opaque":1,"flag":0,"remark":"","extFields":{"topic":"T"}}`
	raw := []byte{0x00, 0x00, 0x00, 0x6c, 0x00, 0x00, 0x00, 0x64}
	raw = append(raw, header...)
	raw = append(raw, "BODY"...)
	if len(header) != 0x64 || len(raw) != 4+0x6c {
		t.Fatalf("capture lengths: header %d, frame %d", len(header), len(raw))
	}
	got, err := DecodeFrame(raw, DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	requireCommandsEqual(t, &Command{Code: ReqGetRouteInfoByTopic, Language: "GO", Version: 317, Opaque: 1,
		ExtFields: ExtOf(map[string]string{"topic": "T"}), Body: []byte("BODY")}, got)
	if got.IsResponse() || got.IsOneway() {
		t.Fatal("flags misread")
	}
}

// The bytes G2 (internal/remote/codec.go: jsoniter.Marshal of its
// RemotingCommand with ConfigDefault, i.e. EscapeHTML) produces for a
// SEND_MESSAGE with the header of internal/request.go
// SendMessageRequestHeader.Encode: control characters as \u00XX, <, > and &
// as \u003c, \u003e, \u0026, U+2028 as \u2028, map order random.
func TestRemotingCodecG2SendMessageBytes(t *testing.T) {
	header := `{"code":10,"language":"GO","version":317,"opaque":42,"flag":0,"remark":"","extFields":{` +
		`"bname":"broker-a","properties":"UNIQ_KEY\u0001C0A8000100002A9F00000000000A0001\u0002TAGS\u0001TagA\u0002KEYS\u0001a\u003cb\u003e\u0026c line\u2028sep\u0002",` +
		`"queueId":"3","reconsumeTimes":"0","topic":"TopicTest","defaultTopicQueueNums":"4","flag":"0","producerGroup":"PG",` +
		`"sysFlag":"4","bornTimestamp":"1700000000123","unitMode":"false","maxReconsumeTimes":"0","defaultTopic":"TBW102","batch":"false"}}`
	raw := frame(SerializeJSON, []byte(header), []byte("message body"))
	got, err := DecodeFrame(raw, DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	want := &Command{Code: ReqSendMessage, Language: "GO", Version: 317, Opaque: 42, Body: []byte("message body"),
		ExtFields: ExtOf(map[string]string{
			"bname": "broker-a", "properties": "UNIQ_KEY\x01C0A8000100002A9F00000000000A0001\x02TAGS\x01TagA\x02KEYS\x01a<b>&c line\u2028sep\x02",
			"queueId": "3", "reconsumeTimes": "0", "topic": "TopicTest", "defaultTopicQueueNums": "4", "flag": "0",
			"producerGroup": "PG", "sysFlag": "4", "bornTimestamp": "1700000000123", "unitMode": "false",
			"maxReconsumeTimes": "0", "defaultTopic": "TBW102", "batch": "false",
		})}
	requireCommandsEqual(t, want, got)
	if q, err := got.ExtInt32("queueId"); err != nil || q != 3 {
		t.Fatalf("queueId: %d, %v", q, err)
	}
}

// What Java's fastjson sends: keys sorted, serializeTypeCurrentRPC, no remark.
func TestRemotingCodecJSONLenient(t *testing.T) {
	cases := []struct {
		name   string
		header string
		want   Command
	}{
		{"java response", `{"code":0,"extFields":{"queueId":"1","msgId":"AC"},"flag":1,"language":"JAVA","opaque":9,"serializeTypeCurrentRPC":"JSON","version":479}`,
			Command{Code: 0, Language: "JAVA", Version: 479, Opaque: 9, Flag: 1, ExtFields: ExtOf(map[string]string{"queueId": "1", "msgId": "AC"})}},
		{"non-string ext values", `{"code":34,"extFields":{"n":12,"neg":-3.5e2,"t":true,"f":false,"z":null,"o":{"a":[1,"x",{}]},"l":[ ]}}`,
			Command{Code: 34, ExtFields: ExtOf(map[string]string{"n": "12", "neg": "-3.5e2", "t": "true", "f": "false", "o": `{"a":[1,"x",{}]}`, "l": "[ ]"})}},
		{"nulls", `{"code":null,"language":null,"remark":null,"extFields":null,"version":null}`, Command{}},
		{"numbers as strings and floats", `{"code":"17","opaque":"-4","version":3.0,"flag":1e0}`,
			Command{Code: 17, Opaque: -4, Version: 3, Flag: 1}},
		{"whitespace and unknown keys", " \r\n{ \"x\" : [1, {\"y\": null}, \"\\\"\"] , \"code\" : 11 , \"z\":{}}\t ",
			Command{Code: 11}},
		{"escapes", `{"remark":"\"\\\/\b\f\n\r\t\u00e9\u4e3b\ud83d\ude80\u2028","extFields":{"k\u0001":"v\u0002"}}`,
			Command{Remark: "\"\\/\b\f\n\r\t\u00e9\u4e3b🚀\u2028", ExtFields: ExtOf(map[string]string{"k\x01": "v\x02"})}},
		{"lone surrogates", `{"remark":"\ud800x\udc00"}`, Command{Remark: "\uFFFDx\uFFFD"}},
		{"invalid utf8", "{\"remark\":\"a\xffb\"}", Command{Remark: "a\uFFFDb"}},
		{"duplicate keys", `{"code":1,"code":2,"extFields":{"a":"1"},"extFields":{"b":"2","a":"3"}}`,
			Command{Code: 2, ExtFields: ExtOf(map[string]string{"a": "3", "b": "2"})}},
		{"empty object", `{}`, Command{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeHeader(SerializeJSON, []byte(tc.header))
			if err != nil {
				t.Fatal(err)
			}
			requireCommandsEqual(t, &tc.want, got)
		})
	}
}

// Our hand-written JSON agrees with encoding/json in both directions.
func TestRemotingCodecJSONAgreesWithEncodingJSON(t *testing.T) {
	type header struct {
		Code      int32             `json:"code"`
		Language  string            `json:"language"`
		Version   int32             `json:"version"`
		Opaque    int32             `json:"opaque"`
		Flag      int32             `json:"flag"`
		Remark    string            `json:"remark"`
		ExtFields map[string]string `json:"extFields"`
	}
	strs := []string{"", "plain", "q\"b\\", "\x00\x01\x1f\x7f", "<>&", "主题🚀", "\u2028\u2029", "\ufffd", "tab\there"}
	for _, s := range strs {
		h := header{Code: 10, Language: s, Version: 1, Opaque: 2, Flag: 3, Remark: s, ExtFields: map[string]string{s: s, "k": s}}
		// ours -> encoding/json
		cmd := &Command{Code: h.Code, Language: h.Language, Version: h.Version, Opaque: h.Opaque, Flag: h.Flag, Remark: h.Remark, ExtFields: ExtOf(h.ExtFields)}
		b, err := AppendFrame(nil, cmd)
		if err != nil {
			t.Fatal(err)
		}
		var back header
		if err := json.Unmarshal(b[8:], &back); err != nil {
			t.Fatalf("%q: encoding/json rejects our header %s: %v", s, b[8:], err)
		}
		if back.Remark != s || back.Language != s || !maps.Equal(back.ExtFields, h.ExtFields) {
			t.Fatalf("%q: encoding/json read %+v", s, back)
		}
		// encoding/json -> ours
		j, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeHeader(SerializeJSON, j)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		requireCommandsEqual(t, cmd, got)
	}
}

// Bytes laid out by hand as Java's RocketMQSerializable writes them.
func TestRemotingCodecBinaryGolden(t *testing.T) {
	var h []byte
	h = binary.BigEndian.AppendUint16(h, 10)    // code
	h = append(h, 0)                            // JAVA
	h = binary.BigEndian.AppendUint16(h, 479)   // version
	h = binary.BigEndian.AppendUint32(h, 77)    // opaque
	h = binary.BigEndian.AppendUint32(h, 0)     // flag
	h = binary.BigEndian.AppendUint32(h, 3)     // remark length
	h = append(h, "rmk"...)                     //
	var ext []byte                              //
	ext = binary.BigEndian.AppendUint16(ext, 5) //
	ext = append(ext, "topic"...)               //
	ext = binary.BigEndian.AppendUint32(ext, 6) //
	ext = append(ext, "主"...)                   // 3 bytes
	ext = append(ext, "ab!"...)                 //
	ext = binary.BigEndian.AppendUint16(ext, 1) //
	ext = append(ext, "e"...)                   //
	ext = binary.BigEndian.AppendUint32(ext, 0) // empty value
	h = binary.BigEndian.AppendUint32(h, uint32(len(ext)))
	h = append(h, ext...)
	got, err := DecodeFrame(frame(SerializeRocketMQ, h, []byte{1, 2, 3}), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := &Command{Code: 10, Language: "JAVA", Version: 479, Opaque: 77, Remark: "rmk", SerializeType: SerializeRocketMQ,
		ExtFields: ExtOf(map[string]string{"topic": "主ab!", "e": ""}), Body: []byte{1, 2, 3}}
	requireCommandsEqual(t, want, got)

	// Encoding it back gives the same bytes up to ext order; with one ext
	// field the bytes are identical.
	one := &Command{Code: 10, Language: "JAVA", Version: 479, Opaque: 77, Remark: "rmk", SerializeType: SerializeRocketMQ,
		ExtFields: ExtOf(map[string]string{"e": ""})}
	b, err := AppendFrame(nil, one)
	if err != nil {
		t.Fatal(err)
	}
	var wantHdr []byte
	wantHdr = append(wantHdr, h[:20]...) // fixed part + remark
	wantHdr = binary.BigEndian.AppendUint32(wantHdr, 7)
	wantHdr = binary.BigEndian.AppendUint16(wantHdr, 1)
	wantHdr = append(wantHdr, 'e', 0, 0, 0, 0)
	if !bytes.Equal(b, frame(SerializeRocketMQ, wantHdr, nil)) {
		t.Fatalf("binary encoding:\ngot  %x\nwant %x", b, frame(SerializeRocketMQ, wantHdr, nil))
	}

	// Unknown language bytes survive a round trip.
	h[2] = 200
	got, err = DecodeHeader(SerializeRocketMQ, h)
	if err != nil || got.Language != "200" {
		t.Fatalf("language 200: %v %q", err, got.Language)
	}
	if b, _ = AppendFrame(nil, got); b[8+2] != 200 {
		t.Fatalf("language byte re-encoded as %d", b[8+2])
	}
}

func TestRemotingCodecMalformed(t *testing.T) {
	okBinary := func() []byte {
		b, _ := AppendFrame(nil, &Command{Code: 1, Language: "GO", SerializeType: SerializeRocketMQ, Remark: "r",
			ExtFields: ExtOf(map[string]string{"k": "v"})})
		return b[8:]
	}
	binWith := func(f func(h []byte) []byte) []byte { return frame(SerializeRocketMQ, f(okBinary()), nil) }
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	cases := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"shorter than length field", []byte{0, 0, 1}, ErrMalformedFrame},
		{"length below header field", []byte{0, 0, 0, 2, 0, 0}, ErrMalformedFrame},
		{"length mismatch", []byte{0, 0, 0, 9, 0, 0, 0, 2, '{', '}'}, ErrMalformedFrame},
		{"header length past end", []byte{0, 0, 0, 6, 0, 0, 0, 9, '{', '}'}, ErrMalformedFrame},
		{"oversize", binary.BigEndian.AppendUint32(nil, 16<<20), ErrFrameTooLarge},
		{"negative length", []byte{0xff, 0xff, 0xff, 0xff}, ErrFrameTooLarge},
		{"bad serialize type", frame(7, []byte("{}"), nil), ErrMalformedFrame},
		{"empty json header", frame(SerializeJSON, nil, []byte("body")), ErrMalformedFrame},
		{"json not object", frame(SerializeJSON, []byte(`[1]`), nil), ErrMalformedFrame},
		{"json truncated", frame(SerializeJSON, []byte(`{"code":1`), nil), ErrMalformedFrame},
		{"json trailing", frame(SerializeJSON, []byte(`{"code":1}x`), nil), ErrMalformedFrame},
		{"json bad number", frame(SerializeJSON, []byte(`{"code":01}`), nil), ErrMalformedFrame},
		{"json code overflow", frame(SerializeJSON, []byte(`{"code":2147483648}`), nil), ErrMalformedFrame},
		{"json fractional code", frame(SerializeJSON, []byte(`{"code":1.5}`), nil), ErrMalformedFrame},
		{"json bad escape", frame(SerializeJSON, []byte(`{"remark":"\x"}`), nil), ErrMalformedFrame},
		{"json bad unicode escape", frame(SerializeJSON, []byte(`{"remark":"\u12"}`), nil), ErrMalformedFrame},
		{"json unterminated string", frame(SerializeJSON, []byte(`{"remark":"abc`), nil), ErrMalformedFrame},
		{"json ext not object", frame(SerializeJSON, []byte(`{"extFields":[]}`), nil), ErrMalformedFrame},
		{"json deep nesting", frame(SerializeJSON, []byte(`{"x":`+deep+`}`), nil), ErrMalformedFrame},
		{"json bad literal", frame(SerializeJSON, []byte(`{"x":tru}`), nil), ErrMalformedFrame},
		{"binary too short", frame(SerializeRocketMQ, make([]byte, 20), nil), ErrMalformedFrame},
		{"binary remark past end", binWith(func(h []byte) []byte { binary.BigEndian.PutUint32(h[13:], 1000); return h }), ErrMalformedFrame},
		{"binary no ext length", binWith(func(h []byte) []byte { return h[:18] }), ErrMalformedFrame},
		{"binary ext past end", binWith(func(h []byte) []byte { binary.BigEndian.PutUint32(h[18:], 1000); return h }), ErrMalformedFrame},
		{"binary negative key length", binWith(func(h []byte) []byte { binary.BigEndian.PutUint16(h[22:], 0xffff); return h }), ErrMalformedFrame},
		{"binary value past end", binWith(func(h []byte) []byte { binary.BigEndian.PutUint32(h[25:], 99); return h }), ErrMalformedFrame},
		{"binary truncated entry", binWith(func(h []byte) []byte {
			binary.BigEndian.PutUint32(h[18:], 4)
			return h[:26]
		}), ErrMalformedFrame},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeFrame(tc.frame, DefaultMaxFrameSize)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// ReadFrame agrees, except that it sees a short stream as EOF.
			_, rerr := ReadFrame(bufio.NewReader(bytes.NewReader(tc.frame)), DefaultMaxFrameSize)
			if !errors.Is(rerr, tc.want) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
				t.Fatalf("ReadFrame: got %v, want %v", rerr, tc.want)
			}
		})
	}
}

// An oversize length prefix is refused before the frame is allocated or
// read: the reader holds nothing but the prefix.
func TestRemotingCodecOversizeNoAllocation(t *testing.T) {
	prefix := binary.BigEndian.AppendUint32(nil, 1<<30)
	allocs := testing.AllocsPerRun(100, func() {
		br := bufio.NewReaderSize(bytes.NewReader(prefix), 16)
		if _, err := ReadFrame(br, 1<<20); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatal(err)
		}
	})
	// bufio.Reader and bytes.Reader, plus the error value; never 1 GiB.
	if allocs > 8 {
		t.Fatalf("%v allocations", allocs)
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader([]byte{0, 0, 0, 8, 0, 0})), 0); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated frame: %v", err)
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader([]byte{0, 0})), 0); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated length: %v", err)
	}
}

func TestRemotingCodecEncodeErrors(t *testing.T) {
	cases := []struct {
		name string
		cmd  Command
		want error
	}{
		{"binary code out of int16", Command{Code: 200050, SerializeType: SerializeRocketMQ}, ErrInvalidCommand},
		{"binary version out of int16", Command{Version: 40000, SerializeType: SerializeRocketMQ}, ErrInvalidCommand},
		{"binary key too long", Command{SerializeType: SerializeRocketMQ, ExtFields: ExtOf(map[string]string{strings.Repeat("k", 40000): ""})}, ErrInvalidCommand},
		{"unknown serialize type", Command{SerializeType: 3}, ErrInvalidCommand},
		{"header too large", Command{Remark: strings.Repeat("r", 1<<24)}, ErrFrameTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := AppendFrame(dst, &tc.cmd)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed on error: %d bytes", len(out))
			}
		})
	}
	// JSON carries int32 codes (G2 would not read them, but Java would).
	b, err := AppendFrame(nil, &Command{Code: 200050})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeFrame(b, 0); err != nil || got.Code != 200050 {
		t.Fatalf("%v %v", got, err)
	}
}
