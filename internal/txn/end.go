package txn

import (
	"context"
	"errors"
	"fmt"

	"github.com/txmq/txmq/internal/message"
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
// Commit appends [committed copy, op d] as one batch; rollback appends
// [op d]. An unknown resolution changes nothing.
func (s *Service) End(ctx context.Context, req EndRequest) (EndResult, error) {
	if req.Source >= numSources {
		return EndResult{}, fmt.Errorf("%w: source %d", ErrBadRequest, req.Source)
	}
	if req.FromCheck {
		s.c.answers[req.Resolution].Add(1)
	}
	if err := s.errIfClosedFast(); err != nil {
		return EndResult{}, err
	}
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

// locate finds the half offset an END names. It returns a result instead
// when the transaction is already resolved. hi is set when the half was
// read on the way.
func (s *Service) locate(ctx context.Context, req EndRequest) (int64, *halfInfo, *EndResult, error) {
	notBefore := s.nowMs() - recentTTL.Milliseconds()
	if req.HasOffsets {
		off := req.CommitLogOffset
		s.mu.Lock()
		e := s.pending[off]
		r, inRecent := s.recent.byOffset(off, notBefore)
		var g string
		if inRecent {
			g = s.groupName(r.group)
		}
		s.mu.Unlock()
		if e != nil {
			return off, nil, nil, nil
		}
		if inRecent && (req.Source == SourceOperator || req.ProducerGroup == "" || g == req.ProducerGroup) {
			return 0, nil, &EndResult{State: r.state, Duplicate: true, HalfOffset: off,
				Message: "already " + r.state.String()}, nil
		}
		// Not pending and not remembered: a half still in the log was
		// resolved long ago (everything pending is in memory).
		if h, err := s.readHalf(off); err == nil && (req.ProducerGroup == "" || h.group == req.ProducerGroup) {
			return 0, nil, &EndResult{State: StateResolved, Duplicate: true, HalfOffset: off, TransactionID: h.uniq,
				Message: "already resolved"}, nil
		}
		return 0, nil, nil, fmt.Errorf("%w: no half message at commitLogOffset %d", ErrUnknownTransaction, off)
	}
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

// endAt claims the pending entry at off and appends the resolution.
func (s *Service) endAt(ctx context.Context, req EndRequest, off int64, hi *halfInfo) (EndResult, error) {
	s.mu.Lock()
	e := s.pending[off]
	if e == nil {
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
	if req.Resolution == ResolutionUnknown {
		s.mu.Unlock()
		return EndResult{State: StatePrepared, HalfOffset: off, Message: "unknown: nothing done"}, nil
	}
	e.flags |= fEnding
	if e.hidx >= 0 {
		s.checkQ.remove(e)
	}
	s.mu.Unlock()

	if hi == nil {
		h, err := s.readHalf(off)
		if err != nil {
			s.release(e)
			if errors.Is(err, store.ErrOffsetMoved) {
				return EndResult{}, fmt.Errorf("%w: half %d: %w", ErrHalfRemoved, off, err)
			}
			return EndResult{}, fmt.Errorf("txn: read half %d: %w", off, err)
		}
		hi = &h
	}
	if req.HasOffsets && req.TranStateTableOffset >= 0 && req.TranStateTableOffset != hi.v.QueueOffset() {
		s.release(e)
		return EndResult{}, fmt.Errorf("%w: tranStateTableOffset %d, half %d has queue offset %d",
			ErrOffsetMismatch, req.TranStateTableOffset, off, hi.v.QueueOffset())
	}
	op := "rollback"
	st := StateRolledBack
	if req.Resolution == ResolutionCommit {
		op, st = "commit", StateCommitted
	}
	body := appendOpEnt(nil, off, 0, false)
	d := s.opRecord(opDone, body, PropOp, op, PropOpSource, req.Source.String(), message.PropKeys, hi.uniq)
	var batch []*message.Ext
	if st == StateCommitted {
		batch = []*message.Ext{committedCopy(*hi, off), d}
	} else {
		batch = []*message.Ext{d}
	}
	results, err := s.store.AppendBatch(ctx, batch)
	if err != nil {
		s.release(e)
		return EndResult{}, fmt.Errorf("txn: store %s of half %d: %w", op, off, err)
	}
	if !s.hookSaw(results[len(results)-1].CommitLogOffset) {
		s.mu.Lock()
		if s.pending[off] == e { // the store hook is not wired: apply here
			s.c.hookMisses.Add(1)
			s.resolve(e, st, s.nowMs())
		}
		s.mu.Unlock()
	}
	res := EndResult{State: st, Applied: true, HalfOffset: off, TransactionID: hi.uniq}
	if st == StateCommitted {
		s.c.committed[req.Source].Add(1)
		res.CopyOffset = results[0].CommitLogOffset
	} else {
		s.c.rolledBack[req.Source].Add(1)
	}
	s.log.Debug("txn: ended", "half_offset", off, "txid", hi.uniq, "state", st, "source", req.Source)
	return res, nil
}

// release undoes a claim whose append failed or was refused.
func (s *Service) release(e *entry) {
	s.mu.Lock()
	if s.pending[e.off] == e {
		e.flags &^= fEnding
		if e.flags&(fChecking|fParked) == 0 && e.hidx < 0 {
			if now := s.nowMs(); e.next < now {
				e.next = now
			}
			s.checkQ.push(e)
			s.kick()
		}
	}
	s.mu.Unlock()
}

func (s *Service) duplicate(req EndRequest, res *EndResult) {
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
