package interop

import (
	"context"
	"fmt"
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
	st := startSendStream(t, 2, func(seq int64) (string, bool) {
		body := fmt.Sprintf("r%d", seq)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body)))
		return body, err == nil && res.Status == primitive.SendOK
	})

	// waitAcks waits until k more sends have been acknowledged.
	waitAcks := func(k int64, phase string) {
		t.Helper()
		target := st.AckN.Load() + k
		eventually(t, 60*time.Second, func() error {
			if n := st.AckN.Load(); n < target {
				return fmt.Errorf("%s: %d acknowledged sends, waiting for %d (%d failed)", phase, n, target, st.FailN.Load())
			}
			return nil
		})
	}

	waitAcks(300, "before SIGTERM")
	t0 := time.Now()
	srv.Stop()
	beforeTerm := st.AckN.Load()
	t.Logf("SIGTERM: clean exit after %v with %d acknowledged", time.Since(t0).Round(time.Millisecond), beforeTerm)
	srv.Start()
	waitAcks(300, "after the SIGTERM restart")

	beforeKill := st.AckN.Load()
	srv.Kill()
	t.Logf("SIGKILL with about %d acknowledged", beforeKill)
	srv.Start()
	waitAcks(300, "after the SIGKILL restart")
	st.Stop()

	want := st.AckedBodies()
	t.Logf("%d sends acknowledged, %d failed", len(want), st.FailN.Load())

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
