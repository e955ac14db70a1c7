package game

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

//go:embed common_migrations/*.sql
var commonMigrationFiles embed.FS

// CommonMigrations returns the game's migrations for the common database
// (source "game_common"): the iap_pending table of IAPConfig.Pending.
func CommonMigrations() shard.Migrations {
	return embedded(commonMigrationFiles, "common_migrations", "game_common")
}

// pendingGrant is one iap_pending row: a purchase whose grant may not have
// committed, with what it takes to run it again (the receipt is verified
// again: the note holds no grant of its own).
type pendingGrant struct {
	UserKey       int64
	Hash          string // hex SHA-256 of platform and receipt
	Platform      string
	ProductID     string
	ClientVersion string
	RequestID     string
	Receipt       string
	CreatedAt     int64 // Unix ms
}

func receiptHash(platform, receipt string) string {
	h := sha256.New()
	h.Write([]byte(platform))
	h.Write([]byte{0})
	h.Write([]byte(receipt))
	return hex.EncodeToString(h.Sum(nil))
}

func (g *Game) pendingOn() bool { return g.cfg.IAP != nil && g.cfg.IAP.Pending != nil }

// pendingWrite runs fn, a write to IAPConfig.Pending, through
// IAPConfig.Write when set.
func (g *Game) pendingWrite(ctx context.Context, fn func(ctx context.Context) error) error {
	if w := g.cfg.IAP.Write; w != nil {
		return w(ctx, fn)
	}
	return fn(ctx)
}

// definitive reports whether err refuses a purchase for good (a bad or
// foreign receipt, a wrong product): a retry would be refused too. Backend
// outages and bugs are not.
func definitive(err error) bool {
	c := protocol.CodeOf(shard.ClassifyError(err))
	return !c.Retryable() && c != protocol.CodeInternal
}

// notePending writes pg (once per player and receipt; a second note of
// the same receipt keeps the first).
func (g *Game) notePending(ctx context.Context, pg pendingGrant) error {
	if !g.pendingOn() {
		return nil
	}
	err := g.pendingWrite(ctx, func(ctx context.Context) error {
		_, err := g.cfg.IAP.Pending.ExecContext(ctx, g.sql.InsertIgnore()+
			" iap_pending (user_key, receipt_sha256, platform, product_id, client_version, request_id, receipt, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			pg.UserKey, pg.Hash, pg.Platform, pg.ProductID, pg.ClientVersion, pg.RequestID, pg.Receipt, g.cfg.Now().UnixMilli())
		return err
	})
	if err != nil {
		return shard.ClassifyError(fmt.Errorf("game: note purchase of %d: %w", pg.UserKey, err))
	}
	return nil
}

// forgetPending deletes pg's note; a failure only leaves the note for the
// next sweep, which finds the purchase granted and deletes it then.
func (g *Game) forgetPending(ctx context.Context, pg pendingGrant) {
	if !g.pendingOn() {
		return
	}
	err := g.pendingWrite(ctx, func(ctx context.Context) error {
		_, err := g.cfg.IAP.Pending.ExecContext(ctx, "DELETE FROM iap_pending WHERE user_key = ? AND receipt_sha256 = ?", pg.UserKey, pg.Hash)
		return err
	})
	if err != nil {
		g.log.Warn("game: forget purchase note", "user", pg.UserKey, "err", err)
	}
}

const pendingColumns = "user_key, receipt_sha256, platform, product_id, client_version, request_id, receipt, created_at"

func (g *Game) pendingRows(ctx context.Context, where string, args ...any) ([]pendingGrant, error) {
	rows, err := g.cfg.IAP.Pending.QueryContext(ctx, "SELECT "+pendingColumns+" FROM iap_pending WHERE "+where, args...)
	if err != nil {
		return nil, shard.ClassifyError(fmt.Errorf("game: purchase notes: %w", err))
	}
	defer rows.Close()
	var out []pendingGrant
	for rows.Next() {
		var pg pendingGrant
		if err := rows.Scan(&pg.UserKey, &pg.Hash, &pg.Platform, &pg.ProductID, &pg.ClientVersion, &pg.RequestID, &pg.Receipt, &pg.CreatedAt); err != nil {
			return nil, shard.ClassifyError(fmt.Errorf("game: purchase notes: %w", err))
		}
		out = append(out, pg)
	}
	if err := rows.Err(); err != nil {
		return nil, shard.ClassifyError(fmt.Errorf("game: purchase notes: %w", err))
	}
	return out, nil
}

// MaxPendingPerLogin bounds how many noted purchases GrantPending runs.
const MaxPendingPerLogin = 20

// GrantPending grants userKey's noted in-app purchases whose grant never
// committed (see IAPConfig.Pending) and returns how many it granted now
// (a purchase granted before, by the client's own retry or another
// server's sweep, counts 0 and its note is deleted). Login runs it; at
// most MaxPendingPerLogin purchases per call.
func (g *Game) GrantPending(ctx context.Context, userKey int64) (int, error) {
	if !g.pendingOn() {
		return 0, nil
	}
	pgs, err := g.pendingRows(ctx, "user_key = ? ORDER BY created_at LIMIT ?", userKey, MaxPendingPerLogin)
	if err != nil {
		return 0, err
	}
	return g.grantAll(ctx, pgs)
}

// SweepPendingGrants grants every player's noted in-app purchases older
// than minAge (younger ones may still be in their own request), at most
// limit, and returns how many it granted. The server runs it periodically.
func (g *Game) SweepPendingGrants(ctx context.Context, minAge time.Duration, limit int) (int, error) {
	if !g.pendingOn() {
		return 0, nil
	}
	pgs, err := g.pendingRows(ctx, "created_at <= ? ORDER BY created_at LIMIT ?", g.cfg.Now().Add(-minAge).UnixMilli(), limit)
	if err != nil {
		return 0, err
	}
	return g.grantAll(ctx, pgs)
}

// grantAll runs each noted purchase; the first backend error stops it.
func (g *Game) grantAll(ctx context.Context, pgs []pendingGrant) (int, error) {
	n := 0
	for _, pg := range pgs {
		granted, err := g.grantNoted(ctx, pg)
		if err != nil {
			return n, err
		}
		if granted {
			n++
		}
	}
	return n, nil
}

// grantNoted runs a noted purchase again as shop.buy_iap would — the
// receipt verified and redeemed again (the same account's redemption is
// found), the grant in one transaction of the player's game database,
// which the purchases row makes happen once — then deletes the note.
func (g *Game) grantNoted(ctx context.Context, pg pendingGrant) (bool, error) {
	store, ok := iapStores[pg.Platform]
	product, okp := g.clientTables(ctx, pg.ClientVersion).Product(pg.ProductID)
	if !ok || !okp {
		g.log.Warn("game: purchase note without a store or product", "user", pg.UserKey, "platform", pg.Platform, "product", pg.ProductID)
		g.forgetPending(ctx, pg)
		return false, nil
	}
	var out IAPResult
	err := g.cfg.Router.Tx(ctx, pg.UserKey, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		out, err = g.redeemAndGrant(ctx, tx, pg.UserKey, store, pg.Receipt, pg.ClientVersion, product, pg.RequestID)
		return err
	})
	if err != nil {
		if definitive(err) {
			g.log.Warn("game: purchase note refused", "user", pg.UserKey, "err", err)
			g.forgetPending(ctx, pg)
			return false, nil
		}
		return false, shard.ClassifyError(err)
	}
	g.forgetPending(ctx, pg)
	if out.Granted {
		g.log.Info("game: noted purchase granted", "user", pg.UserKey, "store", out.Store, "transaction", out.TransactionID, "request", pg.RequestID)
	}
	return out.Granted, nil
}
