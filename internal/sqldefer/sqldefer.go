// Package sqldefer marks a statement whose result its caller does not
// read, so that a pipelining driver (internal/mysqlpipe) may send it later,
// together with the transaction's next statement or its COMMIT. Packages
// that may not import shard (idempotency) mark their statements with it;
// shard re-exports it as shard.Deferred.
//
// A driver that does not pipeline ignores the mark: the statement runs at
// once, as it always did.
package sqldefer

import "context"

type key struct{}

// With returns ctx marked: a statement run with it inside a transaction may
// be deferred. Mark one call, not a context passed on.
func With(ctx context.Context) context.Context {
	return context.WithValue(ctx, key{}, true)
}

// Is reports whether ctx carries the mark.
func Is(ctx context.Context) bool {
	v, _ := ctx.Value(key{}).(bool)
	return v
}
