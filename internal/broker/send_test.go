package broker_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
)

// sendPaths runs a test on the inline send and pull paths (the default) and
// on the handler-goroutine paths.
func sendPaths(t *testing.T, test func(t *testing.T, opts ...testutil.Option)) {
	t.Run("inline", func(t *testing.T) { test(t) })
	t.Run("handler", func(t *testing.T) { test(t, testutil.WithoutInlineSend()) })
}

func TestSendSingleAndV2(t *testing.T) { sendPaths(t, testSendSingleAndV2) }

func testSendSingleAndV2(t *testing.T, opts ...testutil.Option) {
	tb := testutil.RunBroker(t, opts...)
	c := tb.Dial(t)
	createTopic(t, tb, c, "T1", 2)

	cases := []struct {
		name string
		req  *remoting.Command
	}{
		{"SEND_MESSAGE", sendReq("T1", 1, []byte("hello"), props("TAGS", "A", "UNIQ_KEY", "AABBCCDDEEFF00112233445566778899"))},
		{"SEND_MESSAGE_V2", sendV2Req(remoting.ReqSendMessageV2, "T1", 1, []byte("world"), props("KEYS", "k1 k2"))},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := invoke(t, c, tc.req)
			if resp.Code != remoting.RespSuccess {
				t.Fatalf("code %d %q", resp.Code, resp.Remark)
			}
			if got := extInt(t, resp, "queueOffset"); got != int64(i) {
				t.Errorf("queueOffset %d, want %d", got, i)
			}
			if got := extInt(t, resp, "queueId"); got != 1 {
				t.Errorf("queueId %d", got)
			}
			for _, k := range []string{"transactionId", "MSG_REGION", "TRACE_ON"} {
				if resp.ExtStringOr(k, "") == "" {
					t.Errorf("ext %s missing: %v", k, resp.ExtFields)
				}
			}
			host, off, err := message.ParseOffsetMessageID(resp.ExtStringOr("msgId", ""))
			if err != nil {
				t.Fatalf("msgId: %v", err)
			}
			if host.String() != tb.BrokerAddr {
				t.Errorf("msgId host %s, want %s", host, tb.BrokerAddr)
			}
			rec, err := tb.Broker.Store().ReadAt(off)
			if err != nil {
				t.Fatalf("ReadAt(%d): %v", off, err)
			}
			m, _, err := message.Decode(rec)
			if err != nil {
				t.Fatal(err)
			}
			if m.CommitLogOffset != off || !bytes.Equal(m.Body, tc.req.Body) || m.QueueID != 1 {
				t.Errorf("stored %+v", m)
			}
			if m.StoreHost.String() != tb.BrokerAddr || !m.BornHost.Addr().IsLoopback() {
				t.Errorf("hosts: store %s born %s", m.StoreHost, m.BornHost)
			}
			uniq, _ := message.Property(m.Properties, message.PropUniqClientMessageID)
			if uniq == "" || uniq != resp.ExtStringOr("transactionId", "") {
				t.Errorf("UNIQ_KEY %q, transactionId %q", uniq, resp.ExtStringOr("transactionId", ""))
			}
		})
	}
}

func TestSendBatch(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	createTopic(t, tb, c, "TB", 1)
	mustSend(t, c, "TB", 0, "first", "")
	var body []byte
	for i := range 3 {
		body = message.AppendBatchItem(body, message.BatchItem{Flag: int32(i), Body: []byte{'m', byte('0' + i)},
			Properties: props("TAGS", "T")})
	}
	resp := invoke(t, c, sendV2Req(remoting.ReqSendBatchMessage, "TB", 0, body, ""))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("batch: %d %q", resp.Code, resp.Remark)
	}
	if got := extInt(t, resp, "queueOffset"); got != 1 {
		t.Errorf("queueOffset %d, want 1", got)
	}
	ids := strings.Split(resp.ExtStringOr("msgId", ""), ",")
	if len(ids) != 3 {
		t.Fatalf("msgId %q", resp.ExtStringOr("msgId", ""))
	}
	for i, id := range ids {
		_, off, err := message.ParseOffsetMessageID(id)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := tb.Broker.Store().ReadAt(off)
		if err != nil {
			t.Fatal(err)
		}
		m, _, _ := message.Decode(rec)
		if m.QueueOffset != int64(1+i) || m.Flag != int32(i) || string(m.Body) != "m"+string(rune('0'+i)) {
			t.Errorf("item %d stored as %+v", i, m)
		}
		if u, _ := message.Property(m.Properties, message.PropUniqClientMessageID); u == "" {
			t.Errorf("item %d has no UNIQ_KEY", i)
		}
	}
}

func TestSendAutoCreate(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	resp := invoke(t, c, sendReq("AutoT", -1, []byte("x"), ""))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("auto-create send: %d %q", resp.Code, resp.Remark)
	}
	if q := extInt(t, resp, "queueId"); q < 0 || q >= 4 {
		t.Errorf("picked queue %d", q)
	}
	tb.WaitRoutable(t, "AutoT")

	off := testutil.RunBroker(t, testutil.WithConfig("autoCreateTopicEnable", "false"))
	c2 := off.Dial(t)
	resp = invoke(t, c2, sendReq("NoSuchT", 0, []byte("x"), ""))
	if resp.Code != remoting.RespTopicNotExist || !strings.Contains(resp.Remark, "NoSuchT") {
		t.Fatalf("want TOPIC_NOT_EXIST, got %d %q", resp.Code, resp.Remark)
	}
}

func TestSendRefusals(t *testing.T) { sendPaths(t, testSendRefusals) }

func testSendRefusals(t *testing.T, opts ...testutil.Option) {
	tb := testutil.RunBroker(t, append(opts, testutil.WithConfig("autoCreateTopicEnable", "false"))...)
	c := tb.Dial(t)
	createTopic(t, tb, c, "T", 2)
	big := bytes.Repeat([]byte("x"), tb.Config.MaxMessageSize+1)
	noTopic := sendReq("T", 0, []byte("x"), "")
	noTopic.ExtFields.Delete("topic")
	badQueue := sendReq("T", 0, []byte("x"), "")
	badQueue.SetExt("queueId", "abc")
	cases := []struct {
		name string
		req  *remoting.Command
		code int32
		in   string
	}{
		{"unknown topic", sendReq("Nope", 0, []byte("x"), ""), remoting.RespTopicNotExist, "not exist"},
		{"oversized", sendReq("T", 0, big, ""), remoting.RespMessageIllegal, "body size over max"},
		{"queue out of range", sendReq("T", 2, []byte("x"), ""), remoting.RespSystemError, "queueId[2] is illegal"},
		{"invalid topic", sendReq("bad topic!", 0, []byte("x"), ""), remoting.RespMessageIllegal, "invalid topic"},
		{"system topic", sendReq(message.TransHalfTopic, 0, []byte("x"), ""), remoting.RespNoPermission, "forbidden"},
		{"schedule topic", sendReq(message.ScheduleTopic, 0, []byte("x"), ""), remoting.RespNoPermission, "forbidden"},
		{"missing topic", noTopic, remoting.RespSystemError, `"topic"`},
		{"malformed queueId", badQueue, remoting.RespSystemError, "queueId"},
		{"transactional with delay", sendReq("T", 0, []byte("x"), props("TRAN_MSG", "true", "PGROUP", "PG", "DELAY", "2")), remoting.RespMessageIllegal, "cannot be delayed"},
		{"transactional batch", sendV2Req(remoting.ReqSendBatchMessage, "T", 0,
			message.AppendBatchItem(nil, message.BatchItem{Body: []byte("x"), Properties: props("TRAN_MSG", "true")}), ""), remoting.RespMessageIllegal, "cannot be batched"},
		{"malformed delay level", sendReq("T", 0, []byte("x"), props("DELAY", "soon")), remoting.RespMessageIllegal, `DELAY="soon"`},
		{"timer beyond max", sendReq("T", 0, []byte("x"), props("TIMER_DELIVER_MS", "99999999999999")), remoting.RespMessageIllegal, "timerMaxDelaySec=259200"},
		{"timer delay beyond max", sendReq("T", 0, []byte("x"), props("TIMER_DELAY_SEC", "259201")), remoting.RespMessageIllegal, "timerMaxDelaySec"},
		{"malformed timer", sendReq("T", 0, []byte("x"), props("TIMER_DELAY_MS", "1.5")), remoting.RespMessageIllegal, `TIMER_DELAY_MS="1.5"`},
		{"delayed batch", sendV2Req(remoting.ReqSendBatchMessage, "T", 0,
			message.AppendBatchItem(nil, message.BatchItem{Body: []byte("x"), Properties: props("DELAY", "1")}), ""), remoting.RespMessageIllegal, "cannot be batched"},
		{"malformed batch", sendV2Req(remoting.ReqSendBatchMessage, "T", 0, []byte{0, 0, 0, 9, 1}, ""), remoting.RespMessageIllegal, "malformed batch"},
		{"empty batch", sendV2Req(remoting.ReqSendBatchMessage, "T", 0, nil, ""), remoting.RespMessageIllegal, "malformed batch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := invoke(t, c, tc.req)
			if resp.Code != tc.code || !strings.Contains(resp.Remark, tc.in) {
				t.Fatalf("got %d %q, want %d containing %q", resp.Code, resp.Remark, tc.code, tc.in)
			}
		})
	}
	// Nothing of the refused sends was stored.
	if got := tb.Broker.Store().MaxOffset("T", 0); got != 0 {
		t.Errorf("queue T/0 max offset %d after refused sends", got)
	}
	if got := tb.Broker.Store().MaxOffset(message.ScheduleTopic, 0); got != 0 {
		t.Errorf("a refused delayed send was stored (schedule queue max offset %d)", got)
	}
}

func TestSendRetryToDLQ(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	req := sendReq("%RETRY%G1", 0, []byte("dead"), props("DELAY", "19", "RETRY_TOPIC", "T"))
	req.SetExt("reconsumeTimes", "17")
	req.SetExt("maxReconsumeTimes", "16")
	resp := invoke(t, c, req)
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("DLQ send: %d %q", resp.Code, resp.Remark)
	}
	_, off, _ := message.ParseOffsetMessageID(resp.ExtStringOr("msgId", ""))
	rec, err := tb.Broker.Store().ReadAt(off)
	if err != nil {
		t.Fatal(err)
	}
	m, _, _ := message.Decode(rec)
	if m.Topic != "%DLQ%G1" || m.ReconsumeTimes != 17 {
		t.Errorf("stored in %s with reconsumeTimes %d", m.Topic, m.ReconsumeTimes)
	}
	if _, ok := message.Property(m.Properties, "DELAY"); ok {
		t.Error("DLQ message kept DELAY")
	}
}

func TestSendTransactionalDisabled(t *testing.T) {
	tb := testutil.RunBroker(t, testutil.WithConfig("transactionEnable", "false"))
	c := tb.Dial(t)
	createTopic(t, tb, c, "T", 1)
	resp := invoke(t, c, sendReq("T", 0, []byte("x"), props("TRAN_MSG", "true", "PGROUP", "PG")))
	if resp.Code != remoting.RespNoPermission || !strings.Contains(resp.Remark, "transactionEnable=false") {
		t.Fatalf("got %d %q", resp.Code, resp.Remark)
	}
	if got := tb.Broker.Store().MaxOffset(message.TransHalfTopic, 0); got != 0 {
		t.Fatalf("a refused half was stored (max offset %d)", got)
	}
}
