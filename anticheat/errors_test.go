package anticheat_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/protocol"
)

const pkg = "io.madang.game"

func integrityPolicy() *anticheat.IntegrityPolicy {
	return &anticheat.IntegrityPolicy{PackageName: pkg, CertSHA256: []string{certO, strings.ToUpper(certN[:2]) + ":" + certN[2:]},
		MinDevice: anticheat.DeviceIntegrity, RequireLicensed: true, Now: func() time.Time { return t0 }}
}

func verdict(f func(v *anticheat.IntegrityVerdict)) *anticheat.IntegrityVerdict {
	v := anticheattest.GoodVerdict(pkg, certO, "h1", t0.Add(-time.Minute))
	if f != nil {
		f(&v)
	}
	return &v
}

// TestTypedFailures produces every typed failure of the package and checks
// its sentinel, reason and result code.
func TestTypedFailures(t *testing.T) {
	ctx := context.Background()
	pol := integrityPolicy()
	want := anticheat.Expect{RequestHash: "h1"}
	store := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	reg := anticheat.NewRegistry(store, anticheat.RegistryConfig{})
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Log: store, Blocks: store})
	_ = mon.Block(ctx, 1, 0, "test")
	ca := anticheattest.NewAppleCA(t, t0)
	apple, _ := anticheat.NewAppleVerifier(anticheat.AppleVerifierConfig{Root: ca.Root, BundleID: "io.madang.game", Now: func() time.Time { return t0 }})
	play := anticheattest.NewPlay()
	play.Put(pkg, "gems", "pending", anticheat.ProductPurchase{PurchaseState: 2})
	google, _ := anticheat.NewGoogleVerifier(anticheat.GoogleVerifierConfig{API: play, PackageName: pkg})
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer down.Close()
	hv, _ := anticheat.NewHTTPVerifier(anticheat.HTTPVerifierConfig{URL: down.URL})
	fv := anticheattest.NewVerifier()
	fv.Add("r", anticheat.Purchase{TransactionID: "T"})
	rd, _ := anticheat.NewRedeemer(anticheat.RedeemerConfig{Verifier: fv, Redemptions: store})
	_, _ = rd.Redeem(ctx, 1, "", "apple", "r")
	tx := goodTx()

	cases := []struct {
		want *anticheat.Error
		code protocol.Code
		err  func() error
	}{
		{anticheat.ErrBlocked, protocol.CodeBlocked, func() error { return mon.CheckBlocked(ctx, 1) }},
		{anticheat.ErrUnknownVersion, protocol.CodeForbidden, func() error {
			g := anticheat.NewGuard(anticheat.GuardConfig{Registry: reg, RejectUnknownVersion: true})
			_, err := g.Middleware()(protocol.HandlerFunc(func(context.Context, *protocol.Request) (*protocol.Response, error) { return nil, nil })).
				Serve(ctx, &protocol.Request{Command: "login", Payload: []byte(`{"version":"1.0"}`)})
			return err
		}},
		{anticheat.ErrBadVersion, protocol.CodeBadRequest, func() error { _, err := anticheat.CanonicalVersion("1.x"); return err }},
		{anticheat.ErrBadSignature, protocol.CodeBadRequest, func() error { return reg.Set(ctx, "1.0", "abc") }},
		{anticheat.ErrReceiptInvalid, protocol.CodeBadRequest, func() error { _, err := apple.Verify(ctx, "apple", "x.y.z"); return err }},
		{anticheat.ErrReceiptUntrustedSigner, protocol.CodeBadRequest, func() error {
			dev := anticheattest.NewAppleCAWith(t, t0, anticheattest.AppleCAOptions{NoLeafMarker: true})
			v, _ := anticheat.NewAppleVerifier(anticheat.AppleVerifierConfig{Root: dev.Root, BundleID: "io.madang.game", Now: func() time.Time { return t0 }})
			_, err := v.Verify(ctx, "apple", dev.Sign(t, tx))
			return err
		}},
		{anticheat.ErrReceiptWrongApp, protocol.CodeBadRequest, func() error {
			tx := tx
			tx.BundleID = "other"
			_, err := apple.Verify(ctx, "apple", ca.Sign(t, tx))
			return err
		}},
		{anticheat.ErrReceiptWrongEnvironment, protocol.CodeBadRequest, func() error {
			tx := tx
			tx.Environment = "Sandbox"
			_, err := apple.Verify(ctx, "apple", ca.Sign(t, tx))
			return err
		}},
		{anticheat.ErrReceiptNotPurchased, protocol.CodeBadRequest, func() error {
			_, err := google.Verify(ctx, "google", `{"productId":"gems","purchaseToken":"pending"}`)
			return err
		}},
		{anticheat.ErrReceiptRevoked, protocol.CodeBadRequest, func() error {
			tx := tx
			tx.RevocationDate = 1
			_, err := apple.Verify(ctx, "apple", ca.Sign(t, tx))
			return err
		}},
		{anticheat.ErrReceiptOtherAccount, protocol.CodeReceiptUsed, func() error { _, err := rd.Redeem(ctx, 2, "", "apple", "r"); return err }},
		{anticheat.ErrUnknownStore, protocol.CodeBadRequest, func() error {
			_, err := anticheat.StoreVerifiers{}.Verify(ctx, "amazon", "r")
			return err
		}},
		{anticheat.ErrVerifierUnavailable, protocol.CodeUnavailable, func() error { _, err := hv.Verify(ctx, "x", "r"); return err }},
		{anticheat.ErrBadInput, protocol.CodeBadRequest, func() error { _, err := store.TopOffenders(ctx, t0, 0); return err }},
		{anticheat.ErrIntegrityPackage, protocol.CodeForbidden, func() error {
			return pol.Check(verdict(func(v *anticheat.IntegrityVerdict) { v.RequestDetails.RequestPackageName = "evil" }), want)
		}},
		{anticheat.ErrIntegrityRequest, protocol.CodeForbidden, func() error { return pol.Check(verdict(nil), anticheat.Expect{RequestHash: "h2"}) }},
		{anticheat.ErrIntegrityStale, protocol.CodeForbidden, func() error {
			return pol.Check(verdict(func(v *anticheat.IntegrityVerdict) {
				*v = anticheattest.GoodVerdict(pkg, certO, "h1", t0.Add(-6*time.Minute))
			}), want)
		}},
		{anticheat.ErrIntegrityAppUnrecognized, protocol.CodeForbidden, func() error {
			return pol.Check(verdict(func(v *anticheat.IntegrityVerdict) { v.AppIntegrity.AppRecognitionVerdict = "UNEVALUATED" }), want)
		}},
		{anticheat.ErrIntegrityCertificate, protocol.CodeForbidden, func() error {
			return pol.Check(verdict(func(v *anticheat.IntegrityVerdict) { *v = anticheattest.GoodVerdict(pkg, certX, "h1", t0) }), want)
		}},
		{anticheat.ErrIntegrityDevice, protocol.CodeForbidden, func() error {
			return pol.Check(verdict(func(v *anticheat.IntegrityVerdict) {
				v.DeviceIntegrity.DeviceRecognitionVerdict = []string{"MEETS_BASIC_INTEGRITY"}
			}), want)
		}},
		{anticheat.ErrIntegrityUnlicensed, protocol.CodeForbidden, func() error {
			return pol.Check(verdict(func(v *anticheat.IntegrityVerdict) { v.AccountDetails.AppLicensingVerdict = "UNLICENSED" }), want)
		}},
	}
	seen := map[anticheat.Reason]bool{}
	for _, c := range cases {
		t.Run(string(c.want.Reason), func(t *testing.T) {
			err := c.err()
			var e *anticheat.Error
			if !errors.Is(err, c.want) || !errors.As(err, &e) || e.Reason != c.want.Reason {
				t.Fatalf("got %v, want %s", err, c.want.Reason)
			}
			if got := protocol.CodeOf(err); got != c.code {
				t.Fatalf("code %v, want %v", got, c.code)
			}
			if !strings.HasPrefix(err.Error(), "anticheat: "+string(c.want.Reason)) {
				t.Fatalf("message %q", err.Error())
			}
			for _, other := range cases {
				if other.want != c.want && errors.Is(err, other.want) {
					t.Fatalf("%v also matches %s", err, other.want.Reason)
				}
			}
		})
		if seen[c.want.Reason] {
			t.Fatalf("reason %s listed twice", c.want.Reason)
		}
		seen[c.want.Reason] = true
	}
}

func TestIntegrityPolicy(t *testing.T) {
	pol := integrityPolicy()
	want := anticheat.Expect{RequestHash: "h1"}
	if err := pol.Check(verdict(nil), want); err != nil {
		t.Fatalf("good verdict: %v", err)
	}
	// The second certificate of the lineage, given with colons in the policy.
	b, _ := hex.DecodeString(certN)
	v := verdict(func(v *anticheat.IntegrityVerdict) {
		v.AppIntegrity.CertificateSha256Digest = []string{base64.RawURLEncoding.EncodeToString(b) + "="}
	})
	if err := pol.Check(v, want); err != nil {
		t.Fatalf("rotated certificate: %v", err)
	}
	// Classic request: nonce.
	v = verdict(func(v *anticheat.IntegrityVerdict) {
		v.RequestDetails.RequestHash, v.RequestDetails.Nonce = "", "bm9uY2U"
	})
	if err := pol.Check(v, anticheat.Expect{Nonce: "bm9uY2U="}); err != nil {
		t.Fatalf("nonce: %v", err)
	}
	fails := map[string]struct {
		v    *anticheat.IntegrityVerdict
		want *anticheat.Error
	}{
		"future": {verdict(func(v *anticheat.IntegrityVerdict) {
			*v = anticheattest.GoodVerdict(pkg, certO, "h1", t0.Add(2*time.Minute))
		}), anticheat.ErrIntegrityStale},
		"no timestamp": {verdict(func(v *anticheat.IntegrityVerdict) { v.RequestDetails.TimestampMillis = "" }), anticheat.ErrIntegrityStale},
		"unrecognized": {verdict(func(v *anticheat.IntegrityVerdict) { v.AppIntegrity.AppRecognitionVerdict = "UNRECOGNIZED_VERSION" }), anticheat.ErrIntegrityAppUnrecognized},
		"app package":  {verdict(func(v *anticheat.IntegrityVerdict) { v.AppIntegrity.PackageName = "evil" }), anticheat.ErrIntegrityPackage},
		"no certs":     {verdict(func(v *anticheat.IntegrityVerdict) { v.AppIntegrity.CertificateSha256Digest = nil }), anticheat.ErrIntegrityCertificate},
		"one bad cert": {verdict(func(v *anticheat.IntegrityVerdict) {
			v.AppIntegrity.CertificateSha256Digest = append(v.AppIntegrity.CertificateSha256Digest, "xx")
		}), anticheat.ErrIntegrityCertificate},
		"no device": {verdict(func(v *anticheat.IntegrityVerdict) { v.DeviceIntegrity.DeviceRecognitionVerdict = nil }), anticheat.ErrIntegrityDevice},
		"virtual": {verdict(func(v *anticheat.IntegrityVerdict) {
			v.DeviceIntegrity.DeviceRecognitionVerdict = []string{"MEETS_VIRTUAL_INTEGRITY"}
		}), anticheat.ErrIntegrityDevice},
		"missing nonce": {verdict(nil), anticheat.ErrIntegrityRequest},
	}
	for name, c := range fails {
		w := want
		if name == "missing nonce" {
			w = anticheat.Expect{Nonce: "n"}
		}
		if err := pol.Check(c.v, w); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	// Relaxed policy.
	relaxed := &anticheat.IntegrityPolicy{PackageName: pkg, CertSHA256: []string{certO}, AllowUnrecognizedVersion: true, Now: func() time.Time { return t0 }}
	v = verdict(func(v *anticheat.IntegrityVerdict) {
		v.AppIntegrity.AppRecognitionVerdict = "UNRECOGNIZED_VERSION"
		v.DeviceIntegrity.DeviceRecognitionVerdict = nil
		v.AccountDetails.AppLicensingVerdict = "UNEVALUATED"
	})
	if err := relaxed.Check(v, want); err != nil {
		t.Fatalf("relaxed: %v", err)
	}
	if err := (&anticheat.IntegrityPolicy{}).Check(v, want); !errors.Is(err, anticheat.ErrBadInput) {
		t.Fatalf("empty policy: %v", err)
	}
	if err := pol.Check(verdict(nil), anticheat.Expect{}); !errors.Is(err, anticheat.ErrBadInput) {
		t.Fatalf("empty expectation: %v", err)
	}
}

func TestCheckIntegrity(t *testing.T) {
	ctx := context.Background()
	d := anticheattest.NewIntegrityDecoder()
	d.Put("tok", *verdict(nil))
	if v, err := anticheat.CheckIntegrity(ctx, d, integrityPolicy(), "tok", anticheat.Expect{RequestHash: "h1"}); err != nil || v.AppIntegrity.VersionCode != "42" {
		t.Fatalf("%+v %v", v, err)
	}
	if _, err := anticheat.CheckIntegrity(ctx, d, integrityPolicy(), "other", anticheat.Expect{RequestHash: "h1"}); !errors.Is(err, anticheat.ErrBadInput) {
		t.Fatal(err)
	}
	// Over HTTP.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/"+pkg+":decodeIntegrityToken" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte(`{"tokenPayloadExternal":{"requestDetails":{"requestPackageName":"` + pkg + `","requestHash":"h1","timestampMillis":"` +
			itoa(t0.UnixMilli()) + `"},"appIntegrity":{"appRecognitionVerdict":"PLAY_RECOGNIZED","packageName":"` + pkg +
			`","certificateSha256Digest":["` + certO + `"],"versionCode":"7"},"deviceIntegrity":{"deviceRecognitionVerdict":["MEETS_DEVICE_INTEGRITY"]},"accountDetails":{"appLicensingVerdict":"LICENSED"}}}`))
	}))
	defer srv.Close()
	api := &anticheat.PlayIntegrityHTTP{Client: srv.Client(), PackageName: pkg, BaseURL: srv.URL}
	if v, err := anticheat.CheckIntegrity(ctx, api, integrityPolicy(), "tok", anticheat.Expect{RequestHash: "h1"}); err != nil || v.AppIntegrity.VersionCode != "7" {
		t.Fatalf("http: %+v %v", v, err)
	}
	api.PackageName = "other"
	if _, err := api.Decode(ctx, "tok"); !errors.Is(err, anticheat.ErrVerifierUnavailable) {
		t.Fatalf("404: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
