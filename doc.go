// Package madang is an embeddable SDK for mobile game backends, with reference
// servers built from it.
//
// It packages what a studio running a live mobile RPG learned the hard way: a
// stateless web game server behind an L4 load balancer, a realtime server for
// chat, notices, raids and PvP, MySQL game databases sharded by user key, Redis
// for sessions and rankings, replay-safe requests, and cheap but effective
// anti-cheat checks.
//
// Each package is useful on its own:
//
//   - protocol: the wire format (a JSON envelope in a binary frame, LZ4 above
//     150 bytes, XOR obfuscation or AES-GCM authenticated frames), result
//     codes, the transport-agnostic Handler/Middleware chain, the HTTP adapter
//     and a Go client. Server time is stamped on every response.
//   - session: login sessions (one per user, kick, revoke), per-user cache and
//     rankings, in memory or on Redis routed by user key.
//   - shard: user keys over many MySQL/MariaDB (or SQLite) game databases
//     through a directory table; a database added to the directory takes new
//     users.
//   - idempotency: a retried request returns the stored result instead of
//     running twice; with the SQL store, exactly once inside the game's
//     transaction.
//   - anticheat: speed-hack clock drift, reported-stat rules, APK signatures,
//     Play Integrity, receipts (redeemed once), hack log and blocks.
//   - realtime: a websocket hub on the same protocol frames and Handler chain:
//     chat channels, server push (notices, live events), presence, and tick
//     rooms for raids and PvP with matchmaking, on one node or many (memory or
//     Redis broker).
//
// Everything a studio configures has a public name: time by Now func()
// time.Time fields (nil means time.Now), SQL dialects by name
// (shard.DialectMySQL, shard.DialectSQLite, shard.DetectDialect), the
// recommended SQLite DSN by shard.SQLiteDSN, the retry policy by
// shard.RetryPolicy. Each package's fakes, test clocks and conformance suites
// are in a sibling xxxtest package (sessiontest, shardtest, idempotencytest,
// anticheattest, realtimetest).
//
// docs/GUIDE.md builds a server from these packages step by step, with
// examples/quickstart as its code. The reference servers under examples/
// (gameserver, realtimeserver, loadtest, faultrun) compose everything; each
// example compiles when copied into another module.
//
// The layering rule: protocol imports nothing of madang; session, shard,
// idempotency and anticheat import only protocol and internal packages;
// realtime may import protocol and session. Data the packages need from each
// other travels in protocol.Principal or through small interfaces the caller
// injects.
package madang
