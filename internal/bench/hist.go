package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram layout: values below 2^subBits are exact; above, every power of
// two is split into 2^(subBits-1) equal buckets, so a bucket's width is at
// most 1/2^(subBits-1) of its values (0.4% with subBits 9). Values are
// nanoseconds; the range is the whole int64.
const (
	subBits   = 9
	subCount  = 1 << subBits
	subHalf   = subCount / 2
	numBucket = (64-subBits)*subHalf + subCount
)

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits
	return shift*subHalf + int(v>>uint(shift))
}

// bucketHigh returns the largest value that falls into bucket i.
func bucketHigh(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := (i-subCount)/subHalf + 1
	top := uint64(i - shift*subHalf)
	return (top+1)<<uint(shift) - 1
}

// Histogram is a log-linear latency histogram. It is not safe for
// concurrent use; Recorder is its concurrent front.
type Histogram struct {
	counts [numBucket]uint64
	n      uint64
	sum    float64
	min    uint64
	max    uint64
}

// Record adds one value.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.n++
	h.sum += float64(v)
	h.max = max(h.max, v)
}

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Reset empties h.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count returns the number of values.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest value.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean returns the average value.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value below or at which a fraction q of the values
// lie: the upper edge of the bucket holding the ceil(q*n)-th value, never
// more than the maximum (HDR's "highest equivalent value").
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketHigh(i), h.max))
		}
	}
	return time.Duration(h.max)
}

// Recorder collects values from many goroutines without a lock: one atomic
// add per value (plus a compare-and-swap when the maximum moves). Drain
// moves what it holds into a Histogram.
type Recorder struct {
	counts [numBucket]atomic.Uint64
	max    atomic.Uint64
}

// Record adds one value.
func (r *Recorder) Record(d time.Duration) {
	v := uint64(max(d, 0))
	r.counts[bucketOf(v)].Add(1)
	for {
		m := r.max.Load()
		if v <= m || r.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Drain moves every value recorded so far into h (which it does not reset)
// and empties r. Values recorded while Drain runs land in this drain or the
// next, never in both. The sum (for the mean) is taken at bucket
// precision.
func (r *Recorder) Drain(h *Histogram) {
	var got Histogram
	for i := range r.counts {
		if r.counts[i].Load() == 0 {
			continue
		}
		c := r.counts[i].Swap(0)
		if c == 0 {
			continue
		}
		got.counts[i] = c
		if got.n == 0 {
			got.min = bucketLow(i)
		}
		got.n += c
		got.sum += float64(c) * float64(bucketMid(i))
	}
	got.max = r.max.Swap(0)
	if got.n == 0 {
		return
	}
	// The maximum may belong to a value whose count lands in the next
	// drain; keep the quantiles below it honest either way.
	got.max = max(got.max, got.min)
	h.Merge(&got)
}

func bucketLow(i int) uint64 {
	if i == 0 {
		return 0
	}
	return bucketHigh(i-1) + 1
}

func bucketMid(i int) uint64 {
	lo, hi := bucketLow(i), bucketHigh(i)
	return lo + (hi-lo)/2
}
