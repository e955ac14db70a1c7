package server

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// testAdminToken is an admin token long enough outside development mode.
const testAdminToken = "0123456789abcdef0123456789abcdef"

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// MADANG_DEV and the other boolean switches take strconv.ParseBool's values
// only: "no", "off" and the like used to leave development mode on.
func TestParseConfigStrictBooleans(t *testing.T) {
	prod := func(dev string) map[string]string {
		return map[string]string{"MADANG_DEV": dev, "MADANG_XOR_KEY": "k", "MADANG_ADMIN_TOKEN": testAdminToken}
	}
	for _, v := range []string{"0", "f", "false", "FALSE", "False"} {
		cfg, err := ParseConfig(nil, envOf(prod(v)))
		if err != nil || cfg.Dev {
			t.Errorf("MADANG_DEV=%q: dev %v, %v", v, cfg.Dev, err)
		}
	}
	for _, v := range []string{"1", "t", "true", "TRUE"} {
		cfg, err := ParseConfig(nil, envOf(prod(v)))
		if err != nil || !cfg.Dev {
			t.Errorf("MADANG_DEV=%q: dev %v, %v", v, cfg.Dev, err)
		}
	}
	if cfg, err := ParseConfig(nil, envOf(nil)); err != nil || !cfg.Dev || cfg.DevAllowRemote {
		t.Errorf("unset: dev %v, remote %v, %v", cfg.Dev, cfg.DevAllowRemote, err)
	}
	for _, v := range []string{"no", "off", "n", "yes", "on", " false", "0 ", "disabled"} {
		_, err := ParseConfig(nil, envOf(prod(v)))
		if err == nil || !strings.Contains(err.Error(), "MADANG_DEV") {
			t.Errorf("MADANG_DEV=%q accepted: %v", v, err)
		}
		_, err = ParseConfig(nil, envOf(map[string]string{"MADANG_DEV_ALLOW_REMOTE": v}))
		if err == nil || !strings.Contains(err.Error(), "MADANG_DEV_ALLOW_REMOTE") {
			t.Errorf("MADANG_DEV_ALLOW_REMOTE=%q accepted: %v", v, err)
		}
	}
	for _, args := range [][]string{{"-dev=off"}, {"-dev=no"}, {"-dev-allow-remote=yes"}} {
		if _, err := ParseConfig(args, envOf(prod("false"))); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	// A flag overrides the environment.
	if cfg, err := ParseConfig([]string{"-dev=false"}, envOf(map[string]string{"MADANG_DEV": "true", "MADANG_XOR_KEY": "k", "MADANG_ADMIN_TOKEN": testAdminToken})); err != nil || cfg.Dev {
		t.Errorf("-dev=false over MADANG_DEV=true: dev %v, %v", cfg.Dev, err)
	}
}

// Development mode listens on loopback only, unless a second switch says
// otherwise.
func TestParseConfigDevLoopbackOnly(t *testing.T) {
	for _, args := range [][]string{
		{"-addr", ":8080"},
		{"-addr", "0.0.0.0:8080"},
		{"-addr", "[::]:8080"},
		{"-addr", "10.1.2.3:8080"},
		{"-addr", "game.example.com:8080"},
		{"-admin-addr", "0.0.0.0:8081"},
		{"-admin-addr", ":8081"},
	} {
		_, err := ParseConfig(args, envOf(nil))
		if err == nil || !strings.Contains(err.Error(), "-dev-allow-remote") || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("dev on %v: %v", args, err)
		}
		if _, err := ParseConfig(append(args, "-dev-allow-remote"), envOf(nil)); err != nil {
			t.Errorf("dev on %v with -dev-allow-remote: %v", args, err)
		}
		if _, err := ParseConfig(args, envOf(map[string]string{"MADANG_DEV_ALLOW_REMOTE": "true"})); err != nil {
			t.Errorf("dev on %v with MADANG_DEV_ALLOW_REMOTE=true: %v", args, err)
		}
		// Outside development mode any address is fine.
		if _, err := ParseConfig(append(args, "-dev=false", "-xor-key", "k", "-admin-token", testAdminToken), envOf(nil)); err != nil {
			t.Errorf("production on %v: %v", args, err)
		}
	}
	for _, args := range [][]string{
		nil, {"-addr", "localhost:8080"}, {"-addr", "[::1]:8080"}, {"-addr", "127.0.0.2:1"},
		{"-addr", "127.0.0.1:8080", "-admin-addr", "off"},
	} {
		if _, err := ParseConfig(args, envOf(nil)); err != nil {
			t.Errorf("dev on loopback %v: %v", args, err)
		}
	}
	// The game server's library entry point refuses too.
	_, err := New(context.Background(), Config{Dev: true, Addr: ":0", DataDir: filepath.Join(t.TempDir(), "data")}, nil)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("New, dev on :0: %v", err)
	}
	_, err = New(context.Background(), Config{Dev: true, AdminAddr: "0.0.0.0:0", DataDir: filepath.Join(t.TempDir(), "data")}, nil)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("New, dev, admin on 0.0.0.0: %v", err)
	}
}

// addrListener is a loopback listener that reports another address.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

// ServeAll checks the listeners it is given, whatever Config.Addr says.
func TestServeAllDevRefusesRemoteListener(t *testing.T) {
	srv, err := New(context.Background(), Config{Dev: true, DataDir: filepath.Join(t.TempDir(), "data")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for _, remote := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4zero, Port: 8080},
		&net.TCPAddr{IP: net.IPv6unspecified, Port: 8080},
		&net.TCPAddr{IP: net.IPv4(192, 168, 0, 9), Port: 8080},
	} {
		for _, admin := range []bool{false, true} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			game, adm := net.Listener(addrListener{ln, remote}), net.Listener(nil)
			if admin {
				game = ln
				if adm, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
					t.Fatal(err)
				}
				adm = addrListener{adm, remote}
			}
			// ctx is already done: a server that started would shut down
			// at once and return nil.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err = srv.ServeAll(ctx, game, adm, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "loopback") {
				t.Fatalf("%v (admin %v): %v", remote, admin, err)
			}
			if _, err := ln.Accept(); err == nil {
				t.Fatalf("%v: listener left open", remote)
			}
		}
	}
}

// Outside development mode the default XOR key and weak admin tokens
// refuse to start; in development mode only a malformed token does.
func TestParseConfigSecrets(t *testing.T) {
	prod := []string{"-dev=false"}
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
		want string // "" = accepted
	}{
		"default xor key":        {append(prod, "-admin-token", testAdminToken), nil, "default"},
		"default xor key by env": {append(prod, "-admin-token", testAdminToken), map[string]string{"MADANG_XOR_KEY": DefaultXORKey}, "default"},
		"blank xor key":          {append(prod, "-admin-token", testAdminToken, "-xor-key", "   "), nil, "xor-key"},
		"short token":            {append(prod, "-xor-key", "k", "-admin-token", "secret"), nil, "at least 32"},
		"31-byte token":          {append(prod, "-xor-key", "k", "-admin-token", testAdminToken[1:]), nil, "at least 32"},
		"blank token":            {append(prod, "-xor-key", "k"), map[string]string{"MADANG_ADMIN_TOKEN": strings.Repeat(" ", 40)}, "whitespace"},
		"token with space":       {append(prod, "-xor-key", "k", "-admin-token", testAdminToken+" "), nil, "whitespace"},
		"token with newline":     {append(prod, "-xor-key", "k", "-admin-token", testAdminToken[:16]+"\n"+testAdminToken[16:]), nil, "control"},
		"no token":               {append(prod, "-xor-key", "k"), nil, "required"},
		"good":                   {append(prod, "-xor-key", "k", "-admin-token", testAdminToken), nil, ""},
		"admin off":              {append(prod, "-xor-key", "k", "-admin-addr", "off"), nil, ""},
		"dev short token":        {[]string{"-admin-token", "secret"}, nil, ""},
		"dev default key":        {nil, nil, ""},
		"dev blank token":        {[]string{"-admin-token", "  "}, nil, "whitespace"},
	} {
		_, err := ParseConfig(c.args, envOf(c.env))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
	}
	// New applies the same rules to a Config built in Go.
	dir := filepath.Join(t.TempDir(), "data")
	for name, cfg := range map[string]Config{
		"no xor key":      {DataDir: dir},
		"default xor key": {DataDir: dir, XORKey: DefaultXORKey},
		"short token":     {DataDir: dir, XORKey: "k", AdminToken: "secret"},
		"blank token":     {DataDir: dir, XORKey: "k", AdminToken: strings.Repeat(" ", 40)},
	} {
		if srv, err := New(context.Background(), cfg, nil); err == nil {
			srv.Close()
			t.Errorf("New, %s: accepted", name)
		}
	}
}
