// Package game is the example game's logic: guest login, the player's
// profile, currencies, stamina and inventory, a gem shop, a mailbox, dungeon
// runs checked by the anti-cheat rules, and a weekly dungeon ranking, as
// protocol commands over the madang packages (shard for accounts and the
// user's game database, session for logins and the ranking board,
// idempotency for everything that changes the player, anticheat for dungeon
// reports). The server package wires it to storage and HTTP; nothing here
// knows about flags or listeners.
//
// # Commands
//
// Payloads are JSON objects; "→" is the answer. Every command but auth.guest
// needs a session. Commands marked (once) change the player: they need a
// request id (the protocol client sends one, and keeps it on retries) and
// run exactly once per id, in one transaction on the user's game database
// with the idempotency key row and the ledger rows; a retry with the same id
// gets the first answer replayed (Response.Replay), refusals included.
// Malformed payloads and out-of-range fields answer protocol.CodeBadRequest.
// A database or Redis that is down, slow, read-only or picked the
// transaction as a deadlock victim answers protocol.CodeUnavailable (or
// CodeTimeout), both retryable, never CodeInternal (Register classifies
// every command's error with shard.ClassifyError).
//
//   - auth.guest (public) {device_id, platform, client_version, country,
//     language} → LoginResult {token, key_id, secret, user_key, new_user,
//     server_time}. Registers the identity (platform "guest", the device id)
//     with shard.Accounts, creates the player row and the welcome mail on
//     the first login, and opens a session, kicking the user's older one.
//     The example server runs a bounded number of logins at once
//     (server.Config.MaxLogins); past it a login answers
//     protocol.CodeRateLimited with a retry hint of 1-2 s.
//   - auth.logout {} → nothing (code 0): ends the session (session
//     Store.Revoke). Its later requests answer protocol.CodeSessionRevoked
//     and its websocket connections close with 4013 session_revoked. A
//     retry after a lost reply answers session_revoked too: the session
//     has ended either way.
//   - player.load {} → Player {user_key, name, gold, gems, exp, level,
//     stamina {current, max, next_at, interval_ms}, created_at, items
//     [{item_id, count}]}.
//   - shop.buy (once) {item_id} → BuyResult {item_id, gold, gems, items,
//     paid, discount_pct}: the balances after paying the item's gems (less
//     a running shop sale's discount: see Live-ops events), and the items
//     it gave (Catalog). CodeUnknownItem, CodeNotEnoughGems.
//   - shop.buy_iap (once) {product_id, platform "ios"|"android", receipt}
//     → IAPResult {product_id, store, transaction_id, granted, gems, gold,
//     items, price_micros, currency}: verifies the store receipt and
//     redeems its transaction once across every game database
//     (IAPConfig.Redeemer, in the common database), then, in the
//     idempotent transaction on the user's game database, inserts the
//     purchases row (primary key store + transaction id), grants the
//     product's gems and items and writes the ledger rows — the grants and
//     the payment (currency "pay:<ISO 4217>", delta the list price in
//     millionths, balance the user's total paid in that currency). A
//     transaction granted before by another request of the same account
//     answers granted false (nothing more given); another account's is
//     protocol.CodeReceiptUsed (18); a forged receipt CodeBadRequest; a
//     store outage CodeUnavailable (retryable). CodeUnknownProduct,
//     CodeWrongProduct (the receipt is for another product). Development
//     receipts "dev-receipt:<id>:<product>" (DevVerifier) are refused unless
//     IAPConfig.DevReceipts; without Config.IAP the command answers
//     protocol.CodeForbidden. With IAPConfig.Pending the purchase is noted
//     in the common database before its redemption and the note deleted
//     once the grant committed: a receipt redeemed while its grant never
//     committed (the game database died in between) is granted at the
//     player's next login (GrantPending) or by the server's sweep
//     (SweepPendingGrants), once (the purchases row).
//   - mail.list {} → MailList {mails [{mail_id, title, body, gold, gems,
//     items, sent_at, expires_at}]}: unclaimed, unexpired mail, newest
//     first, at most MaxMailList.
//   - mail.claim (once) {mail_id} → ClaimResult {mail_ids, gold, gems,
//     items, balance {gold, gems}, remaining}: pays one mail's attachments.
//     CodeNoMail, CodeMailClaimed (claimed by another request), CodeMailExpired.
//   - mail.claim_all (once) {} → ClaimResult: pays every claimable mail,
//     oldest first, at most MaxClaimAll (remaining says how many are left);
//     an empty mailbox is an empty result, not an error.
//   - dungeon.start (once) {dungeon_id} → RunStarted {run_id, dungeon_id,
//     started_at, stamina}: pays the dungeon's stamina and records the run
//     (server and client start times). CodeUnknownDungeon,
//     CodeNotEnoughStamina.
//   - dungeon.finish (once) {run_id, result "win"|"lose", damage,
//     play_time_ms} → RunFinished {run_id, result, score, gold, exp_gained,
//     total_gold, total_exp, level, gold_pct, exp_pct} (gold_pct and
//     exp_pct: a running dungeon buff, included in gold and exp_gained). Checks the report (see Anti-cheat),
//     grants the rewards once per run (a win: the dungeon's gold and exp and
//     score = damage; a loss: LossExp), and after the commit submits the
//     score to the ranking (idempotency.AfterCommit, keeping the season's
//     best). CodeNoRun, CodeRunFinished (finished by another request),
//     CodeRunExpired (later than MaxRunTime), CodeCheatDetected.
//   - rank.top {n, cursor} → RankPage {season {id, start, end}, entries
//     [{user_key, name, score, rank, at}], next}: the best first, n up to
//     MaxRankTop (0: DefaultRankTop); pass next as cursor for the next page.
//   - rank.me {} → RankMe {season, ranked, entry}: ranked false without a
//     score this season.
//   - rank.around {n} → RankPage: up to 2n+1 entries around the player (n
//     up to MaxRankAround, 0: DefaultRankAround); empty without a score.
//
// # Result codes
//
// protocol.CodeGameBase + 1 CodeNotEnoughGems, +2 CodeUnknownItem,
// +3 CodeNoPlayer, +4 CodeNotEnoughStamina, +5 CodeUnknownDungeon,
// +6 CodeNoMail, +7 CodeMailClaimed, +8 CodeMailExpired, +9 CodeNoRun,
// +10 CodeRunFinished, +11 CodeRunExpired, +12 CodeCheatDetected,
// +13 CodeNotEnoughGold, +14 CodeUnknownProduct, +15 CodeWrongProduct.
// All are definitive: stored with the request id and
// replayed to its retries.
//
// # Static data
//
// The shop, the dungeons, the items and the in-app purchase products come
// from Config.Data by the session's client version
// (protocol.Principal.ClientVersion): FromCatalog serves a
// gamedata.Catalog's versioned, validated tables (each client version
// mapped to a data version, or the published one). Without Config.Data
// every client gets DefaultTables (ItemDefs, Catalog, Dungeons, Products).
// dungeon.finish judges and rewards a run with the dungeon of the request's
// data version (or, if that version lacks it, the defaults'); a win also
// grants the dungeon's item rewards (Dungeon.Items) to the inventory.
// Operators' mail attachments (SendMail) are checked against the published
// version's items (DataSource.Published), login bonuses against the items
// served to the login's client version; an unknown item is CodeUnknownItem.
//
// # Live-ops events
//
// Config.Events (the server passes the live-ops events running for the
// player's country, language, platform and client version) gives Boosts: at
// auth.guest each login bonus is mailed in the login's transaction, once per
// Mail.Key (the server keys it by event and day in the event's time zone,
// so once per day); shop.buy takes the best running sale's discount off the
// gem price (at least 1 gem; the ledger records what was paid);
// dungeon.finish adds the running buffs' percentages to gold and exp. A
// retried request replays its first answer, whatever runs by then.
//
// # Stamina
//
// Stamina regenerates by one point every StaminaInterval (5 minutes) up to
// StaminaMax (50). The database keeps the value and the time it was last
// written (stamina, stamina_at); the current value is computed when read,
// so regeneration costs no writes: current = min(StaminaMax, stamina +
// floor((now − stamina_at) / StaminaInterval)). A player at or above the cap
// does not regenerate. Spending keeps the progress toward the next point
// (stamina_at moves by the whole points gained); spending from the cap
// starts regeneration at that moment.
//
// # Ledger
//
// Every change of a currency or an item writes one ledger row (currency
// "gold", "gems" or "item:<item id>", the delta and the balance after it,
// the reason — "shop:<item>", "mail:<mail id>", "dungeon:<dungeon>",
// "operator.takeback:<operator>" — and the request id) in the transaction
// that makes the change.
//
// # Mailbox
//
// System mail carries gold, gems and items and expires (DefaultMailTTL, 30
// days, unless set). The game sends the welcome mail (WelcomeMail) with the
// new player's row; operators send mail with SendMail (a Mail.Key makes a
// grant safe to resend) and take back unclaimed mail with RecallMail, and
// currency and items the player already has with TakeBack (all or nothing,
// never below zero: a *ShortError names what is short; once per operator
// request id, kept in the takebacks table of the player's database). A
// claim locks the player row, then the mail rows, and marks them claimed in
// the transaction that pays them, so concurrent claims pay each mail once.
// Items are added to the inventory with an upsert before they are read back
// (never a locking read of a missing row: on InnoDB that gap-locks rows of
// neighbouring players and deadlocked their claims). A command whose
// transaction is still picked as a deadlock victim runs again in the server
// (the router's retry policy, shard.Config.TxRetries: the idempotency
// store's transactions are the router's).
//
// # Anti-cheat
//
// dungeon.finish refuses a report, with CodeCheatDetected, when any of these
// fails, and records one verdict per failure in the hack log (Config.Monitor,
// the server's Guard's monitor, whose policy may flag or block the player)
// after the refusal is stored, so a retried refusal is not counted twice:
//
//   - the dungeon's anticheat.StatChecker (Dungeon.Rules): damage and play
//     time reported, play time within [MinPlay, MaxPlay], damage per second
//     at most MaxDPS, damage at most DamageBase + DamagePerLevel × level;
//   - the play time against the server's clock: at most the time since
//     dungeon.start plus Config.PlayTimeSlack;
//   - the client's raw clock (Request.ClientTime) over the run: it may not
//     move more than Config.DriftTolerance further than the server's between
//     dungeon.start and dungeon.finish (kind speed, reason drift_ahead).
//
// The refused run ends (result "rejected") without rewards or score. The
// per-request speed check and block list are the server's anticheat.Guard.
//
// # Ranking
//
// One board (BoardName "dungeon") on Config.BoardStore with weekly seasons
// starting Monday 00:00 UTC (session.SeasonWeekly): each player's best win
// score of the week. A new week is a new, empty board; past weeks expire
// after the board's retention. The runs table keeps every score, so
// RebuildRanking refills the week from the game databases (the server calls
// it at start, as its embedded board lives in memory, and it repairs a
// submission lost after a finish's commit).
package game
