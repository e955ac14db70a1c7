package liveops_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/internal/sqldialect"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
	_ "modernc.org/sqlite"
)

// A minimum version, per-user maintenance and the login answer's data
// versions, on a SQLite common database.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "liveops-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", sqldialect.SQLiteDSN(filepath.Join(dir, "common.db")))
	defer db.Close()
	if _, err := shard.Migrate(ctx, db, liveops.Migrations()); err != nil {
		fmt.Println(err)
		return
	}
	m, err := liveops.New(ctx, liveops.Config{DB: db})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close()
	_ = m.SetPlatform(ctx, liveops.PlatformPolicy{Platform: "android", MinVersion: "1.2"})
	_ = m.SetClientVersion(ctx, liveops.ClientVersion{Platform: "android", Version: "1.2", DataVersion: "gd-7", AssetVersion: "ab-3"})
	_ = m.AddUserMaintenance(ctx, []int64{42}, "ops-kim", "account repair")

	mux := protocol.NewMux()
	mux.Handle("auth.guest", protocol.HandlerFunc(func(_ context.Context, req *protocol.Request) (*protocol.Response, error) {
		req.Principal = &protocol.Principal{UserKey: 7}
		return &protocol.Response{Payload: json.RawMessage(`{"token":"..."}`)}, nil
	}))
	mux.Handle("player.load", protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) { return nil, nil }))
	h := protocol.Chain(mux, m.Middleware())
	call := func(cmd string, p *protocol.Principal, payload string) {
		resp := protocol.Dispatch(ctx, h, &protocol.Request{Command: cmd, Principal: p, Payload: json.RawMessage(payload)}, nil)
		fmt.Println(cmd, int(resp.Code), string(resp.Payload))
	}
	call("auth.guest", nil, `{"platform":"android","client_version":"1.1"}`)
	call("auth.guest", nil, `{"platform":"android","client_version":"1.2.1"}`)
	call("player.load", &protocol.Principal{UserKey: 42}, `{}`)
	// Output:
	// auth.guest 16 {"min_version":"1.2.0.0"}
	// auth.guest 0 {"liveops":{"data_version":"gd-7","asset_version":"ab-3"},"token":"..."}
	// player.load 20 {"scope":"user","message":"account repair","ends_at":0}
}
