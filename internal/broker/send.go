package broker

// Behavior: SEND_MESSAGE (10, long header names), SEND_MESSAGE_V2 (310) and
// SEND_BATCH_MESSAGE (320, both with the short a..n header) share one path:
// parse the header, check the topic (name, reserved, exists or auto-create,
// write permission), the queue id and the body size, build the
// message.Ext (born host = the peer, store host = AdvertisedAddr), route
// retry sends that ran out of attempts to %DLQ%<group>, run the put hooks
// (the schedule service diverts delay and timer messages), and append to
// the store. The response carries msgId (offset message id;
// batches: comma-joined), queueId, queueOffset (batch: the first),
// transactionId (UNIQ_KEY), MSG_REGION and TRACE_ON.
//
// Compat notes: see doc.go.

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/store"
	"github.com/txmq/txmq/internal/txn"
)

// maxBatchItems bounds the messages of one SEND_BATCH_MESSAGE.
const maxBatchItems = 1024

// defaultRegion is Java's default MSG_REGION.
const defaultRegion = "DefaultRegion"

// sendHeader is SendMessageRequestHeader (long names) or ...V2 (a..n).
type sendHeader struct {
	producerGroup         string
	topic                 string
	defaultTopic          string
	defaultTopicQueueNums int32
	queueID               int32
	sysFlag               int32
	bornTimestamp         int64
	flag                  int32
	properties            string
	reconsumeTimes        int32
	maxReconsumeTimes     int32 // -1: not sent
	batch                 bool
}

// Header field names: index 0 long (SEND_MESSAGE), 1 short (V2).
var sendFields = [2]struct {
	group, topic, defTopic, defQueues, queueID, sysFlag, born, flag, props, recons, maxRecons, batch string
}{
	{"producerGroup", "topic", "defaultTopic", "defaultTopicQueueNums", "queueId", "sysFlag", "bornTimestamp",
		"flag", "properties", "reconsumeTimes", "maxReconsumeTimes", "batch"},
	{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "l", "m"},
}

func parseSendHeader(req *remoting.Command) (h sendHeader, err error) {
	f := &sendFields[0]
	if req.Code != remoting.ReqSendMessage && req.Code != remoting.ReqSendReplyMessage {
		f = &sendFields[1]
	}
	h.producerGroup = req.ExtStringOr(f.group, "")
	if h.topic, err = req.ExtString(f.topic); err != nil {
		return h, err
	}
	h.defaultTopic = req.ExtStringOr(f.defTopic, defaultTopicTBW102)
	if h.defaultTopicQueueNums, err = req.ExtInt32Or(f.defQueues, 4); err != nil {
		return h, err
	}
	if h.queueID, err = req.ExtInt32(f.queueID); err != nil {
		return h, err
	}
	if h.sysFlag, err = req.ExtInt32Or(f.sysFlag, 0); err != nil {
		return h, err
	}
	if h.bornTimestamp, err = req.ExtInt64Or(f.born, 0); err != nil {
		return h, err
	}
	if h.flag, err = req.ExtInt32Or(f.flag, 0); err != nil {
		return h, err
	}
	h.properties = req.ExtStringOr(f.props, "")
	if h.reconsumeTimes, err = req.ExtInt32Or(f.recons, 0); err != nil {
		return h, err
	}
	if h.maxReconsumeTimes, err = req.ExtInt32Or(f.maxRecons, -1); err != nil {
		return h, err
	}
	h.batch = req.ExtBoolOr(f.batch, false) || req.Code == remoting.ReqSendBatchMessage
	return h, nil
}

// putHook inspects (and may rewrite) a message before it is stored, like
// Java's put-message hooks (HookUtils): a transactional half message is
// diverted to the half topic, a delayed one to the schedule topic. An error
// refuses the send; it should be a *remoting.CodeError. Hooks run in order
// on the handler's goroutine, once per message (per batch item).
type putHook func(ctx context.Context, m *message.Ext) error

// defaultPutHooks are the broker's hooks: the schedule service diverts
// delay-level and timer messages to their schedule topics. (Half messages
// never reach the hooks: the send path hands them to the transaction
// service.)
func (b *Broker) defaultPutHooks() []putHook {
	return []putHook{b.scheduleHook}
}

// scheduleHook diverts a delayed message (schedule.Service.Divert);
// malformed or out-of-range delay properties are MESSAGE_ILLEGAL.
func (b *Broker) scheduleHook(_ context.Context, m *message.Ext) error {
	if err := b.sched.Divert(m); err != nil {
		return codeErr(respMessageIllegal, "%v", err)
	}
	return nil
}

// isHalf reports whether m is a transactional half message (TRAN_MSG=true,
// as Java decides, or the prepared transaction type in sysFlag).
func isHalf(m *message.Ext) bool {
	tran, _ := message.Property(m.Properties, message.PropTransactionPrepared)
	return strings.EqualFold(tran, "true") || m.SysFlag&message.FlagTransactionMask == message.FlagTransPrepared
}

// sendHalf stores a half message through the transaction service and
// answers like a send: msgId names the half (the official client decodes
// its commit-log offset for END_TRANSACTION), queueOffset is the half's
// queue offset (echoed as tranStateTableOffset), transactionId the
// UNIQ_KEY.
func (b *Broker) sendHalf(ctx context.Context, req *remoting.Command, m *message.Ext, group string) (*remoting.Command, error) {
	res, err := b.txn.Prepare(ctx, m, group)
	if err != nil {
		return nil, halfRefused(err)
	}
	return b.halfOK(req, m.QueueID, res), nil
}

// halfOK is the SUCCESS answer to a half send stored at res (queue qid of
// its real topic).
func (b *Broker) halfOK(req *remoting.Command, qid int32, res txn.PrepareResult) *remoting.Command {
	return sendOK(req, message.OffsetMessageID(b.addr, res.Append.CommitLogOffset), qid, res.Append.QueueOffset, res.TransactionID)
}

// halfRefused is the answer to a half the transaction service refused.
func halfRefused(err error) error {
	code, remark := txn.ResponseCode(err)
	return codeErr(code, "%s", remark)
}

var extPool = sync.Pool{New: func() any { return new(message.Ext) }}

// handleSend serves SEND_MESSAGE, SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE.
func (b *Broker) handleSend(ctx context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	h, err := parseSendHeader(req)
	if err != nil {
		return nil, headerErr("send message", err)
	}
	topic, qid, err := b.checkSendTarget(&h)
	if err != nil {
		return nil, err
	}
	if req.Code == remoting.ReqSendBatchMessage || h.batch {
		return b.sendBatch(ctx, c, req, &h, topic, qid)
	}
	if len(req.Body) > b.cfg.MaxMessageSize {
		return nil, codeErr(respMessageIllegal, "the message body size over max value, MAX: %d (body is %d bytes)",
			b.cfg.MaxMessageSize, len(req.Body))
	}
	m := extPool.Get().(*message.Ext)
	defer func() { *m = message.Ext{}; extPool.Put(m) }()
	uniq, half := b.fillSend(m, c, &h, topic, qid, req.Body)
	if half {
		return b.sendHalf(ctx, req, m, h.producerGroup)
	}
	if err := b.routeRetry(m, &h); err != nil {
		return nil, err
	}
	if err := b.runPutHooks(ctx, m); err != nil {
		return nil, err
	}
	res, err := b.store.Append(ctx, m)
	// The store is done with m (it copied the record into its batch buffer
	// before completing the append, or never queued it), and m is reset
	// when this handler returns: nothing references req afterwards.
	req.MarkRecyclable()
	if err != nil {
		return nil, b.storeErr("send message", err)
	}
	return sendOK(req, message.OffsetMessageID(b.addr, res.CommitLogOffset), m.QueueID, res.QueueOffset, uniq), nil
}

// fillSend fills m for storing a single send (fillExt), gives it a
// UNIQ_KEY when the producer sent none, and reports it and whether m is a
// half message. Any other m has its transaction bits cleared: only the
// transaction service writes committed copies.
func (b *Broker) fillSend(m *message.Ext, c *remoting.Conn, h *sendHeader, topic string, qid int32, body []byte) (uniq string, half bool) {
	b.fillExt(m, c, h, topic, qid, body, h.flag, h.properties)
	uniq, _ = message.Property(m.Properties, message.PropUniqClientMessageID)
	if uniq == "" {
		uniq = b.uniq.next(b.addr)
		m.Properties = message.AppendProperty(m.Properties, message.PropUniqClientMessageID, uniq)
	}
	if isHalf(m) {
		return uniq, true
	}
	m.SysFlag &^= message.FlagTransactionMask
	return uniq, false
}

// sendOK is the SUCCESS answer to a send: msgId (batches: comma-joined),
// the queue, the (first) queue offset, transactionId (UNIQ_KEY) and the
// region and trace switch the clients expect.
func sendOK(req *remoting.Command, msgID string, qid int32, queueOffset int64, uniq string) *remoting.Command {
	resp := ok(req)
	resp.SetExt("msgId", msgID)
	resp.SetExt("queueId", strconv.FormatInt(int64(qid), 10))
	resp.SetExt("queueOffset", strconv.FormatInt(queueOffset, 10))
	resp.SetExt("transactionId", uniq)
	resp.SetExt(message.PropMsgRegion, defaultRegion)
	resp.SetExt(message.PropTraceSwitch, "true")
	return resp
}

// sendBatch stores every item of a batch body in the header's queue at
// consecutive offsets, as one store append.
func (b *Broker) sendBatch(ctx context.Context, c *remoting.Conn, req *remoting.Command, h *sendHeader, topic string, qid int32) (*remoting.Command, error) {
	if isRetryOrDLQ(topic) {
		return nil, codeErr(respMessageIllegal, "batch messages cannot be sent to the retry or dead-letter topic %s", topic)
	}
	if len(req.Body) > b.cfg.MaxMessageSize {
		return nil, codeErr(respMessageIllegal, "the message body size over max value, MAX: %d (batch body is %d bytes)",
			b.cfg.MaxMessageSize, len(req.Body))
	}
	items, err := message.DecodeBatch(req.Body, maxBatchItems)
	if err != nil {
		return nil, codeErr(respMessageIllegal, "malformed batch body: %v", err)
	}
	exts := make([]message.Ext, len(items))
	ptrs := make([]*message.Ext, len(items))
	for i := range items {
		m := &exts[i]
		b.fillExt(m, c, h, topic, qid, items[i].Body, items[i].Flag, items[i].Properties)
		if _, ok := message.Property(m.Properties, message.PropUniqClientMessageID); !ok {
			m.Properties = message.AppendProperty(m.Properties, message.PropUniqClientMessageID, b.uniq.next(b.addr))
		}
		if isHalf(m) {
			return nil, codeErr(respMessageIllegal, "batch item %d is a transactional message: transactional messages cannot be batched", i)
		}
		m.SysFlag &^= message.FlagTransactionMask
		if err := b.runPutHooks(ctx, m); err != nil {
			return nil, err
		}
		if m.Topic != topic || m.QueueID != qid {
			return nil, codeErr(respMessageIllegal,
				"batch item %d has a DELAY or TIMER_* property: delay and timer messages cannot be batched", i)
		}
		ptrs[i] = m
	}
	res, err := b.store.AppendBatch(ctx, ptrs)
	// As in handleSend: the store is done with the items, whose bodies
	// alias req.Body, and exts dies with this call.
	req.MarkRecyclable()
	if err != nil {
		return nil, b.storeErr("send batch", err)
	}
	var ids strings.Builder
	ids.Grow(len(res) * 33)
	for i, r := range res {
		if i > 0 {
			ids.WriteByte(',')
		}
		ids.WriteString(message.OffsetMessageID(b.addr, r.CommitLogOffset))
	}
	uniq, _ := message.Property(h.properties, message.PropUniqClientMessageID)
	return sendOK(req, ids.String(), qid, res[0].QueueOffset, uniq), nil
}

// checkSendTarget validates the topic and queue of a send and returns them
// (creating the topic when allowed, picking a queue when queueId < 0).
func (b *Broker) checkSendTarget(h *sendHeader) (string, int32, error) {
	return b.checkSendTargetMay(h, true)
}

// errNeedsCreate: the topic does not exist and creating it was not allowed
// (the inline send path, which must not write the topic table).
var errNeedsCreate = errors.New("broker: topic must be created first")

// checkSendTargetMay is checkSendTarget; with create false a missing topic
// is errNeedsCreate instead of auto-created.
func (b *Broker) checkSendTargetMay(h *sendHeader, create bool) (string, int32, error) {
	topic := h.topic
	if err := message.ValidateTopic(topic); err != nil {
		return "", 0, codeErr(respMessageIllegal, "%v", err)
	}
	if isReservedTopic(topic) {
		return "", 0, codeErr(respNoPermission, "Sending message to topic[%s] is forbidden: it is a system topic", topic)
	}
	tc, found := b.topics.get(topic)
	if !found && !create {
		return "", 0, errNeedsCreate
	}
	if !found {
		var err error
		if tc, err = b.autoCreateTopic(topic, h.defaultTopic, h.defaultTopicQueueNums); err != nil {
			return "", 0, err
		}
	}
	if tc.Perm&permWrite == 0 {
		return "", 0, codeErr(respNoPermission, "the topic[%s] sending message is forbidden (perm %d)", topic, tc.Perm)
	}
	qid := h.queueID
	if qid < 0 {
		if tc.WriteQueueNums < 1 {
			return "", 0, codeErr(respNoPermission, "the topic[%s] has no writable queue", topic)
		}
		qid = b.nextQID.pick(tc.WriteQueueNums)
	}
	// Java accepts ids below max(read, write) queue counts.
	if valid := max(tc.WriteQueueNums, tc.ReadQueueNums); int(qid) >= valid {
		return "", 0, codeErr(respSystemError, "request queueId[%d] is illegal, topic[%s] has %d queues, producer group %s",
			qid, topic, valid, h.producerGroup)
	}
	return topic, qid, nil
}

// fillExt fills m for storing: everything but the offsets and store time.
func (b *Broker) fillExt(m *message.Ext, c *remoting.Conn, h *sendHeader, topic string, qid int32, body []byte, flag int32, props string) {
	m.Topic = topic
	m.QueueID = qid
	m.Flag = flag
	m.SysFlag = h.sysFlag &^ (message.FlagBornHostV6 | message.FlagStoreHostV6)
	m.BornTimestamp = h.bornTimestamp
	m.BornHost = remoteAddrPort(c)
	m.StoreHost = b.addr
	m.ReconsumeTimes = h.reconsumeTimes
	m.Body = body
	m.Properties = message.NormalizeProperties(props)
}

// routeRetry sends a message for %RETRY%<group> that has used up its
// attempts to %DLQ%<group> (Java SendMessageProcessor.handleRetryAndDLQ),
// without delay.
func (b *Broker) routeRetry(m *message.Ext, h *sendHeader) error {
	if !strings.HasPrefix(m.Topic, message.RetryGroupTopicPrefix) {
		return nil
	}
	group := m.Topic[len(message.RetryGroupTopicPrefix):]
	maxTimes := h.maxReconsumeTimes
	if maxTimes < 0 {
		maxTimes = defaultMaxReconsumeTimes
		if gc, ok := b.groups.get(group); ok {
			maxTimes = int32(gc.RetryMaxTimes)
		}
	}
	if h.reconsumeTimes <= maxTimes {
		return nil
	}
	dlq := message.DLQTopic(group)
	if _, err := b.ensureRetryTopic(dlq); err != nil {
		return codeErr(respSystemError, "create dead-letter topic %s: %v", dlq, err)
	}
	m.Topic = dlq
	m.QueueID = 0
	m.Properties = message.RemoveProperties(m.Properties, message.PropDelayTimeLevel,
		message.PropTimerDeliverMs, message.PropTimerDelaySec, message.PropTimerDelayMs)
	b.log.Info("message moved to the dead-letter queue", slog.String("topic", dlq),
		slog.Int("reconsumeTimes", int(h.reconsumeTimes)), slog.Int("maxReconsumeTimes", int(maxTimes)))
	return nil
}

func (b *Broker) runPutHooks(ctx context.Context, m *message.Ext) error {
	for _, hook := range b.putHooks {
		if err := hook(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// storeErr maps a store append error to a response.
func (b *Broker) storeErr(what string, err error) error {
	var ce *remoting.CodeError
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, store.ErrMessageTooLarge), errors.Is(err, store.ErrInvalidTopic),
		errors.Is(err, store.ErrPropertiesTooLong), errors.Is(err, message.ErrTooLarge):
		return &remoting.CodeError{Code: respMessageIllegal, Msg: what + ": " + err.Error(), Err: err}
	case errors.Is(err, store.ErrClosed):
		return &remoting.CodeError{Code: respServiceNotAvailable, Msg: what + ": service not available now: " + err.Error(), Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &remoting.CodeError{Code: respServiceNotAvailable, Msg: what + ": " + err.Error(), Err: err}
	default:
		b.log.Warn("store append failed", slog.String("op", what), slog.Any("err", err))
		return &remoting.CodeError{Code: respSystemError, Msg: what + ": " + err.Error(), Err: err}
	}
}

// qidCounter picks queues round-robin for sends with queueId < 0.
type qidCounter struct{ n atomic.Uint32 }

func (q *qidCounter) pick(n int) int32 {
	return int32((q.n.Add(1) - 1) % uint32(n))
}
