package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/madang-io/madang/examples/cmdline"
	"github.com/madang-io/madang/examples/loadtest/load"
)

// Modes of the game server.
const (
	modeRedisMySQL = "redis-mysql"
	modeEmbedded   = "embedded"
)

// binary is one game server executable under comparison.
type binary struct {
	Name  string // "A" or "B"
	Path  string
	Label string // what it was built from; "" : Path
}

// options are the command line.
type options struct {
	bins       []binary
	modes      []string
	scenarios  []string
	clients    []int
	rounds     int
	duration   time.Duration
	warmup     time.Duration
	port       int
	mysqlPort  int
	redisPort  int
	out        string
	serverArgs []string
	jsonFile   string
}

// Bounds of the command line: runs stay short and few.
const (
	maxRounds   = 20
	maxDuration = 10 * time.Minute
	maxClients  = 1000
)

func parseArgs(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("nakamacompare", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var a, b, aLabel, bLabel, modes, scenarios, clients, serverArgs string
	fs.StringVar(&a, "a", "", "game server binary A (before); required")
	fs.StringVar(&b, "b", "", "game server binary B (after); none: A alone")
	fs.StringVar(&aLabel, "a-label", "", "what A was built from, for the table (default: its path)")
	fs.StringVar(&bLabel, "b-label", "", "what B was built from, for the table (default: its path)")
	fs.StringVar(&modes, "modes", modeRedisMySQL+","+modeEmbedded, "server modes, comma-separated: "+modeRedisMySQL+" (private Redis + MariaDB), "+modeEmbedded+" (SQLite, memory sessions)")
	fs.StringVar(&scenarios, "scenarios", "login-new,write", "load scenarios, comma-separated: login-new, write")
	fs.StringVar(&clients, "clients", "16,64", "client counts, comma-separated")
	fs.IntVar(&o.rounds, "rounds", 3, fmt.Sprintf("rounds; each runs A then B on fresh servers (at most %d)", maxRounds))
	fs.DurationVar(&o.duration, "duration", 15*time.Second, fmt.Sprintf("length of one run (at most %v)", maxDuration))
	fs.DurationVar(&o.warmup, "warmup", 4*time.Second, "warm-up of each fresh server (half login-new, half write, 16 clients), not recorded; 0: none")
	fs.IntVar(&o.port, "port", 18097, "game server port on 127.0.0.1")
	fs.IntVar(&o.mysqlPort, "mysql-port", 13317, "private mariadbd port on 127.0.0.1")
	fs.IntVar(&o.redisPort, "redis-port", 16397, "private redis-server port on 127.0.0.1")
	fs.StringVar(&o.out, "out", "", "directory of the run reports (JSON) and server logs (default: a new temporary directory, kept)")
	fs.StringVar(&serverArgs, "server-args", "", "more game server flags, space-separated, for both binaries (after the harness's own, so they win)")
	fs.StringVar(&o.jsonFile, "json", "", "also write all runs' figures as JSON to this file")
	if err := cmdline.Parse(fs, args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if a == "" {
		return o, errors.New("-a (game server binary) is required")
	}
	o.bins = []binary{{"A", a, aLabel}}
	if b != "" {
		o.bins = append(o.bins, binary{"B", b, bLabel})
	}
	o.serverArgs = strings.Fields(serverArgs)
	o.modes = cmdline.SplitList(modes)
	for _, m := range o.modes {
		if m != modeRedisMySQL && m != modeEmbedded {
			return o, fmt.Errorf("-modes: unknown mode %q", m)
		}
	}
	o.scenarios = cmdline.SplitList(scenarios)
	for _, s := range o.scenarios {
		if _, ok := refs[s]; !ok {
			return o, fmt.Errorf("-scenarios: unknown scenario %q (want login-new or write)", s)
		}
	}
	for _, c := range cmdline.SplitList(clients) {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 || n > maxClients {
			return o, fmt.Errorf("-clients: %q is not 1..%d", c, maxClients)
		}
		o.clients = append(o.clients, n)
	}
	switch {
	case len(o.modes) == 0 || len(o.scenarios) == 0 || len(o.clients) == 0:
		return o, errors.New("-modes, -scenarios and -clients must not be empty")
	case o.rounds < 1 || o.rounds > maxRounds:
		return o, fmt.Errorf("-rounds must be 1..%d", maxRounds)
	case o.duration < time.Second || o.duration > maxDuration:
		return o, fmt.Errorf("-duration must be 1s..%v", maxDuration)
	case o.warmup < 0 || o.warmup > maxDuration:
		return o, fmt.Errorf("-warmup must be 0..%v", maxDuration)
	}
	for _, p := range []int{o.port, o.mysqlPort, o.redisPort} {
		if p < 1024 || p > 65535 {
			return o, fmt.Errorf("port %d: want 1024..65535", p)
		}
	}
	if o.port == o.mysqlPort || o.port == o.redisPort || o.mysqlPort == o.redisPort {
		return o, errors.New("-port, -mysql-port and -redis-port must differ")
	}
	return o, nil
}

// slot is one fresh server in the schedule: a round and a binary.
type slot struct {
	Round int
	Bin   binary
}

// schedule returns the servers to run in order: round 1 A, round 1 B,
// round 2 A, ...: A and B interleaved, so that a change in the machine's
// load falls on both.
func schedule(rounds int, bins []binary) []slot {
	var s []slot
	for r := 1; r <= rounds; r++ {
		for _, b := range bins {
			s = append(s, slot{r, b})
		}
	}
	return s
}

// result is one run's figures.
type result struct {
	Mode     string `json:"mode"`
	Bin      string `json:"binary"`
	Round    int    `json:"round"`
	Scenario string `json:"scenario"`
	Clients  int    `json:"clients"`
	// Command is the scenario's own command (auth.guest, shop.buy); Rate,
	// P50Ms and P99Ms are its.
	Command string  `json:"command"`
	Rate    float64 `json:"rate"`
	P50Ms   float64 `json:"p50_ms"`
	P99Ms   float64 `json:"p99_ms"`
	// Calls, CallsPerS and Errors are all the run's calls (write: its
	// logins too).
	Calls     uint64  `json:"calls"`
	CallsPerS float64 `json:"calls_per_s"`
	Errors    uint64  `json:"errors"`
	// CPU per call in µs (-1: not measured).
	ServerUs    float64 `json:"server_cpu_us"`
	MariaDBUs   float64 `json:"mariadb_cpu_us"`
	RedisUs     float64 `json:"redis_cpu_us"`
	GeneratorUs float64 `json:"generator_cpu_us"`
	// LoadStart and LoadEnd are /proc/loadavg's 1-minute figures.
	LoadStart float64 `json:"load_start"`
	LoadEnd   float64 `json:"load_end"`
	Report    string  `json:"report"`
}

// scenarioCommand is the command each scenario is measured by.
var scenarioCommand = map[string]string{"login-new": "auth.guest", "write": "shop.buy"}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parseArgs(args)
	if err != nil {
		return cmdline.Help(stdout, err)
	}
	for _, b := range o.bins {
		if st, err := os.Stat(b.Path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("binary %s: %q is not an executable file", b.Name, b.Path)
		}
	}
	for _, p := range []int{o.port, o.mysqlPort, o.redisPort} {
		if err := portFree(p); err != nil {
			return err
		}
	}
	if o.out == "" {
		if o.out, err = os.MkdirTemp("", "nakamacompare-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reports and logs in %s\n", o.out)
	var results []result
	var runErr error
	for _, mode := range o.modes {
		rs, err := runMode(ctx, o, mode, stdout)
		results = append(results, rs...)
		if err != nil {
			runErr = fmt.Errorf("%s: %w (the figures below are the runs before)", mode, err)
			break
		}
	}
	if o.jsonFile != "" {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonFile, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if err := writeTables(stdout, o, results); err != nil {
		return err
	}
	return runErr
}

// runMode starts the mode's private services and runs every slot of the
// schedule on them.
func runMode(ctx context.Context, o options, mode string, stdout io.Writer) ([]result, error) {
	tmp, err := os.MkdirTemp("", "nakamacompare-"+mode+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var inf *infra
	if mode == modeRedisMySQL {
		fmt.Fprintf(stdout, "starting a private mariadbd on 127.0.0.1:%d and redis-server on 127.0.0.1:%d\n", o.mysqlPort, o.redisPort)
		if inf, err = startInfra(ctx, tmp, o.out, o.mysqlPort, o.redisPort); err != nil {
			return nil, err
		}
		defer inf.stop()
	}
	var results []result
	for _, sl := range schedule(o.rounds, o.bins) {
		rs, err := runSlot(ctx, o, mode, sl, inf, tmp, stdout)
		results = append(results, rs...)
		if err != nil {
			return results, err
		}
	}
	return results, nil
}

// runSlot starts binary sl.Bin on fresh state, warms it up and runs every
// scenario at every client count.
func runSlot(ctx context.Context, o options, mode string, sl slot, inf *infra, tmp string, stdout io.Writer) ([]result, error) {
	tag := fmt.Sprintf("%s-r%d-%s", mode, sl.Round, sl.Bin.Name)
	xorKey := randomHex(16)
	args := []string{"-addr", fmt.Sprintf("127.0.0.1:%d", o.port), "-admin-addr", "off", "-dev=false",
		"-xor-key", xorKey, "-log-level", "warn", "-cmd-rate=-1"}
	switch mode {
	case modeEmbedded:
		dir := filepath.Join(tmp, tag)
		defer os.RemoveAll(dir)
		args = append(args, "-data", dir)
	case modeRedisMySQL:
		db := "cmp_" + strings.ReplaceAll(tag[len(mode)+1:], "-", "_")
		if err := inf.freshState(ctx, db); err != nil {
			return nil, err
		}
		defer inf.dropDatabases(db)
		args = append(args, "-redis", inf.redisAddr, "-redis-prefix", "cmp:", "-mysql", inf.dsn(db))
	}
	args = append(args, o.serverArgs...)
	srv, err := startServer(ctx, sl.Bin.Path, args, filepath.Join(o.out, tag+".server.log"), o.port)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tag, err)
	}
	defer srv.stop()
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/rpc", o.port)
	if o.warmup > 0 {
		for _, sc := range []load.Scenario{load.LoginNew{}, load.Write{}} {
			if _, err := load.Run(ctx, load.Config{URL: url, XORKey: xorKey, Scenario: sc, Users: 16, Duration: o.warmup / 2}); err != nil {
				return nil, err
			}
		}
	}
	var results []result
	for _, name := range o.scenarios {
		for _, clients := range o.clients {
			if err := ctx.Err(); err != nil {
				return results, err
			}
			report := filepath.Join(o.out, fmt.Sprintf("%s-%s-%d.json", tag, name, clients))
			r, err := runOne(ctx, o, url, xorKey, srv.pid(), inf, name, clients, report)
			if err != nil {
				return results, err
			}
			r.Mode, r.Bin, r.Round = mode, sl.Bin.Name, sl.Round
			fmt.Fprintf(stdout, "%-22s %-9s %3d clients: %7.0f %s/s, %d errors, p99 %.1f ms, server %.0f µs/call, mariadb %s, redis %s, load %.2f→%.2f\n",
				tag, name, clients, r.Rate, r.Command, r.Errors, r.P99Ms, r.ServerUs, usText(r.MariaDBUs), usText(r.RedisUs), r.LoadStart, r.LoadEnd)
			results = append(results, r)
		}
	}
	return results, nil
}

// runOne runs one scenario, writes its report (JSON) to report and returns
// its figures.
func runOne(ctx context.Context, o options, url, xorKey string, pid int, inf *infra, name string, clients int, report string) (result, error) {
	sc, err := load.ParseScenario(name, "")
	if err != nil {
		return result{}, err
	}
	r := result{Scenario: name, Clients: clients, Command: scenarioCommand[name], MariaDBUs: -1, RedisUs: -1, Report: report}
	r.LoadStart = loadAvg1()
	db0, rd0 := -1.0, -1.0
	if inf != nil {
		db0, rd0 = load.ProcCPU(inf.mysqldPID()), load.ProcCPU(inf.redisPID())
	}
	rep, err := load.Run(ctx, load.Config{URL: url, XORKey: xorKey, Scenario: sc, Users: clients, Duration: o.duration, ServerPID: pid})
	if err != nil {
		return r, err
	}
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	if inf != nil {
		r.MariaDBUs = perCall(db0, load.ProcCPU(inf.mysqldPID()), rep.Total.Count)
		r.RedisUs = perCall(rd0, load.ProcCPU(inf.redisPID()), rep.Total.Count)
	}
	r.LoadEnd = loadAvg1()
	fill(&r, rep)
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return r, err
	}
	return r, os.WriteFile(report, append(b, '\n'), 0o644)
}

// fill copies rep's figures into r.
func fill(r *result, rep *load.Report) {
	for _, c := range rep.Commands {
		if c.Command == r.Command {
			r.Rate, r.P50Ms, r.P99Ms = c.TPS, c.P50Ms, c.P99Ms
		}
	}
	r.Calls, r.CallsPerS, r.Errors = rep.Total.Count, rep.Total.TPS, rep.Total.Errors
	r.ServerUs = -1
	if rep.ServerCPUS >= 0 {
		r.ServerUs = perCall(0, rep.ServerCPUS, rep.Total.Count)
	}
	r.GeneratorUs = perCall(0, rep.GeneratorCPUS, rep.Total.Count)
}

// perCall returns the CPU seconds from a to b per call in µs, or -1 when
// either reading failed or there were no calls.
func perCall(a, b float64, calls uint64) float64 {
	if a < 0 || b < 0 || calls == 0 {
		return -1
	}
	return (b - a) * 1e6 / float64(calls)
}

func usText(us float64) string {
	if us < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f µs/call", us)
}

// loadAvg1 returns the 1-minute load average, or -1.
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	v, err := parseLoadAvg(string(b))
	if err != nil {
		return -1
	}
	return v[0]
}

// parseLoadAvg parses /proc/loadavg's first three fields: the 1, 5 and
// 15-minute load averages.
func parseLoadAvg(s string) ([3]float64, error) {
	var v [3]float64
	f := strings.Fields(s)
	if len(f) < 3 {
		return v, fmt.Errorf("loadavg %q: want 3 fields or more", s)
	}
	for i := range v {
		x, err := strconv.ParseFloat(f[i], 64)
		if err != nil || x < 0 {
			return v, fmt.Errorf("loadavg %q: field %d", s, i+1)
		}
		v[i] = x
	}
	return v, nil
}

// portFree returns an error when something listens on 127.0.0.1:port.
func portFree(port int) error {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("port %d is taken (%w): choose another with -port, -mysql-port or -redis-port", port, err)
	}
	return ln.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
