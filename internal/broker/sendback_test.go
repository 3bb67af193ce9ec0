package broker_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/namesrv"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/schedule"
	"github.com/txmq/txmq/internal/testutil"
)

// pullAll pulls a queue from offset 0 without waiting.
func pullAll(t testing.TB, c *remoting.Client, topic string, qid int32) []*message.Ext {
	t.Helper()
	resp := invoke(t, c, pullReq(topic, qid, 0, pullOpts{}))
	if resp.Code != remoting.RespSuccess {
		return nil
	}
	return decode(t, resp.Body)
}

// waitPull waits until a queue holds n messages and returns them.
func waitPull(t testing.TB, c *remoting.Client, topic string, qid int32, n int, timeout time.Duration) []*message.Ext {
	t.Helper()
	var got []*message.Ext
	testutil.Eventually(t, timeout, func() error {
		got = pullAll(t, c, topic, qid)
		if len(got) < n {
			return fmt.Errorf("%s/%d holds %d messages, want %d", topic, qid, len(got), n)
		}
		return nil
	})
	return got
}

func sendBackReq(group string, offset int64, delayLevel, maxTimes int) *remoting.Command {
	return remoting.NewRequest(remoting.ReqConsumerSendMsgBack, map[string]string{
		"group": group, "offset": strconv.FormatInt(offset, 10), "delayLevel": strconv.Itoa(delayLevel),
		"originMsgId": "", "originTopic": "T", "unitMode": "false", "maxReconsumeTimes": strconv.Itoa(maxTimes),
		"bname": "broker-a",
	})
}

func TestSendDelayedAndTimer(t *testing.T) {
	tb := testutil.RunBroker(t, testutil.WithConfig("messageDelayLevel", "1s 2s"))
	c := tb.Dial(t)
	createTopic(t, tb, c, "T", 2)
	start := time.Now()
	resp := mustSend(t, c, "T", 1, "delayed", props("DELAY", "5", "TAGS", "a"))
	_, off, err := message.ParseOffsetMessageID(resp.ExtStringOr("msgId", ""))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := tb.Broker.Store().ReadAt(off)
	if err != nil {
		t.Fatal(err)
	}
	sm, _, _ := message.Decode(rec)
	// Level 5 is clamped to the highest (2): SCHEDULE_TOPIC_XXXX queue 1.
	if sm.Topic != message.ScheduleTopic || sm.QueueID != 1 {
		t.Fatalf("stored in %s/%d", sm.Topic, sm.QueueID)
	}
	mustSend(t, c, "T", 0, "timer", props("TIMER_DELAY_MS", "1500"))
	if got := pullAll(t, c, "T", 1); len(got) != 0 {
		t.Fatalf("delayed message visible at once: %d", len(got))
	}
	timer := waitPull(t, c, "T", 0, 1, 5*time.Second)
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("timer message visible after %v", el)
	}
	if _, ok := message.Property(timer[0].Properties, "TIMER_DELAY_MS"); ok {
		t.Error("delivered timer message keeps TIMER_DELAY_MS")
	}
	got := waitPull(t, c, "T", 1, 1, 5*time.Second)
	if el := time.Since(start); el < 2*time.Second {
		t.Fatalf("level-2 message visible after %v", el)
	}
	m := got[0]
	p := message.ParseProperties(m.Properties)
	if string(m.Body) != "delayed" || p["TAGS"] != "a" || p["REAL_TOPIC"] != "T" || p["REAL_QID"] != "1" || p["DELAY"] != "" {
		t.Fatalf("delivered %q with %v", m.Body, p)
	}
	if p[schedule.PropScheduledOffset] != strconv.FormatInt(off, 10) {
		t.Fatalf("marker %q, want %d", p[schedule.PropScheduledOffset], off)
	}
	// Tag filtering works on the delivered copy.
	resp = invoke(t, c, pullReq("T", 1, 0, pullOpts{sub: "a", sysFlag: 4}))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("tag pull: %d %s", resp.Code, resp.Remark)
	}
}

func TestSendBackRetryAndDLQ(t *testing.T) {
	tb := testutil.RunBroker(t, testutil.WithConfig("messageDelayLevel", "1s 1s 1s 1s 1s"))
	c := tb.Dial(t)
	createTopic(t, tb, c, "T", 1)
	mustSend(t, c, "T", 0, "work", props("KEYS", "k1", "UNIQ_KEY", "UQ1"))
	orig := pullAll(t, c, "T", 0)[0]

	// Unknown offset: SYSTEM_ERROR (the client falls back to a plain send).
	resp := invoke(t, c, sendBackReq("CG", orig.CommitLogOffset+1, 0, 16))
	if resp.Code != remoting.RespSystemError || !strings.Contains(resp.Remark, "look message by offset failed") {
		t.Fatalf("bad offset: %d %q", resp.Code, resp.Remark)
	}

	// delayLevel 0 → level 3 + 0 → %RETRY%CG after 1 s.
	start := time.Now()
	resp = invoke(t, c, sendBackReq("CG", orig.CommitLogOffset, 0, 16))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("send back: %d %q", resp.Code, resp.Remark)
	}
	if got := tb.Broker.Store().MaxOffset(message.ScheduleTopic, 2); got != 1 {
		t.Fatalf("schedule queue 2 (level 3) max offset %d", got)
	}
	retry := waitPull(t, c, "%RETRY%CG", 0, 1, 5*time.Second)[0]
	if el := time.Since(start); el < time.Second {
		t.Fatalf("retry visible after %v", el)
	}
	p := message.ParseProperties(retry.Properties)
	if retry.ReconsumeTimes != 1 || p["RETRY_TOPIC"] != "T" || p["ORIGIN_MESSAGE_ID"] != "UQ1" || p["KEYS"] != "k1" ||
		p["UNIQ_KEY"] != "UQ1" || string(retry.Body) != "work" || retry.BornTimestamp != orig.BornTimestamp {
		t.Fatalf("retry message: reconsume %d props %v", retry.ReconsumeTimes, p)
	}

	// Second failure with maxReconsumeTimes 1: reconsumeTimes 1 ≥ 1 → DLQ, at once.
	resp = invoke(t, c, sendBackReq("CG", retry.CommitLogOffset, 0, 1))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("send back to DLQ: %d %q", resp.Code, resp.Remark)
	}
	dlq := pullAll(t, c, "%DLQ%CG", 0)
	if len(dlq) != 1 {
		t.Fatalf("DLQ holds %d", len(dlq))
	}
	p = message.ParseProperties(dlq[0].Properties)
	if dlq[0].ReconsumeTimes != 2 || p["RETRY_TOPIC"] != "T" || p["ORIGIN_MESSAGE_ID"] != "UQ1" || p["DELAY"] != "" ||
		p[schedule.PropScheduledOffset] != "" {
		t.Fatalf("DLQ message: reconsume %d props %v", dlq[0].ReconsumeTimes, p)
	}
	tc, ok := topicConfig(t, c, "%DLQ%CG")
	if !ok || tc.ReadQueueNums != 1 || tc.WriteQueueNums != 1 || tc.Perm != 6 {
		t.Fatalf("DLQ topic config %+v (found %v)", tc, ok)
	}

	// delayLevel −1 (an orderly consumer giving up) → DLQ whatever the count.
	resp = invoke(t, c, sendBackReq("CG", orig.CommitLogOffset, -1, 16))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("send back -1: %d %q", resp.Code, resp.Remark)
	}
	if got := len(pullAll(t, c, "%DLQ%CG", 0)); got != 2 {
		t.Fatalf("DLQ holds %d after delayLevel -1", got)
	}
}

// TestSendRetryFallback: the client's fallback, a plain send to
// %RETRY%<group> with DELAY, is delayed (and goes to the DLQ when its
// reconsumeTimes exceed maxReconsumeTimes).
func TestSendRetryFallback(t *testing.T) {
	tb := testutil.RunBroker(t, testutil.WithConfig("messageDelayLevel", "1s 1s 1s 1s 1s"))
	c := tb.Dial(t)
	req := sendReq("%RETRY%G2", 0, []byte("again"), props("DELAY", "4", "RETRY_TOPIC", "T", "ORIGIN_MESSAGE_ID", "X"))
	req.SetExt("producerGroup", "CLIENT_INNER_PRODUCER")
	req.SetExt("reconsumeTimes", "2")
	req.SetExt("maxReconsumeTimes", "16")
	start := time.Now()
	if resp := invoke(t, c, req); resp.Code != remoting.RespSuccess {
		t.Fatalf("fallback send: %d %q", resp.Code, resp.Remark)
	}
	if got := pullAll(t, c, "%RETRY%G2", 0); len(got) != 0 {
		t.Fatal("retry visible at once")
	}
	m := waitPull(t, c, "%RETRY%G2", 0, 1, 5*time.Second)[0]
	if el := time.Since(start); el < time.Second {
		t.Fatalf("retry visible after %v", el)
	}
	if m.ReconsumeTimes != 2 {
		t.Fatalf("reconsumeTimes %d", m.ReconsumeTimes)
	}
}

// TestScheduleSurvivesRestart: a delayed message survives a clean
// restart and is delivered once.
func TestScheduleSurvivesRestart(t *testing.T) {
	tb := testutil.RunBroker(t, testutil.WithConfig("messageDelayLevel", "2s"))
	c := tb.Dial(t)
	createTopic(t, tb, c, "T", 1)
	mustSend(t, c, "T", 0, "before", props("DELAY", "1"))
	mustSend(t, c, "T", 0, "now", "")
	got := waitPull(t, c, "T", 0, 1, 5*time.Second)
	if string(got[0].Body) != "now" {
		t.Fatalf("first message %q", got[0].Body)
	}
	tb.Restart(t)
	c = tb.Dial(t)
	got = waitPull(t, c, "T", 0, 2, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if got = pullAll(t, c, "T", 0); len(got) != 2 || string(got[1].Body) != "before" {
		t.Fatalf("after restart: %d messages", len(got))
	}
}

func topicConfig(t testing.TB, c *remoting.Client, topic string) (namesrv.TopicConfig, bool) {
	t.Helper()
	resp := invoke(t, c, remoting.NewRequest(remoting.ReqGetAllTopicConfig, nil))
	var all namesrv.TopicConfigSerializeWrapper
	if resp.Code != remoting.RespSuccess || json.Unmarshal(resp.Body, &all) != nil {
		t.Fatalf("all topics: %d %q", resp.Code, resp.Body)
	}
	tc, ok := all.TopicConfigTable[topic]
	return tc, ok
}
