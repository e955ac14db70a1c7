package console_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/datatool/sheet"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/gamedata"
	"github.com/madang-io/madang/examples/gameserver/server"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// web is an operator's browser without JavaScript: a cookie jar and the
// page's CSRF token.
type web struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signInHTTP signs name (a startStack operator) in over plain HTTP.
func signInHTTP(t *testing.T, base, name string) *web {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	w := &web{t: t, base: base, c: &http.Client{Jar: jar, Transport: &http.Transport{}}}
	t.Cleanup(w.c.CloseIdleConnections)
	_, body := w.get("/console/login")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf in the login page: %s", body)
	}
	status, body := w.post("/console/login", url.Values{"csrf": {m[1]}, "name": {name}, "password": {name + "-password-1"}})
	if status != http.StatusOK || !strings.Contains(body, `id="who"`) {
		t.Fatalf("sign in: %d %s", status, body)
	}
	return w
}

func (w *web) do(req *http.Request) (int, string) {
	w.t.Helper()
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	if m := csrfRE.FindSubmatch(b); m != nil {
		w.csrf = string(m[1])
	}
	return resp.StatusCode, string(b)
}

func (w *web) get(path string) (int, string) {
	w.t.Helper()
	req, _ := http.NewRequest("GET", w.base+path, nil)
	return w.do(req)
}

// post posts form (with the last page's CSRF token unless it has one).
func (w *web) post(path string, form url.Values) (int, string) {
	w.t.Helper()
	if form.Get("csrf") == "" {
		form.Set("csrf", w.csrf)
	}
	req, _ := http.NewRequest("POST", w.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return w.do(req)
}

// uploadVersion builds data version version from the sheets of version 2
// with extra rows appended (by file base name) and uploads it through the
// admin API.
func uploadVersion(t *testing.T, st stack, version, by, comment string, extra map[string]string) {
	t.Helper()
	dir := filepath.Join("..", "gamedata", "sheets", "2")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var in []sheet.Input
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = bytes.NewReader(b)
		if add, ok := extra[e.Name()]; ok {
			r = io.MultiReader(r, strings.NewReader(add))
		}
		in = append(in, sheet.Input{Name: filepath.Join(dir, e.Name()), R: r})
	}
	data, _, err := gamedata.Build(version, in...)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(gamedata.Upload{UploadedBy: by, Comment: comment, Data: data})
	req, _ := http.NewRequest("POST", st.admin+"/v1/gamedata/versions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.Repeat("t", 32))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("upload %s: %d %s", version, resp.StatusCode, b)
	}
}

// TestGameDataPage: the version list shows who uploaded what, when, why
// and its hash; the diff between any two versions lists the rows added,
// removed and changed field by field, escaped.
func TestGameDataPage(t *testing.T) {
	st := startStack(t)
	const evil = `<script>alert(1)</script>`
	uploadVersion(t, st, "3", "dana <ops>", "adds "+evil, map[string]string{"items.csv": "dragon_egg," + evil + "\n"})
	w := signInHTTP(t, st.admin, "victor") // a viewer may look

	status, body := w.get("/console/gamedata?from=2&to=3")
	if status != http.StatusOK {
		t.Fatalf("gamedata: %d %s", status, body)
	}
	if strings.Contains(body, evil) || strings.Contains(body, "<ops>") {
		t.Fatalf("unescaped markup in the page: %s", body)
	}
	for _, want := range []string{
		"dana &lt;ops&gt;", "adds " + html.EscapeString(evil), // who and why
		"row added", "dragon_egg", html.EscapeString(evil), // the diff
		`id="diff-from">2<`, `id="diff-to">3<`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// Each change the catalog finds is a row of the page, field by field.
	db, err := sql.Open("sqlite", shard.SQLiteDSN(filepath.Join(t.TempDir(), "common.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cat, err := gamedata.Open(context.Background(), gamedata.Default(), gamedata.Config{DB: db})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{"1", "2"}, {"2", "1"}} {
		diff, err := cat.Diff(pair[0], pair[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(diff) == 0 {
			t.Fatalf("no difference between %s and %s: the test proves nothing", pair[0], pair[1])
		}
		_, body := w.get("/console/gamedata?from=" + pair[0] + "&to=" + pair[1])
		rows := strings.Count(body, `<tr class="diff `)
		want := 0
		for _, d := range diff {
			want += max(1, len(d.Fields))
			for _, f := range d.Fields {
				if !strings.Contains(body, "<del>"+html.EscapeString(f.Old)+"</del></td><td><ins>"+html.EscapeString(f.New)+"</ins>") {
					t.Errorf("%s→%s: no row %s.%s %s: %q → %q", pair[0], pair[1], d.Table, d.Key, f.Column, f.Old, f.New)
				}
			}
		}
		if rows != want {
			t.Errorf("%s→%s: %d diff rows, want %d", pair[0], pair[1], rows, want)
		}
	}
	// Hashes are listed.
	for _, info := range cat.VersionInfos() {
		if !strings.Contains(body, info.Hash) {
			t.Errorf("no hash of version %s", info.Version)
		}
	}
	// An unknown version is a field error.
	status, body = w.get("/console/gamedata?from=2&to=nope")
	if status != http.StatusBadRequest || !strings.Contains(body, `data-field="to"`) {
		t.Fatalf("unknown version: %d %s", status, body)
	}
}

var requestIDRE = regexp.MustCompile(`name="request_id" value="([^"]+)"`)

// TestTakeBackForm: the player page's take-back takes currency and items
// once per form (a resubmitted form takes nothing again), writes ledger
// rows naming the operator, refuses more than the player has against the
// field naming the item, and audits the balances before and after.
func TestTakeBackForm(t *testing.T) {
	st := startStack(t)
	pl := newPlayer(t, st.game)
	res, code := pl.login("takeback-player", "KR")
	if code != protocol.CodeOK {
		t.Fatalf("login: %v", code)
	}
	if _, err := pl.c.Call(context.Background(), game.CmdMailClaimAll, nil, nil); err != nil {
		t.Fatal(err)
	}
	user := strconv.FormatInt(res.UserKey, 10)
	page := "/console/players/" + user
	w := signInHTTP(t, st.admin, "alice")
	_, body := w.get(page)
	before := number(t, body, "gold")
	m := requestIDRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no request id in the player page: %s", body)
	}
	form := url.Values{"comment": {"refund of a duplicate grant"}, "request_id": {m[1]}, "tb_gold": {"100"}, "tb_items": {"potion:1"}}
	csrf := w.csrf
	for i, want := range []string{"taken back: gold 100", "already done"} {
		form.Set("csrf", csrf) // the same form, sent again
		status, body := w.post(page+"/takeback", form)
		if status != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("take-back %d: %d, want %q in %s", i, status, want, body)
		}
		if g := number(t, body, "gold"); g != before-100 {
			t.Fatalf("take-back %d: gold %d, was %d", i, g, before)
		}
		if n := strings.Count(body, "<td>operator.takeback:alice</td>"); n != 2 {
			t.Fatalf("take-back %d: %d ledger rows of the take-back, want 2 (gold, potion)", i, n)
		}
	}

	// More than the player has: refused against the items field, nothing taken.
	_, body = w.get(page)
	status, body := w.post(page+"/takeback", url.Values{"comment": {"too much"}, "request_id": {requestIDRE.FindStringSubmatch(body)[1]}, "tb_gold": {"1"}, "tb_items": {"potion:999"}})
	if status != http.StatusBadRequest || !strings.Contains(body, `data-field="tb_items"`) || !strings.Contains(body, "item:potion") || !strings.Contains(body, `name="tb_items" size="24" placeholder="potion:3, key_bronze:1" class="bad"`) {
		t.Fatalf("too much: %d %s", status, body)
	}
	if g := number(t, body, "gold"); g != before-100 {
		t.Fatalf("a refused take-back took gold: %d", g)
	}

	// Audited: who, before and after; the refusal as failed.
	_, body = w.get("/console/audit?target=user:" + user)
	if n := strings.Count(body, "<td>player.takeback</td>"); n != 3 {
		t.Fatalf("%d take-back audit entries, want 3: %s", n, body)
	}
	if !strings.Contains(body, html.EscapeString(`"gold":`+strconv.FormatInt(before, 10))) || !strings.Contains(body, html.EscapeString(`"gold":`+strconv.FormatInt(before-100, 10))) ||
		!strings.Contains(body, html.EscapeString(`"repeated":true`)) {
		t.Fatalf("audit before/after: %s", body)
	}
}

// number reads the integer in the element with id in page.
func number(t *testing.T, page, id string) int64 {
	t.Helper()
	m := regexp.MustCompile(`id="` + id + `">(-?\d+)<`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no #%s in %s", id, page)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// TestEventFormFieldErrors: liveops refusals that name a field are shown
// against that field (the error's data-field, the input marked), and
// change nothing.
func TestEventFormFieldErrors(t *testing.T) {
	st := startStack(t)
	w := signInHTTP(t, st.admin, "alice")
	_, _ = w.get("/console/events")
	base := url.Values{"comment": {"field errors"}, "id": {"fe-1"}, "kind": {"login_bonus"}, "title": {"Bonus"}, "time_zone": {"Asia/Seoul"},
		"start": {"2026-12-01T10:00"}, "end": {"2026-12-08T10:00"}, "gold": {"10"}}
	for _, c := range []struct {
		set   map[string]string
		field string
	}{
		{map[string]string{"end": "2026-11-30T10:00"}, "end"},                      // before start: liveops's check
		{map[string]string{"min_client_version": "one.two"}, "min_client_version"}, // liveops parses it
		{map[string]string{"kind": "dungeon_buff", "gold": "0"}, "gold_pct"},       // a buff of nothing
		{map[string]string{"kind": "shop_sale", "gold": "0", "discount_pct": "100"}, "discount_pct"},
		{map[string]string{"kind": "raffle"}, "kind"},
		{map[string]string{"countries": strings.Repeat("KR,", 200) + "KR"}, "countries"},
	} {
		form := url.Values{}
		for k, v := range base {
			form[k] = v
		}
		for k, v := range c.set {
			form.Set(k, v)
		}
		status, body := w.post("/console/events", form)
		if status != http.StatusBadRequest || !strings.Contains(body, `data-field="`+c.field+`"`) {
			t.Fatalf("%v: %d, want the error against %s: %s", c.set, status, c.field, errorLine(body))
		}
		if !regexp.MustCompile(`name="` + c.field + `"[^>]*class="bad"`).MatchString(body) {
			t.Errorf("%v: the %s input is not marked", c.set, c.field)
		}
	}
	if _, body := w.get("/console/events"); strings.Contains(body, "<td>fe-1</td>") {
		t.Fatal("a refused event was saved")
	}
}

// errorLine is the page's error paragraph.
func errorLine(body string) string {
	if i := strings.Index(body, `<p class="error"`); i >= 0 {
		if j := strings.Index(body[i:], "</p>"); j >= 0 {
			return body[i : i+j]
		}
	}
	return "(no error shown)"
}

// TestConsoleDatabaseDown: with the player's game database unavailable
// (another connection holds its write lock: SQLite answers busy) a
// take-back answers 503, takes nothing, and its audit entry says it
// failed; once the database is back the same form works.
func TestConsoleDatabaseDown(t *testing.T) {
	st := startStack(t)
	pl := newPlayer(t, st.game)
	res, code := pl.login("db-down-player", "KR")
	if code != protocol.CodeOK {
		t.Fatalf("login: %v", code)
	}
	user := strconv.FormatInt(res.UserKey, 10)
	page := "/console/players/" + user
	w := signInHTTP(t, st.admin, "alice")
	_, body := w.get(page)
	before := number(t, body, "gold")
	form := url.Values{"comment": {"while the database is down"}, "request_id": {requestIDRE.FindStringSubmatch(body)[1]}, "tb_gold": {"1"}}

	// Cut: hold the game database's write lock.
	path := filepath.Join(st.dir, fmt.Sprintf("gamedb%02d.db", res.UserKey/server.EmbeddedKeyRange))
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	status, body := w.post(page+"/takeback", form)
	if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
		t.Fatalf("take-back with the database down: %d %s", status, body)
	}

	// Nothing changed; the attempt is audited as failed.
	_, body = w.get(page)
	if g := number(t, body, "gold"); g != before {
		t.Fatalf("gold %d after a failed take-back, was %d", g, before)
	}
	if strings.Contains(body, "<td>operator.takeback:alice</td>") {
		t.Fatal("a ledger row of the failed take-back")
	}
	_, audit := w.get("/console/audit?target=user:" + user)
	if n := strings.Count(audit, "<td>player.takeback</td>"); n != 1 || !strings.Contains(audit, "<td>failed: ") {
		t.Fatalf("audit of the failed take-back: %s", audit)
	}

	// Back: the same form takes once.
	form.Set("csrf", w.csrf)
	if status, body := w.post(page+"/takeback", form); status != http.StatusOK || number(t, body, "gold") != before-1 {
		t.Fatalf("take-back after the database is back: %d %s", status, errorLine(body))
	}
}

// TestPlayerPageSessions: the player page lists the player's live session
// (id, client, country; never its token), and none after a kick.
func TestPlayerPageSessions(t *testing.T) {
	st := startStack(t)
	pl := newPlayer(t, st.game)
	res, code := pl.login("sessions-player", "KR")
	if code != protocol.CodeOK {
		t.Fatalf("login: %v", code)
	}
	id := res.Token[:len(res.Token)-32] // the key id: the token without its 192 secret bits
	page := "/console/players/" + strconv.FormatInt(res.UserKey, 10)
	w := signInHTTP(t, st.admin, "alice")
	_, body := w.get(page)
	i := strings.Index(body, `<table id="sessions">`)
	if i < 0 {
		t.Fatalf("no sessions table: %s", body)
	}
	table := body[i:]
	table = table[:strings.Index(table, "</table>")]
	if !strings.Contains(table, "<td>"+id+"</td>") || !strings.Contains(table, "<td>1.0.0.0</td>") || !strings.Contains(table, "<td>KR</td>") {
		t.Fatalf("the live session %s is not listed: %s", id, table)
	}
	if strings.Contains(body, res.Token) {
		t.Fatal("the player page shows the session's token")
	}
	if status, body := w.post(page+"/kick", url.Values{"comment": {"support ticket 12"}}); status != http.StatusOK || strings.Contains(body, "<td>"+id+"</td>") || !strings.Contains(body, "none live") {
		t.Fatalf("after a kick: %d, the session still listed or no 'none live': %s", status, body)
	}
}

// TestVersionsFormFieldErrors: the versions page's refusals by live ops
// name the field that is wrong, and the input is marked.
func TestVersionsFormFieldErrors(t *testing.T) {
	st := startStack(t)
	w := signInHTTP(t, st.admin, "alice")
	_, _ = w.get("/console/versions")
	for _, c := range []struct {
		path  string
		form  url.Values
		field string
	}{
		{"/console/versions/platform", url.Values{"platform": {"android"}, "min_version": {"one.two"}}, "min_version"},
		{"/console/versions/client", url.Values{"platform": {"android"}, "version": {"one.two"}}, "version"},
		{"/console/versions/client", url.Values{"platform": {"ios"}, "version": {"1.2.0.0"}, "review": {"on"}}, "review_url"},
		{"/console/versions/client", url.Values{"platform": {""}, "version": {"1.2.0.0"}}, "platform"},
	} {
		c.form.Set("comment", "field errors")
		status, body := w.post(c.path, c.form)
		if status != http.StatusBadRequest || !strings.Contains(body, `data-field="`+c.field+`"`) {
			t.Fatalf("%s %v: %d, want the error against %s: %s", c.path, c.form, status, c.field, errorLine(body))
		}
		if !regexp.MustCompile(`name="` + c.field + `"[^>]*class="bad"`).MatchString(body) {
			t.Errorf("%s %v: the %s input is not marked", c.path, c.form, c.field)
		}
	}
}

// TestDashboardPeakCCU: the dashboard charts the day's peak CCU, kept in
// the common database, beside DAU and NRU.
func TestDashboardPeakCCU(t *testing.T) {
	st := startStack(t)
	pl := newPlayer(t, st.game)
	if _, code := pl.login("ccu-player", "KR"); code != protocol.CodeOK {
		t.Fatalf("login: %v", code)
	}
	w := signInHTTP(t, st.admin, "alice")
	before := time.Now().UTC().Format(time.DateOnly)
	_, body := w.get("/console/")
	today := time.Now().UTC().Format(time.DateOnly) // the page's day (unless midnight passed between)
	if !strings.Contains(body, "<figcaption>Peak CCU</figcaption>") {
		t.Fatalf("no peak CCU chart: %s", body)
	}
	m := regexp.MustCompile(`<tr><td>(?:` + before + `|` + today + `)</td><td>(\d+)</td>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no row for %s in the per-day table: %s", today, body)
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 {
		t.Fatalf("today's peak CCU %d with a player online, want at least 1", n)
	}
}
