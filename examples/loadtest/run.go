package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/madang-io/madang/examples/cmdline"
	"github.com/madang-io/madang/examples/gameserver/server"
	"github.com/madang-io/madang/examples/loadtest/load"
	"github.com/madang-io/madang/protocol"
)

// options are the command line beyond load.Config.
type options struct {
	cfg      load.Config
	inproc   bool
	jsonFile string
	htmlFile string
	quiet    bool
	// maxErrRate, when checkErrRate, fails the run (exit status 1) when
	// its errors over its calls exceed it.
	maxErrRate   float64
	checkErrRate bool
}

// errErrorRate is returned when a run's error rate exceeds -max-error-rate.
var errErrorRate = errors.New("error rate above -max-error-rate")

func parseArgs(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var scenario, mix, think, mode string
	var iterations int64
	fs.StringVar(&o.cfg.URL, "url", "http://"+server.DefaultAddr+protocol.DefaultHTTPPath, "game server RPC endpoint")
	fs.StringVar(&o.cfg.WSURL, "ws-url", "", "realtime (websocket) endpoint of the chat scenario, such as ws://127.0.0.1:8090/ws for a realtime server (default: the game server's own hub, "+load.DefaultWSPath+" on -url's host)")
	fs.BoolVar(&o.cfg.WSDevLogin, "ws-dev-login", false, "chat: take websocket tokens from the realtime node's GET /dev/login?user=<key> (a realtime server in memory mode, which does not know the game server's sessions); not needed for the game server's hub or a realtime server in Redis mode sharing the game server's Redis and prefix")
	fs.IntVar(&o.cfg.ChatRooms, "chat-rooms", 0, fmt.Sprintf("chat: rooms the users spread over (world.0 .. world.<n-1>), so each message reaches about users/rooms users (default: users/%d rounded up, at most %d)", load.DefaultChatRoomSize, load.MaxChatRooms))
	fs.BoolVar(&o.inproc, "inproc", false, "start a game server in this process (temporary data dir, 127.0.0.1:0) and load it; generator and server then share the CPU")
	fs.BoolVar(&o.cfg.AllowRemote, "allow-remote", false, "allow a target that is not loopback")
	fs.StringVar(&scenario, "scenario", "mix", "mix or a unit scenario: "+strings.Join(slices.Sorted(maps.Keys(load.Units())), ", "))
	fs.StringVar(&mix, "mix", load.DefaultMix, "ratio of unit scenarios for -scenario mix")
	fs.IntVar(&o.cfg.Users, "users", load.DefaultUsers, fmt.Sprintf("virtual users (at most %d)", load.MaxUsers))
	fs.DurationVar(&o.cfg.RampUp, "ramp", 0, "spread the users' starts over this duration")
	fs.DurationVar(&o.cfg.Warmup, "warmup", 0, "do not count the calls that complete in this first part of the run (ramp-up, first logins): totals, throughput and CPU times are taken after it; the per-second series keeps it")
	fs.DurationVar(&o.cfg.Duration, "duration", load.DefaultDuration, fmt.Sprintf("run time limit (at most %v)", load.MaxDuration))
	fs.Int64Var(&iterations, "iterations", load.DefaultIterations, fmt.Sprintf("limit of scenario iterations over all users (at most %d); the run ends at whichever limit comes first", load.MaxIterations))
	fs.StringVar(&think, "think", "0", "pause after each iteration: a duration (500ms) or a range drawn uniformly (200ms-2s)")
	fs.StringVar(&mode, "mode", string(load.ModeAuthenticated), "frames after login, HTTP and the chat scenario's websocket: auth (AES-GCM with the session's keys, one frame counter for both) or xor")
	fs.StringVar(&o.cfg.XORKey, "xor-key", server.DefaultXORKey, "frame obfuscation key the server expects")
	fs.DurationVar(&o.cfg.RequestTimeout, "timeout", load.DefaultRequestTimeout, "limit of one call, retries included")
	fs.IntVar(&o.cfg.MaxAttempts, "attempts", load.DefaultMaxAttempts, "sends of one call at most (retries keep the request id)")
	fs.StringVar(&o.cfg.DevicePrefix, "device-prefix", "", "device id prefix of the guests (default: lt- and a random run id)")
	fs.StringVar(&o.cfg.MetricsURL, "metrics-url", "", "server's Prometheus endpoint to sample (soak mode), such as http://127.0.0.1:9090/metrics")
	fs.DurationVar(&o.cfg.MetricsEvery, "metrics-every", load.DefaultMetricsEvery, "sampling period of -metrics-url")
	fs.IntVar(&o.cfg.ServerPID, "server-pid", 0, "server's process id on this Linux machine: report its CPU time apart from the generator's")
	fs.StringVar(&o.jsonFile, "json", "", "write the report as JSON to this file")
	fs.StringVar(&o.htmlFile, "html", "", "write the report as a self-contained HTML page to this file")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line")
	fs.Float64Var(&o.maxErrRate, "max-error-rate", 0, "fail (exit status 1, after the reports are written) when failed calls over all calls exceed this fraction, such as 0.01, or when no call completed; not checked unless given")
	if err := cmdline.Parse(fs, args); err != nil {
		return o, err // -h: a *cmdline.HelpError, flag.ErrHelp
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { o.checkErrRate = o.checkErrRate || f.Name == "max-error-rate" })
	if o.checkErrRate && !(o.maxErrRate >= 0 && o.maxErrRate <= 1) {
		return o, fmt.Errorf("-max-error-rate %v: want a fraction from 0 to 1", o.maxErrRate)
	}
	o.cfg.Iterations = iterations
	o.cfg.Mode = load.Mode(mode)
	var err error
	if o.cfg.ThinkMin, o.cfg.ThinkMax, err = parseThink(think); err != nil {
		return o, err
	}
	if o.cfg.Scenario, err = load.ParseScenario(scenario, mix); err != nil {
		return o, err
	}
	// Flags at zero or below would mean the library's default; on the
	// command line they are mistakes.
	if o.cfg.Users <= 0 || o.cfg.Duration <= 0 || iterations <= 0 {
		return o, errors.New("-users, -duration and -iterations must be positive: every run is bounded")
	}
	return o, nil
}

// parseThink parses "0", "500ms" or "200ms-2s".
func parseThink(s string) (lo, hi time.Duration, err error) {
	a, b, isRange := strings.Cut(s, "-")
	if lo, err = time.ParseDuration(strings.TrimSpace(a)); err != nil {
		return 0, 0, fmt.Errorf("-think: %w", err)
	}
	hi = lo
	if isRange {
		if hi, err = time.ParseDuration(strings.TrimSpace(b)); err != nil {
			return 0, 0, fmt.Errorf("-think: %w", err)
		}
	}
	if lo < 0 || hi < lo {
		return 0, 0, fmt.Errorf("-think %q: want a duration or a range low-high", s)
	}
	return lo, hi, nil
}

// run parses args, runs the load test and writes the summary (and the
// progress lines) to stdout, and the files asked for. For -h or -help it
// writes the usage to stdout and returns nil.
func run(ctx context.Context, args []string, stdout io.Writer) (err error) {
	o, err := parseArgs(args)
	if err != nil {
		return cmdline.Help(stdout, err) // -h: the usage, nil
	}
	if !o.quiet {
		o.cfg.Progress, o.cfg.ProgressTTY = stdout, isTerminal(stdout)
	}
	var notes []string
	if o.inproc {
		url, stop, err := startServer(ctx, o.cfg.XORKey)
		if err != nil {
			return err
		}
		defer func() {
			if serr := stop(); err == nil {
				err = serr
			}
		}()
		o.cfg.URL = url
		notes = append(notes, "the game server ran inside the load generator's process (-inproc): they shared the CPU, and the generator's CPU time includes the server's")
	}
	fmt.Fprintf(stdout, "loading %s with %s, %d users, for %v or %d iterations\n", o.cfg.URL, o.cfg.Scenario.Name(), o.cfg.Users, o.cfg.Duration, o.cfg.Iterations)
	rep, err := load.Run(ctx, o.cfg)
	if err != nil {
		return err
	}
	rep.Notes = append(rep.Notes, notes...)
	fmt.Fprintln(stdout)
	if err := load.WriteSummary(stdout, rep); err != nil {
		return err
	}
	if o.jsonFile != "" {
		if err := writeFile(o.jsonFile, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", o.jsonFile)
	}
	if o.htmlFile != "" {
		if err := writeFile(o.htmlFile, func(w io.Writer) error { return load.WriteHTML(w, rep) }); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", o.htmlFile)
	}
	if rep.StopReason == "interrupted" {
		return ctx.Err()
	}
	return checkErrorRate(o, rep, stdout)
}

// checkErrorRate returns errErrorRate when -max-error-rate was given and
// the run's error rate exceeds it, or no call completed.
func checkErrorRate(o options, rep *load.Report, stdout io.Writer) error {
	if !o.checkErrRate {
		return nil
	}
	if rep.Total.Count == 0 {
		return fmt.Errorf("%w: no call completed", errErrorRate)
	}
	rate := float64(rep.Total.Errors) / float64(rep.Total.Count)
	if rate > o.maxErrRate {
		return fmt.Errorf("%w: %d errors in %d calls (%.4g > %.4g)", errErrorRate, rep.Total.Errors, rep.Total.Count, rate, o.maxErrRate)
	}
	fmt.Fprintf(stdout, "error rate %.4g within -max-error-rate %.4g\n", rate, o.maxErrRate)
	return nil
}

func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	return f.Close()
}

// startServer runs a game server on a temporary data directory on
// 127.0.0.1:0; stop shuts it down and removes the directory. The server is
// in development mode (loopback only, so the default XOR key and
// development receipts work); the admin listener is off.
func startServer(ctx context.Context, xorKey string) (url string, stop func() error, err error) {
	dir, err := os.MkdirTemp("", "madang-loadtest-")
	if err != nil {
		return "", nil, err
	}
	srv, err := server.New(ctx, server.Config{DataDir: dir, XORKey: xorKey, Dev: true, AdminAddr: server.AdminOff, ShutdownTimeout: 5 * time.Second}, nil)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		os.RemoveAll(dir)
		return "", nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln, io.Discard) }()
	stop = func() error {
		cancel()
		err := <-done
		err = errors.Join(err, srv.Close(), os.RemoveAll(dir))
		if err != nil {
			return fmt.Errorf("in-process server: %w", err)
		}
		return nil
	}
	return "http://" + ln.Addr().String() + protocol.DefaultHTTPPath, stop, nil
}
