package console_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/examples/gameserver/server"
	"github.com/madang-io/madang/protocol"
)

// EnvScreenshots names a directory: TestConsoleInBrowser saves
// screenshots of the console's main pages there (docs/console in the
// repository; see the README).
const EnvScreenshots = "MADANG_CONSOLE_SCREENSHOTS"

// chromium returns the path of a headless-capable Chromium, or skips the
// test (fails it in CI: MADANG_CI=1, where .ci/run installs chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("MADANG_CI") != "" {
		t.Fatal("no Chromium on PATH (Debian: apt-get install chromium); MADANG_CI is set, so this fails instead of skipping")
	}
	t.Skip("no Chromium on PATH (Debian: apt-get install chromium)")
	return ""
}

const testXOR = "browser-test-xor-key"

type stack struct {
	game, admin string
	dir         string // the SQLite databases
}

// setName renames user's player in the embedded game database that owns
// the key (server.EmbeddedKeyRange keys each).
func setName(t *testing.T, dir string, user int64, name string) {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("gamedb%02d.db", user/server.EmbeddedKeyRange))
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec("UPDATE players SET name = ? WHERE user_key = ?", name, user)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("no player %d in %s", user, path)
	}
}

// startStack starts an embedded game server (SQLite, memory sessions) with
// its admin listener, and the operators alice (operator) and victor
// (viewer).
func startStack(t *testing.T) stack {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	for _, op := range [][2]string{{"alice", "operator"}, {"victor", "viewer"}} {
		var out bytes.Buffer
		err := server.RunOperator(ctx, []string{"-data", dir, "add", "-name", op[0], "-role", op[1]}, func(string) string { return "" }, strings.NewReader(op[0]+"-password-1\n"), &out)
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := server.Config{XORKey: testXOR, DataDir: dir, LiveOpsPoll: -1, AdminToken: strings.Repeat("t", server.MinAdminTokenLen)}
	srv, err := server.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.ServeAll(sctx, ln, aln, &bytes.Buffer{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return stack{game: "http://" + ln.Addr().String(), admin: "http://" + aln.Addr().String(), dir: dir}
}

// player is a game client.
type player struct {
	t *testing.T
	c *protocol.Client
}

func newPlayer(t *testing.T, base string) *player {
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	c, err := protocol.NewClient(protocol.ClientConfig{
		Transport: &protocol.HTTPTransport{URL: base + protocol.DefaultHTTPPath, Client: hc},
		Codec:     protocol.Config{XORKey: []byte(testXOR)}, Mode: protocol.ModeXOR,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &player{t: t, c: c}
}

// login logs device in from country; it returns the result, or the
// refusal's code.
func (p *player) login(device, country string) (game.LoginResult, protocol.Code) {
	var res game.LoginResult
	in := game.GuestLogin{DeviceID: device, Platform: "android", ClientVersion: "1.0.0.0", Country: country, Language: "ko"}
	_, err := p.c.Call(context.Background(), game.CmdGuestLogin, in, &res)
	if err != nil {
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			p.t.Fatalf("login: %v", err)
		}
		return res, pe.Code
	}
	p.c.SetSession(res.Token, nil)
	return res, protocol.CodeOK
}

func (p *player) mails() game.MailList {
	var l game.MailList
	if _, err := p.c.Call(context.Background(), game.CmdMailList, nil, &l); err != nil {
		p.t.Fatal(err)
	}
	return l
}

// TestConsoleInBrowser drives the console in headless Chromium: sign in,
// look up a player (whose name has markup: shown as text), per-user
// maintenance on and off, a grant mailed and claimed shows in the ledger,
// an event created and seen at the player's login, a data version
// published and rolled back, two versions compared, and a viewer refused
// a change.
func TestConsoleInBrowser(t *testing.T) {
	exe := chromium(t)
	st := startStack(t)
	ctx := context.Background()

	// A player, with markup in the name.
	pl := newPlayer(t, st.game)
	res, code := pl.login("browser-player", "KR")
	if code != protocol.CodeOK {
		t.Fatalf("login: %v", code)
	}
	user := res.UserKey
	const evil = `<img src=x onerror="document.title='owned'"><b>bold</b>`
	setName(t, st.dir, user, evil)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 1000))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	// The first run starts the browser: no timeout on it (it would stop
	// the browser); each step after it gets a generous one of its own.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", exe, err)
	}
	step := func() (context.Context, context.CancelFunc) { return context.WithTimeout(bctx, time.Minute) }
	fail := func(what string, err error) {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		html, _ := chromedp.Run(sctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v\npage: %s", what, err, html)
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			fail(what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			fail("text of "+sel, err)
		}
		return strings.TrimSpace(s)
	}
	eval := func(expr string) string {
		t.Helper()
		sctx, cancel := step()
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](expr))
		if err != nil {
			fail("evaluate "+expr, err)
		}
		return v
	}
	shots := os.Getenv(EnvScreenshots)
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		sctx, cancel := step()
		defer cancel()
		buf, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			fail("screenshot", err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// submit fills a form's fields (SetValue: text, number, select and
	// datetime-local alike), with a comment (none for a GET form: its
	// method is get), submits it and waits for the next page.
	submit := func(form string, fields map[string]string) {
		t.Helper()
		var steps []chromedp.Action[chromedp.Void]
		for k, v := range fields {
			steps = append(steps, chromedp.SetValue(chromedp.CSS(form+` [name="`+k+`"]`), v))
		}
		if _, ok := fields["comment"]; !ok && !strings.HasSuffix(form, "diff-form") {
			steps = append(steps, chromedp.SetValue(chromedp.CSS(form+` [name="comment"]`), "browser test"))
		}
		// Mark the page and click: the next page is unmarked.
		steps = append(steps, void(chromedp.Evaluate[bool](`window.staleConsolePage = true`)),
			void(chromedp.Evaluate[bool](`document.querySelector('`+form+` button[type="submit"]').click(), true`)))
		do("submit "+form, steps...)
		// Polled from here: a navigation ends any evaluation running in
		// the page, so errors until the new page answers are expected.
		deadline := time.Now().Add(time.Minute)
		for {
			sctx, cancel := context.WithTimeout(bctx, 5*time.Second)
			ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`!window.staleConsolePage && document.readyState === "complete"`))
			cancel()
			if err == nil && ok {
				break
			}
			if time.Now().After(deadline) {
				fail("the page after "+form, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	signIn := func(name string) {
		t.Helper()
		do("sign in "+name,
			chromedp.Navigate(st.admin+"/console/login"),
			chromedp.SetValue(chromedp.CSS(`#login [name="name"]`), name),
			chromedp.SetValue(chromedp.CSS(`#login [name="password"]`), name+"-password-1"),
			chromedp.Click(chromedp.CSS(`#login button`)),
			chromedp.WaitVisible(chromedp.CSS(`#ccu`)))
	}

	signIn("alice")
	if who := text("#who"); who != "alice (operator)" {
		t.Fatalf("signed in as %q", who)
	}
	shot("dashboard")

	// Look up by account identity.
	do("lookup", chromedp.Navigate(st.admin+"/console/players"),
		chromedp.SetValue(chromedp.CSS(`#lookup [name="q"]`), "guest:browser-player"),
		chromedp.Click(chromedp.CSS(`#lookup button`)),
		chromedp.WaitVisible(chromedp.CSS(`#profile`)))
	if name := text("#name"); name != evil {
		t.Fatalf("name shown as %q, want the markup as text", name)
	}
	markup, title := eval(`String(document.querySelectorAll('#name *').length)`), eval(`document.title`)
	if markup != "0" || title == "owned" {
		t.Fatalf("the name's markup became elements (%s) or ran (title %q)", markup, title)
	}

	// Per-user maintenance on: the player's login is refused; off: it works.
	submit("#maint-form", map[string]string{"comment": "repairing the inventory"})
	if got := text("#maint"); got != "user" {
		t.Fatalf("maintenance state %q", got)
	}
	if _, code := newPlayer(t, st.game).login("browser-player", "KR"); code != protocol.CodeMaintenance {
		t.Fatalf("login in maintenance: %v", code)
	}
	do("state off", chromedp.Click(chromedp.CSS(`#maint-form [name="state"][value="off"]`)))
	submit("#maint-form", map[string]string{"comment": "repaired"})
	if got := text("#maint"); got != "off" {
		t.Fatalf("maintenance state %q", got)
	}
	if _, code := pl.login("browser-player", "KR"); code != protocol.CodeOK {
		t.Fatalf("login after maintenance: %v", code)
	}
	shot("player")

	// A grant, claimed by the player, in the ledger.
	submit("#mail-form", map[string]string{"title": "Browser grant", "items": "potion:2", "gold": "77", "comment": "compensation"})
	if f := text("#flash"); !strings.Contains(f, "sent") {
		t.Fatalf("flash %q", f)
	}
	var id int64
	for _, m := range pl.mails().Mails {
		if m.Title == "Browser grant" {
			id = m.ID
		}
	}
	if id == 0 {
		t.Fatal("the grant did not reach the mailbox")
	}
	if _, err := pl.c.Call(ctx, game.CmdMailClaim, game.ClaimMail{MailID: id}, nil); err != nil {
		t.Fatal(err)
	}
	do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#ledger")))
	if l := text("#ledger"); !strings.Contains(l, "item:potion") || !strings.Contains(l, "77") {
		t.Fatalf("ledger: %s", l)
	}

	// An event for Korea, in Seoul's wall clock, seen at the next login.
	// Minutes only, as the browser's picker gives them: a datetime-local
	// input drops ":00" seconds from its value, so a time on the minute
	// would not read back as set and SetValue would fail.
	seoul, _ := time.LoadLocation("Asia/Seoul")
	now := time.Now().In(seoul)
	do("events", chromedp.Navigate(st.admin+"/console/events"), chromedp.WaitVisible(chromedp.CSS("#event-form")))
	submit("#event-form", map[string]string{
		"id": "browser-bonus", "kind": liveops.EventLoginBonus, "title": "Browser bonus", "time_zone": "Asia/Seoul",
		"start": now.Add(-time.Hour).Format("2006-01-02T15:04"), "end": now.Add(time.Hour).Format("2006-01-02T15:04"),
		"countries": "KR", "gems": "5", "comment": "event test",
	})
	if f := text("#flash"); !strings.Contains(f, "saved") {
		t.Fatalf("flash %q", f)
	}
	shot("events")
	if _, code := pl.login("browser-player", "KR"); code != protocol.CodeOK {
		t.Fatalf("login: %v", code)
	}
	found := false
	for _, m := range pl.mails().Mails {
		found = found || m.Title == "Browser bonus"
	}
	if !found {
		t.Fatal("the event's bonus did not reach the player's login")
	}

	// Publish data version 2, then roll back to 1.
	do("gamedata", chromedp.Navigate(st.admin+"/console/gamedata"), chromedp.WaitVisible(chromedp.CSS("#publish-form")))
	submit("#publish-form", map[string]string{"version": "1"})
	submit("#publish-form", map[string]string{"version": "2"})
	if v := text("#published"); v != "2" {
		t.Fatalf("published %q", v)
	}
	submit("#rollback-form", nil)
	if v := text("#published"); v != "1" {
		t.Fatalf("after rollback %q", v)
	}
	// The diff between the two versions, field by field.
	submit("#diff-form", map[string]string{"from": "1", "to": "2"})
	if f, to := text("#diff-from"), text("#diff-to"); f != "1" || to != "2" {
		t.Fatalf("diff from %q to %q", f, to)
	}
	if n := eval(`String(document.querySelectorAll("#diff-table tr.diff").length)`); n == "0" {
		t.Fatalf("no diff rows between data versions 1 and 2: %s", text("#diff"))
	}
	shot("gamedata")
	for _, p := range []string{"maintenance", "versions", "audit"} {
		do(p, chromedp.Navigate(st.admin+"/console/"+p), chromedp.WaitVisible(chromedp.CSS("main h1")))
		shot(p)
	}
	if a := text("#audit"); !strings.Contains(a, "player.mail") || !strings.Contains(a, "gamedata.rollback") || !strings.Contains(a, "event.set") {
		t.Fatalf("audit log: %s", a)
	}

	// A viewer is refused a change.
	do("sign out", chromedp.Click(chromedp.CSS(`header form button`)), chromedp.WaitVisible(chromedp.CSS("#login")))
	signIn("victor")
	do("player", chromedp.Navigate(st.admin+"/console/players/"+jsonInt(user)), chromedp.WaitVisible(chromedp.CSS("#maint-form")))
	submit("#maint-form", map[string]string{"comment": "viewer tries"})
	if e := text("#error"); !strings.HasPrefix(e, "role:") {
		t.Fatalf("viewer's change: %q", e)
	}
	if _, code := pl.login("browser-player", "KR"); code != protocol.CodeOK {
		t.Fatalf("the viewer's change applied: %v", code)
	}
}

func jsonInt(v int64) string { b, _ := json.Marshal(v); return string(b) }

// void drops an action's value.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, t)
		return chromedp.Void{}, err
	}
}
