package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/madang-io/madang/anticheat"
	"github.com/madang-io/madang/examples/gameserver/game"
	"github.com/madang-io/madang/idempotency"
	"github.com/madang-io/madang/shard"
	_ "modernc.org/sqlite" // the embedded mode's SQLite driver ("sqlite")
)

// Database layout: a common database (directory, accounts, anti-cheat,
// live ops) and GameDBs game databases, game database i owning user keys
// i*EmbeddedKeyRange .. (i+1)*EmbeddedKeyRange-1 (gamedb01 from 10000000,
// gamedb02 from 20000000, ... as in the talk). Embedded mode always has
// EmbeddedGameDBs of them; MySQL mode Config.MySQLGameDBs (default the same).
const (
	EmbeddedGameDBs  = 4
	EmbeddedKeyRange = 10_000_000
)

// CommonMaxOpenConns is the connection limit of the common database's pool
// in MySQL mode (logins, accounts, receipts, live ops); requests beyond it
// wait for a connection. All of them are kept open when idle: closing idle
// connections at the end of a burst only makes the next burst reconnect.
const CommonMaxOpenConns = 32

// MySQLKeyBlock is shard.AccountsConfig.KeyBlock in MySQL mode: each server
// reserves user keys 32 at a time, so a first login is one INSERT instead
// of a transaction that holds the chosen game database's directory row
// until it commits (on MariaDB those transactions queued behind each other
// under a login storm). The price: up to 31 unused keys per server restart
// (ranges hold 10,000,000) and a balance between game databases that is
// exact to 32 users per server. Embedded mode uses EmbeddedKeyBlock.
const MySQLKeyBlock = 32

// EmbeddedKeyBlock is shard.AccountsConfig.KeyBlock in embedded mode
// (SQLite): a first login's registration is one INSERT on common.db
// rather than a transaction of four statements (BEGIN, the allocation's
// SELECT and UPDATE, the INSERT, COMMIT), so a first login costs at most
// four round trips to the common database (BENCHMARKS.md "logins: round
// trips to the common database"). The price is MySQLKeyBlock's: up to 31
// unused keys per restart, balance exact to 32 users.
const EmbeddedKeyBlock = 32

// storageConfig says where the databases are.
type storageConfig struct {
	// DataDir holds the SQLite files (embedded mode).
	DataDir string
	// MySQLDSN, when set, is the common database on MySQL/MariaDB; the game
	// databases are created next to it (same server and credentials).
	MySQLDSN string
	// GameDBs is how many game databases a first start creates.
	GameDBs int
	// wrapCommon (Config.wrapCommon), if set, replaces the common
	// database's pool once opened.
	wrapCommon func(db *sql.DB, dsn string) *sql.DB
}

// wrap applies wrapCommon to the common database opened at dsn.
func (cfg storageConfig) wrap(db *sql.DB, dsn string) *sql.DB {
	if cfg.wrapCommon == nil {
		return db
	}
	return cfg.wrapCommon(db, dsn)
}

// commonWrite is the writer queue of the common database for the other
// stores writing to it (anti-cheat, live ops, the game data catalog, the
// game's purchase notes): on SQLite the directory's
// (shard.SQLDirectory.Write), so that every writer of common.db waits its
// turn in one FIFO queue instead of in the driver's busy handler; nil on
// MySQL (row locks, no file lock: nothing to queue).
func (st *storage) commonWrite() func(context.Context, func(context.Context) error) error {
	if st.dialect != shard.DialectSQLite {
		return nil
	}
	return st.directory.Write
}

// storage is the server's databases.
type storage struct {
	dialect   string // shard.DialectSQLite or shard.DialectMySQL
	common    *sql.DB
	directory *shard.SQLDirectory
	accounts  *shard.Accounts
	router    *shard.Router
	idem      *idempotency.SQLStore
	anticheat *anticheat.SQLStore
}

// openStorage opens (creating on first start) the databases, registers the
// game databases in the directory if missing, and migrates every database.
// It is safe to run again on the same databases, and from several processes
// at once.
func openStorage(ctx context.Context, cfg storageConfig, log *slog.Logger) (_ *storage, err error) {
	if cfg.GameDBs <= 0 {
		cfg.GameDBs = EmbeddedGameDBs
	}
	st := &storage{}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	var routerCfg shard.Config
	if cfg.MySQLDSN != "" {
		if err := st.openMySQL(ctx, cfg, &routerCfg); err != nil {
			return nil, err
		}
	} else {
		if err := st.openSQLite(ctx, cfg); err != nil {
			return nil, err
		}
	}
	accCfg := shard.AccountsConfig{KeyBlock: EmbeddedKeyBlock}
	if cfg.MySQLDSN != "" {
		accCfg.KeyBlock = MySQLKeyBlock
	}
	st.accounts = shard.NewAccounts(st.directory, accCfg)
	routerCfg.Directory = st.directory
	routerCfg.Logger = log
	if st.router, err = shard.NewRouter(ctx, routerCfg); err != nil {
		return nil, err
	}
	// Every key is routed: the store's transactions are the router's (one
	// retry policy, one set of stats), and it needs no database of its own.
	st.idem, err = idempotency.NewSQLStore(ctx, nil, idempotency.SQLConfig{
		Config:  idempotency.Config{RequireKey: true, Logger: log},
		Dialect: st.dialect,
		Tx:      st.router.Tx,
	})
	if err != nil {
		return nil, err
	}
	idemFiles, idemSource := st.idem.Migrations()
	// Servers starting at once on fresh SQLite files can see a busy
	// database (the WAL switch of a new file does not wait): try again.
	for _, m := range []shard.Migrations{game.Migrations(), {FS: idemFiles, Source: idemSource}} {
		err = startupRetry().Do(ctx, func(ctx context.Context) error {
			_, err := st.router.MigrateAll(ctx, m)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("game databases: %w", err)
		}
	}
	if st.anticheat, err = anticheat.NewSQLStore(ctx, st.common, anticheat.SQLConfig{Dialect: st.dialect, Write: st.commonWrite()}); err != nil {
		return nil, err
	}
	if err := startupRetry().Do(ctx, st.anticheat.CreateTables); err != nil {
		return nil, fmt.Errorf("common database: %w", err)
	}
	return st, nil
}

// openSQLite opens the embedded databases under cfg.DataDir.
func (st *storage) openSQLite(ctx context.Context, cfg storageConfig) error {
	// Absolute paths go into the directory, so the server finds its
	// databases whatever its working directory is on the next start.
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st.dialect = shard.DialectSQLite
	// Statements kept per connection (not parsed on every call), as the
	// router's game databases; the directory queues its writes and
	// checkpoints the file (shard.SQLDirectoryConfig's defaults).
	st.common, err = shard.OpenSQLite(shard.SQLiteDSN(filepath.Join(dir, "common.db")))
	if err != nil {
		return fmt.Errorf("common database: %w", err)
	}
	// Idle connections kept as in MySQL mode: database/sql keeps 2 by
	// default, and under load the others were closed and opened again
	// (each open runs the DSN's PRAGMAs and drops the kept statements).
	st.common.SetMaxIdleConns(CommonMaxOpenConns)
	st.common = cfg.wrap(st.common, shard.SQLiteDSN(filepath.Join(dir, "common.db")))
	if err := st.migrateCommon(ctx); err != nil {
		return err
	}
	return registerGameDBs(ctx, st.directory, EmbeddedGameDBs, func(i int, name string) shard.Database {
		return shard.Database{
			Driver: "sqlite", DSN: shard.SQLiteDSN(filepath.Join(dir, name+".db")),
			Description: "embedded SQLite game database",
		}
	})
}

// dbNameRE is what a MySQL database name made by the server may contain
// (names are put into CREATE DATABASE unquoted).
var dbNameRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,48}$`)

// openMySQL opens the common database at cfg.MySQLDSN and, on first start,
// creates the game databases <common>_gamedb01.. on the same server. The
// directory rows carry host, port and name only; the router forms their
// DSNs from the common DSN's credentials and parameters (DSNTemplate), so
// no password is written into the common database. The DSN gets
// parseTime=true and, through shard.MySQLDSN, interpolateParams=true.
func (st *storage) openMySQL(ctx context.Context, cfg storageConfig, rc *shard.Config) error {
	// Interpolated arguments: one round trip per statement instead of a
	// prepare, an execute and a close (shard.MySQLDSN says when it is
	// safe; a DSN that sets interpolateParams keeps its choice). The game
	// databases' DSNs inherit it through the template.
	dsn, err := shard.MySQLDSN(cfg.MySQLDSN)
	if err != nil {
		return fmt.Errorf("MySQL DSN: %w", err)
	}
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("MySQL DSN: %w", err)
	}
	if mc.DBName == "" || !dbNameRE.MatchString(mc.DBName) {
		return fmt.Errorf("MySQL DSN: the database name %q must be 1..48 of [A-Za-z0-9_]", mc.DBName)
	}
	if mc.Net != "tcp" {
		return fmt.Errorf("MySQL DSN: only tcp addresses are supported, not %q", mc.Net)
	}
	host, portStr, err := net.SplitHostPort(mc.Addr)
	if err != nil {
		return fmt.Errorf("MySQL DSN address: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("MySQL DSN port: %w", err)
	}
	mc.ParseTime = true
	st.dialect = shard.DialectMySQL
	// Pipelined like the game databases' pools (the router's default):
	// a transaction's BEGIN travels with its first statement (a new
	// player's account registration: one round trip fewer).
	if st.common, err = shard.OpenMySQL(mc.FormatDSN()); err != nil {
		return fmt.Errorf("common database: %w", err)
	}
	st.common = cfg.wrap(st.common, mc.FormatDSN())
	// Bounded like the game databases' pools (shard.Config.MaxOpenConns):
	// under a login storm an unbounded pool opens connections until the
	// server refuses them ("Too many connections"), failing every client
	// of that MySQL server; a bounded one queues the logins instead.
	st.common.SetMaxOpenConns(CommonMaxOpenConns)
	st.common.SetMaxIdleConns(CommonMaxOpenConns)
	st.common.SetConnMaxLifetime(30 * time.Minute)
	if err := st.migrateCommon(ctx); err != nil {
		return err
	}
	rc.DSNTemplate = dsnTemplate(mc)
	common := mc.DBName
	return registerGameDBs(ctx, st.directory, cfg.GameDBs, func(i int, name string) shard.Database {
		return shard.Database{Driver: "mysql", Host: host, Port: port, Name: common + "_" + name,
			Description: "game database"}
	}, func(ctx context.Context, d shard.Database) error {
		// CREATE DATABASE commits implicitly and is idempotent with IF NOT
		// EXISTS, so racing first starts are fine. The database states its
		// character set and collation (its tables do too).
		_, err := st.common.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+d.Name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
		return err
	})
}

// dsnTemplate turns the common database's DSN into shard.Config.DSNTemplate:
// the same user, password and parameters, with {host}, {port} and {db}.
func dsnTemplate(mc *mysql.Config) string {
	c := mc.Clone()
	c.Addr = "madanghost:1"
	c.DBName = "madangdbname"
	s := c.FormatDSN()
	s = strings.Replace(s, "madanghost:1", "{host}:{port}", 1)
	return strings.Replace(s, "/madangdbname", "/{db}", 1)
}

// migrateCommon applies the directory migrations and opens the directory.
func (st *storage) migrateCommon(ctx context.Context) (err error) {
	err = startupRetry().Do(ctx, func(ctx context.Context) error {
		_, err := shard.Migrate(ctx, st.common, shard.DirectoryMigrations())
		return err
	})
	if err != nil {
		return fmt.Errorf("common database: %w", err)
	}
	st.directory, err = shard.NewSQLDirectory(ctx, st.common, shard.SQLDirectoryConfig{Dialect: st.dialect})
	return err
}

// registerGameDBs adds the game databases 1..n missing from the directory.
// entry gives a database's connection fields; create, if given, makes the
// database before its row is added. Another process starting at the same
// time may add one first: Add then fails on the overlapping range and the
// re-read finds it.
func registerGameDBs(ctx context.Context, d *shard.SQLDirectory, n int, entry func(i int, name string) shard.Database, create ...func(context.Context, shard.Database) error) error {
	have := func() (map[int]bool, error) {
		dbs, err := d.Databases(ctx)
		if err != nil {
			return nil, fmt.Errorf("directory: %w", err)
		}
		m := make(map[int]bool, len(dbs))
		for _, db := range dbs {
			m[db.ID] = true
		}
		return m, nil
	}
	present, err := have()
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		if present[i] {
			continue
		}
		name := fmt.Sprintf("gamedb%02d", i)
		db := entry(i, name)
		first := int64(i) * EmbeddedKeyRange
		db.ID, db.ServerID, db.WorldID = i, 1, 1
		if db.Name == "" {
			db.Name = name
		}
		db.FirstKey, db.LastKey = first, first+EmbeddedKeyRange-1
		for _, c := range create {
			if err := c(ctx, db); err != nil {
				return fmt.Errorf("create game database %s: %w", db.Name, err)
			}
		}
		// MariaDB may pick a racing first start's insert as a deadlock
		// victim: try again, then see whether the other one added it.
		if err := startupRetry().Do(ctx, func(ctx context.Context) error { return d.Add(ctx, db) }); err != nil {
			again, rerr := have()
			if rerr != nil || !again[i] {
				return fmt.Errorf("directory: add %s: %w", db.Name, err)
			}
		}
	}
	return nil
}

// startupRetry runs start-up work again while it fails with a busy
// database or a deadlock (shard.IsRetryable): 4 more times, 50 ms before
// the first, doubled with jitter.
func startupRetry() shard.RetryPolicy {
	return shard.RetryPolicy{Retries: 4, Backoff: 50 * time.Millisecond}
}

// Ping checks the common database and every game database.
func (st *storage) Ping(ctx context.Context) error {
	if err := st.common.PingContext(ctx); err != nil {
		return fmt.Errorf("common database: %w", err)
	}
	return st.router.ForEach(ctx, func(ctx context.Context, d shard.Database, db *sql.DB) error {
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("game database %s: %w", d.Name, err)
		}
		return nil
	})
}

// Close closes the router's pools and the common database.
func (st *storage) Close() error {
	var errs []error
	if st.router != nil {
		errs = append(errs, st.router.Close())
	}
	if st.common != nil {
		errs = append(errs, st.common.Close())
	}
	return errors.Join(errs...)
}

// pingTimeout bounds one readiness check.
const pingTimeout = 3 * time.Second
