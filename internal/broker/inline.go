package broker

// The inline paths. Sends: a plain SEND_MESSAGE(_V2) to an existing topic is
// validated on the connection's read loop and handed to the store with a
// completion callback (store.AppendAsync), which answers it. It saves the
// hand-off to a handler goroutine and that goroutine's wait for the store:
// two goroutine wake-ups per message. A half message goes the same way
// through the transaction service's PrepareAsync, and END_TRANSACTION
// through its EndAsync (txn.Service.HandleEndTransactionInline). Everything
// that may block or that needs a handler goroutine is declined
// (remoting.ErrNotInline) and served by handleSend as before: batches,
// halves PrepareAsync declines (repeated or concurrent halves of one
// transaction, refusals), retry topics (may create the DLQ topic), topics
// to auto-create (write the topic table), oversized bodies (so that the
// refusal is handleSend's).

import (
	"errors"
	"strings"
	"sync"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/store"
	"github.com/txmq/txmq/internal/txn"
)

// inlineSend is one send between AppendAsync and its completion. Pooled;
// cb is its done method, bound once.
type inlineSend struct {
	b    *Broker
	c    *remoting.Conn
	req  *remoting.Command
	m    message.Ext
	uniq string
	cb   func(store.AppendResult, error)
	hcb  func(txn.PrepareResult, error) // halfDone, bound once
}

var inlineSendPool sync.Pool // of *inlineSend

func getInlineSend() *inlineSend {
	if s, ok := inlineSendPool.Get().(*inlineSend); ok {
		return s
	}
	s := new(inlineSend)
	s.cb = s.done
	s.hcb = s.halfDone
	return s
}

func (s *inlineSend) release() {
	s.b, s.c, s.req, s.m, s.uniq = nil, nil, nil, message.Ext{}, ""
	inlineSendPool.Put(s)
}

// handleSendInline is the InlineHandler of SEND_MESSAGE and SEND_MESSAGE_V2.
func (b *Broker) handleSendInline(c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	if len(req.Body) > b.cfg.MaxMessageSize {
		return nil, remoting.ErrNotInline
	}
	h, err := parseSendHeader(req)
	if err != nil || h.batch || strings.HasPrefix(h.topic, message.RetryGroupTopicPrefix) {
		return nil, remoting.ErrNotInline
	}
	topic, qid, err := b.checkSendTargetMay(&h, false)
	if err != nil {
		if errors.Is(err, errNeedsCreate) {
			return nil, remoting.ErrNotInline
		}
		return nil, err
	}
	s := getInlineSend()
	m := &s.m
	uniq, half := b.fillSend(m, c, &h, topic, qid, req.Body)
	if half {
		return b.sendHalfInline(s, c, req, h.producerGroup)
	}
	if err := b.runPutHooks(c.Context(), m); err != nil {
		s.release()
		return nil, err
	}
	s.b, s.c, s.req, s.uniq = b, c, req, uniq
	if err := b.store.AppendAsync(c.Context(), m, s.cb); err != nil {
		s.release()
		req.MarkRecyclable() // the store never saw it
		return nil, b.storeErr("send message", err)
	}
	return nil, remoting.ErrDeferred
}

// done completes an inline send: the store has the record (or failed).
// It runs on the store's committing goroutine and must not block.
func (s *inlineSend) done(res store.AppendResult, err error) {
	b, c, req := s.b, s.c, s.req
	var resp *remoting.Command
	if err != nil {
		err = b.storeErr("send message", err)
	} else {
		resp = sendOK(req, message.OffsetMessageID(b.addr, res.CommitLogOffset), s.m.QueueID, res.QueueOffset, s.uniq)
	}
	s.release()
	// The store is done with the message, whose body aliases req's frame.
	req.MarkRecyclable()
	c.FinishNoWait(req, resp, err)
}

// sendHalfInline hands the half message in s.m to the transaction
// service's PrepareAsync; what it declines goes to handleSend.
func (b *Broker) sendHalfInline(s *inlineSend, c *remoting.Conn, req *remoting.Command, group string) (*remoting.Command, error) {
	s.b, s.c, s.req = b, c, req
	err := b.txn.PrepareAsync(c.Context(), &s.m, group, s.hcb)
	if err == nil {
		return nil, remoting.ErrDeferred
	}
	s.release()
	if errors.Is(err, txn.ErrSlowPath) {
		return nil, remoting.ErrNotInline
	}
	req.MarkRecyclable() // the store never saw it
	return nil, halfRefused(err)
}

// halfDone completes an inline half send (on the store's committing
// goroutine; must not block).
func (s *inlineSend) halfDone(res txn.PrepareResult, err error) {
	c, req := s.c, s.req
	var resp *remoting.Command
	if err != nil {
		err = halfRefused(err)
	} else {
		resp = s.b.halfOK(req, s.m.QueueID, res)
	}
	s.release()
	req.MarkRecyclable() // the half's body aliased req's frame; the store is done with it
	c.FinishNoWait(req, resp, err)
}

// inlinePullWindow: a pull starting at most this many entries behind its
// queue's end is served on the read loop (the records were just written and
// are in the page cache); one further behind may read from disk and goes
// to a handler goroutine.
const inlinePullWindow = 4096

// handlePullInline is the InlineHandler of PULL_MESSAGE: a consumer that is
// caught up is served (or parked) on the read loop, which saves the
// hand-off to a handler goroutine. Everything handlePull does is in
// memory: header checks, offset commit into the offset table, a read of
// mapped consume-queue entries and records, parking in the hold table.
func (b *Broker) handlePullInline(c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	a, err := parsePullArgs(req)
	if err != nil || a.offset < 0 || b.store.MaxOffset(a.topic, a.qid)-a.offset > inlinePullWindow {
		return nil, remoting.ErrNotInline
	}
	return b.handlePull(c.Context(), c, req)
}
