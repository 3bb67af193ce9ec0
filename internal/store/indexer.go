package store

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/txmq/txmq/internal/message"
)

// The key index is built off the append path. Appends complete once their
// records are in the consume queues (dispatch); the indexer goroutine
// follows the commit log from its own progress offset (Store.indexed) up to
// the visible end, reading each record's KEYS and UNIQ_KEY from the log and
// adding them to the index. finish wakes it with a non-blocking send on a
// channel of capacity 1, so a slow index write (a page fault on its mapping
// can take milliseconds) delays only the indexer, never an append.
//
// Invariants:
//   - indexed <= visible; every record below indexed has its keys in the
//     index (in the page cache; durable after the next index Sync).
//   - The checkpoint never passes indexed (checkpoint.go), so recovery
//     re-indexes whatever the index may have lacked at a crash.
//   - Readers of the index (QueryByKey) first wait until indexed reaches
//     the visible end they saw at the call (waitIndexed): an append that
//     completed before the query started is found.
//   - A failed index write is sticky like any dispatch error (setSticky:
//     logged, later appends fail); the indexer stops and waiters get the
//     error. Reopening the store rebuilds the index from the checkpoint.

const (
	// indexWaitTimeout bounds how long a query waits for the indexer to
	// reach the records visible when it started.
	indexWaitTimeout = 5 * time.Second
	// indexDrainTimeout bounds the wait of Flush and DeleteTopic, which
	// need the index complete before they advance the checkpoint.
	indexDrainTimeout = 30 * time.Second
	// indexNotifyEvery: while catching up a long stretch, waiters are woken
	// every that many records, not only at the end.
	indexNotifyEvery = 256
)

// indexLoop is the indexer goroutine. It ends once the goroutine that
// finishes batches has ended (dispatchDone), after indexing everything
// visible, so that Close's checkpoint covers the whole log.
func (s *Store) indexLoop() {
	defer close(s.idxDone)
	defer s.notifyIndexed()
	for {
		select {
		case <-s.idxWake:
			s.indexTo(s.visible.Load())
		case <-s.dispatchDone:
			s.indexTo(s.visible.Load())
			return
		}
	}
}

// indexTo indexes the records from indexed up to limit (a visible offset).
func (s *Store) indexTo(limit int64) {
	if s.idxErr.Load() != nil {
		return
	}
	if s.cfg.beforeIndex != nil {
		s.cfg.beforeIndex()
	}
	off := s.indexed.Load()
	for n := 1; off < limit; n++ {
		next, err := s.indexRecord(off, limit)
		if err != nil {
			s.idxErr.Store(s.setSticky("index", s.idxDir, err))
			break
		}
		off = next
		s.indexed.Store(off)
		if n%indexNotifyEvery == 0 {
			s.notifyIndexed()
		}
	}
	s.notifyIndexed()
}

// indexRecord adds the keys of the record at off (< limit) and returns the
// offset of the next one. A segment-end marker is skipped; records that
// retention removed before they were indexed are skipped too (their index
// entries would be dropped with them). The record's topic and properties
// are copied out under segMu (a leaf lock: no index call is made holding
// it) into buffers only this goroutine uses.
func (s *Store) indexRecord(off, limit int64) (int64, error) {
	be := binary.BigEndian
	s.segMu.RLock()
	if m := s.minOffsetLocked(); off < m {
		s.segMu.RUnlock()
		return m, nil
	}
	hdr, err := s.spanLocked(off, blankMinLen)
	if err == nil && int32(be.Uint32(hdr[message.PosMagic:])) == message.MagicBlank {
		n := int64(int32(be.Uint32(hdr)))
		s.segMu.RUnlock()
		if n < blankMinLen || (off+n)%s.cfg.SegmentSize != 0 {
			return off, fmt.Errorf("bad end-of-segment marker at %d", off)
		}
		return off + n, nil
	}
	var rec []byte
	if err == nil {
		rec, err = s.recordLocked(off, 0, limit)
	}
	var v message.View
	if err == nil {
		v, err = message.Parse(rec)
	}
	if err != nil {
		s.segMu.RUnlock()
		return off, fmt.Errorf("read record at %d: %w", off, err)
	}
	s.ixTopic = append(s.ixTopic[:0], v.Topic()...)
	s.ixProps = append(s.ixProps[:0], v.Properties()...)
	ts, size := v.StoreTimestamp(), int64(v.Len())
	s.segMu.RUnlock()
	topic := unsafe.String(unsafe.SliceData(s.ixTopic), len(s.ixTopic))
	props := unsafe.String(unsafe.SliceData(s.ixProps), len(s.ixProps))
	if err := s.indexKeys(topic, off, ts, props); err != nil {
		return off, err
	}
	return off + size, nil
}

// notifyIndexed wakes the goroutines waiting in waitIndexed, if any. Called
// after indexed (or idxErr) changed.
func (s *Store) notifyIndexed() {
	if s.idxWaiters.Load() == 0 {
		return
	}
	s.idxWaitMu.Lock()
	close(s.idxWaitCh)
	s.idxWaitCh = make(chan struct{})
	s.idxWaitMu.Unlock()
}

// waitIndexed waits until every record below target is in the index, at
// most timeout. It fails with the indexer's sticky error, ErrClosed when
// the indexer stopped short of target, or ErrIndexBehind on timeout.
func (s *Store) waitIndexed(target int64, timeout time.Duration) error {
	if s.indexed.Load() >= target {
		return nil
	}
	s.idxWaiters.Add(1)
	defer s.idxWaiters.Add(-1)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		// Take the channel before checking: notifyIndexed closes it after
		// every change made after this point.
		s.idxWaitMu.Lock()
		ch := s.idxWaitCh
		s.idxWaitMu.Unlock()
		got := s.indexed.Load()
		if got >= target {
			return nil
		}
		if werr := s.idxErr.Load(); werr != nil {
			return werr
		}
		select {
		case <-s.idxDone:
			if s.indexed.Load() >= target {
				return nil
			}
			return fmt.Errorf("%w: the key index stopped at %d, before %d", ErrClosed, s.indexed.Load(), target)
		default:
		}
		select {
		case <-ch:
		case <-s.idxDone:
		case <-timer.C:
			return fmt.Errorf("%w: indexed up to %d, waited %v for %d", ErrIndexBehind, s.indexed.Load(), timeout, target)
		}
	}
}

// indexKeys adds the record's KEYS (space separated) and UNIQ_KEY to the
// index under topic#key. Only one goroutine at a time calls it (Open
// during recovery, then the indexer): it owns keyBuf.
func (s *Store) indexKeys(topic string, off, ts int64, props string) error {
	keys, hasKeys := message.Property(props, message.PropKeys)
	uniq, hasUniq := message.Property(props, message.PropUniqClientMessageID)
	if !hasKeys && !hasUniq {
		return nil
	}
	uniqDone := uniq == ""
	for rest := keys; rest != ""; {
		var k string
		k, rest, _ = strings.Cut(rest, " ")
		if k == "" {
			continue
		}
		if k == uniq {
			uniqDone = true
		}
		if err := s.addKey(topic, k, off, ts); err != nil {
			return err
		}
	}
	if !uniqDone {
		return s.addKey(topic, uniq, off, ts)
	}
	return nil
}

// addKey adds topic#key without allocating: index.Add hashes the key and
// does not keep it, so a view of the reused keyBuf is enough.
func (s *Store) addKey(topic, key string, off, ts int64) error {
	s.keyBuf = append(append(append(s.keyBuf[:0], topic...), indexKeySep...), key...)
	if err := s.idx.Add(unsafe.String(unsafe.SliceData(s.keyBuf), len(s.keyBuf)), off, ts); err != nil {
		return fmt.Errorf("index add: %w", err)
	}
	return nil
}
