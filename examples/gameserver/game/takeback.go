package game

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrNotEnough: a take-back asks for more than the player has. The error
// is a *ShortError naming the currency or item.
var ErrNotEnough = errors.New("game: the player has less than the take-back asks")

// ErrBadTakeBack: a take-back is malformed (no request id or operator,
// nothing to take, a count out of range, an item listed twice).
var ErrBadTakeBack = errors.New("game: bad take-back")

// ShortError is a take-back refused because the player has less of
// Currency ("gold", "gems" or "item:<id>") than it asks. It wraps
// ErrNotEnough.
type ShortError struct {
	Currency   string
	Have, Want int64
}

// Error names the currency or item, what the player has and what was
// asked.
func (e *ShortError) Error() string {
	return fmt.Sprintf("game: cannot take back %d %s: the player has %d", e.Want, e.Currency, e.Have)
}

// Unwrap returns ErrNotEnough.
func (e *ShortError) Unwrap() error { return ErrNotEnough }

// TakeBackReason prefixes the ledger rows' reason of a take-back; the
// operator's name follows it ("operator.takeback:ari").
const TakeBackReason = "operator.takeback:"

// TakeBack is an operator taking currency and items back from a player
// (a grant made by mistake, a refunded purchase, an exploit).
type TakeBack struct {
	// RequestID identifies the operator's request (a form's hidden
	// field): a take-back with a RequestID already used for the user
	// takes nothing again. 1..128 bytes.
	RequestID string
	// Operator is who takes back (1..64 bytes); the ledger's reason is
	// TakeBackReason + Operator.
	Operator string
	// Gold, Gems and Items are taken (each 0..MaxGrant, items 1..MaxGrant,
	// at most MaxGrantItems distinct, each once; something to take).
	Gold, Gems int64
	Items      []ItemCount
}

// TakeBackResult is what a take-back left.
type TakeBackResult struct {
	// Gold and Gems are the player's balances after it, Items the counts
	// after it of the items it named.
	Gold, Gems int64
	Items      []ItemCount
	// Repeated: the request id was used before; nothing was taken now
	// (the balances are the current ones).
	Repeated bool
}

func (tb TakeBack) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadTakeBack, fmt.Sprintf(format, args...))
	}
	switch {
	case tb.RequestID == "" || len(tb.RequestID) > 128:
		return bad("the request id must be 1..128 bytes")
	case tb.Operator == "" || len(tb.Operator) > 64:
		return bad("the operator must be 1..64 bytes")
	case tb.Gold < 0 || tb.Gold > MaxGrant || tb.Gems < 0 || tb.Gems > MaxGrant:
		return bad("gold and gems must be 0..%d", MaxGrant)
	case len(tb.Items) > MaxGrantItems:
		return bad("at most %d items", MaxGrantItems)
	case tb.Gold == 0 && tb.Gems == 0 && len(tb.Items) == 0:
		return bad("nothing to take back")
	}
	seen := map[string]bool{}
	for _, it := range tb.Items {
		if it.ItemID == "" || len(it.ItemID) > 64 {
			return bad("an item id must be 1..64 bytes")
		}
		if seen[it.ItemID] {
			return bad("item %q listed twice", it.ItemID)
		}
		seen[it.ItemID] = true
		if it.Count <= 0 || it.Count > MaxGrant {
			return bad("item %q count must be 1..%d", it.ItemID, MaxGrant)
		}
	}
	return nil
}

// TakeBack takes tb's currency and items from userKey's player in one
// transaction, with one ledger row each (negative delta, reason
// TakeBackReason + tb.Operator, request id tb.RequestID). It takes all or
// nothing: more than the player has of any of them is a *ShortError
// (ErrNotEnough) naming it, and nothing changes. A tb.RequestID the user
// saw before takes nothing again: the result says Repeated. A malformed
// tb wraps ErrBadTakeBack; no such player is CodeNoPlayer.
func (g *Game) TakeBack(ctx context.Context, userKey int64, tb TakeBack) (TakeBackResult, error) {
	if err := tb.check(); err != nil {
		return TakeBackResult{}, err
	}
	var res TakeBackResult
	err := g.cfg.Router.Tx(ctx, userKey, func(ctx context.Context, tx *sql.Tx) error {
		res = TakeBackResult{}
		b, err := g.lockPlayer(ctx, tx, userKey)
		if err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, g.sql.InsertIgnore()+" takebacks (user_key, request_id, operator, at) VALUES (?, ?, ?, ?)",
			userKey, tb.RequestID, tb.Operator, g.cfg.Now().UnixMilli())
		if err != nil {
			return fmt.Errorf("game: take-back of %d: %w", userKey, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return fmt.Errorf("game: take-back of %d: %w", userKey, err)
		}
		have, err := g.itemCounts(ctx, tx, userKey, tb.Items)
		if err != nil {
			return err
		}
		res.Gold, res.Gems = b.Gold, b.Gems
		if n == 0 { // done before
			res.Repeated = true
			for _, it := range tb.Items {
				res.Items = append(res.Items, ItemCount{ItemID: it.ItemID, Count: have[it.ItemID]})
			}
			return nil
		}
		if b.Gold < tb.Gold {
			return &ShortError{Currency: "gold", Have: b.Gold, Want: tb.Gold}
		}
		if b.Gems < tb.Gems {
			return &ShortError{Currency: "gems", Have: b.Gems, Want: tb.Gems}
		}
		for _, it := range tb.Items {
			if have[it.ItemID] < it.Count {
				return &ShortError{Currency: "item:" + it.ItemID, Have: have[it.ItemID], Want: it.Count}
			}
		}
		var rows []ledgerRow
		if tb.Gold != 0 || tb.Gems != 0 {
			res.Gold, res.Gems = b.Gold-tb.Gold, b.Gems-tb.Gems
			if _, err := tx.ExecContext(ctx, "UPDATE players SET gold = ?, gems = ? WHERE user_key = ?", res.Gold, res.Gems, userKey); err != nil {
				return fmt.Errorf("game: take-back of %d: %w", userKey, err)
			}
			if tb.Gems != 0 {
				rows = append(rows, ledgerRow{"gems", -tb.Gems, res.Gems})
			}
			if tb.Gold != 0 {
				rows = append(rows, ledgerRow{"gold", -tb.Gold, res.Gold})
			}
		}
		for _, it := range tb.Items {
			if _, err := tx.ExecContext(ctx, "UPDATE inventory SET count = count - ? WHERE user_key = ? AND item_id = ?", it.Count, userKey, it.ItemID); err != nil {
				return fmt.Errorf("game: take-back of %d: %w", userKey, err)
			}
			after := have[it.ItemID] - it.Count
			res.Items = append(res.Items, ItemCount{ItemID: it.ItemID, Count: after})
			rows = append(rows, ledgerRow{"item:" + it.ItemID, -it.Count, after})
		}
		return g.record(ctx, tx, userKey, balances{}, change{}, TakeBackReason+tb.Operator, tb.RequestID, rows...)
	})
	if err != nil {
		return TakeBackResult{}, fmt.Errorf("game: take back from %d: %w", userKey, err)
	}
	return res, nil
}

// itemCounts reads userKey's counts of items in tx (whose player row it
// locked): 0 for an item the player has no row of.
func (g *Game) itemCounts(ctx context.Context, tx *sql.Tx, userKey int64, items []ItemCount) (map[string]int64, error) {
	have := make(map[string]int64, len(items))
	if len(items) == 0 {
		return have, nil
	}
	args := []any{userKey}
	for _, it := range items {
		args = append(args, it.ItemID)
	}
	rows, err := tx.QueryContext(ctx, "SELECT item_id, count FROM inventory WHERE user_key = ? AND item_id IN (?"+strings.Repeat(", ?", len(items)-1)+")", args...)
	if err != nil {
		return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
		}
		have[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
	}
	return have, nil
}
