package anticheat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/internal/clock"
	"github.com/madang-io/madang/internal/sqldialect"
)

// SQLConfig configures a SQLStore. The zero value works.
type SQLConfig struct {
	// Dialect names the database's SQL dialect: "mysql" (MySQL, MariaDB,
	// Vitess vtgate) or "sqlite" (shard.DialectMySQL and
	// shard.DialectSQLite are the same strings). Empty means detect it, as
	// shard.DetectDialect does: by the driver (also one wrapped by
	// instrumentation that offers Unwrap() driver.Driver), else by asking
	// the database. Another name is an error.
	Dialect string
	// TablePrefix is prepended to the table names (signatures, events,
	// counters, blocks, redemptions). Default "anticheat_". Letters, digits
	// and '_' only.
	TablePrefix string
	// Now returns the current time; nil means time.Now. It dates rows
	// written without a time.
	Now func() time.Time
	// Write, when set, runs each of the store's writes — one statement or
	// one transaction (Record, PutBlock, DeleteBlock, PutSignature,
	// DeleteSignature, Redeem; not CreateTables) — given as fn, and
	// returns its error. A caller whose database is a SQLite file that
	// other code also writes passes the writer queue of that file here
	// (shard.SQLDirectory.Write for the common database), so the store's
	// writers wait their turn there instead of in the driver's busy
	// handler. An error of Write's own (no turn) is returned like a
	// database error, classified (a shard unavailable error stays
	// unavailable). Nil: fn runs directly.
	Write func(ctx context.Context, fn func(ctx context.Context) error) error
}

// SQLStore is a Store on MySQL/MariaDB or SQLite through database/sql. Put
// it in the common database (not a user shard): redemptions must be unique
// across all game databases. Call CreateTables once at start-up.
type SQLStore struct {
	db  *sql.DB
	d   sqldialect.Dialect
	cfg SQLConfig
	t   struct{ sigs, events, counters, blocks, reds string }
}

var _ Store = (*SQLStore)(nil)

// NewSQLStore returns a store on db. ctx bounds the dialect's detection
// (SQLConfig.Dialect), which may ask the database.
func NewSQLStore(ctx context.Context, db *sql.DB, cfg SQLConfig) (*SQLStore, error) {
	if db == nil {
		return nil, errors.New("anticheat: nil *sql.DB")
	}
	d, err := sqldialect.Resolve(ctx, db, cfg.Dialect)
	if err != nil {
		return nil, fmt.Errorf("anticheat: %w", err)
	}
	if cfg.TablePrefix == "" {
		cfg.TablePrefix = "anticheat_"
	}
	for _, c := range cfg.TablePrefix {
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return nil, fmt.Errorf("anticheat: invalid table prefix %q", cfg.TablePrefix)
		}
	}
	cfg.Now = clock.OrNow(cfg.Now)
	s := &SQLStore{db: db, d: d, cfg: cfg}
	p := cfg.TablePrefix
	s.t.sigs, s.t.events, s.t.counters, s.t.blocks, s.t.reds = p+"signatures", p+"events", p+"counters", p+"blocks", p+"redemptions"
	return s, nil
}

// write runs fn through SQLConfig.Write, or directly without one.
func (s *SQLStore) write(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.cfg.Write == nil {
		return fn(ctx)
	}
	return s.cfg.Write(ctx, fn)
}

// exec runs one writing statement through write.
func (s *SQLStore) exec(ctx context.Context, q string, args ...any) (res sql.Result, err error) {
	err = s.write(ctx, func(ctx context.Context) error {
		res, err = s.db.ExecContext(ctx, q, args...)
		return err
	})
	return res, err
}

// bin is a case-sensitive string column of at most n bytes.
func (s *SQLStore) bin(n int) string {
	if s.d.Name() == "mysql" {
		return fmt.Sprintf("VARBINARY(%d)", n)
	}
	return "TEXT"
}

// CreateTables creates the tables and indexes if they do not exist.
func (s *SQLStore) CreateTables(ctx context.Context) error {
	my := s.d.Name() == "mysql"
	suffix := ""
	if my {
		// State the collation: utf8mb4's default is case-insensitive.
		// Keys are VARBINARY (bin): byte for byte, no PAD SPACE.
		suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
	}
	text := func(n int) string {
		if my {
			return fmt.Sprintf("VARCHAR(%d)", n)
		}
		return "TEXT"
	}
	type index struct{ name, table, cols string }
	idx := []index{
		{s.t.events + "_user", s.t.events, "user_key, id"},
		{s.t.events + "_at", s.t.events, "at_ms"},
	}
	eventIdx := ""
	if my {
		for _, i := range idx {
			eventIdx += fmt.Sprintf(", INDEX %s (%s)", i.name, i.cols)
		}
	}
	stmts := []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (version %s NOT NULL PRIMARY KEY, apk_md5 %s NOT NULL, cert_sha256 %s NOT NULL, updated_ms BIGINT NOT NULL)%s`,
			s.t.sigs, s.bin(32), s.bin(32), s.bin(16*65), suffix),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (id %s, user_key BIGINT NOT NULL, kind %s NOT NULL, reason %s NOT NULL, detail %s NOT NULL, client_version %s NOT NULL, at_ms BIGINT NOT NULL, day BIGINT NOT NULL%s)%s`,
			s.t.events, s.d.AutoIncrementPK(), s.bin(MaxKindLen), s.bin(2*MaxKindLen), text(MaxDetailLen), s.bin(maxVersionLen), eventIdx, suffix),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (user_key BIGINT NOT NULL, kind %s NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (user_key, kind))%s`,
			s.t.counters, s.bin(MaxKindLen), suffix),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (user_key BIGINT NOT NULL PRIMARY KEY, until_ms BIGINT NOT NULL, reason %s NOT NULL, at_ms BIGINT NOT NULL)%s`,
			s.t.blocks, text(MaxBlockReasonLen), suffix),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (store %s NOT NULL, transaction_id %s NOT NULL, user_key BIGINT NOT NULL, product_id %s NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (store, transaction_id))%s`,
			s.t.reds, s.bin(MaxStoreLen), s.bin(MaxTransactionIDLen), s.bin(MaxProductIDLen), suffix),
	}
	if !my {
		for _, i := range idx {
			stmts = append(stmts, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)", i.name, i.table, i.cols))
		}
	}
	for _, q := range stmts {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			return sqlErr("create tables", err)
		}
	}
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMs(v int64) time.Time { return time.UnixMilli(v).UTC() }

// PutSignature implements SignatureStore.
func (s *SQLStore) PutSignature(ctx context.Context, e SignatureEntry) error {
	q := fmt.Sprintf("INSERT INTO %s (version, apk_md5, cert_sha256, updated_ms) VALUES (?, ?, ?, ?)", s.t.sigs) +
		s.d.Upsert([]string{"version"}, "apk_md5", "cert_sha256", "updated_ms")
	if _, err := s.exec(ctx, q, e.Version, e.APKMD5, strings.Join(e.CertSHA256, ","), ms(e.UpdatedAt)); err != nil {
		return sqlErr("put signature", err)
	}
	return nil
}

// DeleteSignature implements SignatureStore.
func (s *SQLStore) DeleteSignature(ctx context.Context, version string) error {
	if _, err := s.exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE version = ?", s.t.sigs), version); err != nil {
		return sqlErr("delete signature", err)
	}
	return nil
}

func scanSig(sc interface{ Scan(...any) error }) (SignatureEntry, error) {
	var e SignatureEntry
	var certs string
	var upd int64
	if err := sc.Scan(&e.Version, &e.APKMD5, &certs, &upd); err != nil {
		return e, err
	}
	if certs != "" {
		e.CertSHA256 = strings.Split(certs, ",")
	}
	e.UpdatedAt = fromMs(upd)
	return e, nil
}

// GetSignature implements SignatureStore.
func (s *SQLStore) GetSignature(ctx context.Context, version string) (SignatureEntry, bool, error) {
	row := s.db.QueryRowContext(ctx, fmt.Sprintf("SELECT version, apk_md5, cert_sha256, updated_ms FROM %s WHERE version = ?", s.t.sigs), version)
	e, err := scanSig(row)
	if errors.Is(err, sql.ErrNoRows) {
		return SignatureEntry{}, false, nil
	}
	if err != nil {
		return SignatureEntry{}, false, sqlErr("get signature", err)
	}
	return e, true, nil
}

// ListSignatures implements SignatureStore.
func (s *SQLStore) ListSignatures(ctx context.Context) ([]SignatureEntry, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT version, apk_md5, cert_sha256, updated_ms FROM %s", s.t.sigs))
	if err != nil {
		return nil, sqlErr("list signatures", err)
	}
	defer rows.Close()
	var out []SignatureEntry
	for rows.Next() {
		e, err := scanSig(rows)
		if err != nil {
			return nil, sqlErr("list signatures", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, sqlErr("list signatures", err)
	}
	return out, nil
}

// incrementClause is the upsert clause that adds one to n.
func (s *SQLStore) incrementClause() string {
	if s.d.Name() == "mysql" {
		return " ON DUPLICATE KEY UPDATE n = n + 1"
	}
	return " ON CONFLICT(user_key, kind) DO UPDATE SET n = n + 1"
}

// Record implements Log. It runs in one transaction, retried on deadlock
// (up to 4 more times, 10 ms backoff doubled, with jitter).
func (s *SQLStore) Record(ctx context.Context, e Event) (int64, int64, error) {
	if err := checkEvent(&e); err != nil {
		return 0, 0, err
	}
	if e.At.IsZero() {
		e.At = s.cfg.Now()
	}
	var kindN, total int64
	// madang's one retry loop (shard.RetryPolicy's), with 4 retries.
	retry := sqldialect.Retry{Retries: 4, Backoff: 10 * time.Millisecond}
	err := retry.Do(ctx, func(ctx context.Context) error {
		return s.write(ctx, func(ctx context.Context) error {
			return sqldialect.RunTx(ctx, s.db, func(ctx context.Context, tx *sql.Tx) (err error) {
				kindN, total, err = s.record(ctx, tx, e)
				return err
			})
		})
	})
	if err != nil {
		return 0, 0, sqlErr("record event", err)
	}
	return kindN, total, nil
}

func (s *SQLStore) record(ctx context.Context, tx *sql.Tx, e Event) (kindN, total int64, err error) {
	at := ms(e.At)
	if _, err = tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (user_key, kind, reason, detail, client_version, at_ms, day) VALUES (?, ?, ?, ?, ?, ?, ?)", s.t.events),
		e.UserKey, string(e.Kind), string(e.Reason), e.Detail, e.ClientVersion, at, utcDay(e.At).Unix()); err != nil {
		return 0, 0, err
	}
	if _, err = tx.ExecContext(ctx, fmt.Sprintf("INSERT INTO %s (user_key, kind, n) VALUES (?, ?, 1)", s.t.counters)+s.incrementClause(), e.UserKey, string(e.Kind)); err != nil {
		return 0, 0, err
	}
	if err = tx.QueryRowContext(ctx, fmt.Sprintf("SELECT n FROM %s WHERE user_key = ? AND kind = ?", s.t.counters), e.UserKey, string(e.Kind)).Scan(&kindN); err != nil {
		return 0, 0, err
	}
	if err = tx.QueryRowContext(ctx, fmt.Sprintf("SELECT COALESCE(SUM(n), 0) FROM %s WHERE user_key = ?", s.t.counters), e.UserKey).Scan(&total); err != nil {
		return 0, 0, err
	}
	return kindN, total, nil
}

// UserCounts implements Log.
func (s *SQLStore) UserCounts(ctx context.Context, userKey int64) (map[Kind]int64, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT kind, n FROM %s WHERE user_key = ?", s.t.counters), userKey)
	if err != nil {
		return nil, sqlErr("user counts", err)
	}
	defer rows.Close()
	out := make(map[Kind]int64)
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, sqlErr("user counts", err)
		}
		out[Kind(k)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, sqlErr("user counts", err)
	}
	return out, nil
}

// UserEvents implements Log.
func (s *SQLStore) UserEvents(ctx context.Context, userKey int64, limit int) ([]Event, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT id, user_key, kind, reason, detail, client_version, at_ms FROM %s WHERE user_key = ? ORDER BY id DESC LIMIT ?", s.t.events), userKey, limit)
	if err != nil {
		return nil, sqlErr("user events", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var kind, reason string
		var at int64
		if err := rows.Scan(&e.ID, &e.UserKey, &kind, &reason, &e.Detail, &e.ClientVersion, &at); err != nil {
			return nil, sqlErr("user events", err)
		}
		e.Kind, e.Reason, e.At = Kind(kind), Reason(reason), fromMs(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, sqlErr("user events", err)
	}
	return out, nil
}

// DailyCounts implements Log.
func (s *SQLStore) DailyCounts(ctx context.Context, from, to time.Time) ([]DayCount, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT day, kind, COUNT(*) FROM %s WHERE at_ms >= ? AND at_ms < ? GROUP BY day, kind ORDER BY day, kind", s.t.events), ms(from), ms(to))
	if err != nil {
		return nil, sqlErr("daily counts", err)
	}
	defer rows.Close()
	var out []DayCount
	for rows.Next() {
		var day, n int64
		var kind string
		if err := rows.Scan(&day, &kind, &n); err != nil {
			return nil, sqlErr("daily counts", err)
		}
		out = append(out, DayCount{Day: time.Unix(day, 0).UTC(), Kind: Kind(kind), Count: n})
	}
	if err := rows.Err(); err != nil {
		return nil, sqlErr("daily counts", err)
	}
	return out, nil
}

// TopOffenders implements Log.
func (s *SQLStore) TopOffenders(ctx context.Context, since time.Time, limit int) ([]Offender, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT user_key, COUNT(*) AS c FROM %s WHERE at_ms >= ? GROUP BY user_key ORDER BY c DESC, user_key LIMIT ?", s.t.events), ms(since), limit)
	if err != nil {
		return nil, sqlErr("top offenders", err)
	}
	defer rows.Close()
	var out []Offender
	for rows.Next() {
		var o Offender
		if err := rows.Scan(&o.UserKey, &o.Count); err != nil {
			return nil, sqlErr("top offenders", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, sqlErr("top offenders", err)
	}
	return out, nil
}

// PutBlock implements Blocks.
func (s *SQLStore) PutBlock(ctx context.Context, b Block) error {
	if b.At.IsZero() {
		b.At = s.cfg.Now()
	}
	var until int64
	if !b.Permanent() {
		until = ms(b.Until)
	}
	q := fmt.Sprintf("INSERT INTO %s (user_key, until_ms, reason, at_ms) VALUES (?, ?, ?, ?)", s.t.blocks) +
		s.d.Upsert([]string{"user_key"}, "until_ms", "reason", "at_ms")
	if _, err := s.exec(ctx, q, b.UserKey, until, truncate(b.Reason, MaxBlockReasonLen), ms(b.At)); err != nil {
		return sqlErr("put block", err)
	}
	return nil
}

// DeleteBlock implements Blocks.
func (s *SQLStore) DeleteBlock(ctx context.Context, userKey int64) error {
	if _, err := s.exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE user_key = ?", s.t.blocks), userKey); err != nil {
		return sqlErr("delete block", err)
	}
	return nil
}

// GetBlock implements Blocks.
func (s *SQLStore) GetBlock(ctx context.Context, userKey int64, now time.Time) (Block, bool, error) {
	var until, at int64
	b := Block{UserKey: userKey}
	err := s.db.QueryRowContext(ctx, fmt.Sprintf("SELECT until_ms, reason, at_ms FROM %s WHERE user_key = ?", s.t.blocks), userKey).Scan(&until, &b.Reason, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Block{}, false, nil
	}
	if err != nil {
		return Block{}, false, sqlErr("get block", err)
	}
	b.At = fromMs(at)
	if until != 0 {
		b.Until = fromMs(until)
		if !now.Before(b.Until) {
			return Block{}, false, nil
		}
	}
	return b, true, nil
}

// ActiveBlocks implements BlockLister: one SELECT of the blocks in force at
// now, at most limit.
func (s *SQLStore) ActiveBlocks(ctx context.Context, now time.Time, limit int) ([]Block, error) {
	rows, err := s.db.QueryContext(ctx, fmt.Sprintf("SELECT user_key, until_ms, reason, at_ms FROM %s WHERE until_ms = 0 OR until_ms > ? LIMIT ?", s.t.blocks), ms(now), limit)
	if err != nil {
		return nil, sqlErr("list blocks", err)
	}
	defer rows.Close()
	var out []Block
	for rows.Next() {
		var b Block
		var until, at int64
		if err := rows.Scan(&b.UserKey, &until, &b.Reason, &at); err != nil {
			return nil, sqlErr("list blocks", err)
		}
		b.At = fromMs(at)
		if until != 0 {
			b.Until = fromMs(until)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, sqlErr("list blocks", err)
	}
	return out, nil
}

// Redeem implements Redemptions: INSERT IGNORE on the (store,
// transaction_id) primary key; when the row existed, read it back in a
// transaction that commits a logged change after it (see Redemptions).
func (s *SQLStore) Redeem(ctx context.Context, r Redemption) (Redemption, bool, error) {
	if err := checkRedemption(&r); err != nil {
		return Redemption{}, false, err
	}
	if r.At.IsZero() {
		r.At = s.cfg.Now()
	}
	res, err := s.exec(ctx, fmt.Sprintf("%s %s (store, transaction_id, user_key, product_id, at_ms) VALUES (?, ?, ?, ?, ?)", s.d.InsertIgnore(), s.t.reds),
		r.Store, r.TransactionID, r.UserKey, r.ProductID, ms(r.At))
	if err != nil {
		return Redemption{}, false, sqlErr("redeem", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return r, true, nil
	}
	var old Redemption
	err = s.write(ctx, func(ctx context.Context) (err error) {
		old, err = s.redeemedBefore(ctx, r)
		return err
	})
	if err != nil {
		return Redemption{}, false, sqlErr("redeem: read back", err)
	}
	return old, false, nil
}

// redeemedBefore reads back the redemption that r collided with, in a
// transaction that also writes to its row and commits. The row may be
// another request's commit that is visible but not yet durable (InnoDB
// makes a commit visible before it flushes its redo log); the caller acts
// on it (grants, or refuses the receipt), so it must survive a crash. Two
// updates that cancel out (at_ms + 1, then - 1) give the transaction logged
// changes that follow that commit in the log without changing the row;
// committing them makes it durable too. Only a receipt presented again
// pays for this.
func (s *SQLStore) redeemedBefore(ctx context.Context, r Redemption) (Redemption, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Redemption{}, err
	}
	defer tx.Rollback()
	n, err := sqldialect.WriteUnchanged(ctx, tx, s.t.reds, "at_ms", "store = ? AND transaction_id = ?", r.Store, r.TransactionID)
	if err != nil {
		return Redemption{}, err
	}
	if n != 1 {
		return Redemption{}, fmt.Errorf("redemption of %s %q not found", r.Store, r.TransactionID)
	}
	where := " WHERE store = ? AND transaction_id = ?"
	old := Redemption{Store: r.Store, TransactionID: r.TransactionID}
	var at int64
	if err := tx.QueryRowContext(ctx, fmt.Sprintf("SELECT user_key, product_id, at_ms FROM %s", s.t.reds)+where, r.Store, r.TransactionID).
		Scan(&old.UserKey, &old.ProductID, &at); err != nil {
		return Redemption{}, err
	}
	if err := tx.Commit(); err != nil {
		return Redemption{}, err
	}
	old.At = fromMs(at)
	return old, nil
}

// sqlErr prefixes a database error with the store operation, classified
// at the store's boundary: a database that is down, slow, read-only or
// picked the transaction as a deadlock victim gives protocol.CodeUnavailable
// (retryable), other errors stay internal.
func sqlErr(op string, err error) error {
	return fmt.Errorf("anticheat: %s: %w", op, backend.Classify(err))
}
