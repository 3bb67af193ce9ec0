package txn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store"
)

// counters are the service's counters, atomics read without mu.
type counters struct {
	halfStored, duplicateHalves atomic.Uint64
	committed, rolledBack       [numSources]atomic.Uint64
	duplicateEnds               atomic.Uint64
	checksSent                  atomic.Uint64
	checksDeferred              atomic.Uint64    // not sent: the producer's connection was backed up
	answers                     [3]atomic.Uint64 // by Resolution
	discarded, resumed          atomic.Uint64
	hookMisses, snapshots       atomic.Uint64
	pendingNow                  atomic.Int64
	outstandingNow, waitingNow  atomic.Int64 // check windows: checks outstanding, transactions waiting (as of the scheduler's last round)
	oldestStored                atomic.Int64 // store time (ms) of the oldest pending half, 0 when none
}

// BySource counts by who ended a transaction.
type BySource struct {
	Client   uint64 `json:"client"`
	Check    uint64 `json:"check"`
	Operator uint64 `json:"operator"`
}

// Answers counts END_TRANSACTION answers to checks by resolution.
type Answers struct {
	Commit   uint64 `json:"commit"`
	Rollback uint64 `json:"rollback"`
	Unknown  uint64 `json:"unknown"`
}

// Stats is a snapshot of the counters (since the process started) and
// gauges. Reading it takes no lock.
type Stats struct {
	HalfStored         uint64   `json:"halfStored"`
	DuplicateHalves    uint64   `json:"duplicateHalves"`
	Committed          BySource `json:"committed"`
	RolledBack         BySource `json:"rolledBack"`
	DuplicateEnds      uint64   `json:"duplicateEndsIgnored"`
	ChecksSent         uint64   `json:"checksSent"`
	ChecksDeferred     uint64   `json:"checksDeferred"` // not sent: the producer's connection was backed up (not reading); retried a second later
	CheckAnswers       Answers  `json:"checkAnswers"`
	Discarded          uint64   `json:"discarded"`
	Resumed            uint64   `json:"resumed"`
	Pending            int64    `json:"pending"`
	OldestPendingAgeMs int64    `json:"oldestPendingAgeMs"`
	ReplayFrom         int64    `json:"replayFrom"` // commit-log range replayed at start
	ReplayTo           int64    `json:"replayTo"`
	Snapshots          uint64   `json:"snapshots"`
	HookMisses         uint64   `json:"hookMisses"` // records applied without the store hook (should stay 0)
	// The check windows, as of the scheduler's last round: checks sent
	// within the interval and not answered, and due transactions waiting
	// for room (transactionCheckWindow).
	ChecksOutstanding int64 `json:"checksOutstanding"`
	WaitingForWindow  int64 `json:"waitingForWindow"`
}

// Stats returns the counters without taking the service lock.
func (s *Service) Stats() Stats {
	c := &s.c
	st := Stats{
		HalfStored:      c.halfStored.Load(),
		DuplicateHalves: c.duplicateHalves.Load(),
		Committed:       BySource{c.committed[SourceClient].Load(), c.committed[SourceCheck].Load(), c.committed[SourceOperator].Load()},
		RolledBack:      BySource{c.rolledBack[SourceClient].Load(), c.rolledBack[SourceCheck].Load(), c.rolledBack[SourceOperator].Load()},
		DuplicateEnds:   c.duplicateEnds.Load(),
		ChecksSent:      c.checksSent.Load(),
		ChecksDeferred:  c.checksDeferred.Load(),
		CheckAnswers:    Answers{c.answers[ResolutionCommit].Load(), c.answers[ResolutionRollback].Load(), c.answers[ResolutionUnknown].Load()},
		Discarded:       c.discarded.Load(),
		Resumed:         c.resumed.Load(),
		Pending:         c.pendingNow.Load(),
		ReplayFrom:      s.replayFrom.Load(),
		ReplayTo:        s.replayTo.Load(),
		Snapshots:       c.snapshots.Load(),
		HookMisses:      c.hookMisses.Load(),

		ChecksOutstanding: c.outstandingNow.Load(),
		WaitingForWindow:  c.waitingNow.Load(),
	}
	if o := c.oldestStored.Load(); o > 0 && st.Pending > 0 {
		st.OldestPendingAgeMs = max(0, s.nowMs()-o)
	}
	return st
}

// gaugesLocked refreshes the pending gauges. mu held.
func (s *Service) gaugesLocked() {
	s.c.pendingNow.Store(int64(len(s.pending)))
	if e := s.ageQ.peek(); e != nil {
		s.c.oldestStored.Store(e.stored)
	} else {
		s.c.oldestStored.Store(0)
	}
}

// ListFilter selects pending transactions; empty fields match everything.
type ListFilter struct {
	Topic         string        `json:"topic,omitempty"`
	ProducerGroup string        `json:"producerGroup,omitempty"`
	TransactionID string        `json:"transactionId,omitempty"`
	MinAge        time.Duration `json:"minAge,omitempty"`
}

// PendingInfo describes one pending transaction.
type PendingInfo struct {
	Topic         string    `json:"topic"`
	QueueID       int32     `json:"queueId"`
	ProducerGroup string    `json:"producerGroup"`
	TransactionID string    `json:"transactionId"`
	HalfOffset    int64     `json:"halfOffset"`
	OffsetMsgID   string    `json:"offsetMsgId"`
	StoreTime     time.Time `json:"storeTime"`
	AgeMs         int64     `json:"ageMs"`
	ChecksSent    int       `json:"checksSent"`
	NextCheck     time.Time `json:"nextCheck"`
	// State: PREPARED (waiting for its next check), PARKED (no producer of
	// its group online), WAITING (due, but its group's check window is
	// full), CHECKING, ENDING (an END is being stored).
	State string `json:"state"`
}

// maxListReads bounds the halves List reads to apply a topic filter.
const maxListReads = 100_000

// List returns up to limit pending transactions, oldest first.
func (s *Service) List(limit int, f ListFilter) []PendingInfo {
	if limit <= 0 {
		limit = 100
	}
	now := s.nowMs()
	type row struct {
		e     entry
		group string
	}
	var rows []row
	s.mu.Lock()
	gid, gok := s.groupIDs[f.ProducerGroup]
	var h uint64
	if f.TransactionID != "" {
		h = hashID(f.TransactionID)
	}
	if f.ProducerGroup == "" || gok {
		for _, e := range s.pending {
			if f.ProducerGroup != "" && e.group != gid || f.TransactionID != "" && e.uniq != h ||
				f.MinAge > 0 && now-e.stored < f.MinAge.Milliseconds() {
				continue
			}
			rows = append(rows, row{e: *e})
		}
		for i := range rows {
			rows[i].group = s.groupName(rows[i].e.group)
		}
	}
	s.mu.Unlock()
	sort.Slice(rows, func(i, j int) bool {
		a, b := &rows[i].e, &rows[j].e
		return a.stored < b.stored || a.stored == b.stored && a.off < b.off
	})
	out := make([]PendingInfo, 0, min(limit, len(rows)))
	reads := 0
	for i := range rows {
		if len(out) >= limit || reads >= maxListReads {
			break
		}
		e := &rows[i].e
		pi := PendingInfo{ProducerGroup: rows[i].group, HalfOffset: e.off, StoreTime: time.UnixMilli(e.stored),
			AgeMs: now - e.stored, ChecksSent: int(e.checks), NextCheck: time.UnixMilli(e.next), State: "PREPARED"}
		switch {
		case e.flags&fEnding != 0:
			pi.State = "ENDING"
		case e.flags&fChecking != 0:
			pi.State = "CHECKING"
		case e.flags&fParked != 0:
			pi.State, pi.NextCheck = "PARKED", time.Time{}
		case e.flags&fWaiting != 0:
			pi.State, pi.NextCheck = "WAITING", time.Time{}
		}
		reads++
		if hi, err := s.readHalf(e.off); err == nil {
			pi.Topic, pi.QueueID, pi.TransactionID = hi.realTopic, hi.realQID, hi.uniq
			host := s.cfg.StoreHost
			if !host.IsValid() {
				host = hi.v.StoreHost()
			}
			pi.OffsetMsgID = message.OffsetMessageID(host, e.off)
		}
		if f.Topic != "" && pi.Topic != f.Topic || f.TransactionID != "" && pi.TransactionID != f.TransactionID {
			continue
		}
		out = append(out, pi)
	}
	return out
}

// DiscardedInfo describes one record of TRANS_CHECK_MAX_TIME_TOPIC.
type DiscardedInfo struct {
	Topic         string    `json:"topic"`
	QueueID       int32     `json:"queueId"`
	ProducerGroup string    `json:"producerGroup"`
	TransactionID string    `json:"transactionId"`
	HalfOffset    int64     `json:"halfOffset"`
	StoreTime     time.Time `json:"storeTime"`   // of the half
	DiscardTime   time.Time `json:"discardTime"` // of the discarded copy
	ChecksSent    int       `json:"checksSent"`
	Reason        string    `json:"reason"` // checks | retention | removed
	// State now: DISCARDED, PREPARED (resumed), COMMITTED or ROLLED_BACK
	// (resumed and ended).
	State State `json:"state"`
}

// Discarded returns up to limit discarded transactions, newest first, read
// from TRANS_CHECK_MAX_TIME_TOPIC.
func (s *Service) Discarded(limit int) ([]DiscardedInfo, error) {
	if limit <= 0 {
		limit = 100
	}
	maxQ := s.store.MaxOffset(message.TransCheckMaxTimeTopic, 0)
	from := max(0, maxQ-int64(limit))
	var out []DiscardedInfo
	for from < maxQ {
		r, err := s.store.GetMessages(message.TransCheckMaxTimeTopic, 0, from, limit, 0, nil)
		if err != nil {
			return nil, err
		}
		for _, rec := range r.Records {
			if di, ok := s.discardedInfo(rec); ok {
				out = append(out, di)
			}
		}
		next := r.NextBeginOffset
		found := r.Status == store.Found
		r.Release()
		if !found || next <= from {
			break
		}
		from = next
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	for i := range out {
		out[i].State = s.currentState(out[i].TransactionID, out[i].HalfOffset)
	}
	return out, nil
}

func (s *Service) discardedInfo(rec []byte) (DiscardedInfo, bool) {
	v, err := message.Parse(rec)
	if err != nil {
		return DiscardedInfo{}, false
	}
	p := v.Properties()
	get := func(k string) string { x, _ := message.PropertyBytes(p, k); return x }
	di := DiscardedInfo{Topic: get(message.PropRealTopic), ProducerGroup: get(message.PropProducerGroup),
		TransactionID: get(message.PropUniqClientMessageID), DiscardTime: time.UnixMilli(v.StoreTimestamp()),
		Reason: get(PropDiscardReason), State: StateDiscarded}
	q, _ := strconv.Atoi(get(message.PropRealQueueID))
	di.QueueID = int32(q)
	di.HalfOffset, err = strconv.ParseInt(get(PropHalfOffset), 10, 64)
	if err != nil {
		return DiscardedInfo{}, false
	}
	hs, _ := strconv.ParseInt(get(PropHalfStore), 10, 64)
	di.StoreTime = time.UnixMilli(hs)
	di.ChecksSent, _ = strconv.Atoi(get(PropChecks))
	return di, true
}

// history is what the log says happened to one half after it was stored:
// the offsets of its latest discard copy, resume and done records.
type history struct {
	discard, resume, done int64 // commit-log offsets, -1 when none
	doneState             State
	hi                    halfInfo
	group                 string
}

// historyOf looks a transaction id up in the key index: discard copies in
// TRANS_CHECK_MAX_TIME_TOPIC, op records r and d (which carry the id as
// KEYS), and committed copies in the discarded halves' real topics (a
// producer's commit is recorded by its copy alone, indexed by UNIQ_KEY).
// It returns one history per half offset found.
func (s *Service) historyOf(id string) (map[int64]*history, error) {
	hs := map[int64]*history{}
	var topics []string // the discarded halves' real topics
	get := func(off int64) *history {
		h := hs[off]
		if h == nil {
			h = &history{discard: -1, resume: -1, done: -1}
			hs[off] = h
		}
		return h
	}
	recs, err := s.store.QueryByKey(message.TransCheckMaxTimeTopic, id, 64, 0, math.MaxInt64)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		di, ok := s.discardedInfo(rec)
		v, err := message.Parse(rec)
		if !ok || err != nil || di.TransactionID != id {
			continue
		}
		h := get(di.HalfOffset)
		h.discard = max(h.discard, v.CommitLogOffset())
		h.group = di.ProducerGroup
		if di.Topic != "" && !slices.Contains(topics, di.Topic) {
			topics = append(topics, di.Topic)
		}
	}
	if len(hs) == 0 {
		return hs, nil
	}
	for _, t := range topics {
		err := s.eventsByKey(t, id, func(ev *event) {
			if ev.kind != evCopy || ev.uniq != hashID(id) {
				return
			}
			if h := hs[ev.halfOff]; h != nil && ev.off > h.done {
				h.done, h.doneState = ev.off, StateCommitted
			}
		})
		if err != nil {
			return nil, err
		}
	}
	err = s.eventsByKey(message.TransOpHalfTopic, id, func(ev *event) {
		for _, oe := range ev.ents {
			h := hs[oe.off]
			if h == nil {
				continue
			}
			switch ev.kind {
			case evResume:
				h.resume = max(h.resume, ev.off)
			case evDone:
				if ev.off > h.done {
					h.done, h.doneState = ev.off, ev.state
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return hs, nil
}

// eventsByKey calls fn with the transactional event of each record of
// topic whose key (KEYS or UNIQ_KEY) is id, at most 256 of them; records
// that are not transactional are skipped.
func (s *Service) eventsByKey(topic, id string, fn func(*event)) error {
	recs, err := s.store.QueryByKey(topic, id, 256, 0, math.MaxInt64)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		v, err := message.Parse(rec)
		if err != nil {
			continue
		}
		if ev, ok := parseEvent(v.CommitLogOffset(), v, nil); ok {
			fn(&ev)
		}
	}
	return nil
}

// currentState says what became of a discarded half.
func (s *Service) currentState(id string, off int64) State {
	s.mu.Lock()
	_, pending := s.pending[off]
	s.mu.Unlock()
	if pending {
		return StatePrepared
	}
	hs, err := s.historyOf(id)
	if err != nil {
		return StateDiscarded
	}
	if h := hs[off]; h != nil && h.done > h.discard {
		return h.doneState
	}
	return StateDiscarded
}

// ResumeResult is what Resume did.
type ResumeResult struct {
	HalfOffset    int64  `json:"halfOffset"`
	TransactionID string `json:"transactionId"`
	ProducerGroup string `json:"producerGroup"`
	Topic         string `json:"topic"`
}

// Resume puts a discarded transaction back to PREPARED with no check
// spent; it is checked at once.
func (s *Service) Resume(ctx context.Context, txid string) (ResumeResult, error) {
	if err := s.errIfClosedFast(); err != nil {
		return ResumeResult{}, err
	}
	if txid == "" {
		return ResumeResult{}, fmt.Errorf("%w: empty transaction id", ErrBadRequest)
	}
	off, hi, err := s.resumeDiscarded(ctx, txid, SourceOperator)
	if err != nil {
		return ResumeResult{}, err
	}
	return ResumeResult{HalfOffset: off, TransactionID: hi.uniq, ProducerGroup: hi.group, Topic: hi.realTopic}, nil
}

// resumeDiscarded finds the discarded half of id and appends op r for it.
func (s *Service) resumeDiscarded(ctx context.Context, id string, src Source) (int64, halfInfo, error) {
	hs, err := s.historyOf(id)
	if err != nil {
		return 0, halfInfo{}, fmt.Errorf("txn: look up %q: %w", id, err)
	}
	var offs []int64
	for off, h := range hs {
		s.mu.Lock()
		_, pending := s.pending[off]
		s.mu.Unlock()
		if pending || h.done > h.discard || h.resume > h.discard {
			continue
		}
		offs = append(offs, off)
	}
	switch {
	case len(offs) == 0:
		return 0, halfInfo{}, fmt.Errorf("%w: %q (pending, resolved or unknown)", ErrNotDiscarded, id)
	case len(offs) > 1:
		return 0, halfInfo{}, fmt.Errorf("%w: %q names %d discarded halves", ErrAmbiguous, id, len(offs))
	}
	off := offs[0]
	hi, err := s.readHalf(off)
	if err != nil {
		if errors.Is(err, store.ErrOffsetMoved) || errors.Is(err, store.ErrNotFound) {
			return 0, halfInfo{}, fmt.Errorf("%w: half %d of %q: %w", ErrHalfRemoved, off, id, err)
		}
		return 0, halfInfo{}, fmt.Errorf("txn: read half %d: %w", off, err)
	}
	r := s.opRecord(opResume, appendOpEnt(nil, off, 0, false),
		message.PropProducerGroup, hi.group, message.PropUniqClientMessageID, hi.uniq, message.PropKeys, hi.uniq,
		PropHalfStore, strconv.FormatInt(hi.v.StoreTimestamp(), 10), PropOpSource, src.String())
	res, err := s.store.Append(ctx, r)
	if err != nil {
		return 0, halfInfo{}, fmt.Errorf("txn: store resume of %q: %w", id, err)
	}
	// The store hook has applied op r before Append returned, unless the
	// broker did not wire it. Not "not pending now": the resumed entry
	// may already have been checked and ended since.
	s.mu.Lock()
	if !s.hookSaw(res.CommitLogOffset) && s.pending[off] == nil {
		s.c.hookMisses.Add(1)
		s.recent.forget(off)
		s.insert(off, hi.v.StoreTimestamp(), s.nowMs(), hashID(hi.uniq), hi.group, 0)
	}
	s.mu.Unlock()
	s.c.resumed.Add(1)
	s.log.Info("txn: discarded transaction resumed", "txid", id, "half_offset", off, "group", hi.group, "source", src)
	return off, hi, nil
}
