package remoting

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// A typical G2 SEND_MESSAGE: 14 ext fields and a 1 KiB body.
func benchSendCommand() *Command {
	return &Command{Code: ReqSendMessage, Language: "GO", Version: 317, Opaque: 12345,
		ExtFields: ExtOf(sendExt()), Body: bytes.Repeat([]byte("x"), 1024)}
}

// jsonBaselineHeader is the header as encoding/json sees it; it is the
// baseline the hand-written codec is measured against.
type jsonBaselineHeader struct {
	Code      int32             `json:"code"`
	Language  string            `json:"language"`
	Version   int32             `json:"version"`
	Opaque    int32             `json:"opaque"`
	Flag      int32             `json:"flag"`
	Remark    string            `json:"remark"`
	ExtFields map[string]string `json:"extFields"`
}

func baselineEncode(dst []byte, c *Command) ([]byte, error) {
	h, err := json.Marshal(jsonBaselineHeader{c.Code, c.Language, c.Version, c.Opaque, c.Flag, c.Remark, c.ExtFields.Map()})
	if err != nil {
		return nil, err
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+len(h)+len(c.Body)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(h)))
	dst = append(dst, h...)
	return append(dst, c.Body...), nil
}

func baselineDecode(frame []byte) (*Command, error) {
	hl := int(binary.BigEndian.Uint32(frame[4:]) & maxHeaderLen)
	var h jsonBaselineHeader
	if err := json.Unmarshal(frame[8:8+hl], &h); err != nil {
		return nil, err
	}
	ext := make(Ext, 0, len(h.ExtFields))
	for k, v := range h.ExtFields {
		ext = append(ext, ExtField{Key: k, Value: v})
	}
	return &Command{Code: h.Code, Language: h.Language, Version: h.Version, Opaque: h.Opaque, Flag: h.Flag,
		Remark: h.Remark, ExtFields: ext, Body: frame[8+hl:]}, nil
}

// BenchmarkCodecSend encodes and decodes one SEND_MESSAGE frame per
// iteration: ours with JSON and binary headers, and the encoding/json
// baseline. Compare ns/op and allocs/op of "json" against "baseline-json".
func BenchmarkCodecSend(b *testing.B) {
	cmd := benchSendCommand()
	binCmd := *cmd
	binCmd.SerializeType = SerializeRocketMQ
	run := func(b *testing.B, enc func([]byte, *Command) ([]byte, error), dec func([]byte) (*Command, error), c *Command) {
		b.ReportAllocs()
		buf, _ := enc(nil, c)
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			var err error
			buf, err = enc(buf[:0], c)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := dec(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	ours := func(frame []byte) (*Command, error) { return DecodeFrame(frame, 0) }
	b.Run("json", func(b *testing.B) { run(b, AppendFrame, ours, cmd) })
	b.Run("binary", func(b *testing.B) { run(b, AppendFrame, ours, &binCmd) })
	b.Run("baseline-json", func(b *testing.B) { run(b, baselineEncode, baselineDecode, cmd) })

	b.Run("json-encode", func(b *testing.B) {
		b.ReportAllocs()
		buf, _ := AppendFrame(nil, cmd)
		for b.Loop() {
			buf, _ = AppendFrame(buf[:0], cmd)
		}
	})
	b.Run("baseline-json-encode", func(b *testing.B) {
		b.ReportAllocs()
		buf, _ := baselineEncode(nil, cmd)
		for b.Loop() {
			buf, _ = baselineEncode(buf[:0], cmd)
		}
	})
	frame, _ := AppendFrame(nil, cmd)
	b.Run("json-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeFrame(frame, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-json-decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := baselineDecode(frame); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRoundTrip measures request/response over loopback through one
// client connection, with 1 and 64 concurrent callers. The request is the
// SEND of BenchmarkCodecSend; the response carries 3 ext fields, like a send
// response. allocs/op counts both sides (same process).
func BenchmarkRoundTrip(b *testing.B) {
	for _, callers := range []int{1, 64} {
		b.Run("callers="+strconv.Itoa(callers), func(b *testing.B) {
			s := startServer(b, ServerConfig{Logger: slog.New(slog.DiscardHandler)}, map[int32]Handler{
				ReqSendMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
					resp := req.Reply(RespSuccess, "")
					resp.SetExt("msgId", "7F00000100002A9F0000000000000000").SetExt("queueId", "3").SetExt("queueOffset", "42")
					return resp, nil
				},
			})
			c := dial(b, s, ClientConfig{Logger: slog.New(slog.DiscardHandler)})
			body := bytes.Repeat([]byte("x"), 1024)
			ext := ExtOf(sendExt())
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range callers {
				wg.Go(func() {
					ctx := context.Background()
					for next.Add(1) <= int64(b.N) {
						req := &Command{Code: ReqSendMessage, Language: "GO", Version: 317, ExtFields: ext, Body: body}
						resp, err := c.Invoke(ctx, req)
						if err != nil || resp.Code != RespSuccess {
							b.Errorf("%v %v", resp, err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// BenchmarkDecodeSendV2Header decodes the JSON header of a
// SEND_MESSAGE_V2 as the official Go client fills it (single-letter keys)
// and reads its fields as the broker's send handler does, recycling the
// command as the server does.
func BenchmarkDecodeSendV2Header(b *testing.B) {
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "l", "m"}
	benchDecode(b, appendJSONHeader(nil, sendV2Command()), func(c *Command) {
		for _, k := range keys {
			if _, ok := c.Ext(k); !ok && k != "l" {
				b.Fatalf("missing %s", k)
			}
		}
	})
}

// benchDecode decodes the JSON header h once per iteration, hands the
// command to read (when not nil) and recycles it as the server does.
func benchDecode(b *testing.B, h []byte, read func(*Command)) {
	b.ReportAllocs()
	b.SetBytes(int64(len(h)))
	for b.Loop() {
		c, err := DecodeHeader(SerializeJSON, h)
		if err != nil {
			b.Fatal(err)
		}
		if read != nil {
			read(c)
		}
		c.recycle()
	}
}

// endTxCommand is an END_TRANSACTION as the official Go client fills it.
func endTxCommand() *Command {
	req := &Command{Code: ReqEndTransaction, Language: "GO", Version: 317, Opaque: 1, Flag: 2}
	for _, f := range [][2]string{{"producerGroup", "BenchTxGroup"}, {"tranStateTableOffset", "1234567"},
		{"commitLogOffset", "987654321"}, {"commitOrRollback", "8"}, {"fromTransactionCheck", "false"},
		{"msgId", "7F0000010F2C18B4AAC2512D6B4A0000"}, {"transactionId", "7F0000010F2C18B4AAC2512D6B4A0000"}} {
		req.SetExt(f[0], f[1])
	}
	return req
}

// sendV2Command is a SEND_MESSAGE_V2 header as the official Go client
// fills it (single-letter keys).
func sendV2Command() *Command {
	req := &Command{Code: ReqSendMessageV2, Language: "GO", Version: 317, Opaque: 1}
	for _, f := range [][2]string{{"a", "PG"}, {"b", "TopicTest"}, {"c", "TBW102"}, {"d", "4"}, {"e", "3"}, {"f", "0"},
		{"g", "1700000000000"}, {"h", "0"}, {"i", "UNIQ_KEY\x017F0000010F2C18B4AAC2512D6B4A0000\x02WAIT\x01true\x02"},
		{"j", "0"}, {"k", "false"}, {"l", "0"}, {"m", "false"}, {"n", "broker-a"}} {
		req.SetExt(f[0], f[1])
	}
	return req
}

// BenchmarkJSONHeader encodes and decodes the JSON headers of the two
// requests of a transaction.
func BenchmarkJSONHeader(b *testing.B) {
	for _, tc := range []struct {
		name string
		cmd  *Command
	}{{"end", endTxCommand()}, {"sendV2", sendV2Command()}} {
		h := appendJSONHeader(nil, tc.cmd)
		b.Run("encode-"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(h)))
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				buf = appendJSONHeader(buf[:0], tc.cmd)
			}
		})
		b.Run("decode-"+tc.name, func(b *testing.B) { benchDecode(b, h, nil) })
	}
}
