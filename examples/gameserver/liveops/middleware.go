package liveops

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/protocol"
	"github.com/madang-io/madang/shard"
)

// UpdateRequired is the payload of a CodeClientTooOld answer.
type UpdateRequired struct {
	MinVersion string `json:"min_version"`
	UpdateURL  string `json:"update_url,omitempty"`
}

// MaintenanceNotice is the payload of a CodeMaintenance answer.
type MaintenanceNotice struct {
	Scope   string `json:"scope"` // "global" or "user"
	Message string `json:"message"`
	EndsAt  int64  `json:"ends_at"` // Unix ms; 0 unknown
}

// LoginInfo is the "liveops" member added to a successful login answer.
type LoginInfo struct {
	DataVersion     string `json:"data_version,omitempty"`
	AssetVersion    string `json:"asset_version,omitempty"`
	ReviewServerURL string `json:"review_server_url,omitempty"`
	// DirectiveCode is DirectiveForceClose for a repackaged client, else 0.
	DirectiveCode int   `json:"directive_code,omitempty"`
	CloseAt       int64 `json:"close_at,omitempty"` // Unix ms, with DirectiveCode
}

func refusal(code protocol.Code, msg string, payload any) *protocol.Response {
	b, _ := json.Marshal(payload) // plain structs: cannot fail
	return &protocol.Response{Code: code, Message: msg, Payload: b}
}

func (m *Manager) tooOldResp(pp PlatformPolicy) *protocol.Response {
	m.tooOld.Add(1)
	return refusal(protocol.CodeClientTooOld, "update required", UpdateRequired{MinVersion: pp.MinVersion, UpdateURL: pp.UpdateURL})
}

func (m *Manager) maintResp(p *Policy, scope string, userKey int64) *protocol.Response {
	m.maint.Add(1)
	n := MaintenanceNotice{Scope: scope}
	if scope == "user" {
		if u := p.users[userKey]; u != nil {
			n.Message = u.Comment
		}
	} else {
		n.Message = p.Maintenance.Message
		if !p.Maintenance.EndsAt.IsZero() {
			n.EndsAt = p.Maintenance.EndsAt.UnixMilli()
		}
	}
	if n.Message == "" {
		n.Message = "maintenance"
	}
	return refusal(protocol.CodeMaintenance, n.Message, n)
}

// Middleware returns the protocol middleware. Put it after the session
// middleware and the anticheat Guard (whose force-close decision it passes
// on to the login answer) and before the mux. It gates every command but
// Config.Exempt: maintenance and the minimum version; at login it also adds
// the LoginInfo member.
func (m *Manager) Middleware() protocol.Middleware {
	return func(next protocol.Handler) protocol.Handler {
		return protocol.HandlerFunc(func(ctx context.Context, req *protocol.Request) (*protocol.Response, error) {
			if m.exempt[req.Command] {
				return next.Serve(ctx, req)
			}
			if req.Command == m.cfg.LoginCommand {
				return m.login(ctx, req, next)
			}
			p := m.policy.Load()
			var user int64
			if req.Principal != nil {
				user = req.Principal.UserKey
			}
			if scope := p.InMaintenance(user); scope != "" {
				return m.maintResp(p, scope, user), nil
			}
			if req.Principal != nil {
				if old, pp := p.TooOld(req.Principal.Platform, req.Principal.ClientVersion); old {
					return m.tooOldResp(pp), nil
				}
				m.act.seen(user, m.cfg.Now())
			}
			return next.Serve(ctx, req)
		})
	}
}

func (m *Manager) login(ctx context.Context, req *protocol.Request, next protocol.Handler) (*protocol.Response, error) {
	p := m.policy.Load()
	mp := memberPool.Get().(*[]member)
	in, err := parseLoginPayload(req.Payload, *mp)
	defer func() {
		if in.members != nil {
			*mp = in.members[:0]
		}
		memberPool.Put(mp)
	}()
	if err != nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "login payload is not a JSON object")
	}
	str := in.str // absent or not a string: ""
	platform, version := str(m.cfg.PlatformField), str(m.cfg.VersionField)
	build, known := p.Build(platform, version)
	review := known && build.Review
	// newAccount: LoginUser found no account, so the login creates it (or
	// a racing login of the same identity just did), dated after lookupAt.
	var newAccount bool
	var lookupAt time.Time
	if !review {
		if old, pp := p.TooOld(platform, version); old {
			return m.tooOldResp(pp), nil
		}
		if m.cfg.LoginUser != nil {
			user, ok, err := m.cfg.LoginUser(ctx, req.Payload)
			if err != nil {
				return nil, err
			}
			if !ok {
				user = 0 // a new account: not on the allow-list
				newAccount, lookupAt = true, m.cfg.Now()
			}
			if scope := p.InMaintenance(user); scope != "" {
				return m.maintResp(p, scope, user), nil
			}
		} else if p.Maintenance.Active && len(p.Maintenance.AllowUsers) == 0 {
			return m.maintResp(p, "global", 0), nil
		}
	}
	// anticheat's login signature check (the Guard's): only a mismatch is
	// acted on; a version without an entry passes unrecorded.
	var sig anticheat.LoginSignature
	if m.cfg.Registry != nil && slices.Contains(m.cfg.APKPlatforms, platform) {
		var pr anticheat.Presented
		pr.APKMD5 = str(m.cfg.APKField)
		_ = json.Unmarshal(in.raw(m.cfg.CertField), &pr.CertSHA256) // absent or malformed: none
		var err error
		if sig, err = m.cfg.Registry.CheckLogin(ctx, version, pr); err != nil {
			return nil, err
		}
	}
	mismatch := sig.Result == anticheat.SignatureMismatch
	fc := sig.ForceClose
	resp, err := next.Serve(ctx, req)
	var user int64
	if req.Principal != nil {
		user = req.Principal.UserKey
	}
	if v, _ := sig.Verdict(user); mismatch && m.cfg.Monitor != nil {
		// Recorded whether or not the login succeeded.
		if _, rerr := m.cfg.Monitor.Report(ctx, v); rerr != nil {
			m.log.Warn("liveops: record signature verdict", "err", rerr)
		}
	}
	if err != nil {
		return nil, err
	}
	if !review && m.cfg.LoginUser == nil {
		if scope := p.InMaintenance(user); scope != "" {
			return m.maintResp(p, scope, user), nil
		}
	}
	if resp != nil && resp.Code != protocol.CodeOK {
		return resp, nil
	}
	now := m.cfg.Now()
	if user > 0 {
		m.act.seen(user, now)
		// A new account's row dates this login for DAU when it was created
		// on the same UTC day (DAUCountsNewAccounts).
		counted := m.cfg.DAUCountsNewAccounts && newAccount && day(lookupAt) == day(now)
		if !counted {
			if err := m.recordLogin(ctx, user, now); err != nil {
				m.log.Warn("liveops: record login", "user", user, "err", err)
			}
		}
	}
	var info LoginInfo
	if known {
		info.DataVersion, info.AssetVersion = build.DataVersion, build.AssetVersion
		if review {
			info.ReviewServerURL = build.ReviewURL
			m.review.Add(1)
		}
	}
	if m.cfg.DataVersion != nil {
		info.DataVersion = m.cfg.DataVersion(ctx, version)
	}
	if !mismatch { // a Guard with its own registry may have decided
		if gfc, ok := anticheat.ForceCloseFrom(ctx); ok {
			mismatch, fc = true, gfc
		}
	}
	if mismatch {
		info.DirectiveCode, info.CloseAt = DirectiveForceClose, fc.At.UnixMilli()
		m.forceClosed.Add(1)
	}
	return addMember(resp, "liveops", info), nil
}

// addMember adds name: v to the JSON object payload of resp (a nil
// response is an empty CodeOK one). A payload that is not an object is
// left as it is.
func addMember(resp *protocol.Response, name string, v any) *protocol.Response {
	if resp == nil {
		resp = &protocol.Response{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return resp
	}
	out, ok := withMember(resp.Payload, name, b)
	if !ok {
		obj := map[string]json.RawMessage{}
		if len(resp.Payload) > 0 {
			if err := json.Unmarshal(resp.Payload, &obj); err != nil {
				return resp
			}
		}
		obj[name] = b
		if out, err = json.Marshal(obj); err != nil {
			return resp
		}
	}
	c := *resp
	c.Payload = out
	return &c
}

// day is the UTC day number of t (days since 1970-01-01).
func day(t time.Time) int64 { return t.UTC().Unix() / 86400 }

func (m *Manager) recordLogin(ctx context.Context, user int64, now time.Time) error {
	return m.write(ctx, func(ctx context.Context) error {
		_, err := m.cfg.DB.ExecContext(ctx, m.dialect.InsertIgnore()+" liveops_logins (day, user_key) VALUES (?, ?)", day(now), user)
		return err
	})
}

// write runs fn, a write to DB, through Config.Write (directly without).
func (m *Manager) write(ctx context.Context, fn func(ctx context.Context) error) error {
	if m.cfg.Write == nil {
		return fn(ctx)
	}
	return m.cfg.Write(ctx, fn)
}

// DAU returns the number of distinct users who logged in on t's UTC day
// (with Config.DAUCountsNewAccounts, those and the accounts created that
// day).
func (m *Manager) DAU(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	d := day(t)
	if !m.cfg.DAUCountsNewAccounts {
		err := m.cfg.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM liveops_logins WHERE day = ?", d).Scan(&n)
		return n, wrap(err)
	}
	err := m.cfg.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT user_key FROM liveops_logins WHERE day = ?"+
		" UNION SELECT user_key FROM shard_accounts WHERE created_at >= ? AND created_at < ?) u",
		d, d*86400*1000, (d+1)*86400*1000).Scan(&n)
	return n, wrap(err)
}

// NRU returns the number of accounts created on t's UTC day (the shard
// package's shard_accounts in the same common database).
func (m *Manager) NRU(ctx context.Context, t time.Time) (int64, error) {
	start := time.Unix(day(t)*86400, 0)
	var n int64
	err := m.cfg.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM shard_accounts WHERE created_at >= ? AND created_at < ?",
		start.UnixMilli(), start.Add(24*time.Hour).UnixMilli()).Scan(&n)
	return n, wrap(err)
}

// CCU returns the number of users with a request within ActiveWindow: on
// every server with Redis (as of the servers' last flushes), else on this
// one.
func (m *Manager) CCU(ctx context.Context) (int64, error) { return m.act.count(ctx) }

// RecordCCU samples the CCU now and keeps it as today's (UTC) peak in
// liveops_ccu_daily when it is above the peak this Manager last stored for
// the day (several servers: each keeps the larger figure, GREATEST / MAX in
// one statement). The Manager calls it every PollInterval; call it
// yourself when PollInterval is off. It returns the CCU sampled.
func (m *Manager) RecordCCU(ctx context.Context) (int64, error) {
	n, err := m.CCU(ctx)
	if err != nil {
		return 0, err
	}
	now := m.cfg.Now()
	d := day(now)
	m.peakMu.Lock()
	defer m.peakMu.Unlock()
	if d == m.peakDay && n <= m.peak {
		return n, nil
	}
	q := "INSERT INTO liveops_ccu_daily (day, peak, updated_at) VALUES (?, ?, ?) ON CONFLICT(day) DO UPDATE SET peak = MAX(peak, excluded.peak), updated_at = excluded.updated_at"
	if m.dialect == shard.DialectMySQL {
		q = "INSERT INTO liveops_ccu_daily (day, peak, updated_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE peak = GREATEST(peak, VALUES(peak)), updated_at = VALUES(updated_at)"
	}
	if err := m.write(ctx, func(ctx context.Context) error {
		_, err := m.cfg.DB.ExecContext(ctx, q, d, n, now.UnixMilli())
		return err
	}); err != nil {
		return n, wrap(err)
	}
	m.peakDay, m.peak = d, n
	return n, nil
}

// PeakCCU returns the highest CCU recorded (RecordCCU) on t's UTC day by
// any server, 0 when none was.
func (m *Manager) PeakCCU(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := m.cfg.DB.QueryRowContext(ctx, "SELECT peak FROM liveops_ccu_daily WHERE day = ?", day(t)).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, wrap(err)
}
