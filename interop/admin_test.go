package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	"github.com/txmq/txmq/internal/cli"
	"github.com/txmq/txmq/internal/namesrv"
	"github.com/txmq/txmq/internal/remoting"
)

// txmqAdmin runs `txmq admin --namesrv <ns> args...` in this process.
func txmqAdmin(t testing.TB, x *txmq, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	all := append([]string{"admin", "--namesrv", x.NamesrvAdr}, args...)
	code := cli.Run(ctx, all, &out, &errb)
	if code != 0 {
		t.Logf("txmq %s: exit %d, stderr: %s", strings.Join(all, " "), code, errb.String())
	}
	return out.String(), code
}

// TestMessageLookup: the official client has no query API (it defines the
// QUERY_MESSAGE and VIEW_MESSAGE_BY_ID headers but never sends them), so
// messages sent with it are looked up with `txmq admin message by-key`
// (by KEYS and by the client's unique id) and `txmq admin message get`
// (by the send result's OffsetMsgID).
func TestMessageLookup(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_lookup")
	x.createTopic(t, topic, 4)
	p, _ := newProducer(t, x)

	var target *primitive.SendResult
	for i := range 20 {
		m := primitive.NewMessage(topic, []byte("body-"+string(rune('a'+i))))
		m.WithKeys([]string{"order-" + string(rune('a'+i)), "shared-key"})
		m.WithTag("TagL")
		res := sendSync(t, p, m)
		if i == 7 {
			target = res
		}
	}

	// by KEYS
	out, code := txmqAdmin(t, x, "message", "by-key", topic, "order-h")
	if code != 0 {
		t.Fatalf("message by-key order-h: exit %d", code)
	}
	if !strings.Contains(out, `"body-h"`) || strings.Count(out, "OffsetMsgId:") != 1 || !strings.Contains(out, target.MsgID) {
		t.Errorf("message by-key order-h: want exactly body-h with MsgId %s, got:\n%s", target.MsgID, out)
	}
	// a key shared by all twenty
	out, code = txmqAdmin(t, x, "message", "by-key", topic, "shared-key")
	if code != 0 || strings.Count(out, "OffsetMsgId:") != 20 {
		t.Errorf("message by-key shared-key: exit %d, %d messages, want 20", code, strings.Count(out, "OffsetMsgId:"))
	}
	// by the client's unique id (UNIQ_KEY, the send result's MsgID)
	out, code = txmqAdmin(t, x, "message", "by-key", topic, target.MsgID)
	if code != 0 || !strings.Contains(out, `"body-h"`) {
		t.Errorf("message by-key <MsgID %s>: exit %d, want body-h, got:\n%s", target.MsgID, code, out)
	}
	// an unknown key is an error
	if _, code = txmqAdmin(t, x, "message", "by-key", topic, "no-such-key"); code == 0 {
		t.Errorf("message by-key no-such-key: exit 0, want an error")
	}
	// by offset message id
	out, code = txmqAdmin(t, x, "message", "get", target.OffsetMsgID)
	if code != 0 {
		t.Fatalf("message get %s: exit %d", target.OffsetMsgID, code)
	}
	for _, want := range []string{"OffsetMsgId:     " + target.OffsetMsgID, "MsgId:           " + target.MsgID, "Topic:           " + topic, `"body-h"`, "TagL"} {
		if !strings.Contains(out, want) {
			t.Errorf("message get %s: output lacks %q:\n%s", target.OffsetMsgID, want, out)
		}
	}
}

// brokerTopics lists the topics in the broker's own table (GET_ALL_TOPIC_CONFIG).
func (x *txmq) brokerTopics(t testing.TB) map[string]namesrv.TopicConfig {
	t.Helper()
	resp, err := x.invoke(remoting.ReqGetAllTopicConfig, nil)
	if err != nil || resp.Code != remoting.RespSuccess {
		t.Fatalf("GET_ALL_TOPIC_CONFIG: %v %v", err, resp)
	}
	var w struct {
		TopicConfigTable map[string]namesrv.TopicConfig `json:"topicConfigTable"`
	}
	if err := json.Unmarshal(resp.Body, &w); err != nil {
		t.Fatalf("GET_ALL_TOPIC_CONFIG body: %v", err)
	}
	return w.TopicConfigTable
}

// TestTopicAutoCreate: with autoCreateTopicEnable (the default) the first
// send to an unknown topic creates it; the topic is then routed and its
// messages can be consumed.
func TestTopicAutoCreate(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_auto")
	if _, err := x.route(topic); !errors.Is(err, namesrv.ErrTopicNotExist) {
		t.Fatalf("route of a new topic: %v, want topic-not-exist", err)
	}
	p, _ := newProducer(t, x)
	res := sendSync(t, p, primitive.NewMessage(topic, []byte("first")))
	checkSendResult(t, x, "first", res)
	eventually(t, 5*time.Second, func() error {
		rd, err := x.route(topic)
		if err != nil {
			return err
		}
		if len(rd.QueueDatas) != 1 || rd.QueueDatas[0].WriteQueueNums < 1 || rd.QueueDatas[0].Perm&6 != 6 {
			return errors.New("auto-created topic routed as " + jsonOf(rd.QueueDatas))
		}
		return nil
	})
	if _, ok := x.brokerTopics(t)[topic]; !ok {
		t.Errorf("auto-created topic %s not in the broker's topic table", topic)
	}
	sendSync(t, p, primitive.NewMessage(topic, []byte("second")))
	c := startPushConsumer(t, x, uniq("CG_auto"), topic, "")
	c.In.waitDistinct(t, 2, 20*time.Second)
}

// TestTopicAutoCreateOff: with autoCreateTopicEnable=false a send to an
// unknown topic fails with a topic-not-exist error and creates nothing.
func TestTopicAutoCreateOff(t *testing.T) {
	t.Parallel()
	x := startInProc(t, "autoCreateTopicEnable", "false")
	topic := uniq("T_noauto")
	p, _ := newProducer(t, x)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := p.SendSync(ctx, primitive.NewMessage(topic, []byte("nope")))
	if err == nil {
		t.Fatalf("send to unknown topic %s with autoCreateTopicEnable=false succeeded: %+v", topic, res)
	}
	t.Logf("send refused: %v", err)
	msg := strings.ToLower(err.Error())
	if !strings.Contains(msg, "not exist") && !strings.Contains(msg, "not found") && !strings.Contains(msg, "code: 17") {
		t.Errorf("send to unknown topic: error %q does not say the topic does not exist", err)
	}
	if _, err := x.route(topic); !errors.Is(err, namesrv.ErrTopicNotExist) {
		t.Errorf("route of the refused topic: %v, want topic-not-exist", err)
	}
	if _, ok := x.brokerTopics(t)[topic]; ok {
		t.Errorf("refused topic %s was created on the broker", topic)
	}
	// An explicitly created topic still works.
	known := uniq("T_known")
	x.createTopic(t, known, 2)
	sendSync(t, p, primitive.NewMessage(known, []byte("yes")))
}

// TestTopicAdminCreateDelete: a topic created with the official admin API
// is routed with the requested queues and permission, carries messages,
// and is gone from the name server and the broker after the admin API
// deletes it.
func TestTopicAdminCreateDelete(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_admin")
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{x.NamesrvAdr})))
	if err != nil {
		t.Fatalf("admin: %v", err)
	}
	t.Cleanup(func() { _ = adm.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := adm.CreateTopic(ctx, admin.WithTopicCreate(topic), admin.WithBrokerAddrCreate(x.BrokerAddr),
		admin.WithReadQueueNums(3), admin.WithWriteQueueNums(3)); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	// Routed at once: Apache RocketMQ re-registers with the name servers
	// when a topic is created; the client's CreateTopic ignores the answer,
	// so the route is the proof.
	x.waitRoute(t, topic, 3, 5*time.Second)
	tc, ok := x.brokerTopics(t)[topic]
	if !ok || tc.ReadQueueNums != 3 || tc.WriteQueueNums != 3 || tc.Perm != 6 {
		t.Errorf("broker topic config of %s: %+v (present %v), want 3/3 queues perm 6", topic, tc, ok)
	}
	list, err := adm.FetchAllTopicList(ctx)
	if err != nil {
		t.Fatalf("FetchAllTopicList: %v", err)
	}
	found := false
	for _, tp := range list.TopicList {
		found = found || tp == topic
	}
	if !found {
		t.Errorf("FetchAllTopicList lacks %s: %v", topic, list.TopicList)
	}
	mqs, err := adm.FetchPublishMessageQueues(ctx, topic)
	if err != nil || len(mqs) != 3 {
		t.Errorf("FetchPublishMessageQueues: %d queues, %v; want 3", len(mqs), err)
	}

	p, _ := newProducer(t, x)
	want := bodies("adm", 12)
	sendBodies(t, p, topic, want, 1)
	c := startPushConsumer(t, x, uniq("CG_admin"), topic, "")
	c.In.waitDistinct(t, len(want), 20*time.Second)
	if qs := queuesOf(c.In.snapshot()); len(qs) != 3 {
		t.Errorf("messages came from queues %v, want 3", qs)
	}
	c.Close(t)

	// Delete: from the broker (found through the route) and the name server.
	if err := adm.DeleteTopic(ctx, admin.WithTopicDelete(topic), admin.WithBrokerAddrDelete(x.BrokerAddr),
		admin.WithNameSrvAddr([]string{x.NamesrvAdr})); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	if _, err := x.route(topic); !errors.Is(err, namesrv.ErrTopicNotExist) {
		t.Errorf("route of the deleted topic: %v, want topic-not-exist", err)
	}
	if _, ok := x.brokerTopics(t)[topic]; ok {
		t.Errorf("deleted topic %s still in the broker's topic table", topic)
	}
}
