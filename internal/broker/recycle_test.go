package broker_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/testutil"
)

// recyclePayload is message id's body: deterministic, so a puller can check it.
func recyclePayload(id int) []byte {
	r := rand.New(rand.NewPCG(uint64(id), 77))
	b := make([]byte, 50+r.IntN(4000))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestRecycledBuffersKeepContent runs concurrent sends (whose request
// frames and ext maps are recycled after the store append) next to
// concurrent long-polling pulls (whose parked requests are not recycled,
// and whose bodies go back to the store's pool once written), and checks
// every pulled message against what was sent. A buffer or map reused while
// still referenced shows up as a content mismatch, or as a race under
// -race.
func TestRecycledBuffersKeepContent(t *testing.T) {
	tb := testutil.RunBroker(t)
	c := tb.Dial(t)
	const topic, queues, senders, perSender = "RC", 4, 8, 120
	createTopic(t, tb, c, topic, queues)

	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			sc := tb.Dial(t)
			for i := range perSender {
				id := s*perSender + i
				qid := int32(id % queues)
				tag := []string{"a", "b"}[id%2]
				p := props("TAGS", tag, "KEYS", "k"+strconv.Itoa(id))
				var req *remoting.Command
				if i%2 == 0 {
					req = sendReq(topic, qid, recyclePayload(id), p)
				} else {
					req = sendV2Req(remoting.ReqSendMessageV2, topic, qid, recyclePayload(id), p)
				}
				ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
				resp, err := sc.Invoke(ctx, req)
				cancel()
				if err != nil || resp.Code != remoting.RespSuccess {
					t.Errorf("send %d: %v %v", id, resp, err)
					return
				}
			}
		})
	}

	want := senders * perSender / queues
	for q := range queues {
		wg.Go(func() {
			pc := tb.Dial(t)
			o := pullOpts{sysFlag: 2, suspend: 300 * time.Millisecond}
			if q >= 2 {
				o.sysFlag |= 4 // subscription in the request: the tag filter path
				o.sub = "a || b"
			}
			seen := map[int]bool{}
			var off int64
			deadline := time.Now().Add(30 * time.Second)
			for len(seen) < want && time.Now().Before(deadline) {
				ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
				resp, err := pc.Invoke(ctx, pullReq(topic, int32(q), off, o))
				cancel()
				if err != nil {
					t.Errorf("pull %d: %v", q, err)
					return
				}
				switch resp.Code {
				case remoting.RespSuccess:
				case 19, 20: // PULL_NOT_FOUND, PULL_RETRY_IMMEDIATELY
					off, _ = strconv.ParseInt(resp.ExtStringOr("nextBeginOffset", ""), 10, 64)
					continue
				default:
					t.Errorf("pull %d: %v", q, resp)
					return
				}
				ms, err := message.DecodeAll(resp.Body)
				if err != nil {
					t.Errorf("pull %d: decode: %v", q, err)
					return
				}
				for _, m := range ms {
					keys, _ := message.Property(m.Properties, "KEYS")
					id, err := strconv.Atoi(keys[1:])
					if err != nil || m.QueueOffset != off {
						t.Errorf("pull %d: message %q at %d, want offset %d", q, keys, m.QueueOffset, off)
						return
					}
					if !bytes.Equal(m.Body, recyclePayload(id)) {
						t.Errorf("pull %d: body of message %d corrupted", q, id)
						return
					}
					seen[id] = true
					off++
				}
				if next, _ := strconv.ParseInt(resp.ExtStringOr("nextBeginOffset", ""), 10, 64); next != off {
					t.Errorf("pull %d: nextBeginOffset %d, want %d", q, next, off)
					return
				}
			}
			if len(seen) != want {
				t.Errorf("queue %d: got %d messages, want %d", q, len(seen), want)
			}
		})
	}
	wg.Wait()
}
