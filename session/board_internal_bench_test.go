package session

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkBoardTreeParts measures the memory store's Rank without the Board
// around it: the map lookup alone, then map and tree descent, interleaving
// 10k and 1M members so both share the machine's noise.
func BenchmarkBoardTreeParts(b *testing.B) {
	type fx struct {
		vals  map[int64]float64
		tree  boardTree
		users []int64
	}
	sizes := []int{10_000, 1_000_000}
	fs := make([]*fx, len(sizes))
	for k, n := range sizes {
		f := &fx{vals: make(map[int64]float64, n)}
		rng := rand.New(rand.NewPCG(3, uint64(n)))
		for u := int64(1); u <= int64(n); u++ {
			v := float64(rng.Int64N(1 << 50))
			f.vals[u] = v
			f.tree.insert(BoardMember{User: u, Value: v})
		}
		f.users = make([]int64, 1<<16)
		for i := range f.users {
			f.users[i] = 1 + rng.Int64N(int64(n))
		}
		fs[k] = f
	}
	for _, part := range []string{"map", "map+tree"} {
		b.Run(part, func(b *testing.B) {
			spent := make([]time.Duration, len(fs))
			i, sink := 0, int64(0)
			for b.Loop() {
				for k, f := range fs {
					start := time.Now()
					for j := 0; j < 64; j++ {
						u := f.users[(i+j)&(1<<16-1)]
						switch part {
						case "map":
							sink += int64(f.vals[u])
						case "map+tree":
							sink += f.tree.rank(BoardMember{User: u, Value: f.vals[u]})
						}
					}
					spent[k] += time.Since(start)
				}
				i += 64
			}
			for k, n := range sizes {
				b.ReportMetric(float64(spent[k].Nanoseconds())/float64(i), fmt.Sprintf("ns@%d", n))
			}
			b.ReportMetric(float64(spent[1])/float64(spent[0]), "ratio")
			_ = sink
		})
	}
}
