package broker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/broker"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
)

// TestHandlersRefuseGarbage sends every request code the broker serves with
// missing, malformed and hostile fields: each gets an answer with a remark
// (or a success), never a panic or a dropped request.
func TestHandlersRefuseGarbage(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	createTopic(t, tb, c, "R", 1)
	codes := []int32{10, 11, 12, 14, 15, 17, 21, 28, 29, 30, 31, 32, 33, 36, 200, 201, 202, 208, 215, 310, 320}
	keys := []string{"topic", "b", "queueId", "e", "queueOffset", "consumerGroup", "offset", "maxNum", "key",
		"commitOffset", "timestamp", "maxMsgNums", "sysFlag", "f", "suspendTimeoutMillis", "readQueueNums", "writeQueueNums",
		"perm", "beginTimestamp", "endTimestamp", "subscription", "expressionType", "i", "properties", "batch", "m"}
	values := []string{"", "-1", "R", "9223372036854775807", "-9223372036854775808", "x y", "2147483648", "\x01\x02", "%RETRY%R", "7"}
	bodies := [][]byte{nil, {0}, {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, []byte("{}"), []byte(`{"groupName":"g","retryMaxTimes":-9}`)}
	n := 0
	for _, code := range codes {
		for vi, v := range values {
			ext := map[string]string{}
			for ki, k := range keys {
				ext[k] = values[(vi+ki)%len(values)]
			}
			ext["topic"], ext["b"] = v, v
			req := remoting.NewRequest(code, ext)
			req.Body = bodies[(vi+int(code))%len(bodies)]
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			resp, err := c.Invoke(ctx, req)
			cancel()
			if err != nil {
				t.Fatalf("code %d ext %v: %v", code, ext, err)
			}
			if strings.Contains(resp.Remark, "panic") {
				t.Fatalf("code %d ext %v: %q", code, ext, resp.Remark)
			}
			if resp.Code != remoting.RespSuccess && resp.Remark == "" && code != remoting.ReqPullMessage {
				t.Errorf("code %d ext %v: answer %d without a remark", code, ext, resp.Code)
			}
			n++
		}
		// And with no ext fields at all.
		resp := invoke(t, c, remoting.NewRequest(code, nil))
		if strings.Contains(resp.Remark, "panic") {
			t.Fatalf("code %d without ext: %q", code, resp.Remark)
		}
	}
	t.Logf("%d requests answered", n)
}

func TestNewRefusesBadSetups(t *testing.T) {
	tb := testutil.RunBroker(t)
	cfg := tb.Config
	if _, err := broker.New(cfg, broker.Options{Logger: testutil.NewTestLogger(t)}); err == nil {
		t.Error("a second broker opened a locked data directory")
	}
	bad := testutil.TestConfig(t.TempDir(), "127.0.0.1:1")
	bad.DefaultTopicQueueNums = 0
	if _, err := broker.New(bad, broker.Options{}); err == nil {
		t.Error("invalid config accepted")
	}
	odd := testutil.TestConfig(t.TempDir(), "")
	odd.EmbeddedNamesrv = true // no name server: nothing to register with
	odd.StorePathCommitLog = t.TempDir()
	if _, err := broker.New(odd, broker.Options{}); err == nil || !strings.Contains(err.Error(), "storePathCommitLog") {
		t.Errorf("storePathCommitLog elsewhere: %v", err)
	}
	// New then Shutdown without Start releases everything.
	cfg2 := testutil.TestConfig(t.TempDir(), "")
	cfg2.EmbeddedNamesrv = true
	b, err := broker.New(cfg2, broker.Options{Logger: testutil.NewTestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	b2, err := broker.New(cfg2, broker.Options{Logger: testutil.NewTestLogger(t)})
	if err != nil {
		t.Fatalf("reopen after Shutdown: %v", err)
	}
	_ = b2.Shutdown(context.Background())
}
