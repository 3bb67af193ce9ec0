package schedule

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txmq/txmq/internal/lifecycle"
	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store"
)

// Log is what the service needs of the store. *store.Store satisfies it.
type Log interface {
	AppendBatch(ctx context.Context, ms []*message.Ext) ([]store.AppendResult, error)
	// ReadAt returns a copy of the record at a commit-log offset.
	ReadAt(commitLogOffset int64) ([]byte, error)
	// Flush makes everything appended so far durable.
	Flush() error
	// Scan calls fn for every record from commit-log offset from to the
	// current end, in order, and returns the offset after the last record.
	Scan(from int64, fn func(off int64, v message.View) error) (int64, error)
	// Stats gives the commit log's minimum and maximum offsets.
	Stats() store.Stats
}

// Config configures a Service.
type Config struct {
	// DelayLevels is messageDelayLevel, parsed: level n waits DelayLevels[n-1].
	DelayLevels []time.Duration
	// TimerMaxDelay is timerMaxDelaySec: the latest delivery time a timer
	// message may ask for, from now. Default 3 days.
	TimerMaxDelay time.Duration
	// Logger, default discard.
	Logger *slog.Logger
	// Now is the broker clock; it must be the store's clock too. Default time.Now.
	Now func() time.Time
	// SnapshotDir holds the snapshot file (schedule.snapshot); empty: no
	// snapshot, every start replays the whole commit log.
	SnapshotDir string
	// SnapshotInterval is how often a snapshot is taken (when anything
	// changed). Default 30 s.
	SnapshotInterval time.Duration
	// DeliverBatch bounds the messages one delivery round appends together.
	// Default 256.
	DeliverBatch int

	// noBackground (tests) starts no goroutines: tests call deliverDue.
	noBackground bool
}

// Defaults.
const (
	DefaultTimerMaxDelay    = 3 * 24 * time.Hour
	DefaultSnapshotInterval = 30 * time.Second
	DefaultDeliverBatch     = 256

	snapshotFileName = "schedule.snapshot"
	// retryDelay re-arms entries whose delivery append failed.
	retryDelay = time.Second
)

// Service schedules delay-level and timer messages. See the package
// documentation.
//
// Locking: mu guards the wheel, the in-flight batch, the replay state
// and the wake time. It is held for map, heap and slice operations only:
// never across a store call. OnRecord (the store's dispatch goroutine)
// takes it only for scheduled records.
type Service struct {
	cfg      Config
	log      *slog.Logger
	store    Log
	now      func() time.Time
	levels   []time.Duration
	maxDelay time.Duration

	mu       sync.Mutex
	w        *wheel
	inflight []entry // the batch being delivered (at most one)
	floor    int64   // seen when inflight was taken
	applied  int64   // end of the last scheduled record applied
	backlog  []entry // scheduled records seen by OnRecord before Start's replay finished
	wakeAt   int64   // when the deliverer will next look (ms); 0: it is busy or idle-forever
	changes  uint64  // bumped on every change, for snapshotting only when needed
	// snapChanges is changes when the last snapshot was taken (snapTaken).
	snapChanges uint64
	snapTaken   bool
	live        atomic.Bool
	closed      bool

	// seen is the end of the last record OnRecord finished with: every
	// record before it is reflected in the wheel.
	seen atomic.Int64

	wake     chan struct{}
	bg       lifecycle.Group // every goroutine the service starts; Close waits
	startMu  sync.Mutex
	started  bool
	closeRan bool
	closeErr error

	c counters
}

type counters struct {
	scheduled, delivered, dropped, failed, snapshots atomic.Uint64
	lateMaxMs                                        atomic.Int64
}

// Stats are the service's gauges and counters.
type Stats struct {
	Pending   int    // scheduled, not yet delivered
	Scheduled uint64 // scheduled records seen since start (replay included)
	Delivered uint64 // copies delivered since start
	Dropped   uint64 // scheduled records that could not be read or had no real topic
	Failed    uint64 // delivery appends that failed (their entries were re-armed)
	Snapshots uint64
	LateMaxMs int64 // largest delivery lateness (append done − due) since start
}

// New validates cfg and returns a service that ignores the log until Start.
func New(cfg Config, log Log) (*Service, error) {
	if log == nil {
		return nil, errors.New("schedule: nil log")
	}
	if len(cfg.DelayLevels) == 0 {
		return nil, errors.New("schedule: no delay levels")
	}
	for i, d := range cfg.DelayLevels {
		if d <= 0 {
			return nil, fmt.Errorf("schedule: delay level %d is %v", i+1, d)
		}
	}
	if cfg.TimerMaxDelay == 0 {
		cfg.TimerMaxDelay = DefaultTimerMaxDelay
	}
	if cfg.TimerMaxDelay < 0 {
		return nil, fmt.Errorf("schedule: timer max delay %v", cfg.TimerMaxDelay)
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = DefaultSnapshotInterval
	}
	if cfg.DeliverBatch <= 0 {
		cfg.DeliverBatch = DefaultDeliverBatch
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		cfg: cfg, log: cfg.Logger.With("component", "schedule"), store: log, now: cfg.Now,
		levels: cfg.DelayLevels, maxDelay: cfg.TimerMaxDelay,
		w: newWheel(), wake: make(chan struct{}, 1),
	}, nil
}

// Stats returns the service's counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	n := s.w.len() + len(s.inflight)
	s.mu.Unlock()
	return Stats{Pending: n, Scheduled: s.c.scheduled.Load(), Delivered: s.c.delivered.Load(),
		Dropped: s.c.dropped.Load(), Failed: s.c.failed.Load(), Snapshots: s.c.snapshots.Load(),
		LateMaxMs: s.c.lateMaxMs.Load()}
}

// kind of a record's topic.
const (
	kindOther = iota
	kindDelay
	kindTimer
)

func topicKind(t []byte) int {
	switch {
	case len(t) == len(ScheduleTopic) && string(t) == ScheduleTopic:
		return kindDelay
	case len(t) == len(TimerTopic) && string(t) == TimerTopic:
		return kindTimer
	}
	return kindOther
}

// dueOf is a scheduled record's due time (ms): store time + the level's
// delay for delay levels (queue id = level − 1, clamped to the configured
// levels), TIMER_OUT_MS for timers (store time when it is missing or
// malformed: deliver at once).
func (s *Service) dueOf(kind int, v message.View) int64 {
	st := v.StoreTimestamp()
	if kind == kindDelay {
		q := int(v.QueueID())
		q = max(0, min(q, len(s.levels)-1))
		return st + s.levels[q].Milliseconds()
	}
	if p, ok := message.PropertyBytes(v.Properties(), message.PropTimerOutMs); ok {
		if n, err := strconv.ParseInt(p, 10, 64); err == nil {
			return n
		}
	}
	return st
}

// OnRecord is the store hook: called for every record, in commit-log
// order, from the store's dispatch goroutine, once the record is visible.
// For ordinary records it costs one length comparison and an atomic
// store; it never blocks on I/O and never calls the store.
func (s *Service) OnRecord(off int64, v message.View) {
	if s == nil {
		return
	}
	end := off + int64(v.Len())
	kind := topicKind(v.Topic())
	if kind == kindOther {
		s.seen.Store(end)
		return
	}
	e := entry{off: off, due: s.dueOf(kind, v)}
	kick := false
	s.mu.Lock()
	switch {
	case s.closed:
	case !s.live.Load():
		s.backlog = append(s.backlog, e)
	case off >= s.applied:
		s.applied = end
		s.w.add(e)
		s.changes++
		s.c.scheduled.Add(1)
		kick = s.wakeAt != 0 && e.due < s.wakeAt
	}
	s.seen.Store(end)
	s.mu.Unlock()
	if kick {
		s.kick()
	}
}

func (s *Service) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start loads the snapshot, replays the commit log from it (adding the
// scheduled records after it and dropping those delivered meanwhile),
// then starts the deliverer and the snapshotter. Messages already due are
// delivered at once. The broker must not serve requests before Start
// returns.
func (s *Service) Start(ctx context.Context) error {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.started {
		return nil
	}
	if s.closeRan {
		return errors.New("schedule: Start after Close")
	}
	st := s.store.Stats()
	stateAt, from := st.MinOffset, st.MinOffset
	var staged []entry
	if snap, err := s.loadSnapshot(); err != nil {
		s.log.Warn("schedule: snapshot unusable; replaying the whole commit log", "err", err)
	} else if snap != nil {
		if snap.stateAt > st.MaxOffset {
			s.log.Warn("schedule: snapshot is ahead of the commit log (log truncated or replaced); ignoring it",
				"snapshot_offset", snap.stateAt, "log_end", st.MaxOffset)
		} else {
			staged = snap.entries
			stateAt, from = snap.stateAt, snap.replayFrom
			if from < st.MinOffset {
				from = st.MinOffset
			}
		}
	}
	delivered := map[int64]struct{}{}
	marker := []byte(PropScheduledOffset)
	end, err := s.store.Scan(from, func(off int64, v message.View) error {
		if kind := topicKind(v.Topic()); kind != kindOther {
			if off >= stateAt {
				staged = append(staged, entry{off: off, due: s.dueOf(kind, v)})
			}
			return nil
		}
		props := v.Properties()
		if !bytes.Contains(props, marker) {
			return nil
		}
		if p, ok := message.PropertyBytes(props, PropScheduledOffset); ok {
			if n, err := strconv.ParseInt(p, 10, 64); err == nil {
				delivered[n] = struct{}{}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("schedule: replay from %d: %w", from, err)
	}
	s.mu.Lock()
	n := 0
	for _, e := range staged {
		if _, ok := delivered[e.off]; !ok {
			s.w.add(e)
			n++
		}
	}
	s.applied = max(end, stateAt)
	for _, e := range s.backlog {
		if e.off >= s.applied {
			s.w.add(e)
			s.applied = e.off + 1
			n++
		}
	}
	s.backlog = nil
	s.c.scheduled.Add(uint64(n))
	s.live.Store(true)
	pending := s.w.len()
	s.mu.Unlock()
	s.log.Info("schedule: recovered", "pending", pending, "replay_from", from, "replay_to", end,
		"replayed_bytes", end-from, "delivered_in_replay", len(delivered))
	s.started = true
	if s.cfg.noBackground {
		return nil
	}
	s.bg.Go(s.deliverLoop)
	if s.cfg.SnapshotDir != "" && s.cfg.SnapshotInterval > 0 {
		s.bg.Go(s.snapshotLoop)
	}
	return nil
}

// Close stops the deliverer and the snapshotter and takes a final
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
	if s.started {
		s.closeErr = s.takeSnapshot()
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.closeErr
}

// deliverLoop sleeps until the earliest due time (or a kick), delivers
// everything due in batches, and sleeps again. Between due times it costs
// nothing, however many messages are scheduled.
func (s *Service) deliverLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		wait := s.deliverDue(ctx)
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// deliverDue delivers everything due now and returns how long to sleep.
func (s *Service) deliverDue(ctx context.Context) time.Duration {
	var batch []entry
	for ctx.Err() == nil {
		var wait time.Duration
		batch, wait = s.take(batch[:0])
		if len(batch) == 0 {
			return wait
		}
		s.deliver(ctx, batch)
	}
	return time.Hour
}

// take moves up to DeliverBatch due entries into the in-flight batch.
// With nothing due it returns how long until the next due time and
// records the wake time (so OnRecord kicks for anything earlier).
func (s *Service) take(dst []entry) ([]entry, time.Duration) {
	now := s.now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live.Load() || s.closed {
		return dst, time.Hour
	}
	dst = s.w.popDue(now, s.cfg.DeliverBatch, dst)
	if len(dst) > 0 {
		s.inflight = append(s.inflight[:0], dst...)
		s.floor = s.seen.Load()
		s.changes++
		s.wakeAt = 0
		return dst, 0
	}
	wait := time.Hour
	if next, ok := s.w.next(); ok && next-now < wait.Milliseconds() {
		wait = time.Duration(max(next-now, 1)) * time.Millisecond
	}
	s.wakeAt = now + wait.Milliseconds()
	return dst, wait
}

// deliver appends the real copies of a batch in one store append.
// Entries whose record is gone or malformed are dropped (logged); if the
// append fails every entry is re-armed a second later.
func (s *Service) deliver(ctx context.Context, batch []entry) {
	msgs := make([]*message.Ext, 0, len(batch))
	ok := make([]entry, 0, len(batch))
	for _, e := range batch {
		rec, err := s.store.ReadAt(e.off)
		var m *message.Ext
		if err == nil {
			var v message.View
			if v, err = message.Parse(rec); err == nil {
				m, err = Delivered(v, e.off)
			}
		}
		if err != nil {
			s.c.dropped.Add(1)
			s.log.Error("schedule: scheduled message cannot be delivered; dropped", "offset", e.off, "err", err)
			continue
		}
		msgs = append(msgs, m)
		ok = append(ok, e)
	}
	var err error
	if len(msgs) > 0 {
		_, err = s.store.AppendBatch(ctx, msgs)
	}
	now := s.now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = s.inflight[:0]
	s.changes++
	if err != nil {
		s.c.failed.Add(1)
		if !errors.Is(err, context.Canceled) && !errors.Is(err, store.ErrClosed) {
			s.log.Warn("schedule: delivery failed; retrying", "messages", len(ok), "err", err)
		}
		for _, e := range ok {
			// Re-arm at the original due time when shutting down (the
			// snapshot keeps it), else a little later.
			if ctx.Err() == nil {
				e.due = max(e.due, now+retryDelay.Milliseconds())
			}
			s.w.add(e)
		}
		return
	}
	s.c.delivered.Add(uint64(len(ok)))
	for _, e := range ok {
		if late := now - e.due; late > s.c.lateMaxMs.Load() {
			s.c.lateMaxMs.Store(late)
		}
	}
}
