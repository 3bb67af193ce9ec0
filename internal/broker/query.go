package broker

// Behavior: QUERY_MESSAGE (12) finds the messages of a topic whose KEYS or
// UNIQ_KEY equal the key, stored within [beginTimestamp, endTimestamp],
// and answers them concatenated (QUERY_NOT_FOUND when none).
// VIEW_MESSAGE_BY_ID (33) answers the record at a commit-log offset (the
// one an offset message id carries); a bad offset is SYSTEM_ERROR, never a
// partial record.

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/remoting"
	"github.com/txmq/txmq/internal/store"
)

// maxQueryNum caps QUERY_MESSAGE results (Java defaultQueryMaxNum is 32).
const maxQueryNum = 64

func (b *Broker) handleQueryMessage(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	const what = "query message"
	topic, err := req.ExtString("topic")
	if err != nil {
		return nil, headerErr(what, err)
	}
	key, err := req.ExtString("key")
	if err != nil {
		return nil, headerErr(what, err)
	}
	maxNum, err := req.ExtInt32Or("maxNum", 32)
	if err != nil {
		return nil, headerErr(what, err)
	}
	begin, err := req.ExtInt64Or("beginTimestamp", 0)
	if err != nil {
		return nil, headerErr(what, err)
	}
	end, err := req.ExtInt64Or("endTimestamp", math.MaxInt64)
	if err != nil {
		return nil, headerErr(what, err)
	}
	if err := message.ValidateTopic(topic); err != nil {
		return nil, codeErr(respSystemError, "%s: %v", what, err)
	}
	if key == "" {
		return nil, codeErr(respSystemError, "%s: the key is empty", what)
	}
	if end < begin {
		return nil, codeErr(respSystemError, "%s: endTimestamp %d is before beginTimestamp %d", what, end, begin)
	}
	n := int(min(max(maxNum, 1), maxQueryNum))
	recs, err := b.store.QueryByKey(topic, key, n, begin, end)
	if err != nil {
		return nil, b.storeErr(what, err)
	}
	st := b.store.Stats()
	if len(recs) == 0 {
		resp := req.Reply(respQueryNotFound, "can not find message, maybe time range not correct")
		resp.SetExtInt("indexLastUpdateTimestamp", time.Now().UnixMilli())
		resp.SetExtInt("indexLastUpdatePhyoffset", st.MaxOffset)
		return resp, nil
	}
	size := 0
	for _, r := range recs {
		size += len(r)
	}
	body := make([]byte, 0, size)
	for _, r := range recs {
		body = append(body, r...)
	}
	resp := ok(req)
	resp.SetExtInt("indexLastUpdateTimestamp", time.Now().UnixMilli())
	resp.SetExtInt("indexLastUpdatePhyoffset", st.MaxOffset)
	resp.Body = body
	return resp, nil
}

func (b *Broker) handleViewMessage(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	off, err := req.ExtInt64("offset")
	if err != nil {
		return nil, headerErr("view message by id", err)
	}
	if off < 0 {
		return nil, codeErr(respSystemError, "can not find message by the offset, %d: negative offset", off)
	}
	rec, err := b.store.ReadAt(off)
	if err != nil {
		if errors.Is(err, store.ErrClosed) {
			return nil, codeErr(respServiceNotAvailable, "view message by id: %v", err)
		}
		return nil, codeErr(respSystemError, "can not find message by the offset, %d: %v", off, err)
	}
	resp := ok(req)
	resp.Body = rec
	return resp, nil
}
