package load

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/examples/gameserver/server"
	"github.com/madang-io/madang/protocol"
)

const testXORKey = "loadtest-key"

// startGameServer runs a game server on a fresh data directory on
// 127.0.0.1:0 until the test ends, and returns its RPC URL.
func startGameServer(t *testing.T) string {
	t.Helper()
	return startGameServerWith(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data"), XORKey: testXORKey})
}

// startGameServerWith is startGameServer with cfg.
func startGameServerWith(t *testing.T, cfg server.Config) string {
	t.Helper()
	srv, err := server.New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server shutdown: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("server did not shut down")
		}
		if err := srv.Close(); err != nil {
			t.Errorf("server close: %v", err)
		}
	})
	return "http://" + ln.Addr().String() + protocol.DefaultHTTPPath
}

// checkConsistent checks that the report's numbers add up.
func checkConsistent(t *testing.T, rep *Report) {
	t.Helper()
	var count, errs, series, answered, seriesAnswered uint64
	for _, c := range rep.Commands {
		count += c.Count
		errs += c.Errors
		answered += c.Answered
		if c.Answered > c.Count || c.Refused > c.Sent || c.Resent > c.Sent {
			t.Errorf("%s: answered %d of %d calls, %d sent, %d re-sent, %d refused", c.Command, c.Answered, c.Count, c.Sent, c.Resent, c.Refused)
		}
		var byCode uint64
		for _, n := range c.ErrorsByCode {
			byCode += n
		}
		if byCode != c.Errors {
			t.Errorf("%s: errors %d but %d by code", c.Command, c.Errors, byCode)
		}
		if c.Count > 0 && !(c.P50Ms <= c.P95Ms && c.P95Ms <= c.P99Ms && c.P99Ms <= c.MaxMs && c.MaxMs > 0) {
			t.Errorf("%s: percentiles out of order: %+v", c.Command, c)
		}
	}
	if answered != rep.Total.Answered {
		t.Errorf("commands sum to %d answered calls; total says %d", answered, rep.Total.Answered)
	}
	if count != rep.Total.Count || errs != rep.Total.Errors {
		t.Errorf("commands sum to %d calls, %d errors; total says %d, %d", count, errs, rep.Total.Count, rep.Total.Errors)
	}
	perCmd := map[string]uint64{}
	for i, p := range rep.Series {
		if p.Second != i {
			t.Fatalf("series point %d is second %d", i, p.Second)
		}
		series += p.Requests
		seriesAnswered += p.Answered
		var sum uint64
		for cmd, n := range p.Commands {
			sum += n
			perCmd[cmd] += n
			if p99, ok := p.CommandP99Ms[cmd]; !ok || p99 <= 0 || p99 > p.MaxMs {
				t.Errorf("second %d: %s p99 %v (%v), max of the second %v", i, cmd, p99, ok, p.MaxMs)
			}
		}
		if len(p.CommandP99Ms) != len(p.Commands) {
			t.Errorf("second %d: p99 of %d commands, counts of %d", i, len(p.CommandP99Ms), len(p.Commands))
		}
		if sum != p.Requests {
			t.Errorf("second %d: %d requests, %d by command", i, p.Requests, sum)
		}
	}
	if rep.WarmupS > 0 { // the series keeps the warm-up, the totals do not
		if series < rep.Total.Count || seriesAnswered < rep.Total.Answered {
			t.Errorf("series sums to %d calls (%d answered), fewer than the totals' %d (%d)", series, seriesAnswered, rep.Total.Count, rep.Total.Answered)
		}
		return
	}
	if series != rep.Total.Count || seriesAnswered != rep.Total.Answered {
		t.Errorf("series sums to %d calls (%d answered), total says %d (%d)", series, seriesAnswered, rep.Total.Count, rep.Total.Answered)
	}
	for _, c := range rep.Commands {
		if perCmd[c.Command] != c.Count {
			t.Errorf("%s: %d in the series, %d in the totals", c.Command, perCmd[c.Command], c.Count)
		}
	}
}

func TestRunMixAgainstGameServer(t *testing.T) {
	url := startGameServer(t)
	mix, err := ParseMix("login=1,load=3,purchase=3,time=1")
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, Scenario: mix, Users: 5, RampUp: 500 * time.Millisecond,
		Duration: 2 * time.Second, ThinkMin: time.Millisecond, ThinkMax: 5 * time.Millisecond,
		Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	if rep.Total.Errors != 0 {
		t.Fatalf("errors: %+v", rep.Commands)
	}
	if rep.StopReason != "duration" || rep.Iterations == 0 || rep.ElapsedS < 2 {
		t.Fatalf("stop %q, %d iterations in %.2fs", rep.StopReason, rep.Iterations, rep.ElapsedS)
	}
	counts := map[string]uint64{}
	for _, c := range rep.Commands {
		counts[c.Command] = c.Count
	}
	// Every user logged in once at its start; the purchases made players
	// run out of gems and start over as new guests, also by logging in.
	if counts[game.CmdGuestLogin] < 5 || counts[game.CmdLoad] == 0 || counts[game.CmdShopBuy] == 0 || counts[server.CmdTime] == 0 || len(counts) != 4 {
		t.Fatalf("calls per command: %v", counts)
	}
	// Each iteration makes one to three calls (a purchase may load and log
	// in first), plus one login per user at the start.
	if calls := rep.Total.Count; calls < uint64(rep.Iterations)+5 || calls > 3*uint64(rep.Iterations)+5 {
		t.Fatalf("%d calls for %d iterations", calls, rep.Iterations)
	}
	if !strings.Contains(progress.String(), "users 5/5") || strings.Contains(progress.String(), "\r") {
		t.Errorf("progress lines:\n%s", progress.String())
	}

	// JSON round trip.
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Total.Count != rep.Total.Count || len(back.Series) != len(rep.Series) || back.Scenario != mix.Name() {
		t.Fatalf("JSON round trip lost data: %+v", back.Total)
	}

	// The HTML page is well-formed XML with the charts' series.
	var page bytes.Buffer
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	series := svgSeries(t, page.Bytes())
	charted := 0
	for _, p := range rep.Series {
		if p.SpanS >= 0.5 {
			charted++
		}
	}
	if charted < 2 {
		t.Fatalf("series %+v", rep.Series)
	}
	for _, id := range []string{"tps", "errors", "p50", "p99"} {
		if series[id] != charted {
			t.Errorf("series %s has %d points, want %d", id, series[id], charted)
		}
	}
	// One p99 line per command, with a point for each charted second in
	// which the command ran.
	for _, c := range rep.Commands {
		want := 0
		for _, p := range rep.Series {
			if p.SpanS >= 0.5 && p.Commands[c.Command] > 0 {
				want++
			}
		}
		if got, ok := series["p99:"+c.Command]; !ok || got != want || want == 0 {
			t.Errorf("series p99:%s has %d points (%v), want %d", c.Command, got, ok, want)
		}
	}
	for _, want := range []string{"<svg", game.CmdShopBuy, "Throughput", "Latency", "p99 latency per command"} {
		if !bytes.Contains(page.Bytes(), []byte(want)) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "src=", "href=\"http", "@import"} {
		if bytes.Contains(page.Bytes(), []byte(banned)) {
			t.Errorf("page has %q: not self-contained", banned)
		}
	}
	var sum bytes.Buffer
	if err := WriteSummary(&sum, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"command", "p99", game.CmdShopBuy, "total"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
}

// svgSeries parses page strictly as XML and returns, per polyline
// data-series, its number of points.
func svgSeries(t *testing.T, page []byte) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(page))
	dec.Strict = true
	out := map[string]int{}
	svgs := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("HTML report is not well-formed: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "svg":
			svgs++
		case "polyline":
			var id, points string
			for _, a := range se.Attr {
				switch a.Name.Local {
				case "data-series":
					id = a.Value
				case "points":
					points = a.Value
				}
			}
			for _, pt := range strings.Fields(points) {
				var x, y float64
				if _, err := fmt.Sscanf(pt, "%g,%g", &x, &y); err != nil {
					t.Fatalf("series %s: bad point %q", id, pt)
				}
			}
			out[id] = len(strings.Fields(points))
		}
	}
	if svgs < 2 {
		t.Fatalf("%d svg charts", svgs)
	}
	return out
}

func TestRunStopsAtIterationLimit(t *testing.T) {
	url := startGameServer(t)
	rep, err := Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, Scenario: Time{}, Users: 4, Iterations: 50, Duration: time.Minute, Mode: ModeXOR,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	counts := map[string]uint64{}
	for _, c := range rep.Commands {
		counts[c.Command] = c.Count
	}
	if rep.StopReason != "iterations" || rep.Iterations != 50 || counts[server.CmdTime] != 50 || counts[game.CmdGuestLogin] != 4 || rep.Total.Errors != 0 {
		t.Fatalf("stop %q after %d iterations, calls %v, errors %d", rep.StopReason, rep.Iterations, counts, rep.Total.Errors)
	}
}

func TestRunInterruptedRecordsNoCancelledCalls(t *testing.T) {
	url := startGameServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(time.Second, cancel)
	rep, err := Run(ctx, Config{URL: url, XORKey: testXORKey, Users: 4, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	if rep.StopReason != "interrupted" || rep.Total.Count == 0 || rep.Total.Errors != 0 {
		t.Fatalf("stop %q, %d calls, errors %+v", rep.StopReason, rep.Total.Count, rep.Commands)
	}
}

func TestRunCountsServerErrorsByCode(t *testing.T) {
	url := startGameServer(t)
	// A wrong XOR key: the server cannot read a single frame.
	rep, err := Run(context.Background(), Config{URL: url, XORKey: "not-the-key", Users: 2, Duration: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	if len(rep.Commands) != 1 || rep.Commands[0].Command != game.CmdGuestLogin || rep.Total.Errors == 0 || rep.Total.Errors != rep.Total.Count || rep.Iterations != 0 {
		t.Fatalf("with a wrong key: %+v, %d iterations", rep.Commands, rep.Iterations)
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	svgSeries(t, page.Bytes())
	for code := range rep.Commands[0].ErrorsByCode {
		if code == "client" || code == "" {
			t.Errorf("error kind %q: want the server's result code", code)
		}
		if !bytes.Contains(page.Bytes(), []byte("<td>"+code+"</td>")) {
			t.Errorf("HTML report lacks the error row of %q", code)
		}
	}
}

func TestRunSamplesServerMetrics(t *testing.T) {
	url := startGameServer(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, promSample)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms := &http.Server{Handler: mux}
	go ms.Serve(ln)
	t.Cleanup(func() { ms.Close() })
	base := "http://" + ln.Addr().String()

	rep, err := Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, Users: 2, Duration: 2500 * time.Millisecond,
		MetricsURL: base + "/metrics", MetricsEvery: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Samples) < 2 || rep.SampleErrors != 0 {
		t.Fatalf("%d samples, %d errors (%s)", len(rep.Samples), rep.SampleErrors, rep.SampleProblem)
	}
	s := rep.Samples[0]
	if s.RSSBytes == nil || *s.RSSBytes != 3.2e7 || s.CPUSeconds == nil || s.Goroutines == nil || *s.Goroutines != 42 {
		t.Fatalf("sample %+v", s)
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, rep); err != nil {
		t.Fatal(err)
	}
	series := svgSeries(t, page.Bytes())
	// CPU is a rate between readings at least a second apart.
	if series["rss"] != len(rep.Samples) || series["goroutines"] != len(rep.Samples) || series["cpu"] < 1 || series["cpu"] > len(rep.Samples)-1 {
		t.Fatalf("soak charts: %v for %d samples", series, len(rep.Samples))
	}

	// A missing endpoint is tolerated: counted, and the run goes on.
	rep, err = Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, Users: 2, Duration: time.Second, MetricsURL: base + "/nothing",
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Samples) != 0 || rep.SampleErrors == 0 || !strings.Contains(rep.SampleProblem, "404") || rep.Total.Count == 0 || rep.Total.Errors != 0 {
		t.Fatalf("missing metrics: %d samples, %d errors (%s), %d calls", len(rep.Samples), rep.SampleErrors, rep.SampleProblem, rep.Total.Count)
	}
}

func TestCmdTimeMatchesServer(t *testing.T) {
	if CmdTime != server.CmdTime {
		t.Fatalf("CmdTime %q, server's %q", CmdTime, server.CmdTime)
	}
}

func TestErrorKind(t *testing.T) {
	for err, want := range map[error]string{
		protocol.Errorf(protocol.CodeKicked, "x"):                               "kicked",
		fmt.Errorf("wrapped: %w", protocol.Errorf(game.CodeNotEnoughGems, "x")): game.CodeNotEnoughGems.String(),
		&protocol.TransportError{Status: 502, Err: errors.New("bad gateway")}:   "http_502",
		&protocol.TransportError{Err: errors.New("connection reset")}:           "transport",
		&protocol.TransportError{Err: context.DeadlineExceeded}:                 "timeout",
		context.DeadlineExceeded:                                                "timeout",
		errors.New("decode"):                                                    "client",
		&AnswerError{Command: "x", Err: errors.New("not granted")}:              "bad_answer",
	} {
		if got := ErrorKind(err); got != want {
			t.Errorf("%v: %q, want %q", err, got, want)
		}
	}
}

// losingTransport passes requests to the server but loses the reply of
// every nth one (after the server ran it), at most one per cooldown: the
// client resends a lost call 100 ms later, inside the cooldown, so the
// resend is answered. Without it, other users' requests in between make a
// resend lost again with probability 1/n, and now and then all of a
// call's attempts (the test then failed about one run in five).
type losingTransport struct {
	next     http.RoundTripper
	n        int64
	cooldown time.Duration
	seen     atomic.Int64
	lost     atomic.Int64
	mu       sync.Mutex
	lastLoss time.Time
}

func (l *losingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err == nil && l.seen.Add(1)%l.n == 0 && l.lose() {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		l.lost.Add(1)
		return nil, errors.New("connection reset (simulated)")
	}
	return resp, err
}

func (l *losingTransport) lose() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.lastLoss) >= l.cooldown {
		l.lastLoss = now
		return true
	}
	return false
}

func TestRunRetriesLostRepliesWithTheSameRequestID(t *testing.T) {
	url := startGameServer(t)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	lossy := &losingTransport{next: tr, n: 7, cooldown: 250 * time.Millisecond}
	rep, err := Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, Scenario: Purchase{}, Users: 3, Iterations: 800, Duration: time.Minute,
		HTTPClient: &http.Client{Transport: lossy},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	var buy CommandStats
	for _, c := range rep.Commands {
		if c.Command == game.CmdShopBuy {
			buy = c
		}
	}
	// Every lost reply was retried and answered; the retried purchases
	// were answered from the idempotency record, not bought twice (a
	// second debit would leave the user short of gems: not_enough_gems).
	if lossy.lost.Load() == 0 || rep.Total.Errors != 0 || buy.Count != 800 || buy.Replays == 0 {
		t.Fatalf("lost %d replies; errors %+v; shop.buy %+v", lossy.lost.Load(), rep.Commands, buy)
	}
}

// TestRunCountsRefusedRequests: a server that serves one request at once
// and queues none refuses most of 8 users' requests (503 unavailable); the
// report counts every request sent, the re-sends and the refusals apart
// from the calls, and throughput as the calls answered.
func TestRunCountsRefusedRequests(t *testing.T) {
	url := startGameServerWith(t, server.Config{DataDir: filepath.Join(t.TempDir(), "data"), XORKey: testXORKey,
		InFlight: protocol.InFlightConfig{Max: 1, Wait: -1}})
	rep, err := Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, Scenario: Load{}, Users: 8, Iterations: 200, Duration: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	tot := rep.Total
	var notAnswered uint64 // calls that ended refused (unavailable, rate_limited), timed out or lost
	for code, n := range tot.ErrorsByCode {
		switch code {
		case "unavailable", "rate_limited", "in_flight", "timeout", "transport":
			notAnswered += n
		}
	}
	if tot.Refused == 0 || tot.Resent == 0 || tot.Sent != tot.Count+tot.Resent || tot.Answered+notAnswered != tot.Count {
		t.Fatalf("total = %+v", tot)
	}
	if want := float64(tot.Answered) / rep.CountedS; tot.AnsweredTPS != want || rep.CountedS != rep.ElapsedS {
		t.Fatalf("answered/s %v, want %v over %v s (elapsed %v)", tot.AnsweredTPS, want, rep.CountedS, rep.ElapsedS)
	}
	var b strings.Builder
	if err := WriteSummary(&b, rep); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d refused (HTTP 503/429)", tot.Refused); !strings.Contains(b.String(), want) {
		t.Fatalf("summary without %q:\n%s", want, b.String())
	}
}

// TestRunWarmupIsNotCounted: the calls of the warm-up stay in the series
// but not in the totals, which cover the time after it.
func TestRunWarmupIsNotCounted(t *testing.T) {
	url := startGameServer(t)
	rep, err := Run(context.Background(), Config{
		URL: url, XORKey: testXORKey, Scenario: Load{}, Users: 2, Duration: 3 * time.Second, Warmup: 1500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, rep)
	var early uint64
	for _, p := range rep.Series {
		if p.Second == 0 {
			early += p.Requests
		}
	}
	if early == 0 || rep.Total.Count == 0 || rep.WarmupS != 1.5 || math.Abs(rep.CountedS-(rep.ElapsedS-1.5)) > 1e-6 {
		t.Fatalf("second 0 had %d calls; total %+v; warm-up %v s, counted %v of %v s", early, rep.Total, rep.WarmupS, rep.CountedS, rep.ElapsedS)
	}
	var series uint64
	for _, p := range rep.Series {
		series += p.Requests
	}
	if series < rep.Total.Count+early {
		t.Fatalf("series %d calls, totals %d + %d in the first second", series, rep.Total.Count, early)
	}
	if _, err := Run(context.Background(), Config{URL: url, XORKey: testXORKey, Duration: time.Second, Warmup: time.Second}); err == nil {
		t.Fatal("a warm-up as long as the run was accepted")
	}
}
