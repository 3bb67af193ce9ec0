package cli

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
)

// sendOne sends one message with SEND_MESSAGE and returns the response.
func sendOne(t *testing.T, tb *testutil.TestBroker, topic, keys, body string) *remoting.Command {
	t.Helper()
	c := tb.Dial(t)
	props := message.EncodeProperties(map[string]string{message.PropKeys: keys, message.PropTags: "TagA", message.PropUniqClientMessageID: "UNIQ" + keys})
	req := remoting.NewRequest(remoting.ReqSendMessage, map[string]string{
		"producerGroup": "PG", "topic": topic, "defaultTopic": message.DefaultTopic, "defaultTopicQueueNums": "4",
		"queueId": "0", "sysFlag": "0", "bornTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "flag": "0",
		"properties": props, "reconsumeTimes": "0", "unitMode": "false", "batch": "false",
	})
	req.Body = []byte(body)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err != nil || resp.Code != remoting.RespSuccess {
		t.Fatalf("send: %v %+v", err, resp)
	}
	return resp
}

func TestAdminCommands(t *testing.T) {
	tb := testutil.RunBroker(t)
	ns := tb.NamesrvAddr
	admin := func(args ...string) string {
		t.Helper()
		code, out, errs := run(t, append([]string{"admin", "--namesrv", ns}, args...)...)
		if code != ExitOK {
			t.Fatalf("admin %v: code %d\n%s%s", args, code, out, errs)
		}
		return out
	}
	if out := admin("topic", "create", "AdminT", "--queues", "3"); !strings.Contains(out, "created AdminT with 3 queues") {
		t.Fatalf("create: %s", out)
	}
	if out := admin("topic", "list"); !strings.Contains(out, "AdminT\n") {
		t.Fatalf("list: %s", out)
	}
	if out := admin("topic", "route", "AdminT"); !strings.Contains(out, `"writeQueueNums": 3`) {
		t.Fatalf("route: %s", out)
	}
	resp := sendOne(t, tb, "AdminT", "order-42", "hello admin")
	if out := admin("message", "by-key", "AdminT", "order-42"); !strings.Contains(out, `Body:            "hello admin"`) {
		t.Fatalf("by-key: %s", out)
	}
	if out := admin("message", "get", resp.ExtStringOr("msgId", "")); !strings.Contains(out, "Keys:            order-42") {
		t.Fatalf("get: %s", out)
	}
	if out := admin("topic", "stats", "AdminT"); !strings.Contains(out, "broker-a  0      0           1") {
		t.Fatalf("stats: %s", out)
	}
	if out := admin("group", "offsets", "CG", "--topic", "AdminT"); !strings.Contains(out, "total lag") {
		t.Fatalf("offsets: %s", out)
	}
	admin("topic", "delete", "AdminT")
	if out := admin("topic", "list"); strings.Contains(out, "AdminT\n") {
		t.Fatalf("deleted topic still listed: %s", out)
	}
	// Errors are clear and exit non-zero.
	for _, args := range [][]string{
		{"message", "get", "nonsense"},
		{"message", "by-key", "NoSuchTopic", "k"},
		{"topic", "create", "bad topic"},
	} {
		code, _, errs := run(t, append([]string{"admin", "--namesrv", ns}, args...)...)
		if code == ExitOK || !strings.Contains(errs, "txmq:") {
			t.Fatalf("admin %v: code %d, stderr %q", args, code, errs)
		}
	}
}
