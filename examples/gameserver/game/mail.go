package game

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// Mailbox limits and defaults.
const (
	// DefaultMailTTL is how long a mail can be claimed when Mail.ExpiresAt
	// is zero: 30 days.
	DefaultMailTTL = 30 * 24 * time.Hour
	// MaxMailTTL bounds Mail.ExpiresAt: at most a year ahead.
	MaxMailTTL = 365 * 24 * time.Hour
	// MaxMailTitleLen and MaxMailBodyLen bound a mail's texts (bytes).
	MaxMailTitleLen = 100
	MaxMailBodyLen  = 2000
	// MaxMailKeyLen bounds Mail.Key (bytes).
	MaxMailKeyLen = 128
	// MaxMailList is the most mails mail.list returns (the newest).
	MaxMailList = 100
	// MaxClaimAll is the most mails one mail.claim_all claims (the oldest
	// first); the client calls it again while Remaining is positive.
	MaxClaimAll = 100
	// WelcomeMailKey is the Mail.Key of the welcome mail.
	WelcomeMailKey = "welcome"
)

// Mail is a system mail with attachments, as an operator or the game sends
// it with SendMail.
type Mail struct {
	// Key, if set, makes the mail unique per user: sending a mail with a
	// key the user already has (claimed or not) sends nothing and returns
	// the existing mail's id, so an operator's grant can be retried. At
	// most MaxMailKeyLen bytes.
	Key string
	// Title (1..MaxMailTitleLen bytes) and Body (up to MaxMailBodyLen),
	// valid UTF-8.
	Title, Body string
	// Gold, Gems (0..MaxGrant) and Items (see MaxGrantItems) are the
	// attachments.
	Gold, Gems int64
	Items      []ItemCount
	// ExpiresAt is when the mail can no longer be claimed. Zero: now +
	// DefaultMailTTL; otherwise in the future, at most MaxMailTTL ahead.
	ExpiresAt time.Time
}

// WelcomeMail is the mail every new player gets.
func WelcomeMail() Mail {
	return Mail{
		Key: WelcomeMailKey, Title: "Welcome to madang!", Body: "A little something to start your adventure.",
		Gold: 500, Gems: 50, Items: []ItemCount{{ItemID: "potion", Count: 3}, {ItemID: "elixir", Count: 1}},
	}
}

// MailView is one mail in mail.list.
type MailView struct {
	ID        int64       `json:"mail_id"`
	Title     string      `json:"title"`
	Body      string      `json:"body"`
	Gold      int64       `json:"gold"`
	Gems      int64       `json:"gems"`
	Items     []ItemCount `json:"items"`
	SentAt    int64       `json:"sent_at"`    // Unix ms
	ExpiresAt int64       `json:"expires_at"` // Unix ms
}

// MailList is mail.list's answer: the unclaimed, unexpired mails, newest
// first, at most MaxMailList.
type MailList struct {
	Mails []MailView `json:"mails"`
}

// ClaimMail is mail.claim's payload.
type ClaimMail struct {
	MailID int64 `json:"mail_id"`
}

// ClaimResult is the answer of mail.claim and mail.claim_all: the mails
// claimed, what they gave in total, and the balances after.
type ClaimResult struct {
	MailIDs []int64     `json:"mail_ids"`
	Gold    int64       `json:"gold"`  // gold received
	Gems    int64       `json:"gems"`  // gems received
	Items   []ItemCount `json:"items"` // items received, by item id
	// Balance is the player's gold and gems after the claim.
	Balance struct {
		Gold int64 `json:"gold"`
		Gems int64 `json:"gems"`
	} `json:"balance"`
	// Remaining (claim_all) is how many claimable mails are left beyond
	// MaxClaimAll.
	Remaining int `json:"remaining"`
}

// ErrBadMail is the error class of SendMail's refusals (CodeBadRequest; an
// attachment item missing from the game data: CodeUnknownItem, also
// wrapping ErrUnknownItem).
var ErrBadMail = errors.New("game: bad mail")

// check validates m against the item table of t, setting a zero ExpiresAt.
func (m *Mail) check(now time.Time, t *Tables) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadMail}, args...)...)
	}
	switch {
	case len(m.Key) > MaxMailKeyLen:
		return bad("key longer than %d bytes", MaxMailKeyLen)
	case m.Title == "" || len(m.Title) > MaxMailTitleLen || !utf8.ValidString(m.Title):
		return bad("title must be 1..%d bytes of UTF-8", MaxMailTitleLen)
	case len(m.Body) > MaxMailBodyLen || !utf8.ValidString(m.Body):
		return bad("body must be at most %d bytes of UTF-8", MaxMailBodyLen)
	case m.Gold < 0 || m.Gold > MaxGrant || m.Gems < 0 || m.Gems > MaxGrant:
		return bad("gold and gems must be 0..%d", MaxGrant)
	}
	if err := checkItems(m.Items, t); err != nil {
		if protocol.CodeOf(err) == CodeUnknownItem {
			return fmt.Errorf("%w: %w", ErrBadMail, err) // keeps the code
		}
		return bad("%v", err)
	}
	if m.ExpiresAt.IsZero() {
		m.ExpiresAt = now.Add(DefaultMailTTL)
	}
	if !m.ExpiresAt.After(now) || m.ExpiresAt.After(now.Add(MaxMailTTL)) {
		return bad("expiry must be in the future, at most %v ahead", MaxMailTTL)
	}
	return nil
}

// SendMail puts m in userKey's mailbox and returns the mail's id. The player
// must exist (CodeNoPlayer otherwise). A bad mail is refused with an error
// wrapping ErrBadMail; an attachment naming an item that the published game
// data (Config.Data's Published, the defaults without Config.Data) does not
// have also wraps ErrUnknownItem and carries CodeUnknownItem. With m.Key set, a mail with that key already sent to
// the user is not sent again: its id is returned. Operators take back a mail
// not yet claimed with RecallMail.
func (g *Game) SendMail(ctx context.Context, userKey int64, m Mail) (int64, error) {
	var id int64
	now := g.cfg.Now()
	if err := m.check(now, g.publishedTables(ctx)); err != nil {
		return 0, err
	}
	err := g.cfg.Router.Tx(ctx, userKey, func(ctx context.Context, tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM players WHERE user_key = ?", userKey).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return errNoPlayer()
		}
		if err != nil {
			return err
		}
		id, err = g.sendMailTx(ctx, tx, userKey, m, now.UnixMilli())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("game: send mail to %d: %w", userKey, err)
	}
	return id, nil
}

// sendMailTx inserts m (already checked, or the built-in welcome mail) in
// tx and returns its id (the existing mail's when its key exists).
func (g *Game) sendMailTx(ctx context.Context, tx *sql.Tx, userKey int64, m Mail, nowMs int64) (int64, error) {
	return g.insertMail(ctx, tx, userKey, m, nowMs, false)
}

// queueMailTx inserts m in tx unless a mail of its key exists, deferred
// (shard.Deferred: sent with the transaction's next statement or its
// COMMIT, an error failing the commit), for a caller that needs no id:
// the welcome mail and the login bonuses.
func (g *Game) queueMailTx(ctx context.Context, tx *sql.Tx, userKey int64, m Mail, nowMs int64) error {
	_, err := g.insertMail(ctx, tx, userKey, m, nowMs, true)
	return err
}

func (g *Game) insertMail(ctx context.Context, tx *sql.Tx, userKey int64, m Mail, nowMs int64, deferred bool) (int64, error) {
	expires := m.ExpiresAt.UnixMilli()
	if m.ExpiresAt.IsZero() {
		expires = nowMs + DefaultMailTTL.Milliseconds()
	}
	items := m.Items
	if items == nil {
		items = []ItemCount{}
	}
	itemsJSON, err := json.Marshal(items)
	if err != nil {
		return 0, err
	}
	var key any // NULL: unkeyed mails never collide
	if m.Key != "" {
		key = m.Key
	}
	ectx := ctx
	if deferred {
		ectx = shard.Deferred(ctx)
	}
	res, err := tx.ExecContext(ectx, g.sql.InsertIgnore()+
		" mails (user_key, mail_key, title, body, gold, gems, items, sent_at, expires_at, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
		userKey, key, m.Title, m.Body, m.Gold, m.Gems, string(itemsJSON), nowMs, expires)
	if err != nil || deferred {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return 0, err
	} else if n == 0 { // the key exists
		var id int64
		err := tx.QueryRowContext(ctx, "SELECT id FROM mails WHERE user_key = ? AND mail_key = ?", userKey, m.Key).Scan(&id)
		return id, err
	}
	return res.LastInsertId()
}

// RecallMail deletes userKey's mail id if it was not claimed yet (an
// operator taking back a grant), and reports whether it did.
func (g *Game) RecallMail(ctx context.Context, userKey, id int64) (bool, error) {
	var n int64
	err := g.cfg.Router.Tx(ctx, userKey, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM mails WHERE id = ? AND user_key = ? AND claimed_at = 0", id, userKey)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("game: recall mail %d of %d: %w", id, userKey, err)
	}
	return n > 0, nil
}

const mailColumns = "id, title, body, gold, gems, items, sent_at, expires_at"

type scanner interface{ Scan(...any) error }

func scanMail(row scanner) (MailView, error) {
	var m MailView
	var items string
	if err := row.Scan(&m.ID, &m.Title, &m.Body, &m.Gold, &m.Gems, &items, &m.SentAt, &m.ExpiresAt); err != nil {
		return m, err
	}
	if err := json.Unmarshal([]byte(items), &m.Items); err != nil {
		return m, fmt.Errorf("game: mail %d items: %w", m.ID, err)
	}
	if m.Items == nil {
		m.Items = []ItemCount{}
	}
	return m, nil
}

func (g *Game) mailList(ctx context.Context, req *protocol.Request, _ struct{}) (MailList, error) {
	userKey, err := userOf(req)
	if err != nil {
		return MailList{}, err
	}
	l, err := g.mails(ctx, userKey)
	return l, shard.ClassifyError(err)
}

// mails is mail.list's answer for userKey.
func (g *Game) mails(ctx context.Context, userKey int64) (MailList, error) {
	db, err := g.cfg.Router.DB(ctx, userKey)
	if err != nil {
		return MailList{}, err
	}
	rows, err := db.QueryContext(ctx, "SELECT "+mailColumns+" FROM mails WHERE user_key = ? AND claimed_at = 0 AND expires_at > ? ORDER BY id DESC LIMIT "+strconv.Itoa(MaxMailList),
		userKey, g.cfg.Now().UnixMilli())
	if err != nil {
		return MailList{}, fmt.Errorf("game: mails of %d: %w", userKey, err)
	}
	defer rows.Close()
	out := MailList{Mails: []MailView{}}
	for rows.Next() {
		m, err := scanMail(rows)
		if err != nil {
			return MailList{}, fmt.Errorf("game: mails of %d: %w", userKey, err)
		}
		out.Mails = append(out.Mails, m)
	}
	if err := rows.Err(); err != nil {
		return MailList{}, fmt.Errorf("game: mails of %d: %w", userKey, err)
	}
	return out, nil
}

func (g *Game) mailClaim(ctx context.Context, req *protocol.Request, in ClaimMail) (ClaimResult, error) {
	userKey, err := userOf(req)
	if err != nil {
		return ClaimResult{}, err
	}
	if in.MailID <= 0 {
		return ClaimResult{}, badRequest("mail_id must be positive")
	}
	tx, err := txOf(ctx, CmdMailClaim)
	if err != nil {
		return ClaimResult{}, err
	}
	// Lock the player row first (the game's lock order), then the mail.
	b, err := g.lockPlayer(ctx, tx, userKey)
	if err != nil {
		return ClaimResult{}, err
	}
	var claimedAt int64
	var m MailView
	row := tx.QueryRowContext(ctx, "SELECT "+mailColumns+", claimed_at FROM mails WHERE id = ? AND user_key = ?"+g.sql.ForUpdate(), in.MailID, userKey)
	var items string
	err = row.Scan(&m.ID, &m.Title, &m.Body, &m.Gold, &m.Gems, &items, &m.SentAt, &m.ExpiresAt, &claimedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return ClaimResult{}, protocol.Errorf(CodeNoMail, "no such mail")
	}
	if err != nil {
		return ClaimResult{}, fmt.Errorf("game: mail %d of %d: %w", in.MailID, userKey, err)
	}
	if err := json.Unmarshal([]byte(items), &m.Items); err != nil {
		return ClaimResult{}, fmt.Errorf("game: mail %d items: %w", m.ID, err)
	}
	now := g.cfg.Now().UnixMilli()
	switch {
	case claimedAt != 0:
		return ClaimResult{}, protocol.Errorf(CodeMailClaimed, "mail already claimed")
	case m.ExpiresAt <= now:
		return ClaimResult{}, protocol.Errorf(CodeMailExpired, "mail expired")
	}
	res := ClaimResult{MailIDs: []int64{}, Items: []ItemCount{}}
	res.Balance.Gold, res.Balance.Gems = b.Gold, b.Gems
	if err := g.claimTx(ctx, tx, userKey, &b, m, req.RequestID, now, &res); err != nil {
		return ClaimResult{}, err
	}
	return res, nil
}

// claimTx marks m claimed and pays its attachments to the player whose row
// tx locked (lockPlayer) with balances *b, updating *b and adding them to
// res.
func (g *Game) claimTx(ctx context.Context, tx *sql.Tx, userKey int64, b *balances, m MailView, requestID string, now int64, res *ClaimResult) error {
	r, err := tx.ExecContext(ctx, "UPDATE mails SET claimed_at = ? WHERE id = ? AND user_key = ? AND claimed_at = 0", now, m.ID, userKey)
	if err != nil {
		return fmt.Errorf("game: claim mail %d: %w", m.ID, err)
	}
	if n, err := r.RowsAffected(); err != nil || n != 1 {
		// The row was locked and unclaimed: this cannot happen unless the
		// lock order was broken. Fail retryably (roll back).
		return fmt.Errorf("game: claim mail %d: %d rows, %v", m.ID, n, err)
	}
	after, err := g.apply(ctx, tx, userKey, *b, change{Gold: m.Gold, Gems: m.Gems, Items: m.Items}, "mail:"+strconv.FormatInt(m.ID, 10), requestID)
	if err != nil {
		return err
	}
	*b = after
	res.MailIDs = append(res.MailIDs, m.ID)
	res.Gold += m.Gold
	res.Gems += m.Gems
	res.Items = addItems(res.Items, m.Items)
	res.Balance.Gold, res.Balance.Gems = b.Gold, b.Gems
	return nil
}

// addItems adds more to sum (kept in item id order).
func addItems(sum, more []ItemCount) []ItemCount {
next:
	for _, it := range more {
		for i := range sum {
			if sum[i].ItemID == it.ItemID {
				sum[i].Count += it.Count
				continue next
			}
		}
		at := len(sum)
		for i := range sum {
			if it.ItemID < sum[i].ItemID {
				at = i
				break
			}
		}
		sum = append(sum[:at], append([]ItemCount{it}, sum[at:]...)...)
	}
	return sum
}

func (g *Game) mailClaimAll(ctx context.Context, req *protocol.Request, _ struct{}) (ClaimResult, error) {
	userKey, err := userOf(req)
	if err != nil {
		return ClaimResult{}, err
	}
	tx, err := txOf(ctx, CmdMailClaimAll)
	if err != nil {
		return ClaimResult{}, err
	}
	b, err := g.lockPlayer(ctx, tx, userKey)
	if err != nil {
		return ClaimResult{}, err
	}
	res := ClaimResult{MailIDs: []int64{}, Items: []ItemCount{}}
	res.Balance.Gold, res.Balance.Gems = b.Gold, b.Gems
	now := g.cfg.Now().UnixMilli()
	rows, err := tx.QueryContext(ctx, "SELECT "+mailColumns+" FROM mails WHERE user_key = ? AND claimed_at = 0 AND expires_at > ? ORDER BY id LIMIT "+strconv.Itoa(MaxClaimAll+1)+g.sql.ForUpdate(),
		userKey, now)
	if err != nil {
		return ClaimResult{}, fmt.Errorf("game: mails of %d: %w", userKey, err)
	}
	var mails []MailView
	for rows.Next() {
		m, err := scanMail(rows)
		if err != nil {
			rows.Close()
			return ClaimResult{}, fmt.Errorf("game: mails of %d: %w", userKey, err)
		}
		mails = append(mails, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ClaimResult{}, fmt.Errorf("game: mails of %d: %w", userKey, err)
	}
	if len(mails) > MaxClaimAll {
		mails = mails[:MaxClaimAll]
		var left int
		err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM mails WHERE user_key = ? AND claimed_at = 0 AND expires_at > ?", userKey, now).Scan(&left)
		if err != nil {
			return ClaimResult{}, fmt.Errorf("game: mails of %d: %w", userKey, err)
		}
		res.Remaining = left - MaxClaimAll
	}
	if err := g.claimAllTx(ctx, tx, userKey, b, mails, req.RequestID, now, &res); err != nil {
		return ClaimResult{}, err
	}
	return res, nil
}

// claimAllTx claims mails (locked by tx, unclaimed, oldest first) for the
// player whose row tx locked with balances b, and adds them to res. It
// sends one statement per kind of write however many mails there are: one
// UPDATE of the mails, one of the player row (the sums), one multi-row
// upsert of the items and one read of their counts, and one multi-row
// INSERT of the ledger — the same rows as claiming the mails one by one
// (claimTx): per mail, in mail order, gems, gold, then its items, each
// with reason "mail:<id>" and the balance after that mail.
func (g *Game) claimAllTx(ctx context.Context, tx *sql.Tx, userKey int64, b balances, mails []MailView, requestID string, now int64, res *ClaimResult) error {
	if len(mails) == 0 {
		return nil
	}
	var gold, gems int64
	var all []ItemCount // every mail's items, in mail order
	ids := make([]any, 0, 2+len(mails))
	ids = append(ids, now, userKey)
	for _, m := range mails {
		gold += m.Gold
		gems += m.Gems
		for _, it := range m.Items {
			if it.Count <= 0 { // SendMail validates; a programming error
				return fmt.Errorf("game: mail %d item %q count %d is not a grant", m.ID, it.ItemID, it.Count)
			}
		}
		all = append(all, m.Items...)
		ids = append(ids, m.ID)
	}
	if b.Gold+gold < 0 {
		return errNotEnoughGold()
	}
	if b.Gems+gems < 0 {
		return errNotEnoughGems()
	}
	r, err := tx.ExecContext(ctx, "UPDATE mails SET claimed_at = ? WHERE user_key = ? AND claimed_at = 0 AND id IN (?"+strings.Repeat(", ?", len(mails)-1)+")", ids...)
	if err != nil {
		return fmt.Errorf("game: claim mails of %d: %w", userKey, err)
	}
	if n, err := r.RowsAffected(); err != nil || n != int64(len(mails)) {
		// The rows were locked and unclaimed: this cannot happen unless
		// the lock order was broken. Fail retryably (roll back).
		return fmt.Errorf("game: claim %d mails of %d: %d rows, %v", len(mails), userKey, n, err)
	}
	after := b
	if gold != 0 || gems != 0 {
		after.Gold, after.Gems = b.Gold+gold, b.Gems+gems
		if _, err := tx.ExecContext(shard.Deferred(ctx), "UPDATE players SET gold = ?, gems = ? WHERE user_key = ?", after.Gold, after.Gems, userKey); err != nil {
			return fmt.Errorf("game: update balances of %d: %w", userKey, err)
		}
	}
	var have map[string]int64 // item counts after all the mails
	if len(all) > 0 {
		if have, err = g.grantItems(ctx, tx, userKey, addItems(nil, all)); err != nil {
			return err
		}
		for _, it := range all { // back to the counts before the first mail
			have[it.ItemID] -= it.Count
		}
	}
	rows := make([]any, 0, 7*(2*len(mails)+len(all)))
	n := 0
	row := func(m MailView, currency string, delta, balance int64) {
		rows = append(rows, userKey, currency, delta, balance, "mail:"+strconv.FormatInt(m.ID, 10), requestID, now)
		n++
	}
	cur := b
	for _, m := range mails {
		cur.Gold, cur.Gems = cur.Gold+m.Gold, cur.Gems+m.Gems
		if m.Gems != 0 {
			row(m, "gems", m.Gems, cur.Gems)
		}
		if m.Gold != 0 {
			row(m, "gold", m.Gold, cur.Gold)
		}
		for _, it := range m.Items {
			have[it.ItemID] += it.Count
			row(m, "item:"+it.ItemID, it.Count, have[it.ItemID])
		}
		res.MailIDs = append(res.MailIDs, m.ID)
	}
	if n > 0 {
		q := "INSERT INTO ledger (user_key, currency, delta, balance_after, reason, request_id, at) VALUES (?, ?, ?, ?, ?, ?, ?)" +
			strings.Repeat(", (?, ?, ?, ?, ?, ?, ?)", n-1)
		if _, err := tx.ExecContext(shard.Deferred(ctx), q, rows...); err != nil {
			return fmt.Errorf("game: ledger of %d: %w", userKey, err)
		}
	}
	res.Gold += gold
	res.Gems += gems
	res.Items = addItems(res.Items, all)
	res.Balance.Gold, res.Balance.Gems = after.Gold, after.Gems
	return nil
}
