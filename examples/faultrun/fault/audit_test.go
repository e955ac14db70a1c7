package fault

import (
	"encoding/json"
	"testing"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
)

const user = int64(10000001)

func okCopy(replay bool, v any) *Copy {
	b, _ := json.Marshal(v)
	return &Copy{Sends: 1, Codes: map[protocol.Code]int{protocol.CodeOK: 1}, End: EndOK, Replay: replay, Payload: b}
}

func refusedCopy(code protocol.Code) *Copy {
	return &Copy{Sends: 1, Codes: map[protocol.Code]int{code: 1}, End: EndRefused, Code: code}
}

// cleanRun is a consistent run: a purchase answered twice (first run and
// replay), an IAP, a claim of one mail, a refused purchase.
func cleanRun() ([]*Request, *Snapshot) {
	buy := game.BuyResult{ItemID: "gold_small", Gold: 2000, Gems: 90, Paid: 10}
	iap := game.IAPResult{ProductID: "gems_100", Store: "google", TransactionID: "dev-t1", Granted: true, Gems: 190, Gold: 2000}
	claim := game.ClaimResult{MailIDs: []int64{7}, Gold: 100}
	claim.Balance.Gold, claim.Balance.Gems = 2100, 190
	reqs := []*Request{
		{RID: "r1", Cmd: game.CmdShopBuy, UserKey: user, Copies: []*Copy{okCopy(false, buy), okCopy(true, buy)}},
		{RID: "r2", Cmd: game.CmdShopBuyIAP, UserKey: user, Store: "google", TransactionID: "dev-t1", Copies: []*Copy{okCopy(false, iap)}},
		{RID: "r3", Cmd: game.CmdMailClaimAll, UserKey: user, Copies: []*Copy{okCopy(false, claim)}},
		{RID: "r4", Cmd: game.CmdShopBuy, UserKey: user, Copies: []*Copy{refusedCopy(game.CodeNotEnoughGems), refusedCopy(game.CodeNotEnoughGems)}},
	}
	snap := &Snapshot{
		Players:   map[int64]PlayerRow{user: {Gold: 2100, Gems: 190}},
		Inventory: map[int64]map[string]int64{},
		Ledger: []LedgerRow{
			{ID: 1, UserKey: user, Currency: "gems", Delta: -10, BalanceAfter: 90, Reason: "shop:gold_small", RequestID: "r1"},
			{ID: 2, UserKey: user, Currency: "gold", Delta: 1000, BalanceAfter: 2000, Reason: "shop:gold_small", RequestID: "r1"},
			{ID: 3, UserKey: user, Currency: "gems", Delta: 100, BalanceAfter: 190, Reason: "iap:gems_100", RequestID: "r2"},
			{ID: 4, UserKey: user, Currency: "pay:USD", Delta: 990000, BalanceAfter: 990000, Reason: "iap:gems_100", RequestID: "r2"},
			{ID: 5, UserKey: user, Currency: "gold", Delta: 100, BalanceAfter: 2100, Reason: "mail:7", RequestID: "r3"},
		},
		Purchases: []PurchaseRow{{Store: "google", TransactionID: "dev-t1", UserKey: user, RequestID: "r2"}},
		Keys: map[KeyID]KeyRow{
			{user, game.CmdShopBuy, "r1"}:      {Done: true},
			{user, game.CmdShopBuyIAP, "r2"}:   {Done: true},
			{user, game.CmdMailClaimAll, "r3"}: {Done: true},
			{user, game.CmdShopBuy, "r4"}:      {Done: true, Code: game.CodeNotEnoughGems},
		},
		Mails:       []MailRow{{ID: 7, UserKey: user, ClaimedAt: 1, Gold: 100}},
		Redemptions: []Redemption{{Store: "google", TransactionID: "dev-t1", UserKey: user}},
	}
	return reqs, snap
}

func TestAuditCleanRun(t *testing.T) {
	reqs, snap := cleanRun()
	a := AuditRun(reqs, snap, 1000, 100)
	if v := a.Violations(); v != 0 {
		t.Fatalf("%d violations in a clean run: %+v", v, a)
	}
	if a.Requests != 4 || a.Confirmed != 3 || a.Refused != 1 || a.Applied != 3 || a.Copies != 6 {
		t.Errorf("requests %d confirmed %d refused %d applied %d copies %d, want 4 3 1 3 6", a.Requests, a.Confirmed, a.Refused, a.Applied, a.Copies)
	}
	if a.Finals["ok_replay"] != 1 || a.Finals["ok"] != 3 || a.Answers[game.CodeNotEnoughGems] != 2 {
		t.Errorf("finals %v answers %v", a.Finals, a.Answers)
	}
}

// Each case breaks the clean run in one way and expects exactly that count.
func TestAuditFindsEachViolation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func([]*Request, *Snapshot)
		count  func(*Audit) int
	}{
		{"lost replay: key, purchase and ledger rows gone, redemption left", func(r []*Request, s *Snapshot) {
			s.Ledger = s.Ledger[:2]
			s.Ledger = append(s.Ledger, LedgerRow{ID: 5, UserKey: user, Currency: "gold", Delta: 100, BalanceAfter: 2100, Reason: "mail:7", RequestID: "r3"})
			s.Players[user] = PlayerRow{Gold: 2100, Gems: 90}
			s.Purchases = nil
			delete(s.Keys, KeyID{user, game.CmdShopBuyIAP, "r2"})
		}, func(a *Audit) int { return a.LostConfirmed }},
		{"lost key row only", func(r []*Request, s *Snapshot) {
			delete(s.Keys, KeyID{user, game.CmdShopBuy, "r1"})
		}, func(a *Audit) int { return a.LostConfirmed }},
		{"applied but refused (a final game code)", func(r []*Request, s *Snapshot) {
			r[0].Copies = []*Copy{refusedCopy(game.CodeNotEnoughGems)}
		}, func(a *Audit) int { return a.AppliedButRefusedByCode[game.CodeNotEnoughGems] }},
		{"applied but answered internal", func(r []*Request, s *Snapshot) {
			r[1].Copies = []*Copy{refusedCopy(protocol.CodeInternal)}
		}, func(a *Audit) int { return a.AppliedButRefusedByCode[protocol.CodeInternal] }},
		{"redeemed, not granted", func(r []*Request, s *Snapshot) {
			s.Redemptions = append(s.Redemptions, Redemption{Store: "apple", TransactionID: "dev-t9", UserKey: user})
		}, func(a *Audit) int { return a.RedeemedNotGranted }},
		{"applied twice", func(r []*Request, s *Snapshot) {
			s.Ledger = append(s.Ledger, LedgerRow{ID: 6, UserKey: user, Currency: "gems", Delta: -10, BalanceAfter: 180, Reason: "shop:gold_small", RequestID: "r1"})
			s.Players[user] = PlayerRow{Gold: 2100, Gems: 180}
		}, func(a *Audit) int { return a.AppliedTwice }},
		{"mail paid twice", func(r []*Request, s *Snapshot) {
			s.Ledger = append(s.Ledger, LedgerRow{ID: 6, UserKey: user, Currency: "gold", Delta: 100, BalanceAfter: 2200, Reason: "mail:7", RequestID: "r5"})
			s.Players[user] = PlayerRow{Gold: 2200, Gems: 190}
		}, func(a *Audit) int { return a.AppliedTwice }},
		{"balance unequal to its ledger", func(r []*Request, s *Snapshot) {
			s.Players[user] = PlayerRow{Gold: 2100, Gems: 191}
		}, func(a *Audit) int { return a.BalanceMismatch }},
		{"item count unequal to its ledger", func(r []*Request, s *Snapshot) {
			s.Inventory[user] = map[string]int64{"potion": 1}
		}, func(a *Audit) int { return a.BalanceMismatch }},
		{"ledger rows that do not chain", func(r []*Request, s *Snapshot) {
			s.Ledger[1].BalanceAfter = 1999
		}, func(a *Audit) int { return a.BalanceMismatch }},
		{"answer unequal to the committed balance", func(r []*Request, s *Snapshot) {
			r[0].Copies = []*Copy{okCopy(false, game.BuyResult{ItemID: "gold_small", Gold: 2000, Gems: 80, Paid: 10})}
		}, func(a *Audit) int { return a.AnswerMismatch }},
		{"two OK answers that differ", func(r []*Request, s *Snapshot) {
			r[0].Copies = append(r[0].Copies, okCopy(true, game.BuyResult{ItemID: "gold_small", Gold: 3000, Gems: 80, Paid: 10}))
		}, func(a *Audit) int { return a.AnswerMismatch }},
		{"mail claimed, not paid", func(r []*Request, s *Snapshot) {
			s.Mails = append(s.Mails, MailRow{ID: 8, UserKey: user, ClaimedAt: 5, Gems: 3})
		}, func(a *Audit) int { return a.MailMismatch }},
		{"an answer 40 (internal) on a request not applied", func(r []*Request, s *Snapshot) {
			r[3].Copies[1] = refusedCopy(protocol.CodeInternal)
		}, func(a *Audit) int { return a.Internal }},
		{"unanswered", func(r []*Request, s *Snapshot) {
			r[3].Copies = []*Copy{{Sends: 3, Lost: 3, End: EndGaveUp, Code: -1}}
		}, func(a *Audit) int { return a.Unanswered }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, snap := cleanRun()
			tc.mutate(reqs, snap)
			a := AuditRun(reqs, snap, 1000, 100)
			if got := tc.count(a); got != 1 {
				t.Errorf("count %d, want 1 (%+v)", got, a)
			}
			if a.Violations() == 0 {
				t.Error("no violations")
			}
		})
	}
}

// A request answered 40 is one violation: Internal when it was not
// applied, AppliedButRefused when it was; never both.
func TestAuditInternalCountedOnce(t *testing.T) {
	reqs, snap := cleanRun()
	reqs[3].Copies = []*Copy{refusedCopy(protocol.CodeInternal)}
	a := AuditRun(reqs, snap, 1000, 100)
	if a.Internal != 1 || a.AppliedButRefused != 0 || a.InternalAnswers != 1 || a.Violations() != 1 {
		t.Errorf("not applied: internal %d applied but refused %d answers %d violations %d, want 1 0 1 1", a.Internal, a.AppliedButRefused, a.InternalAnswers, a.Violations())
	}
	reqs, snap = cleanRun()
	reqs[0].Copies = []*Copy{okCopy(false, game.BuyResult{ItemID: "gold_small", Gold: 2000, Gems: 90, Paid: 10}), refusedCopy(protocol.CodeInternal), refusedCopy(protocol.CodeRequestIDReused)}
	a = AuditRun(reqs, snap, 1000, 100)
	if a.Internal != 0 || a.AppliedButRefused != 1 || a.InternalAnswers != 1 || a.Violations() != 1 ||
		a.AppliedButRefusedByCode[protocol.CodeInternal] != 1 || a.AppliedButRefusedByCode[protocol.CodeRequestIDReused] != 1 ||
		a.AppliedButRefusedConfirmed != 1 {
		t.Errorf("applied: internal %d applied but refused %d %v answers %d violations %d, want 0 1 {40:1 31:1} 1 1",
			a.Internal, a.AppliedButRefused, a.AppliedButRefusedByCode, a.InternalAnswers, a.Violations())
	}
}

// A run's violations add the game server's crashes and logins answered 40.
func TestResultViolations(t *testing.T) {
	reqs, snap := cleanRun()
	res := &Result{Audit: AuditRun(reqs, snap, 1000, 100), LoginAnswers: map[protocol.Code]int{protocol.CodeOK: 3},
		FaultKind: map[string]int{KillGameServer: 1, RestartRedis: 1, KillMariaDB: 2, FreezeMariaDB: 1}}
	res.Gaps = gaps(res)
	if v := res.Violations(); v != 0 {
		t.Fatalf("%d violations, want 0 (gaps %q)", v, res.Gaps)
	}
	res.Crashes = 1
	res.LoginAnswers[protocol.CodeInternal] = 2
	if v := res.Violations(); v != 3 {
		t.Errorf("%d violations, want 3 (1 crash, 2 logins answered 40)", v)
	}
}

// A run that never applied an in-app purchase or never froze mariadbd has
// gaps, and fails.
func TestResultGaps(t *testing.T) {
	reqs, snap := cleanRun()
	reqs[1].Copies = []*Copy{refusedCopy(protocol.CodeForbidden)}
	snap.Purchases, snap.Redemptions = nil, nil
	snap.Ledger = append(snap.Ledger[:2], snap.Ledger[4])
	snap.Ledger[2].BalanceAfter = 2100
	snap.Players[user] = PlayerRow{Gold: 2100, Gems: 90}
	delete(snap.Keys, KeyID{user, game.CmdShopBuyIAP, "r2"})
	res := &Result{Audit: AuditRun(reqs, snap, 1000, 100), FaultKind: map[string]int{KillGameServer: 1, RestartRedis: 1, KillMariaDB: 2}}
	if v := res.Audit.Violations(); v != 0 {
		t.Fatalf("audit: %d violations, want 0: %v", v, res.Audit.Examples)
	}
	res.Gaps = gaps(res)
	if len(res.Gaps) != 2 || res.Violations() != 2 {
		t.Errorf("gaps %q, violations %d; want the IAP and the freeze", res.Gaps, res.Violations())
	}
}
