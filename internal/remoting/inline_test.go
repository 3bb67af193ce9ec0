package remoting

import (
	"context"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestInlineHandler covers the four outcomes of an InlineHandler: answered
// at once, deferred and finished from another goroutine (FinishNoWait),
// declined to the code's Handler, and a recovered panic; and that deferred
// requests hold their handler slot until they finish.
func TestInlineHandler(t *testing.T) {
	const code = 9001
	var inFlight sync.WaitGroup
	s := startServer(t, ServerConfig{MaxInFlightPerConn: 4}, map[int32]Handler{
		code: func(_ context.Context, _ *Conn, req *Command) (*Command, error) {
			return req.Reply(RespSuccess, "handler:"+string(req.Body)), nil
		},
	})
	release := make(chan struct{})
	s.HandleInline(code, func(c *Conn, req *Command) (*Command, error) {
		switch string(req.Body) {
		case "now":
			return req.Reply(RespSuccess, "inline:now"), nil
		case "defer":
			inFlight.Add(1)
			go func() {
				defer inFlight.Done()
				<-release
				c.FinishNoWait(req, req.Reply(RespSuccess, "inline:deferred"), nil)
			}()
			return nil, ErrDeferred
		case "fail":
			return nil, &CodeError{Code: RespSystemBusy, Msg: "busy"}
		case "panic":
			panic("inline boom")
		default:
			return nil, ErrNotInline
		}
	})
	cl := dial(t, s, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call := func(body string) *Command {
		t.Helper()
		req := NewRequest(code, nil)
		req.Body = []byte(body)
		resp, err := cl.Invoke(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return resp
	}
	for _, tc := range []struct {
		body   string
		code   int32
		remark string
	}{
		{"now", RespSuccess, "inline:now"},
		{"other", RespSuccess, "handler:other"},
		{"fail", RespSystemBusy, "busy"},
		{"panic", RespSystemError, "panicked"},
	} {
		if r := call(tc.body); r.Code != tc.code || !strings.Contains(r.Remark, tc.remark) {
			t.Errorf("%s: got %d %q, want %d %q", tc.body, r.Code, r.Remark, tc.code, tc.remark)
		}
	}

	// Four deferred requests take the connection's four handler slots: a
	// fifth request waits until one of them finishes.
	type result struct {
		resp *Command
		err  error
	}
	deferred := make(chan result, 4)
	for range 4 {
		go func() {
			req := NewRequest(code, nil)
			req.Body = []byte("defer")
			resp, err := cl.Invoke(ctx, req)
			deferred <- result{resp, err}
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the four reach the server
	fifth := make(chan *Command, 1)
	go func() { fifth <- call("now") }()
	select {
	case r := <-fifth:
		t.Fatalf("a fifth request was served while four deferred ones held every slot: %q", r.Remark)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	for range 4 {
		r := <-deferred
		if r.err != nil || r.resp.Remark != "inline:deferred" {
			t.Errorf("deferred: %v %+v", r.err, r.resp)
		}
	}
	if r := <-fifth; r.Remark != "inline:now" {
		t.Errorf("fifth: %q", r.Remark)
	}
	inFlight.Wait()
}

// A peer that sends requests but does not read the answers gets
// backpressure, not a goroutine per answer: answers finished with
// FinishNoWait while the connection's write queue is full hold their
// handler slots until queued, so reading pauses once the slots are
// taken, and the goroutines waiting stay within MaxInFlightPerConn.
func TestFinishNoWaitBoundedWhenPeerStopsReading(t *testing.T) {
	const code, slots, requests = 9002, 16, 4000
	s := startServer(t, ServerConfig{MaxInFlightPerConn: slots}, nil)
	type deferred struct {
		c   *Conn
		req *Command
	}
	completions := make(chan deferred, requests)
	var completed atomic.Int64
	body := make([]byte, 16<<10) // answers fill the socket buffers quickly
	// The store's committer: completes in order, never blocks.
	go func() {
		for d := range completions {
			resp := d.req.Reply(RespSuccess, "")
			resp.Body = body
			d.c.FinishNoWait(d.req, resp, nil)
			completed.Add(1)
		}
	}()
	defer close(completions)
	s.HandleInline(code, func(c *Conn, req *Command) (*Command, error) {
		completions <- deferred{c, req}
		return nil, ErrDeferred
	})

	base := runtime.NumGoroutine()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	go func() { // never reads; blocks once the server stops reading
		var buf []byte
		for i := range requests {
			req := NewRequest(code, nil)
			req.Opaque = int32(i)
			buf, _ = AppendFrame(buf[:0], req)
			if _, err := nc.Write(buf); err != nil {
				return
			}
		}
	}()
	// Wait until the completions stop moving.
	last, still := int64(-1), 0
	for deadline := time.Now().Add(20 * time.Second); still < 30 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if n := completed.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	extra := runtime.NumGoroutine() - base
	t.Logf("%d of %d requests answered while the peer did not read; %d goroutines more than before", completed.Load(), requests, extra)
	if extra > slots+16 {
		t.Fatalf("%d more goroutines with the peer not reading (handler slots %d): answers are queued by a goroutine each", extra, slots)
	}
	if completed.Load() >= requests {
		t.Fatalf("all %d requests were read while their answers could not be written: no backpressure", requests)
	}
}
