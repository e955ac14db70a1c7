// Package idempotency makes game commands replay-safe: when a client lost a
// response and sends the same request again, the server returns the stored
// result instead of running the command twice — no purchase bought twice,
// no reward granted twice.
//
// # The model
//
// A request is identified by a key — the envelope's request id
// (protocol.Request.RequestID, which the HTTP adapter fills from an
// Idempotency-Key header when the envelope has none) — scoped by the user
// and the command (Scope), and carries a Fingerprint: the SHA-256 of its
// payload bytes. For each (scope, key):
//
//   - The first arrival marks the key in flight atomically, runs the
//     function, stores its result (code, message and payload, byte for
//     byte) and returns it.
//   - A retry after completion gets the stored result with Outcome.Replay
//     (Response.Replay) set; the function does not run. Per-reply fields —
//     sequence number, server time, the frame's nonce — are never stored:
//     protocol.Dispatch and the transport stamp them fresh.
//   - A duplicate while the first is in flight waits for it (Config.InFlight
//     = WaitInFlight, bounded by WaitTimeout; every caller then gets the same
//     answer) or is answered at once (AnswerInFlight) with
//     protocol.CodeInFlight and a retry-after hint (Config.RetryAfter).
//   - The same key with another fingerprint is refused with
//     protocol.CodeRequestIDReused (ErrKeyReused); nothing runs.
//   - No key: the function runs without idempotency, or the call is refused
//     with CodeBadRequest (ErrMissingKey) when Config.RequireKey is set.
//
// Errors: a retryable failure releases the key so a retry can run; a
// definitive result is stored like a success. IsRetryable documents the
// default (context errors, backend outages as shard.ClassifyError
// classifies them, CodeUnavailable, CodeTimeout, CodeInFlight, CodeRateLimited and CodeInternal are retryable;
// every other code, including game codes at protocol.CodeGameBase and above,
// is definitive); a function overrides it with Retryable(err) or
// Definitive(err).
//
// Effects outside the store's transaction (rankings, pushes) are registered
// with AfterCommit: they run after the result is stored, only on the first
// execution, never on a replay.
//
// # Stores
//
// Keeper runs the state machine over a lease-based Store:
//
//   - MemoryStore: one process, for development servers and tests.
//   - RedisStore: one Lua script per transition (redis.NewScript) on one
//     hash per key, hash-tagged by user ({u:<userKey>}) so it works on
//     Redis Cluster. An in-flight mark left by a crashed process expires
//     after Config.Lease; the function's context deadline is Lease minus a
//     fifth, so a lease never expires under a function that honours its
//     context.
//
// A lease-based store cannot make the function's own effects and the
// stored result atomic: if the process dies after the effect and before
// Complete, a retry after the lease runs the function again. For exactly
// once, use SQLStore: DoTx(ctx, tx, ...) inserts the key row in the
// caller's *sql.Tx first (a concurrent duplicate blocks on the primary key
// until that transaction ends), the game's writes go in the same
// transaction, and the result is written to the key row before the caller
// commits — the result commits exactly when the writes do, even if the
// process dies between commit and reply. The store adds two statements to
// the transaction.
//
// A replay answers only what is durable. Reading the original's committed
// key row is not proof that it survives a crash: InnoDB makes a commit
// visible to other transactions before it flushes the commit to its redo
// log. So a SQL replay writes to the key row (moves its expiry 1 ms) and
// commits before it is answered: its change is logged after the original's
// commit and the log is flushed in order, so when the replay's commit is
// durable, so is the result it answers. SQLStore.Do commits the replay
// itself; a DoTx caller commits tx before sending the replay, and answers a
// retryable error instead if that commit fails. A duplicate of a key whose
// original has not committed waits for it on the key row's lock (or
// answers in flight); it never answers an uncommitted result. The price is
// one logged change and one durable commit per replay: on MariaDB a replay
// then costs about as much as a first run (BENCHMARKS.md). SQLite needs no
// write (it makes a commit visible only after its log was written and
// synced as its synchronous setting demands); a replay there only commits
// its read. Lease-based stores answer what the store holds: with Redis,
// durability is Redis's own (appendfsync).
//
// SQLStore.Do runs the transaction itself on the user's database and hands
// it to the function through TxFrom. Behind a shard router, inject the
// router's transactions (SQLConfig{Tx: router.Tx}; this package never
// imports shard): the store then needs no database of its own, the
// router's retry policy reruns a deadlock victim with the same key, and the
// router counts the store's transactions with the game's. Do checks the
// key before any database is chosen, and a routing error keeps its own
// code (an unknown user key is a definitive bad request, not unavailable).
// The key table is a migration set (SQLStore.Migrations) that
// shard.MigrateAll applies to every game database. On MariaDB
// the key's lock wait is bounded per statement (SET STATEMENT
// innodb_lock_wait_timeout=N FOR INSERT ...), one second under
// AnswerInFlight; on MySQL put innodb_lock_wait_timeout in the DSN. On
// SQLite, writers are serialised by _txlock=immediate and bounded by
// busy_timeout, so a duplicate refused while another write runs answers
// CodeUnavailable rather than CodeInFlight.
//
// # Transports
//
// Do(ctx, scope, key, fingerprint, fn) is the generic API (the Doer
// interface: *Keeper and *SQLStore). Middleware is the protocol middleware;
// it reads Request.Principal.UserKey, so it must come after the session
// middleware that fills Principal (without a Principal the user is 0).
// Dispatched requests are answered with HTTP 200 whatever their code, as the
// protocol defines; HTTPStatus, wrapped around protocol.HTTPHandler, gives
// the Idempotency-Key header path the draft's statuses: 400 for a missing
// key where required, 409 in flight (with Retry-After), 422 reused, with an
// application/problem+json body for plain JSON requests.
//
// Stats counts runs, replays, in-flight answers, waits, reuses and
// releases; replays are logged at debug level through Config.Logger.
//
// # Against the IETF draft and payment APIs
//
// The package follows draft-ietf-httpapi-idempotency-key-header-07 and the
// idempotency keys of large payment APIs (Stripe's Idempotency-Key,
// PayPal's PayPal-Request-Id): the client makes up a unique key per logical
// request and resends it with every retry; the server stores the first
// result and returns it for retries; a key reused with a different request
// is an error (the draft's 422); a concurrent duplicate is refused (409);
// keys are kept for a published time (24 h by default, Stripe's minimum)
// and afterwards treated as new. Where it differs, and why:
//
//   - The key is the envelope's request id first, the header only when the
//     envelope has none: madang's frames are often sealed, and the id must
//     survive re-sealing on retry. The header value is taken verbatim, not
//     parsed as a Structured Field string: quotes, if sent, are part of the
//     key, the same on every retry. Keys are at most 128 bytes (Stripe
//     allows 255): the protocol's limit.
//   - Keys are scoped by user and command, so clients only need ids unique
//     per user; the same id sent to another command is a new request, not a
//     422.
//   - The fingerprint is the SHA-256 of the payload bytes as received, with
//     no JSON canonicalisation: a retrying client resends the same bytes
//     (madang's client does), canonicalising would cost a parse per request
//     and has its own ambiguities (number forms, duplicate members), and a
//     client that re-encodes differently is told at once (request id
//     reused). Sequence number, client time and token are not in the
//     fingerprint: they legitimately change on retries.
//   - Duplicates in flight wait for the first by default and get its answer
//     (replayed) instead of an immediate 409: mobile clients retry quickly
//     after a timeout, and waiting answers them in one round trip.
//     AnswerInFlight gives the draft's behaviour.
//   - Failures that may be transient (unavailable, timeout, internal) are not
//     stored, unlike Stripe, which stores 500s: with the SQL store the
//     transaction rolled back, so nothing happened and a retry should run.
//     A function that fails internally after an effect outside a transaction
//     must say Definitive(err).
//   - A replay is marked in the envelope (Response.Replay), not with a
//     header, so it works over websocket too.
//   - On the header path, a frame request keeps its frame body with the
//     draft's status: problem+json cannot be sealed, and madang's client
//     reads 4xx frames.
//
// # Limits
//
// Commands up to MaxCommandLen bytes, keys up to MaxKeyLen, stored payloads
// up to MaxPayloadLen (a larger result is not stored: ErrResultTooLarge),
// messages cut to MaxMessageLen.
package idempotency
