package clients

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/testutil/testkit"

	"github.com/txmq/txmq/internal/remoting"
)

// testLogger sends logs to t.Log, and drops them once the test is over.
func testLogger(t *testing.T) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() { // registered first, so it runs last
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// env is a Manager behind a real remoting server on 127.0.0.1:0.
type env struct {
	t     *testing.T
	m     *Manager
	srv   *remoting.Server
	clock *testkit.Clock
	log   *slog.Logger

	mu        sync.Mutex
	groupHook []ConsumerGroupInfo
	producers []string
}

func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	e := &env{t: t, clock: testkit.NewClock(time.Unix(1_700_000_000, 0)), log: testLogger(t)}
	cfg := Config{
		Logger: e.log,
		Now:    e.clock.Now,
		OnConsumerGroup: func(group string, info ConsumerGroupInfo) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.groupHook = append(e.groupHook, info)
			return nil
		},
		OnProducerRegistered: func(group string) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.producers = append(e.producers, group)
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := remoting.NewServer(remoting.ServerConfig{Addr: "127.0.0.1:0", Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.m = NewManager(cfg)
	e.m.Register(srv)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	e.m.Start()
	t.Cleanup(func() {
		_ = srv.Close()
		e.m.Close()
	})
	return e
}

// tclient is one test connection, recording the notifications it gets.
type tclient struct {
	t     *testing.T
	c     *remoting.Client
	id    string
	notes chan string
}

func (e *env) dial(id string) *tclient {
	e.t.Helper()
	tc := &tclient{t: e.t, id: id, notes: make(chan string, 64)}
	c, err := remoting.Dial(context.Background(), e.srv.Addr().String(), remoting.ClientConfig{
		Logger: e.log,
		Handlers: map[int32]remoting.Handler{
			remoting.ReqNotifyConsumerIDsChanged: func(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
				tc.notes <- req.ExtStringOr("consumerGroup", "")
				return nil, nil
			},
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	tc.c = c
	e.t.Cleanup(func() { _ = c.Close() })
	return tc
}

func (tc *tclient) invoke(code int32, ext map[string]string, body []byte) *remoting.Command {
	tc.t.Helper()
	req := remoting.NewRequest(code, ext)
	req.Body = body
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := tc.c.Invoke(ctx, req)
	if err != nil {
		tc.t.Fatalf("invoke %s: %v", remoting.RequestCodeName(code), err)
	}
	return resp
}

// heartbeat sends a G2-style heartbeat for tc.id and requires SUCCESS.
func (tc *tclient) heartbeat(producers []string, consumers map[string]map[string]string) *remoting.Command {
	tc.t.Helper()
	resp := tc.invoke(remoting.ReqHeartBeat, nil, hbJSON(tc.id, producers, consumers))
	if resp.Code != remoting.RespSuccess {
		tc.t.Fatalf("heartbeat: %s", resp)
	}
	return resp
}

// consumer sends a heartbeat naming one consumer group subscribed to T/*.
func (tc *tclient) consumer(group string) {
	tc.t.Helper()
	tc.heartbeat(nil, map[string]map[string]string{group: {"T": "*"}})
}

// hbJSON builds a heartbeat body: consumers maps group → topic → expression.
func hbJSON(id string, producers []string, consumers map[string]map[string]string) []byte {
	type sub struct {
		Topic      string `json:"topic"`
		SubString  string `json:"subString"`
		SubVersion int64  `json:"subVersion"`
		ExprType   string `json:"expressionType"`
	}
	type cons struct {
		GroupName string `json:"groupName"`
		Type      string `json:"consumeType"`
		Model     string `json:"messageModel"`
		Where     string `json:"consumeFromWhere"`
		Subs      []sub  `json:"subscriptionDataSet"`
	}
	type prod struct {
		GroupName string `json:"groupName"`
	}
	body := struct {
		ClientID  string `json:"clientID"`
		Producers []prod `json:"producerDataSet"`
		Consumers []cons `json:"consumerDataSet"`
	}{ClientID: id, Producers: []prod{}, Consumers: []cons{}}
	for _, p := range producers {
		body.Producers = append(body.Producers, prod{p})
	}
	for g, topics := range consumers {
		c := cons{GroupName: g, Type: "CONSUME_PASSIVELY", Model: "CLUSTERING", Where: "CONSUME_FROM_LAST_OFFSET"}
		for topic, expr := range topics {
			c.Subs = append(c.Subs, sub{Topic: topic, SubString: expr, SubVersion: 1, ExprType: "TAG"})
		}
		body.Consumers = append(body.Consumers, c)
	}
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	return b
}

// expectNote waits for a notification for group.
func (tc *tclient) expectNote(group string) {
	tc.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case g := <-tc.notes:
			if g == group {
				return
			}
		case <-deadline:
			tc.t.Fatalf("%s: no NOTIFY_CONSUMER_IDS_CHANGED for %q", tc.id, group)
		}
	}
}

// expectNoNote requires that no notification arrives for a while.
func (tc *tclient) expectNoNote() {
	tc.t.Helper()
	select {
	case g := <-tc.notes:
		tc.t.Fatalf("%s: unexpected NOTIFY_CONSUMER_IDS_CHANGED for %q", tc.id, g)
	case <-time.After(150 * time.Millisecond):
	}
}

// drain discards notifications already received or arriving shortly.
func (tc *tclient) drain() {
	for {
		select {
		case <-tc.notes:
		case <-time.After(100 * time.Millisecond):
			return
		}
	}
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func consumerList(t *testing.T, tc *tclient, group string) (int32, []string, string) {
	t.Helper()
	resp := tc.invoke(remoting.ReqGetConsumerListByGroup, map[string]string{"consumerGroup": group}, nil)
	var body consumerListJSON
	if len(resp.Body) > 0 {
		if err := json.Unmarshal(resp.Body, &body); err != nil {
			t.Fatalf("consumer list body %q: %v", resp.Body, err)
		}
	}
	return resp.Code, body.ConsumerIDList, resp.Remark
}

func lockBody(group, clientID string, queues ...int) []byte {
	var mqs []string
	for _, q := range queues {
		mqs = append(mqs, fmt.Sprintf(`{"topic":"T","brokerName":"broker-a","queueId":%d}`, q))
	}
	return []byte(fmt.Sprintf(`{"consumerGroup":%q,"clientId":%q,"mqSet":[%s]}`, group, clientID, strings.Join(mqs, ",")))
}
