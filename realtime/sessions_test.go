package realtime_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/session/sessiontest"
)

// onlySessions has the three methods of realtime.Sessions and nothing else
// of a session.Store.
type onlySessions struct {
	s     session.Store
	mu    sync.Mutex
	calls map[string]int
}

func (o *onlySessions) count(name string) {
	o.mu.Lock()
	o.calls[name]++
	o.mu.Unlock()
}

func (o *onlySessions) Get(ctx context.Context, token string) (*session.Session, error) {
	o.count("Get")
	return o.s.Get(ctx, token)
}

func (o *onlySessions) GetFrame(ctx context.Context, keyID string, counter uint64) (*session.Session, error) {
	o.count("GetFrame")
	return o.s.GetFrame(ctx, keyID, counter)
}

func (o *onlySessions) Subscribe(fn func(session.Event)) func() {
	o.count("Subscribe")
	return o.s.Subscribe(fn)
}

// A hub runs on the small Sessions interface: handshake (Get), the
// counters of its own commands on an authenticated connection (GetFrame),
// and kicks (Subscribe).
func TestNewHubTakesSessions(t *testing.T) {
	store := session.NewMemoryStore(session.Config{})
	t.Cleanup(func() { store.Close() })
	sessions := &onlySessions{s: store, calls: map[string]int{}}
	hub, err := realtime.NewHub(sessions, realtime.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hub)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hub.Shutdown(ctx)
		srv.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a deadline for a failure, not a speed check
	defer cancel()
	sess := sessiontest.Login(t, store, 5)
	keys, err := sess.Keys()
	if err != nil {
		t.Fatal(err)
	}
	c, err := realtime.Dial(ctx, srv.URL, sess.Token, &realtime.DialOptions{Mode: protocol.ModeAuthenticated, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, "world.0", nil); err != nil {
		t.Fatal(err)
	}
	sessiontest.Login(t, store, 5) // kicks the session
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("kicked connection not closed")
	}
	if code, _ := c.CloseCode(); code != protocol.CodeKicked {
		t.Fatalf("closed with %v, want kicked", code)
	}
	if _, err := realtime.NewHub(nil, realtime.Config{}); err == nil {
		t.Fatal("NewHub(nil): no error")
	}
	sessions.mu.Lock()
	defer sessions.mu.Unlock()
	if sessions.calls["Get"] == 0 || sessions.calls["GetFrame"] == 0 || sessions.calls["Subscribe"] != 1 {
		t.Fatalf("calls %v", sessions.calls)
	}
}
