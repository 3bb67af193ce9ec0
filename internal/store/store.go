package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/txmq/txmq/internal/lifecycle"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store/consumequeue"
	"github.com/txmq/txmq/internal/store/index"
)

// Store is txmq's message store: commit log, consume queues, key index.
// All methods are safe for concurrent use.
type Store struct {
	cfg   Config
	log   *slog.Logger
	dir   string
	clDir string
	lock  *os.File // flock(2)ed lock file

	// segMu guards segs and the segments' mappings. Readers hold it shared
	// while they touch mapped bytes; roll, retention and Close hold it
	// exclusively. See doc.go for the lock order.
	segMu sync.RWMutex
	segs  []*segment // contiguous, oldest first; the last one is active

	// Positions in the commit log, all monotonic:
	// visible <= written, flushed <= written.
	written atomic.Int64 // end of the last batch written to the page cache
	flushed atomic.Int64 // end of what is known durable
	visible atomic.Int64 // end of the last dispatched batch

	// flushMu serialises syncTo and owns syncScratch.
	flushMu     sync.Mutex
	syncScratch []*segment

	sticky atomic.Pointer[WriteError]

	// Append path. sendMu (shared by senders, exclusive by Close) makes
	// "closed" and close(reqCh) atomic with respect to senders.
	sendMu      sync.RWMutex
	closed      bool
	reqCh       chan *appendReq
	syncCh      chan *batch // writer -> committer
	freeBatches chan *batch
	batches     [numBatchBufs]*batch
	w           writerState // owned by the writer goroutine

	cq  *consumequeue.Set
	idx *index.Index

	// Key index, built by the indexer goroutine (indexer.go). indexed is
	// its progress: every record below it has its keys in the index;
	// indexed <= visible.
	indexed atomic.Int64
	idxErr  atomic.Pointer[WriteError] // the indexer's own failure (also sticky)
	idxWake chan struct{}              // cap 1: finish -> indexer, never blocks
	// Bytes read through the commit-log mappings since the last trim
	// round, and the trimmer's early wake-up (trim.go).
	readSinceTrim atomic.Int64
	trimWake      chan struct{} // cap 1: readers -> trimmer, never blocks
	dispatchDone  chan struct{} // closed when the committer (which runs finish) ends
	idxDone       chan struct{} // closed when the indexer ends
	idxWaiters    atomic.Int32  // goroutines in waitIndexed
	idxWaitMu     sync.Mutex    // guards idxWaitCh
	idxWaitCh     chan struct{} // closed and replaced when indexed advances
	// Scratch of the goroutine that indexes (recovery, then the indexer):
	// keys collected under segMu, then added in one index.AddBatch.
	ixKeys  []byte        // topic#key of each collected key, back to back
	ixEnts  []ixEnt       // the collected keys
	ixBatch []index.Entry // AddBatch argument

	// Checkpoint: cpMu serialises checkpoint writes; lastCP is the durable
	// point last written.
	cpMu   sync.Mutex
	lastCP int64

	// cleanMu serialises retention rounds and DeleteTopic's file removal.
	cleanMu    sync.Mutex
	deleteWhen [24]bool

	wg       sync.WaitGroup
	bgCtx    context.Context
	bgCancel context.CancelFunc
	isClosed atomic.Bool
	closeMu  sync.Mutex
	closeErr error
	closeRan bool

	stats counters
}

type counters struct {
	batches, records, bytes, syncs, rolls, writeErrors atomic.Uint64
	segmentsDeleted                                    atomic.Uint64
	recoveredBytes, truncatedBytes, syncNanos          atomic.Int64
}

// Stats is a snapshot of the store's state and counters.
type Stats struct {
	MinOffset, MaxOffset int64 // commit log: first byte kept, end of visible data
	WrittenOffset        int64 // end of data written to the page cache
	IndexedOffset        int64 // the key index holds the keys of every record below this
	FlushedOffset        int64 // end of data known durable
	CheckpointOffset     int64 // consume queues and index durable up to here
	Segments             int
	Batches, Records     uint64 // group-commit batches and records appended since Open
	Bytes                uint64
	Syncs                uint64        // commit-log fdatasync rounds
	SyncTime             time.Duration // time spent in them
	Rolls                uint64
	SegmentsDeleted      uint64
	WriteErrors          uint64
	WriteErr             error // the sticky error, nil when healthy
	RecoveredBytes       int64 // bytes scanned and re-dispatched at Open
	TruncatedBytes       int64 // torn tail dropped at Open (up to the segment end)
}

// Open opens (creating if needed) the store in cfg.Dir, recovers it and
// starts its goroutines.
func Open(cfg Config) (*Store, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.Logger.With("component", "store"), dir: cfg.Dir,
		clDir: filepath.Join(cfg.Dir, commitLogDirName)}
	s.deleteWhen, _ = parseDeleteWhen(cfg.DeleteWhen)
	if err := os.MkdirAll(s.clDir, 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(cfg.Dir, lockFileName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrLocked, cfg.Dir, err)
	}
	s.lock = lf
	if err := s.recover(); err != nil {
		s.closeFiles()
		return nil, err
	}
	s.reqCh = make(chan *appendReq, reqQueueLen)
	s.syncCh = make(chan *batch) // unbuffered: a hand-off happens when the committer is free
	s.freeBatches = make(chan *batch, numBatchBufs)
	for i := range s.batches {
		s.batches[i] = &batch{buf: make([]byte, 0, 64<<10)}
		s.freeBatches <- s.batches[i]
	}
	s.idxWake = make(chan struct{}, 1)
	s.trimWake = make(chan struct{}, 1)
	s.dispatchDone = make(chan struct{})
	s.idxDone = make(chan struct{})
	s.idxWaitCh = make(chan struct{})
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.goFunc(s.writeLoop)
	s.goFunc(s.commitLoop)
	if cfg.FlushMode == AsyncFlush {
		s.goFunc(s.flushLoop)
	}
	s.goFunc(s.indexLoop)
	s.goFunc(s.checkpointLoop)
	s.goFunc(s.cleanLoop)
	s.goFunc(s.trimLoop)
	return s, nil
}

// goFunc is the one place the store starts goroutines; Close waits for all.
func (s *Store) goFunc(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// every calls f every d until the store closes: the body of the store's
// periodic loops (flush, checkpoint, retention, trim).
func (s *Store) every(d time.Duration, f func()) { lifecycle.Every(s.bgCtx, d, f) }

// Close stops accepting appends, completes those already accepted, stops
// the background goroutines, makes everything durable, writes the
// checkpoint (so the next Open has nothing to re-dispatch) and releases the
// directory. It is idempotent; later calls return the first result.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closeRan {
		return s.closeErr
	}
	s.closeRan = true
	s.sendMu.Lock()
	s.closed = true
	close(s.reqCh) // the writer drains what was sent, then the committer ends
	s.sendMu.Unlock()
	s.bgCancel()
	s.wg.Wait()
	s.isClosed.Store(true)
	var errs []error
	if err := s.checkpoint(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, s.closeFiles())
	s.closeErr = errors.Join(errs...)
	return s.closeErr
}

// closeFiles closes consume queues, index and segments, and unlocks.
func (s *Store) closeFiles() error {
	var errs []error
	if s.cq != nil {
		errs = append(errs, s.cq.Close())
	}
	if s.idx != nil {
		errs = append(errs, s.idx.Close())
	}
	s.segMu.Lock()
	for _, seg := range s.segs {
		errs = append(errs, seg.close())
	}
	s.segs = nil
	s.segMu.Unlock()
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // releases the flock
		s.lock = nil
	}
	return errors.Join(errs...)
}

// check validates and normalises m before it is queued.
func (s *Store) check(m *message.Ext) error {
	if err := message.ValidateTopic(m.Topic); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidTopic, err)
	}
	if m.QueueID < 0 {
		return fmt.Errorf("%w: %d", ErrInvalidQueueID, m.QueueID)
	}
	if len(m.Body) > s.cfg.MaxMessageSize {
		return fmt.Errorf("%w: %d bytes, max %d", ErrMessageTooLarge, len(m.Body), s.cfg.MaxMessageSize)
	}
	if message.ValidatePropertiesString(m.Properties) != nil {
		m.Properties = message.NormalizeProperties(m.Properties)
	}
	if len(m.Properties) > message.MaxPropertiesLen {
		return fmt.Errorf("%w: %d bytes, max %d", ErrPropertiesTooLong, len(m.Properties), message.MaxPropertiesLen)
	}
	return nil
}

// AppendAsync is Append without waiting. When it returns nil, done is
// called exactly once with what Append would have returned, on the store's
// committing goroutine, after the record is visible (and under SyncFlush
// durable): done must not block, and m must stay unchanged until done is
// called (the store encodes it there). When it returns an error (m refused,
// store closed, ctx done while waiting for room in the queue), done is not
// called.
func (s *Store) AppendAsync(ctx context.Context, m *message.Ext, done func(AppendResult, error)) error {
	if err := s.check(m); err != nil {
		return err
	}
	r := getReq()
	r.one[0] = m
	r.msgs = r.one[:]
	r.res = r.oneRes[:]
	r.cb = done
	if err := s.send(ctx, r); err != nil {
		putReq(r)
		return err
	}
	return nil
}

// Append stores m and returns where it went. It sets m.QueueOffset,
// m.CommitLogOffset, m.StoreTimestamp (broker clock) and m.BodyCRC and
// normalises m.Properties; the caller fills everything else. It returns
// after the record is visible (and, under SyncFlush, durable). ctx bounds
// only the wait to be queued: once queued the append is carried out.
// m must not be touched by the caller until Append returns.
func (s *Store) Append(ctx context.Context, m *message.Ext) (AppendResult, error) {
	if err := s.check(m); err != nil {
		return AppendResult{}, err
	}
	r := getReq()
	r.one[0] = m
	r.msgs = r.one[:]
	r.res = r.oneRes[:]
	if err := s.send(ctx, r); err != nil {
		putReq(r)
		return AppendResult{}, err
	}
	<-r.done
	res, err := r.res[0], r.err
	putReq(r)
	if err != nil {
		return AppendResult{}, err
	}
	return res, nil
}

// AppendBatch stores ms as one group-commit unit: they are written
// together, and either all are acknowledged or all fail. ms may mix topics
// and queues; messages of one queue get consecutive offsets in ms order.
// A message failing validation fails the whole call with nothing written.
func (s *Store) AppendBatch(ctx context.Context, ms []*message.Ext) ([]AppendResult, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	for i, m := range ms {
		if err := s.check(m); err != nil {
			return nil, fmt.Errorf("message %d: %w", i, err)
		}
	}
	r := getReq()
	r.msgs = ms
	res := make([]AppendResult, len(ms))
	r.res = res
	if err := s.send(ctx, r); err != nil {
		putReq(r)
		return nil, err
	}
	<-r.done
	err := r.err
	r.res = nil
	putReq(r)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// AppendBatchAsync is AppendBatch without waiting: res (len(ms) long, the
// caller's) receives the results, and done is called exactly once, on the
// store's committing goroutine, once they are filled (or with the error),
// under the same rules as AppendAsync's done. When it returns an error,
// done is not called.
func (s *Store) AppendBatchAsync(ctx context.Context, ms []*message.Ext, res []AppendResult, done func(error)) error {
	if len(ms) == 0 || len(res) != len(ms) {
		return fmt.Errorf("store: AppendBatchAsync of %d messages with %d results", len(ms), len(res))
	}
	for i, m := range ms {
		if err := s.check(m); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	r := getReq()
	r.msgs = ms
	r.res = res
	r.bcb = done
	if err := s.send(ctx, r); err != nil {
		r.res = nil
		putReq(r)
		return err
	}
	return nil
}

// barrier runs f on the writer goroutine after every append queued before
// it has completed (written, synced, dispatched).
func (s *Store) barrier(f func()) error {
	r := getReq()
	r.ctl = f
	if err := s.send(context.Background(), r); err != nil {
		putReq(r)
		return err
	}
	<-r.done
	putReq(r)
	return nil
}

// Flush makes everything appended so far durable: commit log, consume
// queues, index and checkpoint. It waits for the indexer to catch up.
func (s *Store) Flush() error {
	if err := s.barrier(func() {}); err != nil {
		return err
	}
	if err := s.waitIndexed(s.visible.Load(), indexDrainTimeout); err != nil {
		return err
	}
	return s.checkpoint()
}

// DeleteTopic removes a topic's consume queues (its records stay in the
// commit log until retention removes them, and are no longer reachable
// by queue). The checkpoint is advanced first so recovery never
// re-dispatches the deleted queues' records.
func (s *Store) DeleteTopic(topic string) error {
	if err := message.ValidateTopic(topic); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidTopic, err)
	}
	var derr error
	err := s.barrier(func() {
		// The checkpoint must reach the visible end, and it never passes
		// the indexer: let the indexer catch up first (it does not need
		// the writer, which is waiting here).
		if derr = s.waitIndexed(s.visible.Load(), indexDrainTimeout); derr != nil {
			return
		}
		if derr = s.checkpoint(); derr != nil {
			return
		}
		for k := range s.w.queues {
			if k.topic == topic {
				delete(s.w.queues, k)
			}
		}
		derr = s.cq.DeleteTopic(topic)
	})
	if err != nil {
		return err
	}
	return derr
}

// Stats returns a snapshot of the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		MaxOffset:       s.visible.Load(),
		WrittenOffset:   s.written.Load(),
		IndexedOffset:   s.indexed.Load(),
		FlushedOffset:   s.flushed.Load(),
		Batches:         s.stats.batches.Load(),
		Records:         s.stats.records.Load(),
		Bytes:           s.stats.bytes.Load(),
		Syncs:           s.stats.syncs.Load(),
		SyncTime:        time.Duration(s.stats.syncNanos.Load()),
		Rolls:           s.stats.rolls.Load(),
		SegmentsDeleted: s.stats.segmentsDeleted.Load(),
		WriteErrors:     s.stats.writeErrors.Load(),
		RecoveredBytes:  s.stats.recoveredBytes.Load(),
		TruncatedBytes:  s.stats.truncatedBytes.Load(),
	}
	if we := s.sticky.Load(); we != nil {
		st.WriteErr = we
	}
	s.cpMu.Lock()
	st.CheckpointOffset = s.lastCP
	s.cpMu.Unlock()
	s.segMu.RLock()
	st.MinOffset = s.minOffsetLocked()
	st.Segments = len(s.segs)
	s.segMu.RUnlock()
	return st
}
