package anticheat

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/madang-io/madang/internal/clock"
)

// AppleRootCAG3SHA256 is the SHA-256 fingerprint of "Apple Root CA - G3"
// (https://www.apple.com/certificateauthority/AppleRootCA-G3.cer), the root
// of App Store signed transactions; AppleRootCAG3Base64 has this
// fingerprint.
const AppleRootCAG3SHA256 = "63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179"

// AppleRootCAG3Base64 is the DER of "Apple Root CA - G3" (CN=Apple Root CA -
// G3, OU=Apple Certification Authority, O=Apple Inc., C=US; ECDSA P-384;
// valid 2014-04-30 to 2039-04-30), standard base64. It is the default
// AppleVerifierConfig.Root. A public certificate, not a secret.
const AppleRootCAG3Base64 = "MIICQzCCAcmgAwIBAgIILcX8iNLFS5UwCgYIKoZIzj0EAwMwZzEbMBkGA1UEAwwSQXBwbGUgUm9vdCBDQSAtIEczMSYwJAYDVQQLDB1BcHBsZSBDZXJ0aWZpY2F0aW9uIEF1dGhvcml0eTETMBEGA1UECgwKQXBwbGUgSW5jLjELMAkGA1UEBhMCVVMwHhcNMTQwNDMwMTgxOTA2WhcNMzkwNDMwMTgxOTA2WjBnMRswGQYDVQQDDBJBcHBsZSBSb290IENBIC0gRzMxJjAkBgNVBAsMHUFwcGxlIENlcnRpZmljYXRpb24gQXV0aG9yaXR5MRMwEQYDVQQKDApBcHBsZSBJbmMuMQswCQYDVQQGEwJVUzB2MBAGByqGSM49AgEGBSuBBAAiA2IABJjpLz1AcqTtkyJygRMc3RCV8cWjTnHcFBbZDuWmBSp3ZHtfTjjTuxxEtX/1H7YyYl3J6YRbTzBPEVoA/VhYDKX1DyxNB0cTddqXl5dvMVztK517IDvYuVTZXpmkOlEKMaNCMEAwHQYDVR0OBBYEFLuw3qFYM4iapIqZ3r6966/ayySrMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49BAMDA2gAMGUCMQCD6cHEFl4aXTQY2e3v9GwOAEZLuN+yRhHFD/3meoyhpmvOwgPUnPWTxnS4at+qIxUCMG1mihDK1A3UT82NQz60imOlM27jbdoXt2QfyFMm+YhidDkLF1vLUagM6BgD56KyKA=="

// The marker extensions Apple puts on its App Store signing chain; Apple's
// App Store Server Library requires both (it checks them by presence, as
// does this package).
const (
	// AppleReceiptSigningOID marks the leaf: an App Store receipt-signing
	// certificate.
	AppleReceiptSigningOID = "1.2.840.113635.100.6.11.1"
	// AppleWWDRIntermediateOID marks the intermediate: Apple Worldwide
	// Developer Relations.
	AppleWWDRIntermediateOID = "1.2.840.113635.100.6.2.1"
)

// AppleVerifierConfig configures an AppleVerifier.
type AppleVerifierConfig struct {
	// Root is the trusted root of the x5c chain. Default: Apple Root CA -
	// G3 (AppleRootCAG3Base64, embedded); set it only to trust another
	// root, such as a test CA in tests.
	Root *x509.Certificate
	// BundleID is the app's bundle id; a transaction of another app is
	// ErrReceiptWrongApp. Required.
	BundleID string
	// Environments lists the accepted environments. Default
	// {"Production"}; add "Sandbox" on test servers.
	Environments []string
	// Now returns the current time; nil means time.Now. The chain is
	// verified at that time.
	Now func() time.Time
}

// AppleVerifier verifies App Store signed transactions (the JWS
// "signedTransactionInfo" of StoreKit 2 and the App Store Server API) in pure
// Go, with the checks of Apple's App Store Server Library (without its
// optional online OCSP checks): alg ES256; an x5c header of exactly three
// certificates (leaf, intermediate, root); the leaf chains through the
// intermediate to Root (the x5c root itself is not trusted, Root is), valid
// at Now's time; the leaf carries the receipt-signing marker
// (AppleReceiptSigningOID) and the intermediate the WWDR marker
// (AppleWWDRIntermediateOID), else ErrReceiptUntrustedSigner, because
// Apple's roots also certify every developer's certificates; the ES256
// signature by the leaf key; then bundle id, environment and revocation.
type AppleVerifier struct {
	cfg AppleVerifierConfig
}

var _ Verifier = (*AppleVerifier)(nil)

// NewAppleVerifier returns a verifier, or an error when BundleID is
// missing. A nil Root means Apple Root CA - G3, parsed from
// AppleRootCAG3Base64.
func NewAppleVerifier(cfg AppleVerifierConfig) (*AppleVerifier, error) {
	if cfg.BundleID == "" {
		return nil, errors.New("anticheat: AppleVerifier needs BundleID")
	}
	if cfg.Root == nil {
		der, err := base64.StdEncoding.DecodeString(AppleRootCAG3Base64)
		if err != nil {
			return nil, fmt.Errorf("anticheat: embedded Apple Root CA - G3: %w", err)
		}
		if cfg.Root, err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("anticheat: embedded Apple Root CA - G3: %w", err)
		}
	}
	if len(cfg.Environments) == 0 {
		cfg.Environments = []string{"Production"}
	}
	cfg.Now = clock.OrNow(cfg.Now)
	return &AppleVerifier{cfg: cfg}, nil
}

// appleChainLen is the x5c length Apple sends and its library requires:
// leaf, intermediate, root.
const appleChainLen = 3

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
	if len(h.X5C) != appleChainLen {
		return Purchase{}, newErr(ErrReceiptInvalid, "x5c of %d certificates, want %d", len(h.X5C), appleChainLen)
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
	// Trust only Root: the x5c root is ignored, as in Apple's library.
	roots := x509.NewCertPool()
	roots.AddCert(v.cfg.Root)
	inter := x509.NewCertPool()
	inter.AddCert(certs[1])
	chains, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: v.cfg.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return Purchase{}, newErr(ErrReceiptInvalid, "x5c chain: %w", err)
	}
	if !hasExtension(certs[0], AppleReceiptSigningOID) {
		return Purchase{}, newErr(ErrReceiptUntrustedSigner, "leaf %q lacks the App Store receipt-signing extension %s",
			truncate(certs[0].Subject.CommonName, 64), AppleReceiptSigningOID)
	}
	// The leaf must chain through the x5c intermediate, and that must be
	// Apple's WWDR intermediate (not a leaf signed by the root directly).
	if !slices.ContainsFunc(chains, func(c []*x509.Certificate) bool {
		return len(c) == appleChainLen && c[1].Equal(certs[1]) && hasExtension(c[1], AppleWWDRIntermediateOID)
	}) {
		return Purchase{}, newErr(ErrReceiptUntrustedSigner, "leaf does not chain through an intermediate with the Apple WWDR extension %s (x5c intermediate %q)",
			AppleWWDRIntermediateOID, truncate(certs[1].Subject.CommonName, 64))
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

// hasExtension reports whether c carries the extension oid, dotted (critical
// or not; its value is not checked, as in Apple's library).
func hasExtension(c *x509.Certificate, oid string) bool {
	return slices.ContainsFunc(c.Extensions, func(e pkix.Extension) bool { return e.Id.String() == oid })
}
