package store

import (
	"errors"
	"fmt"

	"github.com/txmq/txmq/internal/message"
)

// Sentinel errors. Returned errors wrap them with detail; test with errors.Is.
var (
	// ErrClosed: the store is closed (or closing).
	ErrClosed = errors.New("store: closed")
	// ErrLocked: another process (or Store) has the directory open.
	ErrLocked = errors.New("store: directory is locked by another store")
	// ErrInvalidConfig: Open was given an unusable Config.
	ErrInvalidConfig = errors.New("store: invalid config")
	// ErrCorrupt: the directory holds something recovery cannot repair
	// (segments of another size, a gap between segments).
	ErrCorrupt = errors.New("store: corrupt store directory")

	// ErrMessageTooLarge: the body is longer than Config.MaxMessageSize.
	// Nothing was written.
	ErrMessageTooLarge = errors.New("store: message body too large")
	// ErrInvalidTopic wraps message.ErrInvalidTopic; errors.Is matches both.
	ErrInvalidTopic = fmt.Errorf("store: %w", message.ErrInvalidTopic)
	// ErrPropertiesTooLong: the encoded properties exceed
	// message.MaxPropertiesLen. Nothing was written.
	ErrPropertiesTooLong = errors.New("store: properties too long")
	// ErrInvalidQueueID: the queue id is negative. Nothing was written.
	ErrInvalidQueueID = errors.New("store: invalid queue id")

	// ErrNotFound: no valid record starts at the given commit-log offset
	// (or the key matched nothing).
	ErrNotFound = errors.New("store: no record at offset")
	// ErrOffsetMoved: the offset is below the commit log's minimum; the
	// segment holding it was removed by retention.
	ErrOffsetMoved = errors.New("store: offset moved (data removed by retention)")

	// ErrIndexBehind: QueryByKey (or Flush, DeleteTopic) timed out waiting
	// for the key index, built in the background, to reach the records
	// visible when the call started. Retry later.
	ErrIndexBehind = errors.New("store: key index is behind the commit log")

	// ErrWriteFailed is matched (errors.Is) by every *WriteError.
	ErrWriteFailed = errors.New("store: write failed")
)

// WriteError is the sticky error of a failed commit-log write, fsync or
// segment creation. Once one happens every later append returns it (the
// appends of the failed batch too); the store stays readable. Reopen the
// store (after fixing the disk) to write again: recovery keeps every
// acknowledged record. errors.Is(err, ErrWriteFailed) and
// errors.Is(err, syscall.ENOSPC) (say) both work.
type WriteError struct {
	Op   string // "write", "fsync", "create segment", "dispatch", "index"
	Path string
	Err  error
}

func (e *WriteError) Error() string {
	return fmt.Sprintf("store: %s %s: %v (store is read-only until reopened)", e.Op, e.Path, e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrWriteFailed) true.
func (e *WriteError) Is(target error) bool { return target == ErrWriteFailed }
