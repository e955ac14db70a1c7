package idempotency_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
)

const concurrentCalls = 1000

// hammer sends concurrentCalls calls with one key, spread over the doers
// (independent instances sharing one backend), and checks that the side
// effect happened exactly once and every caller got the stored answer or,
// where allowed, the in-flight code.
func hammer(t *testing.T, doers []idempotency.Doer, allowInFlight bool) {
	t.Helper()
	ctx := context.Background()
	scope := idempotency.Scope{UserKey: 10000001, Command: "shop.buy"}
	fp := idempotency.FingerprintOf([]byte(`{"item":"sword"}`))
	var effects atomic.Int32
	fn := func(ctx context.Context) (idempotency.Result, error) {
		n := effects.Add(1)
		time.Sleep(5 * time.Millisecond) // let duplicates pile up
		return idempotency.Result{Payload: []byte(fmt.Sprintf(`{"bought":%d}`, n))}, nil
	}
	var ok, replays, inFlight atomic.Int32
	errs := make(chan error, concurrentCalls)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range concurrentCalls {
		d := doers[i%len(doers)]
		wg.Go(func() {
			<-start
			out, err := d.Do(ctx, scope, "rid-hammer", fp, fn)
			switch {
			case err == nil && out.Code == protocol.CodeOK && string(out.Payload) == `{"bought":1}`:
				ok.Add(1)
				if out.Replay {
					replays.Add(1)
				}
			case err != nil && allowInFlight && protocol.CodeOf(err) == protocol.CodeInFlight:
				inFlight.Add(1)
			default:
				errs <- fmt.Errorf("call %d: %+v (%s), %v (code %v)", i, out, out.Payload, err, protocol.CodeOf(err))
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 10 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Fatalf("%d calls got an unexpected answer", n)
	}
	if e := effects.Load(); e != 1 {
		t.Fatalf("side effect happened %d times, want 1", e)
	}
	if replays.Load() != ok.Load()-1 {
		t.Fatalf("%d OK answers, %d of them replays: want exactly one first run", ok.Load(), replays.Load())
	}
	t.Logf("%d calls: 1 run, %d replays, %d in flight", concurrentCalls, replays.Load(), inFlight.Load())
}

func redisDoers(t *testing.T, cfg idempotency.Config, connect func(t testing.TB) redis.UniversalClient) []idempotency.Doer {
	var prefix string
	var doers []idempotency.Doer
	for range 3 {
		c := connect(t) // a client (and pool) of its own per instance
		if prefix == "" {
			prefix = testredis.Prefix(t, c)
		}
		s, err := idempotency.NewRedisStore(c, idempotency.RedisConfig{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		k, err := idempotency.NewKeeper(s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		doers = append(doers, k)
	}
	return doers
}

func TestConcurrentOneKeyRedis(t *testing.T) {
	single := func(t testing.TB) redis.UniversalClient { return testredis.Client(t) }
	t.Run("Wait", func(t *testing.T) {
		hammer(t, redisDoers(t, idempotency.Config{WaitTimeout: time.Minute}, single), false)
	})
	t.Run("AnswerInFlight", func(t *testing.T) {
		hammer(t, redisDoers(t, idempotency.Config{InFlight: idempotency.AnswerInFlight}, single), true)
	})
}

func TestConcurrentOneKeyRedisCluster(t *testing.T) {
	cluster := func(t testing.TB) redis.UniversalClient { return testredis.Cluster(t) }
	hammer(t, redisDoers(t, idempotency.Config{WaitTimeout: time.Minute}, cluster), false)
}

func TestConcurrentOneKeyMemory(t *testing.T) {
	// One process: three Keepers over one MemoryStore.
	s := idempotency.NewMemoryStore(nil)
	var doers []idempotency.Doer
	for range 3 {
		k, err := idempotency.NewKeeper(s, idempotency.Config{WaitTimeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		doers = append(doers, k)
	}
	hammer(t, doers, false)
}

func TestConcurrentOneKeySQL(t *testing.T) {
	t.Run("mariadb", func(t *testing.T) {
		dsn := testdb.MySQL(t)
		var doers []idempotency.Doer
		for range 3 {
			db, err := sql.Open("mysql", dsn) // a pool of its own per instance
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			db.SetMaxOpenConns(20)
			doers = append(doers, sqlStore(t, db, idempotency.Config{WaitTimeout: time.Minute}))
		}
		hammer(t, doers, false)
	})
	t.Run("sqlite", func(t *testing.T) {
		dsn := testdb.SQLiteDSN(t.TempDir() + "/hammer.db")
		var doers []idempotency.Doer
		for range 3 {
			db, err := sql.Open("sqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			db.SetMaxOpenConns(4)
			doers = append(doers, sqlStore(t, db, idempotency.Config{WaitTimeout: time.Minute}))
		}
		hammer(t, doers, false)
	})
}
