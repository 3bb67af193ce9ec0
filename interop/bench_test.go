package interop

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// BenchmarkOfficialProducerSend is the end-to-end figure of issue 3: the
// official Go client's producer sends 1 KiB messages with 64 in flight
// (64 goroutines calling SendSync) to a real `txmq serve` process, and the
// benchmark reports messages per second and the p50/p99 latency of one
// send as the client sees it. Both flush modes run in one invocation so
// their numbers sit side by side. Loopback only; not a pass/fail test.
//
//	cd interop && go test -run '^$' -bench OfficialProducerSend -benchtime 100000x
func BenchmarkOfficialProducerSend(b *testing.B) {
	for _, mode := range []string{"ASYNC_FLUSH", "SYNC_FLUSH"} {
		b.Run(mode, func(b *testing.B) {
			p := startTxmq(b, b.TempDir(), "--flushDiskType", mode)
			prod, _ := newProducer(b, p.X)
			topic := uniq("Bench")
			body := make([]byte, 1024)
			// Create the topic and warm the route before timing.
			if _, err := prod.SendSync(context.Background(), primitive.NewMessage(topic, body)); err != nil {
				b.Fatalf("warm-up send: %v", err)
			}
			const inFlight = 64
			lat := make([]time.Duration, b.N)
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < inFlight; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if _, err := prod.SendSync(context.Background(), primitive.NewMessage(topic, body)); err != nil {
							failed.Add(1)
						}
						lat[i] = time.Since(t0)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d of %d sends failed", n, b.N)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			pct := func(q float64) float64 {
				return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			if b.N >= 1000 {
				b.Logf("%s: %d sends in %v: %.0f msgs/s, p50 %.2f ms, p99 %.2f ms, max %s",
					mode, b.N, elapsed.Round(time.Millisecond), float64(b.N)/elapsed.Seconds(), pct(0.5), pct(0.99), fmt.Sprint(lat[len(lat)-1].Round(time.Microsecond)))
			}
		})
	}
}
