package broker

// Behavior: CONSUMER_SEND_MSG_BACK (36), a consumer handing back a message
// it failed to consume (protocol.md §A4; Java
// AbstractSendMessageProcessor.consumerSendMsgBack). Header: group,
// offset (the message's commit-log offset), delayLevel, originMsgId,
// originTopic, maxReconsumeTimes, bname. The message is looked up by
// offset (SYSTEM_ERROR when it is gone) and written again, with the same
// body, flag, born time and host and properties, and reconsumeTimes + 1:
//
//   - to %DLQ%<group> (1 queue, perm RW, created on first use), without
//     delay, when its reconsumeTimes ≥ maxReconsumeTimes (the request's
//     value, else the group's retryMaxTimes) or delayLevel < 0 (an orderly
//     consumer that gave up);
//   - else to %RETRY%<group> through the schedule service with DELAY =
//     delayLevel, or 3 + reconsumeTimes when delayLevel is 0 (10 s, 30 s,
//     1 m … with the default levels).
//
// RETRY_TOPIC (the original topic) and ORIGIN_MESSAGE_ID are set when the
// message does not carry them yet. The answer is SUCCESS with no body.
//
// The client fallback (a plain SEND to %RETRY%<group> with DELAY and
// reconsumeTimes in the header) takes the ordinary send path: routeRetry
// (send.go) moves it to the DLQ when reconsumeTimes > maxReconsumeTimes,
// else the schedule hook delays it.

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/schedule"
)

// defaultMaxReconsumeTimes is Java's default retryMaxTimes.
const defaultMaxReconsumeTimes = 16

type sendBackHeader struct {
	group             string
	offset            int64
	delayLevel        int32
	originMsgID       string
	originTopic       string
	maxReconsumeTimes int32 // -1: not sent
}

func parseSendBackHeader(req *remoting.Command) (h sendBackHeader, err error) {
	if h.group, err = req.ExtString("group"); err != nil {
		return h, err
	}
	if h.offset, err = req.ExtInt64("offset"); err != nil {
		return h, err
	}
	if h.delayLevel, err = req.ExtInt32Or("delayLevel", 0); err != nil {
		return h, err
	}
	h.originMsgID = req.ExtStringOr("originMsgId", "")
	h.originTopic = req.ExtStringOr("originTopic", "")
	if h.maxReconsumeTimes, err = req.ExtInt32Or("maxReconsumeTimes", -1); err != nil {
		return h, err
	}
	return h, nil
}

// handleSendBack serves CONSUMER_SEND_MSG_BACK.
func (b *Broker) handleSendBack(ctx context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	h, err := parseSendBackHeader(req)
	if err != nil {
		return nil, headerErr("consumer send back", err)
	}
	if message.ValidateTopic(message.RetryTopic(h.group)) != nil {
		return nil, codeErr(respMessageIllegal, "consumer send back: group %q makes no valid retry topic", h.group)
	}
	gc, found := b.groups.get(h.group)
	if !found {
		if !b.cfg.AutoCreateSubscriptionGroup {
			return nil, codeErr(remoting.RespSubscriptionGroupNotExist,
				"subscription group [%s] does not exist (autoCreateSubscriptionGroup=false)", h.group)
		}
		if _, err := b.groups.ensure(h.group); err != nil {
			return nil, codeErr(respSystemError, "consumer send back: create subscription group %s: %v", h.group, err)
		}
		gc = defaultGroupConfig(h.group)
	}
	rec, err := b.store.ReadAt(h.offset)
	if err != nil {
		return nil, codeErr(respSystemError, "look message by offset failed, %d: %v", h.offset, err)
	}
	orig, _, err := message.Decode(rec)
	if err != nil {
		return nil, codeErr(respSystemError, "look message by offset failed, %d: %v", h.offset, err)
	}
	maxTimes := int32(gc.RetryMaxTimes)
	if h.maxReconsumeTimes >= 0 {
		maxTimes = h.maxReconsumeTimes
	}

	m := message.Ext{
		Flag:           orig.Flag,
		SysFlag:        orig.SysFlag &^ (message.FlagTransactionMask | message.FlagBornHostV6 | message.FlagStoreHostV6),
		BornTimestamp:  orig.BornTimestamp,
		BornHost:       orig.BornHost,
		StoreHost:      b.addr,
		ReconsumeTimes: orig.ReconsumeTimes + 1,
		Body:           orig.Body,
	}
	props := message.RemoveProperties(orig.Properties, message.PropDelayTimeLevel, message.PropTimerDeliverMs,
		message.PropTimerDelaySec, message.PropTimerDelayMs, message.PropTimerOutMs, message.PropTransactionPrepared,
		schedule.PropScheduledOffset)
	if _, ok := message.Property(props, message.PropRetryTopic); !ok {
		props = message.AppendProperty(props, message.PropRetryTopic, orig.Topic)
	}
	if _, ok := message.Property(props, message.PropOriginMessageID); !ok {
		id := h.originMsgID
		if id == "" {
			id, _ = message.Property(orig.Properties, message.PropUniqClientMessageID)
		}
		if id == "" {
			id = message.OffsetMessageID(orig.StoreHost, h.offset)
		}
		props = message.AppendProperty(props, message.PropOriginMessageID, id)
	}

	toDLQ := orig.ReconsumeTimes >= maxTimes || h.delayLevel < 0
	if toDLQ {
		dlq := message.DLQTopic(h.group)
		if _, err := b.ensureRetryTopic(dlq); err != nil {
			return nil, codeErr(respSystemError, "create dead-letter topic %s: %v", dlq, err)
		}
		m.Topic, m.QueueID, m.Properties = dlq, 0, props
	} else {
		retry := message.RetryTopic(h.group)
		tc, err := b.ensureRetryTopic(retry)
		if err != nil {
			return nil, codeErr(respSystemError, "create retry topic %s: %v", retry, err)
		}
		if tc.Perm&permWrite == 0 || tc.WriteQueueNums < 1 {
			return nil, codeErr(respNoPermission, "the retry topic %s is not writable (perm %d)", retry, tc.Perm)
		}
		level := h.delayLevel
		if level == 0 {
			level = 3 + orig.ReconsumeTimes
		}
		m.Topic, m.QueueID = retry, b.nextQID.pick(tc.WriteQueueNums)
		m.Properties = message.AppendProperty(props, message.PropDelayTimeLevel, strconv.Itoa(int(level)))
		if err := b.runPutHooks(ctx, &m); err != nil {
			return nil, err
		}
	}
	if _, err := b.store.Append(ctx, &m); err != nil {
		return nil, b.storeErr("consumer send back", err)
	}
	if toDLQ {
		b.log.Info("message moved to the dead-letter queue", slog.String("group", h.group),
			slog.String("topic", m.Topic), slog.String("origin_topic", orig.Topic), slog.Int64("offset", h.offset),
			slog.Int("reconsumeTimes", int(orig.ReconsumeTimes)), slog.Int("maxReconsumeTimes", int(maxTimes)),
			slog.Int("delayLevel", int(h.delayLevel)), slog.String("remote", remoteAddrPort(c).String()))
	}
	return ok(req), nil
}
