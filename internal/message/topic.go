package message

import (
	"errors"
	"fmt"
	"strings"
)

// System topics and groups.
const (
	DefaultTopic             = "TBW102" // auto-creation template
	TransHalfTopic           = "RMQ_SYS_TRANS_HALF_TOPIC"
	TransOpHalfTopic         = "RMQ_SYS_TRANS_OP_HALF_TOPIC"
	TransCheckMaxTimeTopic   = "TRANS_CHECK_MAX_TIME_TOPIC"
	ScheduleTopic            = "SCHEDULE_TOPIC_XXXX"
	RetryGroupTopicPrefix    = "%RETRY%"
	DLQGroupTopicPrefix      = "%DLQ%"
	SelfTestTopic            = "SELF_TEST_TOPIC"
	BenchmarkTopic           = "BenchmarkTest"
	TransSysGroup            = "CID_RMQ_SYS_TRANS"
	ClientInnerProducerGroup = "CLIENT_INNER_PRODUCER"
)

// ErrInvalidTopic means a topic name breaks RocketMQ's naming rules.
var ErrInvalidTopic = errors.New("message: invalid topic")

// ValidateTopic applies RocketMQ's topic rule: 1 to 127 characters from
// [A-Za-z0-9%|_-] (the '%' appears in retry, DLQ and namespaced topics).
func ValidateTopic(topic string) error {
	if topic == "" {
		return fmt.Errorf("%w: empty", ErrInvalidTopic)
	}
	if len(topic) > MaxTopicLen {
		return fmt.Errorf("%w: %d characters, at most %d", ErrInvalidTopic, len(topic), MaxTopicLen)
	}
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '%' || c == '|' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %q contains %q; allowed: letters, digits, %%, |, _ and -", ErrInvalidTopic, topic, c)
		}
	}
	return nil
}

// RetryTopic is the retry topic of a consumer group.
func RetryTopic(group string) string { return RetryGroupTopicPrefix + group }

// DLQTopic is the dead-letter topic of a consumer group.
func DLQTopic(group string) string { return DLQGroupTopicPrefix + group }

// IsSystemTopic reports whether topic is one txmq keeps for itself.
func IsSystemTopic(topic string) bool {
	switch topic {
	case DefaultTopic, TransHalfTopic, TransOpHalfTopic, TransCheckMaxTimeTopic, ScheduleTopic, SelfTestTopic:
		return true
	}
	return strings.HasPrefix(topic, "rmq_sys_") || strings.HasPrefix(topic, "RMQ_SYS_")
}
