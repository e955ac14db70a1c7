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

// TestBoardIndexModel checks the hash index against a Go map through random
// sets and deletes, with keys chosen to collide (clusters wrap around).
func TestBoardIndexModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var x boardIndex
	model := map[int64]float64{}
	for step := 0; step < 200000; step++ {
		var u int64
		if step < 50000 { // a small table first: clusters wrap around its end
			u = rng.Int64N(12)
			if rng.IntN(2) == 0 {
				_, had := model[u]
				if x.del(u) != had {
					t.Fatalf("step %d: del(%d) disagrees", step, u)
				}
				delete(model, u)
			} else {
				x.set(u, float64(step))
				model[u] = float64(step)
			}
			for k, v := range model {
				if got, ok := x.get(k); !ok || got != v {
					t.Fatalf("step %d: get(%d) = %v, %v; want %v", step, k, got, ok, v)
				}
			}
			continue
		}
		switch rng.IntN(3) {
		case 0:
			u = rng.Int64N(3000) - 1500
		case 1:
			u = rng.Int64N(64) << 58 // high bits only: many share a home
		default:
			u = rng.Int64()
		}
		if rng.IntN(3) == 0 {
			_, had := model[u]
			if got := x.del(u); got != had {
				t.Fatalf("step %d: del(%d) = %v, want %v", step, u, got, had)
			}
			delete(model, u)
		} else {
			v := rng.Float64()
			x.set(u, v)
			model[u] = v
		}
		if step%10007 == 0 || step == 199999 {
			if x.n != len(model) {
				t.Fatalf("step %d: n = %d, want %d", step, x.n, len(model))
			}
			for k, v := range model {
				if got, ok := x.get(k); !ok || got != v {
					t.Fatalf("step %d: get(%d) = %v, %v; want %v", step, k, got, ok, v)
				}
			}
			for i := 0; i < 100; i++ {
				k := rng.Int64()
				_, want := model[k]
				if _, ok := x.get(k); ok != want {
					t.Fatalf("step %d: get(%d) found = %v", step, k, ok)
				}
			}
		}
	}
}

// TestBoardIndexWrap deletes from clusters that wrap around the table's end,
// in every order, checking every lookup after each delete.
func TestBoardIndexWrap(t *testing.T) {
	var probe boardIndex
	probe.grow() // 16 slots: 8 members at most before it grows
	var keys []int64
	for u := int64(0); len(keys) < 7; u++ {
		if h := probe.home(u); h >= 14 || (h <= 1 && len(keys) >= 3) {
			keys = append(keys, u) // homes 14, 15 first, then 0, 1: one cluster across the end
		}
	}
	for order := 0; order < 200; order++ {
		x := boardIndex{}
		x.grow()
		model := map[int64]float64{}
		for i, u := range keys {
			x.set(u, float64(i))
			model[u] = float64(i)
		}
		if len(x.slots) != 16 {
			t.Fatalf("table grew to %d", len(x.slots))
		}
		perm := rand.New(rand.NewPCG(uint64(order), 9)).Perm(len(keys))
		for _, p := range perm {
			u := keys[p]
			if !x.del(u) {
				t.Fatalf("order %d: del(%d) found nothing", order, u)
			}
			delete(model, u)
			for k, v := range model {
				if got, ok := x.get(k); !ok || got != v {
					t.Fatalf("order %d: after del(%d), get(%d) = %v, %v", order, u, k, got, ok)
				}
			}
		}
	}
}
