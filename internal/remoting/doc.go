// Package remoting implements RocketMQ's classic "remoting" TCP protocol:
// the frame codec, the RemotingCommand (Command), the request and response
// code tables, a Server that dispatches requests to handlers by code, and a
// Client (plus a per-address Pool) for txmq's own outbound calls.
//
// # Frames
//
// Every message is one frame, integers big-endian:
//
//	| totalLen int32 | hdrMeta int32 | header (hdrLen bytes) | body |
//
// totalLen counts everything after itself (4 + hdrLen + len(body)). The top
// byte of hdrMeta is the header's serialization type (SerializeJSON = 0,
// SerializeRocketMQ = 1) and its low 24 bits are hdrLen. The JSON header is
// {"code","language","version","opaque","flag","remark","extFields"} with
// every extFields value a JSON string (G2 drops frames with other values);
// the binary header is Java's RocketMQSerializable layout. Frames larger than
// the configured limit (DefaultMaxFrameSize, 16 MiB like Java) are refused
// before anything is allocated for them, and a frame's buffer grows with the
// bytes actually received, so a peer cannot make us allocate what it merely
// announces. AppendFrame encodes into a caller's
// buffer; ReadFrame, DecodeFrame and DecodeHeader decode. Decoding errors
// wrap ErrFrameTooLarge or ErrMalformedFrame and never panic.
//
// # Pairing
//
// A request carries an opaque chosen by its sender; the response echoes it
// with flag bit 0 (FlagResponse) set. Each side keeps its outstanding
// requests per connection, keyed by opaque, and silently drops responses
// whose opaque it does not know. Flag bit 1 (FlagOneway) asks for no
// response. The official Go client (G2) never sets it, even for the calls it
// treats as oneway, and drops the responses, so the server answers every
// request that lacks the bit. Responses go out in the serialization type of
// their request (Command.Reply and Conn.Reply take care of it).
//
// Both directions share one TCP connection: the server may send requests to
// a client (CHECK_TRANSACTION_STATE, NOTIFY_CONSUMER_IDS_CHANGED,
// GET_CONSUMER_RUNNING_INFO) with Conn.Invoke, Conn.InvokeOneway or
// Conn.InvokeAsync, choosing opaques from its own counter.
//
// # Threading model
//
// Each connection (Conn) has a read goroutine and a write goroutine. The
// read goroutine decodes frames; a response completes its pending call
// (waking its Invoke, or running its InvokeAsync callback right there), and a
// request runs the handler registered for its code on a goroutine of its
// own, because handlers block (synchronous flush, long polling) and one
// client connection multiplexes many producers and consumers. A Server
// hands the request to one of its idle handler goroutines when there is
// one (they stay after serving, up to 128 per Server and for at most a
// second without work, so their stacks stay grown) and starts a new
// goroutine otherwise; a Client starts one per request. Either way requests
// of one connection run concurrently, in no guaranteed order. A code may
// also have an InlineHandler (Server.HandleInline), tried first on the read
// goroutine itself: it must not block, and either answers at once, declines
// (ErrNotInline: the Handler runs as above) or takes the request over
// (ErrDeferred) and answers it later with Conn.Finish or, from a callback
// that must not block, Conn.FinishNoWait (which, when the write queue is
// full, finishes on a new goroutine that keeps the request's handler slot
// until the answer is queued). The broker serves plain sends this way,
// completing them from the store's completion callback. At most
// MaxInFlightPerConn handlers run at once per connection; when the bound is
// reached the read goroutine waits, which pushes back on the peer: a peer
// that sends requests without reading the answers stops being read once
// its answers fill the write queue and the handler slots, instead of
// costing a goroutine per answer. The write goroutine takes encoded
// frames from a queue (1,024 frames) and writes them through a buffered
// writer that is flushed when the queue is empty, so frames queued
// together leave in one system call. Send encodes the frame header on the
// caller's goroutine and writes the body without copying it; it waits
// while the queue is full, and TrySend gives up instead
// (ErrWriteQueueFull), for a goroutine that serves many connections.
//
// # Buffer ownership
//
// The read goroutine reads frames of up to 64 KiB into pooled buffers. A
// frame without a body goes back to the pool once its header is decoded
// (decoded strings are copies). A request's body aliases its buffer, which
// is recycled, together with the request's ext fields, only when the
// handler called Command.MarkRecyclable and has returned (a deferred inline
// request: when it is finished): a handler that
// keeps the request (a parked pull) or its body simply does not mark it,
// and the garbage collector takes the buffer. Outgoing bodies are not
// copied: Command.OnWritten tells the sender when the connection no longer
// references one (written, or dropped with the connection), so that it can
// be reused. Reply (and returning a response from a handler) hands the
// response over: its header is encoded before Reply returns, and ext
// fields that SetExt allocated are recycled then. A caller done with a
// response Invoke returned may hand it back with Command.Release.
//
// Ext fields are an ordered slice of key/value pairs (Ext), not a map: a
// header holds about a dozen fields, which a scan finds as fast as a hash
// lookup, and a decoded header then costs no map. The decoders keep keys
// unique (a repeated key keeps its first place and its last value, as a
// map would), in linear time whatever the header holds.
//
// A handler returns the response, (nil, nil) for no response, or an error
// (answered with RespSystemError, or with the code of a *CodeError). To
// answer later from another goroutine (long polling), return (nil, nil) and
// call Conn.Reply(req, resp) when the answer is ready; a parked request does
// not hold a handler slot (a deferred inline request does, until Finish). The handler's ctx is cancelled when the
// connection closes or the server shuts down. Handler panics are recovered
// and answered with RespSystemError.
//
// Every goroutine is started through one tracker per Server or Client that
// refuses new goroutines once shutdown begins; Server.Shutdown and
// Client.Close wait for all of them. Upper layers keep per-connection state
// with Conn.SetValue/Value and learn about closed connections through
// Server.OnConnClose.
//
// # Caveats
//
//   - Codes travel as int32 in Command but G2 reads them (and the version)
//     as int16, and the binary header stores int16: codes sent to clients must
//     fit. Encoding a binary header with a code outside int16 fails with
//     ErrInvalidCommand.
//   - A decoded Body aliases the frame buffer the reader allocated for it
//     (pooled on a Conn; see Buffer ownership); a Body passed to Send is
//     written later without copying, so it must not be modified until its
//     OnWritten runs (without OnWritten: never).
//   - Do not copy a Command by value: the copy would share its pooled fields
//     and buffer.
//   - JSON decoding is lenient (unknown keys, null fields, numeric or boolean
//     ext values are accepted and kept as text); each byte of invalid UTF-8
//     in a JSON header string becomes U+FFFD, as with encoding/json.
//   - Map order makes the encoded order of ext fields vary between calls.
//   - A Client does not reconnect; a Pool redials on the next call after a
//     connection died, and never retries a call itself.
//   - Invoke assigns req.Opaque; do not share one Command between concurrent
//     calls.
package remoting
