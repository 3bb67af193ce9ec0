package broker

// Behavior: the operator requests. Topics: UPDATE_AND_CREATE_TOPIC (17),
// GET_ALL_TOPIC_CONFIG (21), DELETE_TOPIC_IN_BROKER (215, removes the
// configuration, the consume queues and every group's offsets),
// GET_TOPIC_STATS_INFO (202). Groups: UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
// (200), GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201), GET_CONSUME_STATS (208).
// GET_BROKER_RUNTIME_INFO (28). Topic changes re-register with the name
// servers at once.
//
// Compat notes: Java encodes the bodies of 202 and 208 with MessageQueue
// objects as map keys (not JSON); txmq answers lists instead, see
// TopicStatsBody and ConsumeStatsBody.

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/namesrv"
	"github.com/txmq/txmq/internal/remoting"
)

// TopicStatsBody answers GET_TOPIC_STATS_INFO.
type TopicStatsBody struct {
	OffsetTable []QueueStats `json:"offsetTable"`
}

// QueueStats is one queue of a topic.
type QueueStats struct {
	Topic               string `json:"topic"`
	BrokerName          string `json:"brokerName"`
	QueueID             int32  `json:"queueId"`
	MinOffset           int64  `json:"minOffset"`
	MaxOffset           int64  `json:"maxOffset"`
	LastUpdateTimestamp int64  `json:"lastUpdateTimestamp"` // store time of the newest message, 0 when empty
}

// ConsumeStatsBody answers GET_CONSUME_STATS.
type ConsumeStatsBody struct {
	OffsetTable []QueueConsumeStats `json:"offsetTable"`
	ConsumeTps  float64             `json:"consumeTps"`
}

// QueueConsumeStats is one queue's progress for a consumer group.
type QueueConsumeStats struct {
	Topic          string `json:"topic"`
	BrokerName     string `json:"brokerName"`
	QueueID        int32  `json:"queueId"`
	BrokerOffset   int64  `json:"brokerOffset"`   // max offset of the queue
	ConsumerOffset int64  `json:"consumerOffset"` // committed offset, 0 when none
	Lag            int64  `json:"lag"`            // brokerOffset - consumerOffset
	LastTimestamp  int64  `json:"lastTimestamp"`  // store time of the last consumed message, 0 when none
}

// RuntimeInfoBody answers GET_BROKER_RUNTIME_INFO (Java KVTable).
type RuntimeInfoBody struct {
	Table map[string]string `json:"table"`
}

func jsonBody(req *remoting.Command, v any) (*remoting.Command, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, codeErr(respSystemError, "encode response: %v", err)
	}
	resp := ok(req)
	resp.Body = body
	return resp, nil
}

// handleCreateTopic creates or updates a topic.
func (b *Broker) handleCreateTopic(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	const what = "create topic"
	topic, err := req.ExtString("topic")
	if err != nil {
		return nil, headerErr(what, err)
	}
	if err := message.ValidateTopic(topic); err != nil {
		return nil, codeErr(respSystemError, "%s: %v", what, err)
	}
	if message.IsSystemTopic(topic) {
		return nil, codeErr(respSystemError, "The topic[%s] is conflict with system topic.", topic)
	}
	def := int32(b.cfg.DefaultTopicQueueNums)
	r, err1 := req.ExtInt32Or("readQueueNums", def)
	w, err2 := req.ExtInt32Or("writeQueueNums", def)
	perm, err3 := req.ExtInt32Or("perm", permRW)
	sysFlag, err4 := req.ExtInt32Or("topicSysFlag", 0)
	for _, e := range []error{err1, err2, err3, err4} {
		if e != nil {
			return nil, headerErr(what, e)
		}
	}
	if r < 1 || r > maxQueueNums || w < 1 || w > maxQueueNums {
		return nil, codeErr(respSystemError, "%s: readQueueNums %d and writeQueueNums %d must be 1..%d", what, r, w, maxQueueNums)
	}
	if perm < 0 || perm > 15 {
		return nil, codeErr(respSystemError, "%s: perm %d is not a permission (bits 8 priority, 4 read, 2 write, 1 inherit)", what, perm)
	}
	filter := req.ExtStringOr("topicFilterType", topicFilterSingle)
	if filter == "" {
		filter = topicFilterSingle
	}
	tc := namesrv.TopicConfig{TopicName: topic, ReadQueueNums: int(r), WriteQueueNums: int(w), Perm: int(perm),
		TopicFilterType: filter, TopicSysFlag: int(sysFlag), Order: req.ExtBoolOr("order", false)}
	if attrs := req.ExtStringOr("attributes", ""); attrs != "" {
		tc.Attributes = parseAttributes(attrs)
	}
	if err := b.topics.put(tc); err != nil {
		return nil, codeErr(respSystemError, "%s: %v", what, err)
	}
	b.log.Info("topic created or updated", "topic", topic, "read", r, "write", w, "perm", perm)
	return ok(req), nil
}

// parseAttributes reads Java's "+key=value,+key2=value2" form.
func parseAttributes(s string) map[string]string {
	out := map[string]string{}
	for len(s) > 0 {
		var item string
		if i := indexOf(s, ','); i >= 0 {
			item, s = s[:i], s[i+1:]
		} else {
			item, s = s, ""
		}
		if len(item) > 0 && (item[0] == '+' || item[0] == '-') {
			item = item[1:]
		}
		if i := indexOf(item, '='); i > 0 {
			out[item[:i]] = item[i+1:]
		} else if item != "" {
			out[item] = ""
		}
	}
	return out
}

func indexOf(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func (b *Broker) handleGetAllTopicConfig(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	m, v := b.topics.snapshot()
	return jsonBody(req, namesrv.TopicConfigSerializeWrapper{TopicConfigTable: m, DataVersion: v})
}

// handleDeleteTopic removes a topic: configuration, consume queues, offsets.
func (b *Broker) handleDeleteTopic(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	const what = "delete topic"
	topic, err := req.ExtString("topic")
	if err != nil {
		return nil, headerErr(what, err)
	}
	if err := message.ValidateTopic(topic); err != nil {
		return nil, codeErr(respSystemError, "%s: %v", what, err)
	}
	if message.IsSystemTopic(topic) {
		return nil, codeErr(respSystemError, "The topic[%s] is conflict with system topic.", topic)
	}
	if err := b.DeleteTopic(topic); err != nil {
		return nil, codeErr(respSystemError, "%s %s: %v", what, topic, err)
	}
	return ok(req), nil
}

// DeleteTopic removes a topic's configuration, consume queues and consumer
// offsets, and re-registers with the name servers. Deleting a topic that
// does not exist is not an error.
func (b *Broker) DeleteTopic(topic string) error {
	existed, err := b.topics.remove(topic)
	if err != nil {
		return err
	}
	b.offsets.removeTopic(topic)
	if err := b.store.DeleteTopic(topic); err != nil {
		return err
	}
	b.log.Info("topic deleted", "topic", topic, "existed", existed)
	return nil
}

// handleTopicStats answers per-queue offsets of a topic.
func (b *Broker) handleTopicStats(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	topic, err := req.ExtString("topic")
	if err != nil {
		return nil, headerErr("get topic stats", err)
	}
	tc, ok := b.topics.get(topic)
	if !ok {
		return nil, codeErr(respTopicNotExist, "topic[%s] not exist", topic)
	}
	n := max(tc.ReadQueueNums, tc.WriteQueueNums)
	body := TopicStatsBody{OffsetTable: make([]QueueStats, 0, n)}
	for q := range int32(n) {
		maxOff := b.store.MaxOffset(topic, q)
		qs := QueueStats{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: q,
			MinOffset: b.store.MinOffset(topic, q), MaxOffset: maxOff}
		if maxOff > 0 {
			qs.LastUpdateTimestamp = b.storeTimeAt(topic, q, maxOff-1)
		}
		body.OffsetTable = append(body.OffsetTable, qs)
	}
	return jsonBody(req, body)
}

// storeTimeAt is the store timestamp of the message at a queue offset, or 0.
func (b *Broker) storeTimeAt(topic string, qid int32, off int64) int64 {
	if off < 0 {
		return 0
	}
	r, err := b.store.GetMessages(topic, qid, off, 1, 0, nil)
	if err != nil {
		return 0
	}
	defer r.Release()
	if len(r.Records) == 0 {
		return 0
	}
	v, err := message.Parse(r.Records[0])
	if err != nil {
		return 0
	}
	return v.StoreTimestamp()
}

// handleCreateGroup creates or updates a subscription group from its JSON
// body (Java SubscriptionGroupConfig); absent fields take the defaults.
func (b *Broker) handleCreateGroup(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	var probe struct {
		GroupName string `json:"groupName"`
	}
	if len(req.Body) == 0 {
		return nil, codeErr(respSystemError, "create subscription group: the body (SubscriptionGroupConfig JSON) is empty")
	}
	if err := json.Unmarshal(req.Body, &probe); err != nil {
		return nil, codeErr(respSystemError, "create subscription group: bad body: %v", err)
	}
	if probe.GroupName == "" {
		return nil, codeErr(respSystemError, "create subscription group: groupName is empty")
	}
	gc := defaultGroupConfig(probe.GroupName)
	if err := json.Unmarshal(req.Body, &gc); err != nil {
		return nil, codeErr(respSystemError, "create subscription group: bad body: %v", err)
	}
	if gc.RetryQueueNums < 0 || gc.RetryMaxTimes < -1 {
		return nil, codeErr(respSystemError, "create subscription group: retryQueueNums %d / retryMaxTimes %d out of range",
			gc.RetryQueueNums, gc.RetryMaxTimes)
	}
	if err := b.groups.put(gc); err != nil {
		return nil, codeErr(respSystemError, "create subscription group: %v", err)
	}
	return ok(req), nil
}

func (b *Broker) handleGetAllGroups(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	return jsonBody(req, b.groups.snapshot())
}

// handleConsumeStats answers a consumer group's progress per queue.
func (b *Broker) handleConsumeStats(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	group, err := req.ExtString("consumerGroup")
	if err != nil {
		return nil, headerErr("get consume stats", err)
	}
	var topics []string
	if t := req.ExtStringOr("topic", ""); t != "" {
		topics = []string{t}
	} else {
		topics = b.offsets.topicsOf(group)
		if info, ok := b.clients.ConsumerGroup(group); ok {
			for t := range info.Subscriptions {
				if !slices.Contains(topics, t) {
					topics = append(topics, t)
				}
			}
		}
		slices.Sort(topics)
	}
	body := ConsumeStatsBody{OffsetTable: []QueueConsumeStats{}}
	for _, topic := range topics {
		tc, ok := b.topics.get(topic)
		if !ok {
			continue
		}
		offs := b.offsets.groupOffsets(group, topic)
		for q := range int32(tc.ReadQueueNums) {
			s := QueueConsumeStats{Topic: topic, BrokerName: b.cfg.BrokerName, QueueID: q,
				BrokerOffset: b.store.MaxOffset(topic, q), ConsumerOffset: max(offs[q], 0)}
			s.Lag = max(s.BrokerOffset-s.ConsumerOffset, 0)
			if s.ConsumerOffset > 0 {
				s.LastTimestamp = b.storeTimeAt(topic, q, s.ConsumerOffset-1)
			}
			body.OffsetTable = append(body.OffsetTable, s)
		}
	}
	return jsonBody(req, body)
}

// handleRuntimeInfo answers a small table of broker statistics.
func (b *Broker) handleRuntimeInfo(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	st := b.store.Stats()
	cs := b.clients.Stats()
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	t := map[string]string{
		"brokerVersionDesc":      "txmq",
		"brokerVersion":          strconv.Itoa(int(remoting.DefaultVersion)),
		"brokerName":             b.cfg.BrokerName,
		"brokerAddr":             b.AdvertisedAddr(),
		"bootTimestamp":          i(b.bootTime.UnixMilli()),
		"runtime":                time.Since(b.bootTime).Round(time.Second).String(),
		"commitLogMinOffset":     i(st.MinOffset),
		"commitLogMaxOffset":     i(st.MaxOffset),
		"commitLogWrittenOffset": i(st.WrittenOffset),
		"commitLogFlushedOffset": i(st.FlushedOffset),
		"commitLogSegments":      strconv.Itoa(st.Segments),
		"putMessageTimesTotal":   strconv.FormatUint(st.Records, 10),
		"putMessageSizeTotal":    strconv.FormatUint(st.Bytes, 10),
		"topics":                 strconv.Itoa(len(b.topics.names())),
		"clients":                strconv.Itoa(cs.Clients),
		"connections":            strconv.Itoa(b.srv.NumConns()),
		"producerGroups":         strconv.Itoa(cs.ProducerGroups),
		"consumerGroups":         strconv.Itoa(cs.ConsumerGroups),
		"parkedPulls":            i(b.holds.parked.Load()),
		"flushDiskType":          b.cfg.FlushDiskType,
	}
	if st.WriteErr != nil {
		t["storeWriteError"] = st.WriteErr.Error()
	}
	return jsonBody(req, RuntimeInfoBody{Table: t})
}
