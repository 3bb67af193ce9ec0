package schedule

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store"
)

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// fillWheel adds n entries due within spread of base.
func fillWheel(n int, spread time.Duration) *wheel {
	w := newWheel()
	r := rand.New(rand.NewPCG(7, 9))
	base := int64(1_700_000_000_000)
	for i := range n {
		w.add(entry{off: int64(i) * 200, due: base + r.Int64N(spread.Milliseconds())})
	}
	return w
}

// TestWheelMemoryBounded: 1,000,000 entries spread over an hour, and over
// three days (the longest timer), cost at most 32 heap bytes each (16 for
// the entry, up to as much again of append slack) plus 120 bytes per non-empty second.
func TestWheelMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 1M entries")
	}
	for _, spread := range []time.Duration{time.Hour, 72 * time.Hour} {
		before := heapInUse()
		w := fillWheel(1_000_000, spread)
		used := heapInUse() - before
		per := float64(used) / float64(w.len())
		t.Logf("1,000,000 entries over %v: %.1f heap bytes per entry, %d buckets", spread, per, len(w.buckets))
		if bound := uint64(w.len()*32 + len(w.buckets)*120); used > bound {
			t.Errorf("%d heap bytes for %d entries in %d buckets, want ≤ %d", used, w.len(), len(w.buckets), bound)
		}
		runtime.KeepAlive(w)
	}
}

// BenchmarkWheel measures add and popDue of the bare structure, and its
// heap bytes per entry for 1,000,000 entries over an hour.
func BenchmarkWheel(b *testing.B) {
	b.Run("add", func(b *testing.B) {
		w := newWheel()
		r := rand.New(rand.NewPCG(1, 1))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			w.add(entry{off: int64(i), due: r.Int64N(3_600_000)})
		}
	})
	b.Run("add+pop", func(b *testing.B) {
		w := newWheel()
		r := rand.New(rand.NewPCG(1, 1))
		var dst []entry
		now := int64(0)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			w.add(entry{off: int64(i), due: now + r.Int64N(60_000)})
			if i%256 == 0 {
				now += 10
				dst = w.popDue(now, 1<<20, dst[:0])
			}
		}
	})
	b.Run("mem-1M", func(b *testing.B) {
		for b.Loop() {
			before := heapInUse()
			w := fillWheel(1_000_000, time.Hour)
			b.ReportMetric(float64(heapInUse()-before)/1e6, "heap-B/entry")
			runtime.KeepAlive(w)
		}
	})
}

// BenchmarkSchedule1M is the end-to-end benchmark: 1,000,000 timer
// messages (100-byte bodies) appended through Divert by 64 goroutines into
// a real store (ASYNC_FLUSH), due over the 10 s after the last send, then
// delivered by the service on the real clock. It reports the scheduling
// rate, the delivery lateness (copy visible − due) p50/p99/max, and the
// heap bytes per scheduled message with everything scheduled. Run with
// -benchtime 1x; TXMQ_BENCH_N overrides the count.
//
//	go test -run '^$' -bench BenchmarkSchedule1M -benchtime 1x ./internal/schedule/
func BenchmarkSchedule1M(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("TXMQ_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		benchSchedule(b, n)
	}
}

func benchSchedule(b *testing.B, n int) {
	dir := b.TempDir()
	var hook atomic.Pointer[Service]
	lat := make([]int64, 0, n)
	var latMu sync.Mutex
	var got atomic.Int64
	done := make(chan struct{})
	marker := []byte(PropScheduledOffset)
	scfg := store.DefaultConfig(dir)
	scfg.Logger = slog.New(slog.DiscardHandler)
	scfg.SegmentSize = 256 << 20
	scfg.OnRecord = func(off int64, v message.View) {
		if s := hook.Load(); s != nil {
			s.OnRecord(off, v)
		}
		if string(v.Topic()) == "BT" && bytes.Contains(v.Properties(), marker) {
			due := int64(binary.BigEndian.Uint64(v.Body()))
			latMu.Lock()
			lat = append(lat, time.Now().UnixMilli()-due)
			latMu.Unlock()
			if got.Add(1) == int64(n) {
				close(done)
			}
		}
	}
	st, err := store.Open(scfg)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	svc, err := New(Config{DelayLevels: testLevels, Logger: scfg.Logger}, st)
	if err != nil {
		b.Fatal(err)
	}
	hook.Store(svc)
	if err := svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer svc.Close()

	// Due times: spread over [sendEnd, sendEnd+10 s]; the send phase is
	// estimated at 1 µs × n per core pair and corrected by the spread.
	base := time.Now().Add(time.Duration(n) * 4 * time.Microsecond).UnixMilli()
	heapBefore := heapInUse()
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	const senders = 64
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := make([]byte, 100)
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				due := base + (i*7919)%10_000
				binary.BigEndian.PutUint64(body, uint64(due))
				m := &message.Ext{Topic: "BT", QueueID: int32(i % 4), BornTimestamp: time.Now().UnixMilli(),
					BornHost: host, StoreHost: host, Body: body,
					Properties: message.AppendProperty("", message.PropTimerDeliverMs, strconv.FormatInt(due, 10))}
				if err := svc.Divert(m); err != nil {
					b.Error(err)
					return
				}
				if _, err := st.Append(context.Background(), m); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	sendDur := time.Since(start)
	pending := svc.Stats().Pending + int(got.Load())
	heapAfter := heapInUse()
	b.ReportMetric(float64(n)/sendDur.Seconds(), "scheduled/s")
	b.ReportMetric(float64(int64(heapAfter)-int64(heapBefore))/float64(n), "heap-B/msg")
	if late := time.Now().UnixMilli() - base; late > 0 {
		b.Logf("the send phase ran %d ms past the first due time (its lateness counts below)", late)
	}
	select {
	case <-done:
	case <-time.After(time.Duration(n)*20*time.Microsecond + 60*time.Second):
		b.Fatalf("only %d of %d delivered", got.Load(), n)
	}
	latMu.Lock()
	slices.Sort(lat)
	p := func(q float64) int64 { return lat[int(q*float64(len(lat)-1))] }
	b.ReportMetric(float64(p(0.5)), "late-p50-ms")
	b.ReportMetric(float64(p(0.99)), "late-p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1]), "late-max-ms")
	b.Logf("n=%d scheduled in %v (%.0f/s), %d pending at end of sends; lateness p50 %d ms p99 %d ms max %d ms; min %d ms (negative = early)",
		n, sendDur.Round(time.Millisecond), float64(n)/sendDur.Seconds(), pending, p(0.5), p(0.99), lat[len(lat)-1], lat[0])
	if lat[0] < 0 {
		b.Errorf("a message was delivered %d ms early", -lat[0])
	}
	latMu.Unlock()
}
