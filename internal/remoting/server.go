package remoting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// ServerConfig configures a Server. Zero values mean the defaults.
type ServerConfig struct {
	// Addr is the TCP address to listen on; "127.0.0.1:0" picks a port.
	Addr string
	// MaxFrameSize bounds inbound and outbound frames, length field
	// included. Default DefaultMaxFrameSize (16 MiB).
	MaxFrameSize int
	// IdleTimeout closes a connection that sends nothing for this long.
	// Default DefaultIdleTimeout (120 s); negative disables it.
	IdleTimeout time.Duration
	// WriteTimeout closes a connection whose peer does not take our bytes
	// for this long. Default DefaultWriteTimeout (30 s); negative disables it.
	WriteTimeout time.Duration
	// MaxInFlightPerConn bounds the handlers running at once per
	// connection; when it is reached the connection's read loop waits.
	// Default DefaultMaxInFlightPerConn.
	MaxInFlightPerConn int
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger
}

// Server accepts remoting connections and dispatches their requests to
// handlers by request code.
//
// Lifecycle: NewServer binds the listener (so Addr is known at once), Handle
// and OnConnClose register callbacks (before or after Start), Start launches
// the accept loop, and Shutdown stops accepting, closes every connection,
// cancels handler contexts and waits for every goroutine the server started.
type Server struct {
	ln     net.Listener
	ep     *endpoint
	log    *slog.Logger
	ctx    context.Context // parent of every connection context
	cancel context.CancelFunc

	mu       sync.Mutex // guards the fields below
	conns    map[*Conn]struct{}
	hooks    []func(*Conn)
	started  bool
	shutdown bool

	closeOnce sync.Once
}

// NewServer validates cfg and binds the listener.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.MaxFrameSize < 0 || cfg.MaxInFlightPerConn < 0 {
		return nil, fmt.Errorf("remoting: invalid server config: MaxFrameSize %d, MaxInFlightPerConn %d must not be negative",
			cfg.MaxFrameSize, cfg.MaxInFlightPerConn)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("remoting: listen on %q: %w", cfg.Addr, err)
	}
	log := loggerOr(cfg.Logger)
	s := &Server{
		ln:    ln,
		log:   log,
		conns: make(map[*Conn]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ep = &endpoint{
		maxFrame:     orDefault(cfg.MaxFrameSize, DefaultMaxFrameSize),
		idleTimeout:  orDefault(cfg.IdleTimeout, DefaultIdleTimeout),
		writeTimeout: orDefault(cfg.WriteTimeout, DefaultWriteTimeout),
		maxInFlight:  orDefault(cfg.MaxInFlightPerConn, DefaultMaxInFlightPerConn),
		log:          log,
		onClose:      s.connClosed,
		work:         make(chan task),
		done:         s.ctx.Done(),
	}
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handle registers h for a request code, replacing any earlier handler; a
// nil h removes it. Requests with no handler are answered with
// RespRequestCodeNotSupported.
func (s *Server) Handle(code int32, h Handler) { s.ep.handlers.set(code, h) }

// HandleInline registers h to be tried on the read loop before the Handler
// of a request code (see InlineHandler); a nil h removes it. A code with an
// inline handler should also have a Handler, for what h declines
// (ErrNotInline).
func (s *Server) HandleInline(code int32, h InlineHandler) { s.ep.handlers.setInline(code, h) }

// OnConnClose registers fn to run once for every connection that closes,
// after its pending calls failed and its handler context was cancelled. It
// runs on the connection's read goroutine and should not block for long.
func (s *Server) OnConnClose(fn func(*Conn)) {
	s.mu.Lock()
	s.hooks = append(s.hooks, fn)
	s.mu.Unlock()
}

// NumConns returns the number of open connections.
func (s *Server) NumConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Start launches the accept loop. It fails after Shutdown or a second Start.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return ErrServerClosed
	}
	if s.started {
		return errors.New("remoting: server already started")
	}
	s.started = true
	if !s.ep.tr.Go(s.acceptLoop) {
		return ErrServerClosed
	}
	s.log.Info("remoting: server listening", slog.String("addr", s.ln.Addr().String()))
	return nil
}

// Shutdown stops accepting, closes every connection, cancels handler
// contexts and waits until every goroutine the server started has returned,
// or until ctx is done (then it returns ctx's error; the goroutines still
// finish in the background). It is idempotent: later calls wait again.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.ep.tr.stop()
		s.mu.Lock()
		s.shutdown = true
		conns := make([]*Conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		_ = s.ln.Close()
		s.cancel()
		for _, c := range conns {
			c.close(fmt.Errorf("%w: server shutting down", ErrConnClosed))
		}
	})
	if err := s.ep.tr.wait(ctx); err != nil {
		return fmt.Errorf("remoting: server shutdown: %w", err)
	}
	return nil
}

// Close is Shutdown without a deadline.
func (s *Server) Close() error { return s.Shutdown(context.Background()) }

func (s *Server) acceptLoop() {
	var delay time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off and retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("remoting: accept failed", slog.Any("err", err), slog.Duration("retry_in", delay))
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		s.serveConn(nc)
	}
}

func (s *Server) serveConn(nc net.Conn) {
	c := newConn(s.ctx, nc, s.ep)
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		c.close(fmt.Errorf("%w: server shutting down", ErrConnClosed))
		return
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.log.Debug("remoting: connection accepted", c.logAttrs()...)
	if !c.start() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}
}

// connClosed is the endpoint's onClose: forget c and run the hooks.
func (s *Server) connClosed(c *Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	hooks := s.hooks
	s.mu.Unlock()
	for _, fn := range hooks {
		fn(c)
	}
}
