package liveops_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/madang-io/madang/examples/gameserver/liveops"
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
	db, _ := sql.Open("sqlite", shard.SQLiteDSN(filepath.Join(dir, "common.db")))
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

// A Christmas login bonus for Korea, midnight to midnight Seoul time.
func ExampleManager_SetEvent() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "liveops-event-example")
	defer os.RemoveAll(dir)
	db, _ := sql.Open("sqlite", shard.SQLiteDSN(filepath.Join(dir, "common.db")))
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
	err = m.SetEvent(ctx, liveops.Event{
		ID: "xmas-2026", Kind: liveops.EventLoginBonus, Title: "Merry Christmas!", Gems: 50,
		TimeZone: "Asia/Seoul", Start: "2026-12-25T00:00:00", End: "2026-12-26T00:00:00",
		Countries: []string{"KR"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	e := m.Events()[0]
	start, end := e.Window()
	fmt.Println(start.UTC(), "to", end.UTC())
	kr := liveops.Target{Country: "KR", Platform: "ios", ClientVersion: "1.0"}
	for _, at := range []string{"2026-12-24T14:59:00Z", "2026-12-24T15:00:00Z"} {
		now, _ := time.Parse(time.RFC3339, at)
		fmt.Println(at, len(m.ActiveEvents(kr, now)), len(m.ActiveEvents(liveops.Target{Country: "JP"}, now)))
	}
	// Output:
	// 2026-12-24 15:00:00 +0000 UTC to 2026-12-25 15:00:00 +0000 UTC
	// 2026-12-24T14:59:00Z 0 0
	// 2026-12-24T15:00:00Z 1 0
}
