// Package console is the game server's ops console: web pages on the admin
// listener for the operators and customer-support staff who do not use
// curl. It is served by the game server under Prefix (/console/), next to
// the JSON ops API (package ops), which keeps working for scripts with its
// bearer token. Nothing needs building: the templates are embedded (Go
// html/template, plain HTML and CSS, charts drawn as inline SVG, no
// external scripts).
//
// # Pages
//
//	/console/             dashboard: CCU, DAU, NRU, revenue per currency and hacks per day
//	                      (charts over Config.Days days), maintenance, game data version
//	/console/players      lookup by user key or account identity (platform:id); a player's
//	                      profile, balances, inventory, ledger (keyset pages of
//	                      LedgerPageSize), purchases, hack log, live sessions
//	                      (Config.Sessions); block/unblock, kick,
//	                      per-user maintenance, mail a grant, recall a mail, take currency and items back
//	/console/maintenance  global maintenance with its message; per-user maintenance in
//	                      batches of up to MaxBatch keys
//	/console/versions     platforms' minimum versions, builds (review routing, data and
//	                      asset versions), APK signatures ("0" deletes)
//	/console/events       live events with targeting and time windows in explicit zones;
//	                      a preview of which events a player sees now
//	/console/gamedata     game data versions (who, when, why, hash), the diff between any two, publish, roll back
//	/console/notices      notices to the realtime "system" channel
//	/console/audit        the audit log
//
// # Operators and safety
//
// Operators are rows of console_operators in the common database
// (Migrations, SQLite and MySQL/MariaDB), passwords hashed with bcrypt
// (golang.org/x/crypto). The first one is created from the command line
// (RunCommand, the game server's "operator" subcommand). Roles: RoleViewer
// reads everything, RoleOperator also changes things. Sign-in opens a
// session kept by the SHA-256 of its cookie (SessionCookie: HttpOnly,
// SameSite=Strict, Secure over TLS or with Config.Secure) for
// StoreConfig.SessionTTL; MaxFailures wrong passwords in a row lock an
// operator out for Lockout (counted in the database, so every server
// shares the count). Every form carries the session's CSRF token (the
// sign-in form a double-submit cookie) and a cross-site Origin is
// refused. Every change needs a comment and is written to the audit log
// (console_audit: who, what, target, state before and after as JSON,
// comment, outcome) before it is applied — an entry left "pending" is a
// change whose outcome was never reported — and shown in the console.
//
// Forms are validated before anything changes; a wrong value answers 400
// and names the field. Templates escape everything they print (a player
// name with markup shows as text). Responses carry a strict
// Content-Security-Policy and are not cached.
//
// Mount the handler on the admin listener only; the game server never
// serves it on the public listener.
package console
