// Package game is the example game's logic: guest login, the player's
// profile, currencies and stamina, and a gem shop, as protocol commands over
// the madang packages (shard for accounts and the user's game database,
// session for logins, idempotency for purchases). The server package wires
// it to storage and HTTP; nothing here knows about flags or listeners.
//
// # Commands
//
//   - auth.guest (public): payload {device_id, platform, client_version,
//     country, language}. Registers the identity (platform "guest", the
//     device id) with shard.Accounts, creates the player row on the first
//     login, and opens a session, kicking the user's older one. Answers
//     LoginResult.
//   - player.load: the player's profile, currencies and stamina (Player).
//   - shop.buy: payload {item_id}; spends gems for gold (Catalog). It needs a
//     request id (the protocol client sends one) and runs exactly once per
//     id: the idempotency key row, the player update and the ledger rows
//     commit in one transaction on the user's game database. Not enough
//     gems is CodeNotEnoughGems, a definitive answer replayed to retries.
//
// # Stamina
//
// Stamina regenerates by one point every StaminaInterval (5 minutes) up to
// StaminaMax (50). The database keeps the value and the time it was last
// written (stamina, stamina_at); the current value is computed when read,
// so regeneration costs no writes: current = min(StaminaMax, stamina +
// floor((now − stamina_at) / StaminaInterval)). A player at or above the cap
// does not regenerate.
//
// # Ledger
//
// Every currency change writes one ledger row per currency (delta and the
// balance after it, the reason and the request id) in the transaction that
// changes the balance.
package game
