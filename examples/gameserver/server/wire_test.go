package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/examples/gameserver/ops"
	"github.com/madang-io/madang/protocol"
)

// In dev mode the real server (New) takes development receipts: a purchase
// is granted once, and the same receipt from another account is
// receipt_used (18), recorded in the guard's hack log.
func TestServerDevReceiptPurchase(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.Dev = true
	base, srv := startServerOn(t, cfg)
	c, _ := newClient(t, base)
	me := login(t, c, "dev-buyer")
	receipt := game.BuyIAP{ProductID: "gems_100", Platform: "android", Receipt: "dev-receipt:wire-1:gems_100"}
	var got game.IAPResult
	if _, err := c.Call(ctx, game.CmdShopBuyIAP, receipt, &got); err != nil {
		t.Fatal(err)
	}
	if !got.Granted || got.Gems != game.StartGems+100 || got.TransactionID != "dev-wire-1" {
		t.Fatalf("dev purchase: %+v", got)
	}
	if ps, err := srv.game.Purchases(ctx, me.UserKey); err != nil || len(ps) != 1 {
		t.Fatalf("purchases %+v %v", ps, err)
	}
	other, _ := newClient(t, base)
	them := login(t, other, "dev-thief")
	_, err := other.Call(ctx, game.CmdShopBuyIAP, receipt, nil)
	if code := codeOf(t, err); code != protocol.CodeReceiptUsed {
		t.Fatalf("replay from another account: %v", err)
	}
	if g := load(t, other).Gems; g != game.StartGems {
		t.Fatalf("the other account got gems: %d", g)
	}
	var flagged bool
	for _, e := range userEvents(t, srv, them.UserKey) {
		flagged = flagged || e.Kind == anticheat.KindReceipt
	}
	if !flagged {
		t.Fatal("the replayed receipt is not in the guard's hack log")
	}
}

// Outside dev mode: without a verifier shop.buy_iap is forbidden (and dev
// receipts are never accepted); with Config.IAPVerifier the server uses it.
func TestServerIAPNeedsAVerifierOutsideDev(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.Dev = false
	base, _ := startServerOn(t, cfg)
	c, _ := newClient(t, base)
	login(t, c, "prod-buyer")
	_, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "dev-receipt:x:gems_100"}, nil)
	if code := codeOf(t, err); code != protocol.CodeForbidden {
		t.Fatalf("no verifier outside dev mode: %v", err)
	}

	fv := anticheattest.NewVerifier()
	fv.Add("apple-receipt", anticheat.Purchase{TransactionID: "A-1", ProductID: "gems_550", Quantity: 1})
	cfg = testConfig(t)
	cfg.Dev = false
	cfg.IAPVerifier = anticheat.StoreVerifiers{anticheat.StoreApple: fv, anticheat.StoreGoogle: fv}
	base, _ = startServerOn(t, cfg)
	c, _ = newClient(t, base)
	login(t, c, "prod-buyer-2")
	var got game.IAPResult
	if _, err := c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_550", Platform: "ios", Receipt: "apple-receipt"}, &got); err != nil || !got.Granted || got.Gems != game.StartGems+550 {
		t.Fatalf("purchase with a studio's verifier: %+v %v", got, err)
	}
	_, err = c.Call(ctx, game.CmdShopBuyIAP, game.BuyIAP{ProductID: "gems_100", Platform: "ios", Receipt: "dev-receipt:x:gems_100"}, nil)
	if code := codeOf(t, err); code != protocol.CodeBadRequest {
		t.Fatalf("dev receipt outside dev mode: %v", err)
	}
}

// Game data through the ops API: a client version mapped to version 2 pays
// its price (and its login answer says so), publishing 2 reaches everyone,
// a rollback returns to 1; every change resets the user cache; without the
// token nothing changes.
func TestGameDataThroughTheOpsAPI(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	a := newAdmin(t, srv)
	v1, _ := srv.catalog.Set("1")
	v2, _ := srv.catalog.Set("2")
	p1, _ := v1.ShopItem("gold_small")
	p2, _ := v2.ShopItem("gold_small")
	if p1.Gems == p2.Gems {
		t.Fatal("versions 1 and 2 must differ in gold_small's price")
	}
	paid := func(c *protocol.Client) int64 {
		t.Helper()
		before := load(t, c).Gems
		var r game.BuyResult
		if _, err := c.Call(ctx, game.CmdShopBuy, game.Buy{ItemID: "gold_small"}, &r); err != nil {
			t.Fatal(err)
		}
		return before - r.Gems
	}
	dataVersionAt := func(device, clientVersion string) (*protocol.Client, string) {
		t.Helper()
		c, _ := newClient(t, base)
		var res struct {
			game.LoginResult
			LiveOps struct {
				DataVersion string `json:"data_version"`
			} `json:"liveops"`
		}
		in := game.GuestLogin{DeviceID: device, Platform: "android", ClientVersion: clientVersion}
		if _, err := c.Call(ctx, game.CmdGuestLogin, in, &res); err != nil {
			t.Fatal(err)
		}
		c.SetSession(res.Token, nil)
		return c, res.LiveOps.DataVersion
	}

	for _, tok := range []string{"", "wrong"} {
		if code, body := a.do("POST", "/v1/gamedata/publish", tok, map[string]string{"version": "2"}); code != http.StatusUnauthorized {
			t.Fatalf("publish with token %q: %d %s", tok, code, body)
		}
	}
	var st gamedata.State
	if err := json.Unmarshal(a.ok("GET", "/v1/gamedata/", nil), &st); err != nil || st.Published != "1" || len(st.Versions) != 2 {
		t.Fatalf("state %+v %v", st, err)
	}

	oldc, dv := dataVersionAt("gd-old", "1.0.0.0")
	if dv != "1" || paid(oldc) != p1.Gems {
		t.Fatalf("unmapped client: data version %q", dv)
	}
	cacheVersion := srv.cache.Version()
	a.ok("POST", "/v1/gamedata/client_versions", map[string]string{"client_version": "1.1.0.0", "data_version": "2"})
	if srv.cache.Version() == cacheVersion {
		t.Fatal("mapping through the ops API did not reset the user cache")
	}
	newc, dv := dataVersionAt("gd-new", "1.1.0.0")
	if dv != "2" {
		t.Fatalf("mapped client: data version %q", dv)
	}
	if a, b := paid(oldc), paid(newc); a != p1.Gems || b != p2.Gems {
		t.Fatalf("1.0 paid %d (want %d), 1.1 paid %d (want %d)", a, p1.Gems, b, p2.Gems)
	}
	// Publish 1 then 2: everyone on 2. Roll back: the unmapped 1.0 is on 1
	// again, the mapped 1.1 stays on 2.
	a.ok("POST", "/v1/gamedata/publish", map[string]string{"version": "1"})
	cacheVersion = srv.cache.Version()
	a.ok("POST", "/v1/gamedata/publish", map[string]string{"version": "2"})
	if srv.cache.Version() == cacheVersion {
		t.Fatal("publish did not reset the user cache")
	}
	if got := paid(oldc); got != p2.Gems {
		t.Fatalf("after publishing 2, 1.0 paid %d", got)
	}
	if err := json.Unmarshal(a.ok("POST", "/v1/gamedata/rollback", map[string]string{}), &st); err != nil || st.Published != "1" {
		t.Fatalf("rollback: %+v %v", st, err)
	}
	if a, b := paid(oldc), paid(newc); a != p1.Gems || b != p2.Gems {
		t.Fatalf("after rollback: 1.0 paid %d, 1.1 paid %d", a, b)
	}
	if code, body := a.do("POST", "/v1/gamedata/publish", a.token, map[string]string{"version": "nope"}); code != http.StatusBadRequest {
		t.Fatalf("unknown version: %d %s", code, body)
	}
}

// -gamedata DIR loads another directory (os.DirFS); its last version is in
// use until a publish.
func TestGameDataDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gamedata")
	if err := os.CopyFS(dir, gamedata.Default()); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig([]string{"-gamedata", dir}, func(string) string { return "" })
	if err != nil || cfg.GameDataDir != dir {
		t.Fatalf("%+v %v", cfg, err)
	}
	tc := testConfig(t)
	tc.GameDataDir = dir
	base, srv := startServerOn(t, tc)
	if st := srv.catalog.State(); st.Published != "2" {
		t.Fatalf("state %+v", st)
	}
	c, _ := newClient(t, base)
	login(t, c, "dir-data")
	// elixir_pack exists only in version 2.
	if _, err := c.Call(context.Background(), game.CmdShopBuy, game.Buy{ItemID: "elixir_pack"}, nil); err != nil {
		t.Fatalf("version 2 item: %v", err)
	}
	// Refusals (on embedded databases: nothing to clean up).
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.MkdirAll(filepath.Join(bad, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "missing"), bad} {
		if srv, err := New(context.Background(), Config{XORKey: testXORKey, DataDir: filepath.Join(t.TempDir(), "data"), GameDataDir: d}, nil); err == nil {
			srv.Close()
			t.Fatalf("game data directory %s accepted", d)
		}
	}
}

// Grant items by mail through the ops API, resend safely with the key,
// take an unclaimed mail back, and read the ledger.
func TestMailAndLedgerThroughTheOpsAPI(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	a := newAdmin(t, srv)
	c, _ := newClient(t, base)
	me := login(t, c, "mail-ops")
	ghost := me.UserKey + 7 // a key in range with no player

	grant := map[string]any{"user_keys": []int64{me.UserKey, ghost}, "key": "compensation-1", "title": "Sorry!",
		"body": "For the downtime.", "gold": 300, "gems": 7, "items": []game.ItemCount{{ItemID: "potion", Count: 2}}}
	for _, tok := range []string{"", "wrong"} {
		for _, p := range []string{"/v1/mail", "/v1/mail/recall"} {
			if code, _ := a.do("POST", p, tok, grant); code != http.StatusUnauthorized {
				t.Fatalf("%s with token %q: %d", p, tok, code)
			}
		}
		if code, _ := a.do("GET", fmt.Sprintf("/v1/ledger?user=%d", me.UserKey), tok, nil); code != http.StatusUnauthorized {
			t.Fatalf("ledger with token %q: %d", tok, code)
		}
	}
	type sendResult struct {
		Sent   []ops.MailSent   `json:"sent"`
		Failed []ops.MailFailed `json:"failed"`
	}
	var sent sendResult
	if err := json.Unmarshal(a.ok("POST", "/v1/mail", grant), &sent); err != nil {
		t.Fatal(err)
	}
	if len(sent.Sent) != 1 || sent.Sent[0].UserKey != me.UserKey || len(sent.Failed) != 1 || sent.Failed[0].UserKey != ghost || sent.Failed[0].Error != "no such player" {
		t.Fatalf("send: %+v", sent)
	}
	mailID := sent.Sent[0].MailID
	// Sent again (a lost answer): the same mail, not a second one.
	var again sendResult
	if err := json.Unmarshal(a.ok("POST", "/v1/mail", grant), &again); err != nil || len(again.Sent) != 1 || again.Sent[0].MailID != mailID {
		t.Fatalf("resend: %+v %v", again, err)
	}
	var list game.MailList
	mustCall(t, c, game.CmdMailList, nil, &list)
	var n int
	for _, m := range list.Mails {
		if m.Title == "Sorry!" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d compensation mails in %+v", n, list)
	}
	before := load(t, c)
	var claimed game.ClaimResult
	mustCall(t, c, game.CmdMailClaim, game.ClaimMail{MailID: mailID}, &claimed)
	if claimed.Gold != 300 || claimed.Gems != 7 || claimed.Balance.Gold != before.Gold+300 {
		t.Fatalf("claim %+v", claimed)
	}
	// A claimed mail cannot be recalled; an unclaimed one can, and the
	// player can no longer claim it.
	var rec map[string]bool
	if err := json.Unmarshal(a.ok("POST", "/v1/mail/recall", map[string]int64{"user_key": me.UserKey, "mail_id": mailID}), &rec); err != nil || rec["recalled"] {
		t.Fatalf("recall of a claimed mail: %v %v", rec, err)
	}
	grant["key"], grant["user_keys"] = "mistake-1", []int64{me.UserKey}
	var wrong sendResult
	if err := json.Unmarshal(a.ok("POST", "/v1/mail", grant), &wrong); err != nil || len(wrong.Sent) != 1 {
		t.Fatalf("second grant %+v %v", wrong, err)
	}
	if err := json.Unmarshal(a.ok("POST", "/v1/mail/recall", map[string]int64{"user_key": me.UserKey, "mail_id": wrong.Sent[0].MailID}), &rec); err != nil || !rec["recalled"] {
		t.Fatalf("recall: %v %v", rec, err)
	}
	if code, _ := call(t, c, game.CmdMailClaim, game.ClaimMail{MailID: wrong.Sent[0].MailID}, nil); code != game.CodeNoMail {
		t.Fatalf("claim of a recalled mail: %v", code)
	}

	var ledger struct {
		UserKey int64              `json:"user_key"`
		Entries []game.LedgerEntry `json:"entries"`
	}
	if err := json.Unmarshal(a.ok("GET", fmt.Sprintf("/v1/ledger?user=%d&limit=2", me.UserKey), nil), &ledger); err != nil {
		t.Fatal(err)
	}
	reason := fmt.Sprintf("mail:%d", mailID)
	if ledger.UserKey != me.UserKey || len(ledger.Entries) != 2 || ledger.Entries[0].ID < ledger.Entries[1].ID {
		t.Fatalf("ledger page %+v", ledger)
	}
	full, err := srv.game.Ledger(ctx, me.UserKey)
	if err != nil || len(full) < 3 || full[len(full)-1].ID != ledger.Entries[0].ID || full[len(full)-1].Reason != reason {
		t.Fatalf("newest ledger row %+v, full ledger %+v %v", ledger.Entries[0], full, err)
	}

	for name, body := range map[string]any{
		"no key":        map[string]any{"user_keys": []int64{me.UserKey}, "title": "x"},
		"no users":      map[string]any{"user_keys": []int64{}, "key": "k", "title": "x"},
		"101 users":     map[string]any{"user_keys": make([]int64, 101), "key": "k", "title": "x"},
		"bad user":      map[string]any{"user_keys": []int64{-1}, "key": "k", "title": "x"},
		"no title":      map[string]any{"user_keys": []int64{me.UserKey}, "key": "k"},
		"unknown item":  map[string]any{"user_keys": []int64{me.UserKey}, "key": "k", "title": "x", "items": []game.ItemCount{{ItemID: "nope", Count: 1}}},
		"negative gold": map[string]any{"user_keys": []int64{me.UserKey}, "key": "k", "title": "x", "gold": -5},
		"past expiry":   map[string]any{"user_keys": []int64{me.UserKey}, "key": "k", "title": "x", "expires": "2001-01-01T00:00:00Z"},
		"unknown field": map[string]any{"user_keys": []int64{me.UserKey}, "key": "k", "title": "x", "diamonds": 1},
	} {
		if code, b := a.do("POST", "/v1/mail", a.token, body); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, code, b)
		}
	}
	for _, q := range []string{"user=abc", "user=0", fmt.Sprintf("user=%d&limit=0", me.UserKey), fmt.Sprintf("user=%d&limit=5000", me.UserKey)} {
		if code, b := a.do("GET", "/v1/ledger?"+q, a.token, nil); code != http.StatusBadRequest {
			t.Errorf("ledger %s: %d %s", q, code, b)
		}
	}
	if code, b := a.do("POST", "/v1/mail/recall", a.token, map[string]int64{"user_key": me.UserKey}); code != http.StatusBadRequest {
		t.Errorf("recall without mail id: %d %s", code, b)
	}
	// Nothing of the refused requests reached the mailbox.
	mustCall(t, c, game.CmdMailList, nil, &list)
	for _, m := range list.Mails {
		if m.Title == "x" {
			t.Fatalf("a refused mail was sent: %+v", m)
		}
	}
}
