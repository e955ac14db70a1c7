package idempotency_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/idempotency/idempotencytest"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

var (
	tScope = idempotency.Scope{UserKey: 5, Command: "gacha.pull"}
	tFP    = idempotency.FingerprintOf([]byte(`{}`))
)

func TestKeeperStoreDown(t *testing.T) {
	ctx := context.Background()
	flaky := idempotencytest.NewFlakyStore(idempotency.NewMemoryStore(nil))
	k, _ := idempotency.NewKeeper(flaky, idempotency.Config{Lease: time.Hour})
	runs := 0
	fn := func(context.Context) (idempotency.Result, error) {
		runs++
		return idempotency.Result{Payload: []byte(`"ssr"`)}, nil
	}

	// Down before anything ran: retryable, nothing ran.
	flaky.FailNext(1, 0, 0)
	_, err := k.Do(ctx, tScope, "a", tFP, fn)
	if protocol.CodeOf(err) != protocol.CodeUnavailable || !errors.Is(err, idempotencytest.ErrInjected) || runs != 0 {
		t.Fatalf("begin down: %v, runs %d", err, runs)
	}

	// Down when the result is stored: the function ran; the client hears
	// "may have committed" (CodeTimeout) and the key stays in flight until
	// its lease ends, so an early retry does not run it again.
	flaky.FailNext(0, 1, 0)
	_, err = k.Do(ctx, tScope, "b", tFP, fn)
	if protocol.CodeOf(err) != protocol.CodeTimeout || runs != 1 {
		t.Fatalf("complete down: %v (code %v), runs %d", err, protocol.CodeOf(err), runs)
	}
	k2, _ := idempotency.NewKeeper(flaky, idempotency.Config{InFlight: idempotency.AnswerInFlight})
	if _, err := k2.Do(ctx, tScope, "b", tFP, fn); protocol.CodeOf(err) != protocol.CodeInFlight || runs != 1 {
		t.Fatalf("retry within the lease: %v, runs %d", err, runs)
	}

	// Release fails after a retryable error: logged; the error stands.
	flaky.FailNext(0, 0, 1)
	_, err = k.Do(ctx, tScope, "c", tFP, func(context.Context) (idempotency.Result, error) {
		return idempotency.Result{}, idempotency.Retryable(errors.New("flaky"))
	})
	if protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("release down: %v", err)
	}
}

func TestKeeperDeadlineShorterThanLease(t *testing.T) {
	k, _ := idempotency.NewKeeper(idempotency.NewMemoryStore(nil), idempotency.Config{Lease: 10 * time.Second})
	var left time.Duration
	_, err := k.Do(context.Background(), tScope, "k", tFP, func(ctx context.Context) (idempotency.Result, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			t.Error("no deadline")
		}
		left = time.Until(dl)
		return idempotency.Result{}, nil
	})
	if err != nil || left <= 0 || left > 8*time.Second {
		t.Fatalf("deadline in %v (err %v), want at most 8 s (lease minus a fifth)", left, err)
	}
	// An earlier deadline of the caller's stays.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = k.Do(ctx, tScope, "k2", tFP, func(ctx context.Context) (idempotency.Result, error) {
		dl, _ := ctx.Deadline()
		left = time.Until(dl)
		return idempotency.Result{}, nil
	})
	if left > time.Second {
		t.Fatalf("caller's deadline lost: %v", left)
	}
}

func TestKeeperLogsReplays(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	k, _ := idempotency.NewKeeper(idempotency.NewMemoryStore(nil), idempotency.Config{Logger: log})
	fn := func(context.Context) (idempotency.Result, error) { return idempotency.Result{}, nil }
	for range 2 {
		if _, err := k.Do(context.Background(), tScope, "logged", tFP, fn); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(buf.String(), "replayed stored result") || !strings.Contains(buf.String(), "rid=logged") {
		t.Fatalf("log: %s", buf.String())
	}
}

func TestKeeperResultTooLarge(t *testing.T) {
	k, _ := idempotency.NewKeeper(idempotency.NewMemoryStore(nil), idempotency.Config{})
	runs := 0
	fn := func(context.Context) (idempotency.Result, error) {
		runs++
		return idempotency.Result{Payload: make([]byte, idempotency.MaxPayloadLen+1), Message: strings.Repeat("é", idempotency.MaxMessageLen)}, nil
	}
	_, err := k.Do(context.Background(), tScope, "big", tFP, fn)
	if !errors.Is(err, idempotency.ErrResultTooLarge) {
		t.Fatalf("err %v", err)
	}
	// Released: it runs again.
	_, _ = k.Do(context.Background(), tScope, "big", tFP, fn)
	if runs != 2 {
		t.Fatalf("runs %d", runs)
	}
	out, err := k.Do(context.Background(), tScope, "msg", tFP, func(context.Context) (idempotency.Result, error) {
		return idempotency.Result{Message: strings.Repeat("é", idempotency.MaxMessageLen)}, nil
	})
	if err != nil || len(out.Message) > idempotency.MaxMessageLen || !strings.HasPrefix(strings.Repeat("é", 600), out.Message) {
		t.Fatalf("message of %d bytes, %v", len(out.Message), err)
	}
}

func TestNewRejectsNil(t *testing.T) {
	if _, err := idempotency.NewKeeper(nil, idempotency.Config{}); err == nil {
		t.Fatal("nil store accepted")
	}
	if _, err := idempotency.NewRedisStore(nil, idempotency.RedisConfig{}); err == nil {
		t.Fatal("nil client accepted")
	}
	if _, err := idempotency.NewSQLStore(context.Background(), nil, idempotency.SQLConfig{}); err == nil {
		t.Fatal("nil db accepted")
	}
}

func TestSQLStoreRoutesByUser(t *testing.T) {
	ctx := context.Background()
	dbs := []*sql.DB{testdb.SQLite(t, "shard0"), testdb.SQLite(t, "shard1")}
	// A hand-made router: SQLConfig.Tx takes any transaction runner.
	s, err := idempotency.NewSQLStore(ctx, nil, idempotency.SQLConfig{
		Dialect: shard.DialectSQLite,
		Tx: func(ctx context.Context, userKey int64, fn func(context.Context, *sql.Tx) error) error {
			tx, err := dbs[userKey%2].BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := fn(ctx, tx); err != nil {
				return err
			}
			return tx.Commit()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range dbs {
		if err := s.Migrate(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	for uk := int64(1); uk <= 4; uk++ {
		if _, err := s.Do(ctx, idempotency.Scope{UserKey: uk, Command: "c"}, "k", tFP, func(context.Context) (idempotency.Result, error) {
			return idempotency.Result{}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i, db := range dbs {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM idempotency_keys WHERE user_key % 2 = ?`, i).Scan(&n); err != nil {
			t.Fatal(err)
		}
		var all int
		db.QueryRow(`SELECT COUNT(*) FROM idempotency_keys`).Scan(&all)
		if n != 2 || all != 2 {
			t.Fatalf("shard %d holds %d rows (%d of its users)", i, all, n)
		}
	}
}
