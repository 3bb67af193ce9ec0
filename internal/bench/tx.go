package bench

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
)

// Transaction states in the tracking ring.
const (
	txNone uint32 = iota
	txPending
	txCommitted
	txRolledBack
	txUnknown
	txDelivered
)

const txRingBits = 19 // 524,288 transactions tracked at once

type txEntry struct {
	seq      atomic.Uint64 // seq+1; 0 = empty
	commitNs atomic.Int64
	state    atomic.Uint32
}

type unknownTx struct {
	seq    uint64
	leftNs int64
}

// txState counts transactions and tracks each one by sequence number in
// a ring, so the consumer can tell committed from rolled-back deliveries
// and measure commit-to-delivery latency.
type txState struct {
	ring []txEntry

	mu      sync.Mutex
	unknown map[string]unknownTx // by transaction id, until checked

	halfAcked, committed, rolledBack, leftUnknown     atomic.Int64
	checkCommitted, checkRolledBack, unexpectedChecks atomic.Int64
	endErrors, checkEndErrors                         atomic.Int64
	delivered, duplicates, rolledBackDelivered        atomic.Int64
	deliveredEarly, untracked                         atomic.Int64
	checking                                          atomic.Int64 // check answers in flight
	checkLat                                          Recorder
}

func newTxState() *txState {
	return &txState{ring: make([]txEntry, 1<<txRingBits), unknown: map[string]unknownTx{}}
}

func (s *txState) entry(seq uint64) *txEntry { return &s.ring[seq&(1<<txRingBits-1)] }

func (s *txState) committedTotal() int64 { return s.committed.Load() + s.checkCommitted.Load() }

// settled reports whether no transaction waits for a check answer.
func (s *txState) settled() bool {
	if s.checking.Load() != 0 {
		return false
	}
	return s.unknownLen() == 0 && s.checking.Load() == 0
}

func (s *txState) unknownLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.unknown)
}

// deliver accounts for a delivered message of transaction seq.
func (s *txState) deliver(seq uint64, now int64, e2e *Recorder) {
	e := s.entry(seq)
	if e.seq.Load() != seq+1 {
		s.untracked.Add(1)
		return
	}
	for {
		switch st := e.state.Load(); st {
		case txCommitted:
			if !e.state.CompareAndSwap(st, txDelivered) {
				continue
			}
			s.delivered.Add(1)
			e2e.Record(time.Duration(now - e.commitNs.Load()))
		case txDelivered:
			s.duplicates.Add(1)
		case txRolledBack:
			s.rolledBackDelivered.Add(1)
		default:
			s.deliveredEarly.Add(1)
		}
		return
	}
}

// decide draws a transaction's outcome from its sequence number.
func (r *runner) decide(seq uint64) uint32 {
	x := seq + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	u := float64(x>>11) / (1 << 53)
	switch {
	case u < r.cfg.CommitRatio:
		return txCommitted
	case u < r.cfg.CommitRatio+r.cfg.RollbackRatio:
		return txRolledBack
	default:
		return txUnknown
	}
}

// txWorker runs transactions one after another: half, local step, end.
func (r *runner) txWorker(ctx context.Context, s *sendSlot, i int) {
	cfg := &r.cfg
	s.req.SetExt("a", cfg.Group)
	s.req.SetExt("f", strconv.Itoa(int(message.FlagTransPrepared)))
	endExt := map[string]string{
		"producerGroup": cfg.Group, "fromTransactionCheck": "false",
	}
	end := remoting.NewRequest(remoting.ReqEndTransaction, endExt)
	if cfg.Binary {
		end.SerializeType = remoting.SerializeRocketMQ
	}
	var immunity string
	if cfg.CheckImmunity > 0 {
		immunity = strconv.Itoa(cfg.CheckImmunity)
	}
	var p pacer
	for {
		seq, _, t0, ok := r.claim(ctx, &p, true, 1)
		if !ok {
			return
		}
		r.sent.Add(1)
		t := r.pick(seq)
		c, err := t.b.get(ctx, i)
		if err != nil {
			r.complete(1, nil, err, t0)
			pause(ctx)
			continue
		}
		// Half message.
		s.build(t, seq, 1, t0)
		p := s.props
		p = appendProp(p, message.PropTransactionPrepared, "true")
		p = appendProp(p, message.PropProducerGroup, cfg.Group)
		if immunity != "" {
			p = appendProp(p, message.PropCheckImmunityTimeSeconds, immunity)
		}
		s.props = p
		s.req.SetExt("i", string(p))
		s.st.begin(c)
		resp, err := c.Invoke(context.Background(), s.req)
		s.st.end()
		if err != nil || resp.Code != remoting.RespSuccess {
			r.complete(1, resp, err, t0)
			continue
		}
		r.acked.Add(1)
		tx := r.tx
		tx.halfAcked.Add(1)
		msgID, _ := resp.Ext("msgId")
		_, clOff, perr := message.ParseOffsetMessageID(msgID)
		txID, _ := resp.Ext("transactionId")
		qoff, _ := resp.Ext("queueOffset")
		resp.Release() // the strings above stay valid
		if perr != nil {
			r.noteErr("half answer without an offset message id: "+perr.Error(), 0)
			tx.endErrors.Add(1)
			continue
		}
		e := tx.entry(uint64(seq))
		e.state.Store(txPending)
		e.seq.Store(uint64(seq) + 1)

		// Local step.
		if cfg.LocalDelay > 0 {
			time.Sleep(cfg.LocalDelay)
		}
		outcome := r.decide(uint64(seq))
		if outcome == txUnknown {
			// A check that came before this point has answered already
			// (handleCheck knows the outcome from the sequence number).
			tx.mu.Lock()
			if e.state.CompareAndSwap(txPending, txUnknown) {
				tx.unknown[txID] = unknownTx{seq: uint64(seq), leftNs: time.Now().UnixNano()}
			}
			tx.mu.Unlock()
			tx.leftUnknown.Add(1)
			r.lat.Record(time.Duration(time.Now().UnixNano() - t0))
			continue
		}
		end.SetExt("tranStateTableOffset", qoff)
		end.SetExt("commitLogOffset", strconv.FormatInt(clOff, 10))
		end.SetExt("msgId", txID)
		end.SetExt("transactionId", txID)
		if outcome == txCommitted {
			end.SetExt("commitOrRollback", "8")
			e.commitNs.Store(time.Now().UnixNano())
		} else {
			end.SetExt("commitOrRollback", "12")
		}
		e.state.Store(outcome)
		end.Opaque, end.Flag = 0, 0
		var eresp *remoting.Command
		if cfg.EndSync {
			s.st.begin(c)
			eresp, err = c.Invoke(context.Background(), end)
			s.st.end()
		} else {
			// The frame is encoded before InvokeOneway returns: end and
			// endExt may be reused at once.
			err = c.InvokeOneway(end)
		}
		if err != nil || cfg.EndSync && eresp.Code != remoting.RespSuccess {
			// The broker still holds the half: it will check it, and
			// the check is answered with this outcome.
			tx.endErrors.Add(1)
			r.noteErr("end: "+classify(eresp, err), 0)
			tx.mu.Lock()
			e.state.Store(txUnknown)
			tx.unknown[txID] = unknownTx{seq: uint64(seq), leftNs: time.Now().UnixNano()}
			tx.mu.Unlock()
			tx.leftUnknown.Add(1)
			continue
		}
		if outcome == txCommitted {
			tx.committed.Add(1)
		} else {
			tx.rolledBack.Add(1)
		}
		r.lat.Record(time.Duration(time.Now().UnixNano() - t0))
	}
}

// handleCheck answers CHECK_TRANSACTION_STATE with END_TRANSACTION
// (fromTransactionCheck=true) on the connection the check came on.
func (r *runner) handleCheck(ctx context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	tx := r.tx
	// Counted before the unknown entry goes, until the END's answer is
	// accounted for: the drain waits for it.
	tx.checking.Add(1)
	txID := req.ExtStringOr("transactionId", "")
	if txID == "" {
		txID = req.ExtStringOr("msgId", "")
	}
	now := time.Now().UnixNano()
	// The half's body carries the run's sequence number, and the outcome
	// of a transaction follows from it: a check of a transaction left
	// unknown is expected even if it overtook the worker.
	seq, stamped := uint64(0), false
	if v, err := message.Parse(req.Body); err == nil {
		seq, _, stamped = readStamp(v.Body())
	}
	tx.mu.Lock()
	u, found := tx.unknown[txID]
	delete(tx.unknown, txID)
	var e *txEntry
	switch {
	case found:
		e = tx.entry(u.seq)
	case stamped && r.decide(seq) == txUnknown:
		if x := tx.entry(seq); x.seq.Load() == seq+1 && x.state.Load() == txPending {
			e, found = x, true
			u = unknownTx{seq: seq, leftNs: now}
		}
	}
	answer := "0"
	if found {
		tx.checkLat.Record(time.Duration(now - u.leftNs))
		if r.cfg.CheckAnswer == "commit" {
			answer = "8"
			e.commitNs.Store(now)
			e.state.Store(txCommitted)
		} else {
			answer = "12"
			e.state.Store(txRolledBack)
		}
	}
	tx.mu.Unlock()
	if !found {
		// Not left unknown by this run: answer what the run did.
		tx.unexpectedChecks.Add(1)
		if stamped {
			if x := tx.entry(seq); x.seq.Load() == seq+1 {
				switch x.state.Load() {
				case txCommitted, txDelivered:
					answer = "8"
				case txRolledBack:
					answer = "12"
				}
			}
		}
	}
	end := remoting.NewRequest(remoting.ReqEndTransaction, map[string]string{
		"producerGroup":        r.cfg.Group,
		"tranStateTableOffset": req.ExtStringOr("tranStateTableOffset", "0"),
		"commitLogOffset":      req.ExtStringOr("commitLogOffset", "0"),
		"commitOrRollback":     answer,
		"fromTransactionCheck": "true",
		"msgId":                req.ExtStringOr("msgId", txID),
		"transactionId":        txID,
	})
	// The answer goes out without holding this handler's slot for its
	// round trip: a burst of checks (up to the broker's check window, 1024
	// by default) must not take every slot of the connection while each
	// waits for its END's response, which the paused read loop would then
	// never read. The official clients send this END oneway.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Timeout)
	err := c.InvokeAsync(cctx, end, func(resp *remoting.Command, err error) {
		cancel()
		r.checkAnswered(e, u, txID, answer, found, resp, err)
		tx.checking.Add(-1)
	})
	if err != nil {
		cancel()
		r.checkAnswered(e, u, txID, answer, found, nil, err)
		tx.checking.Add(-1)
	}
	return nil, nil
}

// checkAnswered accounts for the END answering a check: on failure the
// transaction is unknown again (the broker checks it again).
func (r *runner) checkAnswered(e *txEntry, u unknownTx, txID, answer string, found bool, resp *remoting.Command, err error) {
	tx := r.tx
	if err != nil || resp.Code != remoting.RespSuccess {
		tx.checkEndErrors.Add(1)
		r.noteErr("check answer: "+classify(resp, err), 0)
		if found { // the broker checks again; answer then
			tx.mu.Lock()
			e.state.Store(txUnknown)
			tx.unknown[txID] = u
			tx.mu.Unlock()
		}
		return
	}
	if found {
		if answer == "8" {
			tx.checkCommitted.Add(1)
		} else {
			tx.checkRolledBack.Add(1)
		}
	}
}
