package remoting

import (
	"errors"
	"fmt"
)

// Sentinel errors, grouped by phase. Functions wrap them with context using
// %w; test for them with errors.Is.
var (
	// Decoding.

	// ErrFrameTooLarge reports a frame whose length prefix exceeds the
	// configured maximum frame size (or, when encoding, a command whose
	// frame would exceed it, or whose header does not fit the 24-bit header
	// length field). Nothing is allocated for such a frame.
	ErrFrameTooLarge = errors.New("remoting: frame too large")
	// ErrMalformedFrame reports a frame or header that cannot be decoded:
	// a length shorter than the fixed parts, a header length past the end
	// of the frame, an unknown serialization type, invalid JSON, or binary
	// fields running past the header.
	ErrMalformedFrame = errors.New("remoting: malformed frame")

	// Encoding.

	// ErrInvalidCommand reports a command that cannot be encoded in the
	// requested serialization, such as a code or version that does not fit
	// the int16 of the ROCKETMQ binary header.
	ErrInvalidCommand = errors.New("remoting: invalid command")

	// Header fields.

	// ErrMissingExtField reports a required extFields entry that is absent.
	ErrMissingExtField = errors.New("remoting: missing ext field")
	// ErrInvalidExtField reports an extFields entry whose text does not
	// parse as the requested type.
	ErrInvalidExtField = errors.New("remoting: invalid ext field")

	// Lifecycle.

	// ErrConnClosed reports an operation on a connection that is closed, or a
	// request whose connection closed before its response arrived.
	ErrConnClosed = errors.New("remoting: connection closed")
	// ErrWriteQueueFull reports a TrySend that found the connection's
	// outbound queue full: the peer is not reading as fast as we write.
	ErrWriteQueueFull = errors.New("remoting: write queue full")
	// ErrServerClosed reports Start on a server that has been closed.
	ErrServerClosed = errors.New("remoting: server closed")
	// ErrPoolClosed reports Get or Invoke on a closed Pool.
	ErrPoolClosed = errors.New("remoting: pool closed")
	// ErrDeferred is returned by an InlineHandler that answers later with
	// Conn.Finish.
	ErrDeferred = errors.New("remoting: request deferred by its inline handler")
	// ErrNotInline is returned by an InlineHandler that leaves the request
	// to the code's Handler.
	ErrNotInline = errors.New("remoting: request not handled inline")
)

// CodeError is an error that carries a RocketMQ response code. A Handler that
// returns a CodeError (or an error wrapping one) is answered with that code
// and Msg as the remark; any other error is answered with RespSystemError.
// Command.ResponseErr returns a CodeError for a non-success response.
type CodeError struct {
	Code int32  // response code, one of the Resp* constants
	Msg  string // remark sent to the peer
	Err  error  // optional cause, not sent
}

// Errorf returns a *CodeError with the given response code and a remark
// formatted as fmt.Errorf would; a %w verb in format is kept as the cause.
func Errorf(code int32, format string, args ...any) error {
	e := fmt.Errorf(format, args...)
	return &CodeError{Code: code, Msg: e.Error(), Err: errors.Unwrap(e)}
}

// Error formats the code by name and number, and the message.
func (e *CodeError) Error() string {
	return fmt.Sprintf("%s (%d): %s", ResponseCodeName(e.Code), e.Code, e.Msg)
}

// Unwrap returns the cause, if any.
func (e *CodeError) Unwrap() error { return e.Err }

// Is reports whether target is a *CodeError with the same code, so that
// errors.Is(err, &CodeError{Code: RespTopicNotExist}) works.
func (e *CodeError) Is(target error) bool {
	t, ok := target.(*CodeError)
	return ok && t.Code == e.Code
}

// errorCode returns the response code and remark that answer err.
func errorCode(err error) (int32, string) {
	var ce *CodeError
	if errors.As(err, &ce) {
		return ce.Code, ce.Msg
	}
	return RespSystemError, err.Error()
}
