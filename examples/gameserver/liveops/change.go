package liveops

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/madang-io/madang/anticheat"
)

// change runs fn and bumps liveops_meta.version in one transaction, then
// reloads here and notifies the other servers.
func (m *Manager) change(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx, now int64) error) error {
	if m.closed.Load() {
		return ErrClosed
	}
	// One write to DB, in Config.Write's queue.
	err := m.write(ctx, func(ctx context.Context) error {
		tx, err := m.cfg.DB.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("liveops: change: %w", err)
		}
		defer tx.Rollback()
		now := m.cfg.Now().UnixMilli()
		if err := fn(ctx, tx, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE liveops_meta SET version = version + 1 WHERE id = 1"); err != nil {
			return fmt.Errorf("liveops: change: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("liveops: change: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := m.Refresh(ctx); err != nil {
		m.log.Warn("liveops: reload after change", "err", err)
	}
	if m.cfg.Redis != nil {
		if err := m.cfg.Redis.Publish(ctx, m.cfg.Channel, "changed").Err(); err != nil {
			// The others still see the change at their next poll.
			m.log.Warn("liveops: publish change", "err", err)
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// InvalidError is an ErrInvalid about one input field. Errors of every
// change (events, platforms, client versions, maintenance, batches) are
// InvalidErrors when the problem is one field's.
type InvalidError struct {
	// Field is the field's JSON name (Event's "start", "time_zone", ...).
	Field string
	// Msg says what is wrong (it names the field too).
	Msg string
}

// Error returns "liveops: invalid input: " and Msg.
func (e *InvalidError) Error() string { return ErrInvalid.Error() + ": " + e.Msg }

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// invalidField is invalid about field.
func invalidField(field, format string, args ...any) error {
	return &InvalidError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func checkLen(name, v string, max int) error {
	if len(v) > max || !utf8.ValidString(v) {
		return invalidField(name, "%s must be valid UTF-8 of at most %d bytes", name, max)
	}
	return nil
}

func checkPlatform(p string) error {
	if p == "" {
		return invalidField("platform", "platform is required")
	}
	return checkLen("platform", p, MaxPlatformLen)
}

// SetPlatform creates or replaces a platform's version rule.
func (m *Manager) SetPlatform(ctx context.Context, p PlatformPolicy) error {
	if err := checkPlatform(p.Platform); err != nil {
		return err
	}
	if p.MinVersion != "" {
		v, err := anticheat.CanonicalVersion(p.MinVersion)
		if err != nil || v == anticheat.Latest {
			return invalidField("min_version", "min_version %q: want x.y.z.w", p.MinVersion)
		}
		p.MinVersion = v
	}
	if err := checkLen("update_url", p.UpdateURL, MaxURLLen); err != nil {
		return err
	}
	return m.change(ctx, func(ctx context.Context, tx *sql.Tx, now int64) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO liveops_platforms (platform, min_version, update_url, updated_at) VALUES (?, ?, ?, ?)"+
			m.dialect.Upsert([]string{"platform"}, "min_version", "update_url", "updated_at"),
			p.Platform, p.MinVersion, p.UpdateURL, now)
		return wrap(err)
	})
}

// DeletePlatform removes a platform's rule (every version may play).
func (m *Manager) DeletePlatform(ctx context.Context, platform string) error {
	if err := checkPlatform(platform); err != nil {
		return err
	}
	return m.change(ctx, func(ctx context.Context, tx *sql.Tx, _ int64) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM liveops_platforms WHERE platform = ?", platform)
		return wrap(err)
	})
}

// SetClientVersion creates or replaces a build's entry. The version is
// stored canonical ("1.2" → "1.2.0.0").
func (m *Manager) SetClientVersion(ctx context.Context, c ClientVersion) error {
	if err := checkPlatform(c.Platform); err != nil {
		return err
	}
	v, err := anticheat.CanonicalVersion(c.Version)
	if err != nil || v == anticheat.Latest {
		return invalidField("version", "version %q: want x.y.z.w", c.Version)
	}
	c.Version = v
	if c.DataVersion != "" && m.cfg.DataVersion != nil {
		return invalidField("data_version", "data_version is set by the game data catalog's client version mappings, not here")
	}
	for name, s := range map[string]string{"data_version": c.DataVersion, "asset_version": c.AssetVersion} {
		if err := checkLen(name, s, MaxDataVersionLen); err != nil {
			return err
		}
	}
	if err := checkLen("review_url", c.ReviewURL, MaxURLLen); err != nil {
		return err
	}
	if c.Review && c.ReviewURL == "" {
		return invalidField("review_url", "a review build needs a review_url")
	}
	review := 0
	if c.Review {
		review = 1
	}
	return m.change(ctx, func(ctx context.Context, tx *sql.Tx, now int64) error {
		_, err := tx.ExecContext(ctx, "INSERT INTO liveops_client_versions (platform, version, review, review_url, data_version, asset_version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"+
			m.dialect.Upsert([]string{"platform", "version"}, "review", "review_url", "data_version", "asset_version", "updated_at"),
			c.Platform, c.Version, review, c.ReviewURL, c.DataVersion, c.AssetVersion, now)
		return wrap(err)
	})
}

// DeleteClientVersion removes a build's entry.
func (m *Manager) DeleteClientVersion(ctx context.Context, platform, version string) error {
	if err := checkPlatform(platform); err != nil {
		return err
	}
	v, err := anticheat.CanonicalVersion(version)
	if err != nil {
		return invalidField("version", "version %q", version)
	}
	return m.change(ctx, func(ctx context.Context, tx *sql.Tx, _ int64) error {
		_, err := tx.ExecContext(ctx, "DELETE FROM liveops_client_versions WHERE platform = ? AND version = ?", platform, v)
		return wrap(err)
	})
}

// SetMaintenance replaces the global maintenance state.
func (m *Manager) SetMaintenance(ctx context.Context, mt Maintenance) error {
	if err := checkLen("message", mt.Message, MaxMessageLen); err != nil {
		return err
	}
	if err := checkLen("operator", mt.Operator, MaxOperatorLen); err != nil {
		return err
	}
	if len(mt.AllowUsers) > MaxAllowUsers {
		return invalidField("allow_users", "at most %d allow-listed users", MaxAllowUsers)
	}
	ids := make([]string, 0, len(mt.AllowUsers))
	for _, u := range mt.AllowUsers {
		if u <= 0 {
			return invalidField("allow_users", "user key %d", u)
		}
		ids = append(ids, strconv.FormatInt(u, 10))
	}
	var ends int64
	if !mt.EndsAt.IsZero() {
		ends = mt.EndsAt.UnixMilli()
	}
	active := 0
	if mt.Active {
		active = 1
	}
	return m.change(ctx, func(ctx context.Context, tx *sql.Tx, now int64) error {
		_, err := tx.ExecContext(ctx, "UPDATE liveops_maintenance SET active = ?, message = ?, ends_at = ?, allow_users = ?, operator = ?, updated_at = ? WHERE id = 1",
			active, mt.Message, ends, strings.Join(ids, ","), mt.Operator, now)
		return wrap(err)
	})
}

func checkBatch(keys []int64) error {
	if len(keys) == 0 || len(keys) > MaxBatch {
		return invalidField("user_keys", "a batch has 1..%d user keys, not %d", MaxBatch, len(keys))
	}
	for _, k := range keys {
		if k <= 0 {
			return invalidField("user_keys", "user key %d", k)
		}
	}
	return nil
}

// AddUserMaintenance puts up to MaxBatch users in maintenance, with the
// operator's name and a comment (shown to the users as the message). Users
// already in it get the new operator and comment.
func (m *Manager) AddUserMaintenance(ctx context.Context, keys []int64, operator, comment string) error {
	if err := checkBatch(keys); err != nil {
		return err
	}
	if operator == "" {
		return invalidField("operator", "operator is required")
	}
	if err := checkLen("operator", operator, MaxOperatorLen); err != nil {
		return err
	}
	if err := checkLen("comment", comment, MaxCommentLen); err != nil {
		return err
	}
	return m.change(ctx, func(ctx context.Context, tx *sql.Tx, now int64) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, "INSERT INTO liveops_user_maintenance (user_key, operator, comment, created_at) VALUES (?, ?, ?, ?)"+
				m.dialect.Upsert([]string{"user_key"}, "operator", "comment"), k, operator, comment, now); err != nil {
				return wrap(err)
			}
		}
		return nil
	})
}

// RemoveUserMaintenance lets up to MaxBatch users play again.
func (m *Manager) RemoveUserMaintenance(ctx context.Context, keys []int64) error {
	if err := checkBatch(keys); err != nil {
		return err
	}
	return m.change(ctx, func(ctx context.Context, tx *sql.Tx, _ int64) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, "DELETE FROM liveops_user_maintenance WHERE user_key = ?", k); err != nil {
				return wrap(err)
			}
		}
		return nil
	})
}

// UserMaintenance returns the users in per-user maintenance (as loaded).
func (m *Manager) UserMaintenance() []UserMaintenance {
	p := m.policy.Load()
	return append([]UserMaintenance(nil), p.Users...)
}

func wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("liveops: %w", err)
}
