-- The example game's player table and currency ledger (SQLite).
-- Times are Unix milliseconds.
CREATE TABLE players (
  user_key INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  gold INTEGER NOT NULL,
  gems INTEGER NOT NULL,
  stamina INTEGER NOT NULL,
  stamina_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_key INTEGER NOT NULL,
  currency TEXT NOT NULL,
  delta INTEGER NOT NULL,
  balance_after INTEGER NOT NULL,
  reason TEXT NOT NULL,
  request_id TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX ledger_user ON ledger (user_key, id);
