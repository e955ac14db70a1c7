package session

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBoardTreeModel checks the B+tree against a sorted slice through many
// random inserts, updates and removals, at sizes that make it split, merge
// and rebalance over several levels.
func TestBoardTreeModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tr boardTree
	vals := map[int64]float64{}
	model := func() []BoardMember {
		ms := make([]BoardMember, 0, len(vals))
		for u, v := range vals {
			ms = append(ms, BoardMember{User: u, Value: v})
		}
		slices.SortFunc(ms, func(a, b BoardMember) int {
			if boardBefore(a, b) {
				return -1
			}
			if boardBefore(b, a) {
				return 1
			}
			return 0
		})
		return ms
	}
	check := func(step int) {
		t.Helper()
		want := model()
		if tr.n != len(want) {
			t.Fatalf("step %d: size %d, want %d", step, tr.n, len(want))
		}
		got := tr.appendRange(nil, 0, int64(len(want)))
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: order differs (%d vs %d members)", step, len(got), len(want))
		}
		for i, m := range want {
			if r := tr.rank(m); r != int64(i) {
				t.Fatalf("step %d: rank of %+v = %d, want %d", step, m, r, i)
			}
		}
		if len(want) > 3 {
			a, b := int64(len(want)/3), int64(len(want)/2)
			if got := tr.appendRange(nil, a, b); !slices.Equal(got, want[a:b+1]) {
				t.Fatalf("step %d: range %d..%d differs", step, a, b)
			}
		}
	}
	step := 0
	for round := 0; round < 3; round++ {
		// Grow to several thousand (three levels), with few distinct values so
		// ties by member order are common, including negative user keys.
		for i := 0; i < 5000; i++ {
			u := rng.Int64N(20000) - 1000
			v := float64(rng.IntN(50))
			if old, ok := vals[u]; ok {
				tr.remove(BoardMember{User: u, Value: old})
			}
			vals[u] = v
			tr.insert(BoardMember{User: u, Value: v})
			step++
			if i%997 == 0 {
				check(step)
			}
		}
		check(step)
		// Shrink to almost nothing, checking on the way down.
		keep := 5 * round
		for u, v := range vals {
			if len(vals) <= keep {
				break
			}
			tr.remove(BoardMember{User: u, Value: v})
			delete(vals, u)
			step++
			if len(vals)%499 == 0 {
				check(step)
			}
		}
		check(step)
	}
	if _, i := tr.seek(int64(tr.n)); i != 0 {
		t.Fatal("seek past the end")
	}
}

func TestBoardBeforeMatchesRedisOrder(t *testing.T) {
	// Equal values: Redis ZREVRANGE orders members by byte string, descending.
	cases := []struct {
		a, b int64
		want bool
	}{
		{9, 10, true},    // "9" > "10"
		{10, 9, false},   // "10" < "9"
		{12, 11, true},   // same length: numeric
		{-1, 1, false},   // "-1" < "1"
		{100, -5, true},  // "1..." > "-..."
		{-12, -2, false}, // "-12" < "-2"
		{7, 7, false},
	}
	for _, c := range cases {
		if got := boardBefore(BoardMember{User: c.a}, BoardMember{User: c.b}); got != c.want {
			t.Errorf("before(%d, %d) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	if !boardBefore(BoardMember{User: 1, Value: 2}, BoardMember{User: 9, Value: 1}) {
		t.Error("higher value must come first")
	}
}
