package remoting

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"time"
)

// Conn is one remoting connection, on either side: a Server makes one per
// accepted socket and a Client wraps one. It has a read goroutine (decodes
// frames, matches responses to pending calls by opaque, starts a goroutine
// per request) and a write goroutine (drains the outbound queue through a
// buffered writer and flushes when the queue is empty).
//
// All methods are safe for concurrent use.
type Conn struct {
	id     uint64
	nc     net.Conn
	ep     *endpoint
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	out    chan outFrame // encoded frames for the write goroutine
	sem    chan struct{} // one slot per running handler

	// outMu makes "queued" and "dropped" exclusive: Send read-holds it
	// while it queues a frame, and the write goroutine, on its way out,
	// sets outClosed under the write lock and then drops what is queued,
	// so no frame is queued after that and every queued frame's done
	// runs.
	outMu     sync.RWMutex
	outClosed bool

	closeOnce sync.Once
	closing   chan struct{} // closed by close
	closeErr  error         // why; written once before closing is closed

	pmu     sync.Mutex      // guards pending
	pending map[int32]*call // calls awaiting a response; nil once closed

	vmu    sync.Mutex // guards values
	values map[any]any
}

// outFrame is one queued frame: the encoded head (from bufPool) and the body,
// written after it without copying; done (the command's OnWritten) runs once
// the body is no longer referenced.
type outFrame struct {
	head *[]byte
	body []byte
	done func()
}

// call is a request awaiting its response. Exactly one result is delivered
// to it, by whoever removes it from the pending map.
type call struct {
	ch   chan callResult       // synchronous Invoke; capacity 1
	cb   func(*Command, error) // InvokeAsync
	stop func() bool           // stops the InvokeAsync context watcher
}

type callResult struct {
	cmd *Command
	err error
}

var callPool = sync.Pool{New: func() any { return &call{ch: make(chan callResult, 1)} }}

func newConn(parent context.Context, nc net.Conn, ep *endpoint) *Conn {
	ctx, cancel := context.WithCancel(parent)
	return &Conn{
		id:      connIDs.Add(1),
		nc:      nc,
		ep:      ep,
		ctx:     ctx,
		cancel:  cancel,
		out:     make(chan outFrame, outQueueLen),
		sem:     make(chan struct{}, ep.maxInFlight),
		closing: make(chan struct{}),
		pending: make(map[int32]*call),
	}
}

// start launches the read and write goroutines. If the endpoint is shutting
// down it closes the connection and reports false; onClose is then not run.
func (c *Conn) start() bool {
	if !c.ep.tr.Go(c.writeLoop) {
		c.close(ErrConnClosed)
		c.dropQueued()
		return false
	}
	if !c.ep.tr.Go(c.readLoop) {
		c.close(ErrConnClosed)
		return false
	}
	return true
}

// ID returns a process-unique connection number, for logs and maps.
func (c *Conn) ID() uint64 { return c.id }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Context returns a context cancelled when the connection closes; handlers
// get it (or a descendant) as their ctx.
func (c *Conn) Context() context.Context { return c.ctx }

// String returns "conn#ID remote-address".
func (c *Conn) String() string {
	return "conn#" + strconv.FormatUint(c.id, 10) + " " + c.nc.RemoteAddr().String()
}

// SetValue stores a value under key for the upper layers (for example the
// clientID learnt from a heartbeat). A nil value deletes the key. Use an
// unexported key type, as with context values.
func (c *Conn) SetValue(key, value any) {
	c.vmu.Lock()
	defer c.vmu.Unlock()
	if value == nil {
		delete(c.values, key)
		return
	}
	if c.values == nil {
		c.values = make(map[any]any)
	}
	c.values[key] = value
}

// Value returns the value stored under key, or nil.
func (c *Conn) Value(key any) any {
	c.vmu.Lock()
	defer c.vmu.Unlock()
	return c.values[key]
}

// Closed returns a channel closed when the connection closes.
func (c *Conn) Closed() <-chan struct{} { return c.closing }

// Err returns why the connection closed, or nil while it is open.
func (c *Conn) Err() error {
	select {
	case <-c.closing:
		return c.closeErr
	default:
		return nil
	}
}

// Close closes the connection: the socket, pending calls (they fail with
// ErrConnClosed) and handler contexts. It does not wait for the goroutines;
// Server.Shutdown and Client.Close do. Close is idempotent and returns nil.
func (c *Conn) Close() error {
	c.close(fmt.Errorf("%w: closed locally", ErrConnClosed))
	return nil
}

// close records err as the reason and shuts the connection once.
func (c *Conn) close(err error) {
	c.closeOnce.Do(func() {
		c.closeErr = err
		close(c.closing)
		c.cancel()
		_ = c.nc.Close()
	})
}

// closedErr is the error for operations on a closed connection.
func (c *Conn) closedErr() error {
	<-c.closing
	if errors.Is(c.closeErr, ErrConnClosed) {
		return c.closeErr
	}
	return fmt.Errorf("%w: %w", ErrConnClosed, c.closeErr)
}

// Send queues cmd for writing as it is: the caller sets Opaque and Flag. It
// encodes the frame head (ExtFields included) on the calling goroutine and
// keeps a reference to cmd.Body, which must not change until cmd.OnWritten
// runs (or, without OnWritten, ever). It blocks only while the outbound
// queue is full, and returns an error wrapping ErrConnClosed if the
// connection is or becomes closed, or ErrFrameTooLarge / ErrInvalidCommand
// if cmd cannot be encoded within the frame limit. A nil error means queued,
// not delivered. cmd.OnWritten runs exactly once per Send, whatever the
// outcome (see Command.OnWritten).
func (c *Conn) Send(cmd *Command) error { return c.send(cmd, true) }

// TrySend is Send without waiting: when the outbound queue is full (the
// peer does not read what we write) it queues nothing and returns an
// error wrapping ErrWriteQueueFull. A sender that serves many
// connections from one goroutine uses it, so that one stalled peer cannot
// hold up the others.
func (c *Conn) TrySend(cmd *Command) error { return c.sendMode(cmd, sendTry) }

// TryInvokeOneway is InvokeOneway through TrySend.
func (c *Conn) TryInvokeOneway(req *Command) error {
	req.Opaque = c.ep.nextOpaque()
	req.Flag = req.Flag&^FlagResponse | FlagOneway
	return c.TrySend(req)
}

func (c *Conn) queueFullErr(cmd *Command) error {
	return fmt.Errorf("remoting: send %s to %s: %w (%d frames)", cmd.CodeName(), c.nc.RemoteAddr(), ErrWriteQueueFull, cap(c.out))
}

// How send queues a frame when the outbound queue is full.
const (
	sendWait  = iota // wait for room
	sendAside        // a new goroutine waits for room (FinishNoWait)
	sendTry          // give up: ErrWriteQueueFull (TrySend)
)

// send is Send; with wait false it never blocks: when the write queue is
// full, a new goroutine waits to queue the frame (the caller is a
// completion callback that must not stall, see FinishNoWait).
func (c *Conn) send(cmd *Command, wait bool) error {
	if wait {
		return c.sendMode(cmd, sendWait)
	}
	return c.sendMode(cmd, sendAside)
}

func (c *Conn) sendMode(cmd *Command, mode int) error {
	done := cmd.OnWritten
	select {
	case <-c.closing:
		runDone(done)
		return c.closedErr()
	default:
	}
	bp := getBuf()
	b, err := appendFrameHead((*bp)[:0], cmd)
	*bp = b
	if err == nil && len(b)+len(cmd.Body) > c.ep.maxFrame {
		err = fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(b)+len(cmd.Body), c.ep.maxFrame)
	}
	if err != nil {
		putBuf(bp)
		runDone(done)
		return fmt.Errorf("remoting: send %s to %s: %w", cmd.CodeName(), c.nc.RemoteAddr(), err)
	}
	c.outMu.RLock()
	if c.outClosed {
		c.outMu.RUnlock()
		putBuf(bp)
		runDone(done)
		return c.closedErr()
	}
	f := outFrame{head: bp, body: cmd.Body, done: done}
	if mode != sendWait {
		select {
		case c.out <- f:
			c.outMu.RUnlock()
			return nil
		default:
		}
		c.outMu.RUnlock()
		if mode == sendTry {
			putBuf(bp)
			runDone(done)
			return c.queueFullErr(cmd)
		}
		if !c.ep.tr.Go(func() { _ = c.queueFrame(f) }) {
			putBuf(bp)
			runDone(done)
			return c.closedErr()
		}
		return nil
	}
	defer c.outMu.RUnlock()
	return c.queueFrameLocked(f)
}

// queueFrame queues f for the write loop, waiting for room.
func (c *Conn) queueFrame(f outFrame) error {
	c.outMu.RLock()
	defer c.outMu.RUnlock()
	if c.outClosed {
		putBuf(f.head)
		runDone(f.done)
		return c.closedErr()
	}
	return c.queueFrameLocked(f)
}

// queueFrameLocked queues f, waiting for room; outMu is held shared.
func (c *Conn) queueFrameLocked(f outFrame) error {
	select {
	case c.out <- f:
		return nil
	case <-c.closing:
		putBuf(f.head)
		runDone(f.done)
		return c.closedErr()
	}
}

func runDone(done func()) {
	if done != nil {
		done()
	}
}

// Reply sends resp as the response to req: it copies req's opaque and
// serialization type and sets the response flag. It does nothing for a
// oneway req but run resp.OnWritten. Use it to answer a request after its
// handler returned (nil, nil), from any goroutine. Reply takes resp over:
// once it returns, resp must not be used again (the ext fields SetExt
// allocated are recycled; see Command).
func (c *Conn) Reply(req, resp *Command) error { return c.reply(req, resp, true) }

func (c *Conn) reply(req, resp *Command, wait bool) error {
	if req.IsOneway() {
		runDone(resp.OnWritten)
		resp.releaseExt()
		return nil
	}
	resp.Opaque = req.Opaque
	resp.Flag |= FlagResponse
	resp.SerializeType = req.SerializeType
	err := c.send(resp, wait)
	resp.releaseExt()
	return err
}

// Invoke sends req as a request and waits for its response, until ctx is
// done or the connection closes. It assigns req.Opaque and clears the
// response flag; a req with the oneway flag is sent as InvokeOneway and
// returns (nil, nil). A response with a non-success code is not an error;
// see Command.ResponseErr.
func (c *Conn) Invoke(ctx context.Context, req *Command) (*Command, error) {
	if req.IsOneway() {
		return nil, c.InvokeOneway(req)
	}
	cl := callPool.Get().(*call)
	opaque, err := c.begin(req, cl)
	if err != nil {
		callPool.Put(cl)
		return nil, err
	}
	select {
	case r := <-cl.ch:
		callPool.Put(cl)
		if r.err != nil {
			return nil, c.invokeErr(req, r.err)
		}
		return r.cmd, nil
	case <-ctx.Done():
		if c.take(opaque) == nil {
			// Someone else took the call and is delivering its result.
			<-cl.ch
		}
		callPool.Put(cl)
		return nil, c.invokeErr(req, ctx.Err())
	}
}

// InvokeAsync sends req and calls cb once with its response, or with an
// error when ctx is done or the connection closes first. cb runs on the
// goroutine that completes the call: the read goroutine for a response or
// a closed connection, ctx's watcher for ctx done. It must not block (a
// response-path callback that waits holds up every other response of the
// connection); starting a goroutine per response cost a hand-off per
// call. If InvokeAsync returns an error, req was not sent and cb is not
// called.
func (c *Conn) InvokeAsync(ctx context.Context, req *Command, cb func(*Command, error)) error {
	cl := &call{cb: func(resp *Command, err error) {
		if err != nil {
			err = c.invokeErr(req, err)
		}
		cb(resp, err)
	}}
	opaque, err := c.begin(req, cl)
	if err != nil {
		return err
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			if taken := c.take(opaque); taken != nil {
				c.deliver(taken, nil, ctx.Err())
			}
		})
		// Publish stop under pmu: whoever takes the call later takes pmu
		// after us and so sees it. If the call is already gone, its
		// result is on the way and the watcher is not needed.
		c.pmu.Lock()
		if c.pending[opaque] == cl {
			cl.stop = stop
		} else {
			stop()
		}
		c.pmu.Unlock()
	}
	return nil
}

// InvokeOneway sends req with the oneway flag and a fresh opaque, and
// returns once it is queued.
func (c *Conn) InvokeOneway(req *Command) error {
	req.Opaque = c.ep.nextOpaque()
	req.Flag = req.Flag&^FlagResponse | FlagOneway
	return c.Send(req)
}

// begin registers cl under a new opaque and sends req.
func (c *Conn) begin(req *Command, cl *call) (int32, error) {
	// Keep the opaque in a local: once the frame is queued the response
	// may complete the call and the caller may reuse req at once.
	opaque := c.ep.nextOpaque()
	req.Opaque = opaque
	req.Flag &^= FlagResponse
	c.pmu.Lock()
	if c.pending == nil {
		c.pmu.Unlock()
		return 0, c.invokeErr(req, c.closedErr())
	}
	c.pending[opaque] = cl
	c.pmu.Unlock()
	if err := c.Send(req); err != nil {
		if c.take(opaque) == nil {
			// The connection closed and failPending is delivering the
			// error to cl. An async call gets it through its callback; a
			// sync one drains it so that cl can be reused.
			if cl.cb != nil {
				return opaque, nil
			}
			<-cl.ch
		}
		return 0, err
	}
	return opaque, nil
}

func (c *Conn) invokeErr(req *Command, err error) error {
	return fmt.Errorf("remoting: %s to %s: %w", RequestCodeName(req.Code), c.nc.RemoteAddr(), err)
}

// take removes and returns the pending call for opaque, or nil.
func (c *Conn) take(opaque int32) *call {
	c.pmu.Lock()
	cl := c.pending[opaque]
	if cl != nil {
		delete(c.pending, opaque)
	}
	c.pmu.Unlock()
	return cl
}

// deliver hands a result to a call removed from the pending map.
func (c *Conn) deliver(cl *call, cmd *Command, err error) {
	if cl.cb == nil {
		cl.ch <- callResult{cmd: cmd, err: err}
		return
	}
	if cl.stop != nil {
		cl.stop()
	}
	cl.cb(cmd, err)
}

// failPending fails every pending call; later calls fail at once.
func (c *Conn) failPending() {
	c.pmu.Lock()
	pending := c.pending
	c.pending = nil
	c.pmu.Unlock()
	if len(pending) == 0 {
		return
	}
	err := c.closedErr()
	for _, cl := range pending {
		c.deliver(cl, nil, err)
	}
}

func (c *Conn) logAttrs() []any {
	return []any{slog.Uint64("conn", c.id), slog.String("remote", c.nc.RemoteAddr().String())}
}

// readLoop decodes frames until the connection fails or closes, then
// finishes the connection.
func (c *Conn) readLoop() {
	err := c.readFrames()
	c.close(err)
	c.failPending()
	if c.ep.onClose != nil {
		c.ep.onClose(c)
	}
}

func (c *Conn) readFrames() error {
	br := bufio.NewReaderSize(c.nc, readBufSize)
	idle := c.ep.idleTimeout
	// Moving the deadline costs a timer reset; do it at most every refresh.
	refresh := min(idle/16, time.Second)
	var deadlineSet time.Time
	for {
		if idle > 0 {
			if now := time.Now(); now.Sub(deadlineSet) >= refresh {
				if err := c.nc.SetReadDeadline(now.Add(idle)); err != nil {
					return c.readErr(err)
				}
				deadlineSet = now
			}
		}
		cmd, err := readFramePooled(br, c.ep.maxFrame)
		if err != nil {
			return c.readErr(err)
		}
		if cmd.IsResponse() {
			if cl := c.take(cmd.Opaque); cl != nil {
				c.deliver(cl, cmd, nil)
			} else {
				c.ep.log.Debug("remoting: dropping response with unknown opaque",
					append(c.logAttrs(), slog.Int("opaque", int(cmd.Opaque)), slog.String("code", cmd.CodeName()))...)
			}
			continue
		}
		if !c.dispatch(cmd) {
			return fmt.Errorf("%w: closed locally", ErrConnClosed)
		}
	}
}

// readErr classifies and logs the error that ends the read loop.
func (c *Conn) readErr(err error) error {
	select {
	case <-c.closing:
		return c.closeErr // closed locally; the socket error is a consequence
	default:
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrMalformedFrame) || errors.Is(err, ErrFrameTooLarge):
		c.ep.log.Warn("remoting: closing connection after a bad frame", append(c.logAttrs(), slog.Any("err", err))...)
		return fmt.Errorf("%w: %w", ErrConnClosed, err)
	case errors.Is(err, io.EOF):
		c.ep.log.Debug("remoting: peer closed the connection", c.logAttrs()...)
		return fmt.Errorf("%w: peer closed the connection", ErrConnClosed)
	case errors.As(err, &ne) && ne.Timeout():
		c.ep.log.Debug("remoting: closing idle connection", append(c.logAttrs(), slog.Duration("idle", c.ep.idleTimeout))...)
		return fmt.Errorf("%w: idle for %v", ErrConnClosed, c.ep.idleTimeout)
	default:
		c.ep.log.Debug("remoting: read failed", append(c.logAttrs(), slog.Any("err", err))...)
		return fmt.Errorf("%w: read: %w", ErrConnClosed, err)
	}
}

// dispatch starts the handler for req. It waits for a free handler slot
// (back-pressure on the peer) and reports false if the connection closed
// meanwhile.
func (c *Conn) dispatch(req *Command) bool {
	e := c.ep.handlers.get(req.Code)
	h := e.h
	if h == nil && e.inline == nil {
		c.ep.log.Debug("remoting: request code not supported",
			append(c.logAttrs(), slog.Int("code", int(req.Code)))...)
		remark := "request code " + strconv.Itoa(int(req.Code)) + " not supported"
		if n, ok := requestCodeNames[req.Code]; ok {
			remark = "request code " + strconv.Itoa(int(req.Code)) + " (" + n + ") not supported"
		}
		err := c.Reply(req, req.Reply(RespRequestCodeNotSupported, remark))
		req.recycle() // no handler saw it
		return err == nil
	}
	select {
	case c.sem <- struct{}{}:
	default:
		if !c.waitSlot() {
			return false
		}
	}
	if e.inline != nil {
		resp, err := c.runInline(e.inline, req)
		declined := errors.Is(err, ErrNotInline)
		switch {
		case errors.Is(err, ErrDeferred):
			return true // Finish releases the slot
		case !declined || h == nil:
			if declined {
				err = fmt.Errorf("request code %d declined inline and has no handler", req.Code)
			}
			c.Finish(req, resp, err)
			return true
		}
	}
	if c.ep.work != nil {
		// An idle worker takes it if there is one (the channel is
		// unbuffered); its stack is already grown.
		select {
		case c.ep.work <- task{c: c, h: h, req: req}:
			return true
		default:
		}
	}
	if !c.ep.tr.enter() {
		<-c.sem
		return false
	}
	go c.ep.worker(task{c: c, h: h, req: req})
	return true
}

// slowSlotWait is how long reading a connection may stay paused for a
// free handler slot before it is logged.
const slowSlotWait = time.Second

// waitSlot waits for a free handler slot: every one of the connection's
// MaxInFlightPerConn handlers is running, so reading it pauses (the
// peer's writes back up). A long pause is logged: the handlers are stuck
// or the peer sends faster than they finish. It reports false if the
// connection closed meanwhile.
func (c *Conn) waitSlot() bool {
	t0 := time.Now()
	select {
	case c.sem <- struct{}{}:
	case <-c.closing:
		return false
	}
	if d := time.Since(t0); d >= slowSlotWait {
		c.ep.log.Warn("remoting: reading paused: every handler slot of the connection was busy",
			append(c.logAttrs(), slog.Duration("paused", d.Round(time.Millisecond)), slog.Int("slots", cap(c.sem)))...)
	}
	return true
}

// task is one request for a handler goroutine.
type task struct {
	c   *Conn
	h   Handler
	req *Command
}

// worker serves t on a goroutine counted by dispatch's tr.enter, then, on
// a Server, stays to serve the requests dispatch hands to idle workers
// (ep.work), at most maxIdleWorkers of them idle at once, until it has
// been idle for idleWorkerTimeout or the server shuts down (ep.done). Each
// request holds its handler slot until serve returns, as with a goroutine
// per request.
func (ep *endpoint) worker(t task) {
	defer ep.tr.exit()
	var idle *time.Timer
	for {
		t.c.serve(t.h, t.req)
		if ep.work == nil {
			return
		}
		if ep.idle.Add(1) > maxIdleWorkers {
			ep.idle.Add(-1)
			return
		}
		if idle == nil {
			idle = time.NewTimer(idleWorkerTimeout)
		} else {
			idle.Reset(idleWorkerTimeout)
		}
		select {
		case t = <-ep.work:
			ep.idle.Add(-1)
		case <-idle.C:
			ep.idle.Add(-1)
			return
		case <-ep.done:
			ep.idle.Add(-1)
			idle.Stop()
			return
		}
		select {
		case <-ep.done:
			// Shutting down: dispatch would have refused it. Its
			// connection is closing; nobody waits for the answer.
			<-t.c.sem
			return
		default:
		}
	}
}

// serve runs a handler and sends its answer. It runs holding a handler
// slot, and releases it.
func (c *Conn) serve(h Handler, req *Command) {
	resp, err := c.runHandler(h, req)
	c.Finish(req, resp, err)
}

// Finish answers req with the result of its handler, as a Handler's return
// values are (resp, err), recycles req if its handler marked it recyclable,
// and releases its handler slot. An InlineHandler that returned ErrDeferred
// calls it exactly once, from any goroutine; nothing may use req after.
func (c *Conn) Finish(req, resp *Command, err error) { c.finish(req, resp, err, true) }

// FinishNoWait is Finish for callers that must not block, such as a store
// completion callback. When the connection's write queue is full (its
// peer is not reading), a new goroutine finishes req, waiting for room
// and keeping req's handler slot until the answer is queued: reading the
// connection pauses once every slot waits so, and a peer that sends
// without reading gets backpressure instead of a goroutine per answer.
// When the queue fills between the check and the send, the answer alone
// is queued by a new goroutine (its body and ext fields are the answer's,
// so req is still recycled at once).
func (c *Conn) FinishNoWait(req, resp *Command, err error) {
	if len(c.out) == cap(c.out) && c.ep.tr.Go(func() { c.finish(req, resp, err, true) }) {
		return
	}
	c.finish(req, resp, err, false)
}

func (c *Conn) finish(req, resp *Command, err error, wait bool) {
	c.answer(req, resp, err, wait)
	if req.recyclable {
		req.recycle()
	}
	<-c.sem
}

// runInline runs an inline handler on the read loop, recovering a panic as
// runHandler does.
func (c *Conn) runInline(h InlineHandler, req *Command) (resp *Command, err error) {
	defer c.recoverHandler(req, &resp, &err)
	return h(c, req)
}

// answer sends a handler's result for req.
func (c *Conn) answer(req, resp *Command, err error, wait bool) {
	if err != nil && resp != nil {
		runDone(resp.OnWritten) // the handler's response is replaced
		resp.releaseExt()
	}
	if err != nil && c.ctx.Err() != nil {
		// The connection closed or the server is shutting down; the
		// handler gave up because of that and nobody is listening.
		c.ep.log.Debug("remoting: handler ended after close", append(c.logAttrs(),
			slog.String("code", RequestCodeName(req.Code)), slog.Any("err", err))...)
		return
	}
	if err != nil {
		code, remark := errorCode(err)
		level := slog.LevelWarn
		if code != RespSystemError {
			level = slog.LevelDebug
		}
		c.ep.log.Log(c.ctx, level, "remoting: handler failed", append(c.logAttrs(),
			slog.String("code", RequestCodeName(req.Code)), slog.String("response", ResponseCodeName(code)), slog.Any("err", err))...)
		resp = req.Reply(code, remark)
	}
	if resp == nil {
		return
	}
	if err := c.reply(req, resp, wait); err != nil {
		if errors.Is(err, ErrConnClosed) {
			return
		}
		c.ep.log.Warn("remoting: cannot send response", append(c.logAttrs(),
			slog.String("code", RequestCodeName(req.Code)), slog.Any("err", err))...)
		_ = c.reply(req, req.Reply(RespSystemError, "response could not be sent: "+err.Error()), wait)
	}
}

func (c *Conn) runHandler(h Handler, req *Command) (resp *Command, err error) {
	defer c.recoverHandler(req, &resp, &err)
	return h(c.ctx, c, req)
}

// recoverHandler, deferred by runHandler and runInline, turns a handler's
// panic into an error answer (logged with its stack).
func (c *Conn) recoverHandler(req *Command, resp **Command, err *error) {
	r := recover()
	if r == nil {
		return
	}
	c.ep.log.Error("remoting: handler panicked", append(c.logAttrs(),
		slog.String("code", RequestCodeName(req.Code)), slog.Any("panic", r), slog.String("stack", string(debug.Stack())))...)
	*resp, *err = nil, fmt.Errorf("handler for %s panicked: %v", RequestCodeName(req.Code), r)
	req.recyclable = false // what it still references is unknown
}

// writeLoop writes queued frames, coalescing them in a buffered writer that
// is flushed whenever the queue is empty. When it ends (the connection is
// closed by then) it drops the frames still queued.
func (c *Conn) writeLoop() {
	defer c.dropQueued()
	bw := bufio.NewWriterSize(c.nc, writeBufSize)
	for {
		var f outFrame
		select {
		case f = <-c.out:
		case <-c.closing:
			return
		}
		if c.ep.writeTimeout > 0 {
			if err := c.nc.SetWriteDeadline(time.Now().Add(c.ep.writeTimeout)); err != nil {
				c.writeFailed(err)
				return
			}
		}
		if err := c.writeFrame(bw, f); err != nil {
			c.writeFailed(err)
			return
		}
		yielded := false
	drain:
		for {
			select {
			case f = <-c.out:
				if err := c.writeFrame(bw, f); err != nil {
					c.writeFailed(err)
					return
				}
			default:
				// Handlers completed by the same group commit are likely
				// runnable but not yet scheduled: give them one chance to
				// queue their responses so that one write carries them all.
				if !yielded {
					yielded = true
					runtime.Gosched()
					continue
				}
				break drain
			}
		}
		if err := bw.Flush(); err != nil {
			c.writeFailed(err)
			return
		}
	}
}

// writeFrame writes f into bw. bufio.Writer copies what it buffers and
// writes the rest before it returns, so f.body is free once it returns.
func (c *Conn) writeFrame(bw *bufio.Writer, f outFrame) error {
	_, err := bw.Write(*f.head)
	putBuf(f.head)
	if err == nil && len(f.body) > 0 {
		_, err = bw.Write(f.body)
	}
	runDone(f.done)
	return err
}

// dropQueued runs when the write goroutine ends: it stops Send from
// queueing (Send returns ErrConnClosed instead) and drops the frames
// already queued, running their done.
func (c *Conn) dropQueued() {
	c.outMu.Lock()
	c.outClosed = true
	c.outMu.Unlock()
	for {
		select {
		case f := <-c.out:
			putBuf(f.head)
			runDone(f.done)
		default:
			return
		}
	}
}

func (c *Conn) writeFailed(err error) {
	select {
	case <-c.closing:
		return
	default:
	}
	c.ep.log.Debug("remoting: write failed, closing connection", append(c.logAttrs(), slog.Any("err", err))...)
	c.close(fmt.Errorf("%w: write: %w", ErrConnClosed, err))
}
