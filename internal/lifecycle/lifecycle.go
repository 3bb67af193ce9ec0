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

// Group tracks the goroutines a component starts. The zero value is ready.
type Group struct{ wg sync.WaitGroup }

// Go runs f on a new goroutine tracked by the group.
func (g *Group) Go(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

// Wait returns once every goroutine started by Go has returned.
func (g *Group) Wait() { g.wg.Wait() }

// Every calls fn every d until ctx is done; the first call is after d.
func Every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
