package load

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/protocol"
)

// Report is the outcome of a run: what was run, the totals per command, the
// per-second series and the server samples. It is what -json writes.
type Report struct {
	Target     string    `json:"target"`
	Scenario   string    `json:"scenario"`
	Mode       Mode      `json:"mode"`
	Users      int       `json:"users"`
	RampUpS    float64   `json:"ramp_up_s"`
	ThinkMinMs float64   `json:"think_min_ms"`
	ThinkMaxMs float64   `json:"think_max_ms"`
	DurationS  float64   `json:"duration_limit_s"`
	IterLimit  int64     `json:"iteration_limit"`
	Started    time.Time `json:"started"`
	// ElapsedS is the run's wall time, from the first user's start until
	// the last call completed.
	ElapsedS float64 `json:"elapsed_s"`
	// WarmupS is Config.Warmup; CountedS the time the totals and the CPU
	// times cover: ElapsedS without the warm-up.
	WarmupS  float64 `json:"warmup_s,omitempty"`
	CountedS float64 `json:"counted_s"`
	// Iterations counts completed scenario iterations.
	Iterations int64 `json:"iterations"`
	// StopReason is "duration", "iterations" or "interrupted".
	StopReason string `json:"stop_reason"`
	// Commands has one entry per command; Total sums them.
	Commands []CommandStats `json:"commands"`
	Total    CommandStats   `json:"total"`
	// Series has one point per second.
	Series []Point `json:"series"`
	// Samples are the server metrics read from Config.MetricsURL.
	Samples       []Sample `json:"samples,omitempty"`
	SampleErrors  int      `json:"sample_errors,omitempty"`
	SampleProblem string   `json:"sample_problem,omitempty"`
	// GeneratorCPUS is the CPU time (user+system) this process used during
	// the run; ServerCPUS the server's, when Config.ServerPID was given
	// (-1: not measured).
	GeneratorCPUS float64 `json:"generator_cpu_s"`
	ServerCPUS    float64 `json:"server_cpu_s"`
	// Realtime is the websocket side of a run in which the Chat scenario
	// ran (nil otherwise): connections, pushes received and their delivery
	// latency.
	Realtime *RealtimeStats `json:"realtime,omitempty"`
	// Notes are remarks for the reader (set by the caller, such as "the
	// server ran in this process").
	Notes []string `json:"notes,omitempty"`
}

// engine is one run.
type engine struct {
	cfg    Config
	log    *slog.Logger
	rec    *Recorder
	hc     *http.Client
	start  time.Time
	runID  string // random, unique per run: starts receipt ids
	runCtx context.Context
	stop   context.CancelCauseFunc
	iters  atomic.Int64 // iterations started (claimed from the budget)
	done   atomic.Int64 // iterations completed
	active atomic.Int64 // users logged in and running
	// rt counts the Chat scenario's connections and pushes; userKeys is
	// each user's player (0 until logged in), for whispers.
	rt       rtTotals
	userKeys []atomic.Int64
}

// ErrRunEnded is returned by a scenario whose iteration the end of the run
// cut short (VU.Pause reported false): the iteration is not counted as
// completed; its calls so far are recorded.
var ErrRunEnded = errors.New("load: the run ended during the iteration")

// errIterations is the cause of a run stopped by its iteration budget.
var errIterations = fmt.Errorf("load: iteration limit reached")

// Run runs cfg's scenario against cfg.URL until its duration or its
// iteration budget ends, or ctx is cancelled (the report then covers the
// part that ran). Calls in flight when the run ends complete and count;
// calls cut short by ctx do not.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// One pool of connections for all users, large enough that each keeps
	// its connection (the default keeps 2 idle per host and would make
	// most calls dial).
	hc := cfg.HTTPClient
	if hc == nil {
		tr := &http.Transport{MaxIdleConns: cfg.Users, MaxIdleConnsPerHost: cfg.Users, IdleConnTimeout: 30 * time.Second}
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	}
	hc = countingClient(hc)
	e := &engine{cfg: cfg, log: log, hc: hc, runID: fmt.Sprintf("lt%016x", rand.Uint64()), userKeys: make([]atomic.Int64, cfg.Users)}

	cpu0 := processCPU()
	srv0 := serverCPU(cfg.ServerPID)
	e.start = time.Now()
	e.rec = NewRecorder(e.start)
	// The CPU times at the end of the warm-up, read by a timer; the run
	// ends after it (Warmup < Duration) unless its iterations end first.
	var warm struct {
		sync.Mutex
		done      bool
		cpu, srv0 float64
	}
	if cfg.Warmup > 0 {
		e.rec.CountFrom(e.start.Add(cfg.Warmup))
		t := time.AfterFunc(cfg.Warmup, func() {
			c, s := processCPU(), serverCPU(cfg.ServerPID)
			warm.Lock()
			warm.done, warm.cpu, warm.srv0 = true, c, s
			warm.Unlock()
		})
		defer t.Stop()
	}
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	runCtx, cancelTimer := context.WithTimeout(runCtx, cfg.Duration)
	defer cancelTimer()
	e.stop, e.runCtx = stop, runCtx
	log.Info("load: run starting", "target", cfg.URL, "scenario", cfg.Scenario.Name(), "users", cfg.Users, "duration", cfg.Duration, "iterations", cfg.Iterations)

	var users sync.WaitGroup
	for i := range cfg.Users {
		users.Go(func() { e.user(ctx, runCtx, i) })
	}
	bg, bgStop := context.WithCancel(context.Background())
	var helpers sync.WaitGroup
	helpers.Go(func() { e.progress(bg) })
	var sampler *sampler
	if cfg.MetricsURL != "" {
		sampler = newSampler(cfg.MetricsURL, cfg.MetricsEvery, e.hc, e.start)
		helpers.Go(func() { sampler.run(bg) })
	}
	users.Wait()
	end := time.Now()
	bgStop()
	helpers.Wait()
	counted := end.Sub(e.start)
	if cfg.Warmup > 0 {
		counted = max(end.Sub(e.start.Add(cfg.Warmup)), 0)
		warm.Lock()
		if warm.done {
			cpu0, srv0 = warm.cpu, warm.srv0
		} else { // the run ended in its warm-up: nothing was counted
			cpu0, srv0 = processCPU(), serverCPU(cfg.ServerPID)
		}
		warm.Unlock()
	}

	rep := &Report{
		Target: cfg.URL, Scenario: cfg.Scenario.Name(), Mode: cfg.Mode, Users: cfg.Users,
		RampUpS: cfg.RampUp.Seconds(), ThinkMinMs: msOf(cfg.ThinkMin), ThinkMaxMs: msOf(cfg.ThinkMax),
		DurationS: cfg.Duration.Seconds(), IterLimit: cfg.Iterations,
		Started: e.start.UTC(), ElapsedS: end.Sub(e.start).Seconds(), Iterations: e.done.Load(),
		WarmupS: cfg.Warmup.Seconds(), CountedS: counted.Seconds(),
		GeneratorCPUS: processCPU() - cpu0, ServerCPUS: -1,
	}
	switch {
	case ctx.Err() != nil:
		rep.StopReason = "interrupted"
	case context.Cause(runCtx) == errIterations:
		rep.StopReason = "iterations"
	default:
		rep.StopReason = "duration"
	}
	if srv0 >= 0 {
		if srv1 := serverCPU(cfg.ServerPID); srv1 >= 0 {
			rep.ServerCPUS = srv1 - srv0
		}
	}
	rep.Commands, rep.Total = e.rec.Totals(counted)
	rep.Series = e.rec.FlushAll(end)
	if rep.Realtime = e.rtReport(end.Sub(e.start)); rep.Realtime != nil {
		for i := range rep.Series {
			p := &rep.Series[i]
			p.Pushes = e.rt.pushesIn(p.Second)
			if p.SpanS > 0 {
				p.PushesPerS = float64(p.Pushes) / p.SpanS
			}
		}
	}
	if sampler != nil {
		rep.Samples, rep.SampleErrors, rep.SampleProblem = sampler.result()
	}
	if cfg.Progress != nil {
		e.printProgress(rep.Series, true)
	}
	log.Info("load: run done", "elapsed", end.Sub(e.start), "requests", rep.Total.Count, "errors", rep.Total.Errors, "stop", rep.StopReason)
	return rep, nil
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// user is one virtual user: it waits for its turn in the ramp-up, logs in,
// then runs iterations until the run ends. Calls use ctx (the caller's), so
// that the end of the run lets calls in flight complete; runCtx ends the
// run.
func (e *engine) user(ctx, runCtx context.Context, id int) {
	if e.cfg.RampUp > 0 {
		delay := time.Duration(int64(e.cfg.RampUp) * int64(id) / int64(e.cfg.Users))
		if !sleep(runCtx, delay) {
			return
		}
	}
	vu, err := e.newVU(id)
	if err != nil {
		e.log.Error("load: user", "id", id, "err", err)
		return
	}
	defer vu.closeRealtime() // the Chat scenario's connection, if any
	e.active.Add(1)
	defer e.active.Add(-1)
	backoff := time.Second
	for runCtx.Err() == nil {
		if !vu.loggedIn {
			if err := vu.Login(ctx); err != nil {
				// Back off like an app would (1 s doubling to 30 s, with
				// jitter): retrying failed logins at once turns an
				// overloaded server's slowness into a login storm.
				e.log.Debug("load: login failed", "user", id, "err", err)
				if !sleep(runCtx, backoff/2+time.Duration(vu.Rand.Int64N(int64(backoff)))) {
					return
				}
				backoff = min(2*backoff, MaxLoginBackoff)
				continue
			}
			backoff = time.Second
		}
		if n := e.iters.Add(1); n > e.cfg.Iterations {
			e.stop(errIterations)
			return
		}
		err := e.cfg.Scenario.Run(ctx, vu)
		if ctx.Err() != nil || errors.Is(err, ErrRunEnded) {
			return // not a completed iteration
		}
		if err != nil {
			e.log.Debug("load: iteration failed", "user", id, "err", err)
		}
		e.done.Add(1)
		if e.cfg.ThinkMax > 0 {
			think := e.cfg.ThinkMin
			if span := e.cfg.ThinkMax - e.cfg.ThinkMin; span > 0 {
				think += time.Duration(vu.Rand.Int64N(int64(span) + 1))
			}
			if !sleep(runCtx, think) {
				return
			}
		}
	}
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// VU is a virtual user: one player's client and what the scenarios know of
// the player.
type VU struct {
	// ID numbers the users of a run from 0.
	ID int
	// Client is the user's protocol client (its own session and request
	// numbering; connections are pooled over all users).
	Client *protocol.Client
	// Rand is the user's random source (scenarios draw from it).
	Rand *rand.Rand
	// Device is the device id the user logs in with.
	Device string
	// UserKey is the logged-in player's key.
	UserKey int64
	// Gems is the player's last known gem balance, -1 when unknown.
	Gems int64
	// Stamina is the player's last known stamina, -1 when unknown.
	Stamina int64
	// Level is the player's last known level, 0 when unknown.
	Level int

	e        *engine
	keys     *protocol.Keys // the session's, in ModeAuthenticated
	loggedIn bool
	devices  int
	receipts int
	// The Chat scenario's connection, its messages sent and the time of
	// the last one.
	rt       *rtConn
	chats    uint64
	lastChat time.Time
}

func (e *engine) newVU(id int) (*VU, error) {
	c, err := protocol.NewClient(protocol.ClientConfig{
		Transport:   &protocol.HTTPTransport{URL: e.cfg.URL, Client: e.hc},
		Codec:       protocol.Config{XORKey: []byte(e.cfg.XORKey)},
		Mode:        protocol.ModeXOR,
		MaxAttempts: e.cfg.MaxAttempts,
	})
	if err != nil {
		return nil, err
	}
	vu := &VU{ID: id, Client: c, Rand: rand.New(rand.NewPCG(e.cfg.Seed, uint64(id))), Gems: -1, Stamina: -1, e: e}
	vu.Device = fmt.Sprintf("%s%d", e.cfg.DevicePrefix, id)
	return vu, nil
}

// Call runs one command as the user and records its latency (first send to
// final answer, retries included) and outcome. A call cut short because ctx
// was cancelled is not recorded. An answer that the session is gone
// (unauthorized, expired, kicked, revoked) makes the user log in again
// before its next iteration.
func (vu *VU) Call(ctx context.Context, cmd string, in, out any) (*protocol.Response, error) {
	return vu.CallCheck(ctx, cmd, in, out, nil)
}

// CallCheck is Call with a check of the answer: when the server answers
// OK but check (run on the decoded out) returns an error, the call is
// recorded as failed, of kind "bad_answer" (an *AnswerError), as a
// server that answers OK with a wrong result has failed the call.
func (vu *VU) CallCheck(ctx context.Context, cmd string, in, out any, check func() error) (*protocol.Response, error) {
	cctx, cancel := context.WithTimeout(ctx, vu.e.cfg.RequestTimeout)
	var tries wireTries
	cctx = context.WithValue(cctx, wireTriesKey{}, &tries)
	t0 := time.Now()
	resp, err := vu.Client.Call(cctx, cmd, in, out)
	end := time.Now()
	cancel()
	if ctx.Err() != nil {
		return resp, ctx.Err()
	}
	if err == nil && check != nil {
		if cerr := check(); cerr != nil {
			err = &AnswerError{Command: cmd, Err: cerr}
		}
	}
	vu.e.rec.RecordAttempts(cmd, end, end.Sub(t0), err, resp != nil && resp.Replay, tries.sent.Load(), tries.refused.Load())
	if err != nil {
		switch protocol.CodeOf(err) {
		case protocol.CodeUnauthorized, protocol.CodeSessionExpired, protocol.CodeKicked, protocol.CodeSessionRevoked:
			vu.loggedIn = false
		}
	}
	return resp, err
}

// AnswerError is a call the server answered OK with a result the scenario
// found wrong (CallCheck). ErrorKind names it "bad_answer".
type AnswerError struct {
	Command string
	Err     error
}

func (e *AnswerError) Error() string { return "load: " + e.Command + ": bad answer: " + e.Err.Error() }

// Unwrap returns the check's error.
func (e *AnswerError) Unwrap() error { return e.Err }

// Pause waits d, as a player does between two calls (playing a dungeon,
// reading a screen). It reports false, at once, when the run ends first:
// the scenario should then return ErrRunEnded without further calls.
func (vu *VU) Pause(d time.Duration) bool {
	return sleep(vu.e.runCtx, d)
}

// ReceiptID returns a store transaction id that no other call of any run
// has used: the run's random id, the user and a counter (letters, digits
// and '-', at most 40 bytes, as development receipts want).
func (vu *VU) ReceiptID() string {
	vu.receipts++
	return fmt.Sprintf("%s-%d-%d", vu.e.runID, vu.ID, vu.receipts)
}

// Login logs the user in as a guest with its device id (auth.guest, sent
// XOR-obfuscated) and switches its client to the new session, with
// authenticated frames in ModeAuthenticated.
func (vu *VU) Login(ctx context.Context) error { return vu.login(ctx, false) }

// login is Login; with wantNew, an answer that the player is not new is a
// failed call (bad_answer).
func (vu *VU) login(ctx context.Context, wantNew bool) error {
	vu.Client.SetSession("", nil)
	vu.keys = nil
	vu.loggedIn = false
	var res game.LoginResult
	in := game.GuestLogin{DeviceID: vu.Device, Platform: "android", ClientVersion: "1.0.0.0", Country: "KR", Language: "ko"}
	var check func() error
	if wantNew {
		check = func() error {
			if !res.NewUser {
				return fmt.Errorf("device %s: not a new player (user %d)", vu.Device, res.UserKey)
			}
			return nil
		}
	}
	if _, err := vu.CallCheck(ctx, game.CmdGuestLogin, in, &res, check); err != nil {
		return err
	}
	var keys *protocol.Keys
	if vu.e.cfg.Mode == ModeAuthenticated {
		secret, err := base64.StdEncoding.DecodeString(res.Secret)
		if err != nil {
			return fmt.Errorf("load: login secret: %w", err)
		}
		if keys, err = protocol.NewKeys([]byte(res.KeyID), secret); err != nil {
			return fmt.Errorf("load: login keys: %w", err)
		}
	}
	vu.Client.SetSession(res.Token, keys)
	vu.keys = keys
	vu.UserKey = res.UserKey
	vu.e.userKeys[vu.ID].Store(res.UserKey)
	if res.NewUser {
		vu.Gems, vu.Stamina, vu.Level = game.StartGems, game.StaminaMax, game.LevelOf(0)
	}
	vu.loggedIn = true
	return nil
}

// NewIdentity gives the user a device id it has not used, so that its next
// Login creates a new player.
func (vu *VU) NewIdentity() {
	vu.devices++
	vu.Device = fmt.Sprintf("%s%d.%d", vu.e.cfg.DevicePrefix, vu.ID, vu.devices)
	vu.Gems, vu.Stamina, vu.Level = -1, -1, 0
}

// wireTries counts the HTTP requests of one call (wireTriesKey in the
// call's context) as countingTransport sees them.
type wireTries struct{ sent, refused atomic.Uint64 }

type wireTriesKey struct{}

// countingClient returns a copy of hc whose transport counts, for a call
// whose context carries a *wireTries, every request sent and every one the
// server refused (HTTP 503 or 429: nothing ran).
func countingClient(hc *http.Client) *http.Client {
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = countingTransport{base}
	return &c
}

type countingTransport struct{ base http.RoundTripper }

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tries, _ := req.Context().Value(wireTriesKey{}).(*wireTries)
	resp, err := t.base.RoundTrip(req)
	if tries != nil {
		tries.sent.Add(1)
		if err == nil && (resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests) {
			tries.refused.Add(1)
		}
	}
	return resp, err
}
