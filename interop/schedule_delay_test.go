package interop

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// arrivals records when each body first arrived at a push consumer.
type arrivals struct {
	mu   sync.Mutex
	at   map[string]time.Time
	msgs map[string][]*primitive.MessageExt
}

func newArrivals() *arrivals {
	return &arrivals{at: map[string]time.Time{}, msgs: map[string][]*primitive.MessageExt{}}
}

func (a *arrivals) handle(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range msgs {
		k := string(m.Body)
		if _, ok := a.at[k]; !ok {
			a.at[k] = now
		}
		a.msgs[k] = append(a.msgs[k], m)
	}
	return consumer.ConsumeSuccess, nil
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.at)
}

// startArrivalConsumer starts a clustering push consumer of group (""
// for a fresh one) on topic from the first offset and waits until it owns
// the topic's queues.
func startArrivalConsumer(t *testing.T, x *txmq, group, topic string, h func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error), opts ...consumer.Option) *pushConsumer {
	t.Helper()
	c := launchConsumer(t, x, group, topic, h, opts...)
	eventually(t, 15*time.Second, func() error {
		if !cliLog.rebalanced(c.Instance, topic) {
			return fmt.Errorf("consumer %s has not been allocated %s yet", c.Instance, topic)
		}
		return nil
	})
	return c
}

// launchConsumer is startArrivalConsumer without the wait.
func launchConsumer(t *testing.T, x *txmq, group, topic string, h func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error), opts ...consumer.Option) *pushConsumer {
	t.Helper()
	inst := uniq("ci")
	if group == "" {
		group = uniq("CG")
	}
	c := &pushConsumer{Group: group, Topic: topic, Instance: inst, In: newInbox()}
	all := append([]consumer.Option{
		consumer.WithNameServer(x.Namesrv()),
		consumer.WithGroupName(c.Group),
		consumer.WithInstance(inst),
		consumerFromFirst(),
		consumer.WithStrategy(func(g, cid string, mqAll []*primitive.MessageQueue, cidAll []string) []*primitive.MessageQueue {
			c.lastAlloc.Store(time.Now().UnixNano())
			return consumer.AllocateByAveragely(g, cid, mqAll, cidAll)
		}),
	}, opts...)
	pc, err := consumer.NewPushConsumer(all...)
	if err != nil {
		t.Fatalf("new push consumer: %v", err)
	}
	c.PushConsumer = pc
	if err := pc.Subscribe(topic, consumer.MessageSelector{Type: consumer.TAG, Expression: "*"}, h); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := pc.Start(); err != nil {
		t.Fatalf("start push consumer: %v", err)
	}
	t.Cleanup(func() { c.Close(t) })
	return c
}

// TestScheduleDelayLevels: with messageDelayLevel "1s 2s 3s", each level
// (and a level above the highest, clamped to it) arrives no earlier than
// due and within 1 s after, with its properties.
func TestScheduleDelayLevels(t *testing.T) {
	t.Parallel()
	x := startInProc(t, "messageDelayLevel", "1s 2s 3s")
	topic := uniq("T_delay")
	x.createTopic(t, topic, 2)
	a := newArrivals()
	startArrivalConsumer(t, x, "", topic, a.handle)
	p, _ := newProducer(t, x)
	want := map[string]time.Duration{}
	sent := map[string]time.Time{}
	for _, lvl := range []int{1, 2, 3, 7} {
		body := fmt.Sprintf("level-%d", lvl)
		msg := primitive.NewMessage(topic, []byte(body)).WithDelayTimeLevel(lvl).WithTag("tg").WithKeys([]string{body})
		sent[body] = time.Now()
		sendSync(t, p, msg)
		want[body] = time.Duration(min(lvl, 3)) * time.Second
	}
	eventually(t, 10*time.Second, func() error {
		if n := a.count(); n < len(want) {
			return fmt.Errorf("%d of %d delayed messages arrived", n, len(want))
		}
		return nil
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	for body, d := range want {
		got := a.at[body].Sub(sent[body])
		t.Logf("%s: due after %v, arrived after %v (late by %v)", body, d, got.Round(time.Millisecond), (got - d).Round(time.Millisecond))
		if got < d {
			t.Errorf("%s arrived after %v, before its delay %v", body, got, d)
		}
		if got > d+time.Second {
			t.Errorf("%s arrived after %v, more than 1 s after its delay %v", body, got, d)
		}
		m := a.msgs[body][0]
		if m.Topic != topic || m.GetTags() != "tg" || m.GetProperty("DELAY") != "" || m.GetProperty("REAL_TOPIC") != topic {
			t.Errorf("%s delivered with topic %s, tags %q, properties %v", body, m.Topic, m.GetTags(), m.GetProperties())
		}
		if len(a.msgs[body]) != 1 {
			t.Errorf("%s delivered %d times", body, len(a.msgs[body]))
		}
	}
}

// TestScheduleTimers: timer messages (the client's WithDelayTimestamp,
// TIMER_DELIVER_MS) at 10 delays between 1 and 5 s arrive no earlier than
// their time and within 1 s after; one beyond timerMaxDelaySec is refused
// with a clear error, and one in the past is delivered at once.
func TestScheduleTimers(t *testing.T) {
	t.Parallel()
	x := startInProc(t, "timerMaxDelaySec", "60")
	topic := uniq("T_timer")
	x.createTopic(t, topic, 4)
	a := newArrivals()
	startArrivalConsumer(t, x, "", topic, a.handle)
	p, _ := newProducer(t, x)
	due := map[string]time.Time{}
	for i := range 10 {
		d := time.Second + time.Duration(i)*444*time.Millisecond
		body := fmt.Sprintf("timer-%d", i)
		// The client sends the time in whole milliseconds (TIMER_DELIVER_MS):
		// that is the due time the broker must honour.
		at := time.UnixMilli(time.Now().Add(d).UnixMilli())
		due[body] = at
		sendSync(t, p, primitive.NewMessage(topic, []byte(body)).WithDelayTimestamp(at))
	}
	due["past"] = time.Now()
	sendSync(t, p, primitive.NewMessage(topic, []byte("past")).WithDelayTimestamp(time.Now().Add(-time.Hour)))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("too far")).WithDelayTimestamp(time.Now().Add(2*time.Minute)))
	cancel()
	if err == nil || !strings.Contains(err.Error(), "timerMaxDelaySec=60") {
		t.Errorf("a timer beyond timerMaxDelaySec: err %v", err)
	}

	eventually(t, 12*time.Second, func() error {
		if n := a.count(); n < len(due) {
			return fmt.Errorf("%d of %d timer messages arrived", n, len(due))
		}
		return nil
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	var late []time.Duration
	for body, at := range due {
		got := a.at[body].Sub(at)
		late = append(late, got)
		if got < 0 {
			t.Errorf("%s arrived %v before its time", body, -got)
		}
		if got > time.Second {
			t.Errorf("%s arrived %v after its time", body, got)
		}
		if m := a.msgs[body][0]; m.GetProperty("TIMER_DELIVER_MS") != "" {
			t.Errorf("%s delivered with TIMER_DELIVER_MS", body)
		}
	}
	slices.Sort(late)
	t.Logf("timer lateness at the consumer: min %v, median %v, max %v", late[0].Round(time.Millisecond),
		late[len(late)/2].Round(time.Millisecond), late[len(late)-1].Round(time.Millisecond))
}
