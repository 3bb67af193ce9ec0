// Package testutil runs txmq's servers inside tests: RunNamesrv, RunBroker
// (an embedded name server plus a broker on 127.0.0.1 port 0, data in
// t.TempDir(), small files, logs to t.Log, ready when its TBW102 route is
// served, shut down by t.Cleanup), Eventually for polling, and
// NewTestLogger.
package testutil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/namesrv"
)

// Eventually calls fn until it returns nil, every few milliseconds, and
// fails the test with fn's last error when timeout passes first. Call it
// from the test goroutine.
func Eventually(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	if err := Poll(timeout, fn); err != nil {
		t.Fatalf("condition not met within %v: %v", timeout, err)
	}
}

// Poll calls fn until it returns nil or timeout passes, and returns fn's
// last error in the second case. Safe on any goroutine.
func Poll(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(wait)
		wait = min(2*wait, 20*time.Millisecond)
	}
}

// NewTestLogger returns a logger that writes to t.Log, so logs show only
// for failed tests (or with -v). Level: TXMQ_TEST_LOG_LEVEL (debug, info,
// warn, error), default info. Records logged after the test finished are
// dropped instead of panicking.
func NewTestLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	level := slog.LevelInfo
	if v := os.Getenv("TXMQ_TEST_LOG_LEVEL"); v != "" {
		_ = level.UnmarshalText([]byte(v))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	t      testing.TB
	mu     sync.Mutex // guards closed and serialises t.Log
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

var _ io.Writer = (*testWriter)(nil)

// RunNamesrv starts a name server on 127.0.0.1 with a free port and stops
// it when the test ends.
func RunNamesrv(t testing.TB) *namesrv.Server {
	t.Helper()
	ns, err := namesrv.New(namesrv.Config{Addr: "127.0.0.1:0", Logger: NewTestLogger(t).With("test", "namesrv")})
	if err != nil {
		t.Fatalf("testutil: name server: %v", err)
	}
	if err := ns.Start(); err != nil {
		t.Fatalf("testutil: start name server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ns.Shutdown(ctx); err != nil {
			t.Errorf("testutil: name server shutdown: %v", err)
		}
	})
	return ns
}

// errf is fmt.Errorf, kept short for the readiness checks.
var errf = fmt.Errorf
