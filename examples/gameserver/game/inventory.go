package game

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

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

// lockPlayer locks userKey's player row in tx and returns its balances.
// Every transaction of the game that writes several tables takes that
// lock first, so they never deadlock on MySQL; the balances it returns
// stay true until tx ends, so apply needs no second read. (shop.buy's
// lockApply does both in one statement on MariaDB.)
func (g *Game) lockPlayer(ctx context.Context, tx *sql.Tx, userKey int64) (balances, error) {
	var b balances
	err := tx.QueryRowContext(ctx, "SELECT gold, gems, exp FROM players WHERE user_key = ?"+g.sql.ForUpdate(), userKey).Scan(&b.Gold, &b.Gems, &b.Exp)
	if errors.Is(err, sql.ErrNoRows) {
		return b, errNoPlayer()
	}
	if err != nil {
		return b, fmt.Errorf("game: read balances of %d: %w", userKey, err)
	}
	return b, nil
}

// ledgerRow is one ledger row of a change, with the change's reason,
// request id and time.
type ledgerRow struct {
	Currency     string
	Delta, After int64
}

// apply makes c to userKey's player, whose row tx locked with lockPlayer
// and whose balances were then b, and writes one ledger row per currency or
// item it changes, then the extra rows (reason and request id on each). A
// currency that would go negative is CodeNotEnoughGold /
// CodeNotEnoughGems, before anything is written, so the refusal can be
// stored as a definitive answer. It returns the balances after c.
//
// Round trips are what a command costs on MySQL, so apply sends at most
// four statements, however many items c gives: the player row's UPDATE,
// one multi-row upsert of the items (which returns their new counts, except
// on MySQL for two items or more: then one read of them, see grantItems),
// and one multi-row INSERT of all the ledger rows (see record).
func (g *Game) apply(ctx context.Context, tx *sql.Tx, userKey int64, b balances, c change, reason, requestID string, extra ...ledgerRow) (balances, error) {
	if err := checkGrant(c); err != nil {
		return b, err
	}
	if b.Gems+c.Gems < 0 {
		return b, errNotEnoughGems()
	}
	if b.Gold+c.Gold < 0 {
		return b, errNotEnoughGold()
	}
	if c.Gold != 0 || c.Gems != 0 || c.Exp != 0 {
		b.Gold, b.Gems, b.Exp = b.Gold+c.Gold, b.Gems+c.Gems, b.Exp+c.Exp
		if _, err := tx.ExecContext(shard.Deferred(ctx), "UPDATE players SET gold = ?, gems = ?, exp = ? WHERE user_key = ?", b.Gold, b.Gems, b.Exp, userKey); err != nil {
			return b, fmt.Errorf("game: update balances of %d: %w", userKey, err)
		}
	}
	return b, g.record(ctx, tx, userKey, b, c, reason, requestID, extra...)
}

// checkGrant checks that c's items are grants (callers validate them: a
// count that is not is a programming error).
func checkGrant(c change) error {
	for _, it := range c.Items {
		if it.Count <= 0 {
			return fmt.Errorf("game: item %q count %d is not a grant", it.ItemID, it.Count)
		}
	}
	return nil
}

// noPlayer is the created_at of the placeholder row lockApply's upsert
// inserts for a player that does not exist (real rows have a time >= 0).
const noPlayer = -1

// lockApply is lockPlayer followed by apply, for a command whose change
// needs nothing read in between (shop.buy). On MariaDB the lock, the
// update and the read of the balances after it are one statement, an
// upsert of the player row that returns them:
//
//	INSERT INTO players … VALUES (user_key, placeholder) ON DUPLICATE KEY UPDATE
//	gold = gold + ?, gems = gems + ?, exp = exp + ? RETURNING gold, gems, exp, created_at
//
// (no MySQL equivalent: there lockPlayer and apply, one more statement).
// The duplicate takes the row's exclusive lock as SELECT … FOR UPDATE
// does. Its refusals write nothing in the end, as apply's, at one more
// statement each: a currency gone negative is put back (an UPDATE of the
// locked row) and answered CodeNotEnoughGems / CodeNotEnoughGold; a
// placeholder row (the player does not exist) is deleted and answered
// CodeNoPlayer.
func (g *Game) lockApply(ctx context.Context, tx *sql.Tx, userKey int64, c change, reason, requestID string) (balances, error) {
	maria, err := g.isMariaDB(ctx, tx)
	if err != nil {
		return balances{}, err
	}
	if !maria {
		b, err := g.lockPlayer(ctx, tx, userKey)
		if err != nil {
			return b, err
		}
		return g.apply(ctx, tx, userKey, b, c, reason, requestID)
	}
	if err := checkGrant(c); err != nil {
		return balances{}, err
	}
	var b balances
	var createdAt int64
	err = tx.QueryRowContext(ctx, "INSERT INTO players (user_key, name, gold, gems, exp, stamina, stamina_at, created_at) VALUES (?, '', 0, 0, 0, 0, 0, ?)"+
		" ON DUPLICATE KEY UPDATE gold = gold + ?, gems = gems + ?, exp = exp + ? RETURNING gold, gems, exp, created_at",
		userKey, noPlayer, c.Gold, c.Gems, c.Exp).Scan(&b.Gold, &b.Gems, &b.Exp, &createdAt)
	if err != nil {
		return b, fmt.Errorf("game: update balances of %d: %w", userKey, err)
	}
	if createdAt == noPlayer {
		if _, err := tx.ExecContext(ctx, "DELETE FROM players WHERE user_key = ? AND created_at = ?", userKey, noPlayer); err != nil {
			return b, fmt.Errorf("game: no player %d: %w", userKey, err)
		}
		return b, errNoPlayer()
	}
	if b.Gems < 0 || b.Gold < 0 {
		if _, err := tx.ExecContext(ctx, "UPDATE players SET gold = gold - ?, gems = gems - ?, exp = exp - ? WHERE user_key = ?", c.Gold, c.Gems, c.Exp, userKey); err != nil {
			return b, fmt.Errorf("game: update balances of %d: %w", userKey, err)
		}
		if b.Gems < 0 {
			return b, errNotEnoughGems()
		}
		return b, errNotEnoughGold()
	}
	return b, g.record(ctx, tx, userKey, b, c, reason, requestID)
}

// record writes what apply or lockApply changed after the player row,
// whose balances are now b: c's items (grantItems) and one multi-row
// INSERT of the ledger rows, in the order gems, gold, the items, the extra
// rows (so the ledger's ids keep that order).
func (g *Game) record(ctx context.Context, tx *sql.Tx, userKey int64, b balances, c change, reason, requestID string, extra ...ledgerRow) error {
	rows := make([]ledgerRow, 0, 2+len(c.Items)+len(extra))
	if c.Gems != 0 {
		rows = append(rows, ledgerRow{"gems", c.Gems, b.Gems})
	}
	if c.Gold != 0 {
		rows = append(rows, ledgerRow{"gold", c.Gold, b.Gold})
	}
	if len(c.Items) > 0 {
		have, err := g.grantItems(ctx, tx, userKey, c.Items)
		if err != nil {
			return err
		}
		// Each item's row: its count after this grant. An item listed
		// twice gets the count after each of its grants (walk back from
		// the final count).
		after := make([]int64, len(c.Items))
		for i := len(c.Items) - 1; i >= 0; i-- {
			it := c.Items[i]
			after[i] = have[it.ItemID]
			have[it.ItemID] -= it.Count
		}
		for i, it := range c.Items {
			rows = append(rows, ledgerRow{"item:" + it.ItemID, it.Count, after[i]})
		}
	}
	rows = append(rows, extra...)
	if len(rows) == 0 {
		return nil
	}
	const cols = 7
	q := make([]byte, 0, 96+len(rows)*24)
	q = append(q, "INSERT INTO ledger (user_key, currency, delta, balance_after, reason, request_id, at) VALUES "...)
	args := make([]any, 0, len(rows)*cols)
	now := g.cfg.Now().UnixMilli()
	for i, r := range rows {
		if i > 0 {
			q = append(q, ", "...)
		}
		q = append(q, "(?, ?, ?, ?, ?, ?, ?)"...)
		args = append(args, userKey, r.Currency, r.Delta, r.After, reason, requestID, now)
	}
	// Deferred (shard.Deferred): sent with the next statement or the
	// COMMIT; an error fails the commit.
	if _, err := tx.ExecContext(shard.Deferred(ctx), string(q), args...); err != nil {
		return fmt.Errorf("game: ledger of %d: %w", userKey, err)
	}
	return nil
}

// grantItems adds items to userKey's inventory in tx and returns the new
// count of each, in one statement where the dialect allows:
//
//   - SQLite, and MariaDB for several items: the upsert (see addItemsSQL)
//     with RETURNING item_id, count (on MariaDB an updated row returns its
//     new values).
//   - MySQL and MariaDB, one item: the upsert sets the count through
//     LAST_INSERT_ID(expr), whose value the server's OK packet carries as
//     the statement's insert id (Result.LastInsertId), so the new count
//     needs no read; a new row (1 row affected) has the count granted.
//     (An OK packet is less for both sides than RETURNING's result set.)
//   - MySQL, several items (no RETURNING): the multi-row upsert, then one
//     read of their counts. The rows are ours (locked by the upsert), so
//     the plain read sees the counts just written. A server that answers
//     no insert id for a single item's update (id 0) gets that read too.
func (g *Game) grantItems(ctx context.Context, tx *sql.Tx, userKey int64, items []ItemCount) (map[string]int64, error) {
	args := make([]any, 0, 3*len(items))
	for _, it := range items {
		args = append(args, userKey, it.ItemID, it.Count)
	}
	returning := g.sql != shard.DialectMySQL
	if !returning && len(items) > 1 {
		var err error
		if returning, err = g.isMariaDB(ctx, tx); err != nil {
			return nil, err
		}
	}
	if returning {
		rows, err := tx.QueryContext(ctx, addItemsSQL(g.sql, len(items))+" RETURNING item_id, count", args...)
		if err != nil {
			return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
		}
		return scanCounts(rows, userKey, items)
	}
	r, err := tx.ExecContext(ctx, addItemsSQL(g.sql, len(items)), args...)
	if err != nil {
		return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
	}
	if len(items) == 1 {
		n, err := r.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
		}
		id, err := r.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
		}
		switch {
		case n == 1: // inserted: the count granted
			return map[string]int64{items[0].ItemID: items[0].Count}, nil
		case id > 0: // updated: the new count, LAST_INSERT_ID's argument
			return map[string]int64{items[0].ItemID: id}, nil
		}
	}
	ids := make([]any, 0, 1+len(items))
	ids = append(ids, userKey)
	for _, it := range items {
		ids = append(ids, it.ItemID)
	}
	rows, err := tx.QueryContext(ctx, "SELECT item_id, count FROM inventory WHERE user_key = ? AND item_id IN (?"+strings.Repeat(", ?", len(items)-1)+")", ids...)
	if err != nil {
		return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
	}
	return scanCounts(rows, userKey, items)
}

// scanCounts reads rows of (item_id, count), closes them, and checks that
// every item of items is there. An item with several rows (listed twice in
// a grant: RETURNING gives a row per upsert, in no set order) gets the
// largest, its count after the last one: grants only add.
func scanCounts(rows *sql.Rows, userKey int64, items []ItemCount) (map[string]int64, error) {
	defer rows.Close()
	have := make(map[string]int64, len(items))
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
		}
		if n > have[id] {
			have[id] = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("game: inventory of %d: %w", userKey, err)
	}
	for _, it := range items {
		if _, ok := have[it.ItemID]; !ok { // the upsert wrote it: cannot happen
			return nil, fmt.Errorf("game: inventory of %d: item %q not found after adding it", userKey, it.ItemID)
		}
	}
	return have, nil
}

// addItemsSQL is the statement that adds counts to n of a player's item
// rows, creating the rows the player has none of (arguments: user key,
// item id, count, for each item).
//
// It is one upsert, not a locking read followed by an insert: on InnoDB
// (REPEATABLE READ) a SELECT … FOR UPDATE of a row that does not exist yet
// locks the gap before the next row of the primary key, and the players of
// neighbouring user keys getting their first rows of an item lock that same
// gap; their INSERTs into it then wait on each other, and MariaDB kills one
// as a deadlock (error 1213). An upsert takes no gap lock a neighbour could
// hold: a new row takes an insert intention lock, an existing one (a
// duplicate primary key) an exclusive lock on that record alone.
func addItemsSQL(d sqlDialect, n int) string {
	insert := "INSERT INTO inventory (user_key, item_id, count) VALUES (?, ?, ?)" + strings.Repeat(", (?, ?, ?)", n-1)
	if d == shard.DialectMySQL {
		if n == 1 { // the new count is the statement's insert id (grantItems)
			return insert + " ON DUPLICATE KEY UPDATE count = LAST_INSERT_ID(count + VALUES(count))"
		}
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
