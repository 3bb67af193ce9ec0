package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
)

func TestStoreAppendReadAcrossSegments(t *testing.T) {
	for _, mode := range []FlushMode{AsyncFlush, SyncFlush} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, dir)
			cfg.FlushMode = mode
			s := openStore(t, cfg)
			var msgs []*message.Ext
			for i := 0; i < 300; i++ { // ~300 * 1.1 KiB: 5+ segments
				m := newMsg("TopicA", int32(i%3), body(i, 1000+i%200), message.PropTags, "T", message.PropKeys, "k1 k2")
				res := mustAppend(t, s, m)
				if res.QueueOffset != int64(i/3) || res.CommitLogOffset != m.CommitLogOffset {
					t.Fatalf("msg %d: result %+v, want queue offset %d", i, res, i/3)
				}
				msgs = append(msgs, m)
			}
			if st := s.Stats(); st.Segments < 5 || st.Rolls < 4 {
				t.Fatalf("expected several segments, got %+v", st)
			}
			verify := func(s *Store) {
				t.Helper()
				for i, m := range msgs {
					rec, err := s.ReadAt(m.CommitLogOffset)
					if err != nil {
						t.Fatalf("ReadAt msg %d at %d: %v", i, m.CommitLogOffset, err)
					}
					checkRecordIs(t, rec, m)
				}
				for q := int32(0); q < 3; q++ {
					if got := s.MaxOffset("TopicA", q); got != 100 {
						t.Fatalf("MaxOffset q%d = %d, want 100", q, got)
					}
					r, err := s.GetMessages("TopicA", q, 0, 1000, 0, nil)
					if err != nil || r.Status != Found || len(r.Records) != 100 || r.NextBeginOffset != 100 {
						t.Fatalf("GetMessages q%d: %v %v n=%d next=%d", q, err, r.Status, len(r.Records), r.NextBeginOffset)
					}
					for j, rec := range r.Records {
						checkRecordIs(t, rec, msgs[j*3+int(q)])
					}
					all, err := message.DecodeAll(r.Body)
					if err != nil || len(all) != 100 {
						t.Fatalf("Body decodes to %d records: %v", len(all), err)
					}
					r.Release()
				}
			}
			verify(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := openStore(t, cfg)
			if st := s2.Stats(); st.RecoveredBytes != 0 {
				t.Fatalf("clean reopen re-dispatched %d bytes", st.RecoveredBytes)
			}
			verify(s2)
			// Appending after reopen continues the offsets.
			m := newMsg("TopicA", 0, "after")
			if res := mustAppend(t, s2, m); res.QueueOffset != 100 {
				t.Fatalf("queue offset after reopen = %d", res.QueueOffset)
			}
		})
	}
}

func TestStoreRefusesBadInput(t *testing.T) {
	s := openStore(t, testConfig(t, t.TempDir()))
	long := make([]byte, 40000)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name string
		m    *message.Ext
		want error
	}{
		{"empty topic", newMsg("", 0, "b"), ErrInvalidTopic},
		{"bad topic", newMsg("a/b", 0, "b"), message.ErrInvalidTopic},
		{"long topic", newMsg(string(long[:200]), 0, "b"), ErrInvalidTopic},
		{"too large", newMsg("T", 0, string(long[:4097])), ErrMessageTooLarge},
		{"negative queue", newMsg("T", -1, "b"), ErrInvalidQueueID},
		{"props too long", newMsg("T", 0, "b", "k", string(long)), ErrPropertiesTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Append(context.Background(), tc.m)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if _, err := s.AppendBatch(context.Background(), []*message.Ext{newMsg("T", 0, "ok"), tc.m}); !errors.Is(err, tc.want) {
				t.Fatalf("batch err = %v, want %v", err, tc.want)
			}
		})
	}
	if st := s.Stats(); st.WrittenOffset != 0 || st.Records != 0 {
		t.Fatalf("something was written: %+v", st)
	}
	// Malformed properties are normalised, not refused.
	m := newMsg("T", 0, "b")
	m.Properties = "a\x01b\x02junk\x02c\x01d"
	mustAppend(t, s, m)
	if m.Properties != "a\x01b\x02c\x01d\x02" {
		t.Fatalf("properties not normalised: %q", m.Properties)
	}
	rec, err := s.ReadAt(m.CommitLogOffset)
	if err != nil {
		t.Fatal(err)
	}
	checkRecordIs(t, rec, m)
}

// TestStoreAppendAsync: AppendAsync and AppendBatchAsync call done once,
// after the records are visible, with the results Append would give; a
// refused message returns an error and done is never called.
func TestStoreAppendAsync(t *testing.T) {
	for _, mode := range []FlushMode{AsyncFlush, SyncFlush} {
		t.Run(mode.String(), func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.FlushMode = mode
			s := openStore(t, cfg)
			ctx := context.Background()
			type outcome struct {
				res []AppendResult
				err error
			}
			got := make(chan outcome, 64)
			const n = 20
			for i := 0; i < n; i++ {
				if i%2 == 0 {
					m := newMsg("TopicA", 0, body(i, 100))
					err := s.AppendAsync(ctx, m, func(r AppendResult, err error) {
						if s.MaxOffset("TopicA", 0) <= r.QueueOffset {
							err = errors.New("done before the record was visible")
						}
						got <- outcome{[]AppendResult{r}, err}
					})
					if err != nil {
						t.Fatal(err)
					}
					continue
				}
				ms := []*message.Ext{newMsg("TopicA", 0, body(i, 100)), newMsg("TopicB", 1, body(i, 50))}
				res := make([]AppendResult, 2)
				err := s.AppendBatchAsync(ctx, ms, res, func(err error) {
					if err == nil && s.MaxOffset("TopicB", 1) <= res[1].QueueOffset {
						err = errors.New("done before the batch was visible")
					}
					got <- outcome{res, err}
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			seen := map[int64]bool{}
			for i := 0; i < n; i++ {
				o := <-got
				if o.err != nil {
					t.Fatal(o.err)
				}
				for _, r := range o.res {
					if seen[r.CommitLogOffset] {
						t.Fatalf("offset %d reported twice", r.CommitLogOffset)
					}
					seen[r.CommitLogOffset] = true
					if _, err := s.ReadAt(r.CommitLogOffset); err != nil {
						t.Fatalf("ReadAt %d: %v", r.CommitLogOffset, err)
					}
				}
			}
			if len(seen) != n/2+n {
				t.Fatalf("%d records acknowledged, want %d", len(seen), n/2+n)
			}
			if got, want := s.MaxOffset("TopicA", 0), int64(n); got != want {
				t.Fatalf("TopicA/0 max offset %d, want %d", got, want)
			}
			called := func(AppendResult, error) { t.Error("done called for a refused message") }
			if err := s.AppendAsync(ctx, newMsg("", 0, "x"), called); err == nil {
				t.Fatal("AppendAsync accepted a message without a topic")
			}
			if err := s.AppendBatchAsync(ctx, []*message.Ext{newMsg("TopicA", 0, "x")}, nil, func(error) { t.Error("done called") }); err == nil {
				t.Fatal("AppendBatchAsync accepted a result slice of the wrong length")
			}
			select {
			case o := <-got:
				t.Fatalf("unexpected completion %+v", o)
			case <-time.After(50 * time.Millisecond):
			}
		})
	}
}
