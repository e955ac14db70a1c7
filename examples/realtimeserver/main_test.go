package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's writes and the test's
// reads.
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

// run starts a memory node, serves /healthz and a dev login, and returns
// nil after a graceful shutdown when its context ends.
func TestRun(t *testing.T) {
	getenv := func(k string) string {
		if k == "MADANG_NODE_ID" {
			return "main-test"
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, getenv, &out) }()

	re := regexp.MustCompile(`node main-test listening on (http://127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no listening line: %q", out.String())
		}
	}
	for _, path := range []string{"/healthz", "/stats", "/dev/login?user=5"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return")
	}
}

// -h and -help write the usage to stdout and return nil (main exits 0),
// starting nothing.
func TestRunHelp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // were the node started anyway, it would stop at once
	for _, arg := range []string{"-h", "-help"} {
		var out bytes.Buffer
		if err := run(ctx, []string{"-addr", "127.0.0.1:0", arg}, func(string) string { return "" }, &out); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if !strings.HasPrefix(out.String(), "Usage of realtimeserver:\n") || !strings.Contains(out.String(), "-redis-cluster string") {
			t.Errorf("%s: output %q", arg, out.String())
		}
	}
}

func TestRunBadArgs(t *testing.T) {
	getenv := func(string) string { return "" }
	if err := run(context.Background(), []string{"-no-such-flag"}, getenv, &bytes.Buffer{}); err == nil {
		t.Fatal("unknown flag accepted")
	}
	// Redis that does not answer: New fails instead of serving.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := run(ctx, []string{"-addr", "127.0.0.1:0", "-redis", "127.0.0.1:1"}, getenv, &bytes.Buffer{}); err == nil {
		t.Fatal("unreachable Redis accepted")
	}
}

// A development switch the node does not understand refuses to start
// ("off" used to leave /dev/login on), as does development mode on every
// interface.
func TestRunRefusesUnclearDevMode(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"MADANG_DEV": "off"}, nil, "MADANG_DEV"},
		{nil, []string{"-addr", ":0"}, "loopback"},
		{map[string]string{"MADANG_DEV": "false"}, nil, "xor-key"},
	} {
		var out syncBuffer
		err := run(context.Background(), c.args, func(k string) string { return c.env[k] }, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: %v, want an error with %q", c.env, c.args, err, c.want)
		}
		if strings.Contains(out.String(), "listening") {
			t.Errorf("%v %v: started:\n%s", c.env, c.args, out.String())
		}
	}
}
