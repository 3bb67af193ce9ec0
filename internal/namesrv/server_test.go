package namesrv

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/remoting"
)

func startServer(t *testing.T, now func() time.Time) *Server {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:0", Now: now, ScanInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s
}

func TestServerRegisterAndRoute(t *testing.T) {
	s := startServer(t, nil)
	pool := remoting.NewPool(remoting.ClientConfig{})
	defer pool.Close()
	ctx := context.Background()
	addr := s.Addr().String()

	if _, err := GetRoute(ctx, pool, addr, "T"); !errors.Is(err, ErrTopicNotExist) {
		t.Fatalf("unknown topic: %v", err)
	}
	r := reg("broker-a", "127.0.0.1:10911", 0, "T", "TBW102")
	r.Timeout = time.Minute
	if err := RegisterBroker(ctx, pool, addr, r, DataVersion{Timestamp: 1}); err != nil {
		t.Fatal(err)
	}
	rd, err := GetRoute(ctx, pool, addr, "T")
	if err != nil || len(rd.QueueDatas) != 1 || rd.BrokerDatas[0].BrokerAddrs[0] != "127.0.0.1:10911" {
		t.Fatalf("route %+v %v", rd, err)
	}
	// The raw body must be compact: the official Go client parses brokerAddrs by hand.
	resp, err := pool.Invoke(ctx, addr, remoting.NewRequest(remoting.ReqGetRouteInfoByTopic, map[string]string{"topic": "T"}))
	if err != nil || strings.Contains(string(resp.Body), ": ") || !strings.Contains(string(resp.Body), `"brokerAddrs":{"0":"127.0.0.1:10911"}`) {
		t.Fatalf("route body %s %v", resp.Body, err)
	}
	resp, err = pool.Invoke(ctx, addr, remoting.NewRequest(remoting.ReqGetAllTopicListFromNameServer, nil))
	if err != nil || !strings.Contains(string(resp.Body), `"topicList":["T","TBW102"]`) {
		t.Fatalf("topic list %s %v", resp.Body, err)
	}
	resp, err = pool.Invoke(ctx, addr, remoting.NewRequest(remoting.ReqGetBrokerClusterInfo, nil))
	if err != nil || !strings.Contains(string(resp.Body), `"clusterAddrTable":{"C":["broker-a"]}`) {
		t.Fatalf("cluster info %s %v", resp.Body, err)
	}
	if err := UnregisterBroker(ctx, pool, addr, r); err != nil {
		t.Fatal(err)
	}
	if _, err := GetRoute(ctx, pool, addr, "T"); !errors.Is(err, ErrTopicNotExist) {
		t.Fatalf("after unregister: %v", err)
	}
}

func TestServerBadRequests(t *testing.T) {
	s := startServer(t, nil)
	pool := remoting.NewPool(remoting.ClientConfig{})
	defer pool.Close()
	ctx := context.Background()
	addr := s.Addr().String()
	tests := []*remoting.Command{
		remoting.NewRequest(remoting.ReqRegisterBroker, map[string]string{"brokerName": "b"}),
		func() *remoting.Command {
			c := remoting.NewRequest(remoting.ReqRegisterBroker, map[string]string{"brokerName": "b", "brokerAddr": "x:1"})
			c.Body = []byte("{not json")
			return c
		}(),
		remoting.NewRequest(remoting.ReqGetRouteInfoByTopic, nil),
		remoting.NewRequest(9999, nil),
	}
	for _, req := range tests {
		resp, err := pool.Invoke(ctx, addr, req)
		if err != nil || resp.Code == remoting.RespSuccess || resp.Remark == "" {
			t.Fatalf("code %d: resp %+v err %v", req.Code, resp, err)
		}
	}
	if len(s.Registry().Topics()) != 0 {
		t.Fatal("bad registration stored something")
	}
}

func TestServerExpiresBrokers(t *testing.T) {
	var mu = make(chan time.Time, 1)
	mu <- time.Unix(1000, 0)
	now := func() time.Time { t := <-mu; mu <- t; return t }
	s := startServer(t, now)
	s.Registry().Register(reg("broker-a", "1.1.1.1:1", 0, "T"))
	<-mu
	mu <- time.Unix(1000+121, 0)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := s.Registry().Route("T"); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("broker never expired")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
