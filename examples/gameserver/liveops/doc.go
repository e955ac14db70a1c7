// Package liveops is the game server's live-operations policy: which client
// versions may play, which builds are store-review builds routed to a review
// server, which game-data and asset-bundle versions a client version loads,
// and maintenance (global, with an allow-list, and per user). A Manager keeps
// the policy in memory (one atomic snapshot, read without locks on every
// request), persists it in the common database, and applies it as a
// protocol middleware, so every command — not only login — is gated.
//
// # Result codes and the login answer
//
//   - A client below its platform's minimum version gets
//     protocol.CodeClientTooOld (16, "update required") with the payload
//     {"min_version", "update_url"}, at login and on every later request
//     (raising the minimum stops old sessions at their next request).
//   - Global maintenance: every request of a user not on the allow-list, and
//     every request without a session, gets protocol.CodeMaintenance (20)
//     with the payload {"scope":"global","message","ends_at"} (ends_at Unix
//     ms, 0 when unknown; informational: maintenance ends when an operator
//     turns it off). Per-user maintenance: the users put in it get the same
//     code with "scope":"user" and the operator's comment as the message,
//     while everyone else plays.
//   - A successful login answer gains a "liveops" member:
//     {"data_version", "asset_version", "review_server_url",
//     "directive_code", "close_at"}. data_version and asset_version are those
//     of the client's version (its own entry, else the highest entry of its
//     platform at or below it); with Config.DataVersion set (the game
//     server: its gamedata.Catalog's client version mappings) data_version
//     comes from there instead, the one source of data versions. A review build (an entry with review set,
//     such as an iOS build in App Store review) gets review_server_url and
//     should reconnect there; review builds skip the maintenance and
//     minimum-version gates at login. directive_code DirectiveForceClose (1)
//     with close_at (Unix ms) tells a repackaged client (APK signature
//     mismatch, decided by anticheat's login check, Registry.CheckLogin,
//     over Config.Registry, or by an anticheat Guard with a registry placed
//     before this middleware) to close itself then; the login itself
//     succeeds, so the repackager cannot tell what gave them away.
//
// # Persistence and refresh across servers
//
// The policy lives in the common database (tables liveops_*, created by
// Migrations through shard.Migrate, SQLite and MySQL/MariaDB variants). Every
// change runs in one transaction that also bumps liveops_meta.version. Each
// Manager polls that one row every Config.PollInterval (default 5 s) and
// reloads the whole policy when it changed. With Config.Redis set, a change
// is also published on Config.Channel (default "madang:liveops") and every
// Manager reloads when the message arrives (normally milliseconds later);
// polling stays on as the safety net for messages lost while a pub/sub
// connection was down. The Manager that made a change uses it at once.
//
// # Events
//
// Events (SetEvent, DeleteEvent, Events, ActiveEvents) are a login bonus
// (gold, gems and items, mailed once per day), a dungeon buff (+gold_pct,
// +exp_pct percent) or a shop sale (discount_pct off some shop items or
// all), each in a window whose start and end are wall-clock times
// ("2026-12-24T00:00:00") in an explicit IANA time zone (time.LoadLocation:
// "Asia/Seoul", "America/New_York", "UTC"), so "midnight in Seoul" means
// what it says whatever the server's zone; the end is exclusive. Each may be
// targeted by country, language, platform (lists; empty means all) and a
// client version range (inclusive). They live in liveops_events (JSON
// rows, migration 0002) and reach every server like the rest of the
// policy. Applying them is the game's (package game, Config.Events).
//
// # Activity
//
// The middleware records each user's last request in memory (Config.ActiveWindow,
// default 5 min) for CCU, and every successful login in liveops_logins (one
// row per user and UTC day) for DAU — but a first login with
// Config.DAUCountsNewAccounts, which the new account's shard_accounts row
// dates. With Redis the active users are flushed
// every FlushInterval into one sorted set, so CCU counts the users of every
// server. Every PollInterval each server samples the CCU and keeps the
// larger of its sample and the stored one as the UTC day's peak
// (RecordCCU, liveops_ccu_daily, migration 0004; PeakCCU reads it).
package liveops
