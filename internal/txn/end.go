package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/store"
)

// EndRequest is one END_TRANSACTION (or an operator's commit/rollback).
type EndRequest struct {
	ProducerGroup        string // must be the half's PGROUP (not checked for SourceOperator)
	TranStateTableOffset int64  // the half's queue offset, checked when HasOffsets and >= 0
	CommitLogOffset      int64  // the half's commit-log offset
	HasOffsets           bool   // match by CommitLogOffset; otherwise by TransactionID (or MsgID)
	Resolution           Resolution
	FromCheck            bool // answer to CHECK_TRANSACTION_STATE
	MsgID                string
	TransactionID        string
	Source               Source

	noTxID bool // the caller does not need EndResult.TransactionID
}

// EndResult says what an END did.
type EndResult struct {
	// State is the transaction's state after the call: COMMITTED or
	// ROLLED_BACK when this END decided it or an earlier one had;
	// DISCARDED; RESOLVED when it was ended earlier but the outcome is no
	// longer remembered; PREPARED for an unknown resolution or when another
	// END is being applied concurrently.
	State State `json:"state"`
	// Applied: this call decided the final state.
	Applied bool `json:"applied"`
	// Duplicate: the transaction was already final (or being made final);
	// nothing was done. Not an error: both clients end a transaction twice.
	Duplicate     bool   `json:"duplicate"`
	HalfOffset    int64  `json:"halfOffset"`
	TransactionID string `json:"transactionId,omitempty"`
	CopyOffset    int64  `json:"copyOffset,omitempty"` // commit: commit-log offset of the visible copy
	Message       string `json:"message,omitempty"`
}

// End resolves a transaction. The first final state wins: a later END for
// the same half (repeat, commit after rollback, client racing a check
// answer) is a logged, counted no-op, returned as Duplicate, not an error.
// Commit appends the committed copy (with op d in the same batch unless
// the producer itself ended it, see buildEnd); rollback appends [op d].
// An unknown resolution changes nothing.
func (s *Service) End(ctx context.Context, req EndRequest) (EndResult, error) {
	return s.end(ctx, &req)
}

func (s *Service) end(ctx context.Context, req *EndRequest) (EndResult, error) {
	if req.Source >= numSources {
		return EndResult{}, fmt.Errorf("%w: source %d", ErrBadRequest, req.Source)
	}
	if req.FromCheck {
		s.c.answers[req.Resolution].Add(1)
	}
	if err := s.errIfClosedFast(); err != nil {
		return EndResult{}, err
	}
	if req.HasOffsets {
		// endAt claims the entry and, when it is not pending, answers
		// as locate would.
		return s.endAt(ctx, req, req.CommitLogOffset, nil)
	}
	return s.endByID(ctx, req)
}

// endByID is End without offsets: by transaction id (or msgId).
func (s *Service) endByID(ctx context.Context, req *EndRequest) (EndResult, error) {
	off, hi, res, err := s.locate(ctx, req)
	if err != nil || res != nil {
		if res != nil {
			s.duplicate(req, res)
			return *res, nil
		}
		return EndResult{}, err
	}
	return s.endAt(ctx, req, off, hi)
}

// locate finds the half offset an END without offsets names, and reads
// the half (hi). It returns a result instead when the transaction is
// already resolved.
func (s *Service) locate(ctx context.Context, req *EndRequest) (int64, *halfInfo, *EndResult, error) {
	notBefore := s.nowMs() - recentTTL.Milliseconds()
	id := req.TransactionID
	if id == "" {
		id = req.MsgID
	}
	if id == "" {
		return 0, nil, nil, fmt.Errorf("%w: END_TRANSACTION without commitLogOffset or transactionId", ErrBadRequest)
	}
	h := hashID(id)
	s.mu.Lock()
	var offs []int64
	for _, e := range s.candidates(h) {
		if req.ProducerGroup == "" || s.groupName(e.group) == req.ProducerGroup {
			offs = append(offs, e.off)
		}
	}
	r, inRecent := s.recent.byHash(h, notBefore)
	rg := s.groupName(r.group)
	s.mu.Unlock()
	var found []halfInfo
	var foundOff []int64
	for _, off := range offs {
		hi, err := s.readHalf(off)
		if err != nil || hi.uniq != id && hi.txID != id {
			continue
		}
		found = append(found, hi)
		foundOff = append(foundOff, off)
	}
	switch {
	case len(found) == 1:
		return foundOff[0], &found[0], nil, nil
	case len(found) > 1:
		return 0, nil, nil, fmt.Errorf("%w: %s is pending in %d halves; end it by offset or give the producer group", ErrAmbiguous, id, len(found))
	}
	if inRecent && (req.ProducerGroup == "" || rg == req.ProducerGroup) {
		return 0, nil, &EndResult{State: r.state, Duplicate: true, HalfOffset: r.off, TransactionID: id,
			Message: "already " + r.state.String()}, nil
	}
	if req.Source == SourceOperator {
		// A discarded transaction: an operator may still decide it.
		off, hi, err := s.resumeDiscarded(ctx, id, req.Source)
		if err == nil {
			return off, &hi, nil, nil
		}
		if !errors.Is(err, ErrNotDiscarded) {
			return 0, nil, nil, err
		}
	}
	return 0, nil, nil, fmt.Errorf("%w: no pending transaction %q", ErrUnknownTransaction, id)
}

// notPending answers an END by offset for a half that is not pending:
// already ended (remembered), resolved long ago (a half still in the log
// that is not pending was resolved: everything pending is in memory), or
// unknown.
func (s *Service) notPending(req *EndRequest, off int64) (*EndResult, error) {
	notBefore := s.nowMs() - recentTTL.Milliseconds()
	s.mu.Lock()
	r, inRecent := s.recent.byOffset(off, notBefore)
	var g string
	if inRecent {
		g = s.groupName(r.group)
	}
	s.mu.Unlock()
	if inRecent && (req.Source == SourceOperator || req.ProducerGroup == "" || g == req.ProducerGroup) {
		return &EndResult{State: r.state, Duplicate: true, HalfOffset: off,
			Message: "already " + r.state.String()}, nil
	}
	if h, err := s.readHalf(off); err == nil && (req.ProducerGroup == "" || h.group == req.ProducerGroup) {
		return &EndResult{State: StateResolved, Duplicate: true, HalfOffset: off, TransactionID: h.uniq,
			Message: "already resolved"}, nil
	}
	return nil, fmt.Errorf("%w: no half message at commitLogOffset %d", ErrUnknownTransaction, off)
}

// endAt claims the pending entry at off and appends the resolution. hi
// is the half locate read (END without offsets), nil for an END by offset.
func (s *Service) endAt(ctx context.Context, req *EndRequest, off int64, hi *halfInfo) (EndResult, error) {
	s.mu.Lock()
	e := s.pending[off]
	if e == nil || e.flags&fEnding != 0 || req.Resolution == ResolutionUnknown ||
		req.Source != SourceOperator && req.ProducerGroup != "" && s.groupName(e.group) != req.ProducerGroup {
		return s.notClaimedLocked(req, off, e)
	}
	e.flags |= fEnding
	if e.hidx >= 0 {
		s.checkQ.remove(e)
	}
	s.mu.Unlock()
	return s.endClaimed(ctx, req, e, hi)
}

// notClaimedLocked answers an END that endAt does not claim its entry
// for. mu held; it unlocks it.
func (s *Service) notClaimedLocked(req *EndRequest, off int64, e *entry) (EndResult, error) {
	if e == nil {
		if req.HasOffsets {
			s.mu.Unlock()
			res, err := s.notPending(req, off)
			if err != nil {
				return EndResult{}, err
			}
			s.duplicate(req, res)
			return *res, nil
		}
		r, ok := s.recent.byOffset(off, 0)
		s.mu.Unlock()
		res := EndResult{State: StateResolved, Duplicate: true, HalfOffset: off, Message: "already resolved"}
		if ok {
			res.State, res.Message = r.state, "already "+r.state.String()
		}
		s.duplicate(req, &res)
		return res, nil
	}
	if req.Source != SourceOperator && req.ProducerGroup != "" && s.groupName(e.group) != req.ProducerGroup {
		g := s.groupName(e.group)
		s.mu.Unlock()
		return EndResult{}, fmt.Errorf("%w: END from group %q, half %d belongs to %q", ErrGroupMismatch, req.ProducerGroup, off, g)
	}
	if e.flags&fEnding != 0 {
		s.mu.Unlock()
		res := EndResult{State: StatePrepared, Duplicate: true, HalfOffset: off, Message: "another END is being applied"}
		s.duplicate(req, &res)
		return res, nil
	}
	if req.FromCheck {
		s.endOutstandingLocked(e) // answered: its window slot is free
	}
	s.mu.Unlock()
	return EndResult{State: StatePrepared, HalfOffset: off, Message: "unknown: nothing done"}, nil
}

// endBatch is what one END appends: [committed copy], [committed copy,
// op d] or [op d] (buildEnd).
// Pooled: the store is done with the messages when the append completes.
// The fields after list carry an asynchronous END (EndAsync) to its
// completion.
type endBatch struct {
	copy, op message.Ext
	list     [2]*message.Ext
	res      [2]store.AppendResult

	props []byte // holds copy.Properties; reused once b is recycled

	s      *Service
	req    EndRequest
	e      *entry
	got    *store.GetResult
	uniq   []byte
	st     State
	n      int
	done   func(EndResult, error)
	conn   *remoting.Conn    // with creq, instead of done: the END served inline
	creq   *remoting.Command // (answered by answerEnd)
	doneFn func(error)       // b.completed, bound once
}

var endBatchPool sync.Pool // of *endBatch

func getEndBatch() *endBatch {
	if b, ok := endBatchPool.Get().(*endBatch); ok {
		return b
	}
	b := new(endBatch)
	b.doneFn = b.completed
	return b
}

func (b *endBatch) put() {
	fn, props := b.doneFn, b.props
	*b = endBatch{doneFn: fn}
	if cap(props) <= maxPooledProps {
		b.props = props[:0]
	}
	endBatchPool.Put(b)
}

// endClaimed reads the half of a claimed entry (unless hi has it) and
// appends the resolution.
func (s *Service) endClaimed(ctx context.Context, req *EndRequest, e *entry, hi *halfInfo) (EndResult, error) {
	off := e.off
	var (
		v   message.View
		got *store.GetResult
	)
	if hi != nil {
		v = hi.v
	} else {
		var err error
		if got, v, err = s.readHalfFor(req, off); err != nil {
			return EndResult{}, s.readFailed(e, off, err)
		}
	}
	if req.HasOffsets && req.TranStateTableOffset >= 0 && req.TranStateTableOffset != v.QueueOffset() {
		got.Release()
		return EndResult{}, s.offsetMismatch(e, req.TranStateTableOffset, off, v.QueueOffset())
	}
	b := getEndBatch()
	s.buildEnd(b, req, off, v)
	results, err := s.store.AppendBatch(ctx, b.list[:b.n])
	var res EndResult
	if err != nil {
		err = s.appendFailed(e, b.st.op(), off, err)
	} else {
		res = s.ended(ctx, req, e, b.st, b.uniq, results)
	}
	got.Release() // the copy's body and uniq aliased it
	b.put()
	return res, err
}

// buildEnd fills b with the records that end the half at off (view v):
// [committed copy] for a producer's commit, [committed copy, op d] for a
// commit answered to a check or decided by an operator, [op d] for a
// rollback. A copy names its half (PREPAREDTXOFFSET, UNIQ_KEY, PGROUP), so
// it ends the transaction by itself (the store hook resolves on it); op d
// is what records a rollback, and who decided a commit that did not come
// from the producer's own END.
func (s *Service) buildEnd(b *endBatch, req *EndRequest, off int64, v message.View) {
	copyProps, uniq, realTopic, realQID, cut := splitHalfProps(v.Properties())
	if !cut {
		uniq, realTopic, realQID = endFields(v.Properties())
	}
	b.uniq, b.st = uniq, StateRolledBack
	if req.Resolution == ResolutionCommit {
		b.st = StateCommitted
	}
	list := b.list[:0]
	if b.st == StateCommitted {
		if cut {
			fillCopyProps(&b.copy, v, s.topicName(realTopic), parseQID(realQID), off, copyProps)
		} else {
			b.props = fillCopy(&b.copy, v, s.topicName(realTopic), parseQID(realQID), off, b.props)
		}
		list = append(list, &b.copy)
	}
	if b.st != StateCommitted || req.Source != SourceClient {
		s.doneRecord(&b.op, off, b.st.op(), req.Source.String(), uniq)
		list = append(list, &b.op)
	}
	b.n = len(list)
}

// topicName returns topic as a string: the one made last time when it is
// the same (ENDs of one topic follow each other), else a new one.
func (s *Service) topicName(topic []byte) string {
	if p := s.lastTopic.Load(); p != nil && *p == string(topic) {
		return *p
	}
	t := string(topic)
	s.lastTopic.Store(&t)
	return t
}

// ended accounts for an END whose records the store has (results): the
// index is updated by the store hook (here when it is not wired), the
// counters, the debug log, the result.
func (s *Service) ended(ctx context.Context, req *EndRequest, e *entry, st State, uniq []byte, results []store.AppendResult) EndResult {
	off := e.off
	if !s.hookSaw(results[len(results)-1].CommitLogOffset) {
		s.mu.Lock()
		if s.pending[off] == e { // the store hook is not wired: apply here
			s.c.hookMisses.Add(1)
			s.resolve(e, st, s.nowMs())
		}
		s.mu.Unlock()
	}
	res := EndResult{State: st, Applied: true, HalfOffset: off}
	if !req.noTxID {
		res.TransactionID = string(uniq)
	}
	if st == StateCommitted {
		s.c.committed[req.Source].Add(1)
		res.CopyOffset = results[0].CommitLogOffset
	} else {
		s.c.rolledBack[req.Source].Add(1)
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.logEnded(off, uniq, st, req.Source)
	}
	return res
}

// The cold parts of endClaimed, kept out of its frame: END handlers run on
// fresh goroutines, and a deep frame costs a stack copy.

func (s *Service) logEnded(off int64, uniq []byte, st State, src Source) {
	s.log.Debug("txn: ended", "half_offset", off, "txid", string(uniq), "state", st, "source", src)
}

func (s *Service) readFailed(e *entry, off int64, err error) error {
	s.release(e)
	if errors.Is(err, store.ErrOffsetMoved) {
		return fmt.Errorf("%w: half %d: %w", ErrHalfRemoved, off, err)
	}
	return fmt.Errorf("txn: read half %d: %w", off, err)
}

func (s *Service) offsetMismatch(e *entry, tso, off, qoff int64) error {
	s.release(e)
	return fmt.Errorf("%w: tranStateTableOffset %d, half %d has queue offset %d", ErrOffsetMismatch, tso, off, qoff)
}

func (s *Service) appendFailed(e *entry, op string, off int64, err error) error {
	s.release(e)
	return fmt.Errorf("txn: store %s of half %d: %w", op, off, err)
}

// endFields returns UNIQ_KEY, REAL_TOPIC and REAL_QID of a half's
// properties (views). Not inlined: its scratch stays out of endClaimed's
// frame.
//
//go:noinline
func endFields(props []byte) (uniq, realTopic, realQID []byte) {
	var f propFields
	f.scan(props)
	return f.val[pfUniq], f.val[pfRealTopic], f.val[pfRealQID]
}

// readHalfFor reads the half at off for an END. With the half's queue
// offset (tranStateTableOffset, which both clients send) it is read
// through the half queue's consume queue into a pooled buffer (got, to be
// released by the caller): no allocation, and no validation beyond the
// consume-queue entry's (size, magic, self offset), since the entry
// vouches for a record there; it must be the half at off. Otherwise, or
// when that fails, the untrusted offset is read with store.ReadAt, which
// validates the record. v aliases got or the copy ReadAt returned.
func (s *Service) readHalfFor(req *EndRequest, off int64) (*store.GetResult, message.View, error) {
	if qoff := req.TranStateTableOffset; req.HasOffsets && qoff >= 0 {
		if got, v, ok := s.halfAtQueueOffset(off, qoff); ok {
			return got, v, nil
		}
	}
	rec, err := s.store.ReadAt(off)
	if err != nil {
		return nil, message.View{}, err
	}
	v, err := halfView(rec)
	return nil, v, err
}

// halfAtQueueOffset reads entry qoff of the half queue; ok when it is the
// half at commit-log offset off (got is then the caller's to release).
func (s *Service) halfAtQueueOffset(off, qoff int64) (got *store.GetResult, v message.View, ok bool) {
	r, err := s.store.GetMessages(message.TransHalfTopic, 0, qoff, 1, 0, nil)
	if err != nil {
		return nil, v, false
	}
	if r.Status == store.Found && len(r.Records) == 1 {
		if v, err = halfView(r.Records[0]); err == nil && v.CommitLogOffset() == off && v.QueueOffset() == qoff {
			return r, v, true
		}
	}
	r.Release()
	return nil, message.View{}, false
}

// release undoes a claim whose append failed or was refused.
func (s *Service) release(e *entry) {
	s.mu.Lock()
	if s.pending[e.off] == e {
		e.flags &^= fEnding
		if e.flags&(fChecking|fParked|fWaiting) == 0 && e.hidx < 0 {
			if now := s.nowMs(); e.next < now {
				e.next = now
			}
			s.checkQ.push(e)
			s.kick()
		}
	}
	s.mu.Unlock()
}

func (s *Service) duplicate(req *EndRequest, res *EndResult) {
	s.c.duplicateEnds.Add(1)
	res.Duplicate = true
	if req.Resolution == ResolutionUnknown {
		return
	}
	s.log.Info("txn: END for a transaction already final; ignored",
		"half_offset", res.HalfOffset, "txid", firstNonEmpty(req.TransactionID, req.MsgID),
		"asked", req.Resolution, "state", res.State, "source", req.Source, "from_check", req.FromCheck)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
