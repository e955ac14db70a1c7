package shard

import (
	"errors"
	"fmt"

	"github.com/madang-io/madang/protocol"
)

// Sentinel errors. Errors returned by this package wrap one of them (test
// with errors.Is) and, where a client could be told something, carry a
// protocol result code (protocol.CodeOf finds it).
var (
	// ErrUnknownKey: no database in the directory owns the user key (or the
	// key is not positive). Code: protocol.CodeBadRequest.
	ErrUnknownKey = errors.New("shard: unknown user key")
	// ErrUnavailable: the user's database cannot be reached or opened right
	// now. Nothing was committed; the request can be retried. Code:
	// protocol.CodeUnavailable.
	ErrUnavailable = errors.New("shard: database unavailable")
	// ErrSchemaBehind: the user's database has not applied every migration
	// the router was configured with, or a migration is marked dirty. Code:
	// protocol.CodeMaintenance.
	ErrSchemaBehind = errors.New("shard: database schema is behind or dirty")
	// ErrReadOnly: the user's database is in state read_only; DB and Tx
	// refuse it, ReadDB still serves it. Code: protocol.CodeMaintenance.
	ErrReadOnly = errors.New("shard: database is read-only")
	// ErrNoOpenDatabase: Allocate found no open database with free keys.
	// Code: protocol.CodeUnavailable.
	ErrNoOpenDatabase = errors.New("shard: no open database with free user keys")
	// ErrClosed: the Router was closed.
	ErrClosed = errors.New("shard: router closed")
	// ErrInvalid: bad input (an identity without platform or id, a directory
	// entry with an empty or overlapping key range, a bad migration file
	// name). Code: protocol.CodeBadRequest.
	ErrInvalid = errors.New("shard: invalid input")
	// ErrDirty: a migration was started and not finished (MariaDB DDL commits
	// implicitly, so a failed migration can leave a half-applied schema). An
	// operator must repair the database and clear the dirty row in
	// schema_migrations. Code: protocol.CodeMaintenance.
	ErrDirty = errors.New("shard: migration dirty")
)

// Error is the typed error of this package: which sentinel (Kind), for which
// user key and database, and the underlying cause. It implements
// protocol.Coder.
type Error struct {
	Kind    error // one of the ErrXxx sentinels
	UserKey int64 // 0 when not about one user
	DBID    int   // 0 when not about one database
	Err     error // cause, may be nil
}

// Error implements error.
func (e *Error) Error() string {
	s := e.Kind.Error()
	if e.UserKey != 0 {
		s += fmt.Sprintf(" (user key %d)", e.UserKey)
	}
	if e.DBID != 0 {
		s += fmt.Sprintf(" (db %d)", e.DBID)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrXxx) true for the Kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ResultCode implements protocol.Coder.
func (e *Error) ResultCode() protocol.Code {
	switch e.Kind {
	case ErrUnknownKey, ErrInvalid:
		return protocol.CodeBadRequest
	case ErrUnavailable, ErrNoOpenDatabase, ErrClosed:
		return protocol.CodeUnavailable
	case ErrSchemaBehind, ErrReadOnly, ErrDirty:
		return protocol.CodeMaintenance
	}
	return protocol.CodeInternal
}

var _ protocol.Coder = (*Error)(nil)

func invalidf(format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Err: fmt.Errorf(format, args...)}
}
