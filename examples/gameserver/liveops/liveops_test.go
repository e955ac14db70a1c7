package liveops

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session/sessiontest"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

func openDB(t *testing.T, b shardtest.Backend) *sql.DB {
	t.Helper()
	db := b.NewDB(t)
	ctx := context.Background()
	if _, err := shard.Migrate(ctx, db, shard.DirectoryMigrations()); err != nil {
		t.Fatal(err)
	}
	if _, err := shard.Migrate(ctx, db, Migrations()); err != nil {
		t.Fatal(err)
	}
	return db
}

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// chain is the middleware over a handler that logs in user 7 (payload
// {"user": n} picks another) and answers {"ok":true} to anything else.
func chain(m *Manager) protocol.Handler {
	mux := protocol.NewMux()
	mux.Handle("auth.guest", protocol.HandlerFunc(func(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
		var in struct{ User int64 }
		_ = json.Unmarshal(req.Payload, &in)
		if in.User == 0 {
			in.User = 7
		}
		req.Principal = &protocol.Principal{UserKey: in.User}
		return &protocol.Response{Payload: json.RawMessage(`{"token":"t"}`)}, nil
	}))
	mux.Handle("player.load", protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) {
		return &protocol.Response{Payload: json.RawMessage(`{"ok":true}`)}, nil
	}))
	mux.Handle("sys.time", protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) {
		return nil, nil
	}))
	return protocol.Chain(mux, m.Middleware())
}

func call(t *testing.T, h protocol.Handler, cmd string, p *protocol.Principal, payload string) *protocol.Response {
	t.Helper()
	req := &protocol.Request{Command: cmd, Principal: p}
	if payload != "" {
		req.Payload = json.RawMessage(payload)
	}
	return protocol.Dispatch(context.Background(), h, req, nil)
}

func TestPolicyOnEveryBackend(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t, b)
			m := newManager(t, Config{DB: db, PollInterval: -1, Exempt: []string{"sys.time"}})
			h := chain(m)

			if err := m.SetPlatform(ctx, PlatformPolicy{Platform: "android", MinVersion: "1.2", UpdateURL: "https://store/x"}); err != nil {
				t.Fatal(err)
			}
			for _, c := range []ClientVersion{
				{Platform: "android", Version: "1.2.0.0", DataVersion: "d12", AssetVersion: "a12"},
				{Platform: "android", Version: "1.3", DataVersion: "d13", AssetVersion: "a13"},
				{Platform: "ios", Version: "2.0", Review: true, ReviewURL: "https://review.example/v1/rpc", DataVersion: "d20"},
				{Platform: "ios", Version: "1.9", DataVersion: "d19"},
			} {
				if err := m.SetClientVersion(ctx, c); err != nil {
					t.Fatal(err)
				}
			}

			// An outdated client: update required, with the store URL.
			r := call(t, h, "auth.guest", nil, `{"platform":"android","client_version":"1.1.9"}`)
			var up UpdateRequired
			if r.Code != protocol.CodeClientTooOld || json.Unmarshal(r.Payload, &up) != nil || up.MinVersion != "1.2.0.0" || up.UpdateURL != "https://store/x" {
				t.Fatalf("old client: %+v %s", r, r.Payload)
			}
			// Also on later requests of a session made before the rule.
			if r := call(t, h, "player.load", &protocol.Principal{UserKey: 9, Platform: "android", ClientVersion: "1.0"}, ""); r.Code != protocol.CodeClientTooOld {
				t.Fatalf("old session: %+v", r)
			}

			// A current client: data and asset versions of the nearest build
			// at or below it.
			r = call(t, h, "auth.guest", nil, `{"platform":"android","client_version":"1.3.5"}`)
			info := loginInfo(t, r)
			if info.DataVersion != "d13" || info.AssetVersion != "a13" || info.ReviewServerURL != "" {
				t.Fatalf("login info %+v", info)
			}
			// A review build gets the review server; a newer non-review iOS
			// build falls back to 1.9's data, not the review build's.
			info = loginInfo(t, call(t, h, "auth.guest", nil, `{"platform":"ios","client_version":"2.0.0.0"}`))
			if info.ReviewServerURL != "https://review.example/v1/rpc" || info.DataVersion != "d20" {
				t.Fatalf("review build: %+v", info)
			}
			info = loginInfo(t, call(t, h, "auth.guest", nil, `{"platform":"ios","client_version":"2.1"}`))
			if info.ReviewServerURL != "" || info.DataVersion != "d19" {
				t.Fatalf("build after the review build: %+v", info)
			}

			// Per-user maintenance: user 8 refused, user 9 plays.
			if err := m.AddUserMaintenance(ctx, []int64{8, 80}, "ops-kim", "account repair"); err != nil {
				t.Fatal(err)
			}
			r = call(t, h, "player.load", &protocol.Principal{UserKey: 8}, "")
			var n MaintenanceNotice
			if r.Code != protocol.CodeMaintenance || json.Unmarshal(r.Payload, &n) != nil || n.Scope != "user" || n.Message != "account repair" {
				t.Fatalf("user in maintenance: %+v %s", r, r.Payload)
			}
			if r := call(t, h, "player.load", &protocol.Principal{UserKey: 9}, ""); r.Code != protocol.CodeOK {
				t.Fatalf("other user: %+v", r)
			}
			if r := call(t, h, "auth.guest", nil, `{"user":80}`); r.Code != protocol.CodeMaintenance {
				t.Fatalf("login of a user in maintenance: %+v", r)
			}
			if got := m.UserMaintenance(); len(got) != 2 || got[0].Operator != "ops-kim" {
				t.Fatalf("list %+v", got)
			}
			if err := m.RemoveUserMaintenance(ctx, []int64{8}); err != nil {
				t.Fatal(err)
			}
			if r := call(t, h, "player.load", &protocol.Principal{UserKey: 8}, ""); r.Code != protocol.CodeOK {
				t.Fatalf("after removal: %+v", r)
			}

			// Global maintenance with an allow-list.
			ends := time.Now().Add(time.Hour).Truncate(time.Millisecond)
			if err := m.SetMaintenance(ctx, Maintenance{Active: true, Message: "patch 1.4", EndsAt: ends, AllowUsers: []int64{9}, Operator: "ops"}); err != nil {
				t.Fatal(err)
			}
			r = call(t, h, "player.load", &protocol.Principal{UserKey: 8}, "")
			if r.Code != protocol.CodeMaintenance || json.Unmarshal(r.Payload, &n) != nil || n.Scope != "global" || n.EndsAt != ends.UnixMilli() || n.Message != "patch 1.4" {
				t.Fatalf("global maintenance: %+v %s", r, r.Payload)
			}
			if r := call(t, h, "player.load", &protocol.Principal{UserKey: 9}, ""); r.Code != protocol.CodeOK {
				t.Fatalf("allow-listed user: %+v", r)
			}
			if r := call(t, h, "auth.guest", nil, `{"user":10}`); r.Code != protocol.CodeMaintenance {
				t.Fatalf("login during maintenance: %+v", r)
			}
			if r := call(t, h, "auth.guest", nil, `{"user":9}`); r.Code != protocol.CodeOK {
				t.Fatalf("allow-listed login: %+v", r)
			}
			if r := call(t, h, "sys.time", nil, ""); r.Code != protocol.CodeOK {
				t.Fatalf("exempt command: %+v", r)
			}
			if err := m.SetMaintenance(ctx, Maintenance{}); err != nil {
				t.Fatal(err)
			}
			if r := call(t, h, "player.load", &protocol.Principal{UserKey: 8}, ""); r.Code != protocol.CodeOK {
				t.Fatalf("after maintenance: %+v", r)
			}

			// A second manager on the same database sees everything after a
			// reload (what polling does).
			m2 := newManager(t, Config{DB: db, PollInterval: -1})
			p := m2.Policy()
			if len(p.Platforms) != 1 || len(p.Versions) != 4 || len(p.Users) != 1 || p.Maintenance.Active || p.Version != m.Policy().Version {
				t.Fatalf("second manager: %+v", p)
			}
			dau, err := m.DAU(ctx, time.Now())
			if err != nil || dau != 2 { // users 7 (three logins) and 9; 10 and 80 were refused
				t.Fatalf("DAU %d %v", dau, err)
			}
			s := m.Stats()
			if s.Maintenance < 3 || s.UpdateRequired != 2 || s.ReviewRouted != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

func loginInfo(t *testing.T, r *protocol.Response) LoginInfo {
	t.Helper()
	if r.Code != protocol.CodeOK {
		t.Fatalf("login: %+v", r)
	}
	var out struct {
		Token   string
		LiveOps LoginInfo `json:"liveops"`
	}
	if err := json.Unmarshal(r.Payload, &out); err != nil || out.Token != "t" {
		t.Fatalf("login payload %s: %v", r.Payload, err)
	}
	return out.LiveOps
}

func TestInvalidInput(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, Config{DB: openDB(t, shardtest.Backends()[0]), PollInterval: -1})
	big := make([]int64, MaxBatch+1)
	for i := range big {
		big[i] = int64(i + 1)
	}
	for name, err := range map[string]error{
		"batch too long":   m.AddUserMaintenance(ctx, big, "op", ""),
		"empty batch":      m.AddUserMaintenance(ctx, nil, "op", ""),
		"no operator":      m.AddUserMaintenance(ctx, []int64{1}, "", ""),
		"bad key":          m.RemoveUserMaintenance(ctx, []int64{0}),
		"bad min version":  m.SetPlatform(ctx, PlatformPolicy{Platform: "android", MinVersion: "one"}),
		"no platform":      m.SetPlatform(ctx, PlatformPolicy{}),
		"review no url":    m.SetClientVersion(ctx, ClientVersion{Platform: "ios", Version: "1", Review: true}),
		"bad allow user":   m.SetMaintenance(ctx, Maintenance{AllowUsers: []int64{-1}}),
		"message too long": m.SetMaintenance(ctx, Maintenance{Message: string(make([]byte, MaxMessageLen+1))}),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := m.AddUserMaintenance(ctx, big[:MaxBatch], "op", "full batch"); err != nil {
		t.Fatal(err)
	}
	if n := len(m.UserMaintenance()); n != MaxBatch {
		t.Fatalf("%d users after a full batch", n)
	}
	h := chain(m)
	if r := call(t, h, "auth.guest", nil, `[1]`); r.Code != protocol.CodeBadRequest {
		t.Fatalf("login with a non-object payload: %+v", r)
	}
}

// Two managers on one database and one Redis: a change made through one
// reaches the other by pub/sub (polling is off), and CCU counts the users
// of both.
func TestRedisNotificationAndCCU(t *testing.T) {
	ctx := context.Background()
	rdb := sessiontest.Redis(t)
	prefix := sessiontest.RedisPrefix(t, rdb)
	db := openDB(t, shardtest.Backends()[0])
	cfg := Config{DB: db, Redis: rdb, Channel: prefix + "liveops", PollInterval: -1, FlushInterval: time.Hour}
	a, b := newManager(t, cfg), newManager(t, cfg)
	// The subscription may not be established yet: publish until b reloads.
	deadline := time.Now().Add(10 * time.Second)
	for i := int64(1); b.Policy().Version == 1 || len(b.Policy().Users) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("the change never reached the other manager")
		}
		if err := a.AddUserMaintenance(ctx, []int64{i}, "op", ""); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b.Stats().Notifications == 0 {
		t.Fatal("b reloaded without a notification")
	}
	ha, hb := chain(a), chain(b)
	call(t, ha, "player.load", &protocol.Principal{UserKey: 1001}, "")
	call(t, hb, "player.load", &protocol.Principal{UserKey: 1002}, "")
	call(t, hb, "player.load", &protocol.Principal{UserKey: 1001}, "")
	for _, m := range []*Manager{a, b} {
		if err := m.FlushActive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := a.CCU(ctx); err != nil || n != 2 {
		t.Fatalf("CCU %d %v, want 2", n, err)
	}
}

func TestLocalCCUAndNRU(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, shardtest.Backends()[0])
	m := newManager(t, Config{DB: db, PollInterval: -1})
	h := chain(m)
	for _, u := range []int64{1, 2, 2, 3} {
		call(t, h, "player.load", &protocol.Principal{UserKey: u}, "")
	}
	if n, err := m.CCU(ctx); err != nil || n != 3 {
		t.Fatalf("CCU %d %v", n, err)
	}
	dir, err := shard.NewSQLDirectory(ctx, db, shard.SQLDirectoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Add(ctx, shard.Database{ID: 1, Name: "g", Driver: "sqlite", DSN: "x", FirstKey: 1, LastKey: 100}); err != nil {
		t.Fatal(err)
	}
	acc := shard.NewAccounts(dir, shard.AccountsConfig{})
	for _, id := range []string{"a", "b", "a"} {
		if _, _, err := acc.Register(ctx, shard.Identity{Platform: "guest", ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := m.NRU(ctx, time.Now()); err != nil || n != 2 {
		t.Fatalf("NRU %d %v", n, err)
	}
	if n, err := m.NRU(ctx, time.Now().Add(-48*time.Hour)); err != nil || n != 0 {
		t.Fatalf("NRU two days ago %d %v", n, err)
	}
}

func TestRepackagedAPKGetsForceClose(t *testing.T) {
	ctx := context.Background()
	store := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	reg := anticheat.NewRegistry(store, anticheat.RegistryConfig{})
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Log: store, Blocks: store})
	const good = "0123456789abcdef0123456789abcdef"
	if err := reg.Set(ctx, "1.5", good); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, Config{DB: openDB(t, shardtest.Backends()[0]), PollInterval: -1, Registry: reg, Monitor: mon})
	h := chain(m)
	before := time.Now()
	info := loginInfo(t, call(t, h, "auth.guest", nil, `{"platform":"android","client_version":"1.5","apk_sig":"ffffffffffffffffffffffffffffffff"}`))
	if info.DirectiveCode != DirectiveForceClose || info.CloseAt < before.Add(time.Minute).UnixMilli() {
		t.Fatalf("repackaged APK: %+v", info)
	}
	if info := loginInfo(t, call(t, h, "auth.guest", nil, `{"platform":"android","client_version":"1.5","apk_sig":"`+good+`"}`)); info.DirectiveCode != 0 || info.CloseAt != 0 {
		t.Fatalf("genuine APK: %+v", info)
	}
	// iOS has no APK: not checked.
	if info := loginInfo(t, call(t, h, "auth.guest", nil, `{"platform":"ios","client_version":"1.5"}`)); info.DirectiveCode != 0 {
		t.Fatalf("ios: %+v", info)
	}
	counts, err := mon.Log().UserCounts(ctx, 7)
	if err != nil || counts[anticheat.KindSignature] != 1 {
		t.Fatalf("hack log %v %v", counts, err)
	}
	if s := m.Stats(); s.ForceClosed != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// FuzzLogin feeds arbitrary login payloads and client versions through the
// middleware: never a panic, and only the documented codes.
func FuzzLogin(f *testing.F) {
	f.Add(`{"platform":"android","client_version":"1.2.3.4","apk_sig":"00"}`, "1.2")
	f.Add(`{"platform":"ios","client_version":"99999999999.1"}`, "")
	f.Add(`[1,2]`, "x.y")
	f.Add(`{"platform":1,"client_version":{}}`, "1..2")
	store := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	reg := anticheat.NewRegistry(store, anticheat.RegistryConfig{})
	if err := reg.Set(context.Background(), "latest", "0123456789abcdef0123456789abcdef"); err != nil {
		f.Fatal(err)
	}
	db := shardtest.SQLite().NewDB(f)
	if _, err := shard.Migrate(context.Background(), db, Migrations()); err != nil {
		f.Fatal(err)
	}
	m, err := New(context.Background(), Config{DB: db, PollInterval: -1, Registry: reg})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	if err := m.SetPlatform(context.Background(), PlatformPolicy{Platform: "android", MinVersion: "1.0"}); err != nil {
		f.Fatal(err)
	}
	if err := m.SetClientVersion(context.Background(), ClientVersion{Platform: "ios", Version: "1.0", Review: true, ReviewURL: "u"}); err != nil {
		f.Fatal(err)
	}
	h := chain(m)
	f.Fuzz(func(t *testing.T, payload, sessionVersion string) {
		r := protocol.Dispatch(context.Background(), h, &protocol.Request{Command: "auth.guest", Payload: json.RawMessage(payload)}, nil)
		switch r.Code {
		case protocol.CodeOK, protocol.CodeBadRequest, protocol.CodeClientTooOld:
		default:
			t.Fatalf("login %q: code %v %s", payload, r.Code, r.Message)
		}
		r = protocol.Dispatch(context.Background(), h, &protocol.Request{Command: "player.load",
			Principal: &protocol.Principal{UserKey: 5, Platform: "android", ClientVersion: sessionVersion}}, nil)
		if r.Code != protocol.CodeOK && r.Code != protocol.CodeClientTooOld {
			t.Fatalf("load with version %q: code %v", sessionVersion, r.Code)
		}
	})
}

// With DAUCountsNewAccounts a first login (LoginUser finds no account)
// writes no liveops_logins row, and DAU still counts it, from the new
// account's shard_accounts row; a returning player's login writes its row.
func TestDAUCountsNewAccounts(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t, b)
			dir, err := shard.NewSQLDirectory(ctx, db, shard.SQLDirectoryConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := dir.Add(ctx, shard.Database{ID: 1, Name: "g", Driver: "sqlite", DSN: "x", FirstKey: 1, LastKey: 100}); err != nil {
				t.Fatal(err)
			}
			acc := shard.NewAccounts(dir, shard.AccountsConfig{})
			id := func(payload []byte) shard.Identity {
				var in struct{ Dev string }
				_ = json.Unmarshal(payload, &in)
				return shard.Identity{Platform: "guest", ID: in.Dev}
			}
			m := newManager(t, Config{DB: db, PollInterval: -1, DAUCountsNewAccounts: true,
				LoginUser: func(ctx context.Context, payload []byte) (int64, bool, error) {
					return acc.Lookup(ctx, id(payload))
				}})
			mux := protocol.NewMux()
			mux.Handle("auth.guest", protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
				key, _, err := acc.Register(ctx, id(req.Payload))
				if err != nil {
					return nil, err
				}
				req.Principal = &protocol.Principal{UserKey: key}
				return &protocol.Response{Payload: json.RawMessage(`{}`)}, nil
			}))
			h := protocol.Chain(mux, m.Middleware())
			rows := func() (n int64) {
				if err := db.QueryRow("SELECT COUNT(*) FROM liveops_logins").Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			for i, dev := range []string{"a", "a", "b"} {
				if r := call(t, h, "auth.guest", nil, `{"dev":"`+dev+`"}`); r.Code != protocol.CodeOK {
					t.Fatalf("login %d: %+v", i, r)
				}
			}
			if n := rows(); n != 1 { // a's second login only
				t.Fatalf("%d liveops_logins rows, want 1", n)
			}
			if n, err := m.DAU(ctx, time.Now()); err != nil || n != 2 {
				t.Fatalf("DAU %d %v, want 2", n, err)
			}
			if n, err := m.DAU(ctx, time.Now().Add(-48*time.Hour)); err != nil || n != 0 {
				t.Fatalf("DAU two days ago %d %v", n, err)
			}
		})
	}
}

// Each server samples the CCU; a day's peak is the largest sample of any
// server that day (GREATEST / MAX in one statement), per UTC day.
func TestPeakCCUPerDay(t *testing.T) {
	for _, b := range shardtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			db := openDB(t, b)
			now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
			clock := func() time.Time { return now }
			a := newManager(t, Config{DB: db, PollInterval: -1, Now: clock})
			other := newManager(t, Config{DB: db, PollInterval: -1, Now: clock})
			ha, ho := chain(a), chain(other)
			record := func(m *Manager, want int64) {
				t.Helper()
				if n, err := m.RecordCCU(ctx); err != nil || n != want {
					t.Fatalf("RecordCCU %d %v, want %d", n, err, want)
				}
			}
			peak := func(at time.Time, want int64) {
				t.Helper()
				if n, err := a.PeakCCU(ctx, at); err != nil || n != want {
					t.Fatalf("PeakCCU(%v) %d %v, want %d", at, n, err, want)
				}
			}
			peak(now, 0)
			for _, u := range []int64{1, 2, 3} {
				call(t, ha, "player.load", &protocol.Principal{UserKey: u}, "")
			}
			record(a, 3)
			peak(now, 3)
			call(t, ho, "player.load", &protocol.Principal{UserKey: 4}, "")
			record(other, 1) // a smaller sample of another server keeps the peak
			peak(now, 3)
			for _, u := range []int64{5, 6} {
				call(t, ha, "player.load", &protocol.Principal{UserKey: u}, "")
			}
			record(a, 5)
			peak(now, 5)
			day1 := now
			now = now.Add(24 * time.Hour)
			call(t, ha, "player.load", &protocol.Principal{UserKey: 9}, "")
			record(a, 1) // the next day starts from its own first sample
			peak(now, 1)
			peak(day1, 5)
		})
	}
}
