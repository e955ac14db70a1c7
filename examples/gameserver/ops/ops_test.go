package ops

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/shard"
	"github.com/madang-io/madang/shard/shardtest"
)

func newHandler(t *testing.T) *Handler {
	t.Helper()
	ctx := context.Background()
	db := shardtest.SQLite().NewDB(t)
	for _, m := range []shard.Migrations{shard.DirectoryMigrations(), liveops.Migrations()} {
		if _, err := shard.Migrate(ctx, db, m); err != nil {
			t.Fatal(err)
		}
	}
	lo, err := liveops.New(ctx, liveops.Config{DB: db, PollInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lo.Close() })
	store := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	h, err := New(Config{Token: "tok", LiveOps: lo, Registry: anticheat.NewRegistry(store, anticheat.RegistryConfig{}),
		Monitor: anticheat.NewMonitor(anticheat.MonitorConfig{Log: store, Blocks: store})})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNewNeedsItsParts(t *testing.T) {
	if _, err := New(Config{Token: "x"}); err == nil {
		t.Fatal("New without LiveOps accepted")
	}
}

func TestTokenAndErrors(t *testing.T) {
	h := newHandler(t)
	for _, tc := range []struct {
		method, path, auth, body string
		want                     int
	}{
		{"GET", "/v1/stats", "", "", 401},
		{"GET", "/v1/stats", "Bearer nope", "", 401},
		{"GET", "/v1/stats", "tok", "", 401}, // no "Bearer " scheme
		{"GET", "/v1/stats", "Bearer tok", "", 200},
		{"GET", "/v1/stats?day=yesterday", "Bearer tok", "", 400},
		{"PUT", "/v1/blocks/abc", "Bearer tok", `{}`, 400},
		{"PUT", "/v1/blocks/5", "Bearer tok", `{"duration":"-1h"}`, 400},
		{"PUT", "/v1/blocks/5", "Bearer tok", `{"duration":"1h","reason":"x"}`, 200},
		{"PUT", "/v1/apk-signatures/1.0", "Bearer tok", `{}`, 400},
		{"PUT", "/v1/apk-signatures/1.0", "Bearer tok", `{"apk_md5":"zz"}`, 400},
		{"PUT", "/v1/maintenance", "Bearer tok", strings.Repeat(" ", MaxBody+1) + `{}`, 400},
		{"POST", "/v1/maintenance/users", "Bearer tok", `{"user_keys":[1],"operator":"op"}`, 200},
		{"GET", "/v1/nothing", "Bearer tok", "", 404},
		{"GET", "/healthz", "", "", 200},
	} {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s %s (%q): %d %s, want %d", tc.method, tc.path, tc.auth, rec.Code, rec.Body, tc.want)
		}
		if rec.Code != http.StatusNotFound && rec.Code != http.StatusOK && !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("%s %s: error body %s", tc.method, tc.path, rec.Body)
		}
	}
}
