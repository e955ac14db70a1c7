package fault

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
)

// Snapshot is what the databases hold after recovery: the rows of the game
// databases (every user in them is a player of the run) and the common
// database's receipt redemptions.
type Snapshot struct {
	Players   map[int64]PlayerRow
	Inventory map[int64]map[string]int64
	Ledger    []LedgerRow
	Purchases []PurchaseRow
	Keys      map[KeyID]KeyRow
	Mails     []MailRow
	// Redemptions are the common database's redeemed store transactions.
	Redemptions []Redemption
}

// PlayerRow is a players row's balances.
type PlayerRow struct{ Gold, Gems int64 }

// LedgerRow is a ledger row.
type LedgerRow struct {
	ID, UserKey         int64
	Currency            string
	Delta, BalanceAfter int64
	Reason, RequestID   string
}

// PurchaseRow is a purchases row (an in-app purchase granted).
type PurchaseRow struct {
	Store, TransactionID string
	UserKey              int64
	RequestID            string
}

// KeyID names an idempotency key row.
type KeyID struct {
	UserKey      int64
	Command, RID string
}

// KeyRow is an idempotency key row: done, and the stored result's code.
type KeyRow struct {
	Done bool
	Code protocol.Code
}

// MailRow is a mails row.
type MailRow struct {
	ID, UserKey int64
	ClaimedAt   int64
	Gold, Gems  int64
	Items       []game.ItemCount
}

// Redemption is a redeemed store transaction (anticheat redemptions table).
type Redemption struct {
	Store, TransactionID string
	UserKey              int64
}

// Audit is the verdict of the databases against every answer the clients
// got. The counts are of logical requests (request ids) unless said
// otherwise; Examples holds a few of each violation, for the report.
type Audit struct {
	Requests, Copies, Sends, LostReplies int
	// ByCommand counts requests per command, AppliedByCommand those applied.
	ByCommand, AppliedByCommand map[string]int
	// Answers counts every answer the copies got, by code (each send that
	// got one); Finals counts the copies' ends: "ok", "ok_replay",
	// "refused_<code>", "gave_up".
	Answers map[protocol.Code]int
	Finals  map[string]int

	// Confirmed: requests with at least one OK answer. Refused: none OK,
	// at least one copy ended on a final code. Unanswered: every copy gave
	// up. Applied: the databases hold the request's effects.
	Confirmed, Refused, Unanswered, Applied int

	// LostConfirmed: confirmed requests whose effects, or whose stored
	// result, the databases do not hold.
	LostConfirmed int
	// AppliedButRefused: requests applied in the databases of which a copy
	// ended on a final refusal (PROTOCOL.md §8: not retryable; 40 internal
	// included, as the client stops there too). AppliedButRefusedByCode
	// splits them by that code (a request whose copies ended on two codes
	// is under both, and once in the total).
	AppliedButRefused       int
	AppliedButRefusedByCode map[protocol.Code]int
	// AppliedButRefusedConfirmed is how many of AppliedButRefused another
	// copy got an OK answer for (the client was told both).
	AppliedButRefusedConfirmed int
	// RedeemedNotGranted: receipts redeemed in the common database with
	// no purchases row in any game database.
	RedeemedNotGranted int
	// AppliedTwice: requests with two ledger rows for one currency and
	// reason, plus mails paid more than once.
	AppliedTwice int
	// BalanceMismatch: players whose gold, gems or an item count differs
	// from the start value plus the ledger's deltas, or whose ledger rows
	// do not chain (balance_after = previous + delta).
	BalanceMismatch int
	// AnswerMismatch: confirmed requests whose answer disagrees with the
	// committed rows (balances after, mails claimed), or whose OK answers
	// differ from each other.
	AnswerMismatch int
	// MailMismatch: mails marked claimed without being paid, or paid
	// without being marked claimed.
	MailMismatch int
	// Internal counts the requests answered 40 (internal) at least once
	// that are not applied (the applied ones are in AppliedButRefused): a
	// backend failure must be 41 (unavailable), never 40, so each is a
	// violation, counted once.
	Internal int
	// InternalAnswers counts the requests answered 40 at least once,
	// applied or not (a figure, not a separate violation).
	InternalAnswers int
	// AppliedUnanswered: applied requests whose copies all gave up (not a
	// violation: the client never heard).
	AppliedUnanswered int

	Examples map[string][]string
}

// Violations is the number of violations of the run's promises.
func (a *Audit) Violations() int {
	return a.LostConfirmed + a.AppliedButRefused + a.RedeemedNotGranted + a.AppliedTwice + a.BalanceMismatch +
		a.AnswerMismatch + a.MailMismatch + a.Internal + a.Unanswered
}

const maxExamples = 5

func (a *Audit) example(kind, format string, args ...any) {
	if len(a.Examples[kind]) < maxExamples {
		a.Examples[kind] = append(a.Examples[kind], fmt.Sprintf(format, args...))
	}
}

// mailReason is the ledger reason of a claimed mail's payment.
func mailReason(id int64) string { return "mail:" + strconv.FormatInt(id, 10) }

// AuditRun checks snap against every answer in reqs. startGold and
// startGems are a new player's balances.
func AuditRun(reqs []*Request, snap *Snapshot, startGold, startGems int64) *Audit {
	a := &Audit{ByCommand: map[string]int{}, AppliedByCommand: map[string]int{}, Answers: map[protocol.Code]int{}, Finals: map[string]int{},
		AppliedButRefusedByCode: map[protocol.Code]int{}, Examples: map[string][]string{}}

	ledgerByRID := map[string][]LedgerRow{}
	for _, l := range snap.Ledger {
		if l.RequestID != "" {
			ledgerByRID[l.RequestID] = append(ledgerByRID[l.RequestID], l)
		}
	}
	purchaseByRID := map[string][]PurchaseRow{}
	purchaseByTx := map[[2]string]PurchaseRow{}
	for _, p := range snap.Purchases {
		purchaseByRID[p.RequestID] = append(purchaseByRID[p.RequestID], p)
		purchaseByTx[[2]string{p.Store, p.TransactionID}] = p
	}

	for _, r := range reqs {
		a.Requests++
		a.ByCommand[r.Cmd]++
		a.Copies += len(r.Copies)
		var oks []*Copy
		refusedCodes := map[protocol.Code]bool{}
		internal := false
		for _, c := range r.Copies {
			a.Sends += c.Sends
			a.LostReplies += c.Lost
			for code, n := range c.Codes {
				a.Answers[code] += n
				if code == protocol.CodeInternal {
					internal = true
				}
			}
			switch c.End {
			case EndOK:
				oks = append(oks, c)
				if c.Replay {
					a.Finals["ok_replay"]++
				} else {
					a.Finals["ok"]++
				}
			case EndRefused:
				refusedCodes[c.Code] = true
				a.Finals[fmt.Sprintf("refused_%d_%s", int(c.Code), c.Code)]++
			default:
				a.Finals["gave_up"]++
			}
		}
		rows := ledgerByRID[r.RID]
		applied := len(rows) > 0 || len(purchaseByRID[r.RID]) > 0
		if applied {
			a.Applied++
			a.AppliedByCommand[r.Cmd]++
		}
		if internal {
			a.InternalAnswers++
			if !applied {
				a.Internal++
				a.example("internal", "%s %s (user %d): answered 40, not applied", r.Cmd, r.RID, r.UserKey)
			}
		}
		switch {
		case len(oks) > 0:
			a.Confirmed++
		case len(refusedCodes) > 0:
			a.Refused++
		default:
			a.Unanswered++
			a.example("unanswered", "%s %s (user %d): no copy got a final answer", r.Cmd, r.RID, r.UserKey)
			if applied {
				a.AppliedUnanswered++
			}
		}
		if applied && len(refusedCodes) > 0 {
			a.AppliedButRefused++
			if len(oks) > 0 {
				a.AppliedButRefusedConfirmed++
			}
			for code := range refusedCodes {
				a.AppliedButRefusedByCode[code]++
				a.example("applied_but_refused", "%s %s (user %d): applied (%d ledger rows), a copy answered %d %s, %d of %d copies OK", r.Cmd, r.RID, r.UserKey, len(rows), int(code), code, len(oks), len(r.Copies))
			}
		}
		// Applied twice: one request writes one row per currency and reason.
		seen := map[[2]string]bool{}
		for _, l := range rows {
			k := [2]string{l.Currency, l.Reason}
			if seen[k] {
				a.AppliedTwice++
				a.example("applied_twice", "%s %s (user %d): two ledger rows %s/%s", r.Cmd, r.RID, r.UserKey, l.Currency, l.Reason)
				break
			}
			seen[k] = true
		}
		if len(oks) == 0 {
			continue
		}
		// Confirmed: every OK answer is the same stored result...
		for _, c := range oks[1:] {
			if !jsonEqual(c.Payload, oks[0].Payload) {
				a.AnswerMismatch++
				a.example("answer_mismatch", "%s %s: two OK answers differ: %s / %s", r.Cmd, r.RID, oks[0].Payload, c.Payload)
				break
			}
		}
		// ...and the databases hold it.
		key, hasKey := snap.Keys[KeyID{r.UserKey, r.Cmd, r.RID}]
		lost, why := false, ""
		switch {
		case !hasKey:
			lost, why = true, "no idempotency key row"
		case !key.Done || key.Code != protocol.CodeOK:
			lost, why = true, fmt.Sprintf("key row done=%v code=%d", key.Done, key.Code)
		}
		mismatch := checkAnswer(r, oks[0].Payload, rows, purchaseByRID[r.RID], purchaseByTx)
		if mismatch == errLost {
			lost, why = true, why+" no effects"
		} else if mismatch != "" {
			a.AnswerMismatch++
			a.example("answer_mismatch", "%s %s (user %d): %s", r.Cmd, r.RID, r.UserKey, mismatch)
		}
		if lost {
			a.LostConfirmed++
			a.example("lost_confirmed", "%s %s (user %d): answered OK (replay=%v), databases: %s", r.Cmd, r.RID, r.UserKey, oks[0].Replay, strings.TrimSpace(why))
		}
	}

	// Receipts redeemed and never granted.
	for _, red := range snap.Redemptions {
		if _, ok := purchaseByTx[[2]string{red.Store, red.TransactionID}]; !ok {
			a.RedeemedNotGranted++
			a.example("redeemed_not_granted", "%s %s (user %d): redeemed, no purchases row", red.Store, red.TransactionID, red.UserKey)
		}
	}

	// Mails: paid once, and claimed exactly when paid.
	type mailPay struct {
		user     int64
		reason   string
		currency string
	}
	paid := map[mailPay]int{}
	paidMail := map[[2]any]bool{}
	for _, l := range snap.Ledger {
		if strings.HasPrefix(l.Reason, "mail:") {
			paid[mailPay{l.UserKey, l.Reason, l.Currency}]++
			paidMail[[2]any{l.UserKey, l.Reason}] = true
		}
	}
	for k, n := range paid {
		if n > 1 {
			a.AppliedTwice++
			a.example("applied_twice", "user %d %s paid %d times in %s", k.user, k.reason, n, k.currency)
		}
	}
	for _, m := range snap.Mails {
		pays := m.Gold > 0 || m.Gems > 0 || len(m.Items) > 0
		isPaid := paidMail[[2]any{m.UserKey, mailReason(m.ID)}]
		if pays && (m.ClaimedAt != 0) != isPaid {
			a.MailMismatch++
			a.example("mail_mismatch", "user %d mail %d: claimed_at=%d, paid=%v", m.UserKey, m.ID, m.ClaimedAt, isPaid)
		}
	}

	// Balances against the ledger.
	byUser := map[int64][]LedgerRow{}
	for _, l := range snap.Ledger {
		byUser[l.UserKey] = append(byUser[l.UserKey], l)
	}
	users := make([]int64, 0, len(snap.Players))
	for u := range snap.Players {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users {
		if msg := checkBalances(snap.Players[u], snap.Inventory[u], byUser[u], startGold, startGems); msg != "" {
			a.BalanceMismatch++
			a.example("balance_mismatch", "user %d: %s", u, msg)
		}
	}
	return a
}

// errLost is checkAnswer's verdict for a confirmed request without effects.
const errLost = "lost"

// checkAnswer compares a confirmed request's answer with its committed rows:
// "" when they agree, errLost when nothing it reported was committed.
func checkAnswer(r *Request, answer []byte, rows []LedgerRow, purchases []PurchaseRow, byTx map[[2]string]PurchaseRow) string {
	after := func(currency string) (int64, bool) {
		for _, l := range rows {
			if l.Currency == currency {
				return l.BalanceAfter, true
			}
		}
		return 0, false
	}
	switch r.Cmd {
	case game.CmdShopBuy:
		var out game.BuyResult
		if err := json.Unmarshal(answer, &out); err != nil {
			return "undecodable answer: " + err.Error()
		}
		if len(rows) == 0 {
			return errLost
		}
		if g, ok := after("gems"); out.Paid > 0 && (!ok || g != out.Gems) {
			return fmt.Sprintf("answered gems %d, ledger gems row %d (present %v)", out.Gems, g, ok)
		}
		if g, ok := after("gold"); ok && g != out.Gold {
			return fmt.Sprintf("answered gold %d, ledger gold row %d", out.Gold, g)
		}
	case game.CmdShopBuyIAP:
		var out game.IAPResult
		if err := json.Unmarshal(answer, &out); err != nil {
			return "undecodable answer: " + err.Error()
		}
		if !out.Granted {
			// Granted before by another request: that purchase row must
			// exist (each of the run's receipts has its own request id, so
			// this is not expected).
			if _, ok := byTx[[2]string{out.Store, out.TransactionID}]; !ok {
				return errLost
			}
			return fmt.Sprintf("answered granted=false for the run's own receipt %s", out.TransactionID)
		}
		if len(purchases) == 0 || len(rows) == 0 {
			return errLost
		}
		if purchases[0].TransactionID != r.TransactionID || purchases[0].Store != r.Store {
			return fmt.Sprintf("purchase row %s/%s, receipt %s/%s", purchases[0].Store, purchases[0].TransactionID, r.Store, r.TransactionID)
		}
		if g, ok := after("gems"); !ok || g != out.Gems {
			return fmt.Sprintf("answered gems %d, ledger gems row %d (present %v)", out.Gems, g, ok)
		}
	case game.CmdMailClaimAll:
		var out game.ClaimResult
		if err := json.Unmarshal(answer, &out); err != nil {
			return "undecodable answer: " + err.Error()
		}
		claimed := map[string]bool{}
		for _, l := range rows {
			claimed[l.Reason] = true
		}
		if len(out.MailIDs) > 0 && len(rows) == 0 {
			return errLost
		}
		want := map[string]bool{}
		for _, id := range out.MailIDs {
			want[mailReason(id)] = true
		}
		for reason := range want {
			if !claimed[reason] {
				return fmt.Sprintf("answered mails %v, %s not paid by this request", out.MailIDs, reason)
			}
		}
		for reason := range claimed {
			if !want[reason] {
				return fmt.Sprintf("answered mails %v, this request also paid %s", out.MailIDs, reason)
			}
		}
	}
	return ""
}

// checkBalances compares a player's balances with the ledger: "" when they
// agree.
func checkBalances(p PlayerRow, inv map[string]int64, rows []LedgerRow, startGold, startGems int64) string {
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	last := map[string]int64{"gold": startGold, "gems": startGems}
	for _, l := range rows {
		prev := last[l.Currency] // items and payments start at 0
		if prev+l.Delta != l.BalanceAfter {
			return fmt.Sprintf("ledger row %d (%s %+d) says %d after %d", l.ID, l.Currency, l.Delta, l.BalanceAfter, prev)
		}
		last[l.Currency] = l.BalanceAfter
	}
	if last["gold"] != p.Gold || last["gems"] != p.Gems {
		return fmt.Sprintf("gold %d gems %d, ledger says %d and %d", p.Gold, p.Gems, last["gold"], last["gems"])
	}
	for cur, v := range last {
		if item, ok := strings.CutPrefix(cur, "item:"); ok && inv[item] != v {
			return fmt.Sprintf("%d of %s, ledger says %d", inv[item], item, v)
		}
	}
	for item, n := range inv {
		if n != last["item:"+item] {
			return fmt.Sprintf("%d of %s, ledger says %d", n, item, last["item:"+item])
		}
	}
	return ""
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
