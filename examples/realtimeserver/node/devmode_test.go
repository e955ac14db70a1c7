package node

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// MADANG_DEV takes strconv.ParseBool's values only: "no" and "off" used to
// leave development mode, and /dev/login, on.
func TestParseConfigStrictBooleans(t *testing.T) {
	for _, v := range []string{"0", "f", "false", "FALSE", "False"} {
		cfg, err := ParseConfig(nil, envOf(map[string]string{"MADANG_DEV": v, "MADANG_XOR_KEY": "k"}))
		if err != nil || cfg.Dev {
			t.Errorf("MADANG_DEV=%q: dev %v, %v", v, cfg.Dev, err)
		}
	}
	for _, v := range []string{"no", "off", "yes", "on", " 0", "false "} {
		if _, err := ParseConfig(nil, envOf(map[string]string{"MADANG_DEV": v, "MADANG_XOR_KEY": "k"})); err == nil || !strings.Contains(err.Error(), "MADANG_DEV") {
			t.Errorf("MADANG_DEV=%q accepted: %v", v, err)
		}
		if _, err := ParseConfig(nil, envOf(map[string]string{"MADANG_DEV_ALLOW_REMOTE": v})); err == nil || !strings.Contains(err.Error(), "MADANG_DEV_ALLOW_REMOTE") {
			t.Errorf("MADANG_DEV_ALLOW_REMOTE=%q accepted: %v", v, err)
		}
	}
	if _, err := ParseConfig([]string{"-dev=off"}, envOf(nil)); err == nil {
		t.Error("-dev=off accepted")
	}
}

// Development mode (/dev/login: anyone's session) listens on loopback
// only unless -dev-allow-remote; outside it the default XOR key refuses.
func TestParseConfigDevRules(t *testing.T) {
	for _, addr := range []string{":8090", "0.0.0.0:8090", "[::]:8090", "10.0.0.1:8090", "rt.example.com:8090"} {
		_, err := ParseConfig([]string{"-addr", addr}, envOf(nil))
		if err == nil || !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "-dev-allow-remote") {
			t.Errorf("dev on %s: %v", addr, err)
		}
		if _, err := ParseConfig([]string{"-addr", addr, "-dev-allow-remote"}, envOf(nil)); err != nil {
			t.Errorf("dev on %s, -dev-allow-remote: %v", addr, err)
		}
		if _, err := ParseConfig([]string{"-addr", addr}, envOf(map[string]string{"MADANG_DEV_ALLOW_REMOTE": "1"})); err != nil {
			t.Errorf("dev on %s, MADANG_DEV_ALLOW_REMOTE=1: %v", addr, err)
		}
		if _, err := ParseConfig([]string{"-addr", addr, "-dev=false", "-xor-key", "k"}, envOf(nil)); err != nil {
			t.Errorf("production on %s: %v", addr, err)
		}
	}
	for _, args := range [][]string{{"-dev=false"}, {"-dev=false", "-xor-key", DefaultXORKey}, {"-dev=false", "-xor-key", "  "}} {
		if _, err := ParseConfig(args, envOf(nil)); err == nil || !strings.Contains(err.Error(), "xor-key") {
			t.Errorf("%q: %v", args, err)
		}
	}
	if _, err := ParseConfig(nil, envOf(map[string]string{"MADANG_DEV": "false", "MADANG_XOR_KEY": DefaultXORKey})); err == nil {
		t.Error("MADANG_DEV=false with the default XOR key accepted")
	}
	for name, cfg := range map[string]Config{
		"dev on :0":       {Dev: true, Addr: ":0"},
		"no xor key":      {},
		"default xor key": {XORKey: DefaultXORKey},
	} {
		if n, err := New(context.Background(), cfg, nil); err == nil {
			n.Close()
			t.Errorf("New, %s: accepted", name)
		}
	}
}

// addrListener is a loopback listener that reports another address.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

// Serve checks the listener it is given, whatever Config.Addr says.
func TestServeDevRefusesRemoteListener(t *testing.T) {
	n, err := New(context.Background(), Config{Dev: true, NodeID: "dev-remote"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// ctx is already done: a node that started would stop at once and
	// return nil.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = n.Serve(ctx, addrListener{ln, &net.TCPAddr{IP: net.IPv4zero, Port: 8090}}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("dev node on 0.0.0.0: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("listener left open")
	}
}
