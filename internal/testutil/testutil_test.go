package testutil_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
)

func TestPoll(t *testing.T) {
	n := 0
	if err := testutil.Poll(time.Second, func() error {
		n++
		if n < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("Poll: %v after %d calls", err, n)
	}
	start := time.Now()
	err := testutil.Poll(30*time.Millisecond, func() error { return errors.New("never") })
	if err == nil || err.Error() != "never" || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("Poll timeout: %v after %v", err, time.Since(start))
	}
}

func TestRunBrokerAndRestart(t *testing.T) {
	ns := testutil.RunNamesrv(t)
	tb := testutil.RunBroker(t, testutil.WithNamesrv(ns), testutil.WithConfig("brokerName", "broker-t"),
		testutil.WithConfig("defaultTopicQueueNums", "2"))
	if tb.Namesrv != ns || tb.NamesrvAddr != ns.Addr().String() || tb.Config.BrokerName != "broker-t" || tb.Dir == "" {
		t.Fatalf("TestBroker %+v", tb)
	}
	if tb.BrokerAddr != tb.Broker.AdvertisedAddr() || tb.Broker.Addr().String() != tb.BrokerAddr {
		t.Fatalf("addresses: %s %s %s", tb.BrokerAddr, tb.Broker.AdvertisedAddr(), tb.Broker.Addr())
	}
	if rd, ok := ns.Registry().Route("TBW102"); !ok || rd.QueueDatas[0].WriteQueueNums != 2 {
		t.Fatalf("TBW102 route %+v", rd)
	}
	c := tb.Dial(t)
	ctx := context.Background()
	req := remoting.NewRequest(remoting.ReqGetMaxOffset, map[string]string{"topic": "TBW102", "queueId": "0"})
	if resp, err := c.Invoke(ctx, req); err != nil || resp.Code != remoting.RespSuccess {
		t.Fatalf("request: %v %v", resp, err)
	}
	old := tb.Broker
	tb.Restart(t)
	if tb.Broker == old {
		t.Fatal("Restart kept the old broker")
	}
	c2 := tb.Dial(t)
	req = remoting.NewRequest(remoting.ReqGetMaxOffset, map[string]string{"topic": "TBW102", "queueId": "0"})
	if resp, err := c2.Invoke(ctx, req); err != nil || resp.Code != remoting.RespSuccess {
		t.Fatalf("request after restart: %v %v", resp, err)
	}
	tb.Shutdown(t)
	tb.Shutdown(t) // idempotent
}

func TestNewTestLoggerAfterTest(t *testing.T) {
	var log interface{ Info(string, ...any) }
	t.Run("inner", func(t *testing.T) {
		l := testutil.NewTestLogger(t)
		l.Info("inside")
		log = l
	})
	log.Info("after the test ended: dropped, no panic")
}
