package store

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/txmq/txmq/internal/message"
)

// buildLog appends n messages over 3 queues of one topic (SyncFlush), so
// that they span several segments, and closes the store.
func buildLog(t testing.TB, cfg Config, n int) []*message.Ext {
	t.Helper()
	cfg.FlushMode = SyncFlush
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*message.Ext
	for i := 0; i < n; i++ {
		m := newMsg("R", int32(i%3), body(i, 500+(i*37)%700), message.PropTags, "tag", message.PropKeys, "key"+string(rune('a'+i%26)))
		if _, err := s.Append(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// patchLog overwrites bytes of the commit log at a commit-log offset.
func patchLog(t testing.TB, cfg Config, off int64, b []byte) {
	t.Helper()
	start := off / cfg.SegmentSize * cfg.SegmentSize
	f, err := os.OpenFile(filepath.Join(cfg.Dir, commitLogDirName, segmentName(start)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off-start); err != nil {
		t.Fatal(err)
	}
}

func recSize(m *message.Ext) int64 { return int64(m.EncodedLen()) }

// propsPos returns the commit-log offset of m's properties.
func propsPos(m *message.Ext) int64 {
	return m.CommitLogOffset + recSize(m) - int64(len(m.Properties))
}

// verifyPrefix checks that exactly msgs[:k] are in the store, readable and
// visible in their queues, and that the queues have no holes.
func verifyPrefix(t testing.TB, s *Store, msgs []*message.Ext, k int) {
	t.Helper()
	counts := map[int32]int64{}
	for i, m := range msgs {
		rec, err := s.ReadAt(m.CommitLogOffset)
		if i >= k {
			if err == nil {
				// The same bytes may have been written again at that offset
				// by a later append; they must then be another record.
				if v, perr := message.Parse(rec); perr == nil && string(v.Body()) == string(m.Body) {
					t.Fatalf("message %d (at %d) survived the damage", i, m.CommitLogOffset)
				}
			}
			continue
		}
		if err != nil {
			t.Fatalf("message %d at %d lost: %v", i, m.CommitLogOffset, err)
		}
		checkRecordIs(t, rec, m)
		counts[m.QueueID]++
	}
	for q := int32(0); q < 3; q++ {
		if got := s.MaxOffset("R", q); got != counts[q] {
			t.Fatalf("queue %d max offset %d, want %d", q, got, counts[q])
		}
		r, err := s.GetMessages("R", q, 0, 10000, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(r.Records)) != counts[q] {
			t.Fatalf("queue %d: %d records visible, want %d (%v)", q, len(r.Records), counts[q], r.Status)
		}
		for j, rec := range r.Records {
			if r.QueueOffsets[j] != int64(j) {
				t.Fatalf("queue %d has a hole at %d", q, j)
			}
			if _, err := checkRecord(rec, int64(binary.BigEndian.Uint64(rec[message.PosPhysicalOffset:]))); err != nil {
				t.Fatalf("queue %d offset %d: corrupt record returned: %v", q, j, err)
			}
		}
		r.Release()
	}
}

func TestStoreRecoverTornTail(t *testing.T) {
	type damage func(t *testing.T, cfg Config, msgs []*message.Ext) (firstLost int)
	last := func(msgs []*message.Ext) int { return len(msgs) - 1 }
	firstInSegment := func(cfg Config, msgs []*message.Ext, seg int64) int {
		for i, m := range msgs {
			if m.CommitLogOffset >= seg*cfg.SegmentSize {
				return i
			}
		}
		return len(msgs)
	}
	tests := []struct {
		name   string
		damage damage
	}{
		{"clean", func(t *testing.T, cfg Config, msgs []*message.Ext) int { return len(msgs) }},
		{"cut in the last record's body", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			m := msgs[last(msgs)]
			patchLog(t, cfg, m.CommitLogOffset+recSize(m)/2, make([]byte, recSize(m)/2+1))
			return last(msgs)
		}},
		{"cut in the last record's header", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			m := msgs[last(msgs)]
			patchLog(t, cfg, m.CommitLogOffset+6, make([]byte, recSize(m)-6))
			return last(msgs)
		}},
		{"only the first bytes of the last record", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			m := msgs[last(msgs)]
			patchLog(t, cfg, m.CommitLogOffset+2, make([]byte, recSize(m)-2))
			return last(msgs)
		}},
		{"flipped body byte", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			k := len(msgs) - 7
			m := msgs[k]
			pos := m.CommitLogOffset + recSize(m) - int64(len(m.Properties)) - 3 - int64(len(m.Topic)) - 10
			patchLog(t, cfg, pos, []byte{'#'})
			return k
		}},
		{"zeroed properties", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			k := len(msgs) - 5
			patchLog(t, cfg, propsPos(msgs[k]), make([]byte, len(msgs[k].Properties)))
			return k
		}},
		{"wrong self offset", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			k := len(msgs) - 4
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(msgs[k].CommitLogOffset+1))
			patchLog(t, cfg, msgs[k].CommitLogOffset+message.PosPhysicalOffset, b[:])
			return k
		}},
		{"bad magic", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			k := len(msgs) - 3
			patchLog(t, cfg, msgs[k].CommitLogOffset+message.PosMagic, []byte{1, 2, 3, 4})
			return k
		}},
		{"total size past the segment", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			k := len(msgs) - 3
			patchLog(t, cfg, msgs[k].CommitLogOffset, []byte{0x10, 0, 0, 0})
			return k
		}},
		{"queue offset out of sequence", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			k := len(msgs) - 6
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], uint64(msgs[k].QueueOffset+1))
			patchLog(t, cfg, msgs[k].CommitLogOffset+message.PosQueueOffset, b[:])
			return k
		}},
		{"garbage after the end", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			m := msgs[last(msgs)]
			g := make([]byte, 300)
			for i := range g {
				g[i] = byte(rand.IntN(256))
			}
			patchLog(t, cfg, m.CommitLogOffset+recSize(m), g)
			return len(msgs)
		}},
		{"a later page written, the end not", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			// A copy of a valid record 8 KiB past the end, at the position
			// it names: only zeroing the tail keeps it from coming back.
			m := msgs[last(msgs)]
			if m.CommitLogOffset%cfg.SegmentSize+recSize(m)+8192+2000 > cfg.SegmentSize {
				t.Skip("no room")
			}
			cp := *m
			cp.CommitLogOffset = m.CommitLogOffset + recSize(m) + 8192
			cp.QueueOffset = m.QueueOffset + 1
			patchLog(t, cfg, cp.CommitLogOffset, cp.AppendTo(nil))
			return len(msgs)
		}},
		{"damaged end-of-segment marker", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			k := firstInSegment(cfg, msgs, 1)
			blank := msgs[k-1].CommitLogOffset + recSize(msgs[k-1])
			patchLog(t, cfg, blank, []byte{0, 0, 0, 9})
			return k
		}},
		{"first record of the last segment torn", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			k := firstInSegment(cfg, msgs, msgs[last(msgs)].CommitLogOffset/cfg.SegmentSize)
			patchLog(t, cfg, msgs[k].CommitLogOffset+message.PosBodyCRC, []byte{9, 9})
			return k
		}},
		{"stray segment after the end", func(t *testing.T, cfg Config, msgs []*message.Ext) int {
			next := (msgs[last(msgs)].CommitLogOffset/cfg.SegmentSize + 1) * cfg.SegmentSize
			g := make([]byte, cfg.SegmentSize)
			cp := *msgs[0]
			cp.CommitLogOffset, cp.QueueOffset = next, msgs[last(msgs)-2].QueueOffset+1
			copy(g, cp.AppendTo(nil))
			if err := os.WriteFile(filepath.Join(cfg.Dir, commitLogDirName, segmentName(next)), g, 0o644); err != nil {
				t.Fatal(err)
			}
			return len(msgs)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			msgs := buildLog(t, cfg, 150)
			k := tc.damage(t, cfg, msgs)
			// Pretend a crash: the checkpoint is back at the start, so the
			// whole log is scanned against intact consume queues.
			if err := writeCheckpoint(cfg.Dir, 0); err != nil {
				t.Fatal(err)
			}
			s := openStore(t, cfg)
			verifyPrefix(t, s, msgs, k)
			// Appends continue right after the last good record.
			m := newMsg("After", 0, "after recovery")
			res := mustAppend(t, s, m)
			if k < len(msgs) && msgs[k].CommitLogOffset%cfg.SegmentSize != 0 && res.CommitLogOffset != msgs[k].CommitLogOffset {
				t.Fatalf("new record at %d, want %d", res.CommitLogOffset, msgs[k].CommitLogOffset)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// A second crash-recovery keeps the new record and does not
			// resurrect anything that was cut.
			if err := writeCheckpoint(cfg.Dir, 0); err != nil {
				t.Fatal(err)
			}
			s2 := openStore(t, cfg)
			verifyPrefix(t, s2, msgs, k)
			rec, err := s2.ReadAt(res.CommitLogOffset)
			if err != nil {
				t.Fatal(err)
			}
			checkRecordIs(t, rec, m)
		})
	}
}

func TestStoreRecoverRebuildsDerivedData(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, dir string)
	}{
		{"consume queues deleted", func(t *testing.T, dir string) { os.RemoveAll(filepath.Join(dir, consumeQueueDir)) }},
		{"index deleted", func(t *testing.T, dir string) { os.RemoveAll(filepath.Join(dir, indexDirName)) }},
		{"checkpoint deleted", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, checkpointFileName)) }},
		{"checkpoint corrupt", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, checkpointFileName), []byte("garbage garbage garbage garbage!"), 0o644)
		}},
		{"checkpoint at zero", func(t *testing.T, dir string) { writeCheckpoint(dir, 0) }},
		{"checkpoint beyond the log", func(t *testing.T, dir string) { writeCheckpoint(dir, 1<<40) }},
		{"everything derived deleted", func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, consumeQueueDir))
			os.RemoveAll(filepath.Join(dir, indexDirName))
			os.Remove(filepath.Join(dir, checkpointFileName))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			msgs := buildLog(t, cfg, 120)
			tc.mutate(t, cfg.Dir)
			s := openStore(t, cfg)
			verifyPrefix(t, s, msgs, len(msgs))
			got, err := s.QueryByKey("R", "keyc", 100, 0, 1<<62)
			if err != nil || len(got) != 5 {
				t.Fatalf("QueryByKey after rebuild: %d records, %v", len(got), err)
			}
		})
	}
}

func TestStoreRecoverEmptyAndFresh(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s := openStore(t, cfg)
	if st := s.Stats(); st.MinOffset != 0 || st.MaxOffset != 0 || st.Segments != 1 {
		t.Fatalf("fresh store: %+v", st)
	}
	s.Close()
	// Segment size changed: refused, not silently misread.
	cfg2 := cfg
	cfg2.SegmentSize = 128 << 10
	if _, err := Open(cfg2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with another segment size: %v", err)
	}
}
