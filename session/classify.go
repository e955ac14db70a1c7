package session

import "github.com/madang-io/madang/internal/backend"

// ClassifyError is madang's one classification of backend errors (the
// same function as shard.ClassifyError), for a game's own code that calls
// Redis (or a database) itself: it returns err as a *protocol.Error with
// protocol.CodeUnavailable (41, retryable; protocol.CodeTimeout for an
// ended deadline) when err says a backend is down, slow, restarting,
// read-only or out of connections — for Redis: a refused, reset or timed
// out connection, EOF, the LOADING, READONLY, CLUSTERDOWN, TRYAGAIN,
// MASTERDOWN, OOM, max-clients and BUSY replies, redis.ErrPoolTimeout, a
// client closed while serving (redis.ErrClosed); a context that ended; and
// the SQL errors shard.ClassifyError lists. The cause stays in the chain.
// Every other error (redis.Nil, WRONGTYPE, a script error, an error that
// already carries a result code other than protocol.CodeInternal) is
// returned unchanged; nil stays nil.
//
// This package's stores already return ErrUnavailable (CodeUnavailable)
// for every Redis failure.
func ClassifyError(err error) error { return backend.Classify(err) }
