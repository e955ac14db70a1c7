package anticheat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/protocol"
)

// Store names used by the verifiers in this package.
const (
	StoreApple  = "apple"
	StoreGoogle = "google"
)

// MaxReceiptLen bounds a receipt (a JWS, a token or a publisher's blob).
const MaxReceiptLen = 64 << 10

// Purchase is a verified purchase.
type Purchase struct {
	Store string // the store the receipt came from
	// TransactionID is unique per store: Apple's transactionId, Google's
	// orderId (the purchase token for test purchases without one), or the
	// publisher server's id. Redemption is keyed on it.
	TransactionID string
	ProductID     string    // the store's product id
	Quantity      int       // at least 1
	PurchasedAt   time.Time // when the store says it was bought
	// Environment is the store's ("Production", "Sandbox"; "Test" for
	// Google test purchases), when it says.
	Environment string
}

// Verifier verifies a receipt from store and returns the purchase it
// proves. Failures match ErrReceiptInvalid, ErrReceiptWrongApp,
// ErrReceiptWrongEnvironment, ErrReceiptNotPurchased, ErrReceiptRevoked,
// ErrUnknownStore or ErrVerifierUnavailable.
type Verifier interface {
	Verify(ctx context.Context, store, receipt string) (Purchase, error)
}

// StoreVerifiers routes each store to its own Verifier.
type StoreVerifiers map[string]Verifier

var _ Verifier = StoreVerifiers(nil)

// Verify implements Verifier.
func (m StoreVerifiers) Verify(ctx context.Context, store, receipt string) (Purchase, error) {
	v, ok := m[store]
	if !ok {
		return Purchase{}, newErr(ErrUnknownStore, "%q", truncate(store, MaxStoreLen))
	}
	return v.Verify(ctx, store, receipt)
}

// HTTPVerifierConfig configures an HTTPVerifier.
type HTTPVerifierConfig struct {
	// URL of the publisher's receipt server. Required.
	URL string
	// Client sends the requests. Default: a client with a 10 s timeout.
	Client *http.Client
	// Header is added to every request (an API key).
	Header http.Header
}

// HTTPVerifier asks a publisher's receipt server, as the talk's game did.
// It POSTs {"store": ..., "receipt": ...} as JSON and expects 200 with
//
//	{"ok": true, "transaction_id": "...", "product_id": "...",
//	 "quantity": 1, "purchased_at": <Unix ms>, "environment": "..."}
//
// or {"ok": false, "error": "..."} for a receipt it rejects. Any 4xx is a
// rejection too; 5xx and transport errors are ErrVerifierUnavailable.
// Replies are read up to 64 KiB.
type HTTPVerifier struct {
	cfg HTTPVerifierConfig
}

var _ Verifier = (*HTTPVerifier)(nil)

// NewHTTPVerifier returns a verifier for cfg.URL.
func NewHTTPVerifier(cfg HTTPVerifierConfig) (*HTTPVerifier, error) {
	if cfg.URL == "" {
		return nil, errors.New("anticheat: HTTPVerifier needs a URL")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	return &HTTPVerifier{cfg: cfg}, nil
}

// Verify implements Verifier.
func (v *HTTPVerifier) Verify(ctx context.Context, store, receipt string) (Purchase, error) {
	if receipt == "" || len(receipt) > MaxReceiptLen {
		return Purchase{}, newErr(ErrReceiptInvalid, "receipt of %d bytes", len(receipt))
	}
	body, _ := json.Marshal(struct {
		Store   string `json:"store"`
		Receipt string `json:"receipt"`
	}{store, receipt})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return Purchase{}, fmt.Errorf("anticheat: receipt server request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range v.cfg.Header {
		req.Header[k] = vs
	}
	resp, err := v.cfg.Client.Do(req)
	if err != nil {
		return Purchase{}, newErr(ErrVerifierUnavailable, "receipt server: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Purchase{}, newErr(ErrVerifierUnavailable, "receipt server reply: %w", err)
	}
	switch {
	case resp.StatusCode >= 500:
		return Purchase{}, newErr(ErrVerifierUnavailable, "receipt server: HTTP %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return Purchase{}, newErr(ErrReceiptInvalid, "receipt server: HTTP %d", resp.StatusCode)
	}
	var r struct {
		OK            bool   `json:"ok"`
		Error         string `json:"error"`
		TransactionID string `json:"transaction_id"`
		ProductID     string `json:"product_id"`
		Quantity      int    `json:"quantity"`
		PurchasedAt   int64  `json:"purchased_at"`
		Environment   string `json:"environment"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return Purchase{}, newErr(ErrVerifierUnavailable, "receipt server reply: %w", err)
	}
	if !r.OK {
		return Purchase{}, newErr(ErrReceiptInvalid, "receipt server: %s", truncate(r.Error, 200))
	}
	if r.TransactionID == "" {
		return Purchase{}, newErr(ErrReceiptInvalid, "receipt server returned no transaction id")
	}
	if r.Quantity <= 0 {
		r.Quantity = 1
	}
	return Purchase{Store: store, TransactionID: r.TransactionID, ProductID: r.ProductID, Quantity: r.Quantity,
		PurchasedAt: fromMs(r.PurchasedAt), Environment: r.Environment}, nil
}

// RedeemerConfig configures a Redeemer.
type RedeemerConfig struct {
	// Verifier verifies receipts. Required.
	Verifier Verifier
	// Redemptions records redeemed transactions. Required; keep it in the
	// common database so it is global.
	Redemptions Redemptions
	// Monitor, if set, records rejected receipts and receipts of other
	// accounts as KindReceipt verdicts.
	Monitor *Monitor
	// OtherAccountCode is the result code for a receipt another account
	// already redeemed. Default protocol.CodeReceiptUsed.
	OtherAccountCode protocol.Code
	// Now returns the current time; nil means time.Now. It dates
	// redemptions.
	Now func() time.Time
}

// Redeemer verifies receipts and redeems each transaction once, globally.
type Redeemer struct {
	cfg RedeemerConfig
}

// Redeemed is the result of a successful Redeem.
type Redeemed struct {
	Purchase Purchase // the verified purchase
	// First is true when this call redeemed the transaction, false when the
	// same account had redeemed it before (a retry: don't grant again).
	First bool
}

// NewRedeemer returns a redeemer.
func NewRedeemer(cfg RedeemerConfig) (*Redeemer, error) {
	if cfg.Verifier == nil || cfg.Redemptions == nil {
		return nil, errors.New("anticheat: Redeemer needs a Verifier and Redemptions")
	}
	if cfg.OtherAccountCode == 0 {
		cfg.OtherAccountCode = protocol.CodeReceiptUsed
	}
	cfg.Now = clock.OrNow(cfg.Now)
	return &Redeemer{cfg: cfg}, nil
}

// Redeem verifies receipt and binds its transaction to userKey. Grant the
// product when First is true (in the same request, idempotently: a retry
// of the same request gets First false). A transaction redeemed by another
// account is ErrReceiptOtherAccount with the configured code. Concurrent
// calls with one receipt grant once.
func (r *Redeemer) Redeem(ctx context.Context, userKey int64, clientVersion, store, receipt string) (Redeemed, error) {
	p, err := r.cfg.Verifier.Verify(ctx, store, receipt)
	if err != nil {
		err = backend.Classify(err) // a verifier's lost connection is retryable
		if c := protocol.CodeOf(err); c != protocol.CodeUnavailable && c != protocol.CodeTimeout && c != protocol.CodeInternal {
			r.report(ctx, userKey, clientVersion, err)
		}
		return Redeemed{}, err
	}
	p.Store = store
	stored, created, err := r.cfg.Redemptions.Redeem(ctx, Redemption{Store: store, TransactionID: p.TransactionID, UserKey: userKey, ProductID: p.ProductID, At: r.cfg.Now()})
	if err != nil {
		return Redeemed{}, backend.Classify(err)
	}
	if created {
		return Redeemed{Purchase: p, First: true}, nil
	}
	if stored.UserKey != userKey {
		e := newErr(ErrReceiptOtherAccount, "%s transaction %s redeemed by user %d", store, truncate(p.TransactionID, 64), stored.UserKey)
		e.Code = r.cfg.OtherAccountCode
		r.report(ctx, userKey, clientVersion, e)
		return Redeemed{}, e
	}
	return Redeemed{Purchase: p}, nil
}

func (r *Redeemer) report(ctx context.Context, user int64, version string, err error) {
	if r.cfg.Monitor == nil {
		return
	}
	reason := ErrReceiptInvalid.Reason
	var e *Error
	if errors.As(err, &e) {
		reason = e.Reason
	}
	_, _ = r.cfg.Monitor.Report(ctx, Verdict{UserKey: user, Kind: KindReceipt, Reason: reason, Detail: truncate(err.Error(), MaxDetailLen), ClientVersion: version})
}
