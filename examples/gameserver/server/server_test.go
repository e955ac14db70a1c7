package server

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/protocol"
)

func startServer(t *testing.T, cfg Config) (base string) {
	t.Helper()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	base, _ = startServerOn(t, cfg)
	return base
}

// startServerOn starts a server for cfg (its DataDir as given) on a free
// port; it is shut down and closed when the test ends.
func startServerOn(t *testing.T, cfg Config) (base string, srv *Server) {
	t.Helper()
	srv, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- srv.Serve(ctx, ln, &out) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("shutdown: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("server did not shut down")
		}
	})
	return "http://" + ln.Addr().String(), srv
}

func TestServerAnswersFramesAndPlainJSON(t *testing.T) {
	base := startServer(t, Config{Dev: true, XORKey: "k"})
	c, err := protocol.NewClient(protocol.ClientConfig{URL: base + protocol.DefaultHTTPPath, Codec: protocol.Config{XORKey: []byte("k")}, Mode: protocol.ModeXOR})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]int64
	before := time.Now().UnixMilli()
	if _, err := c.Call(context.Background(), "sys.time", nil, &got); err != nil {
		t.Fatal(err)
	}
	if got["server_ms"] < before || got["client_ms"] < before {
		t.Fatalf("sys.time: %v", got)
	}

	resp, err := http.Post(base+protocol.DefaultHTTPPath, "application/json", strings.NewReader(`{"cmd":"sys.time","seq":1}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"server_ms"`) {
		t.Fatalf("plain JSON: %d %s", resp.StatusCode, body)
	}

	resp, err = http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), protocol.DefaultHTTPPath) {
		t.Fatalf("index: %d %s", resp.StatusCode, body)
	}
}

func TestServerRefusesPlainJSONOutsideDev(t *testing.T) {
	base := startServer(t, Config{Dev: false, XORKey: testXORKey})
	resp, err := http.Post(base+protocol.DefaultHTTPPath, "application/json", strings.NewReader(`{"cmd":"sys.time"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain JSON outside dev: %d", resp.StatusCode)
	}
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{"MADANG_ADDR": "127.0.0.1:9000", "MADANG_DEV": "0", "MADANG_ADMIN_TOKEN": testAdminToken,
		"MADANG_XOR_KEY": "k", "MADANG_REDIS_ADDR": "r1:6379,r2:6379", "MADANG_MYSQL_DSN": "u@tcp(db:3306)/game", "MADANG_MYSQL_GAME_DBS": "8"}
	cfg, err := ParseConfig([]string{"-data", "/tmp/x", "-admin-addr", "127.0.0.1:9001"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:9000" || cfg.Dev || cfg.DataDir != "/tmp/x" || cfg.XORKey != "k" ||
		cfg.AdminToken != testAdminToken || cfg.AdminAddr != "127.0.0.1:9001" || cfg.RedisAddr != "r1:6379,r2:6379" ||
		cfg.MySQLDSN != "u@tcp(db:3306)/game" || cfg.MySQLGameDBs != 8 || cfg.RedisPrefix != DefaultRedisPrefix {
		t.Fatalf("%+v", cfg)
	}
	// Outside dev mode the ops API needs a token, or must be off.
	env = map[string]string{"MADANG_DEV": "0", "MADANG_XOR_KEY": "k"}
	if _, err := ParseConfig(nil, func(k string) string { return env[k] }); err == nil {
		t.Fatal("no admin token accepted outside dev mode")
	}
	if cfg, err := ParseConfig([]string{"-admin-addr", "off"}, func(k string) string { return env[k] }); err != nil || cfg.AdminAddr != AdminOff {
		t.Fatalf("admin off: %+v %v", cfg, err)
	}
	cfg, err = ParseConfig([]string{"-addr", "127.0.0.1:1"}, func(string) string { return "" })
	if err != nil || cfg.Addr != "127.0.0.1:1" || !cfg.Dev || cfg.DataDir != DefaultDataDir || cfg.AdminAddr != DefaultAdminAddr || cfg.RedisAddr != "" || cfg.MySQLDSN != "" {
		t.Fatalf("%+v %v", cfg, err)
	}
	for _, bad := range [][]string{{"-nope"}, {"extra"}, {"-log-level", "loud"}, {"-xor-key", ""}, {"-mysql-game-dbs", "0"}, {"-redis-prefix", "a{b"}} {
		if _, err := ParseConfig(bad, func(string) string { return "" }); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	// The in-flight limit's flags reach Config.InFlight; unset, its
	// zero MaxWait takes the protocol default (3 × Wait).
	cfg, err = ParseConfig([]string{"-max-inflight", "32", "-inflight-wait", "2s", "-inflight-max-wait", "7s"}, func(string) string { return "" })
	if err != nil || cfg.InFlight != (protocol.InFlightConfig{Max: 32, Wait: 2 * time.Second, MaxWait: 7 * time.Second}) {
		t.Fatalf("in-flight flags: %+v %v", cfg.InFlight, err)
	}
	cfg, err = ParseConfig(nil, func(string) string { return "" })
	if err != nil || cfg.InFlight != (protocol.InFlightConfig{Max: protocol.DefaultMaxInFlight, Wait: protocol.DefaultInFlightWait}) {
		t.Fatalf("in-flight defaults: %+v %v", cfg.InFlight, err)
	}
	// -h asks for the usage: flag.ErrHelp with the flags in the message.
	_, err = ParseConfig([]string{"-h"}, func(string) string { return "" })
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), "Usage of gameserver:") || !strings.Contains(err.Error(), "-redis-cluster string") {
		t.Errorf("-h: %v", err)
	}
}
