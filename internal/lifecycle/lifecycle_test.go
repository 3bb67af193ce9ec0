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
