package txn

import (
	"errors"

	"github.com/txmq/txmq/internal/remoting"
)

// Sentinel errors. Returned errors wrap them with detail; test with errors.Is.
var (
	// Prepare.

	// ErrDisabled: transactionEnable is false; half messages are refused.
	ErrDisabled = errors.New("txn: transactional messages are disabled on this broker (transactionEnable=false)")
	// ErrDelayNotAllowed: a transactional message asked for a delay level
	// or a timer (RocketMQ #1540 loops forever on those).
	ErrDelayNotAllowed = errors.New("txn: a transactional message cannot be delayed (DELAY / TIMER_* property set)")
	// ErrNoUniqKey: the half message has no UNIQ_KEY (the broker adds one
	// before calling Prepare).
	ErrNoUniqKey = errors.New("txn: half message without UNIQ_KEY")
	// ErrNoGroup: the producer group is empty.
	ErrNoGroup = errors.New("txn: half message without producer group")

	// End.

	// ErrUnknownTransaction: no transaction has the given half offset or
	// transaction id (and none was resolved recently).
	ErrUnknownTransaction = errors.New("txn: unknown transaction")
	// ErrAlreadyEnded: a repeated half send names a transaction that is
	// already rolled back or discarded; the producer must not run its
	// local transaction.
	ErrAlreadyEnded = errors.New("txn: the transaction of this repeated half send has already ended")
	// ErrGroupMismatch: END_TRANSACTION named another producer group than
	// the half message's PGROUP (Java answers SYSTEM_ERROR).
	ErrGroupMismatch = errors.New("txn: producer group does not match the half message")
	// ErrOffsetMismatch: tranStateTableOffset does not equal the half
	// message's queue offset (Java answers SYSTEM_ERROR).
	ErrOffsetMismatch = errors.New("txn: tranStateTableOffset does not match the half message")
	// ErrAmbiguous: an operator named a transaction id that several
	// producer groups use; say which group.
	ErrAmbiguous = errors.New("txn: transaction id used by several producer groups")
	// ErrBadRequest: a malformed END_TRANSACTION or admin request.
	ErrBadRequest = errors.New("txn: bad request")

	// Operator.

	// ErrNotDiscarded: Resume named a transaction that is not discarded
	// (pending, resolved, or unknown).
	ErrNotDiscarded = errors.New("txn: transaction is not discarded")
	// ErrHalfRemoved: the half message was removed by retention; the
	// transaction cannot be resumed or committed any more.
	ErrHalfRemoved = errors.New("txn: half message removed by retention")

	// Lifecycle.

	// ErrClosed: the service is closed.
	ErrClosed = errors.New("txn: service closed")
	// ErrNotStarted: Start has not finished.
	ErrNotStarted = errors.New("txn: service not started")
)

// ResponseCode maps an error of Prepare or End to the RocketMQ response
// code and remark the broker answers with. A nil error maps to SUCCESS.
func ResponseCode(err error) (int32, string) {
	if err == nil {
		return remoting.RespSuccess, ""
	}
	var ce *remoting.CodeError
	if errors.As(err, &ce) {
		return ce.Code, ce.Msg
	}
	code := remoting.RespSystemError
	switch {
	case errors.Is(err, ErrDisabled):
		code = remoting.RespNoPermission // Java: NO_PERMISSION "the broker sending transaction message is forbidden"
	case errors.Is(err, ErrDelayNotAllowed), errors.Is(err, ErrNoUniqKey), errors.Is(err, ErrNoGroup):
		code = remoting.RespMessageIllegal
	case errors.Is(err, ErrUnknownTransaction):
		code = remoting.RespQueryNotFound
	case errors.Is(err, ErrGroupMismatch):
		code = remoting.RespTransactionStateGroupWrong
	case errors.Is(err, ErrOffsetMismatch), errors.Is(err, ErrBadRequest), errors.Is(err, ErrAmbiguous):
		code = remoting.RespInvalidParameter
	case errors.Is(err, ErrAlreadyEnded):
		code = remoting.RespTransactionFailed
	case errors.Is(err, ErrNotDiscarded), errors.Is(err, ErrHalfRemoved):
		code = remoting.RespIllegalOperation
	case errors.Is(err, ErrClosed), errors.Is(err, ErrNotStarted):
		code = remoting.RespServiceNotAvailable
	}
	return code, err.Error()
}
