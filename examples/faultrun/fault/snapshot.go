package fault

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/madang-io/madang/protocol"
)

// loadSnapshot reads the rows AuditRun checks from the common database
// common and its game databases (<common>_gamedbNN) on db.
func loadSnapshot(ctx context.Context, db *sql.DB, common string) (*Snapshot, error) {
	s := &Snapshot{Players: map[int64]PlayerRow{}, Inventory: map[int64]map[string]int64{}, Keys: map[KeyID]KeyRow{}}
	var gameDBs []string
	rows, err := db.QueryContext(ctx, "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE ? ORDER BY schema_name",
		strings.ReplaceAll(common, "_", `\_`)+`\_gamedb%`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, err
		}
		gameDBs = append(gameDBs, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(gameDBs) == 0 {
		return nil, fmt.Errorf("no game databases %s_gamedbNN", common)
	}
	q := func(query string, scan func(*sql.Rows) error) error {
		rows, err := db.QueryContext(ctx, query)
		if err != nil {
			return fmt.Errorf("%s: %w", query, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("%s: %w", query, err)
			}
		}
		return rows.Err()
	}
	for _, g := range gameDBs {
		err := q("SELECT user_key, gold, gems FROM `"+g+"`.players", func(r *sql.Rows) error {
			var u int64
			var p PlayerRow
			err := r.Scan(&u, &p.Gold, &p.Gems)
			s.Players[u] = p
			return err
		})
		if err == nil {
			err = q("SELECT user_key, item_id, count FROM `"+g+"`.inventory", func(r *sql.Rows) error {
				var u, n int64
				var item string
				err := r.Scan(&u, &item, &n)
				if s.Inventory[u] == nil {
					s.Inventory[u] = map[string]int64{}
				}
				s.Inventory[u][item] = n
				return err
			})
		}
		if err == nil {
			err = q("SELECT id, user_key, currency, delta, balance_after, reason, request_id FROM `"+g+"`.ledger ORDER BY id", func(r *sql.Rows) error {
				var l LedgerRow
				err := r.Scan(&l.ID, &l.UserKey, &l.Currency, &l.Delta, &l.BalanceAfter, &l.Reason, &l.RequestID)
				s.Ledger = append(s.Ledger, l)
				return err
			})
		}
		if err == nil {
			err = q("SELECT store, transaction_id, user_key, request_id FROM `"+g+"`.purchases", func(r *sql.Rows) error {
				var p PurchaseRow
				err := r.Scan(&p.Store, &p.TransactionID, &p.UserKey, &p.RequestID)
				s.Purchases = append(s.Purchases, p)
				return err
			})
		}
		if err == nil {
			err = q("SELECT user_key, command, request_id, done, code FROM `"+g+"`.idempotency_keys", func(r *sql.Rows) error {
				var k KeyID
				var done int
				var code int64
				err := r.Scan(&k.UserKey, &k.Command, &k.RID, &done, &code)
				s.Keys[k] = KeyRow{Done: done == 1, Code: protocol.Code(code)}
				return err
			})
		}
		if err == nil {
			err = q("SELECT id, user_key, claimed_at, gold, gems, items FROM `"+g+"`.mails", func(r *sql.Rows) error {
				var m MailRow
				var items string
				if err := r.Scan(&m.ID, &m.UserKey, &m.ClaimedAt, &m.Gold, &m.Gems, &items); err != nil {
					return err
				}
				s.Mails = append(s.Mails, m)
				return json.Unmarshal([]byte(items), &s.Mails[len(s.Mails)-1].Items)
			})
		}
		if err != nil {
			return nil, fmt.Errorf("game database %s: %w", g, err)
		}
	}
	err = q("SELECT store, transaction_id, user_key FROM `"+common+"`.anticheat_redemptions", func(r *sql.Rows) error {
		var red Redemption
		err := r.Scan(&red.Store, &red.TransactionID, &red.UserKey)
		s.Redemptions = append(s.Redemptions, red)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("common database: %w", err)
	}
	return s, nil
}
