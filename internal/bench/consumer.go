package bench

import (
	"context"
	"strconv"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
)

// Pull parameters: PullSysFlag suspend|subscription, 32 messages, and a
// long poll short enough that a stop is noticed quickly.
const (
	pullSysFlag   = 2 | 4
	pullBatch     = 32
	pullSuspendMs = 1000
)

// pullLoop consumes one queue from off until ctx is done (or, consumer
// mode with a count, until the count is reached, when it calls stop).
func (r *runner) pullLoop(ctx context.Context, stop context.CancelFunc, t target, off int64) {
	ext := map[string]string{
		"consumerGroup": r.cfg.Group, "topic": r.cfg.Topic, "queueId": t.qstr, "queueOffset": "0",
		"maxMsgNums": strconv.Itoa(pullBatch), "sysFlag": strconv.Itoa(pullSysFlag), "commitOffset": "0",
		"suspendTimeoutMillis": strconv.Itoa(pullSuspendMs), "subscription": "*", "subVersion": "0",
		"expressionType": "TAG",
	}
	req := remoting.NewRequest(remoting.ReqPullMessage, ext)
	if r.cfg.Binary {
		req.SerializeType = remoting.SerializeRocketMQ
	}
	countMode := r.cfg.Mode == ModeConsumer && r.cfg.Count > 0
	for ctx.Err() == nil {
		c, err := t.b.get(ctx, 0)
		if err != nil {
			r.noteErr("pull: "+classify(nil, err), 0)
			pause(ctx)
			continue
		}
		req.SetExt("queueOffset", strconv.FormatInt(off, 10))
		req.Opaque, req.Flag = 0, 0
		pctx, cancel := context.WithTimeout(ctx, pullSuspendMs*time.Millisecond+r.cfg.Timeout)
		resp, err := c.Invoke(pctx, req)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				r.noteErr("pull: "+classify(nil, err), 0)
				pause(ctx)
			}
			continue
		}
		r.pulls.Add(1)
		next, nerr := resp.ExtInt64("nextBeginOffset")
		switch resp.Code {
		case remoting.RespSuccess:
			r.consumeBody(resp.Body)
		case remoting.RespPullNotFound, remoting.RespPullRetryImmediately, remoting.RespPullOffsetMoved:
		default:
			r.noteErr("pull: "+classify(resp, nil), 0)
			resp.Release()
			pause(ctx)
			continue
		}
		resp.Release()
		if nerr == nil {
			off = next
		}
		if countMode && r.received.Load() >= r.cfg.Count {
			stop()
			return
		}
	}
}

// consumeBody accounts for the records of one pull response.
func (r *runner) consumeBody(b []byte) {
	now := time.Now().UnixNano()
	var n, bytes int64
	for len(b) > 0 {
		v, err := message.Parse(b)
		if err != nil {
			r.noteErr("pull: undecodable record: "+err.Error(), 0)
			break
		}
		b = b[v.Len():]
		n++
		body := v.Body()
		bytes += int64(len(body))
		seq, ns, ok := readStamp(body)
		if r.tx != nil {
			if ok {
				r.tx.deliver(seq, now, &r.e2e)
			} else {
				r.tx.untracked.Add(1)
			}
			continue
		}
		if !ok {
			ns = v.BornTimestamp() * int64(time.Millisecond)
		}
		r.e2e.Record(time.Duration(now - ns))
	}
	r.received.Add(n)
	r.receivedBytes.Add(bytes)
}
