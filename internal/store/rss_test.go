package store

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
)

// procStatusKiB returns a field of /proc/self/status in KiB (-1 if absent).
func procStatusKiB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// TestStoreRSSTrimmed writes and reads back TXMQ_RSS_MB MiB (default 64;
// 300 for the measurement in the change notes) of 1 KiB keyed messages
// through the default-size commit log, consume queues and index, then
// checks that a trim round leaves the process's file-backed resident set
// (RssFile) small: mapped pages behind the writer are released. With
// TXMQ_RSS_NOTRIM=1 it only reports the figures without trimming.
func TestStoreRSSTrimmed(t *testing.T) {
	if testing.Short() {
		t.Skip("writes tens of MiB")
	}
	if procStatusKiB("RssFile") < 0 {
		t.Skip("no RssFile in /proc/self/status")
	}
	mb := 64
	if v, err := strconv.Atoi(os.Getenv("TXMQ_RSS_MB")); err == nil && v > 0 {
		mb = v
	}
	noTrim := os.Getenv("TXMQ_RSS_NOTRIM") == "1"
	cfg := benchConfig(t.TempDir(), AsyncFlush)
	cfg.Logger = testLogger(t)
	cfg.trimInterval = -1 // the test drives the rounds
	s := openStore(t, cfg)
	rss0 := procStatusKiB("RssFile")
	var ms []*message.Ext
	for g := 0; g < 256; g++ {
		m := benchMsg(1024, g)
		m.Properties = message.AppendProperty(m.Properties, message.PropKeys, "order-"+strconv.Itoa(g))
		ms = append(ms, m)
	}
	next := make([]int64, 8)
	read := func() {
		for q := range next {
			for {
				r, err := s.GetMessages("BenchTopic", int32(q), next[q], 32, 0, nil)
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != Found {
					r.Release()
					break
				}
				next[q] = r.NextBeginOffset
				r.Release()
			}
		}
	}
	for round := 0; s.Stats().MaxOffset < int64(mb)<<20; round++ {
		if _, err := s.AppendBatch(context.Background(), ms); err != nil {
			t.Fatal(err)
		}
		if round%16 == 15 {
			read()
		}
		if !noTrim && round%64 == 63 {
			s.trimMappings()
		}
	}
	read()
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	before := procStatusKiB("RssFile")
	if !noTrim {
		s.trimMappings()
	}
	after := procStatusKiB("RssFile")
	t.Logf("wrote and read %d MiB: RssFile %d KiB at open, %d KiB before the last trim round, %d KiB after (trimming %v); VmRSS %d KiB, VmHWM %d KiB",
		s.Stats().MaxOffset>>20, rss0, before, after, !noTrim, procStatusKiB("VmRSS"), procStatusKiB("VmHWM"))
	if !noTrim && after > rss0+24<<10 {
		t.Fatalf("RssFile %d KiB after trimming (%d KiB at open): mapped pages are kept", after, rss0)
	}
}

// TestStoreTrimAfterReadBurst: reading trimReadBurst bytes through the
// mappings starts a trim round at once, long before the interval; without
// the burst (a limit never reached) nothing is trimmed in the same time.
func TestStoreTrimAfterReadBurst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		burst int64
		want  bool
	}{{"burst", 256 << 10, true}, {"no burst", 1 << 40, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := benchConfig(t.TempDir(), AsyncFlush)
			cfg.Logger = testLogger(t)
			cfg.trimInterval = time.Hour // no periodic round during the test
			cfg.trimReadBurst = tc.burst
			s := openStore(t, cfg)
			var ms []*message.Ext
			for g := 0; g < 256; g++ {
				ms = append(ms, benchMsg(1024, g))
			}
			for s.Stats().MaxOffset < 4<<20 {
				if _, err := s.AppendBatch(context.Background(), ms); err != nil {
					t.Fatal(err)
				}
			}
			// Read everything back (the indexer reads it too).
			for q := int32(0); q < 8; q++ {
				for next := int64(0); ; {
					r, err := s.GetMessages("BenchTopic", q, next, 32, 0, nil)
					if err != nil {
						t.Fatal(err)
					}
					found := r.Status == Found
					next = r.NextBeginOffset
					r.Release()
					if !found {
						break
					}
				}
			}
			trimmed := func() int64 {
				s.segMu.RLock()
				defer s.segMu.RUnlock()
				return s.segs[0].trimmed.Load()
			}
			deadline := time.Now().Add(500 * time.Millisecond)
			if tc.want {
				deadline = time.Now().Add(10 * time.Second)
			}
			for trimmed() == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := trimmed() > 0; got != tc.want {
				t.Fatalf("trimmed up to %d after reading %d MiB (burst %d): trimmed %v, want %v",
					trimmed(), s.Stats().MaxOffset>>20, tc.burst, got, tc.want)
			}
		})
	}
}
