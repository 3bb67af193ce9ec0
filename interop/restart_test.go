package interop

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// TestBrokerRestartKeepsAcknowledged runs the real binary under SYNC_FLUSH
// while the official producer sends without pause: the broker is stopped
// with SIGTERM mid-stream and restarted on the same directory and ports,
// then killed with SIGKILL mid-stream and restarted again. Sends that fail
// while it is down are fine; every acknowledged message (by its unique
// body) must be there for a fresh consumer group afterwards.
func TestBrokerRestartKeepsAcknowledged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Small commit-log segments, so the stream crosses segment boundaries.
	srv := startTxmq(t, dir+"/data", "--mappedFileSizeCommitLog", fmt.Sprint(256<<10), "--maxMessageSize", fmt.Sprint(64<<10))
	x := srv.X
	topic := uniq("T_restart")
	x.createTopic(t, topic, 4)

	p, _ := newProducer(t, x, producer.WithSendMsgTimeout(2*time.Second), producer.WithRetry(1))
	var (
		mu      sync.Mutex
		acked   = map[string]bool{}
		ackN    atomic.Int64
		failN   atomic.Int64
		stop    = make(chan struct{})
		senders sync.WaitGroup
	)
	for s := range 2 {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf("r%d-%d", s, i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body)))
				cancel()
				if err != nil || res.Status != primitive.SendOK {
					failN.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				acked[body] = true
				mu.Unlock()
				ackN.Add(1)
			}
		}()
	}
	stopSenders := sync.OnceFunc(func() { close(stop); senders.Wait() })
	defer stopSenders()

	// waitAcks waits until k more sends have been acknowledged.
	waitAcks := func(k int64, phase string) {
		t.Helper()
		target := ackN.Load() + k
		eventually(t, 60*time.Second, func() error {
			if n := ackN.Load(); n < target {
				return fmt.Errorf("%s: %d acknowledged sends, waiting for %d (%d failed)", phase, n, target, failN.Load())
			}
			return nil
		})
	}

	waitAcks(300, "before SIGTERM")
	t0 := time.Now()
	srv.Stop()
	beforeTerm := ackN.Load()
	t.Logf("SIGTERM: clean exit after %v with %d acknowledged", time.Since(t0).Round(time.Millisecond), beforeTerm)
	srv.Start()
	waitAcks(300, "after the SIGTERM restart")

	beforeKill := ackN.Load()
	srv.Kill()
	t.Logf("SIGKILL with about %d acknowledged", beforeKill)
	srv.Start()
	waitAcks(300, "after the SIGKILL restart")
	stopSenders()

	mu.Lock()
	want := make([]string, 0, len(acked))
	for b := range acked {
		want = append(want, b)
	}
	mu.Unlock()
	t.Logf("%d sends acknowledged, %d failed", len(want), failN.Load())

	c := startPushConsumer(t, x, uniq("CG_restart"), topic, "", consumerFromFirst())
	var missing []string
	c.In.waitFor(t, 60*time.Second, "every acknowledged message", func() bool {
		missing = missing[:0]
		for _, b := range want {
			if !c.In.has(b) {
				missing = append(missing, b)
			}
		}
		return len(missing) == 0
	})
	t.Logf("fresh group received %d deliveries (%d distinct) covering all %d acknowledged", c.In.total(), c.In.distinct(), len(want))
}
