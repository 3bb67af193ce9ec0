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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/testutil/testkit"
)

// testLogger routes logs to t.Log, so they show only when a test fails.
func testLogger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// startServer starts a server on a loopback port with the given handlers
// and shuts it down (checking that it finishes) when the test ends.
func startServer(t testing.TB, cfg ServerConfig, handlers map[int32]Handler) *Server {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for code, h := range handlers {
		s.Handle(code, h)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

func dial(t testing.TB, s *Server, cfg ClientConfig) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := Dial(context.Background(), s.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func invoke(t testing.TB, c *Client, req *Command) *Command {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Invoke(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func echo(ctx context.Context, c *Conn, req *Command) (*Command, error) {
	resp := req.Reply(RespSuccess, "echo")
	resp.ExtFields = req.ExtFields
	resp.Body = req.Body
	return resp, nil
}

func TestRemotingServerRequestResponse(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[int32]Handler{ReqSendMessage: echo})
	c := dial(t, s, ClientConfig{})
	for _, st := range []SerializeType{SerializeJSON, SerializeRocketMQ} {
		req := NewRequest(ReqSendMessage, map[string]string{"topic": "T", "quote": `"x"`})
		req.Body = []byte("payload")
		req.SerializeType = st
		resp := invoke(t, c, req)
		if resp.Code != RespSuccess || resp.Remark != "echo" || string(resp.Body) != "payload" ||
			resp.ExtStringOr("quote", "") != `"x"` || resp.Opaque != req.Opaque || !resp.IsResponse() {
			t.Fatalf("%s: response %v", st, resp)
		}
		if resp.SerializeType != st {
			t.Fatalf("response serialized as %s, request as %s", resp.SerializeType, st)
		}
	}
	if s.NumConns() != 1 {
		t.Fatalf("%d conns", s.NumConns())
	}
}

func TestRemotingServerConcurrentRequestsMatched(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[int32]Handler{
		ReqSendMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			// Finish out of order.
			n, _ := req.ExtInt32("n")
			time.Sleep(time.Duration(n%5) * time.Millisecond)
			return echo(ctx, c, req)
		},
	})
	c := dial(t, s, ClientConfig{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Go(func() {
			for i := range 30 {
				id := strconv.Itoa(g*1000 + i)
				req := NewRequest(ReqSendMessage, map[string]string{"id": id, "n": strconv.Itoa(i)})
				req.Body = []byte(id)
				resp, err := c.Invoke(context.Background(), req)
				if err != nil {
					errs <- err
					return
				}
				if resp.ExtStringOr("id", "") != id || string(resp.Body) != id {
					errs <- fmt.Errorf("request %s got response %v", id, resp)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestRemotingServerUnknownCode(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[int32]Handler{ReqSendMessage: echo})
	c := dial(t, s, ClientConfig{})
	resp := invoke(t, c, NewRequest(999, nil))
	if resp.Code != RespRequestCodeNotSupported || !strings.Contains(resp.Remark, "999") {
		t.Fatalf("unknown code: %v", resp)
	}
	resp = invoke(t, c, NewRequest(ReqPullMessage, nil))
	if resp.Code != RespRequestCodeNotSupported || !strings.Contains(resp.Remark, "PULL_MESSAGE") {
		t.Fatalf("unregistered code: %v", resp)
	}
	if resp := invoke(t, c, NewRequest(ReqSendMessage, nil)); resp.Code != RespSuccess {
		t.Fatalf("connection unusable after unknown code: %v", resp)
	}
}

func TestRemotingServerHandlerErrorsAndPanics(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[int32]Handler{
		ReqSendMessage: echo,
		1: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			panic("boom")
		},
		2: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			return nil, errors.New("disk on fire")
		},
		3: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			return nil, fmt.Errorf("lookup: %w", Errorf(RespTopicNotExist, "topic %s not exist", "T"))
		},
	})
	c := dial(t, s, ClientConfig{})
	cases := []struct {
		code   int32
		want   int32
		remark string
	}{
		{1, RespSystemError, "boom"},
		{2, RespSystemError, "disk on fire"},
		{3, RespTopicNotExist, "topic T not exist"},
	}
	for _, tc := range cases {
		resp := invoke(t, c, NewRequest(tc.code, nil))
		if resp.Code != tc.want || !strings.Contains(resp.Remark, tc.remark) {
			t.Fatalf("code %d: %v", tc.code, resp)
		}
	}
	if resp := invoke(t, c, NewRequest(ReqSendMessage, nil)); resp.Code != RespSuccess {
		t.Fatalf("server unusable after a panic: %v", resp)
	}
}

func TestRemotingServerResponseTooLarge(t *testing.T) {
	s := startServer(t, ServerConfig{MaxFrameSize: 1 << 16}, map[int32]Handler{
		ReqPullMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			resp := req.Reply(RespSuccess, "")
			resp.Body = make([]byte, 1<<17)
			return resp, nil
		},
	})
	c := dial(t, s, ClientConfig{})
	resp := invoke(t, c, NewRequest(ReqPullMessage, nil))
	if resp.Code != RespSystemError || !strings.Contains(resp.Remark, "too large") {
		t.Fatalf("%v", resp)
	}
	// And a client refuses to send a frame the limit forbids.
	small := dial(t, s, ClientConfig{MaxFrameSize: 1024})
	req := NewRequest(ReqSendMessage, nil)
	req.Body = make([]byte, 2048)
	if _, err := small.Invoke(context.Background(), req); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize request: %v", err)
	}
}

// A request without the oneway bit is answered even when the handler treats
// it as fire-and-forget (G2's END_TRANSACTION); one with the bit is run but
// not answered.
func TestRemotingServerOneway(t *testing.T) {
	ran := make(chan int32, 4)
	s := startServer(t, ServerConfig{}, map[int32]Handler{
		ReqEndTransaction: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			ran <- req.Opaque
			return req.Reply(RespSuccess, ""), nil
		},
		999: nil,
	})
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var out []byte
	oneway := &Command{Code: ReqEndTransaction, Opaque: 1, Flag: FlagOneway}
	unknownOneway := &Command{Code: 999, Opaque: 2, Flag: FlagOneway}
	g2 := &Command{Code: ReqEndTransaction, Opaque: 3} // flag 0, as G2 sends it
	for _, c := range []*Command{oneway, unknownOneway, g2} {
		if out, err = AppendFrame(out, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nc.Write(out); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := ReadFrame(bufio.NewReader(nc), 0)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Opaque != 3 || !resp.IsResponse() {
		t.Fatalf("first response should answer opaque 3: %v", resp)
	}
	got := map[int32]bool{<-ran: true, <-ran: true}
	if !got[1] || !got[3] {
		t.Fatalf("handler ran for %v", got)
	}
}

func TestRemotingServerAsyncReply(t *testing.T) {
	type parked struct {
		c   *Conn
		req *Command
	}
	parkedCh := make(chan parked, 1)
	s := startServer(t, ServerConfig{MaxInFlightPerConn: 1}, map[int32]Handler{
		ReqPullMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			parkedCh <- parked{c, req}
			return nil, nil // answered later
		},
		ReqSendMessage: echo,
	})
	cl := dial(t, s, ClientConfig{})
	done := make(chan *Command, 1)
	if err := cl.InvokeAsync(context.Background(), NewRequest(ReqPullMessage, nil), func(resp *Command, err error) {
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}); err != nil {
		t.Fatal(err)
	}
	p := <-parkedCh
	// The parked request holds no handler slot: with a bound of 1 another
	// request still runs.
	if resp := invoke(t, cl, NewRequest(ReqSendMessage, nil)); resp.Code != RespSuccess {
		t.Fatal(resp)
	}
	resp := NewResponse(RespPullNotFound, "no new message")
	go func() {
		if err := p.c.Reply(p.req, resp); err != nil {
			t.Error(err)
		}
	}()
	select {
	case r := <-done:
		if r.Code != RespPullNotFound {
			t.Fatal(r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("async reply never arrived")
	}
}

func TestRemotingServerBackPressure(t *testing.T) {
	var running, peak atomic.Int32
	release := make(chan struct{})
	s := startServer(t, ServerConfig{MaxInFlightPerConn: 2}, map[int32]Handler{
		ReqSendMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			return req.Reply(RespSuccess, ""), nil
		},
	})
	c := dial(t, s, ClientConfig{})
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() { invoke(t, c, NewRequest(ReqSendMessage, nil)) })
	}
	eventually(t, "two handlers running", func() bool { return running.Load() == 2 })
	time.Sleep(20 * time.Millisecond)
	if peak.Load() != 2 {
		t.Fatalf("peak %d handlers with a bound of 2", peak.Load())
	}
	close(release)
	wg.Wait()
	if peak.Load() != 2 {
		t.Fatalf("peak %d", peak.Load())
	}
}

// The server pushes requests to a client on the client's own connection:
// sync (GET_CONSUMER_RUNNING_INFO) and oneway (CHECK_TRANSACTION_STATE).
func TestRemotingServerPushesRequests(t *testing.T) {
	conns := make(chan *Conn, 1)
	s := startServer(t, ServerConfig{}, map[int32]Handler{
		ReqHeartBeat: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			c.SetValue("clientID", string(req.Body))
			conns <- c
			return req.Reply(RespSuccess, ""), nil
		},
	})
	checks := make(chan *Command, 1)
	c := dial(t, s, ClientConfig{Handlers: map[int32]Handler{
		ReqGetConsumerRunningInfo: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			resp := req.Reply(RespSuccess, "")
			resp.Body = []byte(`{"group":"` + req.ExtStringOr("consumerGroup", "") + `"}`)
			return resp, nil
		},
	}})
	c.HandleRequest(ReqCheckTransactionState, func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
		checks <- req
		return nil, nil
	})
	hb := NewRequest(ReqHeartBeat, nil)
	hb.Body = []byte("10.0.0.1@123")
	invoke(t, c, hb)
	sc := <-conns
	if sc.Value("clientID") != "10.0.0.1@123" {
		t.Fatal(sc.Value("clientID"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := sc.Invoke(ctx, NewRequest(ReqGetConsumerRunningInfo, map[string]string{"consumerGroup": "CG"}))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Code != RespSuccess || string(resp.Body) != `{"group":"CG"}` {
		t.Fatal(resp)
	}

	if err := sc.InvokeOneway(NewRequest(ReqCheckTransactionState, map[string]string{"msgId": "M"})); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-checks:
		if !req.IsOneway() || req.ExtStringOr("msgId", "") != "M" {
			t.Fatal(req)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("check never arrived")
	}

	// A pushed request the client does not handle is answered, not dropped.
	resp, err = sc.Invoke(ctx, NewRequest(ReqConsumeMessageDirectly, nil))
	if err != nil || resp.Code != RespRequestCodeNotSupported {
		t.Fatalf("%v %v", resp, err)
	}
}

func TestRemotingServerConnCloseCancelsHandler(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan struct{})
	s := startServer(t, ServerConfig{}, map[int32]Handler{
		ReqPullMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			close(started)
			<-ctx.Done()
			close(cancelled)
			return nil, ctx.Err()
		},
	})
	closedConns := make(chan *Conn, 1)
	s.OnConnClose(func(c *Conn) { closedConns <- c })
	c := dial(t, s, ClientConfig{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Invoke(context.Background(), NewRequest(ReqPullMessage, nil))
		errc <- err
	}()
	<-started
	c.Close()
	if err := <-errc; !errors.Is(err, ErrConnClosed) {
		t.Fatalf("pending call: %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("handler context not cancelled")
	}
	select {
	case sc := <-closedConns:
		if sc.Err() == nil || sc.RemoteAddr().String() != c.Conn().LocalAddr().String() {
			t.Fatalf("closed conn %v err %v", sc, sc.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnConnClose not called")
	}
	eventually(t, "conn forgotten", func() bool { return s.NumConns() == 0 })
}

// Pending client calls fail at once when the server drops the connection.
func TestRemotingClientPendingFailOnDrop(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[int32]Handler{
		ReqPullMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			c.Close()
			return nil, nil
		},
	})
	c := dial(t, s, ClientConfig{})
	start := time.Now()
	_, err := c.Invoke(context.Background(), NewRequest(ReqPullMessage, nil))
	if !errors.Is(err, ErrConnClosed) || time.Since(start) > 2*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
	if _, err := c.Invoke(context.Background(), NewRequest(ReqPullMessage, nil)); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("call on a dead client: %v", err)
	}
	if err := c.InvokeOneway(NewRequest(ReqPullMessage, nil)); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("oneway on a dead client: %v", err)
	}
}

func TestRemotingClientTimeoutThenLateResponse(t *testing.T) {
	release := make(chan struct{})
	s := startServer(t, ServerConfig{}, map[int32]Handler{
		ReqPullMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			<-release
			return req.Reply(RespSuccess, "late"), nil
		},
		ReqSendMessage: echo,
	})
	c := dial(t, s, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Invoke(ctx, NewRequest(ReqPullMessage, nil)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	asyncErr := make(chan error, 1)
	actx, acancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer acancel()
	if err := c.InvokeAsync(actx, NewRequest(ReqPullMessage, nil), func(_ *Command, err error) { asyncErr <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-asyncErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("async: %v", err)
	}
	close(release) // the late responses are dropped silently
	for range 3 {
		if resp := invoke(t, c, NewRequest(ReqSendMessage, nil)); resp.Code != RespSuccess || resp.Remark != "echo" {
			t.Fatal(resp)
		}
	}
}

func TestRemotingServerIdleTimeout(t *testing.T) {
	s := startServer(t, ServerConfig{IdleTimeout: 150 * time.Millisecond}, nil)
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read: %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("closed after %v, before the idle timeout", d)
	}
}

func TestRemotingServerGarbageClosesOnlyThatConn(t *testing.T) {
	s := startServer(t, ServerConfig{}, map[int32]Handler{ReqSendMessage: echo})
	good := dial(t, s, ClientConfig{})
	invoke(t, good, NewRequest(ReqSendMessage, nil))

	garbage := [][]byte{
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),    // length prefix "GET " is huge
		frame(9, []byte("{}"), nil),                    // unknown serialize type
		frame(SerializeJSON, []byte(`{"code":}`), nil), // bad JSON
		{0, 0, 0, 1, 0}, // length too short
		frame(SerializeRocketMQ, []byte{1, 2, 3}, []byte("xyz")), // short binary header
	}
	for i, g := range garbage {
		nc, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Write(g); err != nil {
			t.Fatal(err)
		}
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := nc.Read(make([]byte, 64)); err != io.EOF {
			t.Fatalf("garbage %d: read %d bytes, %v; want EOF", i, n, err)
		}
		nc.Close()
	}
	if resp := invoke(t, good, NewRequest(ReqSendMessage, nil)); resp.Code != RespSuccess {
		t.Fatal(resp)
	}
}

// Shutdown closes connections, cancels handlers and waits for every
// goroutine; afterwards none of the package's goroutines are left.
func TestRemotingServerShutdownWaitsForGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	s, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var handlersDone atomic.Int32
	started := make(chan struct{}, 8)
	s.Handle(ReqPullMessage, func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
		started <- struct{}{}
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // slow to finish: Shutdown must wait
		handlersDone.Add(1)
		return nil, ctx.Err()
	})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	var clients []*Client
	for range 4 {
		c, err := Dial(context.Background(), s.Addr().String(), ClientConfig{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		for range 2 {
			c.InvokeAsync(context.Background(), NewRequest(ReqPullMessage, nil), func(*Command, error) {})
		}
	}
	for range 8 {
		<-started
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := handlersDone.Load(); n != 8 {
		t.Fatalf("Shutdown returned with %d of 8 handlers finished", n)
	}
	if err := s.Shutdown(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := s.Start(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
	for _, c := range clients {
		<-c.Closed()
		c.Close()
	}
	eventually(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

func TestRemotingPoolReconnects(t *testing.T) {
	var serverConns sync.Map
	s := startServer(t, ServerConfig{}, map[int32]Handler{
		ReqSendMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			serverConns.Store(c, true)
			return req.Reply(RespSuccess, strconv.FormatUint(c.ID(), 10)), nil
		},
	})
	p := NewPool(ClientConfig{Logger: testLogger(t)})
	defer p.Close()
	ctx := context.Background()
	addr := s.Addr().String()
	r1, err := p.Invoke(ctx, addr, NewRequest(ReqSendMessage, nil))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := p.Invoke(ctx, addr, NewRequest(ReqSendMessage, nil))
	if err != nil || r2.Remark != r1.Remark {
		t.Fatalf("second call used another connection: %v %v", r2, err)
	}
	c1, _ := p.Get(ctx, addr)
	serverConns.Range(func(k, _ any) bool { k.(*Conn).Close(); return true })
	<-c1.Closed()
	r3, err := p.Invoke(ctx, addr, NewRequest(ReqSendMessage, nil))
	if err != nil || r3.Remark == r1.Remark {
		t.Fatalf("no reconnect: %v %v", r3, err)
	}
	if _, err := p.Get(ctx, "127.0.0.1:1"); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	p.Close()
	if _, err := p.Get(ctx, addr); !errors.Is(err, ErrPoolClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

// countingConn counts Write calls (system calls, for a TCP connection).
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// Frames queued together leave in one write, not one write per frame.
func TestRemotingConnCoalescesWrites(t *testing.T) {
	local, remote := net.Pipe()
	cc := &countingConn{Conn: local}
	ep := &endpoint{maxFrame: DefaultMaxFrameSize, maxInFlight: 1, log: testLogger(t)}
	c := newConn(context.Background(), cc, ep)
	const frames = 100
	for i := range frames {
		req := NewRequest(ReqSendMessage, map[string]string{"i": strconv.Itoa(i)})
		req.Opaque = int32(i)
		req.Body = []byte("body")
		if err := c.Send(req); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan error, 1)
	go func() {
		br := bufio.NewReader(remote)
		for i := range frames {
			cmd, err := ReadFrame(br, 0)
			if err != nil {
				got <- err
				return
			}
			if cmd.Opaque != int32(i) || cmd.ExtStringOr("i", "") != strconv.Itoa(i) || string(cmd.Body) != "body" {
				got <- fmt.Errorf("frame %d: %v", i, cmd)
				return
			}
		}
		got <- nil
	}()
	c.start()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if n := cc.writes.Load(); n > 2 {
		t.Fatalf("%d writes for %d queued frames", n, frames)
	}
	c.Close()
	remote.Close()
	ep.tr.stop()
	if err := ep.tr.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A connection whose handler slots stay full pauses reading; a pause of a
// second or more is logged, so a stuck handler shows in the broker's log.
func TestRemotingServerLogsPausedReading(t *testing.T) {
	var logs testkit.LogBuffer
	release := make(chan struct{})
	s := startServer(t, ServerConfig{MaxInFlightPerConn: 1, Logger: logs.Logger()},
		map[int32]Handler{
			ReqSendMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
				<-release
				return req.Reply(RespSuccess, ""), nil
			},
		})
	c := dial(t, s, ClientConfig{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { invoke(t, c, NewRequest(ReqSendMessage, nil)) })
	}
	time.Sleep(slowSlotWait + 200*time.Millisecond)
	if strings.Contains(logs.String(), "reading paused") {
		t.Fatalf("logged before the pause ended:\n%s", logs.String())
	}
	close(release)
	wg.Wait()
	if out := logs.String(); !strings.Contains(out, "remoting: reading paused") || !strings.Contains(out, "paused=") {
		t.Fatalf("the paused reading was not logged:\n%s", out)
	}
}

// TrySend never waits: with the outbound queue full it queues nothing,
// runs OnWritten once and says so; once the peer reads again it sends.
func TestRemotingConnTrySendQueueFull(t *testing.T) {
	local, remote := net.Pipe()
	ep := &endpoint{maxFrame: DefaultMaxFrameSize, maxInFlight: 1, log: testLogger(t)}
	c := newConn(context.Background(), local, ep)
	frame := func(i int) *Command {
		req := NewRequest(ReqCheckTransactionState, map[string]string{"i": strconv.Itoa(i)})
		req.Body = []byte("body")
		return req
	}
	// Nothing writes yet: the queue fills up without blocking.
	for i := range outQueueLen {
		if err := c.TryInvokeOneway(frame(i)); err != nil {
			t.Fatalf("frame %d of %d: %v", i, outQueueLen, err)
		}
	}
	var written atomic.Int32
	req := frame(-1)
	req.OnWritten = func() { written.Add(1) }
	if err := c.TryInvokeOneway(req); !errors.Is(err, ErrWriteQueueFull) {
		t.Fatalf("TrySend to a full queue: %v, want ErrWriteQueueFull", err)
	}
	if n := written.Load(); n != 1 {
		t.Fatalf("OnWritten ran %d times for a frame not queued", n)
	}
	// The peer reads everything queued, and then the frame sent after.
	got := make(chan error, 1)
	go func() {
		br := bufio.NewReader(remote)
		for i := range outQueueLen + 1 {
			cmd, err := ReadFrame(br, 0)
			if err != nil {
				got <- err
				return
			}
			want := strconv.Itoa(i)
			if i == outQueueLen {
				want = "last"
			}
			if s := cmd.ExtStringOr("i", ""); s != want {
				got <- fmt.Errorf("frame %d: i=%q, want %q", i, s, want)
				return
			}
		}
		got <- nil
	}()
	c.start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		req := NewRequest(ReqCheckTransactionState, map[string]string{"i": "last"})
		err := c.TryInvokeOneway(req)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrWriteQueueFull) || time.Now().After(deadline) {
			t.Fatalf("TrySend while the peer reads: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	c.Close()
	remote.Close()
	if err := c.TryInvokeOneway(frame(0)); !errors.Is(err, ErrConnClosed) {
		t.Fatalf("TrySend after Close: %v, want ErrConnClosed", err)
	}
	ep.tr.stop()
	if err := ep.tr.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}
