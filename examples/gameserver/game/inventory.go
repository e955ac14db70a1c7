package game

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// ItemDef is an item a player can own (a consumable, a key, equipment).
type ItemDef struct {
	ID    string `json:"item_id"`
	Title string `json:"title"`
}

// ItemCount is a number of one item: in the inventory, in a shop item's
// grant or in a mail's attachments.
type ItemCount struct {
	ItemID string `json:"item_id"`
	Count  int64  `json:"count"`
}

// Limits on amounts, checked wherever a grant comes in (mail, shop data).
const (
	// MaxGrant bounds one grant of gold, gems, exp or one item's count (a
	// mail attachment, a reward): 1,000,000,000.
	MaxGrant = 1_000_000_000
	// MaxGrantItems bounds the distinct items in one grant (10).
	MaxGrantItems = 10
)

// ItemDefs returns the items that exist. (Static game data tables come in a
// later slice; until then the items are this fixed list.)
func ItemDefs() []ItemDef {
	return []ItemDef{
		{ID: "potion", Title: "Healing potion"},
		{ID: "elixir", Title: "Stamina elixir"},
		{ID: "key_bronze", Title: "Bronze key"},
	}
}

// ItemDefByID returns the item with id.
func ItemDefByID(id string) (ItemDef, bool) {
	for _, it := range ItemDefs() {
		if it.ID == id {
			return it, true
		}
	}
	return ItemDef{}, false
}

// ErrUnknownItem is the error class of a grant naming an item that the game
// data checked against does not have (result code CodeUnknownItem).
var ErrUnknownItem = errors.New("game: unknown item")

// checkItems validates a grant's items against the item table of t: known
// ids (else CodeUnknownItem wrapping ErrUnknownItem), each once, counts in
// 1..MaxGrant, at most MaxGrantItems entries (else CodeBadRequest).
func checkItems(items []ItemCount, t *Tables) error {
	if len(items) > MaxGrantItems {
		return badRequest("at most %d items", MaxGrantItems)
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if _, ok := t.Item(it.ItemID); !ok {
			return &protocol.Error{Code: CodeUnknownItem, Err: ErrUnknownItem,
				Message: fmt.Sprintf("item %q is not in game data version %q", it.ItemID, t.Version)}
		}
		if seen[it.ItemID] {
			return badRequest("item %q listed twice", it.ItemID)
		}
		seen[it.ItemID] = true
		if it.Count <= 0 || it.Count > MaxGrant {
			return badRequest("item %q count must be 1..%d", it.ItemID, MaxGrant)
		}
	}
	return nil
}

// change is what one game action does to a player: currency deltas (which
// may be negative: a price), exp and items gained (never negative).
type change struct {
	Gold, Gems, Exp int64
	Items           []ItemCount
}

// balances are a player's values after a change.
type balances struct {
	Gold, Gems, Exp int64
}

// apply makes c to userKey's player in tx and writes one ledger row per
// currency or item it changes (reason and request id on each). A currency
// that would go negative is CodeNotEnoughGold / CodeNotEnoughGems, before
// anything is written, so the refusal can be stored as a definitive answer.
// It locks the player row first: every transaction of the game that writes
// several tables takes that lock first, so they never deadlock on MySQL.
func (g *Game) apply(ctx context.Context, tx *sql.Tx, userKey int64, c change, reason, requestID string) (balances, error) {
	var b balances
	err := tx.QueryRowContext(ctx, "SELECT gold, gems, exp FROM players WHERE user_key = ?"+g.sql.ForUpdate(), userKey).Scan(&b.Gold, &b.Gems, &b.Exp)
	if errors.Is(err, sql.ErrNoRows) {
		return b, errNoPlayer()
	}
	if err != nil {
		return b, fmt.Errorf("game: read balances of %d: %w", userKey, err)
	}
	for _, it := range c.Items {
		if it.Count <= 0 { // callers validate; this is a programming error
			return b, fmt.Errorf("game: item %q count %d is not a grant", it.ItemID, it.Count)
		}
	}
	if b.Gems+c.Gems < 0 {
		return b, errNotEnoughGems()
	}
	if b.Gold+c.Gold < 0 {
		return b, errNotEnoughGold()
	}
	if c.Gold == 0 && c.Gems == 0 && c.Exp == 0 && len(c.Items) == 0 {
		return b, nil
	}
	b.Gold, b.Gems, b.Exp = b.Gold+c.Gold, b.Gems+c.Gems, b.Exp+c.Exp
	if _, err := tx.ExecContext(ctx, "UPDATE players SET gold = ?, gems = ?, exp = ? WHERE user_key = ?", b.Gold, b.Gems, b.Exp, userKey); err != nil {
		return b, fmt.Errorf("game: update balances of %d: %w", userKey, err)
	}
	now := g.cfg.Now().UnixMilli()
	ledger := func(currency string, delta, after int64) error {
		if delta == 0 {
			return nil
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO ledger (user_key, currency, delta, balance_after, reason, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			userKey, currency, delta, after, reason, requestID, now)
		if err != nil {
			return fmt.Errorf("game: ledger of %d: %w", userKey, err)
		}
		return nil
	}
	if err := ledger("gems", c.Gems, b.Gems); err != nil {
		return b, err
	}
	if err := ledger("gold", c.Gold, b.Gold); err != nil {
		return b, err
	}
	addItem := addItemSQL(g.sql)
	for _, it := range c.Items {
		// Add first, read after: see addItemSQL. The row is ours (locked by
		// the upsert), so the plain read sees the count just written.
		if _, err := tx.ExecContext(ctx, addItem, userKey, it.ItemID, it.Count); err != nil {
			return b, fmt.Errorf("game: inventory of %d: %w", userKey, err)
		}
		var have int64
		err := tx.QueryRowContext(ctx, "SELECT count FROM inventory WHERE user_key = ? AND item_id = ?", userKey, it.ItemID).Scan(&have)
		if err != nil {
			return b, fmt.Errorf("game: inventory of %d: %w", userKey, err)
		}
		if err := ledger("item:"+it.ItemID, it.Count, have); err != nil {
			return b, err
		}
	}
	return b, nil
}

// addItemSQL is the statement that adds a count to a player's item row,
// creating the row when the player has none (arguments: user key, item id,
// count).
//
// It is one upsert, not a locking read followed by an insert: on InnoDB
// (REPEATABLE READ) a SELECT … FOR UPDATE of a row that does not exist yet
// locks the gap before the next row of the primary key, and the players of
// neighbouring user keys getting their first rows of an item lock that same
// gap; their INSERTs into it then wait on each other, and MariaDB kills one
// as a deadlock (error 1213). An upsert takes no gap lock a neighbour could
// hold: a new row takes an insert intention lock, an existing one (a
// duplicate primary key) an exclusive lock on that record alone.
func addItemSQL(d sqlDialect) string {
	const insert = "INSERT INTO inventory (user_key, item_id, count) VALUES (?, ?, ?)"
	if d == shard.DialectMySQL {
		return insert + " ON DUPLICATE KEY UPDATE count = count + VALUES(count)"
	}
	return insert + " ON CONFLICT(user_key, item_id) DO UPDATE SET count = count + excluded.count"
}

// inventory returns the user's items with a positive count, by item id.
func inventory(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, userKey int64) ([]ItemCount, error) {
	rows, err := q.QueryContext(ctx, "SELECT item_id, count FROM inventory WHERE user_key = ? AND count > 0", userKey)
	if err != nil {
		return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
	}
	defer rows.Close()
	out := []ItemCount{}
	for rows.Next() {
		var it ItemCount
		if err := rows.Scan(&it.ItemID, &it.Count); err != nil {
			return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ItemID < out[j].ItemID })
	return out, nil
}
