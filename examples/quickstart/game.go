package main

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"io/fs"

	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/realtime"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// The game's commands, and its result code (game codes start at CodeGameBase).
const (
	CmdLogin  = "auth.login"   // {"device_id","version"} → loginReply; public
	CmdDaily  = "reward.daily" // → {"gold","added"}; needs a request id ("rid"); once per UTC day
	CmdSubmit = "rank.submit"  // {"score"} → {"rank","score"}: the week's best score counts

	CodeAlreadyClaimed = protocol.CodeGameBase + 1
	DailyGold          = 100
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// gameMigrations are the game databases' tables, a file per dialect.
func gameMigrations() shard.Migrations {
	sub, _ := fs.Sub(migrationFiles, "migrations") // a constant, valid path
	return shard.Migrations{Source: "quickstart", FS: sub}
}

// register adds the commands to mux. Only the daily reward must never run
// twice for one request: it alone takes the idempotency middleware.
func (s *Server) register(mux *protocol.Mux) {
	mux.Handle(CmdLogin, protocol.Typed(s.login))
	mux.Handle(CmdDaily, protocol.Typed(s.claimDaily), idempotency.Middleware(s.idem))
	mux.Handle(CmdSubmit, protocol.Typed(s.submitScore))
}

type loginArgs struct {
	DeviceID string `json:"device_id"`
	Version  string `json:"version"` // the client's
}

// loginReply carries the token and the frame keys' id and secret: TLS only.
type loginReply struct {
	UserKey int64  `json:"user_key"`
	Token   string `json:"token"`
	KeyID   string `json:"key_id"`
	Secret  []byte `json:"secret"`
}

// login finds the device's user key (a new one on the emptiest game
// database), gives it a wallet there and opens a session (kicking older ones).
func (s *Server) login(ctx context.Context, req *protocol.Request, in loginArgs) (loginReply, error) {
	key, _, err := s.accounts.Register(ctx, shard.Identity{Platform: "guest", ID: in.DeviceID}) // bad_request if empty
	if err != nil {
		return loginReply{}, err
	}
	err = s.router.Tx(ctx, key, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM wallets WHERE user_key = ?", key).Scan(&n); err != nil || n > 0 {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO wallets (user_key) VALUES (?)", key)
		return err
	})
	if err != nil {
		return loginReply{}, err
	}
	sess, err := s.sessions.Create(ctx, session.CreateParams{UserKey: key, DeviceID: in.DeviceID, ClientVersion: in.Version})
	if err != nil {
		return loginReply{}, err
	}
	req.Principal = sess.Principal() // the anti-cheat guard checks the block list on it
	return loginReply{UserKey: key, Token: sess.Token, KeyID: sess.ID, Secret: sess.Secret}, nil
}

// claimDaily grants DailyGold once per UTC day in the idempotency store's
// transaction on the player's database (TxFrom): gold and stored answer
// commit together, so a retry gets this answer, never a second grant. The
// push runs after the commit, on the first run only.
func (s *Server) claimDaily(ctx context.Context, req *protocol.Request, _ struct{}) (map[string]int64, error) {
	user, day, tx := req.Principal.UserKey, s.cfg.Now().UTC().Unix()/86400, idempotency.TxFrom(ctx)
	res, err := tx.ExecContext(ctx, "UPDATE wallets SET gold = gold + ?, daily_day = ? WHERE user_key = ? AND daily_day < ?",
		DailyGold, day, user, day)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return nil, protocol.Errorf(CodeAlreadyClaimed, "daily reward already claimed today") // stored and replayed too
	}
	var gold int64
	if err := tx.QueryRowContext(ctx, "SELECT gold FROM wallets WHERE user_key = ?", user).Scan(&gold); err != nil {
		return nil, err
	}
	out := map[string]int64{"gold": gold, "added": DailyGold}
	idempotency.AfterCommit(ctx, func(ctx context.Context) {
		push, _ := json.Marshal(out)
		_ = s.hub.PushUser(ctx, user, "reward", push) // every websocket of the player, on any server
	})
	return out, nil
}

type rankReply struct {
	Rank  int64 `json:"rank"`
	Score int64 `json:"score"`
}

// submitScore keeps the player's best score of the week (a resend changes
// nothing: no request id needed) and tells the system channel's
// subscribers when the player takes first place.
func (s *Server) submitScore(ctx context.Context, req *protocol.Request, in struct{ Score int64 }) (rankReply, error) {
	if in.Score < 0 || in.Score > 1_000_000 { // bound what a client may report
		return rankReply{}, protocol.Errorf(protocol.CodeBadRequest, "score out of range")
	}
	if err := s.board.Submit(ctx, req.Principal.UserKey, in.Score, session.ScoreBest); err != nil {
		return rankReply{}, err
	}
	me, err := s.board.Rank(ctx, req.Principal.UserKey)
	if err == nil && me.Rank == 1 && me.Score == in.Score {
		notice, _ := json.Marshal(map[string]any{"message": "a new champion", "user_key": me.User, "score": me.Score})
		_, _ = s.hub.Broadcast(ctx, realtime.Filter{}, "notice", notice)
	}
	return rankReply{me.Rank, me.Score}, err
}
