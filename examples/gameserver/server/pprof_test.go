package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// adminGet serves GET path on h from remote with the bearer token (none
// when empty) and returns the status and body.
func adminGet(h http.Handler, remote, path, token string) (int, string) {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = remote
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	body, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(body)
}

func pprofServer(t *testing.T, on bool) *Server {
	t.Helper()
	cfg := Config{XORKey: testXORKey, DataDir: filepath.Join(t.TempDir(), "data"), LiveOpsPoll: -1,
		AdminToken: testAdminToken, Pprof: on}
	srv, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// Off by default: the admin listener has no profiles, even with the token.
func TestPprofOffByDefault(t *testing.T) {
	h := pprofServer(t, false).AdminHandler()
	for _, p := range []string{PprofPath, PprofPath + "goroutine?debug=1", PprofPath + "heap"} {
		if code, body := adminGet(h, "127.0.0.1:40000", p, testAdminToken); code != http.StatusNotFound {
			t.Errorf("GET %s with pprof off: %d %q, want 404", p, code, body)
		}
	}
}

// On: served to loopback clients with the admin token only.
func TestPprofNeedsLoopbackAndToken(t *testing.T) {
	h := pprofServer(t, true).AdminHandler()
	const local = "127.0.0.1:40000"
	cases := []struct {
		remote, path, token string
		want                int
		body                string
	}{
		{"192.0.2.7:40000", PprofPath, testAdminToken, http.StatusForbidden, "loopback"},
		{"[2001:db8::1]:40000", PprofPath + "goroutine?debug=1", testAdminToken, http.StatusForbidden, "loopback"},
		{"not an address", PprofPath, testAdminToken, http.StatusForbidden, "loopback"},
		{local, PprofPath, "", http.StatusUnauthorized, "token"},
		{local, PprofPath + "heap", "wrong" + testAdminToken[5:], http.StatusUnauthorized, "token"},
		{local, PprofPath, testAdminToken, http.StatusOK, PprofPath + "goroutine?debug=1"},
		{"[::1]:40000", PprofPath + "goroutine?debug=1", testAdminToken, http.StatusOK, "goroutine profile"},
		{local, PprofPath + "heap?debug=3", testAdminToken, http.StatusBadRequest, "debug"},
		{local, PprofPath + "profile?seconds=0", testAdminToken, http.StatusBadRequest, "seconds"},
		{local, PprofPath + "profile?seconds=1e3", testAdminToken, http.StatusBadRequest, "seconds"},
		{local, PprofPath + "trace?seconds=61", testAdminToken, http.StatusBadRequest, "seconds"},
		{local, PprofPath + "nope", testAdminToken, http.StatusNotFound, "unknown profile"},
	}
	for _, c := range cases {
		code, body := adminGet(h, c.remote, c.path, c.token)
		if code != c.want || !strings.Contains(body, c.body) {
			t.Errorf("GET %s from %s (token %v): %d %.200q, want %d with %q", c.path, c.remote, c.token != "", code, body, c.want, c.body)
		}
	}
	// A CPU profile of one second is a profile (gzipped protobuf).
	code, body := adminGet(h, local, PprofPath+"profile?seconds=1", testAdminToken)
	if code != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("CPU profile: %d, %d bytes", code, len(body))
	}
	// The ops API is still there.
	if code, _ := adminGet(h, local, "/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz with pprof on: %d", code)
	}
}

// -pprof is a strict boolean, needs the admin listener and a loopback
// address for it, and is off unless asked for.
func TestPprofConfig(t *testing.T) {
	none := func(string) string { return "" }
	cfg, err := ParseConfig(nil, none)
	if err != nil || cfg.Pprof {
		t.Fatalf("default: pprof %v, %v", cfg.Pprof, err)
	}
	if cfg, err := ParseConfig([]string{"-pprof"}, none); err != nil || !cfg.Pprof {
		t.Fatalf("-pprof: %v %v", cfg.Pprof, err)
	}
	env := map[string]string{"MADANG_PPROF": "true"}
	if cfg, err := ParseConfig(nil, func(k string) string { return env[k] }); err != nil || !cfg.Pprof {
		t.Fatalf("MADANG_PPROF=true: %v %v", cfg.Pprof, err)
	}
	for _, bad := range []string{"on", "yes", "enabled", " 1"} {
		env := map[string]string{"MADANG_PPROF": bad}
		if _, err := ParseConfig(nil, func(k string) string { return env[k] }); err == nil {
			t.Errorf("MADANG_PPROF=%q accepted", bad)
		}
		if _, err := ParseConfig([]string{"-pprof=" + bad}, none); err == nil {
			t.Errorf("-pprof=%q accepted", bad)
		}
	}
	for _, args := range [][]string{
		{"-pprof", "-admin-addr", "off"},
		{"-pprof", "-admin-addr", "0.0.0.0:8081", "-dev-allow-remote"},
		{"-pprof", "-admin-addr", ":8081", "-dev=false", "-xor-key", "k", "-admin-token", testAdminToken},
	} {
		if _, err := ParseConfig(args, none); err == nil || !strings.Contains(err.Error(), "-pprof") {
			t.Errorf("%q: %v, want refused for -pprof", args, err)
		}
	}
	// New refuses it too (Config built by hand).
	if _, err := New(context.Background(), Config{XORKey: testXORKey, DataDir: t.TempDir(), Pprof: true, AdminAddr: "0.0.0.0:8081", AdminToken: testAdminToken}, nil); err == nil {
		t.Error("New with pprof on a non-loopback admin address")
	}
}

// ServeAll refuses an admin listener that is not on loopback when pprof
// is on, before serving anything.
func TestPprofRefusesNonLoopbackListener(t *testing.T) {
	srv := pprofServer(t, true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	err = srv.ServeAll(context.Background(), ln, admin, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-pprof") {
		t.Fatalf("ServeAll with a non-loopback admin listener: %v", err)
	}
}
