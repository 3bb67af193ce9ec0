package broker

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txmq/txmq/internal/config"
	"github.com/txmq/txmq/internal/fsutil"
	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/namesrv"
)

// Permission bits of a topic, as namesrv and RocketMQ's PermName name them.
const (
	permRead    = namesrv.PermRead
	permWrite   = namesrv.PermWrite
	permInherit = namesrv.PermInherit
	permRW      = permRead | permWrite
)

// Topic configuration constants and the metadata files under
// <storePathRootDir>/config.
const (
	maxQueueNums       = 1024 // per topic, read or write
	topicFilterSingle  = "SINGLE_TAG"
	retryQueueNums     = 1 // %RETRY%<group> and %DLQ%<group>
	selfTestQueueNums  = 1
	defaultTopicTBW102 = message.DefaultTopic

	configDirMode   = 0o755
	topicsFileName  = "topics.json"
	groupsFileName  = "subscriptionGroup.json"
	offsetsFileName = "consumerOffset.json"
)

// topicTable holds the broker's topic configuration. Readers (every send
// and pull) load an immutable map without locking; writers serialise on mu,
// copy the map, and publish the copy.
type topicTable struct {
	path string

	cur atomic.Pointer[map[string]namesrv.TopicConfig]

	mu      sync.Mutex // serialises writers; guards version
	version namesrv.DataVersion

	// onChange is called after every change, outside mu (prompt
	// re-registration with the name servers).
	onChange func()
}

// topicsFile is topics.json: Java's TopicConfigSerializeWrapper.
type topicsFile = namesrv.TopicConfigSerializeWrapper

// loadTopics reads <dir>/topics.json and adds the system topics.
func loadTopics(dir string, cfg config.Config) (*topicTable, error) {
	if err := os.MkdirAll(dir, configDirMode); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	t := &topicTable{path: filepath.Join(dir, topicsFileName)}
	var f topicsFile
	if _, err := fsutil.ReadJSON(t.path, &f); err != nil {
		return nil, err
	}
	m := make(map[string]namesrv.TopicConfig, len(f.TopicConfigTable)+2)
	for name, tc := range f.TopicConfigTable {
		if name == "" || name != tc.TopicName {
			tc.TopicName = name
		}
		if message.ValidateTopic(name) != nil {
			continue
		}
		m[name] = tc
	}
	sys := []namesrv.TopicConfig{
		{TopicName: defaultTopicTBW102, ReadQueueNums: cfg.DefaultTopicQueueNums, WriteQueueNums: cfg.DefaultTopicQueueNums,
			Perm: permRW | permInherit, TopicFilterType: topicFilterSingle},
		{TopicName: message.SelfTestTopic, ReadQueueNums: selfTestQueueNums, WriteQueueNums: selfTestQueueNums,
			Perm: permRW, TopicFilterType: topicFilterSingle},
	}
	for _, tc := range sys {
		if _, ok := m[tc.TopicName]; !ok {
			m[tc.TopicName] = tc
		}
	}
	t.cur.Store(&m)
	t.version = f.DataVersion
	t.bumpLocked()
	return t, nil
}

// get returns a topic's configuration.
func (t *topicTable) get(name string) (namesrv.TopicConfig, bool) {
	tc, ok := (*t.cur.Load())[name]
	return tc, ok
}

// snapshot returns the current table (shared; do not modify) and version.
func (t *topicTable) snapshot() (map[string]namesrv.TopicConfig, namesrv.DataVersion) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return *t.cur.Load(), t.version
}

// names returns the sorted topic names.
func (t *topicTable) names() []string {
	return slices.Sorted(maps.Keys(*t.cur.Load()))
}

func (t *topicTable) bumpLocked() {
	t.version.Counter++
	t.version.Timestamp = time.Now().UnixMilli()
}

// update applies fn to a copy of the table under the writer lock; fn
// reports whether it changed anything. The change is persisted before the
// new table is published.
func (t *topicTable) update(fn func(m map[string]namesrv.TopicConfig) (bool, error)) error {
	t.mu.Lock()
	m := maps.Clone(*t.cur.Load())
	changed, err := fn(m)
	if err != nil || !changed {
		t.mu.Unlock()
		return err
	}
	t.bumpLocked()
	t.cur.Store(&m)
	err = t.persistLocked()
	t.mu.Unlock()
	if t.onChange != nil {
		t.onChange()
	}
	return err
}

// put creates or replaces a topic and reports whether it changed.
func (t *topicTable) put(tc namesrv.TopicConfig) error {
	return t.update(func(m map[string]namesrv.TopicConfig) (bool, error) {
		if old, ok := m[tc.TopicName]; ok && sameTopic(old, tc) {
			return false, nil
		}
		m[tc.TopicName] = tc
		return true, nil
	})
}

// ensure returns the topic's configuration, creating it with tc when it
// does not exist (the first creator wins).
func (t *topicTable) ensure(tc namesrv.TopicConfig) (namesrv.TopicConfig, error) {
	if cur, ok := t.get(tc.TopicName); ok {
		return cur, nil
	}
	out := tc
	err := t.update(func(m map[string]namesrv.TopicConfig) (bool, error) {
		if cur, ok := m[tc.TopicName]; ok {
			out = cur
			return false, nil
		}
		m[tc.TopicName] = tc
		return true, nil
	})
	return out, err
}

// remove deletes a topic and reports whether it existed.
func (t *topicTable) remove(name string) (bool, error) {
	existed := false
	err := t.update(func(m map[string]namesrv.TopicConfig) (bool, error) {
		_, existed = m[name]
		delete(m, name)
		return existed, nil
	})
	return existed, err
}

func sameTopic(a, b namesrv.TopicConfig) bool {
	return a.TopicName == b.TopicName && a.ReadQueueNums == b.ReadQueueNums && a.WriteQueueNums == b.WriteQueueNums &&
		a.Perm == b.Perm && a.TopicFilterType == b.TopicFilterType && a.TopicSysFlag == b.TopicSysFlag &&
		a.Order == b.Order && maps.Equal(a.Attributes, b.Attributes)
}

// persist writes topics.json.
func (t *topicTable) persist() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.persistLocked()
}

func (t *topicTable) persistLocked() error {
	f := topicsFile{TopicConfigTable: *t.cur.Load(), DataVersion: t.version}
	if err := fsutil.WriteJSONAtomic(t.path, f); err != nil {
		return fmt.Errorf("persist topics: %w", err)
	}
	return nil
}

// retryTopicConfig is the configuration of %RETRY%<group> and %DLQ%<group>.
func retryTopicConfig(topic string) namesrv.TopicConfig {
	return namesrv.TopicConfig{TopicName: topic, ReadQueueNums: retryQueueNums, WriteQueueNums: retryQueueNums,
		Perm: permRW, TopicFilterType: topicFilterSingle}
}

// ensureRetryTopic creates %RETRY%<group> (or %DLQ%<group>) when missing.
func (b *Broker) ensureRetryTopic(topic string) (namesrv.TopicConfig, error) {
	return b.topics.ensure(retryTopicConfig(topic))
}

// autoCreateTopic creates topic on SEND from the template named in the
// request (defaultTopic, normally TBW102), as Java's
// TopicConfigManager.createTopicInSendMessageMethod does. It fails with
// TOPIC_NOT_EXIST when auto-creation is off or the template does not allow
// inheriting.
func (b *Broker) autoCreateTopic(topic, defaultTopic string, defaultQueueNums int32) (namesrv.TopicConfig, error) {
	if isRetryOrDLQ(topic) {
		// Java creates these on send even when auto-creation is off.
		return b.ensureRetryTopic(topic)
	}
	if !b.cfg.AutoCreateTopicEnable {
		return namesrv.TopicConfig{}, codeErr(respTopicNotExist,
			"topic[%s] not exist, apply first please! (autoCreateTopicEnable=false on this broker)", topic)
	}
	if defaultTopic == "" {
		defaultTopic = defaultTopicTBW102
	}
	tmpl, ok := b.topics.get(defaultTopic)
	if !ok {
		return namesrv.TopicConfig{}, codeErr(respTopicNotExist,
			"topic[%s] not exist, and the default topic[%s] to create it from does not exist either", topic, defaultTopic)
	}
	if tmpl.Perm&permInherit == 0 {
		return namesrv.TopicConfig{}, codeErr(respTopicNotExist,
			"topic[%s] not exist, and the default topic[%s] has no inherit permission to create it from", topic, defaultTopic)
	}
	n := b.cfg.DefaultTopicQueueNums
	if defaultQueueNums > 0 && int(defaultQueueNums) < n {
		n = int(defaultQueueNums)
	}
	n = min(n, tmpl.WriteQueueNums, maxQueueNums)
	if n < 1 {
		n = 1
	}
	tc := namesrv.TopicConfig{TopicName: topic, ReadQueueNums: n, WriteQueueNums: n,
		Perm: tmpl.Perm &^ permInherit, TopicFilterType: topicFilterSingle}
	tc, err := b.topics.ensure(tc)
	if err != nil {
		return tc, codeErr(respSystemError, "create topic %s: %v", topic, err)
	}
	b.log.Info("topic auto-created on send", "topic", topic, "queues", tc.WriteQueueNums, "template", defaultTopic)
	return tc, nil
}

func isRetryOrDLQ(topic string) bool {
	return strings.HasPrefix(topic, message.RetryGroupTopicPrefix) || strings.HasPrefix(topic, message.DLQGroupTopicPrefix)
}

// isReservedTopic reports whether clients may not send to topic directly:
// the topics txmq writes itself (transaction half and op topics, the
// schedule topic, the auto-create template).
func isReservedTopic(topic string) bool {
	switch topic {
	case message.SelfTestTopic:
		return false
	}
	return message.IsSystemTopic(topic)
}
