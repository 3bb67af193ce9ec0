package interop

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

// unknownListener answers UNKNOWN, in the local step and to every check:
// transactions whose outcome the application does not know yet.
type unknownListener struct{}

func (l *unknownListener) ExecuteLocalTransaction(*primitive.Message) primitive.LocalTransactionState {
	return primitive.UnkonwnState
}

func (l *unknownListener) CheckLocalTransaction(*primitive.MessageExt) primitive.LocalTransactionState {
	return primitive.UnkonwnState
}

// BenchmarkCheckStorm measures what checks cost the producer they go to
// (docs/transactions.md, "The check window"): the official transaction
// producer sends transactions whose outcome stays UNKNOWN, with 8 senders,
// to a real `txmq serve` checking every second (transactionCheckMax 1000,
// so none is discarded), with the check window off and at its default.
// It reports half sends per second and checks per second over
// TXMQ_STORM_SECONDS (default 5; the figures in the docs are over 50).
// Loopback only; not a pass/fail test.
//
//	cd interop && TXMQ_STORM_SECONDS=50 go test -race -run '^$' -bench CheckStorm -benchtime 1x
func BenchmarkCheckStorm(b *testing.B) {
	d := 5 * time.Second
	if v, err := strconv.Atoi(os.Getenv("TXMQ_STORM_SECONDS")); err == nil && v > 0 {
		d = time.Duration(v) * time.Second
	}
	for _, window := range []string{"0", "1024"} {
		b.Run("window="+window, func(b *testing.B) {
			srv := startTxmq(b, b.TempDir()+"/data", "--transactionTimeOut", "1000", "--transactionCheckInterval", "1000",
				"--transactionCheckMax", "1000", "--transactionCheckWindow", window,
				"--mappedFileSizeCommitLog", fmt.Sprint(16<<20))
			topic, group := uniq("T_storm"), uniq("PG_storm")
			srv.X.createTopic(b, topic, 4)
			l := &unknownListener{}
			p := startTxProducer(b, srv.X, group, l, producer.WithSendMsgTimeout(5*time.Second), producer.WithRetry(1))
			var sent, failed atomic.Int64
			stop := make(chan struct{})
			done := make(chan struct{}, 8)
			b.ResetTimer()
			for range 8 {
				go func() {
					defer func() { done <- struct{}{} }()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						res, err := p.SendMessageInTransaction(ctx, primitive.NewMessage(topic, []byte(fmt.Sprintf("u:%d", i))))
						cancel()
						if err != nil || res.Status != primitive.SendOK {
							failed.Add(1)
							continue
						}
						sent.Add(1)
					}
				}()
			}
			time.Sleep(d)
			close(stop)
			for range 8 {
				<-done
			}
			b.StopTimer()
			st := txStats(b, srv.X)
			b.ReportMetric(float64(sent.Load())/d.Seconds(), "sends/s")
			b.ReportMetric(float64(st.ChecksSent)/d.Seconds(), "checks/s")
			b.ReportMetric(float64(failed.Load()), "failed")
		})
	}
}
