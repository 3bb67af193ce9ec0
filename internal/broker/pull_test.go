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

const (
	flagCommit  = 1
	flagSuspend = 2
	flagSub     = 4
)

func TestPullStatuses(t *testing.T) { sendPaths(t, testPullStatuses) }

func testPullStatuses(t *testing.T, opts ...testutil.Option) {
	tb := testutil.RunBroker(t, opts...)
	c := tb.Dial(t)
	createTopic(t, tb, c, "P", 2)
	for i := range 5 {
		tag := "A"
		if i >= 3 {
			tag = "B"
		}
		mustSend(t, c, "P", 0, "m"+strconv.Itoa(i), props("TAGS", tag))
	}
	cases := []struct {
		name      string
		qid       int32
		offset    int64
		o         pullOpts
		code      int32
		next      int64
		msgs      int
		firstBody string
	}{
		{"found all", 0, 0, pullOpts{}, remoting.RespSuccess, 5, 5, "m0"},
		{"found from middle", 0, 2, pullOpts{maxNums: 2}, remoting.RespSuccess, 4, 2, "m2"},
		{"tag filter", 0, 0, pullOpts{sysFlag: flagSub, sub: "B"}, remoting.RespSuccess, 5, 2, "m3"},
		{"tag filter two tags", 0, 0, pullOpts{sysFlag: flagSub, sub: "A || B"}, remoting.RespSuccess, 5, 5, "m0"},
		{"all filtered out", 0, 0, pullOpts{sysFlag: flagSub, sub: "C"}, remoting.RespPullRetryImmediately, 5, 0, ""},
		{"at max", 0, 5, pullOpts{}, remoting.RespPullNotFound, 5, 0, ""},
		{"above max", 0, 9, pullOpts{}, remoting.RespPullOffsetMoved, 0, 0, ""},
		{"empty queue offset 0", 1, 0, pullOpts{}, remoting.RespPullNotFound, 0, 0, ""},
		{"empty queue offset 3", 1, 3, pullOpts{}, remoting.RespPullOffsetMoved, 0, 0, ""},
		{"below min", 0, -1, pullOpts{}, remoting.RespPullOffsetMoved, 0, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := invoke(t, c, pullReq("P", tc.qid, tc.offset, tc.o))
			checkPullFields(t, resp)
			if resp.Code != tc.code {
				t.Fatalf("code %d %q, want %d", resp.Code, resp.Remark, tc.code)
			}
			if got := extInt(t, resp, "nextBeginOffset"); got != tc.next {
				t.Errorf("nextBeginOffset %d, want %d", got, tc.next)
			}
			if tc.qid == 0 && extInt(t, resp, "maxOffset") != 5 {
				t.Errorf("maxOffset %s", resp.ExtStringOr("maxOffset", ""))
			}
			if tc.msgs == 0 {
				if len(resp.Body) != 0 {
					t.Errorf("body of %d bytes", len(resp.Body))
				}
				return
			}
			ms := decode(t, resp.Body)
			if len(ms) != tc.msgs || string(ms[0].Body) != tc.firstBody {
				t.Fatalf("got %d messages, first %q", len(ms), ms[0].Body)
			}
			for i := 1; i < len(ms); i++ {
				if ms[i].QueueOffset <= ms[i-1].QueueOffset {
					t.Errorf("offsets not increasing: %d then %d", ms[i-1].QueueOffset, ms[i].QueueOffset)
				}
			}
		})
	}
	errCases := []struct {
		name string
		req  *remoting.Command
		code int32
	}{
		{"unknown topic", pullReq("NoTopic", 0, 0, pullOpts{}), remoting.RespTopicNotExist},
		{"bad queue", pullReq("P", 7, 0, pullOpts{}), remoting.RespSystemError},
		{"bad subscription", pullReq("P", 0, 0, pullOpts{sysFlag: flagSub, sub: "||"}), remoting.RespSubscriptionParseFailed},
		{"missing offset", func() *remoting.Command {
			r := pullReq("P", 0, 0, pullOpts{})
			r.ExtFields.Delete("queueOffset")
			return r
		}(), remoting.RespSystemError},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			resp := invoke(t, c, tc.req)
			checkPullFields(t, resp)
			if resp.Code != tc.code || resp.Remark == "" {
				t.Fatalf("code %d %q, want %d", resp.Code, resp.Remark, tc.code)
			}
		})
	}
}

func TestPullBodyIsStoredBytes(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	createTopic(t, tb, c, "PB", 1)
	resp := mustSend(t, c, "PB", 0, "payload", props("TAGS", "x", "KEYS", "k"))
	_, off, _ := message.ParseOffsetMessageID(resp.ExtStringOr("msgId", ""))
	rec, err := tb.Broker.Store().ReadAt(off)
	if err != nil {
		t.Fatal(err)
	}
	pr := invoke(t, c, pullReq("PB", 0, 0, pullOpts{}))
	if pr.Code != remoting.RespSuccess || string(pr.Body) != string(rec) {
		t.Fatalf("pull body differs from the stored record (code %d)", pr.Code)
	}
	v, err := message.Parse(pr.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v.CommitLogOffset() != off {
		t.Errorf("PHYSICALOFFSET %d, msgId says %d", v.CommitLogOffset(), off)
	}
}

func TestPullCommitsOffset(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	createTopic(t, tb, c, "PC", 1)
	mustSend(t, c, "PC", 0, "a", "")
	invoke(t, c, pullReq("PC", 0, 1, pullOpts{group: "G", sysFlag: flagCommit, commitOf: 1}))
	resp := invoke(t, c, queryOffsetReq("G", "PC", 0))
	if resp.Code != remoting.RespSuccess || extInt(t, resp, "offset") != 1 {
		t.Fatalf("committed offset: %d %v", resp.Code, resp.ExtFields)
	}
}

func TestLongPolling(t *testing.T) { sendPaths(t, testLongPolling) }

func testLongPolling(t *testing.T, opts ...testutil.Option) {
	tb := testutil.RunBroker(t, opts...)
	c := tb.Dial(t)
	createTopic(t, tb, c, "LP", 2)

	t.Run("woken by a send", func(t *testing.T) {
		type result struct {
			resp *remoting.Command
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			resp, err := c.Invoke(context.Background(), pullReq("LP", 0, 0, pullOpts{sysFlag: flagSuspend, suspend: 10 * time.Second}))
			if err != nil {
				t.Errorf("pull: %v", err)
			}
			done <- result{resp, time.Now()}
		}()
		waitParked(t, tb, 1)
		// A send to the other queue does not wake it.
		mustSend(t, c, "LP", 1, "other", "")
		select {
		case r := <-done:
			t.Fatalf("answered by a send to another queue: %d", r.resp.Code)
		case <-time.After(50 * time.Millisecond):
		}
		sent := time.Now()
		mustSend(t, c, "LP", 0, "wake", "")
		r := <-done
		if r.resp == nil || r.resp.Code != remoting.RespSuccess {
			t.Fatalf("parked pull answer: %+v", r.resp)
		}
		if d := r.at.Sub(sent); d > 200*time.Millisecond {
			t.Errorf("answered %v after the send", d)
		}
		if ms := decode(t, r.resp.Body); len(ms) != 1 || string(ms[0].Body) != "wake" {
			t.Errorf("got %d messages", len(ms))
		}
	})

	t.Run("filtered wake keeps waiting", func(t *testing.T) {
		max := tb.Broker.Store().MaxOffset("LP", 0)
		done := make(chan *remoting.Command, 1)
		go func() {
			resp, _ := c.Invoke(context.Background(), pullReq("LP", 0, max,
				pullOpts{sysFlag: flagSuspend | flagSub, sub: "Want", suspend: 10 * time.Second}))
			done <- resp
		}()
		waitParked(t, tb, 1)
		mustSend(t, c, "LP", 0, "skip", props("TAGS", "Other"))
		select {
		case r := <-done:
			t.Fatalf("answered for a filtered message: %d", r.Code)
		case <-time.After(50 * time.Millisecond):
		}
		mustSend(t, c, "LP", 0, "want", props("TAGS", "Want"))
		r := <-done
		if r == nil || r.Code != remoting.RespSuccess {
			t.Fatalf("answer %+v", r)
		}
		ms := decode(t, r.Body)
		if len(ms) != 1 || string(ms[0].Body) != "want" || extInt(t, r, "nextBeginOffset") != max+2 {
			t.Errorf("got %d messages, next %s", len(ms), r.ExtStringOr("nextBeginOffset", ""))
		}
	})

	t.Run("times out with 19", func(t *testing.T) {
		max := tb.Broker.Store().MaxOffset("LP", 1)
		start := time.Now()
		resp := invoke(t, c, pullReq("LP", 1, max, pullOpts{sysFlag: flagSuspend, suspend: 150 * time.Millisecond}))
		if d := time.Since(start); d < 140*time.Millisecond || d > 2*time.Second {
			t.Errorf("answered after %v", d)
		}
		checkPullFields(t, resp)
		if resp.Code != remoting.RespPullNotFound || extInt(t, resp, "nextBeginOffset") != max {
			t.Fatalf("timeout answer %d %v", resp.Code, resp.ExtFields)
		}
	})

	t.Run("without suspend answers at once", func(t *testing.T) {
		resp := invoke(t, c, pullReq("LP", 1, 99, pullOpts{}))
		if resp.Code != remoting.RespPullOffsetMoved {
			t.Fatalf("code %d", resp.Code)
		}
	})

	t.Run("connection close releases", func(t *testing.T) {
		c2 := tb.Dial(t)
		go func() {
			_, _ = c2.Invoke(context.Background(), pullReq("LP", 1, 1000, pullOpts{sysFlag: flagSuspend, suspend: 20 * time.Second}))
		}()
		// offset 1000 > max: OFFSET_MOVED at once, not parked; park a real one.
		max := tb.Broker.Store().MaxOffset("LP", 1)
		go func() {
			_, _ = c2.Invoke(context.Background(), pullReq("LP", 1, max, pullOpts{sysFlag: flagSuspend, suspend: 20 * time.Second}))
		}()
		waitParked(t, tb, 1)
		_ = c2.Close()
		waitParked(t, tb, 0)
	})
}

func TestShortPolling(t *testing.T) {
	tb := testutil.RunBroker(t, testutil.WithConfig("longPollingEnable", "false"), testutil.WithConfig("shortPollingTimeMills", "100"))
	c := tb.Dial(t)
	createTopic(t, tb, c, "SP", 1)
	start := time.Now()
	resp := invoke(t, c, pullReq("SP", 0, 0, pullOpts{sysFlag: flagSuspend, suspend: 20 * time.Second}))
	if d := time.Since(start); d < 90*time.Millisecond || d > 2*time.Second {
		t.Errorf("short poll answered after %v", d)
	}
	if resp.Code != remoting.RespPullNotFound {
		t.Fatalf("code %d", resp.Code)
	}
}

// waitParked waits until the broker holds n parked pulls.
func waitParked(t *testing.T, tb *testutil.TestBroker, n int) {
	t.Helper()
	c := tb.Dial(t)
	testutil.Eventually(t, 5*time.Second, func() error {
		resp := invoke(t, c, remoting.NewRequest(remoting.ReqGetBrokerRuntimeInfo, nil))
		table := runtimeTable(t, resp)
		if table["parkedPulls"] != strconv.Itoa(n) {
			return errorf("parkedPulls %s, want %d", table["parkedPulls"], n)
		}
		return nil
	})
}
