package txn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/txmq/txmq/internal/remoting"
)

// Register installs the END_TRANSACTION handler and the operator handlers
// (AdminCodes) on srv.
func (s *Service) Register(srv *remoting.Server) {
	srv.Handle(remoting.ReqEndTransaction, s.HandleEndTransaction)
	srv.Handle(ReqTxList, s.handleList)
	srv.Handle(ReqTxCommit, s.handleOperatorEnd(ResolutionCommit))
	srv.Handle(ReqTxRollback, s.handleOperatorEnd(ResolutionRollback))
	srv.Handle(ReqTxDiscarded, s.handleDiscarded)
	srv.Handle(ReqTxResume, s.handleResume)
	srv.Handle(ReqTxStats, s.handleStats)
}

// HandleEndTransaction serves END_TRANSACTION (37).
//
// Behavior: the half is found by commitLogOffset (G2 and Java) or, without
// it, by transactionId / msgId; commitOrRollback 8 commits, 12 rolls back,
// 0 does nothing. Every request is answered (G2 sends it "oneway" with
// flag 0 and drops the answer): SUCCESS, also for a repeated END (remark
// says it was ignored), or an error code with a remark.
//
// Compat notes: Java answers nothing for state 0 and SYSTEM_ERROR for every
// failure; txmq answers SUCCESS for 0 and distinct codes (QUERY_NOT_FOUND
// unknown, TRANSACTION_STATE_GROUP_WRONG group mismatch, INVALID_PARAMETER
// offsets). Java refuses a non-check END after the immunity window (604);
// txmq accepts any END of a pending transaction.
func (s *Service) HandleEndTransaction(ctx context.Context, c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	r, err := parseEndHeader(req)
	if err != nil {
		return s.endRefused(c, req, err), nil
	}
	r.noTxID = true
	res, err := s.end(ctx, &r)
	return s.endAnswer(c, req, res, err), nil
}

// HandleEndTransactionInline is the remoting.InlineHandler of
// END_TRANSACTION: what EndAsync serves (the common END by offsets) is
// answered from the store's completion; the rest is declined
// (remoting.ErrNotInline) to HandleEndTransaction.
func (s *Service) HandleEndTransactionInline(c *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	r, err := parseEndHeader(req)
	if err != nil {
		return nil, remoting.ErrNotInline
	}
	r.noTxID = true
	err = s.endAsync(c.Context(), &r, nil, c, req)
	switch {
	case err == nil:
		return nil, remoting.ErrDeferred
	case errors.Is(err, ErrSlowPath):
		return nil, remoting.ErrNotInline
	}
	return s.endRefused(c, req, err), nil
}

// answerEnd answers an END_TRANSACTION that EndAsync served inline, from
// the store's completion. A oneway END (what the official clients send)
// gets no answer, so none is built unless it was refused (endRefused logs
// why; the remoting layer drops the answer).
func (s *Service) answerEnd(c *remoting.Conn, req *remoting.Command, res EndResult, err error) {
	var resp *remoting.Command
	if err != nil || !req.IsOneway() {
		resp = s.endAnswer(c, req, res, err)
	}
	// The END is over: nothing refers to req's frame or ext fields any
	// more.
	req.MarkRecyclable()
	c.FinishNoWait(req, resp, nil)
}

// endAnswer is the answer to an END_TRANSACTION that End (or EndAsync)
// served with res or err.
func (s *Service) endAnswer(c *remoting.Conn, req *remoting.Command, res EndResult, err error) *remoting.Command {
	if err != nil {
		return s.endRefused(c, req, err)
	}
	remark := res.State.String()
	if res.Duplicate || res.Message != "" {
		remark = res.Message
	}
	return req.Reply(remoting.RespSuccess, remark)
}

// endRefused logs a refused END_TRANSACTION and builds its answer (kept
// out of HandleEndTransaction, whose frame stays small).
func (s *Service) endRefused(c *remoting.Conn, req *remoting.Command, err error) *remoting.Command {
	code, remark := ResponseCode(err)
	s.log.Warn("txn: END_TRANSACTION refused", slog.String("conn", c.String()), slog.Any("err", err),
		slog.String("group", req.ExtStringOr("producerGroup", "")), slog.String("commitLogOffset", req.ExtStringOr("commitLogOffset", "")),
		slog.String("transactionId", req.ExtStringOr("transactionId", "")))
	return req.Reply(code, remark)
}

func parseEndHeader(req *remoting.Command) (EndRequest, error) {
	r := EndRequest{
		ProducerGroup: req.ExtStringOr("producerGroup", ""),
		FromCheck:     req.ExtBoolOr("fromTransactionCheck", false),
		MsgID:         req.ExtStringOr("msgId", ""),
		TransactionID: req.ExtStringOr("transactionId", ""),
	}
	if r.FromCheck {
		r.Source = SourceCheck
	}
	v, err := req.ExtInt32("commitOrRollback")
	if err != nil {
		return r, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	res, ok := ResolutionFromWire(v)
	if !ok {
		return r, fmt.Errorf("%w: commitOrRollback %d (want 8 commit, 12 rollback or 0 unknown)", ErrBadRequest, v)
	}
	r.Resolution = res
	if _, ok := req.Ext("commitLogOffset"); ok {
		if r.CommitLogOffset, err = req.ExtInt64("commitLogOffset"); err != nil {
			return r, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if r.TranStateTableOffset, err = req.ExtInt64Or("tranStateTableOffset", -1); err != nil {
			return r, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		r.HasOffsets = r.CommitLogOffset >= 0
	}
	return r, nil
}

func jsonReply(req *remoting.Command, v any) (*remoting.Command, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	resp := req.Reply(remoting.RespSuccess, "")
	resp.Body = b
	return resp, nil
}

func errReply(req *remoting.Command, err error) (*remoting.Command, error) {
	code, remark := ResponseCode(err)
	return req.Reply(code, remark), nil
}

func (s *Service) handleList(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	limit, err := req.ExtInt32Or("limit", 100)
	if err != nil {
		return errReply(req, fmt.Errorf("%w: %w", ErrBadRequest, err))
	}
	minAge, err := req.ExtInt64Or("minAgeMs", 0)
	if err != nil {
		return errReply(req, fmt.Errorf("%w: %w", ErrBadRequest, err))
	}
	f := ListFilter{Topic: req.ExtStringOr("topic", ""), ProducerGroup: req.ExtStringOr("producerGroup", ""),
		TransactionID: req.ExtStringOr("transactionId", ""), MinAge: time.Duration(minAge) * time.Millisecond}
	return jsonReply(req, ListResponse{BrokerName: s.cfg.BrokerName, Pending: s.c.pendingNow.Load(), List: s.List(int(limit), f)})
}

func (s *Service) handleOperatorEnd(r Resolution) remoting.Handler {
	return func(ctx context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
		id := req.ExtStringOr("transactionId", "")
		if id == "" {
			return errReply(req, fmt.Errorf("%w: transactionId is required", ErrBadRequest))
		}
		res, err := s.End(ctx, EndRequest{TransactionID: id, ProducerGroup: req.ExtStringOr("producerGroup", ""),
			Resolution: r, Source: SourceOperator})
		if err != nil {
			return errReply(req, err)
		}
		return jsonReply(req, res)
	}
}

func (s *Service) handleDiscarded(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	limit, err := req.ExtInt32Or("limit", 100)
	if err != nil {
		return errReply(req, fmt.Errorf("%w: %w", ErrBadRequest, err))
	}
	list, err := s.Discarded(int(limit))
	if err != nil {
		return errReply(req, err)
	}
	return jsonReply(req, DiscardedResponse{BrokerName: s.cfg.BrokerName, List: list})
}

func (s *Service) handleResume(ctx context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	res, err := s.Resume(ctx, req.ExtStringOr("transactionId", ""))
	if err != nil {
		return errReply(req, err)
	}
	return jsonReply(req, res)
}

func (s *Service) handleStats(_ context.Context, _ *remoting.Conn, req *remoting.Command) (*remoting.Command, error) {
	return jsonReply(req, StatsResponse{BrokerName: s.cfg.BrokerName, Stats: s.Stats()})
}
