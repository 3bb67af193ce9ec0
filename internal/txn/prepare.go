package txn

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unsafe"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store"
)

var errNotHalf = errors.New("txn: record is not a half message")

// PrepareResult is where a half message went. The broker answers the
// SEND with msgId = OffsetMessageID(storeHost, Append.CommitLogOffset),
// queueOffset = Append.QueueOffset, transactionId = TransactionID.
type PrepareResult struct {
	Append        store.AppendResult // of the half message (RMQ_SYS_TRANS_HALF_TOPIC, queue 0)
	TransactionID string             // the UNIQ_KEY
	Duplicate     bool               // a half with this group and UNIQ_KEY existed: its result
}

// prepFlight is a Prepare that is appending; duplicates wait for it.
// Flights of one UNIQ_KEY hash are chained through next. done is made by
// the first duplicate that waits (under mu) and closed by the flight when
// it ends (under mu), so a Prepare without duplicates makes no channel.
type prepFlight struct {
	group, uniq string
	next        *prepFlight
	done        chan struct{}
	res         PrepareResult
	err         error
}

// Prepare stores a transactional (half) message: under
// RMQ_SYS_TRANS_HALF_TOPIC queue 0, with REAL_TOPIC, REAL_QID, PGROUP,
// __transactionId__ = UNIQ_KEY and TRAN_MSG=true, and the transaction bits
// of sysFlag cleared, so it is never visible in the real topic. The broker
// has validated topic, queue and size and filled born and store hosts.
//
// Idempotent on (producerGroup, UNIQ_KEY): a repeated half send (the
// client retries a timed-out send with the same UNIQ_KEY) returns the
// first half's result, and concurrent duplicates wait for the first.
func (s *Service) Prepare(ctx context.Context, m *message.Ext, producerGroup string) (PrepareResult, error) {
	if !s.cfg.Enable {
		return PrepareResult{}, ErrDisabled
	}
	uniq, pgroup, err := scanHalfProps(m.Properties)
	if err != nil {
		return PrepareResult{}, err
	}
	if uniq == "" {
		return PrepareResult{}, ErrNoUniqKey
	}
	if producerGroup == "" {
		producerGroup = pgroup
		if producerGroup == "" {
			return PrepareResult{}, ErrNoGroup
		}
	}
	h := hashID(uniq)
	for {
		s.mu.Lock()
		if err := s.errIfClosed(); err != nil {
			s.mu.Unlock()
			return PrepareResult{}, err
		}
		var wait *prepFlight
		for f := s.inflight[h]; f != nil; f = f.next {
			if f.group == producerGroup && f.uniq == uniq {
				wait = f
				break
			}
		}
		if wait != nil {
			if wait.done == nil {
				wait.done = make(chan struct{})
			}
			done := wait.done
			s.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
				return PrepareResult{}, ctx.Err()
			}
			if wait.err == nil {
				res := wait.res
				res.Duplicate = true
				s.c.duplicateHalves.Add(1)
				return res, nil
			}
			continue // the first failed: try ourselves
		}
		var offs []dupCandidate
		for _, e := range s.candidates(h) { // nil, without allocating, when none
			if s.groupName(e.group) == producerGroup {
				offs = append(offs, dupCandidate{off: e.off, state: StatePrepared})
			}
		}
		if r, ok := s.recent.byHash(h, s.nowMs()-recentTTL.Milliseconds()); ok && s.groupName(r.group) == producerGroup {
			offs = append(offs, dupCandidate{off: r.off, state: r.state})
		}
		f := &prepFlight{group: producerGroup, uniq: uniq, next: s.inflight[h]}
		s.inflight[h] = f
		s.mu.Unlock()

		f.res, f.err = s.prepare(ctx, m, producerGroup, uniq, h, offs)

		s.mu.Lock()
		s.endFlightLocked(h, f)
		s.mu.Unlock()
		return f.res, f.err
	}
}

// endFlightLocked removes flight f (of UNIQ_KEY hash h), whose outcome is
// set, and wakes the duplicates waiting on it. mu held.
func (s *Service) endFlightLocked(h uint64, f *prepFlight) {
	if head := s.inflight[h]; head == f {
		if f.next == nil {
			delete(s.inflight, h)
		} else {
			s.inflight[h] = f.next
		}
	} else {
		for x := head; x != nil; x = x.next {
			if x.next == f {
				x.next = f.next
				break
			}
		}
	}
	if f.done != nil {
		close(f.done)
	}
}

// storeHalfFailed wraps the store's refusal of a half.
func (s *Service) storeHalfFailed(err error) error {
	return fmt.Errorf("txn: store half message: %w", err)
}

// scanHalfProps reads UNIQ_KEY and PGROUP of a half message and refuses
// delay levels and timers (RocketMQ #1540), in one pass over the
// properties.
func scanHalfProps(props string) (uniq, group string, err error) {
	var hasUniq, hasGroup bool
	message.RangeProperties(props, func(k, v string) bool {
		switch k {
		case message.PropUniqClientMessageID:
			if !hasUniq {
				uniq, hasUniq = v, true
			}
		case message.PropProducerGroup:
			if !hasGroup {
				group, hasGroup = v, true
			}
		case message.PropDelayTimeLevel:
			if n, perr := strconv.Atoi(v); perr != nil || n > 0 {
				err = fmt.Errorf("%w: DELAY=%q", ErrDelayNotAllowed, v)
			}
		case message.PropTimerDeliverMs, message.PropTimerDelaySec, message.PropTimerDelayMs:
			err = fmt.Errorf("%w: %s=%q", ErrDelayNotAllowed, k, v)
		}
		return err == nil
	})
	if err != nil {
		return "", "", err
	}
	return uniq, group, nil
}

// dupCandidate is a half that a repeated send may name, with the state of
// its transaction as far as the service remembers it.
type dupCandidate struct {
	off   int64
	state State
}

// prepare confirms a duplicate among offs (by reading the halves) or
// appends the half. A duplicate of a transaction that is already rolled
// back (or discarded) is refused: answering with the first half's result
// would make the producer run its local transaction and commit a
// transaction the broker has already ended (the client retries a send
// whose answer was lost, and a check may have been answered meanwhile).
func (s *Service) prepare(ctx context.Context, m *message.Ext, group, uniq string, h uint64, offs []dupCandidate) (PrepareResult, error) {
	if len(offs) > 0 {
		if res, ok, err := s.repeatedHalf(offs, group, uniq); ok || err != nil {
			return res, err
		}
	}
	half := new(message.Ext)
	s.fillHalf(half, m, group, uniq, nil)
	res, err := s.store.Append(ctx, half)
	if err != nil {
		return PrepareResult{}, s.storeHalfFailed(err)
	}
	s.c.halfStored.Add(1)
	// The store hook has applied the half before Append returned. If the
	// broker did not wire it, apply it here so nothing is lost.
	if !s.hookSaw(res.CommitLogOffset) {
		s.applyMissedHalf(res, half.Properties, h, group)
	}
	return PrepareResult{Append: res, TransactionID: uniq}, nil
}

// repeatedHalf confirms a duplicate among offs by reading the halves: ok
// with the first half's result, or an error when its transaction has
// already been rolled back or discarded.
func (s *Service) repeatedHalf(offs []dupCandidate, group, uniq string) (PrepareResult, bool, error) {
	for _, c := range offs {
		off := c.off
		hi, err := s.readHalf(off)
		if err != nil || hi.uniq != uniq || hi.group != group {
			continue
		}
		if c.state == StateRolledBack || c.state == StateDiscarded {
			s.c.duplicateHalves.Add(1)
			s.log.Info("txn: repeated half send of a transaction already ended; refusing it",
				"group", group, "txid", uniq, "half_offset", off, "state", c.state)
			return PrepareResult{}, false, fmt.Errorf("%w: transaction %s is %s", ErrAlreadyEnded, uniq, c.state)
		}
		s.c.duplicateHalves.Add(1)
		s.log.Info("txn: repeated half send; answering with the first half", "group", group, "txid", uniq, "half_offset", off)
		return PrepareResult{
			Append: store.AppendResult{CommitLogOffset: off, QueueOffset: hi.v.QueueOffset(),
				Size: int32(hi.v.Len()), StoreTimestamp: hi.v.StoreTimestamp()},
			TransactionID: uniq, Duplicate: true,
		}, true, nil
	}
	return PrepareResult{}, false, nil
}

// fillHalf fills half with the half message of m, its properties built
// in buf (see halfProperties); it returns the buffer they alias.
func (s *Service) fillHalf(half, m *message.Ext, group, uniq string, buf []byte) []byte {
	props, buf := halfProperties(buf, m.Properties, m.Topic, m.QueueID, group, uniq)
	*half = message.Ext{
		Topic:          message.TransHalfTopic,
		QueueID:        0,
		Flag:           m.Flag,
		SysFlag:        m.SysFlag &^ message.FlagTransactionMask,
		BornTimestamp:  m.BornTimestamp,
		BornHost:       m.BornHost,
		StoreHost:      m.StoreHost,
		ReconsumeTimes: m.ReconsumeTimes,
		Body:           m.Body,
		Properties:     props,
	}
	if !half.StoreHost.IsValid() {
		half.StoreHost = s.cfg.StoreHost
	}
	return buf
}

// applyMissedHalf indexes a half the store hook did not see (not wired).
func (s *Service) applyMissedHalf(res store.AppendResult, props string, h uint64, group string) {
	s.mu.Lock()
	if s.pending[res.CommitLogOffset] == nil && s.applied <= res.CommitLogOffset {
		s.c.hookMisses.Add(1)
		imm := int64(0)
		if v, ok := message.Property(props, message.PropCheckImmunityTimeSeconds); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				imm = n * 1000
			}
		}
		s.insert(res.CommitLogOffset, res.StoreTimestamp, s.firstCheck(res.StoreTimestamp, imm), h, group, 0)
	}
	s.mu.Unlock()
}

// halfProperties returns the half's properties: the producer's without
// REAL_TOPIC, REAL_QID, PGROUP, __transactionId__ and TRAN_MSG, and without
// entries that have no name/value separator (appendFiltered), then PGROUP,
// __transactionId__, REAL_TOPIC, REAL_QID and TRAN_MSG appended in that
// order, built in buf (grown if it is too small; nil: one allocation). The
// order lets an END cut the committed copy's properties off the front
// without scanning (splitHalfProps). The result aliases the buffer it
// returns, which must not be written to while the result is in use.
func halfProperties(buf []byte, props, topic string, qid int32, group, uniq string) (string, []byte) {
	n := len(props) + len(message.PropRealTopic) + len(topic) + len(message.PropRealQueueID) + 11 +
		len(message.PropProducerGroup) + len(group) + len(message.PropTransactionID) + len(uniq) +
		len(message.PropTransactionPrepared) + len("true") + 10
	b := slices.Grow(buf[:0], n)
	b, _ = appendFiltered(b, props, message.PropRealTopic, message.PropRealQueueID,
		message.PropProducerGroup, message.PropTransactionID, message.PropTransactionPrepared)
	b = appendProp(b, message.PropProducerGroup, group)
	b = appendProp(b, message.PropTransactionID, uniq)
	b = appendProp(b, message.PropRealTopic, topic)
	b = append(b, message.PropRealQueueID...)
	b = append(b, message.NameValueSeparator)
	b = strconv.AppendInt(b, int64(qid), 10)
	b = append(b, message.PropertySeparator)
	b = appendProp(b, message.PropTransactionPrepared, "true")
	return unsafe.String(unsafe.SliceData(b), len(b)), b
}
