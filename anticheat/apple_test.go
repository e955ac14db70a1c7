package anticheat_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/protocol"
)

func TestAppleVerifier(t *testing.T) {
	ca := anticheattest.NewAppleCA(t, t0)
	other := anticheattest.NewAppleCA(t, t0)
	f := anticheattest.NewClock(t0)
	v, err := anticheat.NewAppleVerifier(anticheat.AppleVerifierConfig{Root: ca.Root, BundleID: "io.madang.game", Now: f.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := v.Verify(ctx, anticheat.StoreApple, ca.Sign(t, goodTx()))
	if err != nil || p.TransactionID != "2000000111" || p.ProductID != "gems_100" || p.Quantity != 1 || p.Environment != "Production" || !p.PurchasedAt.Equal(t0) {
		t.Fatalf("good: %+v %v", p, err)
	}
	// The x5c root is not trusted, the configured one is: another root in
	// third place changes nothing.
	if _, err := v.Verify(ctx, "apple", ca.SignWith(t, goodTx(), "ES256", ca.Leaf, ca.Intermediate, other.Root)); err != nil {
		t.Fatalf("x5c root ignored: %v", err)
	}
	mut := func(f func(*appleTx)) appleTx { tx := goodTx(); f(&tx); return tx }
	good := ca.Sign(t, goodTx())
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + strings.Split(ca.Sign(t, mut(func(x *appleTx) { x.Quantity = 100 })), ".")[1] + "." + parts[2]
	cases := []struct {
		name string
		jws  string
		want *anticheat.Error
	}{
		{"wrong bundle", ca.Sign(t, mut(func(x *appleTx) { x.BundleID = "com.other" })), anticheat.ErrReceiptWrongApp},
		{"sandbox", ca.Sign(t, mut(func(x *appleTx) { x.Environment = "Sandbox" })), anticheat.ErrReceiptWrongEnvironment},
		{"revoked", ca.Sign(t, mut(func(x *appleTx) { x.RevocationDate = t0.UnixMilli() })), anticheat.ErrReceiptRevoked},
		{"no transaction id", ca.Sign(t, mut(func(x *appleTx) { x.TransactionID = "" })), anticheat.ErrReceiptInvalid},
		{"other CA", other.Sign(t, goodTx()), anticheat.ErrReceiptInvalid},
		{"other CA with our root in x5c", other.SignWith(t, goodTx(), "ES256", other.Leaf, other.Intermediate, ca.Root), anticheat.ErrReceiptInvalid},
		{"leaf alone", ca.SignWith(t, goodTx(), "ES256", ca.Leaf), anticheat.ErrReceiptInvalid},
		{"chain without root", ca.SignWith(t, goodTx(), "ES256", ca.Leaf, ca.Intermediate), anticheat.ErrReceiptInvalid},
		{"chain of four", ca.SignWith(t, goodTx(), "ES256", ca.Leaf, ca.Intermediate, ca.Root, ca.Root), anticheat.ErrReceiptInvalid},
		{"intermediate missing", ca.SignWith(t, goodTx(), "ES256", ca.Leaf, ca.Root, ca.Root), anticheat.ErrReceiptInvalid},
		{"alg none", ca.SignWith(t, goodTx(), "none", ca.Leaf, ca.Intermediate, ca.Root), anticheat.ErrReceiptInvalid},
		{"alg HS256", ca.SignWith(t, goodTx(), "HS256", ca.Leaf, ca.Intermediate, ca.Root), anticheat.ErrReceiptInvalid},
		{"tampered payload", tampered, anticheat.ErrReceiptInvalid},
		{"two parts", parts[0] + "." + parts[1], anticheat.ErrReceiptInvalid},
		{"bad base64", parts[0] + ".!!." + parts[2], anticheat.ErrReceiptInvalid},
		{"empty", "", anticheat.ErrReceiptInvalid},
		{"huge", strings.Repeat("a", anticheat.MaxReceiptLen+1), anticheat.ErrReceiptInvalid},
		{"garbage x5c", "eyJhbGciOiJFUzI1NiIsIng1YyI6WyJBQUFBIiwiQUFBQSJdfQ.e30.AAAA", anticheat.ErrReceiptInvalid},
	}
	for _, c := range cases {
		if _, err := v.Verify(ctx, "apple", c.jws); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Expired chain: the clock is past the certificates' validity.
	f.Advance(400 * 24 * time.Hour)
	if _, err := v.Verify(ctx, "apple", good); !errors.Is(err, anticheat.ErrReceiptInvalid) {
		t.Fatalf("expired: %v", err)
	}
	// Sandbox accepted when configured.
	sv, _ := anticheat.NewAppleVerifier(anticheat.AppleVerifierConfig{Root: ca.Root, BundleID: "io.madang.game", Environments: []string{"Production", "Sandbox"}, Now: func() time.Time { return t0 }})
	if _, err := sv.Verify(ctx, "apple", ca.Sign(t, mut(func(x *appleTx) { x.Environment = "Sandbox" }))); err != nil {
		t.Fatal(err)
	}
	if _, err := anticheat.NewAppleVerifier(anticheat.AppleVerifierConfig{Root: ca.Root}); err == nil {
		t.Fatal("no bundle id accepted")
	}
}

// TestAppleVerifierMarkers: a chain that verifies to the root but lacks one
// of Apple's marker extensions is ErrReceiptUntrustedSigner.
func TestAppleVerifierMarkers(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		opts anticheattest.AppleCAOptions
		want *anticheat.Error // nil: accepted
	}{
		{"apple shape", anticheattest.AppleCAOptions{}, nil},
		{"leaf without receipt-signing marker", anticheattest.AppleCAOptions{NoLeafMarker: true}, anticheat.ErrReceiptUntrustedSigner},
		{"intermediate without WWDR marker", anticheattest.AppleCAOptions{NoIntermediateMarker: true}, anticheat.ErrReceiptUntrustedSigner},
		{"neither marker", anticheattest.AppleCAOptions{NoLeafMarker: true, NoIntermediateMarker: true}, anticheat.ErrReceiptUntrustedSigner},
		{"leaf issued by the root", anticheattest.AppleCAOptions{LeafFromRoot: true}, anticheat.ErrReceiptUntrustedSigner},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ca := anticheattest.NewAppleCAWith(t, t0, c.opts)
			// The markers are non-critical, as in Apple's certificates, so
			// the chain itself verifies either way.
			roots := x509.NewCertPool()
			roots.AddCert(ca.Root)
			inter := x509.NewCertPool()
			inter.AddCert(ca.Intermediate)
			if _, err := ca.Leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: t0}); err != nil {
				t.Fatalf("test chain does not verify: %v", err)
			}
			v, err := anticheat.NewAppleVerifier(anticheat.AppleVerifierConfig{Root: ca.Root, BundleID: "io.madang.game", Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(ctx, "apple", ca.Sign(t, goodTx()))
			if c.want == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) || errors.Is(err, anticheat.ErrReceiptInvalid) || protocol.CodeOf(err) != c.want.Code {
				t.Fatalf("got %v (code %v), want %v", err, protocol.CodeOf(err), c.want)
			}
		})
	}
}

// TestAppleTestCAMarkers: the generated chain carries Apple's marker
// extensions where Apple's does, non-critical.
func TestAppleTestCAMarkers(t *testing.T) {
	ca := anticheattest.NewAppleCA(t, t0)
	has := func(c *x509.Certificate, oid string) bool {
		for _, e := range c.Extensions {
			if e.Id.String() == oid {
				if e.Critical {
					t.Errorf("%s critical on %s", oid, c.Subject.CommonName)
				}
				return true
			}
		}
		return false
	}
	if !has(ca.Leaf, anticheat.AppleReceiptSigningOID) || has(ca.Leaf, anticheat.AppleWWDRIntermediateOID) {
		t.Error("leaf markers wrong")
	}
	if !has(ca.Intermediate, anticheat.AppleWWDRIntermediateOID) || has(ca.Intermediate, anticheat.AppleReceiptSigningOID) {
		t.Error("intermediate markers wrong")
	}
	if has(ca.Root, anticheat.AppleWWDRIntermediateOID) || has(ca.Root, anticheat.AppleReceiptSigningOID) {
		t.Error("root carries a marker")
	}
}

// TestAppleRootCAG3 checks the embedded default root against Apple's
// published fingerprint, subject and validity.
func TestAppleRootCAG3(t *testing.T) {
	der, err := base64.StdEncoding.DecodeString(anticheat.AppleRootCAG3Base64)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(der); hex.EncodeToString(sum[:]) != anticheat.AppleRootCAG3SHA256 {
		t.Fatalf("SHA-256 %x, want %s", sum, anticheat.AppleRootCAG3SHA256)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Subject.String(), "CN=Apple Root CA - G3,OU=Apple Certification Authority,O=Apple Inc.,C=US"; got != want {
		t.Errorf("subject %q, want %q", got, want)
	}
	if !c.IsCA || c.Subject.String() != c.Issuer.String() || c.CheckSignatureFrom(c) != nil {
		t.Error("not a self-signed CA")
	}
	if from, to := time.Date(2014, 4, 30, 18, 19, 6, 0, time.UTC), time.Date(2039, 4, 30, 18, 19, 6, 0, time.UTC); !c.NotBefore.Equal(from) || !c.NotAfter.Equal(to) {
		t.Errorf("validity %v to %v, want %v to %v", c.NotBefore, c.NotAfter, from, to)
	}
}

// TestAppleVerifierDefaultRoot: with a zero Root the verifier trusts Apple
// Root CA - G3, so the test CA's transactions are refused and nothing else
// changes.
func TestAppleVerifierDefaultRoot(t *testing.T) {
	v, err := anticheat.NewAppleVerifier(anticheat.AppleVerifierConfig{BundleID: "io.madang.game", Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	ca := anticheattest.NewAppleCA(t, t0)
	if _, err := v.Verify(context.Background(), "apple", ca.Sign(t, goodTx())); !errors.Is(err, anticheat.ErrReceiptInvalid) || !strings.Contains(err.Error(), "x5c chain") {
		t.Fatalf("test CA under the default root: %v", err)
	}
	// Even with Apple's real root sent as the x5c root: only the
	// configured root is trusted.
	der, _ := base64.StdEncoding.DecodeString(anticheat.AppleRootCAG3Base64)
	apple, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), "apple", ca.SignWith(t, goodTx(), "ES256", ca.Leaf, ca.Intermediate, apple)); !errors.Is(err, anticheat.ErrReceiptInvalid) {
		t.Fatalf("test CA with Apple's root in x5c: %v", err)
	}
}
