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
	ctx, cancel := context.WithCancel(context.Background())
	g.Go(func() { Every(ctx, time.Millisecond, func() { n.Add(1) }) })
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("Every never ticked three times")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	g.Wait() // returns only once the loop has stopped
	after := n.Load()
	time.Sleep(10 * time.Millisecond)
	if n.Load() != after {
		t.Fatal("Every kept running after its context was done")
	}
}
