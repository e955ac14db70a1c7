package anticheat

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"

	"github.com/madang-io/madang/internal/clock"
)

// AppleRootCAG3SHA256 is the SHA-256 fingerprint of "Apple Root CA - G3"
// (https://www.apple.com/certificateauthority/AppleRootCA-G3.cer), the root
// of App Store signed transactions. The package does not embed the
// certificate: load it from Apple and compare its fingerprint with this
// value (AppleVerifierConfig.Root is required).
const AppleRootCAG3SHA256 = "63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179"

// AppleVerifierConfig configures an AppleVerifier.
type AppleVerifierConfig struct {
	// Root is the trusted root of the x5c chain. Required: Apple Root CA -
	// G3 in production (see AppleRootCAG3SHA256); a test CA in tests.
	Root *x509.Certificate
	// BundleID is the app's bundle id; a transaction of another app is
	// ErrReceiptWrongApp. Required.
	BundleID string
	// Environments lists the accepted environments. Default
	// {"Production"}; add "Sandbox" on test servers.
	Environments []string
	// Clock is the time the chain is verified at. Default clock.Real.
	Clock clock.Clock
}

// AppleVerifier verifies App Store signed transactions (the JWS
// "signedTransactionInfo" of StoreKit 2 and the App Store Server API) in pure
// Go: ES256 over the header and payload, by the leaf certificate of the
// header's x5c chain, which must chain to Root.
type AppleVerifier struct {
	cfg AppleVerifierConfig
}

var _ Verifier = (*AppleVerifier)(nil)

// NewAppleVerifier returns a verifier, or an error when Root or BundleID is
// missing.
func NewAppleVerifier(cfg AppleVerifierConfig) (*AppleVerifier, error) {
	if cfg.Root == nil {
		return nil, errors.New("anticheat: AppleVerifier needs Root (Apple Root CA - G3)")
	}
	if cfg.BundleID == "" {
		return nil, errors.New("anticheat: AppleVerifier needs BundleID")
	}
	if len(cfg.Environments) == 0 {
		cfg.Environments = []string{"Production"}
	}
	cfg.Clock = clock.Or(cfg.Clock)
	return &AppleVerifier{cfg: cfg}, nil
}

// maxChain bounds the x5c chain.
const maxChain = 4

// Verify implements Verifier: receipt is the JWS compact serialisation.
func (v *AppleVerifier) Verify(_ context.Context, store, receipt string) (Purchase, error) {
	if receipt == "" || len(receipt) > MaxReceiptLen {
		return Purchase{}, newErr(ErrReceiptInvalid, "JWS of %d bytes", len(receipt))
	}
	parts := strings.Split(receipt, ".")
	if len(parts) != 3 {
		return Purchase{}, newErr(ErrReceiptInvalid, "JWS: %d parts, want 3", len(parts))
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return Purchase{}, newErr(ErrReceiptInvalid, "JWS encoding: %w", err)
	}
	var h struct {
		Alg string   `json:"alg"`
		X5C []string `json:"x5c"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return Purchase{}, newErr(ErrReceiptInvalid, "JWS header: %w", err)
	}
	if h.Alg != "ES256" {
		return Purchase{}, newErr(ErrReceiptInvalid, "JWS alg %q, want ES256", truncate(h.Alg, 16))
	}
	if len(h.X5C) < 2 || len(h.X5C) > maxChain {
		return Purchase{}, newErr(ErrReceiptInvalid, "x5c of %d certificates", len(h.X5C))
	}
	certs := make([]*x509.Certificate, 0, len(h.X5C))
	for _, s := range h.X5C {
		der, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return Purchase{}, newErr(ErrReceiptInvalid, "x5c: %w", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Purchase{}, newErr(ErrReceiptInvalid, "x5c: %w", err)
		}
		certs = append(certs, c)
	}
	roots := x509.NewCertPool()
	roots.AddCert(v.cfg.Root)
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: v.cfg.Clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return Purchase{}, newErr(ErrReceiptInvalid, "x5c chain: %w", err)
	}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() || len(sig) != 64 {
		return Purchase{}, newErr(ErrReceiptInvalid, "JWS signature is not ES256")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return Purchase{}, newErr(ErrReceiptInvalid, "JWS signature does not verify")
	}
	var t struct {
		TransactionID         string `json:"transactionId"`
		OriginalTransactionID string `json:"originalTransactionId"`
		BundleID              string `json:"bundleId"`
		ProductID             string `json:"productId"`
		PurchaseDate          int64  `json:"purchaseDate"`
		Quantity              int    `json:"quantity"`
		Environment           string `json:"environment"`
		RevocationDate        int64  `json:"revocationDate"`
	}
	if err := json.Unmarshal(pb, &t); err != nil {
		return Purchase{}, newErr(ErrReceiptInvalid, "JWS payload: %w", err)
	}
	switch {
	case t.BundleID != v.cfg.BundleID:
		return Purchase{}, newErr(ErrReceiptWrongApp, "bundle id %q", truncate(t.BundleID, 128))
	case !slices.Contains(v.cfg.Environments, t.Environment):
		return Purchase{}, newErr(ErrReceiptWrongEnvironment, "environment %q", truncate(t.Environment, 32))
	case t.RevocationDate != 0:
		return Purchase{}, newErr(ErrReceiptRevoked, "transaction %s revoked", truncate(t.TransactionID, 64))
	case t.TransactionID == "":
		return Purchase{}, newErr(ErrReceiptInvalid, "no transactionId")
	}
	if t.Quantity <= 0 {
		t.Quantity = 1
	}
	return Purchase{Store: store, TransactionID: t.TransactionID, ProductID: t.ProductID, Quantity: t.Quantity,
		PurchasedAt: fromMs(t.PurchaseDate), Environment: t.Environment}, nil
}
