package store

import (
	"fmt"
	"os"
	"time"

	"github.com/txmq/txmq/internal/fsutil"
)

// cleanLoop runs a retention round every CleanInterval.
func (s *Store) cleanLoop() {
	s.every(s.cfg.CleanInterval, func() {
		if _, err := s.clean(s.cfg.Now()); err != nil {
			s.log.Warn("store: retention round failed", "err", err)
		}
	})
}

// clean runs one retention round as of now (RocketMQ CleanCommitLogService):
//
//   - it acts when now's hour is one of DeleteWhen, or at once when disk use
//     of the store's filesystem exceeds DiskMaxUsedSpaceRatio;
//   - it removes segments, oldest first, whose last record is older than
//     FileReservedTime (the first record of the next segment stands in for
//     the last one; the file's mtime when there is none), at most
//     deleteFilesPerRound per round;
//   - above forceCleanRatio it removes the oldest segments even unexpired;
//   - never the active segment, nor one not yet fully durable;
//   - then consume queues and index drop what pointed into removed segments.
//
// It returns the number of segments removed.
func (s *Store) clean(now time.Time) (int, error) {
	s.cleanMu.Lock()
	defer s.cleanMu.Unlock()
	if s.isClosed.Load() {
		return 0, ErrClosed
	}
	usage, uerr := s.cfg.DiskUsage(s.dir)
	if uerr != nil {
		s.log.Warn("store: disk usage unknown", "err", uerr)
	}
	timeUp := s.deleteWhen[now.Hour()]
	spaceFull := uerr == nil && usage > float64(s.cfg.DiskMaxUsedSpaceRatio)
	force := uerr == nil && usage > forceCleanRatio
	if !timeUp && !spaceFull {
		return 0, nil
	}
	deleted := 0
	for deleted < deleteFilesPerRound {
		seg := s.expiredHead(now, force)
		if seg == nil {
			break
		}
		s.segMu.Lock()
		if len(s.segs) < 2 || s.segs[0] != seg {
			s.segMu.Unlock()
			break
		}
		s.segs[0] = nil
		s.segs = s.segs[1:]
		cerr := seg.close()
		s.segMu.Unlock()
		if err := os.Remove(seg.path); err != nil || cerr != nil {
			return deleted, fmt.Errorf("store: remove segment %s: %v %v", seg.path, err, cerr)
		}
		deleted++
		s.stats.segmentsDeleted.Add(1)
		s.log.Info("store: removed expired commit-log segment", "segment", seg.path,
			"disk_used_percent", usage, "forced", force && !timeUp)
	}
	if deleted == 0 {
		return 0, nil
	}
	if err := fsutil.SyncDir(s.clDir); err != nil {
		return deleted, fmt.Errorf("store: %w", err)
	}
	s.segMu.RLock()
	newMin := s.minOffsetLocked()
	s.segMu.RUnlock()
	return deleted, s.deleteDerivedBefore(newMin)
}

// expiredHead returns the oldest segment if retention may remove it now.
func (s *Store) expiredHead(now time.Time, force bool) *segment {
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	if len(s.segs) < 2 {
		return nil // never the active segment
	}
	seg := s.segs[0]
	if seg.start+s.cfg.SegmentSize > s.flushed.Load() {
		return nil
	}
	if force {
		return seg
	}
	var last time.Time
	if ts, err := s.storeTimeLocked(s.segs[1].start, 0); err == nil {
		last = time.UnixMilli(ts)
	} else if fi, err := os.Stat(seg.path); err == nil {
		last = fi.ModTime()
	} else {
		return nil
	}
	if now.Sub(last) < s.cfg.FileReservedTime {
		return nil
	}
	return seg
}
