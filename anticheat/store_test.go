package anticheat_test

import (
	"context"
	"testing"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/internal/testdb"
)

func TestMemoryStore(t *testing.T) {
	anticheattest.RunStoreTests(t, func(t *testing.T) anticheat.Store {
		return anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	})
}

func newSQLStore(t testing.TB, b testdb.Backend) *anticheat.SQLStore {
	db := b.Open(t)
	s, err := anticheat.NewSQLStore(t.Context(), db, anticheat.SQLConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Twice: idempotent.
	if err := s.CreateTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSQLStore(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			anticheattest.RunStoreTests(t, func(t *testing.T) anticheat.Store { return newSQLStore(t, b) })
		})
	}
}

func TestMemoryLogBounded(t *testing.T) {
	s := anticheat.NewMemoryStore(anticheat.MemoryConfig{MaxEvents: 10})
	ctx := context.Background()
	for i := range 25 {
		if _, _, err := s.Record(ctx, anticheat.Event{UserKey: 1, Kind: "speed", At: anticheattest.Day0, Detail: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := s.UserEvents(ctx, 1, 100)
	if len(evs) != 10 || evs[0].Detail != "y" || evs[9].Detail != "p" {
		t.Fatalf("kept %d events: first %q last %q", len(evs), evs[0].Detail, evs[len(evs)-1].Detail)
	}
	if c, _ := s.UserCounts(ctx, 1); c["speed"] != 25 {
		t.Fatalf("counter %d, want 25", c["speed"])
	}
}
