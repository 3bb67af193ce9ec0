package broker

// Behavior: PULL_MESSAGE (11) as protocol.md §A4 describes it. The topic
// must exist and be readable and the queue id below its read queue count.
// The subscription comes from the request when sysFlag has the
// subscription bit, else from the group's heartbeat, else "*". The store
// read filters by tag hash code, and records whose exact tag does not match
// (hash collisions) are dropped too. A commit offset in the request (sysFlag
// bit 0) is committed for the group. Statuses:
//
//	found                         → SUCCESS (0), nextBeginOffset = last + 1
//	entries there, all filtered   → PULL_RETRY_IMMEDIATELY (20), next past them
//	offset == max, or empty queue
//	and offset 0                  → PULL_NOT_FOUND (19) after long polling
//	offset < min, > max, or empty
//	queue and offset ≠ 0          → PULL_OFFSET_MOVED (21)
//
// Every answer, errors included, carries nextBeginOffset, minOffset,
// maxOffset and suggestWhichBrokerId (0), plus topicSysFlag and
// groupSysFlag (0). The body is the stored records back to back, exactly
// as stored. Nothing found with the suspend bit parks the request
// (longpoll.go).

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/txmq/txmq/internal/broker/clients"
	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/store"
)

// Pull limits (Java maxTransferCountOnMessageInMemory and
// maxTransferBytesOnMessageInMemory).
const (
	maxPullMsgNums     = 32
	maxPullBytes       = 256 << 10
	maxSuspendDuration = 30 * time.Second
)

// Pull request sysFlag bits (Java PullSysFlag).
const (
	pullFlagCommitOffset = 1 << 0
	pullFlagSuspend      = 1 << 1
	pullFlagSubscription = 1 << 2
)

// pullArgs is a parsed PULL_MESSAGE request.
type pullArgs struct {
	group        string
	topic        string
	qid          int32
	offset       int64
	maxNums      int
	sysFlag      int32
	commitOffset int64
	suspend      time.Duration
	sub          *clients.Subscription // nil: all messages
}

// pullOutcome says what a read found.
type pullOutcome int

const (
	pullDone     pullOutcome = iota // answer it
	pullNotFound                    // PULL_NOT_FOUND: may be parked
	pullFiltered                    // everything filtered: a parked pull may move on
)

func parsePullArgs(req *remoting.Command) (a pullArgs, err error) {
	if a.group, err = req.ExtString("consumerGroup"); err != nil {
		return a, err
	}
	if a.topic, err = req.ExtString("topic"); err != nil {
		return a, err
	}
	if a.qid, err = req.ExtInt32("queueId"); err != nil {
		return a, err
	}
	if a.offset, err = req.ExtInt64("queueOffset"); err != nil {
		return a, err
	}
	n, err := req.ExtInt32Or("maxMsgNums", maxPullMsgNums)
	if err != nil {
		return a, err
	}
	a.maxNums = int(min(max(n, 1), maxPullMsgNums))
	if a.sysFlag, err = req.ExtInt32Or("sysFlag", 0); err != nil {
		return a, err
	}
	if a.commitOffset, err = req.ExtInt64Or("commitOffset", -1); err != nil {
		return a, err
	}
	ms, err := req.ExtInt64Or("suspendTimeoutMillis", 0)
	if err != nil {
		return a, err
	}
	a.suspend = min(time.Duration(max(ms, 0))*time.Millisecond, maxSuspendDuration)
	return a, nil
}

// handlePull serves PULL_MESSAGE.
func (b *Broker) handlePull(_ context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	a, err := parsePullArgs(req)
	if err != nil {
		return pullError(req, 0, respSystemError, "pull message: bad request header: "+err.Error()), nil
	}
	if resp := b.checkPull(req, &a); resp != nil {
		return resp, nil
	}
	if a.sysFlag&pullFlagCommitOffset != 0 && a.commitOffset >= 0 && a.group != "" {
		if info, ok := b.clients.ConsumerGroup(a.group); !ok || info.MessageModel != "BROADCASTING" {
			b.offsets.commit(a.group, a.topic, a.qid, a.commitOffset)
		}
	}
	resp, outcome := b.readPull(req, &a)
	if outcome != pullNotFound || a.sysFlag&pullFlagSuspend == 0 {
		// Nothing keeps req: a and sub hold strings, which never alias
		// the request's frame or map.
		req.MarkRecyclable()
		return resp, nil
	}
	hold, wakeable := a.suspend, true
	if !b.cfg.LongPollingEnable {
		hold, wakeable = min(time.Duration(b.cfg.ShortPollingTimeMills)*time.Millisecond, maxSuspendDuration), false
	}
	if hold <= 0 || !b.holds.park(c, req, a, time.Now().Add(hold), wakeable) {
		req.MarkRecyclable()
		return resp, nil
	}
	return nil, nil // answered later by longpoll.go; the parked pull keeps req
}

// checkPull validates topic, queue and subscription; it returns an error
// response, or nil and fills a.sub.
func (b *Broker) checkPull(req *remoting.Command, a *pullArgs) *remoting.Command {
	if err := message.ValidateTopic(a.topic); err != nil {
		return pullError(req, a.offset, respSystemError, "pull message: "+err.Error())
	}
	tc, ok := b.topics.get(a.topic)
	if !ok {
		return pullError(req, a.offset, respTopicNotExist, "topic["+a.topic+"] not exist, apply first please!")
	}
	if tc.Perm&permRead == 0 {
		return pullError(req, a.offset, respNoPermission, "the topic["+a.topic+"] pulling message is forbidden")
	}
	if a.qid < 0 || int(a.qid) >= tc.ReadQueueNums {
		return pullError(req, a.offset, respSystemError, "queueId["+strconv.Itoa(int(a.qid))+"] is illegal, topic:["+
			a.topic+"] topicConfig.readQueueNums:["+strconv.Itoa(tc.ReadQueueNums)+"] consumer:["+a.group+"]")
	}
	var sub *clients.Subscription
	if a.sysFlag&pullFlagSubscription != 0 {
		s, err := clients.ParseSubscriptionType(a.topic, req.ExtStringOr("subscription", ""), req.ExtStringOr("expressionType", ""))
		if err != nil {
			return pullError(req, a.offset, respSubscriptionParse, "parse the consumer's subscription failed: "+err.Error())
		}
		sub = s
	} else if s, ok := b.clients.Subscription(a.group, a.topic); ok {
		sub = s
	}
	if sub != nil && !sub.IsTag() {
		return pullError(req, a.offset, respSystemError, "The broker does not support consumer to filter message by "+sub.ExpressionType)
	}
	if sub != nil && sub.MatchesAll() {
		sub = nil
	}
	a.sub = sub
	return nil
}

// readPull reads the queue once and builds the answer. When the answer's
// body is the store result's own Body, the result is released by the
// answer's OnWritten, once the connection has written it (or dropped it);
// a caller that does not send the answer leaves it to the GC.
func (b *Broker) readPull(req *remoting.Command, a *pullArgs) (*remoting.Command, pullOutcome) {
	var filter func(int64) bool
	if a.sub != nil {
		filter = a.sub.MatchCode
	}
	r, err := b.store.GetMessages(a.topic, a.qid, a.offset, a.maxNums, maxPullBytes, filter)
	if err != nil {
		code := int32(respSystemError)
		if errors.Is(err, store.ErrClosed) {
			code = respServiceNotAvailable
		}
		return pullError(req, a.offset, code, "pull message: "+err.Error()), pullDone
	}
	var (
		code    int32
		outcome = pullDone
		body    []byte
		handed  bool // body is r.Body: r is released when it is written
	)
	switch r.Status {
	case store.Found:
		body = r.Body
		whole := true
		if a.sub != nil {
			body, whole = exactTagBody(r, a.sub)
		}
		switch {
		case len(body) == 0:
			code, outcome = respPullRetryImmediate, pullFiltered
		case whole:
			code, handed = respSuccess, true
		default:
			code = respSuccess
		}
	case store.NoMatchedMessage, store.MessageWasRemoving:
		code, outcome = respPullRetryImmediate, pullFiltered
	case store.NoMessageInQueue:
		if a.offset != 0 {
			code = respPullOffsetMoved
		} else {
			code, outcome = respPullNotFound, pullNotFound
		}
	case store.OffsetOverflowOne:
		code, outcome = respPullNotFound, pullNotFound
	case store.OffsetFoundNull:
		code = respPullNotFound
	default: // OffsetTooSmall, OffsetOverflowBadly
		code = respPullOffsetMoved
	}
	resp := req.Reply(code, "")
	setPullOffsets(resp, r.NextBeginOffset, r.MinOffset, r.MaxOffset)
	resp.Body = body
	if outcome == pullFiltered {
		a.offset = r.NextBeginOffset // a parked pull moves past what it cannot match
	}
	if handed {
		resp.OnWritten = r.Release
	} else {
		r.Release()
	}
	return resp, outcome
}

// exactTagBody returns the found records whose TAGS match sub exactly (the
// tag hash code matched already): r.Body itself and true when all match,
// else a new slice (nil when none match) and false.
func exactTagBody(r *store.GetResult, sub *clients.Subscription) ([]byte, bool) {
	keep := 0
	mask := uint64(0) // bit i: record i matches (records are ≤ 32 per pull)
	for i, rec := range r.Records {
		v, err := message.Parse(rec)
		if err != nil {
			continue
		}
		tag, _ := message.PropertyBytes(v.Properties(), message.PropTags)
		if sub.MatchTag(tag) && i < 64 {
			mask |= 1 << i
			keep++
		}
	}
	if keep == len(r.Records) {
		return r.Body, true
	}
	if keep == 0 {
		return nil, false
	}
	out := make([]byte, 0, len(r.Body))
	for i, rec := range r.Records {
		if i < 64 && mask&(1<<i) != 0 {
			out = append(out, rec...)
		}
	}
	return out, false
}

func setPullOffsets(resp *remoting.Command, next, minOff, maxOff int64) {
	resp.SetExtInt("nextBeginOffset", next)
	resp.SetExtInt("minOffset", minOff)
	resp.SetExtInt("maxOffset", maxOff)
	resp.SetExt("suggestWhichBrokerId", "0")
	resp.SetExt("topicSysFlag", "0")
	resp.SetExt("groupSysFlag", "0")
}

// pullError is an error answer that still carries the four offset fields
// (nextBeginOffset = the requested offset, so a client never rewinds).
func pullError(req *remoting.Command, offset int64, code int32, remark string) *remoting.Command {
	resp := req.Reply(code, remark)
	setPullOffsets(resp, max(offset, 0), 0, 0)
	return resp
}
