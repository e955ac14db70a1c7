// Package ops is the game server's operator API: a JSON HTTP handler for a
// separate admin listener, behind a bearer token, over the live-ops policy
// (client versions, maintenance), anticheat's APK signature registry and
// block list, and stats (CCU, DAU, NRU, revenue and hacks per day); health
// endpoints; and /metrics, a Prometheus registry of the main's own fed by
// the packages' Stats methods through a custom Collector.
//
// # Endpoints
//
// Open (no token; the admin listener binds 127.0.0.1 by default):
//
//	GET    /healthz                     200 "ok" while the process runs
//	GET    /readyz                      200, or 503 with the failing check (databases, Redis)
//	GET    /metrics                     Prometheus text format
//
// With "Authorization: Bearer <token>" (else 401):
//
//	GET    /v1/client-versions          {"platforms": [...], "client_versions": [...]}
//	PUT    /v1/platforms/{platform}     {"min_version", "update_url"}
//	DELETE /v1/platforms/{platform}
//	PUT    /v1/client-versions/{platform}/{version}
//	                                    {"review", "review_url", "data_version", "asset_version"}
//	DELETE /v1/client-versions/{platform}/{version}
//	GET    /v1/apk-signatures           [{"version", "apk_md5", "cert_sha256", "updated_at"}]
//	PUT    /v1/apk-signatures/{version} {"apk_md5", "cert_sha256": [...]} (apk_md5 "0" deletes)
//	DELETE /v1/apk-signatures/{version}
//	GET    /v1/maintenance              {"global": {...}, "users": n}
//	PUT    /v1/maintenance              {"active", "message", "ends_at" (RFC 3339), "allow_users", "operator"}
//	GET    /v1/maintenance/users        [{"user_key", "operator", "comment", "created_at"}]
//	POST   /v1/maintenance/users        {"user_keys": [≤100], "operator", "comment"}
//	POST   /v1/maintenance/users/remove {"user_keys": [≤100]}
//	GET    /v1/blocks/{user}            {"blocked", "until", "reason", "at"}
//	PUT    /v1/blocks/{user}            {"duration" (Go duration, "" = permanent), "reason"}; ends the user's sessions
//	DELETE /v1/blocks/{user}
//	GET    /v1/stats?day=YYYY-MM-DD     {"day", "ccu", "dau", "nru", "revenue": [{"currency", "amount_micros",
//	                                     "payments"}], "hacks": {"total", "by_kind": {kind: n}}, ...}
//	GET    /v1/events                   [liveops.Event ...] (every event, running or not)
//	PUT    /v1/events/{id}              liveops.Event without "id": {"kind" ("login_bonus", "dungeon_buff",
//	                                     "shop_sale"), "title", "body", "time_zone" (IANA, e.g. "Asia/Seoul"),
//	                                     "start", "end" ("2026-12-24T00:00:00", wall clock in time_zone),
//	                                     "countries", "languages", "platforms", "min_client_version",
//	                                     "max_client_version", "gold", "gems", "items", "gold_pct", "exp_pct",
//	                                     "discount_pct", "shop_items"}
//	DELETE /v1/events/{id}
//	POST   /v1/mail                     {"user_keys": [≤100], "key", "title", "body", "gold", "gems",
//	                                     "items": [{"item_id", "count"}], "expires" (RFC 3339, optional)}
//	                                    → {"sent": [{"user_key", "mail_id"}], "failed": [{"user_key", "error"}]}
//	POST   /v1/mail/recall              {"user_key", "mail_id"} → {"recalled": bool}
//	GET    /v1/ledger?user=K&limit=N    {"user_key", "entries": [...]}: the newest ledger rows first (N ≤ 1000, default 100)
//	*      /v1/gamedata/...             the game data catalog (gamedata.Catalog.Handler, which documents the
//	                                    bodies, answers and error codes): GET /v1/gamedata/ (state),
//	                                    GET /v1/gamedata/versions, GET /v1/gamedata/versions/{v}/data,
//	                                    GET /v1/gamedata/diff?from=A&to=B, POST /v1/gamedata/versions (upload),
//	                                    POST /v1/gamedata/publish, /rollback, /client_versions
//	POST   /v1/notices                  {"topic" ("notice", "maintenance", "event"), "message", "filter":
//	                                     {"client_version", "country", "language", "platform"}}: a push on the
//	                                     realtime "system" channel of every node (served by the game server
//	                                     beside this handler: server.NoticesHandler)
//
// Mail grants (or, with /v1/mail/recall, takes back while unclaimed) gold,
// gems and items through the player's mailbox (game.SendMail). "key" is
// required: a user who already has a mail with that key is not mailed
// again (his existing mail id is returned), so a request that failed
// part-way, or whose answer was lost, is sent again as it is. Users
// listed in "failed" (no such player, their game database unavailable)
// got nothing; the whole request is refused with 400 when the mail
// itself is bad.
//
// Stats: "day" is a UTC calendar day (default today, UTC); DAU, NRU,
// revenue and hacks count that day from 00:00 to 24:00 UTC, CCU is always
// now. Revenue sums the payment ledger rows (currency "pay:<ISO 4217>",
// amounts in millionths of the currency at list price) of every game
// database, per currency (omitted when Config.Game is nil; a game database
// that does not answer makes the request 503). Hacks counts the anticheat
// hack log's verdicts of that day, in total and by kind ("speed", "stat",
// "signature", ...). A day with nothing gives zeros and an empty list.
// The last stats computed for the current day are also exported in
// /metrics (madang_revenue_today_micros{currency},
// madang_hacks_today{kind}); a scrape never queries the databases.
//
// Errors are {"error": "..."} with 400 (bad input), 401, 404, 500 or 503
// (a database unavailable: retry). Request bodies are limited to MaxBody
// bytes.
package ops

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// MaxBody bounds an ops API request body.
const MaxBody = 64 << 10

// Config wires the ops API. LiveOps, Registry, Monitor and Token are
// required.
type Config struct {
	// Token is the bearer token of the /v1 endpoints.
	Token string
	// LiveOps is the live-ops policy.
	LiveOps *liveops.Manager
	// Registry is the APK signature registry.
	Registry *anticheat.Registry
	// Monitor keeps the block list.
	Monitor *anticheat.Monitor
	// RevokeUser ends a blocked user's sessions (session.Store.RevokeUser).
	// Nil: sessions run on until the next block check refuses them.
	RevokeUser func(ctx context.Context, userKey int64) error
	// Ready checks the backends for /readyz: name → check.
	Ready map[string]func(ctx context.Context) error
	// Stats adds members to /v1/stats (session counters, ...).
	Stats func(ctx context.Context) map[string]any
	// Metrics is the registry /metrics serves. Nil: no /metrics.
	Metrics *prometheus.Registry
	// Game serves /v1/mail, /v1/mail/recall and /v1/ledger. Nil: those
	// endpoints are not mounted (404).
	Game *game.Game
	// GameData is mounted at /v1/gamedata/ (prefix stripped) behind the
	// token: the game data catalog's operator API. Nil: not mounted.
	GameData http.Handler
	// Logger receives operator actions at info level. Nil: silent.
	Logger *slog.Logger
}

// Handler serves the ops API.
type Handler struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	daily *dailyCollector // nil without Metrics
}

// New returns the ops API handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Token == "" || cfg.LiveOps == nil || cfg.Registry == nil || cfg.Monitor == nil {
		return nil, errors.New("ops: Token, LiveOps, Registry and Monitor are required")
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	m := h.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	m.HandleFunc("GET /readyz", h.ready)
	if cfg.Metrics != nil {
		h.daily = newDailyCollector()
		if err := cfg.Metrics.Register(h.daily); err != nil {
			return nil, fmt.Errorf("ops: register the daily stats metrics: %w", err)
		}
		m.Handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	auth := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) (any, error)) {
		m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if !h.authorized(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="madang-ops"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
			out, err := fn(w, r)
			if err != nil {
				writeErr(w, err)
				return
			}
			if r.Method != http.MethodGet {
				h.log.Info("ops: "+r.Method+" "+r.URL.Path, "remote", r.RemoteAddr)
			}
			if out == nil {
				out = map[string]bool{"ok": true}
			}
			writeJSON(w, http.StatusOK, out)
		})
	}
	auth("GET /v1/client-versions", h.listVersions)
	auth("PUT /v1/platforms/{platform}", h.putPlatform)
	auth("DELETE /v1/platforms/{platform}", h.deletePlatform)
	auth("PUT /v1/client-versions/{platform}/{version}", h.putVersion)
	auth("DELETE /v1/client-versions/{platform}/{version}", h.deleteVersion)
	auth("GET /v1/apk-signatures", h.listSignatures)
	auth("PUT /v1/apk-signatures/{version}", h.putSignature)
	auth("DELETE /v1/apk-signatures/{version}", h.deleteSignature)
	auth("GET /v1/maintenance", h.getMaintenance)
	auth("PUT /v1/maintenance", h.putMaintenance)
	auth("GET /v1/maintenance/users", h.listUserMaintenance)
	auth("POST /v1/maintenance/users", h.addUserMaintenance)
	auth("POST /v1/maintenance/users/remove", h.removeUserMaintenance)
	auth("GET /v1/blocks/{user}", h.getBlock)
	auth("PUT /v1/blocks/{user}", h.putBlock)
	auth("DELETE /v1/blocks/{user}", h.deleteBlock)
	auth("GET /v1/stats", h.stats)
	auth("GET /v1/events", h.listEvents)
	auth("PUT /v1/events/{id}", h.putEvent)
	auth("DELETE /v1/events/{id}", h.deleteEvent)
	if cfg.Game != nil {
		auth("POST /v1/mail", h.sendMail)
		auth("POST /v1/mail/recall", h.recallMail)
		auth("GET /v1/ledger", h.ledger)
	}
	if cfg.GameData != nil {
		inner := http.StripPrefix("/v1/gamedata", cfg.GameData)
		m.HandleFunc("/v1/gamedata/", func(w http.ResponseWriter, r *http.Request) {
			if !h.authorized(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="madang-ops"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
				return
			}
			if r.Method != http.MethodGet {
				h.log.Info("ops: "+r.Method+" "+r.URL.Path, "remote", r.RemoteAddr)
			}
			inner.ServeHTTP(w, r)
		})
	}
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.cfg.Token)) == 1
}

// httpError is an error with a status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func writeErr(w http.ResponseWriter, err error) {
	// A backend that is down or slow is 503 (retry), never 500.
	err = shard.ClassifyError(err)
	var he *httpError
	var ae *anticheat.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
	case errors.Is(err, liveops.ErrInvalid), errors.As(err, &mbe):
		he = &httpError{http.StatusBadRequest, err.Error()}
	case errors.As(err, &ae) && ae.Code == protocol.CodeBadRequest:
		he = &httpError{http.StatusBadRequest, err.Error()}
	case errors.Is(err, game.ErrBadMail), protocol.CodeOf(err) == protocol.CodeBadRequest:
		he = &httpError{http.StatusBadRequest, err.Error()}
	case protocol.CodeOf(err) == game.CodeNoPlayer:
		he = &httpError{http.StatusNotFound, "no such player"}
	case protocol.CodeOf(err) == protocol.CodeUnavailable, protocol.CodeOf(err) == protocol.CodeTimeout:
		he = &httpError{http.StatusServiceUnavailable, "database unavailable, retry"}
	default:
		he = &httpError{http.StatusInternalServerError, "internal error"}
	}
	writeJSON(w, he.status, map[string]string{"error": he.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return badRequest("body over %d bytes", MaxBody)
		}
		return badRequest("body: %v", err)
	}
	return nil
}

func (h *Handler) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	out := map[string]string{}
	status := http.StatusOK
	for name, check := range h.cfg.Ready {
		if err := check(ctx); err != nil {
			out[name] = err.Error()
			status = http.StatusServiceUnavailable
		} else {
			out[name] = "ok"
		}
	}
	writeJSON(w, status, out)
}

func (h *Handler) listVersions(_ http.ResponseWriter, _ *http.Request) (any, error) {
	p := h.cfg.LiveOps.Policy()
	return map[string]any{"version": p.Version, "platforms": nonNil(p.Platforms), "client_versions": nonNil(p.Versions)}, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (h *Handler) putPlatform(_ http.ResponseWriter, r *http.Request) (any, error) {
	var in struct {
		MinVersion string `json:"min_version"`
		UpdateURL  string `json:"update_url"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	return nil, h.cfg.LiveOps.SetPlatform(r.Context(), liveops.PlatformPolicy{Platform: r.PathValue("platform"), MinVersion: in.MinVersion, UpdateURL: in.UpdateURL})
}

func (h *Handler) deletePlatform(_ http.ResponseWriter, r *http.Request) (any, error) {
	return nil, h.cfg.LiveOps.DeletePlatform(r.Context(), r.PathValue("platform"))
}

func (h *Handler) putVersion(_ http.ResponseWriter, r *http.Request) (any, error) {
	var in struct {
		Review       bool   `json:"review"`
		ReviewURL    string `json:"review_url"`
		DataVersion  string `json:"data_version"`
		AssetVersion string `json:"asset_version"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	return nil, h.cfg.LiveOps.SetClientVersion(r.Context(), liveops.ClientVersion{
		Platform: r.PathValue("platform"), Version: r.PathValue("version"),
		Review: in.Review, ReviewURL: in.ReviewURL, DataVersion: in.DataVersion, AssetVersion: in.AssetVersion,
	})
}

func (h *Handler) deleteVersion(_ http.ResponseWriter, r *http.Request) (any, error) {
	return nil, h.cfg.LiveOps.DeleteClientVersion(r.Context(), r.PathValue("platform"), r.PathValue("version"))
}

// Signature is an APK signature registry entry on the wire.
type Signature struct {
	Version    string    `json:"version"`
	APKMD5     string    `json:"apk_md5"`
	CertSHA256 []string  `json:"cert_sha256"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func (h *Handler) listSignatures(_ http.ResponseWriter, r *http.Request) (any, error) {
	es, err := h.cfg.Registry.List(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]Signature, 0, len(es))
	for _, e := range es {
		out = append(out, Signature{Version: e.Version, APKMD5: e.APKMD5, CertSHA256: nonNil(e.CertSHA256), UpdatedAt: e.UpdatedAt})
	}
	return out, nil
}

func (h *Handler) putSignature(_ http.ResponseWriter, r *http.Request) (any, error) {
	var in struct {
		APKMD5     string   `json:"apk_md5"`
		CertSHA256 []string `json:"cert_sha256"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if in.APKMD5 == "" && len(in.CertSHA256) == 0 {
		return nil, badRequest("apk_md5 or cert_sha256 is required")
	}
	return nil, h.cfg.Registry.Set(r.Context(), r.PathValue("version"), in.APKMD5, in.CertSHA256...)
}

func (h *Handler) deleteSignature(_ http.ResponseWriter, r *http.Request) (any, error) {
	if _, err := anticheat.CanonicalVersion(r.PathValue("version")); err != nil {
		return nil, badRequest("version: %v", err)
	}
	return nil, h.cfg.Registry.Delete(r.Context(), r.PathValue("version"))
}

func (h *Handler) getMaintenance(_ http.ResponseWriter, _ *http.Request) (any, error) {
	p := h.cfg.LiveOps.Policy()
	g := p.Maintenance
	g.AllowUsers = nonNil(g.AllowUsers)
	return map[string]any{"global": g, "users": len(p.Users)}, nil
}

func (h *Handler) putMaintenance(_ http.ResponseWriter, r *http.Request) (any, error) {
	var in struct {
		Active     bool      `json:"active"`
		Message    string    `json:"message"`
		EndsAt     time.Time `json:"ends_at"`
		AllowUsers []int64   `json:"allow_users"`
		Operator   string    `json:"operator"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	return nil, h.cfg.LiveOps.SetMaintenance(r.Context(), liveops.Maintenance{
		Active: in.Active, Message: in.Message, EndsAt: in.EndsAt, AllowUsers: in.AllowUsers, Operator: in.Operator,
	})
}

func (h *Handler) listUserMaintenance(_ http.ResponseWriter, _ *http.Request) (any, error) {
	return nonNil(h.cfg.LiveOps.UserMaintenance()), nil
}

type batch struct {
	UserKeys []int64 `json:"user_keys"`
	Operator string  `json:"operator"`
	Comment  string  `json:"comment"`
}

func (h *Handler) addUserMaintenance(_ http.ResponseWriter, r *http.Request) (any, error) {
	var in batch
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := h.cfg.LiveOps.AddUserMaintenance(r.Context(), in.UserKeys, in.Operator, in.Comment); err != nil {
		return nil, err
	}
	return map[string]int{"added": len(in.UserKeys)}, nil
}

func (h *Handler) removeUserMaintenance(_ http.ResponseWriter, r *http.Request) (any, error) {
	var in batch
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := h.cfg.LiveOps.RemoveUserMaintenance(r.Context(), in.UserKeys); err != nil {
		return nil, err
	}
	return map[string]int{"removed": len(in.UserKeys)}, nil
}

func userParam(r *http.Request) (int64, error) {
	u, err := strconv.ParseInt(r.PathValue("user"), 10, 64)
	if err != nil || u <= 0 {
		return 0, badRequest("user must be a positive user key")
	}
	return u, nil
}

func (h *Handler) getBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	u, err := userParam(r)
	if err != nil {
		return nil, err
	}
	b, ok, err := h.cfg.Monitor.Blocks().GetBlock(r.Context(), u, time.Now())
	if err != nil {
		return nil, err
	}
	out := map[string]any{"user_key": u, "blocked": ok}
	if ok {
		out["reason"], out["at"], out["permanent"] = b.Reason, b.At, b.Permanent()
		if !b.Permanent() {
			out["until"] = b.Until
		}
	}
	return out, nil
}

func (h *Handler) putBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	u, err := userParam(r)
	if err != nil {
		return nil, err
	}
	var in struct {
		Duration string `json:"duration"`
		Reason   string `json:"reason"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	var d time.Duration
	if in.Duration != "" {
		if d, err = time.ParseDuration(in.Duration); err != nil || d <= 0 {
			return nil, badRequest("duration must be a positive Go duration such as 24h, or empty for permanent")
		}
	}
	if len(in.Reason) > anticheat.MaxBlockReasonLen {
		return nil, badRequest("reason over %d bytes", anticheat.MaxBlockReasonLen)
	}
	if err := h.cfg.Monitor.Block(r.Context(), u, d, in.Reason); err != nil {
		return nil, err
	}
	if h.cfg.RevokeUser != nil {
		if err := h.cfg.RevokeUser(r.Context(), u); err != nil {
			h.log.Warn("ops: revoke sessions of a blocked user", "user", u, "err", err)
		}
	}
	return nil, nil
}

func (h *Handler) deleteBlock(_ http.ResponseWriter, r *http.Request) (any, error) {
	u, err := userParam(r)
	if err != nil {
		return nil, err
	}
	return nil, h.cfg.Monitor.Unblock(r.Context(), u)
}

func (h *Handler) listEvents(_ http.ResponseWriter, _ *http.Request) (any, error) {
	return nonNil(h.cfg.LiveOps.Events()), nil
}

func (h *Handler) putEvent(_ http.ResponseWriter, r *http.Request) (any, error) {
	var e liveops.Event
	if err := decode(r, &e); err != nil {
		return nil, err
	}
	if e.ID != "" && e.ID != r.PathValue("id") {
		return nil, badRequest("id in the body differs from the path's")
	}
	e.ID = r.PathValue("id")
	return nil, h.cfg.LiveOps.SetEvent(r.Context(), e)
}

func (h *Handler) deleteEvent(_ http.ResponseWriter, r *http.Request) (any, error) {
	return nil, h.cfg.LiveOps.DeleteEvent(r.Context(), r.PathValue("id"))
}

func (h *Handler) stats(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	now := time.Now().UTC()
	if d := r.URL.Query().Get("day"); d != "" {
		t, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return nil, badRequest("day must be YYYY-MM-DD")
		}
		now = t
	}
	out := map[string]any{"day": now.Format(time.DateOnly)}
	if h.cfg.Stats != nil {
		for k, v := range h.cfg.Stats(ctx) {
			out[k] = v
		}
	}
	ccu, err := h.cfg.LiveOps.CCU(ctx)
	if err != nil {
		return nil, err
	}
	dau, err := h.cfg.LiveOps.DAU(ctx, now)
	if err != nil {
		return nil, err
	}
	nru, err := h.cfg.LiveOps.NRU(ctx, now)
	if err != nil {
		return nil, err
	}
	out["ccu"], out["dau"], out["nru"] = ccu, dau, nru
	out["liveops"] = h.cfg.LiveOps.Stats()
	from := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 1)
	hacks, err := h.cfg.Monitor.Log().DailyCounts(ctx, from, to)
	if err != nil {
		return nil, err
	}
	hs := HackStats{ByKind: map[string]int64{}}
	for _, c := range hacks {
		hs.Total += c.Count
		hs.ByKind[string(c.Kind)] += c.Count
	}
	out["hacks"] = hs
	var revenue []game.Revenue
	if h.cfg.Game != nil {
		if revenue, err = h.cfg.Game.RevenueBetween(ctx, from, to); err != nil {
			return nil, err
		}
		out["revenue"] = revenue
	}
	if h.daily != nil && from.Equal(today(time.Now())) {
		h.daily.set(from, revenue, hs)
	}
	return out, nil
}

// HackStats is the hack log's verdicts of one day in /v1/stats.
type HackStats struct {
	Total  int64            `json:"total"`
	ByKind map[string]int64 `json:"by_kind"` // anticheat.Kind → verdicts
}

func today(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
