package store

import (
	"os"
	"time"

	"github.com/txmq/txmq/internal/lifecycle"
	"github.com/txmq/txmq/internal/store/mmapfile"
)

// Resident-set trimming. Reads go through shared file mappings (commit-log
// segments read-only, consume queues and index read-write), and every page
// a read or write touches stays mapped into the process, so its resident
// set (RssFile) would grow with the data read: about the whole log under a
// steady load with caught-up consumers. Every trimEvery the trimmer
// releases the mapped pages that are behind the writer with
// madvise(MADV_DONTNEED). On a MAP_SHARED file mapping that only drops the
// page-table entries: the pages stay in the page cache (dirty ones stay
// dirty and are written back as usual), and the next read maps them again
// with a minor fault. Nothing privately or anonymously mapped is trimmed.
//
// Commit log: each segment tracks the lowest position read since the last
// round (segment.touch, from spanLocked) and where the last round ended, so
// a round madvises only [min(lowest read, last end), new end), where the
// new end is trimKeep bytes behind min(visible, indexed): the indexer and
// caught-up consumers read the newest records, which stay mapped. Consume
// queues and index trim themselves (Set.Trim, Index.Trim), never the page
// their writer is about to write.
//
// A round also starts early, once readers have read trimReadBurst bytes
// through the commit-log mappings since the last one: a consumer reading a
// backlog at hundreds of MB/s would otherwise keep a second's worth of it
// mapped (639 MB of RssFile for a 1.25M-message backlog read at 550 MB/s).
// Pulls and the indexer count what they read, once per call, not per
// record.
const (
	trimEvery = time.Second
	// trimReadBurst is how much reading starts a round before trimEvery.
	trimReadBurst = 64 << 20
	// trimKeep is how much of the newest log stays mapped.
	trimKeep = 1 << 20
	// trimAlign: a read fault maps neighbouring pages too (fault-around,
	// 64 KiB by default); the lowest read is rounded down to this.
	trimAlign = 2 << 20
)

// trimLoop runs a trim round every trimEvery, and early when readers ask
// for one (noteRead).
func (s *Store) trimLoop() {
	d := trimEvery
	switch {
	case s.cfg.trimInterval < 0:
		return // disabled (tests measuring the difference)
	case s.cfg.trimInterval > 0:
		d = s.cfg.trimInterval
	}
	lifecycle.EveryOrWake(s.bgCtx, d, s.trimWake, s.trimMappings)
}

// noteRead counts n bytes read through the commit-log mappings and wakes
// the trimmer once a burst's worth has been read since its last round.
func (s *Store) noteRead(n int64) {
	if s.readSinceTrim.Add(n) >= s.cfg.trimReadBurst {
		select {
		case s.trimWake <- struct{}{}:
		default:
		}
	}
}

// trimMappings releases resident pages of the commit log, consume queues
// and index. Failures are logged; they cost memory, not data.
func (s *Store) trimMappings() {
	s.readSinceTrim.Store(0) // reads from here on count towards the next round
	s.trimCommitLog()
	if err := s.cq.Trim(); err != nil {
		s.log.Warn("store: trim consume queues", "err", err)
	}
	if err := s.idx.Trim(); err != nil {
		s.log.Warn("store: trim index", "err", err)
	}
}

// trimCommitLog releases the segments' mapped pages behind the readers at
// the head of the log. It holds segMu shared (the mappings cannot go away)
// and makes no other lock or store call.
func (s *Store) trimCommitLog() {
	low := min(s.visible.Load(), s.indexed.Load()) - trimKeep
	pg := int64(os.Getpagesize())
	size := s.cfg.SegmentSize
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	for _, seg := range s.segs {
		if seg.data == nil {
			continue
		}
		end := min(max(low-seg.start, 0), size) / pg * pg
		from := seg.trimmed.Load()
		// Reset first: a read after this is noted for the next round.
		if lt := seg.lowTouch.Swap(size); lt < from {
			from = lt / trimAlign * trimAlign
		}
		if from >= end {
			continue
		}
		if err := mmapfile.DontNeed(seg.data[from:end]); err != nil {
			seg.touch(from) // retry next round
			s.log.Warn("store: trim commit log", "segment", seg.path, "err", err)
			continue
		}
		seg.trimmed.Store(end)
	}
}
