package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/loadtest/load"
)

func TestRunInProcess(t *testing.T) {
	dir := t.TempDir()
	jsonFile, htmlFile := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	var out bytes.Buffer
	err := run(context.Background(), []string{
		"-inproc", "-duration", "2s", "-users", "5", "-think", "1ms-3ms", "-mix", "login=1,load=2,purchase=2,time=1",
		"-json", jsonFile, "-html", htmlFile,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"users 5/5", "shop.buy", "p99", "total", "wrote " + jsonFile, "wrote " + htmlFile, "-inproc"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep load.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total.Count == 0 || rep.Total.Errors != 0 || len(rep.Commands) != 4 || len(rep.Notes) != 1 || rep.StopReason != "duration" {
		t.Fatalf("report: %+v", rep.Total)
	}
	page, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte(`data-series="tps"`)) || !bytes.Contains(page, []byte(`data-series="p99"`)) {
		t.Fatal("HTML report lacks the charts")
	}
}

// The chat scenario in a mix over the in-process server's hub, with the
// flags that set its rooms.
func TestRunInProcessChat(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "r.json")
	var out bytes.Buffer
	err := run(context.Background(), []string{
		"-inproc", "-duration", "2s", "-users", "4", "-mix", "chat=3,time=1", "-chat-rooms", "2", "-json", jsonFile,
	}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"chat.echo", "rt.publish", "ws.connect", "pushes ", "2 rooms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rep load.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Total.Errors != 0 || rep.Realtime == nil || rep.Realtime.Rooms != 2 || rep.Realtime.Echoes == 0 || !strings.HasSuffix(rep.Realtime.URL, "/ws") {
		t.Fatalf("report: %+v, realtime %+v", rep.Total, rep.Realtime)
	}
}

func TestRunRefusesRemoteAndUnbounded(t *testing.T) {
	for _, args := range [][]string{
		{"-url", "http://192.0.2.1:8080/v1/rpc"},
		{"-url", "http://example.com/v1/rpc", "-duration", "1s"},
		{"-ws-url", "ws://192.0.2.1:8090/ws", "-scenario", "chat"},
	} {
		err := run(context.Background(), args, &bytes.Buffer{})
		if !errors.Is(err, load.ErrRemote) {
			t.Errorf("%v: %v, want ErrRemote", args, err)
		}
	}
	for _, args := range [][]string{
		{"-duration", "0"}, {"-iterations", "0"}, {"-users", "0"}, {"-users", "-3"}, {"-duration", "25h"},
		{"-think", "2s-1s"}, {"-think", "x"}, {"-scenario", "raid"}, {"-mix", "load=1,x=2"}, {"-mode", "plain"},
		{"-max-error-rate", "1.5"}, {"-max-error-rate", "-0.1"}, {"-max-error-rate", "NaN"}, {"-max-error-rate", "x"},
		{"extra"}, {"-chat-rooms", "1001"}, {"-chat-rooms", "-1"}, {"-ws-url", "ftp://127.0.0.1/ws"},
	} {
		if err := run(context.Background(), args, &bytes.Buffer{}); err == nil || errors.Is(err, load.ErrRemote) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

func TestParseThink(t *testing.T) {
	for in, want := range map[string][2]time.Duration{
		"0": {0, 0}, "250ms": {250 * time.Millisecond, 250 * time.Millisecond}, "100ms-2s": {100 * time.Millisecond, 2 * time.Second},
	} {
		lo, hi, err := parseThink(in)
		if err != nil || lo != want[0] || hi != want[1] {
			t.Errorf("%q: %v %v %v", in, lo, hi, err)
		}
	}
}

// closedURL returns an RPC URL on 127.0.0.1 where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/v1/rpc"
}

func TestMaxErrorRate(t *testing.T) {
	// Within the limit: no error at all, limit 0.
	var out bytes.Buffer
	err := run(context.Background(), []string{"-inproc", "-quiet", "-scenario", "time", "-users", "2", "-iterations", "30", "-max-error-rate", "0"}, &out)
	if err != nil || !strings.Contains(out.String(), "error rate 0 within -max-error-rate 0") {
		t.Fatalf("%v\n%s", err, out.String())
	}

	// Above it: every login fails (nothing listens); the reports are still
	// written.
	jsonFile := filepath.Join(t.TempDir(), "r.json")
	url := closedURL(t)
	out.Reset()
	err = run(context.Background(), []string{"-url", url, "-quiet", "-users", "2", "-duration", "1s", "-attempts", "1", "-max-error-rate", "0.01", "-json", jsonFile}, &out)
	if !errors.Is(err, errErrorRate) || !strings.Contains(err.Error(), "> 0.01") {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if _, serr := os.Stat(jsonFile); serr != nil {
		t.Fatalf("report not written: %v", serr)
	}
	// Not given: the same run succeeds (the summary shows the errors).
	if err := run(context.Background(), []string{"-url", url, "-quiet", "-users", "2", "-duration", "1s", "-attempts", "1"}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
}

// The command's exit status (run in a child process: the test binary
// re-executed as the command): 1 when the error rate is exceeded, 0 when
// it is not, and 0 for -h or -help, with the usage on standard output.
func TestExitStatus(t *testing.T) {
	if os.Getenv("LOADTEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"loadtest"}, strings.Fields(os.Getenv("LOADTEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	failing := "-url " + closedURL(t) + " -quiet -users 1 -duration 1s -attempts 1 -max-error-rate "
	for _, tc := range []struct {
		args   string
		code   int
		stdout string // a part of it, or ""
	}{
		{failing + "0.01", 1, ""},
		{failing + "1", 0, "total"},
		{"-h", 0, "Usage of loadtest:\n"},
		{"-help", 0, "-max-error-rate float"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestExitStatus$")
		cmd.Env = append(os.Environ(), "LOADTEST_RUN_MAIN=1", "LOADTEST_ARGS="+tc.args)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) ||
			(tc.code == 1 && !strings.Contains(stderr.String(), "error rate above -max-error-rate")) {
			t.Errorf("%s: exit status %d, want %d:\n%s\n%s", tc.args, code, tc.code, &stdout, &stderr)
		}
	}
}

// -h and -help write the usage to stdout, run nothing and return nil.
func TestRunHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"-quiet", arg}, &out); err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if !strings.HasPrefix(out.String(), "Usage of loadtest:\n") || !strings.Contains(out.String(), "-inproc") {
			t.Errorf("%s: output %q", arg, out.String())
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
