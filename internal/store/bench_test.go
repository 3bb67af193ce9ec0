package store

// Benchmarks (numbers, not pass/fail). Examples:
//
//	go test -run '^$' -bench 'BenchmarkAppend|BenchmarkRawWriteFdatasync' -benchtime 2s ./internal/store/
//	TXMQ_BENCH_RECOVERY_MB=1024 go test -run '^$' -bench BenchmarkRecovery -benchtime 3x ./internal/store/
//
// BenchmarkRawWriteFdatasync is the baseline for SyncFlush: the same bytes
// written sequentially (pwrite) to a preallocated file in the same
// directory, with one fdatasync per batch. Compare BenchmarkAppend/sync's
// recs/fsync metric with the raw batch size.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store/mmapfile"
)

var benchSizes = []struct {
	name string
	n    int
}{{"128B", 128}, {"1KiB", 1024}, {"4KiB", 4096}}

func benchMsg(size, g int) *message.Ext {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(i)
	}
	p := message.AppendProperty("", message.PropTags, "TagA")
	p = message.AppendProperty(p, message.PropUniqClientMessageID, fmt.Sprintf("0A000001%08X0000000000000000", g))
	return &message.Ext{Topic: "BenchTopic", QueueID: int32(g % 8), BornHost: testBornHost, StoreHost: testStoreHost,
		BornTimestamp: time.Now().UnixMilli(), Body: b, Properties: p}
}

func benchConfig(dir string, mode FlushMode) Config {
	cfg := DefaultConfig(dir)
	cfg.FlushMode = mode
	cfg.IndexSlots = 1 << 20
	cfg.IndexEntries = 4 << 20
	if os.Getenv("TXMQ_NOFLUSH") == "1" {
		cfg.FlushInterval = time.Hour
		cfg.CheckpointInterval = time.Hour
	}
	return cfg
}

func BenchmarkAppend(b *testing.B) {
	for _, mode := range []struct {
		name string
		m    FlushMode
	}{{"sync", SyncFlush}, {"async", AsyncFlush}} {
		for _, sz := range benchSizes {
			for _, par := range []int{1, 8, 64} {
				b.Run(fmt.Sprintf("%s/%s/%dappenders", mode.name, sz.name, par), func(b *testing.B) {
					s, err := Open(benchConfig(b.TempDir(), mode.m))
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					msgs := make([]*message.Ext, par)
					for g := range msgs {
						msgs[g] = benchMsg(sz.n, g)
					}
					b.SetBytes(int64(sz.n))
					b.ReportAllocs()
					var next atomic.Int64
					var wg sync.WaitGroup
					st0 := s.Stats()
					b.ResetTimer()
					for g := 0; g < par; g++ {
						wg.Add(1)
						go func(m *message.Ext) {
							defer wg.Done()
							for next.Add(1) <= int64(b.N) {
								if _, err := s.Append(context.Background(), m); err != nil {
									b.Error(err)
									return
								}
							}
						}(msgs[g])
					}
					wg.Wait()
					b.StopTimer()
					st := s.Stats()
					recs := float64(st.Records - st0.Records)
					b.ReportMetric(recs/b.Elapsed().Seconds(), "records/s")
					b.ReportMetric(recs/float64(max(1, st.Batches-st0.Batches)), "recs/batch")
					if mode.m == SyncFlush {
						b.ReportMetric(recs/float64(max(1, st.Syncs-st0.Syncs)), "recs/fsync")
						b.ReportMetric(float64((st.SyncTime-st0.SyncTime).Microseconds())/float64(max(1, st.Syncs-st0.Syncs)), "µs/fsync")
					}
				})
			}
		}
	}
}

// BenchmarkAppendRate appends at a fixed moderate rate (20,000/s of 1 KiB
// over 16 appenders, each paced to its own schedule) and reports the
// append latency percentiles and the process CPU time (user+system, all
// goroutines: store and the pacing appenders) per append. That is the
// broker's case at moderate load, where every goroutine hand-off of an
// append costs a wake-up. ns/op is fixed by the rate.
func BenchmarkAppendRate(b *testing.B) {
	for _, mode := range []struct {
		name string
		m    FlushMode
	}{{"async", AsyncFlush}, {"sync", SyncFlush}} {
		const rate, par = 20_000, 16
		b.Run(fmt.Sprintf("%s/1KiB/%dper_s", mode.name, rate), func(b *testing.B) {
			s, err := Open(benchConfig(b.TempDir(), mode.m))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			interval := time.Duration(par) * time.Second / rate
			lats := make([][]time.Duration, par)
			var wg sync.WaitGroup
			cpu0, csw0 := rusageCPU()
			b.ResetTimer()
			t0 := time.Now()
			for g := 0; g < par; g++ {
				n := b.N / par
				if g < b.N%par {
					n++
				}
				lats[g] = make([]time.Duration, 0, n)
				wg.Add(1)
				go func(g, n int) {
					defer wg.Done()
					m := benchMsg(1024, g)
					next := t0.Add(time.Duration(g) * interval / par)
					for i := 0; i < n; i++ {
						if d := time.Until(next); d > 0 {
							time.Sleep(d)
						}
						next = next.Add(interval)
						st := time.Now()
						if _, err := s.Append(context.Background(), m); err != nil {
							b.Error(err)
							return
						}
						lats[g] = append(lats[g], time.Since(st))
					}
				}(g, n)
			}
			wg.Wait()
			b.StopTimer()
			cpu1, csw1 := rusageCPU()
			all := slices.Concat(lats...)
			slices.Sort(all)
			if len(all) == 0 {
				return
			}
			pct := func(p float64) float64 {
				return float64(all[min(len(all)-1, int(p*float64(len(all))))].Nanoseconds()) / 1e3
			}
			b.ReportMetric(pct(0.5), "p50-µs")
			b.ReportMetric(pct(0.99), "p99-µs")
			b.ReportMetric(pct(0.999), "p99.9-µs")
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/1e3/float64(len(all)), "cpu-µs/op")
			b.ReportMetric(float64(csw1-csw0)/float64(len(all)), "ctxsw/op")
		})
	}
}

// rusageCPU is the process's user+system CPU time and its threads'
// context switches (voluntary and not: a thread parking in a futex, mostly)
// so far.
func rusageCPU() (time.Duration, int64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw
}

// BenchmarkIndexer measures the indexer alone: b.N records of 1 KiB (a
// KEYS value and a UNIQ_KEY each, as a producer sends them) are appended
// while it is held back, then timed from its release until it has indexed
// them all.
func BenchmarkIndexer(b *testing.B) {
	cfg := benchConfig(b.TempDir(), AsyncFlush)
	hold := make(chan struct{})
	var held atomic.Bool
	held.Store(true)
	cfg.beforeIndex = func() {
		if held.Load() {
			<-hold
		}
	}
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			held.Store(false)
			close(hold)
		}
		s.Close()
	}()
	ms := make([]*message.Ext, 256)
	for i := range ms {
		ms[i] = benchMsg(1024, i)
		ms[i].Properties = message.AppendProperty(ms[i].Properties, message.PropKeys, "order-"+strconv.Itoa(i))
	}
	for n := 0; n < b.N; n += len(ms) {
		if _, err := s.AppendBatch(context.Background(), ms[:min(len(ms), b.N-n)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	held.Store(false)
	close(hold)
	released = true
	if err := s.waitIndexed(s.visible.Load(), time.Minute); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkRawWriteFdatasync(b *testing.B) {
	for _, sz := range benchSizes {
		recLen := benchMsg(sz.n, 0).EncodedLen()
		for _, batch := range []int{1, 8, 16, 32, 64} {
			b.Run(fmt.Sprintf("%s/batch%d", sz.name, batch), func(b *testing.B) {
				f, err := os.OpenFile(filepath.Join(b.TempDir(), "raw"), os.O_RDWR|os.O_CREATE, 0o644)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				const fileSize = 1 << 30
				if err := mmapfile.Preallocate(f, 0, fileSize); err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, recLen*batch)
				for i := range buf {
					buf[i] = byte(i)
				}
				fd := int(f.Fd())
				b.SetBytes(int64(sz.n)) // payload per record, as BenchmarkAppend
				b.ResetTimer()
				var off int64
				for done := 0; done < b.N; done += batch {
					n := min(batch, b.N-done)
					if off+int64(n*recLen) > fileSize {
						off = 0
					}
					if _, err := f.WriteAt(buf[:n*recLen], off); err != nil {
						b.Fatal(err)
					}
					off += int64(n * recLen)
					if err := syscall.Fdatasync(fd); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

func BenchmarkGetMessages(b *testing.B) {
	s, err := Open(benchConfig(b.TempDir(), AsyncFlush))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const n = 100_000
	ms := make([]*message.Ext, 0, 256)
	for i := 0; i < n; i += len(ms) {
		ms = ms[:0]
		for j := 0; j < 256; j++ {
			m := benchMsg(1024, 0)
			m.QueueID = 0
			ms = append(ms, m)
		}
		if _, err := s.AppendBatch(context.Background(), ms); err != nil {
			b.Fatal(err)
		}
	}
	recLen := benchMsg(1024, 0).EncodedLen()
	b.SetBytes(int64(32 * recLen))
	b.ReportAllocs()
	b.ResetTimer()
	var off int64
	for i := 0; i < b.N; i++ {
		r, err := s.GetMessages("BenchTopic", 0, off, 32, 256<<10, nil)
		if err != nil || r.Status != Found {
			b.Fatal(err, r.Status)
		}
		off = r.NextBeginOffset
		if off >= n {
			off = 0
		}
		r.Release()
	}
	b.ReportMetric(float64(32*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRecovery measures Open after an unclean stop over a log of
// TXMQ_BENCH_RECOVERY_MB MiB (default 256) of 1 KiB messages in 8 queues:
//
//   - scan: the checkpoint is back at the start, consume queues and index
//     intact: every record is verified (magic, lengths, self offset, CRC,
//     properties, queue sequence) and re-dispatched (idempotent);
//   - rebuild: checkpoint, consume queues and index deleted: everything
//     is rebuilt from the commit log.
//
// Set TXMQ_BENCH_DROP_CACHES=1 (root) to start each run with a cold page
// cache.
func BenchmarkRecovery(b *testing.B) {
	mb := 256
	if v, err := strconv.Atoi(os.Getenv("TXMQ_BENCH_RECOVERY_MB")); err == nil && v > 0 {
		mb = v
	}
	dir := b.TempDir()
	cfg := benchConfig(dir, AsyncFlush)
	cfg.SegmentSize = 256 << 20
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var ms []*message.Ext
	for g := 0; g < 256; g++ {
		m := benchMsg(1024, g)
		m.Properties = message.AppendProperty(m.Properties, message.PropKeys, "order-"+strconv.Itoa(g))
		ms = append(ms, m)
	}
	for s.Stats().MaxOffset < int64(mb)<<20 {
		if _, err := s.AppendBatch(context.Background(), ms); err != nil {
			b.Fatal(err)
		}
	}
	logBytes := s.Stats().MaxOffset
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	dropCaches := os.Getenv("TXMQ_BENCH_DROP_CACHES") == "1"
	for _, variant := range []string{"scan", "rebuild"} {
		b.Run(fmt.Sprintf("%s/%dMiB", variant, mb), func(b *testing.B) {
			b.SetBytes(logBytes)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if variant == "scan" {
					if err := writeCheckpoint(dir, 0); err != nil {
						b.Fatal(err)
					}
				} else {
					os.RemoveAll(filepath.Join(dir, consumeQueueDir))
					os.RemoveAll(filepath.Join(dir, indexDirName))
					os.Remove(filepath.Join(dir, checkpointFileName))
				}
				if dropCaches {
					syscall.Sync()
					os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o644)
				}
				b.StartTimer()
				s, err := Open(cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if got := s.Stats().RecoveredBytes; got != logBytes {
					b.Fatalf("recovered %d bytes of %d", got, logBytes)
				}
				s.Close()
				b.StartTimer()
			}
		})
	}
}
