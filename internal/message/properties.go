package message

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/txmq/txmq/internal/wordscan"
)

// Separators of the properties encoding.
const (
	NameValueSeparator = '\x01'
	PropertySeparator  = '\x02'
)

// System property names (RocketMQ MessageConst).
const (
	PropKeys                     = "KEYS"
	PropTags                     = "TAGS"
	PropWaitStoreMsgOK           = "WAIT"
	PropDelayTimeLevel           = "DELAY"
	PropRetryTopic               = "RETRY_TOPIC"
	PropRealTopic                = "REAL_TOPIC"
	PropRealQueueID              = "REAL_QID"
	PropTransactionPrepared      = "TRAN_MSG"
	PropProducerGroup            = "PGROUP"
	PropMinOffset                = "MIN_OFFSET"
	PropMaxOffset                = "MAX_OFFSET"
	PropBuyerID                  = "BUYER_ID"
	PropOriginMessageID          = "ORIGIN_MESSAGE_ID"
	PropTransferFlag             = "TRANSFER_FLAG"
	PropCorrectionFlag           = "CORRECTION_FLAG"
	PropMQ2Flag                  = "MQ2_FLAG"
	PropReconsumeTime            = "RECONSUME_TIME"
	PropMsgRegion                = "MSG_REGION"
	PropTraceSwitch              = "TRACE_ON"
	PropUniqClientMessageID      = "UNIQ_KEY"
	PropMaxReconsumeTimes        = "MAX_RECONSUME_TIMES"
	PropConsumeStartTimestamp    = "CONSUME_START_TIME"
	PropTranPreparedQueueOffset  = "TRAN_PREPARED_QUEUE_OFFSET"
	PropTransactionCheckTimes    = "TRANSACTION_CHECK_TIMES"
	PropCheckImmunityTimeSeconds = "CHECK_IMMUNITY_TIME_IN_SECONDS"
	PropInstanceID               = "INSTANCE_ID"
	PropCorrelationID            = "CORRELATION_ID"
	PropMessageReplyToClient     = "REPLY_TO_CLIENT"
	PropMessageTTL               = "TTL"
	PropMessageType              = "MSG_TYPE"
	PropShardingKey              = "__SHARDINGKEY"
	PropTransactionID            = "__transactionId__"
	PropTimerDeliverMs           = "TIMER_DELIVER_MS"
	PropTimerDelaySec            = "TIMER_DELAY_SEC"
	PropTimerDelayMs             = "TIMER_DELAY_MS"
	PropTimerOutMs               = "TIMER_OUT_MS"
	PropTimerEnqueueMs           = "TIMER_ENQUEUE_MS"
	PropTimerDequeueMs           = "TIMER_DEQUEUE_MS"
	PropTimerRollTimes           = "TIMER_ROLL_TIMES"
	PropCluster                  = "CLUSTER"
	PropBornHost                 = "__BORNHOST"
	PropBornTimestamp            = "BORN_TIMESTAMP"
	PropTraceContext             = "TRACE_CONTEXT"
)

// nextItem splits the first entry off encoded properties s.
func nextItem(s string) (item, rest string) {
	if i := strings.IndexByte(s, PropertySeparator); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// splitPair splits an entry into key and value; ok is false unless it
// holds exactly one name/value separator.
func splitPair(item string) (k, v string, ok bool) {
	k, v, ok = strings.Cut(item, string(NameValueSeparator))
	return k, v, ok && strings.IndexByte(v, NameValueSeparator) < 0
}

// Property returns the value of key in the encoded properties s without
// allocating. Entries that are not exactly key\x01value are skipped, as the
// clients do.
func Property(s, key string) (string, bool) {
	for i := 0; i < len(s); {
		end, sep, ok := entry(s, i)
		if ok && s[i:sep] == key {
			return s[sep+1 : end], true
		}
		i = end + 1
	}
	return "", false
}

// RangeProperties calls fn for every well-formed entry of the encoded
// properties s, in order, until fn returns false. It does not allocate.
func RangeProperties(s string, fn func(key, value string) bool) {
	for i := 0; i < len(s); {
		end, sep, ok := entry(s, i)
		if ok && !fn(s[i:sep], s[sep+1:end]) {
			return
		}
		i = end + 1
	}
}

// RangePropertiesBytes is RangeProperties over a byte slice (a View's
// properties): key and value alias b. It does not allocate.
func RangePropertiesBytes(b []byte, fn func(key, value []byte) bool) {
	for i := 0; i < len(b); {
		end, sep, ok := entry(b, i)
		if ok && !fn(b[i:sep], b[sep+1:end]) {
			return
		}
		i = end + 1
	}
}

// entry scans the entry of encoded properties s that starts at i, in one
// pass: it returns where the entry ends (its PropertySeparator, or len(s)),
// where its first NameValueSeparator is, and whether that is its only one,
// that is whether the entry is well formed.
func entry[S ~string | ~[]byte](s S, i int) (end, sep int, ok bool) {
	n := 0
	for {
		i = indexSeparator(s, i)
		if i == len(s) || s[i] == PropertySeparator {
			return i, sep, n == 1
		}
		if s[i] == NameValueSeparator {
			if n == 0 {
				sep = i
			}
			n++
		}
		i++
	}
}

// indexSeparator returns the index of the first byte of s at or after i
// that is a separator or NUL (which entries may hold; the caller steps over
// it), len(s) if none: eight bytes at a time (package wordscan) until a
// word holds one.
func indexSeparator[S ~string | ~[]byte](s S, i int) int {
	for ; i+8 <= len(s); i += 8 {
		if m := wordscan.Below(wordscan.Load(s, i), PropertySeparator+1); m != 0 {
			return i + wordscan.First(m)
		}
	}
	for ; i < len(s); i++ {
		if s[i] <= PropertySeparator {
			return i
		}
	}
	return len(s)
}

// PropertyBytes is Property over a byte slice (for a View's properties).
// The result is a new string only when found.
func PropertyBytes(b []byte, key string) (value string, found bool) {
	RangePropertiesBytes(b, func(k, v []byte) bool {
		if string(k) != key {
			return true
		}
		value, found = string(v), true
		return false
	})
	return value, found
}

// ParseProperties decodes s into a map. Malformed entries are skipped.
func ParseProperties(s string) map[string]string {
	m := make(map[string]string, strings.Count(s, string(PropertySeparator))+1)
	for len(s) > 0 {
		var item string
		item, s = nextItem(s)
		if k, v, ok := splitPair(item); ok {
			m[k] = v
		}
	}
	return m
}

// EncodeProperties encodes m with keys in sorted order, each pair followed
// by the property separator.
func EncodeProperties(m map[string]string) string {
	keys := make([]string, 0, len(m))
	n := 0
	for k, v := range m {
		keys = append(keys, k)
		n += len(k) + len(v) + 2
	}
	sort.Strings(keys)
	var b strings.Builder
	b.Grow(n)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte(NameValueSeparator)
		b.WriteString(m[k])
		b.WriteByte(PropertySeparator)
	}
	return b.String()
}

// AppendProperty appends one key/value pair to encoded properties s.
func AppendProperty(s, key, value string) string {
	return s + key + string(NameValueSeparator) + value + string(PropertySeparator)
}

// SetProperty returns s with key set to value (replacing an existing value).
func SetProperty(s, key, value string) string {
	return AppendProperty(RemoveProperties(s, key), key, value)
}

// RemoveProperties returns s without the named keys.
func RemoveProperties(s string, keys ...string) string {
	found := false
	for _, k := range keys {
		if _, ok := Property(s, k); ok {
			found = true
			break
		}
	}
	if !found {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		var item string
		item, s = nextItem(s)
		k, _, ok := strings.Cut(item, string(NameValueSeparator))
		if !ok || slices.Contains(keys, k) {
			continue
		}
		b.WriteString(item)
		b.WriteByte(PropertySeparator)
	}
	return b.String()
}

// ValidateProperties checks that b is empty or a sequence of
// key\x01value\x02 entries with non-empty keys, ending in the separator.
// The broker normalises properties to this form before storing, so
// recovery uses it to reject a record whose tail was torn.
func ValidateProperties(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != PropertySeparator {
		return fmt.Errorf("%w: does not end with the separator", ErrBadProperties)
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b, PropertySeparator)
		item := b[:i]
		b = b[i+1:]
		j := bytes.IndexByte(item, NameValueSeparator)
		if j <= 0 || bytes.IndexByte(item[j+1:], NameValueSeparator) >= 0 {
			return fmt.Errorf("%w: entry %q", ErrBadProperties, item)
		}
	}
	return nil
}

// NormalizeProperties returns s in the form ValidateProperties accepts:
// unchanged when it already is (the common case, no allocation), otherwise
// re-encoded without the malformed entries.
func NormalizeProperties(s string) string {
	if ValidatePropertiesString(s) == nil { // no []byte copy of s
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		var item string
		item, s = nextItem(s)
		if k, _, ok := splitPair(item); !ok || k == "" {
			continue
		}
		b.WriteString(item)
		b.WriteByte(PropertySeparator)
	}
	return b.String()
}

// Keys splits a KEYS property value into its space-separated keys.
func Keys(v string) []string { return strings.Fields(v) }
