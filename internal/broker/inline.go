package broker

// The inline paths. Sends: a plain SEND_MESSAGE(_V2) to an existing topic is
// validated on the connection's read loop and handed to the store with a
// completion callback (store.AppendAsync), which answers it. It saves the
// hand-off to a handler goroutine and that goroutine's wait for the store:
// two goroutine wake-ups per message. Everything that may block or that
// needs a handler goroutine is declined (remoting.ErrNotInline) and served
// by handleSend as before: batches, half messages (the transaction
// service), retry topics (may create the DLQ topic), topics to auto-create
// (write the topic table), oversized bodies (so that the refusal is
// handleSend's).

import (
	"errors"
	"strings"
	"sync"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/store"
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
}

var inlineSendPool sync.Pool // of *inlineSend

func getInlineSend() *inlineSend {
	if s, ok := inlineSendPool.Get().(*inlineSend); ok {
		return s
	}
	s := new(inlineSend)
	s.cb = s.done
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
		s.release()
		return nil, remoting.ErrNotInline
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
