package interop

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
)

// sentMsg is what a test sent and expects back.
type sentMsg struct {
	body  []byte
	tags  string
	keys  string
	prop  string
	flag  int32
	res   *primitive.SendResult // nil for oneway and batch items
	batch bool
}

// TestSendModes sends with every mode of the official producer (sync,
// async with a callback, oneway, batch, and a body big enough for the
// client to compress) and checks each message as a push consumer receives
// it: body, tags, keys, user property, flag, count, and the ids of the send
// result (MsgID equals the consumed MsgId, OffsetMsgID decodes to this
// broker and the stored record's commit-log offset).
func TestSendModes(t *testing.T) {
	t.Parallel()
	x := startInProc(t)
	topic := uniq("T_send")
	x.createTopic(t, topic, 4)
	p, _ := newProducer(t, x)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var sent []*sentMsg
	mk := func(mode string, i int) (*primitive.Message, *sentMsg) {
		s := &sentMsg{
			body: fmt.Appendf(nil, "%s-%d-%s", mode, i, strings.Repeat("x", i)),
			tags: "Tag" + mode,
			keys: fmt.Sprintf("k-%s-%d k2-%s-%d", mode, i, mode, i),
			prop: fmt.Sprintf("v-%s-%d", mode, i),
			flag: int32(i + 1),
		}
		m := primitive.NewMessage(topic, s.body)
		m.WithTag(s.tags)
		m.WithKeys(strings.Fields(s.keys))
		m.WithProperty("userProp", s.prop)
		m.Flag = s.flag
		return m, s
	}
	const n = 8

	// sync
	for i := range n {
		m, s := mk("sync", i)
		s.res = sendSync(t, p, m)
		sent = append(sent, s)
	}
	// a compressed one: the client zlib-compresses bodies of 4 KiB and more
	{
		m, s := mk("big", 0)
		big := make([]byte, 64<<10)
		for i := range big {
			big[i] = byte('a' + rand.IntN(4))
		}
		s.body = append(s.body, big...)
		m.Body = s.body
		s.res = sendSync(t, p, m)
		sent = append(sent, s)
	}
	// async
	var (
		wg       sync.WaitGroup
		asyncMu  sync.Mutex
		asyncErr []error
	)
	for i := range n {
		m, s := mk("async", i)
		sent = append(sent, s)
		wg.Add(1)
		err := p.SendAsync(ctx, func(_ context.Context, res *primitive.SendResult, err error) {
			defer wg.Done()
			asyncMu.Lock()
			defer asyncMu.Unlock()
			if err == nil && res.Status != primitive.SendOK {
				err = fmt.Errorf("status %v", res.Status)
			}
			if err != nil {
				asyncErr = append(asyncErr, err)
				return
			}
			s.res = res
		}, m)
		if err != nil {
			wg.Done()
			t.Fatalf("SendAsync: %v", err)
		}
	}
	waitGroup(t, &wg, 15*time.Second, "async send callbacks")
	if len(asyncErr) > 0 {
		t.Fatalf("async sends failed: %v", asyncErr)
	}
	// oneway
	for i := range n {
		m, s := mk("oneway", i)
		if err := p.SendOneWay(ctx, m); err != nil {
			t.Fatalf("SendOneWay: %v", err)
		}
		sent = append(sent, s)
	}
	// batch: one SEND_BATCH_MESSAGE, stored as n messages at consecutive offsets of one queue
	var batch []*primitive.Message
	var batchSent []*sentMsg
	for i := range n {
		m, s := mk("batch", i)
		s.batch = true
		batch = append(batch, m)
		batchSent = append(batchSent, s)
	}
	bres, err := p.SendSync(ctx, batch...)
	if err != nil {
		t.Fatalf("batch SendSync: %v", err)
	}
	if bres.Status != primitive.SendOK {
		t.Fatalf("batch SendSync: status %v", bres.Status)
	}
	sent = append(sent, batchSent...)

	for _, s := range sent {
		if s.res != nil {
			checkSendResult(t, x, string(s.body), s.res)
		}
	}
	batchIDs := strings.Split(bres.OffsetMsgID, ",")
	if len(batchIDs) != n {
		t.Errorf("batch send result OffsetMsgID %q: %d ids, want one per message (%d)", bres.OffsetMsgID, len(batchIDs), n)
	}

	c := startPushConsumer(t, x, uniq("CG_send"), topic, "")
	c.In.waitDistinct(t, len(sent), 30*time.Second)
	x.waitCommitted(t, c.Group, topic, 20*time.Second)

	if got := c.In.total(); got != len(sent) {
		t.Errorf("received %d deliveries of %d messages, want each once", got, len(sent))
	}
	brokerHost, brokerPort, _ := net.SplitHostPort(x.BrokerAddr)
	for _, s := range sent {
		got := c.In.get(string(s.body))
		if len(got) != 1 {
			t.Errorf("message %.20q: received %d times, want once", s.body, len(got))
			continue
		}
		m := got[0]
		if m.Topic != topic {
			t.Errorf("%.20q: topic %q, want %q", s.body, m.Topic, topic)
		}
		if !bytes.Equal(m.Body, s.body) {
			t.Errorf("%.20q: body differs (%d bytes, want %d)", s.body, len(m.Body), len(s.body))
		}
		if m.GetTags() != s.tags {
			t.Errorf("%.20q: tags %q, want %q", s.body, m.GetTags(), s.tags)
		}
		if m.GetKeys() != s.keys {
			t.Errorf("%.20q: keys %q, want %q", s.body, m.GetKeys(), s.keys)
		}
		if v := m.GetProperty("userProp"); v != s.prop {
			t.Errorf("%.20q: property userProp=%q, want %q", s.body, v, s.prop)
		}
		if m.Flag != s.flag {
			t.Errorf("%.20q: flag %d, want %d", s.body, m.Flag, s.flag)
		}
		if m.ReconsumeTimes != 0 {
			t.Errorf("%.20q: reconsumeTimes %d, want 0", s.body, m.ReconsumeTimes)
		}
		if m.StoreHost != x.BrokerAddr {
			t.Errorf("%.20q: store host %q, want %q", s.body, m.StoreHost, x.BrokerAddr)
		}
		if m.BornTimestamp <= 0 || m.StoreTimestamp < m.BornTimestamp-1000 {
			t.Errorf("%.20q: born %d, stored %d", s.body, m.BornTimestamp, m.StoreTimestamp)
		}
		if s.res != nil {
			if m.MsgId != s.res.MsgID {
				t.Errorf("%.20q: consumed MsgId %q, send result MsgID %q", s.body, m.MsgId, s.res.MsgID)
			}
			if m.OffsetMsgId != s.res.OffsetMsgID {
				t.Errorf("%.20q: consumed OffsetMsgId %q (commit-log offset %d), send result OffsetMsgID %q",
					s.body, m.OffsetMsgId, m.CommitLogOffset, s.res.OffsetMsgID)
			}
			if m.Queue.QueueId != s.res.MessageQueue.QueueId || m.QueueOffset != s.res.QueueOffset {
				t.Errorf("%.20q: consumed from queue %d offset %d, send result says queue %d offset %d",
					s.body, m.Queue.QueueId, m.QueueOffset, s.res.MessageQueue.QueueId, s.res.QueueOffset)
			}
		}
		if s.batch {
			i, _ := strconv.Atoi(strings.Split(string(s.body), "-")[1])
			if m.Queue.QueueId != bres.MessageQueue.QueueId || m.QueueOffset != bres.QueueOffset+int64(i) {
				t.Errorf("batch item %d: consumed from queue %d offset %d, want queue %d offset %d",
					i, m.Queue.QueueId, m.QueueOffset, bres.MessageQueue.QueueId, bres.QueueOffset+int64(i))
			}
			if i < len(batchIDs) && batchIDs[i] != m.OffsetMsgId {
				t.Errorf("batch item %d: consumed OffsetMsgId %q, send result lists %q", i, m.OffsetMsgId, batchIDs[i])
			}
		}
		// the consumed offset id names this broker too
		id, err := primitive.UnmarshalMsgID([]byte(m.OffsetMsgId))
		if err != nil || id.Addr != brokerHost || strconv.Itoa(id.Port) != brokerPort || id.Offset != m.CommitLogOffset {
			t.Errorf("%.20q: consumed OffsetMsgId %q decodes to %+v, %v; want %s with offset %d", s.body, m.OffsetMsgId, id, err, x.BrokerAddr, m.CommitLogOffset)
		}
	}
}

// checkSendResult checks the ids of a send result: MsgID is the client's
// unique id and OffsetMsgID decodes to this broker's address.
func checkSendResult(t *testing.T, x *txmq, what string, res *primitive.SendResult) {
	t.Helper()
	if len(res.MsgID) != 32 {
		t.Errorf("%.20q: send result MsgID %q, want the client's 32-char unique id", what, res.MsgID)
	}
	id, err := primitive.UnmarshalMsgID([]byte(res.OffsetMsgID))
	if err != nil {
		t.Errorf("%.20q: send result OffsetMsgID %q does not decode: %v", what, res.OffsetMsgID, err)
		return
	}
	if got := net.JoinHostPort(id.Addr, strconv.Itoa(id.Port)); got != x.BrokerAddr {
		t.Errorf("%.20q: OffsetMsgID %q names %s, want the broker %s", what, res.OffsetMsgID, got, x.BrokerAddr)
	}
	if res.MessageQueue == nil || res.MessageQueue.Topic == "" || res.QueueOffset < 0 {
		t.Errorf("%.20q: send result without a queue: %+v", what, res)
	}
}

// waitGroup waits for wg, failing the test after timeout.
func waitGroup(t testing.TB, wg *sync.WaitGroup, timeout time.Duration, what string) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// TestOversizedMessage sends a body over maxMessageSize: the send fails
// with the broker's "message illegal" answer (code 13) and the same
// producer keeps working.
func TestOversizedMessage(t *testing.T) {
	t.Parallel()
	x := startInProc(t, "maxMessageSize", "1024")
	topic := uniq("T_big")
	x.createTopic(t, topic, 2)
	p, _ := newProducer(t, x)

	sendSync(t, p, primitive.NewMessage(topic, []byte("small before")))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	big := bytes.Repeat([]byte{'z'}, 2048) // below the client's 4 KiB compression threshold
	res, err := p.SendSync(ctx, primitive.NewMessage(topic, big))
	if err == nil {
		t.Fatalf("sending a 2 KiB body with maxMessageSize=1024 succeeded: %+v", res)
	}
	t.Logf("oversized send failed as expected: %v", err)
	if !strings.Contains(err.Error(), "CODE: 13") {
		t.Errorf("oversized send error %q: want the broker's MESSAGE_ILLEGAL answer (CODE: 13)", err)
	}

	after := sendSync(t, p, primitive.NewMessage(topic, []byte("small after")))
	c := startPushConsumer(t, x, uniq("CG_big"), topic, "", consumerFromFirst())
	c.In.waitDistinct(t, 2, 20*time.Second)
	if !c.In.has("small before") || !c.In.has("small after") {
		t.Errorf("small messages around the oversized one not both delivered: %v", c.In.snapshot())
	}
	for _, m := range c.In.snapshot() {
		if len(m.Body) > 1024 {
			t.Errorf("the oversized message was stored and delivered (%d bytes)", len(m.Body))
		}
	}
	_ = after
}
