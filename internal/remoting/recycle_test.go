package remoting

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFrameBufClasses(t *testing.T) {
	for _, n := range []int{1, 4, 511, 512, 513, 1024, 1025, 4000, 40000, 65535, 65536} {
		bp := getFrameBuf(n)
		if len(*bp) != n || cap(*bp) < n || cap(*bp) > 2*max(n, 512) {
			t.Fatalf("getFrameBuf(%d): len %d cap %d", n, len(*bp), cap(*bp))
		}
		putFrameBuf(bp)
	}
	// A buffer whose capacity is not a class size is not pooled.
	b := make([]byte, 10, 1000)
	putFrameBuf(&b)
}

// payload is the body for seed: deterministic, so a handler can check it.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestRecycleConcurrent runs many concurrent requests whose frames are
// recycled (the handler marks them) next to parked requests that are not,
// and checks every body and ext field, on arrival and again when it is
// answered: a frame buffer or ext array reused while still referenced
// would show as a mismatch (or as a race under -race).
func TestRecycleConcurrent(t *testing.T) {
	const reqCode, parkCode = ReqSendMessage, ReqPullMessage
	check := func(req *Command) error {
		seed, err := req.ExtInt64("seed")
		if err != nil {
			return err
		}
		n, err := req.ExtInt32("len")
		if err != nil {
			return err
		}
		if want := payload(uint64(seed), int(n)); !bytes.Equal(req.Body, want) {
			return errors.New("body of seed " + strconv.FormatInt(seed, 10) + " corrupted")
		}
		if req.ExtStringOr("tag", "") != "t"+strconv.FormatInt(seed, 10) {
			return errors.New("ext fields of seed " + strconv.FormatInt(seed, 10) + " corrupted")
		}
		return nil
	}
	answer := func(req *Command) *Command {
		resp := req.Reply(RespSuccess, "")
		resp.SetExtInt("crc", int64(crc32.ChecksumIEEE(req.Body)))
		resp.SetExt("tag", req.ExtStringOr("tag", ""))
		return resp
	}
	var failures atomic.Int64
	s := startServer(t, ServerConfig{}, map[int32]Handler{
		reqCode: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			if err := check(req); err != nil {
				failures.Add(1)
				return nil, err
			}
			runtime.Gosched()
			if err := check(req); err != nil {
				failures.Add(1)
				return nil, err
			}
			resp := answer(req)
			req.MarkRecyclable()
			return resp, nil
		},
		parkCode: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			// Not marked: kept and answered later from another goroutine.
			go func() {
				time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
				if err := check(req); err != nil {
					failures.Add(1)
					_ = c.Reply(req, req.Reply(RespSystemError, err.Error()))
					return
				}
				_ = c.Reply(req, answer(req))
			}()
			return nil, nil
		},
	})
	cl := dial(t, s, ClientConfig{})
	const callers, perCaller = 16, 100
	var seeds atomic.Uint64
	var wg sync.WaitGroup
	type keptTag struct {
		seed uint64
		tag  string
	}
	keptBy := make([][]keptTag, callers)
	for g := range callers {
		wg.Go(func() {
			kept := keptBy[g][:0]
			defer func() { keptBy[g] = kept }()
			for i := range perCaller {
				seed := seeds.Add(1)
				n := []int{0, 100, 700, 1500, 5000, 20000, 70000}[rand.IntN(7)]
				body := payload(seed, n)
				code := int32(reqCode)
				if (g+i)%3 == 0 {
					code = parkCode
				}
				req := NewRequest(code, map[string]string{
					"seed": strconv.FormatUint(seed, 10), "len": strconv.Itoa(n), "tag": "t" + strconv.FormatUint(seed, 10)})
				if n > 0 {
					req.Body = body
				}
				if i%2 == 1 {
					req.SerializeType = SerializeRocketMQ
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				resp, err := cl.Invoke(ctx, req)
				cancel()
				if err != nil {
					t.Error(err)
					return
				}
				if resp.Code != RespSuccess {
					t.Errorf("seed %d: %v", seed, resp)
					return
				}
				if got := resp.ExtStringOr("crc", ""); got != strconv.FormatInt(int64(crc32.ChecksumIEEE(body)), 10) {
					t.Errorf("seed %d: crc %s", seed, got)
				}
				if got := resp.ExtStringOr("tag", ""); got != "t"+strconv.FormatUint(seed, 10) {
					t.Errorf("seed %d: tag %s", seed, got)
				}
				// Strings read from a released response stay valid while
				// its command and fields serve other frames.
				tag := resp.ExtStringOr("tag", "")
				resp.Release()
				kept = append(kept, keptTag{seed, tag})
			}
		})
	}
	wg.Wait()
	all := slices.Concat(keptBy...)
	if len(all) != callers*perCaller && !t.Failed() {
		t.Errorf("%d responses kept, want %d", len(all), callers*perCaller)
	}
	for _, k := range all {
		if k.tag != "t"+strconv.FormatUint(k.seed, 10) {
			t.Errorf("seed %d: tag read before Release became %q", k.seed, k.tag)
		}
	}
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d handler checks failed", n)
	}
}

// TestOnWrittenOnce: a handler's response body is released exactly once
// per response, after its bytes reached the peer intact.
func TestOnWrittenOnce(t *testing.T) {
	var sent, written atomic.Int64
	s := startServer(t, ServerConfig{}, map[int32]Handler{
		ReqPullMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			resp := req.Reply(RespSuccess, "")
			resp.Body = bytes.Repeat([]byte("b"), 3000)
			sent.Add(1)
			var once atomic.Bool
			resp.OnWritten = func() {
				if !once.CompareAndSwap(false, true) {
					t.Error("OnWritten called twice")
				}
				written.Add(1)
			}
			return resp, nil
		},
	})
	cl := dial(t, s, ClientConfig{})
	for range 100 {
		resp := invoke(t, cl, NewRequest(ReqPullMessage, nil))
		if len(resp.Body) != 3000 {
			t.Fatal(resp)
		}
	}
	eventually(t, "every OnWritten", func() bool { return written.Load() == sent.Load() })
}

// TestOnWrittenErrorPaths: OnWritten runs when Send fails, when a oneway
// request's response is dropped, and when a handler's response is replaced
// by its error.
func TestOnWrittenErrorPaths(t *testing.T) {
	var called atomic.Int64
	hook := func() { called.Add(1) }
	connCh := make(chan *Conn, 1)
	s := startServer(t, ServerConfig{MaxFrameSize: 64 << 10}, map[int32]Handler{
		ReqHeartBeat: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			select {
			case connCh <- c:
			default:
			}
			resp := req.Reply(RespSuccess, "")
			resp.OnWritten = hook
			return resp, nil
		},
		ReqSendMessage: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			resp := req.Reply(RespSuccess, "")
			resp.OnWritten = hook
			return resp, errors.New("replaced")
		},
	})
	cl := dial(t, s, ClientConfig{})
	invoke(t, cl, NewRequest(ReqHeartBeat, nil))
	c := <-connCh
	eventually(t, "heartbeat response written", func() bool { return called.Load() == 1 })

	// A oneway request: the handler's response is dropped.
	if err := cl.InvokeOneway(NewRequest(ReqHeartBeat, nil)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "oneway response dropped", func() bool { return called.Load() == 2 })

	// Response replaced by the handler's error.
	if resp := invoke(t, cl, NewRequest(ReqSendMessage, nil)); resp.Code != RespSystemError {
		t.Fatal(resp)
	}
	eventually(t, "replaced response", func() bool { return called.Load() == 3 })

	// Too large to send.
	big := &Command{Code: RespSuccess, Flag: FlagResponse, Body: make([]byte, 70<<10), OnWritten: hook}
	if err := c.Send(big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatal(err)
	}
	if called.Load() != 4 {
		t.Fatal(called.Load())
	}

	// Closed connection.
	c.Close()
	<-c.Closed()
	if err := c.Send(&Command{Code: RespSuccess, Flag: FlagResponse, OnWritten: hook}); !errors.Is(err, ErrConnClosed) {
		t.Fatal(err)
	}
	if called.Load() != 5 {
		t.Fatal(called.Load())
	}
}

// TestOnWrittenDroppedOnClose: frames queued behind a peer that does not
// read, and Sends blocked on the full queue, all see OnWritten exactly once
// when the connection closes.
func TestOnWrittenDroppedOnClose(t *testing.T) {
	connCh := make(chan *Conn, 1)
	s := startServer(t, ServerConfig{WriteTimeout: -1}, map[int32]Handler{
		ReqHeartBeat: func(ctx context.Context, c *Conn, req *Command) (*Command, error) {
			connCh <- c
			return nil, nil
		},
	})
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	frame, err := AppendFrame(nil, NewRequest(ReqHeartBeat, nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	c := <-connCh // the peer never reads from now on
	var sends, done atomic.Int64
	body := make([]byte, 32<<10)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 400 {
				sends.Add(1)
				var once atomic.Bool
				err := c.Send(&Command{Code: RespSuccess, Flag: FlagResponse, Opaque: 1, Body: body, OnWritten: func() {
					if !once.CompareAndSwap(false, true) {
						t.Error("OnWritten called twice")
					}
					done.Add(1)
				}})
				if err != nil {
					return
				}
			}
		})
	}
	// Let the socket buffers and the queue fill up, then close.
	eventually(t, "queue full", func() bool { return len(c.out) == cap(c.out) })
	c.Close()
	wg.Wait()
	eventually(t, "every OnWritten", func() bool { return done.Load() == sends.Load() })
}
