package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/txmq/txmq/internal/message"
)

// Topics and properties of scheduled records.
const (
	// ScheduleTopic holds delay-level messages, queue = level − 1, as
	// Apache RocketMQ stores them.
	ScheduleTopic = message.ScheduleTopic
	// TimerTopic holds timer messages (TIMER_DELIVER_MS, TIMER_DELAY_SEC,
	// TIMER_DELAY_MS), queue 0: Apache RocketMQ 5's timer topic name.
	TimerTopic = "rmq_sys_wheel_timer"
	// PropScheduledOffset is set on a delivered copy: the commit-log offset
	// of the scheduled record it was made from. Replay uses it so that a
	// scheduled message is never delivered twice.
	PropScheduledOffset = "TXMQ_SCHEDULED_OFFSET"
)

// Errors of Divert; they wrap ErrIllegal.
var (
	// ErrIllegal: the message's delay or timer properties are malformed
	// or out of range (Java: MESSAGE_ILLEGAL / WHEEL_TIMER_MSG_ILLEGAL).
	ErrIllegal = errors.New("schedule: illegal delay or timer message")
)

// Divert rewrites m, before it is stored, when it asks for a delay:
//
//   - DELAY = level > 0: the level is clamped to the highest configured
//     one (as Java does), TIMER_* properties are removed, and m goes to
//     SCHEDULE_TOPIC_XXXX queue level−1 with REAL_TOPIC/REAL_QID. It is
//     due at its store time + the level's delay.
//   - else TIMER_DELAY_SEC, TIMER_DELAY_MS or TIMER_DELIVER_MS (that
//     precedence): a due time more than TimerMaxDelay ahead is refused; a
//     time not in the future is delivered at once (the TIMER_* properties
//     are removed and m stays where it is); otherwise m goes to
//     rmq_sys_wheel_timer queue 0 with REAL_TOPIC/REAL_QID and
//     TIMER_OUT_MS = the due time (ms).
//
// Malformed values are refused with an error wrapping ErrIllegal. A
// client-set TXMQ_SCHEDULED_OFFSET is removed (only the service writes
// it). Messages without any of these properties are not touched; the
// common case costs one pass over the properties.
func (s *Service) Divert(m *message.Ext) error {
	var delay, sec, ms, deliver, marker bool
	scanKeys(m.Properties, func(k string) {
		switch k {
		case message.PropDelayTimeLevel:
			delay = true
		case message.PropTimerDelaySec:
			sec = true
		case message.PropTimerDelayMs:
			ms = true
		case message.PropTimerDeliverMs:
			deliver = true
		case PropScheduledOffset:
			marker = true
		}
	})
	if marker {
		m.Properties = message.RemoveProperties(m.Properties, PropScheduledOffset)
	}
	if !delay && !sec && !ms && !deliver {
		return nil
	}
	if delay {
		v, _ := message.Property(m.Properties, message.PropDelayTimeLevel)
		lvl, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%w: DELAY=%q is not a delay level (an integer, 1 to %d)", ErrIllegal, v, len(s.levels))
		}
		if lvl > 0 {
			lvl = min(lvl, len(s.levels))
			props := message.RemoveProperties(m.Properties, message.PropDelayTimeLevel, message.PropTimerDelaySec,
				message.PropTimerDelayMs, message.PropTimerDeliverMs, message.PropTimerOutMs,
				message.PropRealTopic, message.PropRealQueueID)
			props = message.AppendProperty(props, message.PropDelayTimeLevel, strconv.Itoa(lvl))
			props = message.AppendProperty(props, message.PropRealTopic, m.Topic)
			props = message.AppendProperty(props, message.PropRealQueueID, strconv.Itoa(int(m.QueueID)))
			m.Properties = props
			m.Topic = ScheduleTopic
			m.QueueID = int32(lvl - 1)
			return nil
		}
		// DELAY ≤ 0: no delay; a timer property may still apply (Java).
	}
	if !sec && !ms && !deliver {
		return nil
	}
	now := s.now().UnixMilli()
	var due int64
	switch {
	case sec:
		n, err := timerValue(m.Properties, message.PropTimerDelaySec)
		if err != nil {
			return err
		}
		if n > s.maxDelay.Milliseconds()/1000+1 {
			return s.tooFar(message.PropTimerDelaySec, strconv.FormatInt(n, 10))
		}
		due = now + n*1000
	case ms:
		n, err := timerValue(m.Properties, message.PropTimerDelayMs)
		if err != nil {
			return err
		}
		if n > s.maxDelay.Milliseconds()+1000 {
			return s.tooFar(message.PropTimerDelayMs, strconv.FormatInt(n, 10))
		}
		due = now + n
	default:
		n, err := timerValue(m.Properties, message.PropTimerDeliverMs)
		if err != nil {
			return err
		}
		due = n
	}
	if due-now > s.maxDelay.Milliseconds() {
		return s.tooFar("delivery time", time.UnixMilli(due).UTC().Format(time.RFC3339Nano))
	}
	timers := []string{message.PropTimerDelaySec, message.PropTimerDelayMs, message.PropTimerDeliverMs, message.PropTimerOutMs}
	if due <= now {
		m.Properties = message.RemoveProperties(m.Properties, timers...)
		return nil
	}
	props := message.RemoveProperties(m.Properties, message.PropTimerOutMs, message.PropRealTopic, message.PropRealQueueID)
	props = message.AppendProperty(props, message.PropRealTopic, m.Topic)
	props = message.AppendProperty(props, message.PropRealQueueID, strconv.Itoa(int(m.QueueID)))
	props = message.AppendProperty(props, message.PropTimerOutMs, strconv.FormatInt(due, 10))
	m.Properties = props
	m.Topic = TimerTopic
	m.QueueID = 0
	return nil
}

func (s *Service) tooFar(what, v string) error {
	return fmt.Errorf("%w: %s %s is more than timerMaxDelaySec=%d s ahead (the latest delivery time a timer message may ask for)",
		ErrIllegal, what, v, int64(s.maxDelay/time.Second))
}

// timerValue parses a TIMER_* property: a non-negative integer.
func timerValue(props, key string) (int64, error) {
	v, _ := message.Property(props, key)
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: %s=%q is not a non-negative integer", ErrIllegal, key, v)
	}
	return n, nil
}

// scanKeys calls fn with the key of every well-formed property.
func scanKeys(s string, fn func(k string)) {
	for len(s) > 0 {
		var item string
		if i := strings.IndexByte(s, message.PropertySeparator); i >= 0 {
			item, s = s[:i], s[i+1:]
		} else {
			item, s = s, ""
		}
		if j := strings.IndexByte(item, message.NameValueSeparator); j > 0 {
			fn(item[:j])
		}
	}
}

// Delivered builds the copy of a scheduled record that goes to its real
// topic and queue: same body, flag, born time and host, store host,
// reconsume times and properties but for DELAY, TIMER_* and TIMER_OUT_MS
// (removed) and PropScheduledOffset (set to off). REAL_TOPIC/REAL_QID
// stay, as in Java. It fails when the record names no valid real topic.
func Delivered(v message.View, off int64) (*message.Ext, error) {
	m := v.Ext()
	topic, ok := message.Property(m.Properties, message.PropRealTopic)
	if !ok || message.ValidateTopic(topic) != nil {
		return nil, fmt.Errorf("schedule: record at %d has no valid %s (%q)", off, message.PropRealTopic, topic)
	}
	qs, _ := message.Property(m.Properties, message.PropRealQueueID)
	qid, err := strconv.Atoi(qs)
	if err != nil || qid < 0 {
		return nil, fmt.Errorf("schedule: record at %d has no valid %s (%q)", off, message.PropRealQueueID, qs)
	}
	m.Topic = topic
	m.QueueID = int32(qid)
	m.Properties = message.RemoveProperties(m.Properties, message.PropDelayTimeLevel, message.PropTimerDelaySec,
		message.PropTimerDelayMs, message.PropTimerDeliverMs, message.PropTimerOutMs, PropScheduledOffset)
	m.Properties = message.AppendProperty(m.Properties, PropScheduledOffset, strconv.FormatInt(off, 10))
	m.SysFlag &^= message.FlagTransactionMask
	m.PreparedTransactionOffset = 0
	m.QueueOffset, m.CommitLogOffset, m.StoreTimestamp = 0, 0, 0
	return m, nil
}
