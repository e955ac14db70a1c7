package server

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
)

// call runs cmd and returns its result code (CodeOK on success); a
// transport failure fails the test.
func call(t *testing.T, c *protocol.Client, cmd string, in, out any) (protocol.Code, *protocol.Response) {
	t.Helper()
	resp, err := c.Call(context.Background(), cmd, in, out)
	if err == nil {
		return protocol.CodeOK, resp
	}
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		t.Fatalf("%s: %v", cmd, err)
	}
	return pe.Code, resp
}

func mustCall(t *testing.T, c *protocol.Client, cmd string, in, out any) *protocol.Response {
	t.Helper()
	code, resp := call(t, c, cmd, in, out)
	if code != protocol.CodeOK {
		t.Fatalf("%s: code %v", cmd, code)
	}
	return resp
}

func ledgerOf(t *testing.T, srv *Server, user int64) []game.LedgerEntry {
	t.Helper()
	l, err := srv.game.Ledger(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// sumLedger returns the ledger's deltas by currency and the last balance of
// each.
func sumLedger(l []game.LedgerEntry) (delta, last map[string]int64) {
	delta, last = map[string]int64{}, map[string]int64{}
	for _, e := range l {
		delta[e.Currency] += e.Delta
		last[e.Currency] = e.BalanceAfter
	}
	return delta, last
}

func itemCount(items []game.ItemCount, id string) int64 {
	for _, it := range items {
		if it.ItemID == id {
			return it.Count
		}
	}
	return 0
}

func TestShopGrantsItems(t *testing.T) {
	base, srv := newGameServer(t)
	c, lossy := newClient(t, base)
	res := login(t, c, "device-items")
	if p := load(t, c); len(p.Items) != 0 || p.Level != 1 || p.Exp != 0 {
		t.Fatalf("new player: %+v", p)
	}
	item, _ := game.ShopItem("adventurer_kit")
	lossy.lose.Store(1)
	var bought game.BuyResult
	resp := mustCall(t, c, game.CmdShopBuy, game.Buy{ItemID: item.ID}, &bought)
	if !resp.Replay || !reflect.DeepEqual(bought.Items, item.Items) || bought.Gems != game.StartGems-item.Gems {
		t.Fatalf("buy (replayed %v): %+v", resp.Replay, bought)
	}
	mustCall(t, c, game.CmdShopBuy, game.Buy{ItemID: "potion_pack"}, nil)
	p := load(t, c)
	if itemCount(p.Items, "potion") != 2+3 || itemCount(p.Items, "key_bronze") != 1 || len(p.Items) != 2 {
		t.Fatalf("inventory %+v", p.Items)
	}
	if p.Items[0].ItemID > p.Items[1].ItemID {
		t.Fatalf("inventory not sorted: %+v", p.Items)
	}
	delta, last := sumLedger(ledgerOf(t, srv, res.UserKey))
	if delta["item:potion"] != 5 || last["item:potion"] != 5 || delta["item:key_bronze"] != 1 || delta["gold"] != item.Gold || last["gems"] != p.Gems {
		t.Fatalf("ledger deltas %v last %v, player %+v", delta, last, p)
	}
}

func TestWelcomeMailClaimedOnce(t *testing.T) {
	base, srv := newGameServer(t)
	c, lossy := newClient(t, base)
	res := login(t, c, "device-welcome")
	var list game.MailList
	mustCall(t, c, game.CmdMailList, nil, &list)
	welcome := game.WelcomeMail()
	if len(list.Mails) != 1 || list.Mails[0].Title != welcome.Title || list.Mails[0].Gems != welcome.Gems ||
		!reflect.DeepEqual(list.Mails[0].Items, welcome.Items) || list.Mails[0].ExpiresAt <= time.Now().UnixMilli() {
		t.Fatalf("mailbox of a new player: %+v", list)
	}
	id := list.Mails[0].ID

	// The claim runs, its reply is lost, the retry is a replay.
	lossy.lose.Store(1)
	var got game.ClaimResult
	resp := mustCall(t, c, game.CmdMailClaim, game.ClaimMail{MailID: id}, &got)
	if lossy.lose.Load() >= 0 || !resp.Replay {
		t.Fatalf("no reply lost (%d) or not a replay (%v)", lossy.lose.Load(), resp.Replay)
	}
	if !reflect.DeepEqual(got.MailIDs, []int64{id}) || got.Gold != welcome.Gold || got.Gems != welcome.Gems ||
		got.Balance.Gems != game.StartGems+welcome.Gems || got.Balance.Gold != game.StartGold+welcome.Gold ||
		itemCount(got.Items, "potion") != 3 || itemCount(got.Items, "elixir") != 1 {
		t.Fatalf("claim: %+v", got)
	}
	p := load(t, c)
	if p.Gold != game.StartGold+welcome.Gold || p.Gems != game.StartGems+welcome.Gems || itemCount(p.Items, "potion") != 3 {
		t.Fatalf("after the claim: %+v", p)
	}
	// A new request for the same mail is refused; the list is empty.
	if code, _ := call(t, c, game.CmdMailClaim, game.ClaimMail{MailID: id}, nil); code != game.CodeMailClaimed {
		t.Fatalf("second claim: code %v", code)
	}
	mustCall(t, c, game.CmdMailList, nil, &list)
	if len(list.Mails) != 0 {
		t.Fatalf("mailbox after the claim: %+v", list)
	}
	var all game.ClaimResult
	mustCall(t, c, game.CmdMailClaimAll, nil, &all)
	if len(all.MailIDs) != 0 || all.Gold != 0 || all.Balance.Gems != p.Gems {
		t.Fatalf("claim_all of an empty mailbox: %+v", all)
	}
	ledger := ledgerOf(t, srv, res.UserKey)
	if len(ledger) != 4 { // gems, gold, potion, elixir
		t.Fatalf("ledger: %+v", ledger)
	}
	for _, e := range ledger {
		if e.Reason != "mail:"+strconv.FormatInt(id, 10) || e.RequestID != resp.RequestID {
			t.Errorf("ledger row %+v, want reason mail:%d and request id %s", e, id, resp.RequestID)
		}
	}
	// Logging in again sends no second welcome mail.
	login(t, c, "device-welcome")
	mustCall(t, c, game.CmdMailList, nil, &list)
	if len(list.Mails) != 0 {
		t.Fatalf("mailbox after a second login: %+v", list)
	}
}

func TestConcurrentClaimsPayOnce(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	c, _ := newClient(t, base)
	res := login(t, c, "device-claims")
	var list game.MailList
	mustCall(t, c, game.CmdMailList, nil, &list)
	welcome := list.Mails[0]
	var sent []int64
	for i := range 5 {
		id, err := srv.game.SendMail(ctx, res.UserKey, game.Mail{Title: "gift " + strconv.Itoa(i), Gold: 100, Gems: 1,
			Items: []game.ItemCount{{ItemID: "key_bronze", Count: 2}}})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, id)
	}

	// Eight claims of the welcome mail and four claim_alls at once.
	const claims, alls = 8, 4
	type outcome struct {
		code protocol.Code
		res  game.ClaimResult
		all  bool
	}
	out := make(chan outcome, claims+alls)
	var wg sync.WaitGroup
	for i := range claims + alls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r game.ClaimResult
			var err error
			if i < claims {
				_, err = c.Call(ctx, game.CmdMailClaim, game.ClaimMail{MailID: welcome.ID}, &r)
			} else {
				_, err = c.Call(ctx, game.CmdMailClaimAll, nil, &r)
			}
			var pe *protocol.Error
			switch {
			case err == nil:
				out <- outcome{protocol.CodeOK, r, i >= claims}
			case errors.As(err, &pe):
				out <- outcome{code: pe.Code, all: i >= claims}
			default:
				t.Errorf("claim: %v", err)
			}
		}()
	}
	wg.Wait()
	close(out)
	paid := map[int64]int{}
	var gold, gems int64
	for o := range out {
		switch {
		case o.code == protocol.CodeOK:
			for _, id := range o.res.MailIDs {
				paid[id]++
			}
			gold += o.res.Gold
			gems += o.res.Gems
		case o.code == game.CodeMailClaimed && !o.all:
		default:
			t.Errorf("claim (all %v): code %v", o.all, o.code)
		}
	}
	if len(paid) != len(sent)+1 {
		t.Fatalf("mails paid %v, want the welcome mail and %v", paid, sent)
	}
	for id, n := range paid {
		if n != 1 {
			t.Errorf("mail %d paid %d times", id, n)
		}
	}
	wantGold := welcome.Gold + 5*100
	wantGems := welcome.Gems + 5
	if gold != wantGold || gems != wantGems {
		t.Fatalf("claims paid %d gold %d gems, want %d %d", gold, gems, wantGold, wantGems)
	}
	p := load(t, c)
	if p.Gold != game.StartGold+wantGold || p.Gems != game.StartGems+wantGems || itemCount(p.Items, "key_bronze") != 10 {
		t.Fatalf("after the claims: %+v", p)
	}
	delta, last := sumLedger(ledgerOf(t, srv, res.UserKey))
	if delta["gold"] != wantGold || last["gold"] != p.Gold || delta["item:key_bronze"] != 10 || last["item:key_bronze"] != 10 {
		t.Fatalf("ledger %v %v", delta, last)
	}
}

func TestExpiredMailCannotBeClaimed(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	c, _ := newClient(t, base)
	res := login(t, c, "device-expired")
	// Long enough for a loaded machine to send and list the mail before it
	// expires (the list below must still show it).
	expires := time.Now().Add(2 * time.Second)
	id, err := srv.game.SendMail(ctx, res.UserKey, game.Mail{Title: "hurry", Gems: 1000, ExpiresAt: expires})
	if err != nil {
		t.Fatal(err)
	}
	var list game.MailList
	mustCall(t, c, game.CmdMailList, nil, &list)
	if len(list.Mails) != 2 || list.Mails[0].ID != id { // newest first
		t.Fatalf("mailbox: %+v", list)
	}
	for time.Now().Before(expires.Add(50 * time.Millisecond)) { // waits for the expiry, asserts no speed
		time.Sleep(20 * time.Millisecond)
	}
	if code, _ := call(t, c, game.CmdMailClaim, game.ClaimMail{MailID: id}, nil); code != game.CodeMailExpired {
		t.Fatalf("claim of an expired mail: code %v", code)
	}
	mustCall(t, c, game.CmdMailList, nil, &list)
	if len(list.Mails) != 1 || list.Mails[0].ID == id {
		t.Fatalf("mailbox after expiry: %+v", list)
	}
	var all game.ClaimResult
	mustCall(t, c, game.CmdMailClaimAll, nil, &all)
	if len(all.MailIDs) != 1 || all.MailIDs[0] == id || all.Gems != game.WelcomeMail().Gems {
		t.Fatalf("claim_all: %+v (the expired mail paid?)", all)
	}
	if p := load(t, c); p.Gems != game.StartGems+game.WelcomeMail().Gems {
		t.Fatalf("gems %d", p.Gems)
	}
}

func TestSendMailAPI(t *testing.T) {
	ctx := context.Background()
	base, srv := newGameServer(t)
	c, _ := newClient(t, base)
	res := login(t, c, "device-ops")
	other, _ := newClient(t, base)

	for name, m := range map[string]game.Mail{
		"no title":       {},
		"negative gold":  {Title: "x", Gold: -1},
		"too much":       {Title: "x", Gems: game.MaxGrant + 1},
		"unknown item":   {Title: "x", Items: []game.ItemCount{{ItemID: "nope", Count: 1}}},
		"zero count":     {Title: "x", Items: []game.ItemCount{{ItemID: "potion"}}},
		"twice":          {Title: "x", Items: []game.ItemCount{{ItemID: "potion", Count: 1}, {ItemID: "potion", Count: 1}}},
		"expired":        {Title: "x", ExpiresAt: time.Now().Add(-time.Minute)},
		"too far":        {Title: "x", ExpiresAt: time.Now().Add(2 * game.MaxMailTTL)},
		"bad utf-8":      {Title: "\xff"},
		"long body":      {Title: "x", Body: string(make([]byte, game.MaxMailBodyLen+1))},
		"long key":       {Title: "x", Key: string(make([]byte, game.MaxMailKeyLen+1))},
		"too many items": {Title: "x", Items: make([]game.ItemCount, game.MaxGrantItems+1)},
	} {
		if _, err := srv.game.SendMail(ctx, res.UserKey, m); !errors.Is(err, game.ErrBadMail) {
			t.Errorf("%s: %v, want ErrBadMail", name, err)
		}
	}
	_, err := srv.game.SendMail(ctx, res.UserKey+1000, game.Mail{Title: "to nobody"})
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != game.CodeNoPlayer {
		t.Fatalf("mail to a user without a player: %v", err)
	}
	if _, err := srv.game.LoadPlayer(ctx, res.UserKey+1000); !errors.As(err, &pe) || pe.Code != game.CodeNoPlayer {
		t.Fatalf("load of a user without a player: %v", err)
	}
	if p, err := srv.game.LoadPlayer(ctx, res.UserKey); err != nil || !reflect.DeepEqual(p, load(t, c)) {
		t.Fatalf("LoadPlayer: %+v %v", p, err)
	}

	// A keyed grant retried is sent once.
	grant := game.Mail{Key: "compensation-2026-12-01", Title: "Sorry for the downtime", Gems: 30}
	id1, err := srv.game.SendMail(ctx, res.UserKey, grant)
	if err != nil {
		t.Fatal(err)
	}
	id2, err := srv.game.SendMail(ctx, res.UserKey, grant)
	if err != nil || id2 != id1 {
		t.Fatalf("resent grant: id %d, %v; want %d", id2, err, id1)
	}
	// An operator takes back an unclaimed mail.
	taken, err := srv.game.RecallMail(ctx, res.UserKey, id1)
	if err != nil || !taken {
		t.Fatalf("recall: %v %v", taken, err)
	}
	if code, _ := call(t, c, game.CmdMailClaim, game.ClaimMail{MailID: id1}, nil); code != game.CodeNoMail {
		t.Fatalf("claim of a recalled mail: code %v", code)
	}
	// Another player's mail is not found. (Mail ids are per game database,
	// so the other player gets mails until one has an id c has no mail
	// with: c has ids 1 and 2 at most on its database.)
	otherKey := login(t, other, "device-other").UserKey
	for range 3 {
		if _, err := srv.game.SendMail(ctx, otherKey, game.Mail{Title: "yours"}); err != nil {
			t.Fatal(err)
		}
	}
	var list game.MailList
	mustCall(t, other, game.CmdMailList, nil, &list)
	if len(list.Mails) != 4 || list.Mails[0].ID <= id1 {
		t.Fatalf("other mailbox %+v", list)
	}
	if code, _ := call(t, c, game.CmdMailClaim, game.ClaimMail{MailID: list.Mails[0].ID}, nil); code != game.CodeNoMail {
		t.Fatalf("claim of another player's mail: code %v", code)
	}
	if code, _ := call(t, c, game.CmdMailClaim, game.ClaimMail{}, nil); code != protocol.CodeBadRequest {
		t.Fatalf("claim without an id: code %v", code)
	}
	resp, err := c.Do(ctx, game.CmdMailClaim, []byte(`{"mail_id":"one"}`))
	if err != nil || resp.Code != protocol.CodeBadRequest {
		t.Fatalf("malformed claim: %+v %v", resp, err)
	}
	taken, err = srv.game.RecallMail(ctx, res.UserKey, list.Mails[0].ID)
	if err != nil || taken {
		t.Fatalf("recall of another player's mail: %v %v", taken, err)
	}
}
