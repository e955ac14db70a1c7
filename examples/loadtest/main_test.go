package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
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

func TestRunRefusesRemoteAndUnbounded(t *testing.T) {
	for _, args := range [][]string{
		{"-url", "http://192.0.2.1:8080/v1/rpc"},
		{"-url", "http://example.com/v1/rpc", "-duration", "1s"},
	} {
		err := run(context.Background(), args, &bytes.Buffer{})
		if !errors.Is(err, load.ErrRemote) {
			t.Errorf("%v: %v, want ErrRemote", args, err)
		}
	}
	for _, args := range [][]string{
		{"-duration", "0"}, {"-iterations", "0"}, {"-users", "0"}, {"-users", "-3"}, {"-duration", "25h"},
		{"-think", "2s-1s"}, {"-think", "x"}, {"-scenario", "raid"}, {"-mix", "load=1,x=2"}, {"-mode", "plain"},
		{"extra"}, {"-h"},
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
