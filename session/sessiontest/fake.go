package sessiontest

import (
	"context"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// NewStore returns a memory store for a game test, closed when the test
// ends. now is its clock (session.Config.Now): nil means time.Now; pass a
// Clock's Now to move expiry by hand.
func NewStore(t testing.TB, now func() time.Time) *session.MemoryStore {
	t.Helper()
	s := session.NewMemoryStore(session.Config{Now: now})
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Login creates a session for userKey (platform "test", country "KR",
// language "ko", no shard) or fails the test.
func Login(t testing.TB, s session.Store, userKey int64) *session.Session {
	t.Helper()
	sess, err := s.Create(context.Background(), session.CreateParams{
		UserKey: userKey, Platform: "test", Country: "KR", Language: "ko",
	})
	if err != nil {
		t.Fatalf("sessiontest: login %d: %v", userKey, err)
	}
	return sess
}

// Request returns a request for cmd with payload (raw JSON, may be empty)
// that carries sess's token, ready for a handler chain with
// session.Middleware.
func Request(sess *session.Session, cmd string, payload string) *protocol.Request {
	req := &protocol.Request{Command: cmd, Token: sess.Token}
	if payload != "" {
		req.Payload = []byte(payload)
	}
	return req
}
