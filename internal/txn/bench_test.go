package txn

import (
	"context"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/txmq/txmq/internal/message"
	"github.com/txmq/txmq/internal/store"
)

const benchBody = 1024

// benchInflight is the appenders in flight in the append benchmarks.
const benchInflight = 16

// BenchmarkPlainAppend and BenchmarkPrepareCommit run the same message
// size and concurrency (benchInflight appenders) against the same store
// setup, the real store with its real OnRecord hook: a plain send is one
// append; a full transaction is a half append plus its committed copy.
//
//	go test -run '^$' -bench 'PlainAppend|PrepareCommit' -benchtime 3s ./internal/txn/
func BenchmarkPlainAppend(b *testing.B) {
	h := newHarness(b, nil)
	body := make([]byte, benchBody)
	var n atomic.Int64
	b.SetBytes(benchBody)
	b.SetParallelism(max(1, benchInflight/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			m := halfMsg("TopicA", 1, uniqID(i), "")
			m.Body = body
			m.SysFlag = 0
			m.Properties = message.RemoveProperties(m.Properties, message.PropTransactionPrepared)
			if _, err := h.log.Append(context.Background(), m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPrepareCommit(b *testing.B) {
	h := newHarness(b, nil)
	body := make([]byte, benchBody)
	var n atomic.Int64
	b.SetBytes(benchBody)
	b.SetParallelism(max(1, benchInflight/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			m := halfMsg("TopicA", 1, uniqID(i), "")
			m.Body = body
			r, err := h.svc.Prepare(context.Background(), m, "PG")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := h.endOff("PG", r, ResolutionCommit); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fill1M inserts n pending entries straight into the index, due far in
// the future.
func fill(s *Service, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.nowMs()
	for i := 0; i < n; i++ {
		s.insert(int64(i)*300, now, now+int64(time.Hour/time.Millisecond)+int64(i), hashID(uniqID(i)), "PG", 0)
	}
}

// BenchmarkPendingMemory reports the heap bytes per pending transaction
// with 1,000,000 pending (entry, two index entries, two heap slots).
func BenchmarkPendingMemory(b *testing.B) {
	const n = 1_000_000
	for i := 0; i < b.N; i++ {
		s, _ := New(Config{noBackground: true}, (*store.Store)(nil), nil) // fill never touches the log
		s.live = true
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fill(s, n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/pending")
		runtime.KeepAlive(s)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCheckSchedulerIdle1M measures the CPU the running scheduler
// uses between checks with 1,000,000 pending transactions (none due).
func BenchmarkCheckSchedulerIdle1M(b *testing.B) {
	h := newHarness(b, nil)
	fill(h.svc, 1_000_000)
	bg, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.svc.schedulerLoop(bg); close(done) }()
	defer func() { cancel(); <-done }()
	runtime.GC()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0, t0 := cpuTime(), time.Now()
		time.Sleep(time.Second)
		b.ReportMetric(100*float64(cpuTime()-c0)/float64(time.Since(t0)), "%cpu-of-one-core")
	}
}

// BenchmarkSnapshot1M measures a snapshot with 1,000,000 pending
// transactions: the time the service lock is held to encode them (Prepare
// and End wait that long), the whole snapshot (encode, store flush, atomic
// file replace), and that cost as CPU share of one core at the default
// 30 s snapshot interval.
func BenchmarkSnapshot1M(b *testing.B) {
	h := newHarness(b, nil)
	fill(h.svc, 1_000_000)
	var locked, total time.Duration
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// What takeSnapshot does under the lock.
		buf := make([]snapEntry, 0, 1_000_000*9/8+64)
		t0 := time.Now()
		h.svc.mu.Lock()
		h.svc.captureLocked(buf)
		h.svc.compactParkedLocked()
		h.svc.mu.Unlock()
		locked += time.Since(t0)
		c0, t1 := cpuTime(), time.Now()
		if err := h.svc.takeSnapshot(); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t1)
		cpu += cpuTime() - c0
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64((locked/n).Microseconds())/1000, "ms-locked")
	b.ReportMetric(float64((total/n).Microseconds())/1000, "ms/snapshot")
	b.ReportMetric(100*float64(cpu/n)/float64(DefaultSnapshotInterval), "%cpu-at-30s")
}

// BenchmarkRecentAdd is the recently-resolved table's cost per resolved
// transaction once it is full (every add evicts the oldest record): half
// offsets grow as in the log, ids are random.
//
//	go test -run '^$' -bench RecentAdd ./internal/txn/
func BenchmarkRecentAdd(b *testing.B) {
	var t recentTable
	t.init(recentSize)
	x := uint64(1)
	for i := 0; i < recentSize; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		t.add(recentRec{off: int64(i) * 1300, uniq: x})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x = x*6364136223846793005 + 1442695040888963407
		t.add(recentRec{off: int64(recentSize+i) * 1300, uniq: x})
	}
}

// BenchmarkBuildEnd builds a producer's commit from a half record the way
// the END path does: cut from a half this txmq stored (current layout), and
// scanned from a half in the layout before it (older).
//
//	go test -run '^$' -bench BuildEnd ./internal/txn/
func BenchmarkBuildEnd(b *testing.B) {
	m := benchHalfMsg()
	cur, _ := halfProperties(nil, m.Properties, m.Topic, m.QueueID, "PG", uniqID(1))
	// The layout before: REAL_TOPIC, REAL_QID, PGROUP, __transactionId__, TRAN_MSG.
	old := message.RemoveProperties(m.Properties, message.PropTransactionPrepared, message.PropProducerGroup)
	for _, kv := range [][2]string{{message.PropRealTopic, m.Topic}, {message.PropRealQueueID, "1"},
		{message.PropProducerGroup, "PG"}, {message.PropTransactionID, uniqID(1)}, {message.PropTransactionPrepared, "true"}} {
		old = message.AppendProperty(old, kv[0], kv[1])
	}
	s := &Service{}
	for _, layout := range []struct{ name, props string }{{"current", cur}, {"older", old}} {
		v := benchHalfView(b, m, layout.props)
		req := &EndRequest{Resolution: ResolutionCommit, Source: SourceClient}
		b.Run(layout.name, func(b *testing.B) {
			eb := getEndBatch()
			for b.Loop() {
				s.buildEnd(eb, req, 4096, v)
			}
			if eb.n != 1 || eb.copy.Topic != "TopicA" {
				b.Fatalf("built %d records, copy in %q", eb.n, eb.copy.Topic)
			}
			eb.put()
		})
	}
}

// BenchmarkParseEvent parses the two records of a committed transaction
// as the store hook sees them: the half, then its committed copy.
//
//	go test -run '^$' -bench ParseEvent ./internal/txn/
func BenchmarkParseEvent(b *testing.B) {
	m := benchHalfMsg()
	props, _ := halfProperties(nil, m.Properties, m.Topic, m.QueueID, "PG", uniqID(1))
	hv := benchHalfView(b, m, props)
	eb := getEndBatch()
	(&Service{}).buildEnd(eb, &EndRequest{Resolution: ResolutionCommit, Source: SourceClient}, 4096, hv)
	cv, err := message.Parse(eb.copy.AppendTo(nil))
	if err != nil {
		b.Fatal(err)
	}
	eb.put()
	var ents [4]opEnt
	for b.Loop() {
		h, ok1 := parseEvent(4096, hv, ents[:0])
		c, ok2 := parseEvent(8192, cv, ents[:0])
		if !ok1 || !ok2 || h.kind != evHalf || c.kind != evCopy || c.halfOff != 4096 || h.uniq != c.uniq {
			b.Fatalf("half %v %+v, copy %v %+v", ok1, h, ok2, c)
		}
	}
}

// benchHalfMsg is the producer's half of the END benchmarks: a benchBody
// body to TopicA queue 1, with keys, WAIT and PGROUP.
func benchHalfMsg() *message.Ext {
	return halfMsg("TopicA", 1, uniqID(1), string(make([]byte, benchBody)),
		message.PropKeys, "order-1", message.PropWaitStoreMsgOK, "true", message.PropProducerGroup, "PG")
}

// benchHalfView is m stored as a half with properties props, as the END
// path reads it back.
func benchHalfView(b *testing.B, m *message.Ext, props string) message.View {
	half := *m
	half.Topic, half.QueueID, half.Properties = message.TransHalfTopic, 0, props
	v, err := halfView(half.AppendTo(nil))
	if err != nil {
		b.Fatal(err)
	}
	return v
}
