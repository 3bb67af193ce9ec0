package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/broker"
	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/namesrv"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
)

func TestTopicAdmin(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	start := time.Now()
	createTopic(t, tb, c, "Adm", 3)
	tb.WaitRoutable(t, "Adm")
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("topic routable only after %v", d)
	}
	nsc, err := remoting.Dial(context.Background(), tb.NamesrvAddr, remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer nsc.Close()
	route := func(topic string) (namesrv.TopicRouteData, error) {
		return namesrv.GetRoute(context.Background(), pool{nsc}, tb.NamesrvAddr, topic)
	}
	rd, err := route("Adm")
	if err != nil || len(rd.QueueDatas) != 1 || rd.QueueDatas[0].WriteQueueNums != 3 || rd.QueueDatas[0].Perm != 6 {
		t.Fatalf("route %+v, %v", rd, err)
	}

	// GET_ALL_TOPIC_CONFIG lists it with the system topics.
	resp := invoke(t, c, remoting.NewRequest(remoting.ReqGetAllTopicConfig, nil))
	var all namesrv.TopicConfigSerializeWrapper
	if resp.Code != remoting.RespSuccess || json.Unmarshal(resp.Body, &all) != nil {
		t.Fatalf("all topics: %d %q", resp.Code, resp.Body)
	}
	for _, name := range []string{"Adm", "TBW102", "SELF_TEST_TOPIC"} {
		if _, ok := all.TopicConfigTable[name]; !ok {
			t.Errorf("topic %s missing from %v", name, all.TopicConfigTable)
		}
	}
	if all.TopicConfigTable["TBW102"].Perm != 7 {
		t.Errorf("TBW102 perm %d", all.TopicConfigTable["TBW102"].Perm)
	}

	// Stats.
	mustSend(t, c, "Adm", 2, "x", "")
	resp = invoke(t, c, remoting.NewRequest(remoting.ReqGetTopicStatsInfo, map[string]string{"topic": "Adm"}))
	var stats broker.TopicStatsBody
	if resp.Code != remoting.RespSuccess || json.Unmarshal(resp.Body, &stats) != nil || len(stats.OffsetTable) != 3 {
		t.Fatalf("stats: %d %s", resp.Code, resp.Body)
	}
	if q := stats.OffsetTable[2]; q.MaxOffset != 1 || q.LastUpdateTimestamp == 0 || q.BrokerName != "broker-a" {
		t.Errorf("queue 2 stats %+v", q)
	}
	if resp := invoke(t, c, remoting.NewRequest(remoting.ReqGetTopicStatsInfo, map[string]string{"topic": "None"})); resp.Code != remoting.RespTopicNotExist {
		t.Errorf("stats of unknown topic: %d", resp.Code)
	}

	// Consume stats.
	invoke(t, c, updateOffsetReq("CG", "Adm", 2, 1))
	resp = invoke(t, c, remoting.NewRequest(remoting.ReqGetConsumeStats, map[string]string{"consumerGroup": "CG"}))
	var cs broker.ConsumeStatsBody
	if resp.Code != remoting.RespSuccess || json.Unmarshal(resp.Body, &cs) != nil || len(cs.OffsetTable) != 3 {
		t.Fatalf("consume stats: %d %s", resp.Code, resp.Body)
	}
	if q := cs.OffsetTable[2]; q.BrokerOffset != 1 || q.ConsumerOffset != 1 || q.Lag != 0 || q.LastTimestamp == 0 {
		t.Errorf("consume stats %+v", q)
	}

	// Bad creations.
	for _, ext := range []map[string]string{
		{"topic": "bad topic"},
		{"topic": "TBW102"},
		{"topic": "X", "readQueueNums": "0", "writeQueueNums": "1"},
		{"topic": "X", "readQueueNums": "x"},
		{},
	} {
		if resp := invoke(t, c, remoting.NewRequest(remoting.ReqUpdateAndCreateTopic, ext)); resp.Code == remoting.RespSuccess {
			t.Errorf("create %v succeeded", ext)
		}
	}

	// Delete: config, route, offsets and messages go.
	resp = invoke(t, c, remoting.NewRequest(remoting.ReqDeleteTopicInBroker, map[string]string{"topic": "Adm"}))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("delete: %d %q", resp.Code, resp.Remark)
	}
	testutil.Eventually(t, 2*time.Second, func() error {
		if _, err := route("Adm"); !errors.Is(err, namesrv.ErrTopicNotExist) {
			return errorf("route still there: %v", err)
		}
		return nil
	})
	if resp := invoke(t, c, pullReq("Adm", 2, 0, pullOpts{})); resp.Code != remoting.RespTopicNotExist {
		t.Errorf("pull after delete: %d", resp.Code)
	}
	createTopic(t, tb, c, "Adm", 3)
	if resp := invoke(t, c, queryOffsetReq("CG", "Adm", 2)); resp.Code != remoting.RespSuccess || extInt(t, resp, "offset") != 0 {
		t.Errorf("offset after delete and re-create: %d %v", resp.Code, resp.ExtFields)
	}
	if got := tb.Broker.Store().MaxOffset("Adm", 2); got != 0 {
		t.Errorf("queue kept max offset %d after delete", got)
	}
}

// pool adapts one client to namesrv.Invoker.
type pool struct{ c *remoting.Client }

func (p pool) Invoke(ctx context.Context, _ string, req *remoting.Command) (*remoting.Command, error) {
	return p.c.Invoke(ctx, req)
}

func TestSubscriptionGroups(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	req := remoting.NewRequest(remoting.ReqUpdateAndCreateSubscriptionGroup, nil)
	req.Body = []byte(`{"groupName":"SG","retryMaxTimes":3}`)
	if resp := invoke(t, c, req); resp.Code != remoting.RespSuccess {
		t.Fatalf("create group: %d %q", resp.Code, resp.Remark)
	}
	for _, body := range []string{``, `{`, `{"groupName":""}`} {
		req := remoting.NewRequest(remoting.ReqUpdateAndCreateSubscriptionGroup, nil)
		req.Body = []byte(body)
		if resp := invoke(t, c, req); resp.Code == remoting.RespSuccess {
			t.Errorf("group body %q accepted", body)
		}
	}

	// A consumer heartbeat creates the group and its retry topic.
	hb := remoting.NewRequest(remoting.ReqHeartBeat, nil)
	hb.Body = []byte(`{"clientID":"127.0.0.1@1","producerDataSet":[],"consumerDataSet":[{"groupName":"HG",` +
		`"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",` +
		`"subscriptionDataSet":[{"topic":"HT","subString":"B","tagsSet":["B"],"codeSet":["66"],"subVersion":1,"expressionType":"TAG"}],"unitMode":false}]}`)
	if resp := invoke(t, c, hb); resp.Code != remoting.RespSuccess {
		t.Fatalf("heartbeat: %d %q", resp.Code, resp.Remark)
	}
	tb.WaitRoutable(t, "%RETRY%HG")

	resp := invoke(t, c, remoting.NewRequest(remoting.ReqGetAllSubscriptionGroupConfig, nil))
	var groups struct {
		SubscriptionGroupTable map[string]broker.SubscriptionGroupConfig `json:"subscriptionGroupTable"`
		DataVersion            namesrv.DataVersion                       `json:"dataVersion"`
	}
	if resp.Code != remoting.RespSuccess || json.Unmarshal(resp.Body, &groups) != nil {
		t.Fatalf("all groups: %d %s", resp.Code, resp.Body)
	}
	if g := groups.SubscriptionGroupTable["SG"]; g.RetryMaxTimes != 3 || !g.ConsumeEnable {
		t.Errorf("SG %+v", g)
	}
	if _, ok := groups.SubscriptionGroupTable["HG"]; !ok || groups.DataVersion.Counter == 0 {
		t.Errorf("HG not auto-created: %+v", groups)
	}

	// The heartbeat's subscription filters a pull that sends none.
	createTopic(t, tb, c, "HT", 1)
	mustSend(t, c, "HT", 0, "a", props("TAGS", "A"))
	mustSend(t, c, "HT", 0, "b", props("TAGS", "B"))
	pr := invoke(t, c, pullReq("HT", 0, 0, pullOpts{group: "HG"}))
	if ms := decode(t, pr.Body); pr.Code != remoting.RespSuccess || len(ms) != 1 || string(ms[0].Body) != "b" {
		t.Fatalf("pull with heartbeat subscription: %d, %d messages", pr.Code, len(ms))
	}
}

func TestQueryAndView(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	createTopic(t, tb, c, "QT", 1)
	r1 := mustSend(t, c, "QT", 0, "one", props("KEYS", "order-1 shared", "UNIQ_KEY", "00000000000000000000000000000001"))
	mustSend(t, c, "QT", 0, "two", props("KEYS", "order-2 shared"))
	q := func(key string) *remoting.Command {
		return remoting.NewRequest(remoting.ReqQueryMessage, map[string]string{"topic": "QT", "key": key, "maxNum": "32",
			"beginTimestamp": "0", "endTimestamp": strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)})
	}
	cases := []struct {
		key   string
		code  int32
		count int
	}{
		{"order-1", remoting.RespSuccess, 1},
		{"shared", remoting.RespSuccess, 2},
		{"00000000000000000000000000000001", remoting.RespSuccess, 1},
		{"missing", remoting.RespQueryNotFound, 0},
	}
	for _, tc := range cases {
		resp := invoke(t, c, q(tc.key))
		if resp.Code != tc.code {
			t.Errorf("query %s: %d %q", tc.key, resp.Code, resp.Remark)
			continue
		}
		extInt(t, resp, "indexLastUpdateTimestamp")
		extInt(t, resp, "indexLastUpdatePhyoffset")
		if tc.count > 0 && len(decode(t, resp.Body)) != tc.count {
			t.Errorf("query %s: %d messages", tc.key, len(decode(t, resp.Body)))
		}
	}
	_, off, _ := message.ParseOffsetMessageID(r1.ExtStringOr("msgId", ""))
	resp := invoke(t, c, remoting.NewRequest(remoting.ReqViewMessageByID, map[string]string{"offset": strconv.FormatInt(off, 10)}))
	if ms := decode(t, resp.Body); resp.Code != remoting.RespSuccess || len(ms) != 1 || string(ms[0].Body) != "one" {
		t.Fatalf("view: %d", resp.Code)
	}
	for _, bad := range []string{"1", "-1", "99999999", "x"} {
		resp := invoke(t, c, remoting.NewRequest(remoting.ReqViewMessageByID, map[string]string{"offset": bad}))
		if resp.Code != remoting.RespSystemError || len(resp.Body) != 0 || resp.Remark == "" {
			t.Errorf("view at %s: %d %q, %d bytes", bad, resp.Code, resp.Remark, len(resp.Body))
		}
	}
}

func TestShutdownLeavesNoGoroutines(t *testing.T) {
	ns := testutil.RunNamesrv(t)
	time.Sleep(10 * time.Millisecond)
	before := runtime.NumGoroutine()
	tb := testutil.RunBroker(t, testutil.WithNamesrv(ns))
	c := tb.Dial(t)
	createTopic(t, tb, c, "G", 1)
	mustSend(t, c, "G", 0, "x", "")
	go func() {
		_, _ = c.Invoke(context.Background(), pullReq("G", 0, 1, pullOpts{sysFlag: flagSuspend, suspend: 20 * time.Second}))
	}()
	waitParked(t, tb, 1)
	_ = c.Close()
	tb.Shutdown(t)
	if err := tb.Broker.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		// The test helpers' own clients (waitParked's, the readiness
		// pool's: two goroutines each) live until Cleanup.
		if n := runtime.NumGoroutine(); n > before+4 {
			return errorf("%d goroutines, %d before", n, before)
		}
		// And none of the broker's or the store's.
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, pkg := range []string{"internal/broker.", "internal/store.", "internal/broker/clients."} {
			if strings.Contains(stacks, pkg) {
				return errorf("a goroutine still runs in %s:\n%s", pkg, stacks)
			}
		}
		return nil
	})
	t.Logf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
	if err := tb.Broker.Start(); err == nil {
		t.Error("Start after Shutdown succeeded")
	}
	// The broker unregistered: TBW102 has no route any more.
	nsc, err := remoting.Dial(context.Background(), tb.NamesrvAddr, remoting.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer nsc.Close()
	if _, err := namesrv.GetRoute(context.Background(), pool{nsc}, tb.NamesrvAddr, "TBW102"); !errors.Is(err, namesrv.ErrTopicNotExist) {
		t.Errorf("route after shutdown: %v", err)
	}
}
