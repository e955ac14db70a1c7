package shard

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/madang-io/madang/internal/backend"
	"github.com/madang-io/madang/internal/sqldialect"
)

// Identity is a login identity: the platform that vouches for the player
// ("google", "apple", "guest", a publisher's id) and the player's id there.
// Both compare byte for byte: case and trailing spaces make another
// identity, on every backend (see the package doc, "Character sets").
type Identity struct {
	Platform string // 1..MaxPlatformLen bytes of UTF-8
	ID       string // 1..MaxIdentityIDLen bytes of UTF-8
}

// Limits of an Identity, fixed by the shard_accounts columns.
const (
	MaxPlatformLen   = 32
	MaxIdentityIDLen = 191
)

func (id Identity) validate() error {
	if id.Platform == "" || len(id.Platform) > MaxPlatformLen || !utf8.ValidString(id.Platform) {
		return invalidf("identity platform must be 1..%d bytes of UTF-8", MaxPlatformLen)
	}
	if id.ID == "" || len(id.ID) > MaxIdentityIDLen || !utf8.ValidString(id.ID) {
		return invalidf("identity id must be 1..%d bytes of UTF-8", MaxIdentityIDLen)
	}
	return nil
}

// Accounts maps login identities to user keys (the shard_accounts table of
// the common database) and allocates a key, through its SQLDirectory, for
// an identity seen for the first time. Make one with NewAccounts.
type Accounts struct {
	dir *SQLDirectory
	cfg AccountsConfig // defaults filled in

	mu       sync.Mutex    // guards free and the block fields below
	free     []reservedKey // keys of a lost race, handed out first
	next     int64         // the current block's next key
	end      int64         // the current block's end (exclusive)
	reserved time.Time     // when the current block was reserved
	refill   chan struct{}
}

// reservedKey is a key of a block and when the block was reserved.
type reservedKey struct {
	key int64
	at  time.Time
}

// MaxKeyBlock bounds AccountsConfig.KeyBlock.
const MaxKeyBlock = 1024

// KeyBlockMaxAge is how long Register hands out the keys of a reserved
// block (AccountsConfig.KeyBlock); older blocks are dropped and their
// unused keys are never used.
const KeyBlockMaxAge = time.Minute

// AccountsConfig configures an Accounts. The zero value works: every
// default is given on its field.
type AccountsConfig struct {
	// Retries is how many times Register runs again after a lost race for
	// the same identity, a deadlock or a busy database (with
	// RetryPolicy's backoff). Default DefaultTxRetries (3), also for a
	// negative value: unlike Config.TxRetries there is no "no retry", as
	// a registration that lost a race must run again to find the winner's
	// key.
	Retries int
	// KeyBlock is how many user keys Register reserves from the directory
	// at a time (Hi/Lo allocation). 0 or 1, the default: one key per
	// registration, allocated in the registration's own transaction.
	// Larger values (at most MaxKeyBlock; more means MaxKeyBlock): one
	// UPDATE of a shard_databases row reserves a block of up to KeyBlock
	// consecutive keys of one database for this Accounts, and later
	// registrations take keys from it in memory, each one a single INSERT
	// — so concurrent registrations no longer queue on the chosen
	// database's row lock until their COMMIT, which is what limits a
	// login storm on MariaDB.
	//
	// What changes with blocks: a key is never handed out twice (next_key
	// only moves forward, across processes and restarts), but the keys of
	// a block not used when the process exits, or older than
	// KeyBlockMaxAge, are never used (gaps in the key sequence;
	// user_count counts them, since it counts reserved keys). The policy
	// balances whole blocks: with N processes a database may receive up
	// to N*KeyBlock users more than the others. A database closed or
	// drained by an operator still receives the remaining keys of blocks
	// already reserved from it, for at most KeyBlockMaxAge. A range's last
	// keys, too few for a whole block, are reserved one at a time.
	KeyBlock int
}

// NewAccounts returns the accounts of dir's common database, configured by
// cfg (defaults on AccountsConfig's fields).
func NewAccounts(dir *SQLDirectory, cfg AccountsConfig) *Accounts {
	if cfg.Retries <= 0 {
		cfg.Retries = DefaultTxRetries
	}
	cfg.KeyBlock = max(1, min(cfg.KeyBlock, MaxKeyBlock))
	return &Accounts{dir: dir, cfg: cfg, refill: make(chan struct{}, 1)}
}

// Lookup returns id's user key; ok is false when id never registered. A
// common database that cannot be reached gives ErrUnavailable
// (protocol.CodeUnavailable: retry), as does Register. Lookup only reads:
// a row registered moments ago by another transaction may not be durable
// yet, so log players in with Register, which makes it so.
func (a *Accounts) Lookup(ctx context.Context, id Identity) (userKey int64, ok bool, err error) {
	if err := id.validate(); err != nil {
		return 0, false, err
	}
	err = a.dir.db.QueryRowContext(ctx, "SELECT user_key FROM shard_accounts WHERE platform = ? AND external_id = ?", id.Platform, id.ID).Scan(&userKey)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, false, nil
	case err != nil:
		return 0, false, a.classify(ctx, fmt.Errorf("shard: lookup account: %w", err))
	}
	return userKey, true, nil
}

// Found is what Find learned about one identity: whether it has an
// account and, if so, its user key and when it was registered. Pass it to
// RegisterFound to log the identity in without looking it up again. The
// zero Found belongs to no identity (RegisterFound refuses it).
type Found struct {
	id        Identity
	userKey   int64
	createdAt int64 // Unix ms, shard_accounts.created_at
	ok        bool
}

// Identity returns the identity f is about.
func (f Found) Identity() Identity { return f.id }

// UserKey returns the user key found; ok is false when the identity had no
// account when it was looked up.
func (f Found) UserKey() (userKey int64, ok bool) { return f.userKey, f.ok }

// Find is Lookup returning a Found: one SELECT, the same as Lookup's.
// Callers that check an identity before logging it in (a block list, a
// maintenance allow-list) and then register it pass the Found on to
// RegisterFound, so a login reads the account once. Like Lookup it only
// reads: a row registered moments ago may not be durable yet.
func (a *Accounts) Find(ctx context.Context, id Identity) (Found, error) {
	if err := id.validate(); err != nil {
		return Found{}, err
	}
	key, createdAt, ok, err := a.lookup(ctx, id)
	if err != nil {
		return Found{}, err
	}
	return Found{id: id, userKey: key, createdAt: createdAt, ok: ok}, nil
}

// RegisterFound is Register for an identity looked up moments ago with
// Find (in the same request): it answers as Register would had its own
// lookup found what f found, without reading the row again. An account
// older than Register's confirm window (10 s) is answered from f with no
// query at all; a younger one is confirmed first, as Register does; an
// identity f found without an account is registered at once (a racing
// registration of the same identity makes the INSERT fail on the unique
// key, and RegisterFound then reads and confirms the winner's row, as
// Register does). Account rows are never changed or deleted, so f stays
// true once found; pass a Found on only within the request that made it.
func (a *Accounts) RegisterFound(ctx context.Context, f Found) (userKey int64, created bool, err error) {
	if err := f.id.validate(); err != nil {
		return 0, false, err
	}
	return a.register(ctx, f.id, &f)
}

// Register returns id's user key, allocating one (SQLDirectory.Allocate's
// policy) the first time id is seen; created reports whether it did.
//
// The allocation and the account row are written in one transaction of the
// common database. When two first logins of the same identity race, the
// loser's INSERT hits the unique key, its transaction rolls back (so its
// allocation and user_count increment vanish) and it returns the winner's
// key: both get the same user key. With AccountsConfig.KeyBlock > 1 the
// account row is one INSERT with a key of a block reserved earlier; the
// loser's key goes back to its Accounts for the next registration.
//
// An existing account whose row was created less than 10 s ago (or that
// won a race against this call) is returned only after Register committed
// a change to its row (which leaves it as it was): the row may be a racing
// registration's commit, visible before it is durable, and the key must
// not be answered if a crash could still take the row back. Older rows are
// read only, so ordinary logins stay one SELECT.
func (a *Accounts) Register(ctx context.Context, id Identity) (userKey int64, created bool, err error) {
	if err := id.validate(); err != nil {
		return 0, false, err
	}
	return a.register(ctx, id, nil)
}

// register is Register; found, if not nil, stands for the first attempt's
// lookup (RegisterFound).
func (a *Accounts) register(ctx context.Context, id Identity, found *Found) (userKey int64, created bool, err error) {
	retries := a.cfg.Retries
	// A lost race (the next lookup finds the winner's key) or a
	// deadlock/busy database: run again, RetryPolicy's loop.
	retry := RetryPolicy{Retries: retries}.internal()
	retry.Retryable = func(err error) bool { return sqldialect.IsDuplicateKey(err) || sqldialect.IsRetryable(err) }
	attempt := 0
	err = retry.Do(ctx, func(ctx context.Context) error {
		defer func() { attempt++ }()
		key, createdAt, ok := int64(0), int64(0), false
		if attempt == 0 && found != nil {
			key, createdAt, ok = found.userKey, found.createdAt, found.ok
		} else {
			var err error
			if key, createdAt, ok, err = a.lookup(ctx, id); err != nil {
				return &final{err}
			}
		}
		if ok {
			// A row we lost the race to, or one registered moments ago,
			// may be another transaction's commit that is visible but not
			// yet durable: make it durable before answering with its key.
			if attempt > 0 || a.dir.now()-createdAt < confirmWindow.Milliseconds() {
				if err := a.confirm(ctx, id); err != nil {
					return &final{a.classify(ctx, fmt.Errorf("shard: confirm account: %w", err))}
				}
			}
			userKey, created = key, false
			return nil
		}
		if a.blockSize() > 1 {
			key, err = a.registerFromBlock(ctx, id)
		} else {
			key, err = a.registerTx(ctx, id)
		}
		userKey, created = key, err == nil
		return err
	})
	var f *final
	switch {
	case err == nil:
		return userKey, created, nil
	case errors.As(err, &f):
		return 0, false, f.err
	}
	return 0, false, a.classify(ctx, err)
}

// final carries an error Register returns as it is, without retrying or
// classifying it again.
type final struct{ err error }

func (f *final) Error() string { return f.err.Error() }

// confirmWindow: Register confirms (see confirm) an account row created
// less than this long ago by its created_at. A commit is flushed by its
// own session before that session answers, and InnoDB flushes its log
// every second besides; a row older than this was durable long ago unless
// the clocks of the processes differ by more.
const confirmWindow = 10 * time.Second

// lookup is Lookup with the row's created_at.
func (a *Accounts) lookup(ctx context.Context, id Identity) (userKey, createdAt int64, ok bool, err error) {
	err = a.dir.db.QueryRowContext(ctx, "SELECT user_key, created_at FROM shard_accounts WHERE platform = ? AND external_id = ?", id.Platform, id.ID).Scan(&userKey, &createdAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, 0, false, nil
	case err != nil:
		return 0, 0, false, a.classify(ctx, fmt.Errorf("shard: lookup account: %w", err))
	}
	return userKey, createdAt, true, nil
}

// confirm makes id's account row durable before Register answers with a
// key it read: InnoDB makes a commit visible to other transactions before
// its redo log is flushed, so a racing registration's row can be read and
// then lost in a crash — and its key handed out again (the allocation rolls
// back with it) while the game already created a player under it. confirm
// commits two updates of the row that cancel out (created_at + 1, then
// - 1): logged changes after that commit in the log, so once this commit
// is durable, so is the row. The row is unchanged.
func (a *Accounts) confirm(ctx context.Context, id Identity) error {
	return a.dir.write(ctx, func() error { return a.confirmTx(ctx, id) })
}

func (a *Accounts) confirmTx(ctx context.Context, id Identity) error {
	tx, err := a.dir.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := sqldialect.WriteUnchanged(ctx, tx, "shard_accounts", "created_at", "platform = ? AND external_id = ?", id.Platform, id.ID); err != nil {
		return err
	}
	return tx.Commit()
}

// unavailablePing bounds the ping that tells a lost common database from
// a query that failed on a live one.
const unavailablePing = 2 * time.Second

// classify turns an error of the common database into ErrUnavailable
// (protocol.CodeUnavailable, retryable) when the database cannot be
// reached — a connection error, or any error while the database does not
// answer a ping, as the Router treats a game database it cannot open — and
// returns other errors (a statement refused by a live database) as they
// are. Errors of this package (ErrInvalid, ErrNoOpenDatabase, ...) and
// ctx's own end pass unchanged.
func (a *Accounts) classify(ctx context.Context, err error) error {
	var se *Error
	if err == nil || errors.As(err, &se) || ctx.Err() != nil {
		return err
	}
	if !backend.Unavailable(err) {
		pctx, cancel := context.WithTimeout(ctx, unavailablePing)
		perr := a.dir.db.PingContext(pctx)
		cancel()
		if perr == nil || ctx.Err() != nil {
			return err
		}
	}
	return &Error{Kind: ErrUnavailable, Err: err}
}

func (a *Accounts) registerTx(ctx context.Context, id Identity) (key int64, err error) {
	err = a.dir.write(ctx, func() (err error) {
		key, err = a.registerOne(ctx, id)
		return err
	})
	return key, err
}

// registerOne is registerTx's transaction: the allocation and the account
// row.
func (a *Accounts) registerOne(ctx context.Context, id Identity) (int64, error) {
	tx, err := a.dir.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("shard: register: %w", err)
	}
	defer tx.Rollback()
	key, _, err := a.dir.allocate(ctx, tx)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO shard_accounts (platform, external_id, user_key, created_at) VALUES (?, ?, ?, ?)",
		id.Platform, id.ID, key, a.dir.now()); err != nil {
		return 0, fmt.Errorf("shard: register: %w", err)
	}
	if err := tx.Commit(); err != nil {
		if ctx.Err() != nil {
			// database/sql rolled the transaction back when ctx ended:
			// report that, not sql.ErrTxDone.
			err = ctx.Err()
		}
		return 0, fmt.Errorf("shard: register: %w", err)
	}
	return key, nil
}

func (a *Accounts) blockSize() int { return a.cfg.KeyBlock }

// registerFromBlock inserts id's account row with a key of this Accounts'
// block, in one statement. A key whose INSERT certainly did not happen (a
// duplicate identity, a deadlock) goes back to be handed out again; after
// an error that leaves it unknown (a lost connection, ctx's end) the key
// is dropped.
func (a *Accounts) registerFromBlock(ctx context.Context, id Identity) (int64, error) {
	rk, err := a.takeKey(ctx)
	if err != nil {
		return 0, err
	}
	err = a.dir.write(ctx, func() error {
		_, err := a.dir.db.ExecContext(ctx, "INSERT INTO shard_accounts (platform, external_id, user_key, created_at) VALUES (?, ?, ?, ?)",
			id.Platform, id.ID, rk.key, a.dir.now())
		return err
	})
	if err != nil {
		if ctx.Err() == nil && (sqldialect.IsDuplicateKey(err) || sqldialect.IsRetryable(err)) {
			a.mu.Lock()
			a.free = append(a.free, rk)
			a.mu.Unlock()
		}
		return 0, fmt.Errorf("shard: register: %w", err)
	}
	return rk.key, nil
}

// takeKey hands out a reserved key, reserving a new block when none is
// left. One refill at a time per Accounts; the others wait for it (or for
// ctx).
func (a *Accounts) takeKey(ctx context.Context) (reservedKey, error) {
	if rk, ok := a.popKey(); ok {
		return rk, nil
	}
	select {
	case a.refill <- struct{}{}:
	case <-ctx.Done():
		return reservedKey{}, ctx.Err()
	}
	defer func() { <-a.refill }()
	if rk, ok := a.popKey(); ok { // another goroutine refilled
		return rk, nil
	}
	var first, n int64
	err := a.dir.write(ctx, func() (err error) {
		first, n, _, err = a.dir.allocateBlock(ctx, a.dir.db, int64(a.blockSize()))
		return err
	})
	if err != nil {
		return reservedKey{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next, a.end, a.reserved = first+1, first+n, a.dir.clock.Now()
	return reservedKey{first, a.reserved}, nil
}

// popKey takes a key younger than KeyBlockMaxAge from the free list or the
// current block, dropping older ones.
func (a *Accounts) popKey() (reservedKey, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.dir.clock.Now()
	fresh := func(at time.Time) bool { return now.Sub(at) < KeyBlockMaxAge && !now.Before(at) }
	for n := len(a.free); n > 0; n-- {
		rk := a.free[n-1]
		a.free = a.free[:n-1]
		if fresh(rk.at) {
			return rk, true
		}
	}
	if a.next < a.end && fresh(a.reserved) {
		rk := reservedKey{a.next, a.reserved}
		a.next++
		return rk, true
	}
	a.next, a.end = 0, 0
	return reservedKey{}, false
}
