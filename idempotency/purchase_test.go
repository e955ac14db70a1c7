package idempotency_test

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/protocol"
)

// stormTransport delivers every frame it is given `copies` times to the
// server, `parallel` at a time (a network that duplicates and a client that
// retries hard), loses each reply with probability loss, and returns one
// reply that survived (or a lost-reply error if none did). Every surviving
// reply is kept for the test to inspect.
type stormTransport struct {
	next     protocol.Transport
	copies   int
	parallel int
	loss     float64
	rng      *rand.Rand

	mu        sync.Mutex
	delivered int
	survived  [][]byte
}

func (s *stormTransport) RoundTrip(ctx context.Context, frame []byte) ([]byte, error) {
	sem := make(chan struct{}, s.parallel)
	var wg sync.WaitGroup
	var firstErr error
	for range s.copies {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			reply, err := s.next.RoundTrip(ctx, frame)
			s.mu.Lock()
			defer s.mu.Unlock()
			s.delivered++
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			if s.rng.Float64() < s.loss {
				return // the reply is lost on its way back
			}
			s.survived = append(s.survived, reply)
		})
	}
	wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if firstErr != nil {
		return nil, firstErr
	}
	if len(s.survived) == 0 {
		return nil, &protocol.TransportError{Err: errors.New("every reply lost (simulated)")}
	}
	return s.survived[s.rng.IntN(len(s.survived))], nil
}

// TestPurchaseRetriedThousandTimes: one purchase delivered 1,000 times with
// random reply loss debits the wallet exactly once, and every reply that
// got through carries the same result.
func TestPurchaseRetriedThousandTimes(t *testing.T) {
	type backend struct {
		name string
		// setup returns the Doer and the purchase handler, and a func
		// reading the balance.
		setup func(t *testing.T) (idempotency.Doer, protocol.Handler, func() int)
	}
	sqlBackend := func(open func(t testing.TB) *sql.DB) func(t *testing.T) (idempotency.Doer, protocol.Handler, func() int) {
		return func(t *testing.T) (idempotency.Doer, protocol.Handler, func() int) {
			db := open(t)
			wallet(t, db, 100)
			s := sqlStore(t, db, idempotency.Config{WaitTimeout: time.Minute})
			h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
				res, err := buy(30)(ctx)
				if err != nil {
					return nil, err
				}
				return &protocol.Response{Payload: res.Payload}, nil
			})
			return s, h, func() int { return gems(t, db) }
		}
	}
	backends := []backend{
		{"memory", func(t *testing.T) (idempotency.Doer, protocol.Handler, func() int) {
			k, _ := idempotency.NewKeeper(idempotency.NewMemoryStore(nil), idempotency.Config{WaitTimeout: time.Minute})
			var mu sync.Mutex
			balance := 100
			h := protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
				mu.Lock()
				defer mu.Unlock()
				if balance < 30 {
					return nil, errNotEnoughGems
				}
				balance -= 30
				return &protocol.Response{Payload: []byte(`{"gems":70}`)}, nil
			})
			return k, h, func() int { mu.Lock(); defer mu.Unlock(); return balance }
		}},
		{"sqlite", sqlBackend(func(t testing.TB) *sql.DB { return testdb.SQLite(t, "purchase") })},
		{"mariadb", sqlBackend(testdb.OpenMySQL)},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			d, buyHandler, balance := b.setup(t)
			var runs atomic.Int32
			mux := protocol.NewMux()
			mux.Handle("shop.buy", protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
				runs.Add(1)
				return buyHandler.Serve(ctx, req)
			}))
			srv := httpServer(t, d, mux)
			storm := &stormTransport{
				next:   &protocol.HTTPTransport{URL: srv.URL, Client: srv.Client()},
				copies: 1000, parallel: 16, loss: 0.5, rng: rand.New(rand.NewPCG(1, 2)),
			}
			c, err := protocol.NewClient(protocol.ClientConfig{Transport: storm, Codec: protocol.Config{XORKey: testXORKey}, Mode: protocol.ModeXOR, RetryBackoff: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			c.SetSession("u", nil)
			var out struct{ Gems int }
			if _, err := c.Call(context.Background(), "shop.buy", map[string]int{"item": 1}, &out); err != nil {
				t.Fatal(err)
			}
			if out.Gems != 70 {
				t.Fatalf("client saw %d gems, want 70", out.Gems)
			}
			if g := balance(); g != 70 {
				t.Fatalf("balance %d, want 70: debited more than once", g)
			}
			if runs.Load() != 1 {
				t.Fatalf("purchase ran %d times", runs.Load())
			}
			codec := mustCodec(t, protocol.RoleClient)
			replays := 0
			for _, frame := range storm.survived {
				body, _, err := codec.Decode(frame, nil)
				if err != nil {
					t.Fatal(err)
				}
				var r protocol.Response
				if err := protocol.DecodeResponse(body, &r); err != nil {
					t.Fatal(err)
				}
				if r.Code != protocol.CodeOK || string(r.Payload) != `{"gems":70}` {
					t.Fatalf("a reply differs: %s", body)
				}
				if r.Replay {
					replays++
				}
			}
			if storm.delivered < 1000 || replays < len(storm.survived)-1 {
				t.Fatalf("%d deliveries, %d replies, %d replays", storm.delivered, len(storm.survived), replays)
			}
			if s := d.Stats(); s.Executed != 1 || s.Replayed != uint64(storm.delivered-1) {
				t.Fatalf("stats %+v after %d deliveries", s, storm.delivered)
			}
			t.Logf("%d deliveries, %d replies got through (%d replays), one debit", storm.delivered, len(storm.survived), replays)
		})
	}
}
