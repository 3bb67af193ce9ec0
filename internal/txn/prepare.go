package txn

import (
	"context"
	"errors"
	"fmt"
	"strconv"

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
type prepFlight struct {
	group, uniq string
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
	if err := checkNoDelay(m.Properties); err != nil {
		return PrepareResult{}, err
	}
	uniq, _ := message.Property(m.Properties, message.PropUniqClientMessageID)
	if uniq == "" {
		return PrepareResult{}, ErrNoUniqKey
	}
	if producerGroup == "" {
		producerGroup, _ = message.Property(m.Properties, message.PropProducerGroup)
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
		for _, f := range s.inflight[h] {
			if f.group == producerGroup && f.uniq == uniq {
				wait = f
				break
			}
		}
		if wait != nil {
			s.mu.Unlock()
			select {
			case <-wait.done:
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
		for _, e := range s.candidates(h) {
			if s.groupName(e.group) == producerGroup {
				offs = append(offs, dupCandidate{off: e.off, state: StatePrepared})
			}
		}
		if r, ok := s.recent.byHash(h, s.nowMs()-recentTTL.Milliseconds()); ok && s.groupName(r.group) == producerGroup {
			offs = append(offs, dupCandidate{off: r.off, state: r.state})
		}
		f := &prepFlight{group: producerGroup, uniq: uniq, done: make(chan struct{})}
		s.inflight[h] = append(s.inflight[h], f)
		s.mu.Unlock()

		f.res, f.err = s.prepare(ctx, m, producerGroup, uniq, h, offs)

		s.mu.Lock()
		list := s.inflight[h]
		for i, x := range list {
			if x == f {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.inflight, h)
		} else {
			s.inflight[h] = list
		}
		s.mu.Unlock()
		close(f.done)
		return f.res, f.err
	}
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
			return PrepareResult{}, fmt.Errorf("%w: transaction %s is %s", ErrAlreadyEnded, uniq, c.state)
		}
		s.c.duplicateHalves.Add(1)
		s.log.Info("txn: repeated half send; answering with the first half", "group", group, "txid", uniq, "half_offset", off)
		return PrepareResult{
			Append: store.AppendResult{CommitLogOffset: off, QueueOffset: hi.v.QueueOffset(),
				Size: int32(hi.v.Len()), StoreTimestamp: hi.v.StoreTimestamp()},
			TransactionID: uniq, Duplicate: true,
		}, nil
	}
	half := &message.Ext{
		Topic:          message.TransHalfTopic,
		QueueID:        0,
		Flag:           m.Flag,
		SysFlag:        m.SysFlag &^ message.FlagTransactionMask,
		BornTimestamp:  m.BornTimestamp,
		BornHost:       m.BornHost,
		StoreHost:      m.StoreHost,
		ReconsumeTimes: m.ReconsumeTimes,
		Body:           m.Body,
	}
	if !half.StoreHost.IsValid() {
		half.StoreHost = s.cfg.StoreHost
	}
	p := message.RemoveProperties(m.Properties, message.PropRealTopic, message.PropRealQueueID,
		message.PropProducerGroup, message.PropTransactionID, message.PropTransactionPrepared)
	p = message.AppendProperty(p, message.PropRealTopic, m.Topic)
	p = message.AppendProperty(p, message.PropRealQueueID, strconv.Itoa(int(m.QueueID)))
	p = message.AppendProperty(p, message.PropProducerGroup, group)
	p = message.AppendProperty(p, message.PropTransactionID, uniq)
	p = message.AppendProperty(p, message.PropTransactionPrepared, "true")
	half.Properties = p
	res, err := s.store.Append(ctx, half)
	if err != nil {
		return PrepareResult{}, fmt.Errorf("txn: store half message: %w", err)
	}
	s.c.halfStored.Add(1)
	// The store hook has applied the half before Append returned. If the
	// broker did not wire it, apply it here so nothing is lost.
	if s.hookSaw(res.CommitLogOffset) {
		return PrepareResult{Append: res, TransactionID: uniq}, nil
	}
	s.mu.Lock()
	if s.pending[res.CommitLogOffset] == nil && s.applied <= res.CommitLogOffset {
		s.c.hookMisses.Add(1)
		imm := int64(0)
		if v, ok := message.Property(p, message.PropCheckImmunityTimeSeconds); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
				imm = n * 1000
			}
		}
		s.insert(res.CommitLogOffset, res.StoreTimestamp, s.firstCheck(res.StoreTimestamp, imm), h, group, 0)
	}
	s.mu.Unlock()
	return PrepareResult{Append: res, TransactionID: uniq}, nil
}

// checkNoDelay refuses delay levels and timers (RocketMQ #1540).
func checkNoDelay(props string) error {
	var err error
	message.RangeProperties(props, func(k, v string) bool {
		switch k {
		case message.PropDelayTimeLevel:
			if n, perr := strconv.Atoi(v); perr != nil || n > 0 {
				err = fmt.Errorf("%w: DELAY=%q", ErrDelayNotAllowed, v)
			}
		case message.PropTimerDeliverMs, message.PropTimerDelaySec, message.PropTimerDelayMs:
			err = fmt.Errorf("%w: %s=%q", ErrDelayNotAllowed, k, v)
		}
		return err == nil
	})
	return err
}
