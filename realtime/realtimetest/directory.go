package realtimetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/realtime"
)

// RunDirectoryTests checks that room directories implement the
// realtime.Directory contract. newDirectories returns one or more instances
// sharing one fresh backend (an empty namespace), standing for the nodes of
// one cluster.
func RunDirectoryTests(t *testing.T, newDirectories func(t *testing.T) []realtime.Directory) {
	t.Run("ClaimLookup", func(t *testing.T) { testClaimLookup(t, newDirectories) })
	t.Run("RenewRelease", func(t *testing.T) { testRenewRelease(t, newDirectories) })
	t.Run("DeadOwnerLosesRoom", func(t *testing.T) { testLeaseExpiry(t, newDirectories) })
	t.Run("RenewKeepsRoom", func(t *testing.T) { testRenewKeeps(t, newDirectories) })
	t.Run("ConcurrentClaims", func(t *testing.T) { testConcurrentClaims(t, newDirectories) })
	t.Run("BadTTL", func(t *testing.T) { testBadTTL(t, newDirectories) })
}

func claim(t *testing.T, d realtime.Directory, room, node string, ttl time.Duration) realtime.Lease {
	t.Helper()
	l, err := d.Claim(ctxT(t), room, node, ttl)
	if err != nil {
		t.Fatalf("Claim(%q, %q): %v", room, node, err)
	}
	if l.Room != room || l.Node != node || l.Token == "" || l.Expires.IsZero() {
		t.Fatalf("Claim(%q, %q) = %+v", room, node, l)
	}
	return l
}

func lookup(t *testing.T, d realtime.Directory, room string) (realtime.Lease, error) {
	t.Helper()
	l, err := d.Lookup(ctxT(t), room)
	if err != nil && !errors.Is(err, realtime.ErrRoomNotFound) {
		t.Fatalf("Lookup(%q): %v", room, err)
	}
	return l, err
}

func wantOwner(t *testing.T, d realtime.Directory, room, node string) {
	t.Helper()
	l, err := lookup(t, d, room)
	if err != nil || l.Node != node || l.Room != room || l.Token != "" {
		t.Fatalf("Lookup(%q) = %+v, %v; want node %q and no token", room, l, err, node)
	}
}

func wantNoRoom(t *testing.T, d realtime.Directory, room string) {
	t.Helper()
	if l, err := lookup(t, d, room); !errors.Is(err, realtime.ErrRoomNotFound) {
		t.Fatalf("Lookup(%q) = %+v, %v; want ErrRoomNotFound", room, l, err)
	}
}

func testClaimLookup(t *testing.T, nd func(t *testing.T) []realtime.Directory) {
	a, b := pair(nd(t))
	wantNoRoom(t, b, "raid:1")
	claim(t, a, "raid:1", "node-a", time.Minute)
	wantOwner(t, b, "raid:1", "node-a")
	wantOwner(t, a, "raid:1", "node-a")
	owner, err := b.Claim(ctxT(t), "raid:1", "node-b", time.Minute)
	if !errors.Is(err, realtime.ErrRoomTaken) || owner.Node != "node-a" || owner.Token != "" {
		t.Fatalf("second Claim = %+v, %v; want ErrRoomTaken naming node-a without a token", owner, err)
	}
	// The same node claiming again is refused too: a claim is one lease.
	if _, err := a.Claim(ctxT(t), "raid:1", "node-a", time.Minute); !errors.Is(err, realtime.ErrRoomTaken) {
		t.Fatalf("Claim by the owner again: %v, want ErrRoomTaken", err)
	}
	// Other rooms are independent; odd names are fine.
	for _, room := range []string{"raid:2", "{x}", "pvp 한:1"} {
		claim(t, b, room, "node-b", time.Minute)
		wantOwner(t, a, room, "node-b")
	}
}

func testRenewRelease(t *testing.T, nd func(t *testing.T) []realtime.Directory) {
	a, b := pair(nd(t))
	l := claim(t, a, "r", "a", time.Minute)
	l2, err := a.Renew(ctxT(t), l, 2*time.Minute)
	if err != nil || l2.Token != l.Token || l2.Node != "a" || !l2.Expires.After(l.Expires) {
		t.Fatalf("Renew = %+v, %v; want the same claim expiring later than %v", l2, err, l.Expires)
	}
	forged := l
	forged.Token = "not-the-token"
	if _, err := b.Renew(ctxT(t), forged, time.Minute); !errors.Is(err, realtime.ErrLeaseLost) {
		t.Fatalf("Renew with another token: %v, want ErrLeaseLost", err)
	}
	if err := b.Release(ctxT(t), forged); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, b, "r", "a") // a forged release did nothing
	if err := a.Release(ctxT(t), l2); err != nil {
		t.Fatalf("Release: %v", err)
	}
	wantNoRoom(t, b, "r")
	if _, err := a.Renew(ctxT(t), l2, time.Minute); !errors.Is(err, realtime.ErrLeaseLost) {
		t.Fatalf("Renew after Release: %v, want ErrLeaseLost", err)
	}
	// Another node claims it; the old lease can neither renew nor release it.
	claim(t, b, "r", "b", time.Minute)
	if _, err := a.Renew(ctxT(t), l, time.Minute); !errors.Is(err, realtime.ErrLeaseLost) {
		t.Fatalf("old lease Renew: %v, want ErrLeaseLost", err)
	}
	if err := a.Release(ctxT(t), l); err != nil {
		t.Fatal(err)
	}
	wantOwner(t, a, "r", "b")
	if err := a.Release(ctxT(t), realtime.Lease{Room: "never", Node: "a", Token: "x"}); err != nil {
		t.Fatalf("Release of an unknown room: %v", err)
	}
}

func testLeaseExpiry(t *testing.T, nd func(t *testing.T) []realtime.Directory) {
	dead, alive := pair(nd(t))
	l := claim(t, dead, "raid", "dead", 300*time.Millisecond)
	deadline := time.Now().Add(wait)
	for {
		if _, err := lookup(t, alive, "raid"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the room is still owned %v after its lease", wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	claim(t, alive, "raid", "alive", time.Minute)
	wantOwner(t, dead, "raid", "alive")
	if _, err := dead.Renew(ctxT(t), l, time.Minute); !errors.Is(err, realtime.ErrLeaseLost) {
		t.Fatalf("Renew of the expired lease: %v, want ErrLeaseLost", err)
	}
}

func testRenewKeeps(t *testing.T, nd func(t *testing.T) []realtime.Directory) {
	a, b := pair(nd(t))
	// The first lease is long enough for a loaded machine to renew it in
	// time (a Renew after it ended would rightly fail); the check waits
	// until it has surely ended.
	const first = 2 * time.Second
	began := time.Now()
	l := claim(t, a, "kept", "a", first)
	if _, err := a.Renew(ctxT(t), l, time.Minute); err != nil {
		t.Fatalf("Renew %v after a Claim of %v: %v", time.Since(began), first, err)
	}
	time.Sleep(time.Until(began.Add(first + 500*time.Millisecond)))
	wantOwner(t, b, "kept", "a")
}

func testConcurrentClaims(t *testing.T, nd func(t *testing.T) []realtime.Directory) {
	ds := nd(t)
	const n = 8
	var wg sync.WaitGroup
	won := make(chan realtime.Lease, n)
	lost := make(chan realtime.Lease, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := ds[i%len(ds)].Claim(ctxT(t), "contended", fmt.Sprint("node-", i), time.Minute)
			switch {
			case err == nil:
				won <- l
			case errors.Is(err, realtime.ErrRoomTaken):
				lost <- l
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(won)
	close(lost)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(won) != 1 || len(lost) != n-1 {
		t.Fatalf("%d claims won and %d lost, want 1 and %d", len(won), len(lost), n-1)
	}
	w := <-won
	for l := range lost {
		if l.Node != w.Node {
			t.Fatalf("a refused claim names owner %q, the winner is %q", l.Node, w.Node)
		}
	}
	wantOwner(t, ds[0], "contended", w.Node)
}

func testBadTTL(t *testing.T, nd func(t *testing.T) []realtime.Directory) {
	d := nd(t)[0]
	if _, err := d.Claim(ctxT(t), "x", "a", 0); err == nil {
		t.Fatal("Claim with ttl 0 succeeded")
	}
	l := claim(t, d, "y", "a", time.Minute)
	if _, err := d.Renew(ctxT(t), l, -time.Second); err == nil {
		t.Fatal("Renew with a negative ttl succeeded")
	}
}
