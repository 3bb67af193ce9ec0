package lifecycle

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestGroupAndEvery(t *testing.T) {
	var g Group
	var n atomic.Int64
	g.Go(func(ctx context.Context) { Every(ctx, time.Millisecond, func() { n.Add(1) }) })
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Every never ticked three times")
		}
		time.Sleep(time.Millisecond)
	}
	g.Stop() // cancels the loop's context and returns once it has stopped
	g.Stop() // idempotent
	after := n.Load()
	time.Sleep(10 * time.Millisecond)
	if n.Load() != after {
		t.Fatal("Every kept running after its context was done")
	}
}

func TestEveryOrWake(t *testing.T) {
	var g Group
	wake := make(chan struct{}, 1)
	calls := make(chan struct{}, 10)
	g.Go(func(ctx context.Context) { EveryOrWake(ctx, time.Hour, wake, func() { calls <- struct{}{} }) })
	defer g.Stop()
	for i := range 3 {
		wake <- struct{}{}
		select {
		case <-calls:
		case <-time.After(5 * time.Second):
			t.Fatalf("wake-up %d did not call fn (the interval is an hour)", i)
		}
	}
}
