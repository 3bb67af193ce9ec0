package broker_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
)

const rpcTimeout = 5 * time.Second

func invoke(t testing.TB, c *remoting.Client, req *remoting.Command) *remoting.Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", remoting.RequestCodeName(req.Code), err)
	}
	return resp
}

func props(kv ...string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return message.EncodeProperties(m)
}

// sendReq is a SEND_MESSAGE request with the long header, as G2 sends it.
func sendReq(topic string, qid int32, body []byte, properties string) *remoting.Command {
	req := remoting.NewRequest(remoting.ReqSendMessage, map[string]string{
		"producerGroup": "PG", "topic": topic, "defaultTopic": "TBW102", "defaultTopicQueueNums": "4",
		"queueId": strconv.Itoa(int(qid)), "sysFlag": "0", "bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10),
		"flag": "0", "properties": properties, "reconsumeTimes": "0", "unitMode": "false", "maxReconsumeTimes": "0",
		"batch": "false", "bname": "broker-a",
	})
	req.Body = body
	return req
}

// sendV2Req is the short a..n header (SEND_MESSAGE_V2 or SEND_BATCH_MESSAGE).
func sendV2Req(code int32, topic string, qid int32, body []byte, properties string) *remoting.Command {
	req := remoting.NewRequest(code, map[string]string{
		"a": "PG", "b": topic, "c": "TBW102", "d": "4", "e": strconv.Itoa(int(qid)), "f": "0",
		"g": strconv.FormatInt(time.Now().UnixMilli(), 10), "h": "0", "i": properties, "j": "0", "k": "false",
		"l": "0", "m": strconv.FormatBool(code == remoting.ReqSendBatchMessage), "n": "broker-a",
	})
	req.Body = body
	return req
}

func mustSend(t testing.TB, c *remoting.Client, topic string, qid int32, body string, properties string) *remoting.Command {
	t.Helper()
	resp := invoke(t, c, sendReq(topic, qid, []byte(body), properties))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("send to %s/%d: code %d %q", topic, qid, resp.Code, resp.Remark)
	}
	return resp
}

type pullOpts struct {
	group    string
	maxNums  int
	sysFlag  int
	suspend  time.Duration
	sub      string
	commitOf int64
}

func pullReq(topic string, qid int32, offset int64, o pullOpts) *remoting.Command {
	if o.group == "" {
		o.group = "CG"
	}
	if o.maxNums == 0 {
		o.maxNums = 32
	}
	return remoting.NewRequest(remoting.ReqPullMessage, map[string]string{
		"consumerGroup": o.group, "topic": topic, "queueId": strconv.Itoa(int(qid)),
		"queueOffset": strconv.FormatInt(offset, 10), "maxMsgNums": strconv.Itoa(o.maxNums),
		"sysFlag": strconv.Itoa(o.sysFlag), "commitOffset": strconv.FormatInt(o.commitOf, 10),
		"suspendTimeoutMillis": strconv.FormatInt(o.suspend.Milliseconds(), 10), "subscription": o.sub,
		"subVersion": "0", "expressionType": "TAG", "bname": "broker-a",
	})
}

func extInt(t testing.TB, resp *remoting.Command, key string) int64 {
	t.Helper()
	v, ok := resp.Ext(key)
	if !ok {
		t.Fatalf("response %s lacks ext %q: %v", resp.CodeName(), key, resp.ExtFields)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("ext %s=%q: %v", key, v, err)
	}
	return n
}

// checkPullFields asserts the four fields every pull answer must carry.
func checkPullFields(t testing.TB, resp *remoting.Command) {
	t.Helper()
	for _, k := range []string{"nextBeginOffset", "minOffset", "maxOffset", "suggestWhichBrokerId"} {
		extInt(t, resp, k)
	}
}

func decode(t testing.TB, body []byte) []*message.Ext {
	t.Helper()
	ms, err := message.DecodeAll(body)
	if err != nil {
		t.Fatalf("decode pull body: %v", err)
	}
	return ms
}

func createTopic(t testing.TB, tb *testutil.TestBroker, c *remoting.Client, topic string, queues int) {
	t.Helper()
	resp := invoke(t, c, remoting.NewRequest(remoting.ReqUpdateAndCreateTopic, map[string]string{
		"topic": topic, "readQueueNums": strconv.Itoa(queues), "writeQueueNums": strconv.Itoa(queues), "perm": "6",
	}))
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("create topic %s: %d %q", topic, resp.Code, resp.Remark)
	}
}
