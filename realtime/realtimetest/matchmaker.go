package realtimetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/madang-io/madang/realtime"
)

// MatchmakerConfig is what a matchmaker conformance test asks of the
// matchmakers it gets.
type MatchmakerConfig struct {
	// Size is how many players form a group.
	Size int
	// MaxQueue bounds the players waiting per kind (all instances
	// together).
	MaxQueue int
}

// RunMatchmakerTests checks that matchmakers implement the
// realtime.Matchmaker contract: groups of exactly Size players in arrival
// order, a player added twice counted once, the queue bound
// (realtime.ErrMatchQueueFull), Remove, kinds independent, and concurrent
// Adds that never form overlapping or short groups nor lose a player.
//
// newMatchmakers returns one or more instances configured by cfg sharing
// one fresh backend (an empty namespace), standing for the nodes of one
// cluster; the tests spread their Adds over them, and call Remove on the
// instance that added the player (the node where its connection closed).
func RunMatchmakerTests(t *testing.T, newMatchmakers func(t *testing.T, cfg MatchmakerConfig) []realtime.Matchmaker) {
	t.Run("Order", func(t *testing.T) { testMatchOrder(t, newMatchmakers) })
	t.Run("Dedupe", func(t *testing.T) { testMatchDedupe(t, newMatchmakers) })
	t.Run("QueueBound", func(t *testing.T) { testMatchBound(t, newMatchmakers) })
	t.Run("Remove", func(t *testing.T) { testMatchRemove(t, newMatchmakers) })
	t.Run("KindsIndependent", func(t *testing.T) { testMatchKinds(t, newMatchmakers) })
	t.Run("SizeOne", func(t *testing.T) { testMatchSizeOne(t, newMatchmakers) })
	t.Run("Concurrent", func(t *testing.T) { testMatchConcurrent(t, newMatchmakers) })
}

type newMMs = func(t *testing.T, cfg MatchmakerConfig) []realtime.Matchmaker

func add(t *testing.T, m realtime.Matchmaker, kind string, user int64) []int64 {
	t.Helper()
	g, err := m.Add(ctxT(t), kind, user)
	if err != nil {
		t.Fatalf("Add(%q, %d): %v", kind, user, err)
	}
	return g
}

func wantQueued(t *testing.T, m realtime.Matchmaker, kind string, user int64) {
	t.Helper()
	if g := add(t, m, kind, user); g != nil {
		t.Fatalf("Add(%q, %d) = group %v, want queued", kind, user, g)
	}
}

func wantGroup(t *testing.T, m realtime.Matchmaker, kind string, user int64, want ...int64) {
	t.Helper()
	if g := add(t, m, kind, user); !slices.Equal(g, want) {
		t.Fatalf("Add(%q, %d) = %v, want group %v", kind, user, g, want)
	}
}

func testMatchOrder(t *testing.T, nm newMMs) {
	ms := nm(t, MatchmakerConfig{Size: 3, MaxQueue: 100})
	on := func(i int) realtime.Matchmaker { return ms[i%len(ms)] }
	wantQueued(t, on(0), "raid", 1)
	wantQueued(t, on(1), "raid", 2)
	wantGroup(t, on(2), "raid", 3, 1, 2, 3)
	wantQueued(t, on(1), "raid", 6)
	wantQueued(t, on(0), "raid", 5)
	wantGroup(t, on(1), "raid", 4, 6, 5, 4) // arrival order, not user order
	wantQueued(t, on(0), "raid", 7)
}

func testMatchDedupe(t *testing.T, nm newMMs) {
	ms := nm(t, MatchmakerConfig{Size: 2, MaxQueue: 1})
	a, b := pair(ms)
	wantQueued(t, a, "pvp", 1)
	wantQueued(t, a, "pvp", 1) // not a group of 1 and 1
	wantQueued(t, b, "pvp", 1) // nor through another node; not "queue full" either
	wantGroup(t, b, "pvp", 2, 1, 2)
	// Matched players may wait again.
	wantQueued(t, b, "pvp", 2)
	wantGroup(t, a, "pvp", 1, 2, 1)
}

func testMatchBound(t *testing.T, nm newMMs) {
	ms := nm(t, MatchmakerConfig{Size: 10, MaxQueue: 2})
	a, b := pair(ms)
	wantQueued(t, a, "pvp", 1)
	wantQueued(t, b, "pvp", 2)
	for _, m := range []realtime.Matchmaker{a, b} {
		if g, err := m.Add(ctxT(t), "pvp", 3); !errors.Is(err, realtime.ErrMatchQueueFull) || g != nil {
			t.Fatalf("Add over the bound = %v, %v; want ErrMatchQueueFull", g, err)
		}
	}
	wantQueued(t, b, "raid", 3) // another kind's queue
	a.Remove(ctxT(t), 1)
	wantQueued(t, b, "pvp", 3) // room again
}

func testMatchRemove(t *testing.T, nm newMMs) {
	ms := nm(t, MatchmakerConfig{Size: 2, MaxQueue: 100})
	a, b := pair(ms)
	wantQueued(t, a, "pvp", 1)
	wantQueued(t, a, "raid", 1)
	a.Remove(ctxT(t), 1) // from every queue
	a.Remove(ctxT(t), 1) // twice: no-op
	b.Remove(ctxT(t), 9) // never waited: no-op
	wantQueued(t, b, "pvp", 2)
	wantGroup(t, a, "pvp", 3, 2, 3)
	wantQueued(t, a, "raid", 4)
	wantGroup(t, b, "raid", 5, 4, 5)
	// A matched player's Remove does not disturb the others.
	b.Remove(ctxT(t), 5)
	wantQueued(t, a, "raid", 6)
	wantGroup(t, a, "raid", 7, 6, 7)
}

func testMatchKinds(t *testing.T, nm newMMs) {
	ms := nm(t, MatchmakerConfig{Size: 2, MaxQueue: 100})
	a, b := pair(ms)
	wantQueued(t, a, "a", 1)
	wantQueued(t, b, "b", 2)
	wantGroup(t, b, "a", 3, 1, 3)
	wantGroup(t, a, "b", 4, 2, 4)
	// One player waiting for two kinds is matched in each.
	wantQueued(t, a, "a", 5)
	wantQueued(t, a, "b", 5)
	wantGroup(t, b, "a", 6, 5, 6)
	wantGroup(t, b, "b", 7, 5, 7)
}

func testMatchSizeOne(t *testing.T, nm newMMs) {
	ms := nm(t, MatchmakerConfig{Size: 1, MaxQueue: 100})
	for i, m := range ms {
		wantGroup(t, m, "solo", int64(i+1), int64(i+1))
	}
}

// Many goroutines on every instance add distinct players to two kinds:
// every group has Size distinct players, no player is in two groups, and
// exactly floor(players/Size) groups form per kind (none lost).
func testMatchConcurrent(t *testing.T, nm newMMs) {
	const size, workers, each = 3, 16, 25
	ms := nm(t, MatchmakerConfig{Size: size, MaxQueue: 10000})
	var (
		mu     sync.Mutex
		groups = map[string][][]int64{}
		wg     sync.WaitGroup
		errs   = make(chan error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			m := ms[w%len(ms)]
			for i := range each {
				u := int64(w*each + i + 1)
				kind := []string{"even", "odd"}[u%2]
				g, err := m.Add(ctxT(t), kind, u)
				if err != nil {
					errs <- fmt.Errorf("Add(%q, %d): %w", kind, u, err)
					return
				}
				if g != nil {
					mu.Lock()
					groups[kind] = append(groups[kind], g)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for kind, gs := range groups {
		for _, g := range gs {
			if len(g) != size {
				t.Fatalf("%s: group %v of %d players, want %d", kind, g, len(g), size)
			}
			for _, u := range g {
				if seen[u] || []string{"even", "odd"}[u%2] != kind {
					t.Fatalf("%s: player %d in two groups, or of another kind (group %v)", kind, u, g)
				}
				seen[u] = true
			}
		}
	}
	total := workers * each
	for _, kind := range []string{"even", "odd"} {
		if got, want := len(groups[kind]), (total/2)/size; got != want {
			t.Errorf("%s: %d groups of %d players, want %d: players lost or kept waiting", kind, got, total/2, want)
		}
	}
}
