package idempotency_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/internal/testredis"
	"github.com/madang-io/madang/protocol"
)

// go-redis re-sends a script whose reply was lost (MaxRetries), so each
// script must give the same answer when it runs twice for the same caller.
func TestRedisStoreScriptsSurviveResend(t *testing.T) {
	c := testredis.Client(t)
	s, err := idempotency.NewRedisStore(c, idempotency.RedisConfig{Prefix: testredis.Prefix(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	scope := idempotency.Scope{UserKey: 10000042, Command: "shop.buy"}
	fp := idempotency.FingerprintOf([]byte(`{"item":1}`))
	begin := func(key, token string) idempotency.State {
		t.Helper()
		b, err := s.Begin(ctx, scope, key, fp, token, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return b.State
	}

	// Begin re-sent by the same caller acquires again; another caller
	// still sees the request in flight.
	if got := begin("k1", "tok-a"); got != idempotency.Acquired {
		t.Fatalf("first Begin: %v", got)
	}
	if got := begin("k1", "tok-a"); got != idempotency.Acquired {
		t.Fatalf("re-sent Begin: %v, want Acquired", got)
	}
	if got := begin("k1", "tok-b"); got != idempotency.InFlight {
		t.Fatalf("other caller: %v, want InFlight", got)
	}

	// Complete re-sent after its reply was lost reports a lost lease (the
	// client's retry then replays the stored result), and a Release by that
	// caller must not delete the result: the request would run again.
	res := idempotency.Result{Code: protocol.CodeOK, Payload: []byte(`{"gold":10}`)}
	if err := s.Complete(ctx, scope, "k1", "tok-a", res, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := s.Complete(ctx, scope, "k1", "tok-a", res, time.Hour); !errors.Is(err, idempotency.ErrLeaseLost) {
		t.Fatalf("re-sent Complete: %v, want ErrLeaseLost", err)
	}
	if err := s.Release(ctx, scope, "k1", "tok-a"); err != nil {
		t.Fatal(err)
	}
	b, err := s.Begin(ctx, scope, "k1", fp, "tok-c", time.Minute)
	if err != nil || b.State != idempotency.Completed || string(b.Result.Payload) != `{"gold":10}` {
		t.Fatalf("after Release of a completed record: %+v, %v", b, err)
	}

	// Release while running still frees the key.
	if got := begin("k2", "tok-d"); got != idempotency.Acquired {
		t.Fatal(got)
	}
	if err := s.Release(ctx, scope, "k2", "tok-d"); err != nil {
		t.Fatal(err)
	}
	if got := begin("k2", "tok-e"); got != idempotency.Acquired {
		t.Fatalf("after Release: %v", got)
	}
}
