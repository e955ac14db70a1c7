package anticheat

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/protocol"
)

// LoginFields names the members of the login command's JSON payload that
// carry the client's own signature.
type LoginFields struct {
	// Version is the client version member. Default "version".
	Version string
	// APKMD5 is the APK signature MD5 member (a string). Default "apk_sig".
	APKMD5 string
	// CertSHA256 is the certificate digests member (a string or an array
	// of strings). Default "cert_sha256".
	CertSHA256 string
}

// GuardConfig configures a Guard. The zero value works: a speed check with
// SpeedConfig defaults, an in-memory Monitor, blocks checked on every
// request, and no signature check.
type GuardConfig struct {
	// Monitor records verdicts and keeps blocks. Default NewMonitor of a
	// zero MonitorConfig.
	Monitor *Monitor
	// Speed judges clock drift. Default NewSpeedChecker(SpeedConfig{}).
	Speed *SpeedChecker
	// DisableSpeed turns the speed check off.
	DisableSpeed bool
	// SpeedPerSession keys the speed state by (user, Principal.SessionID).
	// Default: by user only, so logging in again does not give a cheater a
	// fresh reference (a hooked clock that restarts with the app shows as a
	// jump, tolerated once per JumpWindow).
	SpeedPerSession bool
	// Registry enables the signature check at login (Registry.CheckLogin).
	// Nil: no check.
	Registry *Registry
	// LoginCommand is the login command's name. Default "login".
	LoginCommand string
	// Fields says where the signature is in the login payload. Defaults on
	// LoginFields. Ignored when Signature is set.
	Fields LoginFields
	// Signature, if set, extracts the version and signature from a login
	// request instead of Fields.
	Signature func(req *protocol.Request) (version string, p Presented, err error)
	// LoginUser, if set, resolves the account of a login request before the
	// login handler runs, so a blocked user is refused before anything
	// happens. Nil: the block is checked after the login handler, on the
	// req.Principal it filled in (login handlers should set it).
	LoginUser func(ctx context.Context, req *protocol.Request) (userKey int64, ok bool, err error)
	// RejectUnknownVersion refuses a login whose version has no registry
	// entry (and there is no "latest") with ErrUnknownVersion. Default:
	// allowed, and recorded as a signature verdict with reason
	// unknown_version.
	RejectUnknownVersion bool
	// ForceCloseField is the member added to the login response's JSON
	// object payload with the force-close time (Unix ms) after a signature
	// mismatch. Default "close_at"; "-" adds nothing (the login handler can
	// read ForceCloseFrom(ctx) instead).
	ForceCloseField string
	// BlockAtLoginOnly checks the block list at login only, not on every
	// request (for a Blocks backend that costs a query).
	BlockAtLoginOnly bool
	// RequireClientTime refuses authenticated requests without a client
	// time (ClientTime 0) with ErrBadInput, so a client cannot dodge the
	// speed check by leaving it out. Default false: they are not judged.
	RequireClientTime bool
	// Now returns the current time; nil means time.Now. It is the server
	// clock.
	Now func() time.Time
	// Logger receives store failures (the request goes on). Nil: silent.
	Logger *slog.Logger
}

// Guard is the anti-cheat protocol middleware: on every authenticated
// request the block check and the speed check; at login the signature check
// and the block check.
type Guard struct {
	cfg   GuardConfig
	mon   *Monitor
	speed *SpeedChecker

	speedVerdicts, blockedRefusals, sigMismatches, unknownVersions, noClientTime, storeErrors atomic.Int64
}

// GuardStats counts what a Guard did since it was created.
type GuardStats struct {
	SpeedVerdicts     int64 // speed verdicts reported
	BlockedRefusals   int64 // requests and logins refused with CodeBlocked
	SignatureMismatch int64 // logins with a mismatching signature
	UnknownVersions   int64 // logins of a version without a registry entry
	NoClientTime      int64 // requests refused for lack of a client time
	StoreErrors       int64 // store failures (the request went on or failed)
}

// Stats returns the guard's counters.
func (g *Guard) Stats() GuardStats {
	return GuardStats{
		SpeedVerdicts: g.speedVerdicts.Load(), BlockedRefusals: g.blockedRefusals.Load(),
		SignatureMismatch: g.sigMismatches.Load(), UnknownVersions: g.unknownVersions.Load(),
		NoClientTime: g.noClientTime.Load(), StoreErrors: g.storeErrors.Load(),
	}
}

// NewGuard returns a guard with cfg's defaults filled in.
func NewGuard(cfg GuardConfig) *Guard {
	cfg.Now = clock.OrNow(cfg.Now)
	if cfg.Monitor == nil {
		cfg.Monitor = NewMonitor(MonitorConfig{Now: cfg.Now})
	}
	if cfg.Speed == nil && !cfg.DisableSpeed {
		cfg.Speed = NewSpeedChecker(SpeedConfig{Now: cfg.Now})
	}
	if cfg.DisableSpeed {
		cfg.Speed = nil
	}
	if cfg.LoginCommand == "" {
		cfg.LoginCommand = "login"
	}
	if cfg.Fields.Version == "" {
		cfg.Fields.Version = "version"
	}
	if cfg.Fields.APKMD5 == "" {
		cfg.Fields.APKMD5 = "apk_sig"
	}
	if cfg.Fields.CertSHA256 == "" {
		cfg.Fields.CertSHA256 = "cert_sha256"
	}
	if cfg.ForceCloseField == "" {
		cfg.ForceCloseField = "close_at"
	}
	return &Guard{cfg: cfg, mon: cfg.Monitor, speed: cfg.Speed}
}

// Monitor returns the guard's monitor.
func (g *Guard) Monitor() *Monitor { return g.cfg.Monitor }

// Speed returns the guard's speed checker (nil when disabled).
func (g *Guard) Speed() *SpeedChecker { return g.speed }

// Middleware returns the protocol middleware. Put it after the session
// middleware (which fills req.Principal) and before idempotency. Requests
// without a Principal, other than the login command, pass unchecked. A
// failing block lookup fails the request with the store's error (fail
// closed); a failure to record a verdict is logged and the request goes on.
func (g *Guard) Middleware() protocol.Middleware {
	return func(next protocol.Handler) protocol.Handler {
		return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
			if req.Command == g.cfg.LoginCommand {
				return g.login(ctx, req, next)
			}
			if err := g.check(ctx, req); err != nil {
				return nil, err
			}
			return next.Serve(ctx, req)
		})
	}
}

// check is the per-request path: block lookup and speed check.
func (g *Guard) check(ctx context.Context, req *protocol.Request) error {
	p := req.Principal
	if p == nil {
		return nil
	}
	now := req.ReceivedAt
	if now.IsZero() {
		now = g.cfg.Now()
	}
	if !g.cfg.BlockAtLoginOnly {
		if err := g.mon.checkBlockedAt(ctx, p.UserKey, now); err != nil {
			return g.storeErr(ctx, err)
		}
	}
	if req.ClientTime == 0 && g.cfg.RequireClientTime {
		g.noClientTime.Add(1)
		return newErr(ErrBadInput, "request without client time")
	}
	if g.speed == nil {
		return nil
	}
	sid := ""
	if g.cfg.SpeedPerSession {
		sid = p.SessionID
	}
	res := g.speed.Observe(p.UserKey, sid, req.ClientTime, now)
	if !res.Flagged() {
		return nil
	}
	g.speedVerdicts.Add(1)
	a, err := g.mon.Report(ctx, Verdict{UserKey: p.UserKey, Kind: KindSpeed, Reason: res.Reason,
		Detail: "drift " + res.Drift.String() + " cmd " + req.Command, ClientVersion: p.ClientVersion, At: now})
	if err != nil {
		g.logErr(ctx, "record speed verdict", err)
		return nil
	}
	if a >= ActionTempBlock {
		return g.storeErr(ctx, g.mon.checkBlockedAt(ctx, p.UserKey, now))
	}
	return nil
}

// storeErr passes ErrBlocked through and logs a store failure, which is
// returned classified: a store whose backend is down or slow gives
// protocol.CodeUnavailable (retryable), whatever store the Guard runs on;
// other failures keep their code (CodeInternal for a bug).
func (g *Guard) storeErr(ctx context.Context, err error) error {
	switch {
	case err == nil:
	case IsReason(err, ErrBlocked.Reason):
		g.blockedRefusals.Add(1)
	default:
		g.logErr(ctx, "block lookup", err)
		return backend.Classify(err)
	}
	return err
}

func (g *Guard) logErr(ctx context.Context, what string, err error) {
	g.storeErrors.Add(1)
	if g.cfg.Logger != nil {
		g.cfg.Logger.ErrorContext(ctx, "anticheat: "+what, "err", err)
	}
}

type forceCloseKey struct{}

// ForceCloseFrom returns the force-close directive the Guard decided for
// this login request, if any: login handlers that build their own payload
// can pass it on.
func ForceCloseFrom(ctx context.Context) (ForceClose, bool) {
	fc, ok := ctx.Value(forceCloseKey{}).(ForceClose)
	return fc, ok
}

func (g *Guard) login(ctx context.Context, req *protocol.Request, next protocol.Handler) (*protocol.Response, error) {
	now := g.cfg.Now()
	var user int64
	checked := false
	if g.cfg.LoginUser != nil {
		u, ok, err := g.cfg.LoginUser(ctx, req)
		if err != nil {
			return nil, err
		}
		if ok {
			user, checked = u, true
			if err := g.mon.checkBlockedAt(ctx, u, now); err != nil {
				return nil, g.storeErr(ctx, err)
			}
		}
	}
	var verdict *Verdict
	var fc ForceClose
	if g.cfg.Registry != nil {
		version, p, err := g.presented(req)
		if err != nil {
			return nil, err
		}
		sig, err := g.cfg.Registry.CheckLogin(ctx, version, p)
		if err != nil {
			return nil, err
		}
		switch sig.Result {
		case SignatureMismatch:
			g.sigMismatches.Add(1)
			fc = sig.ForceClose
			ctx = context.WithValue(ctx, forceCloseKey{}, fc)
		case SignatureUnknownVersion:
			g.unknownVersions.Add(1)
			if g.cfg.RejectUnknownVersion {
				return nil, newErr(ErrUnknownVersion, "%q", truncate(sig.Version, maxVersionLen))
			}
		}
		if v, ok := sig.Verdict(0); ok {
			v.At = now
			verdict = &v
		}
	}
	resp, err := next.Serve(ctx, req)
	if !checked && req.Principal != nil {
		user = req.Principal.UserKey
	}
	if verdict != nil {
		// Always logged, whether or not the login itself succeeded.
		verdict.UserKey = user
		if _, rerr := g.mon.Report(ctx, *verdict); rerr != nil {
			g.logErr(ctx, "record signature verdict", rerr)
		}
	}
	if err != nil {
		return nil, err
	}
	if !checked && req.Principal != nil {
		if err := g.mon.checkBlockedAt(ctx, user, now); err != nil {
			return nil, g.storeErr(ctx, err)
		}
	}
	if verdict != nil && verdict.Reason == ReasonSignatureMismatch && g.cfg.ForceCloseField != "-" {
		resp = addMember(resp, g.cfg.ForceCloseField, fc.At.UnixMilli())
	}
	return resp, nil
}

// presented reads the version and signature from a login request.
func (g *Guard) presented(req *protocol.Request) (string, Presented, error) {
	if g.cfg.Signature != nil {
		return g.cfg.Signature(req)
	}
	var p Presented
	if len(req.Payload) == 0 {
		return Latest, p, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(req.Payload, &m); err != nil {
		return "", p, newErr(ErrBadInput, "login payload: %v", err)
	}
	version := Latest
	if raw, ok := m[g.cfg.Fields.Version]; ok {
		if err := json.Unmarshal(raw, &version); err != nil {
			return "", p, newErr(ErrBadVersion, "version member is not a string")
		}
	}
	if raw, ok := m[g.cfg.Fields.APKMD5]; ok {
		_ = json.Unmarshal(raw, &p.APKMD5) // a non-string is simply not comparable
	}
	if raw, ok := m[g.cfg.Fields.CertSHA256]; ok {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			p.CertSHA256 = []string{one}
		} else {
			_ = json.Unmarshal(raw, &p.CertSHA256)
		}
	}
	return version, p, nil
}

// addMember returns a copy of resp whose JSON object payload starts with
// "name":v. A payload that is not an object is left as it is.
func addMember(resp *protocol.Response, name string, v int64) *protocol.Response {
	var out protocol.Response
	if resp != nil {
		out = *resp
	}
	member := strconv.AppendInt([]byte(strconv.Quote(name)+":"), v, 10)
	body := bytes.TrimSpace(out.Payload)
	switch {
	case len(body) == 0:
		out.Payload = append(append([]byte{'{'}, member...), '}')
	case body[0] == '{':
		rest := bytes.TrimSpace(body[1:])
		p := append([]byte{'{'}, member...)
		if len(rest) > 0 && rest[0] != '}' {
			p = append(p, ',')
		}
		out.Payload = append(p, rest...)
	}
	return &out
}
