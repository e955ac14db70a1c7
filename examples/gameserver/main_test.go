package main

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The main with no services: embedded databases, both listeners, a printed
// dev token that opens the ops API; it stops cleanly when ctx ends.
func TestRunEmbedded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	args := []string{"-addr", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-data", filepath.Join(t.TempDir(), "data"), "-log-level", "warn"}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(string) string { return "" }, strings.NewReader(""), &out) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", out.String())
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	m := regexp.MustCompile(`ops: +(http://[0-9.:]+)/v1/`).FindStringSubmatch(out.String())
	tok := regexp.MustCompile(`token: +([0-9a-f]{32})`).FindStringSubmatch(out.String())
	if m == nil || tok == nil {
		t.Fatalf("no ops address or dev token printed:\n%s", out.String())
	}
	req, _ := http.NewRequest("GET", m[1]+"/v1/stats", nil)
	req.Header.Set("Authorization", "Bearer "+tok[1])
	hc := &http.Client{Transport: &http.Transport{}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hc.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stats with the printed token: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// -h and -help write the usage to out and return nil (main exits 0),
// starting nothing.
func TestRunHelp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // were the server started anyway, it would stop at once
	for _, arg := range []string{"-h", "-help"} {
		var out bytes.Buffer
		args := []string{"-addr", "127.0.0.1:0", "-admin-addr", "off", "-data", t.TempDir(), arg}
		if err := run(ctx, args, func(string) string { return "" }, strings.NewReader(""), &out); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if !strings.HasPrefix(out.String(), "Usage of gameserver:\n") || !strings.Contains(out.String(), "-redis-cluster string") {
			t.Errorf("%s: output %q", arg, out.String())
		}
	}
}

// A development switch the server does not understand refuses to start
// ("off" used to leave development mode on), as does development mode on
// every interface.
func TestRunRefusesUnclearDevMode(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"MADANG_DEV": "off"}, nil, "MADANG_DEV"},
		{map[string]string{"MADANG_DEV": "no"}, nil, "MADANG_DEV"},
		{nil, []string{"-addr", ":0"}, "loopback"},
		{map[string]string{"MADANG_DEV": "false"}, []string{"-admin-token", "short"}, "xor-key"},
	} {
		var out syncBuffer
		err := run(context.Background(), c.args, func(k string) string { return c.env[k] }, strings.NewReader(""), &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: %v, want an error with %q", c.env, c.args, err, c.want)
		}
		if strings.Contains(out.String(), "listening") {
			t.Errorf("%v %v: started:\n%s", c.env, c.args, out.String())
		}
	}
}

func TestGCPercentDefaultsOnlyWithoutGOGC(t *testing.T) {
	if p, ok := gcPercent(func(string) string { return "" }); !ok || p != defaultGCPercent {
		t.Fatalf("without GOGC: %d, %v; want %d, true", p, ok, defaultGCPercent)
	}
	env := map[string]string{"GOGC": "50"}
	if _, ok := gcPercent(func(k string) string { return env[k] }); ok {
		t.Fatal("GOGC set in the environment was overridden")
	}
}
