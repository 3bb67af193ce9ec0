package remoting

import (
	"errors"
	"io"
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
