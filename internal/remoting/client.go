package remoting

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// ClientConfig configures a Client. Zero values mean the defaults.
type ClientConfig struct {
	// DialTimeout bounds the dial when ctx has no earlier deadline.
	// Default DefaultDialTimeout.
	DialTimeout time.Duration
	// MaxFrameSize bounds inbound and outbound frames. Default
	// DefaultMaxFrameSize.
	MaxFrameSize int
	// IdleTimeout closes the connection when the server sends nothing for
	// this long. Default: none.
	IdleTimeout time.Duration
	// WriteTimeout closes the connection when the server does not take our
	// bytes for this long. Default DefaultWriteTimeout; negative disables it.
	WriteTimeout time.Duration
	// MaxInFlight bounds the handlers running at once for requests the
	// server pushes. Default 64.
	MaxInFlight int
	// Handlers answer requests the server pushes (CHECK_TRANSACTION_STATE,
	// NOTIFY_CONSUMER_IDS_CHANGED, ...), installed before the first frame
	// is read. More can be added with Client.HandleRequest.
	Handlers map[int32]Handler
	// Logger receives the client's logs. Default slog.Default().
	Logger *slog.Logger
}

const defaultClientMaxInFlight = 64

// Client is one connection to a remoting server, with request/response
// pairing by opaque. It does not reconnect: once Closed is closed, every call
// fails with ErrConnClosed and a new Client must be dialled (Pool does that).
// All methods are safe for concurrent use.
type Client struct {
	addr   string
	conn   *Conn
	ep     *endpoint
	cancel context.CancelFunc
}

// Dial connects to addr and starts the connection's read and write loops.
func Dial(ctx context.Context, addr string, cfg ClientConfig) (*Client, error) {
	if cfg.MaxFrameSize < 0 || cfg.MaxInFlight < 0 {
		return nil, fmt.Errorf("remoting: invalid client config: MaxFrameSize %d, MaxInFlight %d must not be negative",
			cfg.MaxFrameSize, cfg.MaxInFlight)
	}
	dctx := ctx
	if d := orDefault(cfg.DialTimeout, DefaultDialTimeout); d > 0 {
		var cancel context.CancelFunc
		dctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var dialer net.Dialer
	nc, err := dialer.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("remoting: dial %s: %w", addr, err)
	}
	ep := &endpoint{
		maxFrame:     orDefault(cfg.MaxFrameSize, DefaultMaxFrameSize),
		idleTimeout:  cfg.IdleTimeout,
		writeTimeout: orDefault(cfg.WriteTimeout, DefaultWriteTimeout),
		maxInFlight:  orDefault(cfg.MaxInFlight, defaultClientMaxInFlight),
		log:          loggerOr(cfg.Logger),
	}
	for code, h := range cfg.Handlers {
		ep.handlers.set(code, h)
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &Client{addr: addr, ep: ep, cancel: cancel}
	c.conn = newConn(cctx, nc, ep)
	c.conn.start()
	return c, nil
}

// Addr returns the address the client was dialled to.
func (c *Client) Addr() string { return c.addr }

// Conn returns the client's connection.
func (c *Client) Conn() *Conn { return c.conn }

// HandleRequest registers h for requests with the given code pushed by the
// server; a nil h removes it. Requests with no handler are answered with
// RespRequestCodeNotSupported unless they are oneway.
func (c *Client) HandleRequest(code int32, h Handler) { c.ep.handlers.set(code, h) }

// Invoke sends req and waits for its response until ctx is done or the
// connection closes. It assigns req.Opaque, so a Command must not be in two
// calls at once. A non-success response code is not an error; see
// Command.ResponseErr.
func (c *Client) Invoke(ctx context.Context, req *Command) (*Command, error) {
	return c.conn.Invoke(ctx, req)
}

// InvokeAsync sends req and calls cb once with the response or an error
// (ctx done, connection closed). cb runs on the connection's read goroutine
// (or on the goroutine that saw ctx done) and must not block: in
// particular it must not Invoke on this connection, whose response the
// read goroutine could then never read. If it returns an error, cb is not
// called.
func (c *Client) InvokeAsync(ctx context.Context, req *Command, cb func(*Command, error)) error {
	return c.conn.InvokeAsync(ctx, req, cb)
}

// InvokeOneway sends req with the oneway flag and returns once it is queued.
func (c *Client) InvokeOneway(req *Command) error { return c.conn.InvokeOneway(req) }

// Closed returns a channel closed when the connection closes.
func (c *Client) Closed() <-chan struct{} { return c.conn.Closed() }

// Close closes the connection, fails pending calls, cancels handler contexts
// and waits for the client's goroutines. It must not be called from one of
// the client's handlers or InvokeAsync callbacks, which it would wait for.
func (c *Client) Close() error {
	c.ep.tr.stop()
	c.conn.Close()
	c.cancel()
	return c.ep.tr.wait(context.Background())
}
