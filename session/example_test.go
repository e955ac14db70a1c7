package session_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
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

	first, _ := store.Create(ctx, session.CreateParams{UserKey: 10000001, ShardID: 1, Country: "KR"})
	s, err := store.Get(ctx, first.Token)
	fmt.Println("user", s.UserKey, "shard", s.ShardID, err)

	if _, err := store.Create(ctx, session.CreateParams{UserKey: 10000001}); err != nil {
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
		s, err := store.Create(ctx, session.CreateParams{UserKey: 42})
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
	st := cache.Stats() // for metrics
	fmt.Printf("hits %d, misses %d, fills %d, errors %d\n", st.Hits, st.Misses, st.Fills, st.Errors)
	// Output:
	// loading from the game database
	// {"gold":100}
	// {"gold":100}
	// true
	// hits 1, misses 2, fills 1, errors 0
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

// Authenticated frames over HTTP: the login answers the session's key id and
// secret (over TLS in production), the client seals every later request
// with keys derived from them, and the server opens them through a
// KeyResolver; the middleware checks the frame counter.
func ExampleKeyResolver() {
	ctx := context.Background()
	store := session.NewMemoryStore(session.Config{})
	defer store.Close()

	type loginOut struct {
		KeyID  string `json:"key_id"`
		Secret []byte `json:"secret"`
	}
	mux := protocol.NewMux()
	mux.Handle("login", protocol.Typed(func(ctx context.Context, _ *protocol.Request, in struct{ User int64 }) (loginOut, error) {
		s, err := store.Create(ctx, session.CreateParams{UserKey: in.User})
		if err != nil {
			return loginOut{}, err
		}
		return loginOut{KeyID: s.ID, Secret: s.Secret}, nil
	}))
	mux.Handle("whoami", protocol.Typed(func(_ context.Context, req *protocol.Request, _ struct{}) (int64, error) {
		return req.Principal.UserKey, nil
	}))
	h, _ := protocol.NewHTTPHandler(
		protocol.Chain(mux, session.Middleware(store, session.MiddlewareConfig{Public: []string{"login"}})),
		protocol.HTTPConfig{Keys: session.NewKeyResolver(store, session.KeyResolverConfig{})})
	srv := httptest.NewServer(h)
	defer srv.Close()

	client, _ := protocol.NewClient(protocol.ClientConfig{URL: srv.URL})
	var out loginOut
	if _, err := client.Call(ctx, "login", map[string]int64{"User": 20000001}, &out); err != nil {
		panic(err)
	}
	keys, _ := protocol.NewKeys([]byte(out.KeyID), out.Secret)
	client.SetSession("", keys)
	var who int64
	_, err := client.Call(ctx, "whoami", nil, &who)
	fmt.Println(who, err)
	// Output:
	// 20000001 <nil>
}

// A game server's Redis from its flags: hand-sharded nodes routed by user
// key (or, with ClusterAddrs instead, one Redis Cluster), every client with
// the same password and pool size; the stores go on the Router, and what is
// not per user (a pub/sub broker) on the first client. Not run: it needs
// the servers.
func ExampleOpenRedis() {
	ctx := context.Background()
	rc, err := session.OpenRedis(ctx, session.RedisOptions{
		Addrs:   []string{"10.0.0.1:6379", "10.0.0.2:6379"},
		Options: &redis.Options{Password: "secret", PoolSize: 50},
	})
	if err != nil {
		panic(err) // ErrUnavailable naming the node that did not answer
	}
	defer rc.Close() // after the stores

	store, err := session.NewRedisStore(rc.Router, session.Config{Prefix: "game:"})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	cache, err := session.NewRedisCache(ctx, rc.Router, session.CacheConfig{Prefix: "game:"})
	if err != nil {
		panic(err)
	}
	defer cache.Close()
	_ = rc.Clients[0] // e.g. realtime.NewRedisBroker(rc.Clients[0], ...)
}

// OpenRedis checks its options before it opens anything, and a server that
// does not answer is ErrUnavailable naming it.
func ExampleOpenRedis_errors() {
	ctx := context.Background()
	_, err := session.OpenRedis(ctx, session.RedisOptions{
		Addrs:        []string{"10.0.0.1:6379"},
		ClusterAddrs: []string{"10.0.0.9:7000"},
	})
	fmt.Println(err)

	_, err = session.OpenRedis(ctx, session.RedisOptions{
		Addrs:   []string{"127.0.0.1:1"},
		Options: &redis.Options{MaxRetries: -1},
	})
	fmt.Println(errors.Is(err, session.ErrUnavailable), strings.Contains(err.Error(), "127.0.0.1:1"))
	// Output:
	// session: invalid Redis options: both Addrs and ClusterAddrs set; pick one
	// true true
}
