package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/txmq/txmq/internal/fsutil"
	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store/consumequeue"
)

// AppendResult is where an appended message went.
type AppendResult struct {
	CommitLogOffset int64 // PHYSICALOFFSET: position of the record
	QueueOffset     int64 // logical offset in its consume queue
	Size            int32 // record size in bytes
	StoreTimestamp  int64 // broker clock, ms
}

// appendReq is one Append or AppendBatch (or, with ctl set, a barrier the
// writer runs in order). Requests and their done channels are pooled.
type appendReq struct {
	msgs   []*message.Ext
	one    [1]*message.Ext
	res    []AppendResult
	oneRes [1]AppendResult
	err    error
	ctl    func() // barrier: run on the writer once everything before it completed
	// cb, when set (AppendAsync), is called instead of signalling done; the
	// request goes back to the pool first.
	cb func(AppendResult, error)
	// bcb, when set (AppendBatchAsync), is likewise called instead of
	// signalling done; res is the caller's.
	bcb  func(error)
	done chan struct{}
}

var reqPool = sync.Pool{New: func() any { return &appendReq{done: make(chan struct{}, 1)} }}

func getReq() *appendReq { return reqPool.Get().(*appendReq) }

func putReq(r *appendReq) {
	if cap(r.res) > 1024 { // do not keep huge AppendBatch slices
		r.res = nil
	}
	r.msgs, r.err, r.ctl, r.cb, r.bcb = nil, nil, nil, nil, nil
	r.one[0] = nil
	reqPool.Put(r)
}

func (r *appendReq) complete(err error) {
	if cb := r.cb; cb != nil {
		res := r.oneRes[0]
		putReq(r)
		cb(res, err)
		return
	}
	if bcb := r.bcb; bcb != nil {
		r.res = nil // the caller's
		putReq(r)
		bcb(err)
		return
	}
	r.err = err
	r.done <- struct{}{}
}

// batch is one group-commit unit: the encoded records of several requests,
// written with one pwrite per segment touched.
type batch struct {
	buf    []byte
	chunks []chunk
	reqs   []*appendReq
	recs   []dispatchRec
	qss    []*queueState // scratch for fill
	start  int64         // commit-log offset of buf[0]
	end    int64         // commit-log offset after the last byte
	err    error
}

// chunk is the part of a batch that lands in one segment.
type chunk struct {
	seg     *segment
	fileOff int64 // where buf[lo] goes in the segment file
	lo, hi  int   // buf[lo:hi]
}

// dispatchRec is what dispatch needs of one record. m is the caller's
// message, stable until its request completes.
type dispatchRec struct {
	m    *message.Ext
	qs   *queueState
	pos  int // where the record starts in the batch's buf
	size int32
}

func (b *batch) reset() {
	b.buf = b.buf[:0]
	b.chunks = b.chunks[:0]
	clear(b.reqs)
	b.reqs = b.reqs[:0]
	clear(b.recs)
	b.recs = b.recs[:0]
	clear(b.qss)
	b.qss = b.qss[:0]
	b.err = nil
	if cap(b.buf) > 4*maxBatchBytes { // one huge AppendBatch: do not keep it
		b.buf = nil
	}
}

// queueKey names a consume queue.
type queueKey struct {
	topic string
	qid   int32
}

// queueState is the writer's view of one queue: the next offset to
// assign and the queue dispatch puts into. Owned by the writer goroutine;
// q is read by the committer for records the writer handed it.
type queueState struct {
	key  queueKey
	next int64
	q    *consumequeue.Queue
}

// writerState is owned by the writer goroutine (and by Open before it
// starts).
type writerState struct {
	active *segment // segment being written
	wpos   int64    // commit-log offset of the next byte to write
	lastTS int64    // last store timestamp given (kept monotonic)
	queues map[queueKey]*queueState
}

// send hands r to the writer. ctx bounds only the wait for room in the
// queue: once sent, the request is carried out and completed.
func (s *Store) send(ctx context.Context, r *appendReq) error {
	s.sendMu.RLock()
	defer s.sendMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.reqCh <- r:
		return nil
	default:
	}
	select {
	case s.reqCh <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLoop is the single writer. It takes requests, assigns offsets and
// encodes them into the batch being filled, and hands that batch to the
// committer as soon as the committer is free: while the committer writes,
// fsyncs and dispatches batch N, batch N+1 collects every append that
// arrives (group commit without a timer).
func (s *Store) writeLoop() {
	defer close(s.syncCh)
	var cur *batch // being filled; nil when empty
	for {
		if cur == nil {
			r, ok := <-s.reqCh
			if !ok {
				return
			}
			if r.ctl != nil {
				s.runBarrier(r)
				continue
			}
			cur = <-s.freeBatches
			s.fill(cur, r)
			if len(s.reqCh) == 0 {
				// Appenders completed a moment ago are likely runnable but
				// not yet scheduled: let them queue their next request so
				// it joins this batch.
				runtime.Gosched()
			}
		}
		// Take what is queued, within the batch bounds.
		full := false
	drain:
		for !full {
			select {
			case r, ok := <-s.reqCh:
				if !ok || r.ctl != nil {
					s.handOff(cur)
					cur = nil
					if !ok {
						return
					}
					s.runBarrier(r)
					break drain // cur is gone: start a new batch
				}
				s.fill(cur, r)
				full = len(cur.buf) >= maxBatchBytes || len(cur.reqs) >= maxBatchReqs
			default:
				break drain
			}
		}
		if cur == nil {
			continue
		}
		if full || len(cur.reqs) == 0 {
			s.handOff(cur)
			cur = nil
			continue
		}
		// Hand the batch over when the committer is free; until then keep
		// adding appends to it.
		select {
		case s.syncCh <- cur:
			cur = nil
		case r, ok := <-s.reqCh:
			if !ok || r.ctl != nil {
				s.handOff(cur)
				cur = nil
				if !ok {
					return
				}
				s.runBarrier(r)
				continue
			}
			s.fill(cur, r)
		}
	}
}

// handOff gives b to the committer (an empty batch goes straight back).
func (s *Store) handOff(b *batch) {
	if len(b.reqs) == 0 {
		b.reset()
		s.freeBatches <- b
		return
	}
	s.syncCh <- b
}

// runBarrier waits until every batch is back from the committer (so
// everything queued before r completed), then runs r.ctl on the writer
// goroutine.
func (s *Store) runBarrier(r *appendReq) {
	for i := 0; i < numBatchBufs; i++ {
		<-s.freeBatches
	}
	r.ctl()
	for i := 0; i < numBatchBufs; i++ {
		s.freeBatches <- s.batches[i]
	}
	r.complete(nil)
}

// fill adds request r to batch b: assigns offsets and encodes its messages
// straight into b.buf. On an error r is completed at once and nothing of
// it stays in b.
func (s *Store) fill(b *batch, r *appendReq) {
	if werr := s.sticky.Load(); werr != nil {
		r.complete(werr)
		return
	}
	w := &s.w
	// Pass 1: resolve every queue first, so that a failure changes nothing.
	qss := b.qss[:0]
	for _, m := range r.msgs {
		qs := w.queues[queueKey{m.Topic, m.QueueID}]
		if qs == nil {
			var err error
			if qs, err = s.queueStateFor(m.Topic, m.QueueID); err != nil {
				b.qss = qss
				r.complete(err)
				return
			}
		}
		qss = append(qss, qs)
	}
	b.qss = qss
	if len(b.reqs) == 0 && len(b.chunks) == 0 {
		b.start, b.end = w.wpos, w.wpos
	}
	now := s.cfg.Now().UnixMilli()
	if now < w.lastTS {
		now = w.lastTS
	}
	w.lastTS = now
	buf0, chunks0, recs0 := len(b.buf), len(b.chunks), len(b.recs)
	// Pass 2: assign offsets and encode.
	for i, m := range r.msgs {
		qs := qss[i]
		n := m.EncodedLen()
		segEnd := w.active.start + s.cfg.SegmentSize
		if w.wpos+int64(n)+blankMinLen > segEnd {
			if rem := segEnd - w.wpos; rem > 0 {
				s.chunkFor(b, w.active)
				p := len(b.buf)
				b.buf = append(b.buf, 0, 0, 0, 0, 0, 0, 0, 0)
				binary.BigEndian.PutUint32(b.buf[p:], uint32(rem))
				magic := message.MagicBlank
				binary.BigEndian.PutUint32(b.buf[p+4:], uint32(magic))
				b.chunks[len(b.chunks)-1].hi = len(b.buf)
			}
			if err := s.roll(segEnd); err != nil {
				// Sticky now: nothing is written any more, so the queue
				// offsets this request consumed are never seen.
				b.buf = b.buf[:buf0]
				b.chunks = b.chunks[:chunks0]
				if k := len(b.chunks); k > 0 {
					b.chunks[k-1].hi = buf0
				}
				clear(b.recs[recs0:])
				b.recs = b.recs[:recs0]
				r.complete(err)
				return
			}
			w.wpos = segEnd
		}
		m.CommitLogOffset = w.wpos
		m.QueueOffset = qs.next
		m.StoreTimestamp = now
		qs.next++
		s.chunkFor(b, w.active)
		pos := len(b.buf)
		b.buf = m.AppendTo(b.buf)
		b.chunks[len(b.chunks)-1].hi = len(b.buf)
		w.wpos += int64(n)
		b.recs = append(b.recs, dispatchRec{m: m, qs: qs, pos: pos, size: int32(n)})
		r.res[i] = AppendResult{CommitLogOffset: m.CommitLogOffset, QueueOffset: m.QueueOffset, Size: int32(n), StoreTimestamp: now}
	}
	b.reqs = append(b.reqs, r)
	b.end = w.wpos
}

// chunkFor makes sure the last chunk of b targets seg, starting a new
// chunk at the writer's position otherwise.
func (s *Store) chunkFor(b *batch, seg *segment) {
	if n := len(b.chunks); n > 0 && b.chunks[n-1].seg == seg {
		return
	}
	b.chunks = append(b.chunks, chunk{seg: seg, fileOff: s.w.wpos - seg.start, lo: len(b.buf), hi: len(b.buf)})
}

// queueStateFor creates the writer's state for a queue the first time it
// is appended to, continuing from the consume queue's max offset.
func (s *Store) queueStateFor(topic string, qid int32) (*queueState, error) {
	q, err := s.cq.GetOrCreate(topic, qid)
	if err != nil {
		return nil, fmt.Errorf("store: consume queue %s/%d: %w", topic, qid, err)
	}
	qs := &queueState{key: queueKey{topic, qid}, next: q.MaxOffset(), q: q}
	s.w.queues[qs.key] = qs
	return qs, nil
}

// roll creates the segment that starts at start and makes it active.
func (s *Store) roll(start int64) error {
	seg, err := openSegment(s.clDir, start, s.cfg.SegmentSize, true, s.cfg.wrapFile)
	if err == nil {
		// The new name must be durable before records in it are acknowledged.
		if err = fsutil.SyncDir(s.clDir); err != nil {
			seg.close()
		}
	}
	if err != nil {
		return s.setSticky("create segment", segmentName(start), err)
	}
	s.segMu.Lock()
	s.segs = append(s.segs, seg)
	s.segMu.Unlock()
	s.w.active = seg
	s.stats.rolls.Add(1)
	return nil
}

// writeBatch writes b with one pwrite per segment it touches.
func (s *Store) writeBatch(b *batch) {
	if len(b.reqs) == 0 {
		return
	}
	if werr := s.sticky.Load(); werr != nil {
		b.err = werr
		return
	}
	t0 := time.Now()
	for _, c := range b.chunks {
		if c.hi == c.lo {
			continue
		}
		if _, err := c.seg.f.WriteAt(b.buf[c.lo:c.hi], c.fileOff); err != nil {
			b.err = s.setSticky("write", c.seg.path, err)
			return
		}
	}
	s.written.Store(b.end)
	if d := time.Since(t0); d >= slowSync {
		// A write to the page cache blocks when the kernel throttles
		// dirty pages; every append of the batch waits as long.
		s.log.Warn("store: commit log write slow", "took", d.Round(time.Millisecond),
			"bytes", b.end-b.start, "appends", len(b.reqs))
	}
}

// setSticky records the first write error; every later append gets it.
func (s *Store) setSticky(op, path string, err error) *WriteError {
	we := &WriteError{Op: op, Path: path, Err: err}
	if s.sticky.CompareAndSwap(nil, we) {
		s.stats.writeErrors.Add(1)
		s.log.Error("store: write error; refusing appends until reopened", "op", op, "path", path, "err", err)
		return we
	}
	s.stats.writeErrors.Add(1)
	return s.sticky.Load()
}

// commitLoop is the committer: for each batch the writer hands over it
// writes it (one pwrite per segment touched) and, under SyncFlush, fsyncs
// once, then dispatches its records and completes its requests, in that
// order, so an acknowledged append is visible and, under SyncFlush,
// durable. Dispatch runs here in both modes: it is cheap (a consume-queue
// entry into a mapping, OnDispatch, OnRecord; the key index is built by
// the indexer), and one more goroutine would cost every append a wake-up.
// The writer fills the next batch meanwhile.
func (s *Store) commitLoop() {
	defer close(s.dispatchDone) // this goroutine finished the last batch
	for b := range s.syncCh {
		s.writeBatch(b)
		if b.err == nil && s.cfg.FlushMode == SyncFlush {
			b.err = s.syncTo(b.end)
		}
		s.finish(b)
	}
}

// finish dispatches a written (and, if required, synced) batch, completes
// its requests and returns it to the writer.
func (s *Store) finish(b *batch) {
	err := b.err
	if err == nil {
		err = s.dispatchBatch(b)
	}
	if err == nil {
		s.visible.Store(b.end)
		// Wake the indexer; never wait for it (a pending wake-up covers
		// this batch too).
		select {
		case s.idxWake <- struct{}{}:
		default:
		}
		s.stats.batches.Add(1)
		s.stats.records.Add(uint64(len(b.recs)))
		s.stats.bytes.Add(uint64(b.end - b.start))
	}
	for _, r := range b.reqs {
		r.complete(err)
	}
	n := len(b.reqs)
	b.reset()
	s.freeBatches <- b
	if n > 1 {
		// The appenders just completed are runnable: let them queue their
		// next appends into the batch the writer is filling before it is
		// handed over, so that closed-loop appenders do not settle into
		// groups alternating between filling and committing.
		runtime.Gosched()
	}
}

// dispatchBatch makes the records of b visible: consume-queue entries,
// OnDispatch and OnRecord, record by record. Index keys are not added here:
// the indexer follows the log (indexer.go).
func (s *Store) dispatchBatch(b *batch) error {
	for _, d := range b.recs {
		m := d.m
		if err := s.dispatch(d.qs.q, m.Topic, m.QueueID, m.QueueOffset, m.CommitLogOffset, d.size, m.Properties, true); err != nil {
			return s.setSticky("dispatch", m.Topic, err)
		}
		if s.cfg.OnRecord != nil {
			v, err := message.Parse(b.buf[d.pos : d.pos+int(d.size)])
			if err != nil { // cannot happen: the writer encoded it
				return s.setSticky("dispatch", m.Topic, err)
			}
			s.cfg.OnRecord(m.CommitLogOffset, v)
		}
	}
	return nil
}

// dispatch adds one record to its consume queue. notify says whether to
// call OnDispatch (not during recovery, before Open returned). The key
// index is not touched: recovery calls indexKeys itself, and after Open
// the indexer goroutine adds keys.
func (s *Store) dispatch(q *consumequeue.Queue, topic string, qid int32, qoff, off int64, size int32, props string, notify bool) error {
	var tagsCode int64
	if tags, ok := message.Property(props, message.PropTags); ok && tags != "" {
		tagsCode = message.TagsHashCode(tags)
	}
	if err := q.Put(qoff, consumequeue.Entry{CommitLogOffset: off, Size: size, TagsCode: tagsCode}); err != nil {
		return fmt.Errorf("consume queue %s/%d put %d: %w", topic, qid, qoff, err)
	}
	if notify && s.cfg.OnDispatch != nil {
		s.cfg.OnDispatch(topic, qid, qoff+1)
	}
	return nil
}
