package realtime_test

import (
	"context"
	"net"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session/sessiontest"
)

// A game command over the websocket whose handler returns a raw backend
// error (here a real refused Redis connection) is answered unavailable
// (41, retryable), as over HTTP with the server's classification — not
// internal (40). Before the hub classified, it was 40.
func TestHandlerBackendErrorIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rc.Close()
	store := sessiontest.NewStore(t, nil)
	mux := protocol.NewMux()
	mux.HandleFunc("game.get", func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		return nil, rc.Get(ctx, "k").Err()
	})
	n := startHub(t, store, realtime.Config{Handler: mux})
	c := dial(t, n, sessiontest.Login(t, store, 7), nil)
	r, err := c.Call(ctxT(t), "game.get", nil)
	if err != nil || r.Code != protocol.CodeUnavailable {
		t.Fatalf("game.get over a refused Redis: %+v %v", r, err)
	}
}
