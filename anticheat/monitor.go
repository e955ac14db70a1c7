package anticheat

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/internal/clock"
)

// Action is what the policy makes of a user's counts.
type Action int

// Actions, in increasing severity.
const (
	// ActionNone: recorded only.
	ActionNone Action = iota
	// ActionFlag: recorded and flagged for an operator's attention (logged
	// at warn level and passed to MonitorConfig.OnAction).
	ActionFlag
	// ActionTempBlock: the user is blocked for Threshold.TempBlockFor.
	ActionTempBlock
	// ActionPermBlock: the user is blocked for good.
	ActionPermBlock
)

// String returns "none", "flag", "temp_block" or "perm_block".
func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionFlag:
		return "flag"
	case ActionTempBlock:
		return "temp_block"
	case ActionPermBlock:
		return "perm_block"
	}
	return "action_" + strconv.Itoa(int(a))
}

// Threshold turns one kind's count into an action: the most severe action
// whose threshold the count has reached. A zero threshold never triggers.
type Threshold struct {
	// Flag, TempBlock and PermBlock are the counts at which each action
	// starts.
	Flag, TempBlock, PermBlock int64
	// TempBlockFor is a temporary block's length. Default 24 h.
	TempBlockFor time.Duration
}

// Policy maps verdict kinds to thresholds.
type Policy struct {
	// ByKind holds each kind's threshold.
	ByKind map[Kind]Threshold
	// Default applies to kinds not in ByKind.
	Default Threshold
}

// DefaultPolicy is the policy a Monitor uses when none is configured:
// every verdict is flagged; speed: 24 h block at 5, permanent at 20; stat:
// 24 h at 10, permanent at 50; receipt: 24 h at 3, permanent at 10;
// signature and integrity: flag only (the force-close directive and the
// game's own policy handle them). Counts are per user over all time.
func DefaultPolicy() *Policy {
	return &Policy{
		ByKind: map[Kind]Threshold{
			KindSpeed:   {Flag: 1, TempBlock: 5, PermBlock: 20},
			KindStat:    {Flag: 1, TempBlock: 10, PermBlock: 50},
			KindReceipt: {Flag: 1, TempBlock: 3, PermBlock: 10},
		},
		Default: Threshold{Flag: 1},
	}
}

// Decide returns the action for a user whose count of kind is n.
func (p *Policy) Decide(kind Kind, n int64) (Action, time.Duration) {
	t, ok := p.ByKind[kind]
	if !ok {
		t = p.Default
	}
	d := t.TempBlockFor
	if d <= 0 {
		d = 24 * time.Hour
	}
	switch {
	case t.PermBlock > 0 && n >= t.PermBlock:
		return ActionPermBlock, 0
	case t.TempBlock > 0 && n >= t.TempBlock:
		return ActionTempBlock, d
	case t.Flag > 0 && n >= t.Flag:
		return ActionFlag, 0
	}
	return ActionNone, 0
}

// MonitorConfig configures a Monitor. The zero value works: an in-memory
// store and DefaultPolicy.
type MonitorConfig struct {
	// Log records verdicts. Default: a MemoryStore (shared with Blocks
	// when both are defaulted).
	Log Log
	// Blocks is the block list. Default: as Log.
	Blocks Blocks
	// Policy turns counts into actions. Default DefaultPolicy().
	Policy *Policy
	// Now returns the current time; nil means time.Now. It dates verdicts
	// and blocks.
	Now func() time.Time
	// Logger receives flags and blocks. Nil: silent.
	Logger *slog.Logger
	// OnAction, if set, is called after each verdict is recorded with the
	// action taken (for metrics or alerts). It must not block.
	OnAction func(v Verdict, a Action)
}

// Monitor records verdicts in the hack log, applies the policy and keeps the
// block list. Safe for concurrent use.
type Monitor struct {
	cfg MonitorConfig
}

// NewMonitor returns a monitor with cfg's defaults filled in.
func NewMonitor(cfg MonitorConfig) *Monitor {
	cfg.Now = clock.OrNow(cfg.Now)
	if cfg.Log == nil || cfg.Blocks == nil {
		m := NewMemoryStore(MemoryConfig{Now: cfg.Now})
		if cfg.Log == nil {
			cfg.Log = m
		}
		if cfg.Blocks == nil {
			cfg.Blocks = m
		}
	}
	if cfg.Policy == nil {
		cfg.Policy = DefaultPolicy()
	}
	return &Monitor{cfg: cfg}
}

// Log returns the hack log (for operator queries).
func (m *Monitor) Log() Log { return m.cfg.Log }

// Blocks returns the block list (for operator tools).
func (m *Monitor) Blocks() Blocks { return m.cfg.Blocks }

// Report records v (dated now when v.At is zero), applies the policy to the
// user's count of v.Kind and, for a block action, blocks the user (a
// longer existing block is kept). User key 0 (unknown user) is recorded but
// never blocked.
func (m *Monitor) Report(ctx context.Context, v Verdict) (Action, error) {
	if v.At.IsZero() {
		v.At = m.cfg.Now()
	}
	n, _, err := m.cfg.Log.Record(ctx, Event{UserKey: v.UserKey, Kind: v.Kind, Reason: v.Reason, Detail: v.Detail, ClientVersion: v.ClientVersion, At: v.At})
	if err != nil {
		return ActionNone, backend.Classify(err)
	}
	a, d := m.cfg.Policy.Decide(v.Kind, n)
	if v.UserKey == 0 && a > ActionFlag {
		a = ActionFlag
	}
	if a >= ActionTempBlock {
		b := Block{UserKey: v.UserKey, Reason: string(v.Kind) + ": " + string(v.Reason), At: v.At}
		if a == ActionTempBlock {
			b.Until = v.At.Add(d)
		}
		old, ok, err := m.cfg.Blocks.GetBlock(ctx, v.UserKey, v.At)
		if err != nil {
			return a, backend.Classify(err)
		}
		if !ok || !old.Permanent() && (b.Permanent() || b.Until.After(old.Until)) {
			if err := m.cfg.Blocks.PutBlock(ctx, b); err != nil {
				return a, backend.Classify(err)
			}
		}
	}
	if m.cfg.Logger != nil && a >= ActionFlag {
		m.cfg.Logger.WarnContext(ctx, "anticheat: verdict", "user", v.UserKey, "kind", string(v.Kind), "reason", string(v.Reason),
			"detail", v.Detail, "version", v.ClientVersion, "count", n, "action", a.String())
	}
	if m.cfg.OnAction != nil {
		m.cfg.OnAction(v, a)
	}
	return a, nil
}

// CheckBlocked returns nil, or an error matching ErrBlocked (result code
// protocol.CodeBlocked) when the user is blocked now. It does not allocate
// when the user is not blocked and the Blocks backend does not.
func (m *Monitor) CheckBlocked(ctx context.Context, userKey int64) error {
	return m.checkBlockedAt(ctx, userKey, m.cfg.Now())
}

func (m *Monitor) checkBlockedAt(ctx context.Context, userKey int64, now time.Time) error {
	b, ok, err := m.cfg.Blocks.GetBlock(ctx, userKey, now)
	if err != nil {
		return backend.Classify(err)
	}
	if !ok {
		return nil
	}
	if b.Permanent() {
		return newErr(ErrBlocked, "user %d permanently: %s", userKey, b.Reason)
	}
	return newErr(ErrBlocked, "user %d until %s: %s", userKey, b.Until.UTC().Format(time.RFC3339), b.Reason)
}

// Block blocks a user by an operator's decision; for 0 it is permanent.
func (m *Monitor) Block(ctx context.Context, userKey int64, d time.Duration, reason string) error {
	if userKey == 0 {
		return errors.New("anticheat: block of user 0")
	}
	now := m.cfg.Now()
	b := Block{UserKey: userKey, Reason: reason, At: now}
	if d > 0 {
		b.Until = now.Add(d)
	}
	return backend.Classify(m.cfg.Blocks.PutBlock(ctx, b))
}

// Unblock lifts a user's block.
func (m *Monitor) Unblock(ctx context.Context, userKey int64) error {
	return backend.Classify(m.cfg.Blocks.DeleteBlock(ctx, userKey))
}
