package broker_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
)

var errorf = fmt.Errorf

func queryOffsetReq(group, topic string, qid int32) *remoting.Command {
	return remoting.NewRequest(remoting.ReqQueryConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(int(qid)), "bname": "broker-a"})
}

func updateOffsetReq(group, topic string, qid int32, off int64) *remoting.Command {
	return remoting.NewRequest(remoting.ReqUpdateConsumerOffset, map[string]string{
		"consumerGroup": group, "topic": topic, "queueId": strconv.Itoa(int(qid)),
		"commitOffset": strconv.FormatInt(off, 10), "bname": "broker-a"})
}

func queueReq(code int32, topic string, qid int32, extra ...string) *remoting.Command {
	ext := map[string]string{"topic": topic, "queueId": strconv.Itoa(int(qid)), "bname": "broker-a"}
	for i := 0; i+1 < len(extra); i += 2 {
		ext[extra[i]] = extra[i+1]
	}
	return remoting.NewRequest(code, ext)
}

func runtimeTable(t testing.TB, resp *remoting.Command) map[string]string {
	t.Helper()
	if resp.Code != remoting.RespSuccess {
		t.Fatalf("runtime info: %d %q", resp.Code, resp.Remark)
	}
	var body struct {
		Table map[string]string `json:"table"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Table
}

func TestConsumerOffsets(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	createTopic(t, tb, c, "O", 2)
	mustSend(t, c, "O", 0, "a", "")

	// Nothing committed and the queue starts at 0: offset 0, SUCCESS.
	for _, q := range []int32{0, 1} {
		resp := invoke(t, c, queryOffsetReq("G", "O", q))
		if resp.Code != remoting.RespSuccess || extInt(t, resp, "offset") != 0 {
			t.Fatalf("queue %d, no commit: %d %v", q, resp.Code, resp.ExtFields)
		}
	}
	if resp := invoke(t, c, updateOffsetReq("G", "O", 0, 1)); resp.Code != remoting.RespSuccess {
		t.Fatalf("update: %d %q", resp.Code, resp.Remark)
	}
	resp := invoke(t, c, queryOffsetReq("G", "O", 0))
	if resp.Code != remoting.RespSuccess || extInt(t, resp, "offset") != 1 {
		t.Fatalf("after update: %d %v", resp.Code, resp.ExtFields)
	}
	bad := []*remoting.Command{
		updateOffsetReq("G", "O", 0, -5),
		remoting.NewRequest(remoting.ReqUpdateConsumerOffset, map[string]string{"consumerGroup": "G", "topic": "O"}),
		remoting.NewRequest(remoting.ReqQueryConsumerOffset, map[string]string{"topic": "O", "queueId": "0"}),
		queryOffsetReq("G", "O", -1),
	}
	for i, req := range bad {
		if resp := invoke(t, c, req); resp.Code == remoting.RespSuccess || resp.Remark == "" {
			t.Errorf("bad request %d answered %d %q", i, resp.Code, resp.Remark)
		}
	}

	// Offsets survive a restart on the same directory, as do topics and
	// messages; the file has Java's format.
	tb.Restart(t)
	raw, err := os.ReadFile(filepath.Join(tb.Dir, "config", "consumerOffset.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		OffsetTable map[string]map[string]int64 `json:"offsetTable"`
	}
	if err := json.Unmarshal(raw, &file); err != nil || file.OffsetTable["O@G"]["0"] != 1 {
		t.Fatalf("consumerOffset.json %s: %v", raw, err)
	}
	c = tb.Dial(t)
	resp = invoke(t, c, queryOffsetReq("G", "O", 0))
	if resp.Code != remoting.RespSuccess || extInt(t, resp, "offset") != 1 {
		t.Fatalf("after restart: %d %v", resp.Code, resp.ExtFields)
	}
	pr := invoke(t, c, pullReq("O", 0, 0, pullOpts{}))
	if pr.Code != remoting.RespSuccess || len(decode(t, pr.Body)) != 1 {
		t.Fatalf("message lost across restart: %d", pr.Code)
	}
}

func TestQueueOffsets(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	createTopic(t, tb, c, "Q", 1)
	before := time.Now().UnixMilli()
	for i := range 3 {
		mustSend(t, c, "Q", 0, strconv.Itoa(i), "")
	}
	time.Sleep(5 * time.Millisecond)
	after := time.Now().UnixMilli()
	cases := []struct {
		name string
		req  *remoting.Command
		key  string
		want func(int64) bool
	}{
		{"max", queueReq(remoting.ReqGetMaxOffset, "Q", 0), "offset", func(v int64) bool { return v == 3 }},
		{"min", queueReq(remoting.ReqGetMinOffset, "Q", 0), "offset", func(v int64) bool { return v == 0 }},
		{"max of unknown queue", queueReq(remoting.ReqGetMaxOffset, "Nope", 3), "offset", func(v int64) bool { return v == 0 }},
		{"search before all", queueReq(remoting.ReqSearchOffsetByTimestamp, "Q", 0, "timestamp", strconv.FormatInt(before-1000, 10)), "offset",
			func(v int64) bool { return v == 0 }},
		{"search after all", queueReq(remoting.ReqSearchOffsetByTimestamp, "Q", 0, "timestamp", strconv.FormatInt(after+1000, 10)), "offset",
			func(v int64) bool { return v == 3 }},
		{"earliest", queueReq(remoting.ReqGetEarliestMsgStoreTime, "Q", 0), "timestamp",
			func(v int64) bool { return v >= before-1 && v <= after }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := invoke(t, c, tc.req)
			if resp.Code != remoting.RespSuccess {
				t.Fatalf("code %d %q", resp.Code, resp.Remark)
			}
			if v := extInt(t, resp, tc.key); !tc.want(v) {
				t.Errorf("%s = %d", tc.key, v)
			}
		})
	}
	// Errors still carry the field the client parses.
	resp := invoke(t, c, queueReq(remoting.ReqGetEarliestMsgStoreTime, "Q", 5))
	if resp.Code == remoting.RespSuccess {
		t.Errorf("earliest of an empty queue: success")
	}
	extInt(t, resp, "timestamp")
	resp = invoke(t, c, queueReq(remoting.ReqSearchOffsetByTimestamp, "Q", 0))
	if resp.Code != remoting.RespSystemError {
		t.Errorf("search without timestamp: %d", resp.Code)
	}
}
