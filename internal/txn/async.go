package txn

import (
	"context"
	"errors"
	"sync"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/store"
)

// The asynchronous forms of Prepare and End, for a caller that must not
// block: the broker serves half sends and END_TRANSACTION on the
// connection's read loop with them, and answers from the store's
// completion. Each takes the common case only and returns ErrSlowPath,
// having done nothing, for everything else (a repeated or concurrent half
// of one transaction, an END without offsets, an END whose half is not
// pending, a refusal), which the synchronous form then serves.

// ErrSlowPath: the asynchronous form cannot serve this request without
// blocking or outside its common case; nothing was done, call the
// synchronous form.
var ErrSlowPath = errors.New("txn: request needs the synchronous path")

// asyncPrep is one PrepareAsync between the store's AppendAsync and its
// completion. Pooled unless a duplicate waited on its flight.
type asyncPrep struct {
	s      *Service
	f      prepFlight
	h      uint64
	group  string
	half   message.Ext
	props  []byte // holds half.Properties; reused once p is recycled
	done   func(PrepareResult, error)
	doneFn func(store.AppendResult, error) // p.completed, bound once
}

var asyncPrepPool sync.Pool // of *asyncPrep

// maxPooledProps bounds the properties buffers that pooled halves and
// END batches keep for reuse.
const maxPooledProps = 4 << 10

func getAsyncPrep() *asyncPrep {
	if p, ok := asyncPrepPool.Get().(*asyncPrep); ok {
		return p
	}
	p := new(asyncPrep)
	p.doneFn = p.completed
	return p
}

// PrepareAsync is Prepare without waiting. It serves a half whose
// (producer group, UNIQ_KEY) has no pending, recently ended or in-flight
// half: it appends the half with the store's AppendAsync and returns nil;
// done is then called exactly once, on the store's committing goroutine,
// with what Prepare would have returned, and must not block. Anything
// else returns ErrSlowPath with nothing done; a store that refuses the
// append returns Prepare's error. Either way done is never called.
// m.Body must stay unchanged until done is called (the half aliases it).
func (s *Service) PrepareAsync(ctx context.Context, m *message.Ext, producerGroup string, done func(PrepareResult, error)) error {
	if !s.cfg.Enable || s.errIfClosedFast() != nil {
		return ErrSlowPath
	}
	uniq, pgroup, err := scanHalfProps(m.Properties)
	if err != nil || uniq == "" {
		return ErrSlowPath
	}
	if producerGroup == "" {
		if producerGroup = pgroup; producerGroup == "" {
			return ErrSlowPath
		}
	}
	h := hashID(uniq)
	s.mu.Lock()
	if s.errIfClosed() != nil || s.inflight[h] != nil || s.byUniq[h] != nil {
		s.mu.Unlock()
		return ErrSlowPath
	}
	if _, ok := s.recent.byHash(h, s.nowMs()-recentTTL.Milliseconds()); ok {
		s.mu.Unlock()
		return ErrSlowPath
	}
	p := getAsyncPrep()
	p.s, p.h, p.group, p.done = s, h, producerGroup, done
	p.f = prepFlight{group: producerGroup, uniq: uniq}
	s.inflight[h] = &p.f
	s.mu.Unlock()

	p.props = s.fillHalf(&p.half, m, producerGroup, uniq, p.props)
	if err := s.store.AppendAsync(ctx, &p.half, p.doneFn); err != nil {
		// Not appended: duplicates waiting on the flight retry themselves.
		err = s.storeHalfFailed(err)
		p.finish(PrepareResult{}, err)
		return err
	}
	return nil
}

// completed is the store's completion of the half's append.
func (p *asyncPrep) completed(res store.AppendResult, err error) {
	s := p.s
	var pr PrepareResult
	if err == nil {
		s.c.halfStored.Add(1)
		if !s.hookSaw(res.CommitLogOffset) {
			s.applyMissedHalf(res, p.half.Properties, p.h, p.group)
		}
		pr = PrepareResult{Append: res, TransactionID: p.f.uniq}
	} else {
		err = s.storeHalfFailed(err)
	}
	done := p.done
	p.finish(pr, err)
	if done != nil {
		done(pr, err)
	}
}

// finish ends p's flight with its outcome and recycles p unless a
// duplicate waits on it (and will read the outcome).
func (p *asyncPrep) finish(res PrepareResult, err error) {
	s := p.s
	f := &p.f
	f.res, f.err = res, err
	s.mu.Lock()
	s.endFlightLocked(p.h, f)
	waited := f.done != nil
	s.mu.Unlock()
	if waited {
		return
	}
	fn, props := p.doneFn, p.props
	*p = asyncPrep{doneFn: fn}
	if cap(props) <= maxPooledProps {
		p.props = props[:0]
	}
	asyncPrepPool.Put(p)
}

// EndAsync is End without waiting. It serves an END by offsets
// (commitLogOffset and tranStateTableOffset) that commits or rolls back a
// pending, unclaimed transaction of the request's group whose half reads
// through its consume queue: it claims the transaction, appends the
// resolution with the store's AppendBatchAsync and returns nil; done is
// then called exactly once, on the store's committing goroutine, with what
// End would have returned, and must not block. Anything else returns
// ErrSlowPath with nothing done; a store that refuses the append returns
// End's error (the claim undone). Either way done is never called.
func (s *Service) EndAsync(ctx context.Context, req *EndRequest, done func(EndResult, error)) error {
	return s.endAsync(ctx, req, done, nil, nil)
}

// endAsync is EndAsync; with done nil, the END request creq that arrived
// on c is answered by answerEnd instead (no closure to allocate).
func (s *Service) endAsync(ctx context.Context, req *EndRequest, done func(EndResult, error), c *remoting.Conn, creq *remoting.Command) error {
	if req.Source >= numSources || !req.HasOffsets || req.TranStateTableOffset < 0 ||
		req.Resolution == ResolutionUnknown || s.errIfClosedFast() != nil {
		return ErrSlowPath
	}
	off := req.CommitLogOffset
	got, v, ok := s.halfAtQueueOffset(off, req.TranStateTableOffset)
	if !ok {
		return ErrSlowPath
	}
	s.mu.Lock()
	e := s.pending[off]
	if e == nil || e.flags&fEnding != 0 ||
		req.Source != SourceOperator && req.ProducerGroup != "" && s.groupName(e.group) != req.ProducerGroup {
		s.mu.Unlock()
		got.Release()
		return ErrSlowPath
	}
	e.flags |= fEnding
	if e.hidx >= 0 {
		s.checkQ.remove(e)
	}
	s.mu.Unlock()
	if req.FromCheck {
		s.c.answers[req.Resolution].Add(1)
	}
	b := getEndBatch()
	s.buildEnd(b, req, off, v)
	b.s, b.req, b.e, b.got, b.done, b.conn, b.creq = s, *req, e, got, done, c, creq
	if err := s.store.AppendBatchAsync(ctx, b.list[:b.n], b.res[:b.n], b.doneFn); err != nil {
		err = s.appendFailed(e, b.st.op(), off, err)
		got.Release()
		b.put()
		return err
	}
	return nil
}

// completed is the store's completion of an asynchronous END's append.
func (b *endBatch) completed(err error) {
	s, e := b.s, b.e
	var res EndResult
	if err != nil {
		err = s.appendFailed(e, b.st.op(), e.off, err)
	} else {
		res = s.ended(context.Background(), &b.req, e, b.st, b.uniq, b.res[:b.n])
	}
	done, c, creq := b.done, b.conn, b.creq
	b.got.Release()
	b.put()
	switch {
	case done != nil:
		done(res, err)
	case c != nil:
		s.answerEnd(c, creq, res, err)
	}
}
