package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/loadtest/load"
)

func TestParseArgs(t *testing.T) {
	o, err := parseArgs([]string{"-a", "/bin/a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.bins) != 1 || o.bins[0] != (binary{"A", "/bin/a", ""}) || o.rounds != 3 || o.duration != 15*time.Second ||
		!slices.Equal(o.clients, []int{16, 64}) || !slices.Equal(o.scenarios, []string{"login-new", "write"}) ||
		!slices.Equal(o.modes, []string{modeRedisMySQL, modeEmbedded}) {
		t.Fatalf("defaults: %+v", o)
	}
	o, err = parseArgs([]string{"-a", "x", "-b", "y", "-b-label", "HEAD", "-modes", "embedded", "-clients", " 4, 8 ", "-rounds", "5",
		"-duration", "2s", "-server-args", "-max-logins=64  -cmd-burst 80"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.bins) != 2 || o.bins[1] != (binary{"B", "y", "HEAD"}) || !slices.Equal(o.clients, []int{4, 8}) || o.rounds != 5 ||
		!slices.Equal(o.serverArgs, []string{"-max-logins=64", "-cmd-burst", "80"}) || !slices.Equal(o.modes, []string{modeEmbedded}) {
		t.Fatalf("%+v", o)
	}
	for _, bad := range [][]string{
		{},
		{"-a", "x", "extra"},
		{"-a", "x", "-modes", "postgres"},
		{"-a", "x", "-scenarios", "mix"},
		{"-a", "x", "-clients", "0"},
		{"-a", "x", "-clients", "16,many"},
		{"-a", "x", "-clients", ""},
		{"-a", "x", "-rounds", "0"},
		{"-a", "x", "-rounds", "21"},
		{"-a", "x", "-duration", "500ms"},
		{"-a", "x", "-duration", "11m"},
		{"-a", "x", "-warmup", "-1s"},
		{"-a", "x", "-port", "80"},
		{"-a", "x", "-redis-port", "13317"},
	} {
		if _, err := parseArgs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := parseArgs([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestRunHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &out); err != nil || !strings.Contains(out.String(), "-rounds") {
		t.Fatalf("%v: %s", err, out.String())
	}
	if err := run(context.Background(), []string{"-a", filepath.Join(t.TempDir(), "none")}, &out); err == nil ||
		!strings.Contains(err.Error(), "not an executable") {
		t.Fatalf("missing binary: %v", err)
	}
}

// The schedule interleaves A and B round by round.
func TestSchedule(t *testing.T) {
	a, b := binary{"A", "a", ""}, binary{"B", "b", ""}
	var got []string
	for _, s := range schedule(3, []binary{a, b}) {
		got = append(got, s.Bin.Name+string(rune('0'+s.Round)))
	}
	if want := []string{"A1", "B1", "A2", "B2", "A3", "B3"}; !slices.Equal(got, want) {
		t.Fatalf("%v, want %v", got, want)
	}
	if s := schedule(2, []binary{a}); len(s) != 2 || s[1] != (slot{2, a}) {
		t.Fatalf("A alone: %v", s)
	}
}

func TestParseLoadAvg(t *testing.T) {
	v, err := parseLoadAvg("4.50 5.05 5.64 11/351 10399\n")
	if err != nil || v != [3]float64{4.5, 5.05, 5.64} {
		t.Fatalf("%v %v", v, err)
	}
	for _, bad := range []string{"", "1.0 2.0", "1.0 x 3.0 1/2 3", "-1 0 0 1/1 1"} {
		if _, err := parseLoadAvg(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if v := loadAvg1(); v < 0 {
		if _, err := os.Stat("/proc/loadavg"); err == nil {
			t.Errorf("loadAvg1 = %v with /proc/loadavg present", v)
		}
	}
}

func TestFillAndPerCall(t *testing.T) {
	rep := &load.Report{ServerCPUS: 1.5, GeneratorCPUS: 0.3,
		Commands: []load.CommandStats{{Command: "auth.guest", Count: 100, TPS: 10, P50Ms: 3, P99Ms: 40},
			{Command: "shop.buy", Count: 2900, TPS: 290, P50Ms: 2, P99Ms: 20}},
		Total: load.CommandStats{Count: 3000, TPS: 300, Errors: 2}}
	r := result{Command: "shop.buy"}
	fill(&r, rep)
	if r.Rate != 290 || r.P50Ms != 2 || r.P99Ms != 20 || r.Calls != 3000 || r.CallsPerS != 300 || r.Errors != 2 ||
		r.ServerUs != 500 || r.GeneratorUs != 100 {
		t.Fatalf("%+v", r)
	}
	rep.ServerCPUS = -1
	fill(&r, rep)
	if r.ServerUs != -1 {
		t.Fatalf("server CPU not read: %v", r.ServerUs)
	}
	if perCall(-1, 2, 10) != -1 || perCall(1, 2, 0) != -1 || perCall(1, 3, 4) != 500000 {
		t.Fatal("perCall")
	}
}

func TestStat(t *testing.T) {
	s := statOf([]float64{3, 1, 2, -1}, false)
	if s.mid != 2 || s.lo != 1 || s.hi != 3 || s.n != 3 || s.text("%.0f", false) != "2 [1–3]" {
		t.Fatalf("%+v %s", s, s.text("%.0f", false))
	}
	if s := statOf([]float64{4, 1, 2, 3}, false); s.mid != 2.5 {
		t.Fatalf("even median %+v", s)
	}
	if s := statOf([]float64{1, 2}, true); s.mid != 3 || s.text("%.0f", true) != "3" {
		t.Fatalf("sum %+v", s)
	}
	if s := statOf([]float64{-1}, false); s.n != 0 || s.text("%.0f", false) != "-" {
		t.Fatalf("none %+v", s)
	}
	if ratio(3, 2) != "1.50×" || ratio(0, 2) != "-" || ratio(2, 0) != "-" {
		t.Fatal("ratio")
	}
}

// The table gives medians, B/A and the ratios to Nakama's figures.
func TestWriteTables(t *testing.T) {
	o := options{bins: []binary{{"A", "old", ""}, {"B", "/tmp/x/B", "new (abc)"}}, modes: []string{modeRedisMySQL, modeEmbedded},
		scenarios: []string{"write"}, clients: []int{64}, rounds: 3, duration: 15 * time.Second}
	var rs []result
	for i, rate := range []float64{800, 900, 850} {
		for _, mode := range o.modes {
			db := 1000.0
			if mode == modeEmbedded {
				db = -1
			}
			rs = append(rs,
				result{Mode: mode, Bin: "A", Round: i + 1, Scenario: "write", Clients: 64, Rate: rate, P99Ms: 300, ServerUs: 1080, MariaDBUs: db, RedisUs: 40, LoadStart: 3, LoadEnd: 4},
				result{Mode: mode, Bin: "B", Round: i + 1, Scenario: "write", Clients: 64, Rate: 2 * rate, P99Ms: 99, ServerUs: 540, MariaDBUs: db / 2, RedisUs: 40, Errors: 1, LoadStart: 2.5, LoadEnd: 5})
		}
	}
	var out bytes.Buffer
	if err := writeTables(&out, o, rs); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if !strings.Contains(text, "   A = old\n   B = new (abc)\n") {
		t.Errorf("binaries not named:\n%s", text)
	}
	lines := map[string]string{}
	mode := ""
	for line := range strings.Lines(text) {
		if m, ok := strings.CutPrefix(line, "== "); ok {
			mode, _, _ = strings.Cut(m, ",")
		}
		f := strings.Fields(line)
		for i, w := range f {
			if strings.HasSuffix(w, "/call") || w == "req/s" || w == "errors" || (w == "ms" && i > 0) || w == "average" {
				lines[mode+" "+strings.Join(f[max(0, i-1):i+1], " ")] = strings.Join(f[i+1:], " ")
				break
			}
		}
	}
	want := map[string]string{
		"redis-mysql clients req/s":     "850 [800–900] 1700 [1600–1800] 2.00× 2096 0.41× 0.81×",
		"redis-mysql errors":            "0 3 - - - -",
		"redis-mysql p99 ms":            "300.0 [300.0–300.0] 99.0 [99.0–99.0] 0.33× 66 4.55× 1.50×",
		"redis-mysql server µs/call":    "1080 [1080–1080] 540 [540–540] 0.50× 430–540 2.00× 1.00×",
		"redis-mysql mariadb µs/call":   "1000 [1000–1000] 500 [500–500] 0.50× PG 280–640 1.56× 0.78×",
		"redis-mysql load average":      "3.00–4.00 2.50–5.00",
		"embedded clients req/s":        "850 [800–900] 1700 [1600–1800] 2.00× 2096 0.41× 0.81×",
		"embedded load average":         "3.00–4.00 2.50–5.00",
		"embedded mariadb µs/call":      "", // not measured: no row
		"redis-mysql generator µs/call": "0 [0–0] 0 [0–0] - - - -",
	}
	for k, v := range want {
		got, ok := lines[k]
		if v == "" && ok || v != "" && got != v {
			t.Errorf("%s: got %q (present %v), want %q", k, got, ok, v)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
	// A alone: no B columns.
	o.bins = o.bins[:1]
	out.Reset()
	if err := writeTables(&out, o, rs); err != nil || strings.Contains(out.String(), "B/A") || !strings.Contains(out.String(), "A/Nakama") {
		t.Fatalf("%v\n%s", err, out.String())
	}
}

// redisCmd speaks Redis's inline protocol: it sends the command and wants
// +OK or +PONG.
func TestRedisCmd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			switch strings.TrimSpace(line) {
			case "PING":
				c.Write([]byte("+PONG\r\n"))
			case "FLUSHALL":
				c.Write([]byte("+OK\r\n"))
			default:
				c.Write([]byte("-ERR unknown\r\n"))
			}
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	if err := redisCmd(addr, "PING"); err != nil {
		t.Fatal(err)
	}
	if err := redisCmd(addr, "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	if err := redisCmd(addr, "SHUTDOWN"); err == nil || !strings.Contains(err.Error(), "-ERR") {
		t.Fatalf("error answer: %v", err)
	}
	if err := portFree(ln.Addr().(*net.TCPAddr).Port); err == nil {
		t.Fatal("a port in use reported free")
	}
}

// End to end in embedded mode: the game server built from this tree as A
// and B, one short round, every scenario; the reports are written and the
// server is gone afterwards. It builds the server: not in -short.
func TestRunEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the game server")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "gameserver")
	build := exec.Command("go", "build", "-o", bin, "github.com/madang-io/madang/examples/gameserver")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	port := freePort(t)
	out := filepath.Join(dir, "out")
	jsonFile := filepath.Join(dir, "all.json")
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"-a", bin, "-b", bin, "-modes", "embedded", "-rounds", "1", "-clients", "2",
		"-duration", "1s", "-warmup", "0", "-port", strconv.Itoa(port),
		"-mysql-port", strconv.Itoa(freePort(t)), "-redis-port", strconv.Itoa(freePort(t)), "-out", out, "-json", jsonFile}, &stdout)
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	b, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	var rs []result
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 4 {
		t.Fatalf("%d results: %+v", len(rs), rs)
	}
	for _, r := range rs {
		// ServerUs is -1 when /proc was not read; 0 is possible: a 1 s run of 2
		// clients on a starved machine can use less than one clock tick.
		if r.Rate <= 0 || r.Errors != 0 || r.ServerUs < 0 || r.MariaDBUs != -1 || r.LoadStart < 0 {
			t.Errorf("%+v", r)
		}
		if _, err := os.Stat(r.Report); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stdout.String(), "write, 2 clients") || !strings.Contains(stdout.String(), "B/A") {
		t.Errorf("table:\n%s", stdout.String())
	}
	if err := portFree(port); err != nil {
		t.Errorf("the server still listens: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
