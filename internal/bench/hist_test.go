package bench

import (
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestBucketsCoverRange(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 511, 512, 513, 1023, 1024, 1 << 20, 1<<20 + 12345, 1 << 40, 1<<63 - 1, 1<<64 - 1} {
		i := bucketOf(v)
		if i < prev {
			t.Errorf("bucketOf(%d) = %d, below the previous %d", v, i, prev)
		}
		if i >= numBucket {
			t.Fatalf("bucketOf(%d) = %d, out of %d", v, i, numBucket)
		}
		if lo, hi := bucketLow(i), bucketHigh(i); v < lo || v > hi {
			t.Errorf("value %d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		prev = i
	}
	for i := 1; i < numBucket; i++ {
		if bucketLow(i) != bucketHigh(i-1)+1 {
			t.Fatalf("gap before bucket %d", i)
		}
	}
}

func TestQuantilesWithinPrecision(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) time.Duration
	}{
		{"uniform 0-10ms", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(int64(10 * time.Millisecond))) }},
		{"exp 200us", func(r *rand.Rand) time.Duration { return time.Duration(r.ExpFloat64() * 200e3) }},
		{"small", func(r *rand.Rand) time.Duration { return time.Duration(r.Int64N(300)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h Histogram
			var rec Recorder
			vals := make([]time.Duration, 100_000)
			for i := range vals {
				vals[i] = tt.gen(r)
				h.Record(vals[i])
				rec.Record(vals[i])
			}
			var h2 Histogram
			rec.Drain(&h2)
			sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				want := vals[int(q*float64(len(vals)-1))]
				for _, got := range []time.Duration{h.Quantile(q), h2.Quantile(q)} {
					if d := got - want; d < -1 || float64(d) > 0.005*float64(want)+2 {
						t.Errorf("q%.3f = %v, exact %v", q, got, want)
					}
				}
			}
			if h.Count() != uint64(len(vals)) || h2.Count() != h.Count() || h.Max() != vals[len(vals)-1] || h2.Max() != h.Max() {
				t.Errorf("count %d/%d max %v/%v", h.Count(), h2.Count(), h.Max(), h2.Max())
			}
		})
	}
}

func TestRecorderConcurrentDrain(t *testing.T) {
	var rec Recorder
	var total Histogram
	var wg sync.WaitGroup
	const workers, each = 4, 50_000
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rec.Record(time.Duration(w*each + i))
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			rec.Drain(&total)
			if total.Count() != workers*each {
				t.Fatalf("drained %d values, recorded %d", total.Count(), workers*each)
			}
			return
		default:
			rec.Drain(&total)
		}
	}
}

func BenchmarkRecorder(b *testing.B) {
	var rec Recorder
	b.RunParallel(func(pb *testing.PB) {
		v := time.Duration(1000)
		for pb.Next() {
			rec.Record(v)
			v = v*7%time.Second + 1000
		}
	})
}
