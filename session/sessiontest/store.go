// Package sessiontest helps test code that uses package session:
// conformance suites any implementation can run (RunStoreTests for a
// session.Store, RunBoardTests for a session.BoardStore, RunCacheTests,
// RunLimiterTests), Clock, a clock the test moves for the Now settings of
// session's configs, ready in-memory stores, logins and boards for game
// tests (NewStore, Login, Request, BoardForTest), and connections to real
// Redis for integration tests (Redis, RedisCluster, RedisPrefix,
// PrivateRedis: they skip with a message when MADANG_REDIS_ADDR or
// MADANG_REDIS_CLUSTER is unset, except in CI). PrivateRedis and
// StartRedisServer start a redis-server of the caller's own that it may
// kill -9, restart or freeze (SIGSTOP); StartRedisServer serves tools too,
// such as examples/faultrun.
package sessiontest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
)

// Durations the suite configures stores with. The clock is fake, so nothing
// waits for them in real time.
const (
	SuiteTTL       = 10 * time.Minute
	SuiteTombstone = time.Hour
)

// eventWait bounds how long the suite waits for an event to arrive (Redis
// pub/sub is asynchronous). It is a deadline for a failure, not a speed
// assertion.
const eventWait = 10 * time.Second

// NewStoreFunc returns a fresh, empty store configured with cfg (keep every
// field, in particular Now, TTL, Tombstone and AllowMultiple; add your
// own, such as a random Prefix). The suite closes it.
type NewStoreFunc func(t *testing.T, cfg session.Config) session.Store

// RunStoreTests runs the conformance suite against stores from newStore.
//
// Time: the suite passes a Clock's Now in Config.Now and moves the Clock to
// test sliding expiry, kicks and tombstones. A store must therefore compute
// expiry from Config.Now (as MemoryStore and RedisStore do: the Redis
// store keeps the expiry time in the session and checks it in its script;
// real Redis TTLs, here an hour or more, only collect garbage). Nothing in
// the suite sleeps.
func RunStoreTests(t *testing.T, newStore NewStoreFunc) {
	t.Run("CreateGet", func(t *testing.T) { testCreateGet(t, newStore) })
	t.Run("Sliding", func(t *testing.T) { testSliding(t, newStore) })
	t.Run("FrameCounter", func(t *testing.T) { testFrameCounter(t, newStore) })
	t.Run("FrameCounterWindow", func(t *testing.T) { testFrameCounterWindow(t, newStore) })
	t.Run("FrameCounterRace", func(t *testing.T) { testFrameCounterRace(t, newStore) })
	t.Run("Kick", func(t *testing.T) { testKick(t, newStore) })
	t.Run("AllowMultiple", func(t *testing.T) { testAllowMultiple(t, newStore) })
	t.Run("Revoke", func(t *testing.T) { testRevoke(t, newStore) })
	t.Run("RevokeUser", func(t *testing.T) { testRevokeUser(t, newStore) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, newStore) })
	t.Run("Copies", func(t *testing.T) { testCopies(t, newStore) })
	t.Run("Unsubscribe", func(t *testing.T) { testUnsubscribe(t, newStore) })
	t.Run("UserSessions", func(t *testing.T) { testUserSessions(t, newStore) })
}

type env struct {
	clk   *Clock
	store session.Store
	ctx   context.Context
}

func setup(t *testing.T, newStore NewStoreFunc, multiple bool) *env {
	t.Helper()
	clk := NewClock(time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC))
	s := newStore(t, session.Config{Now: clk.Now, TTL: SuiteTTL, Tombstone: SuiteTombstone, AllowMultiple: multiple})
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &env{clk: clk, store: s, ctx: context.Background()}
}

// uniqueUser returns a user key unlikely to collide across concurrent runs.
func uniqueUser(t *testing.T) int64 {
	return time.Now().UnixNano()%1_000_000_000_000 + 1
}

func (e *env) login(t *testing.T, uk int64) *session.Session {
	t.Helper()
	s, err := e.store.Create(e.ctx, session.CreateParams{UserKey: uk, Platform: "android"})
	if err != nil {
		t.Fatalf("Create(%d): %v", uk, err)
	}
	return s
}

// wantErr checks errors.Is(err, want) and that the result code matches.
func wantErr(t *testing.T, what string, err, want error, code protocol.Code) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
	if got := protocol.CodeOf(err); got != code {
		t.Fatalf("%s: code %v, want %v", what, got, code)
	}
}

// events collects events of a subscription.
type events struct {
	ch     chan session.Event
	cancel func()
}

func subscribe(t *testing.T, s session.Store) *events {
	ev := &events{ch: make(chan session.Event, 64)}
	ev.cancel = s.Subscribe(func(e session.Event) {
		select {
		case ev.ch <- e:
		default:
		}
	})
	t.Cleanup(ev.cancel)
	return ev
}

// next waits for the next event for user uk (others' events are skipped).
func (ev *events) next(t *testing.T, uk int64) session.Event {
	t.Helper()
	deadline := time.After(eventWait)
	for {
		select {
		case e := <-ev.ch:
			if e.UserKey == uk {
				return e
			}
		case <-deadline:
			t.Fatalf("no event for user %d within %v", uk, eventWait)
			return session.Event{}
		}
	}
}

// none checks that no event for uk is queued after a marker event: it waits
// for the marker's event, so anything published before it has arrived.
func (ev *events) noneBefore(t *testing.T, uk int64, marker session.Event) {
	t.Helper()
	deadline := time.After(eventWait)
	for {
		select {
		case e := <-ev.ch:
			if e == marker {
				return
			}
			if e.UserKey == uk {
				t.Fatalf("unexpected event %+v", e)
			}
		case <-deadline:
			t.Fatalf("marker event %+v did not arrive within %v", marker, eventWait)
		}
	}
}

func testCreateGet(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, false)
	uk := uniqueUser(t)
	in := session.CreateParams{
		UserKey: uk, ShardID: 3, ClientVersion: "1.2.3.4", Platform: "ios", DeviceID: "dev-1",
		Country: "KR", Language: "ko", Attrs: map[string]string{"tier": "gold", "guild": "7"},
	}
	created, err := e.store.Create(e.ctx, in)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if gotUK, ok := session.ParseUserKey(created.Token); !ok || gotUK != uk {
		t.Fatalf("token %q: user key %d, %v; want %d", created.Token, gotUK, ok, uk)
	}
	if gotUK, ok := session.ParseUserKey(created.ID); !ok || gotUK != uk {
		t.Fatalf("id %q: user key %d, %v; want %d", created.ID, gotUK, ok, uk)
	}
	if created.Token == created.ID || len(created.Token) < len(created.ID)+22 {
		t.Fatalf("token %q must hold at least 128 bits more than the public id %q", created.Token, created.ID)
	}
	if len(created.Secret) != session.SecretLen {
		t.Fatalf("secret of %d bytes, want %d", len(created.Secret), session.SecretLen)
	}
	other := e.login(t, uk+1)
	if other.Token == created.Token || other.ID == created.ID || string(other.Secret) == string(created.Secret) {
		t.Fatal("two sessions share a token, id or secret")
	}

	e.clk.Advance(time.Minute)
	got, err := e.store.Get(e.ctx, created.Token)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	check := func(got *session.Session) {
		t.Helper()
		if got.Token != created.Token || got.ID != created.ID || got.UserKey != uk || got.ShardID != 3 ||
			got.ClientVersion != "1.2.3.4" || got.Platform != "ios" || got.DeviceID != "dev-1" ||
			got.Country != "KR" || got.Language != "ko" || string(got.Secret) != string(created.Secret) ||
			len(got.Attrs) != 2 || got.Attrs["tier"] != "gold" || got.Attrs["guild"] != "7" {
			t.Fatalf("got %+v, want the fields of %+v", got, created)
		}
		if !got.Created.Equal(created.Created) {
			t.Fatalf("Created %v, want %v", got.Created, created.Created)
		}
	}
	check(got)
	if !got.LastSeen.Equal(created.Created) {
		t.Fatalf("LastSeen %v, want the login time %v", got.LastSeen, created.Created)
	}
	before := e.clk.Now()
	e.clk.Advance(time.Minute)
	got, err = e.store.Get(e.ctx, created.Token)
	if err != nil {
		t.Fatalf("second Get: %v", err)
	}
	check(got)
	if !got.LastSeen.Equal(before) {
		t.Fatalf("LastSeen %v, want the previous request's time %v", got.LastSeen, before)
	}
	p := got.Principal()
	if p.UserKey != uk || p.SessionID != created.ID || p.ShardID != 3 || p.Country != "KR" || p.Attrs["tier"] != "gold" {
		t.Fatalf("Principal %+v", p)
	}
	secret, err := e.store.Secret(e.ctx, created.ID)
	if err != nil || string(secret) != string(created.Secret) {
		t.Fatalf("Secret: %x, %v; want %x", secret, err, created.Secret)
	}
	if _, err := got.Keys(); err != nil {
		t.Fatalf("Keys: %v", err)
	}
}

func testSliding(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, false)
	uk := uniqueUser(t)
	s := e.login(t, uk)
	for i := range 3 {
		e.clk.Advance(SuiteTTL - time.Second)
		if _, err := e.store.Get(e.ctx, s.Token); err != nil {
			t.Fatalf("Get %d within the sliding TTL: %v", i, err)
		}
	}
	e.clk.Advance(SuiteTTL - time.Second)
	if _, err := e.store.GetFrame(e.ctx, s.ID, 1); err != nil {
		t.Fatalf("GetFrame within the sliding TTL: %v", err)
	}
	e.clk.Advance(SuiteTTL)
	_, err := e.store.Get(e.ctx, s.Token)
	wantErr(t, "Get after the TTL", err, session.ErrExpired, protocol.CodeSessionExpired)
	_, err = e.store.GetFrame(e.ctx, s.ID, 2)
	wantErr(t, "GetFrame after the TTL", err, session.ErrExpired, protocol.CodeSessionExpired)
	_, err = e.store.Secret(e.ctx, s.ID)
	wantErr(t, "Secret after the TTL", err, session.ErrExpired, protocol.CodeSessionExpired)
	// An expired session is not revived, however often it is asked for.
	_, err = e.store.Get(e.ctx, s.Token)
	wantErr(t, "Get after the TTL again", err, session.ErrExpired, protocol.CodeSessionExpired)
	e.clk.Advance(SuiteTombstone)
	_, err = e.store.Get(e.ctx, s.Token)
	wantErr(t, "Get after the tombstone", err, session.ErrNotFound, protocol.CodeUnauthorized)
	// A new login works.
	s2 := e.login(t, uk)
	if _, err := e.store.Get(e.ctx, s2.Token); err != nil {
		t.Fatalf("Get after a new login: %v", err)
	}
}

func testFrameCounter(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, false)
	s := e.login(t, uniqueUser(t))
	steps := []struct {
		counter uint64
		ok      bool
	}{
		{0, false}, {1, true}, {1, false}, {5, true}, {3, true}, {3, false}, {4, true}, {5, false}, {6, true},
		// The window: less than protocol.ReplayWindowSize (64) below the
		// highest, once.
		{100, true}, {36, false}, {37, true}, {37, false}, {99, true}, {99, false},
		// Beyond 2^53 (Lua's exact doubles): neighbours are told apart.
		{1 << 53, true}, {1<<53 + 1, true}, {1 << 53, false}, {1<<53 - 1, true},
		{1<<60 + 5, true}, {1<<60 + 3, true}, {1<<60 + 4, true}, {1<<60 + 3, false}, {1<<60 + 5, false}, {1<<60 + 2, true},
		{math.MaxUint64 - 1, true}, {math.MaxUint64 - 1, false}, {math.MaxUint64, true}, {math.MaxUint64, false},
		{math.MaxUint64 - 2, true}, {math.MaxUint64 - 63, true}, {math.MaxUint64 - 64, false}, {math.MaxUint64 - 63, false},
	}
	for _, st := range steps {
		got, err := e.store.GetFrame(e.ctx, s.ID, st.counter)
		if st.ok {
			if err != nil {
				t.Fatalf("GetFrame(%d): %v", st.counter, err)
			}
			if got.Counter != st.counter {
				t.Fatalf("GetFrame(%d): Counter %d", st.counter, got.Counter)
			}
			continue
		}
		wantErr(t, fmt.Sprintf("replayed counter %d", st.counter), err, protocol.ErrReplayed, protocol.CodeReplayed)
	}
	// Get and Secret leave the counter alone.
	if _, err := e.store.Secret(e.ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	got, err := e.store.Get(e.ctx, s.Token)
	if err != nil || got.Counter != math.MaxUint64 {
		t.Fatalf("Get: counter %v, %v", got, err)
	}
}

// testFrameCounterWindow sends counters that wander up and down (as frames
// of one session over two connections arrive) and checks each answer
// against protocol.ReplayWindow, the rule: no counter accepted twice, none
// accepted 64 or more below the highest, every other one accepted.
func testFrameCounterWindow(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, false)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for _, base := range []uint64{0, 1<<62 + 12345} {
		s := e.login(t, uniqueUser(t))
		var want protocol.ReplayWindow
		c := base
		for i := range 150 {
			c += uint64(r.IntN(41)) - 15 // mostly up, sometimes back
			if c == 0 {
				c = 1
			}
			ok := want.Accept(c)
			_, err := e.store.GetFrame(e.ctx, s.ID, c)
			if ok && err != nil {
				t.Fatalf("step %d (base %d): GetFrame(%d) refused: %v (the rule accepts it; highest %d)", i, base, c, err, want.Top)
			}
			if !ok {
				wantErr(t, fmt.Sprintf("step %d: GetFrame(%d), highest %d", i, c, want.Top), err, protocol.ErrReplayed, protocol.CodeReplayed)
			}
		}
		got, err := e.store.Get(e.ctx, s.Token)
		if err != nil || got.Counter != want.Top {
			t.Fatalf("Get: counter %v, %v; want the highest accepted %d", got, err, want.Top)
		}
	}
}

func testFrameCounterRace(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, false)
	s := e.login(t, uniqueUser(t))
	const workers, rounds = 8, 5
	for r := range uint64(rounds) {
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			accepted int
			other    []error
		)
		for range workers {
			wg.Go(func() {
				_, err := e.store.GetFrame(e.ctx, s.ID, r+1)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					accepted++
				case !errors.Is(err, protocol.ErrReplayed):
					other = append(other, err)
				}
			})
		}
		wg.Wait()
		if accepted != 1 || len(other) > 0 {
			t.Fatalf("round %d: the same counter was accepted %d times (want once); other errors %v", r, accepted, other)
		}
	}
}

func testKick(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, false)
	ev := subscribe(t, e.store)
	uk := uniqueUser(t)
	first := e.login(t, uk)
	e.clk.Advance(time.Minute)
	second := e.login(t, uk)
	got := ev.next(t, uk)
	if got != (session.Event{Kind: session.EventKicked, UserKey: uk, SessionID: first.ID}) {
		t.Fatalf("event %+v, want a kick of %s", got, first.ID)
	}
	_, err := e.store.Get(e.ctx, first.Token)
	wantErr(t, "Get with the old token", err, session.ErrKicked, protocol.CodeKicked)
	_, err = e.store.GetFrame(e.ctx, first.ID, 1)
	wantErr(t, "GetFrame with the old key id", err, session.ErrKicked, protocol.CodeKicked)
	_, err = e.store.Secret(e.ctx, first.ID)
	wantErr(t, "Secret of the old key id", err, session.ErrKicked, protocol.CodeKicked)
	if _, err := e.store.Get(e.ctx, second.Token); err != nil {
		t.Fatalf("Get with the new token: %v", err)
	}
	// Revoking a kicked session changes nothing and publishes nothing.
	if err := e.store.Revoke(e.ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.store.Get(e.ctx, first.Token)
	wantErr(t, "Get with the old token after Revoke", err, session.ErrKicked, protocol.CodeKicked)
	// A third login kicks only the second session.
	third := e.login(t, uk)
	got = ev.next(t, uk)
	if got.Kind != session.EventKicked || got.SessionID != second.ID {
		t.Fatalf("event %+v, want a kick of %s", got, second.ID)
	}
	// The tombstone lasts Tombstone; the new session slides meanwhile.
	const step = SuiteTTL / 2
	var elapsed time.Duration
	for elapsed+step < SuiteTombstone {
		elapsed += step
		e.clk.Advance(step)
		if _, err := e.store.Get(e.ctx, third.Token); err != nil {
			t.Fatalf("Get of the live session after %v: %v", elapsed, err)
		}
		_, err = e.store.Get(e.ctx, second.Token)
		wantErr(t, "Get of the kicked session within the tombstone", err, session.ErrKicked, protocol.CodeKicked)
	}
	e.clk.Advance(SuiteTombstone - elapsed)
	_, err = e.store.Get(e.ctx, second.Token)
	wantErr(t, "Get of the kicked session after the tombstone", err, session.ErrNotFound, protocol.CodeUnauthorized)
}

func testAllowMultiple(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, true)
	uk := uniqueUser(t)
	a, b := e.login(t, uk), e.login(t, uk)
	for _, s := range []*session.Session{a, b} {
		if _, err := e.store.Get(e.ctx, s.Token); err != nil {
			t.Fatalf("Get %s: %v", s.ID, err)
		}
	}
}

func testRevoke(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, false)
	ev := subscribe(t, e.store)
	uk := uniqueUser(t)
	s := e.login(t, uk)
	bystander := e.login(t, uk+1)
	if err := e.store.Revoke(e.ctx, s.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if got := ev.next(t, uk); got != (session.Event{Kind: session.EventRevoked, UserKey: uk, SessionID: s.ID}) {
		t.Fatalf("event %+v", got)
	}
	_, err := e.store.Get(e.ctx, s.Token)
	wantErr(t, "Get after Revoke", err, session.ErrRevoked, protocol.CodeSessionRevoked)
	_, err = e.store.GetFrame(e.ctx, s.ID, 1)
	wantErr(t, "GetFrame after Revoke", err, session.ErrRevoked, protocol.CodeSessionRevoked)
	if _, err := e.store.Get(e.ctx, bystander.Token); err != nil {
		t.Fatalf("another user's session: %v", err)
	}
	// Revoking again, or an unknown or malformed id, is not an error and
	// publishes nothing: the next event is the marker's.
	for _, id := range []string{s.ID, "12.AAAAAAAAAAAA", "nonsense", ""} {
		if err := e.store.Revoke(e.ctx, id); err != nil {
			t.Fatalf("Revoke(%q): %v", id, err)
		}
	}
	marker := e.login(t, uk)
	if err := e.store.Revoke(e.ctx, marker.ID); err != nil {
		t.Fatal(err)
	}
	ev.noneBefore(t, uk, session.Event{Kind: session.EventRevoked, UserKey: uk, SessionID: marker.ID})
	e.clk.Advance(SuiteTombstone)
	_, err = e.store.Get(e.ctx, s.Token)
	wantErr(t, "Get after the tombstone", err, session.ErrNotFound, protocol.CodeUnauthorized)
}

func testRevokeUser(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, true)
	ev := subscribe(t, e.store)
	uk := uniqueUser(t)
	a, b := e.login(t, uk), e.login(t, uk)
	bystander := e.login(t, uk+1)
	if err := e.store.RevokeUser(e.ctx, uk); err != nil {
		t.Fatalf("RevokeUser: %v", err)
	}
	ids := map[string]bool{}
	for range 2 {
		got := ev.next(t, uk)
		if got.Kind != session.EventRevoked {
			t.Fatalf("event %+v", got)
		}
		ids[got.SessionID] = true
	}
	if !ids[a.ID] || !ids[b.ID] {
		t.Fatalf("revocation events for %v, want %s and %s", ids, a.ID, b.ID)
	}
	for _, s := range []*session.Session{a, b} {
		_, err := e.store.Get(e.ctx, s.Token)
		wantErr(t, "Get after RevokeUser", err, session.ErrRevoked, protocol.CodeSessionRevoked)
	}
	if _, err := e.store.Get(e.ctx, bystander.Token); err != nil {
		t.Fatalf("another user's session: %v", err)
	}
	c := e.login(t, uk)
	if _, err := e.store.Get(e.ctx, c.Token); err != nil {
		t.Fatalf("login after RevokeUser: %v", err)
	}
}

func testBadInput(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, false)
	for _, n := range []session.CreateParams{
		{UserKey: 0}, {UserKey: -5},
		{UserKey: 1, DeviceID: strings.Repeat("x", session.MaxFieldLen+1)},
		{UserKey: 1, Attrs: map[string]string{"k": strings.Repeat("v", session.MaxFieldLen+1)}},
		{UserKey: 1, Attrs: manyAttrs(session.MaxAttrs + 1)},
	} {
		_, err := e.store.Create(e.ctx, n)
		wantErr(t, "Create with bad input", err, session.ErrInvalid, protocol.CodeBadRequest)
	}
	s := e.login(t, uniqueUser(t))
	forged := s.Token[:len(s.Token)-4] + "AAAA"
	if forged == s.Token {
		forged = s.Token[:len(s.Token)-4] + "BBBB"
	}
	for _, tok := range []string{"", "x", "1.", ".abc", "abc.def", "-1." + strings.Repeat("A", 32), forged,
		s.ID, "01" + s.Token[strings.IndexByte(s.Token, '.'):], strings.Repeat("9", 30) + ".A"} {
		_, err := e.store.Get(e.ctx, tok)
		wantErr(t, "Get("+tok+")", err, session.ErrNotFound, protocol.CodeUnauthorized)
	}
	for _, id := range []string{"", "x", s.Token, "1.AAAAAAAAAAAA"} {
		_, err := e.store.GetFrame(e.ctx, id, 1)
		wantErr(t, "GetFrame("+id+")", err, session.ErrNotFound, protocol.CodeUnauthorized)
		_, err = e.store.Secret(e.ctx, id)
		wantErr(t, "Secret("+id+")", err, session.ErrNotFound, protocol.CodeUnauthorized)
	}
	// Nothing was lost: the real session still works.
	if _, err := e.store.Get(e.ctx, s.Token); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeUser(e.ctx, -1); err != nil {
		t.Fatalf("RevokeUser(-1): %v", err)
	}
}

func manyAttrs(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[string(rune('a'+i%26))+strings.Repeat("z", i/26)] = "v"
	}
	return m
}

func testCopies(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, false)
	attrs := map[string]string{"a": "1"}
	s, err := e.store.Create(e.ctx, session.CreateParams{UserKey: uniqueUser(t), Attrs: attrs})
	if err != nil {
		t.Fatal(err)
	}
	attrs["a"] = "changed"
	s.Attrs["a"] = "changed too"
	s.Secret[0] ^= 0xff
	got, err := e.store.Get(e.ctx, s.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got.Attrs["a"] != "1" {
		t.Fatalf("attrs %v: the store kept a caller's map", got.Attrs)
	}
	if got.Secret[0] == s.Secret[0] {
		t.Fatal("the store shares the secret's bytes with a caller")
	}
}

func testUnsubscribe(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, false)
	gone := subscribe(t, e.store)
	kept := subscribe(t, e.store)
	gone.cancel()
	uk := uniqueUser(t)
	s := e.login(t, uk)
	if err := e.store.Revoke(e.ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	kept.next(t, uk) // delivered to the remaining subscriber, so the other one had its chance
	select {
	case ev := <-gone.ch:
		if ev.UserKey == uk {
			t.Fatalf("cancelled subscription got %+v", ev)
		}
	default:
	}
}

// testUserSessions runs for stores that are session.SessionLister: a
// user's live sessions, oldest first, without token or secret; kicked,
// revoked and expired ones are not listed; listing slides no TTL.
func testUserSessions(t *testing.T, newStore NewStoreFunc) {
	e := setup(t, newStore, true)
	l, ok := e.store.(session.SessionLister)
	if !ok {
		t.Log("the store is not a session.SessionLister: nothing to check")
		return
	}
	uk := uniqueUser(t)
	list := func(what string, want ...*session.Session) {
		t.Helper()
		got, err := l.UserSessions(e.ctx, uk)
		if err != nil {
			t.Fatalf("%s: UserSessions: %v", what, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d sessions listed, want %d", what, len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.ID != w.ID || g.UserKey != uk || g.Platform != "android" || !g.Created.Equal(w.Created) {
				t.Fatalf("%s: session %d is %+v, want id %s created %v", what, i, g, w.ID, w.Created)
			}
			if g.Token != "" || len(g.Secret) != 0 {
				t.Fatalf("%s: a listed session carries its token or secret", what)
			}
		}
	}
	list("no session")
	a := e.login(t, uk)
	e.clk.Advance(time.Second)
	b := e.login(t, uk)
	other := e.login(t, uk+1)
	list("two sessions", a, b)
	if err := e.store.Revoke(e.ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	list("after revoking the first", b)
	// Listing slides no TTL: b expires as if never looked at.
	e.clk.Advance(SuiteTTL / 2)
	list("half a TTL later", b)
	e.clk.Advance(SuiteTTL/2 + time.Second)
	list("after the TTL")
	if _, err := e.store.Get(e.ctx, b.Token); !errors.Is(err, session.ErrExpired) && !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("Get after the TTL with only listings between: %v, want expired", err)
	}
	_ = other
	// One login per user (AllowMultiple off): the kicked one is not listed.
	e2 := setup(t, newStore, false)
	l2 := e2.store.(session.SessionLister)
	uk2 := uniqueUser(t) + 7
	e2.login(t, uk2)
	c := e2.login(t, uk2)
	got, err := l2.UserSessions(e2.ctx, uk2)
	if err != nil || len(got) != 1 || got[0].ID != c.ID {
		t.Fatalf("after a second login (the first kicked): %v %v, want only %s", got, err, c.ID)
	}
}
