package remoting

import (
	"fmt"
	"maps"
	"slices"
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
// ExtFields: the header is encoded before Reply returns, and fields that
// SetExt allocated are then recycled, so neither ExtFields nor the Command
// may be used after Reply. An Ext assigned to ExtFields by the caller is
// left alone.
type Command struct {
	Code      int32  // request code (Req*) or response code (Resp*)
	Language  string // sender's language name, "GO", "JAVA", ...
	Version   int32  // sender's RocketMQ version ordinal
	Opaque    int32  // request id; a response echoes its request's
	Flag      int32  // FlagResponse | FlagOneway
	Remark    string // free text; the error message of a response
	ExtFields Ext    // custom header fields, all values as text
	Body      []byte // payload; nil when empty

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
	// ext is the pooled array ExtFields was given by the decoder or SetExt
	// (nil when ExtFields is the caller's own).
	ext *[]ExtField
	// recyclable is set by MarkRecyclable.
	recyclable bool
	// pooled is set on a command a decoder took from the pool; recycle
	// puts it back.
	pooled bool
}

// MarkRecyclable lets the connection reuse the frame buffer that c.Body
// aliases and the ext fields of c once the handler serving c has
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

// Release returns the pooled memory of a command its caller owns and is
// done with, typically a response Invoke returned: its frame buffer and ext
// fields go back to the connections' pools. Afterwards neither c nor
// c.Body (or any slice of it) may be used; strings read from c stay valid,
// as they never alias pooled memory. It is optional (an unreleased command
// is left to the garbage collector), and it is not for a request a handler
// serves, which MarkRecyclable covers.
func (c *Command) Release() { c.recycle() }

// recycle returns c's pooled frame buffer and ext fields, and c itself
// when a decoder took it from the pool. The caller owns c and guarantees
// that nothing references c or them any more.
func (c *Command) recycle() {
	if c.frame != nil {
		putFrameBuf(c.frame)
		c.frame, c.Body = nil, nil
	}
	c.releaseExt()
	if c.pooled {
		*c = Command{}
		cmdPool.Put(c)
	}
}

var cmdPool sync.Pool // of *Command, for the decoders

// newDecoded returns a zero Command for a decoder, from the pool.
func newDecoded() *Command {
	if c, ok := cmdPool.Get().(*Command); ok {
		c.pooled = true
		return c
	}
	return &Command{pooled: true}
}

// releaseExt returns c's pooled ext fields when ExtFields still uses them.
func (c *Command) releaseExt() {
	if c.ext == nil {
		return
	}
	if cap(c.ExtFields) > 0 && unsafe.SliceData(c.ExtFields) == unsafe.SliceData(*c.ext) {
		*c.ext = c.ExtFields[:0]
		c.ExtFields = nil
		putExt(c.ext)
	}
	c.ext = nil
}

// Pooled ext arrays: extCap fields to start with; one that grew beyond
// maxPooledExt fields is left to the garbage collector.
const (
	extCap       = 16
	maxPooledExt = 32
)

var extPool sync.Pool

// getExt returns an empty, pooled ext array.
func getExt() *[]ExtField {
	if v := extPool.Get(); v != nil {
		return v.(*[]ExtField)
	}
	e := make([]ExtField, 0, extCap)
	return &e
}

func putExt(e *[]ExtField) {
	if cap(*e) > maxPooledExt {
		return
	}
	clear((*e)[:cap(*e)])
	*e = (*e)[:0]
	extPool.Put(e)
}

// ExtField is one custom header field.
type ExtField struct {
	Key   string
	Value string
}

// Ext is the custom header fields of a command, in the order they are
// sent. Set keeps keys unique, and the decoders use it; Get returns the
// last value of a key, as a map would hold it. A slice instead of a map:
// a header has a dozen fields, which a scan finds about as fast as a hash
// lookup, and decoding into it builds no map per frame.
type Ext []ExtField

// ExtOf returns the fields of m in key order (nil for an empty m).
func ExtOf(m map[string]string) Ext {
	if len(m) == 0 {
		return nil
	}
	e := make(Ext, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		e = append(e, ExtField{Key: k, Value: m[k]})
	}
	return e
}

// Get returns the value of key and whether it is present.
func (e Ext) Get(key string) (string, bool) {
	// Keys are mostly short and of few lengths (V2 send headers are all
	// single letters): the length and first byte rule out nearly every
	// field before a full comparison.
	for i := len(e) - 1; i >= 0; i-- {
		if k := e[i].Key; len(k) == len(key) && (k == "" || k[0] == key[0]) && k == key {
			return e[i].Value, true
		}
	}
	return "", false
}

// Set sets key to value: it replaces the key's value if present and
// appends the field otherwise.
func (e *Ext) Set(key, value string) {
	s := *e
	for i := range s {
		if s[i].Key == key {
			s[i].Value = value
			return
		}
	}
	*e = append(s, ExtField{Key: key, Value: value})
}

// addDecoded appends a decoded field without looking for its key; the
// decoder calls dedupe once the header is read.
func (c *Command) addDecoded(key, value string) {
	if c.ExtFields == nil {
		c.ext = getExt()
		c.ExtFields = *c.ext
	}
	c.ExtFields = append(c.ExtFields, ExtField{Key: key, Value: value})
}

// dedupeScanMax is the most fields dedupe compares pairwise; beyond it, a
// header (which may hold millions of fields) is deduplicated with a map.
const dedupeScanMax = 32

// dedupe makes e's keys unique as Set would have: a repeated key keeps its
// first position and takes its last value. A header without repeats (every
// header a client sends) is only checked: a 64-bit signature set of the
// keys seen leaves a pairwise comparison to the keys whose signature
// repeats.
func (e Ext) dedupe() Ext {
	n := len(e)
	if n > dedupeScanMax {
		return e.dedupeMap()
	}
	var seen uint64
	for i := range n {
		k := e[i].Key
		bit := uint64(1) << (keySig(k) & 63)
		if seen&bit != 0 {
			for j := range i {
				if e[j].Key == k {
					return e.dedupeMap()
				}
			}
		}
		seen |= bit
	}
	return e
}

// keySig is a cheap signature of a key: its length and end bytes.
func keySig(k string) uint {
	if k == "" {
		return 0
	}
	return uint(len(k))*7 + uint(k[0]) + uint(k[len(k)-1])*3
}

func (e Ext) dedupeMap() Ext {
	pos := make(map[string]int, len(e))
	out := e[:0]
	for _, f := range e {
		if i, ok := pos[f.Key]; ok {
			out[i].Value = f.Value
			continue
		}
		pos[f.Key] = len(out)
		out = append(out, f)
	}
	clear(e[len(out):])
	return out
}

// Delete removes key's fields, keeping the order of the others.
func (e *Ext) Delete(key string) {
	*e = slices.DeleteFunc(*e, func(f ExtField) bool { return f.Key == key })
}

// Map returns the fields as a new map.
func (e Ext) Map() map[string]string {
	m := make(map[string]string, len(e))
	for _, f := range e {
		m[f.Key] = f.Value
	}
	return m
}

// String formats the fields as {k=v, ...} for logs.
func (e Ext) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range e {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Key)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(f.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// NewRequest returns a request with the given code and the fields of ext
// (copied in key order; nil is fine). The opaque is assigned when it is
// sent. Change fields afterwards with SetExt.
func NewRequest(code int32, ext map[string]string) *Command {
	return &Command{Code: code, Language: DefaultLanguage, Version: DefaultVersion, ExtFields: ExtOf(ext)}
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
		fmt.Fprintf(&b, " ext=%v", c.ExtFields.String())
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
	return c.ExtFields.Get(key)
}

// ExtString returns a required string field.
func (c *Command) ExtString(key string) (string, error) {
	v, ok := c.ExtFields.Get(key)
	if !ok {
		return "", missingExt(key)
	}
	return v, nil
}

// ExtStringOr returns a string field, or def when it is missing.
func (c *Command) ExtStringOr(key, def string) string {
	if v, ok := c.ExtFields.Get(key); ok {
		return v
	}
	return def
}

// ExtInt32 returns a required int32 field.
func (c *Command) ExtInt32(key string) (int32, error) {
	v, ok := c.ExtFields.Get(key)
	if !ok {
		return 0, missingExt(key)
	}
	return parseExtInt32(key, v)
}

// ExtInt32Or returns an int32 field, or def when it is missing or empty.
func (c *Command) ExtInt32Or(key string, def int32) (int32, error) {
	v, _ := c.ExtFields.Get(key)
	if v == "" {
		return def, nil
	}
	return parseExtInt32(key, v)
}

// ExtInt64 returns a required int64 field.
func (c *Command) ExtInt64(key string) (int64, error) {
	v, ok := c.ExtFields.Get(key)
	if !ok {
		return 0, missingExt(key)
	}
	return parseExtInt64(key, v)
}

// ExtInt64Or returns an int64 field, or def when it is missing or empty.
func (c *Command) ExtInt64Or(key string, def int64) (int64, error) {
	v, _ := c.ExtFields.Get(key)
	if v == "" {
		return def, nil
	}
	return parseExtInt64(key, v)
}

// ExtBool returns a required boolean field.
func (c *Command) ExtBool(key string) (bool, error) {
	v, ok := c.ExtFields.Get(key)
	if !ok {
		return false, missingExt(key)
	}
	return strings.EqualFold(v, "true"), nil
}

// ExtBoolOr returns a boolean field, or def when it is missing or empty.
func (c *Command) ExtBoolOr(key string, def bool) bool {
	v, _ := c.ExtFields.Get(key)
	if v == "" {
		return def
	}
	return strings.EqualFold(v, "true")
}

// SetExt sets an ext field (Ext.Set) and returns c. The first field of a
// command without any takes a pooled array, which Reply recycles.
func (c *Command) SetExt(key, value string) *Command {
	if c.ExtFields == nil {
		c.ext = getExt()
		c.ExtFields = *c.ext
	}
	c.ExtFields.Set(key, value)
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
