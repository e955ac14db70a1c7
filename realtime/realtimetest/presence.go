package realtimetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/realtime"
)

// RunPresenceTests checks that presence backends implement the
// realtime.Presence contract. newPresence returns one or more instances
// with the given TTL sharing one fresh backend (an empty namespace),
// standing for the nodes of one cluster.
func RunPresenceTests(t *testing.T, newPresence func(t *testing.T, ttl time.Duration) []realtime.Presence) {
	t.Run("WhereAcrossNodes", func(t *testing.T) { testWhere(t, newPresence) })
	t.Run("Count", func(t *testing.T) { testCount(t, newPresence) })
	t.Run("LeaveAndDisconnect", func(t *testing.T) { testLeave(t, newPresence) })
	t.Run("DeadNodeDropsOut", func(t *testing.T) { testDeadNode(t, newPresence) })
	t.Run("Batch", func(t *testing.T) { testPresenceBatch(t, newPresence) })
	t.Run("Concurrent", func(t *testing.T) { testPresenceConcurrent(t, newPresence) })
}

func pair[T any](xs []T) (T, T) { return xs[0], xs[len(xs)-1] }

func where(t *testing.T, p realtime.Presence, uk int64) []realtime.PresenceConn {
	t.Helper()
	cs, err := p.Where(ctxT(t), uk)
	if err != nil {
		t.Fatalf("Where(%d): %v", uk, err)
	}
	return cs
}

func count(t *testing.T, p realtime.Presence, ch string) int {
	t.Helper()
	n, err := p.Count(ctxT(t), ch)
	if err != nil {
		t.Fatalf("Count(%q): %v", ch, err)
	}
	return n
}

func touch(t *testing.T, p realtime.Presence, es ...realtime.PresenceEntry) {
	t.Helper()
	if err := p.Touch(ctxT(t), es...); err != nil {
		t.Fatalf("Touch: %v", err)
	}
}

func entry(uk int64, node, conn string, chans ...string) realtime.PresenceEntry {
	return realtime.PresenceEntry{PresenceConn: realtime.PresenceConn{UserKey: uk, Node: node, ConnID: conn}, Channels: chans}
}

func testWhere(t *testing.T, np func(t *testing.T, ttl time.Duration) []realtime.Presence) {
	a, b := pair(np(t, time.Minute))
	if got := where(t, a, 1); len(got) != 0 {
		t.Fatalf("Where of an unknown user = %v", got)
	}
	touch(t, a, entry(1, "node-a", "c1"))
	touch(t, b, entry(1, "node-b", "c7"), entry(2, "node-b", "c8"))
	want := []realtime.PresenceConn{{UserKey: 1, Node: "node-a", ConnID: "c1"}, {UserKey: 1, Node: "node-b", ConnID: "c7"}}
	for _, p := range []realtime.Presence{a, b} {
		if got := where(t, p, 1); !slices.Equal(got, want) {
			t.Fatalf("Where(1) = %v, want %v (sorted by node, conn)", got, want)
		}
		if got := where(t, p, 2); len(got) != 1 || got[0].Node != "node-b" {
			t.Fatalf("Where(2) = %v", got)
		}
	}
	// Touching again does not duplicate.
	touch(t, a, entry(1, "node-a", "c1"))
	if got := where(t, b, 1); len(got) != 2 {
		t.Fatalf("Where(1) after a second Touch = %v", got)
	}
	// Odd names survive.
	touch(t, a, entry(3, "n:1{x}", "7:ab"))
	if got := where(t, b, 3); len(got) != 1 || got[0].Node != "n:1{x}" || got[0].ConnID != "7:ab" {
		t.Fatalf("Where(3) = %v", got)
	}
}

func testCount(t *testing.T, np func(t *testing.T, ttl time.Duration) []realtime.Presence) {
	a, b := pair(np(t, time.Minute))
	if n := count(t, a, "guild:1"); n != 0 {
		t.Fatalf("Count of an empty channel = %d", n)
	}
	touch(t, a, entry(1, "a", "c1", "guild:1", "world:3"), entry(2, "a", "c2", "guild:1"))
	touch(t, b, entry(3, "b", "c1", "world:3"), entry(1, "b", "c9", "guild:1"))
	for _, p := range []realtime.Presence{a, b} {
		if n := count(t, p, "guild:1"); n != 2 {
			t.Fatalf("Count(guild:1) = %d, want 2 (user 1 has two connections, counted once)", n)
		}
		if n := count(t, p, "world:3"); n != 2 {
			t.Fatalf("Count(world:3) = %d, want 2", n)
		}
	}
}

func testLeave(t *testing.T, np func(t *testing.T, ttl time.Duration) []realtime.Presence) {
	a, b := pair(np(t, time.Minute))
	touch(t, a, entry(1, "a", "c1", "x", "y"), entry(2, "a", "c2", "x"))
	if err := a.Leave(ctxT(t), 1, "x", "never"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, b, "x"); n != 1 {
		t.Fatalf("Count(x) after Leave = %d, want 1", n)
	}
	if n := count(t, b, "y"); n != 1 {
		t.Fatalf("Count(y) after leaving x = %d, want 1", n)
	}
	if got := where(t, b, 1); len(got) != 1 {
		t.Fatalf("Leave disconnected the user: %v", got)
	}
	if err := b.Disconnect(ctxT(t), realtime.PresenceConn{UserKey: 1, Node: "a", ConnID: "c1"}, "y"); err != nil {
		t.Fatal(err)
	}
	if got := where(t, a, 1); len(got) != 0 {
		t.Fatalf("Where after Disconnect = %v", got)
	}
	if n := count(t, a, "y"); n != 0 {
		t.Fatalf("Count(y) after Disconnect = %d", n)
	}
	if got := where(t, a, 2); len(got) != 1 {
		t.Fatalf("another user's Disconnect removed user 2: %v", got)
	}
	// Disconnecting an unknown connection is fine.
	if err := a.Disconnect(ctxT(t), realtime.PresenceConn{UserKey: 9, Node: "z", ConnID: "z"}); err != nil {
		t.Fatal(err)
	}
}

func testDeadNode(t *testing.T, np func(t *testing.T, ttl time.Duration) []realtime.Presence) {
	const ttl = time.Second
	alive, dead := pair(np(t, ttl))
	touch(t, dead, entry(10, "dead", "c", "room"), entry(11, "dead", "c", "room"))
	touch(t, alive, entry(20, "alive", "c", "room"))
	if n := count(t, alive, "room"); n != 3 {
		t.Fatalf("Count = %d, want 3", n)
	}
	// The live node keeps reporting; the dead one stops.
	deadline := time.Now().Add(wait)
	for {
		touch(t, alive, entry(20, "alive", "c", "room"))
		n := count(t, alive, "room")
		w := where(t, alive, 10)
		if n == 1 && len(w) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the dead node's users are still there: count %d, where(10) %v", wait, n, w)
		}
		time.Sleep(ttl / 10)
	}
	if got := where(t, dead, 20); len(got) != 1 || got[0].Node != "alive" {
		t.Fatalf("the live node's user dropped out: %v", got)
	}
	if got := where(t, dead, 11); len(got) != 0 {
		t.Fatalf("the dead node's user 11 is still online: %v", got)
	}
	// A dead node's user that reconnects elsewhere is back.
	touch(t, alive, entry(10, "alive", "c2", "room"))
	if n := count(t, dead, "room"); n != 2 {
		t.Fatalf("Count after user 10 reconnected = %d, want 2", n)
	}
}

func testPresenceBatch(t *testing.T, np func(t *testing.T, ttl time.Duration) []realtime.Presence) {
	a, b := pair(np(t, time.Minute))
	var es []realtime.PresenceEntry
	for i := range 300 {
		es = append(es, entry(int64(1000+i), "a", fmt.Sprint(i), fmt.Sprintf("part:%d", i%3), "all"))
	}
	touch(t, a, es...)
	if n := count(t, b, "all"); n != 300 {
		t.Fatalf("Count(all) = %d, want 300", n)
	}
	for i := range 3 {
		if n := count(t, b, fmt.Sprintf("part:%d", i)); n != 100 {
			t.Fatalf("Count(part:%d) = %d, want 100", i, n)
		}
	}
	if got := where(t, b, 1299); len(got) != 1 || got[0].ConnID != "299" {
		t.Fatalf("Where(1299) = %v", got)
	}
}

func testPresenceConcurrent(t *testing.T, np func(t *testing.T, ttl time.Duration) []realtime.Presence) {
	ps := np(t, time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := ps[w%len(ps)]
			ctx := ctxT(t)
			for i := range 25 {
				uk := int64(w*100 + i)
				if err := p.Touch(ctx, entry(uk, fmt.Sprint(w), "c", "busy")); err != nil {
					errs <- err
					return
				}
				if _, err := p.Count(ctx, "busy"); err != nil {
					errs <- err
					return
				}
				if _, err := p.Where(ctx, uk); err != nil {
					errs <- err
					return
				}
				if i%5 == 0 {
					if err := p.Leave(ctx, uk, "busy"); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := count(t, ps[0], "busy"); n != 8*20 {
		t.Fatalf("Count(busy) = %d, want %d", n, 8*20)
	}
}
