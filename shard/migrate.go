package shard

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/madang-io/madang/internal/sqldialect"
)

//go:embed migrations/*.sql
var directoryFS embed.FS

// Migrations is a set of versioned SQL files applied to a database and
// recorded in its schema_migrations table.
//
// Files live at the root of FS and are named VERSION_NAME.sql (any dialect)
// or VERSION_NAME.DIALECT.sql with DIALECT "mysql" or "sqlite"; VERSION is a
// positive decimal number (leading zeros allowed: 0001_init.sql). For each
// version the file of the database's dialect wins over the generic one; a
// version with only another dialect's file is an error. Files not ending in
// .sql are ignored.
//
// Splitting: migrations run statement by statement (no multiStatements).
// A statement ends at a line whose last non-blank character is ';'. Lines
// whose first non-blank characters are "--" are comments and dropped. So a
// ';' at a line end inside a string literal or a trigger body would split a
// statement: migrations must not contain one.
type Migrations struct {
	// FS holds the files. Required.
	FS fs.FS
	// Source names the set in schema_migrations, so several sets can share
	// a database (this package's own set is "shard"). Empty means "game".
	Source string
	// LockTimeout bounds the wait for another process's migration of the
	// same database (MariaDB GET_LOCK). Zero means 60 s.
	LockTimeout time.Duration
	// Dialect names the databases' dialect: DialectMySQL or DialectSQLite.
	// Empty means each database's is detected (DetectDialect); name it when
	// detection cannot tell, as with an unusual wrapping driver. Another
	// name is an error (ErrInvalid) at Migrate and Status.
	Dialect string
}

// DirectoryMigrations returns this package's own migrations for the common
// database: the shard_databases directory table and shard_accounts.
func DirectoryMigrations() Migrations {
	sub, _ := fs.Sub(directoryFS, "migrations") // a constant, valid path
	return Migrations{FS: sub, Source: "shard"}
}

func (m Migrations) source() string {
	if m.Source == "" {
		return "game"
	}
	return m.Source
}

// migration is one version for one dialect.
type migration struct {
	Version    int64
	File       string
	Statements []string
}

var migrationName = regexp.MustCompile(`^([0-9]+)_([A-Za-z0-9_\-]+?)(\.(mysql|sqlite))?\.sql$`)

// load returns m's migrations for dialect, sorted by version.
func (m Migrations) load(dialect string) ([]migration, error) {
	if m.FS == nil {
		return nil, invalidf("migrations: FS is nil")
	}
	entries, err := fs.ReadDir(m.FS, ".")
	if err != nil {
		return nil, fmt.Errorf("shard: migrations: %w", err)
	}
	type pick struct {
		file     string
		specific bool
	}
	picks := map[int64]pick{}
	others := map[int64]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		g := migrationName.FindStringSubmatch(e.Name())
		if g == nil {
			return nil, invalidf("migration file name %q is not VERSION_NAME[.mysql|.sqlite].sql", e.Name())
		}
		v, err := strconv.ParseInt(g[1], 10, 64)
		if err != nil || v <= 0 {
			return nil, invalidf("migration %q: version must be a positive number", e.Name())
		}
		switch d := g[4]; {
		case d != "" && d != dialect:
			others[v] = e.Name()
		case d == dialect:
			if p, ok := picks[v]; ok && p.specific {
				return nil, invalidf("migrations %q and %q have the same version", p.file, e.Name())
			}
			picks[v] = pick{e.Name(), true}
		default:
			if p, ok := picks[v]; ok && !p.specific {
				return nil, invalidf("migrations %q and %q have the same version", p.file, e.Name())
			}
			if _, ok := picks[v]; !ok {
				picks[v] = pick{e.Name(), false}
			}
		}
	}
	for v, f := range others {
		if _, ok := picks[v]; !ok {
			return nil, invalidf("migration version %d has %q but no file for %s", v, f, dialect)
		}
	}
	out := make([]migration, 0, len(picks))
	for v, p := range picks {
		body, err := fs.ReadFile(m.FS, p.file)
		if err != nil {
			return nil, fmt.Errorf("shard: migration %s: %w", p.file, err)
		}
		out = append(out, migration{Version: v, File: p.file, Statements: SplitStatements(string(body))})
	}
	slices.SortFunc(out, func(a, b migration) int { return cmpInt64(a.Version, b.Version) })
	return out, nil
}

// SplitStatements splits a migration file into statements by the rule in
// Migrations' doc: a statement ends at a line ending in ';' (the trailing
// semicolons are dropped); "--" comment lines and blank statements are
// dropped.
func SplitStatements(body string) []string {
	var out []string
	var cur []string
	flush := func() {
		s := strings.TrimSpace(strings.Join(cur, "\n"))
		if s != "" {
			out = append(out, s)
		}
		cur = cur[:0]
	}
	for line := range strings.Lines(body) {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--") {
			continue
		}
		if strings.HasSuffix(t, ";") {
			cur = append(cur, strings.TrimRightFunc(line, func(r rune) bool { return r == ';' || unicode.IsSpace(r) }))
			flush()
			continue
		}
		cur = append(cur, strings.TrimRight(line, "\r\n"))
	}
	flush()
	return out
}

// SchemaStatus is one database's migration state for one Migrations set.
type SchemaStatus struct {
	Source  string  // Migrations.Source
	Applied []int64 // versions recorded and clean, ascending
	Pending []int64 // versions in the files not yet applied, ascending
	Dirty   []int64 // versions started and not finished
	Latest  int64   // the highest version in the files
}

// UpToDate reports whether every version is applied and none is dirty.
func (s SchemaStatus) UpToDate() bool { return len(s.Pending) == 0 && len(s.Dirty) == 0 }

const schemaTable = "CREATE TABLE IF NOT EXISTS schema_migrations (" +
	"source VARCHAR(64) NOT NULL, version BIGINT NOT NULL, dirty INT NOT NULL DEFAULT 0, applied_at BIGINT NOT NULL, " +
	"PRIMARY KEY (source, version))"

// schemaTableOptions end schemaTable on MySQL/MariaDB: the table states its
// character set and collation instead of taking the server's.
const schemaTableOptions = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

// convertSchemaTable converts a schema_migrations table created before it
// stated its collation (one that took the server's, such as latin1) to
// utf8mb4_bin; a table already there is left alone.
func convertSchemaTable(ctx context.Context, conn *sql.Conn) error {
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "+
		"AND TABLE_NAME = 'schema_migrations' AND COLLATION_NAME IS NOT NULL AND COLLATION_NAME <> 'utf8mb4_bin'").Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	_, err := conn.ExecContext(ctx, "ALTER TABLE schema_migrations CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	return err
}

// recorded reads schema_migrations for source; a missing table is empty.
func recorded(ctx context.Context, q execQuerier, source string) (clean, dirty map[int64]bool, err error) {
	clean, dirty = map[int64]bool{}, map[int64]bool{}
	rows, err := q.QueryContext(ctx, "SELECT version, dirty FROM schema_migrations WHERE source = ?", source)
	if err != nil {
		if sqldialect.IsNoSuchTable(err) {
			return clean, dirty, nil
		}
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var v int64
		var d int
		if err := rows.Scan(&v, &d); err != nil {
			return nil, nil, err
		}
		if d != 0 {
			dirty[v] = true
		} else {
			clean[v] = true
		}
	}
	return clean, dirty, rows.Err()
}

func status(ms []migration, source string, clean, dirty map[int64]bool) SchemaStatus {
	st := SchemaStatus{Source: source}
	for _, m := range ms {
		switch {
		case dirty[m.Version]:
			st.Dirty = append(st.Dirty, m.Version)
		case clean[m.Version]:
			st.Applied = append(st.Applied, m.Version)
		default:
			st.Pending = append(st.Pending, m.Version)
		}
		st.Latest = max(st.Latest, m.Version)
	}
	for v := range dirty {
		if !slices.Contains(st.Dirty, v) {
			st.Dirty = append(st.Dirty, v)
		}
	}
	slices.Sort(st.Dirty)
	return st
}

// Status returns db's migration state for m. Like Migrate, it takes db's
// dialect from m.Dialect, or detects it (DetectDialect).
func Status(ctx context.Context, db *sql.DB, m Migrations) (SchemaStatus, error) {
	d, err := resolveDialect(ctx, db, m.Dialect)
	if err != nil {
		return SchemaStatus{}, err
	}
	ms, err := m.load(d.Name())
	if err != nil {
		return SchemaStatus{}, err
	}
	clean, dirty, err := recorded(ctx, db, m.source())
	if err != nil {
		return SchemaStatus{}, fmt.Errorf("shard: schema status: %w", err)
	}
	return status(ms, m.source(), clean, dirty), nil
}

// Migrate applies m's pending migrations to db in version order and returns
// the versions it applied. It is safe to run twice and from several
// processes at once: the second run finds nothing pending.
//
// MariaDB/MySQL: the run holds GET_LOCK on a name derived from the database
// and m.Source; each migration's row is inserted with dirty=1 before its
// first statement and set clean after its last (DDL commits implicitly, so
// a failure in the middle leaves the row dirty; Migrate and the Router then
// refuse the database with ErrDirty/ErrSchemaBehind until an operator
// repairs it and deletes the row). SQLite: DDL is transactional, so each
// migration and its row commit in one write transaction, and a failure
// leaves nothing behind.
func Migrate(ctx context.Context, db *sql.DB, m Migrations) ([]int64, error) {
	d, err := resolveDialect(ctx, db, m.Dialect)
	if err != nil {
		return nil, err
	}
	ms, err := m.load(d.Name())
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("shard: migrate: %w", err)
	}
	defer conn.Close()
	if d.Name() == "sqlite" {
		if _, err := conn.ExecContext(ctx, schemaTable); err != nil {
			return nil, fmt.Errorf("shard: migrate: create schema_migrations: %w", err)
		}
		return migrateSQLite(ctx, conn, ms, m.source())
	}
	if _, err := conn.ExecContext(ctx, schemaTable+schemaTableOptions); err != nil {
		return nil, fmt.Errorf("shard: migrate: create schema_migrations: %w", err)
	}
	var dbName sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&dbName); err != nil {
		return nil, fmt.Errorf("shard: migrate: %w", err)
	}
	timeout := m.LockTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	release, err := d.Lock(ctx, conn, lockName(dbName.String, m.source()), max(1, int(timeout/time.Second)))
	if err != nil {
		return nil, fmt.Errorf("shard: migrate: %w", err)
	}
	defer release()
	if err := convertSchemaTable(ctx, conn); err != nil {
		return nil, fmt.Errorf("shard: migrate: convert schema_migrations: %w", err)
	}
	clean, dirty, err := recorded(ctx, conn, m.source())
	if err != nil {
		return nil, fmt.Errorf("shard: migrate: %w", err)
	}
	if len(dirty) > 0 {
		st := status(ms, m.source(), clean, dirty)
		return nil, &Error{Kind: ErrDirty, Err: fmt.Errorf("source %q versions %v", m.source(), st.Dirty)}
	}
	var applied []int64
	for _, mg := range ms {
		if clean[mg.Version] {
			continue
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO schema_migrations (source, version, dirty, applied_at) VALUES (?, ?, 1, ?)",
			m.source(), mg.Version, time.Now().UnixMilli()); err != nil {
			return applied, fmt.Errorf("shard: migrate %s: %w", mg.File, err)
		}
		for i, stmt := range mg.Statements {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return applied, &Error{Kind: ErrDirty, Err: fmt.Errorf("%s statement %d: %w", mg.File, i+1, err)}
			}
		}
		if _, err := conn.ExecContext(ctx, "UPDATE schema_migrations SET dirty = 0, applied_at = ? WHERE source = ? AND version = ?",
			time.Now().UnixMilli(), m.source(), mg.Version); err != nil {
			return applied, &Error{Kind: ErrDirty, Err: fmt.Errorf("%s: clear dirty flag: %w", mg.File, err)}
		}
		applied = append(applied, mg.Version)
	}
	return applied, nil
}

// lockName is the GET_LOCK name for a database and source, at most 64
// characters (the MariaDB limit).
func lockName(db, source string) string {
	n := "madang.migrate." + db + "." + source
	if len(n) <= 64 {
		return n
	}
	sum := sha256.Sum256([]byte(n))
	return "madang.migrate." + hex.EncodeToString(sum[:16])
}

func migrateSQLite(ctx context.Context, conn *sql.Conn, ms []migration, source string) ([]int64, error) {
	var applied []int64
	for _, mg := range ms {
		done, err := func() (bool, error) {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return false, err
			}
			defer tx.Rollback()
			clean, dirty, err := recorded(ctx, tx, source)
			if err != nil {
				return false, err
			}
			if dirty[mg.Version] {
				return false, &Error{Kind: ErrDirty, Err: fmt.Errorf("source %q version %d", source, mg.Version)}
			}
			if clean[mg.Version] {
				return false, nil
			}
			for i, stmt := range mg.Statements {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return false, fmt.Errorf("%s statement %d: %w", mg.File, i+1, err)
				}
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (source, version, dirty, applied_at) VALUES (?, ?, 0, ?)",
				source, mg.Version, time.Now().UnixMilli()); err != nil {
				return false, err
			}
			return true, tx.Commit()
		}()
		if err != nil {
			var se *Error
			if errors.As(err, &se) {
				return applied, err
			}
			return applied, fmt.Errorf("shard: migrate: %w", err)
		}
		if done {
			applied = append(applied, mg.Version)
		}
	}
	return applied, nil
}
