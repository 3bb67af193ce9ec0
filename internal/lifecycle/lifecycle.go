// Package lifecycle holds the goroutine-ownership helpers the services that
// follow the commit log (transactions, schedule) share: a Group that is the
// one place a service starts goroutines and that Close waits on, and Every,
// a ticker loop bound to a context.
package lifecycle

import (
	"context"
	"sync"
	"time"
)

// Group owns the goroutines a component starts: Go runs each with the
// group's context, Stop cancels that context and waits for all of them.
// The zero value is ready; Stop is idempotent.
type Group struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Go runs f on a new goroutine tracked by the group, with a context that
// Stop cancels.
func (g *Group) Go(f func(ctx context.Context)) {
	g.mu.Lock()
	if g.ctx == nil {
		g.ctx, g.cancel = context.WithCancel(context.Background())
	}
	ctx := g.ctx
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		f(ctx)
	}()
}

// Stop cancels the group's context and returns once every goroutine
// started by Go has returned.
func (g *Group) Stop() {
	g.mu.Lock()
	if g.cancel != nil {
		g.cancel()
	}
	g.mu.Unlock()
	g.wg.Wait()
}

// Every calls fn every d until ctx is done; the first call is after d.
func Every(ctx context.Context, d time.Duration, fn func()) { EveryOrWake(ctx, d, nil, fn) }

// EveryOrWake is Every that also calls fn as soon as wake delivers (a nil
// wake never does).
func EveryOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
		fn()
	}
}
