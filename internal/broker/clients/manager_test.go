package clients

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/remoting"
)

func TestClientsHeartbeatBodies(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		language   string
		clientID   string
		producer   string
		group      string
		topic      string
		info       ConsumerGroupInfo
		tags       []string
		codes      []int64
		topicsSeen []string
	}{
		{
			name: "G2", body: g2SampleBody, language: "GO", clientID: "10.0.0.1@12345", producer: "PG",
			group: "CG", topic: "T",
			info: ConsumerGroupInfo{Group: "CG", ConsumeType: "CONSUME_PASSIVELY", MessageModel: "CLUSTERING", ConsumeFromWhere: "CONSUME_FROM_LAST_OFFSET"},
			tags: []string{"TagA", "TagB"}, codes: []int64{2598919, 2598920}, topicsSeen: []string{"T"},
		},
		{
			name: "Java", body: javaBody, language: "JAVA", clientID: "10.0.0.2@JAVA", producer: "PGJ",
			group: "CGJ", topic: "TJ",
			info:       ConsumerGroupInfo{Group: "CGJ", ConsumeType: "CONSUME_ACTIVELY", MessageModel: "BROADCASTING", ConsumeFromWhere: "CONSUME_FROM_FIRST_OFFSET"},
			topicsSeen: []string{"%RETRY%CGJ", "TJ"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			tc := e.dial(tt.clientID)
			req := remoting.NewRequest(remoting.ReqHeartBeat, nil)
			req.Language = tt.language
			req.Body = []byte(tt.body)
			resp, err := tc.c.Invoke(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Code != remoting.RespSuccess || resp.Version < 0 || resp.Version > 32767 {
				t.Fatalf("response %s: want SUCCESS with an int16 version >= 0", resp)
			}
			if resp.ExtStringOr(extSupportHeartbeatV2, "") != "false" || resp.ExtStringOr(extSubChange, "") != "true" {
				t.Errorf("ext = %v", resp.ExtFields)
			}
			if ids := e.m.ConsumerIDs(tt.group); !slices.Equal(ids, []string{tt.clientID}) {
				t.Errorf("ConsumerIDs = %q", ids)
			}
			if !slices.Contains(e.m.ProducerGroups(), tt.producer) {
				t.Errorf("ProducerGroups = %q, want %s", e.m.ProducerGroups(), tt.producer)
			}
			if c := e.m.PickProducer(tt.producer); c == nil || c.RemoteAddr().String() != tc.c.Conn().LocalAddr().String() {
				t.Errorf("PickProducer = %v", c)
			}
			info, ok := e.m.ConsumerGroup(tt.group)
			if !ok {
				t.Fatal("group not registered")
			}
			topics := slices.Sorted(func(yield func(string) bool) {
				for k := range info.Subscriptions {
					if !yield(k) {
						return
					}
				}
			})
			if !slices.Equal(topics, tt.topicsSeen) {
				t.Errorf("subscribed topics = %q, want %q", topics, tt.topicsSeen)
			}
			if info.Group != tt.info.Group || info.ConsumeType != tt.info.ConsumeType ||
				info.MessageModel != tt.info.MessageModel || info.ConsumeFromWhere != tt.info.ConsumeFromWhere {
				t.Errorf("ConsumerGroup = %+v, want %+v", info, tt.info)
			}
			sub, ok := e.m.Subscription(tt.group, tt.topic)
			if !ok {
				t.Fatal("no subscription")
			}
			if !slices.Equal(sub.Tags, tt.tags) || !slices.Equal(sub.Codes, tt.codes) {
				t.Errorf("subscription tags %q codes %v, want %q %v", sub.Tags, sub.Codes, tt.tags, tt.codes)
			}
			cl := e.m.ConsumerClients(tt.group)
			if len(cl) != 1 || cl[0].ClientID != tt.clientID || cl[0].Language != tt.language ||
				cl[0].Addr != tc.c.Conn().LocalAddr().String() || !cl[0].LastHeartbeat.Equal(e.clock.Now()) {
				t.Errorf("ConsumerClients = %+v", cl)
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			if len(e.groupHook) != 1 || e.groupHook[0].Group != tt.group || len(e.groupHook[0].Subscriptions) != len(tt.topicsSeen) {
				t.Errorf("OnConsumerGroup calls = %+v", e.groupHook)
			}
			if !slices.Contains(e.producers, tt.producer) {
				t.Errorf("OnProducerRegistered calls = %q", e.producers)
			}
		})
	}
}

func TestClientsHeartbeatHooks(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.OnConsumerGroup = func(string, ConsumerGroupInfo) error { return errors.New("disk full") }
	})
	tc := e.dial("c1")
	tc.heartbeat([]string{"PG"}, map[string]map[string]string{"CG": {"T": "*"}}) // hook error: still SUCCESS
	resp := tc.heartbeat([]string{"PG"}, map[string]map[string]string{"CG": {"T": "*"}})
	if resp.ExtStringOr(extSubChange, "") != "false" {
		t.Errorf("unchanged heartbeat: IS_SUB_CHANGE = %q", resp.ExtStringOr(extSubChange, ""))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Equal(e.producers, []string{"PG"}) {
		t.Errorf("OnProducerRegistered = %q, want once for PG", e.producers)
	}
}

func TestClientsConsumerList(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.dial("10.0.0.1@2"), e.dial("10.0.0.1@1")
	a.consumer("CG")
	b.consumer("CG")
	for _, tc := range []*tclient{a, b} {
		code, ids, _ := consumerList(t, tc, "CG")
		if code != remoting.RespSuccess || !slices.Equal(ids, []string{"10.0.0.1@1", "10.0.0.1@2"}) || !slices.Contains(ids, tc.id) {
			t.Errorf("%s: list = %d %q; want both, sorted, with the caller", tc.id, code, ids)
		}
	}
	code, ids, remark := consumerList(t, a, "nobody")
	if code != remoting.RespSystemError || len(ids) != 0 || remark != "no consumer for this group, nobody" {
		t.Errorf("empty group: %d %q %q", code, ids, remark)
	}
	resp := a.invoke(remoting.ReqGetConsumerListByGroup, nil, nil)
	if resp.Code != remoting.RespSystemError || !strings.Contains(resp.Remark, "consumerGroup") {
		t.Errorf("missing ext: %s", resp)
	}
}

func TestClientsNotify(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.dial("a"), e.dial("b")
	a.consumer("CG")
	b.consumer("CG")
	a.drain()
	b.drain()

	// A third member joins: everybody is told.
	c := e.dial("c")
	c.consumer("CG")
	a.expectNote("CG")
	b.expectNote("CG")
	c.expectNote("CG")

	// A repeated heartbeat changes nothing: nobody is told.
	c.consumer("CG")
	a.expectNoNote()

	// A subscription change is a change.
	c.heartbeat(nil, map[string]map[string]string{"CG": {"T": "*", "T2": "x"}})
	a.expectNote("CG")
	b.expectNote("CG")

	// The third member's connection closes: the others are told.
	_ = c.c.Close()
	a.expectNote("CG")
	b.expectNote("CG")
	eventually(t, "c dropped", func() bool { return slices.Equal(e.m.ConsumerIDs("CG"), []string{"a", "b"}) })
	if _, ok := e.m.Subscription("CG", "T2"); ok {
		t.Error("T2 was only c's subscription and should be gone with it")
	}

	// Leaving a group by not listing it any more is a change too.
	b.heartbeat([]string{"PG"}, nil)
	a.expectNote("CG")
	if ids := e.m.ConsumerIDs("CG"); !slices.Equal(ids, []string{"a"}) {
		t.Errorf("ConsumerIDs = %q", ids)
	}
	if got := e.m.Stats().NotificationsSent; got < 7 {
		t.Errorf("NotificationsSent = %d", got)
	}
}

func TestClientsNotifyCoalescesBursts(t *testing.T) {
	e := newEnv(t, nil)
	a := e.dial("a")
	a.consumer("CG")
	a.drain()
	for i := range 5 {
		e.dial(string(rune('b' + i))).consumer("CG")
	}
	a.expectNote("CG")
	// Five quick joins yield fewer than five notifications (usually one or
	// two; the joins are not guaranteed to fall in one 20 ms window).
	n := 0
	for {
		select {
		case <-a.notes:
			n++
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	if n+1 >= 5 {
		t.Errorf("got %d notifications for a burst of 5 joins", n+1)
	}
}

func TestClientsReconnect(t *testing.T) {
	e := newEnv(t, nil)
	other := e.dial("other")
	other.consumer("CG")
	old := e.dial("x")
	old.heartbeat([]string{"PG"}, map[string]map[string]string{"CG": {"T": "*"}})
	other.drain()

	// Same clientID on a new connection: the new one wins.
	cur := e.dial("x")
	cur.heartbeat([]string{"PG"}, map[string]map[string]string{"CG": {"T": "*"}})
	if c := e.m.PickProducer("PG"); c == nil || c.RemoteAddr().String() != cur.c.Conn().LocalAddr().String() {
		t.Fatalf("PickProducer = %v, want the new connection", c)
	}
	if n := e.m.Stats().Connections; n != 2 {
		t.Errorf("Connections = %d, want 2 (other, new x)", n)
	}

	// The old connection's close does not remove it.
	_ = old.c.Close()
	eventually(t, "old connection gone", func() bool { return e.srv.NumConns() == 2 })
	time.Sleep(50 * time.Millisecond) // let the close hook run
	if ids := e.m.ConsumerIDs("CG"); !slices.Equal(ids, []string{"other", "x"}) {
		t.Errorf("after old close: ConsumerIDs = %q", ids)
	}
	if c := e.m.PickProducer("PG"); c == nil {
		t.Error("after old close: no producer")
	}
	other.expectNoNote()

	// The current connection's close does.
	_ = cur.c.Close()
	other.expectNote("CG")
	eventually(t, "x dropped", func() bool { return e.m.PickProducer("PG") == nil })
	if ids := e.m.ConsumerIDs("CG"); !slices.Equal(ids, []string{"other"}) {
		t.Errorf("after current close: ConsumerIDs = %q", ids)
	}
}

func TestClientsExpiry(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.dial("a"), e.dial("b")
	a.consumer("CG")
	b.heartbeat([]string{"PG"}, map[string]map[string]string{"CG": {"T": "*"}})
	a.drain()

	e.clock.Add(60 * time.Second)
	a.consumer("CG") // a stays fresh
	e.clock.Add(60 * time.Second)
	e.m.scan() // b: exactly 120 s, not yet
	if ids := e.m.ConsumerIDs("CG"); !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("at 120 s: ConsumerIDs = %q", ids)
	}
	e.clock.Add(time.Second)
	// Queries already ignore a client past the timeout ...
	if ids := e.m.ConsumerIDs("CG"); !slices.Equal(ids, []string{"a"}) {
		t.Errorf("past 120 s, before the scan: ConsumerIDs = %q", ids)
	}
	if e.m.PickProducer("PG") != nil {
		t.Error("expired producer picked")
	}
	// ... and the scan drops it and tells the others.
	e.m.scan()
	a.expectNote("CG")
	if st := e.m.Stats(); st.Clients != 1 || st.ProducerGroups != 0 {
		t.Errorf("after expiry: %+v", st)
	}
	// Its connection stays open and a heartbeat brings it back.
	b.consumer("CG")
	if ids := e.m.ConsumerIDs("CG"); !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("after new heartbeat: ConsumerIDs = %q", ids)
	}
}

func TestClientsUnregister(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.dial("a"), e.dial("b")
	a.consumer("CG")
	b.heartbeat([]string{"PG"}, map[string]map[string]string{"CG": {"T": "*"}})
	a.drain()

	if resp := b.invoke(remoting.ReqLockBatchMQ, nil, lockBody("CG", "b", 0)); !strings.Contains(string(resp.Body), `"queueId":0`) {
		t.Fatalf("lock: %s %q", resp, resp.Body)
	}
	resp := b.invoke(remoting.ReqUnregisterClient, map[string]string{"clientID": "b", "consumerGroup": "CG"}, nil)
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("unregister: %s", resp)
	}
	a.expectNote("CG")
	if ids := e.m.ConsumerIDs("CG"); !slices.Equal(ids, []string{"a"}) {
		t.Errorf("ConsumerIDs = %q", ids)
	}
	if e.m.IsLocked("CG", "T", "broker-a", 0, "b") {
		t.Error("b's lock in CG survived its unregistration")
	}
	if e.m.PickProducer("PG") == nil {
		t.Error("b is still a producer")
	}
	// Without clientID: the connection's clients.
	resp = b.invoke(remoting.ReqUnregisterClient, map[string]string{"producerGroup": "PG"}, nil)
	if resp.Code != remoting.RespSuccess || e.m.PickProducer("PG") != nil {
		t.Errorf("unregister producer: %s, still picked: %v", resp, e.m.PickProducer("PG") != nil)
	}
	if st := e.m.Stats(); st.Clients != 1 {
		t.Errorf("a client in no group should be forgotten: %+v", st)
	}
	// Unknown client: still SUCCESS.
	if resp := a.invoke(remoting.ReqUnregisterClient, map[string]string{"clientID": "zz", "consumerGroup": "CG"}, nil); resp.Code != remoting.RespSuccess {
		t.Errorf("unknown client: %s", resp)
	}
}

func TestClientsPickProducer(t *testing.T) {
	e := newEnv(t, nil)
	if e.m.PickProducer("PG") != nil {
		t.Fatal("producer picked from an empty group")
	}
	ps := []*tclient{e.dial("p1"), e.dial("p2"), e.dial("p3")}
	for _, p := range ps {
		p.heartbeat([]string{"PG"}, nil)
	}
	seen := map[string]int{}
	for range 9 {
		c := e.m.PickProducer("PG")
		if c == nil {
			t.Fatal("no producer")
		}
		seen[c.RemoteAddr().String()]++
	}
	for _, p := range ps {
		if n := seen[p.c.Conn().LocalAddr().String()]; n != 3 {
			t.Errorf("%s picked %d times of 9, want 3 (round robin)", p.id, n)
		}
	}
	_ = ps[1].c.Close()
	eventually(t, "p2 dropped", func() bool { return len(e.m.ProducerClients("PG")) == 2 })
	for range 6 {
		c := e.m.PickProducer("PG")
		if c == nil || c.RemoteAddr().String() == ps[1].c.Conn().LocalAddr().String() {
			t.Fatalf("picked %v", c)
		}
	}
	_ = ps[0].c.Close()
	_ = ps[2].c.Close()
	eventually(t, "all dropped", func() bool { return e.m.PickProducer("PG") == nil })
	if g := e.m.ProducerGroups(); len(g) != 0 {
		t.Errorf("ProducerGroups = %q", g)
	}
}

func TestClientsClosedConnIsNotLiveBeforeHook(t *testing.T) {
	// Between a connection's close and its close hook, its client must not
	// be handed out. Holding mu keeps the hook (which takes mu) waiting.
	e := newEnv(t, nil)
	p1, p2 := e.dial("p1"), e.dial("p2")
	p1.heartbeat([]string{"PG"}, nil)
	p2.heartbeat([]string{"PG"}, nil)
	e.m.mu.Lock()
	c1, c2 := e.m.clients["p1"], e.m.clients["p2"]
	_ = c1.conn.Close()
	<-c1.conn.Closed()
	now := e.m.cfg.Now()
	if e.m.live(c1, now) || !e.m.live(c2, now) {
		t.Errorf("live: p1 %v (closed), p2 %v", e.m.live(c1, now), e.m.live(c2, now))
	}
	e.m.mu.Unlock()
	for range 4 {
		if c := e.m.PickProducer("PG"); c != c2.conn {
			t.Fatalf("picked %v, want p2's connection", c)
		}
	}
}

func TestClientsMalformedBodies(t *testing.T) {
	e := newEnv(t, nil)
	tc := e.dial("c1")
	tests := []struct {
		name string
		code int32
		ext  map[string]string
		body string
	}{
		{"heartbeat empty", remoting.ReqHeartBeat, nil, ""},
		{"heartbeat truncated", remoting.ReqHeartBeat, nil, `{"clientID":"c1","producerDataSet":[`},
		{"heartbeat garbage", remoting.ReqHeartBeat, nil, "\x00\xff\xfe"},
		{"heartbeat array", remoting.ReqHeartBeat, nil, `[]`},
		{"heartbeat no clientID", remoting.ReqHeartBeat, nil, `{"producerDataSet":[{"groupName":"PG"}]}`},
		{"lock garbage", remoting.ReqLockBatchMQ, nil, `{"consumerGroup":`},
		{"lock no client", remoting.ReqLockBatchMQ, nil, `{"consumerGroup":"CG","mqSet":[]}`},
		{"unlock empty", remoting.ReqUnlockBatchMQ, nil, ``},
		{"consumer list no group", remoting.ReqGetConsumerListByGroup, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tc.invoke(tt.code, tt.ext, []byte(tt.body))
			if resp.Code != remoting.RespSystemError || resp.Remark == "" {
				t.Errorf("response %s: want SYSTEM_ERROR with a remark", resp)
			}
			// The connection stays usable.
			tc.heartbeat([]string{"PG"}, nil)
		})
	}
	if n := e.srv.NumConns(); n != 1 {
		t.Errorf("NumConns = %d", n)
	}
}

func TestClientsLocksOverTheWire(t *testing.T) {
	e := newEnv(t, nil)
	a, b := e.dial("a"), e.dial("b")
	a.consumer("CG")
	b.consumer("CG")

	lock := func(tc *tclient, queues ...int) []queueKey {
		t.Helper()
		resp := tc.invoke(remoting.ReqLockBatchMQ, nil, lockBody("CG", tc.id, queues...))
		if resp.Code != remoting.RespSuccess {
			t.Fatalf("lock: %s", resp)
		}
		var body lockOKJSON
		if err := json.Unmarshal(resp.Body, &body); err != nil {
			t.Fatalf("lock body %q: %v", resp.Body, err)
		}
		return body.LockOKMQSet
	}
	if got := lock(a, 0, 1); len(got) != 2 || got[1] != (queueKey{"T", "broker-a", 1}) {
		t.Fatalf("a locks = %v", got)
	}
	if got := lock(b, 1, 2); len(got) != 1 || got[0].QueueID != 2 {
		t.Fatalf("b locks = %v, want only queue 2", got)
	}
	if resp := a.invoke(remoting.ReqLockBatchMQ, nil, lockBody("CG", "a")); string(resp.Body) != `{"lockOKMQSet":[]}` {
		t.Errorf("empty lock: %q", resp.Body)
	}
	resp := a.invoke(remoting.ReqUnlockBatchMQ, nil, lockBody("CG", "a", 1))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("unlock: %s", resp)
	}
	if got := lock(b, 1); len(got) != 1 {
		t.Errorf("b could not take the queue a released: %v", got)
	}
	// a's connection closes: its locks go with it.
	_ = a.c.Close()
	eventually(t, "a's lock released", func() bool { return !e.m.IsLocked("CG", "T", "broker-a", 0, "a") })
	if got := lock(b, 0); len(got) != 1 {
		t.Errorf("b could not take a's queue after a left: %v", got)
	}
}
