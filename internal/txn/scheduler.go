package txn

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
)

// schedulerLoop sleeps until the earliest due check (or discard), runs the
// due entries in bounded batches, and sleeps again. Between checks it costs
// nothing, however many transactions are pending.
func (s *Service) schedulerLoop(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		wait := s.runDue(ctx)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// retentionAge is the age at which a pending half is discarded because
// retention is about to remove it: FileReservedTime less an eighth.
func (s *Service) retentionAge() int64 {
	if s.cfg.FileReservedTime <= 0 {
		return -1
	}
	return (s.cfg.FileReservedTime - s.cfg.FileReservedTime/8).Milliseconds()
}

// work is one due entry taken by a scheduler round.
type work struct {
	e      *entry
	checks int // e.checks when taken (the entry's count is read under mu only)
	group  string
	reason string // discard reason, "" to check
	hi     halfInfo
	sent   bool
	retry  bool
	park   bool
	gone   bool // the half is unreadable (retention removed it)
}

// runDue processes everything due now and returns how long to sleep.
func (s *Service) runDue(ctx context.Context) time.Duration {
	for {
		batch, wait := s.takeDue()
		if len(batch) == 0 {
			return wait
		}
		s.process(ctx, batch)
		if ctx.Err() != nil {
			return time.Hour
		}
	}
}

// takeDue takes up to checkBatch due entries off the heaps.
func (s *Service) takeDue() ([]*work, time.Duration) {
	now := s.nowMs()
	retAge := s.retentionAge()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live || s.closed {
		return nil, time.Hour
	}
	var batch []*work
	// Retention first: halves about to be removed are discarded.
	if retAge >= 0 {
		for len(batch) < checkBatch {
			e := s.ageQ.peek()
			if e == nil || e.stored+retAge > now || e.flags&(fEnding|fChecking) != 0 {
				break
			}
			// Keep it out of both heaps (and the window) while it is
			// worked on.
			s.ageQ.remove(e)
			if e.hidx >= 0 {
				s.checkQ.remove(e)
			}
			e.flags = e.flags&^(fParked|fWaiting) | fChecking
			batch = append(batch, &work{e: e, checks: int(e.checks), group: s.groupName(e.group), reason: "retention"})
		}
	}
	window := s.cfg.CheckWindow > 0
	for moved := 0; len(batch) < checkBatch && moved < windowMoves; moved++ {
		e := s.checkQ.peek()
		if e == nil || e.next > now {
			break
		}
		s.checkQ.remove(e)
		s.endOutstandingLocked(e) // its last check's interval has passed
		discard := int(e.checks) >= s.cfg.CheckMax
		if window && !discard {
			// Checks go through the group's window, in the order due.
			e.flags |= fWaiting
			s.windowQ[e.group] = append(s.windowQ[e.group], e)
			continue
		}
		e.flags |= fChecking
		w := &work{e: e, checks: int(e.checks), group: s.groupName(e.group)}
		if discard {
			w.reason = "checks"
		}
		batch = append(batch, w)
	}
	if window && len(s.windowQ) > 0 {
		batch = s.takeWindowLocked(batch, checkBatch)
	}
	s.windowGaugesLocked()
	s.gaugesLocked()
	wait := time.Hour
	if e := s.checkQ.peek(); e != nil {
		wait = time.Duration(e.next-now) * time.Millisecond
	}
	if e := s.ageQ.peek(); e != nil && retAge >= 0 {
		if d := time.Duration(e.stored+retAge-now) * time.Millisecond; d < wait {
			wait = d
		}
	}
	if wait < time.Millisecond {
		wait = time.Millisecond
	}
	if len(batch) == 0 {
		// The scheduler sleeps until then (or until kicked): insert
		// kicks it for entries due earlier.
		s.wakeAt = now + wait.Milliseconds()
	} else {
		// It comes back to takeDue before it sleeps, and sees what was
		// inserted meanwhile: no kick needed.
		s.wakeAt = math.MinInt64
	}
	return batch, wait
}

// process sends the checks of a batch, records them with one op record,
// and discards what must be discarded with one batch append.
func (s *Service) process(ctx context.Context, batch []*work) {
	epoch := s.regEpoch.Load()
	var discards, checks []*work
	for _, w := range batch {
		hi, err := s.readHalf(w.e.off)
		if err != nil {
			w.gone = true
			w.reason = "removed"
			s.log.Error("txn: half message unreadable; discarding the transaction", "half_offset", w.e.off, "err", err)
			discards = append(discards, w)
			continue
		}
		w.hi = hi
		if w.reason != "" {
			discards = append(discards, w)
		} else {
			checks = append(checks, w)
		}
	}
	// Checks: one producer connection each, rotating; none online parks
	// the group without spending a check. A connection whose outbound
	// queue is full (its producer does not read) is not waited for: this
	// goroutine serves every group, and one stalled producer must not
	// hold up the checks of the others. Its checks are retried later.
	var body []byte
	noProducer := map[string]bool{}
	var backedUp map[*remoting.Conn]bool
	for _, w := range checks {
		if noProducer[w.group] {
			w.park = true
			continue
		}
		var conn *remoting.Conn
		if s.producers != nil {
			conn = s.producers.PickProducer(w.group)
		}
		if conn == nil {
			noProducer[w.group] = true
			w.park = true
			continue
		}
		if s.isEnding(w.e) {
			continue
		}
		if backedUp[conn] {
			w.retry = true
			s.c.checksDeferred.Add(1)
			continue
		}
		if err := conn.TryInvokeOneway(s.checkRequest(w.e.off, w.hi)); err != nil {
			w.retry = true
			if errors.Is(err, remoting.ErrWriteQueueFull) {
				if backedUp == nil {
					backedUp = map[*remoting.Conn]bool{}
				}
				backedUp[conn] = true
				s.c.checksDeferred.Add(1)
				s.noteBackedUp(conn)
				continue
			}
			s.log.Debug("txn: check not sent; retrying", "half_offset", w.e.off, "conn", conn.String(), "err", err)
			continue
		}
		w.sent = true
		s.c.checksSent.Add(1)
		body = appendOpEnt(body, w.e.off, w.checks+1, true)
	}
	if len(body) > 0 {
		if _, err := s.store.Append(ctx, s.opRecord(opChecks, body)); err != nil {
			s.log.Warn("txn: could not record checks sent", "err", err)
		}
	}
	s.discard(ctx, discards)

	now := s.nowMs()
	interval := s.cfg.CheckInterval.Milliseconds()
	s.mu.Lock()
	for _, w := range batch {
		e := w.e
		e.flags &^= fChecking
		if s.pending[e.off] != e {
			continue
		}
		if e.aidx < 0 {
			s.ageQ.push(e)
		}
		if w.sent && int(e.checks) < w.checks+1 {
			e.checks = uint16(min(w.checks+1, 65535))
		}
		if !w.sent {
			s.endOutstandingLocked(e) // its window slot was reserved for nothing
		}
		if e.flags&fEnding != 0 {
			continue // an END (or a failed discard) owns it
		}
		switch {
		case w.sent:
			e.next = now + interval
		case w.retry:
			e.next = now + retryDelay.Milliseconds()
		case w.park && s.regEpoch.Load() == epoch:
			e.flags |= fParked
			s.parked[e.group] = append(s.parked[e.group], e)
			continue
		case w.park: // a producer registered meanwhile: try again at once
			e.next = now
		default:
			if e.next < now {
				e.next = now
			}
		}
		s.checkQ.push(e)
	}
	s.gaugesLocked()
	s.mu.Unlock()
}

// backedUpLogEvery spaces the warnings about backed-up producer connections.
const backedUpLogEvery = 30 * time.Second

// noteBackedUp warns that a producer connection did not take a check, at
// most once per backedUpLogEvery for the scheduler as a whole (it runs on
// the scheduler's goroutine only).
func (s *Service) noteBackedUp(conn *remoting.Conn) {
	now := time.Now()
	if now.Sub(s.backedUpLogged) < backedUpLogEvery {
		return
	}
	s.backedUpLogged = now
	s.log.Warn("txn: producer connection is not reading; its checks are deferred and retried (repeats at most every 30s)",
		"conn", conn.String(), "deferred_total", s.c.checksDeferred.Load())
}

func (s *Service) isEnding(e *entry) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return e.flags&fEnding != 0 || s.pending[e.off] != e
}

// checkRequest builds CHECK_TRANSACTION_STATE for the half at off: the
// header G2 and Java read, and the half re-encoded under its real topic
// and queue (properties keep PGROUP, UNIQ_KEY and __transactionId__).
func (s *Service) checkRequest(off int64, hi halfInfo) *remoting.Command {
	m := hi.v.Ext()
	m.Topic = hi.realTopic
	m.QueueID = hi.realQID
	host := s.cfg.StoreHost
	if !host.IsValid() {
		host = m.StoreHost
	}
	ext := map[string]string{
		"tranStateTableOffset": strconv.FormatInt(hi.v.QueueOffset(), 10),
		"commitLogOffset":      strconv.FormatInt(off, 10),
		"msgId":                hi.uniq,
		"transactionId":        hi.txID,
		"offsetMsgId":          message.OffsetMessageID(host, off),
		"topic":                hi.realTopic,
		"bname":                s.cfg.BrokerName,
	}
	req := remoting.NewRequest(remoting.ReqCheckTransactionState, ext)
	req.Body = m.AppendTo(nil)
	return req
}

// discard moves entries to DISCARDED: claims them, then appends a copy of
// each half to TRANS_CHECK_MAX_TIME_TOPIC and one op x, in one batch.
func (s *Service) discard(ctx context.Context, ws []*work) {
	if len(ws) == 0 {
		return
	}
	s.mu.Lock()
	var claimed []*work
	for _, w := range ws {
		if w.e.flags&fEnding != 0 || s.pending[w.e.off] != w.e {
			continue
		}
		w.e.flags |= fEnding
		claimed = append(claimed, w)
	}
	s.mu.Unlock()
	if len(claimed) == 0 {
		return
	}
	var body []byte
	recs := make([]*message.Ext, 0, len(claimed)+1)
	for _, w := range claimed {
		body = appendOpEnt(body, w.e.off, w.checks, true)
		if w.gone {
			continue
		}
		m := w.hi.v.Ext()
		m.Topic = message.TransCheckMaxTimeTopic
		m.QueueID = 0
		m.QueueOffset, m.CommitLogOffset, m.StoreTimestamp = 0, 0, 0
		m.Properties = message.SetProperty(m.Properties, PropHalfOffset, strconv.FormatInt(w.e.off, 10))
		m.Properties = message.SetProperty(m.Properties, PropDiscardReason, w.reason)
		m.Properties = message.SetProperty(m.Properties, PropChecks, strconv.Itoa(w.checks))
		m.Properties = message.SetProperty(m.Properties, PropHalfStore, strconv.FormatInt(w.hi.v.StoreTimestamp(), 10))
		recs = append(recs, m)
	}
	recs = append(recs, s.opRecord(opDiscard, body, PropOpSource, SourceCheck.String()))
	_, err := s.store.AppendBatch(ctx, recs)
	s.mu.Lock()
	for _, w := range claimed {
		e := w.e
		if s.pending[e.off] != e {
			continue // the hook resolved it
		}
		if err != nil {
			e.flags &^= fEnding
			e.next = s.nowMs() + retryDelay.Milliseconds()
			continue
		}
		s.c.hookMisses.Add(1)
		s.resolve(e, StateDiscarded, s.nowMs())
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("txn: could not store discarded transactions; will retry", "count", len(claimed), "err", err)
		return
	}
	for _, w := range claimed {
		s.c.discarded.Add(1)
		s.log.Warn("txn: transaction discarded to "+message.TransCheckMaxTimeTopic,
			"half_offset", w.e.off, "txid", w.hi.uniq, "group", w.group, "topic", w.hi.realTopic,
			"checks", w.checks, "reason", w.reason)
	}
}
