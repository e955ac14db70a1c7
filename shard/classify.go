package shard

import "github.com/madang-io/madang/internal/backend"

// ClassifyError is madang's one classification of backend errors, for a
// game's own handler code: it returns err as a *protocol.Error with
// protocol.CodeUnavailable (41, retryable; protocol.CodeTimeout for an
// ended deadline) when err says a backend is down, slow, restarting,
// read-only, out of connections or picked the transaction as a deadlock
// victim — a lost or refused connection, an i/o timeout, EOF on a
// connection, driver.ErrBadConn, sql.ErrConnDone, MySQL/MariaDB deadlock
// (1213), lock wait timeout (1205), read-only (1290, 1836), too many
// connections (1040), shutdown in progress (1053), server gone or lost
// (2006, 2013, the driver's ErrInvalidConn), SQLite busy or locked, the
// go-redis errors of a loading, read-only, cluster-down or unreachable
// Redis, or a context that ended. The cause stays in the chain (errors.Is
// and errors.As find the driver's error).
//
// Every other error is returned unchanged (nil stays nil): one that
// already carries a result code other than protocol.CodeInternal, and one
// that says the statement or the code is wrong (syntax, missing table,
// constraint, sql.ErrNoRows, sql.ErrTxDone), which is a bug and stays
// internal (40).
//
// madang's packages apply it at their boundaries (Router.Tx, Accounts,
// the session, idempotency and anticheat stores); call it on errors of
// queries your handlers run themselves, or wrap the whole handler chain:
//
//	resp, err := next.Serve(ctx, req)
//	return resp, shard.ClassifyError(err)
//
// session.ClassifyError is the same function.
func ClassifyError(err error) error { return backend.Classify(err) }
