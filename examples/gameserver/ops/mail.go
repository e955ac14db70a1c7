package ops

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// Limits of the mail and ledger endpoints.
const (
	// MaxMailBatch is the most user keys one POST /v1/mail takes.
	MaxMailBatch = 100
	// DefaultLedgerLimit is GET /v1/ledger's page without limit.
	DefaultLedgerLimit = 100
)

// MailRequest is POST /v1/mail's body.
type MailRequest struct {
	UserKeys []int64 `json:"user_keys"`
	// Key identifies the grant: required, at most game.MaxMailKeyLen
	// bytes. A user who has a mail with this key is not mailed again.
	Key   string           `json:"key"`
	Title string           `json:"title"`
	Body  string           `json:"body"`
	Gold  int64            `json:"gold"`
	Gems  int64            `json:"gems"`
	Items []game.ItemCount `json:"items"`
	// Expires is when the mail can no longer be claimed; zero: the game's
	// default (game.DefaultMailTTL from now).
	Expires time.Time `json:"expires"`
}

// MailSent is one mailed user of POST /v1/mail's answer.
type MailSent struct {
	UserKey int64 `json:"user_key"`
	MailID  int64 `json:"mail_id"`
}

// MailFailed is one user POST /v1/mail could not mail.
type MailFailed struct {
	UserKey int64  `json:"user_key"`
	Error   string `json:"error"`
}

func (h *Handler) sendMail(_ http.ResponseWriter, r *http.Request) (any, error) {
	var in MailRequest
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if len(in.UserKeys) == 0 || len(in.UserKeys) > MaxMailBatch {
		return nil, badRequest("user_keys must hold 1..%d user keys, not %d", MaxMailBatch, len(in.UserKeys))
	}
	for _, u := range in.UserKeys {
		if u <= 0 {
			return nil, badRequest("user key %d is not positive", u)
		}
	}
	if in.Key == "" {
		return nil, badRequest("key is required: it makes the grant safe to send again")
	}
	m := game.Mail{Key: in.Key, Title: in.Title, Body: in.Body, Gold: in.Gold, Gems: in.Gems, Items: in.Items, ExpiresAt: in.Expires}
	out := struct {
		Sent   []MailSent   `json:"sent"`
		Failed []MailFailed `json:"failed"`
	}{Sent: []MailSent{}, Failed: []MailFailed{}}
	for _, u := range in.UserKeys {
		id, err := h.cfg.Game.SendMail(r.Context(), u, m)
		switch {
		case err == nil:
			out.Sent = append(out.Sent, MailSent{UserKey: u, MailID: id})
		case errors.Is(err, game.ErrBadMail):
			// The mail itself is bad: the same for every user, and
			// checked before anything is written, so nobody got it.
			return nil, err
		default:
			code := protocol.CodeOf(shard.ClassifyError(err))
			msg := code.String()
			if code == game.CodeNoPlayer {
				msg = "no such player"
			}
			if code == protocol.CodeInternal || code == protocol.CodeUnavailable {
				h.log.Warn("ops: send mail", "user", u, "key", in.Key, "err", err)
			}
			out.Failed = append(out.Failed, MailFailed{UserKey: u, Error: msg})
		}
	}
	h.log.Info("ops: mail", "key", in.Key, "sent", len(out.Sent), "failed", len(out.Failed),
		"gold", in.Gold, "gems", in.Gems, "items", len(in.Items))
	return out, nil
}

func (h *Handler) recallMail(_ http.ResponseWriter, r *http.Request) (any, error) {
	var in struct {
		UserKey int64 `json:"user_key"`
		MailID  int64 `json:"mail_id"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if in.UserKey <= 0 || in.MailID <= 0 {
		return nil, badRequest("user_key and mail_id must be positive")
	}
	ok, err := h.cfg.Game.RecallMail(r.Context(), in.UserKey, in.MailID)
	if err != nil {
		return nil, err
	}
	h.log.Info("ops: recall mail", "user", in.UserKey, "mail", in.MailID, "recalled", ok)
	return map[string]bool{"recalled": ok}, nil
}

func (h *Handler) ledger(_ http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	u, err := strconv.ParseInt(q.Get("user"), 10, 64)
	if err != nil || u <= 0 {
		return nil, badRequest("user must be a positive user key")
	}
	limit := DefaultLedgerLimit
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > game.MaxLedgerPage {
			return nil, badRequest("limit must be 1..%d", game.MaxLedgerPage)
		}
	}
	entries, err := h.cfg.Game.RecentLedger(r.Context(), u, limit)
	if err != nil {
		return nil, err
	}
	return map[string]any{"user_key": u, "entries": entries}, nil
}
