package anticheat

import (
	"context"
	"time"
)

// SignatureEntry is the registered signature of one client version.
type SignatureEntry struct {
	// Version is a canonical "x.y.z.w" version or "latest".
	Version string
	// APKMD5 is the 32-character lower-case hex MD5 of the APK signature
	// (the talk's value); empty when only certificate digests are used.
	APKMD5 string
	// CertSHA256 are lower-case hex SHA-256 digests of the signing
	// certificates: the whole key-rotation lineage, oldest first.
	CertSHA256 []string
	UpdatedAt  time.Time // when the entry was last set
}

// SignatureStore keeps the signature registry. Implementations: MemoryStore,
// SQLStore.
type SignatureStore interface {
	// PutSignature creates or replaces the entry of e.Version.
	PutSignature(ctx context.Context, e SignatureEntry) error
	// DeleteSignature removes version's entry; deleting a missing entry is
	// not an error.
	DeleteSignature(ctx context.Context, version string) error
	// GetSignature returns version's entry, ok false when there is none.
	GetSignature(ctx context.Context, version string) (e SignatureEntry, ok bool, err error)
	// ListSignatures returns every entry, in no particular order.
	ListSignatures(ctx context.Context) ([]SignatureEntry, error)
}

// Event is one hack-log record.
type Event struct {
	ID            int64     // assigned by the log
	UserKey       int64     // the user the verdict is about
	Kind          Kind      // at most MaxKindLen bytes
	Reason        Reason    // the verdict's reason
	Detail        string    // truncated to MaxDetailLen
	ClientVersion string    // as the client reported it
	At            time.Time // when it happened
}

// DayCount is the number of events of one kind on one UTC day.
type DayCount struct {
	Day   time.Time // midnight UTC
	Kind  Kind      // the verdict kind
	Count int64     // events of Kind on Day
}

// Offender is a user and how many events they have in a period.
type Offender struct {
	UserKey int64 // the user
	Count   int64 // their events in the period
}

// Log is the hack log with per-user counters. Implementations: MemoryStore,
// SQLStore.
type Log interface {
	// Record appends e (Kind at most MaxKindLen bytes, Detail truncated to
	// MaxDetailLen) and bumps the user's counter of e.Kind. It returns the
	// user's count of that kind and over all kinds, after this event.
	Record(ctx context.Context, e Event) (kindCount, total int64, err error)
	// UserCounts returns the user's counters by kind.
	UserCounts(ctx context.Context, userKey int64) (map[Kind]int64, error)
	// UserEvents returns the user's latest events, newest first, at most
	// limit (1–1000).
	UserEvents(ctx context.Context, userKey int64, limit int) ([]Event, error)
	// DailyCounts returns events per UTC day and kind in [from, to), ordered
	// by day then kind.
	DailyCounts(ctx context.Context, from, to time.Time) ([]DayCount, error)
	// TopOffenders returns the users with the most events since since,
	// most first (ties by user key), at most limit (1–1000).
	TopOffenders(ctx context.Context, since time.Time, limit int) ([]Offender, error)
}

// Block keeps a user out.
type Block struct {
	UserKey int64 // the blocked user
	// Until is when the block ends; zero means permanent.
	Until  time.Time
	Reason string    // why, for operators (at most MaxBlockReasonLen bytes)
	At     time.Time // when the block was put
}

// Permanent reports whether b never ends.
func (b Block) Permanent() bool { return b.Until.IsZero() }

// Blocks is the block list. Implementations: MemoryStore, SQLStore.
type Blocks interface {
	// PutBlock creates or replaces the block of b.UserKey.
	PutBlock(ctx context.Context, b Block) error
	// DeleteBlock lifts the user's block; lifting none is not an error.
	DeleteBlock(ctx context.Context, userKey int64) error
	// GetBlock returns the user's block if it is in force at now.
	GetBlock(ctx context.Context, userKey int64, now time.Time) (b Block, ok bool, err error)
}

// BlockLister is a Blocks backend that can list the blocks in force, so a
// BlockCache can keep the whole block list in process
// (BlockCacheConfig.WholeList). MemoryStore and SQLStore are BlockListers.
type BlockLister interface {
	// ActiveBlocks returns the blocks in force at now (permanent, or
	// ending after now), at most limit of them, in no particular order.
	ActiveBlocks(ctx context.Context, now time.Time, limit int) ([]Block, error)
}

// Redemption binds a store transaction to the account that redeemed it.
type Redemption struct {
	Store         string    // "apple", "google", or a publisher's name
	TransactionID string    // unique per store
	UserKey       int64     // the account that redeemed it
	ProductID     string    // what was bought
	At            time.Time // when it was redeemed
}

// Redemptions records redeemed transactions, unique per (store,
// transaction id) across all game databases: keep the SQL table in the
// common database. Implementations: MemoryStore, SQLStore.
type Redemptions interface {
	// Redeem inserts r unless (r.Store, r.TransactionID) exists. It returns
	// the stored redemption (r itself or the earlier one) and whether this
	// call created it. Concurrent calls for one transaction create once.
	// An earlier redemption is returned only once it is durable: having
	// seen another transaction's commit does not prove that it survives a
	// crash, so a SQL implementation commits a change of its own after
	// reading it (the database's log is made durable in order).
	Redeem(ctx context.Context, r Redemption) (stored Redemption, created bool, err error)
}

// Store is everything a backend keeps.
type Store interface {
	SignatureStore
	Log
	Blocks
	Redemptions
}

// Field limits of the stores.
const (
	MaxStoreLen         = 32
	MaxTransactionIDLen = 128
	MaxProductIDLen     = 128
	MaxBlockReasonLen   = 255
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

func checkEvent(e *Event) error {
	if e.Kind == "" || len(e.Kind) > MaxKindLen {
		return newErr(ErrBadInput, "event kind %q: 1–%d bytes", e.Kind, MaxKindLen)
	}
	if len(e.Reason) > MaxKindLen*2 {
		e.Reason = Reason(truncate(string(e.Reason), MaxKindLen*2))
	}
	e.Detail = truncate(e.Detail, MaxDetailLen)
	e.ClientVersion = truncate(e.ClientVersion, maxVersionLen)
	return nil
}

func checkLimit(limit int) error {
	if limit < 1 || limit > 1000 {
		return newErr(ErrBadInput, "limit %d: 1–1000", limit)
	}
	return nil
}

func checkRedemption(r *Redemption) error {
	switch {
	case r.Store == "" || len(r.Store) > MaxStoreLen:
		return newErr(ErrBadInput, "store %q: 1–%d bytes", r.Store, MaxStoreLen)
	case r.TransactionID == "" || len(r.TransactionID) > MaxTransactionIDLen:
		return newErr(ErrBadInput, "transaction id: 1–%d bytes", MaxTransactionIDLen)
	case len(r.ProductID) > MaxProductIDLen:
		return newErr(ErrBadInput, "product id longer than %d bytes", MaxProductIDLen)
	}
	return nil
}

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
