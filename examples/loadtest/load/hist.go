package load

import (
	"math/bits"
	"time"
)

// Histogram counts latencies in logarithmic buckets with linear sub-buckets,
// in the manner of an HDR histogram: values are kept in microseconds, exact
// below 128 µs, and above that within 1/128 (under 0.8 %) of the true value.
// It grows only as far as the largest value seen (a 10 s latency needs about
// 2,300 buckets). The zero value is ready to use; it is not safe for
// concurrent use (the Recorder locks around it).
type Histogram struct {
	counts []uint64
	n      uint64
	sum    uint64 // microseconds
	min    uint64
	max    uint64
}

// subBits sets the precision: 1<<subBits linear sub-buckets per power of two.
const (
	subBits  = 7
	subCount = 1 << subBits
)

// bucketOf returns the bucket index of v (microseconds).
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)*subCount + int(v>>uint(shift)) - subCount
}

// bucketHigh returns the largest value that falls into bucket i.
func bucketHigh(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	sub := uint64(subCount + i%subCount)
	return (sub+1)<<uint(shift) - 1
}

// micros converts d to whole microseconds, rounding up so that a non-zero
// latency never records as zero.
func micros(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Microsecond - 1) / time.Microsecond)
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) { h.RecordMicros(micros(d)) }

// RecordMicros adds one value in microseconds.
func (h *Histogram) RecordMicros(v uint64) {
	i := bucketOf(v)
	if i >= len(h.counts) {
		grown := make([]uint64, i+1, max(i+1, 2*len(h.counts)))
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest value recorded (exact), 0 when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

// Mean returns the average (exact to the microsecond), 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum/h.n) * time.Microsecond
}

// Quantile returns the nearest-rank q-quantile (q in [0, 1]; 0.99 is p99):
// the smallest recorded value v such that at least q of all values are ≤ v,
// reported as the top of v's bucket (never above the exact maximum). So it
// is never below the true value and at most 1/128 above it. 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	return time.Duration(h.QuantileMicros(q)) * time.Microsecond
}

// QuantileMicros is Quantile in microseconds.
func (h *Histogram) QuantileMicros(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := rankOf(q, h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(max(bucketHigh(i), h.min), h.max)
		}
	}
	return h.max
}

// rankOf is the 1-based nearest rank of quantile q among n values.
func rankOf(q float64, n uint64) uint64 {
	if q <= 0 {
		return 1
	}
	if q >= 1 {
		return n
	}
	r := uint64(q * float64(n))
	if float64(r) < q*float64(n) {
		r++
	}
	return max(r, 1)
}
