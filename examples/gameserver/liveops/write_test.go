package liveops

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard/shardtest"
)

// Every write of the manager to DB goes through Config.Write, once: a
// login's liveops_logins row and a policy change's transaction; a Write
// that gives no turn fails the change, which writes nothing.
func TestWritesGoThroughConfigWrite(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t, b)
			var writes atomic.Int64
			var refuse atomic.Bool
			errNoTurn := errors.New("no turn")
			m := newManager(t, Config{DB: db, PollInterval: -1,
				Write: func(ctx context.Context, fn func(context.Context) error) error {
					writes.Add(1)
					if refuse.Load() {
						return errNoTurn
					}
					return fn(ctx)
				}})
			h := chain(m)
			if r := call(t, h, "auth.guest", nil, `{"user": 9}`); r.Code != protocol.CodeOK {
				t.Fatalf("login: %+v", r)
			}
			if n := writes.Load(); n != 1 {
				t.Fatalf("%d writes through Config.Write after a login, want 1", n)
			}
			var rows int
			if err := db.QueryRow("SELECT COUNT(*) FROM liveops_logins").Scan(&rows); err != nil || rows != 1 {
				t.Fatalf("liveops_logins rows %d %v", rows, err)
			}
			if err := m.AddUserMaintenance(ctx, []int64{9}, "op", ""); err != nil {
				t.Fatal(err)
			}
			if n := writes.Load(); n != 2 {
				t.Fatalf("%d writes after a change, want 2", n)
			}
			refuse.Store(true)
			if err := m.AddUserMaintenance(ctx, []int64{10}, "op", ""); !errors.Is(err, errNoTurn) {
				t.Fatalf("change without a turn: %v", err)
			}
			if err := db.QueryRow("SELECT COUNT(*) FROM liveops_user_maintenance").Scan(&rows); err != nil || rows != 1 {
				t.Fatalf("user maintenance rows %d %v, want 1", rows, err)
			}
		})
	}
}
