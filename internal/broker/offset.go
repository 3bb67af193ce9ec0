package broker

// Behavior: consumer offsets (group, topic, queue → the next offset to
// consume), kept in memory, written to config/consumerOffset.json every 5 s
// when changed and at shutdown, in Java's format
// {"offsetTable":{"topic@group":{"0":12}}}. Handlers: QUERY_CONSUMER_OFFSET
// (14), UPDATE_CONSUMER_OFFSET (15), SEARCH_OFFSET_BY_TIMESTAMP (29),
// GET_MAX_OFFSET (30), GET_MIN_OFFSET (31), GET_EARLIEST_MSG_STORETIME (32).
// The G2 client ignores the codes of 29-32 and parses the ext field, so
// every answer carries it.

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"

	"github.com/txmq/txmq/internal/fsutil"
	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
)

// offsetsFile is consumerOffset.json.
type offsetsFile struct {
	OffsetTable map[string]map[int32]int64 `json:"offsetTable"`
}

// offsetTable holds committed consumer offsets.
type offsetTable struct {
	path string

	mu    sync.Mutex                    // guards m and dirty
	m     map[offsetKey]map[int32]int64 // queue → offset
	dirty bool

	pmu sync.Mutex // serialises persist
}

// offsetKey is one group's offsets for one topic; the file spells it
// "topic@group" (topics cannot contain '@').
type offsetKey struct{ topic, group string }

func (k offsetKey) String() string { return k.topic + "@" + k.group }

func parseOffsetKey(s string) (offsetKey, bool) {
	topic, group, ok := strings.Cut(s, "@")
	return offsetKey{topic, group}, ok && topic != "" && group != ""
}

func loadOffsets(dir string) (*offsetTable, error) {
	t := &offsetTable{path: filepath.Join(dir, offsetsFileName), m: map[offsetKey]map[int32]int64{}}
	var f offsetsFile
	if _, err := fsutil.ReadJSON(t.path, &f); err != nil {
		return nil, err
	}
	for s, q := range f.OffsetTable {
		if k, ok := parseOffsetKey(s); ok && q != nil {
			t.m[k] = q
		}
	}
	return t, nil
}

func (t *offsetTable) commit(group, topic string, qid int32, off int64) {
	k := offsetKey{topic, group}
	t.mu.Lock()
	q := t.m[k]
	if q == nil {
		q = make(map[int32]int64, 4)
		t.m[k] = q
	}
	if old, ok := q[qid]; !ok || old != off {
		q[qid] = off
		t.dirty = true
	}
	t.mu.Unlock()
}

func (t *offsetTable) query(group, topic string, qid int32) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	off, ok := t.m[offsetKey{topic, group}][qid]
	return off, ok
}

// groupOffsets returns a copy of a group's offsets for topic.
func (t *offsetTable) groupOffsets(group, topic string) map[int32]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.m[offsetKey{topic, group}])
}

// topicsOf returns the topics a group has offsets for.
func (t *offsetTable) topicsOf(group string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for k := range t.m {
		if k.group == group {
			out = append(out, k.topic)
		}
	}
	return out
}

// removeTopic drops every group's offsets for topic.
func (t *offsetTable) removeTopic(topic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.m {
		if k.topic == topic {
			delete(t.m, k)
			t.dirty = true
		}
	}
}

// persist writes the table when it changed since the last write.
func (t *offsetTable) persist() error {
	t.pmu.Lock()
	defer t.pmu.Unlock()
	t.mu.Lock()
	if !t.dirty {
		t.mu.Unlock()
		return nil
	}
	snap := make(map[string]map[int32]int64, len(t.m))
	for k, q := range t.m {
		snap[k.String()] = maps.Clone(q)
	}
	t.dirty = false
	t.mu.Unlock()
	if err := fsutil.WriteJSONAtomic(t.path, offsetsFile{OffsetTable: snap}); err != nil {
		t.mu.Lock()
		t.dirty = true
		t.mu.Unlock()
		return fmt.Errorf("persist consumer offsets: %w", err)
	}
	return nil
}

// queueArgs parses the topic and queueId ext fields every offset request
// carries.
func queueArgs(what string, req *remoting.Command) (string, int32, error) {
	topic, err := req.ExtString("topic")
	if err != nil {
		return "", 0, headerErr(what, err)
	}
	qid, err := req.ExtInt32("queueId")
	if err != nil {
		return "", 0, headerErr(what, err)
	}
	if err := message.ValidateTopic(topic); err != nil {
		return "", 0, codeErr(respSystemError, "%s: %v", what, err)
	}
	if qid < 0 {
		return "", 0, codeErr(respSystemError, "%s: queueId %d is negative", what, qid)
	}
	return topic, qid, nil
}

// handleQueryConsumerOffset answers the committed offset; with none it
// answers 0 when the queue still starts at 0 (so a new group sees the
// messages sent before it started), else QUERY_NOT_FOUND.
func (b *Broker) handleQueryConsumerOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	const what = "query consumer offset"
	group, err := req.ExtString("consumerGroup")
	if err != nil {
		return nil, headerErr(what, err)
	}
	topic, qid, err := queueArgs(what, req)
	if err != nil {
		return nil, err
	}
	if off, ok := b.offsets.query(group, topic, qid); ok {
		return ok2(req, "offset", off), nil
	}
	if b.store.MinOffset(topic, qid) <= 0 {
		return ok2(req, "offset", 0), nil
	}
	resp := req.Reply(respQueryNotFound, "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first")
	return resp, nil
}

// handleUpdateConsumerOffset commits an offset. G2 sends it as "oneway"
// without the oneway bit, so it is always answered.
func (b *Broker) handleUpdateConsumerOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	const what = "update consumer offset"
	group, err := req.ExtString("consumerGroup")
	if err != nil {
		return nil, headerErr(what, err)
	}
	topic, qid, err := queueArgs(what, req)
	if err != nil {
		return nil, err
	}
	off, err := req.ExtInt64("commitOffset")
	if err != nil {
		return nil, headerErr(what, err)
	}
	if group == "" {
		return nil, codeErr(respSystemError, "%s: consumerGroup is empty", what)
	}
	if off < 0 {
		return nil, codeErr(respSystemError, "%s: commitOffset %d is negative", what, off)
	}
	b.offsets.commit(group, topic, qid, off)
	return ok(req), nil
}

func (b *Broker) handleGetMaxOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	topic, qid, err := queueArgs("get max offset", req)
	if err != nil {
		return nil, err
	}
	return ok2(req, "offset", b.store.MaxOffset(topic, qid)), nil
}

func (b *Broker) handleGetMinOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	topic, qid, err := queueArgs("get min offset", req)
	if err != nil {
		return nil, err
	}
	return ok2(req, "offset", b.store.MinOffset(topic, qid)), nil
}

func (b *Broker) handleSearchOffset(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	const what = "search offset by timestamp"
	topic, qid, err := queueArgs(what, req)
	if err != nil {
		return nil, err
	}
	ts, err := req.ExtInt64("timestamp")
	if err != nil {
		return nil, headerErr(what, err)
	}
	return ok2(req, "offset", b.store.OffsetByTime(topic, qid, ts)), nil
}

func (b *Broker) handleEarliestStoreTime(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	const what = "get earliest message store time"
	topic, qid, err := queueArgs(what, req)
	if err != nil {
		return nil, err
	}
	ts, err := b.store.EarliestStoreTime(topic, qid)
	if err != nil {
		return failWith(req, "timestamp", 0, "%s: %v", what, err), nil
	}
	return ok2(req, "timestamp", ts), nil
}

// ok2 is a SUCCESS response with one integer ext field.
func ok2(req *remoting.Command, key string, v int64) *remoting.Command {
	return ok(req).SetExtInt(key, v)
}

// failWith is a SYSTEM_ERROR response that still carries the ext field the
// client parses regardless of the code.
func failWith(req *remoting.Command, key string, v int64, format string, args ...any) *remoting.Command {
	return req.Reply(respSystemError, fmt.Sprintf(format, args...)).SetExtInt(key, v)
}
