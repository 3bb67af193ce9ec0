package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txmq/txmq/internal/lifecycle"
	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/store"
)

// Log is what the service needs of the store. *store.Store satisfies it.
type Log interface {
	Append(ctx context.Context, m *message.Ext) (store.AppendResult, error)
	AppendBatch(ctx context.Context, ms []*message.Ext) ([]store.AppendResult, error)
	// AppendAsync and AppendBatchAsync complete on the store's committing
	// goroutine (PrepareAsync, EndAsync).
	AppendAsync(ctx context.Context, m *message.Ext, done func(store.AppendResult, error)) error
	AppendBatchAsync(ctx context.Context, ms []*message.Ext, res []store.AppendResult, done func(error)) error
	// ReadAt returns a copy of the record at a commit-log offset.
	ReadAt(commitLogOffset int64) ([]byte, error)
	// Flush makes everything appended so far durable.
	Flush() error
	// Scan calls fn for every record from commit-log offset from to the
	// current end, in order, skipping segment-end fillers, and returns
	// the offset after the last record.
	Scan(from int64, fn func(off int64, v message.View) error) (int64, error)
	// Stats gives the commit log's minimum and maximum offsets.
	Stats() store.Stats
	// GetMessages, MaxOffset and QueryByKey read TRANS_CHECK_MAX_TIME_TOPIC
	// (Discarded, Resume).
	GetMessages(topic string, queueID int32, offset int64, maxCount, maxBytes int, filter func(tagsCode int64) bool) (*store.GetResult, error)
	MaxOffset(topic string, queueID int32) int64
	QueryByKey(topic, key string, maxNum int, begin, end int64) ([][]byte, error)
}

// Producers picks the connection of a live producer of a group, rotating
// among them (the broker's clients manager); nil when none is online.
type Producers interface {
	PickProducer(group string) *remoting.Conn
}

// Config configures a Service.
type Config struct {
	// Enable is transactionEnable: when false Prepare refuses half messages
	// (pending ones are still checked and can still be ended).
	Enable bool
	// Timeout is transactionTimeOut: the first check is due this long after
	// the half was stored (broker clock). Default 6 s.
	Timeout time.Duration
	// CheckInterval is transactionCheckInterval: the time between two checks
	// of one half. Default 30 s.
	CheckInterval time.Duration
	// CheckMax is transactionCheckMax: checks sent before a half is
	// discarded. Default 15.
	CheckMax int
	// CheckWindow is transactionCheckWindow: the checks of one producer
	// group that may be outstanding (sent within the last CheckInterval
	// and not answered). Due transactions beyond it wait, without spending
	// a check, until answers (or the interval) free room. Default 1024;
	// negative: no window.
	CheckWindow int
	// FileReservedTime is the commit log's retention. A half that would
	// outlive it (less a margin of an eighth) is discarded first. 0 disables.
	FileReservedTime time.Duration
	// BrokerName goes in the bname field of CHECK_TRANSACTION_STATE.
	BrokerName string
	// StoreHost is this broker's address, for offset message ids and the
	// records the service writes.
	StoreHost netip.AddrPort
	// Logger, default discard.
	Logger *slog.Logger
	// Now is the broker clock; it must be the store's clock too. Default time.Now.
	Now func() time.Time
	// SnapshotDir holds the snapshot file (txn.snapshot); empty: no
	// snapshot, every start replays the whole commit log.
	SnapshotDir string
	// SnapshotInterval is how often a snapshot is taken. Default 30 s.
	SnapshotInterval time.Duration

	// noBackground (tests) starts no goroutines: tests drive runDue and
	// takeSnapshot themselves.
	noBackground bool
}

// Defaults (Apache RocketMQ's current ones).
const (
	DefaultTimeout          = 6 * time.Second
	DefaultCheckInterval    = 30 * time.Second
	DefaultCheckMax         = 15
	DefaultCheckWindow      = 1024
	DefaultSnapshotInterval = 30 * time.Second

	snapshotFileName = "txn.snapshot"
	// checkBatch bounds the due entries one scheduler round takes.
	checkBatch = 256
	// windowMoves bounds the due entries one round moves into the check
	// windows (the lock is held meanwhile).
	windowMoves = 4096
	// recentSize bounds the recently-resolved table; recentTTL ages it.
	recentSize = 1 << 16
	recentTTL  = time.Hour
	// retryDelay re-arms an entry whose check could not be handed to the
	// connection (not counted as a check).
	retryDelay = time.Second
)

// entry flags.
const (
	fEnding   uint8 = 1 << iota // an END or a discard has claimed it and is appending
	fChecking                   // the scheduler took it off the heap to check it
	fParked                     // no producer of its group online: waiting in parked[group]
	fAwaiting                   // a check was sent within the interval and not answered: counted in awaiting[group]
	fWaiting                    // its group's check window was full when it fell due: waiting in windowQ[group]
)

// entry is one pending (PREPARED) transaction: 48 bytes, no pointers but
// the ones the maps and heaps hold.
type entry struct {
	off    int64  // half commit-log offset (the key)
	stored int64  // half store time, ms, broker clock
	next   int64  // next check, ms (meaningful in the check heap)
	uniq   uint64 // hash of UNIQ_KEY
	hidx   int32  // index in the check heap, -1 when not in it
	aidx   int32  // index in the age heap (always in it while pending)
	group  uint32 // interned producer group
	checks uint16 // checks sent
	flags  uint8
}

// Service is the transaction service: the pending index, END_TRANSACTION,
// check-back, discard, snapshot and replay.
//
// Locking: mu guards everything under "guarded by mu" below. It is held
// only for map, heap and slice operations: never across a store call, a
// read, or a network send. Counters are atomics read without it. OnRecord
// (the store's dispatch goroutine) takes mu only for transactional records.
type Service struct {
	cfg       Config
	log       *slog.Logger
	store     Log
	producers Producers
	now       func() time.Time

	// guarded by mu
	mu       sync.Mutex
	pending  map[int64]*entry    // by half commit-log offset
	byUniq   map[uint64]*entry   // by hash(UNIQ_KEY); first entry of the hash
	moreUniq map[uint64][]*entry // further entries of a hash (collision or one id in several groups)
	checkQ   entryHeap           // by next check time (prepared, not parked, not checking, not ending)
	ageQ     entryHeap           // by store time: every pending entry
	parked   map[uint32][]*entry
	awaiting []int32             // by group id: entries with fAwaiting (the group's outstanding checks)
	windowQ  map[uint32][]*entry // by group id: entries with fWaiting, in the order they fell due
	groups   []string
	groupIDs map[string]uint32
	recent   recentTable
	inflight map[uint64]*prepFlight // Prepare calls appending, by hash(UNIQ_KEY), chained
	wakeAt   int64                  // ms: when the scheduler will next look at the heaps (takeDue); insert wakes it only for an entry due before
	applied  int64                  // end of the last transactional record applied
	live     bool                   // Start finished its replay: OnRecord applies at once
	backlog  []*event               // transactional records seen before live
	closed   bool

	// liveA and closedA mirror live and closed for the lock-free checks
	// of End and Resume (written under mu, with them).
	liveA, closedA atomic.Bool

	regEpoch atomic.Uint64 // ProducerRegistered calls, to close the park/register race
	// backedUpLogged is when noteBackedUp last warned (scheduler goroutine only).
	backedUpLogged time.Time
	// seen is the end of the last record OnRecord finished with (any
	// record): every record before it is reflected in the index, so a
	// snapshot may claim max(applied, seen).
	seen atomic.Int64

	wake     chan struct{}
	bg       lifecycle.Group // every goroutine the service starts; Close waits
	startMu  sync.Mutex
	started  bool
	closeErr error
	closeRan bool

	replayFrom, replayTo atomic.Int64

	lastTopic atomic.Pointer[string] // topicName's cache: the last real topic of a committed copy

	c counters
}

// New validates cfg and returns a service that ignores the log until Start.
func New(cfg Config, log Log, producers Producers) (*Service, error) {
	if log == nil {
		return nil, fmt.Errorf("%w: nil log", ErrBadRequest)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.CheckMax == 0 {
		cfg.CheckMax = DefaultCheckMax
	}
	if cfg.CheckWindow == 0 {
		cfg.CheckWindow = DefaultCheckWindow
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	if cfg.Timeout < 0 || cfg.CheckInterval <= 0 || cfg.CheckMax < 0 || cfg.CheckMax > 65535 ||
		cfg.FileReservedTime < 0 || cfg.SnapshotInterval < 0 {
		return nil, fmt.Errorf("txn: invalid config: timeout %v, check interval %v, check max %d (0..65535), file reserved time %v",
			cfg.Timeout, cfg.CheckInterval, cfg.CheckMax, cfg.FileReservedTime)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "txn"),
		store:     log,
		producers: producers,
		now:       cfg.Now,
		pending:   make(map[int64]*entry),
		byUniq:    make(map[uint64]*entry),
		moreUniq:  make(map[uint64][]*entry),
		parked:    make(map[uint32][]*entry),
		windowQ:   make(map[uint32][]*entry),
		groupIDs:  make(map[string]uint32),
		inflight:  make(map[uint64]*prepFlight),
		wake:      make(chan struct{}, 1),
		wakeAt:    math.MaxInt64,
	}
	s.ageQ.byStored = true
	s.recent.init(recentSize)
	return s, nil
}

func (s *Service) nowMs() int64 { return s.now().UnixMilli() }

// Start loads the snapshot, replays the commit log from its offset, and
// starts the check scheduler and the snapshotter. The broker must not
// serve requests before Start returns.
func (s *Service) Start(ctx context.Context) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.started {
		return nil
	}
	if s.closeRan {
		return ErrClosed
	}
	st := s.store.Stats()
	from := st.MinOffset
	if snap, err := s.loadSnapshot(); err != nil {
		s.log.Warn("txn: snapshot unusable; replaying the whole commit log", "err", err)
	} else if snap != nil {
		switch {
		case snap.offset > st.MaxOffset:
			s.log.Warn("txn: snapshot is ahead of the commit log (log truncated or replaced); ignoring it",
				"snapshot_offset", snap.offset, "log_end", st.MaxOffset)
		default:
			s.installSnapshot(snap)
			from = snap.offset
			if from < st.MinOffset {
				s.log.Warn("txn: retention removed records after the snapshot; replaying from the log's start",
					"snapshot_offset", snap.offset, "log_min", st.MinOffset)
				from = st.MinOffset
			}
		}
	}
	s.mu.Lock()
	if s.applied < from {
		s.applied = from
	}
	s.mu.Unlock()
	s.replayFrom.Store(from)
	var ents [8]opEnt
	end, err := s.store.Scan(from, func(off int64, v message.View) error {
		if ev, ok := parseEvent(off, v, ents[:0]); ok {
			s.mu.Lock()
			s.apply(&ev)
			s.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("txn: replay from %d: %w", from, err)
	}
	s.replayTo.Store(end)
	s.mu.Lock()
	if s.applied < end {
		s.applied = end
	}
	for _, ev := range s.backlog {
		s.apply(ev)
	}
	s.backlog = nil
	s.live = true
	s.liveA.Store(true)
	// Parked state is not trusted across a restart: probe every group again.
	for g, list := range s.parked {
		now := s.nowMs()
		for _, e := range list {
			if e.flags&fParked != 0 && s.pending[e.off] == e {
				e.flags &^= fParked
				e.next = now
				s.checkQ.push(e)
			}
		}
		delete(s.parked, g)
	}
	n := len(s.pending)
	s.mu.Unlock()
	s.log.Info("txn: recovered", "pending", n, "replay_from", from, "replay_to", end, "replayed_bytes", end-from)
	s.started = true
	if s.cfg.noBackground {
		return nil
	}
	s.bg.Go(s.schedulerLoop)
	if s.cfg.SnapshotDir != "" && s.cfg.SnapshotInterval > 0 {
		s.bg.Go(s.snapshotLoop)
	}
	return nil
}

// Close stops the scheduler and the snapshotter and takes a final
// snapshot (after flushing the store). Call it before closing the store.
// Idempotent.
func (s *Service) Close() error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.closeRan {
		return s.closeErr
	}
	s.closeRan = true
	s.bg.Stop()
	if s.started && s.cfg.SnapshotDir != "" {
		if err := s.takeSnapshot(); err != nil {
			s.closeErr = err
		}
	}
	s.mu.Lock()
	s.closed = true
	s.closedA.Store(true)
	s.mu.Unlock()
	return s.closeErr
}

// ProducerRegistered re-arms the transactions of group parked because no
// producer of it was online. The broker calls it when a producer joins a
// group (clients.Config.OnProducerRegistered).
func (s *Service) ProducerRegistered(group string) {
	if s == nil {
		return
	}
	s.regEpoch.Add(1)
	s.mu.Lock()
	id, ok := s.groupIDs[group]
	var n int
	if ok {
		list := s.parked[id]
		delete(s.parked, id)
		now := s.nowMs()
		for _, e := range list {
			if e.flags&fParked == 0 || s.pending[e.off] != e {
				continue
			}
			e.flags &^= fParked
			if e.flags&(fEnding|fChecking) == 0 && e.hidx < 0 {
				e.next = now
				s.checkQ.push(e)
				n++
			}
		}
	}
	s.mu.Unlock()
	if n > 0 {
		s.log.Debug("txn: producer online; parked transactions re-armed", "group", group, "count", n)
		s.kick()
	}
}

// kick wakes the scheduler.
func (s *Service) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// OnRecord is the store hook: called for every record, in commit-log
// order, from the store's dispatch goroutine, once the record is visible.
// It costs a topic and sysFlag comparison for ordinary records, never
// blocks on I/O and never calls the store.
func (s *Service) OnRecord(off int64, v message.View) {
	if s == nil {
		return
	}
	var ents [4]opEnt
	if ev, ok := parseEvent(off, v, ents[:0]); ok {
		s.mu.Lock()
		switch {
		case s.closed:
		case !s.live:
			s.backlog = append(s.backlog, ev.detach())
		default:
			s.apply(&ev)
		}
		s.mu.Unlock()
	}
	s.seen.Store(off + int64(v.Len()))
}

// internGroup returns the id of a producer group. mu held.
func (s *Service) internGroup(g string) uint32 {
	if id, ok := s.groupIDs[g]; ok {
		return id
	}
	id := uint32(len(s.groups))
	s.groups = append(s.groups, g)
	s.awaiting = append(s.awaiting, 0)
	s.groupIDs[g] = id
	return id
}

// internGroupBytes is internGroup without allocating for a known group.
func (s *Service) internGroupBytes(g []byte) uint32 {
	if id, ok := s.groupIDs[string(g)]; ok {
		return id
	}
	return s.internGroup(string(g))
}

func (s *Service) groupName(id uint32) string {
	if int(id) < len(s.groups) {
		return s.groups[id]
	}
	return ""
}

// firstCheck is when a half stored at stored (ms) is first checked.
func (s *Service) firstCheck(stored, immunityMs int64) int64 {
	if immunityMs > 0 {
		return stored + immunityMs
	}
	return stored + s.cfg.Timeout.Milliseconds()
}

// apply changes the pending index for one transactional record. mu held.
// Records already reflected (before applied) are skipped, so replaying a
// range twice is harmless.
func (s *Service) apply(ev *event) {
	if ev.off < s.applied {
		return
	}
	s.applied = ev.end
	switch ev.kind {
	case evHalf:
		s.insertG(ev.off, ev.stored, s.firstCheck(ev.stored, ev.immunityMs), ev.uniq, s.internGroupBytes(ev.group), 0)
	case evResume:
		for _, oe := range ev.ents {
			if e := s.pending[oe.off]; e != nil {
				e.checks = 0
				continue
			}
			s.recent.forget(oe.off)
			s.insertG(oe.off, ev.halfStored, ev.stored, ev.uniq, s.internGroupBytes(ev.group), 0)
		}
	case evCopy:
		if e := s.pending[ev.halfOff]; e != nil && e.uniq == ev.uniq {
			s.resolve(e, StateCommitted, ev.stored)
		}
	case evDone:
		for _, oe := range ev.ents {
			if e := s.pending[oe.off]; e != nil {
				s.resolve(e, ev.state, ev.stored)
			}
		}
	case evDiscard:
		for _, oe := range ev.ents {
			if e := s.pending[oe.off]; e != nil {
				s.resolve(e, StateDiscarded, ev.stored)
			}
		}
	case evChecks:
		for _, oe := range ev.ents {
			if e := s.pending[oe.off]; e != nil && int(e.checks) < oe.n {
				e.checks = uint16(min(oe.n, 65535))
				// Replay: the next check is due an interval after this one.
				if next := ev.stored + s.cfg.CheckInterval.Milliseconds(); e.next < next && e.hidx >= 0 {
					e.next = next
					s.checkQ.fix(e)
				}
			}
		}
	}
}

// insert adds a pending entry unless one exists. mu held.
func (s *Service) insert(off, stored, next int64, uniq uint64, group string, checks uint16) *entry {
	return s.insertG(off, stored, next, uniq, s.internGroup(group), checks)
}

// insertG is insert with an interned group. mu held.
func (s *Service) insertG(off, stored, next int64, uniq uint64, group uint32, checks uint16) *entry {
	if e := s.pending[off]; e != nil {
		return e
	}
	e := &entry{off: off, stored: stored, next: next, uniq: uniq, hidx: -1, aidx: -1,
		group: group, checks: checks}
	s.pending[off] = e
	if first := s.byUniq[uniq]; first == nil {
		s.byUniq[uniq] = e
	} else {
		s.moreUniq[uniq] = append(s.moreUniq[uniq], e)
	}
	s.ageQ.push(e)
	s.checkQ.push(e)
	s.gaugesLocked()
	if s.live {
		// Wake the scheduler only if e is due before it next looks.
		due := next
		if ra := s.retentionAge(); ra >= 0 && stored+ra < due {
			due = stored + ra
		}
		if due < s.wakeAt {
			s.kick()
		}
	}
	return e
}

// resolve removes e from the pending index with its final state. mu held.
func (s *Service) resolve(e *entry, st State, at int64) {
	delete(s.pending, e.off)
	if s.byUniq[e.uniq] == e {
		if more := s.moreUniq[e.uniq]; len(more) > 0 {
			s.byUniq[e.uniq] = more[0]
			if len(more) == 1 {
				delete(s.moreUniq, e.uniq)
			} else {
				s.moreUniq[e.uniq] = more[1:]
			}
		} else {
			delete(s.byUniq, e.uniq)
		}
	} else if more := s.moreUniq[e.uniq]; len(more) > 0 {
		for i, x := range more {
			if x == e {
				more = append(more[:i:i], more[i+1:]...)
				break
			}
		}
		if len(more) == 0 {
			delete(s.moreUniq, e.uniq)
		} else {
			s.moreUniq[e.uniq] = more
		}
	}
	if e.hidx >= 0 {
		s.checkQ.remove(e)
	}
	if e.aidx >= 0 {
		s.ageQ.remove(e)
	}
	s.endOutstandingLocked(e)
	e.flags |= fEnding // any holder of a stale pointer sees it gone
	s.gaugesLocked()
	s.recent.add(recentRec{off: e.off, uniq: e.uniq, group: e.group, state: st, at: at})
}

// candidates returns the pending entries whose UNIQ_KEY hashes to h. mu held.
func (s *Service) candidates(h uint64) []*entry {
	first := s.byUniq[h]
	if first == nil {
		return nil
	}
	more := s.moreUniq[h]
	out := make([]*entry, 0, 1+len(more))
	return append(append(out, first), more...)
}

// errIfClosedFast is errIfClosed without mu (the state may change right
// after; callers recheck what they act on under mu).
func (s *Service) errIfClosedFast() error {
	if s.closedA.Load() {
		return ErrClosed
	}
	if !s.liveA.Load() {
		return ErrNotStarted
	}
	return nil
}

// hookSaw reports whether the store hook has been called for the record
// at off (OnRecord sees records in commit-log order and sets seen to the
// end of each), so an append's effect on the index needs no check under mu.
func (s *Service) hookSaw(off int64) bool { return s.seen.Load() > off }

// errIfClosed reports ErrClosed / ErrNotStarted. mu held.
func (s *Service) errIfClosed() error {
	if s.closed {
		return ErrClosed
	}
	if !s.live {
		return ErrNotStarted
	}
	return nil
}

func snapshotPath(dir string) string { return filepath.Join(dir, snapshotFileName) }

var errStop = errors.New("stop")
