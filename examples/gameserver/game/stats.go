package game

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/madang-io/madang/shard"
)

// Revenue is the payments in one ISO 4217 currency over a period, summed
// over every game database.
type Revenue struct {
	Currency     string `json:"currency"`      // ISO 4217, e.g. "USD"
	AmountMicros int64  `json:"amount_micros"` // list prices paid, in millionths
	Payments     int64  `json:"payments"`      // payment ledger rows
}

// RevenueBetween sums the payment ledger rows (currency "pay:<ISO 4217>",
// delta the list price in millionths) written in [from, to), per currency,
// over every game database (the router's ForEach, so every database must
// answer), ordered by currency. A period without payments gives an empty,
// non-nil slice. The query uses the ledger's index on its time.
func (g *Game) RevenueBetween(ctx context.Context, from, to time.Time) ([]Revenue, error) {
	var mu sync.Mutex
	sum := map[string]*Revenue{}
	err := g.cfg.Router.ForEach(ctx, func(ctx context.Context, _ shard.Database, db *sql.DB) error {
		rows, err := db.QueryContext(ctx, "SELECT currency, COALESCE(SUM(delta), 0), COUNT(*) FROM ledger WHERE at >= ? AND at < ? AND currency LIKE 'pay:%' GROUP BY currency",
			from.UnixMilli(), to.UnixMilli())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var cur string
			var amount, n int64
			if err := rows.Scan(&cur, &amount, &n); err != nil {
				return err
			}
			iso, ok := strings.CutPrefix(cur, "pay:")
			if !ok {
				continue
			}
			mu.Lock()
			r := sum[iso]
			if r == nil {
				r = &Revenue{Currency: iso}
				sum[iso] = r
			}
			r.AmountMicros += amount
			r.Payments += n
			mu.Unlock()
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("game: revenue: %w", err)
	}
	out := make([]Revenue, 0, len(sum))
	for _, r := range sum {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Currency < out[j].Currency })
	return out, nil
}
