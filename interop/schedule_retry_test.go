package interop

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/txmq/txmq/internal/cli"
)

// TestScheduleRetryThenDLQ: a consumer that always answers "retry later"
// sees the message again with reconsume times 0, 1, 2, each time after a
// longer delay (levels 3 and 4 of "1s 1s 1s 2s": 1 s, then 2 s); with
// WithMaxReconsumeTimes(2) the third failure sends it to %DLQ%<group>,
// where `txmq admin dlq list` shows it and `dlq resend` brings it back to
// the topic.
func TestScheduleRetryThenDLQ(t *testing.T) {
	t.Parallel()
	x := startInProc(t, "messageDelayLevel", "1s 1s 1s 2s 3s")
	topic := uniq("T_retry")
	x.createTopic(t, topic, 1)

	type delivery struct {
		at       time.Time
		reconsum int32
		topic    string
		retryTop string
		msgID    string
	}
	var (
		mu   sync.Mutex
		seen []delivery
	)
	handler := func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if string(m.Body) != "fail me" {
				return consumer.ConsumeSuccess, nil
			}
			seen = append(seen, delivery{at: time.Now(), reconsum: m.ReconsumeTimes, topic: m.Topic,
				retryTop: m.GetProperty("RETRY_TOPIC"), msgID: m.MsgId})
		}
		return consumer.ConsumeRetryLater, nil
	}
	// The official client looks up the route of %RETRY%<group> when it
	// starts, before its first heartbeat makes the broker create that
	// topic, and then refreshes routes only every 30 s: until then it does
	// not pull its retries (the same happens with Apache RocketMQ). Create
	// the retry topic first so the test does not wait for that refresh.
	group := uniq("CG")
	x.createTopic(t, "%RETRY%"+group, 1)
	c := startArrivalConsumer(t, x, group, topic, handler, consumer.WithMaxReconsumeTimes(2))
	p, _ := newProducer(t, x)
	res := sendSync(t, p, primitive.NewMessage(topic, []byte("fail me")).WithKeys([]string{"retry-key"}))

	// The DLQ shows up in `txmq admin dlq list <group>`.
	admin := func(args ...string) (int, string) {
		var out, errs bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"admin", "--namesrv", x.NamesrvAdr}, args...), &out, &errs)
		return code, out.String() + errs.String()
	}
	eventually(t, 20*time.Second, func() error {
		code, out := admin("dlq", "list", c.Group)
		if code != 0 || !strings.Contains(out, res.MsgID) {
			mu.Lock()
			defer mu.Unlock()
			return fmt.Errorf("dlq list: code %d: %s (deliveries so far: %+v)", code, out, seen)
		}
		return nil
	})
	mu.Lock()
	got := append([]delivery(nil), seen...)
	mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("the message was delivered %d times, want 3 (reconsume 0, 1, 2): %+v", len(got), got)
	}
	for i, d := range got {
		if d.reconsum != int32(i) || d.topic != topic || d.msgID != res.MsgID {
			t.Errorf("delivery %d: reconsume %d, topic %s, id %s; want %d, %s, %s", i, d.reconsum, d.topic, d.msgID, i, topic, res.MsgID)
		}
		if i > 0 && d.retryTop != topic {
			t.Errorf("delivery %d: RETRY_TOPIC %q", i, d.retryTop)
		}
	}
	gap1, gap2 := got[1].at.Sub(got[0].at), got[2].at.Sub(got[1].at)
	t.Logf("retry delays: %v, then %v", gap1.Round(time.Millisecond), gap2.Round(time.Millisecond))
	if gap1 < time.Second || gap2 < 2*time.Second || gap2 <= gap1 {
		t.Errorf("retry delays %v then %v: want ≥ 1 s then ≥ 2 s (growing)", gap1, gap2)
	}
	_, out := admin("dlq", "list", c.Group)
	t.Logf("txmq admin dlq list %s:\n%s", c.Group, out)
	if !strings.Contains(out, topic) || !strings.Contains(out, "1 message(s)") {
		t.Errorf("dlq list does not show the message with its original topic:\n%s", out)
	}
	// Resent to its topic, it is consumed again (as a fresh message).
	code, out := admin("dlq", "resend", c.Group, res.MsgID)
	if code != 0 || !strings.Contains(out, "resent "+res.MsgID+" to "+topic) {
		t.Fatalf("dlq resend: code %d: %s", code, out)
	}
	eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(seen) < 4 {
			return fmt.Errorf("resent message not consumed yet (%d deliveries)", len(seen))
		}
		if seen[3].reconsum != 0 || seen[3].msgID != res.MsgID {
			return fmt.Errorf("resent delivery: reconsume %d id %s", seen[3].reconsum, seen[3].msgID)
		}
		return nil
	})
}
