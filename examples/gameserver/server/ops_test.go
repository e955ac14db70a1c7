package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/liveops"
	"github.com/madang-io/madang/protocol"
)

// admin is an ops API client of a test server.
type admin struct {
	t     *testing.T
	base  string
	token string
}

func newAdmin(t *testing.T, srv *Server) *admin {
	t.Helper()
	hs := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(hs.Close)
	return &admin{t: t, base: hs.URL, token: srv.AdminToken()}
}

// do sends a request with the token (unless token is "") and returns the
// status and body.
func (a *admin) do(method, path, token string, body any) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// ok sends an authorized request and fails the test unless it answers 200.
func (a *admin) ok(method, path string, body any) []byte {
	a.t.Helper()
	code, b := a.do(method, path, a.token, body)
	if code != http.StatusOK {
		a.t.Fatalf("%s %s: %d %s", method, path, code, b)
	}
	return b
}

func loginWith(t *testing.T, c *protocol.Client, in map[string]any) (*protocol.Response, error) {
	t.Helper()
	return c.Call(context.Background(), game.CmdGuestLogin, in, nil)
}

// liveOpsOf decodes the "liveops" member of a login answer.
func liveOpsOf(t *testing.T, resp *protocol.Response) liveops.LoginInfo {
	t.Helper()
	var out struct {
		Token   string            `json:"token"`
		LiveOps liveops.LoginInfo `json:"liveops"`
	}
	if err := json.Unmarshal(resp.Payload, &out); err != nil || out.Token == "" {
		t.Fatalf("login answer %s: %v", resp.Payload, err)
	}
	return out.LiveOps
}

func TestOpsAPINeedsTheToken(t *testing.T) {
	_, srv := newGameServer(t)
	a := newAdmin(t, srv)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/v1/client-versions"}, {"PUT", "/v1/maintenance"}, {"GET", "/v1/stats"},
		{"POST", "/v1/maintenance/users"}, {"PUT", "/v1/blocks/10000000"}, {"GET", "/v1/apk-signatures"},
	} {
		for _, tok := range []string{"", "wrong-" + srv.AdminToken()} {
			if code, body := a.do(tc.method, tc.path, tok, map[string]any{"active": true}); code != http.StatusUnauthorized {
				t.Errorf("%s %s with token %q: %d %s", tc.method, tc.path, tok, code, body)
			}
		}
	}
	// Nothing changed: maintenance is still off.
	if srv.liveops.Policy().Maintenance.Active {
		t.Fatal("an unauthorized request turned maintenance on")
	}
	a.ok("GET", "/v1/client-versions", nil)
	// Health and metrics are open.
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, body := a.do("GET", p, "", nil); code != http.StatusOK {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	var ready map[string]string
	_, body := a.do("GET", "/readyz", "", nil)
	if err := json.Unmarshal(body, &ready); err != nil || ready["databases"] != "ok" {
		t.Fatalf("readyz %s", body)
	}
	// Bad input is a 400 with a message.
	if code, body := a.do("POST", "/v1/maintenance/users", a.token, map[string]any{"user_keys": make([]int64, 101), "operator": "x"}); code != http.StatusBadRequest {
		t.Fatalf("batch of 101: %d %s", code, body)
	}
	if code, body := a.do("PUT", "/v1/platforms/android", a.token, map[string]any{"min_version": "abc"}); code != http.StatusBadRequest {
		t.Fatalf("bad min version: %d %s", code, body)
	}
	if code, body := a.do("PUT", "/v1/maintenance", a.token, map[string]any{"no_such_field": 1}); code != http.StatusBadRequest {
		t.Fatalf("unknown field: %d %s", code, body)
	}
}

func TestPerUserMaintenanceThroughTheOpsAPI(t *testing.T) {
	base, srv := newGameServer(t)
	a := newAdmin(t, srv)
	held, _ := newClient(t, base)
	other, _ := newClient(t, base)
	h := login(t, held, "device-held")
	login(t, other, "device-other")

	a.ok("POST", "/v1/maintenance/users", map[string]any{"user_keys": []int64{h.UserKey}, "operator": "ops-lee", "comment": "inventory repair"})
	resp, err := held.Call(context.Background(), game.CmdLoad, nil, nil)
	if got := codeOf(t, err); got != protocol.CodeMaintenance {
		t.Fatalf("held user: code %v", got)
	}
	var n liveops.MaintenanceNotice
	if json.Unmarshal(resp.Payload, &n) != nil || n.Scope != "user" || n.Message != "inventory repair" {
		t.Fatalf("notice %s", resp.Payload)
	}
	load(t, other) // everyone else plays
	// A new login of the held user is refused too, before a session is made.
	_, err = loginWith(t, held, map[string]any{"device_id": "device-held"})
	if got := codeOf(t, err); got != protocol.CodeMaintenance {
		t.Fatalf("login of the held user: code %v", got)
	}
	var list []liveops.UserMaintenance
	if err := json.Unmarshal(a.ok("GET", "/v1/maintenance/users", nil), &list); err != nil || len(list) != 1 || list[0].Operator != "ops-lee" || list[0].UserKey != h.UserKey {
		t.Fatalf("list %+v %v", list, err)
	}

	a.ok("POST", "/v1/maintenance/users/remove", map[string]any{"user_keys": []int64{h.UserKey}})
	login(t, held, "device-held")
	load(t, held)
}

func TestGlobalMaintenanceWithAllowList(t *testing.T) {
	base, srv := newGameServer(t)
	a := newAdmin(t, srv)
	tester, _ := newClient(t, base)
	player, _ := newClient(t, base)
	tr := login(t, tester, "device-tester")
	login(t, player, "device-player")

	ends := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	a.ok("PUT", "/v1/maintenance", map[string]any{"active": true, "message": "server upgrade", "ends_at": ends, "allow_users": []int64{tr.UserKey}, "operator": "ops"})
	resp, err := player.Call(context.Background(), game.CmdLoad, nil, nil)
	if got := codeOf(t, err); got != protocol.CodeMaintenance {
		t.Fatalf("player during maintenance: %v", got)
	}
	var n liveops.MaintenanceNotice
	if json.Unmarshal(resp.Payload, &n) != nil || n.Scope != "global" || n.Message != "server upgrade" || n.EndsAt != ends.UnixMilli() {
		t.Fatalf("notice %s", resp.Payload)
	}
	load(t, tester)
	newcomer, _ := newClient(t, base)
	if _, err := loginWith(t, newcomer, map[string]any{"device_id": "device-new"}); codeOf(t, err) != protocol.CodeMaintenance {
		t.Fatalf("new user during maintenance: %v", err)
	}
	if _, err := newcomer.Call(context.Background(), CmdTime, nil, nil); err != nil {
		t.Fatalf("sys.time is exempt: %v", err)
	}
	a.ok("PUT", "/v1/maintenance", map[string]any{"active": false})
	load(t, player)
}

func TestClientVersionPolicyAtLogin(t *testing.T) {
	base, srv := newGameServer(t)
	a := newAdmin(t, srv)
	a.ok("PUT", "/v1/platforms/android", map[string]any{"min_version": "1.2.0", "update_url": "https://play.example/app"})
	a.ok("PUT", "/v1/platforms/ios", map[string]any{"min_version": "1.2.0"})
	a.ok("PUT", "/v1/client-versions/android/1.2.0", map[string]any{"asset_version": "ab-120"})
	a.ok("PUT", "/v1/client-versions/ios/1.3.0", map[string]any{"review": true, "review_url": "https://review.example/v1/rpc"})
	// Data versions have one source, the game data catalog's client
	// mappings: a client version entry with a data version is refused.
	if code, body := a.do("PUT", "/v1/client-versions/android/1.2.0", a.token, map[string]any{"data_version": "gd-120"}); code != http.StatusBadRequest {
		t.Fatalf("client version with a data version: %d %s", code, body)
	}
	a.ok("POST", "/v1/gamedata/client_versions", map[string]any{"client_version": "1.2.0.5", "data_version": "2"})
	var listed struct {
		Platforms []liveops.PlatformPolicy `json:"platforms"`
		Versions  []liveops.ClientVersion  `json:"client_versions"`
	}
	if err := json.Unmarshal(a.ok("GET", "/v1/client-versions", nil), &listed); err != nil || len(listed.Platforms) != 2 || len(listed.Versions) != 2 {
		t.Fatalf("listed %+v %v", listed, err)
	}

	c, _ := newClient(t, base)
	// Outdated: update required, with the store URL.
	resp, err := loginWith(t, c, map[string]any{"device_id": "d-old", "platform": "android", "client_version": "1.1.9"})
	if got := codeOf(t, err); got != protocol.CodeClientTooOld {
		t.Fatalf("outdated client: code %v", got)
	}
	var up liveops.UpdateRequired
	if json.Unmarshal(resp.Payload, &up) != nil || up.MinVersion != "1.2.0.0" || up.UpdateURL != "https://play.example/app" {
		t.Fatalf("update required payload %s", resp.Payload)
	}
	// Current: data and asset versions.
	resp, err = loginWith(t, c, map[string]any{"device_id": "d-new", "platform": "android", "client_version": "1.2.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	if info := liveOpsOf(t, resp); info.DataVersion != "2" || info.AssetVersion != "ab-120" || info.ReviewServerURL != "" || info.DirectiveCode != 0 {
		t.Fatalf("login info %+v", info)
	}
	// iOS review build: the review server URL.
	resp, err = loginWith(t, c, map[string]any{"device_id": "d-review", "platform": "ios", "client_version": "1.3.0"})
	if err != nil {
		t.Fatal(err)
	}
	// Unmapped: the published data version (the embedded "1").
	if info := liveOpsOf(t, resp); info.ReviewServerURL != "https://review.example/v1/rpc" || info.DataVersion != "1" {
		t.Fatalf("review build %+v", info)
	}
	// Raising the minimum stops a live session at its next request.
	c2, _ := newClient(t, base)
	var res game.LoginResult
	if _, err := c2.Call(context.Background(), game.CmdGuestLogin, map[string]any{"device_id": "d-live", "platform": "android", "client_version": "1.2.0"}, &res); err != nil {
		t.Fatal(err)
	}
	c2.SetSession(res.Token, nil)
	load(t, c2)
	a.ok("PUT", "/v1/platforms/android", map[string]any{"min_version": "1.3"})
	if _, err := c2.Call(context.Background(), game.CmdLoad, nil, nil); codeOf(t, err) != protocol.CodeClientTooOld {
		t.Fatalf("live session below the new minimum: %v", err)
	}
}

func TestRepackagedAPKIsToldToClose(t *testing.T) {
	base, srv := newGameServer(t)
	a := newAdmin(t, srv)
	const genuine = "00112233445566778899aabbccddeeff"
	a.ok("PUT", "/v1/apk-signatures/1.4.0", map[string]any{"apk_md5": genuine})
	var sigs []map[string]any
	if err := json.Unmarshal(a.ok("GET", "/v1/apk-signatures", nil), &sigs); err != nil || len(sigs) != 1 || sigs[0]["apk_md5"] != genuine {
		t.Fatalf("signatures %s %v", sigs, err)
	}
	c, _ := newClient(t, base)
	before := time.Now()
	resp, err := loginWith(t, c, map[string]any{"device_id": "d-repack", "platform": "android", "client_version": "1.4.0", "apk_sig": strings.Repeat("ab", 16)})
	if err != nil {
		t.Fatalf("a repackaged APK still logs in (told to close later): %v", err)
	}
	info := liveOpsOf(t, resp)
	if info.DirectiveCode != liveops.DirectiveForceClose || info.CloseAt < before.Add(time.Minute).UnixMilli() {
		t.Fatalf("repackaged APK: %+v", info)
	}
	resp, err = loginWith(t, c, map[string]any{"device_id": "d-genuine", "platform": "android", "client_version": "1.4.0", "apk_sig": genuine})
	if err != nil {
		t.Fatal(err)
	}
	if info := liveOpsOf(t, resp); info.DirectiveCode != 0 {
		t.Fatalf("genuine APK: %+v", info)
	}
}

func TestBlockThroughTheOpsAPI(t *testing.T) {
	base, srv := newGameServer(t)
	a := newAdmin(t, srv)
	c, _ := newClient(t, base)
	res := login(t, c, "device-cheat")
	path := fmt.Sprintf("/v1/blocks/%d", res.UserKey)
	a.ok("PUT", path, map[string]any{"duration": "1h", "reason": "speed hack"})
	// The block revoked the session, and a new login is refused.
	if _, err := c.Call(context.Background(), game.CmdLoad, nil, nil); codeOf(t, err) != protocol.CodeSessionRevoked && codeOf(t, err) != protocol.CodeBlocked {
		t.Fatalf("blocked user's session: %v", err)
	}
	if _, err := loginWith(t, c, map[string]any{"device_id": "device-cheat"}); codeOf(t, err) != protocol.CodeBlocked {
		t.Fatalf("blocked login: %v", err)
	}
	var b map[string]any
	if err := json.Unmarshal(a.ok("GET", path, nil), &b); err != nil || b["blocked"] != true || b["reason"] != "speed hack" {
		t.Fatalf("block %s %v", b, err)
	}
	a.ok("DELETE", path, nil)
	login(t, c, "device-cheat")
	load(t, c)
}

func TestStatsAndMetrics(t *testing.T) {
	base, srv := newGameServer(t)
	a := newAdmin(t, srv)
	for _, dev := range []string{"s1", "s2", "s3"} {
		c, _ := newClient(t, base)
		login(t, c, dev)
		load(t, c)
	}
	c, _ := newClient(t, base)
	login(t, c, "s1") // a second login of s1: still one daily user
	if err := srv.liveops.FlushActive(context.Background()); err != nil {
		t.Fatal(err)
	}
	var st struct {
		CCU, DAU, NRU int64
		Day           string
	}
	if err := json.Unmarshal(a.ok("GET", "/v1/stats", nil), &st); err != nil || st.CCU != 3 || st.DAU != 3 || st.NRU != 3 || st.Day != time.Now().UTC().Format(time.DateOnly) {
		t.Fatalf("stats %+v %v", st, err)
	}

	a.ok("POST", "/v1/maintenance/users", map[string]any{"user_keys": []int64{99999999}, "operator": "ops"})
	code, body := a.do("GET", "/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("metrics %d", code)
	}
	text := string(body)
	for _, want := range []string{
		`madang_session_created_total 4`,
		`madang_shard_db_tx_total{db="1"}`,
		`madang_shard_db_open_connections{db="4"}`,
		`madang_liveops_users_in_maintenance 1`,
		`madang_liveops_global_maintenance 0`,
		`madang_ccu 3`,
		`madang_anticheat_speed_verdicts_total 0`,
		`madang_idempotency_executed_total 0`,
		`madang_ratelimit_limited_total 0`,
		`madang_ws_refused_total 0`,
		`madang_decode_budget_bytes 6.7108864e+07`,
		`madang_decode_budget_refused_total 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", text)
	}
}

// The metrics pass Prometheus' own lint (names, units, help), on the
// server's own registry.
func TestMetricsLint(t *testing.T) {
	base, srv := newGameServer(t)
	c, _ := newClient(t, base)
	login(t, c, "lint")
	problems, err := testutil.GatherAndLint(srv.metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "madang_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
	n, err := testutil.GatherAndCount(srv.metrics, "madang_shard_db_tx_total")
	if err != nil || n != EmbeddedGameDBs {
		t.Fatalf("%d madang_shard_db_tx_total series (%v), want one per game database", n, err)
	}
}

// Two servers on the same databases (and Redis, when set): maintenance set
// through one server's ops API reaches the other (by polling every 200 ms,
// or by pub/sub with Redis).
func TestMaintenanceReachesAnotherServer(t *testing.T) {
	cfg := testConfig(t)
	cfg.LiveOpsPoll = 200 * time.Millisecond
	_, srvA := startServerOn(t, cfg)
	baseB, _ := startServerOn(t, cfg)
	a := newAdmin(t, srvA)
	c, _ := newClient(t, baseB)
	res := login(t, c, "device-elsewhere")
	load(t, c)
	a.ok("POST", "/v1/maintenance/users", map[string]any{"user_keys": []int64{res.UserKey}, "operator": "ops"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Call(context.Background(), game.CmdLoad, nil, nil)
		if err != nil && codeOf(t, err) == protocol.CodeMaintenance {
			break
		}
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the other server never applied the maintenance")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
