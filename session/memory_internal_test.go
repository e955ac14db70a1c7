package session

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
)

// TestMemoryStoreUsersDoNotWaitForEachOther: while one user's shard is
// locked (a holder descheduled by a loaded machine), the other users' Get
// and GetFrame are answered, and the locked user's are answered after.
func TestMemoryStoreUsersDoNotWaitForEachOther(t *testing.T) {
	m := NewMemoryStore(Config{})
	defer m.Close()
	ctx := context.Background()
	const users = 200
	sess := make([]*Session, users)
	for i := range sess {
		s, err := m.Create(ctx, CreateParams{UserKey: int64(1000 + i)})
		if err != nil {
			t.Fatal(err)
		}
		sess[i] = s
	}
	used := map[*memShard]bool{}
	for _, s := range sess {
		used[m.shard(s.UserKey)] = true
	}
	if len(used) < memShards*3/4 {
		t.Fatalf("%d users fell into %d of %d shards", users, len(used), memShards)
	}
	stuck := m.shard(sess[0].UserKey)
	stuck.mu.Lock()
	done := make(chan error, 1)
	go func() {
		for i, s := range sess {
			if m.shard(s.UserKey) == stuck {
				continue
			}
			if _, err := m.GetFrame(ctx, s.ID, 1); err != nil {
				done <- err
				return
			}
			if _, err := m.Get(ctx, sess[i].Token); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			stuck.mu.Unlock()
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		stuck.mu.Unlock()
		t.Fatal("other users' lookups waited for one user's lock")
	}
	stuck.mu.Unlock()
	if _, err := m.GetFrame(ctx, sess[0].ID, 1); err != nil {
		t.Fatal(err)
	}
}

// TestMemoryStoreFrameCountersOncePerSessionUnderLoad: many users, each
// counter sent by several goroutines at once, is accepted exactly once per
// session.
func TestMemoryStoreFrameCountersOncePerSessionUnderLoad(t *testing.T) {
	m := NewMemoryStore(Config{})
	defer m.Close()
	ctx := context.Background()
	const users, senders, counters = 100, 4, 30
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[string]map[uint64]int{}
	var other []error
	for u := range users {
		s, err := m.Create(ctx, CreateParams{UserKey: int64(5000 + u)})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		accepted[s.ID] = map[uint64]int{}
		mu.Unlock()
		for range senders {
			wg.Go(func() {
				for c := uint64(1); c <= counters; c++ {
					_, err := m.GetFrame(ctx, s.ID, c)
					mu.Lock()
					switch {
					case err == nil:
						accepted[s.ID][c]++
					case !errors.Is(err, protocol.ErrReplayed):
						other = append(other, err)
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(other) > 0 {
		t.Fatalf("errors other than replayed: %v", other[0])
	}
	for id, got := range accepted {
		for c := uint64(1); c <= counters; c++ {
			if got[c] != 1 {
				t.Fatalf("session %s: counter %d accepted %d times, want once", id, c, got[c])
			}
		}
	}
}
