package remoting

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

func TestRemotingCommandExtAccessors(t *testing.T) {
	c := NewRequest(ReqPullMessage, nil).
		SetExt("topic", "T").
		SetExtInt("queueId", 3).
		SetExtInt("queueOffset", 1<<40).
		SetExtBool("unitMode", true).
		SetExt("bad", "12x").
		SetExt("big", "3000000000").
		SetExt("empty", "").
		SetExt("upper", "TRUE")

	if v, err := c.ExtString("topic"); err != nil || v != "T" {
		t.Fatalf("ExtString: %q %v", v, err)
	}
	if _, err := c.ExtString("nope"); !errors.Is(err, ErrMissingExtField) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("missing: %v", err)
	}
	if v := c.ExtStringOr("nope", "d"); v != "d" {
		t.Fatal(v)
	}
	if v, err := c.ExtInt32("queueId"); err != nil || v != 3 {
		t.Fatalf("ExtInt32: %d %v", v, err)
	}
	if _, err := c.ExtInt32("big"); !errors.Is(err, ErrInvalidExtField) {
		t.Fatalf("int32 overflow: %v", err)
	}
	if _, err := c.ExtInt32("bad"); !errors.Is(err, ErrInvalidExtField) || !strings.Contains(err.Error(), `"bad"="12x"`) {
		t.Fatalf("bad int: %v", err)
	}
	if v, err := c.ExtInt64("queueOffset"); err != nil || v != 1<<40 {
		t.Fatalf("ExtInt64: %d %v", v, err)
	}
	if _, err := c.ExtInt64("nope"); !errors.Is(err, ErrMissingExtField) {
		t.Fatalf("missing int64: %v", err)
	}
	if v, err := c.ExtInt32Or("nope", 7); err != nil || v != 7 {
		t.Fatalf("ExtInt32Or missing: %d %v", v, err)
	}
	if v, err := c.ExtInt64Or("empty", -1); err != nil || v != -1 {
		t.Fatalf("ExtInt64Or empty: %d %v", v, err)
	}
	if _, err := c.ExtInt64Or("bad", 0); !errors.Is(err, ErrInvalidExtField) {
		t.Fatalf("ExtInt64Or bad: %v", err)
	}
	if v, err := c.ExtBool("unitMode"); err != nil || !v {
		t.Fatalf("ExtBool: %v %v", v, err)
	}
	if v, err := c.ExtBool("upper"); err != nil || !v {
		t.Fatalf("ExtBool TRUE: %v %v", v, err)
	}
	if v, err := c.ExtBool("bad"); err != nil || v {
		t.Fatalf("ExtBool other text is false: %v %v", v, err)
	}
	if _, err := c.ExtBool("nope"); !errors.Is(err, ErrMissingExtField) {
		t.Fatalf("ExtBool missing: %v", err)
	}
	if !c.ExtBoolOr("nope", true) || c.ExtBoolOr("bad", true) {
		t.Fatal("ExtBoolOr")
	}
}

func TestRemotingCommandReplyAndFlags(t *testing.T) {
	req := NewRequest(ReqSendMessage, map[string]string{"a": "b"})
	req.Opaque = 99
	req.SerializeType = SerializeRocketMQ
	if req.IsResponse() || req.IsOneway() || req.Language != DefaultLanguage || req.Version != DefaultVersion {
		t.Fatalf("request: %v", req)
	}
	resp := req.Reply(RespFlushDiskTimeout, "slow disk")
	if !resp.IsResponse() || resp.Opaque != 99 || resp.SerializeType != SerializeRocketMQ || resp.Remark != "slow disk" {
		t.Fatalf("reply: %v", resp)
	}
	if req.CodeName() != "SEND_MESSAGE" || resp.CodeName() != "FLUSH_DISK_TIMEOUT" {
		t.Fatalf("names: %s %s", req.CodeName(), resp.CodeName())
	}
	if RequestCodeName(9999) != "REQUEST_CODE(9999)" || ResponseCodeName(-3) != "RESPONSE_CODE(-3)" {
		t.Fatal("unknown code names")
	}
	if !strings.Contains(resp.String(), "FLUSH_DISK_TIMEOUT(10)") {
		t.Fatal(resp.String())
	}
	if err := resp.ResponseErr(); !errors.Is(err, &CodeError{Code: RespFlushDiskTimeout}) {
		t.Fatalf("ResponseErr: %v", err)
	}
	if err := req.Reply(RespSuccess, "").ResponseErr(); err != nil {
		t.Fatal(err)
	}
}

func TestRemotingCodeError(t *testing.T) {
	err := Errorf(RespTopicNotExist, "topic %s: %w", "T", io.EOF)
	var ce *CodeError
	if !errors.As(err, &ce) || ce.Code != RespTopicNotExist || ce.Msg != "topic T: EOF" {
		t.Fatalf("%#v", err)
	}
	if !errors.Is(err, io.EOF) {
		t.Fatal("cause lost")
	}
	if got := err.Error(); got != "TOPIC_NOT_EXIST (17): topic T: EOF" {
		t.Fatal(got)
	}
	code, remark := errorCode(errors.New("disk full"))
	if code != RespSystemError || remark != "disk full" {
		t.Fatal(code, remark)
	}
	code, remark = errorCode(errors.Join(errors.New("ctx"), err))
	if code != RespTopicNotExist || remark != "topic T: EOF" {
		t.Fatal(code, remark)
	}
}

func TestRemotingExt(t *testing.T) {
	var e Ext
	e.Set("b", "1")
	e.Set("a", "2")
	e.Set("b", "3") // replaces in place
	if len(e) != 2 || e[0] != (ExtField{"b", "3"}) || e[1] != (ExtField{"a", "2"}) {
		t.Fatalf("Set: %v", e)
	}
	if v, ok := e.Get("b"); !ok || v != "3" {
		t.Fatalf("Get b: %q %v", v, ok)
	}
	if _, ok := e.Get("c"); ok {
		t.Fatal("Get c")
	}
	e.Delete("b")
	if len(e) != 1 || e[0].Key != "a" {
		t.Fatalf("Delete: %v", e)
	}
	if got := ExtOf(map[string]string{"z": "1", "y": "2"}); got.String() != `{y="2", z="1"}` {
		t.Fatalf("ExtOf sorts keys: %s", got)
	}
	if ExtOf(nil) != nil {
		t.Fatal("ExtOf(nil)")
	}
	if m := (Ext{{"k", "v"}}).Map(); len(m) != 1 || m["k"] != "v" {
		t.Fatalf("Map: %v", m)
	}
}

// A repeated ext key keeps its first position and its last value, in both
// header encodings and whether the header is small (pairwise scan) or large
// (map).
func TestRemotingDecodeDuplicateExtKeys(t *testing.T) {
	for _, n := range []int{3, dedupeScanMax, dedupeScanMax + 1, 5000} {
		var keys []string
		for i := range n {
			keys = append(keys, "k"+strconv.Itoa(i))
		}
		keys = append(keys, "k1", "k0") // repeats, last
		for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
			c := &Command{Code: 1, SerializeType: st}
			for i, k := range keys {
				c.ExtFields = append(c.ExtFields, ExtField{k, strconv.Itoa(i)})
			}
			b, err := AppendFrame(nil, c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeFrame(b, 0)
			if err != nil {
				t.Fatalf("n=%d %s: %v", n, st, err)
			}
			if len(got.ExtFields) != n {
				t.Fatalf("n=%d %s: %d fields, want %d", n, st, len(got.ExtFields), n)
			}
			if got.ExtFields[0] != (ExtField{"k0", strconv.Itoa(n + 1)}) || got.ExtFields[1] != (ExtField{"k1", strconv.Itoa(n)}) {
				t.Fatalf("n=%d %s: first fields %v %v", n, st, got.ExtFields[0], got.ExtFields[1])
			}
			if v, _ := got.Ext("k2"); n > 2 && v != "2" {
				t.Fatalf("n=%d %s: k2=%q", n, st, v)
			}
		}
	}
}

// A header of a million repeated keys decodes in linear time (a pairwise
// scan would take hours).
func TestRemotingDecodeManyExtKeys(t *testing.T) {
	const n = 1 << 20
	var h []byte
	h = append(h, `{"code":1,"extFields":{`...)
	for i := range n {
		if i > 0 {
			h = append(h, ',')
		}
		h = append(h, `"k`...)
		h = strconv.AppendInt(h, int64(i%1000), 10)
		h = append(h, `":"v"`...)
	}
	h = append(h, "}}"...)
	c, err := DecodeHeader(SerializeJSON, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ExtFields) != 1000 {
		t.Fatalf("%d fields", len(c.ExtFields))
	}
}

func TestRemotingExtGetEmptyKey(t *testing.T) {
	e := Ext{{"a", "1"}, {"", "2"}}
	if v, ok := e.Get(""); !ok || v != "2" {
		t.Fatalf("Get empty key: %q %v", v, ok)
	}
	if _, ok := (Ext{{"a", "1"}}).Get(""); ok {
		t.Fatal("empty key found in a header without it")
	}
}
