package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/txmq/txmq/internal/message"
)

// TestScanAndOnRecord: OnRecord sees every appended record once, in
// commit-log order, across segment rolls; Scan from any record boundary
// visits exactly the records from there, skipping segment fillers.
func TestScanAndOnRecord(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var hooked []int64
	cfg := DefaultConfig(dir)
	cfg.SegmentSize = 64 << 10
	cfg.MaxMessageSize = 16 << 10
	cfg.OnRecord = func(off int64, v message.View) {
		mu.Lock()
		defer mu.Unlock()
		if v.CommitLogOffset() != off {
			t.Errorf("hook: view offset %d at %d", v.CommitLogOffset(), off)
		}
		hooked = append(hooked, off)
	}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var offs []int64
	for i := 0; i < 300; i++ {
		m := newMsg(fmt.Sprintf("T%d", i%3), 0, string(make([]byte, 700)))
		res, err := s.Append(context.Background(), m)
		if err != nil {
			t.Fatal(err)
		}
		offs = append(offs, res.CommitLogOffset)
	}
	mu.Lock()
	if len(hooked) != len(offs) {
		t.Fatalf("hook saw %d records, appended %d", len(hooked), len(offs))
	}
	for i := range offs {
		if hooked[i] != offs[i] {
			t.Fatalf("hook order: %d at %d, want %d", hooked[i], i, offs[i])
		}
	}
	mu.Unlock()
	if s.Stats().Segments < 3 {
		t.Fatalf("expected segment rolls, have %d segments", s.Stats().Segments)
	}
	for _, start := range []int{0, 1, 150, 299} {
		var seen []int64
		end, err := s.Scan(offs[start], func(off int64, v message.View) error {
			if v.CommitLogOffset() != off || v.VerifyCRC() != nil {
				t.Fatalf("scan: bad record at %d", off)
			}
			seen = append(seen, off)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != len(offs)-start || seen[0] != offs[start] || end != s.Stats().MaxOffset {
			t.Fatalf("scan from #%d: %d records, end %d (max %d)", start, len(seen), end, s.Stats().MaxOffset)
		}
	}
	stop := errors.New("stop")
	n := 0
	if _, err := s.Scan(0, func(int64, message.View) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("stop: %v after %d", err, n)
	}
	if _, err := s.Scan(offs[1]+1, func(int64, message.View) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("scan from a non-boundary: %v", err)
	}
}

// TestFlushDuringAppends: Flush (a writer barrier) while appenders keep
// the writer busy must neither panic nor lose an append.
func TestFlushDuringAppends(t *testing.T) {
	cfg := DefaultConfig(t.TempDir())
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	const writers, each = 8, 300
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := s.Append(context.Background(), newMsg("F", 0, "x")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for flushing := true; flushing; {
		select {
		case <-done:
			flushing = false
		default:
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := s.MaxOffset("F", 0); got != writers*each {
		t.Fatalf("max offset %d, want %d", got, writers*each)
	}
}
