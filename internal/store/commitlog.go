package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/txmq/txmq/internal/message"
)

// slowSync is how long an fsync, or a batch's write, of the commit log
// may take before it is logged.
const slowSync = 500 * time.Millisecond

// syncTo makes the commit log durable up to target: one fdatasync per
// segment overlapping [flushed, target). Concurrent callers serialise on
// flushMu; a failure is sticky.
func (s *Store) syncTo(target int64) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	from := s.flushed.Load()
	if target <= from {
		return nil
	}
	if werr := s.sticky.Load(); werr != nil {
		return werr
	}
	size := s.cfg.SegmentSize
	s.segMu.RLock()
	segs := s.syncScratch[:0]
	for _, seg := range s.segs {
		if seg.start < target && seg.start+size > from {
			segs = append(segs, seg)
		}
	}
	s.segMu.RUnlock()
	s.syncScratch = segs
	t0 := time.Now()
	defer func() {
		d := time.Since(t0)
		s.stats.syncNanos.Add(int64(d))
		if d >= slowSync {
			// Every append waiting on it waits as long: say so, as the
			// Java broker does ("flush data to disk costs").
			s.log.Warn("store: commit log fsync slow", "took", d.Round(time.Millisecond),
				"bytes", target-from, "segments", len(segs))
		}
	}()
	for _, seg := range segs {
		if err := seg.f.Datasync(); err != nil {
			clear(s.syncScratch)
			return s.setSticky("fsync", seg.path, err)
		}
	}
	clear(s.syncScratch)
	s.flushed.Store(target)
	s.stats.syncs.Add(1)
	return nil
}

// flushLoop is the AsyncFlush flusher: it fsyncs what was written every
// FlushInterval.
func (s *Store) flushLoop() {
	s.every(s.cfg.FlushInterval, func() {
		_ = s.syncTo(s.written.Load()) // a failure is sticky and logged
	})
}

// spanLocked returns the mapped bytes [off, off+n) of one segment.
// segMu must be held (shared is enough).
func (s *Store) spanLocked(off int64, n int64) ([]byte, error) {
	if len(s.segs) == 0 {
		return nil, ErrClosed
	}
	first := s.segs[0].start
	if off < first {
		return nil, fmt.Errorf("%w: offset %d, commit log starts at %d", ErrOffsetMoved, off, first)
	}
	i := (off - first) / s.cfg.SegmentSize
	if i >= int64(len(s.segs)) || n < 0 {
		return nil, fmt.Errorf("%w: offset %d", ErrNotFound, off)
	}
	seg := s.segs[i]
	rel := off - seg.start
	if rel+n > s.cfg.SegmentSize {
		return nil, fmt.Errorf("%w: %d bytes at offset %d cross a segment end", ErrNotFound, n, off)
	}
	seg.touch(rel)
	return seg.data[rel : rel+n], nil
}

// recordLocked returns the mapped bytes of the record at off after
// checking the magic, TOTALSIZE (== want when want > 0), that it ends at or
// before limit and that its PHYSICALOFFSET is off. segMu must be held.
func (s *Store) recordLocked(off int64, want int32, limit int64) ([]byte, error) {
	if off < 0 || off+message.MinRecordLen > limit {
		if off >= 0 && off < s.minOffsetLocked() {
			return nil, fmt.Errorf("%w: offset %d", ErrOffsetMoved, off)
		}
		return nil, fmt.Errorf("%w: offset %d (log ends at %d)", ErrNotFound, off, limit)
	}
	hdr, err := s.spanLocked(off, message.PosPhysicalOffset+8)
	if err != nil {
		return nil, err
	}
	be := binary.BigEndian
	total := int32(be.Uint32(hdr))
	if int32(be.Uint32(hdr[message.PosMagic:])) != message.MagicV1 || total < message.MinRecordLen ||
		(want > 0 && total != want) || off+int64(total) > limit ||
		int64(be.Uint64(hdr[message.PosPhysicalOffset:])) != off {
		return nil, fmt.Errorf("%w: no record starts at offset %d", ErrNotFound, off)
	}
	return s.spanLocked(off, int64(total))
}

// skipBlankLocked reports whether the segment-end marker starts at off
// (a visible offset) and, if so, returns the offset after it: the next
// segment's start. A marker that does not end its segment is an error.
// segMu must be held.
func (s *Store) skipBlankLocked(off int64) (next int64, blank bool, err error) {
	hdr, err := s.spanLocked(off, blankMinLen)
	if err != nil {
		return off, false, err
	}
	be := binary.BigEndian
	if int32(be.Uint32(hdr[message.PosMagic:])) != message.MagicBlank {
		return off, false, nil
	}
	size := int64(int32(be.Uint32(hdr)))
	if size < blankMinLen || (off+size)%s.cfg.SegmentSize != 0 {
		return off, false, fmt.Errorf("%w: bad end-of-segment marker at %d", ErrCorrupt, off)
	}
	return off + size, true, nil
}

func (s *Store) minOffsetLocked() int64 {
	if len(s.segs) == 0 {
		return 0
	}
	return s.segs[0].start
}

// ReadAt returns a copy of the record at commitLogOffset, as stored (a pull
// body with one record). The offset is not trusted: the record there must
// pass every recovery check (magic, lengths, self offset, body CRC,
// properties). ErrOffsetMoved: removed by retention; ErrNotFound: no
// record starts there.
func (s *Store) ReadAt(commitLogOffset int64) ([]byte, error) {
	if s.isClosed.Load() {
		return nil, ErrClosed
	}
	limit := s.visible.Load()
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	rec, err := s.recordLocked(commitLogOffset, 0, limit)
	if err != nil {
		return nil, err
	}
	if _, err := checkRecord(rec, commitLogOffset); err != nil {
		return nil, fmt.Errorf("%w: offset %d: %v", ErrNotFound, commitLogOffset, err)
	}
	return append([]byte(nil), rec...), nil
}

// storeTimeLocked reads STORETIMESTAMP of the record at off without
// copying it. segMu must be held.
func (s *Store) storeTimeLocked(off int64, size int32) (int64, error) {
	rec, err := s.recordLocked(off, size, s.written.Load())
	if err != nil {
		return 0, err
	}
	p := message.StoreTimestampPos(rec)
	return int64(binary.BigEndian.Uint64(rec[p:])), nil
}

// checkRecord runs every integrity check of recovery on the record at the
// start of b, which must sit at commit-log offset off.
func checkRecord(b []byte, off int64) (message.View, error) {
	v, err := message.Parse(b)
	if err != nil {
		return v, err
	}
	if int32(binary.BigEndian.Uint32(b[message.PosMagic:])) != message.MagicV1 {
		return v, fmt.Errorf("%w: magic V2 is never written", message.ErrBadMagic)
	}
	if got := v.CommitLogOffset(); got != off {
		return v, fmt.Errorf("record at %d says it is at %d", off, got)
	}
	if v.QueueID() < 0 || v.QueueOffset() < 0 {
		return v, fmt.Errorf("negative queue id or offset")
	}
	if err := v.VerifyCRC(); err != nil {
		return v, err
	}
	if err := message.ValidateProperties(v.Properties()); err != nil {
		return v, err
	}
	if err := validTopicBytes(v.Topic()); err != nil {
		return v, err
	}
	return v, nil
}

// validTopicBytes is message.ValidateTopic without the string conversion.
func validTopicBytes(t []byte) error {
	for _, c := range t {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '%' || c == '|' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: byte %#x", message.ErrInvalidTopic, c)
		}
	}
	return nil
}

// Scan calls fn for every record from commit-log offset from (clamped to
// the log's minimum) up to the visible end at the time of the call, in
// order, skipping segment-end fillers. The view passed to fn aliases a
// buffer reused for the next record. It returns the offset after the last
// record visited; an error from fn stops the scan and is returned as is.
// Scan holds no lock while fn runs.
func (s *Store) Scan(from int64, fn func(off int64, v message.View) error) (int64, error) {
	if s.isClosed.Load() {
		return from, ErrClosed
	}
	limit := s.visible.Load()
	s.segMu.RLock()
	if m := s.minOffsetLocked(); from < m {
		from = m
	}
	s.segMu.RUnlock()
	var buf []byte
	off := from
	for off < limit {
		s.segMu.RLock()
		next, blank, err := s.skipBlankLocked(off)
		if err == nil && blank {
			off = next
			s.segMu.RUnlock()
			continue
		}
		var rec []byte
		if err == nil {
			rec, err = s.recordLocked(off, 0, limit)
		}
		if err == nil {
			buf = append(buf[:0], rec...)
		}
		s.segMu.RUnlock()
		if err != nil {
			return off, fmt.Errorf("store: scan at %d: %w", off, err)
		}
		v, err := message.Parse(buf)
		if err != nil {
			return off, fmt.Errorf("store: scan at %d: %w", off, err)
		}
		if err := fn(off, v); err != nil {
			return off, err
		}
		off += int64(v.Len())
	}
	return off, nil
}
