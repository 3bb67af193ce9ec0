package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/txmq/txmq/internal/message"
)

func fuzzConfig(dir string) Config {
	cfg := DefaultConfig(dir)
	cfg.SegmentSize = 40 << 10
	cfg.MaxMessageSize = 1 << 10
	cfg.CQEntriesPerFile = 64
	cfg.IndexSlots = 64
	cfg.IndexEntries = 256
	cfg.FlushMode = SyncFlush
	return cfg
}

// FuzzRecoverTail damages the tail of a small valid commit log (cut: zero
// from a position to the end of its segment and drop later segments; flip:
// xor one byte; smear: overwrite 16 bytes) and reopens the store.
//
// Invariants: Open never fails or panics on damaged content; every record
// that ends before the damage is still there, byte for byte, and visible in
// its queue; every record the store returns passes all recovery checks;
// the recovered log scans cleanly to its end; queues have no holes.
func FuzzRecoverTail(f *testing.F) {
	tmpl := f.TempDir()
	var msgs []*message.Ext
	{
		s, err := Open(fuzzConfig(tmpl))
		if err != nil {
			f.Fatal(err)
		}
		for i := 0; i < 70; i++ {
			m := newMsg("Fz", int32(i%2), body(i, 100+(i*53)%900), message.PropKeys, "k", message.PropTags, "t")
			if _, err := s.Append(context.Background(), m); err != nil {
				f.Fatal(err)
			}
			msgs = append(msgs, m)
		}
		s.Close()
	}
	segs, _ := os.ReadDir(filepath.Join(tmpl, commitLogDirName))
	last := msgs[len(msgs)-1]
	logEnd := last.CommitLogOffset + int64(last.EncodedLen())
	f.Add(byte(0), uint32(logEnd-10), byte(0))
	f.Add(byte(1), uint32(msgs[40].CommitLogOffset+100), byte(0x40))
	f.Add(byte(2), uint32(msgs[10].CommitLogOffset), byte(7))
	f.Add(byte(0), uint32(40<<10-8), byte(0)) // the end-of-segment marker
	f.Add(byte(1), uint32(msgs[69].CommitLogOffset+message.PosQueueOffset+7), byte(1))
	f.Fuzz(func(t *testing.T, mode byte, pos32 uint32, val byte) {
		cfg := fuzzConfig(t.TempDir())
		clDir := filepath.Join(cfg.Dir, commitLogDirName)
		os.MkdirAll(clDir, 0o755)
		os.MkdirAll(filepath.Join(cfg.Dir, consumeQueueDir), 0o755)
		os.MkdirAll(filepath.Join(cfg.Dir, indexDirName), 0o755)
		for _, e := range segs {
			b, err := os.ReadFile(filepath.Join(tmpl, commitLogDirName, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(clDir, e.Name()), b, 0o644)
		}
		if err := writeCheckpoint(cfg.Dir, 0); err != nil {
			t.Fatal(err)
		}
		size := cfg.SegmentSize
		pos := int64(pos32) % (int64(len(segs)) * size)
		seg := filepath.Join(clDir, segmentName(pos/size*size))
		fh, err := os.OpenFile(seg, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		rel := pos % size
		switch mode % 3 {
		case 0: // cut
			fh.WriteAt(make([]byte, size-rel), rel)
			for s := pos/size*size + size; s < int64(len(segs))*size; s += size {
				os.Remove(filepath.Join(clDir, segmentName(s)))
			}
		case 1: // flip
			var b [1]byte
			fh.ReadAt(b[:], rel)
			b[0] ^= val | 1
			fh.WriteAt(b[:], rel)
		case 2: // smear
			g := make([]byte, min(16, size-rel))
			for i := range g {
				g[i] = val + byte(i*31)
			}
			fh.WriteAt(g, rel)
		}
		fh.Close()

		s, err := Open(cfg)
		if err != nil {
			t.Fatalf("Open after damage at %d (mode %d): %v", pos, mode%3, err)
		}
		defer s.Close()
		counts := [2]int64{}
		for _, m := range msgs {
			if m.CommitLogOffset+int64(m.EncodedLen()) > pos {
				break
			}
			rec, err := s.ReadAt(m.CommitLogOffset)
			if err != nil {
				t.Fatalf("record at %d before the damage at %d lost: %v", m.CommitLogOffset, pos, err)
			}
			checkRecordIs(t, rec, m)
			counts[m.QueueID]++
		}
		for q := int32(0); q < 2; q++ {
			if s.MaxOffset("Fz", q) < counts[q] {
				t.Fatalf("queue %d: max offset %d < %d records before the damage", q, s.MaxOffset("Fz", q), counts[q])
			}
			r, err := s.GetMessages("Fz", q, 0, 1000, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, rec := range r.Records {
				off := int64(v64(rec[message.PosPhysicalOffset:]))
				if _, err := checkRecord(rec, off); err != nil || r.QueueOffsets[i] != int64(i) {
					t.Fatalf("queue %d offset %d: bad record or hole: %v", q, r.QueueOffsets[i], err)
				}
			}
			r.Release()
		}
		st := s.Stats()
		s.segMu.RLock()
		end, reason, detail, err := scanLog(s.segs, size, st.MinOffset, func(message.View, int64) (bool, error) { return true, nil })
		s.segMu.RUnlock()
		if err != nil || end != st.MaxOffset || reason == stopCorrupt {
			t.Fatalf("recovered log does not scan cleanly: end %d (visible %d), reason %d %s %v", end, st.MaxOffset, reason, detail, err)
		}
	})
}
