package liveops

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/madang-io/madang/anticheat"
)

// Event kinds.
const (
	// EventLoginBonus mails Gold, Gems and Items once per day (in the
	// event's time zone) to each targeted player who logs in.
	EventLoginBonus = "login_bonus"
	// EventDungeonBuff adds GoldPct and ExpPct percent to dungeon rewards.
	EventDungeonBuff = "dungeon_buff"
	// EventShopSale takes DiscountPct percent off the gem price of
	// ShopItems (all items when empty).
	EventShopSale = "shop_sale"
)

// Limits of events. SetEvent refuses more with ErrInvalid.
const (
	// MaxEvents bounds the events kept (active or not).
	MaxEvents = 200
	// MaxEventIDLen bounds an event id (letters, digits, '.', '_', '-').
	MaxEventIDLen = 64
	// MaxEventTitleLen and MaxEventBodyLen bound the texts (the login
	// bonus mail's title and body).
	MaxEventTitleLen = 100
	MaxEventBodyLen  = 1000
	// MaxEventTargets bounds each targeting list.
	MaxEventTargets = 50
	// MaxEventGrant bounds a login bonus's gold, gems and item counts.
	MaxEventGrant = 1_000_000
	// MaxEventItems bounds a login bonus's items and a sale's shop items.
	MaxEventItems = 10
	// MaxBuffPct bounds a dungeon buff's percentages (+1000 % = 11×).
	MaxBuffPct = 1000
	// MaxEventSpan bounds an event's window: a year.
	MaxEventSpan = 366 * 24 * time.Hour
)

// EventTimeLayout is the layout of Event.Start and End: wall-clock time in
// the event's TimeZone, without an offset.
const EventTimeLayout = "2006-01-02T15:04:05"

// EventItem is an item count of a login bonus.
type EventItem struct {
	ItemID string `json:"item_id"`
	Count  int64  `json:"count"`
}

// Event is a live-ops event: what it does (Kind and its fields), when
// (Start to End, wall-clock times in TimeZone, an IANA zone name such as
// "Asia/Seoul" or "UTC"), and for whom (each non-empty list must contain the
// player's value; MinClientVersion and MaxClientVersion bound the client
// version, inclusive).
type Event struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Title    string `json:"title"`
	Body     string `json:"body,omitempty"`
	TimeZone string `json:"time_zone"`
	Start    string `json:"start"` // EventTimeLayout in TimeZone
	End      string `json:"end"`   // EventTimeLayout in TimeZone, after Start

	Countries        []string `json:"countries,omitempty"` // ISO 3166-1 alpha-2, as the login sent it
	Languages        []string `json:"languages,omitempty"`
	Platforms        []string `json:"platforms,omitempty"`
	MinClientVersion string   `json:"min_client_version,omitempty"`
	MaxClientVersion string   `json:"max_client_version,omitempty"`

	// Login bonus.
	Gold  int64       `json:"gold,omitempty"`
	Gems  int64       `json:"gems,omitempty"`
	Items []EventItem `json:"items,omitempty"`
	// Dungeon buff.
	GoldPct int64 `json:"gold_pct,omitempty"`
	ExpPct  int64 `json:"exp_pct,omitempty"`
	// Shop sale.
	DiscountPct int64    `json:"discount_pct,omitempty"`
	ShopItems   []string `json:"shop_items,omitempty"`

	UpdatedAt time.Time `json:"updated_at"`

	loc        *time.Location
	start, end time.Time
	minV, maxV [4]uint32
	hasMin     bool
	hasMax     bool
}

// Window returns the event's start and end as instants.
func (e *Event) Window() (start, end time.Time) { return e.start, e.end }

// Day returns the date (YYYY-MM-DD) of t in the event's time zone: a login
// bonus is given once per such day.
func (e *Event) Day(t time.Time) string { return t.In(e.loc).Format(time.DateOnly) }

// Target is who a request comes from, for event targeting.
type Target struct {
	Country, Language, Platform, ClientVersion string
}

// Applies reports whether e is running at now for t.
func (e *Event) Applies(t Target, now time.Time) bool {
	if now.Before(e.start) || !now.Before(e.end) {
		return false
	}
	in := func(list []string, v string) bool { return len(list) == 0 || slices.Contains(list, v) }
	if !in(e.Countries, strings.ToUpper(t.Country)) || !in(e.Languages, t.Language) || !in(e.Platforms, t.Platform) {
		return false
	}
	if e.hasMin || e.hasMax {
		v, err := anticheat.ParseVersion(t.ClientVersion)
		if err != nil || e.hasMin && less(v, e.minV) || e.hasMax && less(e.maxV, v) {
			return false
		}
	}
	return true
}

func validID(s string) bool {
	if s == "" || len(s) > MaxEventIDLen {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// prepare validates e and computes its window and version bounds.
func (e *Event) prepare() error {
	if !validID(e.ID) {
		return invalidField("id", "event id must be 1..%d of letters, digits, '.', '_' and '-'", MaxEventIDLen)
	}
	if e.Title == "" {
		return invalidField("title", "event title is required")
	}
	if err := checkLen("title", e.Title, MaxEventTitleLen); err != nil {
		return err
	}
	if err := checkLen("body", e.Body, MaxEventBodyLen); err != nil {
		return err
	}
	if e.TimeZone == "" {
		return invalidField("time_zone", "time_zone is required (an IANA name such as Asia/Seoul, or UTC)")
	}
	loc, err := time.LoadLocation(e.TimeZone)
	if err != nil || e.TimeZone == "Local" {
		return invalidField("time_zone", "time_zone %q is not an IANA time zone name", e.TimeZone)
	}
	e.loc = loc
	if e.start, err = time.ParseInLocation(EventTimeLayout, e.Start, loc); err != nil {
		return invalidField("start", "start %q: want %s in %s", e.Start, EventTimeLayout, e.TimeZone)
	}
	if e.end, err = time.ParseInLocation(EventTimeLayout, e.End, loc); err != nil {
		return invalidField("end", "end %q: want %s in %s", e.End, EventTimeLayout, e.TimeZone)
	}
	if !e.end.After(e.start) || e.end.Sub(e.start) > MaxEventSpan {
		return invalidField("end", "end must be after start, at most %v later", MaxEventSpan)
	}
	for name, list := range map[string][]string{"countries": e.Countries, "languages": e.Languages, "platforms": e.Platforms, "shop_items": e.ShopItems} {
		if len(list) > MaxEventTargets {
			return invalidField(name, "%s: at most %d", name, MaxEventTargets)
		}
		for _, v := range list {
			if v == "" || len(v) > 64 {
				return invalidField(name, "%s: entries of 1..64 bytes", name)
			}
		}
	}
	for i, c := range e.Countries {
		e.Countries[i] = strings.ToUpper(c)
	}
	e.hasMin, e.hasMax = false, false
	if e.MinClientVersion != "" {
		if e.minV, err = anticheat.ParseVersion(e.MinClientVersion); err != nil {
			return invalidField("min_client_version", "min_client_version %q: want x.y.z.w", e.MinClientVersion)
		}
		e.hasMin = true
	}
	if e.MaxClientVersion != "" {
		if e.maxV, err = anticheat.ParseVersion(e.MaxClientVersion); err != nil {
			return invalidField("max_client_version", "max_client_version %q: want x.y.z.w", e.MaxClientVersion)
		}
		e.hasMax = true
	}
	grant := e.Gold != 0 || e.Gems != 0 || len(e.Items) > 0
	buff := e.GoldPct != 0 || e.ExpPct != 0
	sale := e.DiscountPct != 0 || len(e.ShopItems) > 0
	switch e.Kind {
	case EventLoginBonus:
		if !grant || buff || sale {
			return invalid("a login bonus gives gold, gems or items, and nothing else")
		}
		if e.Gold < 0 || e.Gold > MaxEventGrant || e.Gems < 0 || e.Gems > MaxEventGrant || len(e.Items) > MaxEventItems {
			return invalid("login bonus: gold and gems 0..%d, at most %d items", MaxEventGrant, MaxEventItems)
		}
		for _, it := range e.Items {
			if it.ItemID == "" || len(it.ItemID) > 64 || it.Count <= 0 || it.Count > MaxEventGrant {
				return invalidField("items", "login bonus item %q × %d", it.ItemID, it.Count)
			}
		}
	case EventDungeonBuff:
		if grant || sale {
			return invalid("a dungeon buff has gold_pct and exp_pct 0..%d (not both 0), and nothing else", MaxBuffPct)
		}
		if e.ExpPct < 0 || e.ExpPct > MaxBuffPct {
			return invalidField("exp_pct", "a dungeon buff has gold_pct and exp_pct 0..%d (not both 0), and nothing else", MaxBuffPct)
		}
		if !buff || e.GoldPct < 0 || e.GoldPct > MaxBuffPct {
			return invalidField("gold_pct", "a dungeon buff has gold_pct and exp_pct 0..%d (not both 0), and nothing else", MaxBuffPct)
		}
	case EventShopSale:
		msg := "a shop sale has discount_pct 1..99 and at most %d shop_items, and nothing else"
		switch {
		case grant || buff:
			return invalid(msg, MaxEventItems)
		case len(e.ShopItems) > MaxEventItems:
			return invalidField("shop_items", msg, MaxEventItems)
		case e.DiscountPct < 1 || e.DiscountPct > 99:
			return invalidField("discount_pct", msg, MaxEventItems)
		}
	default:
		return invalidField("kind", "kind must be %s, %s or %s", EventLoginBonus, EventDungeonBuff, EventShopSale)
	}
	return nil
}

// SetEvent creates or replaces the event e.ID (validated first: ErrInvalid
// for bad input, an *InvalidError naming the field when it is one field's).
// Every server applies it from its next policy reload.
func (m *Manager) SetEvent(ctx context.Context, e Event) error {
	if err := e.prepare(); err != nil {
		return err
	}
	e.UpdatedAt = time.Time{}
	body, err := json.Marshal(e)
	if err != nil {
		return wrap(err)
	}
	return m.change(ctx, func(ctx context.Context, tx *sql.Tx, now int64) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM liveops_events WHERE id <> ?", e.ID).Scan(&n); err != nil {
			return wrap(err)
		}
		if n >= MaxEvents {
			return invalid("at most %d events: delete old ones first", MaxEvents)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO liveops_events (id, body, updated_at) VALUES (?, ?, ?)"+
			m.dialect.Upsert([]string{"id"}, "body", "updated_at"), e.ID, string(body), now)
		return wrap(err)
	})
}

// DeleteEvent removes an event (nothing when there is none).
func (m *Manager) DeleteEvent(ctx context.Context, id string) error {
	if !validID(id) {
		return invalid("event id %q", id)
	}
	return m.change(ctx, func(ctx context.Context, tx *sql.Tx, _ int64) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM liveops_events WHERE id = ?", id)
		return wrap(err)
	})
}

// Events returns every event (as loaded), by id.
func (m *Manager) Events() []Event {
	return append([]Event(nil), m.policy.Load().Events...)
}

// ActiveEvents returns the events running at now for t, by id.
func (m *Manager) ActiveEvents(t Target, now time.Time) []Event {
	var out []Event
	for _, e := range m.policy.Load().Events {
		if e.Applies(t, now) {
			out = append(out, e)
		}
	}
	return out
}

// loadEvents reads the events in tx. A row that no longer validates (a
// time zone missing from this host's zone database) is skipped and logged.
func (m *Manager) loadEvents(ctx context.Context, tx *sql.Tx, p *Policy) error {
	rows, err := tx.QueryContext(ctx, "SELECT id, body, updated_at FROM liveops_events ORDER BY id")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, body string
		var at int64
		if err := rows.Scan(&id, &body, &at); err != nil {
			return err
		}
		var e Event
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			m.log.Warn("liveops: unreadable event skipped", "id", id, "err", err)
			continue
		}
		if err := e.prepare(); err != nil {
			m.log.Warn("liveops: invalid event skipped", "id", id, "err", err)
			continue
		}
		e.UpdatedAt = time.UnixMilli(at).UTC()
		p.Events = append(p.Events, e)
	}
	return rows.Err()
}

// String describes the event for logs.
func (e Event) String() string {
	return fmt.Sprintf("%s %s [%s, %s) %s", e.ID, e.Kind, e.Start, e.End, e.TimeZone)
}
