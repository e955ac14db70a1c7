package idempotency_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/idempotency/idempotencytest"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/internal/testredis"
)

func memoryStore(t testing.TB) idempotency.Store { return idempotency.NewMemoryStore(nil) }

func redisStore(c redis.UniversalClient) idempotencytest.NewStoreFunc {
	return func(t testing.TB) idempotency.Store {
		s, err := idempotency.NewRedisStore(c, idempotency.RedisConfig{Prefix: testredis.Prefix(t, c)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func keeperOver(newStore idempotencytest.NewStoreFunc) idempotencytest.NewDoerFunc {
	return func(t testing.TB, cfg idempotency.Config) idempotency.Doer {
		k, err := idempotency.NewKeeper(newStore(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
}

// sqlStore opens a SQLStore on a fresh database with its table.
func sqlStore(t testing.TB, db *sql.DB, cfg idempotency.Config) *idempotency.SQLStore {
	t.Helper()
	ctx := context.Background()
	s, err := idempotency.NewSQLStore(ctx, db, idempotency.SQLConfig{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMemoryStore(t *testing.T) {
	idempotencytest.RunStoreTests(t, memoryStore)
	idempotencytest.RunDoerTests(t, keeperOver(memoryStore), idempotencytest.Options{})
}

func TestRedisStore(t *testing.T) {
	c := testredis.Client(t)
	idempotencytest.RunStoreTests(t, redisStore(c))
	idempotencytest.RunDoerTests(t, keeperOver(redisStore(c)), idempotencytest.Options{})
}

func TestRedisClusterStore(t *testing.T) {
	c := testredis.Cluster(t)
	idempotencytest.RunStoreTests(t, redisStore(c))
	idempotencytest.RunDoerTests(t, keeperOver(redisStore(c)), idempotencytest.Options{})
}

func TestSQLStore(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			newDoer := func(t testing.TB, cfg idempotency.Config) idempotency.Doer {
				return sqlStore(t, b.Open(t), cfg)
			}
			idempotencytest.RunDoerTests(t, newDoer, idempotencytest.Options{BusyIsUnavailable: b.Name == "sqlite"})
		})
	}
}
