package load

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	prevHigh := int64(-1)
	for i := range 40 * subCount {
		hi := bucketHigh(i)
		if int64(hi) <= prevHigh {
			t.Fatalf("bucket %d high %d not above the previous %d", i, hi, prevHigh)
		}
		lo := uint64(prevHigh + 1)
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d spans %d..%d but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= subCount && float64(hi-lo+1) > float64(lo)/subCount+1e-9 {
			t.Fatalf("bucket %d (%d..%d) wider than 1/%d of its low end", i, lo, hi, subCount)
		}
		prevHigh = int64(hi)
	}
}

// reference is the nearest-rank quantile of a sorted slice.
func reference(sorted []uint64, q float64) uint64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func TestQuantilesAgainstSortedSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dists := map[string]func() uint64{
		"uniform small": func() uint64 { return rng.Uint64N(200) },
		"uniform wide":  func() uint64 { return rng.Uint64N(5_000_000) },
		"exponential":   func() uint64 { return uint64(rng.ExpFloat64() * 3000) },
		"bimodal": func() uint64 {
			if rng.IntN(100) < 3 {
				return 200_000 + rng.Uint64N(100_000)
			}
			return 800 + rng.Uint64N(400)
		},
		"constant": func() uint64 { return 4321 },
	}
	for name, gen := range dists {
		for _, n := range []int{1, 2, 7, 100, 10_000} {
			var h Histogram
			vals := make([]uint64, n)
			for i := range vals {
				vals[i] = gen()
				h.RecordMicros(vals[i])
			}
			slices.Sort(vals)
			if h.Count() != uint64(n) || h.Max() != time.Duration(vals[n-1])*time.Microsecond {
				t.Fatalf("%s n=%d: count %d max %v, want %d %dµs", name, n, h.Count(), h.Max(), n, vals[n-1])
			}
			for _, q := range []float64{0, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1} {
				want := reference(vals, q)
				got := h.QuantileMicros(q)
				// Never below the true value, at most one bucket width above.
				if got < want || float64(got) > float64(want)*(1+1.0/subCount)+1 {
					t.Errorf("%s n=%d q=%v: got %d, reference %d", name, n, q, got, want)
				}
			}
		}
	}
}

func TestMergeEqualsRecordingEverything(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, all Histogram
	for i := range 5000 {
		v := uint64(rng.ExpFloat64() * 10_000)
		if i%3 == 0 {
			a.RecordMicros(v)
		} else {
			b.RecordMicros(v)
		}
		all.RecordMicros(v)
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	for _, q := range []float64{0.5, 0.95, 0.99, 1} {
		if m.QuantileMicros(q) != all.QuantileMicros(q) {
			t.Errorf("q=%v: merged %d, direct %d", q, m.QuantileMicros(q), all.QuantileMicros(q))
		}
	}
	if m.Count() != all.Count() || m.Mean() != all.Mean() || m.Max() != all.Max() {
		t.Errorf("merged count/mean/max %d %v %v, direct %d %v %v", m.Count(), m.Mean(), m.Max(), all.Count(), all.Mean(), all.Max())
	}
}

func TestEmptyHistogramAndRounding(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 || h.Mean() != 0 || h.Max() != 0 {
		t.Fatal("empty histogram is not all zero")
	}
	h.Record(300 * time.Nanosecond) // rounds up to 1 µs, never to 0
	h.Record(-time.Second)          // clock went backwards: 0
	if h.Max() != time.Microsecond || h.Quantile(0) != 0 || h.Count() != 2 {
		t.Fatalf("max %v p0 %v count %d", h.Max(), h.Quantile(0), h.Count())
	}
}
