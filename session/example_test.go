package session_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/redis/go-redis/v9"
)

// A login, a request, and a second login that kicks the first session.
func ExampleMemoryStore() {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Config{TTL: 30 * time.Minute})
	defer store.Close()
	stop := store.Subscribe(func(ev session.Event) {
		fmt.Println("event:", ev.Kind, "user", ev.UserKey)
	})
	defer stop()

	first, _ := store.Create(ctx, session.NewSession{UserKey: 10000001, ShardID: 1, Country: "KR"})
	s, err := store.Get(ctx, first.Token)
	fmt.Println("user", s.UserKey, "shard", s.ShardID, err)

	if _, err := store.Create(ctx, session.NewSession{UserKey: 10000001}); err != nil {
		panic(err)
	}
	_, err = store.Get(ctx, first.Token)
	fmt.Println(errors.Is(err, session.ErrKicked), protocol.CodeOf(err))
	// Output:
	// user 10000001 shard 1 <nil>
	// event: kicked user 10000001
	// true kicked
}

// The middleware in front of a game's commands: login is public, everything
// else needs a session and sees the Principal.
func ExampleMiddleware() {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Config{})
	defer store.Close()

	mux := protocol.NewMux()
	mux.HandleFunc("login", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		s, err := store.Create(ctx, session.NewSession{UserKey: 42})
		if err != nil {
			return nil, err
		}
		return &protocol.Response{Payload: []byte(fmt.Sprintf("%q", s.Token))}, nil
	})
	mux.HandleFunc("hello", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{Payload: []byte(fmt.Sprintf(`"hello %d"`, req.Principal.UserKey))}, nil
	})
	h := protocol.Chain(mux, session.Middleware(store, session.MiddlewareConfig{Public: []string{"login"}}))

	login := protocol.Dispatch(ctx, h, &protocol.Request{Command: "login"}, nil)
	var token string
	fmt.Sscanf(string(login.Payload), "%q", &token)

	fmt.Println(string(protocol.Dispatch(ctx, h, &protocol.Request{Command: "hello", Token: token}, nil).Payload))
	fmt.Println(protocol.Dispatch(ctx, h, &protocol.Request{Command: "hello"}, nil).Code)
	// Output:
	// "hello 42"
	// unauthorized
}

// Fetch fills a miss once; ResetAll empties every user's cache.
func ExampleUserCache_Fetch() {
	ctx := context.Background()
	cache := session.NewMemoryCache(session.CacheConfig{})
	defer cache.Close()
	load := func(context.Context) ([]byte, error) {
		fmt.Println("loading from the game database")
		return []byte(`{"gold":100}`), nil
	}
	for range 2 {
		v, _ := cache.Fetch(ctx, 7, "profile", time.Minute, load)
		fmt.Println(string(v))
	}
	_ = cache.ResetAll(ctx)
	_, err := cache.Get(ctx, 7, "profile")
	fmt.Println(errors.Is(err, session.ErrCacheMiss))
	// Output:
	// loading from the game database
	// {"gold":100}
	// {"gold":100}
	// true
}

// User keys allocated in ranges per database map to Redis nodes the same way.
func ExampleRouter() {
	nodes := []redis.UniversalClient{
		redis.NewClient(&redis.Options{Addr: "10.0.0.1:6379"}),
		redis.NewClient(&redis.Options{Addr: "10.0.0.2:6379"}),
	}
	r, err := session.NewRouter(nodes, session.RouterConfig{Rule: session.Ranges, Starts: []int64{10000000, 20000000}})
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Index(10000001), r.Index(20000001))
	// Output:
	// 0 1
}
