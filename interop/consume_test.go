package interop

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/txmq/txmq/internal/remoting"
)

func consumerFromFirst() consumer.Option {
	return consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset)
}

// queuesOf returns the sorted queue ids that deliveries came from.
func queuesOf(msgs []*primitive.MessageExt) []int {
	seen := map[int]bool{}
	for _, m := range msgs {
		seen[m.Queue.QueueId] = true
	}
	out := make([]int, 0, len(seen))
	for q := range seen {
		out = append(out, q)
	}
	sort.Ints(out)
	return out
}

// TestClusteringReceivesEverything: one push consumer in clustering mode
// receives each of 500 messages spread over 4 queues exactly once.
func TestClusteringReceivesEverything(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_all")
	x.createTopic(t, topic, 4)
	c := startPushConsumer(t, x, uniq("CG_all"), topic, "")
	p, _ := newProducer(t, x)

	const n = 500
	want := bodies("m", n)
	sendBodies(t, p, topic, want, 4)

	c.In.waitDistinct(t, n, 60*time.Second)
	// Once the stored offsets reach the end of every queue, everything
	// pulled has been consumed: a second delivery would have shown by now.
	x.waitCommitted(t, c.Group, topic, 20*time.Second)
	for _, b := range want {
		if k := len(c.In.get(b)); k != 1 {
			t.Errorf("message %s delivered %d times, want once", b, k)
		}
	}
	if d := c.In.duplicates(); d != 0 {
		t.Errorf("%d duplicate deliveries", d)
	}
	if qs := queuesOf(c.In.snapshot()); len(qs) != 4 {
		t.Errorf("messages came from queues %v, want all 4", qs)
	}
}

// TestClusteringSplitAndTakeOver: two consumers of one group share the
// queues (both receive messages, from disjoint queues once settled); when
// one shuts down the other takes over its queues and nothing acknowledged
// by the producer is lost. Duplicates are allowed around the hand-over
// only (at-least-once) and are reported.
func TestClusteringSplitAndTakeOver(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_split")
	group := uniq("CG_split")
	x.createTopic(t, topic, 4)
	a := startPushConsumer(t, x, group, topic, "")
	b := startPushConsumer(t, x, group, topic, "")
	p, _ := newProducer(t, x)

	// A producer sending continuously, one message every few milliseconds.
	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		done  = make(chan struct{})
		fails atomic.Int64
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			body := fmt.Sprintf("s-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body)))
			cancel()
			if err != nil || res.Status != primitive.SendOK {
				fails.Add(1)
				continue
			}
			mu.Lock()
			acked = append(acked, body)
			mu.Unlock()
			time.Sleep(3 * time.Millisecond)
		}
	}()
	defer func() {
		select {
		case <-done:
		default:
			close(stop)
			<-done
		}
	}()

	// Both members receive messages. After the rebalance has settled (a
	// window in which neither receives from a queue the other also does),
	// their queues are disjoint and cover all four.
	a.In.waitFor(t, 30*time.Second, "consumer A to receive", func() bool { return a.In.total() > 0 })
	b.In.waitFor(t, 30*time.Second, "consumer B to receive", func() bool { return b.In.total() > 0 })
	var settledA, settledB []int
	eventually(t, 30*time.Second, func() error {
		na, nb := a.In.total(), b.In.total()
		time.Sleep(500 * time.Millisecond)
		qa, qb := queuesOf(a.In.snapshot()[na:]), queuesOf(b.In.snapshot()[nb:])
		if len(qa) == 0 || len(qb) == 0 || len(qa)+len(qb) != 4 || overlap(qa, qb) {
			return fmt.Errorf("in the last 500 ms consumer A got queues %v and B got %v: want a disjoint split of 4", qa, qb)
		}
		settledA, settledB = qa, qb
		return nil
	})
	t.Logf("split: A consumes queues %v, B consumes queues %v", settledA, settledB)

	// A leaves. B takes over A's queues.
	handOver := time.Now()
	a.Close(t)
	nb := b.In.total()
	b.In.waitFor(t, 40*time.Second, "consumer B to take over A's queues", func() bool {
		qs := queuesOf(b.In.snapshot()[nb:])
		return len(qs) == 4
	})
	t.Logf("B received from all 4 queues %v after A's shutdown", time.Since(handOver).Round(time.Millisecond))

	// Stop producing; everything acknowledged must arrive at A or B.
	close(stop)
	<-done
	mu.Lock()
	all := append([]string(nil), acked...)
	mu.Unlock()
	eventually(t, 30*time.Second, func() error {
		var missing []string
		for _, body := range all {
			if !a.In.has(body) && !b.In.has(body) {
				missing = append(missing, body)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%d of %d acknowledged messages not received by either consumer, e.g. %v", len(missing), len(all), missing[:min(5, len(missing))])
		}
		return nil
	})
	x.waitCommitted(t, group, topic, 20*time.Second)
	dups := 0
	for _, body := range all {
		if k := len(a.In.get(body)) + len(b.In.get(body)); k > 1 {
			dups += k - 1
		}
	}
	t.Logf("%d messages acknowledged (%d sends failed), A received %d, B received %d, %d duplicate deliveries",
		len(all), fails.Load(), a.In.total(), b.In.total(), dups)
	// Duplicates are at-least-once noise around the hand-over, bounded by
	// what A had in flight: never a large share.
	if dups > len(all)/4 {
		t.Errorf("%d duplicates among %d messages: more than the hand-over explains", dups, len(all))
	}
}

func overlap(a, b []int) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// TestBroadcasting: two consumers of one group in broadcasting mode each
// receive every message.
func TestBroadcasting(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_bc")
	group := uniq("CG_bc")
	x.createTopic(t, topic, 4)
	a := startBroadcastConsumer(t, x, group, topic)
	b := startBroadcastConsumer(t, x, group, topic)
	p, _ := newProducer(t, x)

	const n = 100
	want := bodies("b", n)
	sendBodies(t, p, topic, want, 2)
	a.In.waitDistinct(t, n, 30*time.Second)
	b.In.waitDistinct(t, n, 30*time.Second)
	for _, body := range want {
		if !a.In.has(body) || !b.In.has(body) {
			t.Errorf("message %s: A has it %v, B has it %v; want both", body, a.In.has(body), b.In.has(body))
		}
	}
	t.Logf("A: %d deliveries, B: %d deliveries of %d messages", a.In.total(), b.In.total(), n)
}

// TestTagFilter: a subscription "TagA || TagB" receives exactly the TagA
// and TagB messages, never TagC ones.
func TestTagFilter(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_tag")
	x.createTopic(t, topic, 2)
	c := startPushConsumer(t, x, uniq("CG_tag"), topic, "TagA || TagB")
	p, _ := newProducer(t, x)

	const n = 15
	wantN := 0
	for i := range n {
		for _, tag := range []string{"TagA", "TagB", "TagC"} {
			m := primitive.NewMessage(topic, fmt.Appendf(nil, "%s-%d", tag, i))
			m.WithTag(tag)
			sendSync(t, p, m)
			if tag != "TagC" {
				wantN++
			}
		}
	}
	c.In.waitDistinct(t, wantN, 30*time.Second)
	got := map[string]int{}
	for _, m := range c.In.snapshot() {
		got[m.GetTags()]++
		if !strings.HasPrefix(string(m.Body), m.GetTags()+"-") {
			t.Errorf("message %q carries tag %q", m.Body, m.GetTags())
		}
	}
	if got["TagA"] != n || got["TagB"] != n || got["TagC"] != 0 || len(got) != 2 {
		t.Errorf("received by tag %v, want TagA:%d TagB:%d and no TagC", got, n, n)
	}

	// The client filters by tag again on its side, so the above would pass
	// even if the broker ignored the subscription. The push consumer sends
	// no subscription with its pulls: the broker must filter by the one the
	// client registered in its heartbeat. Pull as that group without a
	// subscription and check what the broker itself returns.
	for q := range 2 {
		resp, err := x.invoke(remoting.ReqPullMessage, map[string]string{
			"consumerGroup": c.Group, "topic": topic, "queueId": fmt.Sprint(q), "queueOffset": "0",
			"maxMsgNums": "32", "sysFlag": "0", "commitOffset": "0", "suspendTimeoutMillis": "0",
			"subscription": "", "subVersion": "0", "expressionType": "TAG",
		})
		if err != nil {
			t.Fatalf("raw pull: %v", err)
		}
		if resp.Code != remoting.RespSuccess {
			t.Fatalf("raw pull of queue %d as %s: code %d %s", q, c.Group, resp.Code, resp.Remark)
		}
		for _, m := range primitive.DecodeMessage(resp.Body) {
			if tag := m.GetTags(); tag != "TagA" && tag != "TagB" {
				t.Errorf("broker returned a %s message (%q) to group %s subscribed to \"TagA || TagB\"", tag, m.Body, c.Group)
			}
		}
	}
}

// TestConsumerRestartResumes: a consumer consumes N messages and commits
// its offsets; a new consumer of the same group started later receives
// the M messages sent meanwhile and none of the first N.
func TestConsumerRestartResumes(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_resume")
	group := uniq("CG_resume")
	x.createTopic(t, topic, 4)
	p, _ := newProducer(t, x)

	const n, m = 40, 30
	first := bodies("first", n)
	c1 := startPushConsumer(t, x, group, topic, "")
	sendBodies(t, p, topic, first, 2)
	c1.In.waitDistinct(t, n, 30*time.Second)
	// The client commits every 5 s: wait for the broker to hold offsets at
	// the end of every queue, then stop.
	x.waitCommitted(t, group, topic, 20*time.Second)
	c1.Close(t)

	second := bodies("second", m)
	sendBodies(t, p, topic, second, 2)
	c2 := startPushConsumer(t, x, group, topic, "")
	c2.In.waitDistinct(t, m, 30*time.Second)
	x.waitCommitted(t, group, topic, 20*time.Second)
	for _, body := range second {
		if !c2.In.has(body) {
			t.Errorf("restarted consumer did not receive %s", body)
		}
	}
	var again []string
	for _, body := range first {
		if c2.In.has(body) {
			again = append(again, body)
		}
	}
	if len(again) > 0 {
		t.Errorf("restarted consumer re-received %d already committed messages, e.g. %v", len(again), again[:min(5, len(again))])
	}
	if d := c2.In.duplicates(); d != 0 {
		t.Errorf("restarted consumer: %d duplicate deliveries", d)
	}
}

// TestNewGroupReadsEarlierMessages: messages are produced first (to a topic
// created by that first send); a consumer group started afterwards with
// the client's default CONSUME_FROM_LAST_OFFSET still receives them,
// because the broker answers a new group's offset query with 0 while the
// queue still begins at 0 (Apache RocketMQ's rule).
func TestNewGroupReadsEarlierMessages(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_early")
	p, _ := newProducer(t, x)
	const n = 24
	want := bodies("early", n)
	sendBodies(t, p, topic, want, 1)

	c := startPushConsumer(t, x, uniq("CG_early"), topic, "") // default: CONSUME_FROM_LAST_OFFSET
	c.In.waitDistinct(t, n, 30*time.Second)
	for _, body := range want {
		if !c.In.has(body) {
			t.Errorf("new group did not receive earlier message %s", body)
		}
	}
}
