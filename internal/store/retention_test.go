package store

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/testutil/testkit"

	"github.com/txmq/txmq/internal/message"
)

func TestStoreRetention(t *testing.T) {
	day := time.Date(2024, 3, 1, 1, 0, 0, 0, time.Local) // 01:00, not a delete hour
	tests := []struct {
		name      string
		age       time.Duration // how old the data is when retention runs
		hour      int
		usage     float64
		wantGone  bool // segments removed
		allButOne bool // everything but the active segment removed
	}{
		{"expired, not the hour, disk ok", 96 * time.Hour, 1, 10, false, false},
		{"expired, delete hour", 96 * time.Hour, 4, 10, true, false},
		{"not expired, delete hour", 48 * time.Hour, 4, 10, false, false},
		{"expired, disk above ratio", 96 * time.Hour, 1, 80, true, false},
		{"not expired, disk above ratio", 48 * time.Hour, 1, 80, false, false},
		{"not expired, disk above force ratio", 48 * time.Hour, 1, 90, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewClock(day)
			var usage atomic.Value
			usage.Store(10.0)
			cfg := testConfig(t, t.TempDir())
			cfg.Now = clk.Now
			cfg.DiskUsage = func(string) (float64, error) { return usage.Load().(float64), nil }
			s := openStore(t, cfg)
			// Old data: 4+ segments.
			var msgs []*message.Ext
			for i := 0; i < 240; i++ {
				m := newMsg("Ret", 0, body(i, 1000))
				mustAppend(t, s, m)
				msgs = append(msgs, m)
			}
			// The active segment gets a fresh record later.
			clk.Add(tc.age)
			for i := 0; i < 70; i++ {
				m := newMsg("Ret", 0, body(i, 1000))
				mustAppend(t, s, m)
				msgs = append(msgs, m)
			}
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			before := s.Stats()
			now := time.Date(2024, 3, 1, tc.hour, 30, 0, 0, time.Local).Add(tc.age)
			usage.Store(tc.usage)
			n, err := s.clean(now)
			if err != nil {
				t.Fatal(err)
			}
			after := s.Stats()
			if (n > 0) != tc.wantGone {
				t.Fatalf("removed %d segments (of %d)", n, before.Segments)
			}
			if tc.allButOne && after.Segments != 1 {
				t.Fatalf("forced clean left %d segments", after.Segments)
			}
			if after.Segments < 1 || after.MaxOffset != before.MaxOffset {
				t.Fatal("the active segment was touched")
			}
			if !tc.wantGone {
				return
			}
			if !tc.allButOne && after.MinOffset > msgs[240].CommitLogOffset {
				t.Fatalf("unexpired data removed: min %d > %d", after.MinOffset, msgs[240].CommitLogOffset)
			}
			minQ := s.MinOffset("Ret", 0)
			if minQ == 0 || msgs[minQ].CommitLogOffset < after.MinOffset || msgs[minQ-1].CommitLogOffset >= after.MinOffset {
				t.Fatalf("queue min offset %d does not match the commit log min %d", minQ, after.MinOffset)
			}
			r, err := s.GetMessages("Ret", 0, 0, 10, 0, nil)
			if err != nil || r.Status != OffsetTooSmall || r.NextBeginOffset != minQ {
				t.Fatalf("GetMessages below min: %v %v next %d", err, r.Status, r.NextBeginOffset)
			}
			r.Release()
			if _, err := s.ReadAt(msgs[0].CommitLogOffset); !errors.Is(err, ErrOffsetMoved) {
				t.Fatalf("ReadAt removed offset: %v", err)
			}
			r, _ = s.GetMessages("Ret", 0, minQ, 1000, 0, nil)
			if r.Status != Found || int64(len(r.Records)) != int64(len(msgs))-minQ {
				t.Fatalf("after retention: %v, %d records", r.Status, len(r.Records))
			}
			r.Release()
			// Reopen: minimums stay.
			s.Close()
			s2 := openStore(t, cfg)
			if s2.MinOffset("Ret", 0) != minQ || s2.Stats().MinOffset != after.MinOffset {
				t.Fatalf("after reopen: queue min %d, log min %d", s2.MinOffset("Ret", 0), s2.Stats().MinOffset)
			}
			verifyAcked(t, s2, msgs[minQ:])
		})
	}
}
