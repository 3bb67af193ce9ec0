package clients

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Lenient JSON scalars. Clients differ in how they write the same field
// (G2 writes codeSet entries as strings, Java as numbers; fastjson and
// jsoniter disagree on little else), so the bodies this package reads
// accept a string, a number, a boolean or null wherever a scalar is
// expected, and never fail on a scalar's type. A syntax error still fails.

// flexString is a JSON string, or the text of a number or boolean; null,
// objects and arrays decode as "".
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case '{', '[', 'n':
		*s = ""
	default: // number, true, false
		*s = flexString(b)
	}
	return nil
}

// flexInt64 is a JSON number (integral, or a float that is truncated and
// clamped) or a string holding one; anything else decodes as 0.
type flexInt64 int64

func (n *flexInt64) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	text := string(b)
	if b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		text = strings.TrimSpace(v)
	}
	*n = flexInt64(parseFlexInt(text))
	return nil
}

func parseFlexInt(text string) int64 {
	if v, err := strconv.ParseInt(text, 10, 64); err == nil {
		return v
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(f) {
		return 0
	}
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	default:
		return int64(f)
	}
}

// flexStrings is a JSON array of scalars (each as flexString, empty ones
// dropped); anything other than an array decodes as nil.
type flexStrings []string

func (l *flexStrings) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '[' {
		*l = nil
		return nil
	}
	var items []flexString
	if err := json.Unmarshal(b, &items); err != nil {
		return err
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		if it != "" {
			out = append(out, string(it))
		}
	}
	*l = out
	return nil
}

// flexBool is true for JSON true or the string "true" (any case).
type flexBool bool

func (v *flexBool) UnmarshalJSON(b []byte) error {
	var s flexString
	if err := s.UnmarshalJSON(b); err != nil {
		return err
	}
	*v = flexBool(strings.EqualFold(string(s), "true"))
	return nil
}

// Wire shapes. Unknown fields (codeSet, classFilterMode, unitMode,
// heartbeatFingerprint, ...) are ignored. Tag codes are always computed
// here, from the tags.

type heartbeatJSON struct {
	ClientID        flexString     `json:"clientID"`
	ProducerDataSet []producerJSON `json:"producerDataSet"`
	ConsumerDataSet []consumerJSON `json:"consumerDataSet"`
	// Java heartbeat v2 ("isWithoutSub" in Java; fastjson writes
	// "withoutSub"). Only sent to brokers that announce v2 support, which
	// txmq does not, but honoured anyway.
	WithoutSub   flexBool `json:"withoutSub"`
	IsWithoutSub flexBool `json:"isWithoutSub"`
}

type producerJSON struct {
	GroupName flexString `json:"groupName"`
}

type consumerJSON struct {
	GroupName           flexString         `json:"groupName"`
	ConsumeType         flexString         `json:"consumeType"`
	MessageModel        flexString         `json:"messageModel"`
	ConsumeFromWhere    flexString         `json:"consumeFromWhere"`
	SubscriptionDataSet []subscriptionJSON `json:"subscriptionDataSet"`
}

type subscriptionJSON struct {
	Topic          flexString  `json:"topic"`
	SubString      flexString  `json:"subString"`
	ExpressionType flexString  `json:"expressionType"`
	SubVersion     flexInt64   `json:"subVersion"`
	TagsSet        flexStrings `json:"tagsSet"`
}

// errBadBody is wrapped by every body decoding error.
var errBadBody = errors.New("invalid request body")

// decodeHeartbeat decodes a HEART_BEAT body. Groups with empty names and
// subscriptions with empty topics are skipped; a later duplicate of a group
// or topic replaces the earlier one.
//
// A TAG subscription that does not select all takes its tags from the
// client's tagsSet when there is one: those are the tags the client itself
// filters by after a pull (G2 trims only spaces when it splits the
// expression, Java trims all control characters), so the broker filters
// exactly as the client will. Without tagsSet the expression is parsed. A
// subscription that ends up with no tag is kept and matches nothing (as in
// Java); bad reports it.
func decodeHeartbeat(body []byte) (hb *heartbeat, bad []string, err error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil, fmt.Errorf("%w: empty heartbeat body", errBadBody)
	}
	var raw heartbeatJSON
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, nil, fmt.Errorf("%w: heartbeat: %w", errBadBody, err)
	}
	hb = &heartbeat{
		clientID:   strings.TrimSpace(string(raw.ClientID)),
		withoutSub: bool(raw.WithoutSub || raw.IsWithoutSub),
	}
	if hb.clientID == "" {
		return nil, nil, fmt.Errorf("%w: heartbeat without clientID", errBadBody)
	}
	seenP := make(map[string]bool, len(raw.ProducerDataSet))
	for _, p := range raw.ProducerDataSet {
		if g := string(p.GroupName); g != "" && !seenP[g] {
			seenP[g] = true
			hb.producers = append(hb.producers, g)
		}
	}
	index := make(map[string]int, len(raw.ConsumerDataSet))
	for _, c := range raw.ConsumerDataSet {
		g := string(c.GroupName)
		if g == "" {
			continue
		}
		d := consumerDecl{
			group:            g,
			consumeType:      string(c.ConsumeType),
			messageModel:     string(c.MessageModel),
			consumeFromWhere: string(c.ConsumeFromWhere),
			subs:             make(map[string]*Subscription, len(c.SubscriptionDataSet)),
		}
		for _, sj := range c.SubscriptionDataSet {
			topic := string(sj.Topic)
			if topic == "" {
				continue
			}
			expr, exprType := string(sj.SubString), string(sj.ExpressionType)
			var s *Subscription
			if len(sj.TagsSet) > 0 && (exprType == "" || strings.EqualFold(exprType, ExprTag)) && !isSubAll(expr) {
				s = newTagSubscription(topic, expr, sj.TagsSet)
			} else {
				var perr error
				if s, perr = ParseSubscriptionType(topic, expr, exprType); perr != nil {
					bad = append(bad, g+"/"+topic+": "+perr.Error())
					s = newTagSubscription(topic, expr, nil)
				}
			}
			s.SubVersion = int64(sj.SubVersion)
			d.subs[topic] = s
		}
		if i, dup := index[g]; dup {
			hb.consumers[i] = d
		} else {
			index[g] = len(hb.consumers)
			hb.consumers = append(hb.consumers, d)
		}
	}
	return hb, bad, nil
}

// lockBatchJSON is the body of LOCK_BATCH_MQ and UNLOCK_BATCH_MQ.
type lockBatchJSON struct {
	ConsumerGroup flexString `json:"consumerGroup"`
	ClientID      flexString `json:"clientId"`
	MQSet         []mqJSON   `json:"mqSet"`
}

type mqJSON struct {
	Topic      flexString `json:"topic"`
	BrokerName flexString `json:"brokerName"`
	QueueID    flexInt64  `json:"queueId"`
}

// queueKey names one message queue, as LOCK_BATCH_MQ does (also its JSON
// shape in lockOKMQSet).
type queueKey struct {
	Topic      string `json:"topic"`
	BrokerName string `json:"brokerName"`
	QueueID    int32  `json:"queueId"`
}

// decodeLockBatch decodes a LOCK/UNLOCK_BATCH_MQ body. Queues with an empty
// topic or a queue id outside 0..MaxInt32 are dropped, duplicates merged.
func decodeLockBatch(body []byte) (group, clientID string, queues []queueKey, err error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return "", "", nil, fmt.Errorf("%w: empty lock body", errBadBody)
	}
	var raw lockBatchJSON
	if err := json.Unmarshal(body, &raw); err != nil {
		return "", "", nil, fmt.Errorf("%w: lock batch: %w", errBadBody, err)
	}
	group, clientID = string(raw.ConsumerGroup), string(raw.ClientID)
	if group == "" || clientID == "" {
		return "", "", nil, fmt.Errorf("%w: lock batch needs consumerGroup and clientId", errBadBody)
	}
	seen := make(map[queueKey]bool, len(raw.MQSet))
	for _, q := range raw.MQSet {
		if q.Topic == "" || q.QueueID < 0 || q.QueueID > math.MaxInt32 {
			continue
		}
		k := queueKey{Topic: string(q.Topic), BrokerName: string(q.BrokerName), QueueID: int32(q.QueueID)}
		if !seen[k] {
			seen[k] = true
			queues = append(queues, k)
		}
	}
	return group, clientID, queues, nil
}
