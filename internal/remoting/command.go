package remoting

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// SerializeType is the header encoding of a frame: byte 0 of the header
// length field.
type SerializeType uint8

// Header encodings.
const (
	SerializeJSON     SerializeType = 0 // JSON object; what every G2 client sends
	SerializeRocketMQ SerializeType = 1 // RocketMQ binary (RocketMQSerializable)
)

func (t SerializeType) String() string {
	switch t {
	case SerializeJSON:
		return "JSON"
	case SerializeRocketMQ:
		return "ROCKETMQ"
	default:
		return "SerializeType(" + strconv.Itoa(int(t)) + ")"
	}
}

// Flag bits of Command.Flag.
const (
	FlagResponse int32 = 1 << 0 // the command is a response
	FlagOneway   int32 = 1 << 1 // the sender expects no response
)

// Defaults for commands created by this package.
const (
	// DefaultLanguage is the language txmq puts in the commands it creates.
	// Clients accept any value (G2 ignores it, Java maps it by name).
	DefaultLanguage = "GO"
	// DefaultVersion is the version txmq puts in the commands it creates:
	// 479, Apache RocketMQ V5_3_3, the version the protocol notes were taken
	// from. It fits the int16 that G2 and the binary header use, and it is
	// above V4_9_4, so a Java name server answers our requests with standard
	// JSON.
	DefaultVersion int32 = 479
)

// Command is a RocketMQ RemotingCommand: one request or response frame.
//
// A Command is not safe for concurrent mutation. Once passed to Send, Reply
// or Invoke it belongs to the connection until the call returns; the body is
// written to the socket without copying, so callers must not modify Body
// until then (Send returns once the frame is queued, so the body must stay
// unmodified until the connection has written it: until OnWritten runs, or,
// without OnWritten, never reuse a body slice after sending it).
//
// Reply (and a handler returning a response) also hands over the response's
// ExtFields: the header is encoded before Reply returns, and a map that
// SetExt allocated is then recycled, so neither the map nor the Command may
// be used after Reply. A map assigned to ExtFields by the caller is left
// alone.
type Command struct {
	Code      int32             // request code (Req*) or response code (Resp*)
	Language  string            // sender's language name, "GO", "JAVA", ...
	Version   int32             // sender's RocketMQ version ordinal
	Opaque    int32             // request id; a response echoes its request's
	Flag      int32             // FlagResponse | FlagOneway
	Remark    string            // free text; the error message of a response
	ExtFields map[string]string // custom header fields, all values as text
	Body      []byte            // payload; nil when empty

	// SerializeType is the header encoding the command arrived in, and the
	// one it is sent in. Responses made by Reply inherit it from the request.
	SerializeType SerializeType

	// OnWritten, if set, is called once for every Send of the command
	// (Reply and the Invoke calls send through Send) as soon as the
	// connection no longer references Body: on the write goroutine after
	// the body was copied into the write buffer or written to the socket,
	// on the write goroutine when the queued frame is dropped because the
	// connection closed, or on the caller's goroutine before Send returns
	// an error. Reply of a oneway request, and a handler's response to a
	// oneway request or returned together with an error, call it too (on
	// the caller's or handler's goroutine). A command that is never passed
	// to Send, Reply or Invoke, and a response a handler drops itself, never
	// see it called: let the garbage collector take the body then. It must
	// be quick and must not block; typically it returns Body to a pool.
	OnWritten func()

	// frame is the pooled read buffer Body aliases (nil when the command
	// was not read by a Conn, had no body, or was too large to pool).
	frame *[]byte
	// ext is the pooled map ExtFields was given by the decoder or SetExt
	// (nil when ExtFields is the caller's own map).
	ext map[string]string
	// recyclable is set by MarkRecyclable.
	recyclable bool
}

// MarkRecyclable lets the connection reuse the frame buffer that c.Body
// aliases and the ext-field map of c once the handler serving c has
// returned and its response (if any) is queued. Only the handler of c may
// call it, on its own goroutine, and only when after it returns nothing
// will reference c, c.Body (or any slice of it) or c.ExtFields: not a
// parked request, not a goroutine the handler started, not a message the
// store has not finished with, and not the handler's response (whose Body
// is written after the handler returns, so it must not alias c.Body). Strings read from ExtFields stay valid: they
// never alias the frame buffer. A handler that panics has its mark
// ignored. Marking a command that no Conn read (a test's, or one built by
// hand) is harmless.
func (c *Command) MarkRecyclable() { c.recyclable = true }

// recycle returns c's pooled frame buffer and ext map. The caller owns c and
// guarantees that nothing references them any more.
func (c *Command) recycle() {
	if c.frame != nil {
		putFrameBuf(c.frame)
		c.frame, c.Body = nil, nil
	}
	c.releaseExt()
}

// releaseExt returns c's pooled ext map when ExtFields still is that map.
func (c *Command) releaseExt() {
	if c.ext == nil {
		return
	}
	if sameMap(c.ext, c.ExtFields) {
		c.ExtFields = nil
		putExtMap(c.ext)
	}
	c.ext = nil
}

// maxPooledExt is the most ext fields a map may hold to go back to the
// pool (Go maps keep their size when cleared).
const maxPooledExt = 32

var extMapPool sync.Pool

// getExtMap returns an empty map from the pool, or a new one sized for
// hint fields.
func getExtMap(hint int) map[string]string {
	if v := extMapPool.Get(); v != nil {
		return v.(map[string]string)
	}
	return make(map[string]string, hint)
}

func putExtMap(m map[string]string) {
	if len(m) > maxPooledExt {
		return
	}
	clear(m)
	extMapPool.Put(m)
}

// sameMap reports whether a and b are the same map (not merely equal).
func sameMap(a, b map[string]string) bool {
	return b != nil && *(*unsafe.Pointer)(unsafe.Pointer(&a)) == *(*unsafe.Pointer)(unsafe.Pointer(&b))
}

// NewRequest returns a request with the given code and ext fields (which it
// keeps, not copies; nil is fine). The opaque is assigned when it is sent.
func NewRequest(code int32, ext map[string]string) *Command {
	return &Command{Code: code, Language: DefaultLanguage, Version: DefaultVersion, ExtFields: ext}
}

// NewResponse returns a response with the given code and remark. Its opaque
// and serialization type must be set from the request it answers; use
// Command.Reply or Conn.Reply, which do that.
func NewResponse(code int32, remark string) *Command {
	return &Command{Code: code, Language: DefaultLanguage, Version: DefaultVersion,
		Flag: FlagResponse, Remark: remark}
}

// Reply returns a response to c: the given code and remark, c's opaque, the
// response flag, and c's serialization type.
func (c *Command) Reply(code int32, remark string) *Command {
	r := NewResponse(code, remark)
	r.Opaque = c.Opaque
	r.SerializeType = c.SerializeType
	return r
}

// IsResponse reports whether the response flag bit is set.
func (c *Command) IsResponse() bool { return c.Flag&FlagResponse != 0 }

// IsOneway reports whether the oneway flag bit is set. Note that the G2
// client never sets it, even for its "oneway" calls.
func (c *Command) IsOneway() bool { return c.Flag&FlagOneway != 0 }

// CodeName names c.Code as a response code if c is a response, and as a
// request code otherwise.
func (c *Command) CodeName() string {
	if c.IsResponse() {
		return ResponseCodeName(c.Code)
	}
	return RequestCodeName(c.Code)
}

// ResponseErr returns nil if c is a success response, and a *CodeError with
// c's code and remark otherwise.
func (c *Command) ResponseErr() error {
	if c.Code == RespSuccess {
		return nil
	}
	return &CodeError{Code: c.Code, Msg: c.Remark}
}

// String describes c for logs; the body is summarised by its length.
func (c *Command) String() string {
	var b strings.Builder
	kind := "request"
	if c.IsResponse() {
		kind = "response"
	}
	fmt.Fprintf(&b, "%s %s(%d) opaque=%d flag=%d %s", kind, c.CodeName(), c.Code, c.Opaque, c.Flag, c.SerializeType)
	if c.Remark != "" {
		fmt.Fprintf(&b, " remark=%q", c.Remark)
	}
	if len(c.ExtFields) > 0 {
		fmt.Fprintf(&b, " ext=%v", c.ExtFields)
	}
	fmt.Fprintf(&b, " body=%dB", len(c.Body))
	return b.String()
}

// Ext fields.
//
// The accessors come in two kinds. ExtString, ExtInt32, ExtInt64 and ExtBool
// require the field: a missing field is an error wrapping ErrMissingExtField.
// The ...Or variants return the default when the field is missing or empty.
// Both kinds return an error wrapping ErrInvalidExtField when the text does not
// parse. Numbers are decimal, with an optional sign, as Java's parseInt and
// parseLong accept. Booleans follow Java's Boolean.parseBoolean: "true" in any
// case is true and any other text is false, so they never fail to parse.

// Ext returns the raw text of an ext field and whether it is present.
func (c *Command) Ext(key string) (string, bool) {
	v, ok := c.ExtFields[key]
	return v, ok
}

// ExtString returns a required string field.
func (c *Command) ExtString(key string) (string, error) {
	v, ok := c.ExtFields[key]
	if !ok {
		return "", missingExt(key)
	}
	return v, nil
}

// ExtStringOr returns a string field, or def when it is missing.
func (c *Command) ExtStringOr(key, def string) string {
	if v, ok := c.ExtFields[key]; ok {
		return v
	}
	return def
}

// ExtInt32 returns a required int32 field.
func (c *Command) ExtInt32(key string) (int32, error) {
	v, ok := c.ExtFields[key]
	if !ok {
		return 0, missingExt(key)
	}
	return parseExtInt32(key, v)
}

// ExtInt32Or returns an int32 field, or def when it is missing or empty.
func (c *Command) ExtInt32Or(key string, def int32) (int32, error) {
	v := c.ExtFields[key]
	if v == "" {
		return def, nil
	}
	return parseExtInt32(key, v)
}

// ExtInt64 returns a required int64 field.
func (c *Command) ExtInt64(key string) (int64, error) {
	v, ok := c.ExtFields[key]
	if !ok {
		return 0, missingExt(key)
	}
	return parseExtInt64(key, v)
}

// ExtInt64Or returns an int64 field, or def when it is missing or empty.
func (c *Command) ExtInt64Or(key string, def int64) (int64, error) {
	v := c.ExtFields[key]
	if v == "" {
		return def, nil
	}
	return parseExtInt64(key, v)
}

// ExtBool returns a required boolean field.
func (c *Command) ExtBool(key string) (bool, error) {
	v, ok := c.ExtFields[key]
	if !ok {
		return false, missingExt(key)
	}
	return strings.EqualFold(v, "true"), nil
}

// ExtBoolOr returns a boolean field, or def when it is missing or empty.
func (c *Command) ExtBoolOr(key string, def bool) bool {
	v := c.ExtFields[key]
	if v == "" {
		return def
	}
	return strings.EqualFold(v, "true")
}

// SetExt sets an ext field and returns c.
func (c *Command) SetExt(key, value string) *Command {
	if c.ExtFields == nil {
		c.ExtFields = getExtMap(8)
		c.ext = c.ExtFields
	}
	c.ExtFields[key] = value
	return c
}

// SetExtInt sets an integer ext field as decimal text and returns c.
func (c *Command) SetExtInt(key string, v int64) *Command {
	return c.SetExt(key, strconv.FormatInt(v, 10))
}

// SetExtBool sets a boolean ext field as "true" or "false" and returns c.
func (c *Command) SetExtBool(key string, v bool) *Command {
	return c.SetExt(key, strconv.FormatBool(v))
}

func missingExt(key string) error {
	return fmt.Errorf("%w %q", ErrMissingExtField, key)
}

func parseExtInt32(key, v string) (int32, error) {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w %q=%q: %w", ErrInvalidExtField, key, v, err)
	}
	return int32(n), nil
}

func parseExtInt64(key, v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %q=%q: %w", ErrInvalidExtField, key, v, err)
	}
	return n, nil
}
