package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/madang-io/madang/shard"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the console's tables (console_operators,
// console_sessions, console_audit) for the common database (source
// "console"); apply them with shard.Migrate before New or NewStore.
func Migrations() shard.Migrations {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil { // cannot happen: the directory is embedded
		panic(err)
	}
	return shard.Migrations{FS: sub, Source: "console"}
}

// Roles of operators.
const (
	// RoleViewer may read every page and change nothing.
	RoleViewer = "viewer"
	// RoleOperator may also make changes (each one audited).
	RoleOperator = "operator"
)

// Limits of operator accounts.
const (
	// MaxNameLen bounds an operator name (letters, digits, '.', '_', '-', '@').
	MaxNameLen = 64
	// MinPasswordLen and MaxPasswordLen bound a password (bcrypt reads at
	// most 72 bytes).
	MinPasswordLen = 12
	MaxPasswordLen = 72
	// MaxCommentLen bounds an audit comment.
	MaxCommentLen = 1024
)

// Defaults of StoreConfig.
const (
	// DefaultSessionTTL is StoreConfig.SessionTTL's default.
	DefaultSessionTTL = 12 * time.Hour
	// DefaultMaxFailures is StoreConfig.MaxFailures's default.
	DefaultMaxFailures = 5
	// DefaultLockout is StoreConfig.Lockout's default.
	DefaultLockout = time.Minute
)

// Errors of the store.
var (
	// ErrBadLogin is a wrong operator name or password (which one is not
	// told).
	ErrBadLogin = errors.New("console: wrong operator name or password")
	// ErrLockedOut is a sign-in refused because the operator had too many
	// failed attempts lately (StoreConfig.MaxFailures, Lockout).
	ErrLockedOut = errors.New("console: too many failed sign-ins, wait and retry")
	// ErrNoSession is a missing, unknown or expired console session.
	ErrNoSession = errors.New("console: not signed in")
	// ErrExists is an operator created twice.
	ErrExists = errors.New("console: operator exists")
	// ErrNoOperator is an unknown operator.
	ErrNoOperator = errors.New("console: no such operator")
)

// FieldError is a form or argument value that is wrong: Field names it.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// StoreConfig configures a Store. DB is required.
type StoreConfig struct {
	// DB is the common database, migrated with Migrations.
	DB *sql.DB
	// Dialect of DB: shard.DialectMySQL or shard.DialectSQLite. Default:
	// detected.
	Dialect string
	// SessionTTL is how long a sign-in lasts. Default DefaultSessionTTL.
	SessionTTL time.Duration
	// MaxFailures failed sign-ins in a row lock an operator out for
	// Lockout (counted in the database: every server shares them).
	// Defaults DefaultMaxFailures and DefaultLockout.
	MaxFailures int
	Lockout     time.Duration
	// PasswordCost is the bcrypt cost of new hashes. Default
	// bcrypt.DefaultCost (tests use bcrypt.MinCost).
	PasswordCost int
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Store keeps operators, sessions and the audit log in the common database.
type Store struct {
	db      *sql.DB
	dialect string
	cfg     StoreConfig
	dummy   []byte // a hash compared when the operator does not exist
}

// NewStore returns a store over cfg.DB.
func NewStore(ctx context.Context, cfg StoreConfig) (*Store, error) {
	if cfg.DB == nil {
		return nil, errors.New("console: StoreConfig.DB is required")
	}
	if cfg.Dialect == "" {
		d, err := shard.DetectDialect(ctx, cfg.DB)
		if err != nil {
			return nil, err
		}
		cfg.Dialect = d
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Lockout <= 0 {
		cfg.Lockout = DefaultLockout
	}
	if cfg.PasswordCost == 0 {
		cfg.PasswordCost = bcrypt.DefaultCost
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("not a password of anyone"), cfg.PasswordCost)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	return &Store{db: cfg.DB, dialect: cfg.Dialect, cfg: cfg, dummy: dummy}, nil
}

// Operator is an operator account (without its password hash).
type Operator struct {
	Name      string
	Role      string
	CreatedAt time.Time
}

// CanChange reports whether the operator may make changes.
func (o Operator) CanChange() bool { return o.Role == RoleOperator }

// CheckName validates an operator name.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fieldErr("name", "1 to %d characters", MaxNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)) {
			return fieldErr("name", "letters, digits, '.', '_', '-' and '@' only")
		}
	}
	return nil
}

// CheckRole validates a role.
func CheckRole(role string) error {
	if role != RoleViewer && role != RoleOperator {
		return fieldErr("role", "must be %q or %q", RoleViewer, RoleOperator)
	}
	return nil
}

// CheckPassword validates a new password's length.
func CheckPassword(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return fieldErr("password", "%d to %d bytes", MinPasswordLen, MaxPasswordLen)
	}
	if !utf8.ValidString(pw) {
		return fieldErr("password", "not valid UTF-8")
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// AddOperator creates an operator. ErrExists if the name is taken.
func (s *Store) AddOperator(ctx context.Context, name, role, password string) error {
	if err := errors.Join(CheckName(name), CheckRole(role), CheckPassword(password)); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.PasswordCost)
	if err != nil {
		return fmt.Errorf("console: hash: %w", err)
	}
	now := ms(s.cfg.Now())
	ins := "INSERT OR IGNORE INTO"
	if s.dialect == shard.DialectMySQL {
		ins = "INSERT IGNORE INTO"
	}
	res, err := s.db.ExecContext(ctx, ins+" console_operators (name, role, password_hash, failures, failed_at, created_at, updated_at) VALUES (?, ?, ?, 0, 0, ?, ?)",
		name, role, string(hash), now, now)
	if err != nil {
		return wrap("add operator", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("add operator", err)
	} else if n == 0 {
		return ErrExists
	}
	return nil
}

// SetPassword replaces an operator's password and ends their sessions.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cfg.PasswordCost)
	if err != nil {
		return fmt.Errorf("console: hash: %w", err)
	}
	return s.update(ctx, name, "UPDATE console_operators SET password_hash = ?, failures = 0, updated_at = ? WHERE name = ?", string(hash), ms(s.cfg.Now()), name)
}

// SetRole changes an operator's role and ends their sessions.
func (s *Store) SetRole(ctx context.Context, name, role string) error {
	if err := CheckRole(role); err != nil {
		return err
	}
	return s.update(ctx, name, "UPDATE console_operators SET role = ?, updated_at = ? WHERE name = ?", role, ms(s.cfg.Now()), name)
}

func (s *Store) update(ctx context.Context, name, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return wrap("update operator", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap("update operator", err)
	} else if n == 0 {
		return ErrNoOperator
	}
	_, err = s.db.ExecContext(ctx, "DELETE FROM console_sessions WHERE operator = ?", name)
	return wrap("end sessions", err)
}

// Operators lists the operators by name.
func (s *Store) Operators(ctx context.Context) ([]Operator, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, role, created_at FROM console_operators ORDER BY name")
	if err != nil {
		return nil, wrap("operators", err)
	}
	defer rows.Close()
	var out []Operator
	for rows.Next() {
		var o Operator
		var at int64
		if err := rows.Scan(&o.Name, &o.Role, &at); err != nil {
			return nil, wrap("operators", err)
		}
		o.CreatedAt = time.UnixMilli(at)
		out = append(out, o)
	}
	return out, wrap("operators", rows.Err())
}

// Session is a signed-in operator.
type Session struct {
	Operator Operator
	// CSRF is the token every form of this session must send back.
	CSRF      string
	ExpiresAt time.Time
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func tokenID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// SignIn checks name and password and opens a session: it returns the
// session's cookie value. ErrBadLogin for a wrong name or password,
// ErrLockedOut after MaxFailures failures in a row (until Lockout after
// the last one).
func (s *Store) SignIn(ctx context.Context, name, password string) (token string, _ *Session, _ error) {
	now := s.cfg.Now()
	var o Operator
	var hash string
	var failures int
	var failedAt, created int64
	err := s.db.QueryRowContext(ctx, "SELECT name, role, password_hash, failures, failed_at, created_at FROM console_operators WHERE name = ?", name).
		Scan(&o.Name, &o.Role, &hash, &failures, &failedAt, &created)
	if errors.Is(err, sql.ErrNoRows) || len(name) > MaxNameLen || len(password) > MaxPasswordLen {
		// Spend the time a real check takes: timing tells nothing.
		_ = bcrypt.CompareHashAndPassword(s.dummy, []byte(password))
		return "", nil, ErrBadLogin
	}
	if err != nil {
		return "", nil, wrap("sign in", err)
	}
	if failures >= s.cfg.MaxFailures && now.Sub(time.UnixMilli(failedAt)) < s.cfg.Lockout {
		return "", nil, ErrLockedOut
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		if _, err := s.db.ExecContext(ctx, "UPDATE console_operators SET failures = failures + 1, failed_at = ? WHERE name = ?", ms(now), name); err != nil {
			return "", nil, wrap("sign in", err)
		}
		return "", nil, ErrBadLogin
	}
	if failures > 0 {
		if _, err := s.db.ExecContext(ctx, "UPDATE console_operators SET failures = 0 WHERE name = ?", name); err != nil {
			return "", nil, wrap("sign in", err)
		}
	}
	o.CreatedAt = time.UnixMilli(created)
	token = randomToken()
	sess := &Session{Operator: o, CSRF: randomToken(), ExpiresAt: now.Add(s.cfg.SessionTTL)}
	// Expired sessions of this operator go when they sign in again.
	if _, err := s.db.ExecContext(ctx, "DELETE FROM console_sessions WHERE operator = ? AND expires_at <= ?", name, ms(now)); err != nil {
		return "", nil, wrap("sign in", err)
	}
	if _, err := s.db.ExecContext(ctx, "INSERT INTO console_sessions (id_sha256, operator, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
		tokenID(token), name, sess.CSRF, ms(now), ms(sess.ExpiresAt)); err != nil {
		return "", nil, wrap("sign in", err)
	}
	return token, sess, nil
}

// Session returns the live session of a cookie value: ErrNoSession when
// it is unknown or expired. The operator's role is read now, so a role
// change applies at once.
func (s *Store) Session(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 128 {
		return nil, ErrNoSession
	}
	var sess Session
	var exp, created int64
	err := s.db.QueryRowContext(ctx, "SELECT o.name, o.role, o.created_at, s.csrf, s.expires_at FROM console_sessions s JOIN console_operators o ON o.name = s.operator WHERE s.id_sha256 = ?", tokenID(token)).
		Scan(&sess.Operator.Name, &sess.Operator.Role, &created, &sess.CSRF, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, wrap("session", err)
	}
	sess.Operator.CreatedAt = time.UnixMilli(created)
	sess.ExpiresAt = time.UnixMilli(exp)
	if !s.cfg.Now().Before(sess.ExpiresAt) {
		return nil, ErrNoSession
	}
	return &sess, nil
}

// SignOut ends the session of a cookie value.
func (s *Store) SignOut(ctx context.Context, token string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM console_sessions WHERE id_sha256 = ?", tokenID(token))
	return wrap("sign out", err)
}

// AuditEntry is one change made through the console.
type AuditEntry struct {
	ID       int64
	At       time.Time
	Operator string
	// Action names the change ("player.block", "maintenance.global", ...);
	// Target what it changed ("user:10000001", "event:xmas", "global").
	Action, Target string
	// Before and After are the state before and after, as JSON ("" when
	// none).
	Before, After string
	Comment       string
	// Outcome is "ok", "pending" (the change did not report back: a
	// crash, or still running) or "failed: <error>".
	Outcome string
}

// Outcomes of an audit entry.
const (
	OutcomePending = "pending"
	OutcomeOK      = "ok"
)

func toJSON(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%q", fmt.Sprint(v))
	}
	return string(b)
}

// Begin writes a pending audit entry before a change is applied, and
// returns its id for Finish: no change runs unaudited.
func (s *Store) Begin(ctx context.Context, e AuditEntry) (int64, error) {
	if e.At.IsZero() {
		e.At = s.cfg.Now()
	}
	res, err := s.db.ExecContext(ctx, "INSERT INTO console_audit (at, operator, action, target, before_json, after_json, comment, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		ms(e.At), e.Operator, e.Action, e.Target, e.Before, e.After, e.Comment, OutcomePending)
	if err != nil {
		return 0, wrap("audit", err)
	}
	id, err := res.LastInsertId()
	return id, wrap("audit", err)
}

// Finish records the outcome of the change begun as id, with the state
// after it (JSON, "" to keep the one Begin wrote).
func (s *Store) Finish(ctx context.Context, id int64, after string, changeErr error) error {
	outcome := OutcomeOK
	if changeErr != nil {
		outcome = truncate("failed: "+changeErr.Error(), 1000)
	}
	var err error
	if after != "" {
		_, err = s.db.ExecContext(ctx, "UPDATE console_audit SET outcome = ?, after_json = ? WHERE id = ?", outcome, after, id)
	} else {
		_, err = s.db.ExecContext(ctx, "UPDATE console_audit SET outcome = ? WHERE id = ?", outcome, id)
	}
	return wrap("audit", err)
}

// Audit returns audit entries newest first, at most limit, with ids below
// before (0: from the newest); target "" means every target.
func (s *Store) Audit(ctx context.Context, target string, before int64, limit int) ([]AuditEntry, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	q := "SELECT id, at, operator, action, target, before_json, after_json, comment, outcome FROM console_audit WHERE id < ?"
	args := []any{before}
	if target != "" {
		q += " AND target = ?"
		args = append(args, target)
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, wrap("audit", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Operator, &e.Action, &e.Target, &e.Before, &e.After, &e.Comment, &e.Outcome); err != nil {
			return nil, wrap("audit", err)
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	return out, wrap("audit", rows.Err())
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// wrap classifies a database error once (a backend down is unavailable).
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("console: %s: %w", what, shard.ClassifyError(err))
}
