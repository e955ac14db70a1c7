// Package shard spreads a game's users over many game databases, the way
// the talk's studio ran MySQL: each game database owns a range of user keys
// (gamedb01 from 10000000, gamedb02 from 20000000, ...), a directory table in
// a common database lists them, new users are spread over the open
// databases automatically — a database just added included — and every
// server keeps a persistent connection pool per database.
//
// # Pieces
//
//   - Directory lists the game databases (Database: the talk's server id,
//     world id, db id, db name, host, port, user count and description, plus
//     the key range first/last/next, a State, a weight, replicas and the
//     connection settings). SQLDirectory is the shard_databases table in
//     the common database; StaticDirectory is a Go value or a JSON file.
//   - SQLDirectory.Allocate hands out a new user key on the open database
//     with the fewest users relative to its weight, atomically across
//     processes; the allocation that uses a range's last key closes the
//     database and allocation moves on. Accounts.Register maps a login
//     Identity (platform + id) to one user key; racing first logins get
//     the same key. NewAccounts takes an AccountsConfig; its KeyBlock
//     reserves keys in blocks (Hi/Lo), so that a registration is one
//     INSERT instead of a transaction holding the chosen database's
//     directory row until its COMMIT: the choice for a server taking many
//     first logins at once on MariaDB (gaps in the key sequence on
//     restarts are the price).
//   - Router caches the directory as a sorted table of key ranges (the
//     lookup is a binary search with no allocation), refreshes it when the
//     directory's version changes (polled, on an unknown key, or Refresh),
//     and keeps serving the cached table while the directory database is
//     down. DB and ReadDB return lazily opened pools of a user's database
//     (a replica for ReadDB when listed); Tx runs a transaction with bounded
//     retries on deadlocks (RetryPolicy, madang's one retry policy, which
//     Accounts.Register and the anticheat SQL store use too and whose Do
//     serves a studio's own start-up work); ForEach fans out over all
//     databases; Stats reports pool use, waits, errors, retries and slow
//     transactions per database. Give idempotency.SQLStore the router's Tx
//     (idempotency.SQLConfig{Tx: router.Tx}) and its Migrations to
//     MigrateAll: the store's transactions are then the router's.
//   - Migrate applies versioned SQL files (Migrations, an fs.FS) to a
//     database and records them in schema_migrations; Router.MigrateAll runs
//     them on every game database, and a Router with Config.Schema refuses a
//     database that is behind. DirectoryMigrations creates this package's own
//     tables in the common database.
//   - WriteVSchema and VitessShards express the directory as a Vitess
//     sharded keyspace (numeric vindex on the user key, one shard per
//     database range) so a studio can move onto Vitess without changing keys.
//
// # Databases
//
// MySQL/MariaDB (and Vitess vtgate) through github.com/go-sql-driver/mysql,
// and SQLite (the embedded default, e.g. modernc.org/sqlite, which this
// package does not import: mains and tests import a driver and pass
// Config.Open or use sql.Open's registry). SQLite DSNs must set the PRAGMAs
// in the DSN and _txlock=immediate, and name files, never :memory:;
// SQLiteDSN returns the recommended one. MySQLDSN adds interpolateParams=true
// to a MySQL DSN where that is safe (one round trip per statement instead of
// two). With it, OpenMySQL (the Router's default for "mysql") pipelines
// transactions: START TRANSACTION travels with the first statement, and the
// statements run with a Deferred context (writes whose result is not read)
// with the next statement or the COMMIT, so a transaction of n statements,
// d deferred, costs n-d+1 round trips instead of n+2. A deferred
// statement's error surfaces at the next statement or at Commit, and
// nothing of that transaction commits (ErrNotCommitted);
// Config.NoMySQLPipelining turns it off. The package shardtest creates test
// databases of both kinds and runs a conformance suite.
//
// A dialect is named by a string, DialectMySQL ("mysql") or DialectSQLite
// ("sqlite"), the same in every madang package that takes one (so the
// idempotency and anticheat SQL stores need not import shard). Whatever
// needs a dialect detects it unless told (DetectDialect: by the driver,
// also through a wrapping driver's Unwrap() driver.Driver, else by asking
// the database, so drivers wrapped by instrumentation such as otelsql
// work), and takes an explicit one in its config: Migrations.Dialect (for
// Migrate, Status, Router.MigrateAll and Config.Schema) and
// SQLDirectoryConfig.Dialect (for the directory and its Accounts).
//
// # Character sets
//
// Identities compare byte for byte: "Device-1", "device-1" and "device-1 "
// are three accounts, on every backend, whatever the server's default
// character set and collation. On MySQL/MariaDB the directory's tables are
// utf8mb4 with utf8mb4_bin, and shard_accounts' platform and external_id
// are VARBINARY (utf8mb4_bin is a PAD SPACE collation: it ignores trailing
// spaces); schema_migrations is utf8mb4_bin too. Databases created before
// that took the server's defaults (latin1, case-insensitive on many
// servers): DirectoryMigrations' version 2 converts them, transcoding the
// data, keeping every account, rebuilding the tables (run it at a quiet
// time on a large shard_accounts), and Migrate converts an older
// schema_migrations table. SQLite's TEXT compares byte for byte already.
// Tables of one's own should state theirs too (ENGINE=InnoDB DEFAULT
// CHARSET=utf8mb4 COLLATE=utf8mb4_bin; VARBINARY for keys from outside).
//
// # Errors
//
// Errors are *Error values wrapping one of the ErrXxx sentinels and carry a
// protocol result code: ErrUnknownKey (bad_request), ErrUnavailable
// (unavailable: only the users of the database that is down see it),
// ErrSchemaBehind and ErrReadOnly (maintenance), ErrNoOpenDatabase. Router.Tx
// also turns an error of fn or the commit that says the database is down,
// slow, read-only or picked the transaction as a deadlock victim into
// ErrUnavailable (retryable), and a commit whose connection died on the way
// into protocol.CodeTimeout. ClassifyError is that classification for a
// game's own code (madang's one classification of backend errors, the same
// as session.ClassifyError): a backend outage is never protocol.CodeInternal.
//
// # Limits
//
// User keys are positive int64 values; ranges must not overlap. An Identity
// has a platform of at most 32 bytes and an id of at most 191 bytes, both
// UTF-8, compared byte for byte.
// AccountsConfig.KeyBlock is at most MaxKeyBlock (1024) keys; a reserved
// block is used for at most KeyBlockMaxAge (1 minute).
// Migration statements are split at lines ending in ';' (see Migrations).
// The Router closes the pool of a database whose connection settings change
// or which leaves the directory, failing calls still using it.
package shard
