package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
	"github.com/txmq/txmq/internal/txn"
)

// BenchmarkTxVsPlain measures, in the same run and against the same
// broker (testutil.RunBroker: ASYNC_FLUSH, loopback), full transactions
// per second (half SEND + an empty local step + END_TRANSACTION commit)
// against plain SENDs per second, with 1 KiB bodies and the same number of
// requests in flight, using txmq's own remoting client (one connection per
// 16 in flight). It reports msgs/s; tx/s with END_TRANSACTION sent oneway
// as the official client sends it, timed until every transaction is
// committed; txsync/s with every END awaited; and the ratios tx/plain
// (the target is at least 0.5) and txsync/plain. ns/op covers all phases.
//
//	go test -run '^$' -bench BenchmarkTxVsPlain -benchtime 20000x ./internal/broker/
func BenchmarkTxVsPlain(b *testing.B) {
	tb := testutil.RunBroker(b, testutil.WithConfig("transactionTimeOut", "600000"))
	const topic = "BenchTx"
	conns := make([]*remoting.Client, 4)
	for i := range conns {
		conns[i] = tb.Dial(b)
	}
	// The first send creates the topic (autoCreateTopicEnable).
	if err := txbPlain(conns[0], topic, 0, make([]byte, 16), "warm"); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	var seq atomic.Int64
	run := time.Now().UnixNano() & 0xffffffff
	key := func() string { return fmt.Sprintf("7F00000100%08X%014X", run, seq.Add(1)) }

	for _, inflight := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) {
			nconn := min(len(conns), (inflight+15)/16)
			plain := txbRun(b, b.N, inflight, func(w, i int) error {
				return txbPlain(conns[w%nconn], topic, int32(i%4), body, key())
			})
			// As the official client does it: END_TRANSACTION oneway; the
			// phase ends when every transaction is committed.
			t0 := time.Now()
			txbRun(b, b.N, inflight, func(w, i int) error {
				return txbTransaction(conns[w%nconn], topic, int32(i%4), body, key(), false)
			})
			txbDrain(b, conns[0])
			tx := time.Since(t0)
			// Every END awaited.
			txSync := txbRun(b, b.N, inflight, func(w, i int) error {
				return txbTransaction(conns[w%nconn], topic, int32(i%4), body, key(), true)
			})
			b.ReportMetric(float64(b.N)/plain.Seconds(), "msgs/s")
			b.ReportMetric(float64(b.N)/tx.Seconds(), "tx/s")
			b.ReportMetric(plain.Seconds()/tx.Seconds(), "tx/plain")
			b.ReportMetric(float64(b.N)/txSync.Seconds(), "txsync/s")
			b.ReportMetric(plain.Seconds()/txSync.Seconds(), "txsync/plain")
			if st := txbStats(b, conns[0]); st.Pending != 0 || st.HookMisses != 0 {
				b.Fatalf("after the run: %d transactions pending, %d hook misses", st.Pending, st.HookMisses)
			}
		})
	}
}

// txbRun runs n operations with inflight workers and returns the elapsed
// time.
func txbRun(b *testing.B, n, inflight int, op func(worker, i int) error) time.Duration {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	start := time.Now()
	for w := range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || failed.Load() != nil {
					return
				}
				if err := op(w, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	if p := failed.Load(); p != nil {
		b.Fatal(*p)
	}
	return d
}

func txbInvoke(c *remoting.Client, req *remoting.Command) (*remoting.Command, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err == nil && resp.Code != remoting.RespSuccess {
		err = fmt.Errorf("%s: code %d %s", remoting.RequestCodeName(req.Code), resp.Code, resp.Remark)
	}
	return resp, err
}

// txbSendReq is SEND_MESSAGE as the official Go client builds it.
func txbSendReq(topic string, qid int32, body []byte, uniqKey string, half bool) *remoting.Command {
	props := message.AppendProperty("", message.PropUniqClientMessageID, uniqKey)
	props = message.AppendProperty(props, message.PropWaitStoreMsgOK, "true")
	sysFlag := int32(0)
	if half {
		props = message.AppendProperty(props, message.PropTransactionPrepared, "true")
		props = message.AppendProperty(props, message.PropProducerGroup, "BenchPG")
		sysFlag = message.FlagTransPrepared
	}
	req := remoting.NewRequest(remoting.ReqSendMessage, map[string]string{
		"producerGroup": "BenchPG", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": strconv.Itoa(int(qid)), "sysFlag": strconv.Itoa(int(sysFlag)),
		"bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "flag": "0", "properties": props,
		"reconsumeTimes": "0", "unitMode": "false", "batch": "false"})
	req.Body = body
	return req
}

func txbPlain(c *remoting.Client, topic string, qid int32, body []byte, uniqKey string) error {
	_, err := txbInvoke(c, txbSendReq(topic, qid, body, uniqKey, false))
	return err
}

// txbTransaction is one full transaction: the half SEND, an empty local
// step, END_TRANSACTION commit with the offsets of the send result, as the
// official client sends it: oneway, or awaited when wait is set.
func txbTransaction(c *remoting.Client, topic string, qid int32, body []byte, uniqKey string, wait bool) error {
	resp, err := txbInvoke(c, txbSendReq(topic, qid, body, uniqKey, true))
	if err != nil {
		return err
	}
	_, off, err := message.ParseOffsetMessageID(resp.ExtStringOr("msgId", ""))
	if err != nil {
		return err
	}
	end := remoting.NewRequest(remoting.ReqEndTransaction, map[string]string{
		"producerGroup": "BenchPG", "tranStateTableOffset": resp.ExtStringOr("queueOffset", ""),
		"commitLogOffset": strconv.FormatInt(off, 10), "commitOrRollback": strconv.Itoa(int(message.FlagTransCommit)),
		"fromTransactionCheck": "false", "msgId": uniqKey, "transactionId": resp.ExtStringOr("transactionId", "")})
	if !wait {
		return c.InvokeOneway(end)
	}
	_, err = txbInvoke(c, end)
	return err
}

// txbDrain waits until no transaction is pending.
func txbDrain(b *testing.B, c *remoting.Client) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for txbStats(b, c).Pending != 0 {
		if time.Now().After(deadline) {
			b.Fatalf("transactions still pending a minute after the last END")
		}
		time.Sleep(time.Millisecond)
	}
}

func txbStats(b *testing.B, c *remoting.Client) txn.Stats {
	b.Helper()
	resp, err := txbInvoke(c, remoting.NewRequest(txn.ReqTxStats, nil))
	if err != nil {
		b.Fatal(err)
	}
	var sr txn.StatsResponse
	if err := json.Unmarshal(resp.Body, &sr); err != nil {
		b.Fatal(err)
	}
	return sr.Stats
}
