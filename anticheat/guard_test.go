package anticheat_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/madang-io/madang/anticheat/anticheattest"
	"strconv"
	"testing"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/protocol"
)

func okHandler(calls *int) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		*calls++
		return &protocol.Response{Payload: json.RawMessage(`{"gold":5}`)}, nil
	})
}

func TestGuardSpeedToBlock(t *testing.T) {
	f := anticheattest.NewClock(t0)
	store := anticheat.NewMemoryStore(anticheat.MemoryConfig{Now: f.Now})
	var actions []anticheat.Action
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Log: store, Blocks: store, Now: f.Now,
		OnAction: func(v anticheat.Verdict, a anticheat.Action) { actions = append(actions, a) }})
	g := anticheat.NewGuard(anticheat.GuardConfig{Monitor: mon, Now: f.Now})
	calls := 0
	h := protocol.Chain(okHandler(&calls), g.Middleware())
	p := &protocol.Principal{UserKey: 42, SessionID: "tok", ClientVersion: "1.0.0.0"}
	var last *protocol.Response
	i := 0
	for ; i < 200; i++ {
		el := time.Duration(i) * time.Second
		req := &protocol.Request{Command: "stage.clear", ClientTime: t0.Add(2 * el).UnixMilli(), ReceivedAt: t0.Add(el), Principal: p}
		last = protocol.Dispatch(context.Background(), h, req, nil)
		if last.Code != protocol.CodeOK {
			break
		}
	}
	if last.Code != protocol.CodeBlocked {
		t.Fatalf("never blocked: %+v", last)
	}
	// Default policy: flagged at 1..4, blocked for 24 h at the 5th verdict.
	if len(actions) != 5 || actions[0] != anticheat.ActionFlag || actions[4] != anticheat.ActionTempBlock {
		t.Fatalf("actions %v", actions)
	}
	c, _ := store.UserCounts(context.Background(), 42)
	if c[anticheat.KindSpeed] != 5 {
		t.Fatalf("counts %v", c)
	}
	evs, _ := store.UserEvents(context.Background(), 42, 10)
	if len(evs) != 5 || evs[0].ClientVersion != "1.0.0.0" || evs[0].Reason != anticheat.ReasonDriftAhead {
		t.Fatalf("events %+v", evs)
	}
	// Blocked from now on, for every command, even honest ones.
	before := calls
	req := &protocol.Request{Command: "mail.list", ClientTime: t0.UnixMilli(), ReceivedAt: t0.Add(time.Duration(i+1) * time.Second), Principal: p}
	if r := protocol.Dispatch(context.Background(), h, req, nil); r.Code != protocol.CodeBlocked || calls != before {
		t.Fatalf("after block: %+v calls %d", r, calls-before)
	}
	// Other users are not affected; requests without a principal pass.
	req = &protocol.Request{Command: "mail.list", ClientTime: t0.UnixMilli(), ReceivedAt: t0, Principal: &protocol.Principal{UserKey: 43}}
	if r := protocol.Dispatch(context.Background(), h, req, nil); r.Code != protocol.CodeOK {
		t.Fatalf("other user: %+v", r)
	}
	if r := protocol.Dispatch(context.Background(), h, &protocol.Request{Command: "ping"}, nil); r.Code != protocol.CodeOK {
		t.Fatalf("no principal: %+v", r)
	}
	if st := g.Stats(); st.SpeedVerdicts != 5 || st.BlockedRefusals != 2 || st.StoreErrors != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The block ends after 24 h.
	req = &protocol.Request{Command: "mail.list", ReceivedAt: t0.Add(25 * time.Hour), Principal: p}
	if r := protocol.Dispatch(context.Background(), h, req, nil); r.Code != protocol.CodeOK {
		t.Fatalf("after 25 h: %+v", r)
	}
}

func TestGuardBlockAtLoginOnly(t *testing.T) {
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Now: func() time.Time { return t0 }})
	_ = mon.Block(context.Background(), 7, 0, "operator")
	g := anticheat.NewGuard(anticheat.GuardConfig{Monitor: mon, BlockAtLoginOnly: true, DisableSpeed: true})
	calls := 0
	h := protocol.Chain(okHandler(&calls), g.Middleware())
	r := protocol.Dispatch(context.Background(), h, &protocol.Request{Command: "x", Principal: &protocol.Principal{UserKey: 7}}, nil)
	if r.Code != protocol.CodeOK || g.Speed() != nil {
		t.Fatalf("%+v", r)
	}
}

const testSig = `{"version":"1.0.0.0","apk_sig":"` + md5A + `","cert_sha256":["` + certO + `"]}`

func loginFixture(t *testing.T, cfg anticheat.GuardConfig) (*anticheat.MemoryStore, *anticheat.Guard, *anticheattest.Clock) {
	t.Helper()
	f := anticheattest.NewClock(t0)
	store := anticheat.NewMemoryStore(anticheat.MemoryConfig{Now: f.Now})
	reg := anticheat.NewRegistry(store, anticheat.RegistryConfig{Now: f.Now, Rand: func(n int64) int64 { return n - 1 }})
	if err := reg.Set(context.Background(), "1.0.0.0", md5A, certO); err != nil {
		t.Fatal(err)
	}
	cfg.Monitor = anticheat.NewMonitor(anticheat.MonitorConfig{Log: store, Blocks: store, Now: f.Now})
	cfg.Registry, cfg.Now = reg, f.Now
	return store, anticheat.NewGuard(cfg), f
}

// loginHandler is a login command that fills in the principal, as a game's
// login handler does, and sees the force-close directive in its context.
func loginHandler(user int64, seen *anticheat.ForceClose) protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
		req.Principal = &protocol.Principal{UserKey: user}
		if fc, ok := anticheat.ForceCloseFrom(ctx); ok {
			*seen = fc
		}
		return &protocol.Response{Payload: json.RawMessage(`{"token":"t"}`)}, nil
	})
}

func TestGuardLoginSignature(t *testing.T) {
	store, g, _ := loginFixture(t, anticheat.GuardConfig{})
	ctx := context.Background()
	var seen anticheat.ForceClose
	h := protocol.Chain(loginHandler(5, &seen), g.Middleware())

	r := protocol.Dispatch(ctx, h, &protocol.Request{Command: "login", Payload: json.RawMessage(testSig)}, nil)
	if r.Code != protocol.CodeOK || string(r.Payload) != `{"token":"t"}` || !seen.At.IsZero() {
		t.Fatalf("good signature: %+v %q", r, r.Payload)
	}
	// A repackaged APK: login succeeds, the response carries the close time
	// (the window's end, as Rand is pinned), and the verdict is recorded.
	bad := `{"version":"1.0.0.0","apk_sig":"` + md5B + `"}`
	r = protocol.Dispatch(ctx, h, &protocol.Request{Command: "login", Payload: json.RawMessage(bad)}, nil)
	var out struct {
		CloseAt int64  `json:"close_at"`
		Token   string `json:"token"`
	}
	if err := json.Unmarshal(r.Payload, &out); err != nil || r.Code != protocol.CodeOK || out.Token != "t" {
		t.Fatalf("mismatch: %+v %q %v", r, r.Payload, err)
	}
	if want := t0.Add(10 * time.Minute); out.CloseAt != want.UnixMilli() || !seen.At.Equal(want) {
		t.Fatalf("close at %d (ctx %v), want %v", out.CloseAt, seen.At, want)
	}
	evs, _ := store.UserEvents(ctx, 5, 10)
	if len(evs) != 1 || evs[0].Kind != anticheat.KindSignature || evs[0].Reason != anticheat.ReasonSignatureMismatch || evs[0].ClientVersion != "1.0.0.0" {
		t.Fatalf("events %+v", evs)
	}
	// Unknown version: allowed, recorded.
	r = protocol.Dispatch(ctx, h, &protocol.Request{Command: "login", Payload: json.RawMessage(`{"version":"2.0.0.0","apk_sig":"` + md5A + `"}`)}, nil)
	evs, _ = store.UserEvents(ctx, 5, 10)
	if r.Code != protocol.CodeOK || len(evs) != 2 || evs[0].Reason != "unknown_version" {
		t.Fatalf("unknown version: %+v %+v", r, evs)
	}
	if st := g.Stats(); st.SignatureMismatch != 1 || st.UnknownVersions != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Malformed version or payload: bad request, handler not run.
	for _, p := range []string{`{"version":"x.y"}`, `{"version":1}`, `[`} {
		seen = anticheat.ForceClose{}
		if r := protocol.Dispatch(ctx, h, &protocol.Request{Command: "login", Payload: json.RawMessage(p)}, nil); r.Code != protocol.CodeBadRequest {
			t.Fatalf("%s: %+v", p, r)
		}
	}
}

func TestGuardLoginRejectUnknownAndBlocks(t *testing.T) {
	_, g, _ := loginFixture(t, anticheat.GuardConfig{RejectUnknownVersion: true, ForceCloseField: "-"})
	ctx := context.Background()
	var seen anticheat.ForceClose
	h := protocol.Chain(loginHandler(5, &seen), g.Middleware())
	r := protocol.Dispatch(ctx, h, &protocol.Request{Command: "login", Payload: json.RawMessage(`{"version":"3.0"}`)}, nil)
	if r.Code != protocol.CodeForbidden {
		t.Fatalf("unknown version: %+v", r)
	}
	bad := `{"version":"1.0.0.0","apk_sig":"` + md5B + `"}`
	r = protocol.Dispatch(ctx, h, &protocol.Request{Command: "login", Payload: json.RawMessage(bad)}, nil)
	if r.Code != protocol.CodeOK || string(r.Payload) != `{"token":"t"}` || seen.At.IsZero() {
		t.Fatalf("no member wanted, directive in ctx: %+v %q %v", r, r.Payload, seen)
	}
	// Blocked user: refused after the handler filled the principal.
	if err := g.Monitor().Block(ctx, 5, time.Hour, "test"); err != nil {
		t.Fatal(err)
	}
	r = protocol.Dispatch(ctx, h, &protocol.Request{Command: "login", Payload: json.RawMessage(testSig)}, nil)
	if r.Code != protocol.CodeBlocked || r.Payload != nil {
		t.Fatalf("blocked login: %+v", r)
	}
}

func TestGuardLoginUserHook(t *testing.T) {
	calls := 0
	_, g, _ := loginFixture(t, anticheat.GuardConfig{LoginUser: func(ctx context.Context, req *protocol.Request) (int64, bool, error) {
		return 9, true, nil
	}})
	ctx := context.Background()
	_ = g.Monitor().Block(ctx, 9, 0, "operator")
	h := protocol.Chain(okHandler(&calls), g.Middleware())
	r := protocol.Dispatch(ctx, h, &protocol.Request{Command: "login", Payload: json.RawMessage(testSig)}, nil)
	if r.Code != protocol.CodeBlocked || calls != 0 {
		t.Fatalf("%+v calls %d", r, calls)
	}
	_ = g.Monitor().Unblock(ctx, 9)
	r = protocol.Dispatch(ctx, h, &protocol.Request{Command: "login", Payload: json.RawMessage(testSig)}, nil)
	if r.Code != protocol.CodeOK || calls != 1 {
		t.Fatalf("%+v calls %d", r, calls)
	}
	// A failing hook fails the login.
	boom := errors.New("boom")
	_, g, _ = loginFixture(t, anticheat.GuardConfig{LoginUser: func(context.Context, *protocol.Request) (int64, bool, error) { return 0, false, boom }})
	h = protocol.Chain(okHandler(&calls), g.Middleware())
	if r := protocol.Dispatch(ctx, h, &protocol.Request{Command: "login"}, nil); r.Code != protocol.CodeInternal {
		t.Fatalf("%+v", r)
	}
}

func TestPolicyAndMonitor(t *testing.T) {
	ctx := context.Background()
	f := anticheattest.NewClock(t0)
	p := &anticheat.Policy{ByKind: map[anticheat.Kind]anticheat.Threshold{
		"receipt": {Flag: 1, TempBlock: 2, PermBlock: 3, TempBlockFor: time.Hour},
	}}
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Policy: p, Now: f.Now})
	want := []anticheat.Action{anticheat.ActionFlag, anticheat.ActionTempBlock, anticheat.ActionPermBlock}
	for i, w := range want {
		a, err := mon.Report(ctx, anticheat.Verdict{UserKey: 3, Kind: "receipt", Reason: "receipt_invalid"})
		if err != nil || a != w {
			t.Fatalf("report %d: %v %v, want %v", i, a, err, w)
		}
		err = mon.CheckBlocked(ctx, 3)
		if (w >= anticheat.ActionTempBlock) != errors.Is(err, anticheat.ErrBlocked) || (err != nil && protocol.CodeOf(err) != protocol.CodeBlocked) {
			t.Fatalf("after %v: %v", w, err)
		}
	}
	// Kinds without a threshold: none under this policy.
	if a, _ := mon.Report(ctx, anticheat.Verdict{UserKey: 4, Kind: "speed"}); a != anticheat.ActionNone {
		t.Fatalf("default threshold: %v", a)
	}
	// User 0 is never blocked.
	for range 3 {
		if a, _ := mon.Report(ctx, anticheat.Verdict{Kind: "receipt"}); a > anticheat.ActionFlag {
			t.Fatalf("user 0: %v", a)
		}
	}
	// A permanent block is not shortened by a later temporary one.
	mon2 := anticheat.NewMonitor(anticheat.MonitorConfig{Now: f.Now, Policy: &anticheat.Policy{Default: anticheat.Threshold{TempBlock: 1}}})
	_ = mon2.Block(ctx, 8, 0, "operator")
	if a, _ := mon2.Report(ctx, anticheat.Verdict{UserKey: 8, Kind: "speed"}); a != anticheat.ActionTempBlock {
		t.Fatal(a)
	}
	f.Advance(48 * time.Hour)
	if err := mon2.CheckBlocked(ctx, 8); !errors.Is(err, anticheat.ErrBlocked) {
		t.Fatalf("permanent block lost: %v", err)
	}
	if err := mon2.Block(ctx, 0, 0, "x"); err == nil {
		t.Fatal("block of user 0")
	}
	for a, s := range map[anticheat.Action]string{anticheat.ActionNone: "none", anticheat.ActionFlag: "flag", anticheat.ActionTempBlock: "temp_block", anticheat.ActionPermBlock: "perm_block", 9: "action_9"} {
		if a.String() != s {
			t.Fatalf("%d: %s", a, a)
		}
	}
}

func TestGuardRequireClientTime(t *testing.T) {
	g := anticheat.NewGuard(anticheat.GuardConfig{RequireClientTime: true})
	calls := 0
	h := protocol.Chain(okHandler(&calls), g.Middleware())
	p := &protocol.Principal{UserKey: 1}
	if r := protocol.Dispatch(context.Background(), h, &protocol.Request{Command: "x", Principal: p}, nil); r.Code != protocol.CodeBadRequest || calls != 0 {
		t.Fatalf("%+v", r)
	}
	if r := protocol.Dispatch(context.Background(), h, &protocol.Request{Command: "x", Principal: p, ClientTime: t0.UnixMilli(), ReceivedAt: t0}, nil); r.Code != protocol.CodeOK || calls != 1 {
		t.Fatalf("%+v", r)
	}
	// Unauthenticated requests are not judged.
	if r := protocol.Dispatch(context.Background(), h, &protocol.Request{Command: "x"}, nil); r.Code != protocol.CodeOK {
		t.Fatalf("%+v", r)
	}
	if st := g.Stats(); st.NoClientTime != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// failingBlocks is a Blocks whose lookups fail.
type failingBlocks struct{ anticheat.Blocks }

func (failingBlocks) GetBlock(context.Context, int64, time.Time) (anticheat.Block, bool, error) {
	return anticheat.Block{}, false, errors.New("db down")
}

func TestGuardStoreFailure(t *testing.T) {
	mon := anticheat.NewMonitor(anticheat.MonitorConfig{Blocks: failingBlocks{}})
	g := anticheat.NewGuard(anticheat.GuardConfig{Monitor: mon})
	calls := 0
	h := protocol.Chain(okHandler(&calls), g.Middleware())
	r := protocol.Dispatch(context.Background(), h, &protocol.Request{Command: "x", Principal: &protocol.Principal{UserKey: 1}}, nil)
	if r.Code != protocol.CodeInternal || calls != 0 || g.Stats().StoreErrors != 1 {
		t.Fatalf("%+v calls %d stats %+v", r, calls, g.Stats())
	}
}

func TestGuardSpeedStateSurvivesRelogin(t *testing.T) {
	for _, perSession := range []bool{false, true} {
		g := anticheat.NewGuard(anticheat.GuardConfig{SpeedPerSession: perSession})
		calls := 0
		h := protocol.Chain(okHandler(&calls), g.Middleware())
		// A 2x client that logs in again (new session id) every 2 s.
		for i := range 30 {
			el := time.Duration(i) * time.Second
			p := &protocol.Principal{UserKey: 1, SessionID: "s" + strconv.Itoa(i/2)}
			protocol.Dispatch(context.Background(), h, &protocol.Request{Command: "x", Principal: p, ClientTime: t0.Add(2 * el).UnixMilli(), ReceivedAt: t0.Add(el)}, nil)
		}
		if got := g.Stats().SpeedVerdicts; (got > 0) == perSession {
			t.Fatalf("per session %v: %d verdicts", perSession, got)
		}
	}
}
