package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/txmq/txmq/internal/fsutil"
	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store/consumequeue"
	"github.com/txmq/txmq/internal/store/index"
)

// recover opens the segments, consume queues and index, finds the end of
// the valid log, truncates what follows it and re-dispatches the records
// the checkpoint does not cover. See doc.go, "Recovery".
func (s *Store) recover() error {
	size := s.cfg.SegmentSize
	if err := s.openSegments(); err != nil {
		return err
	}
	cqDir := filepath.Join(s.dir, consumeQueueDir)
	idxDir := filepath.Join(s.dir, indexDirName)
	// Open creates both directories: one missing means it was deleted.
	derivedOK := dirExists(cqDir) && dirExists(idxDir)
	var err error
	if s.cq, err = consumequeue.OpenSet(cqDir, consumequeue.Options{EntriesPerFile: s.cfg.CQEntriesPerFile, Logger: s.cfg.Logger}); err != nil {
		return fmt.Errorf("store: open consume queues: %w", err)
	}
	if s.idx, err = index.Open(idxDir, index.Options{SlotsPerFile: s.cfg.IndexSlots, EntriesPerFile: s.cfg.IndexEntries, Logger: s.cfg.Logger}); err != nil {
		return fmt.Errorf("store: open index: %w", err)
	}
	cp, haveCP, err := readCheckpoint(s.dir)
	if err != nil {
		return fmt.Errorf("store: read checkpoint: %w", err)
	}
	if len(s.segs) == 0 {
		// A new store, or the commit log is gone: start the log where the
		// checkpoint's segment starts so no consume-queue entry can point at
		// a new record by accident.
		start := int64(0)
		if haveCP {
			start = cp / size * size
		}
		if err := s.truncateDerived(start); err != nil {
			return err
		}
		seg, err := openSegment(s.clDir, start, size, true, s.cfg.wrapFile)
		if err != nil {
			return fmt.Errorf("store: create segment: %w", err)
		}
		s.segs = append(s.segs, seg)
		if err := fsutil.SyncDir(s.clDir); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return s.finishRecovery(start, start)
	}
	first := s.segs[0].start
	last := s.segs[len(s.segs)-1].start + size
	// Minimum offsets are not persisted in consume queues and index: move
	// them past what retention already removed.
	if err := s.deleteDerivedBefore(first); err != nil {
		return err
	}
	from := first
	switch {
	case !haveCP:
		s.log.Info("store: no checkpoint; rebuilding consume queues and index from the whole commit log")
	case !derivedOK:
		s.log.Warn("store: consume queues or index missing; rebuilding them from the whole commit log")
	default:
		from = min(max(cp, first), last)
	}
	if err := s.truncateDerived(from); err != nil {
		return err
	}
	end, err := s.scan(from, from == first && (!haveCP || !derivedOK))
	if err != nil {
		return err
	}
	return s.finishRecovery(from, end)
}

// openSegments opens every segment file, checking names, sizes and
// contiguity.
func (s *Store) openSegments() error {
	size := s.cfg.SegmentSize
	ents, err := os.ReadDir(s.clDir)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	var starts []int64
	for _, e := range ents {
		start, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			s.log.Warn("store: ignoring unexpected file in the commit log directory", "name", e.Name())
			continue
		}
		starts = append(starts, start)
	}
	slices.Sort(starts)
	for i, start := range starts {
		if start%size != 0 {
			return fmt.Errorf("%w: segment %s does not start at a multiple of SegmentSize %d (was the segment size changed?)", ErrCorrupt, segmentName(start), size)
		}
		if i > 0 && start != starts[i-1]+size {
			return fmt.Errorf("%w: commit log has a gap between segments %s and %s", ErrCorrupt, segmentName(starts[i-1]), segmentName(start))
		}
		seg, err := openSegment(s.clDir, start, size, false, s.cfg.wrapFile)
		if err != nil {
			return fmt.Errorf("store: open segment: %w", err)
		}
		s.segs = append(s.segs, seg)
	}
	return nil
}

func dirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}

// truncateDerived drops consume-queue and index entries at or after off.
func (s *Store) truncateDerived(off int64) error {
	var err error
	s.cq.Range(func(q *consumequeue.Queue) bool {
		if e := q.TruncateFrom(off); e != nil {
			err = fmt.Errorf("store: truncate consume queue %s/%d: %w", q.Topic(), q.QueueID(), e)
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	if err := s.idx.TruncateFrom(off); err != nil {
		return fmt.Errorf("store: truncate index: %w", err)
	}
	return nil
}

// recQueue is recovery's view of one consume queue.
type recQueue struct {
	q     *consumequeue.Queue
	next  int64
	fresh bool // no entries: the first record may start at any offset
}

// scanResult says why a scan stopped.
type stopReason int

const (
	stopClean   stopReason = iota // zeros: the normal end of the log
	stopEnd                       // ran out of segments
	stopCorrupt                   // bytes that are not a valid record
)

// scan validates and dispatches records from off and returns the end of
// the valid log.
// In a full rebuild (no checkpoint, or derived data deleted) a record out
// of its queue's sequence is not taken as corruption, since a deleted and
// re-created topic restarts its offsets: it stays in the log but is not
// dispatched.
func (s *Store) scan(off int64, rebuild bool) (int64, error) {
	end, reason, detail, err := scanLog(s.segs, s.cfg.SegmentSize, off, s.dispatchRecovered(rebuild))
	if err != nil {
		return 0, err
	}
	if reason == stopCorrupt {
		s.stats.truncatedBytes.Store(s.segs[len(s.segs)-1].start + s.cfg.SegmentSize - end)
		s.log.Warn("store: commit log ends in a torn or corrupt record; truncating", "offset", end, "reason", detail)
	}
	s.stats.recoveredBytes.Store(end - off)
	return end, nil
}

// dispatchRecovered returns the scan callback: queue-offset continuity
// check, then consume queue and index.
func (s *Store) dispatchRecovered(rebuild bool) func(v message.View, off int64) (bool, error) {
	topics := map[string]map[int32]*recQueue{}
	return func(v message.View, off int64) (bool, error) {
		qs := topics[string(v.Topic())]
		if qs == nil {
			qs = map[int32]*recQueue{}
			topics[string(v.Topic())] = qs
		}
		qid := v.QueueID()
		rq := qs[qid]
		if rq == nil {
			q, err := s.cq.GetOrCreate(string(v.Topic()), qid)
			if err != nil {
				return false, fmt.Errorf("store: recovery: consume queue %s/%d: %w", v.Topic(), qid, err)
			}
			_, has := q.Last()
			rq = &recQueue{q: q, next: q.MaxOffset(), fresh: !has && q.MaxOffset() == 0}
			qs[qid] = rq
		}
		qoff := v.QueueOffset()
		if !rq.fresh && qoff != rq.next {
			if !rebuild {
				return false, nil // not the record its queue expects: the log ends here
			}
			s.log.Warn("store: rebuild: record out of its queue's sequence (topic deleted and re-created?); not dispatched",
				"topic", rq.q.Topic(), "queue", qid, "queue_offset", qoff, "expected", rq.next, "offset", off)
			return true, nil
		}
		props := string(v.Properties())
		if err := s.dispatch(rq.q, rq.q.Topic(), qid, qoff, off, int32(v.Len()), props, false); err != nil {
			return false, fmt.Errorf("store: recovery: %w", err)
		}
		// Recovery indexes synchronously: the index is complete up to the
		// recovered end before Open returns.
		if err := s.indexKeys(rq.q.Topic(), off, v.StoreTimestamp(), props); err != nil {
			return false, fmt.Errorf("store: recovery: %w", err)
		}
		rq.fresh = false
		rq.next = qoff + 1
		return true, nil
	}
}

// scanLog walks records from off. For each record that passes checkRecord
// it calls fn, which may refuse it (false: the log ends there) or fail.
// It returns the end of the valid log and why the walk stopped. Pure
// function of the mapped bytes: FuzzRecoverTail drives it.
func scanLog(segs []*segment, size, off int64, fn func(v message.View, off int64) (bool, error)) (end int64, reason stopReason, detail string, err error) {
	if len(segs) == 0 {
		return off, stopEnd, "", nil
	}
	first := segs[0].start
	be := binary.BigEndian
	pos := off
	for {
		i := (pos - first) / size
		if i >= int64(len(segs)) {
			return pos, stopEnd, "", nil
		}
		seg := segs[i]
		rel := pos - seg.start
		rem := size - rel
		if rem == 0 {
			return pos, stopEnd, "", nil // only when pos is past the last segment
		}
		if rem < blankMinLen {
			return pos, stopCorrupt, "record ends closer than 8 bytes to the segment end", nil
		}
		d := seg.data[rel:]
		total := int64(int32(be.Uint32(d)))
		magic := int32(be.Uint32(d[4:]))
		if total == 0 && magic == 0 {
			return pos, stopClean, "", nil
		}
		if magic == message.MagicBlank {
			if total != rem {
				return pos, stopCorrupt, fmt.Sprintf("end-of-segment marker of %d bytes, %d left", total, rem), nil
			}
			pos = seg.start + size
			if i+1 == int64(len(segs)) {
				return pos, stopEnd, "", nil
			}
			continue
		}
		if total < message.MinRecordLen || total+blankMinLen > rem {
			return pos, stopCorrupt, fmt.Sprintf("total size %d with %d bytes left in the segment", total, rem), nil
		}
		v, cerr := checkRecord(d[:total], pos)
		if cerr != nil {
			return pos, stopCorrupt, cerr.Error(), nil
		}
		ok, ferr := fn(v, pos)
		if ferr != nil {
			return pos, stopCorrupt, "", ferr
		}
		if !ok {
			return pos, stopCorrupt, fmt.Sprintf("queue offset %d breaks its queue's sequence", v.QueueOffset()), nil
		}
		pos += total
	}
}

// finishRecovery truncates the log at end (zeroing the rest of its
// segment and deleting later segments), makes the recovered range
// durable, writes the checkpoint and sets the writer's state.
func (s *Store) finishRecovery(from, end int64) error {
	size := s.cfg.SegmentSize
	k := len(s.segs) - 1
	for k > 0 && s.segs[k].start > end {
		k--
	}
	seg := s.segs[k]
	if rel := end - seg.start; rel < size {
		if err := seg.zeroFrom(rel, size); err != nil {
			return fmt.Errorf("store: truncate %s at %d: %w", seg.path, rel, err)
		}
	}
	for _, later := range s.segs[k+1:] {
		if err := later.close(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if err := os.Remove(later.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: %w", err)
		}
		s.log.Warn("store: removed commit-log segment past the recovered end", "segment", later.path)
	}
	if len(s.segs) > k+1 {
		clear(s.segs[k+1:])
		s.segs = s.segs[:k+1]
		if err := fsutil.SyncDir(s.clDir); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	// The scanned range may only be in the page cache (a crash of this
	// process, not of the machine): make it durable before the checkpoint
	// names it.
	for _, sg := range s.segs {
		if sg.start+size > from && sg.start <= end {
			if err := sg.f.Datasync(); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		}
	}
	s.written.Store(end)
	s.flushed.Store(end)
	s.visible.Store(end)
	s.indexed.Store(end)
	s.w = writerState{active: seg, wpos: end, queues: map[queueKey]*queueState{}}
	if err := s.cq.Sync(); err != nil {
		return fmt.Errorf("store: sync consume queues: %w", err)
	}
	if err := s.idx.Sync(); err != nil {
		return fmt.Errorf("store: sync index: %w", err)
	}
	if err := writeCheckpoint(s.dir, end); err != nil {
		return fmt.Errorf("store: write checkpoint: %w", err)
	}
	s.lastCP = end
	return nil
}

// deleteDerivedBefore drops consume-queue and index entries pointing below
// off (the commit log's new minimum after retention).
func (s *Store) deleteDerivedBefore(off int64) error {
	var err error
	s.cq.Range(func(q *consumequeue.Queue) bool {
		if _, e := q.DeleteBefore(off); e != nil && err == nil {
			err = fmt.Errorf("store: consume queue %s/%d: %w", q.Topic(), q.QueueID(), e)
		}
		return true
	})
	if _, e := s.idx.DeleteBefore(off); e != nil && err == nil {
		err = fmt.Errorf("store: index: %w", e)
	}
	return err
}
