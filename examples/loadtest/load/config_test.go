package load

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckTarget(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:8080/v1/rpc", "http://127.9.9.9/", "http://[::1]:80/x", "http://localhost:1/",
		"https://LOCALHOST./", "http://[::ffff:127.0.0.1]:8080/", "ws://127.0.0.1:8080/ws", "wss://localhost/ws",
	} {
		if err := CheckTarget(u, false); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{
		"http://10.0.0.1:8080/v1/rpc", "http://192.168.1.2/", "http://[2001:db8::1]/", "http://example.com/",
		"http://localhost.example.com/", "http://0.0.0.0:8080/", "http://127.0.0.1.nip.io/",
	} {
		if err := CheckTarget(u, false); !errors.Is(err, ErrRemote) {
			t.Errorf("%s: %v, want ErrRemote", u, err)
		}
		if err := CheckTarget(u, true); err != nil {
			t.Errorf("%s with allowRemote: %v", u, err)
		}
	}
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://127.0.0.1/", "http://", "http://%zz/"} {
		if err := CheckTarget(u, true); err == nil || errors.Is(err, ErrRemote) {
			t.Errorf("%q: %v, want a URL error", u, err)
		}
	}
}

// TestRunRefusesRemoteBeforeSending checks that nothing is sent to a
// remote target: the dialer of the run would be used, so the test points
// at a listener it owns through a non-loopback name and sees no connection.
func TestRunRefusesRemoteBeforeSending(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) })}
	go srv.Serve(ln)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, cfg := range []Config{
		{URL: "http://203.0.113.7:" + port + "/v1/rpc", Duration: time.Second},
		{URL: "http://127.0.0.1:" + port + "/v1/rpc", MetricsURL: "http://203.0.113.7/metrics", Duration: time.Second},
		{URL: "http://127.0.0.1:" + port + "/v1/rpc", WSURL: "ws://203.0.113.7:" + port + "/ws", Scenario: Chat{}, Duration: time.Second},
	} {
		rep, err := Run(context.Background(), cfg)
		if !errors.Is(err, ErrRemote) || rep != nil {
			t.Errorf("%+v: report %v, error %v; want ErrRemote", cfg, rep, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the listener", hits.Load())
	}
}

func TestConfigBounds(t *testing.T) {
	base := Config{URL: "http://127.0.0.1:1/v1/rpc"}
	cfg, err := base.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Users != DefaultUsers || cfg.Duration != DefaultDuration || cfg.Iterations != DefaultIterations ||
		cfg.Mode != ModeAuthenticated || cfg.Scenario == nil || !strings.HasPrefix(cfg.DevicePrefix, "lt-") ||
		cfg.RequestTimeout != DefaultRequestTimeout || cfg.MaxAttempts != DefaultMaxAttempts {
		t.Fatalf("defaults: %+v", cfg)
	}
	for name, mut := range map[string]func(*Config){
		"no url":          func(c *Config) { c.URL = "" },
		"negative users":  func(c *Config) { c.Users = -1 },
		"too many users":  func(c *Config) { c.Users = MaxUsers + 1 },
		"negative dur":    func(c *Config) { c.Duration = -time.Second },
		"too long":        func(c *Config) { c.Duration = MaxDuration + time.Second },
		"negative iter":   func(c *Config) { c.Iterations = -5 },
		"too many iter":   func(c *Config) { c.Iterations = MaxIterations + 1 },
		"ramp > duration": func(c *Config) { c.Duration, c.RampUp = time.Second, 2*time.Second },
		"negative think":  func(c *Config) { c.ThinkMin = -time.Millisecond },
		"bad mode":        func(c *Config) { c.Mode = "plain" },
		"remote":          func(c *Config) { c.URL = "http://10.1.1.1/v1/rpc" },
	} {
		c := base
		mut(&c)
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := base
	c.ThinkMin, c.ThinkMax = 50*time.Millisecond, 10*time.Millisecond
	if c, err = c.withDefaults(); err != nil || c.ThinkMax != c.ThinkMin {
		t.Errorf("think max below min: %v %v %v", c.ThinkMin, c.ThinkMax, err)
	}
}

func TestParseScenarioAndMix(t *testing.T) {
	for _, name := range []string{"login", "load", "purchase", "time", "login-new", "write"} {
		s, err := ParseScenario(name, "")
		if err != nil || s.Name() != name {
			t.Errorf("%s: %v %v", name, s, err)
		}
	}
	s, err := ParseScenario("mix", "")
	if err != nil || s.Name() != "mix("+DefaultMix+")" {
		t.Fatalf("default mix: %v %v", s, err)
	}
	m, err := ParseMix(" load=3 , time=0,purchase=1")
	if err != nil || m.Name() != "mix(load=3,purchase=1)" || m.total != 4 {
		t.Fatalf("mix with a zero weight: %v %v", m, err)
	}
	for _, bad := range []string{"", "load", "load=x", "load=-1", "load=1001", "load=1,load=2", "raid=1", "load=0,time=0"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("mix %q accepted", bad)
		}
	}
	if _, err := ParseScenario("raid", ""); err == nil {
		t.Error("unknown scenario accepted")
	}
}
