package anticheat_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/internal/testdb"
	"github.com/madang-io/madang/protocol"
)

func TestHTTPVerifier(t *testing.T) {
	var gotKey atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotKey.Store(r.Header.Get("X-Api-Key"))
		var in struct{ Store, Receipt string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Store != "onestore" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		switch in.Receipt {
		case "good":
			_, _ = w.Write([]byte(`{"ok":true,"transaction_id":"T1","product_id":"gems","quantity":2,"purchased_at":1764000000000,"environment":"Production"}`))
		case "rejected":
			_, _ = w.Write([]byte(`{"ok":false,"error":"forged"}`))
		case "noid":
			_, _ = w.Write([]byte(`{"ok":true}`))
		case "garbage":
			_, _ = w.Write([]byte(`<html>`))
		case "down":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	v, err := anticheat.NewHTTPVerifier(anticheat.HTTPVerifierConfig{URL: srv.URL, Header: http.Header{"X-Api-Key": {"k"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := v.Verify(ctx, "onestore", "good")
	if err != nil || p.TransactionID != "T1" || p.ProductID != "gems" || p.Quantity != 2 || p.Store != "onestore" ||
		!p.PurchasedAt.Equal(time.UnixMilli(1764000000000)) || gotKey.Load() != "k" {
		t.Fatalf("good: %+v %v", p, err)
	}
	for receipt, want := range map[string]*anticheat.Error{
		"rejected": anticheat.ErrReceiptInvalid, "noid": anticheat.ErrReceiptInvalid, "other": anticheat.ErrReceiptInvalid,
		"garbage": anticheat.ErrVerifierUnavailable, "down": anticheat.ErrVerifierUnavailable, "": anticheat.ErrReceiptInvalid,
	} {
		if _, err := v.Verify(ctx, "onestore", receipt); !errors.Is(err, want) {
			t.Errorf("%q: %v, want %v", receipt, err, want)
		}
	}
	srv.Close()
	if _, err := v.Verify(ctx, "onestore", "good"); !errors.Is(err, anticheat.ErrVerifierUnavailable) || protocol.CodeOf(err) != protocol.CodeUnavailable {
		t.Fatalf("server gone: %v", err)
	}
	if _, err := anticheat.NewHTTPVerifier(anticheat.HTTPVerifierConfig{}); err == nil {
		t.Fatal("no URL accepted")
	}
}

type appleTx struct {
	TransactionID         string `json:"transactionId"`
	OriginalTransactionID string `json:"originalTransactionId"`
	BundleID              string `json:"bundleId"`
	ProductID             string `json:"productId"`
	PurchaseDate          int64  `json:"purchaseDate"`
	Quantity              int    `json:"quantity"`
	Environment           string `json:"environment"`
	RevocationDate        int64  `json:"revocationDate,omitempty"`
}

func goodTx() appleTx {
	return appleTx{TransactionID: "2000000111", OriginalTransactionID: "2000000111", BundleID: "io.madang.game", ProductID: "gems_100",
		PurchaseDate: t0.UnixMilli(), Quantity: 1, Environment: "Production"}
}

func intp(i int) *int { return &i }

func TestGoogleVerifier(t *testing.T) {
	play := anticheattest.NewPlay()
	const pkg = "io.madang.game"
	play.Put(pkg, "gems", "tok-ok", anticheat.ProductPurchase{OrderID: "GPA.1", PurchaseTimeMillis: "1764000000000"})
	play.Put(pkg, "gems", "tok-acked", anticheat.ProductPurchase{OrderID: "GPA.2", AcknowledgementState: 1})
	play.Put(pkg, "gems", "tok-pending", anticheat.ProductPurchase{OrderID: "GPA.3", PurchaseState: 2})
	play.Put(pkg, "gems", "tok-cancel", anticheat.ProductPurchase{OrderID: "GPA.4", PurchaseState: 1})
	play.Put(pkg, "gems", "tok-test", anticheat.ProductPurchase{PurchaseType: intp(0)})
	v, err := anticheat.NewGoogleVerifier(anticheat.GoogleVerifierConfig{API: play, PackageName: pkg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	receipt := func(tok string) string {
		return `{"orderId":"x","packageName":"` + pkg + `","productId":"gems","purchaseToken":"` + tok + `","purchaseState":0}`
	}
	p, err := v.Verify(ctx, "google", receipt("tok-ok"))
	if err != nil || p.TransactionID != "GPA.1" || p.ProductID != "gems" || p.Quantity != 1 || !p.PurchasedAt.Equal(time.UnixMilli(1764000000000)) {
		t.Fatalf("ok: %+v %v", p, err)
	}
	if play.Acks(pkg, "gems", "tok-ok") != 1 {
		t.Fatal("not acknowledged")
	}
	if _, err := v.Verify(ctx, "google", receipt("tok-acked")); err != nil || play.Acks(pkg, "gems", "tok-acked") != 0 {
		t.Fatalf("acked: %v (acks %d)", err, play.Acks(pkg, "gems", "tok-acked"))
	}
	cases := map[string]*anticheat.Error{
		receipt("tok-pending"): anticheat.ErrReceiptNotPurchased,
		receipt("tok-cancel"):  anticheat.ErrReceiptNotPurchased,
		receipt("tok-test"):    anticheat.ErrReceiptWrongEnvironment,
		receipt("tok-unknown"): anticheat.ErrReceiptInvalid,
		`{"packageName":"com.evil","productId":"gems","purchaseToken":"tok-ok"}`: anticheat.ErrReceiptWrongApp,
		`{"productId":"gems"}`: anticheat.ErrReceiptInvalid,
		`not json`:             anticheat.ErrReceiptInvalid,
	}
	for r, want := range cases {
		if _, err := v.Verify(ctx, "google", r); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", r, err, want)
		}
	}
	tv, _ := anticheat.NewGoogleVerifier(anticheat.GoogleVerifierConfig{API: play, PackageName: pkg, AllowTest: true, NoAcknowledge: true})
	if p, err := tv.Verify(ctx, "google", receipt("tok-test")); err != nil || p.TransactionID != "tok-test" || p.Environment != "Test" || play.Acks(pkg, "gems", "tok-test") != 0 {
		t.Fatalf("test purchase: %+v %v", p, err)
	}
	play.Err = anticheat.ErrVerifierUnavailable
	if _, err := v.Verify(ctx, "google", receipt("tok-ok")); !errors.Is(err, anticheat.ErrVerifierUnavailable) {
		t.Fatal(err)
	}
}

func TestPlayHTTP(t *testing.T) {
	var acked atomic.Int32
	mux := http.NewServeMux()
	base := "/androidpublisher/v3/applications/io.madang.game/purchases/products/gems/tokens/"
	mux.HandleFunc("GET "+base+"{tok}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("tok") {
		case "a b":
			_, _ = w.Write([]byte(`{"kind":"androidpublisher#productPurchase","purchaseTimeMillis":"1764000000000","purchaseState":0,"consumptionState":0,"orderId":"GPA.9","acknowledgementState":0,"regionCode":"KR"}`))
		case "busy":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	mux.HandleFunc("POST "+base+"{tok}", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.PathValue("tok"), ":acknowledge") {
			acked.Add(1)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	api := &anticheat.PlayHTTP{Client: srv.Client(), BaseURL: srv.URL}
	v, _ := anticheat.NewGoogleVerifier(anticheat.GoogleVerifierConfig{API: api, PackageName: "io.madang.game"})
	ctx := context.Background()
	p, err := v.Verify(ctx, "google", `{"productId":"gems","purchaseToken":"a b"}`)
	if err != nil || p.TransactionID != "GPA.9" || acked.Load() != 1 {
		t.Fatalf("%+v %v acks %d", p, err, acked.Load())
	}
	if _, err := v.Verify(ctx, "google", `{"productId":"gems","purchaseToken":"busy"}`); !errors.Is(err, anticheat.ErrVerifierUnavailable) {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, "google", `{"productId":"gems","purchaseToken":"nope"}`); !errors.Is(err, anticheat.ErrReceiptInvalid) {
		t.Fatal(err)
	}
}

func testRedeemer(t *testing.T, reds anticheat.Redemptions) {
	ctx := context.Background()
	fv := anticheattest.NewVerifier()
	fv.Add("r1", anticheat.Purchase{TransactionID: "T1", ProductID: "gems"})
	fv.Fail("down", anticheat.ErrVerifierUnavailable)
	store := anticheat.NewMemoryStore(anticheat.MemoryConfig{})
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Log: store, Blocks: store})
	rd, err := anticheat.NewRedeemer(anticheat.RedeemerConfig{Verifier: anticheat.StoreVerifiers{"apple": fv}, Redemptions: reds, Monitor: mon, OtherAccountCode: protocol.CodeGameBase + 7})
	if err != nil {
		t.Fatal(err)
	}
	got, err := rd.Redeem(ctx, 1, "1.0.0.0", "apple", "r1")
	if err != nil || !got.First || got.Purchase.TransactionID != "T1" || got.Purchase.Store != "apple" {
		t.Fatalf("first: %+v %v", got, err)
	}
	// The same account again (a retry): verified, not first.
	got, err = rd.Redeem(ctx, 1, "1.0.0.0", "apple", "r1")
	if err != nil || got.First {
		t.Fatalf("retry: %+v %v", got, err)
	}
	// Another account: its own code, and a verdict.
	_, err = rd.Redeem(ctx, 2, "1.0.0.0", "apple", "r1")
	if !errors.Is(err, anticheat.ErrReceiptOtherAccount) || protocol.CodeOf(err) != protocol.CodeGameBase+7 {
		t.Fatalf("other account: %v (code %v)", err, protocol.CodeOf(err))
	}
	if _, err := rd.Redeem(ctx, 2, "1.0.0.0", "apple", "forged"); !errors.Is(err, anticheat.ErrReceiptInvalid) {
		t.Fatal(err)
	}
	if _, err := rd.Redeem(ctx, 2, "1.0.0.0", "apple", "down"); !errors.Is(err, anticheat.ErrVerifierUnavailable) {
		t.Fatal(err)
	}
	if _, err := rd.Redeem(ctx, 2, "1.0.0.0", "amazon", "r1"); !errors.Is(err, anticheat.ErrUnknownStore) {
		t.Fatal(err)
	}
	c, _ := store.UserCounts(ctx, 2)
	if c[anticheat.KindReceipt] != 3 { // other account, forged, unknown store; not "down"
		t.Fatalf("receipt verdicts of user 2: %v", c)
	}
	// 100 concurrent submits of one receipt from 4 accounts grant once.
	fv.Add("r2", anticheat.Purchase{TransactionID: "T2", ProductID: "gems"})
	var wg sync.WaitGroup
	var firsts, others atomic.Int32
	for i := range 100 {
		wg.Go(func() {
			got, err := rd.Redeem(ctx, int64(10+i%4), "", "apple", "r2")
			switch {
			case err == nil && got.First:
				firsts.Add(1)
			case err == nil:
			case errors.Is(err, anticheat.ErrReceiptOtherAccount):
				others.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if firsts.Load() != 1 || others.Load() < 70 {
		t.Fatalf("granted %d times, %d other-account refusals", firsts.Load(), others.Load())
	}
}

func TestRedeemerMemory(t *testing.T) {
	testRedeemer(t, anticheat.NewMemoryStore(anticheat.MemoryConfig{}))
}

func TestRedeemerSQL(t *testing.T) {
	for _, b := range testdb.Backends() {
		t.Run(b.Name, func(t *testing.T) { testRedeemer(t, newSQLStore(t, b)) })
	}
}
