package anticheat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// ProductPurchase is the part of the Google Play Developer API's
// purchases.products resource the verifier reads (field names as in the
// API's JSON).
type ProductPurchase struct {
	// PurchaseState: 0 purchased, 1 cancelled, 2 pending.
	PurchaseState int `json:"purchaseState"`
	// AcknowledgementState: 0 not yet acknowledged, 1 acknowledged.
	AcknowledgementState int `json:"acknowledgementState"`
	// ConsumptionState: 0 not yet consumed, 1 consumed.
	ConsumptionState int    `json:"consumptionState"`
	OrderID          string `json:"orderId"` // "GPA.…"; empty for test purchases
	// PurchaseTimeMillis is a decimal string of Unix ms, as the API sends it.
	PurchaseTimeMillis string `json:"purchaseTimeMillis"`
	// PurchaseType is absent for real purchases; 0 test, 1 promo, 2 rewarded.
	PurchaseType *int   `json:"purchaseType,omitempty"`
	Quantity     int    `json:"quantity"`   // 0 means 1
	RegionCode   string `json:"regionCode"` // ISO 3166-1 alpha-2
}

// PlayPurchases is the Google Play Developer API as the verifier uses it.
// PlayHTTP implements it over HTTP; anticheattest has a fake.
type PlayPurchases interface {
	GetProduct(ctx context.Context, packageName, productID, token string) (ProductPurchase, error)
	AcknowledgeProduct(ctx context.Context, packageName, productID, token string) error
}

// PlayHTTP calls the Google Play Developer API (androidpublisher v3).
// Client must authenticate the requests (an OAuth2 client of a service
// account with the androidpublisher scope; this package does not do OAuth).
type PlayHTTP struct {
	Client *http.Client // authenticating client; nil: http.DefaultClient
	// BaseURL defaults to "https://androidpublisher.googleapis.com".
	BaseURL string
}

var _ PlayPurchases = (*PlayHTTP)(nil)

func (p *PlayHTTP) url(packageName, productID, token, suffix string) string {
	base := p.BaseURL
	if base == "" {
		base = "https://androidpublisher.googleapis.com"
	}
	return base + "/androidpublisher/v3/applications/" + url.PathEscape(packageName) + "/purchases/products/" +
		url.PathEscape(productID) + "/tokens/" + url.PathEscape(token) + suffix
}

func (p *PlayHTTP) do(ctx context.Context, method, u string, out any) error {
	var body io.Reader
	if method == http.MethodPost {
		body = bytes.NewReader([]byte("{}"))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("anticheat: play request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c := p.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return newErr(ErrVerifierUnavailable, "google play: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return newErr(ErrVerifierUnavailable, "google play reply: %w", err)
	}
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusUnauthorized:
		return newErr(ErrVerifierUnavailable, "google play: HTTP %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent:
		return newErr(ErrReceiptInvalid, "google play: HTTP %d", resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return newErr(ErrVerifierUnavailable, "google play reply: %w", err)
	}
	return nil
}

// GetProduct implements PlayPurchases (purchases.products.get).
func (p *PlayHTTP) GetProduct(ctx context.Context, packageName, productID, token string) (ProductPurchase, error) {
	var pp ProductPurchase
	err := p.do(ctx, http.MethodGet, p.url(packageName, productID, token, ""), &pp)
	return pp, err
}

// AcknowledgeProduct implements PlayPurchases (purchases.products.acknowledge).
func (p *PlayHTTP) AcknowledgeProduct(ctx context.Context, packageName, productID, token string) error {
	return p.do(ctx, http.MethodPost, p.url(packageName, productID, token, ":acknowledge"), nil)
}

// GoogleVerifierConfig configures a GoogleVerifier.
type GoogleVerifierConfig struct {
	// API is the Play Developer API. Required.
	API PlayPurchases
	// PackageName is the app's package; a receipt naming another is
	// ErrReceiptWrongApp. Required.
	PackageName string
	// AllowTest accepts test purchases (license testers). Default false:
	// they are ErrReceiptWrongEnvironment.
	AllowTest bool
	// NoAcknowledge leaves acknowledging to the caller. Default: a purchase
	// not yet acknowledged is acknowledged after it verifies (Google refunds
	// purchases left unacknowledged for three days). Safe to repeat: the
	// redemption is keyed on the order id.
	NoAcknowledge bool
}

// GoogleVerifier verifies Google Play in-app product purchases. The receipt
// is the purchase JSON the Play Billing library gives the app
// (Purchase.getOriginalJson(): "packageName", "productId",
// "purchaseToken", ...); the verifier asks the Play Developer API about the
// token and checks the purchase state and acknowledgement.
type GoogleVerifier struct {
	cfg GoogleVerifierConfig
}

var _ Verifier = (*GoogleVerifier)(nil)

// NewGoogleVerifier returns a verifier, or an error when API or
// PackageName is missing.
func NewGoogleVerifier(cfg GoogleVerifierConfig) (*GoogleVerifier, error) {
	if cfg.API == nil || cfg.PackageName == "" {
		return nil, errors.New("anticheat: GoogleVerifier needs API and PackageName")
	}
	return &GoogleVerifier{cfg: cfg}, nil
}

// Verify implements Verifier.
func (v *GoogleVerifier) Verify(ctx context.Context, store, receipt string) (Purchase, error) {
	if receipt == "" || len(receipt) > MaxReceiptLen {
		return Purchase{}, newErr(ErrReceiptInvalid, "receipt of %d bytes", len(receipt))
	}
	var r struct {
		PackageName   string `json:"packageName"`
		ProductID     string `json:"productId"`
		PurchaseToken string `json:"purchaseToken"`
	}
	if err := json.Unmarshal([]byte(receipt), &r); err != nil {
		return Purchase{}, newErr(ErrReceiptInvalid, "purchase JSON: %w", err)
	}
	switch {
	case r.PackageName != "" && r.PackageName != v.cfg.PackageName:
		return Purchase{}, newErr(ErrReceiptWrongApp, "package %q", truncate(r.PackageName, 128))
	case r.ProductID == "" || r.PurchaseToken == "" || len(r.ProductID) > MaxProductIDLen:
		return Purchase{}, newErr(ErrReceiptInvalid, "purchase JSON without productId or purchaseToken")
	}
	pp, err := v.cfg.API.GetProduct(ctx, v.cfg.PackageName, r.ProductID, r.PurchaseToken)
	if err != nil {
		return Purchase{}, err
	}
	env := "Production"
	if pp.PurchaseType != nil && *pp.PurchaseType == 0 {
		env = "Test"
		if !v.cfg.AllowTest {
			return Purchase{}, newErr(ErrReceiptWrongEnvironment, "test purchase")
		}
	}
	if pp.PurchaseState != 0 {
		return Purchase{}, newErr(ErrReceiptNotPurchased, "purchase state %d", pp.PurchaseState)
	}
	if pp.AcknowledgementState == 0 && !v.cfg.NoAcknowledge {
		if err := v.cfg.API.AcknowledgeProduct(ctx, v.cfg.PackageName, r.ProductID, r.PurchaseToken); err != nil {
			return Purchase{}, err
		}
	}
	id := pp.OrderID
	if id == "" {
		id = r.PurchaseToken
	}
	if len(id) > MaxTransactionIDLen {
		return Purchase{}, newErr(ErrReceiptInvalid, "transaction id longer than %d bytes", MaxTransactionIDLen)
	}
	at, _ := strconv.ParseInt(pp.PurchaseTimeMillis, 10, 64)
	q := pp.Quantity
	if q <= 0 {
		q = 1
	}
	return Purchase{Store: store, TransactionID: id, ProductID: r.ProductID, Quantity: q, PurchasedAt: fromMs(at), Environment: env}, nil
}
