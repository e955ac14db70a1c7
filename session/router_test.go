package session_test

import (
	"errors"
	"math"
	"testing"

	"github.com/madang-io/madang/session"
	"github.com/redis/go-redis/v9"
)

// fakeNodes are distinct clients that never connect (routing needs none).
func fakeNodes(n int) []redis.UniversalClient {
	out := make([]redis.UniversalClient, n)
	for i := range out {
		out[i] = redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	}
	return out
}

func TestRouterModulo(t *testing.T) {
	nodes := fakeNodes(4)
	r, err := session.NewRouter(nodes, session.RouterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		uk   int64
		want int
	}{{0, 0}, {1, 1}, {4, 0}, {7, 3}, {10000001, 1}, {-1, 3}, {-4, 0}, {math.MaxInt64, 3}, {math.MinInt64, 0}} {
		if got := r.Index(c.uk); got != c.want {
			t.Errorf("Index(%d) = %d, want %d", c.uk, got, c.want)
		}
		if r.Node(c.uk) != nodes[c.want] {
			t.Errorf("Node(%d) is not node %d", c.uk, c.want)
		}
	}
	if r.Moving(5) != nil {
		t.Error("Moving without Previous")
	}
}

func TestRouterRanges(t *testing.T) {
	nodes := fakeNodes(3)
	r, err := session.NewRouter(nodes, session.RouterConfig{Rule: session.Ranges, Starts: []int64{10000000, 20000000, 30000000}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		uk   int64
		want int
	}{{1, 0}, {10000000, 0}, {19999999, 0}, {20000000, 1}, {29999999, 1}, {30000000, 2}, {math.MaxInt64, 2}} {
		if got := r.Index(c.uk); got != c.want {
			t.Errorf("Index(%d) = %d, want %d", c.uk, got, c.want)
		}
	}
	// Adding a node for a new range moves nobody.
	more := append(nodes[:3:3], fakeNodes(1)...)
	r2, err := session.NewRouter(more, session.RouterConfig{Rule: session.Ranges, Starts: []int64{10000000, 20000000, 30000000, 40000000}, Previous: r})
	if err != nil {
		t.Fatal(err)
	}
	for _, uk := range []int64{1, 15000000, 25000000, 35000000} {
		if r2.Moving(uk) != nil {
			t.Errorf("user %d moves", uk)
		}
	}
	if r2.Index(40000000) != 3 || r2.Moving(40000000) == nil {
		t.Error("a key of the new range should be on the new node, coming from node 2")
	}
	if got := len(r2.Nodes()); got != 4 {
		t.Errorf("Nodes: %d, want 4 distinct", got)
	}
}

func TestRouterErrors(t *testing.T) {
	for name, c := range map[string]struct {
		nodes []redis.UniversalClient
		cfg   session.RouterConfig
	}{
		"no nodes":     {nil, session.RouterConfig{}},
		"nil node":     {[]redis.UniversalClient{nil}, session.RouterConfig{}},
		"starts count": {fakeNodes(2), session.RouterConfig{Rule: session.Ranges, Starts: []int64{1}}},
		"starts order": {fakeNodes(2), session.RouterConfig{Rule: session.Ranges, Starts: []int64{5, 5}}},
		"unknown rule": {fakeNodes(1), session.RouterConfig{Rule: 9}},
	} {
		if _, err := session.NewRouter(c.nodes, c.cfg); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := session.NewRedisStore(nil, session.Config{}); err == nil {
		t.Error("nil router accepted")
	}
	if _, err := session.NewRedisStore(session.Single(fakeNodes(1)[0]), session.Config{Prefix: "a{b}"}); err == nil {
		t.Error("prefix with a brace accepted")
	}
}

func TestParseUserKey(t *testing.T) {
	for s, want := range map[string]int64{
		"12.AAAAAAAAAAAA": 12,
		"9.abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEF": 9,
	} {
		if got, ok := session.ParseUserKey(s); !ok || got != want {
			t.Errorf("ParseUserKey(%q) = %d, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "12", "12.", "12.AAAA", "012.AAAAAAAAAAAA", "-1.AAAAAAAAAAAA", "0.AAAAAAAAAAAA",
		"12.AAAAAAAAAAA=", "99999999999999999999.AAAAAAAAAAAA", "12.AAAAAA AAAAA", "+1.AAAAAAAAAAAA"} {
		if _, ok := session.ParseUserKey(s); ok {
			t.Errorf("ParseUserKey(%q) accepted", s)
		}
	}
}

func FuzzParseUserKey(f *testing.F) {
	for _, s := range []string{"12.AAAAAAAAAAAA", "9.abcdefghijklmnopqrstuvwxyz0123456789-_ABCDEF", "", "-1.x", "1.\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		uk, ok := session.ParseUserKey(s)
		if ok && uk <= 0 {
			t.Fatalf("ParseUserKey(%q) = %d", s, uk)
		}
	})
}

// FuzzStoreLookup: arbitrary tokens and key ids never panic a store and
// never find a session that was not issued.
func FuzzStoreLookup(f *testing.F) {
	for _, s := range []string{"12.AAAAAAAAAAAA", "1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", ".", "1..", "1.\x00"} {
		f.Add(s, uint64(1))
	}
	s := session.NewMemoryStore(session.Config{})
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, id string, counter uint64) {
		ctx := t.Context()
		if _, err := s.Get(ctx, id); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Get(%q): %v", id, err)
		}
		if _, err := s.GetFrame(ctx, id, counter); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("GetFrame(%q): %v", id, err)
		}
		if _, err := s.Secret(ctx, id); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("Secret(%q): %v", id, err)
		}
		if err := s.Revoke(ctx, id); err != nil {
			t.Fatalf("Revoke(%q): %v", id, err)
		}
	})
}
