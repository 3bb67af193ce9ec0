package interop

import (
	"context"
	"fmt"
	"testing"
	"time"

	rocketmq "github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// TestPullConsumerFromOffset: the official pull consumer, assigned one
// chosen queue and seeked to a chosen offset (the client's lite-pull API:
// Assign, SeekOffset, Poll, ACK), receives exactly that queue's messages
// from that offset on, in order, with the broker's min and max offsets; a
// pull parked at the end of the queue (long polling) returns as soon as a
// new message arrives.
//
// PullFrom is not used: it writes the consumer's group name while the
// client's own rebalance goroutine reads it, a data race inside the client
// that -race reports (consumer/pull_consumer.go pull()).
func TestPullConsumerFromOffset(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_pull")
	const queues, perQueue = 4, 10
	x.createTopic(t, topic, queues)
	rd, err := x.route(topic)
	if err != nil {
		t.Fatal(err)
	}
	brokerName := rd.BrokerDatas[0].BrokerName

	// Fill each queue with bodies q<queue>-<offset>.
	p, _ := newProducer(t, x, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	send := func(q, i int) *primitive.SendResult {
		m := primitive.NewMessage(topic, fmt.Appendf(nil, "q%d-%d", q, i))
		m.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: brokerName, QueueId: q}
		res := sendSync(t, p, m)
		if res.MessageQueue.QueueId != q || res.QueueOffset != int64(i) {
			t.Fatalf("sent %q to queue %d at offset %d, want queue %d offset %d", m.Body, res.MessageQueue.QueueId, res.QueueOffset, q, i)
		}
		return res
	}
	for i := range perQueue {
		for q := range queues {
			send(q, i)
		}
	}

	const q, from = 2, 5
	mq := &primitive.MessageQueue{Topic: topic, BrokerName: brokerName, QueueId: q}
	pc, err := rocketmq.NewPullConsumer(
		consumer.WithNameServer(x.Namesrv()),
		consumer.WithGroupName(uniq("CG_pull")),
		consumer.WithInstance(uniq("pull")),
	)
	if err != nil {
		t.Fatalf("new pull consumer: %v", err)
	}
	if err := pc.Assign(topic, []*primitive.MessageQueue{mq}); err != nil {
		t.Fatalf("assign: %v", err)
	}
	pc.SeekOffset(mq, from)
	if err := pc.Start(); err != nil {
		t.Fatalf("start pull consumer: %v", err)
	}
	t.Cleanup(func() { _ = pc.Shutdown() })

	// poll returns the next batch, or nil when none came within d.
	poll := func(d time.Duration) []*primitive.MessageExt {
		cr, err := pc.Poll(context.Background(), d)
		if consumer.IsNoNewMsgError(err) {
			return nil
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		pc.ACK(context.Background(), cr, consumer.ConsumeSuccess)
		return cr.GetMsgList()
	}

	var got []*primitive.MessageExt
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < perQueue-from && time.Now().Before(deadline) {
		got = append(got, poll(time.Second)...)
	}
	var bodies []string
	for _, m := range got {
		bodies = append(bodies, string(m.Body))
	}
	if want := []string{"q2-5", "q2-6", "q2-7", "q2-8", "q2-9"}; fmt.Sprint(bodies) != fmt.Sprint(want) {
		t.Fatalf("queue %d from offset %d: got %v, want %v", q, from, bodies, want)
	}
	for i, m := range got {
		if m.Topic != topic || m.Queue.QueueId != q || m.QueueOffset != int64(from+i) {
			t.Errorf("message %d: %s queue %d offset %d, want %s queue %d offset %d", i, m.Topic, m.Queue.QueueId, m.QueueOffset, topic, q, from+i)
		}
		// The client copies the pull response's minOffset and maxOffset here.
		if m.GetProperty(primitive.PropertyMinOffset) != "0" || m.GetProperty(primitive.PropertyMaxOffset) != fmt.Sprint(perQueue) {
			t.Errorf("message %d: pull response min/max offsets %s/%s, want 0/%d", i,
				m.GetProperty(primitive.PropertyMinOffset), m.GetProperty(primitive.PropertyMaxOffset), perQueue)
		}
	}

	// At the end of the queue the consumer's pull is parked at the broker
	// (long polling, 20 s) and returns as soon as a message arrives.
	if extra := poll(500 * time.Millisecond); len(extra) > 0 {
		t.Fatalf("more messages than the queue holds: %v", extra)
	}
	sent := time.Now()
	send(q, perQueue)
	more := poll(15 * time.Second)
	took := time.Since(sent)
	if len(more) != 1 || string(more[0].Body) != fmt.Sprintf("q2-%d", perQueue) || more[0].QueueOffset != perQueue {
		t.Fatalf("after the new message: got %v", more)
	}
	if took > 5*time.Second {
		t.Errorf("the new message took %v to arrive: the parked pull was not woken", took)
	}
	t.Logf("parked pull delivered the new message %v after it was sent", took.Round(time.Millisecond))
}
