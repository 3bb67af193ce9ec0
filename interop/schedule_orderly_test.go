package interop

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// orderLog checks per-queue order across every consumer of a group: a
// message may arrive only after all its queue predecessors arrived (a
// later one arriving first is an order violation or a loss); an earlier
// one arriving again is a duplicate (allowed around a hand-over).
type orderLog struct {
	mu         sync.Mutex
	next       map[int]int // per queue: the next sequence number expected
	dups       map[int]int
	violations []string
	total      int
	by         map[string]int // deliveries per consumer
}

func newOrderLog() *orderLog {
	return &orderLog{next: map[int]int{}, dups: map[int]int{}, by: map[string]int{}}
}

func (l *orderLog) handler(who string) func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
	return func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, m := range msgs {
			q, seq, err := parseOrdered(string(m.Body))
			if err != nil {
				l.violations = append(l.violations, err.Error())
				continue
			}
			if q != m.Queue.QueueId {
				l.violations = append(l.violations, fmt.Sprintf("%s: body of queue %d arrived from queue %d", who, q, m.Queue.QueueId))
			}
			l.total++
			l.by[who]++
			switch {
			case seq == l.next[q]:
				l.next[q]++
			case seq < l.next[q]:
				l.dups[q]++
			default:
				if len(l.violations) < 20 {
					l.violations = append(l.violations, fmt.Sprintf("%s: queue %d: %d arrived before %d", who, q, seq, l.next[q]))
				}
			}
		}
		l.mu.Unlock()
		time.Sleep(500 * time.Microsecond) // a consumer that does some work: hand-overs happen mid-queue
		l.mu.Lock()
		return consumer.ConsumeSuccess, nil
	}
}

func (l *orderLog) consumed(who string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.by[who]
}

func (l *orderLog) done(queues, perQueue int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for q := range queues {
		n += min(l.next[q], perQueue)
	}
	return n
}

func parseOrdered(body string) (q, seq int, err error) {
	qs, ss, ok := strings.Cut(body, "-")
	if ok {
		q, err = strconv.Atoi(strings.TrimPrefix(qs, "q"))
		if err == nil {
			seq, err = strconv.Atoi(ss)
		}
	}
	if !ok || err != nil {
		return 0, 0, fmt.Errorf("unexpected body %q", body)
	}
	return q, seq, nil
}

// TestScheduleOrderlyHandOver: 10,000 messages put on 4 queues by the
// producer's queue selector are consumed by 2 orderly push consumers of
// one group, one of them shut down and replaced midway: per queue, every
// message arrives after all its predecessors and none is lost;
// duplicates (re-deliveries around the hand-over) are counted and
// reported.
//
// The official client's orderly consumer reads its message cache without
// its lock (processQueue.takeMessages calls msgCache.Empty() unlocked), a
// data race inside the client that -race reports. Under -race the test
// therefore runs itself in a child `go test` built without -race (the
// broker code it drives is race-tested by every other test).
func TestScheduleOrderlyHandOver(t *testing.T) {
	t.Parallel()
	if raceEnabled {
		runWithoutRace(t, "TestScheduleOrderlyHandOver")
		return
	}
	x := startInProc(t)
	topic := uniq("T_orderly")
	const queues, perQueue = 4, 2500
	x.createTopic(t, topic, queues)
	rd, err := x.route(topic)
	if err != nil {
		t.Fatal(err)
	}
	brokerName := rd.BrokerDatas[0].BrokerName

	log := newOrderLog()
	group := uniq("CG_orderly")
	start := func(who string) *pushConsumer {
		return launchConsumer(t, x, group, topic, log.handler(who), consumer.WithConsumerOrder(true))
	}
	// The second member gets its queues once the first gives them up:
	// the official client does not unlock queues its rebalance takes away,
	// and txmq releases them when the owner's next lock-all (every 20 s)
	// leaves them out (see internal/broker/clients/lock.go).
	a := start("a")
	b := start("b")

	p, _ := newProducer(t, x, producer.WithQueueSelector(producer.NewManualQueueSelector()))
	send := func(q, seq int) error {
		msg := primitive.NewMessage(topic, []byte(fmt.Sprintf("q%d-%d", q, seq)))
		msg.Queue = &primitive.MessageQueue{Topic: topic, BrokerName: brokerName, QueueId: q}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := p.SendSync(ctx, msg)
		cancel()
		if err == nil && res.MessageQueue.QueueId != q {
			err = fmt.Errorf("sent to queue %d, selector chose %d", res.MessageQueue.QueueId, q)
		}
		if err != nil {
			return fmt.Errorf("send q%d-%d: %w", q, seq, err)
		}
		return nil
	}
	// Queue 0's first alone: see sendBodies (the official client's route
	// race); each queue's messages still go in order.
	if err := send(0, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, queues)
	for q := range queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := range perQueue {
				if q == 0 && seq == 0 {
					continue // sent above
				}
				if err := send(q, seq); err != nil {
					errs <- err
					return
				}
			}
		}()
	}

	// Midway, once b is consuming its queues, b leaves (its queues are
	// unlocked on shutdown) and a new member joins; a takes b's queues,
	// then gives half of them to the newcomer.
	eventually(t, 60*time.Second, func() error {
		if n := log.consumed("b"); n < 300 {
			return fmt.Errorf("b has consumed %d messages (%d of %d in order so far)", n, log.done(queues, perQueue), queues*perQueue)
		}
		return nil
	})
	b.Close(t)
	t.Logf("consumer b shut down after it consumed %d; %d of %d consumed in order", log.consumed("b"), log.done(queues, perQueue), queues*perQueue)
	c := start("c")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, func() error {
		if n := log.done(queues, perQueue); n < queues*perQueue {
			return fmt.Errorf("%d of %d consumed in order", n, queues*perQueue)
		}
		return nil
	})
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, v := range log.violations {
		t.Error(v)
	}
	dups := 0
	for _, d := range log.dups {
		dups += d
	}
	t.Logf("orderly: %d messages over %d queues, %d deliveries (per consumer %v), %d duplicates around the hand-over (per queue %v)",
		queues*perQueue, queues, log.total, log.by, dups, log.dups)
	_ = a
	_ = c
}

// runWithoutRace runs one test of this package in a child `go test`
// without -race (and -short: no binary build) and reports its output.
func runWithoutRace(t *testing.T, name string) {
	bound(t, 170*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 160*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-short", "-count=1", "-v", "-run", "^"+name+"$", ".")
	out, err := cmd.CombinedOutput()
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, name) || strings.Contains(line, ".go:") && !strings.Contains(line, "testutil.go") {
			keep = append(keep, line)
		}
	}
	t.Logf("%s without -race (the official orderly consumer races with itself):\n%s", name, strings.Join(keep, "\n"))
	if err != nil {
		t.Fatalf("%s failed without -race: %v\n%s", name, err, tail(string(out), 80))
	}
}
