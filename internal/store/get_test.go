package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/testutil/testkit"

	"github.com/txmq/txmq/internal/message"
)

func TestStoreGetMessagesStatuses(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	var msgs []*message.Ext
	for i := 0; i < 10; i++ {
		tag := "A"
		if i%2 == 1 {
			tag = "B"
		}
		m := newMsg("Q", 1, body(i, 100), message.PropTags, tag)
		mustAppend(t, s, m)
		msgs = append(msgs, m)
	}
	recLen := len(msgs[0].AppendTo(nil))
	onlyA := func(code int64) bool { return code == message.TagsHashCode("A") }
	none := func(int64) bool { return false }
	tests := []struct {
		name             string
		topic            string
		qid              int32
		offset           int64
		maxCount, maxB   int
		filter           func(int64) bool
		status           GetStatus
		next             int64
		wantQueueOffsets []int64
	}{
		{"no such queue", "Q", 7, 0, 32, 0, nil, NoMessageInQueue, 0, nil},
		{"no such topic", "Nope", 0, 5, 32, 0, nil, NoMessageInQueue, 0, nil},
		{"all", "Q", 1, 0, 32, 0, nil, Found, 10, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"middle", "Q", 1, 5, 2, 0, nil, Found, 7, []int64{5, 6}},
		{"max bytes", "Q", 1, 3, 32, recLen*2 + recLen/2, nil, Found, 5, []int64{3, 4}},
		{"max bytes below one record", "Q", 1, 3, 32, 1, nil, Found, 4, []int64{3}},
		{"overflow one", "Q", 1, 10, 32, 0, nil, OffsetOverflowOne, 10, nil},
		{"overflow badly", "Q", 1, 11, 32, 0, nil, OffsetOverflowBadly, 0, nil},
		{"filter", "Q", 1, 0, 3, 0, onlyA, Found, 5, []int64{0, 2, 4}},
		{"filter skips leading", "Q", 1, 1, 1, 0, onlyA, Found, 3, []int64{2}},
		{"filter none", "Q", 1, 0, 32, 0, none, NoMatchedMessage, 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.GetMessages(tc.topic, tc.qid, tc.offset, tc.maxCount, tc.maxB, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			if r.Status != tc.status || r.NextBeginOffset != tc.next {
				t.Fatalf("status %v next %d, want %v next %d", r.Status, r.NextBeginOffset, tc.status, tc.next)
			}
			if fmt.Sprint(r.QueueOffsets) != fmt.Sprint(tc.wantQueueOffsets) && !(len(r.QueueOffsets) == 0 && tc.wantQueueOffsets == nil) {
				t.Fatalf("queue offsets %v, want %v", r.QueueOffsets, tc.wantQueueOffsets)
			}
			for i, rec := range r.Records {
				checkRecordIs(t, rec, msgs[r.QueueOffsets[i]])
			}
			if tc.topic == "Q" && tc.qid == 1 && (r.MinOffset != 0 || r.MaxOffset != 10) {
				t.Fatalf("min/max %d/%d", r.MinOffset, r.MaxOffset)
			}
		})
	}
	if s.MinOffset("Q", 1) != 0 || s.MaxOffset("Q", 1) != 10 || s.MaxOffset("Q", 2) != 0 {
		t.Fatal("min/max offsets wrong")
	}
}

func TestStoreAppendBatchMixedTopics(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	mustAppend(t, s, newMsg("A", 0, "first"))
	batch := []*message.Ext{
		newMsg("A", 0, "a1"), newMsg("B", 3, "b1"), newMsg("A", 0, "a2"), newMsg("B", 3, "b2"), newMsg("C", 0, "c1"),
	}
	res, err := s.AppendBatch(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{1, 0, 2, 1, 0}
	for i, r := range res {
		if r.QueueOffset != want[i] || r.CommitLogOffset != batch[i].CommitLogOffset || r.StoreTimestamp != batch[i].StoreTimestamp {
			t.Fatalf("result %d = %+v, want queue offset %d", i, r, want[i])
		}
		if i > 0 && r.CommitLogOffset != res[i-1].CommitLogOffset+int64(res[i-1].Size) {
			t.Fatalf("batch records not contiguous: %+v", res)
		}
		rec, err := s.ReadAt(r.CommitLogOffset)
		if err != nil {
			t.Fatal(err)
		}
		checkRecordIs(t, rec, batch[i])
	}
	// A batch that contains an invalid message writes nothing.
	before := s.Stats().WrittenOffset
	if _, err := s.AppendBatch(context.Background(), []*message.Ext{newMsg("A", 0, "x"), newMsg("bad topic", 0, "y")}); !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("err = %v", err)
	}
	if s.Stats().WrittenOffset != before || s.MaxOffset("A", 0) != 3 {
		t.Fatal("invalid batch wrote something")
	}
}

func TestStoreReadAtBadOffsets(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	var offs []int64
	for i := 0; i < 5; i++ {
		offs = append(offs, mustAppend(t, s, newMsg("T", 0, body(i, 300))).CommitLogOffset)
	}
	end := s.Stats().MaxOffset
	for _, off := range []int64{-1, 1, offs[1] - 1, offs[1] + 4, offs[2] + 28, end, end + 1, 1 << 40} {
		if _, err := s.ReadAt(off); !errors.Is(err, ErrNotFound) {
			t.Errorf("ReadAt(%d) err = %v, want ErrNotFound", off, err)
		}
	}
	for _, off := range offs {
		if _, err := s.ReadAt(off); err != nil {
			t.Errorf("ReadAt(%d): %v", off, err)
		}
	}
}

func TestStoreOffsetByTime(t *testing.T) {
	clk := testkit.NewClock(time.UnixMilli(1_700_000_000_000))
	cfg := testConfig(t, t.TempDir())
	cfg.Now = clk.Now
	s := openStore(t, cfg)
	if _, err := s.EarliestStoreTime("T", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("EarliestStoreTime of a missing queue: %v", err)
	}
	t0 := clk.Now().UnixMilli()
	for i := 0; i < 10; i++ {
		mustAppend(t, s, newMsg("T", 0, body(i, 50)))
		mustAppend(t, s, newMsg("Other", 0, body(i, 50)))
		clk.Add(10 * time.Second)
	}
	tests := []struct {
		ts   int64
		want int64
	}{
		{0, 0}, {t0, 0}, {t0 + 1, 1}, {t0 + 10_000, 1}, {t0 + 45_000, 5}, {t0 + 90_000, 9}, {t0 + 90_001, 10}, {t0 + 1e9, 10},
	}
	for _, tc := range tests {
		if got := s.OffsetByTime("T", 0, tc.ts); got != tc.want {
			t.Errorf("OffsetByTime(t0%+d) = %d, want %d", tc.ts-t0, got, tc.want)
		}
	}
	if got, err := s.EarliestStoreTime("T", 0); err != nil || got != t0 {
		t.Fatalf("EarliestStoreTime = %d, %v; want %d", got, err, t0)
	}
	// The broker clock going backwards does not make store times decrease.
	clk.Add(-time.Hour)
	m := newMsg("T", 0, "late")
	mustAppend(t, s, m)
	if m.StoreTimestamp < t0+90_000 {
		t.Fatalf("store timestamp went backwards: %d", m.StoreTimestamp)
	}
}

// collidingKeys finds two keys whose index keys (topic#key) share a
// 32-bit FNV-1a hash, the index's hash.
func collidingKeys(t *testing.T, topic string) (string, string) {
	seen := make(map[uint32]string, 1<<17)
	for i := 0; i < 1<<22; i++ {
		k := fmt.Sprintf("key%d", i)
		h := fnv.New32a()
		h.Write([]byte(topic + "#" + k))
		sum := h.Sum32()
		if o, ok := seen[sum]; ok {
			return o, k
		}
		seen[sum] = k
	}
	t.Skip("no collision found")
	return "", ""
}

func TestStoreQueryByKey(t *testing.T) {
	clk := testkit.NewClock(time.UnixMilli(1_700_000_000_000))
	cfg := testConfig(t, t.TempDir())
	cfg.Now = clk.Now
	s := openStore(t, cfg)
	k1, k2 := collidingKeys(t, "T")
	t0 := clk.Now().UnixMilli()
	m1 := newMsg("T", 0, "one", message.PropKeys, "order-1 "+k1, message.PropUniqClientMessageID, "UNIQ1")
	m2 := newMsg("T", 1, "two", message.PropKeys, "order-1", message.PropUniqClientMessageID, "UNIQ2")
	m3 := newMsg("Other", 0, "three", message.PropKeys, "order-1")
	m4 := newMsg("T", 0, "four", message.PropKeys, "order-10")
	for _, m := range []*message.Ext{m1, m2, m3, m4} {
		mustAppend(t, s, m)
		clk.Add(5 * time.Second)
	}
	t1 := clk.Now().UnixMilli()
	tests := []struct {
		key        string
		max        int
		begin, end int64
		want       []*message.Ext
	}{
		{"order-1", 10, 0, t1, []*message.Ext{m2, m1}},
		{"order-1", 1, 0, t1, []*message.Ext{m2}},
		{"order-10", 10, 0, t1, []*message.Ext{m4}},
		{"UNIQ1", 10, 0, t1, []*message.Ext{m1}},
		{"UNIQ2", 10, 0, t1, []*message.Ext{m2}},
		{k1, 10, 0, t1, []*message.Ext{m1}},
		{k2, 10, 0, t1, nil}, // same hash as k1: the candidate is refused
		{"order-1", 10, t0 + 3000, t1, []*message.Ext{m2}},
		{"order-1", 10, 0, t0 + 2000, []*message.Ext{m1}},
		{"missing", 10, 0, t1, nil},
	}
	for _, tc := range tests {
		got, err := s.QueryByKey("T", tc.key, tc.max, tc.begin, tc.end)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("QueryByKey(%q, %d, [%d,%d]) returned %d records, want %d", tc.key, tc.max, tc.begin-t0, tc.end-t0, len(got), len(tc.want))
		}
		for i := range got {
			checkRecordIs(t, got[i], tc.want[i])
		}
	}
	// Index survives a reopen, and is rebuilt when it is gone.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, cfg)
	if got, _ := s2.QueryByKey("T", "order-1", 10, 0, t1); len(got) != 2 {
		t.Fatalf("after reopen: %d records", len(got))
	}
}

// TestStoreUnindexedTopic: records of Config.UnindexedTopic are not in the
// key index, live or after the index is rebuilt on reopen; other topics
// with the same keys are.
func TestStoreUnindexedTopic(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.UnindexedTopic = "Hidden"
	s := openStore(t, cfg)
	hidden := newMsg("Hidden", 0, "h", message.PropKeys, "k", message.PropUniqClientMessageID, "U1")
	shown := newMsg("Shown", 0, "s", message.PropKeys, "k", message.PropUniqClientMessageID, "U1")
	mustAppend(t, s, hidden)
	mustAppend(t, s, shown)
	check := func(s *Store, when string) {
		t.Helper()
		for _, key := range []string{"k", "U1"} {
			if got, err := s.QueryByKey("Hidden", key, 10, 0, math.MaxInt64); err != nil || len(got) != 0 {
				t.Fatalf("%s: QueryByKey(Hidden, %q) = %d records, %v; want none", when, key, len(got), err)
			}
			got, err := s.QueryByKey("Shown", key, 10, 0, math.MaxInt64)
			if err != nil || len(got) != 1 {
				t.Fatalf("%s: QueryByKey(Shown, %q) = %d records, %v; want 1", when, key, len(got), err)
			}
			checkRecordIs(t, got[0], shown)
		}
	}
	check(s, "live")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(cfg.Dir, indexDirName)); err != nil {
		t.Fatal(err)
	}
	check(openStore(t, cfg), "index rebuilt")
}

func TestStoreDeleteTopic(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s := openStore(t, cfg)
	for i := 0; i < 5; i++ {
		mustAppend(t, s, newMsg("Gone", 0, "x"))
		mustAppend(t, s, newMsg("Kept", 0, "y"))
	}
	if err := s.DeleteTopic("Gone"); err != nil {
		t.Fatal(err)
	}
	if s.MaxOffset("Gone", 0) != 0 || s.MaxOffset("Kept", 0) != 5 {
		t.Fatal("wrong offsets after DeleteTopic")
	}
	if res := mustAppend(t, s, newMsg("Gone", 0, "new")); res.QueueOffset != 0 {
		t.Fatalf("recreated topic starts at %d", res.QueueOffset)
	}
	s.Close()
	s2 := openStore(t, cfg)
	if s2.MaxOffset("Gone", 0) != 1 || s2.MaxOffset("Kept", 0) != 5 {
		t.Fatalf("after reopen: Gone max %d, Kept max %d", s2.MaxOffset("Gone", 0), s2.MaxOffset("Kept", 0))
	}
}

func TestStoreCloseIdempotent(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	mustAppend(t, s, newMsg("T", 0, "x"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), newMsg("T", 0, "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, err := s.GetMessages("T", 0, 0, 1, 0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("GetMessages after Close: %v", err)
	}
	if _, err := s.ReadAt(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	if err := s.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
}

func TestStoreDirLocked(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	openStore(t, cfg)
	if _, err := Open(cfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v", err)
	}
}

func TestStoreConfigValidation(t *testing.T) {
	for _, mut := range []func(*Config){
		func(c *Config) { c.Dir = "" },
		func(c *Config) { c.SegmentSize = 1000 },
		func(c *Config) { c.MaxMessageSize = 1 << 20 }, // does not fit a 64 KiB segment
		func(c *Config) { c.DeleteWhen = "25" },
		func(c *Config) { c.DiskMaxUsedSpaceRatio = 99 },
		func(c *Config) { c.FlushMode = 7 },
	} {
		cfg := testConfig(t, t.TempDir())
		mut(&cfg)
		if _, err := Open(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Open: %v, want ErrInvalidConfig", err)
		}
	}
}
