package store

import (
	"context"
	"runtime"
	"testing"

	"github.com/txmq/txmq/internal/message"
)

// TestStoreMemoryBounded checks that the heap does not grow with the
// amount of data stored: no per-message state is kept in memory (consume
// queues, index and commit log live in mapped files, counted as page
// cache, not heap).
func TestStoreMemoryBounded(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SegmentSize = 1 << 20
	cfg.CQEntriesPerFile = 10000
	cfg.IndexEntries = 20000
	cfg.IndexSlots = 4096
	s := openStore(t, cfg)
	batch := make([]*message.Ext, 200)
	appendN := func(n int) {
		for i := 0; i < n; i += len(batch) {
			for j := range batch {
				batch[j] = newMsg("Mem", int32(j%4), body(i+j, 100), message.PropKeys, "k", message.PropUniqClientMessageID, "U")
			}
			if _, err := s.AppendBatch(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	appendN(20_000)
	h1 := heap()
	appendN(200_000)
	h2 := heap()
	t.Logf("heap in use after 20k messages: %d KiB; after 220k: %d KiB; log %d MiB in %d segments",
		h1>>10, h2>>10, s.Stats().MaxOffset>>20, s.Stats().Segments)
	if h2 > h1+4<<20 {
		t.Fatalf("heap grew by %d KiB for 10x the data", (h2-h1)>>10)
	}
}
