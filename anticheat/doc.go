// Package anticheat holds the cheap but effective anti-cheat checks of a
// mobile game server: clock-drift speed checks, rules for values the client
// reports, an APK signature registry with a delayed force-close, a Play
// Integrity policy, receipt verification with redeem-once, and a hack log
// whose counts turn into flags and blocks.
//
// # Speed hacks
//
// Every request carries the client's raw clock (protocol.Request.ClientTime)
// and the server stamps its own (ReceivedAt). A SpeedChecker compares how
// far each clock moved since a per-session reference; SpeedChecker's doc
// states the rule exactly. In short: running ahead by more than
// SpeedConfig.Threshold (3 s) gradually is a verdict; a sudden change
// between two requests is taken as a clock change and tolerated once per
// JumpWindow; falling far behind on several requests in a row is a
// slow-motion verdict; network delay never looks like running ahead. State is
// per process, bounded (MaxSessions) and expires (IdleTTL).
//
// # Reported values
//
// A StatChecker runs Rules over a Report (level plus reported values):
// Range, Linear and Bounds (bounds per level from game data), MaxRate
// (damage per second of play time), Required, or any func. Each Violation
// carries a typed Reason; Verdicts turns them into hack-log verdicts.
//
// # APK signatures and app integrity
//
// A Registry keeps, per client version ("x.y.z.w" or "latest" as the
// fallback, compared numerically), the 32-character MD5 of the APK
// signature and the SHA-256 digests of the signing certificates' rotation
// lineage. Set with "0" deletes, as in the talk's tool. Check answers ok,
// mismatch or unknown version. CheckLogin is the login check: Check plus,
// on a mismatch, a ForceClose directive at a random later time, which the
// login answers instead of refusing, so a repackager cannot tell what gave
// them away, and the Verdict to record once the user is known. The Guard
// runs it at login; a login middleware that reads the signature from its
// own payload calls it directly. IntegrityPolicy judges a
// decoded Play Integrity verdict (package, request hash or nonce,
// freshness, app recognition, certificate allow-list, device tier,
// licensing), each failure its own typed error; IntegrityDecoder fetches it.
//
// # Receipts
//
// A Verifier turns (store, receipt) into a verified Purchase: HTTPVerifier
// asks a publisher's receipt server, AppleVerifier checks App Store signed
// transactions as Apple's App Store Server Library does (ES256 JWS; x5c of
// leaf, intermediate, root chaining to Apple Root CA - G3, embedded as the
// default, or a configured root; Apple's receipt-signing and WWDR marker
// extensions on leaf and intermediate; bundle id; environment), GoogleVerifier
// reads the Play Developer API (PlayPurchases) and acknowledges. A Redeemer
// binds each transaction, unique per store across all databases, to the
// account that redeemed it first: a retry from that account is not granted
// again, another account gets ErrReceiptOtherAccount.
//
// # Log, counters and blocks
//
// A Monitor records every Verdict in a Log (user, kind, reason, detail,
// client version, time) with per-user counters, and a Policy turns counts
// into a flag, a temporary block or a permanent block. The operator queries
// are Log.DailyCounts (hacks per day by kind) and Log.TopOffenders.
//
// # Middleware
//
// Guard.Middleware goes after the session middleware: on every request
// with a Principal it checks the block list (protocol.CodeBlocked) and the
// speed; on the login command it checks the signature and the block list.
//
// # Backends
//
// MemoryStore (one process, the embedded default) and SQLStore (MySQL /
// MariaDB or SQLite; put it in the common database) implement Store; the
// conformance suite anticheattest.RunStoreTests runs against both. With
// several game servers, share the SQLStore and put a BlockCache in front of
// it as the Monitor's Blocks: the per-request check stays a map lookup and
// a block reaches every server within the cache's TTL (with
// BlockCacheConfig.WholeList the cache holds every block in force, so even
// a user's first check, a login, costs no query; while the database is
// down, its last answers stand in for up to BlockCacheConfig.MaxStale,
// 10 min by default, so players keep playing); RegistryConfig.CacheTTL
// does the same for the signature registry. The
// speed checker's state is in memory only: each game server judges the
// requests it sees, which works behind a load balancer because all servers
// share the same (NTP) time.
//
// Errors are *Error values carrying a Reason and a protocol result code;
// match them with errors.Is against the Err* sentinels.
package anticheat
