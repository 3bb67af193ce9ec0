package remoting

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Handler answers one request. It runs on its own goroutine; ctx is cancelled
// when the connection closes or the server (or client) shuts down.
//
//   - (resp, nil): resp is sent unless the request is oneway. Its opaque,
//     response flag and serialization type are set from req.
//   - (nil, nil): nothing is sent. Use this for oneway requests and for
//     requests answered later through Conn.Reply (long polling).
//   - (_, err): the peer gets a response with err's code if err is or wraps
//     a *CodeError, and RespSystemError otherwise; the remark is the message.
//
// A panic in a handler is recovered, logged with its stack and answered with
// RespSystemError.
type Handler func(ctx context.Context, c *Conn, req *Command) (*Command, error)

// tracker starts goroutines and waits for them. After stop it refuses to
// start new ones, so a Wait after stop sees every goroutine ever started.
type tracker struct {
	mu      sync.RWMutex // guards stopped against concurrent Go
	stopped bool
	wg      sync.WaitGroup
}

// Go runs fn on a new tracked goroutine and reports whether it did; it does
// not after stop.
func (t *tracker) Go(fn func()) bool {
	if !t.enter() {
		return false
	}
	go func() {
		defer t.exit()
		fn()
	}()
	return true
}

// enter counts a goroutine about to start and reports whether it may; a
// goroutine started after a true enter must call exit when it returns. Go is
// enter + go + exit; hot paths use enter and exit directly to avoid the
// extra closure.
func (t *tracker) enter() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.stopped {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tracker) exit() { t.wg.Done() }

// stop makes Go refuse new goroutines.
func (t *tracker) stop() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
}

// wait waits for every tracked goroutine, or until ctx is done. The helper
// goroutine that waits outlives a cancelled ctx until the goroutines exit.
func (t *tracker) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		t.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// An InlineHandler runs on the connection's read loop, before a request
// would be handed to a handler goroutine, so it must not block: no disk or
// network I/O, no waiting on anything that may wait for I/O. It saves the
// hand-off to a handler goroutine on hot paths that can complete
// asynchronously (a send handed to the store with a completion callback).
// It returns
//
//   - (resp, err) as a Handler does: the request is answered at once;
//   - (nil, ErrDeferred): it took the request over and calls
//     Conn.Finish(req, resp, err) exactly once later, from any goroutine;
//     until then the request holds its handler slot, so the connection's
//     bound on requests in progress applies to deferred ones too;
//   - (nil, ErrNotInline): the request goes to the Handler registered for its
//     code, on a handler goroutine, as if there were no inline handler. It
//     must then not have kept or changed anything of req.
//
// A panic is recovered and answered with RespSystemError, as for a Handler.
type InlineHandler func(c *Conn, req *Command) (*Command, error)

// handlerTable maps request codes to handlers. Lookups are lock-free; Set
// copies the map.
type handlerTable struct {
	mu sync.Mutex // serialises writers
	m  atomic.Pointer[map[int32]handlerEntry]
}

// handlerEntry is what is registered for one request code.
type handlerEntry struct {
	h      Handler
	inline InlineHandler // tried first when set
}

func (t *handlerTable) get(code int32) handlerEntry {
	if m := t.m.Load(); m != nil {
		return (*m)[code]
	}
	return handlerEntry{}
}

func (t *handlerTable) set(code int32, h Handler) {
	t.update(code, func(e *handlerEntry) { e.h = h })
}

func (t *handlerTable) setInline(code int32, h InlineHandler) {
	t.update(code, func(e *handlerEntry) { e.inline = h })
}

func (t *handlerTable) update(code int32, f func(*handlerEntry)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.m.Load()
	m := make(map[int32]handlerEntry, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	e := m[code]
	f(&e)
	if e.h == nil && e.inline == nil {
		delete(m, code)
	} else {
		m[code] = e
	}
	t.m.Store(&m)
}

func lenOf(m *map[int32]handlerEntry) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// endpoint holds what the connections of one Server or Client share.
type endpoint struct {
	maxFrame     int
	idleTimeout  time.Duration // <= 0: none
	writeTimeout time.Duration // <= 0: none
	maxInFlight  int
	log          *slog.Logger
	tr           tracker
	handlers     handlerTable
	opaque       atomic.Int32
	// work hands requests to idle handler goroutines (see worker);
	// nil (a Client's endpoint) means a new goroutine per request. It is
	// unbuffered: a send succeeds only when a worker waits. done, closed
	// at shutdown, makes idle workers exit; idle counts them.
	work chan task
	done <-chan struct{}
	idle atomic.Int32
	// onClose runs once per connection, on its read goroutine, after the
	// connection is closed and its pending calls have failed.
	onClose func(*Conn)
}

func (ep *endpoint) nextOpaque() int32 { return ep.opaque.Add(1) }

var connIDs atomic.Uint64

// Defaults.
const (
	DefaultIdleTimeout  = 120 * time.Second // Java's serverChannelMaxIdleTimeSeconds
	DefaultWriteTimeout = 30 * time.Second
	// DefaultMaxInFlightPerConn bounds the handlers running at once for one
	// server connection. Handlers that park a request and return (nil, nil)
	// do not count while parked.
	DefaultMaxInFlightPerConn = 1024
	// DefaultDialTimeout applies when the dial context has no earlier deadline.
	DefaultDialTimeout = 3 * time.Second

	outQueueLen = 1024
	// maxIdleWorkers bounds the handler goroutines a Server keeps waiting
	// for requests (their stacks stay grown; a fresh goroutine per request
	// spends much of its time growing its stack).
	maxIdleWorkers = 128
	// idleWorkerTimeout ends an idle handler goroutine.
	idleWorkerTimeout = time.Second
	readBufSize       = 64 << 10
	writeBufSize      = 64 << 10
	maxPooledBuf      = 64 << 10
)

// bufPool holds buffers for encoded frame heads.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// orDefault returns v, or def when v is zero.
func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func loggerOr(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}
