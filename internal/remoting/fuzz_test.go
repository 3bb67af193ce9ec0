package remoting

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// Fuzz invariants, for both targets:
//
//  1. Decoding never panics, whatever the input.
//  2. Decoding never allocates more than the frame limit: a length prefix
//     above the limit is refused before anything is allocated for it, every
//     length inside a header is checked against the bytes present before it
//     is used, and ReadFrame grows its buffer with the bytes actually
//     received. FuzzDecodeFrame reads with a 1 MiB limit and checks that one
//     ReadFrame allocates at most twice the input's size plus a fixed slack
//     (reader buffer, first 64 KiB chunk), whatever length the prefix claims.
//  3. Every error wraps ErrMalformedFrame or ErrFrameTooLarge (or is an
//     io error from ReadFrame on a short stream).
//  4. A successfully decoded command re-encodes in its own serialization
//     and decodes to an equal command.
//
// Seeds come from f.Add below and from the committed corpus under
// testdata/fuzz/.

const fuzzMaxFrame = 1 << 20

// fuzzAllocSlack covers the bufio.Reader, the first read chunk and the
// decoded command's small allocations.
const fuzzAllocSlack = 4096 + readChunk + 16<<10

func fuzzSeedFrames(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	for _, c := range []*Command{
		{Code: 105, Language: "GO", Version: 317, Opaque: 1, ExtFields: ExtOf(map[string]string{"topic": "T"})},
		{Code: 10, Language: "GO", Version: 317, Opaque: 2, ExtFields: ExtOf(sendExt()), Body: []byte("body")},
		{Code: 17, Language: "JAVA", Version: 479, Opaque: 3, Flag: 1, Remark: "topic[T] not exist \"q\" \u2028 主"},
		{Code: 39, Language: "JAVA", Flag: 2, SerializeType: SerializeRocketMQ, Remark: "r", ExtFields: ExtOf(map[string]string{"msgId": "M", "": "x"})},
		{Code: 0, Language: "200", SerializeType: SerializeRocketMQ, Body: []byte{0, 1, 2}},
	} {
		b, err := AppendFrame(nil, c)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	seeds = append(seeds,
		[]byte{0, 0, 0, 0x6c, 0, 0, 0, 0x64},
		frame(SerializeJSON, []byte(`{"code":0,"extFields":{"n":1,"b":true,"z":null,"o":{"a":[]}},"serializeTypeCurrentRPC":"JSON"}`), nil),
		frame(SerializeJSON, []byte(`{"remark":"\ud83d\ude80\u00e9\\\"","opaque":"7","version":1e2}`), nil),
		frame(SerializeRocketMQ, []byte{0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}, nil),
		[]byte{0xff, 0xff, 0xff, 0xff},
	)
	return seeds
}

// checkRoundTrip enforces invariant 4.
func checkRoundTrip(t *testing.T, cmd *Command) {
	b, err := AppendFrame(nil, cmd)
	if err != nil {
		t.Fatalf("re-encode %v: %v", cmd, err)
	}
	again, err := DecodeFrame(b, 0)
	if err != nil {
		t.Fatalf("decode re-encoded %v: %v (frame %q)", cmd, err, b)
	}
	if d := commandsDiffer(cmd, again); d != "" {
		t.Fatalf("round trip changed the %s:\nfirst  %v\nsecond %v", d, cmd, again)
	}
}

func checkDecodeErr(t *testing.T, err error) {
	if !errors.Is(err, ErrMalformedFrame) && !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("error wraps no sentinel: %v", err)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, s := range fuzzSeedFrames(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := DecodeFrame(data, fuzzMaxFrame)
		if err != nil {
			checkDecodeErr(t, err)
		} else {
			checkRoundTrip(t, cmd)
		}

		// The same bytes as a stream: ReadFrame agrees, and when the length
		// prefix claims more than the input holds it allocates in proportion
		// to the input, not to the claim. (ReadMemStats stops the world, so
		// it is measured only for those inputs.)
		br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
		var rcmd *Command
		var rerr error
		if len(data) >= 4 && int(binary.BigEndian.Uint32(data)) > len(data)+readChunk {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			rcmd, rerr = ReadFrame(br, fuzzMaxFrame)
			runtime.ReadMemStats(&ms)
			if grew := ms.TotalAlloc - before; grew > 2*uint64(len(data))+fuzzAllocSlack {
				t.Fatalf("ReadFrame of %d input bytes allocated %d bytes", len(data), grew)
			}
		} else {
			rcmd, rerr = ReadFrame(br, fuzzMaxFrame)
		}
		if err == nil && (rerr != nil || commandsDiffer(cmd, rcmd) != "") {
			t.Fatalf("DecodeFrame accepted what ReadFrame did not: %v", rerr)
		}
	})
}

func FuzzDecodeHeader(f *testing.F) {
	for _, s := range fuzzSeedFrames(f) {
		if len(s) >= 8 {
			n := int(s[5])<<16 | int(s[6])<<8 | int(s[7])
			if 8+n <= len(s) {
				f.Add(s[4] == byte(SerializeRocketMQ), s[8:8+n])
			}
		}
	}
	f.Add(false, []byte(`{"code":1,"x":[[[[{"y":"\u0000"}]]]]}`))
	f.Add(true, []byte{})
	f.Fuzz(func(t *testing.T, binaryHeader bool, header []byte) {
		st := SerializeJSON
		if binaryHeader {
			st = SerializeRocketMQ
		}
		cmd, err := DecodeHeader(st, header)
		if err != nil {
			checkDecodeErr(t, err)
			return
		}
		if cmd.SerializeType != st {
			t.Fatalf("decoded as %s, asked for %s", cmd.SerializeType, st)
		}
		checkRoundTrip(t, cmd)
	})
}
