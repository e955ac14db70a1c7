package anticheattest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
)

// Verifier is a fake anticheat.Verifier: receipts map to purchases or
// errors. Unknown receipts are anticheat.ErrReceiptInvalid. Safe for
// concurrent use.
type Verifier struct {
	mu        sync.Mutex
	purchases map[string]anticheat.Purchase
	errs      map[string]error
	calls     int
}

var _ anticheat.Verifier = (*Verifier)(nil)

// NewVerifier returns an empty fake.
func NewVerifier() *Verifier {
	return &Verifier{purchases: map[string]anticheat.Purchase{}, errs: map[string]error{}}
}

// Add makes receipt verify as p.
func (v *Verifier) Add(receipt string, p anticheat.Purchase) {
	v.mu.Lock()
	v.purchases[receipt] = p
	v.mu.Unlock()
}

// Fail makes receipt fail with err.
func (v *Verifier) Fail(receipt string, err error) {
	v.mu.Lock()
	v.errs[receipt] = err
	v.mu.Unlock()
}

// Calls returns how many times Verify ran.
func (v *Verifier) Calls() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls
}

// Verify implements anticheat.Verifier.
func (v *Verifier) Verify(_ context.Context, store, receipt string) (anticheat.Purchase, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls++
	if err, ok := v.errs[receipt]; ok {
		return anticheat.Purchase{}, err
	}
	p, ok := v.purchases[receipt]
	if !ok {
		return anticheat.Purchase{}, anticheat.ErrReceiptInvalid
	}
	p.Store = store
	return p, nil
}

// Play is a fake Google Play Developer API: products by token. Safe for
// concurrent use.
type Play struct {
	mu       sync.Mutex
	products map[string]anticheat.ProductPurchase
	acked    map[string]int
	// Err, if set, is returned by every call.
	Err error
}

var _ anticheat.PlayPurchases = (*Play)(nil)

// NewPlay returns an empty fake.
func NewPlay() *Play {
	return &Play{products: map[string]anticheat.ProductPurchase{}, acked: map[string]int{}}
}

func playKey(pkg, product, token string) string { return pkg + "\x00" + product + "\x00" + token }

// Put stores the purchase of token.
func (p *Play) Put(pkg, product, token string, pp anticheat.ProductPurchase) {
	p.mu.Lock()
	p.products[playKey(pkg, product, token)] = pp
	p.mu.Unlock()
}

// Acks returns how many times token was acknowledged.
func (p *Play) Acks(pkg, product, token string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked[playKey(pkg, product, token)]
}

// GetProduct implements anticheat.PlayPurchases; an unknown token is
// anticheat.ErrReceiptInvalid (the API's 400/404).
func (p *Play) GetProduct(_ context.Context, pkg, product, token string) (anticheat.ProductPurchase, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Err != nil {
		return anticheat.ProductPurchase{}, p.Err
	}
	pp, ok := p.products[playKey(pkg, product, token)]
	if !ok {
		return pp, anticheat.ErrReceiptInvalid
	}
	return pp, nil
}

// AcknowledgeProduct implements anticheat.PlayPurchases.
func (p *Play) AcknowledgeProduct(_ context.Context, pkg, product, token string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Err != nil {
		return p.Err
	}
	k := playKey(pkg, product, token)
	pp, ok := p.products[k]
	if !ok {
		return anticheat.ErrReceiptInvalid
	}
	pp.AcknowledgementState = 1
	p.products[k] = pp
	p.acked[k]++
	return nil
}

// AppleCA is a generated certificate chain shaped like the App Store's
// (root → intermediate → leaf, ECDSA P-256) that signs test transactions.
// As in Apple's chain, the intermediate carries the non-critical WWDR
// marker extension (anticheat.AppleWWDRIntermediateOID) and the leaf the
// non-critical receipt-signing marker (anticheat.AppleReceiptSigningOID).
type AppleCA struct {
	// Root, Intermediate and Leaf are the chain; configure Root as the
	// AppleVerifier's root.
	Root, Intermediate, Leaf *x509.Certificate
	leafKey                  *ecdsa.PrivateKey
}

// AppleCAOptions makes a chain that departs from Apple's, for negative
// tests. The zero value is Apple's shape.
type AppleCAOptions struct {
	// NoLeafMarker leaves the receipt-signing extension off the leaf (like
	// any developer certificate under Apple's roots).
	NoLeafMarker bool
	// NoIntermediateMarker leaves the WWDR extension off the intermediate.
	NoIntermediateMarker bool
	// LeafFromRoot has the root, not the intermediate, issue the leaf
	// (Sign still sends leaf, intermediate, root).
	LeafFromRoot bool
}

// NewAppleCA generates a chain valid from a day before now to a year
// after.
func NewAppleCA(t testing.TB, now time.Time) *AppleCA {
	t.Helper()
	return NewAppleCAWith(t, now, AppleCAOptions{})
}

// NewAppleCAWith is NewAppleCA with the departures in o.
func NewAppleCAWith(t testing.TB, now time.Time, o AppleCAOptions) *AppleCA {
	t.Helper()
	// Apple's marker extensions hold an ASN.1 NULL.
	marker := func(oid asn1.ObjectIdentifier) []pkix.Extension {
		return []pkix.Extension{{Id: oid, Value: []byte{0x05, 0x00}}}
	}
	mk := func(cn string, serial int64, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool, ext []pkix.Extension) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
			BasicConstraintsValid: true, IsCA: ca,
			KeyUsage:        x509.KeyUsageDigitalSignature,
			ExtraExtensions: ext,
		}
		if ca {
			tpl.KeyUsage |= x509.KeyUsageCertSign
		}
		if parent == nil {
			parent, parentKey = tpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, key
	}
	var interExt, leafExt []pkix.Extension
	if !o.NoIntermediateMarker {
		interExt = marker(asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 2, 1})
	}
	if !o.NoLeafMarker {
		leafExt = marker(asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 11, 1})
	}
	root, rootKey := mk("Test Root CA - G3", 1, nil, nil, true, nil)
	inter, interKey := mk("Test WWDR CA", 2, root, rootKey, true, interExt)
	issuer, issuerKey := inter, interKey
	if o.LeafFromRoot {
		issuer, issuerKey = root, rootKey
	}
	leaf, leafKey := mk("Test Mac App Store Receipt Signing", 3, issuer, issuerKey, false, leafExt)
	return &AppleCA{Root: root, Intermediate: inter, Leaf: leaf, leafKey: leafKey}
}

// Sign returns payload (marshalled as JSON) as an ES256 JWS with the
// chain in x5c (leaf, intermediate, root), as the App Store sends it.
func (ca *AppleCA) Sign(t testing.TB, payload any) string {
	t.Helper()
	return ca.SignWith(t, payload, "ES256", ca.Leaf, ca.Intermediate, ca.Root)
}

// SignWith is Sign with a chosen alg header and x5c chain (for negative
// tests); the signature is always by the leaf key.
func (ca *AppleCA) SignWith(t testing.TB, payload any, alg string, chain ...*x509.Certificate) string {
	t.Helper()
	x5c := make([]string, len(chain))
	for i, c := range chain {
		x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	hb, _ := json.Marshal(map[string]any{"alg": alg, "x5c": x5c})
	pb, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	signing := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(pb)
	sig, err := ca.leafKey.Sign(rand.Reader, sha256Sum([]byte(signing)), nil)
	if err != nil {
		t.Fatal(err)
	}
	// ASN.1 → the JWS's fixed 64-byte r||s.
	r, s, err := parseASN1Sig(sig)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(raw)
}

// IntegrityDecoder is a fake anticheat.IntegrityDecoder: tokens map to
// verdicts; unknown tokens are anticheat.ErrBadInput. Safe for concurrent
// use.
type IntegrityDecoder struct {
	mu       sync.Mutex
	verdicts map[string]anticheat.IntegrityVerdict
}

var _ anticheat.IntegrityDecoder = (*IntegrityDecoder)(nil)

// NewIntegrityDecoder returns an empty fake.
func NewIntegrityDecoder() *IntegrityDecoder {
	return &IntegrityDecoder{verdicts: map[string]anticheat.IntegrityVerdict{}}
}

// Put makes token decode to v.
func (d *IntegrityDecoder) Put(token string, v anticheat.IntegrityVerdict) {
	d.mu.Lock()
	d.verdicts[token] = v
	d.mu.Unlock()
}

// Decode implements anticheat.IntegrityDecoder.
func (d *IntegrityDecoder) Decode(_ context.Context, token string) (anticheat.IntegrityVerdict, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.verdicts[token]
	if !ok {
		return v, anticheat.ErrBadInput
	}
	return v, nil
}

// GoodVerdict returns a verdict that passes a policy for pkg with
// certificate digest cert (hex), request hash hash, dated now: a Play
// recognized app on a device meeting strong integrity, licensed.
func GoodVerdict(pkg, cert, hash string, now time.Time) anticheat.IntegrityVerdict {
	var v anticheat.IntegrityVerdict
	v.RequestDetails.RequestPackageName = pkg
	v.RequestDetails.RequestHash = hash
	v.RequestDetails.TimestampMillis = strconv.FormatInt(now.UnixMilli(), 10)
	v.AppIntegrity.AppRecognitionVerdict = "PLAY_RECOGNIZED"
	v.AppIntegrity.PackageName = pkg
	if b, err := hex.DecodeString(cert); err == nil {
		v.AppIntegrity.CertificateSha256Digest = []string{base64.RawURLEncoding.EncodeToString(b)}
	}
	v.AppIntegrity.VersionCode = "42"
	v.DeviceIntegrity.DeviceRecognitionVerdict = []string{"MEETS_BASIC_INTEGRITY", "MEETS_DEVICE_INTEGRITY", "MEETS_STRONG_INTEGRITY"}
	v.AccountDetails.AppLicensingVerdict = "LICENSED"
	return v
}
