// Package session keeps login sessions, a per-user cache and rankings for a
// stateless game server, with a memory backend (one process) and Redis
// (one node, hand-sharded nodes routed by user key, Sentinel or Cluster).
//
// # Sessions
//
// A login calls Store.Create with what it knows about the user and client
// (CreateParams) and gets a Session:
//
//   - ID, the key id "<userKey>.<sid>" (sid: 72 random bits, base64url). It
//     is public: it names the session in authenticated frames
//     (protocol.Request.KeyID), in logs (protocol.Principal.SessionID), in
//     events and in Store.Revoke.
//   - Token, the bearer token "<userKey>.<random>", where the random part is
//     the sid followed by 192 more bits from crypto/rand (base64url): the ID
//     plus a secret. The client sends it in every request
//     (protocol.Request.Token); only over TLS, never in logs. A store finds
//     the session by the sid and compares the secret part, so a token needs
//     no index of its own. Both start with the user key, so a lookup routes
//     to the user's Redis node without a global index.
//   - Secret, 32 random bytes for the authenticated frame mode
//     (protocol.NewKeys), and Counter, the highest accepted frame counter.
//   - the user key, shard id, client version, platform, device id, country,
//     language, created and last-seen times, and the game's own Attrs.
//
// Store.Get validates a token and slides the session's TTL; Store.GetFrame
// does the same for a key id and, in the same step, accepts the frame
// counter at most once, in a protocol.ReplayWindow: above the highest
// accepted, or less than protocol.ReplayWindowSize (64) below it and not
// seen before (frames of one session over HTTP and a websocket may arrive
// slightly out of counter order). On Redis each is one Lua script: one
// round trip (tested with a go-redis hook).
//
// One session per user is the default (Config.AllowMultiple off): a new
// login kicks the user's older sessions. A kicked session answers ErrKicked
// (protocol.CodeKicked), a revoked one ErrRevoked (CodeSessionRevoked), an
// expired one ErrExpired (CodeSessionExpired): ended sessions are kept as
// tombstones for Config.Tombstone so the client learns why, and after that a
// token is simply unknown (ErrNotFound, CodeUnauthorized). A stale frame
// counter is protocol.ErrReplayed (CodeReplayed); a backend failure is
// ErrUnavailable (CodeUnavailable, retryable). Kicks and revocations are
// published as Events (Store.Subscribe; Redis pub/sub across nodes) so a
// realtime hub on any node can drop the connection that used the session.
// A Redis subscription checks itself with a probe (Config.ProbeInterval)
// and follows its node's commands to another server, such as the new master
// after a Sentinel failover, which go-redis does not do for pub/sub.
// Both stores count what they did in Stats, for metrics.
//
// # Time
//
// Expiry is computed from Config.Now, in the memory store and in Redis
// alike: the Redis session hash holds its expiry time and the scripts
// compare it with the caller's clock; Redis TTLs (renewed about once per
// TTL, to at most 2*TTL plus the tombstone) only collect garbage. So a test
// clock (sessiontest.Clock) drives the conformance suite on every backend
// without sleeping, and servers whose clocks differ by a few seconds
// disagree about expiry by that much.
//
// # Protocol integration
//
// Middleware authenticates every request (except Public commands such as
// login) by key id and counter for authenticated frames, else by token, and
// fills protocol.Request.Principal. A Public command in an authenticated
// frame has its counter accepted all the same, so every authenticated frame
// runs at most once per session. KeyResolver implements
// protocol.KeyResolver for the HTTP adapter: it caches the keys derived from
// immutable session secrets in process; revocation and the counter are still
// enforced by the middleware's GetFrame. It deliberately does not implement
// protocol.CounterGuard, which would check the counter a second time.
//
// # Routing Redis by user key
//
// A Router maps a user key to one of N Redis clients by Modulo (userKey mod
// N) or Ranges (the first user key of each node, as user keys are allocated
// per database). Every key of a user carries the hash tag {u:<userKey>}, so
// every script touches a single slot and any client works as a node: a
// plain client, a Sentinel failover client or a Cluster client. To add a
// node, build the new Router with RouterConfig.Previous set to the old one:
// new sessions go to the new home, reads that miss there fall back to the
// old home and revocations reach both, so nobody is logged out; drop
// Previous after TTL plus Tombstone.
//
// OpenRedis opens the two usual layouts from a list of addresses, as a
// server's flags give them: RedisOptions.Addrs, one client per node routed
// by user key, or RedisOptions.ClusterAddrs, one Cluster client routed as a
// single node. Each client is built from a *redis.Options (or
// *redis.ClusterOptions) template of the caller's, for passwords, TLS and
// pool sizes, and must answer PING before OpenRedis returns; on any error
// it closes what it opened. The RedisClients it returns hold the Router for
// the stores and the clients, which the caller closes after the stores.
//
// # Per-user cache
//
// UserCache is a per-user key/value cache with TTLs (NewMemoryCache,
// NewRedisCache). Fetch fills a miss once for all concurrent callers
// (singleflight) and still answers from the fill when the cache backend is
// down. ResetAll empties every user's cache after a game data change by
// bumping a global version that is part of every key: each process caches
// the version and learns of a bump by pub/sub (and a periodic re-read as a
// safety net); no key is ever scanned. UserCache.Stats counts hits, misses,
// fills and backend errors.
//
// # Rankings
//
// Board and its stores (BoardMemoryStore, BoardRedisStore) are leaderboards
// on sorted sets with seasons; see Board.
//
// # Rate limits
//
// A Limiter counts events per user and named Limit (Rate per second, Burst
// at once; GCRA: one theoretical arrival time per user and limit, a refused
// event not counted). The state belongs to the user, not to a connection,
// so reconnecting gives nothing back. MemoryLimiter limits within one
// process, bounded by LimiterConfig.MaxEntries; RedisLimiter shares the
// state between servers: one key P{u:<userKey>}:rl:<name> on the user's
// node (one Cluster slot), one Lua script per call, a TTL of the time left
// until a full burst, time from LimiterConfig.Now like the session store's
// expiry. RateLimitMiddleware limits each authenticated user's commands
// (answering protocol.CodeRateLimited with the retry hint, RateLimited);
// the realtime hub keeps its chat limit in a Limiter too. A Limiter whose
// backend fails answers ErrUnavailable; both consumers then let the event
// through (fail open) and count it.
//
// # Testing
//
// Package sessiontest has the conformance suites (RunStoreTests,
// RunBoardTests, RunCacheTests, RunLimiterTests) every backend passes, a
// settable Clock, NewStore, Login, Request and BoardForTest for game tests,
// and the real Redis of integration tests (Redis, RedisCluster,
// PrivateRedis, StartRedisServer).
package session
