package game

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/protocol"
)

// CmdShopBuyIAP is the in-app purchase command (see the package doc).
const CmdShopBuyIAP = "shop.buy_iap"

// In-app purchase result codes.
const (
	// CodeUnknownProduct: the data version has no product with that id.
	CodeUnknownProduct = protocol.CodeGameBase + 14
	// CodeWrongProduct: the receipt verified, but for another product
	// than the one named; nothing is granted (send the receipt again with
	// its own product id).
	CodeWrongProduct = protocol.CodeGameBase + 15
)

// IAPConfig configures shop.buy_iap (Config.IAP).
type IAPConfig struct {
	// Redeemer verifies receipts and redeems each store transaction once
	// across every game database: build it on an anticheat.SQLStore in
	// the common database, with the store verifiers (anticheat.StoreVerifiers
	// of AppleVerifier and GoogleVerifier in production, DevVerifiers in
	// development). Required. Redeem runs inside the purchase's
	// transaction on the game database: on SQLite its store must be in
	// another file than any game database (the server's common.db), or it
	// would wait for that very transaction's write lock.
	Redeemer *anticheat.Redeemer
	// DevReceipts accepts receipts of the development format (DevVerifier).
	// Default false: a receipt starting with DevReceiptPrefix is refused
	// with protocol.CodeBadRequest and the message "dev receipts are
	// refused: the server is not in dev mode", before any verifier sees
	// it. Set it only on a development server (server Config.Dev).
	DevReceipts bool
	// Pending is the common database (the one of the Redeemer's store;
	// same dialect as Config.Dialect, with CommonMigrations applied) where
	// a purchase is noted before its receipt is redeemed and forgotten
	// once its grant committed: a redemption that committed while the
	// grant's transaction on the game database did not (the game database
	// died in between) is then granted at the player's next login
	// (GrantPending) or by a sweep (SweepPendingGrants), without waiting
	// for the client to send the receipt again — once: the purchases row,
	// keyed by store and transaction id, grants each transaction once
	// whoever gets there first. Nil: such a purchase is granted only when
	// the client sends it again.
	Pending *sql.DB
	// Write, when set, runs each write to Pending (a purchase's note, its
	// removal) given as fn: the game server passes the common database's
	// SQLite writer queue (shard.SQLDirectory.Write), so these writers
	// wait their turn there instead of in the driver's busy handler. Nil:
	// fn runs directly.
	Write func(ctx context.Context, fn func(ctx context.Context) error) error
}

// Platforms of shop.buy_iap and the receipt store each one means.
var iapStores = map[string]string{
	"ios": anticheat.StoreApple, "apple": anticheat.StoreApple,
	"android": anticheat.StoreGoogle, "google": anticheat.StoreGoogle,
}

// BuyIAP is shop.buy_iap's payload.
type BuyIAP struct {
	ProductID string `json:"product_id"`
	// Platform is "ios" (App Store: receipt is the signed transaction JWS)
	// or "android" (Google Play: receipt is the purchase's original JSON).
	Platform string `json:"platform"`
	Receipt  string `json:"receipt"`
}

// IAPResult is shop.buy_iap's answer.
type IAPResult struct {
	ProductID     string `json:"product_id"`
	Store         string `json:"store"`
	TransactionID string `json:"transaction_id"`
	// Granted is false when this store transaction was granted before by
	// another request of the same account (a store re-delivering an
	// unfinished transaction): nothing more was given. Either way the
	// client should finish the transaction with the store.
	Granted bool        `json:"granted"`
	Gems    int64       `json:"gems"`  // balance after
	Gold    int64       `json:"gold"`  // balance after
	Items   []ItemCount `json:"items"` // items given (empty when not granted)
	// PriceMicros and Currency are the product's list price times the
	// quantity, as recorded in the ledger.
	PriceMicros int64  `json:"price_micros"`
	Currency    string `json:"currency"`
}

// DevReceiptPrefix starts a development receipt (see DevVerifier).
const DevReceiptPrefix = "dev-receipt:"

// DevVerifier is the development receipt verifier: it accepts receipts of
// the form "dev-receipt:<transaction id>:<product id>" (transaction id 1..64
// bytes of letters, digits, '-' and '_') as a purchase of one unit of the
// product, environment "Dev", and refuses anything else with
// anticheat.ErrReceiptInvalid. Only for development servers: the game
// refuses such receipts unless IAPConfig.DevReceipts is set.
type DevVerifier struct{}

// Verify implements anticheat.Verifier.
func (DevVerifier) Verify(_ context.Context, _, receipt string) (anticheat.Purchase, error) {
	rest, ok := strings.CutPrefix(receipt, DevReceiptPrefix)
	txID, product, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || !devID(txID) || product == "" || len(product) > anticheat.MaxProductIDLen {
		return anticheat.Purchase{}, fmt.Errorf("game: dev receipt: %w", anticheat.ErrReceiptInvalid)
	}
	return anticheat.Purchase{TransactionID: "dev-" + txID, ProductID: product, Quantity: 1, Environment: "Dev"}, nil
}

func devID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// DevVerifiers returns DevVerifier for both stores, for a development
// server's Redeemer.
func DevVerifiers() anticheat.StoreVerifiers {
	return anticheat.StoreVerifiers{anticheat.StoreApple: DevVerifier{}, anticheat.StoreGoogle: DevVerifier{}}
}

// MaxIAPQuantity bounds the quantity of one store transaction.
const MaxIAPQuantity = 100

func (g *Game) buyIAP(ctx context.Context, req *protocol.Request, in BuyIAP) (IAPResult, error) {
	userKey, err := userOf(req)
	if err != nil {
		return IAPResult{}, err
	}
	if g.cfg.IAP == nil || g.cfg.IAP.Redeemer == nil {
		return IAPResult{}, protocol.Errorf(protocol.CodeForbidden, "in-app purchases are not configured on this server")
	}
	store, ok := iapStores[in.Platform]
	switch {
	case !ok:
		return IAPResult{}, badRequest("platform must be \"ios\" or \"android\"")
	case in.ProductID == "" || len(in.ProductID) > anticheat.MaxProductIDLen:
		return IAPResult{}, badRequest("product_id must be 1..%d bytes", anticheat.MaxProductIDLen)
	case in.Receipt == "" || len(in.Receipt) > anticheat.MaxReceiptLen:
		return IAPResult{}, badRequest("receipt must be 1..%d bytes", anticheat.MaxReceiptLen)
	case strings.HasPrefix(in.Receipt, DevReceiptPrefix) && !g.cfg.IAP.DevReceipts:
		return IAPResult{}, badRequest("dev receipts are refused: the server is not in dev mode")
	}
	product, ok := g.tables(ctx, req).Product(in.ProductID)
	if !ok {
		return IAPResult{}, protocol.Errorf(CodeUnknownProduct, "unknown product")
	}
	tx, err := txOf(ctx, CmdShopBuyIAP)
	if err != nil {
		return IAPResult{}, err
	}
	pg := pendingGrant{UserKey: userKey, Hash: receiptHash(in.Platform, in.Receipt), Platform: in.Platform, ProductID: in.ProductID,
		ClientVersion: req.Principal.ClientVersion, RequestID: req.RequestID, Receipt: in.Receipt}
	// Noted before the redemption, forgotten after the grant committed: a
	// note that stays is granted at the next login or by the sweep.
	if err := g.notePending(ctx, pg); err != nil {
		return IAPResult{}, err
	}
	out, err := g.redeemAndGrant(ctx, tx, userKey, store, in.Receipt, req.Principal.ClientVersion, product, req.RequestID)
	if err != nil {
		if definitive(err) {
			g.forgetPending(ctx, pg) // refused for good: nothing to grant later
		}
		return IAPResult{}, err
	}
	if g.pendingOn() {
		idempotency.AfterCommit(ctx, func(ctx context.Context) { g.forgetPending(ctx, pg) })
	}
	return out, nil
}

// redeemAndGrant verifies and redeems receipt for userKey, then grants
// product in tx unless this store transaction was granted before.
func (g *Game) redeemAndGrant(ctx context.Context, tx *sql.Tx, userKey int64, store, receipt, clientVersion string, product Product, requestID string) (IAPResult, error) {
	// Verify and bind the transaction to this account, globally (the
	// common database). Another account's transaction is receipt_used; a
	// verifier outage is unavailable (retryable: nothing was stored).
	red, err := g.cfg.IAP.Redeemer.Redeem(ctx, userKey, clientVersion, store, receipt)
	if err != nil {
		return IAPResult{}, err
	}
	p := red.Purchase
	if p.ProductID != product.ID {
		return IAPResult{}, protocol.Errorf(CodeWrongProduct, "the receipt is for another product")
	}
	qty := int64(max(p.Quantity, 1))
	if qty > MaxIAPQuantity {
		return IAPResult{}, badRequest("quantity above %d", MaxIAPQuantity)
	}
	out := IAPResult{ProductID: product.ID, Store: store, TransactionID: p.TransactionID,
		PriceMicros: product.PriceMicros * qty, Currency: product.Currency, Items: []ItemCount{}}
	// The player row first (the game's lock order), then the purchase row:
	// its primary key grants each transaction once, whether or not the
	// redemption above was this call's (a crash between the redemption's
	// commit and this transaction's leaves it redeemed and not granted; the
	// retry grants it here).
	b, err := g.lockPlayer(ctx, tx, userKey)
	if err != nil {
		return IAPResult{}, err
	}
	now := g.cfg.Now().UnixMilli()
	var purchasedAt int64
	if !p.PurchasedAt.IsZero() {
		purchasedAt = p.PurchasedAt.UnixMilli()
	}
	res, err := tx.ExecContext(ctx, g.sql.InsertIgnore()+
		" purchases (store, transaction_id, user_key, product_id, quantity, amount_micros, currency, environment, purchased_at, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		store, p.TransactionID, userKey, product.ID, qty, out.PriceMicros, product.Currency, p.Environment, purchasedAt, requestID, now)
	if err != nil {
		return IAPResult{}, fmt.Errorf("game: purchase of %d: %w", userKey, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return IAPResult{}, fmt.Errorf("game: purchase of %d: %w", userKey, err)
	} else if n == 0 {
		// Granted before, by another request: this answer rests on that
		// request's commit, which may be visible before it is durable. It
		// is sent only after this transaction, which writes the idempotency
		// key row and result, committed: later in the log, so the grant it
		// read is durable by then.
		out.Gems, out.Gold = b.Gems, b.Gold
		return out, nil
	}
	grant := change{Gems: product.Gems * qty}
	for _, it := range product.Items {
		grant.Items = append(grant.Items, ItemCount{ItemID: it.ItemID, Count: it.Count * qty})
	}
	// The payment: delta the amount paid, balance the account's total paid
	// in that currency; its ledger row goes in with the grant's, after them.
	var total int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(SUM(amount_micros), 0) FROM purchases WHERE user_key = ? AND currency = ?", userKey, product.Currency).Scan(&total); err != nil {
		return IAPResult{}, fmt.Errorf("game: payments of %d: %w", userKey, err)
	}
	pay := ledgerRow{Currency: PaymentCurrency(product.Currency), Delta: out.PriceMicros, After: total}
	if b, err = g.apply(ctx, tx, userKey, b, grant, "iap:"+product.ID, requestID, pay); err != nil {
		return IAPResult{}, err
	}
	out.Granted, out.Gems, out.Gold = true, b.Gems, b.Gold
	if len(grant.Items) > 0 {
		out.Items = grant.Items
	}
	return out, nil
}

// PaymentCurrency is the ledger currency of payments in an ISO 4217
// currency: "pay:<currency>", amounts in millionths.
func PaymentCurrency(iso string) string { return "pay:" + iso }

// Purchase is one granted in-app purchase (a purchases row).
type Purchase struct {
	Store         string    `json:"store"`
	TransactionID string    `json:"transaction_id"`
	UserKey       int64     `json:"user_key"`
	ProductID     string    `json:"product_id"`
	Quantity      int64     `json:"quantity"`
	AmountMicros  int64     `json:"amount_micros"`
	Currency      string    `json:"currency"`
	Environment   string    `json:"environment"`
	RequestID     string    `json:"request_id"`
	At            time.Time `json:"at"`
}

// Purchases returns the user's granted purchases, oldest first (for
// operators and tests).
func (g *Game) Purchases(ctx context.Context, userKey int64) ([]Purchase, error) {
	db, err := g.cfg.Router.DB(ctx, userKey)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, "SELECT store, transaction_id, user_key, product_id, quantity, amount_micros, currency, environment, request_id, at FROM purchases WHERE user_key = ? ORDER BY at, transaction_id", userKey)
	if err != nil {
		return nil, fmt.Errorf("game: purchases of %d: %w", userKey, err)
	}
	defer rows.Close()
	var out []Purchase
	for rows.Next() {
		var p Purchase
		var at int64
		if err := rows.Scan(&p.Store, &p.TransactionID, &p.UserKey, &p.ProductID, &p.Quantity, &p.AmountMicros, &p.Currency, &p.Environment, &p.RequestID, &at); err != nil {
			return nil, fmt.Errorf("game: purchases of %d: %w", userKey, err)
		}
		p.At = time.UnixMilli(at)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("game: purchases of %d: %w", userKey, err)
	}
	return out, nil
}
