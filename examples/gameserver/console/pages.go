package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// LedgerPageSize is how many ledger rows the player page shows at once.
const LedgerPageSize = 50

// AuditPageSize is how many audit entries a page shows.
const AuditPageSize = 50

// MaxBatch bounds a batch of user keys (per-user maintenance), as the ops API.
const MaxBatch = 100

// dayStats is one day of the dashboard.
type dayStats struct {
	Day          string
	DAU, NRU     int64
	PeakCCU      int64 // the day's highest CCU sample (liveops.Manager.RecordCCU)
	Hacks        int64
	RevenueByCur map[string]int64 // currency → micros
}

type dashboardData struct {
	CCU         int64
	Days        []dayStats
	Currencies  []string
	Maintenance liveops.Maintenance
	UserMaint   int
	Charts      []chart
	Published   string
}

func (h *Handler) dashboard(r *http.Request, _ *Session) (string, any, error) {
	ctx := r.Context()
	lo := h.cfg.LiveOps
	d := dashboardData{}
	var err error
	if d.CCU, err = lo.RecordCCU(ctx); err != nil { // now, and kept as today's peak if higher
		return "", nil, err
	}
	today := utcDay(h.cfg.Now())
	from := today.AddDate(0, 0, -(h.cfg.Days - 1))
	hacks, err := h.cfg.Monitor.Log().DailyCounts(ctx, from, today.AddDate(0, 0, 1))
	if err != nil {
		return "", nil, err
	}
	hackBy := map[string]int64{}
	for _, c := range hacks {
		hackBy[c.Day.UTC().Format(time.DateOnly)] += c.Count
	}
	curs := map[string]bool{}
	for day := from; !day.After(today); day = day.AddDate(0, 0, 1) {
		ds := dayStats{Day: day.Format(time.DateOnly), RevenueByCur: map[string]int64{}, Hacks: hackBy[day.Format(time.DateOnly)]}
		if ds.DAU, err = lo.DAU(ctx, day); err != nil {
			return "", nil, err
		}
		if ds.NRU, err = lo.NRU(ctx, day); err != nil {
			return "", nil, err
		}
		if ds.PeakCCU, err = lo.PeakCCU(ctx, day); err != nil {
			return "", nil, err
		}
		if h.cfg.Game != nil {
			rev, err := h.cfg.Game.RevenueBetween(ctx, day, day.AddDate(0, 0, 1))
			if err != nil {
				return "", nil, err
			}
			for _, rv := range rev {
				ds.RevenueByCur[rv.Currency] += rv.AmountMicros
				curs[rv.Currency] = true
			}
		}
		d.Days = append(d.Days, ds)
	}
	for c := range curs {
		d.Currencies = append(d.Currencies, c)
	}
	sort.Strings(d.Currencies)
	series := func(title string, f func(dayStats) int64) chart {
		c := chart{Title: title}
		for _, ds := range d.Days {
			c.Labels = append(c.Labels, ds.Day[5:])
			c.Values = append(c.Values, f(ds))
		}
		return c
	}
	d.Charts = append(d.Charts,
		series("Peak CCU", func(s dayStats) int64 { return s.PeakCCU }),
		series("DAU", func(s dayStats) int64 { return s.DAU }),
		series("NRU", func(s dayStats) int64 { return s.NRU }),
		series("Hacks per day", func(s dayStats) int64 { return s.Hacks }))
	for _, c := range d.Currencies {
		d.Charts = append(d.Charts, series("Revenue "+strings.TrimPrefix(c, "pay:")+" (millionths)", func(s dayStats) int64 { return s.RevenueByCur[c] }))
	}
	p := lo.Policy()
	d.Maintenance, d.UserMaint = p.Maintenance, len(p.Users)
	if h.cfg.Catalog != nil {
		d.Published, _ = h.cfg.Catalog.Published()
	}
	return "dashboard", d, nil
}

func utcDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// players is the lookup form: a user key, or platform:id.
func (h *Handler) players(r *http.Request, _ *Session) (string, any, error) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		return "players", nil, nil
	}
	key, err := h.lookup(r.Context(), q)
	if err != nil {
		return "players", nil, err
	}
	return "redirect", Prefix + "players/" + strconv.FormatInt(key, 10), nil
}

func (h *Handler) lookup(ctx context.Context, q string) (int64, error) {
	if k, err := strconv.ParseInt(q, 10, 64); err == nil {
		if k <= 0 {
			return 0, fieldErr("q", "a user key is a positive number")
		}
		return k, nil
	}
	platform, id, ok := strings.Cut(q, ":")
	if !ok || platform == "" || id == "" {
		return 0, fieldErr("q", "enter a user key (10000001) or an account identity as platform:id (guest:my-phone)")
	}
	if h.cfg.FindUser == nil {
		return 0, fieldErr("q", "lookup by account identity is not configured: enter a user key")
	}
	k, found, err := h.cfg.FindUser(ctx, platform, id)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, fieldErr("q", "no account %s", q)
	}
	return k, nil
}

type playerData struct {
	UserKey     int64
	Found       bool
	Player      game.Player
	Ledger      []game.LedgerEntry
	NextBefore  int64 // the next ledger page's ?before=, 0: none
	Before      int64
	Purchases   []game.Purchase
	Hacks       []anticheat.Event
	HackCounts  map[anticheat.Kind]int64
	Blocked     bool
	Block       anticheat.Block
	Maintenance string // "", "user", "global"
	MailKey     string // a fresh key: a form sent twice mails once
	TakeBackID  string // a fresh request id: a form sent twice takes once
	Sessions    []*session.Session
	NoSessions  bool // Config.Sessions is nil: the store cannot list them
	Audit       []AuditEntry
}

func userParam(r *http.Request) (int64, error) {
	u, err := strconv.ParseInt(r.PathValue("user"), 10, 64)
	if err != nil || u <= 0 {
		return 0, fieldErr("user", "a user key is a positive number")
	}
	return u, nil
}

func newKey() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (h *Handler) player(r *http.Request, _ *Session) (string, any, error) {
	ctx := r.Context()
	u, err := userParam(r)
	if err != nil {
		return "players", nil, err
	}
	d := playerData{UserKey: u, MailKey: newKey(), TakeBackID: newKey()}
	if d.Before, err = formInt(r, "before", 1, 1<<62, 0); err != nil {
		return "players", nil, err
	}
	if h.cfg.Game != nil {
		d.Player, err = h.cfg.Game.LoadPlayer(ctx, u)
		switch {
		case protocol.CodeOf(err) == game.CodeNoPlayer, errors.Is(err, shard.ErrUnknownKey):
		case err != nil:
			return "", nil, err
		default:
			d.Found = true
			if d.Ledger, err = h.cfg.Game.LedgerBefore(ctx, u, d.Before, LedgerPageSize+1); err != nil {
				return "", nil, err
			}
			if len(d.Ledger) > LedgerPageSize {
				d.Ledger = d.Ledger[:LedgerPageSize]
				d.NextBefore = d.Ledger[LedgerPageSize-1].ID
			}
			if d.Purchases, err = h.cfg.Game.Purchases(ctx, u); err != nil {
				return "", nil, err
			}
		}
	}
	log := h.cfg.Monitor.Log()
	if d.Hacks, err = log.UserEvents(ctx, u, 50); err != nil {
		return "", nil, err
	}
	if d.HackCounts, err = log.UserCounts(ctx, u); err != nil {
		return "", nil, err
	}
	if d.Block, d.Blocked, err = h.cfg.Monitor.Blocks().GetBlock(ctx, u, h.cfg.Now()); err != nil {
		return "", nil, err
	}
	d.Maintenance = h.cfg.LiveOps.Policy().InMaintenance(u)
	if h.cfg.Sessions == nil {
		d.NoSessions = true
	} else if d.Sessions, err = h.cfg.Sessions(ctx, u); err != nil {
		return "", nil, err
	}
	if d.Audit, err = h.cfg.Store.Audit(ctx, userTarget(u), 0, 20); err != nil {
		return "", nil, err
	}
	return "player", d, nil
}

func userTarget(u int64) string { return "user:" + strconv.FormatInt(u, 10) }

func (h *Handler) playerAction(act string) action {
	return func(r *http.Request, s *Session, comment string) (string, string, error) {
		ctx := r.Context()
		u, err := userParam(r)
		if err != nil {
			return "", "", err
		}
		next := Prefix + "players/" + strconv.FormatInt(u, 10)
		target := userTarget(u)
		mon := h.cfg.Monitor
		blockState := func() any {
			b, ok, err := mon.Blocks().GetBlock(ctx, u, h.cfg.Now())
			if err != nil {
				return map[string]string{"error": err.Error()}
			}
			if !ok {
				return map[string]bool{"blocked": false}
			}
			return map[string]any{"blocked": true, "until": b.Until, "reason": b.Reason}
		}
		switch act {
		case "block":
			var d time.Duration
			if v := strings.TrimSpace(r.PostFormValue("duration")); v != "" {
				if d, err = time.ParseDuration(v); err != nil || d <= 0 {
					return "", "", fieldErr("duration", "a positive duration such as 24h or 30m, or empty for permanent")
				}
			}
			reason := strings.TrimSpace(r.PostFormValue("reason"))
			if reason == "" || len(reason) > anticheat.MaxBlockReasonLen {
				return "", "", fieldErr("reason", "1 to %d bytes", anticheat.MaxBlockReasonLen)
			}
			err = h.audited(ctx, s, "player.block", target, comment, blockState(), func() (any, error) {
				if err := mon.Block(ctx, u, d, reason); err != nil {
					return nil, err
				}
				if h.cfg.RevokeUser != nil {
					if err := h.cfg.RevokeUser(ctx, u); err != nil {
						h.log.Warn("console: revoke sessions of a blocked user", "user", u, "err", err)
					}
				}
				return blockState(), nil
			})
			return next, "blocked", err
		case "unblock":
			err = h.audited(ctx, s, "player.unblock", target, comment, blockState(), func() (any, error) {
				return blockState(), mon.Unblock(ctx, u)
			})
			return next, "unblocked", err
		case "kick":
			if h.cfg.RevokeUser == nil {
				return "", "", fieldErr("form", "kicking is not configured on this server")
			}
			err = h.audited(ctx, s, "player.kick", target, comment, nil, func() (any, error) {
				return map[string]string{"sessions": "ended"}, h.cfg.RevokeUser(ctx, u)
			})
			return next, "kicked: the player's sessions ended", err
		case "maintenance":
			on := r.PostFormValue("state")
			if on != "on" && on != "off" {
				return "", "", fieldErr("state", `"on" or "off"`)
			}
			lo := h.cfg.LiveOps
			state := func() any { return map[string]bool{"user_maintenance": lo.Policy().InMaintenance(u) == "user"} }
			err = h.audited(ctx, s, "player.maintenance."+on, target, comment, state(), func() (any, error) {
				var err error
				if on == "on" {
					err = lo.AddUserMaintenance(ctx, []int64{u}, s.Operator.Name, comment)
				} else {
					err = lo.RemoveUserMaintenance(ctx, []int64{u})
				}
				return state(), err
			})
			return next, "maintenance " + on, err
		case "mail":
			if h.cfg.Game == nil {
				return "", "", fieldErr("form", "mail is not configured on this server")
			}
			m, err := mailForm(r)
			if err != nil {
				return "", "", err
			}
			var id int64
			err = h.audited(ctx, s, "player.mail", target, comment, nil, func() (any, error) {
				var err error
				id, err = h.cfg.Game.SendMail(ctx, u, m)
				return map[string]any{"mail_id": id, "key": m.Key, "title": m.Title, "gold": m.Gold, "gems": m.Gems, "items": m.Items}, err
			})
			return next, fmt.Sprintf("mail %d sent: the grant reaches the ledger when the player claims it", id), err
		case "recall":
			if h.cfg.Game == nil {
				return "", "", fieldErr("form", "mail is not configured on this server")
			}
			id, err := formInt(r, "mail_id", 1, 1<<62, 0)
			if err != nil || id == 0 {
				return "", "", fieldErr("mail_id", "the id of a mail sent to this player")
			}
			var ok bool
			err = h.audited(ctx, s, "player.recall", target, comment, map[string]int64{"mail_id": id}, func() (any, error) {
				var err error
				ok, err = h.cfg.Game.RecallMail(ctx, u, id)
				return map[string]bool{"recalled": ok}, err
			})
			if err == nil && !ok {
				return next, fmt.Sprintf("mail %d was not recalled: already claimed, expired or not this player's", id), nil
			}
			return next, fmt.Sprintf("mail %d recalled", id), err
		case "takeback":
			return h.takeBack(r, s, comment, u, next, target)
		}
		return "", "", fieldErr("form", "unknown action")
	}
}

// takeBack takes currency and items back from u (game.TakeBack): once per
// form (its hidden request id), audited with the balances before and after.
func (h *Handler) takeBack(r *http.Request, s *Session, comment string, u int64, next, target string) (string, string, error) {
	ctx := r.Context()
	g := h.cfg.Game
	if g == nil {
		return "", "", fieldErr("form", "the game is not configured on this server")
	}
	tb := game.TakeBack{RequestID: r.PostFormValue("request_id"), Operator: s.Operator.Name}
	if tb.RequestID == "" || len(tb.RequestID) > 64 {
		return "", "", fieldErr("request_id", "missing: reload the page")
	}
	tb.RequestID = "console:" + tb.RequestID
	var err error
	if tb.Gold, err = formInt(r, "tb_gold", 0, game.MaxGrant, 0); err != nil {
		return "", "", err
	}
	if tb.Gems, err = formInt(r, "tb_gems", 0, game.MaxGrant, 0); err != nil {
		return "", "", err
	}
	if tb.Items, err = parseItems(r.PostFormValue("tb_items")); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Field = "tb_items"
		}
		return "", "", err
	}
	if tb.Gold == 0 && tb.Gems == 0 && len(tb.Items) == 0 {
		return "", "", fieldErr("tb_gold", "take back gold, gems or items")
	}
	// The balances of what the take-back names, before and after.
	state := func() any {
		p, err := g.LoadPlayer(ctx, u)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		m := map[string]int64{"gold": p.Gold, "gems": p.Gems}
		for _, it := range tb.Items {
			m["item:"+it.ItemID] = 0
			for _, have := range p.Items {
				if have.ItemID == it.ItemID {
					m["item:"+it.ItemID] = have.Count
				}
			}
		}
		return m
	}
	var res game.TakeBackResult
	err = h.audited(ctx, s, "player.takeback", target, comment, state(), func() (any, error) {
		var err error
		if res, err = g.TakeBack(ctx, u, tb); err != nil {
			return nil, err
		}
		after := state()
		if m, ok := after.(map[string]int64); ok && res.Repeated {
			return map[string]any{"repeated": true, "balances": m, "request_id": tb.RequestID}, nil
		}
		return after, nil
	})
	var short *game.ShortError
	switch {
	case errors.As(err, &short):
		field := "tb_items"
		if short.Currency == "gold" || short.Currency == "gems" {
			field = "tb_" + short.Currency
		}
		return "", "", fieldErr(field, "cannot take back %d %s: the player has %d (nothing was taken)", short.Want, short.Currency, short.Have)
	case errors.Is(err, game.ErrBadTakeBack):
		return "", "", fieldErr("form", "%s", err.Error())
	case err != nil:
		return "", "", err
	case res.Repeated:
		return next, "this take-back was already done (the form was sent before): nothing taken again", nil
	}
	return next, fmt.Sprintf("taken back: gold %d, gems %d, items %s; ledger reason %s%s", tb.Gold, tb.Gems, itemsText(tb.Items), game.TakeBackReason, tb.Operator), nil
}

func itemsText(items []game.ItemCount) string {
	if len(items) == 0 {
		return "none"
	}
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = it.ItemID + ":" + strconv.FormatInt(it.Count, 10)
	}
	return strings.Join(parts, ", ")
}

// mailForm reads a grant: title, body, gold, gems, items "id:count, ...",
// and the form's one-time key.
func mailForm(r *http.Request) (game.Mail, error) {
	m := game.Mail{Title: strings.TrimSpace(r.PostFormValue("title")), Body: r.PostFormValue("body")}
	key := r.PostFormValue("key")
	if key == "" || len(key) > 64 {
		return m, fieldErr("key", "missing: reload the page")
	}
	m.Key = "console:" + key
	if m.Title == "" || len(m.Title) > game.MaxMailTitleLen || !utf8.ValidString(m.Title) {
		return m, fieldErr("title", "1 to %d bytes", game.MaxMailTitleLen)
	}
	if len(m.Body) > game.MaxMailBodyLen || !utf8.ValidString(m.Body) {
		return m, fieldErr("body", "at most %d bytes", game.MaxMailBodyLen)
	}
	var err error
	if m.Gold, err = formInt(r, "gold", 0, game.MaxGrant, 0); err != nil {
		return m, err
	}
	if m.Gems, err = formInt(r, "gems", 0, game.MaxGrant, 0); err != nil {
		return m, err
	}
	if m.Items, err = parseItems(r.PostFormValue("items")); err != nil {
		return m, err
	}
	if m.Gold == 0 && m.Gems == 0 && len(m.Items) == 0 {
		return m, fieldErr("gold", "a grant needs gold, gems or items")
	}
	return m, nil
}

func parseItems(s string) ([]game.ItemCount, error) {
	var out []game.ItemCount
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, n, ok := strings.Cut(part, ":")
		c, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if !ok || err != nil || c <= 0 || c > game.MaxGrant || strings.TrimSpace(id) == "" {
			return nil, fieldErr("items", "item_id:count pairs, comma-separated (potion:3, key_bronze:1); %q is not one", part)
		}
		out = append(out, game.ItemCount{ItemID: strings.TrimSpace(id), Count: c})
	}
	if len(out) > game.MaxGrantItems {
		return nil, fieldErr("items", "at most %d items", game.MaxGrantItems)
	}
	return out, nil
}

// parseKeys reads user keys separated by commas, spaces or new lines.
func parseKeys(field, s string) ([]int64, error) {
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' || r == ';' })
	if len(f) == 0 {
		return nil, fieldErr(field, "at least one user key")
	}
	if len(f) > MaxBatch {
		return nil, fieldErr(field, "at most %d user keys at once (got %d)", MaxBatch, len(f))
	}
	seen := map[int64]bool{}
	var out []int64
	for _, v := range f {
		k, err := strconv.ParseInt(v, 10, 64)
		if err != nil || k <= 0 {
			return nil, fieldErr(field, "%q is not a user key (a positive number)", v)
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out, nil
}

type maintenanceData struct {
	Global liveops.Maintenance
	Users  []liveops.UserMaintenance
}

func (h *Handler) maintenance(_ *http.Request, _ *Session) (string, any, error) {
	p := h.cfg.LiveOps.Policy()
	users := h.cfg.LiveOps.UserMaintenance()
	return "maintenance", maintenanceData{Global: p.Maintenance, Users: users}, nil
}

func (h *Handler) setMaintenance(r *http.Request, s *Session, comment string) (string, string, error) {
	ctx := r.Context()
	on := r.PostFormValue("state")
	if on != "on" && on != "off" {
		return "", "", fieldErr("state", `"on" or "off"`)
	}
	msg := strings.TrimSpace(r.PostFormValue("message"))
	if on == "on" && msg == "" {
		return "", "", fieldErr("message", "required: players see it")
	}
	var ends time.Time
	if v := strings.TrimSpace(r.PostFormValue("ends_at")); v != "" {
		loc, err := time.LoadLocation(strings.TrimSpace(r.PostFormValue("time_zone")))
		if err != nil || r.PostFormValue("time_zone") == "" {
			return "", "", fieldErr("time_zone", "an IANA zone such as Asia/Seoul or UTC")
		}
		if ends, err = time.ParseInLocation("2006-01-02T15:04", v, loc); err != nil {
			return "", "", fieldErr("ends_at", "YYYY-MM-DDTHH:MM in the time zone")
		}
	}
	var allow []int64
	if v := strings.TrimSpace(r.PostFormValue("allow_users")); v != "" {
		var err error
		if allow, err = parseKeys("allow_users", v); err != nil {
			return "", "", err
		}
	}
	lo := h.cfg.LiveOps
	m := liveops.Maintenance{Active: on == "on", Message: msg, EndsAt: ends, AllowUsers: allow, Operator: s.Operator.Name}
	err := h.audited(ctx, s, "maintenance.global."+on, "global", comment, lo.Policy().Maintenance, func() (any, error) {
		err := lo.SetMaintenance(ctx, m)
		return lo.Policy().Maintenance, err
	})
	return Prefix + "maintenance", "global maintenance " + on, err
}

func (h *Handler) userMaintenance(r *http.Request, s *Session, comment string) (string, string, error) {
	ctx := r.Context()
	on := r.PostFormValue("state")
	if on != "on" && on != "off" {
		return "", "", fieldErr("state", `"on" or "off"`)
	}
	keys, err := parseKeys("user_keys", r.PostFormValue("user_keys"))
	if err != nil {
		return "", "", err
	}
	lo := h.cfg.LiveOps
	state := func() any {
		in := []int64{}
		p := lo.Policy()
		for _, k := range keys {
			if p.InMaintenance(k) == "user" {
				in = append(in, k)
			}
		}
		return map[string][]int64{"in_maintenance": in}
	}
	err = h.audited(ctx, s, "maintenance.users."+on, "users:"+joinKeys(keys), comment, state(), func() (any, error) {
		var err error
		if on == "on" {
			err = lo.AddUserMaintenance(ctx, keys, s.Operator.Name, comment)
		} else {
			err = lo.RemoveUserMaintenance(ctx, keys)
		}
		return state(), err
	})
	return Prefix + "maintenance", fmt.Sprintf("maintenance %s for %d users", on, len(keys)), err
}

func joinKeys(keys []int64) string {
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if b.Len() > 200 {
			fmt.Fprintf(&b, "...(%d)", len(keys))
			break
		}
		b.WriteString(strconv.FormatInt(k, 10))
	}
	return b.String()
}

type versionsData struct {
	Platforms  []liveops.PlatformPolicy
	Versions   []liveops.ClientVersion
	Signatures []anticheat.SignatureEntry
}

func (h *Handler) versions(r *http.Request, _ *Session) (string, any, error) {
	p := h.cfg.LiveOps.Policy()
	sigs, err := h.cfg.Registry.List(r.Context())
	if err != nil {
		return "", nil, err
	}
	return "versions", versionsData{Platforms: p.Platforms, Versions: p.Versions, Signatures: sigs}, nil
}

func (h *Handler) setPlatform(r *http.Request, s *Session, comment string) (string, string, error) {
	ctx := r.Context()
	lo := h.cfg.LiveOps
	pp := liveops.PlatformPolicy{Platform: strings.TrimSpace(r.PostFormValue("platform")), MinVersion: strings.TrimSpace(r.PostFormValue("min_version")), UpdateURL: strings.TrimSpace(r.PostFormValue("update_url"))}
	if pp.Platform == "" {
		return "", "", fieldErr("platform", "required (android, ios, ...)")
	}
	if pp.MinVersion != "" && pp.MinVersion != "0" {
		if _, err := anticheat.ParseVersion(pp.MinVersion); err != nil {
			return "", "", fieldErr("min_version", "a version x.y.z.w, or 0 to delete the platform's rule")
		}
	}
	find := func() any {
		for _, x := range lo.Policy().Platforms {
			if x.Platform == pp.Platform {
				return x
			}
		}
		return nil
	}
	err := h.audited(ctx, s, "versions.platform", "platform:"+pp.Platform, comment, find(), func() (any, error) {
		if pp.MinVersion == "0" {
			return find(), lo.DeletePlatform(ctx, pp.Platform)
		}
		return find(), lo.SetPlatform(ctx, pp)
	})
	return Prefix + "versions", "platform " + pp.Platform + " saved", err
}

func (h *Handler) setClientVersion(r *http.Request, s *Session, comment string) (string, string, error) {
	ctx := r.Context()
	lo := h.cfg.LiveOps
	c := liveops.ClientVersion{
		Platform: strings.TrimSpace(r.PostFormValue("platform")), Version: strings.TrimSpace(r.PostFormValue("version")),
		Review: r.PostFormValue("review") == "on", ReviewURL: strings.TrimSpace(r.PostFormValue("review_url")),
		DataVersion: strings.TrimSpace(r.PostFormValue("data_version")), AssetVersion: strings.TrimSpace(r.PostFormValue("asset_version")),
	}
	del := r.PostFormValue("delete") == "on"
	if c.Platform == "" {
		return "", "", fieldErr("platform", "required (android, ios, ...)")
	}
	if _, err := anticheat.ParseVersion(c.Version); err != nil {
		return "", "", fieldErr("version", "a client version x.y.z.w")
	}
	if c.Review && c.ReviewURL == "" && !del {
		return "", "", fieldErr("review_url", "required for a build in review: the review server's URL")
	}
	find := func() any {
		for _, x := range lo.Policy().Versions {
			if x.Platform == c.Platform && x.Version == c.Version {
				return x
			}
		}
		return nil
	}
	err := h.audited(ctx, s, "versions.client", "client:"+c.Platform+"/"+c.Version, comment, find(), func() (any, error) {
		if del {
			return find(), lo.DeleteClientVersion(ctx, c.Platform, c.Version)
		}
		return find(), lo.SetClientVersion(ctx, c)
	})
	return Prefix + "versions", "client version " + c.Platform + " " + c.Version + " saved", err
}

func (h *Handler) setSignature(r *http.Request, s *Session, comment string) (string, string, error) {
	ctx := r.Context()
	v := strings.TrimSpace(r.PostFormValue("version"))
	if _, err := anticheat.CanonicalVersion(v); err != nil {
		return "", "", fieldErr("version", "x.y.z.w or latest")
	}
	md5 := strings.TrimSpace(r.PostFormValue("apk_md5"))
	certs := strings.FieldsFunc(r.PostFormValue("cert_sha256"), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' })
	if md5 == "" && len(certs) == 0 {
		return "", "", fieldErr("apk_md5", `the APK signature's MD5 (32 hex digits), certificate digests, or "0" to delete`)
	}
	reg := h.cfg.Registry
	find := func() any {
		es, err := reg.List(ctx)
		if err != nil {
			return map[string]string{"error": err.Error()}
		}
		cv, _ := anticheat.CanonicalVersion(v)
		for _, e := range es {
			if e.Version == cv {
				return e
			}
		}
		return nil
	}
	err := h.audited(ctx, s, "versions.signature", "apk:"+v, comment, find(), func() (any, error) {
		err := reg.Set(ctx, v, md5, certs...)
		return find(), err
	})
	var ae *anticheat.Error
	if errors.As(err, &ae) && ae.Code == protocol.CodeBadRequest {
		return "", "", fieldErr("apk_md5", "%v", err)
	}
	if md5 == "0" && len(certs) == 0 {
		return Prefix + "versions", "signature of " + v + " deleted", err
	}
	return Prefix + "versions", "signature of " + v + " saved", err
}

type eventsData struct {
	Events  []eventRow
	Edit    liveops.Event
	Preview *liveops.Target
	Seen    []string // ids of the events the preview target sees now
	Kinds   []string
}

type eventRow struct {
	liveops.Event
	Running bool // in its window now (targeting aside)
}

func (h *Handler) events(r *http.Request, _ *Session) (string, any, error) {
	now := h.cfg.Now()
	d := eventsData{Kinds: []string{liveops.EventLoginBonus, liveops.EventDungeonBuff, liveops.EventShopSale}}
	q := r.URL.Query()
	for _, e := range h.cfg.LiveOps.Events() {
		st, end := e.Window()
		d.Events = append(d.Events, eventRow{Event: e, Running: !now.Before(st) && now.Before(end)})
		if id := q.Get("edit"); id != "" && id == e.ID {
			d.Edit = e
		}
	}
	if q.Has("preview") {
		t := liveops.Target{Country: q.Get("country"), Language: q.Get("language"), Platform: q.Get("platform"), ClientVersion: q.Get("client_version")}
		d.Preview = &t
		for _, e := range h.cfg.LiveOps.ActiveEvents(t, now) {
			d.Seen = append(d.Seen, e.ID)
		}
	}
	return "events", d, nil
}

func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func (h *Handler) setEvent(r *http.Request, s *Session, comment string) (string, string, error) {
	ctx := r.Context()
	f := r.PostFormValue
	e := liveops.Event{
		ID: strings.TrimSpace(f("id")), Kind: f("kind"), Title: strings.TrimSpace(f("title")), Body: f("body"),
		TimeZone: strings.TrimSpace(f("time_zone")), Start: strings.TrimSpace(f("start")), End: strings.TrimSpace(f("end")),
		Countries: splitList(strings.ToUpper(f("countries"))), Languages: splitList(f("languages")), Platforms: splitList(f("platforms")),
		MinClientVersion: strings.TrimSpace(f("min_client_version")), MaxClientVersion: strings.TrimSpace(f("max_client_version")),
		ShopItems: splitList(f("shop_items")),
	}
	if e.ID == "" {
		return "", "", fieldErr("id", "required: letters, digits, '.', '_', '-'")
	}
	if e.Title == "" {
		return "", "", fieldErr("title", "required")
	}
	if _, err := time.LoadLocation(e.TimeZone); err != nil || e.TimeZone == "" {
		return "", "", fieldErr("time_zone", "an IANA zone such as Asia/Seoul, America/New_York or UTC")
	}
	// The browser's datetime-local has no seconds.
	for _, p := range []*string{&e.Start, &e.End} {
		if len(*p) == len("2006-01-02T15:04") {
			*p += ":00"
		}
	}
	if _, err := time.Parse(liveops.EventTimeLayout, e.Start); err != nil {
		return "", "", fieldErr("start", "YYYY-MM-DDTHH:MM in the time zone")
	}
	if _, err := time.Parse(liveops.EventTimeLayout, e.End); err != nil {
		return "", "", fieldErr("end", "YYYY-MM-DDTHH:MM in the time zone")
	}
	var err error
	for _, n := range []struct {
		field string
		dst   *int64
		max   int64
	}{{"gold", &e.Gold, liveops.MaxEventGrant}, {"gems", &e.Gems, liveops.MaxEventGrant}, {"gold_pct", &e.GoldPct, liveops.MaxBuffPct}, {"exp_pct", &e.ExpPct, liveops.MaxBuffPct}, {"discount_pct", &e.DiscountPct, 100}} {
		if *n.dst, err = formInt(r, n.field, 0, n.max, 0); err != nil {
			return "", "", err
		}
	}
	items, err := parseItems(f("items"))
	if err != nil {
		return "", "", err
	}
	for _, it := range items {
		e.Items = append(e.Items, liveops.EventItem{ItemID: it.ItemID, Count: it.Count})
	}
	lo := h.cfg.LiveOps
	find := func() any {
		for _, x := range lo.Events() {
			if x.ID == e.ID {
				return x
			}
		}
		return nil
	}
	err = h.audited(ctx, s, "event.set", "event:"+e.ID, comment, find(), func() (any, error) {
		err := lo.SetEvent(ctx, e)
		return find(), err
	})
	return Prefix + "events", "event " + e.ID + " saved", err
}

func (h *Handler) deleteEvent(r *http.Request, s *Session, comment string) (string, string, error) {
	ctx := r.Context()
	id := r.PostFormValue("id")
	lo := h.cfg.LiveOps
	var before any
	for _, x := range lo.Events() {
		if x.ID == id {
			before = x
		}
	}
	if before == nil {
		return "", "", fieldErr("id", "no event %q", id)
	}
	err := h.audited(ctx, s, "event.delete", "event:"+id, comment, before, func() (any, error) {
		return nil, lo.DeleteEvent(ctx, id)
	})
	return Prefix + "events", "event " + id + " deleted", err
}

type gamedataData struct {
	Versions  []string
	Infos     []gamedata.VersionInfo
	Published string
	History   []string
	Mappings  map[string]string
	// From and To are the diff's versions (the query's, else the
	// previously published and the published one); Diff is nil when
	// there is nothing to compare.
	From, To string
	Diff     []gamedata.DiffEntry
	Compared bool
}

// gamedata shows the catalog's versions and, with ?from=A&to=B, the diff
// between two of them (the catalog's Go API: no HTTP to itself).
func (h *Handler) gamedata(r *http.Request, _ *Session) (string, any, error) {
	cat := h.cfg.Catalog
	if cat == nil {
		return "gamedata", nil, nil
	}
	st := cat.State()
	d := gamedataData{Versions: st.Versions, Infos: cat.VersionInfos(), Published: st.Published, History: st.History, Mappings: st.Mappings}
	q := r.URL.Query()
	d.From, d.To = q.Get("from"), q.Get("to")
	if d.From == "" && d.To == "" {
		d.To = st.Published
		if n := len(st.History); n >= 2 {
			d.From = st.History[n-2]
		} else if len(st.Versions) >= 2 {
			d.From, d.To = st.Versions[len(st.Versions)-2], st.Versions[len(st.Versions)-1]
		} else {
			d.From = d.To
		}
	}
	for _, f := range [][2]string{{"from", d.From}, {"to", d.To}} {
		if _, ok := cat.Set(f[1]); !ok {
			return "gamedata", d, fieldErr(f[0], "no loaded data version %q", f[1])
		}
	}
	diff, err := cat.Diff(d.From, d.To)
	if err != nil {
		return "", nil, err
	}
	d.Diff, d.Compared = diff, true
	return "gamedata", d, nil
}

func (h *Handler) publish(r *http.Request, s *Session, comment string) (string, string, error) {
	cat := h.cfg.Catalog
	if cat == nil {
		return "", "", fieldErr("form", "no game data catalog on this server")
	}
	v := r.PostFormValue("version")
	if _, ok := cat.Set(v); !ok {
		return "", "", fieldErr("version", "no loaded data version %q", v)
	}
	pub, _ := cat.Published()
	err := h.audited(r.Context(), s, "gamedata.publish", "gamedata", comment, map[string]string{"published": pub}, func() (any, error) {
		err := cat.Publish(r.Context(), v)
		p, _ := cat.Published()
		return map[string]string{"published": p}, err
	})
	return Prefix + "gamedata", "data version " + v + " published", err
}

func (h *Handler) rollback(r *http.Request, s *Session, comment string) (string, string, error) {
	cat := h.cfg.Catalog
	if cat == nil {
		return "", "", fieldErr("form", "no game data catalog on this server")
	}
	pub, _ := cat.Published()
	var to string
	err := h.audited(r.Context(), s, "gamedata.rollback", "gamedata", comment, map[string]string{"published": pub}, func() (any, error) {
		var err error
		to, err = cat.Rollback(r.Context())
		p, _ := cat.Published()
		return map[string]string{"published": p}, err
	})
	return Prefix + "gamedata", "rolled back to data version " + to, err
}

// Notice topics (server.NoticesPath's).
var noticeTopics = []string{"notice", "maintenance", "event"}

// MaxNoticeLen bounds a notice message (server.MaxNoticeLen).
const MaxNoticeLen = 2000

func (h *Handler) notices(_ *http.Request, _ *Session) (string, any, error) {
	return "notices", map[string]any{"Topics": noticeTopics, "Enabled": h.cfg.Notice != nil}, nil
}

func (h *Handler) sendNotice(r *http.Request, s *Session, comment string) (string, string, error) {
	if h.cfg.Notice == nil {
		return "", "", fieldErr("form", "notices are not configured on this server")
	}
	n := Notice{Topic: r.PostFormValue("topic"), Message: strings.TrimSpace(r.PostFormValue("message")),
		Platform: strings.TrimSpace(r.PostFormValue("platform")), Country: strings.TrimSpace(r.PostFormValue("country")), Language: strings.TrimSpace(r.PostFormValue("language"))}
	ok := false
	for _, t := range noticeTopics {
		ok = ok || t == n.Topic
	}
	if !ok {
		return "", "", fieldErr("topic", "one of %s", strings.Join(noticeTopics, ", "))
	}
	if n.Message == "" || len(n.Message) > MaxNoticeLen || !utf8.ValidString(n.Message) {
		return "", "", fieldErr("message", "1 to %d bytes", MaxNoticeLen)
	}
	err := h.audited(r.Context(), s, "notice.send", "notice:"+n.Topic, comment, nil, func() (any, error) {
		return n, h.cfg.Notice(r.Context(), n)
	})
	return Prefix + "notices", "notice sent", err
}

type auditData struct {
	Entries    []AuditEntry
	NextBefore int64
	Target     string
}

func (h *Handler) audit(r *http.Request, _ *Session) (string, any, error) {
	before, err := formInt(r, "before", 1, 1<<62, 0)
	if err != nil {
		return "audit", auditData{}, err
	}
	target := r.URL.Query().Get("target")
	es, err := h.cfg.Store.Audit(r.Context(), target, before, AuditPageSize+1)
	if err != nil {
		return "", nil, err
	}
	d := auditData{Entries: es, Target: target}
	if len(es) > AuditPageSize {
		d.Entries = es[:AuditPageSize]
		d.NextBefore = es[AuditPageSize-1].ID
	}
	return "audit", d, nil
}
