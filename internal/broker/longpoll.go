package broker

// Behavior: long polling (Java PullRequestHoldService). A pull that found
// nothing and may be suspended is parked under its topic and queue; its
// handler returns without answering, so it holds no handler slot. It is
// answered exactly once, by whichever comes first:
//
//   - a dispatch to its queue moves the max offset past its offset
//     (store OnDispatch → notify): the read runs again on a tracked
//     goroutine; if it still finds nothing (or only filtered-out
//     messages, whose offsets it then skips) it parks again until its
//     deadline;
//   - its deadline (suspendTimeoutMillis, at most 30 s; with
//     longPollingEnable=false, shortPollingTimeMills): a last read, then
//     the answer (PULL_NOT_FOUND with the offsets when still nothing);
//   - its connection closes: it is dropped (nobody to answer);
//   - Shutdown: a last read and the answer, before connections close.
//
// notify is on the store's dispatch goroutine: with nothing parked it is
// one atomic load; otherwise a read-locked map lookup and the queue's
// mutex. No lock is held across a store read or a send.

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/txmq/txmq/internal/remoting"
)

type queueKey struct {
	topic string
	qid   int32
}

// pullHolds is the set of parked pulls.
type pullHolds struct {
	b      *Broker
	parked atomic.Int64 // parked pulls, all queues

	mu     sync.RWMutex // guards queues (entries are never removed)
	queues map[queueKey]*holdQueue
}

// holdQueue is the parked pulls of one queue.
type holdQueue struct {
	mu      sync.Mutex // guards waiters and every waiter's timer
	waiters []*parkedPull
}

// parkedPull is one parked request. claimed makes its answer exactly-once:
// the path that flips it owns the request.
type parkedPull struct {
	c        *remoting.Conn
	req      *remoting.Command
	args     pullArgs
	q        *holdQueue
	deadline time.Time
	wakeable bool // false: short polling, only the deadline answers it
	claimed  atomic.Bool
	timer    *time.Timer // set under q.mu
	h        *pullHolds
}

func newPullHolds(b *Broker) *pullHolds {
	return &pullHolds{b: b, queues: make(map[queueKey]*holdQueue)}
}

func (h *pullHolds) queue(k queueKey) *holdQueue {
	h.mu.RLock()
	q := h.queues[k]
	h.mu.RUnlock()
	if q != nil {
		return q
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if q = h.queues[k]; q == nil {
		q = &holdQueue{}
		h.queues[k] = q
	}
	return q
}

// park parks a pull until deadline; false means it was not parked (the
// broker is shutting down or the connection is closed) and the caller
// answers at once.
func (h *pullHolds) park(c *remoting.Conn, req *remoting.Command, a pullArgs, deadline time.Time, wakeable bool) bool {
	p := &parkedPull{c: c, req: req, args: a, deadline: deadline, wakeable: wakeable, h: h,
		q: h.queue(queueKey{a.topic, a.qid})}
	return h.repark(p)
}

// repark (re)inserts p and arms its timer; then it closes the race with a
// dispatch that happened before p was visible to notify.
func (h *pullHolds) repark(p *parkedPull) bool {
	if h.b.life.shuttingDown() || p.c.Err() != nil {
		return false
	}
	// Read what the check below needs before p becomes visible: once it
	// is in the waiters list a dispatch may claim and resume it, and the
	// resumed pull rewrites p.args on its own goroutine.
	topic, qid, offset, wakeable := p.args.topic, p.args.qid, p.args.offset, p.wakeable
	p.claimed.Store(false)
	h.parked.Add(1)
	p.q.mu.Lock()
	p.q.waiters = append(p.q.waiters, p)
	p.timer = time.AfterFunc(time.Until(p.deadline), p.expire)
	p.q.mu.Unlock()
	if wakeable && h.b.store.MaxOffset(topic, qid) > offset {
		if p.claim() {
			h.wake(p)
		}
	}
	return true
}

// claim takes p out of its queue; false means another path owns it.
func (p *parkedPull) claim() bool {
	if !p.claimed.CompareAndSwap(false, true) {
		return false
	}
	p.q.mu.Lock()
	p.q.removeLocked(p)
	t := p.timer
	p.q.mu.Unlock()
	t.Stop()
	p.h.parked.Add(-1)
	return true
}

func (q *holdQueue) removeLocked(p *parkedPull) {
	for i, w := range q.waiters {
		if w == p {
			last := len(q.waiters) - 1
			q.waiters[i] = q.waiters[last]
			q.waiters[last] = nil
			q.waiters = q.waiters[:last]
			return
		}
	}
}

// notify is the store's OnDispatch: wake the pulls of the queue waiting
// for an offset below next.
func (h *pullHolds) notify(topic string, qid int32, next int64) {
	if h.parked.Load() == 0 {
		return
	}
	h.mu.RLock()
	q := h.queues[queueKey{topic, qid}]
	h.mu.RUnlock()
	if q == nil {
		return
	}
	var buf [8]*parkedPull
	woken := buf[:0]
	q.mu.Lock()
	for i := 0; i < len(q.waiters); {
		p := q.waiters[i]
		if !p.wakeable || p.args.offset >= next || !p.claimed.CompareAndSwap(false, true) {
			i++
			continue
		}
		last := len(q.waiters) - 1
		q.waiters[i] = q.waiters[last]
		q.waiters[last] = nil
		q.waiters = q.waiters[:last]
		p.timer.Stop()
		woken = append(woken, p)
	}
	q.mu.Unlock()
	for _, p := range woken {
		h.parked.Add(-1)
		h.wake(p)
	}
}

// wake runs the read again for a claimed pull, off the caller's goroutine.
func (h *pullHolds) wake(p *parkedPull) {
	if !h.b.goFunc(func() { h.resume(p, true) }) {
		h.answer(p, false)
	}
}

// expire runs on the timer's goroutine at p's deadline.
func (p *parkedPull) expire() {
	if !p.claim() {
		return
	}
	p.h.answer(p, true)
}

// resume reads again for a woken pull and answers it, or parks it again
// when there is still nothing for it and time is left.
func (h *pullHolds) resume(p *parkedPull, mayRepark bool) {
	if p.c.Err() != nil {
		return
	}
	resp, outcome := h.b.readPull(p.req, &p.args)
	if mayRepark && outcome != pullDone && time.Until(p.deadline) > time.Millisecond && h.repark(p) {
		return
	}
	_ = p.c.Reply(p.req, resp)
}

// answer gives a claimed pull its final answer: a last read when the store
// is usable (read), else PULL_NOT_FOUND with the requested offset.
func (h *pullHolds) answer(p *parkedPull, read bool) {
	if p.c.Err() != nil {
		return
	}
	if read && h.b.life.enter() {
		defer h.b.life.leave()
		resp, _ := h.b.readPull(p.req, &p.args)
		_ = p.c.Reply(p.req, resp)
		return
	}
	resp := p.req.Reply(respPullNotFound, "")
	setPullOffsets(resp, p.args.offset, 0, 0)
	_ = p.c.Reply(p.req, resp)
}

// connClosed drops the parked pulls of a closed connection.
func (h *pullHolds) connClosed(c *remoting.Conn) {
	if h.parked.Load() == 0 {
		return
	}
	for _, p := range h.all(func(p *parkedPull) bool { return p.c == c }) {
		p.claim()
	}
}

// releaseAll answers every parked pull (Shutdown).
func (h *pullHolds) releaseAll() {
	for _, p := range h.all(func(*parkedPull) bool { return true }) {
		if p.claim() {
			h.answer(p, true)
		}
	}
}

// all returns the parked pulls that match.
func (h *pullHolds) all(match func(*parkedPull) bool) []*parkedPull {
	h.mu.RLock()
	qs := make([]*holdQueue, 0, len(h.queues))
	for _, q := range h.queues {
		qs = append(qs, q)
	}
	h.mu.RUnlock()
	var out []*parkedPull
	for _, q := range qs {
		q.mu.Lock()
		for _, p := range q.waiters {
			if match(p) {
				out = append(out, p)
			}
		}
		q.mu.Unlock()
	}
	return out
}
