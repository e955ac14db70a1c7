package server

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/madang-io/madang/examples/gameserver/console"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/protocol"
)

// consoleClient is a browser-like client of the ops console: a cookie jar,
// redirects not followed (the tests look at them).
type consoleClient struct {
	t    *testing.T
	base string
	hc   *http.Client
	last string // the last page's body
}

func newConsoleClient(t *testing.T, base string) *consoleClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Jar: jar, Transport: &http.Transport{}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(hc.CloseIdleConnections)
	return &consoleClient{t: t, base: base, hc: hc}
}

func (c *consoleClient) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.last = string(b)
	return resp, c.last
}

func (c *consoleClient) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

// page gets path and fails unless it answers 200.
func (c *consoleClient) page(path string) string {
	c.t.Helper()
	resp, body := c.get(path)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the last page.
func (c *consoleClient) csrf() string {
	c.t.Helper()
	m := csrfRE.FindStringSubmatch(c.last)
	if m == nil {
		c.t.Fatalf("no CSRF token on the page: %s", c.last)
	}
	return m[1]
}

func (c *consoleClient) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// change posts a form of the page at from with its CSRF token and a
// comment; it fails unless the answer is a redirect (success).
func (c *consoleClient) change(from, path string, form url.Values) {
	c.t.Helper()
	c.page(from)
	form.Set("csrf", c.csrf())
	if !form.Has("comment") {
		form.Set("comment", "test: "+path)
	}
	resp, body := c.post(path, form)
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("POST %s: %d %s", path, resp.StatusCode, errorOf(body))
	}
}

var errorRE = regexp.MustCompile(`(?s)<p class="error"[^>]*>(.*?)</p>`)

// errorOf is the error paragraph of a page ("" if none), unescaped.
func errorOf(body string) string {
	m := errorRE.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[1], ""))
}

func (c *consoleClient) signIn(name, password string) *http.Response {
	c.t.Helper()
	c.page("/console/login")
	resp, _ := c.post("/console/login", url.Values{"csrf": {c.csrf()}, "name": {name}, "password": {password}})
	return resp
}

// newConsoleServer starts a server (testConfig's backends) with an
// operator "alice" (created through RunOperator, the command line's
// path) and a viewer "victor"; it returns the game base URL, the admin
// listener's URL and the server.
func newConsoleServer(t *testing.T) (base, adminBase string, srv *Server) {
	t.Helper()
	cfg := testConfig(t)
	cfg.consolePasswordCost = bcrypt.MinCost
	base, srv = startServerOn(t, cfg)
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(hs.Close)
	args := []string{"-data", cfg.DataDir, "-mysql", cfg.MySQLDSN}
	for _, op := range []struct{ name, role string }{{"alice", "operator"}, {"victor", "viewer"}} {
		var out bytes.Buffer
		a := append(append([]string{}, args...), "add", "-name", op.name, "-role", op.role)
		if err := RunOperator(context.Background(), a, func(string) string { return "" }, strings.NewReader(op.name+"-password-1\n"), &out); err != nil {
			t.Fatalf("operator add %s: %v", op.name, err)
		}
		if !strings.Contains(out.String(), "created") {
			t.Fatalf("operator add: %q", out.String())
		}
	}
	return base, hs.URL, srv
}

func TestConsoleSignIn(t *testing.T) {
	_, admin, _ := newConsoleServer(t)
	c := newConsoleClient(t, admin)
	if resp, _ := c.get("/console/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("signed out: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A login form without its CSRF cookie's token is refused.
	c.page("/console/login")
	if resp, body := c.post("/console/login", url.Values{"csrf": {"forged"}, "name": {"alice"}, "password": {"alice-password-1"}}); resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(errorOf(body), "csrf:") {
		t.Fatalf("forged login form: %d %q", resp.StatusCode, errorOf(body))
	}
	if resp := c.signIn("alice", "wrong-password!"); resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(errorOf(c.last), "password:") {
		t.Fatalf("wrong password: %d %q", resp.StatusCode, errorOf(c.last))
	}
	resp := c.signIn("alice", "alice-password-1")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("sign in: %d %s", resp.StatusCode, c.last)
	}
	var cookie string
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, console.SessionCookie+"=") {
			cookie = v
		}
	}
	for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("session cookie %q: Secure on plain HTTP without ConsoleSecureCookies", cookie)
	}
	body := c.page("/console/")
	if !strings.Contains(body, "alice (operator)") || !strings.Contains(body, `<svg class="chart"`) || !strings.Contains(body, `id="ccu"`) {
		t.Fatalf("dashboard: %s", body)
	}
	for _, p := range []string{"/console/players", "/console/maintenance", "/console/versions", "/console/events", "/console/gamedata", "/console/notices", "/console/audit"} {
		c.page(p)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	// Signing out ends the session on the server, not only in the browser.
	c.page("/console/")
	tok := c.csrf()
	u, _ := url.Parse(admin + "/console/")
	old := c.hc.Jar.Cookies(u)
	if r, _ := c.post("/console/logout", url.Values{"csrf": {tok}}); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.StatusCode)
	}
	c.hc.Jar.SetCookies(u, old)
	if r, _ := c.get("/console/"); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("old cookie after sign-out: %d", r.StatusCode)
	}
}

func TestConsoleSignInLockout(t *testing.T) {
	_, admin, _ := newConsoleServer(t)
	c := newConsoleClient(t, admin)
	for i := range console.DefaultMaxFailures {
		if resp := c.signIn("alice", fmt.Sprintf("wrong-password-%d", i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, resp.StatusCode)
		}
	}
	// Locked out now, even with the right password; another operator is not.
	if resp := c.signIn("alice", "alice-password-1"); resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(errorOf(c.last), "name:") {
		t.Fatalf("after %d failures: %d %q", console.DefaultMaxFailures, resp.StatusCode, errorOf(c.last))
	}
	if resp := newConsoleClient(t, admin).signIn("victor", "victor-password-1"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("another operator: %d", resp.StatusCode)
	}
}

func TestConsoleNotOnTheGameListener(t *testing.T) {
	base, _, _ := newConsoleServer(t)
	for _, p := range []string{"/console/", "/console/login", "/console/console.css"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(b), "console") {
			t.Errorf("game listener GET %s: %d %q", p, resp.StatusCode, b)
		}
	}
}

func TestConsoleViewerRefused(t *testing.T) {
	base, admin, _ := newConsoleServer(t)
	gc, _ := newClient(t, base)
	user := login(t, gc, "viewer-target").UserKey
	c := newConsoleClient(t, admin)
	if resp := c.signIn("victor", "victor-password-1"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	p := fmt.Sprintf("/console/players/%d", user)
	c.page(p)
	resp, body := c.post(p+"/maintenance", url.Values{"csrf": {c.csrf()}, "state": {"on"}, "comment": {"viewer tries"}})
	if resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(errorOf(body), "role:") {
		t.Fatalf("viewer's change: %d %q", resp.StatusCode, errorOf(body))
	}
	c.page("/console/audit")
	if strings.Contains(c.last, "viewer tries") {
		t.Fatal("a refused change reached the audit log")
	}
	// Nothing changed: the player still plays.
	login(t, gc, "viewer-target")
}

func TestConsolePlayer(t *testing.T) {
	base, admin, srv := newConsoleServer(t)
	ctx := context.Background()
	gc, _ := newClient(t, base)
	user := login(t, gc, "console-player").UserKey
	// A player name with markup shows as text.
	db, err := srv.store.router.DB(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	const evil = `<script>alert("x")</script><b>bold</b>`
	if _, err := db.ExecContext(ctx, "UPDATE players SET name = ? WHERE user_key = ?", evil, user); err != nil {
		t.Fatal(err)
	}
	c := newConsoleClient(t, admin)
	if resp := c.signIn("alice", "alice-password-1"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	// Look up by account identity: a redirect to the player's page.
	resp, _ := c.get("/console/players?q=" + url.QueryEscape(game.GuestPlatform+":console-player"))
	p := fmt.Sprintf("/console/players/%d", user)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != p {
		t.Fatalf("lookup: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := c.get("/console/players?q=guest:nobody-here"); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(errorOf(body), "q:") {
		t.Fatalf("lookup of nobody: %d %q", resp.StatusCode, errorOf(body))
	}
	body := c.page(p)
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>bold") || !strings.Contains(body, html.EscapeString(evil)) {
		t.Fatalf("the name is not escaped: %s", body)
	}

	// Per-user maintenance: a form without a comment names the field;
	// one without the CSRF token is refused; with both, the player is held.
	c.page(p)
	if resp, body := c.post(p+"/maintenance", url.Values{"csrf": {c.csrf()}, "state": {"on"}}); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(errorOf(body), "comment:") {
		t.Fatalf("no comment: %d %q", resp.StatusCode, errorOf(body))
	}
	if resp, body := c.post(p+"/maintenance", url.Values{"state": {"on"}, "comment": {"x"}}); resp.StatusCode != http.StatusForbidden || !strings.HasPrefix(errorOf(body), "csrf:") {
		t.Fatalf("no CSRF token: %d %q", resp.StatusCode, errorOf(body))
	}
	c.page(p)
	req, _ := http.NewRequest(http.MethodPost, admin+p+"/maintenance", strings.NewReader(url.Values{"csrf": {c.csrf()}, "state": {"on"}, "comment": {"x"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, body := c.do(req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site post: %d %q", resp.StatusCode, errorOf(body))
	}
	c.change(p, p+"/maintenance", url.Values{"state": {"on"}, "comment": {"repairing inventory <1>"}})
	gc2, _ := newClient(t, base)
	if _, err := loginWith(t, gc2, map[string]any{"device_id": "console-player", "platform": "android", "client_version": "1.0.0.0"}); codeOf(t, err) != protocol.CodeMaintenance {
		t.Fatalf("login in per-user maintenance: %v", err)
	}
	if body := c.page(p); !strings.Contains(body, `id="maint">user<`) {
		t.Fatalf("player page does not show the maintenance: %s", body)
	}
	c.change(p, p+"/maintenance", url.Values{"state": {"off"}, "comment": {"repaired"}})
	login(t, gc2, "console-player")

	// Mail a grant with a bad field: named. Then a good one, claimed by
	// the player, shows in the ledger.
	c.page(p)
	form := url.Values{"csrf": {c.csrf()}, "comment": {"compensation"}, "key": {"k1"}, "title": {"Sorry"}, "items": {"potion=3"}}
	if resp, body := c.post(p+"/mail", form); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(errorOf(body), "items:") {
		t.Fatalf("bad items: %d %q", resp.StatusCode, errorOf(body))
	}
	c.change(p, p+"/mail", url.Values{"key": {"k2"}, "title": {"Sorry"}, "items": {"potion:3"}, "gold": {"500"}, "comment": {"compensation"}})
	c.change(p, p+"/mail", url.Values{"key": {"k2"}, "title": {"Sorry"}, "items": {"potion:3"}, "gold": {"500"}, "comment": {"sent twice"}})
	mails := mailsTitled(t, gc2, "Sorry")
	if len(mails) != 1 {
		t.Fatalf("mails after one grant sent twice: %+v", mails)
	}
	mustCall(t, gc2, game.CmdMailClaim, game.ClaimMail{MailID: mails[0].ID}, nil)
	body = c.page(p)
	if !strings.Contains(body, "<td>item:potion</td><td>3</td>") || !strings.Contains(body, "<td>gold</td><td>500</td>") {
		t.Fatalf("ledger without the grant: %s", body)
	}

	// Kick: the player's session ends.
	c.change(p, p+"/kick", url.Values{"comment": {"stuck session"}})
	if code, _ := call(t, gc2, game.CmdLoad, nil, nil); code == protocol.CodeOK {
		t.Fatal("the kicked session still works")
	}

	// Block and unblock; the audit log has every change with its
	// operator, before/after and comment (escaped).
	c.change(p, p+"/block", url.Values{"duration": {"1h"}, "reason": {"chargeback"}, "comment": {"fraud team"}})
	if _, err := loginWith(t, newClientT(t, base), map[string]any{"device_id": "console-player"}); codeOf(t, err) != protocol.CodeBlocked {
		t.Fatalf("blocked login: %v", err)
	}
	c.change(p, p+"/unblock", url.Values{"comment": {"appeal accepted"}})
	audit := c.page("/console/audit?target=user:" + strconv.FormatInt(user, 10))
	for _, want := range []string{"player.maintenance.on", "player.maintenance.off", "player.mail", "player.kick", "player.block", "player.unblock", "repairing inventory &lt;1&gt;", "appeal accepted", "<td>alice</td>", "<td>ok</td>"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
	if strings.Contains(audit, "<td>pending</td>") {
		t.Error("an audit entry left pending")
	}
}

func newClientT(t *testing.T, base string) *protocol.Client {
	c, _ := newClient(t, base)
	return c
}

func TestConsoleEventsMaintenanceGameData(t *testing.T) {
	base, admin, srv := newConsoleServer(t)
	c := newConsoleClient(t, admin)
	if resp := c.signIn("alice", "alice-password-1"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	// An event in Seoul's wall clock, for Korea only: a bad zone is named.
	start, end := window(t, "Asia/Seoul", -time.Hour, 2*time.Hour)
	ev := url.Values{"id": {"console-bonus"}, "kind": {liveops.EventLoginBonus}, "title": {"Console bonus"}, "time_zone": {"Mars/Olympus"},
		"start": {start[:16]}, "end": {end[:16]}, "countries": {"kr"}, "gems": {"7"}, "comment": {"winter"}}
	c.page("/console/events")
	ev.Set("csrf", c.csrf())
	if resp, body := c.post("/console/events", ev); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(errorOf(body), "time_zone:") {
		t.Fatalf("bad zone: %d %q", resp.StatusCode, errorOf(body))
	}
	ev.Set("time_zone", "Asia/Seoul")
	ev.Del("csrf")
	c.change("/console/events", "/console/events", ev)
	if body := c.page("/console/events?preview=1&country=KR"); !strings.Contains(body, `<span class="badge on">console-bonus</span>`) {
		t.Fatalf("preview for KR: %s", body)
	}
	if body := c.page("/console/events?preview=1&country=JP"); !strings.Contains(body, "no event") {
		t.Fatalf("preview for JP: %s", body)
	}
	gc, _ := newClient(t, base)
	loginFrom(t, gc, "console-event", "KR")
	if len(mailsTitled(t, gc, "Console bonus")) != 1 {
		t.Fatal("the event's login bonus did not reach a Korean player's login")
	}

	// Global maintenance on (the message is required) and off.
	c.page("/console/maintenance")
	if resp, body := c.post("/console/maintenance", url.Values{"csrf": {c.csrf()}, "state": {"on"}, "comment": {"x"}}); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(errorOf(body), "message:") {
		t.Fatalf("no message: %d %q", resp.StatusCode, errorOf(body))
	}
	c.change("/console/maintenance", "/console/maintenance", url.Values{"state": {"on"}, "message": {"Back at 10:00"}, "comment": {"db upgrade"}})
	if _, err := loginWith(t, newClientT(t, base), map[string]any{"device_id": "console-event"}); codeOf(t, err) != protocol.CodeMaintenance {
		t.Fatalf("login in global maintenance: %v", err)
	}
	c.change("/console/maintenance", "/console/maintenance", url.Values{"state": {"off"}, "comment": {"done"}})
	// Batches of keys: over 100 is refused with the field named.
	keys := make([]string, console.MaxBatch+1)
	for i := range keys {
		keys[i] = strconv.Itoa(10000001 + i)
	}
	c.page("/console/maintenance")
	if resp, body := c.post("/console/maintenance/users", url.Values{"csrf": {c.csrf()}, "state": {"on"}, "user_keys": {strings.Join(keys, ",")}, "comment": {"x"}}); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(errorOf(body), "user_keys:") {
		t.Fatalf("101 keys: %d %q", resp.StatusCode, errorOf(body))
	}
	c.change("/console/maintenance", "/console/maintenance/users", url.Values{"state": {"on"}, "user_keys": {strings.Join(keys[:3], ", ")}, "comment": {"batch"}})
	if n := len(srv.liveops.UserMaintenance()); n != 3 {
		t.Fatalf("users in maintenance: %d", n)
	}

	// Game data: nothing to roll back to yet (the 409 of the API is a 400
	// naming the form); publish 1 then 2, roll back to 1.
	c.page("/console/gamedata")
	if resp, body := c.post("/console/gamedata/rollback", url.Values{"csrf": {c.csrf()}, "comment": {"x"}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(errorOf(body), "no earlier published version") {
		t.Fatalf("rollback with no history: %d %q", resp.StatusCode, errorOf(body))
	}
	c.change("/console/gamedata", "/console/gamedata/publish", url.Values{"version": {"1"}, "comment": {"season 1"}})
	c.change("/console/gamedata", "/console/gamedata/publish", url.Values{"version": {"2"}, "comment": {"new season"}})
	if pub, _ := srv.catalog.Published(); pub != "2" {
		t.Fatalf("published %q", pub)
	}
	c.change("/console/gamedata", "/console/gamedata/rollback", url.Values{"comment": {"bad balance"}})
	if pub, _ := srv.catalog.Published(); pub != "1" {
		t.Fatalf("after rollback %q", pub)
	}
	c.page("/console/gamedata")
	if resp, body := c.post("/console/gamedata/publish", url.Values{"csrf": {c.csrf()}, "version": {"9"}, "comment": {"x"}}); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(errorOf(body), "version:") {
		t.Fatalf("unknown version: %d %q", resp.StatusCode, errorOf(body))
	}

	// Client versions and APK signatures ("0" deletes).
	c.change("/console/versions", "/console/versions/signature", url.Values{"version": {"1.0.0.0"}, "apk_md5": {strings.Repeat("ab", 16)}, "comment": {"release"}})
	if body := c.page("/console/versions"); !strings.Contains(body, strings.Repeat("ab", 16)) {
		t.Fatal("signature not listed")
	}
	c.change("/console/versions", "/console/versions/signature", url.Values{"version": {"1.0.0.0"}, "apk_md5": {"0"}, "comment": {"withdrawn"}})
	if body := c.page("/console/versions"); strings.Contains(body, strings.Repeat("ab", 16)) {
		t.Fatal("signature not deleted by 0")
	}
	c.page("/console/versions")
	if resp, body := c.post("/console/versions/client", url.Values{"csrf": {c.csrf()}, "platform": {"ios"}, "version": {"1.x"}, "comment": {"x"}}); resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(errorOf(body), "version:") {
		t.Fatalf("bad client version: %d %q", resp.StatusCode, errorOf(body))
	}
	c.change("/console/versions", "/console/versions/client", url.Values{"platform": {"ios"}, "version": {"1.2.0.0"}, "review": {"on"}, "review_url": {"https://review.example"}, "comment": {"in review"}})
	if b, ok := srv.liveops.Policy().Build("ios", "1.2.0.0"); !ok || !b.Review {
		t.Fatalf("build: %+v %v", b, ok)
	}
	audit := c.page("/console/audit")
	for _, want := range []string{"event.set", "maintenance.global.on", "maintenance.users.on", "gamedata.publish", "gamedata.rollback", "versions.signature", "versions.client"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}
