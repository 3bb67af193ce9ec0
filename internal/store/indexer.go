package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store/index"
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
	// indexRoundRecords and indexRoundBytes bound one round of the
	// indexer: the records read under one hold of segMu (shared) and the
	// key bytes collected, whose keys then go to the index in one batch.
	indexRoundRecords = 256
	indexRoundBytes   = 64 << 10
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

// indexTo indexes the records from indexed up to limit (a visible offset),
// in rounds: collectKeys reads up to indexRoundRecords records under one
// hold of segMu, then their keys go to the index in one AddBatch.
func (s *Store) indexTo(limit int64) {
	if s.idxErr.Load() != nil {
		return
	}
	if s.cfg.beforeIndex != nil {
		s.cfg.beforeIndex()
	}
	off := s.indexed.Load()
	unnotified := 0
	for off < limit {
		next, n, err := s.collectKeys(off, limit)
		// Add what was collected even when a record failed: indexed then
		// stops exactly at that record.
		if aerr := s.addCollected(); aerr != nil {
			err = aerr
		} else if next > off {
			s.noteRead(next - off)
			off = next
			s.indexed.Store(off)
			if unnotified += n; unnotified >= indexNotifyEvery {
				s.notifyIndexed()
				unnotified = 0
			}
		}
		if err != nil {
			s.idxErr.Store(s.setSticky("index", filepath.Join(s.dir, indexDirName), err))
			break
		}
	}
	s.notifyIndexed()
}

// collectKeys reads the records from off (< limit) on, at most
// indexRoundRecords of them, and collects their keys (ixKeys, ixEnts). It
// returns the offset after the last record it took and how many it took.
// A segment-end marker is skipped; records that retention removed before
// they were indexed are skipped too (their index entries would be dropped
// with them). It reads only what indexing needs (store timestamp, topic,
// KEYS and UNIQ_KEY) and copies only the keys out: segMu (a leaf lock) is
// released before any index call.
func (s *Store) collectKeys(off, limit int64) (int64, int, error) {
	s.ixKeys, s.ixEnts = s.ixKeys[:0], s.ixEnts[:0]
	s.segMu.RLock()
	defer s.segMu.RUnlock()
	n := 0
	for ; off < limit && n < indexRoundRecords && len(s.ixKeys) < indexRoundBytes; n++ {
		if m := s.minOffsetLocked(); off < m {
			off = m
			continue
		}
		if next, blank, err := s.skipBlankLocked(off); err != nil {
			return off, n, fmt.Errorf("read record at %d: %w", off, err)
		} else if blank {
			off = next
			continue
		}
		rec, err := s.recordLocked(off, 0, limit)
		if err != nil {
			return off, n, fmt.Errorf("read record at %d: %w", off, err)
		}
		v, err := message.Parse(rec)
		if err != nil {
			return off, n, fmt.Errorf("read record at %d: %w", off, err)
		}
		topic, props := v.Topic(), v.Properties()
		s.collectRecordKeys(unsafe.String(unsafe.SliceData(topic), len(topic)),
			unsafe.String(unsafe.SliceData(props), len(props)), off, v.StoreTimestamp())
		off += int64(v.Len())
	}
	return off, n, nil
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

// indexKeys adds the record's keys to the index (recovery: one record at
// a time). Only one goroutine at a time collects keys (Open during
// recovery, then the indexer): it owns ixKeys, ixEnts and ixBatch.
func (s *Store) indexKeys(topic string, off, ts int64, props string) error {
	s.ixKeys, s.ixEnts = s.ixKeys[:0], s.ixEnts[:0]
	s.collectRecordKeys(topic, props, off, ts)
	return s.addCollected()
}

// ixEnt is one collected key: topic#key in ixKeys[lo:hi].
type ixEnt struct {
	off, ts int64
	lo, hi  int
}

// collectRecordKeys collects the record's KEYS (space separated) and
// UNIQ_KEY (unless it is among them) under topic#key. props is read in one
// pass; the first well-formed entry of each name counts, as
// message.Property. Records of Config.UnindexedTopic have none collected.
func (s *Store) collectRecordKeys(topic, props string, off, ts int64) {
	if topic == s.cfg.UnindexedTopic && topic != "" {
		return
	}
	keys, uniq, hasKeys, hasUniq := keyProps(props)
	if !hasKeys && !hasUniq {
		return
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
		s.collectKey(topic, k, off, ts)
	}
	if !uniqDone {
		s.collectKey(topic, uniq, off, ts)
	}
}

func (s *Store) collectKey(topic, key string, off, ts int64) {
	lo := len(s.ixKeys)
	s.ixKeys = append(append(append(s.ixKeys, topic...), indexKeySep...), key...)
	s.ixEnts = append(s.ixEnts, ixEnt{off: off, ts: ts, lo: lo, hi: len(s.ixKeys)})
}

// keyProps returns the values of KEYS and UNIQ_KEY in the encoded
// properties, in one pass. Entries that are not exactly key\x01value are
// skipped (as message.Property does).
func keyProps(props string) (keys, uniq string, hasKeys, hasUniq bool) {
	message.RangeProperties(props, func(k, v string) bool {
		switch {
		case k == message.PropKeys && !hasKeys:
			keys, hasKeys = v, true
		case k == message.PropUniqClientMessageID && !hasUniq:
			uniq, hasUniq = v, true
		}
		return !(hasKeys && hasUniq)
	})
	return keys, uniq, hasKeys, hasUniq
}

// addCollected adds the collected keys to the index in one AddBatch.
// index.AddBatch hashes the keys and keeps none, so views of ixKeys are
// enough (no allocation).
func (s *Store) addCollected() error {
	if len(s.ixEnts) == 0 {
		return nil
	}
	es := s.ixBatch[:0]
	for _, e := range s.ixEnts {
		es = append(es, index.Entry{Key: unsafe.String(&s.ixKeys[e.lo], e.hi-e.lo), CommitLogOffset: e.off, StoreTimestamp: e.ts})
	}
	_, err := s.idx.AddBatch(es)
	clear(es)
	s.ixBatch = es[:0]
	s.ixKeys, s.ixEnts = s.ixKeys[:0], s.ixEnts[:0]
	if err != nil {
		return fmt.Errorf("index add: %w", err)
	}
	return nil
}
