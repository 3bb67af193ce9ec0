package broker

import (
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/txmq/txmq/internal/broker/clients"
	"github.com/txmq/txmq/internal/fsutil"
	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/namesrv"
)

// SubscriptionGroupConfig is a consumer group's configuration, with Java's
// JSON field names (SubscriptionGroupConfig.java).
type SubscriptionGroupConfig struct {
	GroupName                      string            `json:"groupName"`
	ConsumeEnable                  bool              `json:"consumeEnable"`
	ConsumeFromMinEnable           bool              `json:"consumeFromMinEnable"`
	ConsumeBroadcastEnable         bool              `json:"consumeBroadcastEnable"`
	ConsumeMessageOrderly          bool              `json:"consumeMessageOrderly"`
	RetryQueueNums                 int               `json:"retryQueueNums"`
	RetryMaxTimes                  int               `json:"retryMaxTimes"`
	BrokerID                       int64             `json:"brokerId"`
	WhichBrokerWhenConsumeSlowly   int64             `json:"whichBrokerWhenConsumeSlowly"`
	NotifyConsumerIdsChangedEnable bool              `json:"notifyConsumerIdsChangedEnable"`
	GroupSysFlag                   int               `json:"groupSysFlag"`
	ConsumeTimeoutMinute           int               `json:"consumeTimeoutMinute"`
	Attributes                     map[string]string `json:"attributes,omitempty"`
}

// defaultGroupConfig is Java's default SubscriptionGroupConfig.
func defaultGroupConfig(name string) SubscriptionGroupConfig {
	return SubscriptionGroupConfig{
		GroupName: name, ConsumeEnable: true, ConsumeFromMinEnable: true, ConsumeBroadcastEnable: true,
		RetryQueueNums: 1, RetryMaxTimes: 16, BrokerID: 0, WhichBrokerWhenConsumeSlowly: 1,
		NotifyConsumerIdsChangedEnable: true, ConsumeTimeoutMinute: 15,
	}
}

// groupsFile is subscriptionGroup.json and the GET_ALL_SUBSCRIPTIONGROUP_CONFIG
// body.
type groupsFile struct {
	SubscriptionGroupTable map[string]SubscriptionGroupConfig `json:"subscriptionGroupTable"`
	DataVersion            namesrv.DataVersion                `json:"dataVersion"`
}

// groupTable holds subscription-group configurations.
type groupTable struct {
	path    string
	mu      sync.Mutex // guards m and version
	m       map[string]SubscriptionGroupConfig
	version namesrv.DataVersion
}

func loadGroups(dir string) (*groupTable, error) {
	g := &groupTable{path: filepath.Join(dir, groupsFileName)}
	var f groupsFile
	if _, err := fsutil.ReadJSON(g.path, &f); err != nil {
		return nil, err
	}
	g.m = f.SubscriptionGroupTable
	if g.m == nil {
		g.m = map[string]SubscriptionGroupConfig{}
	}
	g.version = f.DataVersion
	return g, nil
}

func (g *groupTable) get(name string) (SubscriptionGroupConfig, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	c, ok := g.m[name]
	return c, ok
}

// put creates or replaces a group's configuration and persists the table.
func (g *groupTable) put(c SubscriptionGroupConfig) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if old, ok := g.m[c.GroupName]; ok && sameGroup(old, c) {
		return nil
	}
	g.m[c.GroupName] = c
	g.version.Counter++
	g.version.Timestamp = time.Now().UnixMilli()
	return g.persistLocked()
}

// ensure creates a group with the defaults when missing.
func (g *groupTable) ensure(name string) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.m[name]; ok {
		return false, nil
	}
	g.m[name] = defaultGroupConfig(name)
	g.version.Counter++
	g.version.Timestamp = time.Now().UnixMilli()
	return true, g.persistLocked()
}

func sameGroup(a, b SubscriptionGroupConfig) bool { return reflect.DeepEqual(a, b) }

func (g *groupTable) snapshot() groupsFile {
	g.mu.Lock()
	defer g.mu.Unlock()
	return groupsFile{SubscriptionGroupTable: maps.Clone(g.m), DataVersion: g.version}
}

func (g *groupTable) persist() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.persistLocked()
}

func (g *groupTable) persistLocked() error {
	if err := fsutil.WriteJSONAtomic(g.path, groupsFile{SubscriptionGroupTable: g.m, DataVersion: g.version}); err != nil {
		return fmt.Errorf("persist subscription groups: %w", err)
	}
	return nil
}

// onConsumerGroup runs for every consumer group in a heartbeat: it creates
// the group's configuration (autoCreateSubscriptionGroup) and its retry
// topic %RETRY%<group> (1 queue, perm 6) so that the topic is routable.
func (b *Broker) onConsumerGroup(group string, info clients.ConsumerGroupInfo) error {
	if b.cfg.AutoCreateSubscriptionGroup {
		created, err := b.groups.ensure(group)
		if err != nil {
			return err
		}
		if created {
			b.log.Info("subscription group auto-created", slog.String("group", group))
		}
	}
	retry := message.RetryTopic(group)
	if message.ValidateTopic(retry) != nil {
		return fmt.Errorf("consumer group %q: its retry topic %q is not a valid topic name", group, retry)
	}
	if _, ok := b.topics.get(retry); ok {
		return nil
	}
	_, err := b.ensureRetryTopic(retry)
	return err
}
