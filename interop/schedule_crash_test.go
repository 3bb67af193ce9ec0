package interop

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// TestScheduleCrashRestart runs the real binary (SYNC_FLUSH): 10,000
// timer messages due over 20 s (the issue asks for 60 s; shortened to keep
// the suite fast, the mechanism is the same) are sent, then the broker is
// SIGKILLed and restarted twice while they fall due. Every message is
// written to its topic exactly once (the queues hold exactly 10,000
// messages: the broker never delivers twice), none is stored before its
// time, every one reaches the consumer, and the lateness (store time of
// the delivered copy − due time, and consumer arrival − due) is reported.
func TestScheduleCrashRestart(t *testing.T) {
	t.Parallel()
	srv := startTxmq(t, t.TempDir()+"/data")
	x := srv.X
	topic := uniq("T_crash")
	const queues, n = 4, 10_000
	const spread = 20 * time.Second
	x.createTopic(t, topic, queues)

	var (
		mu      sync.Mutex
		arrived = map[string]time.Time{}
		stored  = map[string]int64{}
		dupes   atomic.Int64
	)
	handler := func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			k := string(m.Body)
			if _, ok := arrived[k]; ok {
				dupes.Add(1) // the consumer may see a message again after a broker crash (offsets)
				continue
			}
			arrived[k] = now
			stored[k] = m.StoreTimestamp
		}
		return consumer.ConsumeSuccess, nil
	}
	startArrivalConsumer(t, x, "", topic, handler)

	p, _ := newProducer(t, x)
	base := time.Now().Add(6 * time.Second)
	due := make(map[string]int64, n)
	var dueMu sync.Mutex
	send := func(i int64) error {
		at := base.Add(time.Duration(i) * spread / n)
		body := fmt.Sprintf("c-%d-%d", i, at.UnixMilli())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte(body)).WithDelayTimestamp(at))
		cancel()
		if err != nil {
			return fmt.Errorf("send %d: %w", i, err)
		}
		dueMu.Lock()
		due[body] = at.UnixMilli()
		dueMu.Unlock()
		return nil
	}
	// The first alone: see sendBodies (the official client's route race).
	if err := send(0); err != nil {
		t.Fatal(err)
	}
	var next atomic.Int64
	next.Store(1)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				if err := send(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if time.Now().After(base) {
		t.Logf("sending took until %v after the first due time", time.Since(base).Round(time.Millisecond))
	}
	t.Logf("%d timer messages sent; due from %s over %v", n, base.Format("15:04:05.000"), spread)

	// Crash twice while they fall due.
	for i, at := range []time.Duration{5 * time.Second, 12 * time.Second} {
		time.Sleep(time.Until(base.Add(at)))
		srv.Kill()
		down := time.Now()
		time.Sleep(time.Second) // some fall due while it is down
		srv.Start()
		t.Logf("crash %d: SIGKILL at +%v, back after %v", i+1, at, time.Since(down).Round(time.Millisecond))
	}

	eventually(t, 60*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(arrived) < n {
			return fmt.Errorf("%d of %d timer messages arrived", len(arrived), n)
		}
		return nil
	})
	total := int64(0)
	for q := range queues {
		total += x.maxOffset(t, topic, q)
	}
	if total != n {
		t.Errorf("the topic holds %d messages, want exactly %d (each scheduled message delivered once)", total, n)
	}
	mu.Lock()
	defer mu.Unlock()
	var storeLate, arriveLate []int64
	early := 0
	for body, d := range due {
		if !strings.HasPrefix(body, "c-") {
			continue
		}
		st := stored[body]
		if st < d {
			early++
			if early <= 5 {
				t.Errorf("%s stored at %d, %d ms before its time", body, st, d-st)
			}
		}
		storeLate = append(storeLate, st-d)
		arriveLate = append(arriveLate, arrived[body].UnixMilli()-d)
	}
	pct := func(v []int64) string {
		slices.Sort(v)
		return fmt.Sprintf("p50 %d ms, p99 %d ms, max %d ms", v[len(v)/2], v[len(v)*99/100], v[len(v)-1])
	}
	t.Logf("lateness, store time of the delivered copy − due: %s", pct(storeLate))
	t.Logf("lateness, consumer arrival − due: %s", pct(arriveLate))
	t.Logf("consumer-side duplicates (re-pulled after a crash; the log holds %d copies): %d", total, dupes.Load())
}
