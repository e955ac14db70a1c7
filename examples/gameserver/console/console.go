package console

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/session"
	"github.com/madang-io/madang/shard"
)

// Prefix is the path the console is served under.
const Prefix = "/console/"

// Cookie names.
const (
	// SessionCookie carries a signed-in operator's session.
	SessionCookie = "madang_console"
	// loginCookie carries the sign-in form's CSRF token (double submit).
	loginCookie = "madang_console_login"
	// flashCookie carries the message of a change to the page after it.
	flashCookie = "madang_console_flash"
)

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = 10 * time.Second

// MaxForm bounds a form body.
const MaxForm = 64 << 10

//go:embed templates/*.html
var templateFiles embed.FS

// Config wires the console. Store, LiveOps, Registry and Monitor are
// required; the pages of a nil Game, Catalog or FindUser say so.
type Config struct {
	// Store keeps operators, sessions and the audit log.
	Store *Store
	// LiveOps is the live-ops policy (maintenance, client versions,
	// events, CCU, DAU, NRU).
	LiveOps *liveops.Manager
	// Registry is the APK signature registry.
	Registry *anticheat.Registry
	// Monitor keeps the block list and the hack log.
	Monitor *anticheat.Monitor
	// Game serves profiles, ledgers, purchases, revenue and mail.
	Game *game.Game
	// Catalog is the game data catalog (versions, publish, rollback).
	Catalog *gamedata.Catalog
	// FindUser resolves an account identity (platform, id) to its user
	// key, for the player lookup. Nil: lookup by user key only.
	FindUser func(ctx context.Context, platform, id string) (int64, bool, error)
	// RevokeUser ends a user's sessions (kick, and after a block).
	RevokeUser func(ctx context.Context, userKey int64) error
	// Sessions lists a user's live sessions for the player page
	// (session.SessionLister's UserSessions). Nil: the page lists none
	// and says so.
	Sessions func(ctx context.Context, userKey int64) ([]*session.Session, error)
	// Notice sends a notice to the realtime "system" channel of every
	// node. Nil: the notices page says it is not available.
	Notice func(ctx context.Context, n Notice) error
	// Secure marks the cookies Secure even on plain HTTP (a TLS proxy in
	// front). A request that came over TLS always gets Secure cookies.
	Secure bool
	// Timeout bounds the database work of one page or change: a database
	// down or locked then answers 503 (retry) before the listener's write
	// timeout (15 s in the game server) drops the connection. Default
	// DefaultTimeout.
	Timeout time.Duration
	// Days is how many days the dashboard charts. Default 14.
	Days int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
	// Logger receives changes at info level. Nil: silent.
	Logger *slog.Logger
}

// Notice is a notice for the realtime channels (server.NoticesHandler's
// body).
type Notice struct {
	Topic    string
	Message  string
	Platform string
	Country  string
	Language string
}

// Handler serves the console under Prefix.
type Handler struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	pages map[string]*template.Template
}

// New returns the console handler. Mount it on the admin listener only,
// at Prefix.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil || cfg.LiveOps == nil || cfg.Registry == nil || cfg.Monitor == nil {
		return nil, errors.New("console: Store, LiveOps, Registry and Monitor are required")
	}
	if cfg.Days <= 0 {
		cfg.Days = 14
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), pages: map[string]*template.Template{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		h.pages[base] = t
	}
	h.routes()
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// view renders a page: it returns the template and its data.
type view func(r *http.Request, s *Session) (string, any, error)

// action applies a change: it returns where to go next and what to say.
type action func(r *http.Request, s *Session, comment string) (next, flash string, err error)

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Session *Session
	Flash   string
	Err     *FieldError
	Data    any
	Now     time.Time
}

func (h *Handler) routes() {
	m := h.mux
	m.HandleFunc("GET /console/login", h.loginPage)
	m.HandleFunc("POST /console/login", h.login)
	m.HandleFunc("POST /console/logout", h.logout)
	m.HandleFunc("GET /console/{$}", h.get(h.dashboard))
	m.HandleFunc("GET /console/players", h.get(h.players))
	m.HandleFunc("GET /console/players/{user}", h.get(h.player))
	for _, a := range []string{"block", "unblock", "kick", "maintenance", "mail", "recall", "takeback"} {
		m.HandleFunc("POST /console/players/{user}/"+a, h.post(h.player, h.playerAction(a)))
	}
	m.HandleFunc("GET /console/maintenance", h.get(h.maintenance))
	m.HandleFunc("POST /console/maintenance", h.post(h.maintenance, h.setMaintenance))
	m.HandleFunc("POST /console/maintenance/users", h.post(h.maintenance, h.userMaintenance))
	m.HandleFunc("GET /console/versions", h.get(h.versions))
	m.HandleFunc("POST /console/versions/platform", h.post(h.versions, h.setPlatform))
	m.HandleFunc("POST /console/versions/client", h.post(h.versions, h.setClientVersion))
	m.HandleFunc("POST /console/versions/signature", h.post(h.versions, h.setSignature))
	m.HandleFunc("GET /console/events", h.get(h.events))
	m.HandleFunc("POST /console/events", h.post(h.events, h.setEvent))
	m.HandleFunc("POST /console/events/delete", h.post(h.events, h.deleteEvent))
	m.HandleFunc("GET /console/gamedata", h.get(h.gamedata))
	m.HandleFunc("POST /console/gamedata/publish", h.post(h.gamedata, h.publish))
	m.HandleFunc("POST /console/gamedata/rollback", h.post(h.gamedata, h.rollback))
	m.HandleFunc("GET /console/notices", h.get(h.notices))
	m.HandleFunc("POST /console/notices", h.post(h.notices, h.sendNotice))
	m.HandleFunc("GET /console/audit", h.get(h.audit))
	m.HandleFunc("GET /console/console.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		_, _ = w.Write([]byte(css))
	})
}

func (h *Handler) secure(r *http.Request) bool { return h.cfg.Secure || r.TLS != nil }

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: h.secure(r),
	})
}

// session returns the request's session, or nil.
func (h *Handler) session(r *http.Request) (*Session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return nil, nil
	}
	s, err := h.cfg.Store.Session(r.Context(), c.Value)
	if errors.Is(err, ErrNoSession) {
		return nil, nil
	}
	return s, err
}

// sameOrigin refuses a cross-site form post: an Origin header, when the
// browser sends one, must be this host's.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (h *Handler) get(v view) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		s, err := h.session(r)
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		if s == nil {
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		h.show(w, r, s, v, http.StatusOK, nil)
	}
}

func (h *Handler) show(w http.ResponseWriter, r *http.Request, s *Session, v view, status int, ferr *FieldError) {
	name, data, err := v(r, s)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) { // a bad query parameter
			status, ferr = http.StatusBadRequest, fe
		} else {
			h.fail(w, r, s, err)
			return
		}
	}
	if name == "redirect" && ferr == nil {
		http.Redirect(w, r, data.(string), http.StatusSeeOther)
		return
	}
	if name == "redirect" {
		name = "players"
	}
	p := page{Session: s, Err: ferr, Data: data, Now: h.cfg.Now(), Nav: name}
	if c, err := r.Cookie(flashCookie); err == nil {
		p.Flash, _ = url.QueryUnescape(c.Value)
		h.setCookie(w, r, flashCookie, "", -1)
	}
	h.render(w, status, name, p)
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, p page) {
	t := h.pages[name]
	if t == nil {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", p); err != nil {
		h.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "console: render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail answers an error that is not the operator's: 503 for a backend
// that is down (retry), 500 otherwise.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, s *Session, err error) {
	status, msg := http.StatusInternalServerError, "internal error (logged)"
	if c := protocol.CodeOf(shard.ClassifyError(err)); c == protocol.CodeUnavailable || c == protocol.CodeTimeout {
		status, msg = http.StatusServiceUnavailable, "a database is unavailable: retry in a moment"
	}
	h.log.Warn("console: request failed", "path", r.URL.Path, "err", err)
	h.render(w, status, "error", page{Session: s, Data: msg, Now: h.cfg.Now()})
}

// post wraps a change: signed in, same origin, the session's CSRF token,
// the operator role, a comment; a FieldError re-renders the page v with
// 400 and the field named; success redirects (303) with a flash message.
func (h *Handler) post(v view, a action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(w, r.Body, MaxForm)
		s, err := h.session(r)
		if err != nil {
			h.fail(w, r, nil, err)
			return
		}
		if s == nil {
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		if err := r.ParseForm(); err != nil {
			h.show(w, r, s, v, http.StatusBadRequest, &FieldError{Field: "form", Msg: "unreadable form: " + err.Error()})
			return
		}
		if !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.CSRF)) != 1 {
			h.show(w, r, s, v, http.StatusForbidden, &FieldError{Field: "csrf", Msg: "the form expired or came from another site: reload the page and try again"})
			return
		}
		if !s.Operator.CanChange() {
			h.show(w, r, s, v, http.StatusForbidden, &FieldError{Field: "role", Msg: fmt.Sprintf("%s is a %s: viewers may not change anything", s.Operator.Name, s.Operator.Role)})
			return
		}
		comment := strings.TrimSpace(r.PostFormValue("comment"))
		if comment == "" {
			h.show(w, r, s, v, http.StatusBadRequest, &FieldError{Field: "comment", Msg: "required: say why (it goes to the audit log)"})
			return
		}
		if len(comment) > MaxCommentLen {
			h.show(w, r, s, v, http.StatusBadRequest, &FieldError{Field: "comment", Msg: fmt.Sprintf("at most %d bytes", MaxCommentLen)})
			return
		}
		next, flash, err := a(r, s, comment)
		if err != nil {
			var fe *FieldError
			var ie *liveops.InvalidError
			switch {
			case errors.As(err, &fe):
				h.show(w, r, s, v, http.StatusBadRequest, fe)
			case errors.As(err, &ie) && ie.Field != "": // against the field the error names
				h.show(w, r, s, v, http.StatusBadRequest, &FieldError{Field: ie.Field, Msg: ie.Msg})
			case errors.Is(err, gamedata.ErrUnknownVersion):
				h.show(w, r, s, v, http.StatusBadRequest, &FieldError{Field: "version", Msg: err.Error()})
			case errors.Is(err, liveops.ErrInvalid), errors.Is(err, game.ErrBadMail),
				errors.Is(err, gamedata.ErrNoPrevious),
				protocol.CodeOf(err) == protocol.CodeBadRequest:
				h.show(w, r, s, v, http.StatusBadRequest, &FieldError{Field: "form", Msg: err.Error()})
			case protocol.CodeOf(err) == game.CodeNoPlayer:
				h.show(w, r, s, v, http.StatusNotFound, &FieldError{Field: "user", Msg: "no such player"})
			default:
				h.fail(w, r, s, err)
			}
			return
		}
		if flash != "" { // in a cookie, not the URL: a link cannot forge one
			h.setCookie(w, r, flashCookie, url.QueryEscape(flash), 60)
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}

// audited runs change between a pending audit entry (written first: no
// change runs unaudited) and its outcome.
func (h *Handler) audited(ctx context.Context, s *Session, act, target, comment string, before any, change func() (after any, err error)) error {
	id, err := h.cfg.Store.Begin(ctx, AuditEntry{Operator: s.Operator.Name, Action: act, Target: target, Before: toJSON(before), Comment: comment})
	if err != nil {
		return err
	}
	after, cerr := change()
	// The outcome is written even when the request's context ended.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if ferr := h.cfg.Store.Finish(fctx, id, toJSON(after), cerr); ferr != nil {
		h.log.Error("console: audit outcome not written", "audit_id", id, "err", ferr)
		if cerr == nil {
			cerr = ferr
		}
	}
	h.log.Info("console: "+act, "operator", s.Operator.Name, "target", target, "audit_id", id, "err", cerr)
	return cerr
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	h.loginForm(w, r, http.StatusOK, nil)
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request, status int, ferr *FieldError) {
	tok := randomToken()
	h.setCookie(w, r, loginCookie, tok, 600)
	h.render(w, status, "login", page{Err: ferr, Data: map[string]string{"CSRF": tok, "Name": r.PostFormValue("name")}, Now: h.cfg.Now()})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxForm)
	if err := r.ParseForm(); err != nil {
		h.loginForm(w, r, http.StatusBadRequest, &FieldError{Field: "form", Msg: "unreadable form"})
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		h.loginForm(w, r, http.StatusForbidden, &FieldError{Field: "csrf", Msg: "the form expired or came from another site: try again"})
		return
	}
	name, pw := r.PostFormValue("name"), r.PostFormValue("password")
	switch {
	case name == "":
		h.loginForm(w, r, http.StatusBadRequest, &FieldError{Field: "name", Msg: "required"})
		return
	case pw == "":
		h.loginForm(w, r, http.StatusBadRequest, &FieldError{Field: "password", Msg: "required"})
		return
	}
	token, _, err := h.cfg.Store.SignIn(r.Context(), name, pw)
	switch {
	case errors.Is(err, ErrBadLogin):
		h.log.Info("console: failed sign-in", "operator", name, "remote", r.RemoteAddr)
		h.loginForm(w, r, http.StatusUnauthorized, &FieldError{Field: "password", Msg: "wrong operator name or password"})
		return
	case errors.Is(err, ErrLockedOut):
		h.log.Warn("console: sign-in refused, locked out", "operator", name, "remote", r.RemoteAddr)
		h.loginForm(w, r, http.StatusTooManyRequests, &FieldError{Field: "name", Msg: "too many failed sign-ins: wait a minute and retry"})
		return
	case err != nil:
		h.fail(w, r, nil, err)
		return
	}
	h.setCookie(w, r, loginCookie, "", -1)
	h.setCookie(w, r, SessionCookie, token, int(h.cfg.Store.cfg.SessionTTL/time.Second))
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxForm)
	s, err := h.session(r)
	if err == nil && s != nil && sameOrigin(r) && subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.CSRF)) == 1 {
		c, _ := r.Cookie(SessionCookie)
		if err := h.cfg.Store.SignOut(r.Context(), c.Value); err != nil {
			h.fail(w, r, s, err)
			return
		}
	}
	h.setCookie(w, r, SessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// formInt parses an integer form field in [lo, hi]; "" is def.
func formInt(r *http.Request, field string, lo, hi, def int64) (int64, error) {
	v := strings.TrimSpace(r.FormValue(field))
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fieldErr(field, "a whole number from %d to %d", lo, hi)
	}
	return n, nil
}
